"""ispkit.raw_corruptions.thermal: dark current's mean and Poisson variance against the closed form."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ispkit.raw_corruptions import corrupt_raw
from ispkit.raw_corruptions.thermal import dark_electrons

FLAT_DN = 13104  # 819 · 16: on the drone's 12-bit grid


@pytest.mark.parametrize("temperature", [35.0, 45.0, 60.0])
def test_dark_signal_mean_and_variance_are_the_closed_form(temperature, camera):
    """Mean g μ_d and variance g² μ_d + J²/12 DN² with μ_d = 10 e⁻/s · 2^((T − 25)/6.3) · 1 s."""
    flat = np.full((4, 128, 128), FLAT_DN / camera.white_level)
    out = corrupt_raw(torch.from_numpy(flat), "dark_current", camera=camera, temperature_c=temperature, seed=0).numpy()
    added = (out - flat) * camera.white_level
    g, mu = camera.stored_gain, 10.0 * 2.0 ** ((temperature - 25.0) / 6.3)
    assert dark_electrons(temperature, 25.0, 10.0, 6.3, 1.0) == pytest.approx(mu, rel=1e-12)
    assert added.mean() == pytest.approx(g * mu, abs=4 * np.sqrt(g**2 * mu / added.size) + 1.0)
    assert added.var() == pytest.approx(g**2 * mu + camera.justification**2 / 12, rel=0.05)


def test_the_dark_signal_doubles_every_doubling_temperature(camera):
    flat = np.full((2, 128, 128), FLAT_DN / camera.white_level)
    means = [
        ((corrupt_raw(torch.from_numpy(flat), "dark_current", camera=camera, temperature_c=t, seed=1).numpy() - flat) * camera.white_level).mean()
        for t in (40.0, 46.3, 52.6)
    ]
    assert means[1] / means[0] == pytest.approx(2.0, rel=0.02) and means[2] / means[1] == pytest.approx(2.0, rel=0.02)


def test_longer_exposure_collects_more_dark_signal_and_saturated_pixels_stay(camera):
    flat = np.full((1, 64, 64), FLAT_DN / camera.white_level)
    short, long = (
        ((corrupt_raw(flat, "dark_current", camera=camera, temperature_c=45.0, exposure_s=s, seed=2) - flat) * camera.white_level).mean() for s in (0.5, 2.0)
    )
    assert long / short == pytest.approx(4.0, rel=0.05)
    saturated = np.full((1, 8, 8), 65520 / 65535)
    np.testing.assert_array_equal(corrupt_raw(saturated, "dark_current", 5, camera=camera, seed=0), saturated)


def test_gradient_in_the_temperature_is_the_mean_s_derivative(camera):
    """d E[x'] / dT = g μ_d ln 2 / T_d / W (the pathwise gradient of the Poisson count is its mean's, plus zero-mean noise)."""
    temperature = torch.tensor(45.0, dtype=torch.float64, requires_grad=True)
    flat = torch.full((2, 64, 64), FLAT_DN / camera.white_level, dtype=torch.float64)
    out = corrupt_raw(flat, "dark_current", camera=camera, temperature_c=temperature, seed=3)
    (grad,) = torch.autograd.grad(out.mean(), temperature)
    mu = 10.0 * 2.0 ** (20.0 / 6.3)
    assert float(grad) == pytest.approx(camera.stored_gain * mu * np.log(2) / 6.3 / camera.white_level, rel=0.02)
