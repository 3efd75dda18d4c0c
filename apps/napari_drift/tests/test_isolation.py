"""The suite's isolation of viewer tests (conftest.py): a crash fails its own test, visibly, and nothing else.

A copy of this folder's ``conftest.py`` next to a module whose first viewer test kills
its interpreter with SIGSEGV is run by a ``pytest`` of its own: that pytest must survive,
report the crashed test as failed with the signal, run the module's next viewer test in a
new interpreter, and run the test without a viewer in its own process.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.qt  # the viewer tests need a display (conftest.py)

CRASHING_MODULE = """
import os
import signal

import pytest

pytestmark = pytest.mark.qt


def test_crashes(make_napari_viewer):
    os.kill(os.getpid(), signal.SIGSEGV)


def test_after_the_crash(make_napari_viewer):
    assert os.environ.get("NAPARI_DRIFT_TEST_REPORTS")  # in a fresh child


def test_without_a_viewer():
    assert "NAPARI_DRIFT_TEST_REPORTS" not in os.environ  # in the pytest process itself
"""


def test_a_crashing_viewer_test_fails_alone(tmp_path):
    shutil.copy(Path(__file__).with_name("conftest.py"), tmp_path / "conftest.py")
    (tmp_path / "test_crash.py").write_text(CRASHING_MODULE, encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-rA", "-p", "no:cacheprovider", "--rootdir", str(tmp_path), str(tmp_path)],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    out = proc.stdout
    assert proc.returncode == 1, f"the pytest process itself must end with 'tests failed' (1), got {proc.returncode}:\n{out[-3000:]}{proc.stderr[-2000:]}"
    assert "FAILED test_crash.py::test_crashes" in out and "killed by SIGSEGV during call" in out, out[-3000:]
    assert "PASSED test_crash.py::test_after_the_crash" in out, out[-3000:]
    assert "PASSED test_crash.py::test_without_a_viewer" in out, out[-3000:]
    assert "1 failed, 2 passed" in out, out[-3000:]
