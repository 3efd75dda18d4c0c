"""Figures and a self-contained HTML report of a drift-synthesis study.

The report follows Figures 4–5 of Oala et al. (TMLR 2023): a task model trained on the
views of one data model (*train pipeline*, a row) is tested on the held-out fold seen
through every data model (*test pipeline*, a column), and on its own views under the
common corruptions. It shows

- :func:`plot_matrix`: the train × test heatmap of the fold-mean metric, each cell
  annotated ``mean`` and ``±std`` over folds, the in-distribution cells outlined;
- :func:`plot_corruptions`: train pipeline × corruption, averaged over severities and
  folds, on the same colour scale as the matrix so the two compare side by side;
- :func:`plot_raw_corruptions`: with raw-domain corruptions, train pipeline × raw
  corruption and severity, on the same colour scale;
- :func:`plot_worst_pair`: one test image through the train and the test pipeline of
  the pair with the largest drop, and their per-channel absolute difference on a scale
  that shows it (:func:`difference_scale`);
- :func:`write_report`: the figures as PNGs under ``run_dir/figures/`` and
  ``run_dir/report.html``, a single file (images as base64 data URIs, inline CSS, no
  external resources, no JavaScript) opening with a banner when the data are synthetic
  and the findings in words with their uncertainty
  (:meth:`SynthesisResults.findings <ispkit.drift.results.SynthesisResults.findings>`),
  then the headline numbers of
  :meth:`SynthesisResults.summary <ispkit.drift.results.SynthesisResults.summary>`, the
  cells below chance with the class their predictions collapse to, the confusion
  matrices of the worst cells, the figures, the pairs that differ by more than fold
  noise, the ranking table of each train pipeline (as the paper's Tables 7–11), a
  corruption × severity table with each drop's interval, with raw-domain corruptions the
  same table for them and the mean corruption errors (mCE, relative mCE) of every train
  pipeline per corruption family against the baseline model, and the run's configuration.

Figures are built without pyplot (:mod:`ispkit.drift.html_report`), so no global
state is touched.

Examples
--------
>>> import numpy as np
>>> from ispkit.drift.results import SynthesisResults
>>> r = SynthesisResults(
...     task="classification", metric="accuracy",
...     train_pipelines=["a", "b"], test_pipelines=["a", "b"], folds=1,
...     metrics={"accuracy": np.array([[[0.9], [0.7]], [[0.7], [0.8]]])})
>>> ax = plot_matrix(r).axes[0]
>>> ax.get_ylabel(), ax.get_xlabel(), ax.texts[1].get_text()
('trained on', 'tested on', '0.70\\n±0.00')
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.image import AxesImage
from matplotlib.patches import Rectangle

from ..errors import InputError, close_matches
from .html_report import below_chance_table, confusion_figures, confusion_section, embed_figure, escape, fmt, new_figure, save_figures, write_page
from .results import SynthesisResults
from .statistics import signed

__all__ = ["plot_matrix", "plot_corruptions", "plot_raw_corruptions", "plot_worst_pair", "difference_scale", "write_report"]

CMAP = "viridis"
DIFF_CMAP = "magma"
OUTLINE = "#e4572e"
CELL_W, CELL_H = 0.8, 0.55  # inches per heatmap cell: room for two lines of annotation
MARGIN_W, MARGIN_H = 2.4, 2.0  # inches for tick labels, axis labels, title and colour bar


# -- figures --------------------------------------------------------------------------


def plot_matrix(results: SynthesisResults, metric: str | None = None) -> Figure:
    """Heatmap of the fold-mean metric, train pipelines (rows) × test pipelines (columns).

    Parameters
    ----------
    results
        The study.
    metric
        A key of ``results.metrics``; the primary metric when omitted.

    Returns
    -------
    Figure
        One heatmap axes and its colour bar; cells read ``mean`` over ``±std`` across
        folds (2 decimals) and each train pipeline's own (in-distribution) cell is
        outlined. The colour scale is shared with :func:`plot_corruptions`.
    """
    metric = _checked_metric(results, metric, "plot_matrix")
    p, q = len(results.train_pipelines), len(results.test_pipelines)
    fig = new_figure(MARGIN_W + CELL_W * q, MARGIN_H + CELL_H * p)
    ax = fig.add_subplot()
    image = _heatmap(ax, results.mean(metric), results.std(metric), _norm(results, metric))
    _label_axes(ax, results.train_pipelines, results.test_pipelines, "tested on")
    for row, train in enumerate(results.train_pipelines):
        col = results.test_pipelines.index(train)
        ax.add_patch(Rectangle((col - 0.5, row - 0.5), 1, 1, fill=False, edgecolor=OUTLINE, linewidth=2.5))
    ax.set_title(f"{metric} (mean ± std over {results.folds} folds)\noutlined: in-distribution", fontsize=10)
    fig.colorbar(image, ax=ax, label=metric)
    return fig


def plot_corruptions(results: SynthesisResults, metric: str | None = None) -> Figure:
    """Heatmap of the metric under each corruption, train pipelines (rows) × corruptions.

    Parameters
    ----------
    results
        The study.
    metric
        A key of ``results.corruption_metrics``; the primary metric when omitted.

    Returns
    -------
    Figure
        Cells hold the metric averaged over severities and folds (``±std`` over folds
        of the severity mean), on the colour scale of :func:`plot_matrix`; a figure
        saying "no corruptions evaluated" when the study has none.
    """
    metric = _checked_metric(results, metric, "plot_corruptions")
    p, c = len(results.train_pipelines), len(results.corruptions)
    if not _has_corruptions(results):
        fig = new_figure(MARGIN_W + CELL_W * 3, MARGIN_H + CELL_H * p)
        ax = fig.add_subplot()
        ax.set_axis_off()
        ax.text(0.5, 0.5, "no corruptions evaluated", ha="center", va="center", fontsize=12, transform=ax.transAxes)
        return fig
    per_fold = _corruption_values(results, metric).mean(axis=2)  # (P, C, K)
    fig = new_figure(MARGIN_W + CELL_W * c, MARGIN_H + CELL_H * p)
    ax = fig.add_subplot()
    image = _heatmap(ax, per_fold.mean(axis=-1), per_fold.std(axis=-1), _norm(results, metric))
    _label_axes(ax, results.train_pipelines, results.corruptions, "corruption")
    severities = ", ".join(str(s) for s in results.severities)
    ax.set_title(f"{metric} under corruptions\n(mean over severities {severities} and folds)", fontsize=10)
    fig.colorbar(image, ax=ax, label=metric)
    return fig


def plot_raw_corruptions(results: SynthesisResults, metric: str | None = None) -> Figure:
    """Heatmap of the metric under each raw-domain corruption and severity, train pipelines (rows) × cells.

    Returns
    -------
    Figure
        One column per raw corruption and severity (``low_light 1``, ``low_light 3``, ...),
        cells ``mean`` over ``±std`` across folds of the model of the row's pipeline on
        the held-out raws so corrupted and processed by that pipeline, on the colour
        scale of :func:`plot_matrix`. Raises :class:`~ispkit.errors.InputError` for a
        study without the raw axis.
    """
    metric = _checked_metric(results, metric, "plot_raw_corruptions")
    if not results.has_raw_axis:
        raise InputError("plot_raw_corruptions: the study has no raw corruptions (raw_corruptions: in the experiment)")
    values = results.raw_corruption_metrics[metric]  # (P, R, S, K)
    p, r, s = values.shape[:3]
    per_fold = values.reshape(p, r * s, -1)
    columns = [f"{name} {severity}" for name in results.raw_corruptions for severity in results.raw_severities]
    fig = new_figure(MARGIN_W + CELL_W * r * s, MARGIN_H + CELL_H * p)
    ax = fig.add_subplot()
    image = _heatmap(ax, per_fold.mean(axis=-1), per_fold.std(axis=-1), _norm(results, metric))
    _label_axes(ax, results.train_pipelines, columns, "raw corruption and severity")
    ax.set_title(
        f"{metric} under raw-domain corruptions (mean ± std over {results.folds} folds)\neach model's held-out raws corrupted, then its own pipeline",
        fontsize=10,
    )
    fig.colorbar(image, ax=ax, label=metric)
    return fig


WORST_PAIR_PERCENTILE = 99.0
"""Where the colour scale of the difference panels ends: this percentile of ``|A − B|`` away from the border."""

WORST_PAIR_BORDER = 4
"""Pixels at each edge left out of the scale: demosaicers and filters treat edges differently, and those few
bright pixels would otherwise set the scale and leave the differences inside the image black."""


def difference_scale(diff: np.ndarray, percentile: float = WORST_PAIR_PERCENTILE, border: int = WORST_PAIR_BORDER) -> float:
    """The top of the colour scale for ``diff`` ``(C, H, W)``: its ``percentile`` over the pixels at least ``border`` from the edge.

    The whole image is used when it is too small to have such pixels; when that percentile
    is 0 (the views agree almost everywhere) the largest difference is used, and 1 when the
    views are identical, so the scale always has a positive top.

    >>> d = np.zeros((1, 20, 20)); d[0, 0, :] = 0.9; d[0, 5:15, 5:15] = 0.02
    >>> difference_scale(d), float(np.percentile(d, 99.5))  # the border row would set the scale to 0.9
    (0.02, 0.9)
    """
    inner = diff[:, border:-border, border:-border] if border > 0 and min(diff.shape[1:]) > 2 * border else diff
    return float(np.percentile(inner, percentile)) or float(diff.max()) or 1.0


def plot_worst_pair(view_a: np.ndarray, view_b: np.ndarray, train: str, test: str, drop: float) -> Figure:
    """The same test image through two pipelines and their per-channel difference.

    Parameters
    ----------
    view_a, view_b
        Float arrays ``(3, H, W)`` in [0, 1] of the same shape: the image through the
        train pipeline (A) and through the test pipeline (B).
    train, test
        The two pipelines' names.
    drop
        The fold-mean drop of the metric from A to B.

    Returns
    -------
    Figure
        One row of panels: A, B and ``|A − B|`` of the R, G and B channels, each
        difference panel with its own colour bar on a scale shared by the three, from 0
        to :func:`difference_scale` (the 99th percentile of ``|A − B|`` away from a
        4-pixel border), so the differences inside the image are visible; larger ones
        (the image edges) saturate, which the colour bars' arrow and label say, and each
        panel's title gives its channel's maximum.
    """
    a = _checked_view(view_a, "view_a")
    b = _checked_view(view_b, "view_b")
    if a.shape != b.shape:
        raise InputError(f"plot_worst_pair: view_a and view_b must have the same shape; got {a.shape} and {b.shape}")
    diff = np.abs(a - b)
    vmax = difference_scale(diff)
    _, h, w = a.shape
    panel = 2.6
    fig = new_figure(5 * panel * 1.15, panel * h / w + 1.0)
    axes = fig.subplots(1, 5)
    for ax, view, name, label in ((axes[0], a, train, "A"), (axes[1], b, test, "B")):
        ax.imshow(np.clip(view.transpose(1, 2, 0), 0.0, 1.0), interpolation="nearest")
        ax.set_title(f"{label}: through {name}", fontsize=9)
    label = f"|A − B|, scale 0 to {vmax:.3g}"
    for ax, channel, values in zip(axes[2:], "RGB", diff, strict=True):
        image = ax.imshow(values, cmap=DIFF_CMAP, vmin=0.0, vmax=vmax, interpolation="nearest")
        ax.set_title(f"|A − B|, {channel} (max {values.max():.3f})", fontsize=9)
        fig.colorbar(image, ax=ax, shrink=0.8, extend="max" if diff.max() > vmax else "neither", label=label)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    scale = f"difference scale 0 to {vmax:.3g}: the {_ordinal(WORST_PAIR_PERCENTILE)} percentile of |A − B| away from a {WORST_PAIR_BORDER}-pixel border" + (
        "; larger differences saturate" if diff.max() > vmax else ""
    )
    fig.suptitle(f"worst pair: trained on {train}, tested on {test}; drop {fmt(drop)}\n{scale}", fontsize=10)
    return fig


def _ordinal(value: float) -> str:
    """``99`` → ``"99th"``, ``99.5`` → ``"99.5th"``, ``1`` → ``"1st"``."""
    n = int(value)
    suffix = "th" if value != n or 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{value:g}{suffix}"


def _heatmap(ax: Axes, mean: np.ndarray, std: np.ndarray, norm: Normalize) -> AxesImage:
    """Draw ``mean`` and annotate every cell ``mean`` over ``±std`` in a contrasting colour."""
    image = ax.imshow(mean, cmap=CMAP, norm=norm, aspect="auto", interpolation="nearest")
    for (row, col), value in np.ndenumerate(mean):
        ax.text(col, row, _cell(value, float(std[row, col])), ha="center", va="center", fontsize=8, color=_text_colour(image, value))
    return image


def _label_axes(ax: Axes, rows: Sequence[str], columns: Sequence[str], xlabel: str) -> None:
    ax.set_xticks(range(len(columns)), labels=list(columns), rotation=45, ha="right", rotation_mode="anchor")
    ax.set_yticks(range(len(rows)), labels=list(rows))
    ax.set_xlabel(xlabel)
    ax.set_ylabel("trained on")


def _cell(mean: float, std: float) -> str:
    if not np.isfinite(mean):
        return "n/a"
    return f"{mean:.2f}\n±{std:.2f}"


def _text_colour(image: AxesImage, value: float) -> str:
    """Black on light cells, white on dark ones (relative luminance of the cell colour)."""
    if not np.isfinite(value):
        return "black"
    r, g, b, _ = image.cmap(image.norm(np.asarray(value)))
    return "black" if 0.2126 * r + 0.7152 * g + 0.0722 * b > 0.5 else "white"


def _norm(results: SynthesisResults, metric: str) -> Normalize:
    """The colour scale shared by the matrix and the corruption heatmap of ``metric``."""
    values = [results.mean(metric).ravel()]
    if _has_corruptions(results):
        values.append(_corruption_values(results, metric).mean(axis=(2, 3)).ravel())
    finite = np.concatenate(values)
    finite = finite[np.isfinite(finite)]
    if finite.size == 0:
        return Normalize(0.0, 1.0)
    low, high = float(finite.min()), float(finite.max())
    if low == high:
        pad = 0.05 * max(abs(low), 1.0)
        low, high = low - pad, high + pad
    return Normalize(low, high)


def _has_corruptions(results: SynthesisResults) -> bool:
    return bool(results.corruptions) and bool(results.severities)


def _corruption_values(results: SynthesisResults, metric: str) -> np.ndarray:
    if metric not in results.corruption_metrics:
        raise InputError(f"metric {metric!r} was not recorded under corruptions; {close_matches(metric, results.corruption_metrics)}")
    return results.corruption_metrics[metric]


def _checked_metric(results: SynthesisResults, metric: str | None, where: str) -> str:
    metric = metric or results.metric
    if metric not in results.metrics:
        raise InputError(f"{where}: unknown metric {metric!r}; {close_matches(metric, results.metrics)}")
    if not results.train_pipelines or not results.test_pipelines:
        raise InputError(f"{where}: the results hold no train or no test pipelines; nothing to plot")
    return metric


def _checked_view(view: object, name: str) -> np.ndarray:
    expected = "a numpy float array (3, H, W) in [0, 1]"
    if not isinstance(view, np.ndarray):
        raise InputError(f"plot_worst_pair: {name} must be {expected}; got {type(view).__name__}")
    if not np.issubdtype(view.dtype, np.floating):
        raise InputError(f"plot_worst_pair: {name} must be {expected}; got dtype {view.dtype}")
    if view.ndim != 3 or view.shape[0] != 3 or 0 in view.shape:
        raise InputError(f"plot_worst_pair: {name} must be {expected} (channels first); got shape {view.shape}")
    return view


# -- report ---------------------------------------------------------------------------


def write_report(
    run_dir: str | os.PathLike[str],
    results: SynthesisResults,
    *,
    worst_views: tuple[np.ndarray, np.ndarray] | None = None,
    config_text: str | None = None,
    title: str = "Drift synthesis report",
) -> Path:
    """Write the figures and a self-contained ``report.html`` into ``run_dir``.

    Parameters
    ----------
    run_dir
        Folder of the run; created if missing. The figures go to ``run_dir/figures/``
        (``matrix.png``, ``corruptions.png`` and, with ``worst_views``,
        ``worst_pair.png``; a ``worst_pair.png`` left by an earlier call is removed
        otherwise), each written atomically.
    results
        The study; the report uses its primary metric.
    worst_views
        ``(view_a, view_b)``: one test image through the train and the test pipeline
        of :meth:`~ispkit.drift.results.SynthesisResults.worst_pair` (see
        :func:`plot_worst_pair`).
    config_text
        The run's configuration (e.g. its YAML), shown verbatim.
    title
        Heading and ``<title>`` of the page.

    Returns
    -------
    Path
        ``run_dir/report.html``.
    """
    summary, findings = results.summary(), results.findings()
    figures = {"matrix": plot_matrix(results), "corruptions": plot_corruptions(results)}
    if results.has_raw_axis:
        figures["raw_corruptions"] = plot_raw_corruptions(results)
    if worst_views is not None:
        figures["worst_pair"] = _worst_figure(summary, worst_views)
    figures.update(confusion_figures(findings["worst_cells"], results.classes))
    images = save_figures(run_dir, figures, stale=("worst_pair", "confusion", "raw_corruptions"))
    others = [m for m in results.metrics if m != results.metric]
    metric = f"{results.metric} (also recorded: {', '.join(others)})" if others else results.metric
    return write_page(run_dir, title, task=results.task, metric=metric, details=_details(results), summary=_summary_text(summary),
                      sections=_sections(results, findings, images), config_text=config_text, synthetic=results.synthetic,
                      findings=findings["statements"])  # fmt: skip


def _worst_figure(summary: dict[str, Any], worst_views: tuple[np.ndarray, np.ndarray]) -> Figure:
    if not isinstance(worst_views, (tuple, list)) or len(worst_views) != 2:
        raise InputError("write_report: worst_views must be a pair (view_a, view_b) of float arrays (3, H, W)")
    pair = summary["worst_pair"]
    if pair["train"] is None:
        raise InputError("write_report: worst_views given, but the results have no pair of different pipelines")
    return plot_worst_pair(*worst_views, pair["train"], pair["test"], pair["drop"])


def _sections(results: SynthesisResults, findings: dict[str, Any], images: dict[str, bytes]) -> list[str]:
    parts = [
        *below_chance_table(findings["below_chance"], results.metric),
        *confusion_section(findings["worst_cells"], images),
        "<h2>Train × test matrix and corruptions</h2>",
        '<div class="figures">',
        embed_figure(images["matrix"], "train × test matrix: fold-mean metric, in-distribution cells outlined"),
        embed_figure(images["corruptions"], "under corruptions: mean over severities and folds, same colour scale"),
        "</div>",
    ]
    if "worst_pair" in images:
        parts += ["<h2>Worst pair</h2>", embed_figure(images["worst_pair"], "one test image through the worst pair")]
    return [
        *parts, "<h2>Pairs that differ by more than fold noise</h2>", _pairs_table(findings), "<h2>Rankings</h2>", _rankings(results),
        "<h2>Corruptions</h2>", _corruption_table(results, findings), *_raw_section(results, findings, images),
    ]  # fmt: skip


def _pairs_table(findings: dict[str, Any]) -> str:
    """The train/test pairs whose drop's interval over folds excludes 0, largest first."""
    pairs = sorted((p for p in findings["pairs"] if p["distinguishable"]), key=lambda p: -p["estimate"])
    if not findings["pairs"]:
        return "<p>No pair of different train and test pipelines.</p>"
    if not pairs:
        return f"<p>None of the {len(findings['pairs'])} pairs: every drop's {findings['confidence']:.0%} interval over folds includes 0.</p>"
    rows = "".join(
        f'<tr><td>{escape(p["train"])}</td><td>{escape(p["test"])}</td><td class="num">{escape(signed(p["estimate"]))}</td>'
        f'<td class="num">{escape(signed(p["low"]))} to {escape(signed(p["high"]))}</td></tr>'
        for p in pairs
    )
    return (
        f"<p>{len(pairs)} of {len(findings['pairs'])} pairs (if no pair differed, at most about {(1 - findings['confidence']) * len(findings['pairs']):.1f} "
        "would by chance alone); drop = in-distribution score − score on the test pipeline.</p>"
        f"<table><thead><tr><th>trained on</th><th>tested on</th><th>drop</th><th>{findings['confidence']:.0%} CI over folds</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
    )


def _details(results: SynthesisResults) -> list[str]:
    severities = f"{len(results.severities)} severit{'y' if len(results.severities) == 1 else 'ies'}"
    corruptions = f"{len(results.corruptions)} corruptions × {severities}" if _has_corruptions(results) else "no corruptions"
    details = [f"{len(results.train_pipelines)} train × {len(results.test_pipelines)} test pipelines", f"{results.folds} folds", corruptions]
    if results.has_raw_axis:
        n = len(results.raw_severities)
        details.append(f"{len(results.raw_corruptions)} raw corruptions × {n} severit{'y' if n == 1 else 'ies'} (baseline {results.raw_baseline})")
    return details


def _summary_text(summary: dict[str, Any]) -> str:
    pair = summary["worst_pair"]
    worst = (
        f"trained on <code>{escape(pair['train'])}</code>, tested on <code>{escape(pair['test'])}</code> (drop {fmt(pair['drop'])})"
        if pair["train"] is not None
        else "n/a"
    )
    return (
        f"Mean {escape(summary['metric'])} in distribution: {fmt(summary['in_distribution'])}; "
        f"under ISP drift: {fmt(summary['under_isp_drift'])}; "
        f"under corruptions: {fmt(summary['under_corruptions'])}. "
        f"Drop under ISP drift: {fmt(summary['isp_drop'])}; "
        f"under corruptions: {fmt(summary['corruption_drop'])}; "
        f"ratio ISP / corruptions: {fmt(summary['drop_ratio'])}. "
        + (
            f"Under raw-domain corruptions: {fmt(summary['under_raw_corruptions'])} (drop {fmt(summary['raw_corruption_drop'])}). "
            if "raw_corruption_drop" in summary
            else ""
        )
        + f"Worst pair: {worst}."
    )


def _rankings(results: SynthesisResults) -> str:
    tables = []
    for train, rows in results.rankings().items():
        body = "".join(_ranking_row(rank, row.test, row.mean, row.std, row.test == train) for rank, row in enumerate(rows, start=1))
        tables.append(
            f"<table><caption>trained on {escape(train)}</caption>"
            f"<thead><tr><th>#</th><th>tested on</th><th>{escape(results.metric)}</th></tr></thead>"
            f"<tbody>{body}</tbody></table>"
        )
    note = "<p>Bold: the train pipeline's own views (in distribution).</p>"
    return f'{note}<div class="tables">{"".join(tables)}</div>'


def _ranking_row(rank: int, test: str, mean: float, std: float, own: bool) -> str:
    attribute = ' class="own"' if own else ""
    return f'<tr{attribute}><td class="num">{rank}</td><td>{escape(test)}</td><td class="num">{fmt(mean)} ± {fmt(std)}</td></tr>'


def _corruption_table(results: SynthesisResults, findings: dict[str, Any]) -> str:
    if not _has_corruptions(results):
        return "<p>No corruptions were evaluated.</p>"
    table = _corruption_values(results, results.metric).mean(axis=(0, 3))  # (C, S)
    drops = {(c["corruption"], c["severity"]): c for c in findings["corruption_cells"]}
    head = "".join(f"<th>severity {escape(str(s))}</th>" for s in results.severities)
    body = "".join(
        f"<tr><td>{escape(name)}</td>{''.join(_corruption_cell(v, drops[name, s]) for v, s in zip(row, results.severities, strict=True))}</tr>"
        for name, row in zip(results.corruptions, table, strict=True)
    )
    return (
        f"<table><caption>{escape(results.metric)} under corruptions, mean over train pipelines and folds; below it the drop from "
        f"in distribution and its {findings['confidence']:.0%} CI over folds</caption>"
        f"<thead><tr><th>corruption</th>{head}</tr></thead><tbody>{body}</tbody></table>"
    )


def _corruption_cell(value: float, drop: dict[str, Any]) -> str:
    interval = f"{escape(signed(drop['low']))} to {escape(signed(drop['high']))}" if drop["low"] is not None else "no CI"
    return f'<td class="num">{fmt(value)}<br><small>drop {escape(signed(drop["estimate"]))} ({interval})</small></td>'


def _raw_section(results: SynthesisResults, findings: dict[str, Any], images: dict[str, bytes]) -> list[str]:
    """The raw-domain corruptions: score per corruption and severity with its drop, and the corruption errors per family."""
    if not results.has_raw_axis:
        return []
    table = results.raw_corruption_mean().mean(axis=0)  # (R, S)
    drops = {(c["corruption"], c["severity"]): c for c in findings["raw_corruption_cells"]}
    head = "".join(f"<th>severity {escape(str(s))}</th>" for s in results.raw_severities)
    body = "".join(
        f"<tr><td>{escape(name)}</td><td>{escape(results.raw_families[name])}</td>"
        f"{''.join(_corruption_cell(v, drops[name, s]) for v, s in zip(row, results.raw_severities, strict=True))}</tr>"
        for name, row in zip(results.raw_corruptions, table, strict=True)
    )
    scores = (
        f"<table><caption>{escape(results.metric)} under raw-domain corruptions (the held-out raws corrupted before the ISP, then processed "
        f"by each model's own train pipeline), mean over train pipelines and folds; below it the drop from in distribution and its "
        f"{findings['confidence']:.0%} CI over folds</caption>"
        f"<thead><tr><th>raw corruption</th><th>family</th>{head}</tr></thead><tbody>{body}</tbody></table>"
    )
    figure = embed_figure(
        images["raw_corruptions"], "under raw-domain corruptions: each train pipeline's model, per corruption and severity, same colour scale"
    )
    return ["<h2>Raw-domain corruptions</h2>", figure, scores, _mce_table(results.raw_mce(), results.metric)]


def _mce_table(mce: dict[str, Any], metric: str) -> str:
    """Each train pipeline's mCE and relative mCE per family and overall, as percentages of the baseline's."""
    columns = [*mce["families"], "all"]
    head = "".join(f"<th>{escape(c)}</th>" for c in columns)
    body = "".join(
        f"<tr{_OWN if train == mce['baseline'] else ''}><td>{escape(train)}</td>"
        + "".join(f'<td class="num">{_percent(mce["mce"][train][c])}</td>' for c in columns)
        + "".join(f'<td class="num">{_percent(mce["relative_mce"][train][c])}</td>' for c in columns)
        + "</tr>"
        for train in mce["mce"]
    )
    undefined = sorted({*mce["undefined"]["ce"], *mce["undefined"]["relative_ce"]})
    note = (
        f"<p>Error = {escape(mce['error'])}, fold means. CE of a corruption: the model's errors summed over severities "
        f"{escape(', '.join(map(str, mce['severities'])))} divided by the baseline's; relative CE: the same for the errors' rise above the "
        f"model's own in-distribution error. mCE: their mean over a family's corruptions (and over all). Baseline model (bold): trained on "
        f"<code>{escape(str(mce['baseline']))}</code>, 100% by construction; below 100% is more robust than the baseline.</p>"
    )
    if undefined:
        note += f"<p>Undefined where the baseline is unharmed (left out of the means): {escape(', '.join(undefined))}.</p>"
    return (
        f"{note}<table><caption>mean corruption error (mCE) and relative mCE per corruption family, % of the baseline's</caption>"
        f'<thead><tr><th rowspan="2">trained on</th><th colspan="{len(columns)}">mCE</th><th colspan="{len(columns)}">relative mCE</th></tr>'
        f"<tr>{head}{head}</tr></thead><tbody>{body}</tbody></table>"
    )


_OWN = ' class="own"'


def _percent(value: float | None) -> str:
    return "n/a" if value is None or not np.isfinite(value) else f"{100 * value:.0f}%"
