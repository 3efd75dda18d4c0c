"""Results of the three drift controls, saved as ``results.json`` and read back by their reports.

- :class:`SynthesisResults`: the train × test matrix and the corruption baseline (below);
- :class:`ForensicsResults`: the forensic sweep, one :class:`ForensicsRun` per (subset, λ),
  and the operating specification derived from it;
- :class:`AdjustmentResults`: the validation curves of every arm and intensity.

Each is a dataclass with ``to_dict``/``from_dict`` and JSON ``save``/``load``
(:class:`JsonResults`); the controls (:mod:`ispkit.drift.synthesis`,
:mod:`ispkit.drift.forensics`, :mod:`ispkit.drift.adjustment`) make them and the report
modules draw them, so both import this module and neither imports the other.

**Drift synthesis.** Oala et al. (TMLR 2023, §5.1, Tables 7–11, Figures 4–5) train a task model on views
from one data model (a *train pipeline*) and evaluate it on views of the held-out
fold from every data model (*test pipelines*), and on the train pipeline's views
under the common corruptions. With ``P`` train pipelines, ``Q`` test pipelines,
``C`` corruptions at ``S`` severities and ``K`` folds, a study holds

- ``metrics[m]``: array ``(P, Q, K)``, metric ``m`` of the model trained on pipeline
  ``p`` in fold ``k`` tested on pipeline ``q``;
- ``corruption_metrics[m]``: array ``(P, C, S, K)``, the same model tested on the
  train pipeline's views corrupted by ``c`` at severity ``s``.

Drops are measured from the *in-distribution* score ``a_pp`` (the test fold seen
through the train pipeline itself), averaged over folds first:

.. math::

    \\Delta_\\text{ISP} = \\operatorname{mean}_{p,\\,q \\ne p} (\\bar a_{pp} - \\bar a_{pq}),
    \\qquad
    \\Delta_\\text{corr} = \\operatorname{mean}_{p,c,s} (\\bar a_{pp} - \\bar a_{pcs}),

and their ratio ``Δ_ISP / Δ_corr`` says how much of the drift that "add noise to
the image" testing predicts an ISP change actually causes (the paper: 0.82 → 0.80
under ISP drift against 0.82 → 0.55 under corruptions for classification).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import atomic_write_text
from ..errors import InputError

__all__ = ["SynthesisResults", "Ranking", "JsonResults", "ForensicsRun", "ForensicsResults", "plain_lambda", "AdjustmentResults"]


class JsonResults:
    """``save``/``load`` as JSON for a results class with ``to_dict`` and ``from_dict``."""

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write JSON to ``path`` (atomically)."""
        return atomic_write_text(path, json.dumps(self.to_dict(), indent=1))  # type: ignore[attr-defined]

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Any:
        """Read what :meth:`save` wrote."""
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Ranking:
    """One row of a ranking table: a test pipeline and its score over folds."""

    test: str
    mean: float
    std: float


@dataclass
class SynthesisResults(JsonResults):
    """The outcome of :func:`ispkit.drift.synthesis.run_synthesis` (see module docstring).

    ``metric`` names the primary metric (``"accuracy"`` for classification, ``"iou"``
    for segmentation) used by the rankings and drops; ``std`` is the standard
    deviation over folds (``ddof=0``; 0 with one fold).

    Examples
    --------
    >>> r = SynthesisResults(
    ...     task="classification", metric="accuracy",
    ...     train_pipelines=["a", "b"], test_pipelines=["a", "b"], folds=1,
    ...     metrics={"accuracy": np.array([[[0.9], [0.7]], [[0.7], [0.8]]])},
    ...     corruptions=["gaussian_noise"], severities=[1],
    ...     corruption_metrics={"accuracy": np.array([[[[0.5]]], [[[0.4]]]])})
    >>> round(r.isp_drop, 3), round(r.corruption_drop, 3), round(r.drop_ratio, 3)
    (0.15, 0.4, 0.375)
    >>> r.worst_pair()
    ('a', 'b', 0.2)
    """

    task: str
    metric: str
    train_pipelines: list[str]
    test_pipelines: list[str]
    folds: int
    metrics: dict[str, np.ndarray]
    corruptions: list[str] = field(default_factory=list)
    severities: list[int] = field(default_factory=list)
    corruption_metrics: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.metric not in self.metrics:
            raise InputError(f"SynthesisResults: primary metric {self.metric!r} not among {sorted(self.metrics)}")
        shape = (len(self.train_pipelines), len(self.test_pipelines), self.folds)
        for name, values in self.metrics.items():
            self.metrics[name] = values = np.asarray(values, dtype=float)
            if values.shape != shape:
                raise InputError(f"SynthesisResults: metrics[{name!r}] has shape {values.shape}, expected {shape}")
        cshape = (len(self.train_pipelines), len(self.corruptions), len(self.severities), self.folds)
        for name, values in self.corruption_metrics.items():
            self.corruption_metrics[name] = values = np.asarray(values, dtype=float)
            if values.shape != cshape:
                raise InputError(f"SynthesisResults: corruption_metrics[{name!r}] has shape {values.shape}, expected {cshape}")
        missing = [p for p in self.train_pipelines if p not in self.test_pipelines]
        if missing:
            raise InputError(f"SynthesisResults: train pipelines {missing} are not among the test pipelines (their in-distribution score is needed)")

    # -- summaries ----------------------------------------------------------------------

    def mean(self, metric: str | None = None) -> np.ndarray:
        """Mean over folds, ``(P, Q)``."""
        return self.metrics[metric or self.metric].mean(axis=-1)

    def std(self, metric: str | None = None) -> np.ndarray:
        """Standard deviation over folds, ``(P, Q)``."""
        return self.metrics[metric or self.metric].std(axis=-1)

    def corruption_mean(self, metric: str | None = None) -> np.ndarray:
        """Mean over folds of the corruption scores, ``(P, C, S)``."""
        return self.corruption_metrics[metric or self.metric].mean(axis=-1)

    def in_distribution(self, metric: str | None = None) -> np.ndarray:
        """Fold-mean score of each train pipeline on its own views, ``(P,)``."""
        columns = [self.test_pipelines.index(p) for p in self.train_pipelines]
        return self.mean(metric)[np.arange(len(self.train_pipelines)), columns]

    def rankings(self, metric: str | None = None) -> dict[str, list[Ranking]]:
        """Per train pipeline, the test pipelines from best to worst (as Tables 7–11)."""
        mean, std = self.mean(metric), self.std(metric)
        table = {}
        for p, train in enumerate(self.train_pipelines):
            order = sorted(range(len(self.test_pipelines)), key=lambda q: (-mean[p, q], self.test_pipelines[q]))
            table[train] = [Ranking(self.test_pipelines[q], float(mean[p, q]), float(std[p, q])) for q in order]
        return table

    def isp_drops(self, metric: str | None = None) -> np.ndarray:
        """``a_pp − a_pq`` for every pair, ``(P, Q)`` (0 on the train pipeline's own column)."""
        return self.in_distribution(metric)[:, None] - self.mean(metric)

    @property
    def isp_drop(self) -> float:
        """Mean drop from the in-distribution score to every *other* test pipeline."""
        drops = self.isp_drops()
        off = np.array([[t != q for q in self.test_pipelines] for t in self.train_pipelines])
        return float(drops[off].mean()) if off.any() else float("nan")

    @property
    def corruption_drop(self) -> float:
        """Mean drop from the in-distribution score under every corruption and severity."""
        if not self.corruptions or not self.severities:
            return float("nan")
        return float((self.in_distribution()[:, None, None] - self.corruption_mean()).mean())

    @property
    def drop_ratio(self) -> float:
        """``isp_drop / corruption_drop`` (nan when the corruption drop is 0 or missing)."""
        c = self.corruption_drop
        return self.isp_drop / c if np.isfinite(c) and c != 0 else float("nan")

    def worst_pair(self) -> tuple[str, str, float]:
        """``(train, test, drop)`` with the largest fold-mean drop between two different pipelines."""
        drops = self.isp_drops()
        best: tuple[str, str, float] | None = None
        for p, train in enumerate(self.train_pipelines):
            for q, test in enumerate(self.test_pipelines):
                if test != train and (best is None or drops[p, q] > best[2]):
                    best = (train, test, round(float(drops[p, q]), 12))
        if best is None:
            raise InputError("worst_pair needs at least one test pipeline different from the train pipeline")
        return best

    def summary(self) -> dict[str, Any]:
        """The headline numbers as plain Python values."""
        train, test, drop = self.worst_pair() if len(self.test_pipelines) > 1 else (None, None, float("nan"))
        return {
            "metric": self.metric,
            "in_distribution": float(self.in_distribution().mean()),
            "under_isp_drift": float(self.in_distribution().mean() - self.isp_drop),
            "under_corruptions": float(self.in_distribution().mean() - self.corruption_drop),
            "isp_drop": self.isp_drop,
            "corruption_drop": self.corruption_drop,
            "drop_ratio": self.drop_ratio,
            "worst_pair": {"train": train, "test": test, "drop": drop},
        }

    # -- files --------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-ready form (arrays as nested lists); :meth:`from_dict` inverts it."""
        return {
            "task": self.task,
            "metric": self.metric,
            "train_pipelines": list(self.train_pipelines),
            "test_pipelines": list(self.test_pipelines),
            "folds": self.folds,
            "metrics": {k: v.tolist() for k, v in self.metrics.items()},
            "corruptions": list(self.corruptions),
            "severities": list(self.severities),
            "corruption_metrics": {k: v.tolist() for k, v in self.corruption_metrics.items()},
            "summary": _finite(self.summary()),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SynthesisResults:
        fields = {k: v for k, v in data.items() if k != "summary"}
        fields["metrics"] = {k: np.asarray(v, dtype=float) for k, v in data["metrics"].items()}
        fields["corruption_metrics"] = {k: np.asarray(v, dtype=float) for k, v in data.get("corruption_metrics", {}).items()}
        return cls(**fields)

    def to_csv(self, path: str | os.PathLike[str]) -> Path:
        """One row per (kind, train, test or corruption, severity, fold, metric, value)."""
        rows = [("kind", "train", "test", "severity", "fold", "metric", "value")]
        for name, values in self.metrics.items():
            for (p, q, k), v in np.ndenumerate(values):
                rows.append(("pipeline", self.train_pipelines[p], self.test_pipelines[q], "", k, name, repr(float(v))))
        for name, values in self.corruption_metrics.items():
            for (p, c, s, k), v in np.ndenumerate(values):
                rows.append(("corruption", self.train_pipelines[p], self.corruptions[c], self.severities[s], k, name, repr(float(v))))
        text = io.StringIO()
        csv.writer(text, lineterminator="\n").writerows(rows)
        return atomic_write_text(path, text.getvalue())


def _finite(value: Any) -> Any:
    """JSON has no NaN: replace non-finite floats with ``None``, recursively."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


@dataclass
class ForensicsRun:
    """One optimisation: a subset at one λ, and what it found."""

    subset: str
    lam: float
    metric: float
    distance: float
    loss: float
    params: dict[str, list]
    trace: list[dict[str, float]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (λ = ∞ as ``"inf"``)."""
        return {**self.__dict__, "lam": plain_lambda(self.lam)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ForensicsRun:
        return cls(**{**data, "lam": float(data["lam"])})


@dataclass
class ForensicsResults(JsonResults):
    """The forensic sweep: baseline, one :class:`ForensicsRun` per (subset, λ), and the reference parameters."""

    task: str
    metric: str
    pipeline: str
    distance: str
    baseline: float
    subsets: list[str]
    lambdas: list[float]
    reference: dict[str, list]
    bounds: dict[str, list]
    runs: list[ForensicsRun]
    tolerance: float = 0.05

    def run(self, subset: str, lam: float) -> ForensicsRun:
        for r in self.runs:
            if r.subset == subset and r.lam == lam:
                return r
        raise InputError(f"no forensics run for subset {subset!r} at λ = {lam}")

    def table(self, what: str = "metric") -> np.ndarray:
        """``(subsets, lambdas)`` array of the metric (or ``"distance"``)."""
        return np.array([[getattr(self.run(s, lam), what) for lam in self.lambdas] for s in self.subsets])

    def operating_spec(self, tolerance: float | None = None) -> dict[str, Any]:
        """Per parameter: reference, safe range found by its own stage's sweep, and the nearest breaking setting.

        A parameter element's safe range is the smallest interval holding its reference
        value and every value it took in the runs of its own stage (subset = the stage)
        whose metric stayed at or above ``baseline − tolerance``. ``breaking`` is the run of
        that stage with the smallest view distance among those that fell below it.
        """
        tolerance = self.tolerance if tolerance is None else tolerance
        floor = self.baseline - tolerance
        spec: dict[str, Any] = {}
        for name, ref in self.reference.items():
            stage = name.split(".")[0]
            runs = [r for r in self.runs if r.subset == stage and name in r.params]
            ref_arr = np.asarray(ref, dtype=float)
            safe = [np.asarray(r.params[name], dtype=float) for r in runs if r.metric >= floor]
            low = np.minimum.reduce([ref_arr, *safe])
            high = np.maximum.reduce([ref_arr, *safe])
            broken = sorted((r for r in runs if r.metric < floor), key=lambda r: r.distance)
            entry: dict[str, Any] = {
                "reference": ref,
                "bounds": self.bounds[name],
                "safe_min": low.tolist(),
                "safe_max": high.tolist(),
                "searched": bool(runs),
            }
            if broken:
                b = broken[0]
                entry["breaking"] = {"lambda": plain_lambda(b.lam), self.metric: b.metric, "distance": b.distance, "values": b.params[name]}
            spec[name] = entry
        return {
            "pipeline": self.pipeline,
            "metric": self.metric,
            "baseline": self.baseline,
            "tolerance": tolerance,
            "distance": self.distance,
            "note": "empirical: ranges found by the forensic search of each stage alone; not a guarantee for other settings or combinations",
            "parameters": spec,
        }

    def to_dict(self) -> dict[str, Any]:
        data = {k: v for k, v in self.__dict__.items() if k != "runs"}
        data["lambdas"] = [plain_lambda(v) for v in self.lambdas]
        data["runs"] = [r.to_dict() for r in self.runs]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ForensicsResults:
        fields = dict(data)
        fields["lambdas"] = [float(v) for v in data["lambdas"]]
        fields["runs"] = [ForensicsRun.from_dict(r) for r in data["runs"]]
        return cls(**fields)


def plain_lambda(lam: float) -> float | str:
    """λ as JSON and folder names write it: JSON has no infinity, so λ = ∞ is the string ``"inf"``.

    >>> plain_lambda(0.1), plain_lambda(float("inf"))
    (0.1, 'inf')
    """
    return "inf" if math.isinf(lam) else lam


@dataclass
class AdjustmentResults(JsonResults):
    """Validation curves ``curves[intensity][arm]``: array ``(folds, epochs)`` of the primary metric."""

    task: str
    metric: str
    pipeline: str
    intensities: list[float]
    arms: list[str]
    folds: int
    epochs: int
    curves: dict[str, dict[str, np.ndarray]]

    def final(self) -> dict[str, dict[str, tuple[float, float]]]:
        """Last-epoch mean and std over folds, per intensity and arm."""
        return {i: {a: (float(c[:, -1].mean()), float(c[:, -1].std())) for a, c in arms.items()} for i, arms in self.curves.items()}

    def best(self) -> dict[str, dict[str, tuple[float, float]]]:
        """Mean and std over folds of each fold's best epoch, per intensity and arm."""
        return {i: {a: (float(c.max(1).mean()), float(c.max(1).std())) for a, c in arms.items()} for i, arms in self.curves.items()}

    def to_dict(self) -> dict[str, Any]:
        data = {k: v for k, v in self.__dict__.items() if k != "curves"}
        data["curves"] = {i: {a: c.tolist() for a, c in arms.items()} for i, arms in self.curves.items()}
        data["final"] = self.final()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AdjustmentResults:
        fields = {k: v for k, v in data.items() if k != "final"}
        fields["curves"] = {i: {a: np.asarray(c, dtype=float) for a, c in arms.items()} for i, arms in data["curves"].items()}
        return cls(**fields)
