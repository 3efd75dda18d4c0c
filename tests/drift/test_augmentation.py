"""The augmented arm of drift adjustment and the held-out tests of every arm (issue 19, item 3)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from ispkit.drift.adjustment import AdjustmentStudy, run_adjustment
from ispkit.drift.augmentation import AugmentationSampler, AugmentedSource
from ispkit.drift.config import AdjustmentConfig, AugmentationConfig
from ispkit.drift.results import AdjustmentResults, GapClosure
from ispkit.drift.statistics import fold_interval
from ispkit.errors import ConfigError, InputError
from ispkit.pipeline import Pipeline
from ispkit.raw_corruptions import corrupt_raw
from ispkit.tasks import load_checkpoint
from ispkit.tasks.base import downsample_views
from ispkit.tasks.training import evaluate

BASE = 'dataset: {kind: microscopy, root: d}\npipeline: "bi,s,me"\nmodel: {name: small_cnn, downsample: 2}\narms: [frozen, augmented]\n'
SPEC = {
    "pipeline": "bi,s,me",
    "metric": "accuracy",
    "baseline": 0.9,
    "tolerance": 0.05,
    "distance": "l2",
    "note": "empirical",
    "parameters": {
        "gamma.gamma": {"reference": 2.2, "bounds": [0.1, 10.0], "safe_min": 1.8, "safe_max": 2.6, "searched": True},
        "white_balance.gains": {"reference": [-0.6567, 1.9673, 3.5304], "bounds": [-16.0, 16.0], "safe_min": [-0.7, 1.9, 3.4], "safe_max": [-0.6, 2.1, 3.6]},
    },
}


def _spec(tmp_path: Path, **changes) -> Path:
    spec = json.loads(json.dumps(SPEC))
    for key, value in changes.items():
        if key in ("gamma.gamma", "white_balance.gains", "denoise.size", "nonsense.x"):
            spec["parameters"][key] = value
        else:
            spec[key] = value
    path = tmp_path / "operating_spec.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return path


# -- the experiment file ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("augmentation: {corruptions: [low_ligth]}", r"augmentation\.corruptions\[0\]: unknown raw corruption 'low_ligth': did you mean 'low_light'"),
        ("augmentation: {corruptions: []}", r"augmentation\.corruptions: expected a non-empty list of raw corruption names"),
        ("augmentation: {severities: [4, 2]}", r"augmentation\.severities: the lowest severity 4 is above the highest 2"),
        ("augmentation: {severities: [0, 2]}", r"augmentation\.severities\[0\]: expected an integer in \[1, 5\], got 0"),
        ("augmentation: {severities: 3}", r"augmentation\.severities: expected a severity range \[lowest, highest\] within 1\.\.5, got 3"),
        ("augmentation: {clean: 1.0}", r"augmentation\.clean: expected a probability in \[0, 1\), got 1: with clean 1 no sample is ever corrupted"),
        ("augmentation: {clean: -0.1}", r"augmentation\.clean: expected a probability in \[0, 1\), got -0\.1"),
        ("augmentation: {clean: .nan}", r"augmentation\.clean: expected a probability in \[0, 1\)"),
        ("augmentation: {odds: 0.1}", r"augmentation\.odds: unknown augmentation key 'odds'"),
        ("augmentation: {severities: [1, 5]}", r"illuminant at severity 4 fails on camera 'microscopy'"),
        ("augmentation: {operating_spec: nowhere.yaml}", r"augmentation\.operating_spec: operating spec '.*nowhere\.yaml' not found \(no such file\)"),
        ("held_out: {corruptions: [motion_blur], severities: [3, 4]}", r"held_out\.corruptions\[0\]: motion_blur at severity 3 is drawn in training"),
        ('held_out: {pipelines: ["bi,s,me"]}', r"held_out\.pipelines\[0\]: 'bi,s,me' is the experiment's own pipeline"),
        ("held_out: {corruptions: [glare]}", r"held_out\.corruptions\[0\]: unknown raw corruption 'glare'"),
    ],
)
def test_config_errors_name_the_key_and_line(extra, message):
    with pytest.raises(ConfigError, match=message) as caught:
        AdjustmentConfig.from_yaml(BASE + extra + "\n")
    assert caught.value.line == 5


def test_augmentation_without_the_arm_is_refused():
    with pytest.raises(ConfigError, match=r"augmentation configures the augmented arm, which arms \['frozen'\] does not list"):
        AdjustmentConfig.from_yaml(BASE.replace(", augmented", "") + "augmentation: {clean: 0.5}\n")


def test_config_defaults_hold_out_the_other_five_corruptions_and_every_other_preset():
    config = AdjustmentConfig.from_yaml(BASE)
    assert config.augmentation == AugmentationConfig()
    assert config.augmentation.corruptions == ("low_light", "motion_blur", "vignetting", "illuminant", "fixed_pattern_noise")
    assert config.augmentation.severities == (1, 3) and config.augmentation.clean == 0.25
    assert config.held_out.corruptions == ("overexposure", "lens_shading", "chromatic_aberration", "defective_pixels", "dark_current")
    assert config.held_out.cells()[:2] == [("overexposure", 3), ("lens_shading", 3)]
    assert len(config.held_out.pipelines) == 11 and "bi,s,me" not in config.held_out.pipelines
    assert AdjustmentConfig.from_yaml(BASE.replace("arms: [frozen, augmented]\n", "")).arms == ("learned", "frozen", "raw")
    # a trained corruption held out at a severity outside the training range is a held-out cell
    config = AdjustmentConfig.from_yaml(BASE + "held_out: {corruptions: [motion_blur], severities: [5], pipelines: []}\n")
    assert config.held_out.cells() == [("motion_blur", 5)] and config.held_out.pipelines == ()


def test_operating_spec_is_read_and_checked_at_its_own_line(tmp_path):
    experiment = tmp_path / "exp.yaml"
    experiment.write_text(BASE + "augmentation: {operating_spec: operating_spec.yaml}\n", encoding="utf-8")
    _spec(tmp_path)
    config = AdjustmentConfig.from_yaml(experiment)
    assert config.augmentation.operating_spec == tmp_path / "operating_spec.yaml"
    assert config.augmentation.ranges == {"gamma.gamma": (1.8, 2.6), "white_balance.gains": ([-0.7, 1.9, 3.4], [-0.6, 2.1, 3.6])}
    bad = {
        "pipeline": (
            "bi,s,ga",
            r"operating_spec\.yaml:1:\d+: pipeline: this operating spec is of pipeline 'bi,s,ga', but the experiment .* trains on 'bi,s,me'",
        ),
        "nonsense.x": ({"safe_min": 1, "safe_max": 2}, r"parameters\.nonsense\.x: 'nonsense\.x' is not a parameter of pipeline 'bi,s,me'"),
        "denoise.size": ({"safe_min": 3, "safe_max": 5}, r"'denoise\.size' is not a continuous parameter"),
        "gamma.gamma": ({"safe_min": 2.6, "safe_max": 1.8}, r"parameters\.gamma\.gamma\.safe_min: safe_min is above safe_max"),
        "white_balance.gains": (
            {"safe_min": [1.0, 2.0], "safe_max": [1.0, 2.0, 3.0]},
            r"white_balance\.gains\.safe_min: expected finite numbers of the parameter's shape \(3,\)",
        ),
    }
    for key, (value, message) in bad.items():
        _spec(tmp_path, **{key: value})
        with pytest.raises(ConfigError, match=message) as caught:
            AdjustmentConfig.from_yaml(experiment)
        assert caught.value.source == str(tmp_path / "operating_spec.yaml") and caught.value.line is not None
    _spec(tmp_path, **{"gamma.gamma": {"safe_min": 0.5, "safe_max": 20.0}})
    with pytest.raises(ConfigError, match=r"gamma\.gamma\.safe_max: not a valid value of gamma\.gamma"):
        AdjustmentConfig.from_yaml(experiment)
    _spec(tmp_path, **{"gamma.gamma": {"safe_min": ".nan", "safe_max": 2.0}})
    with pytest.raises(ConfigError, match=r"gamma\.gamma\.safe_min: expected a number or a list of numbers"):
        AdjustmentConfig.from_yaml(experiment)
    (tmp_path / "operating_spec.yaml").write_text("- just\n- a list\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="an operating spec must be a mapping, got list"):
        AdjustmentConfig.from_yaml(experiment)
    (tmp_path / "operating_spec.yaml").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    with pytest.raises(ConfigError, match="not a YAML text file"):
        AdjustmentConfig.from_yaml(experiment)
    (tmp_path / "operating_spec.yaml").unlink()
    (tmp_path / "operating_spec.yaml").mkdir()
    with pytest.raises(ConfigError, match=r"not found \(a folder\)"):
        AdjustmentConfig.from_yaml(experiment)


# -- the draws ----------------------------------------------------------------------------------


def test_draws_are_seeded_per_epoch_and_sample():
    config = AugmentationConfig(clean=0.25)
    sampler = AugmentationSampler(config, seed=11)
    first = sampler.draws(1, range(64))
    assert first == AugmentationSampler(config, seed=11).draws(1, range(64))  # the seed alone decides
    assert [sampler.draw(1, i) for i in reversed(range(64))] == first[::-1]  # whatever the order asked in
    assert sampler.draws(2, range(64)) != first  # another epoch, other draws
    assert AugmentationSampler(config, seed=12).draws(1, range(64)) != first
    seeds = [d.seed for d in first if not d.clean]
    assert len(set(seeds)) == len(seeds)  # every corrupted sample its own random stream
    clean = sum(d.clean for e in range(1, 11) for d in sampler.draws(e, range(100)))
    assert 200 <= clean <= 300  # 1000 draws at probability 0.25


def test_held_out_corruptions_are_never_drawn():
    config = AdjustmentConfig.from_yaml(BASE + "augmentation: {severities: [2, 3]}\nheld_out: {corruptions: [overexposure, motion_blur], severities: [1, 4]}\n")
    sampler = AugmentationSampler(config.augmentation, seed=0)
    drawn = {(d.corruption, d.severity) for e in range(1, 6) for d in sampler.draws(e, range(200)) if not d.clean}
    trained = {(c, s) for c in config.augmentation.corruptions for s in (2, 3)}
    assert drawn == trained  # every training cell drawn, nothing else
    assert not drawn & set(config.held_out.cells())


def test_operating_spec_parameters_are_drawn_within_their_ranges():
    ranges = {"gamma.gamma": (1.8, 2.6), "white_balance.gains": ([-0.7, 1.9, 3.4], [-0.6, 2.1, 3.6])}
    sampler = AugmentationSampler(AugmentationConfig(clean=0.0, ranges=ranges), seed=3)
    draws = sampler.draws(1, range(300))
    gammas = np.array([float(d.params["gamma.gamma"]) for d in draws])
    gains = np.stack([d.params["white_balance.gains"] for d in draws])
    assert 1.8 <= gammas.min() < 1.85 and 2.55 < gammas.max() <= 2.6
    assert (gains >= [-0.7, 1.9, 3.4]).all() and (gains <= [-0.6, 2.1, 3.6]).all() and gains.std(axis=0).min() > 0.02


# -- the view source ----------------------------------------------------------------------------


def _study(tmp_path: Path, tiny, **changes) -> AdjustmentStudy:
    config = tiny.config("adjustment", arms=["frozen", "augmented"], intensities=[1.0], **changes)
    return AdjustmentStudy.open(config, tmp_path / "run")


def test_a_clean_draw_is_the_frozen_view_exactly_and_a_corrupted_one_is_not(tmp_path, tiny):
    study = _study(tmp_path, tiny, augmentation={"clean": 0.4})
    bank = study.bank(1.0)
    frozen = bank.source("bi,s,me")
    train, test = study.folds[0]
    sampler = AugmentationSampler(study.config.augmentation, seed=5)
    source = AugmentedSource(sampler, bank.raws, frozen, study.pipeline, study.camera, train, downsample=2, device=study.device)
    index = torch.as_tensor(np.concatenate([train[:12], test[:3]]))
    views = source(index)
    draws = sampler.draws(1, train[:12])
    assert any(d.clean for d in draws) and not all(d.clean for d in draws)
    for row, draw in enumerate(draws):
        same = torch.equal(views[row], frozen(index[row : row + 1])[0])
        assert same == draw.clean, (row, draw)
    assert torch.equal(views[12:], frozen(index[12:]))  # validation samples are never augmented
    again = source(index.flip(0)).flip(0)
    assert torch.equal(again, views)  # within an epoch a sample's view is fixed, wherever it is asked for
    source.set_epoch(2)
    assert not torch.equal(source(index), views)


def test_operating_spec_views_use_the_drawn_parameters(tmp_path, tiny):
    study = _study(tmp_path, tiny)
    bank = study.bank(1.0)
    train = study.folds[0][0][:4]
    config = AugmentationConfig(corruptions=("vignetting",), severities=(1, 1), clean=0.0, ranges={"gamma.gamma": (1.2, 1.2)})
    source = AugmentedSource(
        AugmentationSampler(config, 0), bank.raws, bank.source("bi,s,me"), study.pipeline, study.camera, train, downsample=2, device=study.device
    )
    expected = []
    for draw, i in zip(source.sampler.draws(1, train), train, strict=True):
        raw = corrupt_raw(bank.raws[i : i + 1], "vignetting", 1, camera=study.camera, seed=draw.seed)
        expected.append(downsample_views(study.pipeline.with_params({"gamma.gamma": 1.2}).to_torch()(raw), 2))
    torch.testing.assert_close(source(train), torch.cat(expected))


# -- the study ----------------------------------------------------------------------------------

HELD_OUT = {"corruptions": ["overexposure", "motion_blur"], "severities": [4], "pipelines": ["me,u,ga"]}


def test_resume_gives_the_uninterrupted_result(tmp_path, tiny):
    config = tiny.config("adjustment", arms=["augmented"], intensities=[1.0], training={"epochs": 3}, held_out=HELD_OUT)
    reference = run_adjustment(config, tmp_path / "reference", tracking=False)

    def interrupt(line: str) -> None:
        if "fold 2/2  epoch 2/3" in line:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_adjustment(config, tmp_path / "run", tracking=False, progress=interrupt)
    assert (tmp_path / "run" / "units" / "1" / "augmented" / "fold1" / "train_state.pt").is_file()
    resumed = run_adjustment(config, tmp_path / "run", tracking=False)
    np.testing.assert_array_equal(resumed.curves["1"]["augmented"], reference.curves["1"]["augmented"])
    for kind in ("corruptions", "pipelines"):
        np.testing.assert_array_equal(resumed.held_out["1"][kind]["augmented"], reference.held_out["1"][kind]["augmented"])
    a = load_checkpoint(tmp_path / "run" / "units" / "1" / "augmented" / "fold1" / "model.pt").network.state_dict()
    b = load_checkpoint(tmp_path / "reference" / "units" / "1" / "augmented" / "fold1" / "model.pt").network.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_every_arm_is_tested_on_held_out_cells_and_the_findings_compare_them(tmp_path, tiny):
    config = tiny.config("adjustment", arms=["frozen", "raw", "augmented"], intensities=[1.0], held_out=HELD_OUT)
    results = run_adjustment(config, tmp_path / "run", tracking=False)
    assert results.held_out_cells == {"corruptions": ["overexposure/4", "motion_blur/4"], "pipelines": ["me,u,ga"]}
    scores = results.held_out["1"]
    assert scores["corruptions"]["frozen"].shape == (2, 2) and np.isfinite(scores["corruptions"]["raw"]).all()
    assert np.isnan(scores["pipelines"]["raw"]).all() and np.isfinite(scores["pipelines"]["augmented"]).all()
    assert results.augmentation == {
        "corruptions": ["low_light", "motion_blur", "vignetting", "illuminant", "fixed_pattern_noise"],
        "severities": [1, 3],
        "clean": 0.25,
        "operating_spec": None,
        "parameters": [],
    }

    # the frozen arm's score on a held-out cell is its checkpoint on the study's corrupted raws through the frozen pipeline
    study = AdjustmentStudy.open(config, tmp_path / "run")
    network = load_checkpoint(tmp_path / "run" / "units" / "1" / "frozen" / "fold1" / "model.pt").network
    raws = study.corrupted(1.0, 1, 0)
    views = torch.nn.functional.avg_pool2d(Pipeline.preset("bi,s,me", camera="microscopy").to_torch()(raws), 2)
    targets = study.data.targets[study.folds[1][1]]
    accuracy = evaluate(network, lambda i: views[torch.as_tensor(i)], targets, torch.arange(len(views)))["accuracy"]
    assert scores["corruptions"]["frozen"][0, 1] == pytest.approx(accuracy)
    assert torch.equal(study.corrupted(1.0, 1, 0), raws)  # the same raws for every arm

    findings = results.findings()
    pairs = {(c["a"], c["b"]) for c in findings["held_out_comparisons"]["corruptions"]["1"]}
    assert pairs == {("frozen", "raw"), ("frozen", "augmented"), ("raw", "augmented")}
    assert {(c["a"], c["b"]) for c in findings["held_out_comparisons"]["pipelines"]["1"]} == {("frozen", "augmented")}
    closure = next(c for c in findings["gap_closed"]["corruptions"]["1"] if c["arm"] == "augmented")
    frozen_gap = results.curves["1"]["frozen"][:, -1] - scores["corruptions"]["frozen"].mean(axis=0)
    gain = scores["corruptions"]["augmented"].mean(axis=0) - scores["corruptions"]["frozen"].mean(axis=0)
    assert closure["gap"]["estimate"] == pytest.approx(frozen_gap.mean()) and closure["gain"]["estimate"] == pytest.approx(gain.mean())
    if frozen_gap.mean() > 0:
        assert closure["share"] == pytest.approx(gain.mean() / frozen_gap.mean())
    text = " ".join(findings["statements"])
    assert "Held-out corruptions (overexposure/4, motion_blur/4), intensity 1" in text
    assert "no score for raw (it sees no pipeline)" in text
    assert "On held-out corruptions at intensity 1 the frozen arm loses" in text and "augmented − frozen" in text
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    assert saved["findings"]["gap_closed"]["pipelines"]["1"][0]["arm"] == "augmented"
    assert AdjustmentResults.load(tmp_path / "run" / "results.json").to_dict() == results.to_dict()
    report = (tmp_path / "run" / "report.html").read_text()
    assert "Held-out corruptions and pipelines" in report and "share of the gap closed" in report and "overexposure/4" in report


def test_results_without_held_out_tests_load(tmp_path):
    r = AdjustmentResults(task="classification", metric="accuracy", pipeline="bi,s,me", intensities=[1.0], arms=["frozen", "augmented"], folds=2, epochs=1,
                          curves={"1": {"frozen": np.array([[0.8], [0.9]]), "augmented": np.array([[0.7], [0.8]])}})  # fmt: skip
    old = {k: v for k, v in r.to_dict().items() if k not in ("held_out", "held_out_cells", "augmentation", "findings")}
    (tmp_path / "results.json").write_text(json.dumps(old))
    loaded = AdjustmentResults.load(tmp_path / "results.json")
    assert loaded.held_out is None and loaded.findings()["gap_closed"] == {"corruptions": {}, "pipelines": {}}
    assert [c["a"] + "/" + c["b"] for c in loaded.findings()["comparisons"]["1"]] == ["frozen/augmented"]


def test_a_changed_operating_spec_is_refused_on_resume(tmp_path, tiny):
    spec = _spec(tmp_path)
    config = tiny.config("adjustment", arms=["augmented"], intensities=[1.0], augmentation={"operating_spec": str(spec)})
    AdjustmentStudy.open(config, tmp_path / "run")
    assert (tmp_path / "run" / "operating_spec.yaml").read_text() == spec.read_text()
    _spec(tmp_path, **{"gamma.gamma": {"safe_min": 2.0, "safe_max": 2.2}})
    with pytest.raises(InputError, match="changed since this run started"):
        AdjustmentStudy.open(tiny.config("adjustment", arms=["augmented"], intensities=[1.0], augmentation={"operating_spec": str(spec)}), tmp_path / "run")


def test_gap_closure_in_words():
    gap = fold_interval(np.array([0.2, 0.3, 0.25]))
    closing = GapClosure("augmented", gap, fold_interval(np.array([0.1, 0.12, 0.08])), 0.4, 0.2, 0.6)
    assert closing.statement().startswith("augmented closes 40% of it (95% CI 20% to 60% of the mean gap; augmented − frozen +0.100 (95% CI ")
    widening = GapClosure("raw", gap, fold_interval(np.array([-0.1, -0.12, -0.08])), -0.4, -0.6, -0.2)
    assert widening.statement().startswith("raw widens it by 40% (95% CI 20% to 60% of the mean gap; raw − frozen −0.100 (95% CI ")
    no_gap = GapClosure("raw", fold_interval(np.array([-0.01, 0.0, -0.02])), fold_interval(np.array([0.01, 0.02, 0.0])), math.nan, math.nan, math.nan)
    assert no_gap.statement().startswith("raw − frozen +0.010 (95% CI ")
