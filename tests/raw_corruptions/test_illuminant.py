"""ispkit.raw_corruptions.illuminant: a colour-temperature change as per-channel gains through the camera's colour model."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from ispkit.camera import Camera
from ispkit.cfa import masks_numpy
from ispkit.dng_color import SRGB_FROM_XYZ, correlated_color_temperature, xy_to_xyz
from ispkit.errors import InputError
from ispkit.raw_corruptions import corrupt_raw
from ispkit.raw_corruptions.illuminant import REFERENCE_K, illuminant_gains, planckian_xy

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # colour's note that matplotlib is missing
    import colour

TEMPERATURES = [1700.0, 2000.0, 2500.0, 2856.0, 3500.0, 4500.0, 6504.0, 9000.0, 15000.0, 24000.0]


def _xy(t: float) -> np.ndarray:
    return planckian_xy(torch.tensor(t, dtype=torch.float64)).numpy()


@pytest.mark.parametrize("t", TEMPERATURES)
def test_the_planckian_locus(t):
    """Kang et al. (2002) as colour-science implements it; within 6e-4 of the blackbody (Planck's law and the CIE 1931 observer);
    and Robertson's correlated colour temperature of it (ispkit.dng_color) within 0.5 % of T."""
    np.testing.assert_allclose(_xy(t), colour.temperature.CCT_to_xy_Kang2002(t), atol=1e-12)
    np.testing.assert_allclose(_xy(t), colour.UCS_uv_to_xy(colour.temperature.CCT_to_uv_Planck1900(t)), atol=6e-4)
    assert correlated_color_temperature(_xy(t)) == pytest.approx(t, rel=0.005)


def test_the_reference_is_the_colour_temperature_of_d65():
    assert REFERENCE_K == 6504.0


@pytest.mark.parametrize("name", ["drone", "microscopy"])
def test_the_gains_are_the_camera_s_responses_through_its_own_inverse(name):
    """Gains equal Camera.to_sensor (the inverse of white balance and colour matrix) of the two whites' sRGB, in ratio."""
    camera = Camera.get(name)
    for delta in (-2000.0, 1500.0):
        response = [camera.to_sensor((SRGB_FROM_XYZ @ xy_to_xyz(_xy(t))).reshape(3, 1, 1))[:, 0, 0] for t in (REFERENCE_K + delta, REFERENCE_K)]
        np.testing.assert_allclose(illuminant_gains(camera, delta).numpy(), response[0] / response[1], rtol=1e-12)


@pytest.mark.parametrize("name", ["drone", "microscopy"])
def test_zero_kelvin_is_the_identity(name, natural_raw):
    camera = Camera.get(name)
    assert illuminant_gains(camera, 0.0).tolist() == [1.0, 1.0, 1.0]
    np.testing.assert_allclose(corrupt_raw(natural_raw, "illuminant", camera=camera, delta_k=0.0), natural_raw, rtol=0, atol=1e-16)
    np.testing.assert_allclose(corrupt_raw(torch.from_numpy(natural_raw), "illuminant", camera=camera, delta_k=0.0).numpy(), natural_raw, rtol=0, atol=1e-16)


@pytest.mark.parametrize(("name", "wavelengths"), [("drone", None), ("microscopy", None), ("microscopy", (620.0, 525.0, 450.0))])
def test_warmer_light_raises_red_and_lowers_blue(name, wavelengths):
    camera = Camera.get(name)
    deltas = [-3000.0, -2000.0, -1000.0, 0.0, 2000.0, 5000.0]
    gains = np.array([illuminant_gains(camera, d, wavelengths_nm=wavelengths).numpy() for d in deltas])
    red_over_blue = gains[:, 0] / gains[:, 2]
    assert np.all(np.diff(red_over_blue) < 0)  # the warmer, the redder
    assert gains[0, 0] > 1 > gains[0, 2] and gains[-1, 0] < 1 < gains[-1, 2]


def test_narrow_band_gains_are_planck_s_law_at_the_filters():
    lam = np.array([620e-9, 525e-9, 450e-9])
    c2 = 6.62607015e-34 * 299792458.0 / 1.380649e-23  # h c / k
    planck = lambda t: lam**-5 / np.expm1(c2 / (lam * t))  # noqa: E731
    expected = (planck(3000.0) / planck(6504.0)) / (planck(3000.0)[1] / planck(6504.0)[1])
    np.testing.assert_allclose(illuminant_gains(Camera.get("microscopy"), -3504.0, wavelengths_nm=(620.0, 525.0, 450.0)).numpy(), expected, rtol=1e-6)


@pytest.mark.parametrize("pattern", ["RGGB", "GRBG"])
def test_each_site_s_signal_above_black_gets_its_colour_s_gain(pattern):
    drone = Camera.get("drone")
    camera = Camera(name="c", pattern=pattern, black_level=(0.05,) * 4, color_matrix=drone.color_matrix, white_balance=drone.white_balance)
    flat = np.full((8, 8), 0.3)
    gains = illuminant_gains(camera, -2500.0).numpy()
    expected = 0.05 + 0.25 * np.tensordot(gains, masks_numpy(flat.shape, pattern), axes=1)
    np.testing.assert_allclose(corrupt_raw(flat, "illuminant", camera=camera, delta_k=-2500.0), expected, atol=1e-15)


def test_bright_pixels_saturate(natural_raw, camera):
    out = corrupt_raw(np.full((8, 8), 0.95), "illuminant", 5, camera=camera)
    assert out.max() == 65520 / 65535


def test_a_colour_model_without_a_positive_response_is_named(natural_raw):
    with pytest.raises(InputError, match=r"the colour model of camera 'microscopy' gives the channel responses .* at 2504 K .*wavelengths_nm"):
        corrupt_raw(natural_raw, "illuminant", 5, camera="microscopy")
    corrupt_raw(natural_raw, "illuminant", 5, camera="microscopy", wavelengths_nm=(620.0, 525.0, 450.0))  # the narrow-band model is defined


def test_temperatures_outside_the_locus_are_named(natural_raw):
    with pytest.raises(InputError, match=r"reference_k \+ delta_k = 1504 K is outside the Planckian locus model's 1667\.\.25000 K"):
        corrupt_raw(natural_raw, "illuminant", camera="drone", delta_k=-5000.0)


def test_differentiable_in_the_temperature_shift():
    camera = Camera.get("drone")
    raw = torch.rand(1, 6, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(2)) * 0.5 + 0.1
    delta = torch.tensor(-1800.0, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda r, d: corrupt_raw(r, "illuminant", camera=camera, delta_k=d), (raw.requires_grad_(), delta.requires_grad_()))
