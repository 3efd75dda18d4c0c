"""User-like raw data for the tests of your-own-data datasets: photographs exposed on a camera of the user's own.

:func:`natural_raws` crops scikit-image's photographs (bundled with it, nothing is downloaded)
and exposes the crops on :data:`LAB_CAMERA` with ispkit's sensor model, as a user's camera
would record them; :func:`write_class_folders` and :func:`write_manifest` lay them out as a
user would, as class sub-folders or with a CSV manifest.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import skimage.data

from ispkit.camera import Camera
from ispkit.io import write_raw
from ispkit.sensor import acquire

LAB_CAMERA = Camera(
    name="lab-cam",
    pattern="GRBG",
    bit_depth=12,
    container_bits=16,
    black_level=(0.0156, 0.0156, 0.0156, 0.0156),
    white_balance=(1.8, 1.0, 1.5),
    gain=0.5,
    read_noise=2.0,
    description="a user's 12-bit camera, left-justified in 16 bits",
)
"""The camera of the user-like files: not one ispkit ships."""

PHOTOS = ("coffee", "chelsea", "rocket")
"""The classes: which photograph a crop comes from."""


def natural_raws(photo: str, n: int, size: int = 32, seed: int = 0) -> list[np.ndarray]:
    """``n`` raw mosaics ``(size, size)`` of crops of the photograph ``photo`` (the first ``(n + 1) // 2`` from its left
    half, the others from its right half), exposed on :data:`LAB_CAMERA`."""
    image = getattr(skimage.data, photo)()[::4, ::4].astype(float) / 255.0  # (h, w, 3), a quarter of the resolution
    h, w = image.shape[:2]
    rows = np.linspace(0, h - size, (n + 1) // 2 + 2, dtype=int)[1:-1]
    crops = [image[r : r + size, c : c + size] for c in (0, w // 2) for r in rows][:n]
    scenes = np.stack([LAB_CAMERA.to_sensor(crop.transpose(2, 0, 1)).clip(0.0, 1.0) * 0.8 for crop in crops])
    return list(acquire(scenes, LAB_CAMERA, seed=seed))


def write_class_folders(root: Path, n: int = 8, size: int = 32) -> Path:
    """``root/<photo>/<half>/<i>.tiff``: classes by folder, each half of a photograph one group (sub-folder)."""
    for k, photo in enumerate(PHOTOS):
        for i, raw in enumerate(natural_raws(photo, n, size, seed=k)):
            write_raw(root / photo / ("left" if i < (n + 1) // 2 else "right") / f"{i}.tiff", raw, LAB_CAMERA)
    return root


def write_manifest(root: Path, n: int = 8, size: int = 32) -> Path:
    """Raw files in ``root/files/`` and ``root/labels.csv`` with ``path,label,group`` (group: photograph and half)."""
    lines = ["path,label,group"]
    for k, photo in enumerate(PHOTOS):
        for i, raw in enumerate(natural_raws(photo, n, size, seed=k)):
            name = f"files/{photo}_{i:02d}.tiff"
            write_raw(root / name, raw, LAB_CAMERA)
            lines.append(f"{name},{photo},{photo}-{'left' if i < (n + 1) // 2 else 'right'}")
    manifest = root / "labels.csv"
    manifest.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return manifest
