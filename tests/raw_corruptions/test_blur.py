"""ispkit.raw_corruptions.blur: the motion PSF conserves energy, points along its angle, and blurs per CFA colour."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ispkit.camera import Camera
from ispkit.cfa import BAYER_PATTERNS, masks_numpy
from ispkit.raw_corruptions import corrupt_raw
from ispkit.raw_corruptions.blur import cfa_blur, cfa_blur_each, cfa_blur_numpy, motion_kernel


@pytest.mark.parametrize("length", [0.0, 0.7, 3.0, 8.0, 25.0])
@pytest.mark.parametrize("angle", [0.0, 17.0, 45.0, 90.0, 133.0])
def test_the_kernel_sums_to_one_and_is_centred(length, angle):
    k = motion_kernel(length, angle)
    assert k.shape[0] == k.shape[1] == 2 * int(np.ceil(length / 2)) + 1
    assert k.sum() == pytest.approx(1.0, abs=1e-12) and k.min() >= 0
    np.testing.assert_allclose(k, k[::-1, ::-1], atol=1e-15)  # a segment centred on the pixel


@pytest.mark.parametrize("angle", [0.0, 30.0, 60.0, 90.0, 150.0])
def test_the_kernel_spreads_along_its_angle_over_its_length(angle):
    """Second moments: along the motion the box's L²/12 plus the splat's; across it, the splat's alone (bilinear, < 1/4 px²)."""
    length = 12.0
    k = motion_kernel(length, angle)
    r = k.shape[0] // 2
    rows, cols = np.mgrid[-r : r + 1, -r : r + 1]
    theta = np.deg2rad(angle)
    along = cols * np.cos(theta) - rows * np.sin(theta)
    across = cols * np.sin(theta) + rows * np.cos(theta)
    assert (k * along**2).sum() == pytest.approx(length**2 / 12, abs=0.35)
    assert (k * across**2).sum() < 0.25


def test_a_horizontal_motion_is_a_box_seen_by_pixels():
    np.testing.assert_allclose(motion_kernel(4.0, 0.0)[2], [0.125, 0.25, 0.25, 0.25, 0.125], atol=1e-15)
    assert motion_kernel(4.0, 0.0)[[0, 1, 3, 4]].sum() == 0.0


@pytest.mark.parametrize("pattern", BAYER_PATTERNS)
def test_a_flat_field_stays_flat_in_both_backends(pattern):
    camera = Camera(name="flat", pattern=pattern)
    flat = np.tensordot([0.2, 0.5, 0.8], masks_numpy((32, 32), pattern), axes=1)  # a grey scene under coloured light: one value per colour
    for values in ({"length_px": 9.0, "angle_deg": 35.0}, {"length_px": 25.0, "angle_deg": 90.0}):
        np.testing.assert_allclose(corrupt_raw(flat, "motion_blur", camera=camera, **values), flat, atol=1e-12)
        np.testing.assert_allclose(corrupt_raw(torch.from_numpy(flat), "motion_blur", camera=camera, **values).numpy(), flat, atol=1e-12)


@pytest.mark.parametrize("pattern", BAYER_PATTERNS)
@pytest.mark.parametrize("angle", [0.0, 45.0, 110.0])
def test_each_colour_keeps_its_energy_away_from_the_borders(pattern, angle):
    """A point of light at a site of each colour: the colour's plane keeps its sum, the other colours stay dark."""
    for site in range(4):
        raw = np.zeros((40, 40))
        raw[20 + site // 2, 20 + site % 2] = 1.0
        out = cfa_blur_numpy(raw, motion_kernel(9.0, angle), pattern)
        colour = masks_numpy(raw.shape, pattern)[:, 20 + site // 2, 20 + site % 2].argmax()
        mask = masks_numpy(raw.shape, pattern)[colour]
        assert out[mask].sum() == pytest.approx(1.0, abs=1e-12) and out[~mask].sum() == 0.0
        assert out.max() < 0.5  # it was spread


def test_numpy_and_torch_blur_agree_on_a_natural_raw(natural_raw):
    kernel = motion_kernel(7.5, 21.0)
    expected = np.stack([cfa_blur_numpy(image, kernel, "GRBG") for image in natural_raw])
    np.testing.assert_allclose(cfa_blur(torch.from_numpy(natural_raw), torch.from_numpy(kernel), "GRBG").numpy(), expected, atol=1e-13)


def test_one_kernel_per_colour_blurs_each_colour_by_its_own(natural_raw):
    """(3, k, k) kernels: each colour's sites are those of the blur by that colour's kernel alone, in both backends."""
    kernels = [motion_kernel(3.0, 0.0), motion_kernel(7.0, 90.0), motion_kernel(5.0, 45.0)]
    kernels = np.stack([np.pad(k, (9 - k.shape[0]) // 2) for k in kernels])  # one size (9 × 9), centred
    image = natural_raw[0]
    out = cfa_blur_numpy(image, kernels, "BGGR")
    masks = masks_numpy(image.shape, "BGGR")
    for c in range(3):
        np.testing.assert_array_equal(out[masks[c]], cfa_blur_numpy(image, kernels[c], "BGGR")[masks[c]])
    np.testing.assert_allclose(cfa_blur(torch.from_numpy(image), torch.from_numpy(kernels), "BGGR").numpy(), out, atol=1e-13)
    with pytest.raises(ValueError, match=r"expected a kernel \(k, k\) or one per colour \(3, k, k\), got shape \(2, 9, 9\)"):
        cfa_blur_numpy(image, kernels[:2], "BGGR")


@pytest.mark.parametrize("n", [1, 3, 5])
def test_each_image_blurred_by_its_own_kernel_equals_one_call_per_image(natural_raw, n):
    raws = torch.from_numpy(np.resize(natural_raw, (n, *natural_raw.shape[1:])))
    kernels = torch.stack([torch.from_numpy(motion_kernel(6.0, angle)) for angle in np.linspace(0.0, 170.0, n)])
    expected = torch.stack([cfa_blur(image, kernel, "RGGB") for image, kernel in zip(raws, kernels, strict=True)])
    torch.testing.assert_close(cfa_blur_each(raws, kernels, "RGGB"), expected, rtol=0, atol=1e-13)


def test_a_random_angle_is_drawn_per_image(natural_raw, camera):
    """Without an angle, each image gets its own uniform direction; a horizontal one blurs rows only."""
    stripes = np.tile(np.repeat([0.2, 0.7], 4)[:, None], (8, 64))  # horizontal stripes 4 rows high
    fixed = corrupt_raw(stripes, "motion_blur", camera=camera, length_px=15.0, angle_deg=0.0)
    np.testing.assert_allclose(fixed, stripes, atol=1e-12)  # motion along the stripes changes nothing
    drawn = corrupt_raw(np.stack([stripes] * 3), "motion_blur", camera=camera, length_px=15.0, seed=4)
    assert all(np.abs(image - stripes).max() > 0.01 for image in drawn)
