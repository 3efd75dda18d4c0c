"""Real raw files (tests/data/real, see SOURCES.md) read as LibRaw reads them; LibRaw live on every decoding path when rawpy is installed."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pytest
import tiffmaker as tm

from ispkit.errors import RawFormatError
from ispkit.io import parse_dng, read_raw

CORPUS = Path(__file__).parents[1] / "data" / "real"
REFERENCES = json.loads((CORPUS / "references.json").read_text(encoding="utf-8"))
SHA256 = {
    "canon_eos_kiss_x4_colorchart.dng": "592dba160b03770752667847f60ef07e9d96c17bf841e78e2b0cb5cbc5616edd",
    "gopro_hero6_GOPR0024.GPR": "82e8abdbe66db44e08f01078fe3174cd77d8a9414844f0526cd2d8177cec9778",
    "exiftool_canon_350d_stripped.dng": "daa9ce7a2c6923815390d8566254ef4d4a75d68d1531afdb264bd4b39a8dfd89",
}


def _stored(image) -> np.ndarray:
    return np.round(image.mosaic * image.camera.white_level).astype(np.int64)


def _black_per_site(image) -> list[float]:
    return [b * image.camera.white_level for b in image.camera.black_level]


def test_corpus_is_the_recorded_files():
    """Every file is listed with its checksum (and is real content, not a git-LFS pointer); the total stays small."""
    files = sorted(p.name for p in CORPUS.iterdir() if p.suffix.lower() in (".dng", ".gpr", ".tif", ".tiff"))
    assert files == sorted(SHA256)
    for name, digest in SHA256.items():
        assert hashlib.sha256((CORPUS / name).read_bytes()).hexdigest() == digest, name
    assert sum((CORPUS / name).stat().st_size for name in SHA256) < 20_000_000
    assert set(REFERENCES["read"]) | set(REFERENCES["refused"]) == set(SHA256)


@pytest.mark.parametrize("name", sorted(REFERENCES["read"]))
def test_equals_the_stored_libraw_reference(name):
    reference = REFERENCES["read"][name]
    image = read_raw(CORPUS / name)
    stored = _stored(image)
    assert list(stored.shape) == reference["shape"]
    assert hashlib.sha256(stored.astype("<u2").tobytes()).hexdigest() == reference["sha256_uint16le"]
    assert (int(stored.min()), int(stored.max())) == (reference["min"], reference["max"])
    assert stored.mean() == pytest.approx(reference["mean"], rel=1e-12)
    assert [[r, c, int(stored[r, c])] for r, c, _ in reference["pixels"]] == reference["pixels"]
    assert _black_per_site(image) == pytest.approx(reference["black_per_site"], abs=1e-9)
    assert image.levels.white.tolist() == [reference["white_level"]]
    assert image.camera.pattern == reference["pattern"]


def test_colorchart_camera_and_tags():
    image = read_raw(CORPUS / "canon_eos_kiss_x4_colorchart.dng")
    assert image.camera.name == "Canon EOS Kiss X4" and image.camera.container_bits == 14
    assert image.dng.structure.byteorder == "<" and image.dng.raw is image.dng.main
    assert image.dng.raw.integer(258) == 14 and image.dng.raw.integer(259) == 1  # packed 14-bit, uncompressed
    assert image.dng.numbers("ColorMatrix1", count=9).shape == (9,)
    assert image.mosaic.max() <= 15000 / 16383  # nothing above the DNG WhiteLevel


@pytest.mark.parametrize(("name", "problem"), sorted(REFERENCES["refused"].items()))
def test_refused_with_the_reason(name, problem):
    with pytest.raises(RawFormatError, match=re.escape(problem)) as info:
        read_raw(CORPUS / name)
    assert str(CORPUS / name) in str(info.value)


def test_refused_files_still_give_their_tags():
    stripped = parse_dng(CORPUS / "exiftool_canon_350d_stripped.dng")
    assert stripped.structure.byteorder == ">" and stripped.raw is stripped.main.subifds[0]
    assert stripped.text("UniqueCameraModel") == "Canon EOS 350D"
    assert (stripped.raw.integer(259), stripped.raw.integer(322), stripped.raw.integer(323)) == (7, 256, 240)
    gpr = parse_dng(CORPUS / "gopro_hero6_GOPR0024.GPR")
    assert gpr.text("UniqueCameraModel") == "GoPro HERO6 Black" and gpr.raw.integer(259) == 9


# -- LibRaw live -----------------------------------------------------------------------------


def _libraw():
    return pytest.importorskip("rawpy", reason="rawpy (LibRaw) is a test extra: pip install -e .[test]")


def _compare_with_libraw(path: Path) -> None:
    """ispkit and LibRaw agree on the mosaic (exactly), the CFA pattern, the black level per site and the DNG WhiteLevel."""
    rawpy = _libraw()
    image = read_raw(path)
    with rawpy.imread(str(path)) as raw:
        visible = raw.raw_image_visible.astype(np.int64)
        black = [float(raw.black_level_per_channel[c]) for c in raw.raw_pattern.ravel()]
        pattern = "".join(chr(raw.color_desc[c]) for c in raw.raw_pattern.ravel())
        white = raw.white_level
    np.testing.assert_array_equal(_stored(image), visible)
    assert image.camera.pattern == pattern
    assert _black_per_site(image) == pytest.approx(black, abs=0.5)  # LibRaw rounds fractional black levels
    assert image.levels.white[0] == white


@pytest.mark.parametrize("name", sorted(REFERENCES["read"]))
def test_corpus_against_libraw_live(name):
    _compare_with_libraw(CORPUS / name)


_MAIN = {
    50708: (tm.ASCII, "ispkit test"),
    50721: (tm.SRATIONAL, [10, 10, 0, 1, 0, 1, 0, 1, 10, 10, 0, 1, 0, 1, 0, 1, 10, 10]),
    50778: (tm.SHORT, [21]),
    50728: (tm.RATIONAL, [1, 2, 1, 1, 2, 3]),
}
_RNG = np.random.default_rng(2024)
_H, _W = 48, 96  # LibRaw 0.22 returns a wrong mosaic for two-component LJPEG tiles in a 64-pixel-wide image (ispkit: test_decode)


def _packed(bits: int, byteorder: str) -> bytes:
    data = _RNG.integers(0, 2**bits, (_H, _W))
    segments = [tm.pack_bits(data[r : r + 16], bits) for r in range(0, _H, 16)]
    page = tm.cfa_page(_W, _H, bits, segments, rows_per_strip=16, extra={50717: (tm.SHORT, [2**bits - 1]), 50714: (tm.SHORT, [64])})
    return tm.dng(page, main_tags=dict(_MAIN), byteorder=byteorder)


def _ljpeg_tiles() -> bytes:
    data = _RNG.integers(0, 2**14, (_H, _W))
    segments = [tm.ljpeg(t, 14, 2) for t in tm.tiles(data, (32, 32))]
    page = tm.cfa_page(_W, _H, 14, segments, compression=7, tiled=(32, 32), extra={50717: (tm.SHORT, [16383]), 50714: (tm.SHORT, [512])})
    return tm.dng(page, main_tags=dict(_MAIN), in_subifd=True)


def _big_endian_tiles() -> bytes:
    data = _RNG.integers(0, 2**16, (_H, _W))
    segments = [tm.plain(t, 16, ">") for t in tm.tiles(data, (16, 32))]
    return tm.dng(tm.cfa_page(_W, _H, 16, segments, tiled=(16, 32), pattern=(1, 2, 0, 1)), main_tags=dict(_MAIN), byteorder=">")


def _linearization_table() -> bytes:
    data = _RNG.integers(0, 1024, (_H, _W))
    table = (np.arange(1024) ** 2 // 64).tolist()
    extra = {50712: (tm.SHORT, table), 50717: (tm.SHORT, [16383]), 50713: (tm.SHORT, [2, 2]), 50714: (tm.SHORT, [60, 61, 62, 63])}
    return tm.dng(tm.cfa_page(_W, _H, 16, [tm.plain(data, 16)], extra=extra, pattern=(2, 1, 1, 0)), main_tags=dict(_MAIN))


BUILT = {
    "packed10-little.dng": lambda: _packed(10, "<"),
    "packed12-big.dng": lambda: _packed(12, ">"),
    "packed14-little.dng": lambda: _packed(14, "<"),
    "ljpeg-tiles-subifd.dng": _ljpeg_tiles,
    "uncompressed-tiles-big-endian.dng": _big_endian_tiles,
    "linearization-table.dng": _linearization_table,
}


class TestLibRawOnBuiltFiles:
    """Every decoding path without a small real file: LibRaw is the independent oracle."""

    @pytest.mark.parametrize("name", sorted(BUILT))
    def test_equals_libraw(self, tmp_path, name):
        path = tmp_path / name
        path.write_bytes(BUILT[name]())
        _compare_with_libraw(path)
