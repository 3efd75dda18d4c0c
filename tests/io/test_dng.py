"""ispkit.io.dng: tag access for later readers, levels, crops, linear DNGs, refused metadata, and the camera's colour, noise and lens shading from the tags."""

from __future__ import annotations

import re

import numpy as np
import pytest
import tiffmaker as tm

from ispkit.camera import Camera
from ispkit.errors import RawFormatError
from ispkit.io import DngFile, LinearImage, RawImage, parse_dng, read_linear, read_raw
from ispkit.io.opcodes import GainMap

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
        extra = {
            50717: (tm.SHORT, [4095]),
            50713: (tm.SHORT, [2, 4]),
            50714: (tm.SHORT, black),
            50715: (tm.SSHORT, [0, 1, 2, 3, 4, 5, 6, 7]),
            50719: (tm.LONG, [2, 2]),
            50720: (tm.LONG, [4, 4]),
        }
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
            (
                {50717: (tm.SHORT, [1000]), 50714: (tm.SHORT, [900]), 50716: (tm.SSHORT, [0, 0, 0, 200])},
                r"its black level \(1100, BlackLevel plus deltas\) is not below its WhiteLevel 1000",
            ),
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


# -- the camera's colour science, noise and lens shading from the tags ------------------------------

CM_D65 = [6159, -945, -745, -6846, 13563, 3684, -802, 1086, 7555]  # Canon EOS 350D's ColorMatrix2 (D65) × 10000
CM_A = [6018, -617, -965, -8645, 15881, 2975, -1530, 1719, 7642]  # its ColorMatrix1 (standard light A) × 10000


def _srational(values, scale=10000):
    return (tm.SRATIONAL, [v for value in values for v in (value, scale)])


def _colour_tags(replace=None):
    tags = {
        50721: _srational(CM_A),
        50722: _srational(CM_D65),
        50778: (tm.SHORT, [17]),
        50779: (tm.SHORT, [21]),
        50728: (tm.RATIONAL, [5924, 10000, 1, 1, 5017, 10000]),
    }
    tags.update(replace or {})
    return {k: v for k, v in tags.items() if v is not None}


def _camera_dng(tmp_path, *, main=None, extra=None, name="c.dng", shape=(8, 12), white=4095, black=256):
    data = RNG.integers(black, white, shape)
    levels = {50717: (tm.SHORT, [white]), 50714: (tm.SHORT, [black])}
    return _write(tmp_path, name, _mosaic_dng(data, extra={**levels, **(extra or {})}, main=main))


class TestColourFromTags:
    def test_the_dng_colour_model_feeds_the_two_stages(self, tmp_path):
        from ispkit.dng_color import ColorCalibration, render

        path = _camera_dng(tmp_path, main=_colour_tags())
        camera = read_raw(path).camera
        expected = render(ColorCalibration((np.reshape(CM_A, (3, 3)) / 1e4, np.reshape(CM_D65, (3, 3)) / 1e4), (17, 21)), neutral=[0.5924, 1.0, 0.5017])
        scale = 4095 / (4095 - 256)  # the DNG's white level becomes 1
        np.testing.assert_allclose(camera.white_balance, expected.white_balance, rtol=1e-12)
        np.testing.assert_allclose(camera.color_matrix, scale * expected.color_matrix, rtol=1e-12)
        assert camera.white_balance == pytest.approx((1 / 0.5924, 1.0, 1 / 0.5017), rel=1e-6)  # 1 / AsShotNeutral
        assert 0.0 < expected.weight < 1.0 and "colour: as-shot white xy" in camera.description
        assert Camera.from_dng(path) == camera

    def test_white_from_as_shot_white_xy_or_d55(self, tmp_path):
        from ispkit.dng_color import D55_XY

        by_xy = Camera.from_dng(_camera_dng(tmp_path, main=_colour_tags({50728: None, 50729: (tm.RATIONAL, [3457, 10000, 3585, 10000])}), name="xy.dng"))
        by_neutral = Camera.from_dng(_camera_dng(tmp_path, main=_colour_tags(), name="n.dng"))
        assert "white from AsShotWhiteXY" in by_xy.description and by_xy.white_balance != by_neutral.white_balance
        default = Camera.from_dng(_camera_dng(tmp_path, main=_colour_tags({50728: None}), name="d.dng"))
        assert "no AsShotNeutral or AsShotWhiteXY: rendered for D55" in default.description
        d55 = Camera.from_dng(_camera_dng(tmp_path, main=_colour_tags({50728: None, 50729: (tm.DOUBLE, list(D55_XY))}), name="d55.dng"))
        assert default.color_matrix == d55.color_matrix

    def test_camera_calibration_only_with_matching_signatures(self, tmp_path):
        calibration = {50723: _srational([11000, 0, 0, 0, 10000, 0, 0, 0, 9000]), 50724: _srational([11000, 0, 0, 0, 10000, 0, 0, 0, 9000])}
        plain = Camera.from_dng(_camera_dng(tmp_path, main=_colour_tags(), name="p.dng"))
        used = Camera.from_dng(_camera_dng(tmp_path, main=_colour_tags(calibration), name="u.dng"))
        ignored = Camera.from_dng(_camera_dng(tmp_path, main=_colour_tags({**calibration, 50931: (tm.ASCII, "unit 7")}), name="i.dng"))
        assert used.color_matrix != plain.color_matrix and ignored.color_matrix == plain.color_matrix
        assert "CameraCalibration1/2 not used" in ignored.description

    def test_without_color_matrix_the_identity(self, tmp_path):
        camera = Camera.from_dng(_camera_dng(tmp_path, main={50728: (tm.RATIONAL, [1, 2, 1, 1, 2, 3])}))
        assert camera.color_matrix == ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)) and camera.white_balance == pytest.approx((2.0, 1.0, 1.5))
        assert "no usable ColorMatrix1: colour matrix left at the identity" in camera.description

    @pytest.mark.parametrize(
        ("replace", "left_out"),
        [
            ({50721: (tm.SRATIONAL, [1, 0] * 9)}, "ColorMatrix1 left out: tag ColorMatrix1 (50721) holds a rational with denominator 0"),
            ({50721: _srational([1] * 9), 50722: None}, "the colour model left out: XYZtoCamera is singular"),
            ({50728: (tm.RATIONAL, [1, 1, 1, 1])}, "AsShotNeutral left out: tag AsShotNeutral (50728) holds 2 value(s), expected 3"),
            ({50722: _srational([1] * 6)}, "ColorMatrix2 left out"),
        ],
    )
    def test_malformed_colour_tags_are_left_out_with_a_warning(self, tmp_path, replace, left_out):
        from ispkit.io.dng import DngWarning

        path = _camera_dng(tmp_path, main=_colour_tags(replace))
        with pytest.warns(DngWarning, match=re.escape(left_out)):
            camera = read_raw(path).camera
        assert left_out in camera.description


class TestNoiseFromTags:
    def test_noise_profile_gives_gain_and_read_noise(self, tmp_path):
        """variance(x) = S·x + O with x = (DN − black) / (white − black): g = S·(white − black), σ = √O / S."""
        profile = [2e-4, 4e-8, 3e-4, 5e-8, 2.5e-4, 6e-8]
        camera = Camera.from_dng(_camera_dng(tmp_path, main={51041: (tm.DOUBLE, profile)}))
        span = 4095 - 256
        assert camera.gain == pytest.approx(np.mean([2e-4 * span, 3e-4 * span, 2.5e-4 * span]), rel=1e-12)
        assert camera.read_noise == pytest.approx(np.mean([np.sqrt(4e-8) / 2e-4, np.sqrt(5e-8) / 3e-4, np.sqrt(6e-8) / 2.5e-4]), rel=1e-12)
        assert camera.stored_gain == camera.gain and "from NoiseProfile" in camera.description

    def test_the_sensor_model_reproduces_the_profile(self, tmp_path):
        """acquire() with the derived gain and read noise has the variance the NoiseProfile states, in its normalised units."""
        from ispkit.sensor import acquire

        s, o = 3e-4, 2e-7
        camera = Camera.from_dng(_camera_dng(tmp_path, main={51041: (tm.DOUBLE, [s, o])}, white=65535, black=0))
        for x in (0.05, 0.3):
            raw = acquire(np.full((3, 256, 256), x), camera, seed=7)
            # The normalised raw is x = DN / 65535 (black 0, white 65535), so its variance is S·x + O, plus rounding to whole DN.
            assert raw.var() == pytest.approx(s * raw.mean() + o + 1 / 12 / 65535**2, rel=0.03)

    def test_zero_offset_leaves_read_noise_unset(self, tmp_path):
        camera = Camera.from_dng(_camera_dng(tmp_path, main={51041: (tm.DOUBLE, [2e-4, 0.0])}))
        assert camera.gain == pytest.approx(2e-4 * (4095 - 256)) and camera.read_noise is None
        assert "NoiseProfile O = 0: read noise left unset" in camera.description

    @pytest.mark.parametrize(
        ("profile", "problem"), [([2e-4], "1 values, expected pairs"), ([-2e-4, 1e-8], "needs S > 0 and O >= 0"), ([2e-4, -1e-8], "needs S > 0 and O >= 0")]
    )
    def test_malformed_profiles(self, tmp_path, profile, problem):
        from ispkit.io.dng import DngWarning

        with pytest.warns(DngWarning, match=problem):
            camera = Camera.from_dng(_camera_dng(tmp_path, main={51041: (tm.DOUBLE, profile)}))
        assert camera.gain is None and camera.read_noise is None

    def test_without_profile(self, tmp_path):
        camera = Camera.from_dng(_camera_dng(tmp_path, main={50731: (tm.RATIONAL, [133, 100]), 50730: (tm.SRATIONAL, [1, 4])}))
        assert camera.gain is None and "no NoiseProfile" in camera.description
        assert "BaselineNoise 1.33 (relative" in camera.description and "BaselineExposure +0.25 EV not applied (multiply by 1.189" in camera.description


class TestShadingFromOpcodes:
    def _maps(self, points=(3, 4)):
        return [np.round(RNG.uniform(1.0, 2.0, (*points, 1)), 3).astype(np.float32) for _ in range(4)]

    def test_one_gainmap_per_site_is_stored_exactly(self, tmp_path):
        from ispkit.camera import SHADING_POINTS
        from ispkit.stages.lens_shading import gain_map_numpy

        maps = self._maps()
        ops = [
            tm.opcode(9, tm.gain_map_params(m, area=(site // 2, site % 2, 8, 12), pitch=(2, 2), spacing=(0.4, 0.3), origin=(0.1, 0.05)))
            for site, m in enumerate(maps)
        ]
        path = _camera_dng(tmp_path, extra={51009: (tm.UNDEFINED, tm.opcode_list(*ops))})
        camera = read_raw(path).camera
        assert camera.shading_origin == (0.1, 0.05) and camera.shading_spacing == (0.4, 0.3)
        grid = np.asarray(camera.shading_map)
        assert grid.shape == (4, SHADING_POINTS, SHADING_POINTS)
        np.testing.assert_array_equal(grid[2, :3, :4], maps[2][:, :, 0])
        ones = gain_map_numpy(np.ones((8, 12)), grid, np.array(camera.shading_origin), np.array(camera.shading_spacing))
        for site, gm in enumerate(GainMap.from_opcode(op) for op in parse_dng(path).opcodes(2)):
            dr, dc = divmod(site, 2)
            np.testing.assert_allclose(ones[dr::2, dc::2], gm.evaluate(np.arange(dr, 8, 2), np.arange(dc, 12, 2), 8, 12), rtol=1e-12)
        assert "stored exactly" in camera.description

    def test_one_map_for_all_sites_and_a_vignette(self, tmp_path):
        (m,) = self._maps()[:1]
        ops = [tm.opcode(9, tm.gain_map_params(m, area=(0, 0, 8, 12)))]
        extra = {51009: (tm.UNDEFINED, tm.opcode_list(*ops)), 51022: (tm.UNDEFINED, tm.opcode_list(tm.opcode(3, tm.vignette_params(cx=0.6, cy=0.4))))}
        camera = Camera.from_dng(_camera_dng(tmp_path, extra=extra))
        grid = np.asarray(camera.shading_map)
        assert all(np.array_equal(grid[site, :3, :4], m[:, :, 0]) for site in range(4))
        assert camera.vignette == (0.1, 0.2, 0.0, 0.0, -0.01) and camera.vignette_center == (0.4, 0.6)

    def test_maps_that_do_not_fit_are_resampled(self, tmp_path):
        from ispkit.camera import SHADING_POINTS
        from ispkit.stages.lens_shading import gain_map_numpy

        big = np.linspace(1, 2, 40 * 40, dtype=np.float32).reshape(40, 40, 1)
        ops = [
            tm.opcode(9, tm.gain_map_params(big, area=(0, 0, 8, 12), spacing=(1 / 39, 1 / 39))),
            tm.opcode(9, tm.gain_map_params(self._maps()[0], area=(0, 0, 8, 12))),
        ]
        path = _camera_dng(tmp_path, extra={51009: (tm.UNDEFINED, tm.opcode_list(*ops))})
        camera = Camera.from_dng(path)
        assert camera.shading_spacing == (1 / (SHADING_POINTS - 1),) * 2
        assert re.search(r"resampled onto a 33×33 grid per site: largest difference \d", camera.description)
        first, second = (GainMap.from_opcode(op) for op in parse_dng(path).opcodes(2))
        exact = first.evaluate(np.arange(8), np.arange(12), 8, 12) * second.evaluate(np.arange(8), np.arange(12), 8, 12)
        ones = gain_map_numpy(np.ones((8, 12)), np.asarray(camera.shading_map), np.zeros(2), np.array(camera.shading_spacing))
        np.testing.assert_allclose(ones, exact, rtol=0.01)

    @pytest.mark.parametrize(
        ("lists", "left_out"),
        [
            ({51009: [tm.opcode(4, b"\x00" * 8, flags=0)]}, "OpcodeList2 FixBadPixelsConstant (required) not applied: not supported"),
            ({51009: [tm.opcode(1, b"\x00" * 4)]}, "OpcodeList2 WarpRectilinear not applied: not supported"),
            (
                {51008: [tm.opcode(9, tm.gain_map_params(np.ones((2, 2, 1), np.float32), area=(0, 0, 8, 12)))]},
                "OpcodeList1 GainMap not applied: acts before linearization",
            ),
            (
                {51009: [tm.opcode(9, tm.gain_map_params(np.ones((2, 2, 1), np.float32), area=(0, 0, 4, 12)))]},
                "does not cover whole CFA sites of the 8×12 image; left out",
            ),
            ({51009: [tm.opcode(9, tm.gain_map_params(np.ones((2, 2, 1), np.float32), area=(0, 0, 8, 12), pitch=(3, 1)))]}, "does not cover whole CFA sites"),
            ({51009: [tm.opcode(9, tm.gain_map_params(np.ones((2, 2, 1), np.float32))[:-2])]}, "OpcodeList2 GainMap: holds 90 parameter bytes"),
            (
                {51022: [tm.opcode(3, tm.vignette_params()), tm.opcode(3, tm.vignette_params())]},
                "OpcodeList3 FixVignetteRadial not applied: a second one cannot be combined",
            ),
        ],
    )
    def test_what_is_not_applied_is_said(self, tmp_path, lists, left_out):
        from ispkit.io.dng import DngWarning

        extra = {code: (tm.UNDEFINED, tm.opcode_list(*ops)) for code, ops in lists.items()}
        with pytest.warns(DngWarning, match=re.escape(left_out)):
            camera = read_raw(_camera_dng(tmp_path, extra=extra)).camera
        assert left_out in camera.description

    def test_a_corrupt_list_is_left_out_and_the_pixels_still_read(self, tmp_path):
        from ispkit.io.dng import DngWarning

        path = _camera_dng(tmp_path, extra={51009: (tm.UNDEFINED, b"\x00\x00\x00\x09" + bytes(10))})
        with pytest.warns(DngWarning, match="OpcodeList2 left out: OpcodeList2 declares 9 opcodes"):
            image = read_raw(path)
        assert image.camera.shading_map == Camera(name="x").shading_map
        with pytest.raises(RawFormatError, match="declares 9 opcodes"):
            image.dng.opcodes(2)


class TestCameraFromDng:
    def test_missing_and_not_a_dng(self, tmp_path):
        with pytest.raises(FileNotFoundError):
            Camera.from_dng(tmp_path / "none.dng")
        from ispkit.io import write_raw

        with pytest.raises(RawFormatError, match="not a DNG"):
            Camera.from_dng(write_raw(tmp_path / "r.tiff", np.zeros((2, 2)), "drone"))

    def test_pixels_are_not_needed(self, tmp_path):
        """A DNG whose strips cannot be decoded still gives its camera (the GoPro GPR case)."""
        content = bytearray(_camera_dng(tmp_path, main=_colour_tags()).read_bytes())
        (ifd,) = tm.ifd_offsets(bytes(content))
        at = tm.entry_offset(bytes(content), ifd, 279)
        content[at : at + 4] = (1).to_bytes(4, "little")
        path = _write(tmp_path, "broken.dng", bytes(content))
        with pytest.raises(RawFormatError):
            read_raw(path)
        assert Camera.from_dng(path).color_matrix == Camera.from_dng(tmp_path / "c.dng").color_matrix

    def test_linear_dngs_get_colour_and_run_after_demosaicking(self, tmp_path):
        from ispkit import Pipeline

        rgb = RNG.integers(100, 4096, (3, 4, 6))
        chunky = np.moveaxis(rgb, 0, -1).reshape(4, 18)
        ops = tm.opcode_list(tm.opcode(9, tm.gain_map_params(np.ones((2, 2, 1), np.float32), area=(0, 0, 4, 6), planes=3)))
        extra = {262: (tm.SHORT, [34892]), 277: (tm.SHORT, [3]), 258: (tm.SHORT, [16, 16, 16]), 50717: (tm.SHORT, [4095]), 51009: (tm.UNDEFINED, ops)}
        path = _write(tmp_path, "lin.dng", tm.dng(tm.cfa_page(6, 4, 16, [tm.plain(chunky, 16)], extra=extra), main_tags=_colour_tags()))
        image = read_linear(path)
        assert image.camera == Camera.from_dng(path)
        assert image.camera.color_matrix != Camera(name="x").color_matrix and "OpcodeList2 (GainMap) not applied to a linear image" in image.camera.description
        pipeline = Pipeline.preset("bi,s,me", camera=image.camera).after("demosaic")
        out = pipeline(image.rgb)
        assert out.shape == (3, 4, 6) and np.all((out >= 0) & (out <= 1))


def test_cropping_keeps_the_gain_of_every_pixel(tmp_path):
    """RawImage.cropped() re-expresses the camera's GainMap for the crop (DefaultCrop rows 2.5..6.5, columns 3..9 → 2..8 × 2..10)."""
    from ispkit.stages.lens_shading import gain_map_numpy

    gains = np.round(RNG.uniform(1.0, 2.0, (5, 6, 1)), 3).astype(np.float32)
    extra = {
        50719: (tm.RATIONAL, [3, 1, 5, 2]),
        50720: (tm.LONG, [6, 4]),
        51009: (tm.UNDEFINED, tm.opcode_list(tm.opcode(9, tm.gain_map_params(gains, area=(0, 0, 12, 16), spacing=(0.25, 0.2))))),
    }
    image = read_raw(_camera_dng(tmp_path, extra=extra, shape=(12, 16)))
    cropped = image.cropped()

    def gain(img):
        c = img.camera
        return gain_map_numpy(np.ones(img.mosaic.shape), np.asarray(c.shading_map), np.array(c.shading_origin), np.array(c.shading_spacing))

    np.testing.assert_allclose(gain(cropped), gain(image)[2:8, 2:10], rtol=1e-12)
    assert cropped.camera.shading_spacing == (0.25 * 12 / 6, 0.2 * 16 / 8)
