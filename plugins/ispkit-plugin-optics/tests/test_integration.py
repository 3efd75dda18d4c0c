"""The plugin as installed (``pip install -e plugins/ispkit-plugin-optics``): registry, YAML, torch, CLI."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

import ispkit.registry
from ispkit import Pipeline
from ispkit.errors import ConfigError, ParameterError
from ispkit_plugin_optics.lens import AiryLens, GaussianLens

YAML = """
name: lens,bi,s,ga
camera: microscopy
stages:
  - kind: lens
    method: {method}
    params: {{na: 0.75, defocus_um: 0.5}}
  - kind: black_level
  - kind: demosaic
    method: bilinear
  - kind: white_balance
  - kind: color_correction
  - kind: sharpen
    method: filter
  - kind: denoise
    method: gaussian
  - kind: gamma
"""

DRONE_YAML = """
camera: drone
stages:
  - kind: lens
    method: airy
    params: {na: 0.0625, magnification: 1.0, pixel_pitch_um: 2.4, wavelengths_nm: [600.0, 530.0, 460.0]}
  - kind: black_level
  - kind: demosaic
    method: malvar2004
  - kind: gamma
"""


@pytest.fixture
def fresh_registry():
    ispkit.registry.reset_registry()
    yield ispkit.registry.get_registry()
    ispkit.registry.reset_registry()


def test_registry_lists_lens_from_the_distribution(fresh_registry):
    assert "lens" in fresh_registry.kinds()
    assert fresh_registry.methods("lens") == ["airy", "gaussian"]
    entries = fresh_registry.stages()
    assert entries[("lens", "airy")].stage is AiryLens
    assert entries[("lens", "gaussian")].stage is GaussianLens
    assert entries[("lens", "airy")].provider == "ispkit-plugin-optics"
    assert entries[("lens", "gaussian")].provider == "ispkit-plugin-optics"
    assert not [f for f in fresh_registry.failures if f.distribution == "ispkit-plugin-optics"]


@pytest.mark.parametrize("method", ["airy", "gaussian"])
def test_yaml_pipeline_runs_in_both_backends_and_trains(fresh_registry, method):
    pipeline = Pipeline.from_yaml(YAML.format(method=method))
    assert pipeline.stages[0].stage.kind == "lens" and pipeline["lens"].stage.method == method
    assert float(pipeline.params()["lens.na"]) == 0.75
    raw = np.random.default_rng(0).uniform(0.05, 0.6, (2, 16, 16))
    static = pipeline(raw)
    module = pipeline.to_torch(trainable=["lens"], dtype=torch.float64)
    para = module(torch.tensor(raw))
    assert static.shape == para.shape == (2, 3, 16, 16)
    np.testing.assert_allclose(para.detach().numpy(), static, atol=1e-9, rtol=0)
    names = {n for n, _ in module.named_parameters()}
    assert {"lens.na", "lens.magnification", "lens.pixel_pitch_um", "lens.defocus_um", "lens.wavelengths_nm"} == names
    para.sum().backward()
    for name in ("na", "defocus_um", "pixel_pitch_um"):
        grad = getattr(module.lens, name).grad
        assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0, name
    # the YAML form round-trips with the lens stage in it
    assert Pipeline.from_yaml(pipeline.to_yaml()) == pipeline


def test_lens_changes_the_output_and_the_drone_setting_runs(fresh_registry):
    raw = np.random.default_rng(1).uniform(0.07, 0.6, (24, 24))
    with_lens = Pipeline.from_yaml(DRONE_YAML)
    without = Pipeline([s.to_dict() for s in with_lens.stages[1:]], camera="drone")
    assert np.abs(with_lens(raw) - without(raw)).max() > 1e-3
    np.testing.assert_allclose(with_lens.to_torch(dtype=torch.float64)(torch.tensor(raw)).numpy(), with_lens(raw), atol=1e-9, rtol=0)


def test_bad_parameters(fresh_registry):
    pipeline = Pipeline.from_yaml(YAML.format(method="airy"))
    with pytest.raises(ParameterError):
        pipeline.with_params({"lens.na": 3.0})
    with pytest.raises(ParameterError):
        pipeline.with_params({"lens.defocus_um": float("inf")})
    with pytest.raises(ConfigError, match=r"lens\.na"):  # YAML errors carry the position
        Pipeline.from_yaml(YAML.format(method="airy").replace("na: 0.75", "na: -0.75"))


def test_lens_after_demosaic_is_rejected(fresh_registry):
    with pytest.raises(ConfigError, match="raw mosaic"):
        Pipeline([{"kind": "demosaic", "method": "bilinear"}, {"kind": "lens", "method": "airy"}])


def test_cli_lists_the_plugin():
    result = subprocess.run([sys.executable, "-m", "ispkit", "plugins"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    lines = [line.split() for line in result.stdout.splitlines()]
    assert ["lens", "airy", "raw→raw", "ispkit-plugin-optics"] in lines
    assert ["lens", "gaussian", "raw→raw", "ispkit-plugin-optics"] in lines
