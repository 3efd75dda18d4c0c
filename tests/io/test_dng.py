"""ispkit.io.dng: tag access for later readers, levels, crops, linear DNGs, and refused metadata."""

from __future__ import annotations

import numpy as np
import pytest
import tiffmaker as tm

from ispkit.errors import RawFormatError
from ispkit.io import DngFile, LinearImage, RawImage, parse_dng, read_linear, read_raw

RNG = np.random.default_rng(11)

COLOR_MATRIX = [7, 10, -2, 10, -1, 10, -4, 10, 12, 10, 3, 10, 0, 10, 2, 10, 6, 10]  # SRATIONAL pairs


def _write(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    return path


def _mosaic_dng(data, *, bits=16, extra=None, main=None, in_subifd=False, byteorder="<"):
    page = tm.cfa_page(data.shape[1], data.shape[0], 16, [tm.plain(data, 16, byteorder)], extra=extra)
    return tm.dng(page, main_tags=main, in_subifd=in_subifd, byteorder=byteorder)


class TestTagAccess:
    def test_any_tag_by_name_or_code_from_the_raw_ifd_then_ifd0(self, tmp_path):
        data = RNG.integers(0, 4096, (4, 6))
        main = {
            50708: (tm.ASCII, "Phone X"),
            50721: (tm.SRATIONAL, COLOR_MATRIX),
            50778: (tm.SHORT, [21]),
            50728: (tm.RATIONAL, [1, 2, 1, 1, 2, 3]),
            50730: (tm.SRATIONAL, [-1, 2]),
            51041: (tm.DOUBLE, [2e-5, 1e-7, 3e-5, 2e-7, 2e-5, 1e-7]),
        }
        extra = {50717: (tm.SHORT, [4095]), 51009: (tm.UNDEFINED, b"\x00\x00\x00\x00")}
        path = _write(tmp_path, "x.dng", _mosaic_dng(data, extra=extra, main=main, in_subifd=True, byteorder=">"))
        image = read_raw(path)
        dng = image.dng
        assert isinstance(dng, DngFile) and dng.path == path and dng.version == (1, 4, 0, 0) and not dng.linear
        assert dng.main is dng.structure.pages[0] and dng.raw is dng.main.subifds[0]
        np.testing.assert_allclose(dng.numbers("ColorMatrix1", count=9), np.array(COLOR_MATRIX[::2]) / 10)
        assert dng.integer("CalibrationIlluminant1") == 21 and dng.integer(50778) == 21
        assert dng.numbers("BaselineExposure").tolist() == [-0.5]
        assert dng.numbers("NoiseProfile").tolist() == [2e-5, 1e-7, 3e-5, 2e-7, 2e-5, 1e-7]
        assert dng.get("OpcodeList2").value == b"\x00\x00\x00\x00" and dng.get("OpcodeList1") is None
        assert dng.text("UniqueCameraModel") == "Phone X" and dng.numbers("ColorMatrix2") is None
        assert image.camera.name == "Phone X" and image.camera.white_balance == pytest.approx((2.0, 1.0, 1.5))
        with pytest.raises(RawFormatError, match=r"ColorMatrix1 \(50721\) holds 9 value\(s\), expected 12"):
            dng.numbers("ColorMatrix1", count=12)
        with pytest.raises(KeyError, match="unknown DNG tag name 'ColourMatrix1'"):
            dng.get("ColourMatrix1")

    def test_parse_dng_reads_tags_without_decoding(self, tmp_path):
        content = bytearray(_mosaic_dng(RNG.integers(0, 65536, (4, 6))))
        (ifd,) = tm.ifd_offsets(bytes(content))
        content[tm.entry_offset(bytes(content), ifd, 279) : tm.entry_offset(bytes(content), ifd, 279) + 4] = (1).to_bytes(4, "little")
        path = _write(tmp_path, "t.dng", bytes(content))  # StripByteCounts 1: the pixels cannot be read
        dng = parse_dng(path)
        assert dng.raw.integer(256) == 6 and dng.get("CFAPattern").integers().tolist() == [0, 1, 1, 2]
        with pytest.raises(RawFormatError, match="strip 0 holds 1 bytes"):
            read_raw(path)

    def test_parse_dng_refuses_a_plain_tiff(self, tmp_path):
        content = tm.build([tm.Page({256: (tm.LONG, [2]), 257: (tm.LONG, [2])})])
        with pytest.raises(RawFormatError, match=r"p\.tif: not a DNG \(IFD0 has no DNGVersion tag 50706\)"):
            parse_dng(_write(tmp_path, "p.tif", content))

    def test_plain_tiffs_have_no_dng(self, tmp_path):
        from ispkit.io import write_raw

        path = write_raw(tmp_path / "r.tiff", np.zeros((2, 2)), "drone")
        image = read_raw(path)
        assert image.dng is None and image.crop is None and image.levels is None


class TestCrops:
    def test_active_area_then_default_crop(self, tmp_path):
        data = RNG.integers(0, 4096, (12, 16))
        extra = {
            50717: (tm.SHORT, [4095]),
            50829: (tm.SHORT, [2, 2, 12, 14]),  # ActiveArea top, left, bottom, right
            50719: (tm.RATIONAL, [3, 1, 5, 2]),  # DefaultCropOrigin x = 3, y = 2.5
            50720: (tm.LONG, [6, 4]),  # DefaultCropSize width 6, height 4
        }
        image = read_raw(_write(tmp_path, "c.dng", _mosaic_dng(data, extra=extra)))
        np.testing.assert_array_equal(np.round(image.mosaic * 4095), data[2:12, 2:14])
        assert image.crop == (2, 3, 7, 9)  # rows 2.5..6.5 and columns 3..9, outward to whole pixels
        cropped = image.cropped()
        assert cropped.crop == (0, 1, 5, 7)
        np.testing.assert_array_equal(cropped.mosaic, image.mosaic[2:8, 2:10])
        assert cropped.camera == image.camera

    def test_cropped_keeps_an_exact_black_map(self, tmp_path):
        data = RNG.integers(200, 4096, (8, 8))
        black = [100, 101, 102, 103, 110, 111, 112, 113]  # a 2×4 repeat
        extra = {50717: (tm.SHORT, [4095]), 50713: (tm.SHORT, [2, 4]), 50714: (tm.SHORT, black), 50715: (tm.SSHORT, [0, 1, 2, 3, 4, 5, 6, 7]),
                 50719: (tm.LONG, [2, 2]), 50720: (tm.LONG, [4, 4])}
        image = read_raw(_write(tmp_path, "b.dng", _mosaic_dng(data, extra=extra)))
        exact = np.tile(np.array(black).reshape(2, 4), (4, 2)) + np.arange(8)[None, :]
        np.testing.assert_allclose(image.black_map() * 4095, exact)
        np.testing.assert_allclose(image.cropped().black_map() * 4095, exact[2:6, 2:6])
        site = exact.reshape(4, 2, 4, 2).mean(axis=(0, 2)).ravel() / 4095
        np.testing.assert_allclose(image.camera.black_level, site)

    def test_crop_outside_the_active_area(self, tmp_path):
        extra = {50719: (tm.LONG, [2, 2]), 50720: (tm.LONG, [10, 2])}
        with pytest.raises(RawFormatError, match=r"DefaultCropOrigin \[2\.0, 2\.0\] with DefaultCropSize \[10\.0, 2\.0\] leaves the 4×6 active area"):
            read_raw(_write(tmp_path, "c.dng", _mosaic_dng(RNG.integers(0, 9, (4, 6)), extra=extra)))

    def test_active_area_outside_the_image(self, tmp_path):
        with pytest.raises(RawFormatError, match=r"ActiveArea \(0\.0, 0\.0, 8\.0, 6\.0\) lies outside the 4×6 raw image"):
            read_raw(_write(tmp_path, "a.dng", _mosaic_dng(RNG.integers(0, 9, (4, 6)), extra={50829: (tm.SHORT, [0, 0, 8, 6])})))


class TestLevels:
    @pytest.mark.parametrize(
        ("extra", "problem"),
        [
            ({50717: (tm.SHORT, [4095]), 50714: (tm.SHORT, [4095])}, r"its black level \(4095, BlackLevel plus deltas\) is not below its WhiteLevel 4095"),
            ({50717: (tm.SHORT, [1000]), 50714: (tm.SHORT, [900]), 50716: (tm.SSHORT, [0, 0, 0, 200])}, r"its black level \(1100, BlackLevel plus deltas\) is not below its WhiteLevel 1000"),
            ({50717: (tm.DOUBLE, [float("nan")])}, r"WhiteLevel \(50717\) holds a value that is not finite"),
            ({50717: (tm.RATIONAL, [4095, 2])}, r"WhiteLevel 2047\.5 does not fit BitsPerSample 16"),
            ({50714: (tm.SHORT, [1, 2, 3])}, r"BlackLevel \[1\.0, 2\.0, 3\.0\] with BlackLevelRepeatDim \(1, 1\): expected 1 values"),
            ({50713: (tm.SHORT, [100, 2])}, r"BlackLevelRepeatDim \[100\.0, 2\.0\]: expected two integers from 1 to 64"),
            ({50715: (tm.SSHORT, [1, 2])}, r"BlackLevelDeltaH holds 2 values, expected 6 \(one per column of the active area\)"),
            ({50712: (tm.LONG, [0, 70000])}, r"LinearizationTable must map stored numbers to 16-bit values"),
            ({50708: (tm.SHORT, [1, 2])}, r"UniqueCameraModel \(50708\) has TIFF type 3, expected text"),
            ({33421: (tm.SHORT, [2, 4]), 33422: (tm.BYTE, [0, 1] * 4)}, r"CFARepeatPatternDim is \(2, 4\)"),
        ],
    )
    def test_refused(self, tmp_path, extra, problem):
        data = RNG.integers(0, 1000, (4, 6))
        with pytest.raises(RawFormatError, match=problem):
            read_raw(_write(tmp_path, "l.dng", _mosaic_dng(data, extra=extra)))

    def test_black_level_per_site_with_repeat_dim(self, tmp_path):
        extra = {50717: (tm.SHORT, [4095]), 50713: (tm.SHORT, [2, 2]), 50714: (tm.RATIONAL, [256, 1, 257, 1, 258, 2, 0, 1])}
        image = read_raw(_write(tmp_path, "b.dng", _mosaic_dng(RNG.integers(0, 4096, (4, 6)), extra=extra)))
        assert image.camera.black_level == (256 / 4095, 257 / 4095, 129 / 4095, 0.0)


class TestLinear:
    def _linear(self, rgb, *, black=(0, 0, 0), white=(4095,)) -> bytes:
        h, w = rgb.shape[1:]
        chunky = np.moveaxis(rgb, 0, -1).reshape(h, w * 3)
        extra = {262: (tm.SHORT, [34892]), 277: (tm.SHORT, [3]), 258: (tm.SHORT, [16, 16, 16]), 50714: (tm.SHORT, list(black)), 50717: (tm.SHORT, list(white))}
        return tm.dng(tm.cfa_page(w, h, 16, [tm.plain(chunky, 16)], extra=extra), main_tags={50728: (tm.RATIONAL, [1, 2, 1, 1, 1, 4])})

    def test_read_linear(self, tmp_path):
        rgb = RNG.integers(100, 4096, (3, 5, 7))
        path = _write(tmp_path, "lin.dng", self._linear(rgb, black=(64, 65, 66), white=(4095, 4000, 3900)))
        image = read_linear(path)
        assert isinstance(image, LinearImage) and image.rgb.shape == (3, 5, 7)
        expected = (rgb - np.array([64, 65, 66])[:, None, None]) / 4095
        np.testing.assert_array_equal(image.rgb, expected)
        assert image.camera.black_level == (0.0,) * 4 and image.camera.white_level == 4095
        assert image.camera.white_balance == pytest.approx((2.0, 1.0, 4.0)) and image.dng.linear
        assert "already subtracted" in image.camera.description and repr(image).startswith("LinearImage(5×7 RGB")

    def test_read_raw_points_to_read_linear(self, tmp_path):
        path = _write(tmp_path, "lin.dng", self._linear(RNG.integers(0, 4096, (3, 2, 2))))
        with pytest.raises(RawFormatError, match=r"lin\.dng: a linear DNG .* holds demosaiced RGB data, not a mosaic; read it with ispkit\.io\.read_linear"):
            read_raw(path)

    def test_read_linear_refuses_a_mosaic(self, tmp_path):
        path = _write(tmp_path, "m.dng", _mosaic_dng(RNG.integers(0, 9, (2, 2))))
        with pytest.raises(RawFormatError, match=r"m\.dng: not a linear DNG"):
            read_linear(path)

    def test_linear_needs_three_samples(self, tmp_path):
        extra = {262: (tm.SHORT, [34892])}
        path = _write(tmp_path, "l1.dng", tm.dng(tm.cfa_page(2, 2, 16, [bytes(8)], extra=extra)))
        with pytest.raises(RawFormatError, match=r"a LinearRaw image needs 3 sample\(s\) per pixel, found 1"):
            read_linear(path)


class TestRawImage:
    def test_black_map_without_dng_levels_repeats_the_camera(self):
        from ispkit.camera import Camera

        camera = Camera(name="c", black_level=(0.1, 0.2, 0.3, 0.4))
        np.testing.assert_array_equal(RawImage(np.zeros((2, 4)), camera).black_map(), [[0.1, 0.2, 0.1, 0.2], [0.3, 0.4, 0.3, 0.4]])
        assert RawImage(np.zeros((2, 2)), camera).cropped().mosaic.shape == (2, 2)
