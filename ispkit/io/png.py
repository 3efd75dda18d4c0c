"""8-bit views of RGB images and PNG output."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

from ..arrays import check_float
from ..atomic import atomic_write
from ..errors import InputError

__all__ = ["to_uint8", "write_png"]


def to_uint8(rgb: np.ndarray) -> np.ndarray:
    """A channel-first view ``(3, H, W)`` in [0, 1] as an 8-bit ``(H, W, 3)`` image (rounded, clipped).

    >>> to_uint8(np.array([[[0.0]], [[0.5]], [[1.2]]])).ravel().tolist()
    [0, 128, 255]
    """
    check_float(rgb, "to_uint8")
    if rgb.ndim != 3 or rgb.shape[0] != 3:
        raise InputError(f"to_uint8: expected a channel-first RGB view (3, H, W), got shape {rgb.shape}")
    return np.round(np.clip(np.moveaxis(rgb, 0, -1), 0.0, 1.0) * 255.0).astype(np.uint8)


def write_png(path: str | os.PathLike[str], rgb: np.ndarray, *, overwrite: bool = True) -> Path:
    """Save a channel-first RGB view in [0, 1] as an 8-bit PNG, atomically (:func:`ispkit.atomic.atomic_write`)."""
    image = Image.fromarray(to_uint8(rgb))
    return atomic_write(path, lambda tmp: image.save(tmp, format="PNG"), overwrite=overwrite)
