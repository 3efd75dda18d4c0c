"""Download the published Raw-Microscopy / Raw-Drone record from Zenodo (standard library only).

:func:`download_record` asks Zenodo's records API (``{base_url}/api/records/{record}``)
for the record's file list, then, for each file:

* a file already in ``root`` with the size and checksum the API gives is kept;
* otherwise it is streamed to ``root/<key>.part``, resuming an interrupted download with
  an HTTP ``Range`` request (a server that ignores the range restarts it from 0), its
  checksum is verified and it is renamed into place. A checksum mismatch deletes the
  ``.part`` file and raises :class:`~ispkit.errors.DownloadError`;
* archives (``.zip``, ``.tar``, ``.tar.gz``, ``.tgz``) are extracted into ``root``; members
  with absolute paths, ``..`` or links are refused, and members that already exist are
  skipped: nothing in ``root`` is overwritten or deleted.

A ledger ``root/.ispkit-download.json`` records the record, the files, the checksums
the API gave on the first download and what was extracted. No checksum is invented:
they are pinned from the API on first download, and a later run whose API checksum
differs from the pinned one raises :class:`~ispkit.errors.DownloadError` (the record
changed). ``datasets/zenodo_5235536.yaml`` in the source tree describes the record and
its expected layout (the constants below must agree with it).
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

from ..errors import DownloadError
from ..io import atomic_write_text

__all__ = ["RECORD_ID", "DOI", "LICENSE", "ZENODO", "LAYOUT", "LEDGER", "api_url", "download_record"]

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
ARCHIVES = (".zip", ".tar", ".tar.gz", ".tgz")
CHUNK = 1 << 20

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
        return urllib.request.urlopen(request, timeout=timeout)  # noqa: S310 (http(s) URLs only, checked below)
    except urllib.error.HTTPError as exc:
        if exc.code == 416:
            raise
        raise _network_error(f"GET {url} answered HTTP {exc.code}", exc, record) from None
    except _NETWORK_ERRORS as exc:
        raise _network_error(f"GET {url}", exc, record) from None


def _safe_key(key: Any, where: str, what: str = "file name") -> str:
    if not isinstance(key, str) or not key or key.startswith(("/", "\\")) or ":" in key.split("/")[0]:
        raise DownloadError(f"{where}: refusing {what} {key!r} (absolute or empty)")
    parts = PurePosixPath(key.replace("\\", "/")).parts
    if ".." in parts:
        raise DownloadError(f"{where}: refusing {what} {key!r} (it leaves the dataset folder)")
    return "/".join(p for p in parts if p != ".")


def _files(meta: Any, url: str) -> list[dict[str, Any]]:
    """The record's files as ``{key, size, algorithm, digest, url}``, from either API shape."""
    files = meta.get("files") if isinstance(meta, dict) else None
    if isinstance(files, dict) and "entries" in files:
        files = files["entries"]
        if isinstance(files, dict):
            files = [{"key": k, **v} if isinstance(v, dict) else v for k, v in files.items()]
    if not isinstance(files, list) or not files:
        raise DownloadError(
            f"{url}: unexpected answer from the records API (expected 'files' as a non-empty list or "
            f"{{'entries': ...}}, got {type(files).__name__})"
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
    algorithm, digest = checksum.split(":", 1)
    return path.is_file() and path.stat().st_size == size and _hash_file(path, algorithm).hexdigest() == digest


def _fetch(item: dict[str, Any], target: Path, timeout: float, record: str, progress: Progress | None) -> None:
    """Stream one file to ``<target>.part`` (resuming), verify it and rename it to ``target``."""
    key, size, checksum = item["key"], item["size"], item["checksum"]
    algorithm, digest = checksum.split(":", 1)
    part = target.with_name(target.name + ".part")
    target.parent.mkdir(parents=True, exist_ok=True)
    have = part.stat().st_size if part.exists() else 0
    if have > size:
        part.unlink()
        have = 0
    for _attempt in range(2):
        if have >= size:
            break
        headers = {"Range": f"bytes={have}-"} if have else {}
        try:
            response = _open(item["url"], timeout, record, headers)
        except urllib.error.HTTPError:  # 416: the range does not fit what the server has; start over
            have = 0
            part.unlink(missing_ok=True)
            continue
        with response:
            status = response.status
            if have and status == 206:
                start = (response.headers.get("Content-Range") or "").removeprefix("bytes ").split("-")[0]
                if start != str(have):
                    have = 0  # not the range asked for: start over
                    continue
            elif status != 200 and not (have and status == 206):
                raise DownloadError(f"download failed: GET {item['url']} answered HTTP {status}. {_manual(record)}")
            else:
                have = 0  # 200: the whole file comes again
            done = have
            with open(part, "ab" if have else "wb") as f:
                if progress:
                    progress(done, size, key)
                while True:
                    try:
                        block = response.read(CHUNK)
                    except _NETWORK_ERRORS as exc:
                        raise _network_error(f"reading {item['url']} ({done} of {size} bytes kept in {part})", exc, record) from None
                    if not block:
                        break
                    f.write(block)
                    done += len(block)
                    if progress:
                        progress(done, size, key)
            have = done
            break
    got = _hash_file(part, algorithm).hexdigest() if part.exists() else ""
    if part.exists() and part.stat().st_size == size and got == digest:
        os.replace(part, target)
        return
    actual = part.stat().st_size if part.exists() else 0
    part.unlink(missing_ok=True)
    raise DownloadError(
        f"{key}: checksum mismatch (expected {checksum}, {size} bytes; got {algorithm}:{got}, {actual} bytes); "
        f"the partial file was deleted, run the download again or {_manual(record)}"
    )


def _is_archive(key: str) -> bool:
    return key.lower().endswith(ARCHIVES)


def _members(archive: Path, stack: contextlib.ExitStack) -> list[tuple[str, bool, Callable[[], Any]]]:
    """``(name, is_dir, open)`` for every member, refusing unsafe ones before anything is written."""
    where = f"archive {archive.name}"
    out: list[tuple[str, bool, Callable[[], Any]]] = []
    if archive.name.lower().endswith(".zip"):
        zf = stack.enter_context(zipfile.ZipFile(archive))
        for info in zf.infolist():
            name = _safe_key(info.filename.rstrip("/") or info.filename, where, "member")
            mode = info.external_attr >> 16
            if (mode & 0o170000) == 0o120000:
                raise DownloadError(f"{where}: refusing member {info.filename!r} (a symbolic link)")
            out.append((name, info.is_dir(), lambda info=info: zf.open(info)))
        return out
    tf = stack.enter_context(tarfile.open(archive))
    for member in tf.getmembers():
        name = _safe_key(member.name, where, "member")
        if not (member.isfile() or member.isdir()):
            raise DownloadError(f"{where}: refusing member {member.name!r} (not a plain file or folder)")
        out.append((name, member.isdir(), lambda member=member: tf.extractfile(member)))
    return out


def _extract(archive: Path, root: Path) -> tuple[list[str], list[str]]:
    """Extract ``archive`` into ``root``; returns (extracted, skipped-because-present) member names."""
    with contextlib.ExitStack() as stack:
        try:
            members = _members(archive, stack)
        except (zipfile.BadZipFile, tarfile.TarError) as exc:
            raise DownloadError(f"{archive}: not a readable archive ({exc})") from None
        return _write_members(members, archive, root)


def _write_members(members: list[tuple[str, bool, Callable[[], Any]]], archive: Path, root: Path) -> tuple[list[str], list[str]]:
    resolved_root = root.resolve()
    for name, _, _ in members:
        if not (root / name).resolve().is_relative_to(resolved_root):
            raise DownloadError(f"archive {archive.name}: refusing member {name!r} (it leaves the dataset folder)")
    extracted, skipped = [], []
    for name, is_dir, open_member in members:
        dest = root / name
        if is_dir:
            dest.mkdir(parents=True, exist_ok=True)
            continue
        if dest.exists():
            skipped.append(name)
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
        try:
            with os.fdopen(fd, "wb") as out, open_member() as src:
                shutil.copyfileobj(src, out, CHUNK)
            if dest.exists():  # appeared meanwhile: keep it
                os.unlink(tmp)
                skipped.append(name)
                continue
            os.replace(tmp, dest)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        extracted.append(name)
    return extracted, skipped


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
        When the server cannot be reached, a file fails its checksum, an archive holds
        unsafe members, or the record changed since the checksums were pinned in the ledger.
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
            extracted, skipped = _extract(target, root)
            state["extracted"] = extracted
            state["kept_existing"] = skipped
            save()
    save()
    return paths
