"""Point-spread functions: known physics, backend agreement, gradients, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import special

from ispkit.errors import ParameterError
from ispkit_plugin_optics.psf import (
    AIRY_FIRST_ZERO,
    WAVELENGTHS_NM,
    airy_psf,
    airy_psf_numpy,
    bessel_j1,
    gaussian_psf,
    gaussian_psf_numpy,
    gaussian_sigma_um,
)

T = dict(dtype=torch.float64)
MICRO = (0.95, 40.0, 6.5)  # NA, magnification, pixel pitch (µm)
DRONE = (1 / 16, 1.0, 2.4)  # f/8 → image-side NA 1/(2N), image space, 2.4 µm pixels


def _second_moment(k: np.ndarray) -> float:
    r = k.shape[-1] // 2
    d = np.arange(-r, r + 1)
    return float((k * (d[:, None] ** 2 + d[None, :] ** 2)).sum())


@pytest.mark.parametrize("optics", [MICRO, DRONE])
@pytest.mark.parametrize("defocus", [0.0, 1.5])
def test_kernels_sum_to_one_and_are_symmetric(optics, defocus):
    for k in (airy_psf_numpy(*optics, np.array(WAVELENGTHS_NM), defocus), gaussian_psf_numpy(*optics, np.array(WAVELENGTHS_NM), defocus)):
        assert k.shape == (3, 9, 9)
        np.testing.assert_allclose(k.sum(axis=(-2, -1)), 1.0, atol=1e-14)
        assert np.all(k >= 0)
        np.testing.assert_allclose(k, k[:, ::-1, :], atol=1e-15)
        np.testing.assert_allclose(k, k.transpose(0, 2, 1), atol=1e-15)


def test_airy_first_zero_at_0_61_lambda_over_na():
    na, lam = 0.8, 500.0
    r_zero_um = AIRY_FIRST_ZERO / (2 * math.pi) * lam * 1e-3 / na
    assert r_zero_um == pytest.approx(0.6098 * lam * 1e-3 / na, rel=1e-4)
    # point samples (one per pixel, 1 nm pixels in the object plane) along the x axis
    k = airy_psf_numpy(na, 1.0, 1e-3, lam, radius=500, supersample=1)
    profile = k[500, 500:]
    first_min = int(np.argmax(np.diff(profile) > 0))  # first pixel after which the profile rises
    assert abs(first_min * 1e-3 - r_zero_um) <= 1e-3
    assert profile[first_min] / profile[0] < 1e-5


def test_gaussian_sigma_relation():
    assert gaussian_sigma_um(0.95, 525.0) == pytest.approx(0.21 * 0.525 / 0.95)
    # with pixels far finer than σ the pixel-integrated kernel has variance σ² per axis
    na, lam = 0.5, 600.0
    sigma = gaussian_sigma_um(na, lam)
    pixel = sigma / 20
    k = gaussian_psf_numpy(na, 1.0, pixel, lam, radius=120)
    variance_px = _second_moment(k) / 2
    assert math.sqrt(variance_px) * pixel == pytest.approx(sigma, rel=1e-3)
    # and it matches the Airy core: the Gaussian and Airy peaks differ little
    airy = airy_psf_numpy(na, 1.0, pixel, lam, radius=120, supersample=1)
    assert airy[120, 120] == pytest.approx(k[120, 120], rel=0.1)


@pytest.mark.parametrize("psf", [airy_psf_numpy, gaussian_psf_numpy])
def test_larger_na_is_narrower(psf):
    widths = [_second_moment(psf(na, 40.0, 6.5, 525.0)) for na in (0.3, 0.6, 0.95)]
    assert widths[0] > widths[1] > widths[2]


@pytest.mark.parametrize("psf", [airy_psf_numpy, gaussian_psf_numpy])
def test_defocus_widens_symmetrically(psf):
    widths = [_second_moment(psf(*MICRO, 525.0, dz)) for dz in (0.0, 0.5, 1.0, 2.0)]
    assert widths == sorted(widths) and widths[0] < widths[-1]
    np.testing.assert_allclose(psf(*MICRO, 525.0, -1.0), psf(*MICRO, 525.0, 1.0), atol=1e-15)


def test_longer_wavelength_is_wider():
    k = airy_psf_numpy(*MICRO, np.array(WAVELENGTHS_NM))
    assert _second_moment(k[0]) > _second_moment(k[1]) > _second_moment(k[2])


def test_bessel_j1_matches_scipy_and_has_the_right_derivative():
    v = np.linspace(0.0, 120.0, 4001)
    np.testing.assert_allclose(bessel_j1(torch.tensor(v, **T)).numpy(), special.j1(v), atol=3e-15)
    x = torch.tensor([0.0, 0.3, 3.0, 7.5, 40.0], **T, requires_grad=True)
    (grad,) = torch.autograd.grad(bessel_j1(x).sum(), x)
    xv = x.detach().numpy()
    expected = np.where(xv == 0, 0.5, special.j0(xv) - special.j1(np.where(xv == 0, 1, xv)) / np.where(xv == 0, 1, xv))
    np.testing.assert_allclose(grad.numpy(), expected, atol=1e-13)


@pytest.mark.parametrize("optics", [MICRO, DRONE, (0.3, 10.0, 6.5)])
@pytest.mark.parametrize("defocus", [0.0, -0.7, 25.0])
@pytest.mark.parametrize("pair", [(airy_psf_numpy, airy_psf), (gaussian_psf_numpy, gaussian_psf)])
def test_backends_agree(optics, defocus, pair):
    reference, twin = pair
    expected = reference(*optics, np.array(WAVELENGTHS_NM), defocus)
    got = twin(torch.tensor(optics[0], **T), optics[1], optics[2], torch.tensor(WAVELENGTHS_NM, **T), defocus)
    np.testing.assert_allclose(got.numpy(), expected, atol=1e-12, rtol=0)


@pytest.mark.parametrize("twin", [airy_psf, gaussian_psf])
def test_gradcheck_na_scale_and_defocus(twin):
    def f(na, pitch, dz):
        return twin(na, 40.0, pitch, torch.tensor([620.0, 450.0], **T), dz, radius=2, **({"supersample": 3} if twin is airy_psf else {}))

    args = (torch.tensor(0.9, **T, requires_grad=True), torch.tensor(6.5, **T, requires_grad=True), torch.tensor(0.4, **T, requires_grad=True))
    assert torch.autograd.gradcheck(f, args)


@pytest.mark.parametrize("psf", [airy_psf_numpy, gaussian_psf_numpy, airy_psf, gaussian_psf])
@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        ((0.0, 40.0, 6.5, 525.0), {}),
        ((2.5, 40.0, 6.5, 525.0), {}),
        ((0.9, -1.0, 6.5, 525.0), {}),
        ((0.9, 40.0, 0.0, 525.0), {}),
        ((0.9, 40.0, 6.5, float("nan")), {}),
        ((0.9, 40.0, 6.5, 525.0), {"radius": -1}),
    ],
)
def test_bad_parameters_raise(psf, args, kwargs):
    with pytest.raises(ParameterError):
        psf(*args, **kwargs)
