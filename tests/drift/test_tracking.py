"""MlflowTracker: one study run per run folder, each unit once, a store that is whole or absent.

The same guarantees under real kills are tested end to end in ``test_faults.py``; these
tests drive the tracker directly into the states a kill leaves behind.
"""

from __future__ import annotations

import json
import shutil

import mlflow.tracking
import pytest

from ispkit.drift.tracking import MlflowTracker, Tracker, _create_store, flatten, make_tracker

PARAMS = {"name": "t", "model": {"name": "small_cnn"}, "folds": 2}


def _runs(run_dir):
    client = mlflow.tracking.MlflowClient(f"sqlite:///{run_dir / 'mlflow.db'}")
    (experiment,) = [e for e in client.search_experiments() if e.name == "t"]
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    return [r for r in runs if "mlflow.parentRunId" not in r.data.tags], [r for r in runs if "mlflow.parentRunId" in r.data.tags]


@pytest.fixture(scope="module")
def blank_store(tmp_path_factory):
    """An empty store with MLflow's schema, made once (the migrations take seconds)."""
    db = tmp_path_factory.mktemp("blank") / "mlflow.db"
    _create_store(db)
    return db


@pytest.fixture
def tracker(tmp_path, blank_store):
    shutil.copy(blank_store, tmp_path / "mlflow.db")
    return MlflowTracker(tmp_path, "t", PARAMS)


def test_a_unit_is_logged_once(tracker, tmp_path):
    metrics = [({"loss": 0.5}, 1), ({"loss": 0.25}, 2)]
    tracker.log_unit("a/fold0", {"fold": 0}, metrics)
    tracker.log_unit("a/fold0", {"fold": 0}, metrics)
    again = MlflowTracker(tmp_path, "t", PARAMS)  # a resumed study offers read-back units again
    again.log_unit("a/fold0", {"fold": 0}, metrics)
    again.log_unit("a/fold1", {"fold": 1}, metrics)
    studies, units = _runs(tmp_path)
    assert len(studies) == 1 and sorted(u.data.tags["ispkit.unit"] for u in units) == ["a/fold0", "a/fold1"]
    history = again.client.get_metric_history(units[0].info.run_id, "loss")
    assert [(m.step, m.value) for m in history] == [(1, 0.5), (2, 0.25)]
    assert all(u.data.params == {"fold": str(u.data.tags["ispkit.unit"][-1])} for u in units)


def test_a_unit_killed_while_being_logged_is_logged_again(tracker, tmp_path):
    # the state a kill between create_run and set_terminated leaves: a RUNNING unit run, half its metrics
    half = tracker.client.create_run(tracker.experiment_id, tags={"mlflow.parentRunId": tracker.study, "ispkit.unit": "a/fold0"}).info.run_id
    tracker.client.log_metric(half, "loss", 0.5, step=1)
    resumed = MlflowTracker(tmp_path, "t", PARAMS)
    assert "a/fold0" not in resumed.logged
    resumed.log_unit("a/fold0", {}, [({"loss": 0.5}, 1), ({"loss": 0.25}, 2)])
    _, units = _runs(tmp_path)
    assert len(units) == 1 and units[0].info.run_id != half and units[0].info.status == "FINISHED"
    assert resumed.client.get_run(half).info.lifecycle_stage == "deleted"


def test_the_study_run_is_found_again_without_tracking_json(tracker, tmp_path):
    (tmp_path / "tracking.json").unlink()  # killed before it was written
    resumed = MlflowTracker(tmp_path, "t", PARAMS)
    assert resumed.study == tracker.study
    assert json.loads((tmp_path / "tracking.json").read_text())["study_run_id"] == tracker.study
    resumed.end_study()
    studies, _ = _runs(tmp_path)
    assert [(s.info.run_id, s.info.status) for s in studies] == [(tracker.study, "FINISHED")]
    assert studies[0].data.tags["ispkit.role"] == "study" and studies[0].data.tags["ispkit.run_dir"] == str(tmp_path.resolve())
    assert studies[0].data.params == flatten(PARAMS)


def test_a_moved_run_folder_keeps_its_study_run(tracker, tmp_path):
    tracker.log_unit("a/fold0", {}, [({"loss": 1.0}, 1)])
    moved = tmp_path.parent / (tmp_path.name + "-moved")
    shutil.copytree(tmp_path, moved)
    resumed = MlflowTracker(moved, "t", PARAMS)
    assert resumed.study == tracker.study and resumed.logged == {"a/fold0"}
    assert json.loads((moved / "tracking.json").read_text())["uri"] == f"sqlite:///{moved.resolve() / 'mlflow.db'}"


def test_study_metrics_are_not_logged_twice_on_resume(tracker, tmp_path):
    tracker.log_metrics({"in_distribution": 0.8, "drop": 0.1})
    MlflowTracker(tmp_path, "t", PARAMS).log_metrics({"in_distribution": 0.8, "drop": 0.2})
    history = {key: [m.value for m in tracker.client.get_metric_history(tracker.study, key)] for key in ("in_distribution", "drop")}
    assert history == {"in_distribution": [0.8], "drop": [0.1, 0.2]}


def test_the_store_is_created_under_a_temporary_name_and_leftovers_are_removed(tmp_path):
    # what a kill during the schema migrations leaves: a half-made store under the temporary name
    for name in ("mlflow.db.creating", "mlflow.db.creating-journal"):
        (tmp_path / name).write_bytes(b"half a database")
    tracker = MlflowTracker(tmp_path, "t", PARAMS)
    tracker.end_study()
    assert sorted(p.name for p in tmp_path.glob("mlflow.db*")) == ["mlflow.db"]
    assert [s.info.status for s in _runs(tmp_path)[0]] == ["FINISHED"]


def test_no_tracking_records_nothing(tmp_path):
    tracker = make_tracker(tmp_path, "t", PARAMS, enabled=False)
    assert type(tracker) is Tracker
    tracker.log_unit("a", {}, [({"loss": 1.0}, 1)])
    tracker.end_study()
    assert list(tmp_path.iterdir()) == []
