"""ispkit.io.decode: pixel data of every supported layout and compression, and the checks made before decoding."""

from __future__ import annotations

import struct
import time
import tracemalloc
import zlib

import imagecodecs
import numpy as np
import pytest
import tiffmaker as tm

from ispkit.errors import ConfigError, RawFormatError
from ispkit.io import MAX_PIXELS, read_raw
from ispkit.io.decode import max_pixels

RNG = np.random.default_rng(7)


def _write(tmp_path, name: str, content: bytes):
    path = tmp_path / name
    path.write_bytes(content)
    return path


def _stored(image) -> np.ndarray:
    return np.round(image.mosaic * image.camera.white_level).astype(np.int64)


def _white(bits: int) -> dict:
    return {50717: (tm.LONG, [2**bits - 1])}


class TestLayouts:
    @pytest.mark.parametrize("byteorder", ["<", ">"])
    @pytest.mark.parametrize("bits", [10, 12, 14])
    def test_packed_strips(self, tmp_path, bits, byteorder):
        """Packed samples, most significant bit first whatever the byte order; the last strip is short."""
        data = RNG.integers(0, 2**bits, (10, 14))
        data[0, :3] = [0, 2**bits - 1, 1]
        segments = [tm.pack_bits(data[r : r + 4], bits) for r in (0, 4, 8)]
        page = tm.cfa_page(14, 10, bits, segments, rows_per_strip=4, extra=_white(bits))
        image = read_raw(_write(tmp_path, "p.dng", tm.dng(page, byteorder=byteorder)))
        np.testing.assert_array_equal(_stored(image), data)
        assert image.camera.container_bits == bits

    def test_packed_rows_padded_to_a_byte(self, tmp_path):
        """Rows of 6 × 10 bits = 7.5 bytes are stored in 8 bytes each."""
        data = RNG.integers(0, 1024, (4, 6))
        segment = tm.pack_bits(data, 10)
        assert len(segment) == 4 * 8
        image = read_raw(_write(tmp_path, "p.dng", tm.dng(tm.cfa_page(6, 4, 10, [segment], extra=_white(10)))))
        np.testing.assert_array_equal(_stored(image), data)

    @pytest.mark.parametrize("byteorder", ["<", ">"])
    def test_uncompressed_16_bit_tiles_cropped_at_the_edges(self, tmp_path, byteorder):
        data = RNG.integers(0, 65536, (20, 36))
        segments = [tm.plain(t, 16, byteorder) for t in tm.tiles(data, (16, 16))]
        page = tm.cfa_page(36, 20, 16, segments, tiled=(16, 16))
        image = read_raw(_write(tmp_path, "t.dng", tm.dng(page, in_subifd=True, byteorder=byteorder)))
        np.testing.assert_array_equal(_stored(image), data)

    @pytest.mark.parametrize("components", [1, 2])
    @pytest.mark.parametrize("bits", [12, 14, 16])
    def test_lossless_jpeg_tiles(self, tmp_path, bits, components):
        """DNG writers encode a tile as a frame half as wide with two components; both forms read."""
        data = RNG.integers(0, 2**bits, (40, 52))
        segments = [tm.ljpeg(t, bits, components) for t in tm.tiles(data, (32, 32))]
        page = tm.cfa_page(52, 40, bits, segments, compression=7, tiled=(32, 32), extra=_white(bits))
        image = read_raw(_write(tmp_path, "lj.dng", tm.dng(page, in_subifd=True)))
        np.testing.assert_array_equal(_stored(image), data)

    def test_lossless_jpeg_strips(self, tmp_path):
        data = RNG.integers(0, 4096, (12, 8))
        segments = [tm.ljpeg(data[:8], 12), tm.ljpeg(data[8:], 12)]
        page = tm.cfa_page(8, 12, 12, segments, compression=7, rows_per_strip=8, extra=_white(12))
        np.testing.assert_array_equal(_stored(read_raw(_write(tmp_path, "s.dng", tm.dng(page)))), data)

    @pytest.mark.parametrize(("predictor", "distance"), [(1, 0), (2, 1), (34892, 2), (34893, 4)])
    def test_deflate_with_predictors(self, tmp_path, predictor, distance):
        data = RNG.integers(0, 65536, (6, 16))
        rows = tm.difference(data, 16, distance) if distance else data
        page = tm.cfa_page(16, 6, 16, [tm.deflate(tm.plain(rows, 16, ">"))], compression=8, extra={317: (tm.SHORT, [predictor])})
        np.testing.assert_array_equal(_stored(read_raw(_write(tmp_path, "d.dng", tm.dng(page, byteorder=">")))), data)

    def test_deflate_of_packed_12_bit_with_predictor(self, tmp_path):
        data = RNG.integers(0, 4096, (4, 8))
        segment = tm.deflate(tm.pack_bits(tm.difference(data, 12), 12))
        page = tm.cfa_page(8, 4, 12, [segment], compression=8, extra={317: (tm.SHORT, [2]), **_white(12)})
        np.testing.assert_array_equal(_stored(read_raw(_write(tmp_path, "d.dng", tm.dng(page)))), data)

    @pytest.mark.parametrize(("compression", "encode"), [(5, imagecodecs.lzw_encode), (32773, imagecodecs.packbits_encode), (32946, zlib.compress)])
    def test_other_byte_codecs(self, tmp_path, compression, encode):
        data = RNG.integers(0, 256, (4, 6)).astype(np.uint16) * 3
        page = tm.cfa_page(6, 4, 16, [bytes(encode(tm.plain(data, 16)))], compression=compression)
        np.testing.assert_array_equal(_stored(read_raw(_write(tmp_path, "c.dng", tm.dng(page)))), data)

    def test_planar_linear_rgb(self, tmp_path):
        """A LinearRaw image stored plane by plane reads like a chunky one."""
        from ispkit.io import read_linear

        rgb = RNG.integers(0, 4096, (3, 4, 6))
        page = tm.cfa_page(
            6,
            4,
            16,
            [tm.plain(plane, 16) for plane in rgb],
            extra={262: (tm.SHORT, [34892]), 277: (tm.SHORT, [3]), 258: (tm.SHORT, [16] * 3), 284: (tm.SHORT, [2]), **_white(12)},
        )
        image = read_linear(_write(tmp_path, "lin.dng", tm.dng(page)))
        np.testing.assert_array_equal(np.round(image.rgb * 4095), rgb)


def _patched(content: bytes, code: int, value: int, fmt: str = "<H", ifd: int = 0) -> bytes:
    content = bytearray(content)
    where = tm.entry_offset(bytes(content), tm.ifd_offsets(bytes(content))[ifd], code)
    struct.pack_into(fmt, content, where, value)
    return bytes(content)


def _plain_dng(bits=16, width=8, height=4, compression=1) -> bytes:
    data = RNG.integers(0, 2**bits, (height, width))
    segment = tm.plain(data, 16) if bits == 16 else tm.pack_bits(data, bits)
    return tm.dng(tm.cfa_page(width, height, bits, [segment], compression=compression, extra=_white(bits)))


class TestPatchedHeaders:
    """A header patched after writing must be refused, never read as plausible garbage."""

    @pytest.mark.parametrize(("bits", "needed"), [(12, 48), (14, 56), (8, 32)])
    def test_bits_per_sample_patched(self, tmp_path, bits, needed):
        path = _write(tmp_path, "b.dng", _patched(_plain_dng(), 258, bits))
        with pytest.raises(
            RawFormatError, match=rf"b\.dng: its raw image: its uncompressed strip 0 holds 64 bytes, but 4×8 pixels of {bits}-bit samples need {needed}"
        ):
            read_raw(path)

    def test_width_patched(self, tmp_path):
        path = _write(tmp_path, "w.dng", _patched(_plain_dng(), 256, 6, "<I"))
        with pytest.raises(RawFormatError, match=r"strip 0 holds 64 bytes, but 4×6 pixels of 16-bit samples need 48"):
            read_raw(path)

    @pytest.mark.parametrize(
        ("compression", "problem"),
        [
            (8, r"strip 0 does not decode as deflate data \(error: Error -3"),
            (7, r"strip 0: is not a JPEG stream"),
            (5, r"strip 0: decodes to \d+ bytes, but 4×8 pixels of 16-bit samples need 64|strip 0 does not decode as LZW"),
            (34892, r"compression 34892 \(lossy JPEG \(DNG 1\.4\)\) is not supported"),
            (9, r"compression 9 \(VC-5 \(GoPro GPR\)\) is not supported"),
            (52546, r"compression 52546 \(JPEG XL \(DNG 1\.7\)\) is not supported"),
            (4242, r"compression 4242 \(unknown\) is not supported"),
        ],
    )
    def test_compression_patched_or_unsupported(self, tmp_path, compression, problem):
        path = _write(tmp_path, "c.dng", _patched(_plain_dng(), 259, compression))
        with pytest.raises(RawFormatError, match=problem):
            read_raw(path)

    def test_compressed_data_declared_uncompressed(self, tmp_path):
        data = np.zeros((4, 8), np.uint16)
        content = tm.dng(tm.cfa_page(8, 4, 16, [tm.deflate(tm.plain(data, 16))], compression=8))
        path = _write(tmp_path, "u.dng", _patched(content, 259, 1))
        with pytest.raises(RawFormatError, match=r"its uncompressed strip 0 holds \d+ bytes, but 4×8 pixels of 16-bit samples need 64"):
            read_raw(path)

    def test_strip_offset_zero(self, tmp_path):
        path = _write(tmp_path, "z.dng", _patched(_plain_dng(), 273, 0, "<I"))
        with pytest.raises(RawFormatError, match=r"z\.dng: its raw image: strip 0 starts at byte 0, inside the TIFF header"):
            read_raw(path)

    def test_strip_byte_count_zero(self, tmp_path):
        path = _write(tmp_path, "e.dng", _patched(_plain_dng(), 279, 0, "<I"))
        with pytest.raises(RawFormatError, match=r"missing image data \(empty strips: byte count 0\)"):
            read_raw(path)

    def test_strip_count_disagrees_with_rows_per_strip(self, tmp_path):
        path = _write(tmp_path, "r.dng", _patched(_plain_dng(), 278, 1, "<I"))
        with pytest.raises(RawFormatError, match=r"1 strip offsets and 1 byte counts, but a 8×4 image in 8×1 strips has 4"):
            read_raw(path)

    def test_deflate_that_decodes_to_too_much(self, tmp_path):
        segment = tm.deflate(bytes(10_000_000))  # 10 MB of zeros in ~10 kB, declared as 4×8 pixels
        page = tm.cfa_page(8, 4, 16, [segment], compression=8)
        tracemalloc.start()
        try:
            with pytest.raises(RawFormatError, match=r"strip 0: decodes to 65 bytes, but 4×8 pixels of 16-bit samples need 64"):
                read_raw(_write(tmp_path, "bomb.dng", tm.dng(page)))
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < 5_000_000

    def test_lossless_jpeg_frame_of_the_wrong_size(self, tmp_path):
        data = RNG.integers(0, 4096, (16, 16))
        segment = tm.ljpeg(data[:8], 12)  # an 8-row frame in a 16×16 tile
        page = tm.cfa_page(16, 16, 12, [segment], compression=7, tiled=(16, 16), extra=_white(12))
        with pytest.raises(RawFormatError, match=r"tile 0: its lossless JPEG frame is 16×8 with 1 component\(s\) = 128 samples, but the segment holds 16×16"):
            read_raw(_write(tmp_path, "f.dng", tm.dng(page)))

    def test_lossy_jpeg_in_a_raw_image(self, tmp_path):
        segment = bytes(imagecodecs.jpeg8_encode(RNG.integers(0, 256, (16, 16)).astype(np.uint8), level=90))
        page = tm.cfa_page(16, 16, 8, [segment], compression=7, tiled=(16, 16))
        with pytest.raises(RawFormatError, match=r"tile 0: is a lossy \(baseline\) JPEG; ispkit reads raw data in lossless Huffman-coded JPEG \(SOF3\) only"):
            read_raw(_write(tmp_path, "lossy.dng", tm.dng(page)))

    def test_lossless_jpeg_with_more_bits_than_the_tag(self, tmp_path):
        segment = tm.ljpeg(RNG.integers(0, 2**14, (4, 8)), 14)
        page = tm.cfa_page(8, 4, 12, [segment], compression=7, extra=_white(12))
        with pytest.raises(RawFormatError, match=r"strip 0: its lossless JPEG has 14-bit precision, more than BitsPerSample 12"):
            read_raw(_write(tmp_path, "p.dng", tm.dng(page)))

    def test_tiles_far_larger_than_the_image(self, tmp_path):
        page = tm.cfa_page(4, 4, 16, [bytes(32)], tiled=(60000, 60000))
        with pytest.raises(RawFormatError, match=r"1 tiles of 60000×60000 pixels hold far more than the 4×4 image"):
            read_raw(_write(tmp_path, "t.dng", tm.dng(page)))


class TestPixelLimit:
    def test_default(self):
        assert MAX_PIXELS == 250_000_000 and max_pixels() == MAX_PIXELS

    def test_huge_declared_deflate_image_is_refused_before_decoding(self, tmp_path):
        """The issue's case: a small deflate file declaring 12000 × 12000 would allocate gigabytes."""
        segment = tm.deflate(bytes(12000 * 2 * 100))
        page = tm.cfa_page(12000, 12000, 16, [segment] * 120, compression=8, rows_per_strip=100)
        path = _write(tmp_path, "huge.dng", tm.dng(page))
        tracemalloc.start()
        start = time.perf_counter()
        try:
            with pytest.raises(
                RawFormatError,
                match=r"huge\.dng: its raw image: declares 12000×12000 pixels × 1 sample\(s\) = 144,000,000 samples, more than the limit of 100,000,000",
            ):
                read_raw(path, max_pixels=100_000_000)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < 5_000_000 and time.perf_counter() - start < 2.0

    def test_limit_from_the_environment_and_the_argument(self, tmp_path, monkeypatch):
        path = _write(tmp_path, "s.dng", _plain_dng(width=8, height=4))
        monkeypatch.setenv("ISPKIT_MAX_PIXELS", "31")
        with pytest.raises(RawFormatError, match=r"= 32 samples, more than the limit of 31 .*ISPKIT_MAX_PIXELS"):
            read_raw(path)
        assert read_raw(path, max_pixels=32).mosaic.shape == (4, 8)  # the argument wins
        monkeypatch.setenv("ISPKIT_MAX_PIXELS", "32")
        assert read_raw(path).mosaic.shape == (4, 8)

    @pytest.mark.parametrize("text", ["lots", "0", "-5", "1e9"])
    def test_bad_environment_value(self, monkeypatch, text):
        monkeypatch.setenv("ISPKIT_MAX_PIXELS", text)
        with pytest.raises(ConfigError, match=rf"ISPKIT_MAX_PIXELS={text!r}: expected a positive integer"):
            max_pixels()

    @pytest.mark.parametrize("value", [0, -1, 2.5, True, "100"])
    def test_bad_argument(self, value):
        with pytest.raises(ConfigError, match=r"max_pixels=.*: expected a positive integer"):
            max_pixels(value)
