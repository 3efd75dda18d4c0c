"""The backend probe: deterministic inputs per domain, defaults as a pipeline sets them, the worst difference."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ispkit import Camera
from ispkit.cfa import BAYER_PATTERNS, masks_numpy
from ispkit.errors import InputError, ParameterError
from ispkit.stage_probe import FLOAT64_TOLERANCE, ProbeResult, backend_difference, conformance_inputs, default_values, max_difference, probe_inputs
from ispkit.stages import all_stages
from ispkit.stages.base import FromCamera, Param, Stage

MICROSCOPY = Camera.get("microscopy")


def _stage(name: str, takes: str, numpy, torch_, *, gives: str | None = None, cfa_aware: bool = False, params=()) -> type[Stage]:
    attrs = {"kind": "probe", "method": name, "takes": takes, "gives": gives or takes, "cfa_aware": cfa_aware, "params": params}
    return type(name, (Stage,), {**attrs, "numpy": staticmethod(numpy), "torch": staticmethod(torch_)})


class TestInputs:
    @pytest.mark.parametrize(("takes", "shape"), [("raw", (16, 16)), ("rgb", (3, 16, 16)), ("luma", (16, 16))])
    def test_shapes_range_and_determinism(self, takes, shape):
        inputs = probe_inputs(takes)
        assert list(inputs) == ["ramp", "astronaut crop"]
        for image in inputs.values():
            assert image.shape == shape and image.dtype == np.float64
            assert 0.0 <= image.min() and image.max() <= 1.0 and image.std() > 0.05
        again = probe_inputs(takes)
        for name in inputs:
            np.testing.assert_array_equal(again[name], inputs[name])

    def test_raw_inputs_are_mosaics_of_the_pattern(self):
        rgb = probe_inputs("rgb")["astronaut crop"]
        for pattern in BAYER_PATTERNS:
            raw = probe_inputs("raw", pattern)["astronaut crop"]
            masks = masks_numpy((16, 16), pattern)
            for channel in range(3):
                np.testing.assert_array_equal(raw[masks[channel]], rgb[channel][masks[channel]])

    def test_inputs_are_not_shared_mutable_state(self):
        probe_inputs("rgb")["ramp"][:] = 7.0
        assert probe_inputs("rgb")["ramp"].max() <= 0.9 + 1e-12


class TestConformanceInputs:
    NAMES = ("ramp", "uniform random", "astronaut", "coffee", "12-bit counts", "14-bit counts, dark", "16-bit counts of a 10-bit sensor")

    @pytest.mark.parametrize(
        ("takes", "shape", "low", "high"), [("raw", (24, 32), 0.0, 1.0), ("rgb", (3, 24, 32), -0.25, 1.25), ("luma", (24, 32), -0.25, 1.25)]
    )
    def test_names_shapes_ranges_and_determinism(self, takes, shape, low, high):
        inputs = conformance_inputs(takes)
        assert tuple(inputs) == self.NAMES
        for name, image in inputs.items():
            assert image.shape == shape and image.dtype == np.float64, name
            assert low <= image.min() and image.max() <= high and image.std() > (0.005 if "dark" in name else 0.05), name
            np.testing.assert_array_equal(conformance_inputs(takes)[name], image)

    @pytest.mark.parametrize(
        ("name", "white", "step", "max_count"),
        [("12-bit counts", 4095, 1, 4095), ("14-bit counts, dark", 16383, 1, 1024), ("16-bit counts of a 10-bit sensor", 65535, 64, 65472)],
    )
    def test_counts_are_integers_over_the_white_level(self, name, white, step, max_count):
        counts = conformance_inputs("raw", "GBRG")[name] * white
        np.testing.assert_allclose(counts, np.round(counts), atol=1e-9)
        assert np.all(np.round(counts) % step == 0) and counts.max() <= max_count
        assert len(np.unique(np.round(counts))) < counts.size / 2  # many exact ties, as on a real sensor

    def test_photographs_are_8_bit_and_raw_inputs_are_mosaics_of_the_pattern(self):
        rgb = conformance_inputs("rgb", shape=(8, 10))
        np.testing.assert_allclose(rgb["coffee"] * 255, np.round(rgb["coffee"] * 255), atol=1e-9)
        for pattern in BAYER_PATTERNS:
            raw = conformance_inputs("raw", pattern, (8, 10))
            masks = masks_numpy((8, 10), pattern)
            for name in ("astronaut", "12-bit counts"):
                np.testing.assert_array_equal(raw[name], np.sum(masks * rgb[name], axis=0))

    def test_a_crop_that_does_not_fit_is_refused(self):
        with pytest.raises(ValueError, match=r"a 400×400 crop at \(200, 80\) does not fit in skimage.data.astronaut\(\)"):
            conformance_inputs("rgb", shape=(400, 400))


class TestDefaults:
    def test_camera_defaults_are_resolved_and_validated(self):
        stage = _stage("wb", "rgb", None, None, params=(Param("gains", (3,), FromCamera("white_balance"), "gains"), Param("n", (), 3, "count", dtype=int)))
        values = default_values(stage, MICROSCOPY)
        np.testing.assert_array_equal(values["gains"], MICROSCOPY.white_balance)
        assert values["n"] == 3 and not values["gains"].flags.writeable

    def test_a_default_outside_its_bounds_is_a_parameter_error(self):
        stage = _stage("bad", "rgb", None, None, params=(Param("k", (), 5.0, "k", bounds=(0.0, 1.0)),))
        with pytest.raises(ParameterError, match=r"probe\.k: values must lie in \[0\.0, 1\.0\]"):
            default_values(stage, MICROSCOPY)


class TestBackendDifference:
    @pytest.mark.parametrize("stage", all_stages(), ids=lambda s: f"{s.kind}={s.method}")
    def test_builtin_stages_agree(self, stage):
        result = backend_difference(stage, MICROSCOPY)
        assert result.agrees and result.max_difference <= 1e-12, result

    def test_an_offset_is_measured_exactly(self):
        stage = _stage("offset", "rgb", lambda x: x, lambda x: x + 0.48)
        result = backend_difference(stage, MICROSCOPY)
        assert math.isclose(result.max_difference, 0.48, rel_tol=1e-12) and not result.agrees
        assert result == ProbeResult(result.max_difference, "ramp")

    def test_the_worst_input_and_pattern_are_named(self):
        def numpy(raw, pattern):
            return raw + (1e-3 if pattern == "GBRG" else 0.0) * raw

        stage = _stage("cfa", "raw", numpy, lambda raw, pattern: raw, cfa_aware=True)
        result = backend_difference(stage, MICROSCOPY)
        crop_max = probe_inputs("raw", "GBRG")["astronaut crop"].max()
        ramp_max = probe_inputs("raw", "GBRG")["ramp"].max()
        assert result.where == ("astronaut crop, GBRG" if crop_max > ramp_max else "ramp, GBRG")
        assert math.isclose(result.max_difference, 1e-3 * max(crop_max, ramp_max), rel_tol=1e-9)

    def test_a_difference_at_the_tolerance_agrees_and_just_above_does_not(self):
        at = _stage("at", "luma", lambda y: y * 0, lambda y: y * 0 + FLOAT64_TOLERANCE)
        above = _stage("above", "luma", lambda y: y * 0, lambda y: y * 0 + 2 * FLOAT64_TOLERANCE)
        assert backend_difference(at, MICROSCOPY).agrees
        assert not backend_difference(above, MICROSCOPY).agrees

    @pytest.mark.parametrize(
        ("torch_", "expected"),
        [
            (lambda x: x * float("nan"), math.inf),  # NaN where numpy is finite
            (lambda x: x / 0.0, math.inf),  # inf where numpy is finite
        ],
        ids=["nan", "inf"],
    )
    def test_non_finite_mismatches_are_infinite(self, torch_, expected):
        stage = _stage("odd", "luma", lambda y: y, torch_)
        assert backend_difference(stage, MICROSCOPY).max_difference == expected

    def test_a_backend_returning_another_shape_is_an_input_error(self):
        stage = _stage("odd", "luma", lambda y: y, lambda y: y[..., :8])
        with pytest.raises(InputError, match=r"stage probe=odd: its torch backend returned shape \(1, 16, 8\) for an input of shape \(1, 16, 16\)"):
            backend_difference(stage, MICROSCOPY)

    def test_max_difference_of_other_shapes_is_infinite(self):
        assert max_difference(np.zeros((2, 3)), np.zeros((3, 2))) == math.inf

    def test_matching_non_finite_values_agree(self):
        stage = _stage("nan", "luma", lambda y: y * np.nan, lambda y: y * torch.nan)
        assert backend_difference(stage, MICROSCOPY).max_difference == 0.0

    def test_backends_are_called_as_a_pipeline_calls_them(self):
        calls = []

        def numpy(raw, level, pattern):
            calls.append(("numpy", raw.shape, raw.dtype, type(level), pattern))
            return raw - level

        def torch_(raw, level, pattern):
            calls.append(("torch", tuple(raw.shape), raw.dtype, type(level), pattern))
            return raw - level

        params = (Param("level", (), 0.01, "offset"),)
        stage = _stage("calls", "raw", numpy, torch_, cfa_aware=True, params=params)
        assert backend_difference(stage, MICROSCOPY).max_difference == 0.0
        assert calls[:2] == [
            ("numpy", (16, 16), np.float64, np.ndarray, "RGGB"),
            ("torch", (1, 16, 16), torch.float64, torch.Tensor, "RGGB"),
        ]
        assert sorted({c[4] for c in calls}) == sorted(BAYER_PATTERNS) and len(calls) == 2 * 2 * 4

    def test_backend_errors_propagate(self):
        stage = _stage("raises", "rgb", lambda x: x, lambda x: x.no_such_method())
        with pytest.raises(AttributeError, match="no_such_method"):
            backend_difference(stage, MICROSCOPY)
