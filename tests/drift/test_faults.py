"""Fault injection: a small study killed at many points, interrupted, run twice, out of disk.

Each run is a real ``ispkit synthesis run`` in a fresh interpreter (``fault_driver.py``)
killed with ``SIGKILL`` at a chosen point or at a random instant. After every fault the
same command is run again, and it must end exactly as an undisturbed run does:
byte-identical ``results.json``, one study run ``FINISHED`` and each unit logged once.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

DRIVER = Path(__file__).with_name("fault_driver.py")
UNITS = ["bi,s,me/fold0", "bi,s,me/fold1"]


@pytest.fixture(scope="module")
def experiment(tiny, tmp_path_factory):
    """The tiny synthesis experiment with one train pipeline, two epochs and one torch thread, as a file."""
    changes = {"name": "tiny-faults", "seed": 0, "threads": 1, "pipelines": {"train": ["bi,s,me"]}, "training": {"epochs": 2}}
    return tiny.write("synthesis", tmp_path_factory.mktemp("faults") / "tiny.yaml", **changes)


def run(experiment: Path, out: Path, fault: str = "", **popen) -> subprocess.CompletedProcess | subprocess.Popen:
    env = {**os.environ, "ISPKIT_TEST_FAULT": fault, "PYTHONWARNINGS": "ignore"}
    env.update(popen.pop("env", {}))
    command = [sys.executable, str(DRIVER), "synthesis", "run", str(experiment), "--out", str(out)]
    if popen.pop("background", False):
        return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def reference(experiment, tmp_path_factory):
    """``results.json`` of an undisturbed run."""
    out = tmp_path_factory.mktemp("reference") / "run"
    done = run(experiment, out)
    assert done.returncode == 0, done.stderr
    return (out / "results.json").read_bytes()


def store_runs(out: Path) -> tuple[list, list]:
    """(study runs, unit runs) of the local store: active runs only, as MLflow shows them."""
    import mlflow.tracking

    client = mlflow.tracking.MlflowClient(f"sqlite:///{out / 'mlflow.db'}")
    (experiment,) = [e for e in client.search_experiments() if e.name == "tiny-faults"]
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    studies = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    units = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    return studies, units


def assert_consistent(out: Path, reference: bytes) -> None:
    assert (out / "results.json").read_bytes() == reference
    studies, units = store_runs(out)
    assert [s.info.status for s in studies] == ["FINISHED"]
    assert sorted(u.data.tags["ispkit.unit"] for u in units) == UNITS  # each unit exactly once
    for unit in units:
        assert unit.info.status == "FINISHED" and unit.data.tags["mlflow.parentRunId"] == studies[0].info.run_id
        assert {"loss", "val_accuracy", "test_accuracy/me_u_ga"} <= set(unit.data.metrics)
    assert "in_distribution" in studies[0].data.metrics


def test_killed_at_every_point_then_rerun_ends_as_an_undisturbed_run(experiment, reference, tmp_path):
    out = tmp_path / "run"
    # each point is reached by the run after the previous kill: store creation, the study run
    # before it is remembered, a unit's result before its logging, a unit half logged, mid-epoch
    for fault in ("store:1", "tracking_json:1", "result_not_logged:1", "mid_logging:1", "mid_epoch:3"):
        killed = run(experiment, out, fault)
        assert killed.returncode == -signal.SIGKILL, f"{fault} was not reached: {killed.returncode}\n{killed.stderr[-2000:]}"
    assert not (out / "results.json").exists()
    assert (out / "units" / "bi,s,me" / "fold1" / "train_state.pt").exists()  # killed in epoch 2 of the second unit
    final = run(experiment, out)
    assert final.returncode == 0, final.stderr
    assert "fold0: done earlier, read back" in final.stdout and "resuming after epoch 1" in final.stdout
    assert_consistent(out, reference)
    assert not list(out.glob("mlflow.db.creating*"))


def test_killed_at_random_instants(experiment, reference, tmp_path):
    rng = random.Random(13)
    out = tmp_path / "run"
    for _ in range(3):
        process = run(experiment, out, background=True)
        time.sleep(rng.uniform(2.0, 12.0))
        process.send_signal(signal.SIGKILL)
        process.communicate()
    final = run(experiment, out)
    assert final.returncode == 0, final.stderr
    assert_consistent(out, reference)


def test_ctrl_c_prints_one_line_marks_the_study_killed_and_exits_130(experiment, reference, tmp_path):
    out = tmp_path / "run"
    interrupted = run(experiment, out, "mid_epoch:5:INT")  # epoch 2 of the second unit
    assert interrupted.returncode == 130, interrupted.stderr
    assert "Traceback" not in interrupted.stderr
    lines = [line for line in interrupted.stderr.splitlines() if line.strip()]
    assert lines == [
        f"ispkit: interrupted: 1 of 2 units finished and saved in {out} (the running unit keeps its last finished epoch); run the same command to resume"
    ]
    studies, units = store_runs(out)
    assert [s.info.status for s in studies] == ["KILLED"] and [u.data.tags["ispkit.unit"] for u in units] == ["bi,s,me/fold0"]
    final = run(experiment, out)
    assert final.returncode == 0, final.stderr
    assert_consistent(out, reference)


def test_a_second_process_is_refused_and_a_dead_holder_is_taken_over(experiment, reference, tmp_path):
    out, pause = tmp_path / "run", tmp_path / "paused"
    first = run(experiment, out, "mid_epoch:2:PAUSE", env={"ISPKIT_TEST_PAUSE_FILE": str(pause)}, background=True)
    try:
        deadline = time.monotonic() + 300
        while not pause.exists():
            assert first.poll() is None and time.monotonic() < deadline, first.communicate()
            time.sleep(0.2)
        second = run(experiment, out)
        assert second.returncode == 2
        assert f"ispkit: error: the run folder {out} is in use by another ispkit run (PID {first.pid} on host " in second.stderr
        assert "fault_driver.py synthesis run" in second.stderr and "choose another output folder" in second.stderr
    finally:
        first.kill()
        first.communicate()
    third = run(experiment, out)
    assert third.returncode == 0, third.stderr
    assert f"took over the lock of {out} left by a run that is gone (PID {first.pid} on host" in third.stdout
    assert_consistent(out, reference)


@pytest.fixture
def small_disk(tmp_path):
    """A 1.2 MB tmpfs (needs root with mount rights; skipped elsewhere)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1200k", "tmpfs", str(mount)], capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_full_disk_is_one_clear_error_and_the_run_resumes_after_space_is_freed(experiment, reference, small_disk):
    out = small_disk / "run"
    full = run(experiment, out)
    assert full.returncode == 2, full.stderr
    assert "Traceback" not in full.stderr
    (line,) = [line for line in full.stderr.splitlines() if line.strip()]
    assert line.startswith("ispkit: error: cannot write ") and ("No space left on device" in line or "disk is full" in line)
    assert line.endswith(f"what finished is kept in {out}: free space (or make it writable) and run the same command to resume")
    subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], check=True)
    final = run(experiment, out)
    assert final.returncode == 0, final.stderr
    assert_consistent(out, reference)


def test_read_only_finished_run_is_one_clear_error(experiment, small_disk):
    out = small_disk / "run"
    subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], check=True)
    assert run(experiment, out).returncode == 0
    results = (out / "results.json").read_bytes()
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    again = run(experiment, out)
    assert again.returncode == 2
    assert again.stderr.strip() == (
        f"ispkit: error: cannot write in the run folder {out} (read-only file system): a study writes its checkpoints, "
        "resume states and results there, also when it resumes or reads a finished run back; choose a writable output folder"
    )
    assert (out / "results.json").read_bytes() == results
    subprocess.run(["mount", "-o", "remount,rw", str(small_disk)], check=True)


def test_lock_file_names_its_holder(tmp_path):
    from ispkit.drift.run_lock import LOCK_NAME, RunLock
    from ispkit.errors import RunFolderError

    first = RunLock(tmp_path)
    assert first.acquire() is None
    holder = json.loads((tmp_path / LOCK_NAME).read_text())
    assert holder["pid"] == os.getpid() and holder["host"] and holder["started"]
    with pytest.raises(RunFolderError, match=rf"in use by another ispkit run \(PID {os.getpid()} on host "):
        RunLock(tmp_path).acquire()  # a second open file description conflicts, also within one process
    first.release()
    assert (tmp_path / LOCK_NAME).read_text() == ""  # released cleanly: nothing stale for the next run
    again = RunLock(tmp_path)
    assert again.acquire() is None
    again.release()
