"""Drift forensics: the mechanics of Eq. 35 on tiny data, the sweep, the operating specification."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import yaml

from ispkit.drift.config import ForensicsConfig
from ispkit.drift.forensics import ForensicsResults, ForensicsRun, attack, run_forensics
from ispkit.errors import ConfigError
from ispkit.pipeline import Pipeline
from ispkit.tasks import build_network


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    network = build_network("small_cnn", 3, downsample=2)
    network.fit_normalization(torch.rand(8, 3, 16, 16))
    raws = torch.rand(6, 1, 32, 32, generator=torch.Generator().manual_seed(1)) * 0.8 + 0.1
    targets = torch.tensor([0, 1, 2, 0, 1, 2])
    return network, Pipeline.preset("bi,s,ga", camera="microscopy"), raws, targets


def _values(pipeline: Pipeline) -> dict[str, np.ndarray]:
    return {k: np.asarray(v, dtype=float) for k, v in pipeline.params().items() if not isinstance(v, (str, int))}


def test_attack_raises_the_task_loss_and_moves_only_the_chosen_stage(setup):
    network, pipeline, raws, targets = setup
    run, module = attack(network, pipeline, raws, targets, subset="black_level", lam=0.0, steps=15, lr=0.02, batch_size=6)
    assert set(run.params) == {"black_level.level"}
    assert run.trace[-1]["task_loss"] > run.trace[0]["task_loss"]
    assert run.trace[-1]["objective"] < run.trace[0]["objective"]
    found, reference = _values(module.to_pipeline()), _values(pipeline)
    moved = {k for k in reference if not np.array_equal(found[k], reference[k])}
    assert moved == {"black_level.level"}
    assert run.distance > 0


def test_attack_records_each_images_score_and_the_confusion_matrix(setup):
    network, pipeline, raws, targets = setup
    run, module = attack(network, pipeline, raws, targets, subset="gamma", lam=1.0, steps=3, batch_size=4)
    with torch.no_grad():
        predicted = network(network.prepare(module(raws))).argmax(1)
    assert run.per_image == (predicted == targets).float().tolist() and np.mean(run.per_image) == pytest.approx(run.metric)
    expected = np.zeros((3, 3), dtype=int)
    np.add.at(expected, (targets.numpy(), predicted.numpy()), 1)
    assert run.confusion == expected.tolist()
    assert ForensicsRun.from_dict(run.to_dict()).per_image == run.per_image


def test_infinite_lambda_leaves_the_pipeline_unchanged(setup):
    network, pipeline, raws, targets = setup
    run, module = attack(network, pipeline, raws, targets, subset="all", lam=math.inf, steps=10)
    assert module.to_pipeline() == pipeline
    assert run.distance == 0.0 and run.trace == []


def test_larger_lambda_keeps_the_view_closer(setup):
    network, pipeline, raws, targets = setup
    free, _ = attack(network, pipeline, raws, targets, subset="all", lam=0.0, steps=40, lr=0.02, batch_size=6)
    tied, _ = attack(network, pipeline, raws, targets, subset="all", lam=1e4, steps=40, lr=0.02, batch_size=6)
    assert tied.distance < free.distance / 10  # Adam's step size leaves a small floor; λ = ∞ is exact
    assert free.loss > tied.loss


def test_box_bounds_hold_even_for_huge_steps(setup):
    network, pipeline, raws, targets = setup
    run, module = attack(network, pipeline, raws, targets, subset="all", lam=0.0, steps=5, lr=50.0, batch_size=6)
    for s in module.to_pipeline().stages:
        for p in s.stage.params:
            if p.bounds is not None and p.dtype is float:
                value = np.asarray(s.values[p.name], dtype=float)
                assert value.min() >= p.bounds[0] and value.max() <= p.bounds[1], f"{s.name}.{p.name}"
    assert any(np.any(np.isin(np.asarray(v), [-1.0, 1.0, 0.1, 10.0, -16.0, 16.0])) for v in run.params.values())


def test_same_seed_same_attack(setup):
    network, pipeline, raws, targets = setup
    a, _ = attack(network, pipeline, raws, targets, subset="gamma", lam=1.0, steps=5, seed=3, batch_size=4)
    b, _ = attack(network, pipeline, raws, targets, subset="gamma", lam=1.0, steps=5, seed=3, batch_size=4)
    assert a.params == b.params and a.metric == b.metric


def _results() -> ForensicsResults:
    runs = [
        ForensicsRun("gamma", math.inf, 0.9, 0.0, 0.1, {"gamma.gamma": 2.2}),
        ForensicsRun("gamma", 10.0, 0.88, 0.001, 0.2, {"gamma.gamma": 1.9}),
        ForensicsRun("gamma", 1.0, 0.87, 0.004, 0.3, {"gamma.gamma": 2.6}),
        ForensicsRun("gamma", 0.0, 0.4, 0.05, 2.0, {"gamma.gamma": 0.5}),
        ForensicsRun("all", 0.0, 0.1, 0.2, 5.0, {"gamma.gamma": 0.1, "black_level.level": [0.5] * 4}),
    ]
    return ForensicsResults(
        task="classification", metric="accuracy", pipeline="bi,s,ga", distance="l2", baseline=0.9, subsets=["gamma", "all"],
        lambdas=[math.inf, 10.0, 1.0, 0.0], reference={"gamma.gamma": 2.2, "black_level.level": [0.06] * 4},
        bounds={"gamma.gamma": [0.1, 10.0], "black_level.level": [-1.0, 1.0]}, runs=runs, tolerance=0.05,
    )  # fmt: skip


def test_operating_spec_from_a_hand_made_sweep():
    spec = _results().operating_spec()
    gamma = spec["parameters"]["gamma.gamma"]
    assert (gamma["safe_min"], gamma["safe_max"], gamma["reference"]) == (1.9, 2.6, 2.2)
    assert gamma["breaking"] == {"lambda": 0.0, "accuracy": 0.4, "distance": 0.05, "values": 0.5}
    level = spec["parameters"]["black_level.level"]
    assert level["searched"] is False and level["safe_min"] == [0.06] * 4 and "breaking" not in level
    tight = _results().operating_spec(tolerance=0.025)
    assert tight["parameters"]["gamma.gamma"]["safe_max"] == 2.2  # 0.87 < 0.9 - 0.025
    assert tight["parameters"]["gamma.gamma"]["breaking"]["lambda"] == 1.0


def test_results_round_trip_with_infinite_lambda(tmp_path):
    r = _results()
    loaded = ForensicsResults.load(r.save(tmp_path / "r.json"))
    assert loaded.lambdas == r.lambdas and math.isinf(loaded.lambdas[0])
    assert loaded.run("gamma", math.inf).metric == 0.9
    assert loaded.to_dict() == r.to_dict()


def test_config_rejects_subsets_without_parameters():
    text = "dataset: {kind: microscopy, root: d}\npipeline: ma,s,me\nmodel: {name: small_cnn}\nsubsets: [demosaic]\n"
    with pytest.raises(ConfigError, match="'demosaic' has no differentiable parameters"):
        ForensicsConfig.from_yaml(text)
    with pytest.raises(ConfigError, match="is not a stage of"):
        ForensicsConfig.from_yaml(text.replace("[demosaic]", "[lens]"))
    with pytest.raises(ConfigError, match="fold 3 does not exist"):
        ForensicsConfig.from_yaml(text.replace("subsets: [demosaic]", "split: {folds: 3, fold: 3}"))
    with pytest.raises(ConfigError, match="did you mean 'ssim'"):
        ForensicsConfig.from_yaml(text.replace("subsets: [demosaic]", "distance: sim"))


def test_run_forensics_end_to_end_and_resume(tmp_path, tiny):
    config = tiny.config("forensics")
    lines = []
    results = run_forensics(config, tmp_path / "run", tracking=False, progress=lines.append)
    run = tmp_path / "run"
    assert results.table().shape == (2, 3)
    assert results.run("all", math.inf).metric == pytest.approx(results.baseline)
    assert results.run("gamma", math.inf).params == {"gamma.gamma": pytest.approx(2.2)}
    assert set(results.run("all", 0.0).params) == set(results.bounds)
    spec = yaml.safe_load((run / "operating_spec.yaml").read_text())
    assert spec["parameters"]["gamma.gamma"]["safe_min"] <= 2.2 <= spec["parameters"]["gamma.gamma"]["safe_max"]
    assert spec["parameters"]["gamma.gamma"]["searched"] is True
    for name in ("model.pt", "results.json", "report.html", "figures/signature.png", "units/gamma/lambda_0.0/pipeline.yaml"):
        assert (run / name).is_file(), name
    found = Pipeline.from_yaml(run / "units" / "gamma" / "lambda_0.0" / "pipeline.yaml")
    assert found.params()["gamma.gamma"] == pytest.approx(results.run("gamma", 0.0).params["gamma.gamma"])
    assert ForensicsResults.load(run / "results.json").to_dict() == results.to_dict()
    again: list[str] = []
    assert run_forensics(config, run, tracking=False, progress=again.append).to_dict() == results.to_dict()
    assert "model: done earlier, read back" in again
    assert all("done earlier, read back" in line for line in again if line.startswith("["))  # nothing recomputed


def test_run_forensics_for_segmentation(drone_root, tmp_path, tiny):
    segmentation = {"dataset": {"kind": "drone", "root": drone_root}, "training": {"epochs": 1, "batch_size": 4}, "split": {"fold": 0}, "samples": None,
                    "subsets": ["black_level"], "lambdas": [0, math.inf], "optimisation": {"steps": 3, "batch_size": 4, "lr": 0.05}}  # fmt: skip
    config = tiny.config("forensics", **segmentation, model={"name": "small_unet"})
    results = run_forensics(config, tmp_path / "run", tracking=False)
    assert results.task == "segmentation" and results.metric == "iou"
    attacked, reference = results.run("black_level", 0.0), results.run("black_level", math.inf)
    assert 0 <= attacked.metric <= 1 and reference.metric == pytest.approx(results.baseline)
    assert attacked.loss >= reference.loss and attacked.distance > 0
    # the same (downsampling) model given as a checkpoint: masks follow the checkpoint's input resolution
    given = tiny.config("forensics", **segmentation, model={"name": None, "downsample": None, "checkpoint": tmp_path / "run" / "model.pt"})
    again = run_forensics(given, tmp_path / "from-checkpoint", tracking=False)
    assert again.baseline == pytest.approx(results.baseline)


def test_forensics_tracking_logs_the_trace(tmp_path, tiny):
    import mlflow.tracking

    config = tiny.config("forensics", name="tracked-forensics", training={"epochs": 1}, split={"fold": 0}, subsets=["gamma"], lambdas=[0, math.inf],
                         optimisation={"steps": 4})  # fmt: skip
    run_forensics(config, tmp_path / "run")
    client = mlflow.tracking.MlflowClient(f"sqlite:///{tmp_path / 'run' / 'mlflow.db'}")
    runs = {r.info.run_name: r for r in client.search_runs([client.get_experiment_by_name("tracked-forensics").experiment_id])}
    assert sorted(runs) == ["gamma/lambda_0.0", "gamma/lambda_inf", "model", "tracked-forensics"]
    assert [m.step for m in client.get_metric_history(runs["model"].info.run_id, "loss")] == [1]  # the task model's training
    assert [m.step for m in client.get_metric_history(runs["gamma/lambda_0.0"].info.run_id, "task_loss")] == [1, 2, 3, 4]
    assert "baseline_accuracy" in runs["tracked-forensics"].data.metrics
    assert {"results.json", "operating_spec.yaml"} <= {a.path for a in client.list_artifacts(runs["tracked-forensics"].info.run_id)}
