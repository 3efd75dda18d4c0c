"""Cut the golden crops in ``lighthouse.npz`` out of colour-demosaicing's reference images.

Run once by hand (not by the test suite)::

    git clone https://github.com/colour-science/colour-demosaicing-tests-datasets DATASETS
    python tests/stages/golden/extract_lighthouse.py DATASETS/colour_demosaicing/bayer

The reference images are OpenEXR files (the mosaics in half floats, ZIPS-compressed;
the demosaiced images in 32-bit floats, ZIP-compressed). The minimal reader below
handles exactly those two scanline encodings, so no OpenEXR binding is needed.
"""

from __future__ import annotations

import struct
import sys
import zlib
from pathlib import Path

import numpy as np

PATTERNS = ("RGGB", "BGGR", "GRBG", "GBRG")
METHODS = ("Bilinear", "Malvar2004", "Menon2007", "Menon2007_NR")
#: The mosaic crop (even offsets keep the layout) and the interior compared with the
#: references: a margin of 12 pixels covers Menon's reach (the widest of the three).
TOP, LEFT, SIZE, MARGIN = 482, 252, 64, 12
_PIXEL_TYPES = {1: np.float16, 2: np.float32}
_LINES_PER_BLOCK = {2: 1, 3: 16}  # ZIPS, ZIP


def read_exr(path: Path) -> dict[str, np.ndarray]:
    """Channels of a scanline OpenEXR file with ZIPS or ZIP compression, by name."""
    data = path.read_bytes()
    if data[:4] != b"v/1\x01":
        raise ValueError(f"{path}: not an OpenEXR file")
    attributes, i = {}, 8
    while data[i] != 0:
        name_end = data.index(b"\0", i)
        type_end = data.index(b"\0", name_end + 1)
        (size,) = struct.unpack("<i", data[type_end + 1 : type_end + 5])
        attributes[data[i:name_end].decode()] = data[type_end + 5 : type_end + 5 + size]
        i = type_end + 5 + size
    channels, chlist, k = [], attributes["channels"], 0
    while chlist[k] != 0:
        end = chlist.index(b"\0", k)
        channels.append((chlist[k:end].decode(), _PIXEL_TYPES[struct.unpack("<i", chlist[end + 1 : end + 5])[0]]))
        k = end + 17
    x0, y0, x1, y1 = struct.unpack("<4i", attributes["dataWindow"])
    width, height = x1 - x0 + 1, y1 - y0 + 1
    lines = _LINES_PER_BLOCK[attributes["compression"][0]]
    blocks = -(-height // lines)
    out = {name: np.zeros((height, width), dtype) for name, dtype in channels}
    for offset in struct.unpack(f"<{blocks}Q", data[i + 1 : i + 1 + 8 * blocks]):
        y, size = struct.unpack("<ii", data[offset : offset + 8])
        rows = _unzip(data[offset + 8 : offset + 8 + size])
        pos = 0
        for row in range(y - y0, min(y - y0 + lines, height)):
            for name, dtype in channels:
                n = width * np.dtype(dtype).itemsize
                out[name][row] = np.frombuffer(rows[pos : pos + n].tobytes(), dtype)
                pos += n
    return out


def _unzip(block: bytes) -> np.ndarray:
    """OpenEXR's ZIP decoding: inflate, undo the byte predictor, de-interleave the two halves."""
    raw = np.frombuffer(zlib.decompress(block), np.uint8).astype(np.int64)
    raw[1:] -= 128
    t = (np.cumsum(raw) % 256).astype(np.uint8)
    out = np.empty_like(t)
    half = (t.size + 1) // 2
    out[0::2], out[1::2] = t[:half], t[half:]
    return out


def main(folder: Path, target: Path) -> None:
    arrays = {}
    crop = np.s_[TOP : TOP + SIZE, LEFT : LEFT + SIZE]
    inner = np.s_[TOP + MARGIN : TOP + SIZE - MARGIN, LEFT + MARGIN : LEFT + SIZE - MARGIN]
    for pattern in PATTERNS:
        arrays[f"cfa_{pattern}"] = read_exr(folder / f"Lighthouse_CFA_{pattern}.exr")["R"][crop].copy()
        for method in METHODS:
            image = read_exr(folder / f"Lighthouse_{method}_{pattern}.exr")
            arrays[f"{method}_{pattern}"] = np.stack([image[c][inner] for c in "RGB"])
    np.savez_compressed(target, **arrays)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(__file__).with_name("lighthouse.npz"))
