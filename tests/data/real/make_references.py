"""Write references.json: what LibRaw (through rawpy) reads from each real raw file here.

Run from the repository root after adding a file (``python tests/data/real/make_references.py``);
tests/io/test_real.py compares ispkit with these numbers without needing rawpy, and with
rawpy itself when it is installed. Files LibRaw cannot read, or that ispkit refuses, are
listed with the reason in SOURCES.md and under ``"refused"`` here.
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
        "pixels": [[int(r), int(c), int(mosaic[r, c])] for r, c in zip(rows, cols)],
        "black_per_site": black,
        "white_level": white,
        "pattern": pattern,
    }


def main() -> None:
    import rawpy

    references = {
        "libraw_version": ".".join(map(str, rawpy.libraw_version)),
        "rawpy_version": rawpy.__version__,
        "read": {name: libraw_reference(HERE / name) for name in READ_BY_LIBRAW},
        "refused": REFUSED,
    }
    (HERE / "references.json").write_text(json.dumps(references, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
