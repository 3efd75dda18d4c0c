"""ispkit.raw_corruptions.aberration: each CFA colour's image is magnified about the optical centre by its own factor."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ispkit.camera import Camera
from ispkit.cfa import BAYER_PATTERNS, masks_numpy
from ispkit.raw_corruptions import corrupt_raw

SIZE = 128


def _blobs(pattern: str, offsets: dict[int, tuple[float, float]]) -> np.ndarray:
    """A dark mosaic with a Gaussian spot (σ = 3 px) of colour ``c`` at ``centre + offsets[c]`` (pixel coordinates)."""
    rows, cols = np.mgrid[0:SIZE, 0:SIZE] + 0.5
    masks = masks_numpy((SIZE, SIZE), pattern)
    raw = np.zeros((SIZE, SIZE))
    for colour, (dy, dx) in offsets.items():
        spot = 0.8 * np.exp(-((rows - SIZE / 2 - dy) ** 2 + (cols - SIZE / 2 - dx) ** 2) / (2 * 3.0**2))
        raw += np.where(masks[colour], spot, 0.0)
    return raw


def _centroid(raw: np.ndarray, mask: np.ndarray) -> np.ndarray:
    rows, cols = np.mgrid[0 : raw.shape[0], 0 : raw.shape[1]] + 0.5
    weights = np.where(mask, raw, 0.0)
    return np.array([(weights * rows).sum(), (weights * cols).sum()]) / weights.sum() - SIZE / 2


@pytest.mark.parametrize("pattern", BAYER_PATTERNS)
def test_a_point_moves_by_its_colour_s_magnification(pattern):
    offsets = {0: (30.0, -20.0), 1: (-25.0, 28.0), 2: (22.0, 31.0)}
    raw = _blobs(pattern, offsets)
    camera = Camera(name="ca", pattern=pattern)
    masks = masks_numpy(raw.shape, pattern)
    for out in (
        corrupt_raw(raw, "chromatic_aberration", camera=camera, red_pct=2.0, blue_pct=-1.5),
        corrupt_raw(torch.from_numpy(raw), "chromatic_aberration", camera=camera, red_pct=2.0, blue_pct=-1.5).numpy(),
    ):
        np.testing.assert_allclose(_centroid(out, masks[0]), 1.02 * np.array(offsets[0]), atol=0.05)
        np.testing.assert_allclose(_centroid(out, masks[2]), 0.985 * np.array(offsets[2]), atol=0.05)
        np.testing.assert_array_equal(out[masks[1]], raw[masks[1]])  # green is the reference


@pytest.mark.parametrize("pattern", BAYER_PATTERNS)
def test_a_flat_field_stays_flat_and_zero_is_the_identity(pattern, natural_raw):
    camera = Camera(name="ca", pattern=pattern)
    flat = np.tensordot([0.2, 0.5, 0.8], masks_numpy((32, 32), pattern), axes=1)
    np.testing.assert_allclose(corrupt_raw(flat, "chromatic_aberration", 5, camera=camera), flat, atol=1e-15)
    np.testing.assert_allclose(corrupt_raw(natural_raw, "chromatic_aberration", camera=camera, red_pct=0.0, blue_pct=0.0), natural_raw, atol=1e-15)


def test_differentiable_in_both_magnifications():
    camera = Camera(name="ca", pattern="BGGR")
    raw = torch.rand(2, 8, 10, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 0.8 + 0.1
    red, blue = torch.tensor(3.0, dtype=torch.float64), torch.tensor(-2.0, dtype=torch.float64)
    assert torch.autograd.gradcheck(
        lambda r, a, b: corrupt_raw(r, "chromatic_aberration", camera=camera, red_pct=a, blue_pct=b),
        (raw.requires_grad_(), red.requires_grad_(), blue.requires_grad_()),
    )
