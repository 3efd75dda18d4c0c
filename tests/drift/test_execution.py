"""A study's units in this process (ispkit.drift.execution): read back, run, track, stop."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch

from ispkit.drift.execution import Clock, Study, Unit, execute
from ispkit.drift.tracking import Tracker


class Recorder(Tracker):
    def __init__(self):
        self.units, self.status = [], None

    def log_unit(self, name, params, metrics):
        self.units.append((name, params, metrics))

    def end_study(self, status="FINISHED"):
        self.status = status


class Squares(Study):
    """Unit k computes k² into units/k/result.json; unit ``fail`` raises."""

    def __init__(self, run_dir, fail=None, threads=None):
        self.run_dir, self.fail, self.ran, self.threads = run_dir, fail, [], []
        self.config = SimpleNamespace(threads=threads)

    def units(self, n=3):
        return [Unit(f"k{k}", (k,), self.run_dir / "units" / str(k), {"k": k}, 2, (k + 1, n)) for k in range(n)]

    def run(self, unit, clock):
        (k,) = unit.key
        if k == self.fail:
            raise KeyboardInterrupt
        self.ran.append(k)
        self.threads.append(torch.get_num_threads())
        clock.step(f"{unit.tag} {unit.name} epoch 1/2")
        clock.step(f"{unit.tag} {unit.name} epoch 2/2")
        unit.folder.mkdir(parents=True, exist_ok=True)
        (unit.folder / "result.json").write_text(json.dumps({"value": k * k}))
        return {"value": k * k}

    def metrics(self, unit, result):
        return [({"value": result["value"]}, None)]


def test_units_run_once_are_tracked_and_read_back(tmp_path):
    study, tracker, lines = Squares(tmp_path), Recorder(), []
    results = execute(study, study.units(), clock=Clock(lines.append, 6), tracker=tracker)
    assert results == {(0,): {"value": 0}, (1,): {"value": 1}, (2,): {"value": 4}}
    assert [u[0] for u in tracker.units] == ["k0", "k1", "k2"] and tracker.units[2] == ("k2", {"k": 2}, [({"value": 4}, None)])
    assert lines[0].startswith("[1/3] k0 epoch 1/2  elapsed 0m00s  left ~") and len(lines) == 6
    again, tracker, lines = Squares(tmp_path), Recorder(), []
    assert execute(again, again.units(), clock=Clock(lines.append, 6), tracker=tracker) == results
    # nothing recomputed; read-back units are offered to the tracker again (it logs each unit
    # once: MlflowTracker skips units it holds, and logs those a kill kept from being logged)
    assert again.ran == [] and tracker.units == [
        ("k0", {"k": 0}, [({"value": 0}, None)]),
        ("k1", {"k": 1}, [({"value": 1}, None)]),
        ("k2", {"k": 2}, [({"value": 4}, None)]),
    ]
    assert lines == [f"[{k + 1}/3] k{k}: done earlier, read back" for k in range(3)]


def test_an_interrupted_study_keeps_what_finished_and_is_marked_killed(tmp_path):
    study, tracker = Squares(tmp_path, fail=1), Recorder()
    with pytest.raises(KeyboardInterrupt):
        execute(study, study.units(), clock=Clock(None, 6), tracker=tracker)
    assert tracker.status == "KILLED" and [u[0] for u in tracker.units] == ["k0"]
    resumed = Squares(tmp_path)
    execute(resumed, resumed.units(), clock=Clock(None, 6), tracker=Recorder())
    assert resumed.ran == [1, 2]


def test_units_run_with_the_experiments_torch_threads_and_the_process_keeps_its_own(tmp_path):
    before = torch.get_num_threads()
    study = Squares(tmp_path, threads=before + 1)
    execute(study, study.units(), clock=Clock(None, 6), tracker=Recorder())
    assert study.threads == [before + 1] * 3 and torch.get_num_threads() == before
    unset = Squares(tmp_path / "unset")
    execute(unset, unset.units(), clock=Clock(None, 6), tracker=Recorder())
    assert unset.threads == [before] * 3


def test_clock_estimates_the_time_left_from_timed_steps_only():
    lines = []
    clock = Clock(lines.append, total=10)
    clock.skip(8)  # done earlier: counted as done, not timed
    clock.step("one")
    assert clock.done == 9 and clock.timed == 1 and lines[0].startswith("one  elapsed ")


def test_a_preparatory_unit_has_no_place_tag(tmp_path):
    assert Unit("model", ("model",), tmp_path).tag == ""
    assert Unit("k0", (0,), tmp_path, number=(1, 4)).tag == "[1/4]"
