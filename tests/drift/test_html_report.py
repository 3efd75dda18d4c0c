"""The report scaffolding shared by the three drift reports: figure files, the page, compact numbers."""

from __future__ import annotations

import re

import numpy as np
import pytest

from ispkit.drift.html_report import SYNTHETIC_BANNER, below_chance_table, compact, escape, new_figure, num, plot_confusion, save_figures, write_page
from ispkit.errors import InputError


def _figure(colour: str):
    fig = new_figure(1.0, 1.0)
    fig.add_subplot().set_facecolor(colour)
    return fig


def test_save_figures_writes_pngs_and_removes_only_stale_matches(tmp_path):
    figures = tmp_path / "figures"
    figures.mkdir()
    for name in ("views_old", "views_keep", "signature", "notes"):
        (figures / f"{name}.png").write_bytes(b"earlier")
    (figures / "views_text.txt").write_text("not a png")
    images = save_figures(tmp_path, {"signature": _figure("red"), "views_keep": _figure("blue")}, stale="views_*")
    assert sorted(images) == ["signature", "views_keep"]
    assert all(png.startswith(b"\x89PNG") for png in images.values())
    assert {p.name: p.read_bytes() == images.get(p.stem) for p in figures.iterdir()} == {
        "signature.png": True, "views_keep.png": True, "notes.png": False, "views_text.txt": False,
    }  # fmt: skip


def test_save_figures_without_stale_keeps_everything(tmp_path):
    (tmp_path / "figures").mkdir()
    (tmp_path / "figures" / "worst_pair.png").write_bytes(b"earlier")
    save_figures(tmp_path, {"matrix": _figure("red")})
    assert sorted(p.name for p in (tmp_path / "figures").iterdir()) == ["matrix.png", "worst_pair.png"]


def test_write_page_orders_the_sections_and_escapes_title_and_config(tmp_path):
    path = write_page(
        tmp_path, "a <b> report", task="x", metric="a<b", details=["2 folds", "<i>d</i>"], summary="all <i>fine</i>",
        sections=["<h2>One</h2>", "<p>1</p>"], config_text="name: <x>\n", extra_css="td.bad { color: red; }",
    )  # fmt: skip
    page = path.read_text(encoding="utf-8")
    assert path == tmp_path / "report.html"
    assert "<title>a &lt;b&gt; report</title>" in page and "td.bad { color: red; }</style>" in page
    body = page[page.index("<body>") : page.index("</body>")]
    assert re.findall(r"<h[12]>([^<]*)</h[12]>", body) == ["a &lt;b&gt; report", "Summary", "One", "Configuration"]
    assert '<p class="meta">task: x · metric: a&lt;b · 2 folds · <i>d</i></p>\n<h2>Summary</h2>\n<p>all <i>fine</i></p>\n<h2>One</h2>\n<p>1</p>' in body
    assert "<pre>name: &lt;x&gt;\n</pre>" in body


def test_write_page_without_config_has_no_configuration_section(tmp_path):
    page = write_page(tmp_path, "t", task="t", metric="m", details=[], summary="s", sections=[], config_text=None).read_text(encoding="utf-8")
    assert "Configuration" not in page and page.count("<h2>") == 1


@pytest.mark.parametrize(
    ("values", "text"),
    [(0.000123456, "0.000123"), (2.2, "2.2"), (np.float32(12345.6), "1.23e+04"), ([1.0, 0.5], "[1, 0.5]"), (np.eye(3), "[1, 0, 0, 0, 1, 0, 0, 0, 1]"),
     (np.arange(10.0).reshape(2, 5), "0 … 9 (10 values)"), ([[]], "[]")],
)  # fmt: skip
def test_compact_numbers(values, text):
    assert compact(values) == text


def test_num_is_three_significant_digits():
    assert [num(v) for v in (1 / 3, 1e-7, 150.0)] == ["0.333", "1e-07", "150"]


def test_write_page_puts_the_banner_and_the_findings_first(tmp_path):
    page = write_page(tmp_path, "t", task="t", metric="m", details=[], summary="s", sections=["<h2>One</h2>"], config_text=None, synthetic=True,
                      findings=["ISP drift lowers accuracy by 0.012 (95% CI −0.004 to 0.028): a < b", "second"]).read_text(encoding="utf-8")  # fmt: skip
    body = page[page.index("<body>") :]
    banner = f'<div class="banner"><strong>Synthetic data.</strong> {escape(SYNTHETIC_BANNER)}</div>'
    assert body.index('<p class="meta">') < body.index(banner) < body.index("<h2>Findings</h2>") < body.index("<h2>Summary</h2>") < body.index("<h2>One</h2>")
    assert '<ul class="findings"><li>ISP drift lowers accuracy by 0.012 (95% CI −0.004 to 0.028): a &lt; b</li><li>second</li></ul>' in body
    plain = write_page(tmp_path, "t", task="t", metric="m", details=[], summary="s", sections=[], config_text=None).read_text(encoding="utf-8")
    assert "banner" not in plain[plain.index("<body>") :] and "Findings" not in plain


def test_plot_confusion_colours_each_row_by_its_share_and_writes_the_counts():
    cells = [{"cell": "a → noise", "score": 0.1, "confusion": [[0, 8, 2], [0, 10, 0], [0, 0, 0]]}, {"cell": "b → b", "score": 0.9, "confusion": np.eye(3) * 5}]
    fig = plot_confusion(cells, ["x", "y", "z"])
    first = fig.axes[0]
    np.testing.assert_allclose(first.images[0].get_array(), [[0, 0.8, 0.2], [0, 1, 0], [0, 0, 0]])  # an empty row stays 0
    assert sorted(t.get_text() for t in first.texts) == ["10", "2", "8"]
    assert first.get_title() == "a → noise\nscore 0.100" and [t.get_text() for t in first.get_xticklabels()] == ["x", "y", "z"]
    assert first.get_xlabel() == "predicted class" and first.get_ylabel() == "true class"
    assert len(fig.axes) == 3  # two panels and one colour bar
    with pytest.raises(InputError, match="'c' must be a finite square"):
        plot_confusion([{"cell": "c", "score": 0.1, "confusion": [[1.0, float("nan")], [0.0, 1.0]]}], None)
    with pytest.raises(InputError, match="no cells"):
        plot_confusion([], None)


def test_below_chance_table_names_the_collapse_or_says_not_recorded():
    assert below_chance_table({"chance": 0.25, "cells": [], "statement": "none"}, "accuracy") == []
    below = {"chance": 0.25, "statement": "2 cells <below>", "cells": [
        {"cell": "a → <b>", "score": 0.05, "collapse": {"class": "x&y", "index": 0, "share": 0.97, "collapsed": True}},
        {"cell": "c", "score": 0.2, "collapse": {"class": "y", "index": 1, "share": 0.4, "collapsed": False}},
        {"cell": "d", "score": 0.1, "collapse": None}]}  # fmt: skip
    html = "".join(below_chance_table(below, "accuracy"))
    assert "<p>2 cells &lt;below&gt;</p>" in html and "<details open>" in html
    assert '<tr><td>a → &lt;b&gt;</td><td class="num">0.050</td><td>collapse to <strong>x&amp;y</strong> (97% of predictions)</td></tr>' in html
    assert "<td>no single class; most often y (40%)</td>" in html and "<td>not recorded</td>" in html
