"""The scaffolding of ispkit's reports: figures without pyplot, PNGs, one self-contained HTML page.

Every report (drift synthesis, forensics, adjustment) is a single HTML file with its
figures embedded as base64 PNG data URIs, inline CSS, no external resources and no
JavaScript, so it can be mailed or archived with the run. Figures are
:class:`matplotlib.figure.Figure` objects on an Agg canvas, made without pyplot, so no
global state is touched. The three report modules share one structure, written here:
:func:`save_figures` writes a run's figures under ``run_dir/figures/`` (and removes those
an earlier report wrote but this one does not), and :func:`write_page` writes
``run_dir/report.html`` -- heading, one-line description, a banner when the data are
synthetic (:data:`SYNTHETIC_BANNER`), the findings in words (each results class's
``findings()["statements"]``), summary, the report's own sections, the run's
configuration. :func:`plot_confusion` draws the confusion matrices of a report's worst
cells and :func:`below_chance_table` lists the cells scoring below chance with the class
their predictions collapse to.

>>> fmt(0.12345), fmt(float("nan")), fmt(None)
('0.123', 'n/a', 'n/a')
>>> escape("<b>")
'&lt;b&gt;'
>>> compact([0.5, 1 / 3]), compact(2.0), compact(range(12))
('[0.5, 0.333]', '2', '0 … 11 (12 values)')
"""

from __future__ import annotations

import base64
import html
import io
import os
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..atomic import atomic_write, atomic_write_text
from ..errors import InputError

__all__ = [
    "DPI", "CSS", "SYNTHETIC_BANNER", "new_figure", "save_png", "save_figures", "embed_figure", "html_document", "write_page", "plot_confusion",
    "confusion_section", "below_chance_table", "fmt", "num", "compact", "escape",
]  # fmt: skip

DPI = 110
"""Resolution of the PNG figures."""

CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1400px; padding: 0 1em; color: #222; }
h1 { margin-bottom: 0.2em; }
.meta { color: #666; margin-top: 0; }
.figures { display: flex; flex-wrap: wrap; gap: 1.5em; align-items: flex-start; }
figure { margin: 0; }
img { max-width: 100%; height: auto; }
.tables { display: flex; flex-wrap: wrap; gap: 1.5em; align-items: flex-start; }
table { border-collapse: collapse; font-size: 0.9em; }
caption { font-weight: bold; text-align: left; padding-bottom: 0.3em; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.6em; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.own td { font-weight: bold; background: #fdf0ec; }
pre { background: #f5f5f5; padding: 1em; overflow-x: auto; }
.banner { background: #fff3cd; border: 2px solid #d39e00; border-radius: 4px; padding: 0.6em 1em; margin: 0.8em 0; }
.findings li { margin-bottom: 0.4em; line-height: 1.4; }
"""

SYNTHETIC_BANNER = (
    "These images were made by ispkit's generators (the dataset carries a SYNTHETIC.txt marker or the "
    "experiment asks for synthetic data), not taken by a camera from real samples: the numbers check the method, "
    "they are not evidence about real data."
)
"""The banner a report shows at its top, after the headline "Synthetic data.", when its results say the data are synthetic."""


def new_figure(width: float, height: float) -> Figure:
    """An empty figure of ``width`` × ``height`` inches with constrained layout, on an Agg canvas."""
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save_png(fig: Figure, path: Path) -> bytes:
    """Render ``fig`` once, write it to ``path`` atomically and return the PNG bytes."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    data = buffer.getvalue()
    atomic_write(path, lambda tmp: tmp.write_bytes(data))
    return data


def save_figures(run_dir: str | os.PathLike[str], figures: Mapping[str, Figure], *, stale: str | Sequence[str] = ()) -> dict[str, bytes]:
    """Write each figure as ``run_dir/figures/<name>.png`` (atomically) and return the PNG bytes by name.

    ``stale`` are globs (one, or several: ``("views_*", "confusion")``) of the figures this report
    writes only sometimes: a PNG matching one that was not written now is removed, so that
    the folder holds no figure of an earlier report that this one does not show.
    """
    folder = Path(run_dir) / "figures"
    images = {name: save_png(figure, folder / f"{name}.png") for name, figure in figures.items()}
    for pattern in (stale,) if isinstance(stale, str) else stale:
        for path in folder.glob(f"{pattern}.png"):
            if path.stem not in images:
                path.unlink(missing_ok=True)
    return images


def embed_figure(png: bytes, caption: str) -> str:
    """A ``<figure>`` with the PNG as a data URI and the escaped ``caption``."""
    data = base64.b64encode(png).decode("ascii")
    return f'<figure><img src="data:image/png;base64,{data}" alt="{escape(caption)}"><figcaption>{escape(caption)}</figcaption></figure>'


def html_document(title: str, body: str, extra_css: str = "") -> str:
    """A complete HTML page: doctype, ``<head>`` with the escaped ``title`` and the inline CSS, ``body`` as is.

    ``extra_css`` is appended to the shared stylesheet; ``body`` must already be escaped.
    """
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{escape(title)}</title>\n<style>{CSS}{extra_css}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n"
    )


def write_page(
    run_dir: str | os.PathLike[str],
    title: str,
    *,
    task: str,
    metric: str,
    details: Iterable[str],
    summary: str,
    sections: Iterable[str],
    config_text: str | None,
    extra_css: str = "",
    synthetic: bool = False,
    findings: Sequence[str] = (),
) -> Path:
    """Write ``run_dir/report.html`` (atomically) and return its path.

    The page: ``title`` as heading; one line ``task: … · metric: … · <details>``; with
    ``synthetic``, the :data:`SYNTHETIC_BANNER` (``<div class="banner">``); with
    ``findings`` (plain sentences), a *Findings* section listing them; a *Summary*
    section holding ``summary``; the report's own ``sections`` (HTML lines, in order);
    and, when ``config_text`` is given, a *Configuration* section showing it verbatim.
    ``title``, ``task``, ``metric``, ``findings`` and ``config_text`` are escaped here;
    ``details``, ``summary`` and ``sections`` must already be.
    """
    meta = " · ".join([f"task: {escape(task)}", f"metric: {escape(metric)}", *details])
    parts = [f"<h1>{escape(title)}</h1>", f'<p class="meta">{meta}</p>']
    if synthetic:
        parts.append(f'<div class="banner"><strong>Synthetic data.</strong> {escape(SYNTHETIC_BANNER)}</div>')
    if findings:
        parts += ["<h2>Findings</h2>", '<ul class="findings">' + "".join(f"<li>{escape(line)}</li>" for line in findings) + "</ul>"]
    parts += ["<h2>Summary</h2>", f"<p>{summary}</p>", *sections]
    if config_text is not None:
        parts += ["<h2>Configuration</h2>", f"<pre>{escape(config_text)}</pre>"]
    return atomic_write_text(Path(run_dir) / "report.html", html_document(title, "\n".join(parts), extra_css))


def plot_confusion(cells: Sequence[Mapping[str, Any]], classes: Sequence[str] | None) -> Figure:
    """Confusion matrices side by side, one per cell of ``cells`` (e.g. a report's worst cells).

    Each cell is a mapping with ``"cell"`` (its name), ``"score"`` and ``"confusion"``
    (true × predicted class counts). A panel shows the counts coloured by their share of
    the true class's row (so a collapse is one bright column), rows and columns named by
    ``classes`` (``0, 1, …`` when ``None``), titled with the cell and its score.
    """
    if not cells:
        raise InputError("plot_confusion: no cells to draw")
    matrices = [np.asarray(c["confusion"], dtype=float) for c in cells]
    for c, m in zip(cells, matrices, strict=True):
        if m.ndim != 2 or m.shape[0] != m.shape[1] or m.size == 0 or not np.isfinite(m).all():
            raise InputError(f"plot_confusion: the confusion matrix of {c['cell']!r} must be a finite square (classes × classes) array; got shape {m.shape}")
    n = matrices[0].shape[0]
    names = list(classes) if classes is not None and len(classes) == n else [str(i) for i in range(n)]
    side = max(1.2 + 0.42 * n, 3.0)
    fig = new_figure(side * len(cells) + 1.2, side + 1.2)
    axes = fig.subplots(1, len(cells), squeeze=False)[0]
    for ax, cell, m in zip(axes, cells, matrices, strict=True):  # at least one cell: the colour bar's image is set
        rows = m.sum(axis=1, keepdims=True)
        share = np.divide(m, rows, out=np.zeros_like(m), where=rows > 0)
        image = ax.imshow(share, cmap="Blues", vmin=0.0, vmax=1.0, interpolation="nearest")
        for (i, j), count in np.ndenumerate(m):
            if count:
                ax.text(j, i, f"{count:g}", ha="center", va="center", fontsize=7, color="white" if share[i, j] > 0.6 else "black")
        ax.set_xticks(range(n), labels=names, rotation=45, ha="right", rotation_mode="anchor", fontsize=8)
        ax.set_yticks(range(n), labels=names, fontsize=8)
        ax.set_xlabel("predicted class")
        ax.set_ylabel("true class")
        ax.set_title(f"{textwrap.fill(str(cell['cell']), 30)}\nscore {fmt(cell.get('score'))}", fontsize=9)
    fig.colorbar(image, ax=list(axes), shrink=0.8, label="share of the true class (row)")
    return fig


def confusion_figures(worst: Sequence[Mapping[str, Any]], classes: Sequence[str] | None) -> dict[str, Figure]:
    """``{"confusion": figure}``: :func:`plot_confusion` of the cells of ``worst`` whose matrices were recorded
    (``{}`` when none was), for a report's figures (``stale`` must name ``"confusion"``)."""
    recorded = [c for c in worst if c["confusion"] is not None]
    return {"confusion": plot_confusion(recorded, classes)} if recorded else {}


def confusion_section(worst: Sequence[Mapping[str, Any]], images: Mapping[str, bytes], name: str = "confusion") -> list[str]:
    """The *Worst cells* section: the figure ``images[name]`` (from :func:`plot_confusion` of the recorded
    cells of ``worst``) and a line for each cell whose matrix was not recorded."""
    if not worst:
        return []
    parts = ["<h2>Worst cells: confusion matrices</h2>"]
    if name in images:
        parts.append(embed_figure(images[name], "true × predicted class counts summed over folds; colour: share of the true class"))
    missing = [c for c in worst if c.get("confusion") is None]
    if missing:
        cells = ", ".join(f"<code>{escape(c['cell'])}</code> ({fmt(c.get('score'))})" for c in missing)
        parts.append(f"<p>Confusion matrix not recorded for {cells}: units from a run before confusion matrices were recorded.</p>")
    return parts


def below_chance_table(below: Mapping[str, Any], metric: str) -> list[str]:
    """A *Below chance* section listing each flagged cell, its score and the class its predictions collapse to (empty when none)."""
    cells = below.get("cells") or []
    if not cells:
        return []
    rows = "".join(f'<tr><td>{escape(c["cell"])}</td><td class="num">{fmt(c["score"])}</td><td>{_collapse_cell(c.get("collapse"))}</td></tr>' for c in cells)
    return [
        "<h2>Below chance</h2>",
        f"<p>{escape(below.get('statement', ''))}</p>",
        f"<details{' open' if len(cells) <= 12 else ''}><summary>{len(cells)} cells below chance ({fmt(below.get('chance'))})</summary>"
        f"<table><thead><tr><th>cell</th><th>{escape(metric)}</th><th>predictions</th></tr></thead><tbody>{rows}</tbody></table></details>",
    ]


def _collapse_cell(collapse: Mapping[str, Any] | None) -> str:
    if collapse is None:
        return "not recorded"
    share = f"{collapse['share']:.0%}"
    if collapse["collapsed"]:
        return f"collapse to <strong>{escape(collapse['class'])}</strong> ({share} of predictions)"
    return f"no single class; most often {escape(collapse['class'])} ({share})"


def fmt(value: float | None) -> str:
    """Three decimals, or ``n/a`` for a missing or non-finite number."""
    if value is None or not np.isfinite(value):
        return "n/a"
    return f"{value:.3f}"


def num(value: float) -> str:
    """Three significant digits (``0.000123``, ``2.2``, ``1.23e+04``)."""
    return f"{value:.3g}"


def compact(values: Any) -> str:
    """A number or array as short text: three significant digits; more than 9 values as ``min … max (n values)``."""
    a = np.asarray(values, dtype=float)
    if a.ndim == 0:
        return num(float(a))
    flat = a.ravel()
    if flat.size > 9:
        return f"{num(flat.min())} … {num(flat.max())} ({flat.size} values)"
    return "[" + ", ".join(num(v) for v in flat) + "]"


def escape(text: str) -> str:
    """``text`` escaped for HTML."""
    return html.escape(str(text))
