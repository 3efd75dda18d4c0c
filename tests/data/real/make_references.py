"""Write references.json: what LibRaw (through rawpy) reads from each real raw file here.

Run from the repository root after adding a file (``python tests/data/real/make_references.py``);
tests/io/test_real.py compares ispkit with these numbers without needing rawpy, and with
rawpy itself when it is installed. Files LibRaw cannot read, or that ispkit refuses, are
listed with the reason in SOURCES.md and under ``"refused"`` here.

For a file with a patch grid (``<name>.patches.json``) it also stores LibRaw's colour
rendering, ``"colour"``: its camera → sRGB matrix (``rgb_cam``) and the mean linear sRGB of
each patch, rendered with the settings ispkit's pipeline matches (:data:`LIBRAW_SETTINGS`).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent
READ_BY_LIBRAW = ["canon_eos_kiss_x4_colorchart.dng"]
REFUSED = {
    "gopro_hero6_GOPR0024.GPR": "compression 9 (VC-5 (GoPro GPR)) is not supported",
    "exiftool_canon_350d_stripped.dng": "1 tile offsets and 1 byte counts, but a 3516×2328 image in 256×240 tiles has 140",
}
PIXELS = 12  # pixel values stored per file, at seeded positions
LIBRAW_SETTINGS = {
    "demosaic_algorithm": "LINEAR",  # bilinear, as ispkit's demosaic=bilinear
    "use_camera_wb": True,  # white balance from AsShotNeutral
    "no_auto_bright": True,
    "gamma": (1, 1),  # linear output
    "output_bps": 16,
    "output_color": "sRGB",
    "user_flip": 0,
    "highlight_mode": "Clip",
    "adjust_maximum_thr": 0.0,  # keep the DNG WhiteLevel (LibRaw otherwise lowers it to the data maximum)
}
"""rawpy.postprocess settings that match an ispkit pipeline black_level → demosaic (bilinear) → white_balance → color_correction."""


def libraw_reference(path: Path) -> dict:
    """Mosaic size, checksum, statistics and sample pixels, black level per 2×2 site, white level and CFA pattern."""
    import rawpy  # imported here: collecting this folder (pytest --doctest-modules) must not need rawpy

    with rawpy.imread(str(path)) as raw:
        mosaic = raw.raw_image_visible.astype(np.int64)
        pattern = "".join(chr(raw.color_desc[c]) for c in raw.raw_pattern.ravel())  # colour_desc "RGBG": index 3 is the second green
        black = [int(raw.black_level_per_channel[c]) for c in raw.raw_pattern.ravel()]
        white = int(raw.white_level)
    rng = np.random.default_rng(0)
    rows = rng.integers(0, mosaic.shape[0], PIXELS)
    cols = rng.integers(0, mosaic.shape[1], PIXELS)
    return {
        "shape": list(mosaic.shape),
        "sha256_uint16le": hashlib.sha256(mosaic.astype("<u2").tobytes()).hexdigest(),
        "min": int(mosaic.min()),
        "max": int(mosaic.max()),
        "mean": float(mosaic.mean()),
        "pixels": [[int(r), int(c), int(mosaic[r, c])] for r, c in zip(rows, cols, strict=True)],
        "black_per_site": black,
        "white_level": white,
        "pattern": pattern,
    }


def libraw_linear_srgb(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """LibRaw's rendering with :data:`LIBRAW_SETTINGS`: linear sRGB ``(3, H, W)`` in [0, 1] and its camera → sRGB matrix ``rgb_cam``."""
    import rawpy

    settings = dict(LIBRAW_SETTINGS)
    settings["demosaic_algorithm"] = rawpy.DemosaicAlgorithm.LINEAR
    settings["output_color"] = rawpy.ColorSpace.sRGB
    settings["highlight_mode"] = rawpy.HighlightMode.Clip
    with rawpy.imread(str(path)) as raw:
        rgb = raw.postprocess(**settings)
        rgb_cam = np.array(raw.color_matrix)[:, :3]
    return np.moveaxis(rgb, -1, 0).astype(np.float64) / 65535, rgb_cam


def patch_means(rgb: np.ndarray, grid: dict) -> np.ndarray:
    """The mean of each patch of ``grid`` (a ``*.patches.json``) in ``rgb`` ``(3, H, W)``: ``(24, 3)``."""
    half = grid["half"]
    return np.array([rgb[:, r - half : r + half, c - half : c + half].mean(axis=(1, 2)) for r in grid["rows"] for c in grid["cols"]])


def libraw_colour(path: Path) -> dict | None:
    """LibRaw's rgb_cam and patch means for a file with a patch grid, else ``None``."""
    grid_path = path.with_name(path.stem + ".patches.json")
    if not grid_path.exists():
        return None
    rgb, rgb_cam = libraw_linear_srgb(path)
    grid = json.loads(grid_path.read_text(encoding="utf-8"))
    return {"settings": LIBRAW_SETTINGS, "rgb_cam": rgb_cam.tolist(), "patches": patch_means(rgb, grid).tolist()}


def main() -> None:
    import rawpy

    references = {
        "libraw_version": ".".join(map(str, rawpy.libraw_version)),
        "rawpy_version": rawpy.__version__,
        "read": {name: libraw_reference(HERE / name) for name in READ_BY_LIBRAW},
        "colour": {name: colour for name in READ_BY_LIBRAW if (colour := libraw_colour(HERE / name)) is not None},
        "refused": REFUSED,
    }
    (HERE / "references.json").write_text(json.dumps(references, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
