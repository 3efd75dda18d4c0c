"""Fixtures of the plugin's tests, and the isolation of the tests that create a napari viewer.

Isolation: every test that requests ``make_napari_viewer`` (directly or through
``viewer``) runs in a fresh interpreter, one ``python -m pytest`` child per test module,
never in the process that runs the rest of the suite. A library loaded by an earlier test
(torch's compiler stack, say) therefore cannot hide a crash that a user would meet, and a
crash (e.g. a segmentation fault) fails the test that was running, with the child's fatal
error report; the module's remaining tests then run in a new child. The child's reports
(``pytest_report_to_serializable``, written as JSON lines to the file named by
``NAPARI_DRIFT_TEST_REPORTS``) are replayed here, so ``-x``, ``-k``, the summary and junit
output behave as for in-process tests.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
import tifffile

from ispkit import Camera
from ispkit.io import write_raw


@pytest.fixture
def mosaic() -> np.ndarray:
    return np.random.default_rng(0).random((64, 48)) * 0.8 + 0.1


@pytest.fixture
def raw_tiff(tmp_path, mosaic):
    return write_raw(tmp_path / "cells.tiff", mosaic, "microscopy")


def write_dng(path, data: np.ndarray, pattern=(0, 1, 1, 2), white_level=4095):
    """A minimal Bayer DNG (ispkit has no DNG writer): one CFA page with DNG version and CFA tags."""
    tags = [
        (50706, "B", 4, (1, 4, 0, 0)),  # DNGVersion
        (33421, "H", 2, (2, 2)),  # CFARepeatPatternDim
        (33422, "B", 4, pattern),  # CFAPattern: 0 R, 1 G, 2 B
        (50717, "I", 1, (white_level,)),  # WhiteLevel
    ]
    tifffile.imwrite(path, data, photometric="cfa", extratags=tags, metadata=None)
    return path


@pytest.fixture
def raw_dng(tmp_path):
    data = np.random.default_rng(1).integers(0, 4096, (32, 40), dtype=np.uint16)
    return write_dng(tmp_path / "shot.dng", data), data


@pytest.fixture
def plain_tiff(tmp_path):
    path = tmp_path / "published.tiff"
    tifffile.imwrite(path, np.zeros((8, 8), np.uint16), metadata=None)
    return path


__all__ = ["Camera"]


@pytest.fixture(scope="session")
def tiny_microscopy_root(tmp_path_factory):
    from ispkit.data import synthesize_microscopy

    return synthesize_microscopy(tmp_path_factory.mktemp("micro"), n=30, seed=0, size=64, intensities=(1.0,), workers=1)


@pytest.fixture
def forensics_experiment(tmp_path, tiny_microscopy_root):
    """``forensics_experiment(name, lambdas, steps)``: the path of a forensics experiment on the tiny
    microscopy data, one unit per λ of the gamma subset (λ as YAML, ``.inf`` for ∞), ``steps``
    optimisation steps each."""

    def write(name: str, lambdas: str, steps: int) -> Path:
        path = tmp_path / f"{name}.yaml"
        path.write_text(
            f"""name: {name}
dataset: {{kind: microscopy, root: {tiny_microscopy_root}}}
pipeline: "bi,s,ga"
model: {{name: small_cnn, downsample: 2}}
training: {{epochs: 1, batch_size: 8}}
split: {{folds: 2, fold: 1}}
samples: 4
subsets: [gamma]
lambdas: [{lambdas}]
optimisation: {{steps: {steps}, batch_size: 4}}
""",
            encoding="utf-8",
        )
        return path

    return write


@pytest.fixture
def tiny_forensics(forensics_experiment):
    """A forensics experiment of three units (gamma at λ = 0, 100, ∞) that runs in a few seconds."""
    return forensics_experiment("tiny-forensics", "0, 100, .inf", 2)


@pytest.fixture(scope="session")
def dask_cluster():
    """A Dask cluster for the scheduler-address tests: ``(address, keys)``, ``keys`` the tasks it has finished.

    Its worker runs in this process (quick to start) and is reached over TCP, as a remote
    cluster is, by the child processes the plugin starts.
    """
    distributed = pytest.importorskip("distributed")
    keys: list[str] = []

    class Record(distributed.diagnostics.plugin.SchedulerPlugin):
        def transition(self, key, start, finish, *args, **kwargs):
            if finish == "memory":
                keys.append(str(key))

    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False, protocol="tcp", host="127.0.0.1", dashboard_address=":0") as cluster:
        cluster.scheduler.add_plugin(Record())
        yield cluster.scheduler_address, keys


def _qt_unavailable() -> str | None:
    """Why the Qt tests cannot run here, or ``None``."""
    try:
        import napari.qt  # noqa: F401
        import pytestqt  # noqa: F401
        import qtpy  # noqa: F401
    except Exception as exc:  # any import failure means no Qt
        return f"no Qt binding / pytest-qt / napari.qt: {exc}"
    if sys.platform.startswith("linux") and not os.environ.get("DISPLAY") and os.environ.get("QT_QPA_PLATFORM") != "offscreen":
        return "no display (run under xvfb-run -a)"
    return None


def pytest_collection_modifyitems(config, items):
    reason = _qt_unavailable()
    if reason is not None:
        for item in items:
            if item.get_closest_marker("qt"):
                item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture
def viewer(make_napari_viewer):
    """A napari viewer (Qt tests only)."""
    return make_napari_viewer()


@pytest.fixture
def errors(monkeypatch):
    """The messages of the error notifications shown during a test."""
    seen: list[str] = []
    from napari_drift.widgets import _common

    monkeypatch.setattr(_common.notifications, "show_error", lambda msg: seen.append(msg))
    return seen


# -- isolation: tests that create a viewer run in a fresh interpreter, one child per module --

REPORTS_ENV = "NAPARI_DRIFT_TEST_REPORTS"
_HERE = Path(__file__).parent
_PHASES = ("setup", "call", "teardown")
_results_key = pytest.StashKey[dict]()


def _isolated(item: pytest.Item) -> bool:
    """Whether ``item`` runs in a child: it creates a viewer, is one of ours, and is not skipped anyway."""
    return (
        REPORTS_ENV not in os.environ
        and "make_napari_viewer" in getattr(item, "fixturenames", ())
        and _HERE in Path(item.path).parents
        and item.get_closest_marker("skip") is None
    )


_CONFIG: list[pytest.Config] = []  # this session's config: pytest_runtest_logreport gets none


def pytest_configure(config):
    _CONFIG[:] = [config]
    config.stash[_results_key] = {}


def pytest_runtest_logreport(report):
    """In a child: append each report, serialised, to the file the parent reads back."""
    path = os.environ.get(REPORTS_ENV)
    if path:
        config = _CONFIG[0]
        data = config.hook.pytest_report_to_serializable(config=config, report=report)
        with open(path, "a", encoding="utf-8") as out:
            out.write(json.dumps(data) + "\n")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item, nextitem):
    """In the parent: replay the child's reports for an isolated item (running its module's child first)."""
    if not _isolated(item):
        return None
    results = item.config.stash[_results_key]
    if item.nodeid not in results:
        module = [i for i in item.session.items if i.path == item.path and _isolated(i)]
        results.update(_run_isolated(item.config, module))
    item.ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
    for report in results.pop(item.nodeid):
        item.ihook.pytest_runtest_logreport(report=report)
    # what pytest's own protocol does after an item: finish the fixtures and collectors that
    # ``nextitem`` does not share (those of the last test run here, in this process), so the
    # next test -- of another module or package -- starts from a clean setup state
    item.session._setupstate.teardown_exact(nextitem)
    item.ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
    return True


def _run_isolated(config, items: list) -> dict[str, list]:
    """Reports per node id of ``items``, run in as many fresh ``pytest`` children as crashes require."""
    results: dict[str, list] = {}
    pending = list(items)
    while pending:
        reports, returncode, output = _run_child(config, [i.nodeid for i in pending])
        for item in pending:
            results[item.nodeid] = reports.get(item.nodeid, [])
        unfinished = [i for i in pending if not _finished(results[i.nodeid])]
        # killed by a signal: the first unfinished test crashed, the rest run in a new child;
        # an exit code without results (a collection or usage error): they all fail with its output
        failed = unfinished[:1] if returncode < 0 else unfinished
        for item in failed:
            results[item.nodeid].append(_crash_report(item, results[item.nodeid], returncode, output))
        pending = unfinished[len(failed) :]
    return results


def _run_child(config, nodeids: list[str]) -> tuple[dict[str, list], int, str]:
    """Run ``nodeids`` in ``python -m pytest``; (their reports, exit code, combined output)."""
    fd, path = tempfile.mkstemp(prefix="napari-drift-reports-", suffix=".jsonl")
    os.close(fd)
    try:
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(config.rootpath)]
        if config.inipath is not None:
            command += ["-c", str(config.inipath)]
        env = {**os.environ, REPORTS_ENV: path}
        proc = subprocess.run([*command, *nodeids], cwd=config.rootpath, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace")
        reports: dict[str, list] = {}
        for line in Path(path).read_text(encoding="utf-8").splitlines():
            report = config.hook.pytest_report_from_serializable(config=config, data=json.loads(line))
            report.location = tuple(report.location)
            if isinstance(report.longrepr, list):  # JSON turned the skip tuple into a list
                report.longrepr = tuple(report.longrepr)
            reports.setdefault(report.nodeid, []).append(report)
        return reports, proc.returncode, proc.stdout
    finally:
        os.unlink(path)


def _finished(reports: list) -> bool:
    return any(r.when == "teardown" for r in reports)


def _crash_report(item, reports: list, returncode: int, output: str):
    """A failed report for the phase of ``item`` that never reported (the child died in it, or never ran it)."""
    from _pytest.reports import TestReport

    when = _PHASES[len({r.when for r in reports})] if len(reports) < len(_PHASES) else "teardown"
    start = output.find("Fatal Python error")
    excerpt = output[start:].split("\nExtension modules:")[0] if start >= 0 else output[-4000:]
    message = f"the fresh interpreter running this test ended with {_exit_status(returncode)} during {when}, without reporting a result; its output:\n{excerpt}"
    now = time.time()
    return TestReport(item.nodeid, item.location, {k: 1 for k in item.keywords}, "failed", message, when, start=now, stop=now)


def _exit_status(returncode: int) -> str:
    """``"exit code 3"`` or ``"killed by SIGSEGV"`` (kept here, not imported from the plugin under test,
    so that a crash is reported even when the plugin's own code is what broke)."""
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit code {returncode}"
