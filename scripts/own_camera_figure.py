"""The figure of docs/own-camera.md: a real DNG rendered by ispkit next to LibRaw, and a drone-style camera's lens shading.

Run from the repository root (needs rawpy, a test extra)::

    python scripts/own_camera_figure.py

Writes ``docs/images/own-camera/colours.png``: the ColorChecker of
``tests/data/real/canon_eos_kiss_x4_colorchart.dng`` through black_level → bilinear →
white_balance → color_correction with the camera ``read_raw`` builds from the DNG tags,
LibRaw's rendering with the matching settings, the same pipeline with the white of the
chart's grey patches, and X-Rite's published patch colours; and
``docs/images/own-camera/shading.png``: the four GainMaps of the GoPro HERO6 GPR
(``Camera.from_dng``) and the flat-field map :func:`ispkit.flatfield.estimate` fits to
synthetic flats of a microscope.
"""

from __future__ import annotations

import importlib.util
import json
import warnings
from pathlib import Path

import colour
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from ispkit import Camera, Pipeline
from ispkit.dng_color import D65_XY, SRGB_FROM_XYZ, bradford, render
from ispkit.flatfield import estimate
from ispkit.io import read_raw
from ispkit.io.dng import dng_calibration

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "data" / "real"
OUT = ROOT / "docs" / "images" / "own-camera"
STAGES = [{"kind": "black_level"}, {"kind": "demosaic", "method": "bilinear"}, {"kind": "white_balance"}, {"kind": "color_correction"}]
CROP = (slice(560, 990), slice(650, 1320))  # the ColorChecker in the mosaic's coordinates


def _references():
    spec = importlib.util.spec_from_file_location("make_references", CORPUS / "make_references.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _display(linear: np.ndarray, exposure: float) -> np.ndarray:
    """Linear sRGB ``(3, H, W)`` → 8-bit-ready sRGB ``(H, W, 3)`` in [0, 1], scaled by ``exposure``."""
    return np.moveaxis(colour.cctf_encoding(np.clip(linear * exposure, 0.0, 1.0)), 0, -1)


def _swatches(grid: dict, exposure_like: np.ndarray) -> np.ndarray:
    """X-Rite's patch colours (D50 → D65 by Bradford) painted on the chart's grid, on a dark surround."""
    checker = colour.CCS_COLOURCHECKERS["ColorChecker24 - After November 2014"]
    xyz = np.array([bradford(checker.illuminant, D65_XY) @ colour.xyY_to_XYZ(v) for v in checker.data.values()])
    linear = xyz @ SRGB_FROM_XYZ.T
    canvas = np.full_like(exposure_like, 0.01)
    half = 40
    for (r, c), value in zip([(r, c) for r in grid["rows"] for c in grid["cols"]], linear, strict=True):
        canvas[:, r - half - CROP[0].start : r + half - CROP[0].start, c - half - CROP[1].start : c + half - CROP[1].start] = value[:, None, None]
    return canvas


def colours_figure() -> Path:
    references = _references()
    grid = json.loads((CORPUS / "canon_eos_kiss_x4_colorchart.patches.json").read_text(encoding="utf-8"))
    path = CORPUS / "canon_eos_kiss_x4_colorchart.dng"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        image = read_raw(path)
    ours = Pipeline(STAGES, image.camera)(image.mosaic)
    libraw, _ = references.libraw_linear_srgb(path)
    camera_rgb = Pipeline(STAGES[:2], image.camera)(image.mosaic)
    greys = references.patch_means(camera_rgb, grid)[19:23].sum(axis=0)
    color = render(dng_calibration(image.dng), neutral=greys / greys.max())
    scale = 16383 / (15000 - 2056)
    custom = (scale * color.camera_to_srgb @ camera_rgb.reshape(3, -1)).reshape(camera_rgb.shape)
    exposure = 8.0  # the photograph is about three stops under; the same gain for every panel
    panels = [
        ("ispkit, camera from the DNG tags (as shot)", _display(ours[(slice(None), *CROP)], exposure)),
        ("LibRaw (rawpy), same settings", _display(libraw[(slice(None), *CROP)], exposure)),
        (f"ispkit, white of the chart's greys ({color.temperature:.0f} K)", _display(custom[(slice(None), *CROP)], exposure)),
        ("X-Rite's published colours", _display(_swatches(grid, ours[(slice(None), *CROP)]), 1.0)),
    ]
    fig, axes = plt.subplots(1, 4, figsize=(13, 2.6), dpi=80)
    for ax, (title, view) in zip(axes, panels, strict=True):
        ax.imshow(view)
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    fig.tight_layout()
    OUT.mkdir(parents=True, exist_ok=True)
    target = OUT / "colours.png"
    fig.savefig(target)
    plt.close(fig)
    return target


def shading_figure() -> Path:
    gopro = Camera.from_dng(CORPUS / "gopro_hero6_GOPR0024.GPR")
    maps = np.asarray(gopro.shading_map)[:, :23, :23]
    yy, xx = (np.mgrid[0:128, 0:160] + 0.5) / np.array([128, 160])[:, None, None]
    light = 0.5 * (1 - 0.5 * ((yy - 0.45) ** 2 + (xx - 0.6) ** 2))
    flats = np.random.default_rng(0).poisson(light * 2000, (8, 128, 160)) / 2000
    fitted = estimate(flats)
    fig, axes = plt.subplots(1, 5, figsize=(13, 2.5), dpi=80)
    for k, ax in enumerate(axes[:4]):
        shown = ax.imshow(maps[k], vmin=1.0, vmax=maps.max(), cmap="magma")
        ax.set_title(f"GoPro HERO6 GainMap, site {'RGGB'[k]}{k}", fontsize=9)
        ax.axis("off")
    fig.colorbar(shown, ax=axes[3], fraction=0.046)
    shown = axes[4].imshow(fitted[0], cmap="magma")
    axes[4].set_title("flatfield.estimate on microscope flats", fontsize=9)
    axes[4].axis("off")
    fig.colorbar(shown, ax=axes[4], fraction=0.046)
    fig.tight_layout()
    target = OUT / "shading.png"
    fig.savefig(target)
    plt.close(fig)
    return target


if __name__ == "__main__":
    for written in (colours_figure(), shading_figure()):
        print(written, f"{written.stat().st_size / 1000:.0f} kB")
