"""The third-party plugins in plugins/, installed into the environment, through every path a user has.

Each plugin is its own distribution (``pip install -e plugins/ispkit-plugin-optics``; the
test command installs both). With no change to ispkit, their stages must appear in
``ispkit plugins``, in pipeline YAML, in drift-synthesis experiments and in the napari
composer; and a broken plugin installed beside them must not take them down.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import numpy as np
import pytest
import torch

from ispkit import Pipeline
from ispkit.registry import Registry, reset_registry

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("ispkit_plugin_optics") is None or importlib.util.find_spec("ispkit_plugin_denoise") is None,
    reason="the plugins in plugins/ are not installed (bash scripts/install.sh installs them)",
)

LENS_AND_BILATERAL = """
name: lens-bilateral
camera: microscopy
stages:
  - kind: lens
    method: airy
    params: {na: 0.75}
  - kind: black_level
  - kind: demosaic
    method: bilinear
  - kind: white_balance
  - kind: color_correction
  - kind: sharpen
    method: filter
  - kind: denoise
    method: bilateral
  - kind: gamma
"""


@pytest.fixture(autouse=True)
def fresh_registry(monkeypatch):
    monkeypatch.delenv("ISPKIT_DISABLE_PLUGINS", raising=False)
    reset_registry()
    yield
    reset_registry()


def test_registry_and_cli_list_both_plugins():
    stages = Registry().stages()
    assert stages[("lens", "airy")].provider == "ispkit-plugin-optics"
    assert stages[("lens", "gaussian")].provider == "ispkit-plugin-optics"
    for method in ("bilateral", "tv_chambolle", "nl_means"):
        assert stages[("denoise", method)].provider == "ispkit-plugin-denoise"
    out = subprocess.run([sys.executable, "-m", "ispkit", "plugins"], capture_output=True, text=True, check=True).stdout
    assert "ispkit-plugin-optics" in out and "ispkit-plugin-denoise" in out


def test_yaml_pipeline_with_both_plugins_runs_in_both_backends():
    pipeline = Pipeline.from_yaml(LENS_AND_BILATERAL)
    raw = np.random.default_rng(0).random((2, 32, 32))
    views = pipeline(raw)
    module = pipeline.to_torch(trainable=["lens"], dtype=torch.float64)
    out = module(torch.from_numpy(raw))
    np.testing.assert_allclose(out.detach().numpy(), views, atol=1e-6)
    out.mean().backward()
    assert module.lens.na.grad is not None and torch.isfinite(module.lens.na.grad)
    assert Pipeline.from_yaml(pipeline.to_yaml()) == pipeline


def test_a_drift_synthesis_experiment_uses_a_plugin_pipeline(tmp_path):
    from ispkit.drift.config import SynthesisConfig
    from ispkit.drift.synthesis import run_synthesis

    (tmp_path / "lens_bilateral.yaml").write_text(LENS_AND_BILATERAL)
    experiment = tmp_path / "exp.yaml"
    experiment.write_text(
        "name: plugins\ndataset: {kind: microscopy, root: data, synthetic: {n: 30, size: 64}}\n"
        'pipelines: {train: ["bi,s,me"], test: ["bi,s,me", lens_bilateral.yaml]}\n'
        "model: {name: small_cnn, downsample: 2}\ntraining: {epochs: 1, batch_size: 8}\nfolds: 2\n"
        "corruptions: {names: [contrast], severities: [3]}\n"
    )
    results = run_synthesis(SynthesisConfig.from_yaml(experiment), tmp_path / "run", tracking=False)
    assert results.test_pipelines == ["bi,s,me", "lens_bilateral"]
    assert results.metrics["accuracy"].shape == (1, 2, 2)


def test_the_napari_composer_offers_plugin_methods():
    composer = pytest.importorskip("napari_drift.logic.composer")
    model = composer.ComposerModel(Pipeline.from_yaml(LENS_AND_BILATERAL))
    rows = {row.name: row for row in model.rows()}
    assert {"airy", "gaussian"} <= set(rows["lens"].methods)
    assert {"bilateral", "tv_chambolle", "nl_means", "gaussian", "median"} <= set(rows["denoise"].methods)
    model.set_method("denoise", "tv_chambolle")
    assert model.pipeline["denoise"].stage.method == "tv_chambolle"


def test_a_broken_plugin_does_not_take_the_others_down(tmp_path, monkeypatch):
    (tmp_path / "ispkit_plugin_broken_beside.py").write_text("raise ImportError('this plugin is broken on purpose')\n")
    info = tmp_path / "ispkit_plugin_broken_beside-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: ispkit-plugin-broken-beside\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[ispkit]\nbroken_beside = ispkit_plugin_broken_beside\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = Registry(strict=False)
    stages = registry.stages()
    assert ("lens", "airy") in stages and ("denoise", "bilateral") in stages
    assert [f.distribution for f in registry.failures] == ["ispkit-plugin-broken-beside"]
    assert "broken on purpose" in registry.failures[0].error
