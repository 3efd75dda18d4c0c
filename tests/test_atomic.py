"""ispkit.atomic: atomic, non-clobbering writes (temporary file + rename or link)."""

from __future__ import annotations

import errno
import os
import stat
import time

import numpy as np
import pytest

from ispkit.atomic import atomic_write, atomic_write_text
from ispkit.io import write_png


class Boom(BaseException):
    """Raised by a failing writer; a BaseException, like KeyboardInterrupt."""


class TestAtomicWrite:
    def test_writes_via_temporary_file_in_same_folder(self, tmp_path):
        seen = []

        def write(tmp):
            seen.append(tmp)
            assert tmp.parent == tmp_path
            assert tmp.name.startswith(".result.txt.") and tmp.name.endswith(".tmp")
            tmp.write_text("new", encoding="utf-8")

        path = atomic_write(tmp_path / "result.txt", write)
        assert path.read_text(encoding="utf-8") == "new"
        assert not seen[0].exists()
        assert [p.name for p in tmp_path.iterdir()] == ["result.txt"]

    @pytest.mark.parametrize("error", [RuntimeError, Boom])
    def test_failure_leaves_no_temp_file(self, tmp_path, error):
        def write(tmp):
            tmp.write_text("partial", encoding="utf-8")
            raise error("disk full")

        with pytest.raises(error, match="disk full"):
            atomic_write(tmp_path / "out.txt", write)
        assert list(tmp_path.iterdir()) == []

    @pytest.mark.parametrize("error", [RuntimeError, Boom])
    def test_failure_keeps_old_file(self, tmp_path, error):
        path = tmp_path / "out.txt"
        path.write_text("old contents", encoding="utf-8")

        def write(tmp):
            tmp.write_text("half", encoding="utf-8")
            raise error("interrupted")

        with pytest.raises(error):
            atomic_write(path, write)
        assert path.read_text(encoding="utf-8") == "old contents"
        assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]

    def test_overwrite_false_refuses_and_keeps_file(self, tmp_path):
        path = tmp_path / "out.txt"
        path.write_text("keep me", encoding="utf-8")
        calls = []
        with pytest.raises(FileExistsError, match=r"out\.txt exists"):
            atomic_write(path, calls.append, overwrite=False)
        assert calls == []
        assert path.read_text(encoding="utf-8") == "keep me"
        assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]

    def test_overwrite_false_writes_new_file(self, tmp_path):
        path = atomic_write_text(tmp_path / "new.txt", "hello ✓", overwrite=False)
        assert path.read_text(encoding="utf-8") == "hello ✓"

    def test_overwrite_true_replaces(self, tmp_path):
        path = tmp_path / "out.txt"
        path.write_text("old", encoding="utf-8")
        atomic_write_text(path, "new")
        assert path.read_text(encoding="utf-8") == "new"

    def test_accepts_str_path(self, tmp_path):
        path = atomic_write_text(str(tmp_path / "s.txt"), "x")
        assert path == tmp_path / "s.txt" and path.read_text(encoding="utf-8") == "x"

    @pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
    def test_permissions_follow_umask_like_a_plain_write(self, tmp_path):
        """The written file gets the permissions an ordinary ``open(path, "w")`` would give it,
        not mkstemp's private 0600 (other users must be able to read the output images)."""
        plain = tmp_path / "plain.txt"
        plain.write_text("x", encoding="utf-8")
        atomic = atomic_write_text(tmp_path / "atomic.txt", "x")
        png = write_png(tmp_path / "image.png", np.zeros((3, 2, 2)))
        expected = stat.S_IMODE(plain.stat().st_mode)
        assert stat.S_IMODE(atomic.stat().st_mode) == expected
        assert stat.S_IMODE(png.stat().st_mode) == expected


def _race(path, writes: int, monkeypatch=None):
    """Run ``writes`` threads that all write ``path`` with overwrite=False, each waiting for the
    others inside its write (after the early existence check), so that all publish at once."""
    import threading

    barrier = threading.Barrier(writes)
    outcomes: list[object] = [None] * writes

    def writer(i: int) -> None:
        def write(tmp):
            tmp.write_text(f"writer {i} " * 1000, encoding="utf-8")
            barrier.wait(timeout=10)

        try:
            atomic_write(path, write, overwrite=False)
            outcomes[i] = "ok"
        except FileExistsError as exc:
            outcomes[i] = exc

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(writes)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    return outcomes


class TestConcurrentWriters:
    """overwrite=False is decided atomically when the file is published, not by an earlier check."""

    @pytest.mark.parametrize("hard_links", [True, False])
    def test_exactly_one_of_concurrent_writers_succeeds(self, tmp_path, monkeypatch, hard_links):
        if not hard_links:  # a file system without link(2): the O_EXCL reservation decides

            def no_link(*args, **kwargs):
                raise OSError(errno.EPERM, "Operation not permitted")

            monkeypatch.setattr(os, "link", no_link)
        path = tmp_path / "result.txt"
        outcomes = _race(path, 4)
        assert outcomes.count("ok") == 1
        losers = [o for o in outcomes if o != "ok"]
        assert len(losers) == 3 and all(isinstance(o, FileExistsError) and "result.txt exists; refusing to overwrite it" in str(o) for o in losers)
        winner = outcomes.index("ok")
        assert path.read_text(encoding="utf-8") == f"writer {winner} " * 1000
        assert [p.name for p in tmp_path.iterdir()] == ["result.txt"]  # no temporary file left by anyone

    def test_concurrent_writers_in_processes(self, tmp_path):
        """Separate processes (no shared interpreter lock) racing for one name: one wins."""
        import subprocess
        import sys

        script = (
            "import sys, time\n"
            "from ispkit.atomic import atomic_write\n"
            "start = float(sys.argv[2])\n"
            "def write(tmp):\n"
            "    tmp.write_text(sys.argv[3] * 10000)\n"
            "    time.sleep(max(0.0, start - time.time()))\n"
            "try:\n"
            "    atomic_write(sys.argv[1], write, overwrite=False)\n"
            "    print('ok')\n"
            "except FileExistsError:\n"
            "    print('exists')\n"
        )
        path = tmp_path / "shared.bin"
        start = time.time() + 3.0
        procs = [subprocess.Popen([sys.executable, "-c", script, str(path), str(start), letter], stdout=subprocess.PIPE, text=True) for letter in "abc"]
        results = [p.communicate(timeout=60)[0].strip() for p in procs]
        assert sorted(results) == ["exists", "exists", "ok"]
        assert path.read_text() == "abc"[results.index("ok")] * 10000
        assert [p.name for p in tmp_path.iterdir()] == ["shared.bin"]

    def test_keyboard_interrupt_while_writing_removes_the_temporary_file(self, tmp_path):
        def write(tmp):
            tmp.write_bytes(b"x" * 100_000)
            raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            atomic_write(tmp_path / "big.bin", write, overwrite=False)
        assert list(tmp_path.iterdir()) == []

    def test_full_disk_names_the_file(self, tmp_path):
        class StreamError(RuntimeError):
            pass

        def write(tmp):
            try:
                raise OSError(errno.ENOSPC, "No space left on device")
            except OSError as exc:
                raise StreamError("stream failed") from exc

        with pytest.raises(OSError, match="No space left on device") as info:
            atomic_write(tmp_path / "out.bin", write)
        assert info.value.errno == errno.ENOSPC and info.value.filename == str(tmp_path / "out.bin")
        assert list(tmp_path.iterdir()) == []
