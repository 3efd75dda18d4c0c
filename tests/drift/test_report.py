"""Tests of the drift-synthesis report: figures, PNG files and the self-contained HTML page."""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path

import numpy as np
import pytest
from matplotlib.patches import Rectangle
from PIL import Image

from ispkit.drift.html_report import SYNTHETIC_BANNER, escape
from ispkit.drift.report import WORST_PAIR_BORDER, WORST_PAIR_PERCENTILE, difference_scale, plot_corruptions, plot_matrix, plot_worst_pair, write_report
from ispkit.drift.results import SynthesisResults
from ispkit.drift.statistics import signed
from ispkit.errors import InputError

PIPELINES = ["bi,s,me", "me,u,ga", "ma,s,no"]


def _classification(pipelines: list[str] = PIPELINES) -> SynthesisResults:
    """3 pipelines, 2 folds, 2 corruptions × 2 severities; cell (0, 1) is 0.90 ± 0.05."""
    accuracy = np.array(
        [
            [[0.80, 0.84], [0.95, 0.85], [0.70, 0.74]],
            [[0.60, 0.64], [0.86, 0.84], [0.75, 0.75]],
            [[0.66, 0.70], [0.72, 0.68], [0.81, 0.83]],
        ]
    )
    corrupted = np.array(
        [
            [[[0.50, 0.52], [0.40, 0.42]], [[0.61, 0.63], [0.55, 0.57]]],
            [[[0.45, 0.47], [0.35, 0.37]], [[0.58, 0.60], [0.51, 0.53]]],
            [[[0.55, 0.53], [0.30, 0.32]], [[0.66, 0.64], [0.60, 0.58]]],
        ]
    )
    return SynthesisResults(
        task="classification",
        metric="accuracy",
        train_pipelines=list(pipelines),
        test_pipelines=list(pipelines),
        folds=2,
        metrics={"accuracy": accuracy},
        corruptions=["gaussian_noise", "motion_blur"],
        severities=[1, 3],
        corruption_metrics={"accuracy": corrupted},
    )


def _segmentation() -> SynthesisResults:
    rng = np.random.default_rng(3)
    iou = rng.uniform(0.4, 0.8, (3, 3, 2))
    corrupted = rng.uniform(0.2, 0.6, (3, 2, 2, 2))
    return SynthesisResults(
        task="segmentation",
        metric="iou",
        train_pipelines=PIPELINES,
        test_pipelines=PIPELINES,
        folds=2,
        metrics={"iou": iou, "dice": 2 * iou / (1 + iou)},
        corruptions=["defocus_blur", "jpeg_compression"],
        severities=[2, 5],
        corruption_metrics={"iou": corrupted, "dice": 2 * corrupted / (1 + corrupted)},
    )


def _no_corruptions(pipelines: list[str] = PIPELINES) -> SynthesisResults:
    full = _classification(pipelines)
    return SynthesisResults(
        task=full.task,
        metric=full.metric,
        train_pipelines=full.train_pipelines,
        test_pipelines=full.test_pipelines,
        folds=full.folds,
        metrics=full.metrics,
    )


def _views(h: int = 6, w: int = 8) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    a = rng.uniform(0, 1, (3, h, w))
    return a, np.clip(a + rng.normal(0, 0.1, a.shape), 0, 1)


def _texts(fig) -> dict[tuple[float, float], str]:
    """Annotations of the heatmap axes by cell position ``(column, row)``."""
    return {tuple(t.get_position()): t.get_text() for t in fig.axes[0].texts}


def _fmt(value: float | None) -> str:
    return "n/a" if value is None or not np.isfinite(value) else f"{value:.3f}"


def _embedded_pngs(page: str) -> list[bytes]:
    return [base64.b64decode(d) for d in re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)]


# -- figures --------------------------------------------------------------------------


def test_matrix_annotates_mean_and_std_of_every_cell() -> None:
    results = _classification()
    fig = plot_matrix(results)
    ax = fig.axes[0]
    texts = _texts(fig)
    assert len(texts) == 9
    assert texts[(1, 0)] == "0.90\n±0.05"
    assert texts[(0, 1)] == "0.62\n±0.02"
    assert texts[(2, 1)] == "0.75\n±0.00"
    assert ax.get_ylabel() == "trained on" and ax.get_xlabel() == "tested on"
    assert [t.get_text() for t in ax.get_xticklabels()] == PIPELINES
    assert [t.get_text() for t in ax.get_yticklabels()] == PIPELINES
    assert all(t.get_rotation() == 45 for t in ax.get_xticklabels())
    np.testing.assert_allclose(ax.images[0].get_array(), results.mean())
    assert fig.axes[1].get_ylabel() == "accuracy"  # the colour bar


def test_matrix_text_contrasts_with_its_cell() -> None:
    fig = plot_matrix(_classification())
    by_text = {t.get_position(): t.get_color() for t in fig.axes[0].texts}
    assert by_text[(1, 0)] == "black"  # 0.90, the top of viridis: yellow
    assert by_text[(0, 1)] == "white"  # 0.62, near the bottom: dark blue


def test_matrix_outlines_the_in_distribution_cells() -> None:
    results = _classification(["a", "b", "c"])
    results.test_pipelines = ["c", "a", "b"]  # own cells off the diagonal
    results.metrics["accuracy"] = results.metrics["accuracy"][:, [2, 0, 1]]
    outlines = [p for p in plot_matrix(results).axes[0].patches if isinstance(p, Rectangle)]
    corners = sorted((r.get_x(), r.get_y()) for r in outlines)
    assert corners == [(-0.5, 1.5), (0.5, -0.5), (1.5, 0.5)]  # (column − 0.5, row − 0.5): a→1, b→2, c→0


def test_matrix_size_grows_with_the_number_of_pipelines() -> None:
    names = [f"{d},{s},{m}" for d in ("bi", "me") for s in ("s", "u") for m in ("me", "ga", "no")]
    results = SynthesisResults(
        task="classification",
        metric="accuracy",
        train_pipelines=names,
        test_pipelines=names,
        folds=1,
        metrics={"accuracy": np.full((12, 12, 1), 0.5)},
    )
    small, large = plot_matrix(_classification()).get_size_inches(), plot_matrix(results).get_size_inches()
    assert np.all(large > small)


def test_heatmaps_share_the_colour_scale() -> None:
    results = _classification()
    matrix, corruptions = plot_matrix(results), plot_corruptions(results)
    clim = matrix.axes[0].images[0].get_clim()
    assert corruptions.axes[0].images[0].get_clim() == clim
    low = results.corruption_mean().mean(axis=2).min()
    assert clim == pytest.approx((low, results.mean().max()))


def test_corruptions_average_over_severities_and_folds() -> None:
    results = _classification()
    fig = plot_corruptions(results)
    ax = fig.axes[0]
    expected = results.corruption_mean().mean(axis=2)
    np.testing.assert_allclose(ax.images[0].get_array(), expected)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["gaussian_noise", "motion_blur"]
    assert _texts(fig)[(0, 0)].startswith(f"{expected[0, 0]:.2f}\n±")


def test_segmentation_plots_the_requested_metric() -> None:
    results = _segmentation()
    np.testing.assert_allclose(plot_matrix(results, "dice").axes[0].images[0].get_array(), results.mean("dice"))
    fig = plot_corruptions(results, "dice")
    np.testing.assert_allclose(fig.axes[0].images[0].get_array(), results.corruption_mean("dice").mean(axis=2))
    assert fig.axes[1].get_ylabel() == "dice"
    with pytest.raises(InputError, match=r"unknown metric 'dic'.*did you mean 'dice'"):
        plot_matrix(results, "dic")


def test_no_corruptions_says_so() -> None:
    fig = plot_corruptions(_no_corruptions())
    assert [t.get_text() for t in fig.axes[0].texts] == ["no corruptions evaluated"]
    assert not fig.axes[0].images
    fig.canvas.draw()


def test_worst_pair_shows_the_absolute_difference_per_channel() -> None:
    a, b = _views()
    fig = plot_worst_pair(a, b, "bi,s,me", "me,u,ga", 0.25)
    panels = fig.axes[:5]
    np.testing.assert_allclose(panels[0].images[0].get_array(), a.transpose(1, 2, 0))
    np.testing.assert_allclose(panels[1].images[0].get_array(), b.transpose(1, 2, 0))
    vmax = difference_scale(np.abs(a - b))
    for channel, ax in enumerate(panels[2:]):
        np.testing.assert_allclose(ax.images[0].get_array(), np.abs(a[channel] - b[channel]))
        assert ax.images[0].get_clim() == pytest.approx((0.0, vmax))
    assert len(fig.axes) == 8  # three colour bars
    assert "bi,s,me" in panels[0].get_title() and "me,u,ga" in panels[1].get_title()
    assert "0.250" in fig.get_suptitle()


@pytest.mark.parametrize(
    ("a", "b", "message"),
    [
        (np.zeros((6, 8, 3)), np.zeros((3, 6, 8)), r"view_a must be a numpy float array \(3, H, W\).*shape \(6, 8, 3\)"),
        (np.zeros((3, 6, 8)), np.zeros((6, 8)), r"view_b .*got shape \(6, 8\)"),
        (np.zeros((3, 6, 8), dtype=np.uint8), np.zeros((3, 6, 8)), "got dtype uint8"),
        ([[[0.0]]] * 3, np.zeros((3, 1, 1)), "got list"),
        (np.zeros((3, 6, 8)), np.zeros((3, 6, 6)), r"same shape; got \(3, 6, 8\) and \(3, 6, 6\)"),
    ],
)
def test_worst_pair_rejects_bad_views(a, b, message: str) -> None:
    with pytest.raises(InputError, match=message):
        plot_worst_pair(a, b, "x", "y", 0.1)


# -- report ---------------------------------------------------------------------------


def test_report_writes_pngs_and_a_self_contained_page(tmp_path: Path) -> None:
    results = _classification()
    path = write_report(tmp_path / "run", results, worst_views=_views(), config_text="seed: 1\nnote: a < b & c")
    assert path == tmp_path / "run" / "report.html"
    for name in ("matrix", "corruptions", "worst_pair"):
        file = tmp_path / "run" / "figures" / f"{name}.png"
        with Image.open(file) as image:
            assert image.format == "PNG" and image.width > 0 and image.height > 0
    page = path.read_text(encoding="utf-8")
    pngs = _embedded_pngs(page)
    assert page.count("data:image/png") == len(pngs) == 3
    assert pngs[0] == (tmp_path / "run" / "figures" / "matrix.png").read_bytes()
    for data in pngs:
        with Image.open(io.BytesIO(data)) as image:
            assert image.format == "PNG"
    assert "http://" not in page and "https://" not in page
    assert "<script" not in page and "<link" not in page
    assert "<pre>seed: 1\nnote: a &lt; b &amp; c</pre>" in page
    for name in PIPELINES:
        assert f"trained on {name}</caption>" in page


def test_report_summary_numbers(tmp_path: Path) -> None:
    results = _classification()
    summary = results.summary()
    page = write_report(tmp_path, results).read_text(encoding="utf-8")
    for key in ("in_distribution", "under_isp_drift", "under_corruptions", "isp_drop", "corruption_drop", "drop_ratio"):
        assert _fmt(summary[key]) in page, key
    pair = summary["worst_pair"]
    worst = f"trained on <code>{pair['train']}</code>, tested on <code>{pair['test']}</code> (drop {_fmt(pair['drop'])})"
    assert worst in page
    assert "ratio ISP / corruptions: " + _fmt(summary["drop_ratio"]) in page


def test_report_ranking_and_corruption_tables(tmp_path: Path) -> None:
    results = _classification()
    page = write_report(tmp_path, results).read_text(encoding="utf-8")
    best = results.rankings()["bi,s,me"][0]  # 0.90 ± 0.05 on me,u,ga
    assert best.test == "me,u,ga"
    assert f'<td class="num">1</td><td>me,u,ga</td><td class="num">{best.mean:.3f} ± {best.std:.3f}</td>' in page
    assert '<tr class="own"><td class="num">2</td><td>bi,s,me</td>' in page
    table = results.corruption_mean().mean(axis=0)  # (C, S)
    drops = [c for c in results.findings()["corruption_cells"] if c["corruption"] == "motion_blur"]
    row = "".join(
        f'<td class="num">{v:.3f}<br><small>drop {signed(d["estimate"])} ({signed(d["low"])} to {signed(d["high"])})</small></td>'
        for v, d in zip(table[1], drops, strict=True)
    )
    assert f"<tr><td>motion_blur</td>{row}</tr>" in page
    assert "<th>severity 1</th><th>severity 3</th>" in page


def test_report_without_worst_views(tmp_path: Path) -> None:
    results = _classification()
    write_report(tmp_path, results, worst_views=_views())
    page = write_report(tmp_path, results).read_text(encoding="utf-8")
    assert page.count("data:image/png") == len(_embedded_pngs(page)) == 2
    assert not (tmp_path / "figures" / "worst_pair.png").exists()  # the earlier one is gone
    assert "Worst pair</h2>" not in page and "<pre>" not in page


def test_report_escapes_user_strings(tmp_path: Path) -> None:
    names = ["<b>bold</b>", "me,u,ga", "a&b"]
    page = write_report(tmp_path, _classification(names), title="<i>study</i>").read_text(encoding="utf-8")
    assert "<b>" not in page and "<i>" not in page
    assert "&lt;b&gt;bold&lt;/b&gt;" in page and "a&amp;b" in page
    assert "<title>&lt;i&gt;study&lt;/i&gt;</title>" in page


def test_report_without_corruptions(tmp_path: Path) -> None:
    results = _no_corruptions()
    page = write_report(tmp_path, results).read_text(encoding="utf-8")
    assert "under corruptions: n/a" in page and "ratio ISP / corruptions: n/a" in page
    assert "No corruptions were evaluated." in page
    assert _fmt(results.summary()["isp_drop"]) in page
    with Image.open(tmp_path / "figures" / "corruptions.png") as image:
        assert image.width > 0


def test_report_with_a_single_pipeline_shows_na(tmp_path: Path) -> None:
    results = SynthesisResults(
        task="classification",
        metric="accuracy",
        train_pipelines=["a"],
        test_pipelines=["a"],
        folds=2,
        metrics={"accuracy": np.array([[[0.8, 0.9]]])},
    )
    page = write_report(tmp_path, results).read_text(encoding="utf-8")
    assert "in distribution: 0.850; under ISP drift: n/a" in page
    assert "Worst pair: n/a." in page
    with pytest.raises(InputError, match="no pair of different pipelines"):
        write_report(tmp_path, results, worst_views=_views())


def test_report_for_segmentation_uses_the_primary_metric(tmp_path: Path) -> None:
    results = _segmentation()
    page = write_report(tmp_path, results, worst_views=_views()).read_text(encoding="utf-8")
    assert "metric: iou (also recorded: dice)" in page
    assert f"Mean iou in distribution: {_fmt(results.summary()['in_distribution'])}" in page
    assert "<th>iou</th>" in page and "defocus_blur" in page


def test_report_rejects_bad_worst_views(tmp_path: Path) -> None:
    a, _ = _views()
    with pytest.raises(InputError, match="pair"):
        write_report(tmp_path, _classification(), worst_views=(a,))
    with pytest.raises(InputError, match=r"expected|must be a numpy float array \(3, H, W\)"):
        write_report(tmp_path, _classification(), worst_views=(a.transpose(1, 2, 0), a))


# -- findings, banner, below chance, difference scale ---------------------------------------------


def test_difference_scale_shows_the_inside_of_the_image_not_its_border() -> None:
    rng = np.random.default_rng(1)
    a = rng.uniform(0.2, 0.8, (3, 40, 48))
    b = a + rng.uniform(0.0, 0.02, a.shape)  # small differences everywhere inside
    b[:, :, :2] = 1.0  # demosaicing edge effects: the two left columns differ a lot
    b[:, -2:, :] = 0.0
    diff = np.abs(a - b)
    inner = diff[:, WORST_PAIR_BORDER:-WORST_PAIR_BORDER, WORST_PAIR_BORDER:-WORST_PAIR_BORDER]
    top = difference_scale(diff)
    assert top == pytest.approx(np.percentile(inner, WORST_PAIR_PERCENTILE)) and top < 0.02 < 0.3 < np.percentile(diff, 99.5)
    fig = plot_worst_pair(a, b, "bi,s,me", "me,u,ga", 0.1)
    for ax in fig.axes[2:5]:
        assert ax.images[0].get_clim() == pytest.approx((0.0, top))
    bars = fig.axes[5:]
    assert len(bars) == 3 and all(bar.get_ylabel() == f"|A − B|, scale 0 to {top:.3g}" for bar in bars)
    assert fig.get_suptitle().endswith(
        f"difference scale 0 to {top:.3g}: the 99th percentile of |A − B| away from a 4-pixel border; larger differences saturate"
    )
    assert [im.colorbar.extend for im in (ax.images[0] for ax in fig.axes[2:5])] == ["max"] * 3  # larger values saturate, and the bar says so
    assert difference_scale(np.zeros((3, 4, 4))) == 1.0 and difference_scale(np.full((3, 4, 4), 0.5)) == 0.5  # tiny or identical views


def _with_classes(synthetic: bool = True, confusion: bool = True) -> SynthesisResults:
    """``_classification`` with three classes; corruption cells at 0.05 whose predictions all name class 'eosinophil'."""
    full = _classification()
    corrupted = {"accuracy": np.full_like(full.corruption_metrics["accuracy"], 0.05)}
    right = np.broadcast_to(np.diag([10.0, 10.0, 10.0]), (3, 3, 3, 3)).copy()
    wrong = np.zeros((3, 2, 2, 3, 3))
    wrong[..., 1] = 10.0
    return SynthesisResults(
        task=full.task, metric=full.metric, train_pipelines=full.train_pipelines, test_pipelines=full.test_pipelines, folds=full.folds,
        metrics=full.metrics, corruptions=full.corruptions, severities=full.severities, corruption_metrics=corrupted,
        classes=["basophil", "eosinophil", "<lymphocyte>"], synthetic=synthetic, confusion=right if confusion else None,
        corruption_confusion=wrong if confusion else None,
    )  # fmt: skip


def _section(page: str, heading: str) -> str:
    start = page.index(f"<h2>{heading}</h2>")
    end = page.find("<h2>", start + 1)
    return page[start : end if end >= 0 else len(page)]


def test_report_opens_with_the_findings_in_words(tmp_path: Path) -> None:
    results = _with_classes()
    page = write_report(tmp_path, results).read_text(encoding="utf-8")
    headings = re.findall(r"<h2>([^<]*)</h2>", page)
    assert headings[:3] == ["Findings", "Summary", "Below chance"]
    items = re.findall(r"<li>(.*?)</li>", _section(page, "Findings"))
    assert items == [escape(s) for s in results.findings()["statements"]]
    assert any(item.startswith("ISP drift ") and "95% CI" in item and "fold noise" in item for item in items)


def test_report_banner_iff_synthetic(tmp_path: Path) -> None:
    synthetic = write_report(tmp_path / "s", _with_classes(synthetic=True)).read_text(encoding="utf-8")
    real = write_report(tmp_path / "r", _with_classes(synthetic=False)).read_text(encoding="utf-8")
    banner = f'<div class="banner"><strong>Synthetic data.</strong> {escape(SYNTHETIC_BANNER)}</div>'
    assert synthetic.count('class="banner"') == 1 and banner in synthetic
    assert synthetic.index(banner) < synthetic.index("<h2>Findings</h2>")  # at the top, before anything else is said
    assert 'class="banner"' not in real and "Synthetic data" not in real


def test_report_flags_below_chance_with_the_collapse_class(tmp_path: Path) -> None:
    page = write_report(tmp_path, _with_classes()).read_text(encoding="utf-8")
    below = _section(page, "Below chance")
    assert (
        "12 of 21 cells score below chance (1/3 = 0.333): 12 corruption cells (gaussian_noise, motion_blur). Their predictions collapse to &#x27;eosinophil&#x27; in 12."
        in below
    )
    assert below.count("collapse to <strong>eosinophil</strong> (100% of predictions)") == 12
    assert "<td>bi,s,me → gaussian_noise (severity 1)</td>" in below
    worst = _section(page, "Worst cells: confusion matrices")
    assert (tmp_path / "figures" / "confusion.png").read_bytes() in _embedded_pngs(worst)
    assert "&lt;lymphocyte&gt;" not in worst  # class names are in the figure, not raw in the page


def test_report_without_recorded_matrices_says_not_recorded(tmp_path: Path) -> None:
    write_report(tmp_path, _with_classes())
    page = write_report(tmp_path, _with_classes(confusion=False)).read_text(encoding="utf-8")
    assert not (tmp_path / "figures" / "confusion.png").exists()  # the earlier report's is gone
    assert (
        "<p>Confusion matrix not recorded for <code>me,u,ga → bi,s,me</code> (0.620), <code>bi,s,me → gaussian_noise (severity 1)</code> (0.050): "
        "units from a run before confusion matrices were recorded.</p>"
    ) in page
    assert page.count("not recorded") >= 13  # 12 flagged cells and the worst cells' line
    assert "have no confusion matrix (not recorded)" in page


def test_report_lists_the_pairs_beyond_fold_noise(tmp_path: Path) -> None:
    results = _with_classes()
    found = [p for p in results.findings()["pairs"] if p["distinguishable"]]
    section = _section(write_report(tmp_path, results).read_text(encoding="utf-8"), "Pairs that differ by more than fold noise")
    assert section.count("<tr><td>") == len(found) > 0
    for pair in found:
        assert f'<tr><td>{pair["train"]}</td><td>{pair["test"]}</td><td class="num">{signed(pair["estimate"])}</td>' in section
