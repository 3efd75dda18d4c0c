"""Dataset download (ispkit.data.download) against a local HTTP server on loopback."""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import re
import shutil
import socket
import tarfile
import threading
import warnings
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

import pytest
import yaml

import ispkit.data.download as dl
from ispkit.cli import main
from ispkit.data.download import DOI, download_record
from ispkit.data.published import RawDroneClassification, RawDroneSegmentation, RawMicroscopy
from ispkit.data.synthesize import synthesize_microscopy
from ispkit.errors import DownloadError, ISPKitError

REPO = Path(__file__).resolve().parents[2]
RECORD = "5235536"


def md5(data: bytes) -> str:
    return "md5:" + hashlib.md5(data).hexdigest()


def checksum(data: bytes, algorithm: str) -> str:
    return f"{algorithm}:" + hashlib.new(algorithm, data).hexdigest()


class State:
    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.checksums: dict[str, str] = {}  # overrides of what the API claims
        self.sizes: dict[str, int] = {}  # overrides of the sizes the API claims
        self.cut: dict[str, int] = {}  # close the connection after this many body bytes (once)
        self.algorithm = "md5"
        self.lengths = True  # False: no Content-Length, the body ends when the connection closes
        self.log: list[tuple[str, str | None]] = []
        self.ranges = True
        self.shape = "list"
        self.url = ""

    def meta(self) -> dict:
        files = [
            {
                "key": k,
                "size": self.sizes.get(k, len(v)),
                "checksum": self.checksums.get(k, checksum(v, self.algorithm)),
                "links": {"self": f"{self.url}/files/{k}"},
            }
            for k, v in self.files.items()
        ]
        if self.shape == "entries":
            return {"id": RECORD, "files": {"entries": {f["key"]: f for f in files}}}
        return {"id": RECORD, "files": files}

    def file_requests(self) -> list[tuple[str, str | None]]:
        return [entry for entry in self.log if entry[0].startswith("/files/")]


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:  # keep test output quiet
        pass

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None, cut: int | None = None) -> None:
        """Answer ``body``, announcing all of it but sending only ``cut`` bytes when given."""
        self.send_response(status)
        if self.server.state.lengths:  # type: ignore[attr-defined]
            self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body if cut is None else body[:cut])

    def do_GET(self) -> None:
        state: State = self.server.state  # type: ignore[attr-defined]
        state.log.append((self.path, self.headers.get("Range")))
        if self.path == f"/api/records/{RECORD}":
            self._send(200, json.dumps(state.meta()).encode(), {"Content-Type": "application/json"})
        elif self.path.startswith("/files/") and unquote(self.path[len("/files/") :]) in state.files:
            key = unquote(self.path[len("/files/") :])
            data, cut = state.files[key], state.cut.pop(key, None)
            wanted = self.headers.get("Range")
            if wanted and state.ranges:
                start = int(wanted.removeprefix("bytes=").split("-")[0])
                self._send(206, data[start:], {"Content-Range": f"bytes {start}-{len(data) - 1}/{len(data)}"}, cut)
            else:
                self._send(200, data, cut=cut)
        else:
            self._send(404, b"not found")


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state = State()
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.state = state  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield state
    httpd.shutdown()
    httpd.server_close()
    thread.join()


@pytest.fixture(scope="module")
def dataset_zip(tmp_path_factory) -> bytes:
    src = tmp_path_factory.mktemp("src")
    synthesize_microscopy(src, n=6, size=64, intensities=(1.0,), workers=1)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for path in sorted((src / "microscopy").rglob("*")):
            zf.write(path, path.relative_to(src).as_posix())
    return buffer.getvalue()


@pytest.fixture
def record(server, dataset_zip):
    server.files = {"microscopy.zip": dataset_zip, "README.txt": b"Raw-Microscopy and Raw-Drone\n" * 10}
    return server


def test_full_download_extracts_and_loads(record, tmp_path):
    seen = []
    paths = download_record(tmp_path, base_url=record.url, progress=lambda done, total, key: seen.append((done, total, key)))
    assert paths == [tmp_path / "microscopy.zip", tmp_path / "README.txt"]
    assert (tmp_path / "README.txt").read_bytes() == record.files["README.txt"]
    data = RawMicroscopy(tmp_path, intensity=1.0, min_samples=1)
    assert len(data) == 6 and data.synthetic
    raw, _ = data[0]
    assert tuple(raw.shape) == (1, 64, 64)
    assert (len(record.files["README.txt"]), len(record.files["README.txt"]), "README.txt") in seen
    ledger = json.loads((tmp_path / ".ispkit-download.json").read_text())
    files = ledger["records"][RECORD]["files"]
    assert ledger["records"][RECORD]["doi"] == DOI
    assert {k: v["checksum"] for k, v in files.items()} == {k: md5(v) for k, v in record.files.items()}
    assert "microscopy/labels/Ma190c_annotations.dat" in files["microscopy.zip"]["extracted"]
    assert not list(tmp_path.rglob("*.part")) and not list(tmp_path.rglob("*.tmp"))


def test_resume_sends_a_range_request(record, tmp_path):
    data = record.files["microscopy.zip"]
    half = len(data) // 2
    (tmp_path / "microscopy.zip.part").write_bytes(data[:half])
    download_record(tmp_path, base_url=record.url)
    assert ("/files/microscopy.zip", f"bytes={half}-") in record.file_requests()
    assert (tmp_path / "microscopy.zip").read_bytes() == data
    assert not (tmp_path / "microscopy.zip.part").exists()
    assert len(RawMicroscopy(tmp_path, intensity=1.0, min_samples=1)) == 6


def test_resume_restarts_when_the_server_ignores_ranges(record, tmp_path):
    record.ranges = False
    data = record.files["microscopy.zip"]
    (tmp_path / "microscopy.zip.part").write_bytes(data[:100])
    download_record(tmp_path, base_url=record.url)
    assert (tmp_path / "microscopy.zip").read_bytes() == data


def test_checksum_mismatch_raises_and_leaves_no_file(record, tmp_path):
    record.checksums["README.txt"] = "md5:" + "0" * 32
    with pytest.raises(DownloadError, match=r"README\.txt: checksum mismatch"):
        download_record(tmp_path, base_url=record.url)
    assert not (tmp_path / "README.txt").exists()
    assert not (tmp_path / "README.txt.part").exists()
    assert (tmp_path / "microscopy.zip").exists()  # the good file before it stays


def test_unreachable_server_names_the_doi(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(DownloadError, match="download failed") as info:
        download_record(tmp_path, base_url=f"http://127.0.0.1:{port}", timeout=5)
    assert DOI in str(info.value) and "docs/datasets.md" in str(info.value) and "by hand" in str(info.value)
    assert isinstance(info.value, ISPKitError)


def test_second_run_downloads_nothing(record, tmp_path):
    download_record(tmp_path, base_url=record.url)
    record.log.clear()
    paths = download_record(tmp_path, base_url=record.url)
    assert record.file_requests() == []
    assert len(paths) == 2


def test_user_files_are_never_overwritten_or_deleted(record, tmp_path):
    labels = tmp_path / "microscopy" / "labels" / "Ma190c_annotations.dat"
    labels.parent.mkdir(parents=True)
    labels.write_text("my own labels\n")
    (tmp_path / "mine.txt").write_text("keep me")
    download_record(tmp_path, base_url=record.url)
    assert labels.read_text() == "my own labels\n"
    assert (tmp_path / "mine.txt").read_text() == "keep me"
    ledger = json.loads((tmp_path / ".ispkit-download.json").read_text())
    assert "microscopy/labels/Ma190c_annotations.dat" in ledger["records"][RECORD]["files"]["microscopy.zip"]["kept_existing"]


def test_a_different_file_under_a_record_name_is_left_alone(record, tmp_path):
    (tmp_path / "README.txt").write_text("mine, not Zenodo's")
    with pytest.raises(DownloadError, match="left untouched"):
        download_record(tmp_path, base_url=record.url)
    assert (tmp_path / "README.txt").read_text() == "mine, not Zenodo's"


def _zip_of(members: dict[str, bytes] | list[tuple[str, bytes]], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(buffer, "w", compression) as zf:
        warnings.simplefilter("ignore")  # "Duplicate name" when a test wants one
        for name, data in members.items() if isinstance(members, dict) else members:
            zf.writestr(name, data)
    return buffer.getvalue()


def _tgz_of(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _disk_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def _ledger(root: Path) -> dict:
    return json.loads((root / ".ispkit-download.json").read_text())["records"][RECORD]["files"]


def _evil_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("microscopy/ok.txt", "fine")
        zf.writestr("../evil", "outside")
    return buffer.getvalue()


def _evil_tar() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tf:
        for name in ("microscopy/ok.txt", "/tmp/evil-absolute"):
            info = tarfile.TarInfo(name)
            info.size = 4
            tf.addfile(info, io.BytesIO(b"evil"))
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("key", "make", "why"),
    [
        ("evil.zip", _evil_zip, "it leaves the dataset folder"),
        ("evil.tar.gz", _evil_tar, "absolute or empty"),
        ("twice.zip", lambda: _zip_of([("microscopy/ok.txt", b"fine"), ("microscopy/ok.txt", b"evil")]), "appears twice"),
        ("clash.zip", lambda: _zip_of({"microscopy/ok.txt": b"fine", "microscopy/ok.txt/x": b"evil"}), "is a file member"),
        ("own.zip", lambda: _zip_of({"microscopy/ok.txt": b"fine", ".ispkit-download.json": b"{}"}), "ispkit's own"),
        ("newline.zip", lambda: _zip_of({"microscopy/ok.txt": b"fine", "micro\nscopy/x": b"evil"}), "control character"),
    ],
)
def test_unsafe_archive_members_are_refused(server, tmp_path, key, make, why):
    server.files = {key: make()}
    root = tmp_path / "root"
    with pytest.raises(DownloadError, match=f"refusing member .*{re.escape(why)}"):
        download_record(root, base_url=server.url)
    assert not (tmp_path / "evil").exists()
    assert not (root / "microscopy" / "ok.txt").exists()  # nothing extracted before the check


def test_changed_record_is_refused(record, tmp_path):
    download_record(tmp_path, base_url=record.url)
    record.files["README.txt"] = b"a new version"
    with pytest.raises(DownloadError, match="record 5235536 changed"):
        download_record(tmp_path, base_url=record.url)


def test_entries_shape_and_bad_answers(record, tmp_path):
    record.shape = "entries"
    download_record(tmp_path, base_url=record.url)
    assert (tmp_path / "README.txt").exists()
    record.files = {}
    with pytest.raises(DownloadError, match="unexpected answer from the records API"):
        download_record(tmp_path / "other", base_url=record.url)


def test_loader_download_flag(record, tmp_path, monkeypatch):
    monkeypatch.setattr(dl, "ZENODO", record.url)
    with pytest.raises(FileNotFoundError, match="download=True"):
        RawMicroscopy(tmp_path, intensity=1.0, min_samples=1)
    data = RawMicroscopy(tmp_path, intensity=1.0, min_samples=1, download=True)
    assert len(data) == 6
    record.log.clear()
    RawMicroscopy(tmp_path, intensity=1.0, min_samples=1, download=True)
    assert record.log == []  # present: the server is not asked


@pytest.mark.parametrize("loader", [RawDroneSegmentation, RawDroneClassification])
def test_drone_loaders_download_when_missing(loader, tmp_path, monkeypatch):
    calls = []

    def fake(root, *args, **kwargs):
        calls.append(Path(root))
        raise DownloadError("no network here")

    monkeypatch.setattr(dl, "download_record", fake)
    with pytest.raises(DownloadError):
        loader(tmp_path, download=True)
    assert calls == [tmp_path]
    with pytest.raises(FileNotFoundError):
        loader(tmp_path)  # without the flag: no download
    assert calls == [tmp_path]


def test_cli_download(record, tmp_path, capsys):
    assert main(["data", "download", "--root", str(tmp_path), "--base-url", record.url]) == 0
    out = capsys.readouterr().out
    assert "README.txt: 100%" in out and "2 file(s) in place" in out
    assert (tmp_path / "microscopy" / "labels" / "Ma190c_annotations.dat").exists()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert main(["data", "download", "--root", str(tmp_path / "x"), "--base-url", f"http://127.0.0.1:{port}"]) == 2
    assert DOI in capsys.readouterr().err


def test_yaml_agrees_with_the_constants():
    spec = yaml.safe_load((REPO / "datasets" / "zenodo_5235536.yaml").read_text(encoding="utf-8"))
    assert spec["record"] == dl.RECORD_ID and spec["doi"] == dl.DOI and spec["license"] == dl.LICENSE
    assert spec["api"] == dl.api_url(dl.RECORD_ID, "https://zenodo.org")
    assert tuple(spec["layout"]) == dl.LAYOUT
    assert "checksum" not in spec and "files" not in spec


# -- interrupted and wrong transfers -----------------------------------------------------


def test_a_cut_transfer_keeps_the_part_and_the_next_run_resumes_it(record, tmp_path):
    data = record.files["microscopy.zip"]
    half = len(data) // 2
    record.cut["microscopy.zip"] = half
    with pytest.raises(DownloadError, match=f"microscopy.zip: the transfer was cut after {half} of {len(data)} bytes") as info:
        download_record(tmp_path, base_url=record.url)
    assert "run the download again to resume" in str(info.value) and "checksum" not in str(info.value)
    assert (tmp_path / "microscopy.zip.part").read_bytes() == data[:half]
    assert not (tmp_path / "microscopy.zip").exists()
    record.log.clear()
    download_record(tmp_path, base_url=record.url)
    assert record.file_requests()[0] == ("/files/microscopy.zip", f"bytes={half}-")  # the header the server received
    assert (tmp_path / "microscopy.zip").read_bytes() == data
    assert not list(tmp_path.rglob("*.part"))
    assert len(RawMicroscopy(tmp_path, intensity=1.0, min_samples=1)) == 6


def test_a_resumed_transfer_cut_again_keeps_what_arrived(record, tmp_path):
    data = record.files["microscopy.zip"]
    third = len(data) // 3
    (tmp_path / "microscopy.zip.part").write_bytes(data[:third])
    record.cut["microscopy.zip"] = third
    with pytest.raises(DownloadError, match=f"cut after {2 * third} of {len(data)} bytes"):
        download_record(tmp_path, base_url=record.url)
    assert record.file_requests() == [("/files/microscopy.zip", f"bytes={third}-")]
    assert (tmp_path / "microscopy.zip.part").read_bytes() == data[: 2 * third]


def test_a_part_longer_than_the_file_restarts_from_zero(record, tmp_path):
    data = record.files["README.txt"]
    (tmp_path / "README.txt.part").write_bytes(data + b"stale tail")
    download_record(tmp_path, base_url=record.url)
    assert [r for r in record.file_requests() if r[0] == "/files/README.txt"] == [("/files/README.txt", None)]
    assert (tmp_path / "README.txt").read_bytes() == data


def test_a_server_offering_another_size_than_the_record_is_refused(record, tmp_path):
    size = len(record.files["README.txt"])
    record.sizes["README.txt"] = size + 10
    with pytest.raises(DownloadError, match=f"README.txt: GET .* offers {size} bytes but the record declares {size + 10}"):
        download_record(tmp_path, base_url=record.url)
    assert not (tmp_path / "README.txt.part").exists() and not (tmp_path / "README.txt").exists()


def test_a_body_longer_than_declared_is_cut_off_and_deleted(record, tmp_path):
    record.lengths = False  # the body ends when the server closes: only the record's size bounds it
    size = len(record.files["README.txt"])
    record.sizes["README.txt"] = size - 100
    with pytest.raises(DownloadError, match=f"README.txt: checksum mismatch .*got md5:[0-9a-f]+, more than {size - 100} bytes"):
        download_record(tmp_path, base_url=record.url)
    assert not (tmp_path / "README.txt.part").exists() and not (tmp_path / "README.txt").exists()


def test_an_empty_file_in_the_record_downloads(server, tmp_path):
    server.files = {"empty.txt": b"", "README.txt": b"x"}
    download_record(tmp_path, base_url=server.url)
    assert (tmp_path / "empty.txt").read_bytes() == b"" and (tmp_path / "README.txt").read_bytes() == b"x"


# -- checksums and file keys from the records API ----------------------------------------


@pytest.mark.parametrize("algorithm", ["md5", "sha256"])
def test_a_wrong_file_of_the_right_size_is_refused(record, tmp_path, algorithm):
    record.algorithm = algorithm
    data = record.files["README.txt"]
    download_record(tmp_path, base_url=record.url)
    assert _ledger(tmp_path)["README.txt"]["checksum"] == checksum(data, algorithm)
    wrong = data[:-1] + b"?"  # same size, other content
    (tmp_path / "README.txt").write_bytes(wrong)
    with pytest.raises(DownloadError, match=f"README.txt exists but is not README.txt of record {RECORD} \\({algorithm}:"):
        download_record(tmp_path, base_url=record.url)
    assert (tmp_path / "README.txt").read_bytes() == wrong


@pytest.mark.parametrize("algorithm", ["md5", "sha256"])
def test_a_complete_part_with_another_checksum_is_deleted(record, tmp_path, algorithm):
    record.algorithm = algorithm
    data = record.files["README.txt"]
    (tmp_path / "README.txt.part").write_bytes(data[:-1] + b"?")
    with pytest.raises(DownloadError, match=f"README.txt: checksum mismatch \\(expected {algorithm}:.*; got {algorithm}:"):
        download_record(tmp_path, base_url=record.url)
    assert not (tmp_path / "README.txt.part").exists() and not (tmp_path / "README.txt").exists()
    download_record(tmp_path, base_url=record.url)
    assert (tmp_path / "README.txt").read_bytes() == data


HOSTILE_KEYS = [
    "../x",
    "a/../../x",
    "/etc/x",
    "C:\\x",
    "C:x",
    "a\\..\\..\\x",
    "\\\\host\\share\\x",
    "",
    ".",
    "a\x00b",
    "a\nb",
    ".ispkit-download.json",
]


@pytest.mark.parametrize("key", HOSTILE_KEYS)
def test_hostile_file_keys_from_the_api_are_refused(server, tmp_path, key):
    server.files = {"good.txt": b"fine", key: b"outside"}
    root = tmp_path / "a" / "root"
    with pytest.raises(DownloadError, match="refusing file name"):
        download_record(root, base_url=server.url)
    assert server.file_requests() == []  # every key is checked before anything is fetched
    assert list(tmp_path.iterdir()) == []


# -- corrupt archives, bombs, disk space -------------------------------------------------


def _bad_crc_zip() -> bytes:
    """The first member is intact; the second one's stored bytes no longer match its CRC."""
    data = bytearray(_zip_of({"microscopy/ok.txt": b"fine", "microscopy/bad.txt": b"some text " * 100}, zipfile.ZIP_STORED))
    data[data.index(b"some text")] ^= 0xFF
    return bytes(data)


def _payload(seed: int) -> dict[str, bytes]:
    rng = random.Random(seed)
    return {f"microscopy/f{i}.raw": rng.randbytes(3000) + bytes(3000) for i in range(3)}


CORRUPT = {
    "bad-crc.zip": _bad_crc_zip,
    "truncated.zip": lambda: _zip_of(_payload(0))[:-30],
    "truncated.tar.gz": lambda: (lambda data: data[: len(data) // 2])(_tgz_of(_payload(0))),
    "garbage.tgz": lambda: b"not an archive at all\n" * 10,
}


@pytest.mark.parametrize("key", sorted(CORRUPT))
def test_a_corrupt_archive_raises_download_error_and_extracts_nothing(server, tmp_path, key):
    server.files = {key: CORRUPT[key]()}
    for _run in range(2):  # a rerun sees the same state, not a half extraction
        with pytest.raises(DownloadError, match=f"archive .*{re.escape(key)}: corrupt or unreadable"):
            download_record(tmp_path, base_url=server.url)
        assert sorted(p.name for p in tmp_path.rglob("*")) == sorted([key, ".ispkit-download.json"])
        assert "extracted" not in _ledger(tmp_path)[key]


def _damaged(data: bytes, rng: random.Random) -> bytes:
    out = bytearray(data)
    if rng.random() < 0.5:
        return bytes(out[: rng.randrange(len(out))])
    for _ in range(rng.randrange(1, 5)):
        out[rng.randrange(len(out))] ^= 1 << rng.randrange(8)
    return bytes(out)


def test_randomly_damaged_archives_give_download_error_or_a_clean_extraction(server, tmp_path):
    rng = random.Random(0)
    for key, good in (("a.zip", _zip_of(_payload(1))), ("a.tar.gz", _tgz_of(_payload(1)))):
        for trial in range(40):
            server.files = {key: _damaged(good, rng)}
            root = tmp_path / f"{trial}-{key}"
            try:
                download_record(root, base_url=server.url)
            except DownloadError:
                assert sorted(p.name for p in root.rglob("*")) == sorted([key, ".ispkit-download.json"])
            assert not list(root.glob(".ispkit-extract-*"))


def test_a_zip_bomb_is_refused_before_anything_is_written(server, tmp_path):
    bomb = _zip_of({"microscopy/ok.txt": b"fine", "microscopy/zeros.raw": bytes(50 << 20)})
    assert len(bomb) < 100_000  # about 1030:1
    server.files = {"bomb.zip": bomb}
    pattern = r"archive bomb.zip: refusing member 'microscopy/zeros.raw': it declares 52428800 bytes from \d+ compressed \(more than 200:1"
    with pytest.raises(DownloadError, match=pattern):
        download_record(tmp_path, base_url=server.url)
    assert not (tmp_path / "microscopy").exists()
    assert _disk_bytes(tmp_path) < len(bomb) + 10_000  # the archive and the ledger, nothing extracted


def test_an_archive_declaring_too_much_in_total_is_refused(server, tmp_path):
    server.files = {"bomb.tar.gz": _tgz_of({f"microscopy/zeros{i}.raw": bytes(1 << 20) for i in range(4)})}
    pattern = (
        r"archive bomb.tar.gz: refusing member 'microscopy/zeros1.raw': with it the members declare 2097152 bytes, "
        r"more than 1048576 \(20 × the archive's \d+ bytes"
    )
    with pytest.raises(DownloadError, match=pattern):
        download_record(tmp_path, base_url=server.url)
    assert not (tmp_path / "microscopy").exists()


def test_a_member_yielding_more_than_its_header_declares_is_cut_off(tmp_path):
    member = dl._Member("m.raw", False, 10, None, lambda: io.BytesIO(b"x" * (5 << 20)))
    with pytest.raises(DownloadError, match=r"refusing member 'm\.raw': it holds more than the 10 bytes its header declares"):
        dl._copy(member, tmp_path / "m.raw", tmp_path / "a.zip")
    assert (tmp_path / "m.raw").stat().st_size <= 10


def test_extraction_checks_free_disk_space_first(record, tmp_path, monkeypatch):
    real = shutil.disk_usage
    monkeypatch.setattr(shutil, "disk_usage", lambda path: real(path)._replace(free=1000))
    pattern = r"not enough free space to extract microscopy.zip: its new members declare \d+ bytes, only 1000 are free"
    with pytest.raises(DownloadError, match=pattern):
        download_record(tmp_path, base_url=record.url)
    assert not (tmp_path / "microscopy").exists()


def test_members_placed_by_an_interrupted_run_count_as_extracted(record, tmp_path, monkeypatch):
    real, moved = os.replace, []

    def replace(src, dst):
        if ".ispkit-extract-" in str(src):
            moved.append(Path(dst))
            if len(moved) == 3:
                raise KeyboardInterrupt  # killed while moving members into place
        return real(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(KeyboardInterrupt):
        download_record(tmp_path, base_url=record.url)
    monkeypatch.undo()
    assert moved[0].exists() and not list(tmp_path.glob(".ispkit-extract-*"))
    download_record(tmp_path, base_url=record.url)
    with zipfile.ZipFile(tmp_path / "microscopy.zip") as zf:
        files = [info.filename for info in zf.infolist() if not info.is_dir()]
    state = _ledger(tmp_path)["microscopy.zip"]
    assert state["extracted"] == files and state["kept_existing"] == [] and "placing" not in state
