"""Qt-free tests of the jobs logic (napari_drift/logic/jobs.py and job_process.py)."""

from __future__ import annotations

import json
import os
import signal
import threading
import time

import pytest
from napari_drift.logic.jobs import JobError, JobProgress, JobRunner, _decode, check_scheduler, detect_kind, figures, forensics_pipelines

from ispkit import InputError

CANCEL_WITHIN_S = 5.0  # a cancel mid-unit ends the job (and its process) within this
SLOW_STEPS = 3000  # optimisation steps of the slow forensic unit: ~10 s on an idle 2-core machine (~3 ms a step)


def _unit_lines(lines):
    return [line for line in lines if line.lstrip().startswith("[")]


# -- progress ------------------------------------------------------------------------------


def test_progress_of_a_forensic_sweep_counts_the_model_units_and_steps():
    progress = JobProgress("forensics", units=3, epochs=2, steps=60)  # 3 attacks of 60 steps, after a 2-epoch task model
    assert progress.fraction == 0 and progress.describe() == "0 of 3 units"
    progress.line("training small_cnn on bi,s,ga views (9 images)")
    progress.steps(10)
    assert progress.fraction == 0 and progress.describe() == "task model: epoch 0/2 · step 10"  # an epoch's steps are not known yet
    progress.line("  model epoch 1/2  loss 0.730  elapsed 0m01s  left ~0m05s")  # 10 steps per epoch, now known
    assert progress.fraction == pytest.approx(0.5 / 4)
    progress.steps(5)
    assert progress.fraction == pytest.approx((1 + 5 / 10) / 2 / 4) and progress.describe() == "task model: epoch 1/2 · step 5/10"
    progress.line("  model epoch 2/2  loss 0.394")
    assert progress.fraction == pytest.approx(1 / 4)
    progress.steps(30)  # the first attack, half way: the bar moves within the unit
    assert progress.fraction == pytest.approx((1 + 30 / 60) / 4) and progress.describe() == "0 of 3 units · step 30/60"
    progress.line("[1/3] gamma              λ=0        accuracy 0.500  d 0.009  elapsed 0m13s  left ~0m04s")
    assert progress.fraction == pytest.approx(2 / 4) and progress.describe() == "1 of 3 units" and not progress.all_finished
    progress.steps(600)  # more steps than a unit has: the unit never shows as finished before its line
    assert progress.fraction == pytest.approx((2 + 0.99) / 4)
    progress.line("[2/3] gamma λ=100 accuracy 0.5")
    progress.line("[3/3] gamma λ=inf accuracy 0.5")
    assert progress.fraction == 1 and progress.all_finished and progress.describe() == "3 of 3 units"


def test_progress_of_an_adjustment_counts_epochs_and_steps_and_units_read_back():
    progress = JobProgress("adjustment", units=2, epochs=4)
    progress.line("[1/2] intensity 0.01 learned fold 1/1  epoch 1/4  loss 1.2  accuracy 0.3")  # resumed after epoch 1
    progress.steps(8)
    progress.line("[1/2] intensity 0.01 learned fold 1/1  epoch 2/4  loss 1.0  accuracy 0.4")  # 8 steps an epoch
    assert progress.fraction == pytest.approx(2 / 4 / 2) and progress.describe() == "0 of 2 units · epoch 2/4"
    progress.steps(4)
    assert progress.fraction == pytest.approx((2 + 0.5) / 4 / 2) and progress.describe() == "0 of 2 units · epoch 2/4 · step 4/8"
    progress.line("[1/2] intensity 0.01 learned fold 1/1  epoch 4/4  loss 0.8")
    assert progress.fraction == pytest.approx(1 / 2) and progress.finished == {1}
    progress.line("[2/2] 0.01/frozen/fold0: done earlier, read back")
    assert progress.fraction == 1 and progress.all_finished


def test_progress_never_goes_back():
    progress = JobProgress("forensics", units=2, steps=10)
    progress.steps(9)
    before = progress.fraction
    progress.line("training small_cnn on bi,s,ga views (9 images)")  # a new phase starts at 0: the bar stays
    assert progress.fraction == before > 0


# -- the scheduler field -----------------------------------------------------------------------


def test_check_scheduler_accepts_local_and_addresses_only():
    assert check_scheduler("local", 3) == ("local", 3)
    assert check_scheduler("", 1) == ("local", 1) and check_scheduler(None, 1) == ("local", 1)
    assert check_scheduler("  tcp://10.0.0.5:8786 ", 1) == ("tcp://10.0.0.5:8786", 1)
    assert check_scheduler("tls://cluster.example:8786", 1) == ("tls://cluster.example:8786", 1)
    for bad in ("10.0.0.5:8786", "tcp://", "local cluster", "tcp://a b", "../run"):
        with pytest.raises(InputError, match="scheduler: expected 'local' or a Dask scheduler address"):
            check_scheduler(bad, 1)
    for workers in (0, -1, 1.5, "2", True):
        with pytest.raises(InputError, match="workers: expected a whole number"):
            check_scheduler("local", workers)
    with pytest.raises(InputError, match="workers=2 applies to the local scheduler only"):
        check_scheduler("tcp://host:8786", 2)


# -- running, cancelling, resuming -------------------------------------------------------------


def test_forensics_job_runs_and_a_cancel_after_its_last_unit_still_finishes(tiny_forensics, tmp_path):
    assert detect_kind(tiny_forensics) == "forensics"
    runner = JobRunner(None, tiny_forensics, tmp_path / "run")
    lines = []
    for line in runner.lines():
        lines.append(line)
        if line.startswith("[3/3]"):
            runner.cancel()  # every unit has finished: the job writes its report and ends as finished
    assert runner.finished and not runner.cancelled and runner.returncode == 0
    assert [line[:5] for line in _unit_lines(lines)] == ["[1/3]", "[2/3]", "[3/3]"]
    assert runner.progress.fraction == 1 and runner.progress.describe() == "3 of 3 units"
    assert set(forensics_pipelines(tmp_path / "run")) == {("gamma", 0.0), ("gamma", 100.0), ("gamma", float("inf"))}
    assert figures(tmp_path / "run") and json.loads((tmp_path / "run" / "results.json").read_text())


@pytest.fixture
def slow_forensics(forensics_experiment):
    """Two forensic units: λ = ∞ (no step), then λ = 0 with SLOW_STEPS optimisation steps (never run to the end here)."""
    return forensics_experiment("slow-forensics", ".inf, 0", SLOW_STEPS)


def _start(runner: JobRunner) -> tuple[threading.Thread, list[str]]:
    lines: list[str] = []
    thread = threading.Thread(target=lambda: lines.extend(runner.lines()), daemon=True)
    thread.start()
    return thread, lines


def _wait(condition, thread: threading.Thread, lines: list[str], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert thread.is_alive() and time.monotonic() < deadline, lines
        time.sleep(0.005)


def test_cancel_mid_unit_stops_within_seconds_and_the_run_resumes(slow_forensics, tmp_path):
    run_dir = tmp_path / "run"
    runner = JobRunner("forensics", slow_forensics, run_dir)
    thread, lines = _start(runner)
    _wait(lambda: "[1/2]" in "".join(lines), thread, lines)  # the task model and the λ = ∞ unit are done: the λ = 0 unit starts
    unit_start = time.monotonic()
    _wait(lambda: runner.progress.step_count >= 10, thread, lines)
    fraction, steps_at_cancel = runner.progress.fraction, runner.progress.step_count
    seconds_per_step = (time.monotonic() - unit_start) / steps_at_cancel
    assert 2 / 3 < fraction < 1  # task model and λ = ∞ done (2 of 3 shares), the bar moving inside the λ = 0 unit
    start = time.monotonic()
    runner.cancel()
    thread.join(60)
    latency = time.monotonic() - start
    assert not thread.is_alive() and runner.cancelled and not runner.finished and runner.returncode == 0
    # within a few steps, not at the unit's end: what the unit had left would have taken several times longer
    left = (SLOW_STEPS - steps_at_cancel) * seconds_per_step
    assert latency < min(CANCEL_WITHIN_S, left / 3), f"cancel took {latency:.2f} s; the unit's {SLOW_STEPS - steps_at_cancel} steps left take ~{left:.1f} s"
    assert "interrupted with 1 of 2 units finished" in lines[-1] and "keeps the finished units" in lines[-1]
    assert set(forensics_pipelines(run_dir)) == {("gamma", float("inf"))} and (run_dir / "model.pt").exists()
    assert not (run_dir / "results.json").exists()

    # run again into the folder: the task model and the λ = ∞ unit are read back, the λ = 0 unit starts over
    resumed = JobRunner("forensics", slow_forensics, run_dir)
    thread, again = _start(resumed)
    _wait(lambda: resumed.progress.step_count >= 1, thread, again)
    assert [line for line in _unit_lines(again) if "done earlier, read back" in line] == ["[1/2] gamma/lambda_inf: done earlier, read back"]
    assert not any(line.lstrip().startswith("training") for line in again)  # not retrained
    assert resumed.progress.fraction > 2 / 3  # it starts where the first run stopped
    resumed.cancel()
    thread.join(60)
    assert resumed.cancelled and set(forensics_pipelines(run_dir)) == {("gamma", float("inf"))}


def test_cancel_before_the_job_starts(tiny_forensics, tmp_path):
    runner = JobRunner("forensics", tiny_forensics, tmp_path / "run")
    runner.cancel()
    assert list(runner.lines())[-1].startswith("cancelled") and runner.cancelled and runner.pid is None
    assert not forensics_pipelines(tmp_path / "run")


def test_a_cancel_while_the_job_process_starts_is_a_cancel(tiny_forensics, tmp_path):
    early = JobRunner("forensics", tiny_forensics, tmp_path / "early")
    generator = early.lines()
    thread = threading.Thread(target=lambda: list(generator), daemon=True)
    thread.start()
    while early.pid is None:
        time.sleep(0.001)
    early.cancel()  # while the interpreter is still importing
    thread.join(60)
    assert not thread.is_alive() and early.cancelled and not early.finished
    assert not (tmp_path / "early" / "results.json").exists()


def test_jobs_run_on_a_dask_scheduler_address(tiny_forensics, tmp_path, dask_cluster):
    address, finished_keys = dask_cluster
    runner = JobRunner("forensics", tiny_forensics, tmp_path / "run", scheduler=address)
    assert runner.command()[-4:] == ["--scheduler", address, "--workers", "1"]
    lines = runner.run()
    assert runner.finished and len(_unit_lines(lines)) == 3
    # the task model and the three attacks ran as tasks on the cluster (keys ispkit-unit-<token>-<unit>)
    ran = sorted(k.split("-", 3)[3] for k in finished_keys if k.startswith("ispkit-unit-"))
    assert ran == ["gamma/lambda_0.0", "gamma/lambda_100.0", "gamma/lambda_inf", "model"]
    assert set(forensics_pipelines(tmp_path / "run")) == {("gamma", 0.0), ("gamma", 100.0), ("gamma", float("inf"))}


def test_detect_kind_refuses_a_yaml_bomb_quickly(tmp_path):
    """The jobs panel reads an experiment the user picks: through ispkit's hardened loader, not plain PyYAML."""
    from ispkit.errors import ConfigError

    lines = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 10)]
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + "\nsubsets: *a9\n")
    start = time.perf_counter()
    with pytest.raises(ConfigError, match=r"bomb\.yaml:2:\d+: .*alias"):
        detect_kind(path)
    assert time.perf_counter() - start < 2


def test_detect_kind_rejects_synthesis(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("name: x\npipelines: {train: all, test: all}\n")
    with pytest.raises(Exception, match="synthesis"):
        detect_kind(path)
    with pytest.raises(FileNotFoundError):
        JobRunner(None, tmp_path / "missing.yaml", tmp_path / "run")


def test_a_failing_job_raises_its_error_from_the_job_process(tiny_forensics, tiny_microscopy_root, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    config = tmp_path / "no_data.yaml"  # valid YAML, but the dataset folder holds no images: the run fails
    config.write_text(tiny_forensics.read_text().replace(str(tiny_microscopy_root), str(empty)), encoding="utf-8")
    runner = JobRunner("forensics", config, tmp_path / "run")
    with pytest.raises(JobError, match=r"^FileNotFoundError: Raw-Microscopy images not found") as info:
        runner.run()
    assert info.value.type_name == "FileNotFoundError" and "Traceback (most recent call last)" in info.value.details
    assert runner.returncode == 1 and not runner.finished and not runner.cancelled


def test_a_killed_job_process_is_an_error_not_a_crash(tiny_forensics, tmp_path):
    runner = JobRunner("forensics", tiny_forensics, tmp_path / "run")
    lines = runner.lines()
    assert runner.pid is None
    next(lines)  # the job process is running
    os.kill(runner.pid, signal.SIGKILL)
    with pytest.raises(JobError, match="ended without a result \\(killed by SIGKILL\\)") as info:
        list(lines)
    assert info.value.type_name == "JobProcessDied" and runner.returncode == -signal.SIGKILL


def test_job_protocol_ignores_foreign_lines():
    assert _decode('{"event": "line", "text": "[1/3] x"}') == {"event": "line", "text": "[1/3] x"}
    for foreign in ("[1/3] gamma", "", "{", "[]", '"event"', '{"event": 3}', '{"text": "x"}', "null"):
        assert _decode(foreign) is None, foreign
