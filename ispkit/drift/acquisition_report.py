"""Figures and a self-contained HTML report of an acquisition-design study.

- :func:`plot_frontier`: per control variable, the frozen model's metric against the
  cost of each setting (log axis, the reference at cost 1) with its 95 % interval over the
  images, the reference metric (dashed) and the ε band down to the floor (shaded), the
  cheapest swept setting within ε (star) and the setting the threshold search found
  (dotted vertical line);
- :func:`write_acquisition_report`: ``figures/frontier.png`` and ``run_dir/report.html``
  (the layout of every drift report, :func:`~ispkit.drift.html_report.write_page`): the
  findings in words, the cheapest acquisition per variable, the figure, each variable's
  sweep table and each search's probes.

Examples
--------
>>> from ispkit.drift.acquisition_results import AcquisitionPoint, AcquisitionResults
>>> points = [AcquisitionPoint("bit_depth", b, b / 16, m, [m] * 3) for b, m in [(16, 0.9), (8, 0.88), (6, 0.6)]]
>>> r = AcquisitionResults(task="classification", metric="accuracy", pipeline="bi,s,ga", epsilon=0.05, reference=0.9,
...     reference_per_image=[0.9] * 3, variables=["bit_depth"], references={"bit_depth": 16.0}, points=points)
>>> axis = plot_frontier(r).axes[0]
>>> axis.get_xlabel(), [round(float(x), 3) for x in axis.lines[0].get_xdata()]
("cost: bits per pixel (× the camera's)", [0.375, 0.5, 1.0])
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from ..errors import InputError
from .acquisition_results import VARIABLE_TEXT, AcquisitionResults, value_text
from .html_report import embed_figure, escape, fmt, new_figure, num, save_figures, write_page
from .statistics import signed

__all__ = ["COST_AXIS", "plot_frontier", "write_acquisition_report"]

COST_AXIS = {
    "exposure": "cost: light (× the reference's)",
    "bit_depth": "cost: bits per pixel (× the camera's)",
    "numerical_aperture": "cost: NA (× the objective's)",
    "pixel_pitch": "cost: pixels per field (1 / binning²)",
}
"""The x-axis label of each variable's panel (the cost in short; :data:`~ispkit.drift.acquisition_results.VARIABLE_TEXT` says it in full)."""


def plot_frontier(results: AcquisitionResults) -> Figure:
    """One panel per control variable: the metric against cost with its interval, the ε band, the cheapest setting and the search's."""
    if not results.variables:
        raise InputError("plot_frontier: the results hold no control variable; nothing to plot")
    n = len(results.variables)
    fig = new_figure(4.2 * n + 0.4, 4.2)
    axes = fig.subplots(1, n, squeeze=False, sharey=True)[0]
    for ax, variable in zip(axes, results.variables, strict=True):
        points = results.frontier(variable)
        cost = np.array([p.cost for p in points])
        metric = np.array([p.metric for p in points])
        intervals = [p.interval() for p in points]
        low = np.array([m - i.low if np.isfinite(i.low) else 0.0 for m, i in zip(metric, intervals, strict=True)])
        high = np.array([i.high - m if np.isfinite(i.high) else 0.0 for m, i in zip(metric, intervals, strict=True)])
        ax.plot(cost, metric, marker="o", color="C0", label="sweep")
        ax.errorbar(cost, metric, yerr=np.vstack([low, high]), fmt="none", ecolor="C0", alpha=0.5, capsize=3)
        for p in points:
            ax.annotate(value_text(variable, p.value), (p.cost, p.metric), textcoords="offset points", xytext=(4, 5), fontsize=7)
        ax.axhline(results.reference, color="black", linestyle="--", linewidth=1, label="reference")
        ax.axhspan(results.floor, results.reference, color="#9ecae1", alpha=0.3, label=f"within ε = {results.epsilon:g}")
        cheapest = results.cheapest(variable)
        if cheapest is not None:
            ax.plot([cheapest.cost], [cheapest.metric], marker="*", markersize=14, color="C3", linestyle="none", label="cheapest within ε (sweep)")
        search = results.searches.get(variable)
        if search is not None:
            ax.axvline(search.cost, color="C2", linestyle=":", linewidth=1.5, label=f"search: {value_text(variable, search.value)}")
        if cost.min() > 0 and cost.max() / cost.min() > 10:
            ax.set_xscale("log")
        ax.set_xlabel(COST_AXIS[variable])
        ax.set_title(VARIABLE_TEXT[variable][0], fontsize=10)
        ax.legend(fontsize=7, loc="lower right")
    axes[0].set_ylabel(results.metric)
    fig.suptitle(f"accuracy against acquisition cost ({results.pipeline}; the reference acquisition costs 1)", fontsize=11)
    return fig


def write_acquisition_report(run_dir: str | os.PathLike[str], results: AcquisitionResults, *, config_text: str | None = None,
                             title: str = "Acquisition design report") -> Path:  # fmt: skip
    """Write ``figures/frontier.png`` and a self-contained ``report.html`` into ``run_dir`` and return the page's path."""
    run_dir = Path(run_dir)
    images = save_figures(run_dir, {"frontier": plot_frontier(results)})
    sections = [
        "<h2>Accuracy against cost</h2>",
        embed_figure(images["frontier"], "metric against cost per control variable; shaded: within ε of the reference"),
    ]
    for variable in results.variables:
        sections += [f"<h2>{escape(VARIABLE_TEXT[variable][0].capitalize())}</h2>", _sweep_table(results, variable)]
        if variable in results.searches:
            sections.append(_search_table(results, variable))
    details = [f"{len(results.variables)} control variables", f"ε = {escape(f'{results.epsilon:g}')}", f"{len(results.reference_per_image)} held-out images"]
    return write_page(run_dir, title, task=results.task, metric=results.metric, details=details, summary=_summary(results), sections=sections,
                      config_text=config_text, synthetic=results.synthetic, findings=results.findings()["statements"])  # fmt: skip


def _summary(results: AcquisitionResults) -> str:
    parts = []
    for variable in results.variables:
        cheapest, search = results.cheapest(variable), results.searches.get(variable)
        text = "none within ε" if cheapest is None else f"{escape(value_text(variable, cheapest.value))} (cost {escape(num(cheapest.cost))})"
        if search is not None:
            text += f", search {escape(value_text(variable, search.value))} (cost {escape(num(search.cost))})"
        parts.append(f"{escape(VARIABLE_TEXT[variable][0])}: {text}")
    return (
        f"Reference pipeline <code>{escape(results.pipeline)}</code>; reference acquisition {escape(results.metric)} {fmt(results.reference)}, "
        f"floor {fmt(results.floor)} (ε = {escape(f'{results.epsilon:g}')}). Cheapest acquisition within ε, one variable at a time: " + "; ".join(parts) + "."
    )


def _sweep_table(results: AcquisitionResults, variable: str) -> str:
    rows = []
    for p in reversed(results.frontier(variable)):
        interval, drop = p.interval(), p.drop(results.reference_per_image)
        extra = ", ".join(f"{escape(k)} {escape(num(v))}" for k, v in p.extra.items())
        within = "surely" if results.within(p, surely=True) else "yes" if results.within(p) else "no"
        rows.append(
            f'<tr><td>{escape(value_text(variable, p.value))}</td><td class="num">{escape(num(p.cost))}</td><td>{extra}</td>'
            f'<td class="num">{fmt(p.metric)}</td><td class="num">{escape(interval.bounds_text())}</td><td class="num">{escape(signed(drop.estimate))}</td>'
            f'<td class="num">{escape(drop.bounds_text())}</td><td>{within}</td></tr>'
        )
    return (
        f"<table><caption>{escape(VARIABLE_TEXT[variable][0])}: cost = {escape(VARIABLE_TEXT[variable][2])}; within ε: {escape(results.metric)} ≥ "
        f"{fmt(results.floor)}, surely: the drop's upper bound ≤ ε</caption><thead><tr><th>setting</th><th>cost</th><th>also</th><th>{escape(results.metric)}</th>"
        f"<th>interval</th><th>drop</th><th>drop interval</th><th>within ε</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _search_table(results: AcquisitionResults, variable: str) -> str:
    search = results.searches[variable]
    rows = "".join(
        f'<tr><td class="num">{s.step}</td><td>{escape(value_text(variable, s.value))}</td><td class="num">{fmt(s.metric)}</td>'
        f'<td class="num">{escape(num(s.surrogate))}</td><td class="num">{escape(num(s.slope))}</td><td>{escape(s.move)}</td><td>{"yes" if s.feasible else "no"}</td></tr>'
        for s in search.steps
    )
    bracket = (
        "the cheapest end was within ε"
        if search.low is None
        else f"bracket {escape(value_text(variable, search.low))} … {escape(value_text(variable, search.high))}"
    )
    return (
        f"<table><caption>threshold search: {escape(value_text(variable, search.value))}, {escape(results.metric)} {fmt(search.metric)}; {bracket}; "
        f"{'converged' if search.converged else 'step budget spent'}</caption><thead><tr><th>probe</th><th>setting</th><th>{escape(results.metric)}</th>"
        f"<th>surrogate</th><th>d surrogate / d log setting</th><th>move</th><th>within ε</th></tr></thead><tbody>{rows}</tbody></table>"
    )
