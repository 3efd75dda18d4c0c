"""Experiment YAML: parsing, defaults, and errors that point at the line."""

from __future__ import annotations

from pathlib import Path

import pytest

from ispkit.corruptions import CORRUPTIONS
from ispkit.drift.config import AdjustmentConfig, ForensicsConfig, SynthesisConfig
from ispkit.errors import ConfigError
from ispkit.pipeline import Pipeline, presets

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"

MINIMAL = """\
dataset: {kind: microscopy, root: data}
pipelines: {train: all, test: all}
model: {name: small_cnn}
"""


def test_defaults_and_relative_root(tmp_path):
    file = tmp_path / "exp.yaml"
    file.write_text(MINIMAL)
    config = SynthesisConfig.from_yaml(file)
    assert config.name == "exp" and config.seed == 0 and config.device == "auto"
    assert config.dataset.root == (tmp_path / "data").resolve() and config.dataset.intensity == 1.0
    assert config.dataset.task == "classification"
    assert config.train_pipelines == tuple(presets()) == config.test_pipelines
    assert config.folds == 5 and config.training.epochs == 10
    assert config.corruptions.names == tuple(CORRUPTIONS) and config.corruptions.severities == (3,)
    assert config.corruptions.scale is None
    assert config.text == MINIMAL
    assert config.threads is None and config.training.recalibrate_bn is False


def test_adjustment_recalibrates_batchnorm_by_default_and_threads_are_checked():
    base = "dataset: {kind: microscopy, root: data}\npipeline: bi,s,me\nmodel: {name: small_cnn}\n"
    assert AdjustmentConfig.from_yaml(base).training.recalibrate_bn is True
    assert AdjustmentConfig.from_yaml(base + "training: {recalibrate_bn: false}\n").training.recalibrate_bn is False
    assert AdjustmentConfig.from_yaml(base + "threads: 3\n").threads == 3
    with pytest.raises(ConfigError, match="threads: expected an integer >= 1, got 0"):
        AdjustmentConfig.from_yaml(base + "threads: 0\n")


def test_pipeline_yaml_files_are_labelled_by_stem(tmp_path):
    custom = tmp_path / "my_isp.yaml"
    custom.write_text(Pipeline.preset("ma,s,ga").to_yaml())
    file = tmp_path / "exp.yaml"
    file.write_text(MINIMAL.replace("{train: all, test: all}", '{train: ["bi,s,me", my_isp.yaml], test: ["bi,s,me", my_isp.yaml]}'))
    config = SynthesisConfig.from_yaml(file)
    assert config.train_pipelines == ("bi,s,me", "my_isp")
    assert config.pipeline("my_isp", "microscopy") == Pipeline.preset("ma,s,ga")
    assert config.pipeline("bi,s,me", "microscopy") == Pipeline.preset("bi,s,me")


@pytest.mark.parametrize(
    ("change", "message", "line"),
    [
        (("model: {name: small_cnn}", "model: {name: small_cn}"), "did you mean 'small_cnn'", 3),
        (("model: {name: small_cnn}", "model: {name: small_unet}"), "segmentation model but dataset kind 'microscopy'", 3),
        (("kind: microscopy", "kind: microscope"), "expected one of", 1),
        (("{train: all, test: all}", '{train: ["bi,s,me"], test: ["me,u,ga"]}'), "missing \\['bi,s,me'\\]", 2),
        (("{train: all, test: all}", "{train: [bi,s,me], test: all}"), "unknown preset 'bi'", 2),
        (("{train: all, test: all}", '{train: ["bi,s,me", "bi,s,me"], test: all}'), "listed twice", 2),
        (("{train: all, test: all}", "{train: all, tests: all}"), "did you mean 'test'", 2),
        (("{kind: microscopy, root: data}", "{kind: microscopy, root: data, intensity: 0.3}"), "was not published", 1),
        (("{kind: microscopy, root: data}", "{kind: microscopy, root: data, synthetic: {frames: 2}}"), "unknown synthetic microscopy setting", 1),
    ],
)
def test_errors_name_the_problem_and_the_line(tmp_path, change, message, line):
    file = tmp_path / "exp.yaml"
    file.write_text(MINIMAL.replace(*change))
    with pytest.raises(ConfigError, match=message) as info:
        SynthesisConfig.from_yaml(file)
    assert info.value.line == line and info.value.source == str(file)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("folds: 1", "integer >= 2"),
        ("training: {epochs: 0}", "epochs must be a positive integer"),
        ("training: {epoch: 3}", "did you mean 'epochs'"),
        ("corruptions: {severities: [6]}", "severities 1..5"),
        ("corruptions: {names: [fog]}", "expected 'all' or a list"),
        ("corruptions: {scale: -1}", "positive number"),
        ("device: tpu", "'auto', 'cpu' or 'cuda"),
        ("optimiser: adam", "unknown experiment key 'optimiser'"),
    ],
)
def test_other_errors(extra, message):
    with pytest.raises(ConfigError, match=message):
        SynthesisConfig.from_yaml(MINIMAL + extra + "\n")


KINDS = {"synthesis": SynthesisConfig, "train": SynthesisConfig, "forensics": ForensicsConfig, "adjustment": AdjustmentConfig}


@pytest.mark.parametrize("name", sorted(p.name for p in EXPERIMENTS.glob("*.yaml")))
def test_shipped_experiments_parse(name):
    config = KINDS[name.split("_")[0]].from_yaml(EXPERIMENTS / name)
    assert config.name == Path(name).stem.replace("_", "-")
    assert config.dataset.root.is_absolute()
