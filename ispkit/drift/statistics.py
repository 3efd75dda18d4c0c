"""Confidence intervals of the drift reports: paired differences over folds or over images.

Every effect a drift report states is a *paired* difference: the same task model scored
on two views of the same test images (in distribution against another pipeline, or
against a corruption), or two arms trained and validated on the same split of the same
images. The reports estimate each effect with a **t interval of the mean paired
difference** (:func:`t_interval`):

- **over folds** (:func:`fold_interval`; drift synthesis, drift adjustment). The folds are
  the study's only independent replicates: within a fold every pipeline's model is trained
  on the same images and tested on the same held-out images, so its cells share that fold's
  luck; their differences are therefore first averaged within each fold, and the ``K``
  fold-level differences are the sample. With ``K`` = 3 to 5 folds a bootstrap is not an
  option (three folds have ten distinct resamples, and the bootstrap's spread of a mean of
  ``K`` values is ``√((K − 1)/K)`` times too small), and a sign-flip permutation test cannot
  reach 5 % below six folds; each fold-level difference is a mean over many images and
  pipelines, close to normal, which is what the t interval assumes. Cross-validation's
  training sets overlap (any two share ``(K − 2)/(K − 1)`` of their images), so fold-level
  differences are positively correlated and the plain t interval is too narrow; the
  variance is corrected as Nadeau & Bengio (2003, *Inference for the generalization
  error*, Machine Learning 52:239–281) propose, from ``s²/K`` to ``s² (1/K + n_test/n_train)``
  with ``n_test/n_train = 1/(K − 1)`` for ``K`` folds (:func:`cv_correction`);
- **over images** (:func:`image_interval`; drift forensics, one frozen model): the
  per-image differences of the metric on the attacked images, without correction. It
  measures how sure the drop is *on those images*; the attack was fitted to them and the
  model was trained once, so it says nothing about other images or another training run.

An effect is **distinguishable** from that noise when its interval excludes 0
(:attr:`Interval.distinguishable`); with one replicate there is no interval and nothing is
distinguishable.

Examples
--------
>>> i = t_interval([0.01, 0.02, 0.03])
>>> round(i.estimate, 4), round(i.low, 4), round(i.high, 4), i.distinguishable
(0.02, -0.0048, 0.0448, False)
>>> f = fold_interval([0.01, 0.02, 0.03])  # corrected: (1/3 + 1/2) instead of 1/3
>>> round(f.low, 4), round(f.high, 4), f.verdict()
(-0.0193, 0.0593, 'not distinguishable from fold noise with 3 folds')
>>> fold_interval([0.5, 0.52, 0.49]).verdict()
'distinguishable from fold noise (3 folds)'
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from ..errors import InputError

__all__ = ["CONFIDENCE", "Interval", "t_interval", "cv_correction", "fold_interval", "image_interval", "signed"]

CONFIDENCE = 0.95
"""The confidence level of every interval the reports state."""


@dataclass(frozen=True)
class Interval:
    """A mean paired difference and its confidence interval.

    ``estimate`` is the mean of the ``n`` differences; ``[low, high]`` the interval at
    ``confidence`` (both ``nan`` when ``n`` < 2); ``units`` names what the differences are
    taken over (``"folds"``, ``"images"``), ``method`` how the interval was made.
    """

    estimate: float
    low: float
    high: float
    n: int
    confidence: float
    units: str
    method: str

    @property
    def distinguishable(self) -> bool:
        """Whether the interval excludes 0 (false when there is no interval)."""
        return bool(self.low > 0 or self.high < 0)

    def verdict(self) -> str:
        """Whether the effect stands out from the noise of its units, in words.

        ``"distinguishable from fold noise (3 folds)"``, ``"not distinguishable from
        fold noise with 3 folds"``, or, with one replicate, ``"fold noise not estimable
        from 1 fold"``.
        """
        noise = f"{_singular(self.units)} noise"
        if not (math.isfinite(self.low) and math.isfinite(self.high)):
            return f"{noise} not estimable from {self._count()}"
        if self.distinguishable:
            return f"distinguishable from {noise} ({self.n} {self.units})"
        return f"not distinguishable from {noise} with {self.n} {self.units}"

    def bounds_text(self) -> str:
        """``"95% CI −0.004 to 0.028"`` (three decimals, typographic minus), or ``"no CI with 1 fold"``."""
        if not (math.isfinite(self.low) and math.isfinite(self.high)):
            return f"no CI with {self._count()}"
        return f"{self.confidence:.0%} CI {signed(self.low)} to {signed(self.high)}"

    def _count(self) -> str:
        return f"{self.n} {_singular(self.units) if self.n == 1 else self.units}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the fields, ``distinguishable`` and ``verdict``; non-finite bounds as ``None``."""

        def plain(x: float) -> float | None:
            return float(x) if math.isfinite(x) else None

        return {
            "estimate": plain(self.estimate),
            "low": plain(self.low),
            "high": plain(self.high),
            "n": self.n,
            "confidence": self.confidence,
            "units": self.units,
            "method": self.method,
            "distinguishable": self.distinguishable,
            "verdict": self.verdict(),
        }


def _singular(units: str) -> str:
    return units[:-1] if units.endswith("s") else units


def t_interval(differences: Sequence[float] | np.ndarray, *, confidence: float = CONFIDENCE, correction: float = 0.0, units: str = "folds") -> Interval:
    """The t interval of the mean of ``differences``, its variance corrected by ``correction``.

    ``mean ± t_{n−1, (1+confidence)/2} · s · √(1/n + correction)`` with ``s`` the sample
    standard deviation (``ddof=1``). With ``correction=0`` this is the one-sample t
    interval (:func:`scipy.stats.ttest_1samp`'s ``confidence_interval``); with
    :func:`cv_correction` it is Nadeau and Bengio's corrected interval for
    cross-validation. Fewer than two differences give ``nan`` bounds; a zero spread gives
    the point ``[mean, mean]``.

    Raises
    ------
    InputError
        When ``differences`` is empty, not one-dimensional or not finite, or
        ``confidence`` is not in (0, 1), or ``correction`` is negative.
    """
    d = np.asarray(differences, dtype=float)
    if d.ndim != 1 or d.size == 0:
        raise InputError(f"t_interval: differences must be a non-empty 1-D sequence of numbers; got shape {d.shape}")
    if not np.isfinite(d).all():
        raise InputError(f"t_interval: differences must be finite; got {d.tolist()}")
    if not 0 < confidence < 1:
        raise InputError(f"t_interval: confidence must lie in (0, 1); got {confidence!r}")
    if not correction >= 0:
        raise InputError(f"t_interval: correction must be >= 0; got {correction!r}")
    n, mean = d.size, float(d.mean())
    method = f"paired t interval over {units}" + (f", variance × (1/n + {correction:.3g}) (Nadeau–Bengio)" if correction else "")
    if n < 2:
        return Interval(mean, math.nan, math.nan, n, confidence, units, method)
    half = float(stats.t.ppf((1 + confidence) / 2, n - 1)) * float(d.std(ddof=1)) * math.sqrt(1 / n + correction)
    return Interval(mean, mean - half, mean + half, n, confidence, units, method)


def cv_correction(folds: int) -> float:
    """Nadeau and Bengio's ``n_test / n_train`` of ``folds``-fold cross-validation: ``1 / (folds − 1)``.

    >>> cv_correction(3), cv_correction(5)
    (0.5, 0.25)
    """
    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 2:
        raise InputError(f"cv_correction: folds must be an integer >= 2; got {folds!r}")
    return 1 / (folds - 1)


def fold_interval(differences: Sequence[float] | np.ndarray, *, confidence: float = CONFIDENCE) -> Interval:
    """The corrected t interval over fold-level paired differences (one per fold; see the module docstring)."""
    n = np.asarray(differences).size
    return t_interval(differences, confidence=confidence, correction=cv_correction(n) if n >= 2 else 0.0, units="folds")


def image_interval(differences: Sequence[float] | np.ndarray, *, confidence: float = CONFIDENCE) -> Interval:
    """The t interval over per-image paired differences of one frozen model (see the module docstring)."""
    return t_interval(differences, confidence=confidence, units="images")


def signed(value: float) -> str:
    """Three decimals with a typographic minus: ``signed(-0.0042)`` is ``"−0.004"``.

    >>> signed(-0.0042), signed(0.5), signed(float("nan"))
    ('−0.004', '0.500', 'n/a')
    """
    if not math.isfinite(value):
        return "n/a"
    text = f"{value:.3f}"
    return "0.000" if text == "-0.000" else text.replace("-", "−")
