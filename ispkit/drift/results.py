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

**Raw-domain corruptions** (optional, ``raw_corruptions``): ``raw_corruption_metrics[m]``,
array ``(P, R, S, K)``, the same model tested on the held-out fold's raws corrupted by raw
corruption ``r`` (:mod:`ispkit.raw_corruptions`) at severity ``s`` and processed by its own
train pipeline ``p``. Their **mean corruption error** follows ImageNet-C (Hendrycks &
Dietterich, ICLR 2019) with the error ``E = 1 − metric`` (fold means) and a *baseline
model*, the train pipeline ``b = raw_baseline``:

.. math::

    \\mathrm{CE}_{p,r} = \\frac{\\sum_s E_{p,r,s}}{\\sum_s E_{b,r,s}},
    \\qquad
    \\mathrm{relCE}_{p,r} = \\frac{\\sum_s (E_{p,r,s} - E_{p,\\text{clean}})}{\\sum_s (E_{b,r,s} - E_{b,\\text{clean}})},

``E_clean`` the in-distribution error; mCE and relative mCE are their means over the
corruptions of a family (``raw_families``: exposure, blur, optics, colour, sensor) and over
all of them. A ratio whose denominator is not positive (the baseline unharmed by the
corruption) is undefined (NaN) and left out of the means (:func:`corruption_errors`,
:meth:`SynthesisResults.raw_mce`). The baseline's own mCE is 1 by construction.

**Findings.** Each class's ``findings()`` states what was found, with its uncertainty, as
plain values and sentences (``results.json`` carries it under ``"findings"``; the reports
open with its ``statements``): every effect as a paired difference with a 95 % confidence
interval (:mod:`ispkit.drift.statistics`: over folds for synthesis and adjustment, over the
attacked images for forensics) and whether it is distinguishable from that noise; whether
the data are synthetic; and, for classification, every score below chance (``1/classes``,
uniform guessing) with the class its predictions concentrate on, read from the confusion
matrices the units record (``None``, "not recorded", for units run before they were).
``load`` reads files written before findings, classes, confusion matrices or the synthetic
flag existed.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import atomic_write_text
from ..errors import InputError
from .statistics import CONFIDENCE, Interval, fold_interval, image_interval, signed

__all__ = [
    "SynthesisResults",
    "corruption_errors",
    "Ranking",
    "JsonResults",
    "ForensicsRun",
    "ForensicsResults",
    "plain_lambda",
    "AdjustmentResults",
    "GapClosure",
    "HELD_OUT_KINDS",
    "percent",
    "COLLAPSE_SHARE",
    "collapse",
]

COLLAPSE_SHARE = 0.5
"""A model *collapses* to a class when at least this share of its predictions on a cell name it."""


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
    classes: list[str] | None = None
    synthetic: bool = False
    confusion: np.ndarray | None = None
    """``(P, Q, n, n)``: true (row) × predicted (column) class counts summed over folds; NaN: not recorded."""
    corruption_confusion: np.ndarray | None = None
    """``(P, C, S, n, n)``, as ``confusion`` under each corruption and severity."""
    raw_corruptions: list[str] = field(default_factory=list)
    """The raw-domain corruptions evaluated (empty: the study has no raw axis)."""
    raw_severities: list[int] = field(default_factory=list)
    raw_corruption_metrics: dict[str, np.ndarray] = field(default_factory=dict)
    """``(P, R, S, K)`` per metric: the model of ``p`` on raws corrupted by ``r`` at severity ``s``, processed by ``p``."""
    raw_families: dict[str, str] = field(default_factory=dict)
    """The family of each raw corruption (:data:`ispkit.raw_corruptions.FAMILIES`)."""
    raw_baseline: str | None = None
    """The train pipeline whose model's errors normalise the mean corruption error."""
    raw_corruption_confusion: np.ndarray | None = None
    """``(P, R, S, n, n)``, as ``confusion`` under each raw corruption and severity."""

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
        self.confusion = _checked_confusion(self.confusion, shape[:2], self.classes, "confusion")
        self.corruption_confusion = _checked_confusion(self.corruption_confusion, cshape[:3], self.classes, "corruption_confusion")
        self._check_raw_axis()

    def _check_raw_axis(self) -> None:
        rshape = (len(self.train_pipelines), len(self.raw_corruptions), len(self.raw_severities), self.folds)
        for name, values in self.raw_corruption_metrics.items():
            self.raw_corruption_metrics[name] = values = np.asarray(values, dtype=float)
            if values.shape != rshape:
                raise InputError(f"SynthesisResults: raw_corruption_metrics[{name!r}] has shape {values.shape}, expected {rshape}")
        self.raw_corruption_confusion = _checked_confusion(self.raw_corruption_confusion, rshape[:3], self.classes, "raw_corruption_confusion")
        if not self.has_raw_axis:
            return
        if self.metric not in self.raw_corruption_metrics:
            raise InputError(f"SynthesisResults: primary metric {self.metric!r} not among the raw corruption metrics {sorted(self.raw_corruption_metrics)}")
        if self.raw_baseline not in self.train_pipelines:
            raise InputError(f"SynthesisResults: raw_baseline must be one of the train pipelines {self.train_pipelines}, got {self.raw_baseline!r}")
        missing = [name for name in self.raw_corruptions if name not in self.raw_families]
        if missing:
            raise InputError(f"SynthesisResults: raw_families has no family for {missing}")

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

    @property
    def has_raw_axis(self) -> bool:
        """Whether raw-domain corruptions were evaluated."""
        return bool(self.raw_corruptions) and bool(self.raw_severities)

    def raw_corruption_mean(self, metric: str | None = None) -> np.ndarray:
        """Mean over folds of the raw-corruption scores, ``(P, R, S)``."""
        return self.raw_corruption_metrics[metric or self.metric].mean(axis=-1)

    @property
    def raw_corruption_drop(self) -> float:
        """Mean drop from the in-distribution score under every raw corruption and severity (nan without the axis)."""
        if not self.has_raw_axis:
            return float("nan")
        return float((self.in_distribution()[:, None, None] - self.raw_corruption_mean()).mean())

    def raw_mce(self) -> dict[str, Any]:
        """Corruption errors of the raw axis (see the module docstring), JSON-ready (NaN: undefined).

        Returns ``{"baseline", "error", "severities", "families": {family: [names]}, "ce", "relative_ce":
        {train: {corruption: value}}, "mce", "relative_mce": {train: {family: value, ..., "all": value}},
        "undefined": {"ce": [...], "relative_ce": [...]}}`` where ``undefined`` lists the corruptions whose
        baseline denominator is not positive; ``{}`` without the axis.
        """
        if not self.has_raw_axis:
            return {}
        errors = 1.0 - self.raw_corruption_mean()
        clean = 1.0 - self.in_distribution()
        ce, relative = corruption_errors(errors, clean, self.train_pipelines.index(str(self.raw_baseline)))
        families: dict[str, list[str]] = {}
        for name in self.raw_corruptions:
            families.setdefault(self.raw_families[name], []).append(name)
        columns = {family: [self.raw_corruptions.index(n) for n in names] for family, names in families.items()}
        columns["all"] = list(range(len(self.raw_corruptions)))

        def per_corruption(values: np.ndarray) -> dict[str, dict[str, float]]:
            return {train: dict(zip(self.raw_corruptions, map(float, row), strict=True)) for train, row in zip(self.train_pipelines, values, strict=True)}

        def means(values: np.ndarray) -> dict[str, dict[str, float]]:
            return {train: {family: _nanmean(row[cols]) for family, cols in columns.items()} for train, row in zip(self.train_pipelines, values, strict=True)}

        undefined = {
            key: [n for n, v in zip(self.raw_corruptions, values[0], strict=True) if not np.isfinite(v)]
            for key, values in (("ce", ce), ("relative_ce", relative))
        }
        return {
            "baseline": self.raw_baseline, "error": f"1 − {self.metric}", "severities": list(self.raw_severities), "families": families,
            "ce": per_corruption(ce), "relative_ce": per_corruption(relative), "mce": means(ce), "relative_mce": means(relative), "undefined": undefined,
        }  # fmt: skip

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
        off = self._off_diagonal()
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
        summary = {
            "metric": self.metric,
            "in_distribution": float(self.in_distribution().mean()),
            "under_isp_drift": float(self.in_distribution().mean() - self.isp_drop),
            "under_corruptions": float(self.in_distribution().mean() - self.corruption_drop),
            "isp_drop": self.isp_drop,
            "corruption_drop": self.corruption_drop,
            "drop_ratio": self.drop_ratio,
            "worst_pair": {"train": train, "test": test, "drop": drop},
        }
        if self.has_raw_axis:  # only then: a study without the axis keeps its summary as it was
            summary["under_raw_corruptions"] = float(self.in_distribution().mean() - self.raw_corruption_drop)
            summary["raw_corruption_drop"] = self.raw_corruption_drop
        return summary

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
            "classes": self.classes,
            "synthetic": self.synthetic,
            "confusion": _json_counts(self.confusion),
            "corruption_confusion": _json_counts(self.corruption_confusion),
            **self._raw_dict(),
            "summary": _finite(self.summary()),
            "findings": _finite(self.findings()),
        }

    def _raw_dict(self) -> dict[str, Any]:
        """The raw axis and its corruption errors for :meth:`to_dict` (nothing without the axis, so such files stay as they were)."""
        if not self.has_raw_axis:
            return {}
        return {
            "raw_corruptions": list(self.raw_corruptions), "raw_severities": list(self.raw_severities), "raw_families": dict(self.raw_families),
            "raw_baseline": self.raw_baseline, "raw_corruption_metrics": {k: v.tolist() for k, v in self.raw_corruption_metrics.items()},
            "raw_corruption_confusion": _json_counts(self.raw_corruption_confusion), "raw_mce": _finite(self.raw_mce()),
        }  # fmt: skip

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SynthesisResults:
        """Inverts :meth:`to_dict`; the derived ``summary``, ``findings`` and ``raw_mce`` are recomputed, and older files without classes,
        confusion matrices, the synthetic flag or the raw axis load with ``None``/``False``/no raw axis."""
        fields = {k: v for k, v in data.items() if k not in ("summary", "findings", "raw_mce")}
        fields["metrics"] = {k: np.asarray(v, dtype=float) for k, v in data["metrics"].items()}
        fields["corruption_metrics"] = {k: np.asarray(v, dtype=float) for k, v in data.get("corruption_metrics", {}).items()}
        fields["raw_corruption_metrics"] = {k: np.asarray(v, dtype=float) for k, v in data.get("raw_corruption_metrics", {}).items()}
        for name in ("confusion", "corruption_confusion", "raw_corruption_confusion"):
            fields[name] = _counts_array(data.get(name))
        return cls(**fields)

    # -- findings -----------------------------------------------------------------------

    def findings(self) -> dict[str, Any]:
        """What the study found, with its uncertainty, as JSON-ready values (see the module docstring).

        ``comparisons``: ``isp_drift`` (in distribution − the other test pipelines),
        ``corruptions`` (in distribution − corruptions) and ``corruptions_vs_isp_drift``
        (the corruption drop − the ISP drop), each the mean over train pipelines (and
        pairs or corruptions) within a fold, with its interval over folds
        (:func:`~ispkit.drift.statistics.fold_interval`); ``pairs``: the same for every
        train/test pair; ``corruption_cells``: for every corruption and severity;
        ``cells``: mean and std over folds of every cell; ``below_chance``: the cells whose
        fold mean is below ``1/classes`` (classification) with the class their predictions
        concentrate on; ``worst_cells``: the lowest pipeline cell and the lowest corruption
        cell with their confusion matrices; ``statements``: all of it in sentences.
        """
        values = self.metrics[self.metric]
        own = self.in_distribution_per_fold()
        drops = own[:, None, :] - values  # (P, Q, K)
        off = self._off_diagonal()
        comparisons: dict[str, Interval] = {}
        if off.any():
            comparisons["isp_drift"] = fold_interval(drops[off].mean(axis=0))
        corruption_drops = own[:, None, None, :] - self.corruption_metrics[self.metric] if _has_corruptions(self) else None
        if corruption_drops is not None:
            comparisons["corruptions"] = fold_interval(corruption_drops.mean(axis=(0, 1, 2)))
            if off.any():
                comparisons["corruptions_vs_isp_drift"] = fold_interval(corruption_drops.mean(axis=(0, 1, 2)) - drops[off].mean(axis=0))
        pairs = [
            {"train": train, "test": test, **fold_interval(drops[p, q]).to_dict()}
            for p, train in enumerate(self.train_pipelines)
            for q, test in enumerate(self.test_pipelines)
            if off[p, q]
        ]
        corruption_cells = [
            {"corruption": name, "severity": severity, **fold_interval(corruption_drops[:, c, s].mean(axis=0)).to_dict()}
            for c, name in enumerate(self.corruptions)
            for s, severity in enumerate(self.severities)
        ] if corruption_drops is not None else []  # fmt: skip
        raw_cells: list[dict[str, Any]] = []
        if self.has_raw_axis:
            raw_drops = own[:, None, None, :] - self.raw_corruption_metrics[self.metric]  # (P, R, S, K)
            comparisons["raw_corruptions"] = fold_interval(raw_drops.mean(axis=(0, 1, 2)))
            if off.any():
                comparisons["raw_corruptions_vs_isp_drift"] = fold_interval(raw_drops.mean(axis=(0, 1, 2)) - drops[off].mean(axis=0))
            raw_cells = [
                {"corruption": name, "family": self.raw_families[name], "severity": severity, **fold_interval(raw_drops[:, c, s].mean(axis=0)).to_dict()}
                for c, name in enumerate(self.raw_corruptions)
                for s, severity in enumerate(self.raw_severities)
            ]
        below = self._below_chance()
        found = {
            "metric": self.metric,
            "confidence": CONFIDENCE,
            "method": _FOLD_METHOD,
            "synthetic": self.synthetic,
            "cells": {"mean": self.mean().tolist(), "std": self.std().tolist()},
            "comparisons": {name: interval.to_dict() for name, interval in comparisons.items()},
            "pairs": pairs,
            "corruption_cells": corruption_cells,
            "below_chance": below,
            "worst_cells": self._worst_cells(),
            "statements": self._statements(comparisons, pairs, below),
        }
        if self.has_raw_axis:  # only then: a study without the axis keeps its findings as they were
            found["raw_corruption_cells"] = raw_cells
        return found

    def in_distribution_per_fold(self, metric: str | None = None) -> np.ndarray:
        """Score of each train pipeline on its own views in each fold, ``(P, K)``."""
        columns = [self.test_pipelines.index(p) for p in self.train_pipelines]
        return self.metrics[metric or self.metric][np.arange(len(self.train_pipelines)), columns]

    def _off_diagonal(self) -> np.ndarray:
        return np.array([[t != q for q in self.test_pipelines] for t in self.train_pipelines], dtype=bool)

    def _cells(self) -> list[tuple[dict[str, Any], float, np.ndarray | None]]:
        """Every cell: its description, fold-mean primary metric and confusion matrix (or ``None``)."""
        cells: list[tuple[dict[str, Any], float, np.ndarray | None]] = []
        where: dict[str, Any]
        for (p, q), score in np.ndenumerate(self.mean()):
            where = {"kind": "pipeline", "train": self.train_pipelines[p], "test": self.test_pipelines[q],
                     "cell": f"{self.train_pipelines[p]} → {self.test_pipelines[q]}"}  # fmt: skip
            cells.append((where, float(score), None if self.confusion is None else self.confusion[p, q]))
        if _has_corruptions(self):
            for (p, c, s), score in np.ndenumerate(self.corruption_mean()):
                name, severity = self.corruptions[c], self.severities[s]
                where = {"kind": "corruption", "train": self.train_pipelines[p], "corruption": name, "severity": severity,
                         "cell": f"{self.train_pipelines[p]} → {name} (severity {severity})"}  # fmt: skip
                cells.append((where, float(score), None if self.corruption_confusion is None else self.corruption_confusion[p, c, s]))
        if self.has_raw_axis:
            for (p, r, s), score in np.ndenumerate(self.raw_corruption_mean()):
                name, severity = self.raw_corruptions[r], self.raw_severities[s]
                where = {"kind": "raw corruption", "train": self.train_pipelines[p], "corruption": name, "severity": severity,
                         "cell": f"{self.train_pipelines[p]} → raw {name} (severity {severity})"}  # fmt: skip
                cells.append((where, float(score), None if self.raw_corruption_confusion is None else self.raw_corruption_confusion[p, r, s]))
        return cells

    def _below_chance(self) -> dict[str, Any]:
        return _below_chance(self.task, self.classes, self.confusion, self._cells())

    def _worst_cells(self) -> list[dict[str, Any]]:
        cells = self._cells()
        worst = []
        for kind in ("pipeline", "corruption", "raw corruption"):
            candidates = [c for c in cells if c[0]["kind"] == kind and np.isfinite(c[1])]
            if candidates:
                where, score, matrix = min(candidates, key=lambda c: c[1])
                worst.append(_worst_entry(where, score, matrix, self.classes))
        return worst

    def _statements(self, comparisons: dict[str, Interval], pairs: list[dict[str, Any]], below: dict[str, Any]) -> list[str]:
        metric, summary = self.metric, self.summary()
        per_fold = self._fold_levels()
        parts = [f"{signed(summary['in_distribution'])} ± {signed(per_fold['in'].std())} in distribution (train pipeline = test pipeline)"]
        if "isp_drift" in comparisons:
            parts.append(
                f"{signed(summary['under_isp_drift'])} ± {signed(per_fold['isp'].std())} under ISP drift (the other test pipelines, {len(pairs)} pairs)"
            )
        if "corruptions" in comparisons:
            parts.append(
                f"{signed(summary['under_corruptions'])} ± {signed(per_fold['corr'].std())} under the corruptions "
                f"({len(self.corruptions)} × {len(self.severities)} severit{'y' if len(self.severities) == 1 else 'ies'})"
            )
        statements = [f"Mean {metric} (± std over {self.folds} fold{'s' if self.folds != 1 else ''}): " + "; ".join(parts) + "."]
        if "isp_drift" in comparisons:
            statements.append(_effect("ISP drift", metric, comparisons["isp_drift"]))
        if "corruptions" in comparisons:
            text = _effect("Corrupting the test views", metric, comparisons["corruptions"])
            if "corruptions_vs_isp_drift" in comparisons:
                more = comparisons["corruptions_vs_isp_drift"]
                relation = "exceeds" if not more.estimate < 0 else "falls short of"
                text += f" That drop {relation} the ISP-drift drop by {signed(abs(more.estimate))} ({_turned(more).bounds_text()}): {more.verdict()}."
            statements.append(text)
        if "raw_corruptions" in comparisons:
            statements += self._raw_statements(comparisons)
        if pairs:
            statements.append(_pairs_statement(pairs, self.summary()["worst_pair"]))
        if below["statement"]:
            statements.append(below["statement"])
        return statements

    def _raw_statements(self, comparisons: dict[str, Interval]) -> list[str]:
        """The raw axis in sentences: its drop (against ISP drift) and each train pipeline's mCE by family."""
        summary = self.summary()
        text = _effect(
            f"Corrupting the raw acquisitions ({len(self.raw_corruptions)} raw corruptions × {len(self.raw_severities)} "
            f"severit{'y' if len(self.raw_severities) == 1 else 'ies'}, processed by each model's own pipeline)",
            self.metric, comparisons["raw_corruptions"], to=summary["under_raw_corruptions"],
        )  # fmt: skip
        if "raw_corruptions_vs_isp_drift" in comparisons:
            more = comparisons["raw_corruptions_vs_isp_drift"]
            relation = "exceeds" if not more.estimate < 0 else "falls short of"
            text += f" That drop {relation} the ISP-drift drop by {signed(abs(more.estimate))} ({_turned(more).bounds_text()}): {more.verdict()}."
        mce = self.raw_mce()
        families = list(mce["families"])
        rows = "; ".join(
            f"{train}: {_ratio_text(values['all'])} ({', '.join(f'{f} {_ratio_text(values[f])}' for f in families)})"
            for train, values in mce["mce"].items()
            if train != self.raw_baseline
        )
        where = f"Mean corruption error relative to the baseline model (trained on {self.raw_baseline}; error = 1 − {self.metric}, summed over severities)"
        return [text, where + (f": {rows}." if rows else ": the baseline is the only train pipeline.")]

    def _fold_levels(self) -> dict[str, np.ndarray]:
        """Per fold: mean in-distribution score, mean score under ISP drift and under corruptions, ``(K,)`` each."""
        values = self.metrics[self.metric]
        off = self._off_diagonal()
        levels = {"in": self.in_distribution_per_fold().mean(axis=0)}
        levels["isp"] = values[off].mean(axis=0) if off.any() else np.full(self.folds, np.nan)
        levels["corr"] = self.corruption_metrics[self.metric].mean(axis=(0, 1, 2)) if _has_corruptions(self) else np.full(self.folds, np.nan)
        return levels

    def to_csv(self, path: str | os.PathLike[str]) -> Path:
        """One row per (kind, train, test or corruption, severity, fold, metric, value)."""
        rows: list[tuple[object, ...]] = [("kind", "train", "test", "severity", "fold", "metric", "value")]
        for name, values in self.metrics.items():
            for (p, q, k), v in np.ndenumerate(values):
                rows.append(("pipeline", self.train_pipelines[p], self.test_pipelines[q], "", k, name, repr(float(v))))
        for name, values in self.corruption_metrics.items():
            for (p, c, s, k), v in np.ndenumerate(values):
                rows.append(("corruption", self.train_pipelines[p], self.corruptions[c], self.severities[s], k, name, repr(float(v))))
        for name, values in self.raw_corruption_metrics.items():
            for (p, c, s, k), v in np.ndenumerate(values):
                rows.append(("raw_corruption", self.train_pipelines[p], self.raw_corruptions[c], self.raw_severities[s], k, name, repr(float(v))))
        text = io.StringIO()
        csv.writer(text, lineterminator="\n").writerows(rows)
        return atomic_write_text(path, text.getvalue())


def corruption_errors(errors: np.ndarray, clean: np.ndarray, baseline: int) -> tuple[np.ndarray, np.ndarray]:
    """Corruption errors and relative corruption errors in the sense of ImageNet-C, ``(P, C)`` each.

    Parameters
    ----------
    errors
        ``(P, C, S)``: error of model ``p`` under corruption ``c`` at each severity.
    clean
        ``(P,)``: each model's error without corruption.
    baseline
        Index of the baseline model, whose sums normalise.

    Returns
    -------
    ``CE[p, c] = Σ_s errors[p, c, s] / Σ_s errors[b, c, s]`` and
    ``relCE[p, c] = Σ_s (errors[p, c, s] − clean[p]) / Σ_s (errors[b, c, s] − clean[b])``; NaN where the
    baseline's sum is not positive.

    >>> ce, rel = corruption_errors(np.array([[[0.2, 0.4]], [[0.1, 0.2]]]), np.array([0.1, 0.05]), 0)
    >>> ce.round(3).tolist(), rel.round(3).tolist()
    ([[1.0], [0.5]], [[1.0], [0.5]])
    """
    errors, clean = np.asarray(errors, dtype=float), np.asarray(clean, dtype=float)
    totals = errors.sum(axis=-1)
    degradations = (errors - clean[:, None, None]).sum(axis=-1)
    return _normalised(totals, totals[baseline]), _normalised(degradations, degradations[baseline])


def _normalised(values: np.ndarray, by: np.ndarray) -> np.ndarray:
    """``values / by`` per column, NaN where ``by`` is not positive."""
    positive = by > 0
    return np.where(positive, values / np.where(positive, by, 1.0), np.nan)


def _ratio_text(value: float) -> str:
    """A corruption error as a percentage of the baseline's, ``"n/a"`` when undefined."""
    return f"{100 * value:.0f}%" if np.isfinite(value) else "n/a"


def _nanmean(values: np.ndarray) -> float:
    """The mean of the finite values, NaN when there are none."""
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if finite.size else float("nan")


def _finite(value: Any) -> Any:
    """JSON has no NaN: replace non-finite floats with ``None``, recursively."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def _has_corruptions(results: SynthesisResults) -> bool:
    return bool(results.corruptions) and bool(results.severities)


_FOLD_METHOD = (
    "paired differences averaged within each fold; t interval over folds with Nadeau–Bengio's variance correction "
    "for overlapping training sets (ispkit.drift.statistics)"
)
_IMAGE_METHOD = (
    "paired per-image differences against the baseline; t interval over the attacked images of one trained model "
    "(the attack was fitted to these images: the interval says how sure the drop is on them, not on other images or another training run)"
)


# -- confusion matrices and chance --------------------------------------------------------


def _checked_confusion(value: Any, lead: tuple[int, ...], classes: list[str] | None, name: str) -> np.ndarray | None:
    """``value`` as a float array ``(*lead, n, n)`` (``n`` = number of classes), or ``None``."""
    if value is None:
        return None
    array = np.asarray(value, dtype=float)
    n = len(classes) if classes else (array.shape[-1] if array.ndim else 0)
    if array.shape != (*lead, n, n):
        raise InputError(f"SynthesisResults: {name} has shape {array.shape}, expected {(*lead, n, n)} (… × true class × predicted class)")
    return array


def _json_counts(value: np.ndarray | list | None) -> Any:
    """Counts as nested lists of integers, ``None`` where not recorded (NaN)."""
    if value is None:
        return None

    def plain(x: Any) -> Any:
        if isinstance(x, list):
            return [plain(v) for v in x]
        return None if not math.isfinite(x) else int(x) if float(x).is_integer() else float(x)

    return plain(np.asarray(value, dtype=float).tolist())


def _counts_array(value: Any) -> np.ndarray | None:
    """Inverse of :func:`_json_counts` (``None`` entries become NaN)."""
    return None if value is None else np.asarray(value, dtype=float)


def collapse(matrix: Any, classes: list[str] | None = None) -> dict[str, Any] | None:
    """The class a model's predictions concentrate on, from its confusion matrix (true × predicted).

    Returns ``{"class", "index", "share", "collapsed"}``: the most predicted class (its
    name from ``classes``, else ``"class <i>"``), its share of all predictions and whether
    that share reaches :data:`COLLAPSE_SHARE`; ``None`` when the matrix was not recorded
    (``None`` or NaN) or is empty.

    >>> collapse([[1, 9], [0, 10]], ["a", "b"])
    {'class': 'b', 'index': 1, 'share': 0.95, 'collapsed': True}
    >>> collapse([[float("nan")]]) is None
    True
    """
    if matrix is None:
        return None
    m = np.asarray(matrix, dtype=float)
    if m.ndim != 2 or m.size == 0 or not np.isfinite(m).all() or m.sum() <= 0:
        return None
    predicted = m.sum(axis=0)
    top = int(predicted.argmax())
    share = float(predicted[top] / predicted.sum())
    name = classes[top] if classes is not None and top < len(classes) else f"class {top}"
    return {"class": name, "index": top, "share": share, "collapsed": share >= COLLAPSE_SHARE}


def _chance(task: str, classes: list[str] | None, confusion: Any) -> float | None:
    """``1 / classes`` for classification (classes from their names or the confusion matrices), else ``None``."""
    if task != "classification":
        return None
    if classes:
        return 1 / len(classes)
    if confusion is not None and np.ndim(confusion) >= 2 and np.shape(confusion)[-1] > 0:
        return 1 / np.shape(confusion)[-1]
    return None


def _below_chance(task: str, classes: list[str] | None, confusion: Any, cells: list[tuple[dict[str, Any], float, Any]]) -> dict[str, Any]:
    """The cells scoring below chance, each with the class its predictions concentrate on, and a sentence."""
    chance = _chance(task, classes, confusion)
    if chance is None:
        note = "Chance level unknown (the classes were not recorded)." if task == "classification" else ""
        return {"chance": None, "cells": [], "statement": note}
    flagged = [{**where, "score": score, "collapse": collapse(matrix, classes)} for where, score, matrix in cells if score < chance]
    n = round(1 / chance)
    if not flagged:
        return {"chance": chance, "cells": [], "statement": f"No cell scores below chance (1/{n} = {chance:.3f})."}
    kinds: dict[str, list[dict[str, Any]]] = {}
    for flag in flagged:
        kinds.setdefault(flag["kind"], []).append(flag)
    where = "; ".join(f"{len(v)} {_KIND_WORDS.get(k, k)}{_cells_detail(v)}" for k, v in kinds.items())
    statement = f"{len(flagged)} of {len(cells)} cells score below chance (1/{n} = {chance:.3f}): {where}. {_collapse_summary(flagged)}"
    return {"chance": chance, "cells": flagged, "statement": statement}


_KIND_WORDS = {
    "pipeline": "train/test pipeline cells",
    "corruption": "corruption cells",
    "raw corruption": "raw-corruption cells",
    "run": "forensic runs",
    "arm": "arms",
}


def _cells_detail(flags: list[dict[str, Any]]) -> str:
    names = sorted({f["corruption"] for f in flags if "corruption" in f})
    return f" ({', '.join(names)})" if names else ""


def _collapse_summary(flags: list[dict[str, Any]]) -> str:
    """``"Their predictions collapse to 'b' in 3 of them; in 1 no class takes half; 1 not recorded."``"""
    to: dict[str, int] = {}
    spread = missing = 0
    for flag in flags:
        c = flag["collapse"]
        if c is None:
            missing += 1
        elif c["collapsed"]:
            to[c["class"]] = to.get(c["class"], 0) + 1
        else:
            spread += 1
    parts = []
    if to:
        parts.append("their predictions collapse to " + ", ".join(f"'{k}' in {v}" for k, v in sorted(to.items(), key=lambda kv: (-kv[1], kv[0]))))
    if spread:
        parts.append(f"in {spread} no class takes {COLLAPSE_SHARE:.0%} of the predictions")
    if missing:
        parts.append(f"{missing} {'has' if missing == 1 else 'have'} no confusion matrix (not recorded)")
    text = "; ".join(parts)
    return text[:1].upper() + text[1:] + "."


def _worst_entry(where: dict[str, Any], score: float, matrix: Any, classes: list[str] | None) -> dict[str, Any]:
    recorded = matrix is not None and np.isfinite(np.asarray(matrix, dtype=float)).all()
    return {**where, "score": score, "confusion": _json_counts(matrix) if recorded else None, "collapse": collapse(matrix, classes) if recorded else None}


# -- sentences --------------------------------------------------------------------------------


def _effect(subject: str, metric: str, interval: Interval, *, to: float | None = None) -> str:
    """``"ISP drift lowers accuracy by 0.012 (95% CI −0.004 to 0.028): not distinguishable from fold noise with 3 folds."``

    ``interval`` is of a drop (positive: the metric falls); a negative one is said as a rise,
    with the interval's sign turned. ``to``: the score it falls (or rises) to.
    """
    verb = "lowers" if not interval.estimate < 0 else "raises"
    target = f" to {signed(to)}" if to is not None else ""
    turned = _turned(interval)
    return f"{subject} {verb} {metric}{target} by {signed(turned.estimate)} ({turned.bounds_text()}): {interval.verdict()}."


def _turned(interval: Interval) -> Interval:
    """``interval`` of a negative estimate with its sign turned (a rise said as a positive number); others as they are."""
    if not interval.estimate < 0:
        return interval
    return replace(interval, estimate=-interval.estimate, low=-interval.high, high=-interval.low)


def _pairs_statement(pairs: list[dict[str, Any]], worst: dict[str, Any]) -> str:
    n = len(pairs)
    folds = pairs[0]["n"]
    if pairs[0]["low"] is None:
        return f"Single train/test pairs: fold noise not estimable from {folds} fold; the largest drop is {worst['train']} → {worst['test']} ({signed(worst['drop'])})."
    drops = sum(p["distinguishable"] and p["estimate"] > 0 for p in pairs)
    rises = sum(p["distinguishable"] and p["estimate"] < 0 for p in pairs)
    largest = next(p for p in pairs if p["train"] == worst["train"] and p["test"] == worst["test"])
    chance = (1 - CONFIDENCE) * n
    return (
        f"Single train/test pairs: {drops} of {n} drop and {rises} rise by more than fold noise ({CONFIDENCE:.0%} CI excluding 0); "
        f"if no pair differed, at most about {chance:.1f} would by chance alone. Largest drop: trained on {worst['train']}, tested on {worst['test']}, "
        f"{signed(largest['estimate'])} ({CONFIDENCE:.0%} CI {signed(largest['low'])} to {signed(largest['high'])}): {largest['verdict']}."
    )


@dataclass
class ForensicsRun:
    """One optimisation: a subset at one λ, and what it found.

    ``per_image``: the metric of each attacked image (its mean is ``metric``);
    ``confusion``: for classification, true × predicted class counts on them. Both are
    ``None`` for runs recorded before they were.
    """

    subset: str
    lam: float
    metric: float
    distance: float
    loss: float
    params: dict[str, list]
    trace: list[dict[str, float]] = field(default_factory=list)
    per_image: list[float] | None = None
    confusion: list[list[int]] | None = None

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
    classes: list[str] | None = None
    synthetic: bool = False
    baseline_run: ForensicsRun | None = None
    """The reference pipeline's evaluation (λ = ∞) with its per-image scores and confusion matrix; ``None`` in older files."""

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
        """JSON-ready, with the derived ``findings``; :meth:`from_dict` inverts it."""
        data = {k: v for k, v in self.__dict__.items() if k not in ("runs", "baseline_run")}
        data["lambdas"] = [plain_lambda(v) for v in self.lambdas]
        data["runs"] = [r.to_dict() for r in self.runs]
        data["baseline_run"] = self.baseline_run.to_dict() if self.baseline_run is not None else None
        data["findings"] = _finite(self.findings())
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ForensicsResults:
        """Inverts :meth:`to_dict`; files written before findings, per-image scores or the synthetic flag load too."""
        fields = {k: v for k, v in data.items() if k != "findings"}
        fields["lambdas"] = [float(v) for v in data["lambdas"]]
        fields["runs"] = [ForensicsRun.from_dict(r) for r in data["runs"]]
        fields["baseline_run"] = ForensicsRun.from_dict(data["baseline_run"]) if data.get("baseline_run") else None
        return cls(**fields)

    # -- findings -----------------------------------------------------------------------

    def worst_runs(self) -> dict[str, ForensicsRun]:
        """Per subset, the run with the lowest metric among its finite λ (ties: the largest λ, the closest to the reference)."""
        worst = {}
        for subset in self.subsets:
            runs = [r for r in self.runs if r.subset == subset and not math.isinf(r.lam) and np.isfinite(r.metric)]
            if runs:
                worst[subset] = min(runs, key=lambda r: (r.metric, -r.lam))
        return worst

    def drops(self) -> dict[str, tuple[ForensicsRun, Interval | None]]:
        """Per subset, its worst run (:meth:`worst_runs`) and the interval of baseline − that run over the attacked images
        (``None`` when the per-image scores were not recorded)."""
        baseline = self.baseline_run.per_image if self.baseline_run is not None else None
        found: dict[str, tuple[ForensicsRun, Interval | None]] = {}
        for subset, run in self.worst_runs().items():
            paired = baseline is not None and run.per_image is not None and len(run.per_image) == len(baseline)
            found[subset] = (run, image_interval(np.asarray(baseline) - np.asarray(run.per_image)) if paired else None)
        return found

    def findings(self) -> dict[str, Any]:
        """What the sweep found, with its uncertainty, as JSON-ready values.

        ``comparisons``: per subset, the baseline − the metric at its worst λ
        (:meth:`worst_runs`) with its interval over the attacked images
        (:func:`~ispkit.drift.statistics.image_interval`; ``None`` when the per-image scores
        were not recorded); ``below_chance``: runs scoring below ``1/classes`` with the class
        their predictions concentrate on; ``worst_cells``: the lowest run with its confusion
        matrix; ``statements``: all of it in sentences.
        """
        drops = self.drops()
        cells = [({"kind": "run", "subset": r.subset, "lambda": plain_lambda(r.lam), "cell": f"{r.subset} at λ = {_lam_text(r.lam)}"}, r.metric, r.confusion)
                 for r in self.runs if np.isfinite(r.metric)]  # fmt: skip
        below = _below_chance(self.task, self.classes, next((r.confusion for r in self.runs if r.confusion is not None), None), cells)
        worst = [_worst_entry(*min(cells, key=lambda c: c[1]), self.classes)] if cells else []
        statements = [self._baseline_statement()]
        for subset, (run, interval) in drops.items():
            subject = f"Attacking {subset} (worst λ = {_lam_text(run.lam)})"
            if interval is not None:
                statements.append(_effect(subject, self.metric, interval, to=run.metric))
            else:
                statements.append(
                    f"{subject} changes {self.metric} to {signed(run.metric)}, a drop of {signed(self.baseline - run.metric)}: per-image scores not recorded, so no interval."
                )
        if below["statement"]:
            statements.append(below["statement"])
        if any(interval is not None for _, interval in drops.values()):
            statements.append("The intervals are over the attacked images of one trained model; the attack was fitted to these images.")
        return {
            "metric": self.metric,
            "confidence": CONFIDENCE,
            "method": _IMAGE_METHOD,
            "synthetic": self.synthetic,
            "baseline": self.baseline,
            "comparisons": [
                {
                    "subset": subset,
                    "lambda": plain_lambda(run.lam),
                    "metric": run.metric,
                    "drop": self.baseline - run.metric,
                    "interval": interval.to_dict() if interval is not None else None,
                }
                for subset, (run, interval) in drops.items()
            ],
            "below_chance": below,
            "worst_cells": worst,
            "statements": statements,
        }

    def _baseline_statement(self) -> str:
        images = len(self.baseline_run.per_image) if self.baseline_run is not None and self.baseline_run.per_image is not None else None
        on = f" on {images} attacked images" if images else ""
        return (
            f"Baseline {self.metric} of the reference pipeline {self.pipeline}{on}: {signed(self.baseline)} "
            f"(tolerance {signed(self.tolerance)}, floor {signed(self.baseline - self.tolerance)})."
        )


def _lam_text(lam: float) -> str:
    return "∞" if math.isinf(lam) else f"{lam:g}"


def plain_lambda(lam: float) -> float | str:
    """λ as JSON and folder names write it: JSON has no infinity, so λ = ∞ is the string ``"inf"``.

    >>> plain_lambda(0.1), plain_lambda(float("inf"))
    (0.1, 'inf')
    """
    return "inf" if math.isinf(lam) else lam


HELD_OUT_KINDS = {"corruptions": "held-out corruptions", "pipelines": "held-out pipelines"}
"""The held-out tests of a drift-adjustment study, and how the findings name them."""


@dataclass(frozen=True)
class GapClosure:
    """How much of the frozen arm's gap on a held-out test another arm closes, paired over folds.

    ``gap``: the frozen arm's clean last-epoch score − its held-out score; ``gain``: the arm's
    held-out score − the frozen arm's; ``share``: ``gain / gap`` of their means, and
    ``low``/``high`` the gain's interval bounds divided by the gap's mean (the gap's own fold
    noise is not carried into them). The shares are NaN when there is no gap (its mean <= 0).
    """

    arm: str
    gap: Interval
    gain: Interval
    share: float
    low: float
    high: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (non-finite shares as ``None``)."""
        return _finite(
            {"arm": self.arm, "gap": self.gap.to_dict(), "gain": self.gain.to_dict(), "share": self.share, "share_low": self.low, "share_high": self.high}
        )

    def statement(self) -> str:
        """The arm's closure in words, after :func:`_gap_statement`: ``"augmented closes 40% of it (95% CI 10% to 70% of the mean gap; augmented − frozen +0.120 (…): …)."``"""
        gain = f"{self.arm} − frozen {_plus(self.gain.estimate)} ({self.gain.bounds_text()}): {self.gain.verdict()}"
        if not math.isfinite(self.share):
            return f"{gain}."
        closes = self.share >= 0
        verb = f"{self.arm} closes {percent(self.share)} of it" if closes else f"{self.arm} widens it by {percent(-self.share)}"
        low, high = (self.low, self.high) if closes else (-self.high, -self.low)  # a widening's interval turned with it
        bounds = f"{CONFIDENCE:.0%} CI {percent(low)} to {percent(high)} of the mean gap; " if math.isfinite(low) and math.isfinite(high) else ""
        return f"{verb} ({bounds}{gain})."


def _gap_statement(test: str, intensity: str, metric: str, gap: Interval) -> str:
    """The frozen arm's gap on a held-out test in words: ``"On held-out corruptions at intensity 1 the frozen arm loses 0.300 accuracy … (95% CI …: …)."``"""
    lost = f"On {test} at intensity {intensity} the frozen arm loses {signed(gap.estimate)} {metric} against its clean validation ({gap.bounds_text()}: {gap.verdict()})"
    return f"{lost}{'' if gap.estimate > 0 else ': there is no gap to close'}."


def _plus(value: float) -> str:
    return f"{'+' if value > 0 else ''}{signed(value)}"


def percent(share: float) -> str:
    """``"42%"``, ``"−8%"`` (typographic minus)."""
    return f"{share:.0%}".replace("-", "−")


def _paired(order: list[str], per_fold: dict[str, np.ndarray]) -> list[tuple[str, str, Interval]]:
    """Every pair of ``order``'s arms with the same number of folds: ``(a, b, interval of a − b)`` over folds."""
    return [
        (a, b, fold_interval(np.asarray(per_fold[a]) - np.asarray(per_fold[b])))
        for i, a in enumerate(order)
        for b in order[i + 1 :]
        if np.shape(per_fold[a]) == np.shape(per_fold[b])
    ]


def _pairs_text(pairs: list[tuple[str, str, Interval]]) -> str:
    return "".join(f" {a} − {b}: {_plus(interval.estimate)} ({interval.bounds_text()}): {interval.verdict()}." for a, b, interval in pairs)


@dataclass
class AdjustmentResults(JsonResults):
    """Validation curves ``curves[intensity][arm]``: array ``(folds, epochs)`` of the primary metric.

    ``confusion[intensity][arm]``: for classification, the last epoch's true × predicted
    class counts summed over folds (NaN where a fold's unit did not record them; ``None``
    for older runs). ``held_out[intensity][kind][arm]``: array ``(cells, folds)`` of the
    primary metric of the last epoch's model on the held-out cells of ``kind`` (a key of
    :data:`HELD_OUT_KINDS`), named by ``held_out_cells[kind]`` (``"<corruption>/<severity>"``,
    pipeline labels); NaN where not applicable (the raw arm sees no pipeline) or not recorded;
    both ``None`` for runs made before held-out tests were. ``augmentation``: what the
    augmented arm trained with (corruptions, severity range, clean share, operating spec and
    its parameters), ``None`` without that arm.
    """

    task: str
    metric: str
    pipeline: str
    intensities: list[float]
    arms: list[str]
    folds: int
    epochs: int
    curves: dict[str, dict[str, np.ndarray]]
    classes: list[str] | None = None
    synthetic: bool = False
    confusion: dict[str, dict[str, np.ndarray]] | None = None
    held_out_cells: dict[str, list[str]] | None = None
    held_out: dict[str, dict[str, dict[str, np.ndarray]]] | None = None
    augmentation: dict[str, Any] | None = None

    def final(self) -> dict[str, dict[str, tuple[float, float]]]:
        """Last-epoch mean and std over folds, per intensity and arm."""
        return {i: {a: (float(c[:, -1].mean()), float(c[:, -1].std())) for a, c in arms.items()} for i, arms in self.curves.items()}

    def best(self) -> dict[str, dict[str, tuple[float, float]]]:
        """Mean and std over folds of each fold's best epoch, per intensity and arm."""
        return {i: {a: (float(c.max(1).mean()), float(c.max(1).std())) for a, c in arms.items()} for i, arms in self.curves.items()}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, with the derived ``final`` and ``findings``; :meth:`from_dict` inverts it."""
        data = {k: v for k, v in self.__dict__.items() if k not in ("curves", "confusion", "held_out")}
        data["curves"] = {i: {a: c.tolist() for a, c in arms.items()} for i, arms in self.curves.items()}
        data["confusion"] = {i: {a: _json_counts(m) for a, m in arms.items()} for i, arms in self.confusion.items()} if self.confusion is not None else None
        held_out = self.held_out
        data["held_out"] = (
            _finite({i: {k: {a: np.asarray(v, dtype=float).tolist() for a, v in arms.items()} for k, arms in kinds.items()} for i, kinds in held_out.items()})
            if held_out is not None
            else None
        )
        data["final"] = self.final()
        data["findings"] = _finite(self.findings())
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AdjustmentResults:
        """Inverts :meth:`to_dict`; files written before findings, confusion matrices, the synthetic flag or held-out tests load too."""
        fields = {k: v for k, v in data.items() if k not in ("final", "findings")}
        fields["curves"] = {i: {a: np.asarray(c, dtype=float) for a, c in arms.items()} for i, arms in data["curves"].items()}
        if data.get("confusion") is not None:
            fields["confusion"] = {i: {a: _counts_array(m) for a, m in arms.items()} for i, arms in data["confusion"].items()}
        if data.get("held_out") is not None:  # None entries (not applicable, not recorded) become NaN
            fields["held_out"] = {
                i: {k: {a: np.asarray(v, dtype=float).reshape(len(v), data["folds"]) for a, v in arms.items()} for k, arms in kinds.items()}
                for i, kinds in data["held_out"].items()
            }
        return cls(**fields)

    # -- findings -----------------------------------------------------------------------

    def _order(self, present: Any) -> list[str]:
        """The arms of ``present`` in the order of ``arms``, then any others."""
        return [a for a in self.arms if a in present] + [a for a in present if a not in self.arms]

    def comparisons(self) -> dict[str, list[tuple[str, str, Interval]]]:
        """Per intensity, every pair of arms (in the order of ``arms``): ``(a, b, interval of a − b)``, last epoch, paired by fold."""
        return {key: _paired(self._order(curves), {a: np.asarray(c)[:, -1] for a, c in curves.items()}) for key, curves in self.curves.items()}

    def held_out_folds(self, kind: str) -> dict[str, dict[str, np.ndarray]]:
        """Per intensity and arm, ``(folds,)``: the held-out score of each fold, averaged over ``kind``'s cells.

        Arms without a finite score for every cell and fold (the raw arm on pipelines, units
        run before held-out tests were recorded) are left out, and so is a kind without cells.
        """
        found: dict[str, dict[str, np.ndarray]] = {}
        for key, kinds in (self.held_out or {}).items():
            for arm in self._order(kinds.get(kind, {})):
                scores = np.asarray(kinds[kind][arm], dtype=float)
                if scores.ndim == 2 and scores.shape[0] and np.isfinite(scores).all():
                    found.setdefault(key, {})[arm] = scores.mean(axis=0)
        return found

    def held_out_comparisons(self, kind: str) -> dict[str, list[tuple[str, str, Interval]]]:
        """Per intensity, every pair of arms on ``kind``'s held-out score (:meth:`held_out_folds`), paired by fold."""
        return {key: _paired(list(arms), arms) for key, arms in self.held_out_folds(kind).items()}

    def gap_closures(self, kind: str) -> dict[str, list[GapClosure]]:
        """Per intensity with a frozen arm, each other arm's :class:`GapClosure` on ``kind``'s held-out score."""
        found: dict[str, list[GapClosure]] = {}
        for key, arms in self.held_out_folds(kind).items():
            if "frozen" not in arms or "frozen" not in self.curves.get(key, {}):
                continue
            frozen = arms["frozen"]
            gap = fold_interval(np.asarray(self.curves[key]["frozen"])[:, -1] - frozen)
            found[key] = []
            for arm in [a for a in arms if a != "frozen"]:
                gain = fold_interval(arms[arm] - frozen)
                scale = gap.estimate if gap.estimate > 0 else math.nan
                found[key].append(GapClosure(arm, gap, gain, gain.estimate / scale, gain.low / scale, gain.high / scale))
        return found

    def _held_out_statements(self, kind: str) -> list[str]:
        test, cells = HELD_OUT_KINDS[kind], (self.held_out_cells or {}).get(kind, [])
        statements = []
        for key, arms in self.held_out_folds(kind).items():
            scores = ", ".join(f"{arm} {signed(float(v.mean()))} ± {signed(float(v.std()))}" for arm, v in arms.items())
            absent = [a for a in self._order(self.curves.get(key, {})) if a not in arms]
            why = (
                "; no score for " + ", ".join(f"{a} (it sees no pipeline)" if a == "raw" and kind == "pipelines" else f"{a} (not recorded)" for a in absent)
                if absent
                else ""
            )
            listed = ", ".join(cells[:4]) + (f", … ({len(cells)} in all)" if len(cells) > 4 else "")
            text = (
                f"{test.capitalize()} ({listed}), intensity {key} ({self.metric} averaged over the cells, mean ± std over {self.folds} folds): {scores}{why}."
            )
            statements.append(text + _pairs_text(self.held_out_comparisons(kind).get(key, [])))
            closures = self.gap_closures(kind).get(key, [])
            if closures:
                statements.append(" ".join([_gap_statement(test, key, self.metric, closures[0].gap), *(c.statement() for c in closures)]))
        return statements

    def findings(self) -> dict[str, Any]:
        """What the study found, with its uncertainty, as JSON-ready values.

        ``final``: last-epoch mean and std over folds per intensity and arm;
        ``comparisons``: per intensity, every pair of arms' last-epoch difference with its
        interval over folds (:func:`~ispkit.drift.statistics.fold_interval`);
        ``below_chance``: arms whose last-epoch mean is below ``1/classes`` with the class
        their predictions concentrate on; ``worst_cells``: the lowest arm with its confusion
        matrix; ``statements``: all of it in sentences.
        """
        final, comparisons = self.final(), self.comparisons()
        cells = []
        for key, arms in final.items():
            for arm, (mean, _) in arms.items():
                matrix = self.confusion.get(key, {}).get(arm) if self.confusion is not None else None
                cells.append(({"kind": "arm", "intensity": key, "arm": arm, "cell": f"{arm} at intensity {key}"}, mean, matrix))
        some = next((m for _, _, m in cells if m is not None), None)
        below = _below_chance(self.task, self.classes, some, [c for c in cells if np.isfinite(c[1])])
        finite = [c for c in cells if np.isfinite(c[1])]
        statements = []
        for key, arms in final.items():
            scores = ", ".join(f"{arm} {signed(mean)} ± {signed(std)}" for arm, (mean, std) in arms.items())
            statements.append(
                f"Intensity {key}, last epoch ({self.metric}, mean ± std over {self.folds} folds): {scores}." + _pairs_text(comparisons.get(key, []))
            )
        for kind in HELD_OUT_KINDS:
            statements += self._held_out_statements(kind)
        if below["statement"]:
            statements.append(below["statement"])
        held_out = {kind: self.held_out_folds(kind) for kind in HELD_OUT_KINDS}
        return {
            "metric": self.metric,
            "confidence": CONFIDENCE,
            "method": _FOLD_METHOD,
            "synthetic": self.synthetic,
            "final": {k: {a: {"mean": m, "std": sd} for a, (m, sd) in arms.items()} for k, arms in final.items()},
            "comparisons": {k: [{"a": a, "b": b, **i.to_dict()} for a, b, i in pairs] for k, pairs in comparisons.items()},
            "held_out_cells": self.held_out_cells,
            "held_out": {
                kind: {k: {a: {"mean": float(v.mean()), "std": float(v.std())} for a, v in arms.items()} for k, arms in found.items()}
                for kind, found in held_out.items()
            },
            "held_out_comparisons": {
                kind: {k: [{"a": a, "b": b, **i.to_dict()} for a, b, i in pairs] for k, pairs in self.held_out_comparisons(kind).items()}
                for kind in HELD_OUT_KINDS
            },
            "gap_closed": {kind: {k: [c.to_dict() for c in closures] for k, closures in self.gap_closures(kind).items()} for kind in HELD_OUT_KINDS},
            "augmentation": self.augmentation,
            "below_chance": below,
            "worst_cells": [_worst_entry(*min(finite, key=lambda c: c[1]), self.classes)] if finite else [],
            "statements": statements,
        }
