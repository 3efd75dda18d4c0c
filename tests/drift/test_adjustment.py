"""Drift adjustment on tiny data: the learned arm's pipeline moves, the frozen arm's does not, resume."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from ispkit.drift.adjustment import AdjustmentResults, low_light, run_adjustment
from ispkit.drift.config import AdjustmentConfig
from ispkit.drift.runs import load_raw_set
from ispkit.errors import ConfigError
from ispkit.pipeline import Pipeline
from ispkit.tasks import load_checkpoint


def _floats(pipeline: Pipeline) -> dict[str, np.ndarray]:
    return {k: np.asarray(v, dtype=float) for k, v in pipeline.params().items() if not isinstance(v, (str, int))}


def test_learned_pipeline_moves_and_frozen_does_not(tmp_path, tiny):
    lines: list[str] = []
    results = run_adjustment(tiny.config("adjustment"), tmp_path / "run", tracking=False, progress=lines.append)
    assert results.arms == ["learned", "frozen", "raw"] and list(results.curves) == ["0.01", "1"]
    for arms in results.curves.values():
        for curve in arms.values():
            assert curve.shape == (2, 2) and np.all((curve >= 0) & (curve <= 1))
    reference = _floats(Pipeline.preset("bi,s,me", camera="microscopy"))
    for intensity in ("0.01", "1"):
        learned = _floats(Pipeline.from_yaml(tmp_path / "run" / "units" / intensity / "learned" / "fold0" / "pipeline.yaml"))
        moved = [k for k in reference if not np.allclose(learned[k], reference[k])]
        assert moved, "the learned arm's pipeline parameters did not change"
        frozen = load_checkpoint(tmp_path / "run" / "units" / intensity / "frozen" / "fold0" / "model.pt")
        assert Pipeline.from_yaml(frozen.pipeline_yaml) == Pipeline.preset("bi,s,me", camera="microscopy")
        assert not (tmp_path / "run" / "units" / intensity / "frozen" / "fold0" / "pipeline.yaml").exists()
    raw = load_checkpoint(tmp_path / "run" / "units" / "1" / "raw" / "fold1" / "model.pt")
    assert raw.network.in_channels == 4 and raw.pipeline_yaml is None
    for name in ("results.json", "report.html", "figures/curves.png", "folds.json"):
        assert (tmp_path / "run" / name).is_file(), name
    assert AdjustmentResults.load(tmp_path / "run" / "results.json").to_dict() == results.to_dict()
    assert any("intensity 0.01 learned" in line and "epoch 2/2" in line for line in lines)
    # the last epoch's predictions as true × predicted counts: their diagonal is the last validation accuracy
    assert results.synthetic and results.classes == load_raw_set(tiny.config("adjustment").dataset).classes
    for intensity, arm in (("0.01", "learned"), ("1", "raw")):
        total = np.zeros_like(results.confusion[intensity][arm])
        for fold in (0, 1):
            unit = json.loads((tmp_path / "run" / "units" / intensity / arm / f"fold{fold}" / "result.json").read_text())
            counts = np.asarray(unit["confusion"])
            assert np.trace(counts) / counts.sum() == pytest.approx(unit["validation"][-1]["accuracy"])
            total += counts
        np.testing.assert_array_equal(results.confusion[intensity][arm], total)


def test_learned_pipeline_stays_within_bounds(tmp_path, tiny):
    run_adjustment(tiny.config("adjustment", arms=["learned"], pipeline_lr=5.0), tmp_path / "run", tracking=False)
    learned = Pipeline.from_yaml(tmp_path / "run" / "units" / "1" / "learned" / "fold1" / "pipeline.yaml")  # validated on load
    for s in learned.stages:
        for p in s.stage.params:
            if p.bounds is not None and p.dtype is float:
                value = np.asarray(s.values[p.name], dtype=float)
                assert p.bounds[0] <= value.min() and value.max() <= p.bounds[1]


def test_resume_gives_the_uninterrupted_result(tmp_path, tiny):
    config = tiny.config("adjustment", arms=["learned", "frozen"])
    reference = run_adjustment(config, tmp_path / "reference", tracking=False)

    def interrupt(line: str) -> None:
        if "learned" in line and "fold 2/2  epoch 1/2" in line and "intensity 1 " in line:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_adjustment(config, tmp_path / "run", tracking=False, progress=interrupt)
    resumed = run_adjustment(config, tmp_path / "run", tracking=False)
    for intensity in reference.curves:
        for arm in reference.curves[intensity]:
            np.testing.assert_array_equal(resumed.curves[intensity][arm], reference.curves[intensity][arm])
    a = Pipeline.from_yaml(tmp_path / "run" / "units" / "1" / "learned" / "fold1" / "pipeline.yaml")
    b = Pipeline.from_yaml(tmp_path / "reference" / "units" / "1" / "learned" / "fold1" / "pipeline.yaml")
    assert a == b


def test_low_light_scales_the_signal_and_is_seeded(tiny):
    data = load_raw_set(tiny.config("adjustment").dataset)
    raws = data.raws[:4]
    black = float(np.mean(data.camera.black_level)) / data.camera.white_level
    dim = low_light(raws, 0.1, data.camera, gain=2.2, read_noise=1.5, seed=0)
    assert dim.shape == raws.shape and dim.dtype == torch.float32
    signal, dimmed = (raws - black).mean().item(), (dim - black).mean().item()
    assert dimmed == pytest.approx(0.1 * signal, rel=0.05)
    torch.testing.assert_close(dim, low_light(raws, 0.1, data.camera, gain=2.2, read_noise=1.5, seed=0))
    assert low_light(raws, 1.0, data.camera, gain=2.2, read_noise=1.5, seed=0) is raws


def test_config_errors():
    base = "dataset: {kind: microscopy, root: d}\npipeline: bi,s,me\nmodel: {name: small_cnn, downsample: 3}\n"
    with pytest.raises(ConfigError, match="downsample must be 1 or even"):
        AdjustmentConfig.from_yaml(base)
    with pytest.raises(ConfigError, match=r"arms\[1\]: expected one of \['augmented', 'frozen', 'learned', 'raw'\], got 'tuned'"):
        AdjustmentConfig.from_yaml(base.replace("downsample: 3", "downsample: 2") + "arms: [learned, tuned]\n")
    with pytest.raises(ConfigError, match="intensity factor in \\(0, 1\\]"):
        AdjustmentConfig.from_yaml(base.replace("downsample: 3", "downsample: 2") + "intensities: [0, 1]\n")
    config = AdjustmentConfig.from_yaml(base.replace("downsample: 3", "downsample: 2"))
    assert config.arms == ("learned", "frozen", "raw") and config.intensities == (0.001, 1.0) and config.folds == 5


def test_tracking_records_every_unit(tmp_path, tiny):
    import mlflow.tracking

    config = tiny.config("adjustment", name="tracked", intensities=[1.0], arms=["learned", "raw"], training={"epochs": 1}, pipeline_lr=None)
    run_adjustment(config, tmp_path / "run")
    client = mlflow.tracking.MlflowClient(f"sqlite:///{tmp_path / 'run' / 'mlflow.db'}")
    runs = {r.info.run_name: r for r in client.search_runs([client.get_experiment_by_name("tracked").experiment_id])}
    assert sorted(runs) == ["1/learned/fold0", "1/learned/fold1", "1/raw/fold0", "1/raw/fold1", "tracked"]
    assert [m.step for m in client.get_metric_history(runs["1/raw/fold1"].info.run_id, "val_accuracy")] == [1]
    assert "final_accuracy/1/learned" in runs["tracked"].data.metrics
