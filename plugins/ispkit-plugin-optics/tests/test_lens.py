"""The lens stage: ispkit's conformance kit, backend agreement, flat fields, gradients, bad parameters."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ispkit.errors import ParameterError
from ispkit.testing import assert_backends_agree, check_stage
from ispkit_plugin_optics.lens import AiryLens, GaussianLens, lens_blur, lens_blur_numpy
from ispkit_plugin_optics.psf import WAVELENGTHS_NM, airy_psf_numpy

T = dict(dtype=torch.float64)
STAGES = [AiryLens, GaussianLens]


def _values(stage, **overrides):
    values = {p.name: p.validate(overrides.get(p.name, p.default), p.name) for p in stage.params}
    return values


def _torch_values(values):
    return {k: (torch.tensor(v, **T) if isinstance(v, np.ndarray) else v) for k, v in values.items()}


@pytest.mark.parametrize("stage", STAGES)
def test_meets_the_stage_contract(stage):
    check_stage(stage)


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("pattern", ["RGGB", "GRBG", "BGGR", "GBRG"])
@pytest.mark.parametrize("overrides", [{"defocus_um": 0.8, "radius": 3}, {"na": 1 / 16, "magnification": 1.0, "pixel_pitch_um": 2.4, "defocus_um": 40.0}])
def test_backends_agree_out_of_focus_and_in_image_space(stage, pattern, overrides):
    raw = np.random.default_rng(0).random((2, 14, 18))
    assert_backends_agree(stage, raw, _values(stage, **overrides), pattern)


@pytest.mark.parametrize("stage", STAGES)
def test_flat_colour_planes_stay_flat(stage):
    raw = np.tile(np.array([[0.2, 0.5], [0.5, 0.9]]), (6, 8))  # R = 0.2, G = 0.5, B = 0.9 on RGGB
    out = stage.run_numpy(raw, _values(stage, defocus_um=1.0), "RGGB")
    np.testing.assert_allclose(out, raw, atol=1e-14)


def test_blur_mixes_only_same_colour_samples_and_spreads_a_point():
    raw = np.zeros((16, 16))
    raw[8, 8] = 1.0  # a red site on RGGB
    out = AiryLens.run_numpy(raw, _values(AiryLens), "RGGB")
    red = np.zeros((16, 16), bool)
    red[::2, ::2] = True
    assert np.all(out[~red] == 0)
    assert 0 < out[8, 8] < 1 and out[8, 10] > 0 and out[10, 10] > 0


def test_stronger_defocus_blurs_more():
    rng = np.random.default_rng(1)
    raw = rng.random((16, 16))
    deviation = [np.abs(GaussianLens.run_numpy(raw, _values(GaussianLens, defocus_um=dz), "RGGB") - raw).mean() for dz in (0.0, 1.0, 3.0)]
    assert deviation[0] < deviation[1] < deviation[2]


def test_lens_blur_with_delta_kernels_is_identity():
    raw = np.random.default_rng(2).random((10, 12))
    delta = np.zeros((3, 5, 5))
    delta[:, 2, 2] = 1.0
    np.testing.assert_allclose(lens_blur_numpy(raw, delta, "GBRG"), raw, atol=0)
    np.testing.assert_allclose(lens_blur(torch.tensor(raw[None]), torch.tensor(delta), "GBRG")[0].numpy(), raw, atol=0)


@pytest.mark.parametrize("stage", STAGES)
def test_gradcheck_in_na_and_defocus(stage):
    raw = torch.rand(1, 6, 6, **T, generator=torch.Generator().manual_seed(3))
    values = _torch_values(_values(stage, radius=2, **({"supersample": 3} if stage is AiryLens else {})))

    def f(na, defocus):
        return stage.torch(raw, **{**values, "na": na, "defocus_um": defocus}, pattern="RGGB")

    args = (torch.tensor(0.9, **T, requires_grad=True), torch.tensor(0.6, **T, requires_grad=True))
    assert torch.autograd.gradcheck(f, args)


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("na", 0.0),
        ("na", 2.0),
        ("magnification", -1.0),
        ("pixel_pitch_um", 0.0),
        ("defocus_um", 5000.0),
        ("wavelengths_nm", (620.0, 525.0)),
        ("wavelengths_nm", (620.0, 525.0, 50.0)),
        ("radius", 0),
        ("radius", 2.5),
    ],
)
def test_bad_parameters_raise_parameter_error(stage, name, value):
    with pytest.raises(ParameterError):
        stage.param(name).validate(value, f"lens.{name}")


def test_defaults_are_the_published_microscope():
    values = _values(AiryLens)
    assert float(values["na"]) == 0.95 and float(values["magnification"]) == 40.0
    assert tuple(values["wavelengths_nm"]) == WAVELENGTHS_NM == (620.0, 525.0, 450.0)
    assert airy_psf_numpy(0.95, 40.0, 6.5, 450.0).shape == (9, 9)
