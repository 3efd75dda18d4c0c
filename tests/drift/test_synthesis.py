"""End-to-end drift-synthesis studies on tiny synthetic data: structure, sanity, resume."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from ispkit.drift.results import SynthesisResults
from ispkit.drift.runs import load_raw_set
from ispkit.drift.synthesis import run_synthesis
from ispkit.errors import InputError
from ispkit.pipeline import Pipeline
from ispkit.tasks import load_checkpoint


def test_tiny_classification_study_end_to_end(tmp_path, tiny):
    lines = []
    config = tiny.config("synthesis")
    results = run_synthesis(config, tmp_path / "run", tracking=False, progress=lines.append)
    assert results.task == "classification" and results.metric == "accuracy"
    assert results.train_pipelines == ["bi,s,me", "me,u,ga"] and results.test_pipelines == ["bi,s,me", "me,u,ga"]
    assert results.metrics["accuracy"].shape == (2, 2, 2)
    assert results.corruption_metrics["accuracy"].shape == (2, 2, 2, 2)
    for values in (results.metrics["accuracy"], results.corruption_metrics["accuracy"]):
        assert np.all((values >= 0) & (values <= 1))
    # an accuracy over n test images is a multiple of 1/n
    folds = json.loads((tmp_path / "run" / "folds.json").read_text())
    for k, (_, test) in enumerate(folds):
        counts = results.metrics["accuracy"][:, :, k] * len(test)
        np.testing.assert_allclose(counts, np.round(counts), atol=1e-9)
    run = tmp_path / "run"
    for name in (
        "config.yaml",
        "folds.json",
        "results.json",
        "results.csv",
        "report.html",
        "figures/matrix.png",
        "figures/corruptions.png",
        "figures/worst_pair.png",
    ):
        assert (run / name).is_file(), name
    assert not (run / "mlflow.db").exists()
    assert SynthesisResults.load(run / "results.json").to_dict() == results.to_dict()
    # one checkpoint per unit, holding the train pipeline and reproducing the unit's score
    unit = run / "units" / "me,u,ga" / "fold1"
    checkpoint = load_checkpoint(unit / "model.pt")
    assert Pipeline.from_yaml(checkpoint.pipeline_yaml) == Pipeline.preset("me,u,ga", camera="microscopy")
    assert checkpoint.metadata["train_pipeline"] == "me,u,ga" and checkpoint.metadata["fold"] == 1
    data = load_raw_set(config.dataset)
    test = torch.as_tensor(folds[1][1])
    with torch.no_grad():
        views = Pipeline.preset("bi,s,me", camera="microscopy").to_torch()(data.raws[test])
        accuracy = (checkpoint.network.predict(views).argmax(1) == data.targets[test]).float().mean().item()
    assert accuracy == pytest.approx(results.metrics["accuracy"][1, 0, 1], abs=1e-6)
    assert json.loads((unit / "result.json").read_text())["history"]["loss"]
    assert not (unit / "train_state.pt").exists()
    assert any("[4/4]" in line and "epoch 1/1" in line for line in lines)
    assert lines[-1].startswith("done: report at")


def test_same_seed_same_results_and_resume_recomputes_only_missing_units(tmp_path, tiny):
    config = tiny.config("synthesis")
    first = run_synthesis(config, tmp_path / "a", tracking=False)
    second = run_synthesis(config, tmp_path / "b", tracking=False)
    np.testing.assert_array_equal(first.metrics["accuracy"], second.metrics["accuracy"])
    np.testing.assert_array_equal(first.corruption_metrics["accuracy"], second.corruption_metrics["accuracy"])
    kept = tmp_path / "a" / "units" / "bi,s,me" / "fold0" / "result.json"
    stamp = kept.stat().st_mtime_ns
    (tmp_path / "a" / "units" / "me,u,ga" / "fold1" / "result.json").unlink()
    lines = []
    again = run_synthesis(config, tmp_path / "a", tracking=False, progress=lines.append)
    assert kept.stat().st_mtime_ns == stamp
    assert sum("done earlier, read back" in line for line in lines) == 3
    assert sum("epoch 1/1" in line for line in lines) == 1
    np.testing.assert_array_equal(again.metrics["accuracy"], first.metrics["accuracy"])


def test_interrupted_study_resumes_mid_unit_to_the_uninterrupted_result(tmp_path, tiny):
    config = tiny.config("synthesis", training={"epochs": 2})
    reference = run_synthesis(config, tmp_path / "reference", tracking=False)

    def interrupt(line: str) -> None:
        if "[2/4]" in line and "epoch 1/2" in line:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_synthesis(config, tmp_path / "run", tracking=False, progress=interrupt)
    state = tmp_path / "run" / "units" / "bi,s,me" / "fold1" / "train_state.pt"
    assert state.exists() and not (tmp_path / "run" / "results.json").exists()
    lines = []
    resumed = run_synthesis(config, tmp_path / "run", tracking=False, progress=lines.append)
    assert any("resuming after epoch 1" in line for line in lines)
    np.testing.assert_array_equal(resumed.metrics["accuracy"], reference.metrics["accuracy"])
    np.testing.assert_array_equal(resumed.corruption_metrics["accuracy"], reference.corruption_metrics["accuracy"])


def test_a_run_folder_of_another_experiment_is_refused(tmp_path, tiny):
    run_synthesis(tiny.config("synthesis"), tmp_path / "run", tracking=False)
    before = (tmp_path / "run" / "results.json").read_bytes()
    with pytest.raises(InputError, match="different experiment"):
        run_synthesis(tiny.config("synthesis", seed=1), tmp_path / "run", tracking=False)
    assert (tmp_path / "run" / "results.json").read_bytes() == before


def test_tiny_segmentation_study(drone_root, tmp_path, tiny):
    config = tiny.config(
        "synthesis", dataset={"kind": "drone", "root": drone_root}, model={"name": "small_unet"}, pipelines={"test": ["bi,s,me", "me,u,ga", "ma,s,ga"]}
    )
    results = run_synthesis(config, tmp_path / "run", tracking=False)
    assert results.task == "segmentation" and results.metric == "iou"
    assert set(results.metrics) == {"iou", "dice"} and results.metrics["iou"].shape == (2, 3, 2)
    iou, dice = results.metrics["iou"], results.metrics["dice"]
    assert np.all((iou >= 0) & (iou <= 1)) and np.all(dice >= iou - 1e-12)  # Dice >= IoU per image, so in the mean too
    assert "IoU" in (tmp_path / "run" / "report.html").read_text() or "iou" in (tmp_path / "run" / "report.html").read_text()


def test_tracking_writes_a_local_mlflow_store(tmp_path, tiny):
    import mlflow.tracking

    run_synthesis(tiny.config("synthesis"), tmp_path / "run")
    client = mlflow.tracking.MlflowClient(f"sqlite:///{tmp_path / 'run' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("tiny")
    runs = {r.info.run_name: r for r in client.search_runs([experiment.experiment_id])}
    study = runs.pop("tiny")
    assert sorted(runs) == ["bi,s,me/fold0", "bi,s,me/fold1", "me,u,ga/fold0", "me,u,ga/fold1"]
    assert all(r.data.tags["mlflow.parentRunId"] == study.info.run_id and r.info.status == "FINISHED" for r in runs.values())
    assert study.data.params["model.name"] == "small_cnn"
    assert "drop_ratio" in study.data.metrics or "isp_drop" in study.data.metrics
    history = client.get_metric_history(runs["bi,s,me/fold0"].info.run_id, "loss")
    assert [m.step for m in history] == [1]
    artifacts = {a.path for a in client.list_artifacts(study.info.run_id)}
    assert {"results.json", "report.html", "matrix.png"} <= artifacts
    assert str(tmp_path / "run" / "mlruns") in experiment.artifact_location


def test_units_record_confusion_matrices_and_older_units_read_back_as_not_recorded(tmp_path, tiny):
    config = tiny.config("synthesis")
    first = run_synthesis(config, tmp_path / "run", tracking=False)
    assert first.synthetic and first.classes == load_raw_set(config.dataset).classes
    folds = json.loads((tmp_path / "run" / "folds.json").read_text())
    unit = tmp_path / "run" / "units" / "me,u,ga" / "fold1"
    result = json.loads((unit / "result.json").read_text())
    for test, counts in result["confusion"]["pipelines"].items():  # each test image once, its right answers on the diagonal
        assert np.sum(counts) == len(folds[1][1]) and np.trace(counts) == pytest.approx(result["pipelines"][test]["accuracy"] * len(folds[1][1]))
    np.testing.assert_array_equal(first.confusion.sum(axis=(-2, -1)), sum(len(test) for _, test in folds))
    np.testing.assert_array_equal(first.corruption_confusion.sum(axis=(-2, -1)), sum(len(test) for _, test in folds))
    del result["confusion"]  # as a unit of a run from before the matrices were recorded
    (unit / "result.json").write_text(json.dumps(result))
    again = run_synthesis(config, tmp_path / "run", tracking=False)
    np.testing.assert_array_equal(again.metrics["accuracy"], first.metrics["accuracy"])
    assert np.isnan(again.confusion[1]).all() and np.isnan(again.corruption_confusion[1]).all() and np.isfinite(again.confusion[0]).all()
    for flag in again.findings()["below_chance"]["cells"]:
        assert (flag["collapse"] is None) == (flag["train"] == "me,u,ga")
    assert SynthesisResults.load(tmp_path / "run" / "results.json").to_dict() == again.to_dict()
