"""Raws of natural scenes for the raw-corruption tests: skimage photographs exposed through :func:`ispkit.sensor.acquire`."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from support import natural_image

from ispkit.camera import Camera
from ispkit.sensor import acquire

DRONE_READ_NOISE = 2.5
"""Read noise (e⁻) given to the drone camera, which has none published (as ispkit.data.synthesize does)."""


def noisy_drone() -> Camera:
    """The drone camera (12 bit left-justified to 16, RGGB, 8.448 DN/e⁻ stored) with a read noise of 2.5 e⁻."""
    return dataclasses.replace(Camera.get("drone"), read_noise=DRONE_READ_NOISE)


def natural_scene(name: str = "astronaut", top: int = 100, left: int = 180, size: int = 64) -> np.ndarray:
    """A ``(3, size, size)`` linear radiance crop (sRGB values to the power 2.2), at most 0.9 of full scale."""
    crop = natural_image(name)[top : top + size, left : left + size]
    return 0.9 * np.moveaxis(crop, -1, 0) ** 2.2


@pytest.fixture
def camera() -> Camera:
    return noisy_drone()


@pytest.fixture
def natural_raw(camera) -> np.ndarray:
    """Two 64 × 64 drone raws of natural scenes (a portrait and a cup of coffee), acquired with seed 0."""
    scenes = np.stack([natural_scene("astronaut", 100, 180), natural_scene("coffee", 120, 200)])
    return acquire(scenes, camera, seed=0)
