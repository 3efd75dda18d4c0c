"""The main job's raw input and output: a generated test scene and the twelve views.

:func:`demo_scene` draws a blood-smear-like scene (red cells, one leukocyte with a
lobed nucleus and granules, a colour strip) in display RGB; :func:`scene_to_raw`
inverts the camera's colour processing and samples the CFA, so that the processed
views look like the scene. :func:`render_views` runs presets and writes PNGs and a
labelled contact sheet.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .atomic import atomic_write
from .camera import Camera
from .cfa import masks_numpy, site_map_numpy
from .errors import InputError
from .io import to_uint8, write_png
from .pipeline import PRESETS, Pipeline

__all__ = ["demo_scene", "scene_to_raw", "render_views", "contact_sheet"]


def demo_scene(height: int = 256, width: int = 256, seed: int = 0) -> np.ndarray:
    """A deterministic smear-like scene ``(3, H, W)`` in display RGB [0, 1]; H and W even (it is mosaicked)."""
    if height % 2 or width % 2 or height < 2 or width < 2:
        raise InputError(f"demo scene: height and width must be positive and even (whole 2×2 CFA blocks), got {height}×{width}")
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(float)
    scene = np.empty((3, height, width))
    scene[:] = np.array([0.93, 0.88, 0.90])[:, None, None]
    scale = min(height, width)
    for _ in range(max(6, (height * width) // 2500)):  # red blood cells: pale centre, darker rim
        cy, cx, r = rng.uniform(0, height), rng.uniform(0, width), rng.uniform(0.06, 0.09) * scale
        d = np.hypot(yy - cy, xx - cx) / r
        cell = np.clip(1.2 - d, 0, 1) * (d < 1) * (0.65 + 0.35 * np.clip(d, 0, 1) ** 2)
        scene -= cell[None] * np.array([0.10, 0.42, 0.35])[:, None, None]
    cy, cx, r = height / 2, width / 2, 0.16 * scale  # leukocyte with granular cytoplasm
    d = np.hypot(yy - cy, xx - cx) / r
    cytoplasm = (d < 1) * np.clip(1.2 - d, 0, 1)
    granules = (rng.random((height, width)) < 0.08) * cytoplasm
    scene = scene * (1 - cytoplasm[None]) + cytoplasm[None] * np.array([0.80, 0.72, 0.85])[:, None, None]
    scene -= granules[None] * np.array([0.25, 0.30, 0.10])[:, None, None]
    nucleus = np.zeros((height, width))
    for angle in (0.3, 2.4, 4.4):  # three lobes
        ly, lx = cy + 0.45 * r * np.sin(angle), cx + 0.45 * r * np.cos(angle)
        nucleus = np.maximum(nucleus, np.hypot(yy - ly, xx - lx) < 0.38 * r)
    scene = scene * (1 - nucleus[None]) + nucleus[None] * np.array([0.35, 0.20, 0.55])[:, None, None]
    strip = max(2, height // 16)  # colour strip along the bottom edge: R, G, B, C, M, Y, grey ramp
    colors = np.array([[0.8, 0.1, 0.1], [0.1, 0.7, 0.2], [0.15, 0.2, 0.8], [0.1, 0.7, 0.8], [0.8, 0.2, 0.7], [0.9, 0.8, 0.1]])
    for i, color in enumerate(colors):
        scene[:, -strip:, i * width // 12 : (i + 1) * width // 12] = color[:, None, None]
    scene[:, -strip:, width // 2 :] = np.linspace(0.05, 0.95, width - width // 2)[None, None, :]
    return np.clip(scene, 0.0, 1.0)


def scene_to_raw(scene: np.ndarray, camera: Camera, gamma: float = 2.2) -> np.ndarray:
    """Invert gamma, colour matrix and white balance of ``camera``, sample its CFA and add its black level.

    Returns a raw mosaic ``(H, W)`` in [0, 1] whose processed views approximate ``scene``.
    """
    sensor = camera.to_sensor(scene**gamma)
    mosaic = (sensor * masks_numpy(scene.shape[1:], camera.pattern)).sum(axis=0)
    return np.clip(mosaic + site_map_numpy(camera.black_level, mosaic.shape), 0.0, 1.0)


def contact_sheet(views: Sequence[np.ndarray], labels: Sequence[str], columns: int = 4) -> Image.Image:
    """Tile channel-first views into one labelled image."""
    h, w = views[0].shape[1:]
    band = max(14, h // 12)
    rows = -(-len(views) // columns)
    sheet = Image.new("RGB", (columns * w, rows * (h + band)), "white")
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=band - 4)
    for i, (view, label) in enumerate(zip(views, labels, strict=True)):
        x, y = (i % columns) * w, (i // columns) * (h + band)
        sheet.paste(Image.fromarray(to_uint8(view)), (x, y + band))
        draw.text((x + 4, y + 1), label, fill="black", font=font)
    return sheet


def render_views(
    raw: np.ndarray,
    out: str | os.PathLike[str],
    camera: Camera | str = "microscopy",
    presets: Sequence[str] = PRESETS,
    *,
    progress: bool = True,
) -> list[Path]:
    """Process ``raw`` through ``presets`` and write ``<preset>.png``, their YAML and ``contact_sheet.png``."""
    out = Path(out)
    views, written = [], []
    for i, name in enumerate(presets, 1):
        pipeline = Pipeline.preset(name, camera=camera)
        view = pipeline(raw)
        stem = name.replace(",", "_")
        written.append(write_png(out / f"{stem}.png", view))
        pipeline.to_yaml(out / f"{stem}.yaml")
        views.append(view)
        if progress:
            print(f"[{i:2d}/{len(presets)}] {name:8s} → {written[-1]}", flush=True)
    sheet = contact_sheet(views, list(presets))
    written.append(atomic_write(out / "contact_sheet.png", lambda tmp: sheet.save(tmp, format="PNG")))
    return written
