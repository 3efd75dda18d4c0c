"""ispkit.raw_corruptions.exposure: low light on the photon-transfer line, overexposure clipping at the white level."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from ispkit.camera import Camera
from ispkit.raw_corruptions import corrupt_raw
from ispkit.sensor import acquire, fit_gain, photon_transfer


def _flats(camera: Camera, levels: tuple[float, ...], size: int = 128, seed: int = 0) -> np.ndarray:
    """Pairs ``(K, 2, size, size)`` of independently acquired flat fields at the scene ``levels`` (fractions of full scale)."""
    scenes = np.stack([np.full((3, size, size), level) for level in levels for _ in range(2)])
    return acquire(scenes, camera, seed=seed).reshape(len(levels), 2, size, size)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_low_light_lies_on_the_photon_transfer_line(backend, camera):
    """Variance = g · mean + (1 + f²)(g² σ² + J²/12): the gain is recovered from the thinned flats, and the read-noise floor."""
    f = 0.1
    flats = _flats(camera, (0.1, 0.3, 0.5, 0.7, 0.9))  # below saturation
    flat = flats.reshape(-1, *flats.shape[-2:])
    dim = corrupt_raw(flat if backend == "numpy" else torch.from_numpy(flat), "low_light", camera=camera, exposure=f, seed=1)
    dim = np.asarray(dim).reshape(flats.shape)
    means, variances = photon_transfer(dim, camera)
    g, j = camera.stored_gain, camera.justification
    assert fit_gain(means, variances) == pytest.approx(g, rel=0.03)
    floor = (1 + f**2) * (g**2 * camera.read_noise**2 + j**2 / 12)
    np.testing.assert_allclose(variances, g * means + floor, rtol=0.05)


def test_low_light_scales_the_mean_signal_by_the_exposure(natural_raw, camera):
    black = camera.black_level[0]
    for f in (0.3, 0.03):
        out = corrupt_raw(torch.from_numpy(natural_raw), "low_light", camera=camera, exposure=f, seed=2).numpy()
        assert (out.mean() - black) == pytest.approx(f * (natural_raw.mean() - black), rel=0.01)


def test_low_light_at_full_exposure_adds_only_read_noise(natural_raw, camera):
    """f = 1 keeps every electron: the output is the input plus fresh read noise, g² σ² + J²/12 DN² (module docstring)."""
    for raw in (natural_raw, torch.from_numpy(natural_raw)):
        out = np.asarray(corrupt_raw(raw, "low_light", camera=camera, exposure=1.0, seed=0))
        difference = (out - natural_raw) * camera.white_level
        assert difference.mean() == pytest.approx(0.0, abs=1.0)
        assert difference.var() == pytest.approx(camera.stored_gain**2 * camera.read_noise**2 + camera.justification**2 / 12, rel=0.05)


def test_low_light_gradient_in_the_exposure_is_the_mean_signal(natural_raw, camera):
    """d E[x'] / d f = E[S] / W: the pathwise gradient of the thinned count is that of its mean, plus a zero-mean noise term."""
    f = torch.tensor(0.1, dtype=torch.float64, requires_grad=True)
    out = corrupt_raw(torch.from_numpy(natural_raw), "low_light", camera=camera, exposure=f, seed=3)
    (grad,) = torch.autograd.grad(out.mean(), f)
    signal = natural_raw.mean() - np.mean(camera.black_level)
    assert float(grad) == pytest.approx(signal, rel=0.02)


def test_overexposure_clips_at_the_white_level():
    """A 16-bit camera stores up to its white level, 1.0: pixels whose a·S exceed it are exactly 1, the others scale by a."""
    camera = Camera(name="sixteen", bit_depth=16, container_bits=16, gain=2.0, read_noise=1.0, black_level=(0.01,) * 4)
    raw = np.linspace(0.05, 0.9, 64 * 64).reshape(64, 64)
    out = corrupt_raw(torch.from_numpy(raw), "overexposure", camera=camera, exposure=4.0, seed=0).numpy()
    signal = raw - 0.01
    bright = 0.01 + 4.0 * signal > 1.02
    assert out.max() == 1.0 and np.all(out[bright] == 1.0)
    dim = 0.01 + 4.0 * signal < 0.98
    shot = np.sqrt(2.0 * 3.0 * signal[dim] * camera.white_level) / camera.white_level  # g (a - 1) S, normalised
    assert np.all(np.abs(out[dim] - (0.01 + 4.0 * signal[dim])) < 5 * shot)
    assert (out == 1.0).sum() >= bright.sum()


def test_overexposure_adds_the_shot_noise_of_the_extra_light(camera):
    """On a flat of signal S: mean a·S and variance g (a − 1) S + J²/12 in DN² (the input's own noise aside)."""
    camera = dataclasses.replace(camera, black_level=(0.0625,) * 4)
    white, g, a = camera.white_level, camera.stored_gain, 2.0
    flat = np.full((4, 64, 64), 13104 / white)  # on the 12-bit grid: 819 · 16
    signal = 13104 - 0.0625 * white
    out = corrupt_raw(torch.from_numpy(flat), "overexposure", camera=camera, exposure=a, seed=5).numpy() * white
    assert out.mean() - 0.0625 * white == pytest.approx(a * signal, rel=0.002)
    assert out.var() == pytest.approx(g * (a - 1) * signal + camera.justification**2 / 12, rel=0.05)


def test_the_drone_saturates_at_its_adc_range(natural_raw, camera):
    """12 bits left-justified: the largest stored number is 4095 · 16 = 65520, i.e. 0.99977 of the white level."""
    out = corrupt_raw(natural_raw, "overexposure", 5, camera=camera, seed=0)
    assert out.max() == 65520 / 65535 and (out == 65520 / 65535).mean() > 0.5
