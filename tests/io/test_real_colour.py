"""The camera's own colour science, noise and lens shading on real DNGs: against LibRaw and the published ColorChecker values.

The colour chart (``canon_eos_kiss_x4_colorchart.dng``, see SOURCES.md) is rendered by an
ispkit pipeline black_level → demosaic (bilinear) → white_balance → color_correction with
the camera ``read_raw`` builds from the tags, and compared with

- LibRaw (rawpy) rendering with the matching settings (``make_references.LIBRAW_SETTINGS``):
  stored patch means (``references.json``) always, the whole image when rawpy is installed;
- X-Rite's published ColorChecker values (after November 2014) in CIEDE2000, at the patch
  grid stored beside the file (``*.patches.json``).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import warnings
from pathlib import Path

import colour
import numpy as np
import pytest
import tiffmaker as tm

from ispkit import Camera, Pipeline
from ispkit.dng_color import D65_XY, SRGB_FROM_XYZ, bradford, correlated_color_temperature, render, xy_to_xyz
from ispkit.io import read_raw
from ispkit.io.dng import dng_calibration

CORPUS = Path(__file__).parents[1] / "data" / "real"
CHART = CORPUS / "canon_eos_kiss_x4_colorchart.dng"
GPR = CORPUS / "gopro_hero6_GOPR0024.GPR"
GRID = json.loads((CORPUS / "canon_eos_kiss_x4_colorchart.patches.json").read_text(encoding="utf-8"))
LIBRAW = json.loads((CORPUS / "references.json").read_text(encoding="utf-8"))["colour"][CHART.name]
_spec = importlib.util.spec_from_file_location("make_references", CORPUS / "make_references.py")
references = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(references)

STAGES = [{"kind": "black_level"}, {"kind": "demosaic", "method": "bilinear"}, {"kind": "white_balance"}, {"kind": "color_correction"}]
SCALE = 16383 / (15000 - 2056)  # the chart's white level becomes 1: (2**14 - 1) / (WhiteLevel - BlackLevel)
CHECKER = colour.CCS_COLOURCHECKERS["ColorChecker24 - After November 2014"]
REFERENCE_XYZ = np.array([bradford(CHECKER.illuminant, D65_XY) @ colour.xyY_to_XYZ(xyY) for xyY in CHECKER.data.values()])
XYZ_FROM_SRGB = np.linalg.inv(SRGB_FROM_XYZ)
GREYS = slice(18, 24)


@pytest.fixture(scope="module")
def chart():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # its BaselineExposure is 0/0 (noted in the description)
        return read_raw(CHART)


def render_chart(image, camera: Camera | None = None, *, like_libraw: bool = False) -> np.ndarray:
    """The chart through black_level → bilinear → white_balance → color_correction; ``like_libraw`` clips as LibRaw does
    (below black before demosaicking, and the result to [0, 1])."""
    mosaic = np.maximum(image.mosaic, image.black_map()) if like_libraw else image.mosaic
    rgb = Pipeline(STAGES, camera or image.camera)(mosaic)
    return np.clip(rgb, 0.0, 1.0) if like_libraw else rgb


def delta_e_2000(linear_srgb: np.ndarray) -> np.ndarray:
    """CIEDE2000 of 24 linear sRGB patch colours against X-Rite's values (adapted D50 → D65 by Bradford), per patch.

    The photograph's exposure is unknown, so the patches are first scaled by the one factor that
    fits the luminance Y of the six grey patches to the reference in least squares.
    """
    xyz = linear_srgb @ XYZ_FROM_SRGB.T
    exposure = REFERENCE_XYZ[GREYS, 1] @ xyz[GREYS, 1] / (xyz[GREYS, 1] @ xyz[GREYS, 1])
    return colour.delta_E(colour.XYZ_to_Lab(exposure * xyz, D65_XY), colour.XYZ_to_Lab(REFERENCE_XYZ, D65_XY), method="CIE 2000")


class TestChartCamera:
    def test_white_balance_and_matrix_from_the_tags(self, chart):
        camera = chart.camera
        assert camera.white_balance == pytest.approx((2.477, 1.0, 2.477 / 1.462), rel=1e-6)  # 1 / AsShotNeutral (1, 2.477, 1.462)
        white = np.array([1.0, 2.477, 1.462]) / 2.477  # the camera white, largest channel 1
        total = np.asarray(camera.color_matrix) @ np.diag(camera.white_balance)
        np.testing.assert_allclose(total @ white, [SCALE] * 3, rtol=1e-9)  # white → sRGB (1, 1, 1) at the DNG white level
        assert "5301 K" in camera.description and "left out" not in camera.description  # one matrix, no illuminant: used as is

    def test_the_pipeline_is_libraws_with_libraws_matrix(self, chart):
        """With LibRaw's camera → sRGB matrix, the same black level, white level, bilinear demosaic and white balance
        reproduce LibRaw's patch means to 16-bit rounding: what differs below is the colour model alone."""
        camera = dataclasses.replace(chart.camera, color_matrix=SCALE * np.array(LIBRAW["rgb_cam"]))
        ours = references.patch_means(render_chart(chart, camera, like_libraw=True), GRID)
        np.testing.assert_allclose(ours, LIBRAW["patches"], atol=2 / 65535)

    def test_the_dng_colour_model_against_libraw(self, chart):
        """The DNG model (Bradford adaptation from the 5301 K white) vs LibRaw's (white balance in camera RGB):
        patch means differ by 0.0007 on average (0.0043 at most) on values up to 0.12; 0.9 CIEDE2000 on average."""
        ours = references.patch_means(render_chart(chart, like_libraw=True), GRID)
        difference = np.abs(ours - np.array(LIBRAW["patches"]))
        assert difference.mean() < 8e-4 and difference.max() < 5e-3
        lab = [colour.XYZ_to_Lab(8 * np.asarray(p) @ XYZ_FROM_SRGB.T, D65_XY) for p in (ours, LIBRAW["patches"])]
        apart = colour.delta_E(*lab, method="CIE 2000")
        assert 0.5 < apart.mean() < 1.2 and apart.max() < 2.5


class TestColorChecker:
    """CIEDE2000 against X-Rite's published values (ColorChecker Classic after November 2014), per patch."""

    def test_as_shot(self, chart):
        """The file's AsShotNeutral is a daylight setting; the chart was lit at about 2900 K (its greys say so below):
        mean 15.2, max 24.6, the greys 9-25 — a white-balance error, not a colour-matrix one (LibRaw's rendering: 14.9)."""
        de = delta_e_2000(references.patch_means(render_chart(chart), GRID))
        assert de.mean() == pytest.approx(15.18, abs=0.05) and de.max() == pytest.approx(24.57, abs=0.05)
        assert delta_e_2000(np.array(LIBRAW["patches"])).mean() == pytest.approx(14.88, abs=0.05)

    def test_with_the_white_of_the_charts_greys(self, chart):
        """Rendered for the white the four middle grey patches measure (as a custom white balance would): the camera's
        own matrix gives mean 3.71, max 6.89 (orange); LibRaw's model with the same white: mean 5.06, max 8.54."""
        camera_rgb = references.patch_means(Pipeline(STAGES[:2], chart.camera)(chart.mosaic), GRID)
        neutral = camera_rgb[19:23].sum(axis=0)
        color = render(dng_calibration(chart.dng), neutral=neutral / neutral.max())
        assert color.temperature == pytest.approx(2916, abs=2)
        de = delta_e_2000(SCALE * camera_rgb @ color.camera_to_srgb.T)
        assert de.mean() == pytest.approx(3.71, abs=0.02) and de.max() == pytest.approx(6.89, abs=0.02)
        assert np.argmax(de) == list(CHECKER.data).index("orange")
        libraw_model = np.array(LIBRAW["rgb_cam"]) @ np.diag(neutral[1] / neutral)
        assert delta_e_2000(camera_rgb @ libraw_model.T).mean() == pytest.approx(5.06, abs=0.02)


def _libraw():
    return pytest.importorskip("rawpy", reason="rawpy (LibRaw) is a test extra: pip install -e .[test]")


class TestLibRawLive:
    def test_whole_chart(self, chart):
        """Every pixel but a 2-pixel border (LibRaw interpolates its border differently): with LibRaw's matrix within
        4 of 65535 (rounding), with the DNG model 0.0016 apart on average (2.3 % of the mean signal), 0.019 at most."""
        _libraw()
        libraw, _ = references.libraw_linear_srgb(CHART)
        inner = (slice(None), slice(2, -2), slice(2, -2))
        with_libraws_matrix = render_chart(chart, dataclasses.replace(chart.camera, color_matrix=SCALE * np.array(LIBRAW["rgb_cam"])), like_libraw=True)
        assert np.abs(with_libraws_matrix - libraw)[inner].max() <= 4 / 65535
        difference = np.abs(render_chart(chart, like_libraw=True) - libraw)[inner]
        assert difference.mean() < 1.7e-3 and difference.max() < 0.02

    def test_a_d65_white_makes_the_two_models_one(self, chart, tmp_path):
        """The chart's real pixels with the Canon EOS 350D's dual-illuminant matrices (A and D65) and a D65 as-shot white:
        the DNG model then uses the D65 matrix alone, as LibRaw does, and the two agree to rounding."""
        rawpy = _libraw()
        cm_a = [0.6018, -0.0617, -0.0965, -0.8645, 1.5881, 0.2975, -0.1530, 0.1719, 0.7642]
        cm_d65 = np.array([0.6159, -0.0945, -0.0745, -0.6846, 1.3563, 0.3684, -0.0802, 0.1086, 0.7555])
        neutral = cm_d65.reshape(3, 3) @ xy_to_xyz(D65_XY)
        assert correlated_color_temperature(D65_XY) > 6500  # beyond the D65 calibration: weight 0 on the A matrix

        def rationals(values):
            return [v for x in values for v in (round(x * 1e6), 1_000_000)]

        stored = np.round(chart.mosaic[560:1000, 640:1320] * 16383).astype(np.uint16)
        main = {50721: (tm.SRATIONAL, rationals(cm_a)), 50722: (tm.SRATIONAL, rationals(cm_d65)), 50778: (tm.SHORT, [17]), 50779: (tm.SHORT, [21]),
                50728: (tm.RATIONAL, rationals(neutral / neutral.max()))}  # fmt: skip
        page = tm.cfa_page(stored.shape[1], stored.shape[0], 16, [tm.plain(stored, 16)], extra={50717: (tm.SHORT, [15000]), 50714: (tm.SHORT, [2056])})
        path = tmp_path / "chart_350d_matrices.dng"
        path.write_bytes(tm.dng(page, main_tags=main))
        image = read_raw(path)
        libraw, _ = references.libraw_linear_srgb(path)
        with rawpy.imread(str(path)) as raw:
            assert raw.raw_image_visible.shape == stored.shape
        difference = np.abs(render_chart(image, like_libraw=True) - libraw)[:, 2:-2, 2:-2]
        assert difference.max() <= 6 / 65535


class TestGoProTags:
    """GoPro HERO6 GPR: its pixels are VC-5 compressed (refused), but its tags still give the camera."""

    @pytest.fixture(scope="class")
    def camera(self):
        return Camera.from_dng(GPR)

    def test_noise_profile(self, camera):
        from ispkit.io import parse_dng

        s, o = parse_dng(GPR).numbers("NoiseProfile", count=2)
        assert camera.gain == pytest.approx(s * 16383, rel=1e-12)  # WhiteLevel 16383, BlackLevel 0
        assert camera.read_noise == pytest.approx(np.sqrt(o) / s, rel=1e-12)
        assert camera.gain == pytest.approx(2.559, abs=1e-3) and camera.read_noise == pytest.approx(1.414, abs=1e-3)

    def test_gain_maps_stored_exactly(self, camera):
        from ispkit.io import parse_dng
        from ispkit.io.opcodes import GainMap

        assert camera.shading_origin == (0.0, 0.0) and camera.shading_spacing == (1 / 22, 1 / 22)
        grid = np.asarray(camera.shading_map)
        for site, op in enumerate(parse_dng(GPR).opcodes(2)):
            np.testing.assert_array_equal(grid[site, :23, :23], GainMap.from_opcode(op).gains[:, :, 0])
            assert np.all(grid[site, 23:, :] == grid[site, 22:23, :])  # padded with the last row
        assert grid.min() == 1.0 and 2.07 < grid.max() < 2.08

    def test_colour_between_its_tungsten_and_d50_calibrations(self, camera):
        """Illuminants 3 (tungsten, 2850 K) and 23 (D50, 5000 K); the as-shot white (5022 K) is beyond D50: its matrix alone."""
        from ispkit.io import parse_dng

        dng = parse_dng(GPR)
        calibration = dng_calibration(dng)
        assert calibration.temperatures == (2850.0, 5000.0)
        color = render(calibration, neutral=dng.numbers("AsShotNeutral"))
        assert color.temperature == pytest.approx(5022, abs=1) and color.weight == 0.0
        neutral = dng.numbers("AsShotNeutral")
        np.testing.assert_allclose(color.neutral, neutral / neutral.max(), rtol=1e-6)  # the white found reproduces the neutral
        np.testing.assert_allclose(camera.color_matrix, color.color_matrix, rtol=1e-12)  # black 0, white 16383 = 2**14 - 1: scale 1
