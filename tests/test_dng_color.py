"""The DNG colour model (chapter 6 of the DNG specification): colour temperature, Bradford, interpolation, neutral ↔ white, camera → sRGB."""

from __future__ import annotations

import colour
import numpy as np
import pytest
from colour.temperature import uv_to_CCT_Robertson1968

from ispkit.dng_color import (
    BRADFORD,
    D50_XY,
    D55_XY,
    D65_XY,
    SRGB_FROM_XYZ,
    ColorCalibration,
    bradford,
    correlated_color_temperature,
    illuminant_temperature,
    render,
    xy_to_xyz,
    xyz_to_xy,
)
from ispkit.errors import InputError

RNG = np.random.default_rng(17)

# A plausible camera: XYZ → camera matrices under illuminant A (17, 2850 K) and D65 (21, 6500 K), in the
# range real DNGs hold (Canon EOS 350D's ColorMatrix1/2, as tests/data/real/exiftool_canon_350d_stripped.dng has them).
CM_A = np.array([[0.6018, -0.0617, -0.0965], [-0.8645, 1.5881, 0.2975], [-0.1530, 0.1719, 0.7642]])
CM_D65 = np.array([[0.6159, -0.0945, -0.0745], [-0.6846, 1.3563, 0.3684], [-0.0802, 0.1086, 0.7555]])


def dual(**extra) -> ColorCalibration:
    return ColorCalibration((CM_D65, CM_A), (21, 17), **extra)


class TestChromaticity:
    def test_xy_round_trip(self):
        for xy in RNG.uniform([0.2, 0.2], [0.5, 0.45], (20, 2)):
            np.testing.assert_allclose(xyz_to_xy(xy_to_xyz(xy)), xy, rtol=1e-14)
            assert xy_to_xyz(xy)[1] == 1.0

    @pytest.mark.parametrize("bad", [(0.3, 0.0), (0.3, -0.1), (np.nan, 0.3)])
    def test_no_chromaticity(self, bad):
        with pytest.raises(InputError, match="chromaticity"):
            xy_to_xyz(bad)

    def test_xyz_without_chromaticity(self):
        with pytest.raises(InputError, match="no chromaticity"):
            xyz_to_xy([0.0, 0.0, 0.0])

    def test_srgb_matrix_is_the_standards(self):
        """Derived from the IEC 61966-2-1 primaries and D65: colour-science's (rounded) sRGB matrix to its 4 decimals."""
        np.testing.assert_allclose(SRGB_FROM_XYZ, colour.RGB_COLOURSPACES["sRGB"].matrix_XYZ_to_RGB, atol=6e-4)
        np.testing.assert_allclose(SRGB_FROM_XYZ @ xy_to_xyz(D65_XY), [1.0, 1.0, 1.0], rtol=1e-12)


class TestColourTemperature:
    @pytest.mark.parametrize(("xy", "kelvin"), [(D65_XY, 6504.0), (D50_XY, 5001.0), (D55_XY, 5503.0), ((0.44757, 0.40745), 2856.0)])
    def test_standard_illuminants(self, xy, kelvin):
        assert correlated_color_temperature(xy) == pytest.approx(kelvin, abs=1.0)

    def test_equals_colour_sciences_robertson(self):
        """Between 2000 K and 20000 K, near the Planckian locus, as colour-science's independent implementation."""
        for temperature in np.geomspace(2000, 20000, 25):
            for duv in (-0.01, 0.0, 0.01):
                uv = colour.temperature.CCT_to_uv_Robertson1968(np.array([temperature, duv]))
                xy = colour.UCS_uv_to_xy(uv)
                expected = uv_to_CCT_Robertson1968(uv)[0]
                assert correlated_color_temperature(xy) == pytest.approx(expected, rel=2e-4)

    def test_beyond_the_table(self):
        assert correlated_color_temperature((0.58, 0.39)) == pytest.approx(1e6 / 600)  # redder than 1667 K
        assert correlated_color_temperature((0.22, 0.20)) == pytest.approx(1e6 / 10)  # bluer than the 10 mired line

    def test_illuminant_codes(self):
        assert [illuminant_temperature(c) for c in (17, 21, 23, 3, 0, 255, None)] == [2850.0, 6500.0, 5000.0, 2850.0, None, None, None]


class TestBradford:
    def test_lindblooms_published_matrix(self):
        d50, d65 = xyz_to_xy([0.96422, 1.0, 0.82521]), xyz_to_xy([0.95047, 1.0, 1.08883])
        expected = [[0.9555766, -0.0230393, 0.0631636], [-0.0282895, 1.0099416, 0.0210077], [0.0122982, -0.0204830, 1.3299098]]
        np.testing.assert_allclose(bradford(d50, d65), expected, atol=1e-7)

    def test_equals_colour_sciences_and_inverts(self):
        for a, b in RNG.uniform([0.28, 0.29], [0.45, 0.41], (10, 2, 2)):
            expected = colour.adaptation.matrix_chromatic_adaptation_VonKries(xy_to_xyz(a), xy_to_xyz(b), transform="Bradford")
            np.testing.assert_allclose(bradford(a, b), expected, rtol=1e-10)
            np.testing.assert_allclose(bradford(a, b) @ bradford(b, a), np.eye(3), atol=1e-12)
        assert BRADFORD.shape == (3, 3)


class TestCalibration:
    def test_order_and_single_illuminant(self):
        calibration = dual()
        assert calibration.temperatures == (2850.0, 6500.0) and calibration.illuminants == (17, 21)
        np.testing.assert_array_equal(calibration.color_matrices[0], CM_A)  # the lower temperature first
        for illuminants in ((21,), (21, 0), (0, 17), (21, 21)):
            single = ColorCalibration((CM_D65, CM_A)[: len(illuminants)], illuminants)
            assert single.temperatures is None and len(single.color_matrices) == 1 and single.weight(D50_XY) == 1.0

    def test_weight_is_linear_in_inverse_temperature(self):
        calibration = dual()
        for temperature in (2000.0, 2850.0, 4000.0, 5000.0, 6500.0, 9000.0):
            xy = colour.temperature.CCT_to_xy_CIE_D(temperature) if temperature >= 4000 else colour.temperature.CCT_to_xy_Kang2002(temperature)
            t = correlated_color_temperature(xy)
            expected = min(max((1 / t - 1 / 6500) / (1 / 2850 - 1 / 6500), 0.0), 1.0)
            assert calibration.weight(xy) == pytest.approx(expected, abs=1e-12)
        np.testing.assert_allclose(calibration.xyz_to_camera((0.5, 0.41)), CM_A)  # below 2850 K: matrix 1 alone

    def test_camera_calibration_and_analog_balance(self):
        cc = np.diag([1.05, 1.0, 0.97])
        balance = np.array([1.1, 1.0, 0.9])
        calibration = ColorCalibration((CM_D65, CM_A), (21, 17), camera_calibrations=(cc, cc), analog_balance=balance)
        np.testing.assert_allclose(calibration.xyz_to_camera((0.5, 0.41)), np.diag(balance) @ cc @ CM_A, rtol=1e-14)

    @pytest.mark.parametrize(
        ("kwargs", "problem"),
        [
            ({"color_matrices": ()}, "one or two colour matrices"),
            ({"color_matrices": (np.eye(2),)}, "ColorMatrix1: expected a finite 3×3 matrix"),
            ({"color_matrices": (np.full((3, 3), np.nan),)}, "ColorMatrix1: expected a finite 3×3 matrix"),
            ({"color_matrices": (np.eye(3),), "analog_balance": np.array([1.0, 0.0, 1.0])}, "AnalogBalance: expected 3 finite positive"),
            ({"color_matrices": (np.eye(3),), "forward_matrices": (np.zeros((3, 3)),)}, "maps \\(1, 1, 1\\) to a zero XYZ component"),
        ],
    )
    def test_refused(self, kwargs, problem):
        with pytest.raises(InputError, match=problem):
            ColorCalibration(**kwargs)

    def test_singular_matrix(self):
        calibration = ColorCalibration((np.ones((3, 3)),), (21,))
        with pytest.raises(InputError, match="singular"):
            calibration.neutral_to_xy([0.5, 1.0, 0.6])


class TestNeutralAndWhite:
    @pytest.mark.parametrize("temperature", [2600.0, 3200.0, 4300.0, 5500.0, 7500.0])
    def test_neutral_to_xy_inverts_the_camera_response(self, temperature):
        """The iteration finds the white whose interpolated XYZtoCamera response is the neutral (the fixed point of chapter 6)."""
        calibration = dual()
        xy = colour.temperature.CCT_to_xy_CIE_D(temperature) if temperature >= 4000 else colour.temperature.CCT_to_xy_Kang2002(temperature)
        neutral = calibration.xyz_to_camera(xy) @ xy_to_xyz(xy)
        np.testing.assert_allclose(calibration.neutral_to_xy(neutral / neutral.max()), xy, atol=1e-7)

    def test_single_matrix_needs_one_pass(self):
        calibration = ColorCalibration((CM_D65,), (21,))
        neutral = np.array([0.45, 1.0, 0.7])
        expected = xyz_to_xy(np.linalg.inv(CM_D65) @ neutral)
        np.testing.assert_allclose(calibration.neutral_to_xy(neutral), expected, rtol=1e-14)
        np.testing.assert_allclose(calibration.camera_white(expected), neutral, rtol=1e-12)

    @pytest.mark.parametrize("neutral", [[0.0, 1.0, 0.5], [-1.0, 1.0, 0.5], [np.nan, 1, 1], [1.0, 1.0]])
    def test_bad_neutral(self, neutral):
        with pytest.raises(InputError, match="AsShotNeutral: expected 3 finite positive numbers"):
            dual().neutral_to_xy(neutral)


class TestCameraToXyz:
    @pytest.mark.parametrize("xy", [(0.4476, 0.4074), (0.3457, 0.3585), (0.3127, 0.3290)])
    def test_the_camera_white_maps_to_d50(self, xy):
        calibration = dual()
        np.testing.assert_allclose(calibration.camera_to_xyz_d50(xy) @ calibration.camera_white(xy), xy_to_xyz(D50_XY), atol=1e-12)

    def test_without_forward_matrix_it_inverts_the_adapted_color_matrix(self):
        """CameraToXYZ_D50 = (XYZtoCamera · Bradford(D50 → white))⁻¹, scaled: colours map back through the calibration."""
        calibration = dual()
        xy = np.array([0.40, 0.39])
        xyz = RNG.uniform(0.05, 0.9, (3, 10))
        camera = calibration.xyz_to_camera(xy) @ bradford(D50_XY, xy) @ xyz  # what the camera records for D50-referred colours
        recovered = calibration.camera_to_xyz_d50(xy) @ camera
        np.testing.assert_allclose(recovered / recovered[1, 0], xyz / xyz[1, 0], rtol=1e-10)

    def test_forward_matrix_path(self):
        """With ForwardMatrix: FM · diag(1 / reference white) · (AB·CC)⁻¹, the ForwardMatrix normalised so (1, 1, 1) → D50."""
        fm = np.array([[0.70, 0.15, 0.10], [0.30, 0.75, -0.05], [0.00, -0.10, 0.95]])
        cc = np.diag([1.02, 1.0, 0.98])
        calibration = ColorCalibration((CM_D65,), (21,), forward_matrices=(fm,), camera_calibrations=(cc,), analog_balance=np.array([1.0, 1.0, 1.1]))
        xy = np.array([0.33, 0.35])
        white = calibration.camera_white(xy)
        individual = np.diag([1.0, 1.0, 1.1]) @ cc
        normalised = (xy_to_xyz(D50_XY) / fm.sum(axis=1))[:, None] * fm
        expected = normalised @ np.diag(1 / (np.linalg.inv(individual) @ white)) @ np.linalg.inv(individual)
        np.testing.assert_allclose(calibration.camera_to_xyz_d50(xy), expected, rtol=1e-12)
        np.testing.assert_allclose(calibration.camera_to_xyz_d50(xy) @ white, xy_to_xyz(D50_XY), atol=1e-12)


class TestRender:
    def test_an_srgb_camera_under_d65(self):
        color = render(ColorCalibration((SRGB_FROM_XYZ,), (21,)), neutral=[1.0, 1.0, 1.0])
        np.testing.assert_allclose(color.white_xy, D65_XY, atol=1e-7)
        np.testing.assert_allclose(color.white_balance, [1.0, 1.0, 1.0], atol=1e-6)
        # Bradford D65 → D50 and back is the identity, so the camera's own RGB is sRGB.
        np.testing.assert_allclose(color.color_matrix, np.eye(3), atol=1e-6)

    def test_white_balance_and_matrix_compose_to_camera_to_srgb(self):
        color = render(dual(), neutral=[0.55, 1.0, 0.72])
        np.testing.assert_allclose(color.white_balance, color.neutral[1] / color.neutral, rtol=1e-14)
        np.testing.assert_allclose(color.color_matrix @ np.diag(color.white_balance), color.camera_to_srgb, rtol=1e-12)
        np.testing.assert_allclose(color.camera_to_srgb @ color.neutral, [1.0, 1.0, 1.0], atol=1e-10)  # white stays white
        assert 0.0 < color.weight < 1.0 and 2850 < color.temperature < 6500

    def test_white_xy_instead_of_neutral(self):
        by_xy = render(dual(), white_xy=(0.3457, 0.3585))
        by_neutral = render(dual(), neutral=by_xy.neutral)
        np.testing.assert_allclose(by_neutral.color_matrix, by_xy.color_matrix, atol=1e-7)

    def test_exactly_one_white(self):
        with pytest.raises(InputError, match="exactly one of neutral"):
            render(dual())
        with pytest.raises(InputError, match="exactly one of neutral"):
            render(dual(), neutral=[1, 1, 1], white_xy=D65_XY)
