"""ispkit.raw_corruptions.defects: stuck pixels at the stated density, row/column offsets and banding of the stated size."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from ispkit.raw_corruptions import corrupt_raw


def _within_binomial(count: int, n: int, p: float, sigmas: float = 5.0) -> bool:
    return abs(count - n * p) <= sigmas * np.sqrt(n * p * (1 - p))


@pytest.mark.parametrize("density", [1e-3, 1e-2])
def test_defect_counts_follow_the_density(density, camera):
    raw = np.full((4, 256, 256), 0.4)
    out = corrupt_raw(torch.from_numpy(raw), "defective_pixels", camera=camera, density=density, seed=0).numpy()
    ceiling = 65520 / 65535
    black = np.tile(np.reshape(camera.black_level, (2, 2)), (128, 128))
    changed = out != raw
    hot, dead = changed & (out == ceiling), changed & (out == black)
    assert np.array_equal(changed, hot | dead)  # a defective pixel is stuck at D_max or at black, nothing else
    assert _within_binomial(int(changed.sum()), raw.size, density)
    assert _within_binomial(int(hot.sum()), int(changed.sum()), 0.5)
    for image in changed:  # and per image
        assert _within_binomial(int(image.sum()), image.size, density)


def test_density_bounds(natural_raw, camera):
    np.testing.assert_array_equal(corrupt_raw(natural_raw, "defective_pixels", camera=camera, density=0.0, seed=0), natural_raw)
    every = corrupt_raw(natural_raw, "defective_pixels", camera=camera, density=1.0, hot_fraction=1.0, seed=0)
    assert np.all(every == 65520 / 65535)


def test_row_and_column_offsets_have_the_stated_spread(camera):
    """Per-row offsets of σ_row e⁻ are g·σ_row DN across rows and constant along a row (to the ADC step); columns likewise."""
    flat = np.full((8, 256, 256), 13104 / 65535)
    g, step = camera.stored_gain, camera.justification
    rows = corrupt_raw(torch.from_numpy(flat), "fixed_pattern_noise", camera=camera, row_sigma_e=20.0, column_sigma_e=0.0, banding_e=0.0, seed=1).numpy()
    offsets = (rows - flat) * 65535
    assert offsets.mean(axis=2).std() == pytest.approx(g * 20.0, rel=0.05)
    assert offsets.std(axis=2).max() <= step  # within a row: rounding alone
    cols = corrupt_raw(torch.from_numpy(flat), "fixed_pattern_noise", camera=camera, row_sigma_e=0.0, column_sigma_e=10.0, banding_e=0.0, seed=2).numpy()
    offsets = (cols - flat) * 65535
    assert offsets.mean(axis=1).std() == pytest.approx(g * 10.0, rel=0.05)
    assert offsets.std(axis=1).max() <= step


def test_banding_has_the_stated_amplitude_and_period(camera):
    flat = np.full((2, 256, 64), 13104 / 65535)
    band = corrupt_raw(torch.from_numpy(flat), "fixed_pattern_noise", camera=camera, row_sigma_e=0.0, column_sigma_e=0.0, banding_e=30.0, seed=3).numpy()
    profile = ((band - flat) * 65535).mean(axis=2)  # (2, 256) row offsets in DN
    phase = 2 * np.pi * (np.arange(256) + 0.5) / 32.0
    for rows in profile:
        amplitude = 2 * np.hypot(np.mean(rows * np.sin(phase)), np.mean(rows * np.cos(phase)))
        assert amplitude == pytest.approx(camera.stored_gain * 30.0, rel=0.02)
        spectrum = np.abs(np.fft.rfft(rows))
        assert spectrum.argmax() == 256 // 32
    assert not np.allclose(profile[0], profile[1])  # each image its own phase


def test_the_pattern_is_fixed_by_the_seed_and_needs_the_gain(natural_raw, camera):
    first = corrupt_raw(natural_raw, "fixed_pattern_noise", 4, camera=camera, seed=9)
    np.testing.assert_array_equal(first, corrupt_raw(natural_raw, "fixed_pattern_noise", 4, camera=camera, seed=9))
    with pytest.raises(Exception, match="needs the camera's gain"):
        corrupt_raw(natural_raw, "fixed_pattern_noise", 4, camera=dataclasses.replace(camera, gain=None), seed=9)
