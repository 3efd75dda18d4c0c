"""ispkit.atomic: atomic, non-clobbering writes (temporary file + rename or link)."""

from __future__ import annotations

import os
import stat

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
        with pytest.raises(FileExistsError, match="out.txt exists"):
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

