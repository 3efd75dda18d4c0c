"""Figures and a self-contained HTML report of a drift-forensics sweep.

Draws the **forensic signature** of Oala et al. (TMLR 2023, Figure 6) for a
:class:`~ispkit.drift.results.ForensicsResults`:

- :func:`plot_signature`: the task metric against λ for every parameter subset (left;
  symlog axis with ``λ = 0`` at the left and ``λ = ∞``, the reference, as a separate
  point on the right), with the baseline (dashed) and ``baseline − tolerance`` (dotted);
  and the metric against the view distance ``d`` of each run (right), every point
  labelled with its λ;
- :func:`plot_views`: a few raw images seen through the pipeline found at every λ;
- :func:`write_forensics_report`: the figures as PNGs under ``run_dir/figures/`` and
  ``run_dir/report.html``, a single file (base64 images, inline CSS, no external
  resources, no JavaScript) opening with a banner when the data are synthetic and the
  findings in words with their uncertainty
  (:meth:`ForensicsResults.findings <ispkit.drift.results.ForensicsResults.findings>`:
  the baseline against each subset's worst λ, over the attacked images), then a summary,
  each subset's worst λ with its drop and interval, the runs below chance with the class
  their predictions collapse to, the confusion matrix of the worst run, the figures, the
  subset × λ table of the metric and distance, the operating specification and the run's
  configuration.

Figures are built on :class:`matplotlib.figure.Figure` with an Agg canvas, without
pyplot, so no global state is touched.

Examples
--------
>>> from ispkit.drift.results import ForensicsResults, ForensicsRun
>>> runs = [ForensicsRun("all", lam, m, d, 0.0, {}) for lam, m, d in
...         [(0.0, 0.2, 0.3), (1.0, 0.6, 0.1), (float("inf"), 0.9, 0.0)]]
>>> r = ForensicsResults(task="classification", metric="accuracy", pipeline="bi,s,ga",
...     distance="l2", baseline=0.9, subsets=["all"], lambdas=[0.0, 1.0, float("inf")],
...     reference={}, bounds={}, runs=runs)
>>> left = plot_signature(r).axes[0]
>>> [t.get_text() for t in left.get_xticklabels()], left.lines[0].get_ydata().tolist()
(['0', '1', '∞'], [0.2, 0.6, 0.9])
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure

from ..errors import InputError
from ..pipeline import Pipeline
from .html_report import below_chance_table, compact, confusion_figures, confusion_section, embed_figure, escape, fmt, new_figure, num, save_figures, write_page
from .results import ForensicsResults, plain_lambda
from .statistics import signed
from .units import slug

__all__ = ["plot_signature", "plot_views", "write_forensics_report"]

MAX_VIEW_ROWS = 4
"""At most this many images (rows) in :func:`plot_views`."""

_EXTRA_CSS = """
td.bad { background: #fdf0ec; }
td small { color: #666; }
"""


# -- figures --------------------------------------------------------------------------


def plot_signature(results: ForensicsResults) -> Figure:
    """The forensic signature: metric against λ and against the view distance, per subset.

    Parameters
    ----------
    results
        The sweep.

    Returns
    -------
    Figure
        Two axes. Left: one line per subset (label = subset name, λ in increasing order,
        ``λ = ∞`` last), on a symlog x axis whose linear range ends at the smallest
        positive finite λ, so ``λ = 0`` sits at the left; ``λ = ∞`` is drawn a decade
        to the right of the largest finite λ and ticked ``∞``. A dashed line marks the
        baseline and a dotted one ``baseline − tolerance``. Right: the metric (y, shared
        scale) against the view distance (x; log when every distance is positive,
        symlog when some are zero, linear when none is positive), one marker series per
        subset in the same colours, every point annotated with its λ.
    """
    if not results.subsets or not results.lambdas:
        raise InputError("plot_signature: the results hold no subsets or no λ values; nothing to plot")
    order = sorted(range(len(results.lambdas)), key=lambda i: results.lambdas[i])
    lambdas = [results.lambdas[i] for i in order]
    metric = results.table("metric")[:, order]
    distance = results.table("distance")[:, order]
    x = _lambda_positions(lambdas)

    fig = new_figure(12.0, 4.8)
    left, right = fig.subplots(1, 2, sharey=True)
    colours = [f"C{i % 10}" for i in range(len(results.subsets))]
    for subset, row, colour in zip(results.subsets, metric, colours, strict=True):
        left.plot(x, row, marker="o", color=colour, label=subset)
    left.axhline(results.baseline, color="black", linestyle="--", linewidth=1, label="baseline")
    left.axhline(results.baseline - results.tolerance, color="black", linestyle=":", linewidth=1, label=f"baseline − {results.tolerance:g}")
    positive = [lam for lam in lambdas if 0 < lam < math.inf]
    left.set_xscale("symlog", linthresh=min(positive) if positive else 1.0)
    left.set_xticks(x, labels=[_lam(lam) for lam in lambdas])
    left.minorticks_off()
    if any(math.isinf(lam) for lam in lambdas) and len(lambdas) > 1:
        finite = [p for p, lam in zip(x, lambdas, strict=True) if not math.isinf(lam)]
        if finite:  # a light break between the finite λ and the reference
            left.axvline(math.sqrt(max(finite) * x[-1]) if max(finite) > 0 else x[-1] / 2, color="#bbb", linewidth=0.8)
    left.set_xlabel("λ (weight of the view distance; ∞ = reference)")
    left.set_ylabel(results.metric)
    left.set_title(f"{results.metric} against λ", fontsize=10)
    left.legend(fontsize=8)

    for subset, drow, mrow, colour in zip(results.subsets, distance, metric, colours, strict=True):
        right.plot(drow, mrow, marker="o", linestyle="none", color=colour, label=subset)
        for lam, d, m in zip(lambdas, drow, mrow, strict=True):
            if np.isfinite(d) and np.isfinite(m):
                right.annotate(f"λ={_lam(lam)}", (d, m), textcoords="offset points", xytext=(4, 4), fontsize=7, color=colour)
    right.axhline(results.baseline, color="black", linestyle="--", linewidth=1)
    right.axhline(results.baseline - results.tolerance, color="black", linestyle=":", linewidth=1)
    finite_d = distance[np.isfinite(distance)]
    if finite_d.size and (finite_d > 0).all():
        right.set_xscale("log")
    elif (finite_d > 0).any():
        right.set_xscale("symlog", linthresh=float(finite_d[finite_d > 0].min()))
        if (finite_d >= 0).all():
            right.set_xlim(left=0.0)
    right.set_xlabel(f"view distance d ({results.distance}) to the reference")
    right.set_title(f"{results.metric} against view distance", fontsize=10)
    fig.suptitle(f"forensic signature of {results.pipeline}", fontsize=11)
    return fig


def plot_views(
    views_by_lambda: Mapping[float, Any],
    lambdas: Sequence[float],
    subset: str,
    metric_by_lambda: Mapping[float, float],
) -> Figure:
    """The same raw images through the pipeline found at every λ.

    Parameters
    ----------
    views_by_lambda
        λ → float array ``(N, 3, H, W)`` (numpy or torch) of RGB views in [0, 1]; values
        outside are clipped for display.
    lambdas
        The columns, in order; each must be a key of ``views_by_lambda``.
    subset
        The attacked parameter subset (for the title).
    metric_by_lambda
        λ → the metric of that run, shown in the column titles (``n/a`` when missing).

    Returns
    -------
    Figure
        A grid of one column per λ (titled ``λ = …`` and the metric) and one row per
        image, at most :data:`MAX_VIEW_ROWS` rows.
    """
    if not lambdas:
        raise InputError("plot_views: no λ given; nothing to plot")
    views = []
    for lam in lambdas:
        if lam not in views_by_lambda:
            raise InputError(f"plot_views: no views for λ = {_lam(lam)}")
        v = views_by_lambda[lam]
        v = v.detach().cpu().numpy() if isinstance(v, torch.Tensor) else np.asarray(v)
        if v.ndim != 4 or v.shape[1] != 3 or 0 in v.shape:
            raise InputError(f"plot_views: views for λ = {_lam(lam)} must be (N, 3, H, W); got shape {v.shape}")
        views.append(np.clip(v.astype(float), 0.0, 1.0))
    rows = min(MAX_VIEW_ROWS, min(len(v) for v in views))
    cols = len(lambdas)
    _, _, h, w = views[0].shape
    panel = 2.2
    fig = new_figure(panel * cols + 0.4, panel * h / w * rows + 1.0)
    axes = np.atleast_2d(fig.subplots(rows, cols, squeeze=False))
    for col, (lam, v) in enumerate(zip(lambdas, views, strict=True)):
        for row in range(rows):
            ax = axes[row, col]
            ax.imshow(v[row].transpose(1, 2, 0), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
        axes[0, col].set_title(f"λ = {_lam(lam)}\n{fmt(metric_by_lambda.get(lam))}", fontsize=9)
    fig.suptitle(f"views of subset {subset} at every λ", fontsize=11)
    return fig


def _lambda_positions(lambdas: Sequence[float]) -> list[float]:
    """x positions of sorted λ values: finite ones as is, ∞ a decade beyond the largest finite one."""
    finite = [lam for lam in lambdas if not math.isinf(lam)]
    top = max(finite, default=0.0)
    at_inf = 10.0 * top if top > 0 else 10.0
    return [at_inf if math.isinf(lam) else float(lam) for lam in lambdas]


def _lam(lam: float) -> str:
    return "∞" if math.isinf(lam) else f"{lam:g}"


# -- report ---------------------------------------------------------------------------


def write_forensics_report(
    run_dir: str | os.PathLike[str],
    results: ForensicsResults,
    *,
    pipeline: Pipeline | None = None,
    raws: torch.Tensor | None = None,
    config_text: str | None = None,
    title: str = "Drift forensics report",
) -> Path:
    """Write the figures and a self-contained ``report.html`` into ``run_dir``.

    Parameters
    ----------
    run_dir
        The forensics run folder; the found pipelines are read from
        ``units/<subset>/lambda_<λ>/pipeline.yaml``. Figures go to ``run_dir/figures/``:
        ``signature.png`` and, with ``raws`` and views to show, ``views_<subset>.png``; views
        PNGs left by an earlier call and not written now are removed.
    results
        The sweep.
    pipeline
        The reference pipeline, used for ``λ = ∞`` and for any λ whose
        ``pipeline.yaml`` is missing (those columns are left out without it).
    raws
        ``(n, 1, H, W)`` raw mosaics (at most 4 are shown) to view through the pipelines
        of subset ``all`` (or the first subset when there is no ``all``).
    config_text
        The run's configuration, shown verbatim.
    title
        Heading and ``<title>`` of the page.

    Returns
    -------
    Path
        ``run_dir/report.html``.
    """
    run_dir = Path(run_dir)
    findings = results.findings()
    figures = {"signature": plot_signature(results)}
    subset = "all" if "all" in results.subsets else results.subsets[0]
    views = _views(run_dir, results, subset, pipeline, raws) if raws is not None else {}
    views_name = f"views_{slug(subset)}"
    if views:
        metrics = {lam: results.run(subset, lam).metric for lam in views}
        figures[views_name] = plot_views(views, list(views), subset, metrics)
    figures.update(confusion_figures(findings["worst_cells"], results.classes))
    images = save_figures(run_dir, figures, stale=("views_*", "confusion"))
    sections = [
        "<h2>Each subset's worst λ</h2>",
        _drops_table(results, findings),
        *below_chance_table(findings["below_chance"], results.metric),
        *confusion_section(findings["worst_cells"], images),
        "<h2>Forensic signature</h2>",
        embed_figure(images["signature"], "metric against λ and against the view distance, per parameter subset"),
    ]
    if views_name in images:
        sections += ["<h2>Views</h2>", embed_figure(images[views_name], f"raw images through the pipelines found for subset {subset}")]
    sections += ["<h2>Metric per subset and λ</h2>", _sweep_table(results), "<h2>Operating specification</h2>", _spec_table(results)]
    details = [f"{len(results.subsets)} subsets × {len(results.lambdas)} λ values", f"distance: {escape(results.distance)}"]
    return write_page(run_dir, title, task=results.task, metric=results.metric, details=details, summary=_summary(results), sections=sections,
                      config_text=config_text, extra_css=_EXTRA_CSS, synthetic=results.synthetic, findings=findings["statements"])  # fmt: skip


def _drops_table(results: ForensicsResults, findings: dict[str, Any]) -> str:
    """Per subset: the λ with the lowest metric, the metric there, the drop from the baseline and its interval over the images."""
    rows = []
    for c in findings["comparisons"]:
        interval = c["interval"]
        bounds = f"{escape(signed(interval['low']))} to {escape(signed(interval['high']))}" if interval and interval["low"] is not None else "not recorded"
        verdict = escape(interval["verdict"]) if interval else "per-image scores not recorded"
        rows.append(
            f'<tr><td>{escape(c["subset"])}</td><td class="num">{escape(_lam(float(c["lambda"])))}</td><td class="num">{fmt(c["metric"])}</td>'
            f'<td class="num">{escape(signed(c["drop"]))}</td><td class="num">{bounds}</td><td>{verdict}</td></tr>'
        )
    if not rows:
        return "<p>No attacked run with a finite λ.</p>"
    return (
        f"<table><caption>baseline {escape(results.metric)} {fmt(results.baseline)} − the lowest {escape(results.metric)} of each subset's runs "
        f"(finite λ); {findings['confidence']:.0%} CI over the attacked images</caption>"
        f"<thead><tr><th>subset</th><th>worst λ</th><th>{escape(results.metric)}</th><th>drop</th><th>{findings['confidence']:.0%} CI</th><th>verdict</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _views(run_dir: Path, results: ForensicsResults, subset: str, reference: Pipeline | None, raws: torch.Tensor) -> dict[float, np.ndarray]:
    """λ (sorted) → views of ``raws`` through the pipeline found at that λ (or the reference)."""
    if not isinstance(raws, torch.Tensor):
        raise InputError(f"write_forensics_report: raws must be a torch tensor (n, 1, H, W); got {type(raws).__name__}")
    raws = raws[:MAX_VIEW_ROWS].detach().cpu()
    views = {}
    for lam in sorted(results.lambdas):
        path = run_dir / "units" / slug(subset) / f"lambda_{plain_lambda(lam)}" / "pipeline.yaml"
        found = Pipeline.from_yaml(path) if not math.isinf(lam) and path.exists() else reference
        if found is None:
            continue
        with torch.no_grad():
            views[lam] = found.to_torch()(raws).numpy()
    return views


def _summary(results: ForensicsResults) -> str:
    finite = [r for r in results.runs if np.isfinite(r.metric)]
    worst = min(finite, key=lambda r: r.metric, default=None)
    worst_text = (
        f"subset <code>{escape(worst.subset)}</code> at λ = {escape(_lam(worst.lam))}: {escape(results.metric)} {fmt(worst.metric)} "
        f"at view distance {fmt(worst.distance)}"
        if worst is not None
        else "n/a"
    )
    return (
        f"Reference pipeline <code>{escape(results.pipeline)}</code>; baseline {escape(results.metric)} {fmt(results.baseline)}, "
        f"tolerance {fmt(results.tolerance)} (floor {fmt(results.baseline - results.tolerance)}); "
        f"view distance {escape(results.distance)}. Lowest {escape(results.metric)}: {worst_text}."
    )


def _sweep_table(results: ForensicsResults) -> str:
    floor = results.baseline - results.tolerance
    order = sorted(results.lambdas)
    head = "".join(f"<th>λ = {escape(_lam(lam))}</th>" for lam in order)
    rows = []
    for subset in results.subsets:
        cells = []
        for lam in order:
            run = results.run(subset, lam)
            bad = ' class="num bad"' if run.metric < floor else ' class="num"'
            cells.append(f"<td{bad}>{fmt(run.metric)}<br><small>d {escape(num(run.distance))}</small></td>")
        rows.append(f"<tr><td>{escape(subset)}</td>{''.join(cells)}</tr>")
    return (
        f"<table><caption>{escape(results.metric)} (and view distance d) per subset and λ; "
        f"shaded: below baseline − tolerance</caption>"
        f"<thead><tr><th>subset</th>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _spec_table(results: ForensicsResults) -> str:
    spec = results.operating_spec()
    rows = []
    for name, entry in spec["parameters"].items():
        breaking = entry.get("breaking")
        lam = escape(_lam(float(breaking["lambda"]))) if breaking else "—"
        value = fmt(breaking[results.metric]) if breaking else "—"
        searched = "" if entry["searched"] else " <small>(not searched)</small>"
        rows.append(
            f"<tr><td><code>{escape(name)}</code>{searched}</td><td>{escape(compact(entry['reference']))}</td>"
            f"<td>{escape(compact(entry['safe_min']))}</td><td>{escape(compact(entry['safe_max']))}</td>"
            f'<td>{escape(_bounds(entry["bounds"]))}</td><td class="num">{lam}</td><td class="num">{value}</td></tr>'
        )
    return (
        f"<p>{escape(spec['note'])}.</p>"
        "<table><thead><tr><th>parameter</th><th>reference</th><th>safe min</th><th>safe max</th>"
        f"<th>physical bounds</th><th>breaking λ</th><th>{escape(results.metric)} there</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _bounds(bounds: Sequence[Any]) -> str:
    low, high = bounds
    if low is None and high is None:
        return "unbounded"
    return f"[{'−∞' if low is None else num(low)}, {'∞' if high is None else num(high)}]"
