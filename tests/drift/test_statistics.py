"""The report's intervals against scipy.stats: plain and Nadeau–Bengio-corrected t intervals, verdicts."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from ispkit.drift.statistics import Interval, cv_correction, fold_interval, image_interval, signed, t_interval
from ispkit.errors import InputError


@pytest.mark.parametrize("n", [2, 3, 5, 40])
@pytest.mark.parametrize("confidence", [0.9, 0.95, 0.99])
def test_plain_interval_equals_scipy_one_sample_t(n, confidence):
    d = np.random.default_rng(n).normal(0.02, 0.05, n)
    expected = stats.ttest_1samp(d, 0.0).confidence_interval(confidence)
    i = t_interval(d, confidence=confidence)
    assert i.estimate == pytest.approx(d.mean(), abs=1e-15)
    assert (i.low, i.high) == (pytest.approx(expected.low, abs=1e-12), pytest.approx(expected.high, abs=1e-12))
    assert (i.n, i.confidence, i.units) == (n, confidence, "folds")


@pytest.mark.parametrize("folds", [2, 3, 5, 10])
def test_fold_interval_widens_scipy_by_the_nadeau_bengio_factor(folds):
    d = np.random.default_rng(folds).normal(0.01, 0.02, folds)
    plain = stats.ttest_1samp(d, 0.0).confidence_interval(0.95)
    factor = math.sqrt((1 / folds + 1 / (folds - 1)) / (1 / folds))  # s²(1/K + 1/(K−1)) instead of s²/K
    i = fold_interval(d)
    assert i.high - i.estimate == pytest.approx((plain.high - d.mean()) * factor, rel=1e-12)
    assert i.estimate - i.low == pytest.approx((d.mean() - plain.low) * factor, rel=1e-12)
    assert "Nadeau–Bengio" in i.method


def test_image_interval_is_the_plain_t_interval_over_images():
    d = np.array([1.0, 1.0, 0.0, 1.0, -1.0, 1.0, 0.0, 1.0])
    expected = stats.ttest_1samp(d, 0.0).confidence_interval(0.95)
    i = image_interval(d)
    assert (i.low, i.high) == (pytest.approx(expected.low), pytest.approx(expected.high))
    assert i.units == "images" and "Nadeau" not in i.method


def test_distinguishable_iff_the_interval_excludes_zero():
    assert fold_interval([0.50, 0.52, 0.49]).distinguishable  # a clear drop
    assert fold_interval([-0.50, -0.52, -0.49]).distinguishable  # a clear rise
    null = fold_interval([0.03, -0.02, 0.001])
    assert null.low < 0 < null.high and not null.distinguishable
    assert null.verdict() == "not distinguishable from fold noise with 3 folds"
    assert fold_interval([0.5, 0.52, 0.49]).verdict() == "distinguishable from fold noise (3 folds)"


def test_zero_spread_gives_a_point_interval():
    i = fold_interval([0.25, 0.25, 0.25])
    assert (i.low, i.high) == (0.25, 0.25) and i.distinguishable
    assert not fold_interval([0.0, 0.0]).distinguishable


def test_one_replicate_has_no_interval():
    i = fold_interval([0.3])
    assert math.isnan(i.low) and math.isnan(i.high) and not i.distinguishable
    assert i.verdict() == "fold noise not estimable from 1 fold"
    assert i.bounds_text() == "no CI with 1 fold"
    assert i.to_dict()["low"] is None and i.to_dict()["estimate"] == 0.3


def test_texts_and_dict():
    i = Interval(0.012, -0.004, 0.028, 3, 0.95, "folds", "m")
    assert i.bounds_text() == "95% CI −0.004 to 0.028"
    assert i.to_dict() == {
        "estimate": 0.012, "low": -0.004, "high": 0.028, "n": 3, "confidence": 0.95, "units": "folds", "method": "m",
        "distinguishable": False, "verdict": "not distinguishable from fold noise with 3 folds",
    }  # fmt: skip
    assert signed(-0.0004) == "0.000" and signed(-1.5) == "−1.500"


@pytest.mark.parametrize(
    ("values", "kwargs", "message"),
    [
        ([], {}, "non-empty 1-D"),
        ([[0.1, 0.2]], {}, "non-empty 1-D"),
        ([0.1, float("nan")], {}, "must be finite"),
        ([0.1, 0.2], {"confidence": 1.0}, r"confidence must lie in \(0, 1\)"),
        ([0.1, 0.2], {"correction": -0.1}, "correction must be >= 0"),
    ],
)
def test_bad_input_is_named(values, kwargs, message):
    with pytest.raises(InputError, match=message):
        t_interval(values, **kwargs)


@pytest.mark.parametrize("folds", [1, 0, 2.0, True])
def test_cv_correction_needs_two_folds(folds):
    with pytest.raises(InputError, match="integer >= 2"):
        cv_correction(folds)
