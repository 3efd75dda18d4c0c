"""The scaffolding of ispkit's reports: figures without pyplot, PNGs, one self-contained HTML page.

Every report (drift synthesis, forensics, adjustment) is a single HTML file with its
figures embedded as base64 PNG data URIs, inline CSS, no external resources and no
JavaScript, so it can be mailed or archived with the run. Figures are
:class:`matplotlib.figure.Figure` objects on an Agg canvas, made without pyplot, so no
global state is touched. The three report modules share one structure, written here:
:func:`save_figures` writes a run's figures under ``run_dir/figures/`` (and removes those
an earlier report wrote but this one does not), and :func:`write_page` writes
``run_dir/report.html`` -- heading, one-line description, summary, the report's own
sections, the run's configuration.

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
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..atomic import atomic_write, atomic_write_text

__all__ = [
    "DPI", "CSS", "new_figure", "save_png", "save_figures", "embed_figure", "html_document", "write_page", "fmt", "num", "compact", "escape",
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
"""


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


def save_figures(run_dir: str | os.PathLike[str], figures: Mapping[str, Figure], *, stale: str | None = None) -> dict[str, bytes]:
    """Write each figure as ``run_dir/figures/<name>.png`` (atomically) and return the PNG bytes by name.

    ``stale`` is a glob (e.g. ``"views_*"``) of the figures this report writes only
    sometimes: a PNG matching it that was not written now is removed, so that the folder
    holds no figure of an earlier report that this one does not show.
    """
    folder = Path(run_dir) / "figures"
    images = {name: save_png(figure, folder / f"{name}.png") for name, figure in figures.items()}
    if stale is not None:
        for path in folder.glob(f"{stale}.png"):
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
) -> Path:
    """Write ``run_dir/report.html`` (atomically) and return its path.

    The page: ``title`` as heading; one line ``task: … · metric: … · <details>``; a
    *Summary* section holding ``summary``; the report's own ``sections`` (HTML lines, in
    order); and, when ``config_text`` is given, a *Configuration* section showing it
    verbatim. ``title``, ``task``, ``metric`` and ``config_text`` are escaped here;
    ``details``, ``summary`` and ``sections`` must already be.
    """
    meta = " · ".join([f"task: {escape(task)}", f"metric: {escape(metric)}", *details])
    parts = [f"<h1>{escape(title)}</h1>", f'<p class="meta">{meta}</p>', "<h2>Summary</h2>", f"<p>{summary}</p>", *sections]
    if config_text is not None:
        parts += ["<h2>Configuration</h2>", f"<pre>{escape(config_text)}</pre>"]
    return atomic_write_text(Path(run_dir) / "report.html", html_document(title, "\n".join(parts), extra_css))


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
