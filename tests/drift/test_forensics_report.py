"""Tests of the drift-forensics report: the signature and views figures, PNGs and the HTML page."""

from __future__ import annotations

import base64
import io
import math
import re

import numpy as np
import pytest
import torch
from PIL import Image

from ispkit.drift.forensics import ForensicsResults, ForensicsRun
from ispkit.drift.forensics_report import plot_signature, plot_views, write_forensics_report
from ispkit.drift.html_report import escape
from ispkit.errors import InputError
from ispkit.pipeline import Pipeline

INF = math.inf
LAMBDAS = [0.0, 1.0, INF]
SUBSETS = ["all", "gamma", "white_balance"]
#            λ = 0   1     ∞        (metric falls as λ falls)
METRIC = {"all": [0.20, 0.55, 0.912], "gamma": [0.60, 0.89, 0.912], "white_balance": [0.40, 0.88, 0.912]}
DISTANCE = {"all": [0.30, 0.05, 0.0], "gamma": [0.12, 0.01, 0.0], "white_balance": [0.20, 0.02, 0.0]}
GAMMA = {0.0: 4.5, 1.0: 2.6, INF: 2.2}
GAINS = {0.0: [-0.6, 2.0, 9.0], 1.0: [-0.7, 1.9, 3.8], INF: [-0.6567, 1.9673, 3.5304]}


def _results(lambdas: list[float] = LAMBDAS, subsets: list[str] = SUBSETS) -> ForensicsResults:
    reference = {"gamma.gamma": 2.2, "white_balance.gains": GAINS[INF], "denoise.kernel": np.full((5, 5), 0.04).tolist()}
    runs = []
    for subset in subsets:
        for lam in lambdas:
            i = LAMBDAS.index(lam)
            params = dict(reference)
            if subset in ("all", "gamma"):
                params["gamma.gamma"] = GAMMA[lam]
            if subset in ("all", "white_balance"):
                params["white_balance.gains"] = GAINS[lam]
            runs.append(ForensicsRun(subset, lam, METRIC[subset][i], DISTANCE[subset][i], 1.0 - METRIC[subset][i], params))
    return ForensicsResults(
        task="classification",
        metric="accuracy",
        pipeline="bi,s,ga",
        distance="l2",
        baseline=0.912,
        subsets=list(subsets),
        lambdas=list(lambdas),
        reference=reference,
        bounds={"gamma.gamma": [0.1, 10.0], "white_balance.gains": [-16.0, 16.0], "denoise.kernel": [-1.0, 1.0]},
        runs=runs,
        tolerance=0.05,
    )


def _subset_lines(ax, subsets):
    return [line for line in ax.lines if line.get_label() in subsets]


# -- plot_signature -------------------------------------------------------------------


def test_signature_lines_equal_the_metric_table():
    results = _results()
    fig = plot_signature(results)
    left, right = fig.axes[:2]
    lines = _subset_lines(left, SUBSETS)
    assert [line.get_label() for line in lines] == SUBSETS
    np.testing.assert_allclose([line.get_ydata() for line in lines], results.table("metric"))
    assert left.get_xscale() == "symlog"
    assert [t.get_text() for t in left.get_xticklabels()] == ["0", "1", "∞"]
    xs = lines[0].get_xdata()
    assert xs[0] == 0 and xs[0] < xs[1] < xs[2] and np.isfinite(xs[2])
    baseline = [line for line in left.lines if line.get_linestyle() == "--"]
    floor = [line for line in left.lines if line.get_linestyle() == ":"]
    assert baseline[0].get_ydata()[0] == pytest.approx(0.912)
    assert floor[0].get_ydata()[0] == pytest.approx(0.862)
    # right: metric against distance, every point labelled with its λ
    points = _subset_lines(right, SUBSETS)
    np.testing.assert_allclose([p.get_xdata() for p in points], results.table("distance"))
    np.testing.assert_allclose([p.get_ydata() for p in points], results.table("metric"))
    assert [p.get_color() for p in points] == [line.get_color() for line in lines]
    assert sum(t.get_text() == "λ=∞" for t in right.texts) == len(SUBSETS)
    assert len(right.texts) == len(SUBSETS) * len(LAMBDAS)
    assert right.get_xscale() == "symlog"  # d = 0 at λ = ∞
    assert "l2" in right.get_xlabel()


def test_signature_sorts_lambdas_and_uses_log_distance_when_all_positive():
    results = _results(lambdas=[1.0, 0.0])
    for r in results.runs:
        r.distance += 0.5
    fig = plot_signature(results)
    left, right = fig.axes[:2]
    lines = _subset_lines(left, SUBSETS)
    np.testing.assert_allclose(lines[0].get_ydata(), [METRIC["all"][0], METRIC["all"][1]])
    assert [t.get_text() for t in left.get_xticklabels()] == ["0", "1"]
    assert right.get_xscale() == "log"


def test_signature_rejects_empty_results():
    with pytest.raises(InputError, match="nothing to plot"):
        plot_signature(_results(subsets=[]))


# -- plot_views -----------------------------------------------------------------------


def test_views_grid_clips_and_titles():
    rng = np.random.default_rng(0)
    views = {lam: rng.uniform(-0.5, 1.5, (5, 3, 8, 12)) for lam in LAMBDAS}
    fig = plot_views(views, LAMBDAS, "all", {0.0: 0.2, 1.0: 0.55})
    assert len(fig.axes) == 4 * 3  # at most 4 rows
    axes = np.array(fig.axes).reshape(4, 3)
    np.testing.assert_allclose(axes[2, 1].images[0].get_array(), np.clip(views[1.0][2], 0, 1).transpose(1, 2, 0))
    assert axes[0, 0].get_title() == "λ = 0\n0.200"
    assert axes[0, 2].get_title() == "λ = ∞\nn/a"


def test_views_rejects_bad_shapes():
    with pytest.raises(InputError, match=r"\(N, 3, H, W\)"):
        plot_views({0.0: np.zeros((2, 8, 8))}, [0.0], "all", {})
    with pytest.raises(InputError, match="no views"):
        plot_views({}, [0.0], "all", {})


# -- write_forensics_report -----------------------------------------------------------


@pytest.fixture
def run(tmp_path):
    """A run folder with found pipelines (gamma changed) for every finite λ of every subset."""
    reference = Pipeline.preset("bi,s,ga", camera="microscopy")
    for subset in SUBSETS:
        for lam in (0.0, 1.0):
            found = reference.with_params({"gamma.gamma": GAMMA[lam]})
            found.to_yaml(tmp_path / "units" / subset / f"lambda_{lam}" / "pipeline.yaml")
    return tmp_path, reference


def _images(page: str) -> list[bytes]:
    return [base64.b64decode(m) for m in re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)]


def test_report_files_and_page(run):
    run_dir, reference = run
    raws = torch.rand(2, 1, 32, 32, generator=torch.Generator().manual_seed(0))
    results = _results()
    path = write_forensics_report(run_dir, results, pipeline=reference, raws=raws, config_text="name: <x> & 'y'", title="Forensics <of> bi,s,ga")
    assert path == run_dir / "report.html"
    for name in ("signature.png", "views_all.png"):
        with Image.open(run_dir / "figures" / name) as image:
            assert image.format == "PNG" and image.size[0] > 100
    page = path.read_text(encoding="utf-8")
    embedded = _images(page)
    assert len(embedded) == 2
    assert embedded[0] == (run_dir / "figures" / "signature.png").read_bytes()
    for data in embedded:
        Image.open(io.BytesIO(data)).verify()
    assert "0.912" in page and "0.862" in page  # baseline and floor
    for name in results.reference:
        assert f"<code>{name}</code>" in page
    assert "0.04 … 0.04 (25 values)" in page  # compact long array
    assert "<td>[-0.7, 1.9, 3.53]</td><td>[-0.657, 1.97, 3.8]</td><td>[-16, 16]</td>" in page  # gains: safe min, max, bounds
    assert "<td>2.2</td><td>2.2</td><td>2.6</td><td>[0.1, 10]</td>" in page  # gamma: reference, safe min, max, bounds
    assert "<title>Forensics &lt;of&gt; bi,s,ga</title>" in page
    assert "name: &lt;x&gt; &amp; &#x27;y&#x27;" in page
    assert "<x>" not in page
    assert not re.search(r"https?://", page)
    assert "subset <code>all</code> at λ = 0" in page  # the lowest metric


def test_report_view_data_equal_the_found_pipelines(run, monkeypatch):
    import ispkit.drift.forensics_report as module

    run_dir, reference = run
    raws = torch.rand(2, 1, 32, 32, generator=torch.Generator().manual_seed(1))
    figures = []
    original = module.plot_views
    monkeypatch.setattr(module, "plot_views", lambda *a, **k: figures.append(original(*a, **k)) or figures[-1])
    write_forensics_report(run_dir, _results(), pipeline=reference, raws=raws)
    axes = np.array(figures[0].axes).reshape(2, 3)
    with torch.no_grad():
        expected = {
            0.0: reference.with_params({"gamma.gamma": 4.5}).to_torch()(raws).numpy(),
            INF: reference.to_torch()(raws).numpy(),
        }
    for col, lam in ((0, 0.0), (2, INF)):
        for row in range(2):
            shown = axes[row, col].images[0].get_array()
            np.testing.assert_allclose(shown, np.clip(expected[lam][row], 0, 1).transpose(1, 2, 0), atol=1e-6)
    assert not np.allclose(axes[0, 0].images[0].get_array(), axes[0, 2].images[0].get_array())


def test_report_without_raws_removes_stale_views(run):
    run_dir, reference = run
    write_forensics_report(run_dir, _results(), pipeline=reference, raws=torch.rand(1, 1, 16, 16))
    assert (run_dir / "figures" / "views_all.png").exists()
    page = write_forensics_report(run_dir, _results(subsets=["gamma", "white_balance"])).read_text(encoding="utf-8")
    assert not (run_dir / "figures" / "views_all.png").exists()
    assert len(_images(page)) == 1


def test_report_views_of_first_subset_without_all(run):
    run_dir, reference = run
    write_forensics_report(run_dir, _results(subsets=["gamma", "white_balance"]), pipeline=reference, raws=torch.rand(1, 1, 16, 16))
    assert (run_dir / "figures" / "views_gamma.png").exists()


def _with_images(synthetic: bool) -> ForensicsResults:
    """``_results`` with per-image scores on 50 images: `all` at λ = 0 gets 10 right, predicting class 'c' for all."""
    results = _results()
    for run in results.runs:
        right = round(run.metric * 50)
        run.per_image = [1.0] * right + [0.0] * (50 - right)
        run.metric = right / 50
        run.confusion = [[17, 0, 0], [0, 17, 0], [0, 0, 16]] if run.metric > 0.5 else [[0, 0, 17], [0, 0, 17], [0, 0, 16]]
    results.baseline_run = results.run("all", INF)
    results.baseline, results.classes, results.synthetic = results.baseline_run.metric, ["a", "b", "c"], synthetic
    return results


def test_report_opens_with_findings_banner_iff_synthetic_and_flags_collapse(tmp_path):
    results = _with_images(synthetic=True)
    page = write_forensics_report(tmp_path / "s", results).read_text(encoding="utf-8")
    assert re.findall(r"<h2>([^<]*)</h2>", page)[:4] == ["Findings", "Summary", "Each subset's worst λ", "Below chance"]
    assert page.index('<div class="banner">') < page.index("<h2>Findings</h2>")
    statements = results.findings()["statements"]
    assert re.findall(r"<li>(.*?)</li>", page) == [escape(s) for s in statements]
    assert statements[1].startswith("Attacking all (worst λ = 0) lowers accuracy to 0.200 by 0.720 (95% CI ")
    assert statements[1].endswith("distinguishable from image noise (50 images).")
    assert '<td>all at λ = 0</td><td class="num">0.200</td><td>collapse to <strong>c</strong> (100% of predictions)</td>' in page
    assert (tmp_path / "s" / "figures" / "confusion.png").read_bytes() in _images(page)
    real = write_forensics_report(tmp_path / "r", _with_images(synthetic=False)).read_text(encoding="utf-8")
    assert 'class="banner"' not in real and "Synthetic data" not in real


def test_report_of_a_sweep_without_per_image_scores_says_not_recorded(tmp_path):
    page = write_forensics_report(tmp_path, _results()).read_text(encoding="utf-8")
    assert "per-image scores not recorded, so no interval" in page
    assert '<td class="num">0.712</td><td class="num">not recorded</td><td>per-image scores not recorded</td>' in page  # all: 0.912 − 0.200
    assert "Chance level unknown (the classes were not recorded)." in page
    assert not (tmp_path / "figures" / "confusion.png").exists()
