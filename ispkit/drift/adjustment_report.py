"""Figures and a self-contained HTML report of a drift-adjustment study.

Draws Figure 7 of Oala et al. (TMLR 2023) for an
:class:`~ispkit.drift.results.AdjustmentResults`: the validation curves of the
``learned`` arm (pipeline trained with the task model), the ``frozen`` arm (reference
pipeline fixed) and the ``raw`` arm (no pipeline), per intensity:

- :func:`plot_curves`: one panel per intensity, the metric against the epoch, per arm
  the mean over folds (line) and ± one standard deviation (shaded band);
- :func:`plot_learned_views`: a few raw images through the reference (frozen) pipeline
  and through the pipeline learned in fold 0;
- :func:`write_adjustment_report`: the figures as PNGs under ``run_dir/figures/`` and
  ``run_dir/report.html``, a single file (base64 images, inline CSS, no external
  resources, no JavaScript) opening with a banner when the data are synthetic and the
  findings in words with their uncertainty
  (:meth:`AdjustmentResults.findings <ispkit.drift.results.AdjustmentResults.findings>`:
  learned, frozen and raw per intensity, paired over folds), then a summary of the final
  metric of every arm, the paired differences with their intervals, the arms below
  chance with the class their predictions collapse to, the confusion matrix of the worst
  arm, the curves, the final and best-epoch table, the held-out tests (every arm's score
  on held-out raw corruptions and held-out pipelines, how much of the frozen arm's gap each
  other arm closes, the pairs of arms and every cell), the views and changed parameters of
  each learned pipeline, and the run's configuration.

Figures are built on :class:`matplotlib.figure.Figure` with an Agg canvas, without
pyplot, so no global state is touched.

Examples
--------
>>> import numpy as np
>>> from ispkit.drift.results import AdjustmentResults
>>> r = AdjustmentResults(task="classification", metric="accuracy", pipeline="bi,s,me",
...     intensities=[0.001], arms=["learned", "frozen"], folds=2, epochs=2,
...     curves={"0.001": {"learned": np.array([[0.5, 0.7], [0.5, 0.9]]),
...                       "frozen": np.array([[0.4, 0.6], [0.4, 0.6]])}})
>>> ax = plot_curves(r).axes[0]
>>> ax.get_title(), ax.lines[0].get_ydata().tolist(), ax.lines[0].get_label()
('intensity 0.001', [0.5, 0.8], 'learned')
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure

from ..errors import InputError
from ..pipeline import Pipeline
from .html_report import below_chance_table, compact, confusion_figures, confusion_section, embed_figure, escape, fmt, new_figure, save_figures, write_page
from .results import HELD_OUT_KINDS, AdjustmentResults, percent
from .statistics import signed
from .units import slug

__all__ = ["ARM_COLOURS", "plot_curves", "plot_learned_views", "changed_params", "write_adjustment_report"]

ARM_COLOURS = {"learned": "#e4572e", "frozen": "#2e86ab", "raw": "#6c757d", "augmented": "#3bb273"}
"""Fixed colour of each arm in :func:`plot_curves`; other arms get the default cycle."""

BAND_ALPHA = 0.2
MAX_VIEW_COLUMNS = 4
"""At most this many images (columns) in :func:`plot_learned_views`."""

CHANGE_RTOL = 1e-6
"""Relative tolerance below which a learned value counts as unchanged (float32 round trip)."""

_EXTRA_CSS = """
td small { color: #666; }
"""


# -- figures --------------------------------------------------------------------------


def plot_curves(results: AdjustmentResults) -> Figure:
    """Validation curves of every arm, one panel per intensity (Fig. 7).

    Parameters
    ----------
    results
        The study.

    Returns
    -------
    Figure
        One axes per intensity (titled ``intensity <key>``, in the order of
        ``results.intensities``), sharing the y axis (``results.metric``); x is the epoch
        ``1 … epochs``. Per arm, in the order of ``results.arms``, a line of the mean over
        folds (label = arm) and a band of mean ± std over folds, both in the arm's colour
        (:data:`ARM_COLOURS`). The first axes carries the legend.
    """
    keys = _intensity_keys(results)
    if not keys:
        raise InputError("plot_curves: the results hold no curves; nothing to plot")
    n = len(keys)
    fig = new_figure(1.0 + 4.2 * n, 4.0)
    axes = fig.subplots(1, n, sharey=True, squeeze=False)[0]
    for ax, key in zip(axes, keys, strict=True):
        for arm in _arms(results, key):
            curve = np.asarray(results.curves[key][arm], dtype=float)
            if curve.ndim != 2 or 0 in curve.shape:
                raise InputError(f"plot_curves: curves[{key!r}][{arm!r}] must be (folds, epochs); got shape {curve.shape}")
            x = np.arange(1, curve.shape[1] + 1)
            mean, std = curve.mean(axis=0), curve.std(axis=0)
            colour = _colour(results, arm)
            ax.plot(x, mean, color=colour, marker="o", markersize=3, label=arm)
            ax.fill_between(x, mean - std, mean + std, color=colour, alpha=BAND_ALPHA, linewidth=0)
        ax.set_title(f"intensity {key}", fontsize=10)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(f"validation {results.metric}")
    axes[0].legend(fontsize=8)
    fig.suptitle(f"{results.metric} per epoch: mean ± std over {results.folds} folds", fontsize=11)
    return fig


def plot_learned_views(reference_views: Any, learned_views: Any, intensity: str) -> Figure:
    """The same raw images through the reference (frozen) and the learned pipeline.

    Parameters
    ----------
    reference_views, learned_views
        Float arrays ``(N, 3, H, W)`` (numpy or torch) of the same shape: RGB views in
        [0, 1] (values outside are clipped for display).
    intensity
        The intensity key, for the title.

    Returns
    -------
    Figure
        Two rows (reference, learned) of one column per image, at most
        :data:`MAX_VIEW_COLUMNS` columns.
    """
    ref = _checked_views(reference_views, "reference_views")
    learned = _checked_views(learned_views, "learned_views")
    if ref.shape != learned.shape:
        raise InputError(f"plot_learned_views: the views must have the same shape; got {ref.shape} and {learned.shape}")
    cols = min(MAX_VIEW_COLUMNS, len(ref))
    _, _, h, w = ref.shape
    panel = 2.2
    fig = new_figure(panel * cols + 0.8, 2 * panel * h / w + 1.0)
    axes = fig.subplots(2, cols, squeeze=False)
    for row, (views, label) in enumerate(((ref, "reference (frozen)"), (learned, "learned (fold 0)"))):
        for col in range(cols):
            ax = axes[row, col]
            ax.imshow(views[col].transpose(1, 2, 0), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
        axes[row, 0].set_ylabel(label)
    fig.suptitle(f"intensity {intensity}: views through the reference and the learned pipeline", fontsize=11)
    return fig


def changed_params(reference: Pipeline, learned: Pipeline) -> list[tuple[str, Any, Any]]:
    """``(name, reference value, learned value)`` of every parameter that differs.

    Numeric values count as changed when their shapes differ or any element differs by
    more than :data:`CHANGE_RTOL` relative; a parameter only one pipeline has is listed
    with ``None`` for the other.
    """
    ref, new = reference.params(), learned.params()
    rows = []
    for name in list(ref) + [k for k in new if k not in ref]:
        a, b = ref.get(name), new.get(name)
        if not _same(a, b):
            rows.append((name, a, b))
    return rows


def _same(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is b
    try:
        x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    except (TypeError, ValueError):
        return bool(a == b)
    return x.shape == y.shape and bool(np.allclose(x, y, rtol=CHANGE_RTOL, atol=0.0, equal_nan=True))


def _intensity_keys(results: AdjustmentResults) -> list[str]:
    """Keys of ``results.curves`` in the order of ``results.intensities``, then any others."""
    ordered = [f"{i:g}" for i in results.intensities]
    return [k for k in ordered if k in results.curves] + [k for k in results.curves if k not in ordered]


def _arms(results: AdjustmentResults, key: str) -> list[str]:
    present = results.curves.get(key, {})
    return [a for a in results.arms if a in present] + [a for a in present if a not in results.arms]


def _all_arms(results: AdjustmentResults) -> list[str]:
    extra = [a for arms in results.curves.values() for a in arms if a not in results.arms]
    return list(results.arms) + list(dict.fromkeys(extra))


def _colour(results: AdjustmentResults, arm: str) -> str:
    if arm in ARM_COLOURS:
        return ARM_COLOURS[arm]
    return f"C{_all_arms(results).index(arm) % 10}"


def _checked_views(views: Any, name: str) -> np.ndarray:
    v = views.detach().cpu().numpy() if isinstance(views, torch.Tensor) else np.asarray(views)
    if v.ndim != 4 or v.shape[1] != 3 or 0 in v.shape:
        raise InputError(f"plot_learned_views: {name} must be (N, 3, H, W); got shape {v.shape}")
    return np.clip(v.astype(float), 0.0, 1.0)


# -- report ---------------------------------------------------------------------------


def write_adjustment_report(
    run_dir: str | os.PathLike[str],
    results: AdjustmentResults,
    *,
    pipeline: Pipeline | None = None,
    samples: Mapping[str, torch.Tensor] | None = None,
    config_text: str | None = None,
    title: str = "Drift adjustment report",
) -> Path:
    """Write the figures and a self-contained ``report.html`` into ``run_dir``.

    Parameters
    ----------
    run_dir
        The adjustment run folder; the learned pipelines are read from
        ``units/<intensity>/learned/fold0/pipeline.yaml``. Figures go to
        ``run_dir/figures/``: ``curves.png`` and, per intensity with samples and a
        learned pipeline (and ``pipeline`` given), ``views_<intensity>.png``; views PNGs
        left by an earlier call and not written now are removed.
    results
        The study.
    pipeline
        The reference pipeline (the frozen arm and the start of the learned one).
    samples
        Intensity key (e.g. ``"0.001"``) → raws ``(n, 1, H, W)`` to view (at most 4).
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
    figures = {"curves": plot_curves(results)}
    changed: dict[str, list[tuple[str, Any, Any]]] = {}
    for key in _intensity_keys(results):
        found = _learned_views(run_dir, key, pipeline, samples)
        if found is not None and pipeline is not None:  # found only with a reference pipeline
            ref_views, learned_views, learned_pipeline = found
            figures[f"views_{slug(key)}"] = plot_learned_views(ref_views, learned_views, key)
            changed[key] = changed_params(pipeline, learned_pipeline)
    figures.update(confusion_figures(findings["worst_cells"], results.classes))
    images = save_figures(run_dir, figures, stale=("views_*", "confusion"))
    sections = [
        "<h2>Arms compared, fold by fold</h2>",
        _comparisons_table(results, findings),
        *below_chance_table(findings["below_chance"], results.metric),
        *confusion_section(findings["worst_cells"], images),
        "<h2>Validation curves</h2>",
        embed_figure(images["curves"], "validation metric per epoch: mean over folds (line) and ± std (band), per arm and intensity"),
        "<h2>Final and best epoch</h2>",
        _final_table(results),
        *_held_out_sections(results, findings),
    ]
    for key, rows in changed.items():
        sections += [
            f"<h2>Learned pipeline, intensity {escape(key)}</h2>",
            embed_figure(images[f"views_{slug(key)}"], f"intensity {key}: sample raws through the reference (top) and the learned fold-0 pipeline (bottom)"),
            _changed_table(key, rows),
        ]
    details = [f"pipeline: {escape(results.pipeline)}", f"arms: {escape(', '.join(_all_arms(results)))}", f"{results.folds} folds", f"{results.epochs} epochs"]
    return write_page(run_dir, title, task=results.task, metric=results.metric, details=details, summary=_summary(results), sections=sections,
                      config_text=config_text, extra_css=_EXTRA_CSS, synthetic=results.synthetic, findings=findings["statements"])  # fmt: skip


def _comparisons_table(results: AdjustmentResults, findings: dict[str, Any]) -> str:
    """Per intensity and pair of arms: the last-epoch difference, its interval over folds and the verdict."""
    rows = [
        f'<tr><td>{escape(key)}</td><td>{escape(c["a"])} − {escape(c["b"])}</td><td class="num">{escape(signed(c["estimate"]))}</td>'
        f'<td class="num">{_bounds_text(c)}</td><td>{escape(c["verdict"])}</td></tr>'
        for key in _intensity_keys(results)
        for c in findings["comparisons"].get(key, [])
    ]
    if not rows:
        return "<p>Fewer than two arms: nothing to compare.</p>"
    return (
        f"<table><caption>last-epoch validation {escape(results.metric)}: difference of two arms, paired by fold; "
        f"{findings['confidence']:.0%} CI over folds</caption>"
        f"<thead><tr><th>intensity</th><th>arms</th><th>difference</th><th>{findings['confidence']:.0%} CI</th><th>verdict</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _bounds_text(comparison: dict[str, Any]) -> str:
    if comparison["low"] is None:
        return "n/a"
    return f"{escape(signed(comparison['low']))} to {escape(signed(comparison['high']))}"


def _learned_views(
    run_dir: Path, key: str, reference: Pipeline | None, samples: Mapping[str, torch.Tensor] | None
) -> tuple[np.ndarray, np.ndarray, Pipeline] | None:
    """Views of the samples through the reference and the fold-0 learned pipeline, when all exist."""
    path = run_dir / "units" / key / "learned" / "fold0" / "pipeline.yaml"
    if reference is None or samples is None or key not in samples or not path.exists():
        return None
    raws = samples[key]
    if not isinstance(raws, torch.Tensor) or raws.ndim != 4 or raws.shape[1] != 1 or len(raws) == 0:
        raise InputError(f"write_adjustment_report: samples[{key!r}] must be a torch tensor (n, 1, H, W)")
    raws = raws[:MAX_VIEW_COLUMNS].detach().cpu().float()
    found = Pipeline.from_yaml(path)
    with torch.no_grad():
        ref_views = reference.to_torch()(raws).clamp(0.0, 1.0).numpy()
        learned_views = found.to_torch()(raws).clamp(0.0, 1.0).numpy()
    return ref_views, learned_views, found


def _mean_std(entry: tuple[float, float] | None) -> str:
    if entry is None or not math.isfinite(entry[0]):
        return "n/a"
    return f"{fmt(entry[0])} ± {fmt(entry[1])}"


def _difference(final: Mapping[str, tuple[float, float]]) -> str:
    if "learned" not in final or "frozen" not in final:
        return "n/a"
    d = final["learned"][0] - final["frozen"][0]
    return f"{d:+.3f}" if math.isfinite(d) else "n/a"


def _summary(results: AdjustmentResults) -> str:
    final = results.final()
    arms = _all_arms(results)
    lines = []
    for key in _intensity_keys(results):
        values = ", ".join(f"{escape(arm)} {_mean_std(final[key].get(arm))}" for arm in arms)
        lines.append(f"intensity {escape(key)}: {values}; learned − frozen {_difference(final[key])}")
    return (
        f"Final validation {escape(results.metric)} (last epoch, mean ± std over {results.folds} folds) of the "
        f"pipeline <code>{escape(results.pipeline)}</code>: " + ". ".join(lines) + "."
    )


def _final_table(results: AdjustmentResults) -> str:
    final, best = results.final(), results.best()
    rows = []
    for key in _intensity_keys(results):
        for arm in _all_arms(results):
            rows.append(
                f"<tr><td>{escape(key)}</td><td>{escape(arm)}</td>"
                f'<td class="num">{_mean_std(final[key].get(arm))}</td><td class="num">{_mean_std(best[key].get(arm))}</td></tr>'
            )
    return (
        f"<table><caption>validation {escape(results.metric)}, mean ± std over folds</caption>"
        "<thead><tr><th>intensity</th><th>arm</th><th>final (last epoch)</th><th>best epoch</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _held_out_sections(results: AdjustmentResults, findings: dict[str, Any]) -> list[str]:
    """The held-out tests: every arm's scores, the gap each arm closes, the pairs of arms, every cell."""
    if results.held_out is None:
        return ["<h2>Held-out corruptions and pipelines</h2>", "<p>Not recorded: this run was made before held-out tests were.</p>"]
    sections = ["<h2>Held-out corruptions and pipelines</h2>", _augmentation_text(results), _held_out_table(results, findings), _closure_table(findings)]
    sections += [_held_out_pairs_table(results, findings, kind) for kind in HELD_OUT_KINDS]
    sections += [_cells_table(results, kind) for kind in HELD_OUT_KINDS if (results.held_out_cells or {}).get(kind)]
    return sections


def _augmentation_text(results: AdjustmentResults) -> str:
    a = results.augmentation
    if a is None:
        return "<p>No augmented arm in this run.</p>"
    spec = (
        f"; pipeline parameters drawn within <code>{escape(str(a['operating_spec']))}</code> ({escape(', '.join(a['parameters']))})"
        if a.get("operating_spec")
        else ""
    )
    low, high = a["severities"]
    return (
        f"<p>The augmented arm trained on raws corrupted by one of {escape(', '.join(a['corruptions']))} at severity {low}–{high} "
        f"(a sample left clean with probability {fmt(a['clean'])}){spec}. Every arm is tested on corruptions and severities it never "
        "trained with, and through pipelines other than its own.</p>"
    )


def _held_out_table(results: AdjustmentResults, findings: dict[str, Any]) -> str:
    """Per intensity and arm: the clean last-epoch score and each held-out score, mean ± std over folds."""
    final = results.final()
    rows = []
    for key in _intensity_keys(results):
        for arm in _all_arms(results):
            cells = [f'<td class="num">{_mean_std(final[key].get(arm))}</td>']
            for kind in HELD_OUT_KINDS:
                entry = findings["held_out"][kind].get(key, {}).get(arm)
                cells.append(f'<td class="num">{_mean_std((entry["mean"], entry["std"]) if entry else None)}</td>')
            rows.append(f"<tr><td>{escape(key)}</td><td>{escape(arm)}</td>{''.join(cells)}</tr>")
    heads = "".join(f"<th>{escape(test)}</th>" for test in HELD_OUT_KINDS.values())
    return (
        f"<table><caption>{escape(results.metric)}, mean ± std over folds (held-out: averaged over the cells first; "
        "n/a: not applicable, e.g. the raw arm sees no pipeline)</caption>"
        f"<thead><tr><th>intensity</th><th>arm</th><th>clean (last epoch)</th>{heads}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _closure_table(findings: dict[str, Any]) -> str:
    """Per held-out test, intensity and arm: the frozen arm's gap, the arm's gain over frozen and the share of the gap it closes."""
    rows = []
    for kind, test in HELD_OUT_KINDS.items():
        for key, closures in findings["gap_closed"][kind].items():
            for c in closures:
                share = "n/a (no gap)" if c["share"] is None else f"{escape(percent(c['share']))}"
                if c["share_low"] is not None and c["share_high"] is not None:
                    share += f" <small>({escape(percent(c['share_low']))} to {escape(percent(c['share_high']))})</small>"
                rows.append(
                    f'<tr><td>{escape(test)}</td><td>{escape(key)}</td><td class="num">{escape(signed(c["gap"]["estimate"]))} <small>({_bounds_text(c["gap"])})</small></td>'
                    f'<td>{escape(c["arm"])}</td><td class="num">{escape(signed(c["gain"]["estimate"]))} <small>({_bounds_text(c["gain"])})</small></td>'
                    f'<td class="num">{share}</td><td>{escape(c["gain"]["verdict"])}</td></tr>'
                )
    if not rows:
        return "<p>No gap to compare: the run has no frozen arm, or no held-out cells with scores.</p>"
    return (
        f"<table><caption>the frozen arm's gap (clean − held-out) and how much of it each arm closes (its held-out score − frozen's), "
        f"paired by fold; {findings['confidence']:.0%} CI over folds; the share's interval is the gain's over the mean gap</caption>"
        "<thead><tr><th>test</th><th>intensity</th><th>frozen gap</th><th>arm</th><th>gain over frozen</th><th>share of the gap closed</th><th>verdict</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _held_out_pairs_table(results: AdjustmentResults, findings: dict[str, Any], kind: str) -> str:
    rows = [
        f'<tr><td>{escape(key)}</td><td>{escape(c["a"])} − {escape(c["b"])}</td><td class="num">{escape(signed(c["estimate"]))}</td>'
        f'<td class="num">{_bounds_text(c)}</td><td>{escape(c["verdict"])}</td></tr>'
        for key in _intensity_keys(results)
        for c in findings["held_out_comparisons"][kind].get(key, [])
    ]
    if not rows:
        return f"<p>{escape(HELD_OUT_KINDS[kind].capitalize())}: fewer than two arms with scores, nothing to compare.</p>"
    return (
        f"<table><caption>{escape(HELD_OUT_KINDS[kind])}: difference of two arms' {escape(results.metric)} (averaged over the cells), paired by fold; "
        f"{findings['confidence']:.0%} CI over folds</caption>"
        f"<thead><tr><th>intensity</th><th>arms</th><th>difference</th><th>{findings['confidence']:.0%} CI</th><th>verdict</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _cells_table(results: AdjustmentResults, kind: str) -> str:
    """Every held-out cell of ``kind``: each arm's mean over folds, per intensity."""
    assert results.held_out is not None and results.held_out_cells is not None, "only called with held-out scores"
    arms = _all_arms(results)
    rows = []
    for key in _intensity_keys(results):
        scores = results.held_out.get(key, {}).get(kind, {})
        for c, cell in enumerate(results.held_out_cells[kind]):
            cells = "".join(f'<td class="num">{fmt(float(np.mean(scores[arm][c])) if arm in scores else None)}</td>' for arm in arms)
            rows.append(f"<tr><td>{escape(key)}</td><td>{escape(cell)}</td>{cells}</tr>")
    return (
        f"<table><caption>{escape(HELD_OUT_KINDS[kind])}, cell by cell: {escape(results.metric)}, mean over folds</caption>"
        f"<thead><tr><th>intensity</th><th>cell</th>{''.join(f'<th>{escape(a)}</th>' for a in arms)}</tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _value(value: Any) -> str:
    if value is None:
        return "—"
    try:
        return compact(value)
    except (TypeError, ValueError):
        return str(value)


def _changed_table(key: str, changed: list[tuple[str, Any, Any]]) -> str:
    if not changed:
        return "<p>No parameter of the learned pipeline differs from the reference.</p>"
    rows = "".join(f"<tr><td><code>{escape(name)}</code></td><td>{escape(_value(ref))}</td><td>{escape(_value(new))}</td></tr>" for name, ref, new in changed)
    return (
        f"<table><caption>parameters changed by learning (intensity {escape(key)}, fold 0)</caption>"
        "<thead><tr><th>parameter</th><th>reference</th><th>learned</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
    )
