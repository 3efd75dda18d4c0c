"""ispkit.raw_corruptions.shading: cos⁴ vignetting calibrated at the corners, and the colour lens-shading map."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ispkit.camera import Camera
from ispkit.cfa import masks_numpy
from ispkit.raw_corruptions import corrupt_raw
from ispkit.raw_corruptions.shading import corner_field_angle

BLACK = 0.0625
GREY = 0.5


@pytest.mark.parametrize("angle", [10.0, 30.0, 50.0])
def test_vignetting_at_the_corners_is_cos4_of_the_field_angle(angle):
    camera = Camera(name="flat", black_level=(BLACK,) * 4)
    flat = np.full((48, 64), GREY)
    for out in (
        corrupt_raw(flat, "vignetting", camera=camera, field_angle_deg=angle),
        corrupt_raw(torch.from_numpy(flat), "vignetting", camera=camera, field_angle_deg=angle).numpy(),
    ):
        corners = out[[0, 0, -1, -1], [0, -1, 0, -1]]
        np.testing.assert_allclose(corners, BLACK + (GREY - BLACK) * math.cos(math.radians(angle)) ** 4, rtol=0, atol=1e-14)
        assert out[24, 32] > out[24, 48] > out[24, 63] and out.max() < GREY  # falls off from the centre


def test_vignetting_follows_the_thin_lens_geometry():
    """With θ_c from a focal length and a sensor, every pixel gets cos⁴ atan(r / f) of its own distance r from the axis."""
    pitch_um, focal_mm, (h, w) = 2.4, 0.08, (40, 60)
    angle = corner_field_angle(focal_mm, w, h, pitch_um)
    camera = Camera(name="flat")
    out = corrupt_raw(np.full((h, w), GREY), "vignetting", camera=camera, field_angle_deg=angle)
    rows, cols = np.mgrid[0:h, 0:w] + 0.5
    r_mm = np.hypot(rows - h / 2, cols - w / 2) * pitch_um * 1e-3
    np.testing.assert_allclose(out, GREY * np.cos(np.arctan(r_mm / focal_mm)) ** 4, atol=1e-14)
    assert angle == pytest.approx(math.degrees(math.atan(math.hypot(59, 39) / 2 * 2.4e-3 / 0.08)))


def test_vignetting_leaves_the_black_level_and_is_differentiable_in_its_angle():
    camera = Camera(name="flat", black_level=(BLACK,) * 4)
    np.testing.assert_array_equal(corrupt_raw(np.full((8, 8), BLACK), "vignetting", 5, camera=camera), np.full((8, 8), BLACK))
    raw = torch.rand(2, 8, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 0.8 + 0.1
    angle = torch.tensor(25.0, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda r, a: corrupt_raw(r, "vignetting", camera=camera, field_angle_deg=a), (raw.requires_grad_(), angle.requires_grad_()))


@pytest.mark.parametrize("pattern", ["RGGB", "GBRG"])
def test_lens_shading_keeps_the_corner_gain_and_shades_red_most(pattern):
    """Every pixel gets the measured-style fall-off at its centre (to the map's interpolation error): green c^1, red c^1.25,
    blue c^0.8 at the corner farthest from the off-centre optical centre (0.53, 0.47), about 1 in the middle."""
    camera = Camera(name="flat", pattern=pattern)
    h, w, c = 64, 96, 0.5
    out = corrupt_raw(np.full((h, w), GREY), "lens_shading", camera=camera, corner_gain=c) / GREY
    rows, cols = np.mgrid[0:h, 0:w] + 0.5
    rho2 = ((rows - 0.53 * h) ** 2 + (cols - 0.47 * w) ** 2) / ((0.53 * h) ** 2 + (0.53 * w) ** 2)
    green = 1 - (1 - c) * (0.6 * rho2 + 0.4 * rho2**2)
    expected = np.tensordot([1.25, 1.0, 0.8], masks_numpy((h, w), pattern), axes=1)
    np.testing.assert_allclose(out, green**expected, atol=2e-3)
    assert green[0, -1] == pytest.approx(c, abs=0.03)  # the top-right pixel, half a pixel inside the farthest corner
    assert out[0, -1] < 0.6 and out.max() <= 1.0


def test_lens_shading_is_differentiable_in_its_corner_gain():
    camera = Camera(name="flat", black_level=(BLACK,) * 4)
    raw = torch.rand(1, 6, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(1)) * 0.8 + 0.1
    gain = torch.tensor(0.6, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda r, g: corrupt_raw(r, "lens_shading", camera=camera, corner_gain=g), (raw.requires_grad_(), gain.requires_grad_()))
