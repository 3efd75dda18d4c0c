"""Download the published Raw-Microscopy / Raw-Drone record from Zenodo (standard library only).

:func:`download_record` asks Zenodo's records API (``{base_url}/api/records/{record}``)
for the record's file list and guarantees the following.

File keys
    Every key the API gives is checked before anything is fetched: a key that is empty,
    absolute (``/x``, ``C:\\x``, ``\\\\host\\x``), leaves ``root`` (``..``), holds a NUL or
    another control character, or starts with ``.ispkit-`` (ispkit's own files) raises
    :class:`~ispkit.errors.DownloadError`, and nothing is written.

Downloads
    * A file already in ``root`` with the size *and* checksum (the algorithm the API names,
      e.g. ``md5:`` or ``sha256:``) the API gives is kept; any other file under that name is
      left untouched and the run stops with :class:`~ispkit.errors.DownloadError`.
    * Otherwise the file is streamed to ``root/<key>.part``. A transfer that ends before
      the record's declared size (the server closed the connection, a network error)
      keeps the ``.part`` file and raises a DownloadError saying how many bytes arrived;
      the next run resumes it with an HTTP ``Range`` request from the ``.part`` size. A
      server that ignores the range (200 instead of 206) or rejects it (416), and a
      ``.part`` longer than the declared size, restart the file from byte 0.
    * A server that announces another size than the record declares is refused before
      anything is written; at most one byte past the declared size is ever written.
    * Only a *complete* file whose checksum differs is deleted (DownloadError "checksum
      mismatch"); a verified file is renamed into place, so ``root/<key>`` is always a
      verified copy.

Archives (``.zip``, ``.tar``, ``.tar.gz``, ``.tgz``)
    * Before anything is written, every member is checked: unsafe names (as for keys),
      links and special files, duplicate names, a member of more than
      :data:`MAX_MEMBER_RATIO` times its compressed size (members over
      :data:`RATIO_FLOOR` bytes), members declaring together more than
      :data:`MAX_ARCHIVE_RATIO` times the archive's size (at least :data:`RATIO_FLOOR`),
      and less free disk space than the new members declare are all refused with a
      DownloadError naming the archive and the member. While writing, a member that
      yields more bytes than its header declares is refused too.
    * A corrupt or unreadable archive raises a DownloadError naming it and what is
      wrong (never ``BadZipFile``, ``EOFError``, ``tarfile.ReadError``, ...).
    * Members are extracted into a staging folder ``root/.ispkit-extract-<archive>`` and
      moved into place only once all of them were read: a refused or corrupt archive
      leaves nothing of itself in ``root``. Members that already exist are skipped;
      nothing in ``root`` is overwritten or deleted.

A ledger ``root/.ispkit-download.json`` records the record, the files, the checksums
the API gave on the first download and what was extracted (``extracted``) or kept
because it was already there (``kept_existing``); a run killed while moving members
into place still attributes them correctly when rerun. No checksum is invented: they
are pinned from the API on first download, and a later run whose API checksum differs
from the pinned one raises :class:`~ispkit.errors.DownloadError` (the record changed).
``datasets/zenodo_5235536.yaml`` in the source tree describes the record and its
expected layout (the constants below must agree with it).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import http.client
import json
import lzma
import os
import shutil
import tarfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from typing import Any

from ..atomic import atomic_write_text
from ..errors import DownloadError

__all__ = [
    "RECORD_ID",
    "DOI",
    "LICENSE",
    "ZENODO",
    "LAYOUT",
    "LEDGER",
    "MAX_MEMBER_RATIO",
    "MAX_ARCHIVE_RATIO",
    "RATIO_FLOOR",
    "api_url",
    "download_record",
]

RECORD_ID = "5235536"
"""Zenodo record of the Raw-Microscopy and Raw-Drone datasets (Oala et al., TMLR 2023)."""
DOI = "10.5281/zenodo.5235536"
LICENSE = "CC-BY-4.0"
ZENODO = "https://zenodo.org"
"""Default base URL (tests point it at a local server)."""
API_PATH = "/api/records/{record}"
LAYOUT: tuple[str, ...] = (
    "microscopy/images/raw_scale100",
    "microscopy/images/raw_scale075",
    "microscopy/images/raw_scale050",
    "microscopy/images/raw_scale025",
    "microscopy/images/raw_scale010",
    "microscopy/images/raw_scale005",
    "microscopy/images/raw_scale001",
    "microscopy/labels/Ma190c_annotations.dat",
    "drone/images_full/raw_scale100",
    "drone/images_full/raw_scale075",
    "drone/images_full/raw_scale050",
    "drone/images_full/raw_scale025",
    "drone/images_full/raw_scale010",
    "drone/images_full/raw_scale005",
    "drone/images_full/raw_scale001",
    "drone/masks_full",
)
"""Paths the loaders expect under ``root`` once the record is downloaded and unpacked."""
LEDGER = ".ispkit-download.json"
RESERVED = ".ispkit-"
"""Names starting with this in ``root`` are ispkit's own (the ledger, staging folders)."""
STAGING = RESERVED + "extract-"
ARCHIVES = (".zip", ".tar", ".tar.gz", ".tgz")
CHUNK = 1 << 20
MAX_MEMBER_RATIO = 200
"""Largest uncompressed : compressed size accepted for one zip member over :data:`RATIO_FLOOR` bytes.

Deflate reaches about 1030:1 on constant data; the record's raw images and PNG masks
compress far less than 200:1."""
MAX_ARCHIVE_RATIO = 20
"""Largest total uncompressed size of an archive's members, in multiples of the archive's size."""
RATIO_FLOOR = 1 << 20
"""Sizes (bytes) up to which neither ratio limit refuses anything: small members cannot fill a disk."""

Progress = Callable[[int, int, str], None]


def api_url(record: str = RECORD_ID, base_url: str | None = None) -> str:
    """The records-API URL of ``record``.

    >>> api_url("5235536", "https://zenodo.org/")
    'https://zenodo.org/api/records/5235536'
    """
    return (base_url or ZENODO).rstrip("/") + API_PATH.format(record=record)


def _manual(record: str) -> str:
    doi = DOI if record == RECORD_ID else f"10.5281/zenodo.{record}"
    return (
        f"download the record by hand (doi:{doi}, https://doi.org/{doi}) and unpack it so that the "
        "folders follow the layout in docs/datasets.md (microscopy/images/raw_scale100/..., drone/masks_full/...)"
    )


def _network_error(what: str, exc: BaseException, record: str) -> DownloadError:
    return DownloadError(f"download failed: {what}: {exc}. No network? Then {_manual(record)}")


_NETWORK_ERRORS = (urllib.error.URLError, http.client.HTTPException, TimeoutError, ConnectionError)


def _open(url: str, timeout: float, record: str, headers: dict[str, str] | None = None):
    request = urllib.request.Request(url, headers={"User-Agent": "ispkit", **(headers or {})})
    try:
        return urllib.request.urlopen(request, timeout=timeout)  # http(s) URLs only, checked below
    except urllib.error.HTTPError as exc:
        if exc.code == 416:
            raise
        raise _network_error(f"GET {url} answered HTTP {exc.code}", exc, record) from None
    except _NETWORK_ERRORS as exc:
        raise _network_error(f"GET {url}", exc, record) from None


def _safe_key(key: Any, where: str, what: str = "file name") -> str:
    """``key`` as a relative POSIX path inside the dataset folder, or a DownloadError saying why not.

    >>> _safe_key("a\\\\b/./c.zip", "test")
    'a/b/c.zip'
    """
    if not isinstance(key, str) or not key or key.startswith(("/", "\\")) or ":" in key.split("/")[0]:
        raise DownloadError(f"{where}: refusing {what} {key!r} (absolute or empty; expected a relative path)")
    if any(ord(char) < 32 or char == "\x7f" for char in key):
        raise DownloadError(f"{where}: refusing {what} {key!r} (it holds a NUL or another control character)")
    parts = [p for p in PurePosixPath(key.replace("\\", "/")).parts if p != "."]
    if ".." in parts:
        raise DownloadError(f"{where}: refusing {what} {key!r} (it leaves the dataset folder)")
    if not parts:
        raise DownloadError(f"{where}: refusing {what} {key!r} (it names the dataset folder itself)")
    if parts[0].startswith(RESERVED):
        raise DownloadError(f"{where}: refusing {what} {key!r} (names starting with {RESERVED!r} are ispkit's own)")
    return "/".join(parts)


def _files(meta: Any, url: str) -> list[dict[str, Any]]:
    """The record's files as ``{key, size, algorithm, digest, url}``, from either API shape."""
    files = meta.get("files") if isinstance(meta, dict) else None
    if isinstance(files, dict) and "entries" in files:
        files = files["entries"]
        if isinstance(files, dict):
            files = [{"key": k, **v} if isinstance(v, dict) else v for k, v in files.items()]
    if not isinstance(files, list) or not files:
        raise DownloadError(
            f"{url}: unexpected answer from the records API (expected 'files' as a non-empty list or {{'entries': ...}}, got {type(files).__name__})"
        )
    out = []
    for entry in files:
        if not isinstance(entry, dict):
            raise DownloadError(f"{url}: unexpected file entry {entry!r} (expected an object)")
        key = _safe_key(entry.get("key") or entry.get("filename"), url)
        size, checksum, links = entry.get("size"), entry.get("checksum"), entry.get("links") or {}
        if not isinstance(size, int) or size < 0:
            raise DownloadError(f"{url}: file {key!r} has no valid size ({size!r})")
        if not isinstance(checksum, str) or ":" not in checksum:
            raise DownloadError(f"{url}: file {key!r} has no checksum of the form 'md5:<hex>' ({checksum!r})")
        algorithm, digest = checksum.split(":", 1)
        if algorithm.lower() not in hashlib.algorithms_available:
            raise DownloadError(f"{url}: file {key!r} has a checksum of unknown kind {algorithm!r}")
        link = links.get("content") or links.get("self") or links.get("download") if isinstance(links, dict) else None
        if not isinstance(link, str):
            raise DownloadError(f"{url}: file {key!r} has no download link (links.self)")
        link = urllib.parse.urljoin(url, link)
        if urllib.parse.urlsplit(link).scheme not in ("http", "https"):
            raise DownloadError(f"{url}: file {key!r} has a non-HTTP link {link!r}")
        out.append({"key": key, "size": size, "checksum": f"{algorithm.lower()}:{digest.lower()}", "url": link})
    return out


def _hash_file(path: Path, algorithm: str, hasher: Any = None) -> Any:
    hasher = hasher or hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            hasher.update(block)
    return hasher


def _verified(path: Path, size: int, checksum: str) -> bool:
    """Whether ``path`` is a file of ``size`` bytes whose digest is ``checksum`` (``"<algorithm>:<hex>"``)."""
    algorithm, digest = checksum.split(":", 1)
    return path.is_file() and path.stat().st_size == size and _hash_file(path, algorithm).hexdigest() == digest


@contextlib.contextmanager
def _writing(path: Path, then: str) -> Iterator[None]:
    """Turn an OS error while writing ``path`` (disk full, permissions) into a DownloadError."""
    try:
        yield
    except OSError as exc:
        raise DownloadError(f"cannot write {path}: {exc.strerror or exc}; {then}") from None


# -- downloading one file ----------------------------------------------------------------


def _cut(item: dict[str, Any], part: Path, have: int, why: str) -> DownloadError:
    return DownloadError(
        f"{item['key']}: the transfer was cut after {have} of {item['size']} bytes ({why}); the {have} bytes are "
        f"kept in {part}: run the download again to resume from there"
    )


def _request(item: dict[str, Any], have: int, timeout: float, record: str) -> tuple[Any, int] | None:
    """Ask for the file from byte ``have``; ``(response, first byte it holds)``, or None to start over."""
    url = item["url"]
    try:
        response = _open(url, timeout, record, {"Range": f"bytes={have}-"} if have else {})
    except urllib.error.HTTPError:  # 416: the range does not fit what the server has
        return None
    if response.status == 200:
        start = 0  # the whole file comes again
    elif have and response.status == 206:
        first = (response.headers.get("Content-Range") or "").removeprefix("bytes ").split("-")[0]
        if first != str(have):  # not the range asked for
            response.close()
            return None
        start = have
    else:
        response.close()
        raise DownloadError(f"download failed: GET {url} answered HTTP {response.status}. {_manual(record)}")
    length = response.headers.get("Content-Length")
    if length is not None and length.isdigit() and start + int(length) != item["size"]:
        response.close()
        raise DownloadError(
            f"{item['key']}: GET {url} offers {start + int(length)} bytes but the record declares {item['size']}; nothing was written. {_manual(record)}"
        )
    return response, start


def _stream(response: Any, part: Path, start: int, item: dict[str, Any], progress: Progress | None) -> int:
    """Append the body to ``part`` (from byte ``start``); the bytes then in ``part``, at most size + 1."""
    key, size, done = item["key"], item["size"], start
    resume = "the bytes written are kept: free some space and run the download again to resume"
    with _writing(part, resume), open(part, "ab" if start else "wb") as f:
        if progress:
            progress(done, size, key)
        while done <= size:
            try:
                block = response.read(min(CHUNK, size + 1 - done))
            except _NETWORK_ERRORS as exc:
                f.flush()
                raise _cut(item, part, done, f"{type(exc).__name__}: {exc}") from None
            if not block:
                break
            f.write(block)
            done += len(block)
            if progress:
                progress(done, size, key)
    return done


def _download(item: dict[str, Any], part: Path, have: int, timeout: float, record: str, progress: Progress | None) -> int:
    """Fetch the rest of the file into ``part``; the bytes then in ``part``."""
    for _attempt in range(2):
        answer = _request(item, have, timeout, record)
        if answer is None:
            have = 0
            continue
        response, start = answer
        with response:
            return _stream(response, part, start, item, progress)
    raise DownloadError(f"download failed: GET {item['url']} did not send the file when asked twice. {_manual(record)}")


def _fetch(item: dict[str, Any], target: Path, timeout: float, record: str, progress: Progress | None) -> None:
    """Stream one file to ``<target>.part`` (resuming), verify it and rename it to ``target``.

    A transfer that ends early keeps the ``.part`` file (DownloadError "cut after N of M
    bytes"); only a complete file with another checksum is deleted.
    """
    key, size, checksum = item["key"], item["size"], item["checksum"]
    part = target.with_name(target.name + ".part")
    with _writing(target.parent, "fix the folder and run the download again"):
        target.parent.mkdir(parents=True, exist_ok=True)
    have = part.stat().st_size if part.exists() else 0
    if have > size:  # not a prefix of this file
        part.unlink()
        have = 0
    if have < size or not part.exists():
        have = _download(item, part, have, timeout, record, progress)
    if have < size:
        raise _cut(item, part, have, "the server closed the connection")
    if _verified(part, size, checksum):
        os.replace(part, target)
        return
    algorithm = checksum.split(":", 1)[0]
    got = f"{algorithm}:{_hash_file(part, algorithm).hexdigest()}, " + (f"{have}" if have == size else f"more than {size}")
    part.unlink()
    raise DownloadError(
        f"{key}: checksum mismatch (expected {checksum}, {size} bytes; got {got} bytes); "
        f"the complete but wrong file was deleted, run the download again or {_manual(record)}"
    )


# -- unpacking archives ------------------------------------------------------------------


def _is_archive(key: str) -> bool:
    return key.lower().endswith(ARCHIVES)


@dataclasses.dataclass(frozen=True)
class _Member:
    """One archive member: its safe name, what its header declares, and how to read it."""

    name: str
    is_dir: bool
    size: int
    compressed: int | None  # the zip header's compressed size; None in a tar (compressed as a whole)
    open: Callable[[], Any]


_ARCHIVE_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    tarfile.TarError,
    EOFError,
    zlib.error,
    lzma.LZMAError,
    NotImplementedError,  # a zip compression method Python lacks
    RuntimeError,  # an encrypted zip member
    ValueError,  # zipfile on a truncated archive: "negative seek value"
    OSError,  # gzip.BadGzipFile, bz2, a read error
)


@contextlib.contextmanager
def _reading(archive: Path, member: str | None = None) -> Iterator[None]:
    """Turn any error of a corrupt or unreadable archive into a DownloadError naming it."""
    try:
        yield
    except _ARCHIVE_ERRORS as exc:
        where = f"member {member!r}: " if member else ""
        raise DownloadError(
            f"archive {archive}: corrupt or unreadable ({where}{type(exc).__name__}: {exc}); nothing of it was "
            "extracted. The file has the checksum the record declares, so the record's own archive is broken: "
            "downloading it again will not help"
        ) from None


def _zip_members(archive: Path, stack: contextlib.ExitStack) -> list[_Member]:
    zf = stack.enter_context(zipfile.ZipFile(archive))
    out = []
    for info in zf.infolist():
        name = _safe_key(info.filename.rstrip("/") or info.filename, f"archive {archive.name}", "member")
        if (info.external_attr >> 16 & 0o170000) == 0o120000:
            raise DownloadError(f"archive {archive.name}: refusing member {info.filename!r} (a symbolic link)")
        opener = lambda info=info: zf.open(info)  # noqa: E731
        out.append(_Member(name, info.is_dir(), 0 if info.is_dir() else info.file_size, info.compress_size, opener))
    return out


def _tar_members(archive: Path, stack: contextlib.ExitStack) -> list[_Member]:
    tf = stack.enter_context(tarfile.open(archive))  # noqa: SIM115 - the caller's ExitStack closes it
    out = []
    for member in tf.getmembers():
        name = _safe_key(member.name, f"archive {archive.name}", "member")
        if not (member.isfile() or member.isdir()):
            raise DownloadError(f"archive {archive.name}: refusing member {member.name!r} (not a plain file or folder)")
        opener = lambda member=member: tf.extractfile(member)  # noqa: E731
        out.append(_Member(name, member.isdir(), 0 if member.isdir() else member.size, None, opener))
    return out


def _members(archive: Path, stack: contextlib.ExitStack) -> list[_Member]:
    """Every member of ``archive``, refusing unsafe names, links and name clashes before anything is written."""
    with _reading(archive):
        members = (_zip_members if archive.name.lower().endswith(".zip") else _tar_members)(archive, stack)
    kinds: dict[str, bool] = {}
    for member in members:
        if member.name in kinds and not (member.is_dir and kinds[member.name]):
            raise DownloadError(f"archive {archive.name}: refusing member {member.name!r} (the name appears twice)")
        kinds[member.name] = member.is_dir
    files = {name for name, is_dir in kinds.items() if not is_dir}
    for name in kinds:
        clash = next((str(p) for p in PurePosixPath(name).parents if str(p) in files), None)
        if clash:
            raise DownloadError(f"archive {archive.name}: refusing member {name!r} (its folder {clash!r} is a file member)")
    return members


def _check_declared(members: list[_Member], archive: Path) -> None:
    """Refuse a member whose declared size breaks a ratio limit (a zip bomb) before anything is written."""
    size = archive.stat().st_size
    total_limit = max(RATIO_FLOOR, MAX_ARCHIVE_RATIO * size)
    total = 0
    for m in members:
        if m.compressed is not None and m.size > RATIO_FLOOR and m.size > MAX_MEMBER_RATIO * m.compressed:
            raise DownloadError(
                f"archive {archive.name}: refusing member {m.name!r}: it declares {m.size} bytes from {m.compressed} "
                f"compressed (more than {MAX_MEMBER_RATIO}:1, a zip bomb?); nothing was extracted"
            )
        total += m.size
        if total > total_limit:
            raise DownloadError(
                f"archive {archive.name}: refusing member {m.name!r}: with it the members declare {total} bytes, more "
                f"than {total_limit} ({MAX_ARCHIVE_RATIO} × the archive's {size} bytes; a zip bomb?); nothing was extracted"
            )


def _check_space(root: Path, needed: int, archive: Path) -> None:
    free = shutil.disk_usage(root).free
    if free < needed:
        raise DownloadError(
            f"not enough free space to extract {archive.name}: its new members declare {needed} bytes, only {free} "
            f"are free under {root}; nothing was extracted: free some space and run the download again"
        )


def _copy(member: _Member, dest: Path, archive: Path) -> None:
    """Write ``member`` to ``dest``, refusing it as soon as it yields more than its header declares."""
    again = "free some space and run the download again"
    with _writing(dest, again):
        dest.parent.mkdir(parents=True, exist_ok=True)
    with _reading(archive, member.name):
        src = member.open()
    written = 0
    with src, _writing(dest, again), open(dest, "xb") as out:
        while True:
            with _reading(archive, member.name):
                block = src.read(min(CHUNK, member.size + 1 - written))
            if not block:
                return
            written += len(block)
            if written > member.size:
                raise DownloadError(
                    f"archive {archive.name}: refusing member {member.name!r}: it holds more than the {member.size} "
                    "bytes its header declares; nothing was extracted"
                )
            out.write(block)


@contextlib.contextmanager
def _staged(archive: Path, root: Path) -> Iterator[tuple[list[_Member], Path, set[str]]]:
    """Check ``archive`` and extract its members not yet in ``root`` into a staging folder.

    Yields ``(members, staging folder, names staged)``; the staging folder is removed
    afterwards, whatever happens.
    """
    staging = root / (STAGING + archive.name)
    with contextlib.ExitStack() as stack:
        members = _members(archive, stack)
        _check_declared(members, archive)
        resolved = root.resolve()
        for m in members:
            if not (root / m.name).resolve().is_relative_to(resolved):
                raise DownloadError(f"archive {archive.name}: refusing member {m.name!r} (it leaves the dataset folder)")
        todo = [m for m in members if not m.is_dir and not (root / m.name).exists()]
        _check_space(root, sum(m.size for m in todo), archive)
        if staging.is_symlink():  # never write through a link
            staging.unlink()
        shutil.rmtree(staging, ignore_errors=True)  # left by a killed run
        try:
            for m in todo:
                _copy(m, staging / m.name, archive)
            yield members, staging, {m.name for m in todo}
        finally:
            shutil.rmtree(staging, ignore_errors=True)


def _place(members: list[_Member], staging: Path, staged: set[str], root: Path, ours: set[str]) -> tuple[list[str], list[str]]:
    """Move the staged members into ``root``, never over an existing path.

    Returns (extracted, kept-because-present) names; a present member named in ``ours``
    was placed by an earlier, interrupted run and counts as extracted.
    """
    extracted: list[str] = []
    skipped: list[str] = []
    for m in members:
        dest = root / m.name
        with _writing(dest, "fix the dataset folder and run the download again"):
            if m.is_dir:
                dest.mkdir(parents=True, exist_ok=True)
                continue
            if m.name not in staged:  # present before this run: placed by an interrupted run, or someone else's
                (extracted if m.name in ours else skipped).append(m.name)
                continue
            if dest.exists():  # appeared meanwhile: keep it
                skipped.append(m.name)
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging / m.name, dest)
        extracted.append(m.name)
    return extracted, skipped


def _unpack(archive: Path, root: Path, state: dict[str, Any], save: Callable[[], None]) -> None:
    """Extract ``archive`` into ``root`` and record in its ledger ``state`` what was extracted and kept."""
    ours = set(state.get("placing", ()))
    with _staged(archive, root) as (members, staging, staged):
        state["placing"] = sorted(ours | staged)
        save()
        extracted, skipped = _place(members, staging, staged, root, ours)
    state["extracted"] = extracted
    state["kept_existing"] = skipped
    state.pop("placing")
    save()


def _read_ledger(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {"format": 1, "records": {}}
    try:
        ledger = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DownloadError(f"{path}: unreadable download ledger ({exc}); move it aside to start afresh") from None
    if not isinstance(ledger, dict) or not isinstance(ledger.get("records"), dict):
        raise DownloadError(f"{path}: not an ispkit download ledger; move it aside to start afresh")
    return ledger


def download_record(
    root: str | os.PathLike[str],
    record: str = RECORD_ID,
    *,
    base_url: str | None = None,
    progress: Progress | None = None,
    timeout: float = 60,
) -> list[Path]:
    """Download (or resume, or verify) a Zenodo record into ``root`` and unpack its archives.

    Parameters
    ----------
    root
        Dataset root; the loaders of :mod:`ispkit.data.published` read it afterwards.
    record
        Zenodo record id (default: 5235536, the Raw-Microscopy / Raw-Drone record).
    base_url
        Server to ask (default: :data:`ZENODO`).
    progress
        Called as ``progress(done_bytes, total_bytes, key)`` while a file downloads.
    timeout
        Seconds to wait for the server on each request.

    Returns
    -------
    list of Path
        The paths of the record's files in ``root``.

    Raises
    ------
    DownloadError
        When the server cannot be reached, a transfer is cut (the ``.part`` file is kept
        for the next run), a file fails its checksum, an archive is corrupt, holds unsafe
        members or breaks a size limit, the disk is full, or the record changed since the
        checksums were pinned in the ledger.
    """
    root = Path(root)
    record = str(record)
    url = api_url(record, base_url)
    with _open(url, timeout, record, {"Accept": "application/json"}) as response:
        try:
            meta = json.loads(response.read().decode("utf-8"))
        except _NETWORK_ERRORS as exc:
            raise _network_error(f"reading {url}", exc, record) from None
        except ValueError as exc:
            raise DownloadError(f"{url}: the records API did not answer JSON ({exc})") from None
    files = _files(meta, url)
    root.mkdir(parents=True, exist_ok=True)
    ledger_path = root / LEDGER
    ledger = _read_ledger(ledger_path)
    entry = ledger["records"].setdefault(record, {"doi": f"10.5281/zenodo.{record}", "api": url, "files": {}})
    pinned = entry.setdefault("files", {})
    for item in files:
        old = pinned.get(item["key"])
        if old and (old.get("checksum") != item["checksum"] or old.get("size") != item["size"]):
            raise DownloadError(
                f"record {record} changed: {item['key']} is now {item['checksum']} ({item['size']} bytes), but "
                f"{ledger_path} pinned {old.get('checksum')} ({old.get('size')} bytes) on the first download. "
                "Download into a new folder, or move the ledger aside to accept the new version"
            )

    def save() -> None:
        atomic_write_text(ledger_path, json.dumps(ledger, indent=2, sort_keys=True) + "\n")

    paths = []
    for item in files:
        key = item["key"]
        target = root / key
        state = pinned.setdefault(key, {"size": item["size"], "checksum": item["checksum"], "url": item["url"]})
        if not _verified(target, item["size"], item["checksum"]):
            if target.exists():
                raise DownloadError(
                    f"{target} exists but is not {key} of record {record} ({item['checksum']}, {item['size']} bytes); "
                    "it is left untouched: move it aside and run the download again"
                )
            _fetch(item, target, timeout, record, progress)
            state["downloaded"] = True
            state.pop("extracted", None)
            save()
        paths.append(target)
        if _is_archive(key) and "extracted" not in state:
            _unpack(target, root, state, save)
    save()
    return paths
