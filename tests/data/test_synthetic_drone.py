"""Synthetic Raw-Drone frames: cars at the published ground sampling distance, masks and tiles."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from ispkit.data.synthetic_drone import GSD_M, car_tiles, render_frame
from ispkit.errors import InputError


@pytest.fixture(scope="module")
def frame():
    return render_frame(768, 1024, n_cars=10, seed=3)


def test_shapes_range_determinism(frame):
    scene, mask = frame
    assert scene.shape == (3, 768, 1024) and mask.shape == (768, 1024) and mask.dtype == bool
    assert 0.0 <= scene.min() and scene.max() <= 1.0
    again, again_mask = render_frame(768, 1024, n_cars=10, seed=3)
    np.testing.assert_array_equal(scene, again)
    np.testing.assert_array_equal(mask, again_mask)


def test_cars_have_the_physical_footprint(frame):
    _, mask = frame
    labels, n = ndimage.label(mask)
    assert n >= 3
    areas = ndimage.sum(mask, labels, index=np.arange(1, n + 1))
    single = areas[areas < 1.5 * (5.0 * 1.9) / GSD_M**2]  # cars that do not touch another car
    assert len(single) >= 3
    lo, hi = (4.0 * 1.7) / GSD_M**2, (5.0 * 1.9) / GSD_M**2  # 4-5 m by 1.7-1.9 m in pixels
    assert np.all((single > 0.85 * lo) & (single < 1.1 * hi)), single


def test_cars_differ_from_the_road_under_them(frame):
    scene, mask = frame
    grown = ndimage.binary_dilation(mask, iterations=6) & ~ndimage.binary_dilation(mask, iterations=3)
    assert np.abs(scene[:, mask].mean(axis=1) - scene[:, grown].mean(axis=1)).max() > 0.02


def test_car_tiles_are_the_tiles_with_cars(frame):
    _, mask = frame
    tiles = car_tiles(mask)
    assert tiles and all(mask[r : r + 256, c : c + 256].any() for r, c in tiles)
    every = [(r, c) for r in range(0, 768, 256) for c in range(0, 1024, 256)]
    assert all(not mask[r : r + 256, c : c + 256].any() for r, c in set(every) - set(tiles))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"height": 100, "width": 256}, "at least 128"), ({"height": 255, "width": 256}, "even"), ({"n_cars": -1}, "n_cars")],
)
def test_errors(kwargs, message):
    with pytest.raises(InputError, match=message):
        render_frame(**{"height": 256, "width": 256, **kwargs})
