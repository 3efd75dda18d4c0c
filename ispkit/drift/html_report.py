"""Building blocks of ispkit's reports: figures without pyplot, PNGs, one self-contained HTML page.

Every report (drift synthesis, forensics, adjustment) is a single HTML file with its
figures embedded as base64 PNG data URIs, inline CSS, no external resources and no
JavaScript, so it can be mailed or archived with the run. Figures are
:class:`matplotlib.figure.Figure` objects on an Agg canvas, made without pyplot, so no
global state is touched.

>>> fmt(0.12345), fmt(float("nan")), fmt(None)
('0.123', 'n/a', 'n/a')
>>> escape("<b>")
'&lt;b&gt;'
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..atomic import atomic_write

__all__ = ["DPI", "CSS", "new_figure", "save_png", "embed_figure", "html_document", "fmt", "escape"]

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


def fmt(value: float | None) -> str:
    """Three decimals, or ``n/a`` for a missing or non-finite number."""
    if value is None or not np.isfinite(value):
        return "n/a"
    return f"{value:.3f}"


def escape(text: str) -> str:
    """``text`` escaped for HTML."""
    return html.escape(str(text))
