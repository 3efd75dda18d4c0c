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


FIRST_MODULE = """
import pytest

pytestmark = pytest.mark.qt


@pytest.fixture(scope="module")
def opened(tmp_path_factory):
    marker = tmp_path_factory.getbasetemp() / "closed"
    yield
    marker.write_text("closed")


def test_in_this_process(opened):
    pass


def test_in_a_child(make_napari_viewer):
    pass
"""

NEXT_MODULE = """
def test_next_package_starts_clean(tmp_path_factory):
    # the first package's module fixture was finished when its last (isolated) test was replayed
    assert (tmp_path_factory.getbasetemp() / "closed").read_text() == "closed"
"""


def test_isolated_tests_last_in_a_package_leave_the_next_package_a_clean_setup_state(tmp_path):
    # a module ending with isolated tests, then a test of another package: pytest's setup state
    # must have been torn down to that test (else 'previous item was not torn down properly')
    first, second = tmp_path / "a", tmp_path / "b"
    for folder in (first, second):
        folder.mkdir()
        (folder / "__init__.py").write_text("", encoding="utf-8")
    shutil.copy(Path(__file__).with_name("conftest.py"), first / "conftest.py")
    (first / "test_first.py").write_text(FIRST_MODULE, encoding="utf-8")
    (second / "test_second.py").write_text(NEXT_MODULE, encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-rA", "-p", "no:cacheprovider", "--rootdir", str(tmp_path), str(first), str(second)],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    out = proc.stdout
    assert proc.returncode == 0, out[-3000:] + proc.stderr[-2000:]
    assert "3 passed" in out and "ERROR" not in out, out[-3000:]
