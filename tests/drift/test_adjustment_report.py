"""Tests of the drift-adjustment report: the curves and views figures, PNGs and the HTML page."""

from __future__ import annotations

import base64
import io
import re

import numpy as np
import pytest
import torch
from PIL import Image

from ispkit.drift.adjustment import AdjustmentResults
from ispkit.drift.adjustment_report import ARM_COLOURS, changed_params, plot_curves, plot_learned_views, write_adjustment_report
from ispkit.drift.html_report import escape
from ispkit.errors import InputError
from ispkit.pipeline import Pipeline

KEYS = ["0.001", "1"]
ARMS = ["learned", "frozen", "raw"]


def _results(arms: list[str] = ARMS) -> AdjustmentResults:
    rng = np.random.default_rng(0)
    curves = {key: {arm: rng.uniform(0.2, 0.9, size=(2, 3)) for arm in arms} for key in KEYS}
    return AdjustmentResults(task="classification", metric="accuracy", pipeline="bi,s,me", intensities=[0.001, 1.0],
                             arms=list(arms), folds=2, epochs=3, curves=curves)  # fmt: skip


@pytest.fixture(scope="module")
def reference() -> Pipeline:
    return Pipeline.preset("bi,s,me", camera="microscopy")


@pytest.fixture(scope="module")
def raws() -> torch.Tensor:
    return torch.rand(2, 1, 32, 32, generator=torch.Generator().manual_seed(0))


def _write_learned(run_dir, key: str, reference: Pipeline) -> Pipeline:
    learned = reference.with_params({"gamma.gamma": 1.8})
    path = run_dir / "units" / key / "learned" / "fold0" / "pipeline.yaml"
    path.parent.mkdir(parents=True)
    learned.to_yaml(path)
    return learned


def _images(page: str) -> list[bytes]:
    return [base64.b64decode(m) for m in re.findall(r'src="data:image/png;base64,([^"]+)"', page)]


# -- curves ---------------------------------------------------------------------------


def test_curves_lines_and_bands_are_fold_mean_and_std():
    results = _results()
    fig = plot_curves(results)
    assert len(fig.axes) == 2
    for ax, key in zip(fig.axes, KEYS, strict=True):
        assert ax.get_title() == f"intensity {key}"
        assert [line.get_label() for line in ax.lines] == ARMS
        assert len(ax.collections) == 3
        for arm, line, band in zip(ARMS, ax.lines, ax.collections, strict=True):
            curve = results.curves[key][arm]
            mean, std = curve.mean(0), curve.std(0)
            np.testing.assert_array_equal(line.get_xdata(), [1, 2, 3])
            np.testing.assert_allclose(line.get_ydata(), mean)
            assert line.get_color() == ARM_COLOURS[arm]
            vertices = band.get_paths()[0].vertices
            for x, low, high in zip([1, 2, 3], mean - std, mean + std, strict=True):
                ys = vertices[np.isclose(vertices[:, 0], x), 1]
                assert np.isclose(ys.min(), low) and np.isclose(ys.max(), high)
    assert fig.axes[0].get_ylabel() == "validation accuracy"
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ARMS
    assert fig.axes[1].get_shared_y_axes().joined(fig.axes[0], fig.axes[1])


def test_curves_reject_empty_results():
    results = _results()
    results.curves = {}
    with pytest.raises(InputError):
        plot_curves(results)


# -- views ----------------------------------------------------------------------------


def test_learned_views_show_reference_and_learned_rows(reference, raws):
    learned = reference.with_params({"gamma.gamma": 1.8})
    with torch.no_grad():
        ref_views = reference.to_torch()(raws).clamp(0, 1).numpy()
        new_views = learned.to_torch()(raws).clamp(0, 1).numpy()
    fig = plot_learned_views(ref_views, torch.from_numpy(new_views), "0.001")
    axes = fig.axes
    assert len(axes) == 4
    assert axes[0].get_ylabel() == "reference (frozen)" and axes[2].get_ylabel() == "learned (fold 0)"
    for i, ax in enumerate(axes):
        views = ref_views if i < 2 else new_views
        np.testing.assert_allclose(ax.images[0].get_array(), views[i % 2].transpose(1, 2, 0))
    with pytest.raises(InputError):
        plot_learned_views(ref_views, new_views[:1], "0.001")


def test_changed_params_lists_only_gamma(reference):
    rows = changed_params(reference, reference.with_params({"gamma.gamma": 1.8}))
    assert [(name, float(a), float(b)) for name, a, b in rows] == [("gamma.gamma", 2.2, 1.8)]
    assert changed_params(reference, reference) == []


# -- report ---------------------------------------------------------------------------


def test_report_writes_figures_and_self_contained_page(tmp_path, reference, raws):
    results = _results()
    learned = _write_learned(tmp_path, "0.001", reference)
    (tmp_path / "figures").mkdir()
    stale = tmp_path / "figures" / "views_old.png"
    stale.write_bytes(b"x")
    config = "name: <script>alert('x')</script> & more"
    path = write_adjustment_report(tmp_path, results, pipeline=reference, samples={"0.001": raws, "1": raws},
                                   config_text=config, title="Adjust <b>")  # fmt: skip
    assert path == tmp_path / "report.html"
    assert not stale.exists()
    assert sorted(p.name for p in (tmp_path / "figures").iterdir()) == ["curves.png", "views_0.001.png"]
    for png in (tmp_path / "figures").iterdir():
        Image.open(png).verify()
    page = path.read_text(encoding="utf-8")
    images = _images(page)
    assert len(images) == 2
    for data in images:
        Image.open(io.BytesIO(data)).verify()
    assert images[1] == (tmp_path / "figures" / "views_0.001.png").read_bytes()

    final = results.final()
    for key in KEYS:
        for arm in ARMS:
            mean, std = final[key][arm]
            assert f"{arm} {mean:.3f} ± {std:.3f}" in page
        diff = final[key]["learned"][0] - final[key]["frozen"][0]
        assert f"intensity {key}: " in page and f"learned − frozen {diff:+.3f}" in page
    best = results.best()
    mean, std = best["1"]["raw"]
    assert f'<td class="num">{mean:.3f} ± {std:.3f}</td>' in page

    assert "<tr><td><code>gamma.gamma</code></td><td>2.2</td><td>1.8</td></tr>" in page
    changed = page[page.index("<h2>Learned pipeline, intensity 0.001</h2>") :]
    assert changed.count("<code>") == 1  # gamma in the table: nothing else changed
    assert learned.params()["gamma.gamma"] == 1.8
    assert "Learned pipeline, intensity 0.001" in page and "Learned pipeline, intensity 1<" not in page

    assert "<script>" not in page and "&lt;script&gt;" in page and "&amp; more" in page
    assert "<title>Adjust &lt;b&gt;</title>" in page
    assert not re.search(r"https?://", page)
    assert page.startswith("<!DOCTYPE html>")


def test_report_views_figure_equals_independent_views(tmp_path, reference, raws, monkeypatch):
    import ispkit.drift.adjustment_report as module

    captured = {}
    original = module.plot_learned_views

    def spy(ref_views, learned_views, intensity):
        captured[intensity] = (ref_views, learned_views)
        return original(ref_views, learned_views, intensity)

    monkeypatch.setattr(module, "plot_learned_views", spy)
    learned = _write_learned(tmp_path, "1", reference)
    write_adjustment_report(tmp_path, _results(), pipeline=reference, samples={"1": raws})
    assert list(captured) == ["1"]
    with torch.no_grad():
        expected_ref = reference.to_torch()(raws).clamp(0, 1).numpy()
        expected_new = Pipeline.from_yaml(learned.to_yaml()).to_torch()(raws).clamp(0, 1).numpy()
    np.testing.assert_allclose(captured["1"][0], expected_ref)
    np.testing.assert_allclose(captured["1"][1], expected_new)
    assert not np.allclose(expected_ref, expected_new)


def test_report_without_pipeline_or_with_missing_arm(tmp_path, reference, raws):
    _write_learned(tmp_path, "0.001", reference)
    results = _results(arms=["frozen", "raw"])
    page = write_adjustment_report(tmp_path, results, samples={"0.001": raws}).read_text(encoding="utf-8")
    assert len(_images(page)) == 1
    assert sorted(p.name for p in (tmp_path / "figures").iterdir()) == ["curves.png"]
    assert "learned − frozen n/a" in page
    assert "<pre>" not in page


def test_report_arm_missing_for_one_intensity_reads_na(tmp_path):
    results = _results()
    del results.curves["1"]["raw"]
    page = write_adjustment_report(tmp_path, results).read_text(encoding="utf-8")
    assert "raw n/a; learned − frozen" in page
    assert '<tr><td>1</td><td>raw</td><td class="num">n/a</td><td class="num">n/a</td></tr>' in page
    assert [line.get_label() for line in plot_curves(results).axes[1].lines] == ["learned", "frozen"]


def _collapsed(synthetic: bool) -> AdjustmentResults:
    """Three folds; learned beats frozen by 0.3 in every fold at 0.001, where raw predicts class 'b' for every image."""
    base = np.array([[0.5, 0.6], [0.52, 0.62], [0.48, 0.58]])
    curves = {"0.001": {"learned": base + 0.3, "frozen": base, "raw": np.full((3, 2), 0.1)}}
    eye = np.diag([30.0, 30.0, 30.0])
    collapsed = np.zeros((3, 3))
    collapsed[:, 1] = 30.0
    return AdjustmentResults(task="classification", metric="accuracy", pipeline="bi,s,me", intensities=[0.001], arms=ARMS, folds=3, epochs=2,
                             curves=curves, classes=["a", "b", "c"], synthetic=synthetic,
                             confusion={"0.001": {"learned": eye, "frozen": eye, "raw": collapsed}})  # fmt: skip


def test_report_opens_with_findings_banner_iff_synthetic_and_flags_collapse(tmp_path):
    results = _collapsed(synthetic=True)
    page = write_adjustment_report(tmp_path / "s", results).read_text(encoding="utf-8")
    assert re.findall(r"<h2>([^<]*)</h2>", page)[:4] == ["Findings", "Summary", "Arms compared, fold by fold", "Below chance"]
    assert page.index('<div class="banner">') < page.index("<h2>Findings</h2>")
    assert re.findall(r"<li>(.*?)</li>", page) == [escape(s) for s in results.findings()["statements"]]
    assert "learned − frozen: +0.300 (95% CI 0.300 to 0.300): distinguishable from fold noise (3 folds)." in page
    assert '<tr><td>0.001</td><td>learned − frozen</td><td class="num">0.300</td><td class="num">0.300 to 0.300</td>' in page
    assert '<td>raw at intensity 0.001</td><td class="num">0.100</td><td>collapse to <strong>b</strong> (100% of predictions)</td>' in page
    assert (tmp_path / "s" / "figures" / "confusion.png").read_bytes() in _images(page)
    real = write_adjustment_report(tmp_path / "r", _collapsed(synthetic=False)).read_text(encoding="utf-8")
    assert 'class="banner"' not in real and "Synthetic data" not in real
