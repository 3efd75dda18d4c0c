"""Tests of ispkit-plugin-denoise: ispkit's conformance kit, known values, gradients, errors, integration.

The stage contract (shapes, batches, dtypes, devices, backend agreement within 1e-6 in
float64 and 1e-4 in float32 on random, natural and integer-DN planes, gradcheck, bounds)
is checked by :func:`ispkit.testing.check_stage`; agreement at further parameter values
by :func:`ispkit.testing.assert_backends_agree`.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

import ispkit
from ispkit.errors import ParameterError
from ispkit.registry import get_registry, reset_registry
from ispkit.testing import assert_backends_agree, check_stage
from ispkit_plugin_denoise import BilateralDenoise, NLMeansDenoise, TVChambolleDenoise
from ispkit_plugin_denoise.plugin import ispkit_stages

PROVIDER = "ispkit-plugin-denoise"
STAGES = [BilateralDenoise, TVChambolleDenoise, NLMeansDenoise]
CONFIGS = {
    BilateralDenoise: [{}, {"sigma_color": 0.3, "sigma_spatial": 0.7, "win_size": 5}, {"sigma_color": 0.05, "sigma_spatial": 2.0}],
    TVChambolleDenoise: [{}, {"weight": 0.5, "eps": 0.0, "max_num_iter": 30}, {"weight": 0.02, "eps": 1e-3}],
    NLMeansDenoise: [{}, {"h": 0.3, "sigma": 0.05, "patch_size": 3, "patch_distance": 2}, {"h": 1.0, "patch_size": 3, "patch_distance": 1}],
}
# The automatic bilateral window jumps where 3·sigma_spatial is an integer, as at the
# default sigma_spatial = 1.0, where gradcheck's finite difference would straddle the
# jump; win_size = 7 is the window the default picks, so the function is the same.
CONFORMANCE_PARAMS = {BilateralDenoise: {"win_size": 7}}


def values(stage, **overrides):
    raw = {p.name: p.default for p in stage.params} | overrides
    return {name: stage.param(name).validate(v, f"{stage.kind}.{name}") for name, v in raw.items()}


def run_torch(stage, x, vals, dtype):
    t = {k: torch.tensor(v, dtype=dtype) if isinstance(v, np.ndarray) else v for k, v in vals.items()}
    return stage.torch(torch.as_tensor(x, dtype=dtype), **t).detach().double().numpy()


def planes(seed):
    rng = np.random.default_rng(seed)
    out = []
    for shape in [(8, 9), (3, 2), (2, 5), (16, 12)]:
        out.append(rng.uniform(-0.25, 1.25, shape))
        out.append((rng.random(shape) < 0.5).astype(float))
        yy, xx = np.mgrid[: shape[0], : shape[1]]
        out.append(np.clip(0.5 + 0.5 * np.sin(0.7 * xx + 1.3 * yy) + 0.05 * rng.standard_normal(shape), 0, 1))
    return out


@pytest.mark.parametrize("stage", STAGES, ids=lambda s: s.method)
def test_declaration(stage):
    assert (stage.kind, stage.takes, stage.gives) == ("denoise", "luma", "luma")
    assert stage in ispkit_stages()


@pytest.mark.parametrize("stage", STAGES, ids=lambda s: s.method)
def test_meets_the_stage_contract(stage):
    check_stage(stage, params=CONFORMANCE_PARAMS.get(stage))


@pytest.mark.parametrize(("stage", "config"), [(s, c) for s in STAGES for c in CONFIGS[s]], ids=lambda v: getattr(v, "method", None) or str(v))
def test_backends_agree_on_small_odd_planes(stage, config):
    vals = values(stage, **config)
    for x in planes(sum(map(ord, stage.method))):
        assert_backends_agree(stage, x[None], vals)


@pytest.mark.parametrize("stage", STAGES, ids=lambda s: s.method)
@pytest.mark.parametrize("level", [0.0, 0.37, -0.2])
def test_constant_unchanged(stage, level):
    x = np.full((6, 7), level)
    vals = values(stage)
    np.testing.assert_allclose(stage.run_numpy(x, vals, "RGGB"), x, atol=1e-12)
    np.testing.assert_allclose(run_torch(stage, x[None], vals, torch.float64)[0], x, atol=1e-12)


def test_tiny_weight_changes_nothing():
    x = planes(5)[0]
    vals = values(TVChambolleDenoise, weight=1e-6)
    np.testing.assert_allclose(TVChambolleDenoise.run_numpy(x, vals, "RGGB"), x, atol=1e-5)
    np.testing.assert_allclose(run_torch(TVChambolleDenoise, x[None], vals, torch.float64)[0], x, atol=1e-5)


def test_tiny_sigma_color_and_h_change_nothing():
    x = np.random.default_rng(2).random((7, 8))
    binary = (x < 0.5).astype(float)  # only distances 0 and 1: the colour weight exp(-½/σ²) vanishes
    b = values(BilateralDenoise, sigma_color=1e-3)
    np.testing.assert_allclose(run_torch(BilateralDenoise, binary[None], b, torch.float64)[0], binary, atol=1e-9)
    n = values(NLMeansDenoise, h=1e-3)
    np.testing.assert_allclose(run_torch(NLMeansDenoise, x[None], n, torch.float64)[0], x, atol=1e-9)


def test_denoising_reduces_noise():
    rng = np.random.default_rng(4)
    clean = np.clip(np.add.outer(np.arange(16), np.arange(16)) / 30.0, 0, 1)
    noisy = clean + 0.05 * rng.standard_normal(clean.shape)
    for stage in STAGES:
        out = stage.run_numpy(noisy, values(stage), "RGGB")
        assert np.abs(out - clean).mean() < np.abs(noisy - clean).mean(), stage.method


GRAD = {
    BilateralDenoise: ["sigma_color", "sigma_spatial"],
    TVChambolleDenoise: ["weight"],
    NLMeansDenoise: ["h", "sigma"],
}


@pytest.mark.parametrize("stage", STAGES, ids=lambda s: s.method)
def test_gradcheck_params(stage):
    x = torch.rand(1, 5, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    base = {k: (torch.tensor(v, dtype=torch.float64) if isinstance(v, np.ndarray) else v) for k, v in values(stage).items()}
    if stage is BilateralDenoise:  # a fixed window: the automatic one jumps where 3·sigma_spatial is an integer
        base["win_size"] = 5
    if stage is TVChambolleDenoise:
        base["max_num_iter"], base["eps"] = 20, torch.tensor(0.0, dtype=torch.float64)
    if stage is NLMeansDenoise:
        base["h"], base["sigma"], base["patch_size"], base["patch_distance"] = (
            torch.tensor(0.5, dtype=torch.float64),
            torch.tensor(0.05, dtype=torch.float64),
            3,
            1,
        )
    names = GRAD[stage]

    def f(*params):
        return stage.torch(x, **(base | dict(zip(names, params, strict=True))))

    inputs = tuple(base[n].clone().requires_grad_(True) for n in names)
    assert torch.autograd.gradcheck(f, inputs)


@pytest.mark.parametrize("stage", [TVChambolleDenoise, NLMeansDenoise], ids=lambda s: s.method)
def test_gradcheck_image(stage):
    vals = values(stage) | (
        {"max_num_iter": 10, "eps": np.array(0.0)} if stage is TVChambolleDenoise else {"h": np.array(0.5), "patch_size": 3, "patch_distance": 1}
    )
    t = {k: torch.tensor(v, dtype=torch.float64) if isinstance(v, np.ndarray) else v for k, v in vals.items()}
    x = torch.rand(1, 4, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(1), requires_grad=True)
    assert torch.autograd.gradcheck(lambda y: stage.torch(y, **t), (x,))


@pytest.mark.parametrize(
    ("stage", "name", "value"),
    [
        (BilateralDenoise, "sigma_color", 0.0),
        (BilateralDenoise, "sigma_spatial", -1.0),
        (BilateralDenoise, "win_size", 2.5),
        (TVChambolleDenoise, "weight", 0.0),
        (TVChambolleDenoise, "max_num_iter", 0),
        (NLMeansDenoise, "h", -0.1),
        (NLMeansDenoise, "patch_size", 1),
        (NLMeansDenoise, "patch_distance", 0),
    ],
)
def test_bad_parameters(stage, name, value):
    with pytest.raises(ParameterError):
        stage.param(name).validate(value, f"denoise.{name}")


def test_even_sizes_rejected_by_backends():
    x = np.random.default_rng(0).random((6, 6))
    with pytest.raises(ParameterError, match="win_size"):
        BilateralDenoise.run_numpy(x, values(BilateralDenoise, win_size=4), "RGGB")
    with pytest.raises(ParameterError, match="patch_size"):
        run_torch(NLMeansDenoise, x[None], values(NLMeansDenoise, patch_size=4), torch.float64)
    with pytest.raises(ispkit.errors.ConfigError, match="sigma_color"):  # the pipeline wraps ParameterError with the YAML location
        ispkit.Pipeline.from_yaml(YAML.replace("sigma_color: 0.2", "sigma_color: -1"))


@pytest.mark.parametrize("stage", [BilateralDenoise, NLMeansDenoise], ids=lambda s: s.method)
def test_one_row_plane_keeps_its_shape(stage):
    """A one-row luma plane never comes out of a pipeline (mosaics have even sides), but the stage contract covers it."""
    assert stage.run_numpy(np.linspace(0.0, 1.0, 5)[None], values(stage), "RGGB").shape == (1, 5)


# -- integration with the plugin installed ----------------------------------------------

YAML = """
name: bilateral-demo
camera: microscopy
stages:
  - kind: black_level
  - kind: demosaic
    method: bilinear
  - kind: white_balance
  - kind: color_correction
  - kind: denoise
    method: bilateral
    params: {sigma_color: 0.2, sigma_spatial: 1.0}
  - kind: gamma
"""


def test_registry_lists_methods():
    reset_registry()
    try:
        stages = get_registry().stages()
        for method, cls in [("bilateral", BilateralDenoise), ("tv_chambolle", TVChambolleDenoise), ("nl_means", NLMeansDenoise)]:
            entry = stages[("denoise", method)]
            assert entry.stage is cls and entry.provider == PROVIDER
        assert {"gaussian", "median", "bilateral", "tv_chambolle", "nl_means"} <= set(get_registry().methods("denoise"))
    finally:
        reset_registry()


@pytest.mark.parametrize("method", ["bilateral", "tv_chambolle", "nl_means"])
def test_yaml_pipeline_backends_agree(method):
    reset_registry()
    params = {
        "bilateral": "{sigma_color: 0.2, sigma_spatial: 1.0}",
        "tv_chambolle": "{weight: 0.05, eps: 0.0, max_num_iter: 20}",
        "nl_means": "{h: 0.2, patch_size: 3, patch_distance: 2}",
    }
    text = YAML.replace("method: bilateral", f"method: {method}").replace("{sigma_color: 0.2, sigma_spatial: 1.0}", params[method])
    pipeline = ispkit.Pipeline.from_yaml(text)
    assert any(s.stage.method == method for s in pipeline.stages)
    raw = np.random.default_rng(0).random((2, 12, 16))
    expected = pipeline(raw)
    got = pipeline.to_torch()(torch.as_tensor(raw)).detach().numpy()
    assert got.shape == expected.shape == (2, 3, 12, 16)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert ispkit.Pipeline.from_yaml(pipeline.to_yaml()).to_dict() == pipeline.to_dict()


def test_yaml_pipeline_trainable():
    module = ispkit.Pipeline.from_yaml(YAML).to_torch(trainable="denoise")
    names = {n for n, _ in module.named_parameters()}
    assert names == {"denoise.sigma_color", "denoise.sigma_spatial"}
    module(torch.rand(1, 8, 8, dtype=torch.float64)).mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in module.parameters())


def test_cli_plugins_lists_provider():
    out = subprocess.run([sys.executable, "-m", "ispkit", "plugins"], capture_output=True, text=True, check=True).stdout
    for method in ("bilateral", "tv_chambolle", "nl_means"):
        line = next(line for line in out.splitlines() if line.split()[:2] == ["denoise", method])
        assert PROVIDER in line
