"""Flat-field estimation: the fitted map is the lens_shading stage's own model, corrects flats, and refuses bad frames."""

from __future__ import annotations

import numpy as np
import pytest

from ispkit import Pipeline
from ispkit.camera import SHADING_POINTS, Camera
from ispkit.errors import InputError
from ispkit.flatfield import SPACING, design_matrix, estimate, with_gain_map
from ispkit.stages.lens_shading import gain_map_numpy

RNG = np.random.default_rng(23)
H, W = 96, 128


def shading(grid: np.ndarray, h: int = H, w: int = W) -> np.ndarray:
    """The gain the lens_shading stage applies at every pixel for the map ``grid`` spanning the image."""
    return gain_map_numpy(np.ones((h, w)), grid, np.zeros(2), np.full(2, SPACING))


def per_site_spread(image: np.ndarray) -> float:
    """Largest relative standard deviation over the four CFA sites."""
    return max(float(image[r::2, c::2].std() / image[r::2, c::2].mean()) for r in (0, 1) for c in (0, 1))


def smooth_grid(low: float = 1.0, high: float = 2.0) -> np.ndarray:
    from scipy.ndimage import gaussian_filter

    return np.stack([low + (high - low) * gaussian_filter(RNG.random((SHADING_POINTS, SHADING_POINTS)), 4, mode="nearest") / 0.6 for _ in range(4)])


def test_design_matrix_is_how_the_stage_reads_the_map():
    grid = RNG.uniform(0.5, 2.0, (4, SHADING_POINTS, SHADING_POINTS))
    gains = shading(grid)
    for site in range(4):
        dr, dc = divmod(site, 2)
        np.testing.assert_allclose(design_matrix(H, dr) @ grid[site] @ design_matrix(W, dc).T, gains[dr::2, dc::2], rtol=1e-12)


def test_recovers_a_map_of_the_stages_own_form():
    """Flats lit as 0.4 / shading(grid): the estimate is the grid up to one factor per site, so it flattens them exactly."""
    grid = smooth_grid()
    flat = 0.4 / shading(grid)
    gains = estimate(flat, smoothness=1e-9)
    for site in range(4):
        ratio = gains[site] / grid[site]
        assert ratio.std() / ratio.mean() < 1e-6
    corrected = flat * shading(gains)
    assert per_site_spread(flat) > 0.02 and per_site_spread(corrected) < 1e-6


def test_each_site_keeps_its_mean_level():
    """Colour is left to white balance: a site's corrected flat has the site's mean signal."""
    flat = 0.2 * np.tile(np.array([[1.0, 1.5], [1.5, 0.5]]), (H // 2, W // 2)) / shading(smooth_grid())
    corrected = flat * shading(estimate(flat))
    for r in (0, 1):
        for c in (0, 1):
            assert corrected[r::2, c::2].mean() == pytest.approx(flat[r::2, c::2].mean(), rel=2e-3)


def test_vignetting_from_noisy_frames():
    """A radial fall-off to 55 % at the corners, 16 frames with shot noise: the corrected flat is flat to the noise."""
    yy, xx = (np.mgrid[0:H, 0:W] + 0.5) / np.array([H, W])[:, None, None]
    light = 0.6 * (1 - 0.45 * ((yy - 0.5) ** 2 + (xx - 0.5) ** 2) / 0.5)
    frames = RNG.poisson(light * 4000, (16, H, W)) / 4000
    corrected = light * shading(estimate(frames))
    assert per_site_spread(light) > 0.1 and per_site_spread(corrected) < 0.005


def test_dark_frames_or_the_cameras_black_level():
    black = (0.05, 0.06, 0.07, 0.05)
    camera = Camera(name="scope", black_level=black)
    flat = 0.3 / shading(smooth_grid()) + np.tile(np.array(black).reshape(2, 2), (H // 2, W // 2))
    by_camera = estimate(flat, camera)
    dark = np.tile(np.array(black).reshape(2, 2), (H // 2, W // 2)) + RNG.normal(0, 1e-4, (8, H, W))
    by_dark = estimate(flat, dark=dark)
    np.testing.assert_allclose(shading(by_dark), shading(by_camera), rtol=2e-3)  # the gains the pixels get
    assert not np.allclose(shading(estimate(flat)), shading(by_camera), rtol=0.02)  # ignoring the black level gives another map


def test_an_image_narrower_than_the_grid_is_extended_linearly():
    """A 12×16 mosaic has 6×8 pixels per site for 33×33 points: the penalty fills the rest, the gains stay positive and fit."""
    yy, xx = np.mgrid[0:12, 0:16]
    flat = 0.5 * (1 + 0.02 * yy + 0.03 * xx) ** -1.0
    gains = estimate(flat)
    assert np.all(gains > 0)
    corrected = flat * gain_map_numpy(np.ones((12, 16)), gains, np.zeros(2), np.full(2, SPACING))
    assert per_site_spread(corrected) < 0.01 * per_site_spread(flat) + 1e-4


def test_the_stage_corrects_with_the_cameras_map():
    grid = smooth_grid()
    flat = 0.4 / shading(grid)
    camera = with_gain_map(Camera(name="scope"), estimate(flat))
    assert camera.shading_origin == (0.0, 0.0) and camera.shading_spacing == (SPACING, SPACING)
    pipeline = Pipeline([{"kind": "black_level"}, {"kind": "lens_shading", "method": "gain_map"}, {"kind": "demosaic", "method": "bilinear"}], camera)
    before = Pipeline([{"kind": "demosaic", "method": "bilinear"}], camera)(flat)[:, 2:-2, 2:-2]
    after = pipeline(flat)[:, 2:-2, 2:-2]  # green mixes two sites, each kept at its own level: a faint checkerboard remains
    assert after.std(axis=(1, 2)).max() < 2e-3 * after.mean() < 0.1 * before.std(axis=(1, 2)).max()
    assert Camera.from_yaml(camera.to_yaml()) == camera


@pytest.mark.parametrize(
    ("frames", "kwargs", "problem"),
    [
        (np.zeros((3, 5, 4)), {}, "height and width must be even"),
        (np.full((4, 4), np.nan), {}, "finite"),
        (np.ones((4, 4), dtype=np.int64), {}, "expected float raw mosaics"),
        (np.ones((4, 4)) * 0.5, {"dark": np.zeros((6, 4))}, "dark frames are 6×4, the flat frames 4×4"),
        (np.ones((4, 4)) * 0.5, {"dark": np.full((4, 4), 0.6)}, "CFA site 0 of the flat frames has mean signal -0.1"),
        (np.ones((4, 4)) * 0.5, {"smoothness": 0.0}, "smoothness must be a positive number"),
        (np.where(np.eye(4) > 0, 0.0, 0.5), {}, "pixel\\(s\\) of CFA site 0 are at or below black"),
    ],
)
def test_refuses(frames, kwargs, problem):
    with pytest.raises(InputError, match=problem):
        estimate(frames, **kwargs)


class TestCroppedShading:
    def test_every_remaining_pixel_keeps_its_gain(self):
        from ispkit.flatfield import cropped_shading
        from ispkit.stages.lens_shading import radial_numpy

        camera = Camera(
            name="c",
            shading_map=smooth_grid(),
            shading_origin=(0.02, -0.03),
            shading_spacing=(1 / 20, 1 / 28),
            vignette=(0.4, -0.1, 0.05, 0.0, 0.01),
            vignette_center=(0.45, 0.55),
        )
        raw = RNG.uniform(0.1, 0.9, (H, W))
        box = (6, 10, 90, 120)
        cropped = cropped_shading(camera, box, (H, W))
        full = gain_map_numpy(raw, np.asarray(camera.shading_map), np.array(camera.shading_origin), np.array(camera.shading_spacing))
        part = gain_map_numpy(raw[6:90, 10:120], np.asarray(cropped.shading_map), np.array(cropped.shading_origin), np.array(cropped.shading_spacing))
        np.testing.assert_allclose(part, full[6:90, 10:120], rtol=1e-12)
        full = radial_numpy(raw, np.array(camera.vignette), np.array(camera.vignette_center))
        part = radial_numpy(raw[6:90, 10:120], np.array(cropped.vignette), np.array(cropped.vignette_center))
        np.testing.assert_allclose(part, full[6:90, 10:120], rtol=1e-12)

    def test_neutral_cameras_and_bad_boxes(self):
        from ispkit.flatfield import cropped_shading

        camera = Camera(name="plain")
        assert cropped_shading(camera, (2, 2, 10, 10), (12, 12)) is camera
        with pytest.raises(InputError, match=r"the box \(2, 2, 14, 10\) lies outside the 12×12 image"):
            cropped_shading(camera, (2, 2, 14, 10), (12, 12))
        shaded = Camera(name="v", vignette=(0.1, 0, 0, 0, 0), vignette_center=(0.05, 0.5))
        with pytest.raises(InputError, match=r"optical centre .* lies outside the crop"):
            cropped_shading(shaded, (4, 0, 12, 12), (12, 12))
