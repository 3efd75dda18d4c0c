"""End-to-end drift-synthesis studies on tiny synthetic data: structure, sanity, resume."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from ispkit.drift.config import SynthesisConfig
from ispkit.drift.results import SynthesisResults
from ispkit.drift.synthesis import ViewBank, load_raw_set, resolve_device, run_synthesis
from ispkit.errors import InputError
from ispkit.pipeline import Pipeline
from ispkit.tasks import load_checkpoint


def _config(root, *, kind="microscopy", model="small_cnn", downsample=2, epochs=1, train='["bi,s,me", "me,u,ga"]', test='["bi,s,me", "me,u,ga"]', seed=0, extra=""):
    return SynthesisConfig.from_yaml(f"""
name: tiny
seed: {seed}
dataset: {{kind: {kind}, root: {root}}}
pipelines: {{train: {train}, test: {test}}}
model: {{name: {model}, downsample: {downsample}}}
training: {{epochs: {epochs}, batch_size: 8, lr: 0.003}}
folds: 2
corruptions: {{names: [gaussian_noise, contrast], severities: [1, 5]}}
{extra}
""")


def test_tiny_classification_study_end_to_end(microscopy_root, tmp_path):
    lines = []
    config = _config(microscopy_root)
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
    for name in ("config.yaml", "folds.json", "results.json", "results.csv", "report.html", "figures/matrix.png", "figures/corruptions.png", "figures/worst_pair.png"):
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


def test_same_seed_same_results_and_resume_recomputes_only_missing_units(microscopy_root, tmp_path):
    config = _config(microscopy_root)
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


def test_interrupted_study_resumes_mid_unit_to_the_uninterrupted_result(microscopy_root, tmp_path):
    config = _config(microscopy_root, epochs=2)
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


def test_a_run_folder_of_another_experiment_is_refused(microscopy_root, tmp_path):
    run_synthesis(_config(microscopy_root), tmp_path / "run", tracking=False)
    before = (tmp_path / "run" / "results.json").read_bytes()
    with pytest.raises(InputError, match="different experiment"):
        run_synthesis(_config(microscopy_root, seed=1), tmp_path / "run", tracking=False)
    assert (tmp_path / "run" / "results.json").read_bytes() == before


def test_tiny_segmentation_study(drone_root, tmp_path):
    config = _config(drone_root, kind="drone", model="small_unet", downsample=2, test='["bi,s,me", "me,u,ga", "ma,s,ga"]')
    results = run_synthesis(config, tmp_path / "run", tracking=False)
    assert results.task == "segmentation" and results.metric == "iou"
    assert set(results.metrics) == {"iou", "dice"} and results.metrics["iou"].shape == (2, 3, 2)
    iou, dice = results.metrics["iou"], results.metrics["dice"]
    assert np.all((iou >= 0) & (iou <= 1)) and np.all(dice >= iou - 1e-12)  # Dice >= IoU per image, so in the mean too
    assert "IoU" in (tmp_path / "run" / "report.html").read_text() or "iou" in (tmp_path / "run" / "report.html").read_text()


def test_tracking_writes_a_local_mlflow_store(microscopy_root, tmp_path):
    import mlflow.tracking

    run_synthesis(_config(microscopy_root), tmp_path / "run")
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


def test_view_bank_caches_within_budget_and_streams_beyond(microscopy_root):
    config = _config(microscopy_root)
    data = load_raw_set(config.dataset)
    pipelines = {p: Pipeline.preset(p, camera=data.camera) for p in ("bi,s,me", "me,u,ga")}
    cached = ViewBank(data.raws, pipelines, downsample=2, device=torch.device("cpu"))
    streamed = ViewBank(data.raws, pipelines, downsample=2, device=torch.device("cpu"), max_bytes=1)
    index = torch.tensor([3, 0, 5])
    expected = torch.nn.functional.avg_pool2d(pipelines["me,u,ga"].to_torch()(data.raws[index]), 2)
    torch.testing.assert_close(cached.source("me,u,ga")(index), expected)
    torch.testing.assert_close(streamed.source("me,u,ga")(index), expected)
    assert "me,u,ga" in cached._cache and not streamed._cache


def test_resolve_device():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="CUDA is not available"):
            resolve_device("cuda")
