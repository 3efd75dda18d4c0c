"""The results classes: SynthesisResults (drops, rankings, worst pair, files) and the findings of all three, old files."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest

from ispkit.drift.results import AdjustmentResults, ForensicsResults, ForensicsRun, Ranking, SynthesisResults, collapse
from ispkit.drift.statistics import fold_interval, image_interval, signed
from ispkit.errors import InputError


def _results(folds=2):
    # trained on a: 0.9 on a, 0.6 on b, 0.8 on c;  trained on b: 0.7 on a, 0.8 on b, 0.75 on c
    base = np.array([[0.9, 0.6, 0.8], [0.7, 0.8, 0.75]])
    spread = np.array([-0.05, 0.05])[:folds] if folds > 1 else np.zeros(1)
    metrics = base[:, :, None] + spread
    corr = np.array([[[0.5, 0.3]], [[0.6, 0.4]]])[:, :, :, None] + spread  # (P=2, C=1, S=2, K)
    return SynthesisResults(
        task="classification", metric="accuracy", train_pipelines=["a", "b"], test_pipelines=["a", "b", "c"], folds=folds,
        metrics={"accuracy": metrics}, corruptions=["gaussian_noise"], severities=[1, 5], corruption_metrics={"accuracy": corr},
    )  # fmt: skip


def test_means_stds_and_in_distribution():
    r = _results()
    np.testing.assert_allclose(r.mean(), [[0.9, 0.6, 0.8], [0.7, 0.8, 0.75]])
    np.testing.assert_allclose(r.std(), 0.05)
    np.testing.assert_allclose(r.in_distribution(), [0.9, 0.8])


def test_drops_ratio_and_worst_pair():
    r = _results()
    # off-diagonal drops: a: 0.3, 0.1; b: 0.1, 0.05  -> mean 0.1375
    assert r.isp_drop == pytest.approx(0.1375)
    # corruption drops: a: 0.4, 0.6; b: 0.2, 0.4 -> mean 0.4
    assert r.corruption_drop == pytest.approx(0.4)
    assert r.drop_ratio == pytest.approx(0.1375 / 0.4)
    assert r.worst_pair() == ("a", "b", pytest.approx(0.3))
    s = r.summary()
    assert s["in_distribution"] == pytest.approx(0.85)
    assert s["under_isp_drift"] == pytest.approx(0.85 - 0.1375)
    assert s["under_corruptions"] == pytest.approx(0.45)


def test_rankings_best_first():
    table = _results().rankings()
    assert [row.test for row in table["a"]] == ["a", "c", "b"]
    assert table["b"][0] == Ranking("b", pytest.approx(0.8), pytest.approx(0.05))


def test_no_corruptions_gives_nan_ratio():
    r = _results()
    r = SynthesisResults(r.task, r.metric, r.train_pipelines, r.test_pipelines, r.folds, r.metrics)
    assert np.isnan(r.corruption_drop) and np.isnan(r.drop_ratio)
    assert r.to_dict()["summary"]["drop_ratio"] is None


def test_json_and_csv_round_trip(tmp_path):
    r = _results()
    loaded = SynthesisResults.load(r.save(tmp_path / "r.json"))
    assert loaded.to_dict() == r.to_dict()
    with open(r.to_csv(tmp_path / "r.csv"), newline="") as table:
        rows = list(csv.DictReader(table))
    assert len(rows) == 2 * 3 * 2 + 2 * 1 * 2 * 2
    first = rows[0]
    assert (first["kind"], first["train"], first["test"], first["fold"]) == ("pipeline", "a", "a", "0")
    assert float(first["value"]) == pytest.approx(0.85)
    corr = [row for row in rows if row["kind"] == "corruption"]
    assert {row["severity"] for row in corr} == {"1", "5"}


def test_shape_checks():
    r = _results()
    with pytest.raises(InputError, match="expected \\(2, 3, 2\\)"):
        SynthesisResults(r.task, r.metric, r.train_pipelines, r.test_pipelines, r.folds, {"accuracy": np.zeros((2, 3))})
    with pytest.raises(InputError, match="primary metric 'iou'"):
        SynthesisResults(r.task, "iou", r.train_pipelines, r.test_pipelines, r.folds, r.metrics)
    with pytest.raises(InputError, match="not among the test pipelines"):
        SynthesisResults(r.task, r.metric, ["a", "d"], r.test_pipelines, r.folds, r.metrics)


# -- findings -------------------------------------------------------------------------------

CLASSES = ["x", "y", "z"]
FOLD_NOISE = np.array([0.02, -0.03, 0.01])  # shared by every cell of a fold: the fold's luck


def _study(own=0.9, other=0.6, pair_noise=None, corruption=0.05, confusion=True, synthetic=True) -> SynthesisResults:
    """3 pipelines × 3 folds: in distribution ``own``, elsewhere ``other`` (+ ``pair_noise[k]``), corruptions ``corruption``.

    Pipeline cells predict the true class; corruption cells predict class "z" for every image (20 per class per fold).
    """
    P, K = 3, 3
    values = np.full((P, P, K), other) + FOLD_NOISE
    if pair_noise is not None:
        values += np.asarray(pair_noise)
    for p in range(P):
        values[p, p] = own + FOLD_NOISE
    corrupted = np.full((P, 2, 1, K), corruption) + 0.001 * FOLD_NOISE
    matrix = np.diag([60.0] * 3)
    collapsed = np.zeros((3, 3))
    collapsed[:, 2] = 60.0
    return SynthesisResults(
        task="classification", metric="accuracy", train_pipelines=["a", "b", "c"], test_pipelines=["a", "b", "c"], folds=K,
        metrics={"accuracy": values}, corruptions=["gaussian_noise", "contrast"], severities=[3], corruption_metrics={"accuracy": corrupted},
        classes=CLASSES, synthetic=synthetic, confusion=np.broadcast_to(matrix, (P, P, 3, 3)).copy() if confusion else None,
        corruption_confusion=np.broadcast_to(collapsed, (P, 2, 1, 3, 3)).copy() if confusion else None,
    )  # fmt: skip


def _fold_drops(r: SynthesisResults) -> np.ndarray:
    """The ISP drop of each fold, by loops: mean over p and q ≠ p of a[p, p, k] − a[p, q, k]."""
    a = r.metrics["accuracy"]
    return np.array([np.mean([a[p, p, k] - a[p, q, k] for p in range(3) for q in range(3) if q != p]) for k in range(r.folds)])


def test_synthesis_findings_call_a_clear_isp_drop_distinguishable():
    r = _study(own=0.9, other=0.6)
    found = r.findings()
    isp = found["comparisons"]["isp_drift"]
    expected = fold_interval(_fold_drops(r))
    assert (isp["estimate"], isp["low"], isp["high"]) == (pytest.approx(0.3), pytest.approx(expected.low), pytest.approx(expected.high))
    assert isp["distinguishable"] and isp["n"] == 3 and isp["units"] == "folds"
    assert isp["estimate"] == pytest.approx(r.isp_drop)
    assert (
        f"ISP drift lowers accuracy by 0.300 (95% CI {signed(expected.low)} to {signed(expected.high)}): distinguishable from fold noise (3 folds)."
        in found["statements"]
    )
    assert all(p["distinguishable"] and p["estimate"] == pytest.approx(0.3) for p in found["pairs"]) and len(found["pairs"]) == 6
    np.testing.assert_allclose(found["cells"]["mean"], r.mean())
    np.testing.assert_allclose(found["cells"]["std"], r.std())


def test_synthesis_findings_call_a_null_isp_drop_indistinguishable():
    # other pipelines score like the own one on average, but their difference swings from fold to fold
    r = _study(own=0.8, other=0.8, pair_noise=[0.05, -0.06, 0.01])
    found = r.findings()
    isp = found["comparisons"]["isp_drift"]
    assert isp["low"] < 0 < isp["high"] and not isp["distinguishable"]
    assert any(
        s.startswith("ISP drift lowers accuracy by 0.000 (95% CI −") and s.endswith("not distinguishable from fold noise with 3 folds.")
        for s in found["statements"]
    )
    assert not any(p["distinguishable"] for p in found["pairs"])
    assert "Single train/test pairs: 0 of 6 drop and 0 rise by more than fold noise" in found["statements"][3]


def test_synthesis_findings_compare_corruptions_with_isp_drift():
    r = _study(own=0.9, other=0.85, corruption=0.05)
    found = r.findings()
    corr, more = found["comparisons"]["corruptions"], found["comparisons"]["corruptions_vs_isp_drift"]
    assert corr["estimate"] == pytest.approx(r.corruption_drop) and corr["distinguishable"]
    assert more["estimate"] == pytest.approx(r.corruption_drop - r.isp_drop) and more["distinguishable"]
    text = found["statements"][2]
    assert text.startswith("Corrupting the test views lowers accuracy by ")
    assert f"That drop exceeds the ISP-drift drop by {signed(more['estimate'])}" in text and text.endswith("distinguishable from fold noise (3 folds).")
    assert [(c["corruption"], c["severity"]) for c in found["corruption_cells"]] == [("gaussian_noise", 3), ("contrast", 3)]


def test_below_chance_cells_are_flagged_with_the_class_they_collapse_to():
    found = _study(corruption=0.05).findings()
    below = found["below_chance"]
    assert below["chance"] == pytest.approx(1 / 3)
    assert len(below["cells"]) == 6 and {c["kind"] for c in below["cells"]} == {"corruption"}
    assert all(c["collapse"] == {"class": "z", "index": 2, "share": 1.0, "collapsed": True} for c in below["cells"])
    assert below["cells"][0]["cell"] == "a → gaussian_noise (severity 3)" and below["cells"][0]["score"] == pytest.approx(0.05, abs=1e-3)
    assert below["statement"] == (
        "6 of 15 cells score below chance (1/3 = 0.333): 6 corruption cells (contrast, gaussian_noise). Their predictions collapse to 'z' in 6."
    )
    worst = {c["kind"]: c for c in found["worst_cells"]}
    assert worst["corruption"]["confusion"] == [[0, 0, 60], [0, 0, 60], [0, 0, 60]]
    assert worst["pipeline"]["confusion"] == [[60, 0, 0], [0, 60, 0], [0, 0, 60]] and worst["pipeline"]["collapse"]["collapsed"] is False
    assert not _study(corruption=0.5).findings()["below_chance"]["cells"]


def test_below_chance_without_recorded_matrices_says_not_recorded():
    r = _study(corruption=0.05)
    r.corruption_confusion[1] = np.nan  # train pipeline b's units ran before matrices were recorded
    below = r.findings()["below_chance"]
    assert [c["collapse"] is None for c in below["cells"]] == [False, False, True, True, False, False]
    assert below["statement"].endswith("Their predictions collapse to 'z' in 4; 2 have no confusion matrix (not recorded).")


def test_collapse_names_the_most_predicted_class():
    assert collapse([[2, 3, 5], [0, 4, 6], [1, 1, 8]], CLASSES) == {"class": "z", "index": 2, "share": 19 / 30, "collapsed": True}
    assert collapse([[4, 3, 3], [3, 4, 3], [3, 3, 4]], CLASSES)["collapsed"] is False
    assert collapse([[0, 0], [0, 0]]) is None and collapse(None) is None and collapse([[1, np.nan], [0, 1]]) is None


def test_segmentation_has_no_chance_level():
    r = _study()
    seg = SynthesisResults("segmentation", "iou", r.train_pipelines, r.test_pipelines, r.folds, {"iou": r.metrics["accuracy"]})
    found = seg.findings()
    assert found["below_chance"] == {"chance": None, "cells": [], "statement": ""} and found["worst_cells"][0]["confusion"] is None


def test_one_fold_has_no_interval():
    r = _study()
    one = SynthesisResults(r.task, r.metric, r.train_pipelines, r.test_pipelines, 1, {"accuracy": r.metrics["accuracy"][:, :, :1]}, classes=CLASSES)
    found = one.findings()
    assert found["comparisons"]["isp_drift"]["low"] is None and not found["comparisons"]["isp_drift"]["distinguishable"]
    assert "fold noise not estimable from 1 fold" in found["statements"][1]
    assert found["statements"][2].startswith("Single train/test pairs: fold noise not estimable from 1 fold")


def test_results_json_carries_the_findings_and_round_trips(tmp_path):
    r = _study()
    path = r.save(tmp_path / "results.json")
    data = json.loads(path.read_text(encoding="utf-8"))
    json.dumps(data, allow_nan=False)  # valid JSON: no NaN
    assert data["findings"] == json.loads(json.dumps(r.findings()))
    assert data["synthetic"] is True and data["classes"] == CLASSES and data["confusion"][0][0] == [[60, 0, 0], [0, 60, 0], [0, 0, 60]]
    loaded = SynthesisResults.load(path)
    assert loaded.to_dict() == r.to_dict() and loaded.synthetic and loaded.classes == CLASSES
    np.testing.assert_array_equal(loaded.corruption_confusion, r.corruption_confusion)
    r.confusion[2] = np.nan
    again = SynthesisResults.load(r.save(tmp_path / "partial.json"))
    assert json.loads((tmp_path / "partial.json").read_text())["confusion"][2][0][0] == [None, None, None]
    assert np.isnan(again.confusion[2]).all() and np.isfinite(again.confusion[:2]).all()


OLD_SYNTHESIS_JSON = """{"task": "classification", "metric": "accuracy", "train_pipelines": ["a", "b"], "test_pipelines": ["a", "b"], "folds": 2,
 "metrics": {"accuracy": [[[0.9, 0.8], [0.05, 0.07]], [[0.6, 0.7], [0.8, 0.9]]]}, "corruptions": ["gaussian_noise"], "severities": [3],
 "corruption_metrics": {"accuracy": [[[[0.5, 0.4]]], [[[0.02, 0.01]]]]},
 "summary": {"metric": "accuracy", "in_distribution": 0.85, "under_isp_drift": 0.355, "under_corruptions": 0.2325, "isp_drop": 0.495,
             "corruption_drop": 0.6175, "drop_ratio": 0.8016, "worst_pair": {"train": "a", "test": "b", "drop": 0.79}}}"""


def test_results_json_from_before_findings_still_loads(tmp_path):
    (tmp_path / "results.json").write_text(OLD_SYNTHESIS_JSON, encoding="utf-8")
    old = SynthesisResults.load(tmp_path / "results.json")
    assert old.classes is None and old.confusion is None and old.synthetic is False
    assert old.summary()["isp_drop"] == pytest.approx(0.495)
    found = old.findings()
    assert found["below_chance"]["statement"] == "Chance level unknown (the classes were not recorded)."
    assert all(c["confusion"] is None and c["collapse"] is None for c in found["worst_cells"])
    assert "findings" in old.to_dict()


def test_confusion_of_the_wrong_shape_is_refused():
    r = _study()
    with pytest.raises(InputError, match=r"confusion has shape \(3, 3, 2, 2\), expected \(3, 3, 3, 3\)"):
        SynthesisResults(r.task, r.metric, r.train_pipelines, r.test_pipelines, r.folds, r.metrics, classes=CLASSES, confusion=np.zeros((3, 3, 2, 2)))


# -- forensics and adjustment findings --------------------------------------------------------------


def _sweep(per_image: bool = True) -> ForensicsResults:
    """64 images: the baseline gets 60 right; `all` at λ = 0 gets 2 right, all predicted "x"; gamma changes one image."""
    base = [1.0] * 60 + [0.0] * 4
    broken = [1.0] * 2 + [0.0] * 62
    nudged = [1.0] * 59 + [0.0] * 5
    collapsed = [[22, 0, 0], [21, 0, 0], [21, 0, 0]]

    def run(subset, lam, scores, confusion=None):
        return ForensicsRun(subset, lam, float(np.mean(scores)), 0.01, 0.1, {}, [], scores if per_image else None, confusion if per_image else None)

    runs = [run("all", 0.0, broken, collapsed), run("all", 10.0, nudged), run("gamma", 0.0, nudged), run("gamma", 10.0, base), run("gamma", math.inf, base)]
    return ForensicsResults(
        task="classification", metric="accuracy", pipeline="bi,s,ga", distance="l2", baseline=float(np.mean(base)), subsets=["all", "gamma"],
        lambdas=[0.0, 10.0, math.inf], reference={}, bounds={}, runs=runs, classes=CLASSES, synthetic=True,
        baseline_run=run("all", math.inf, base) if per_image else None,
    )  # fmt: skip


def test_forensics_findings_compare_the_baseline_with_each_subsets_worst_lambda():
    r = _sweep()
    found = r.findings()
    by = {c["subset"]: c for c in found["comparisons"]}
    assert by["all"]["lambda"] == 0.0 and by["gamma"]["lambda"] == 0.0
    expected = image_interval(np.array([0.0] * 2 + [1.0] * 58 + [0.0] * 4))  # baseline − all at λ = 0, image by image
    assert by["all"]["interval"]["estimate"] == pytest.approx(58 / 64) and by["all"]["interval"]["low"] == pytest.approx(expected.low)
    assert by["all"]["interval"]["distinguishable"] and by["all"]["interval"]["units"] == "images"
    assert not by["gamma"]["interval"]["distinguishable"]  # one image of 64
    assert found["statements"][0] == "Baseline accuracy of the reference pipeline bi,s,ga on 64 attacked images: 0.938 (tolerance 0.050, floor 0.887)."
    assert found["statements"][1].startswith("Attacking all (worst λ = 0) lowers accuracy to 0.031 by 0.906 (95% CI ")
    assert found["statements"][1].endswith("distinguishable from image noise (64 images).")
    assert found["statements"][2].endswith("not distinguishable from image noise with 64 images.")
    flags = found["below_chance"]["cells"]
    assert [(f["subset"], f["lambda"], f["collapse"]["class"]) for f in flags] == [("all", 0.0, "x")]
    assert found["worst_cells"][0]["confusion"] == [[22, 0, 0], [21, 0, 0], [21, 0, 0]]


def test_forensics_results_round_trip_and_old_files(tmp_path):
    r = _sweep()
    loaded = ForensicsResults.load(r.save(tmp_path / "r.json"))
    assert loaded.to_dict() == r.to_dict() and loaded.baseline_run.per_image == r.baseline_run.per_image
    assert json.loads((tmp_path / "r.json").read_text())["findings"]["comparisons"][0]["interval"]["distinguishable"] is True
    old = r.to_dict()
    for key in ("findings", "classes", "synthetic", "baseline_run"):
        del old[key]
    for run in old["runs"]:
        del run["per_image"], run["confusion"]
    found = ForensicsResults.from_dict(old).findings()
    assert all(c["interval"] is None for c in found["comparisons"])
    assert "per-image scores not recorded, so no interval" in found["statements"][1]


def _adjustment(learned=0.9, frozen=0.6, raw=0.05, confusion=True) -> AdjustmentResults:
    noise = np.array([0.01, -0.02, 0.015])
    swing = np.array([0.05, -0.06, 0.02])  # raw against frozen: no consistent difference at intensity 1
    curves = {
        "0.001": {"learned": np.stack([np.linspace(0.3, learned, 4) + n for n in noise]), "frozen": np.stack([np.linspace(0.3, frozen, 4) + n for n in noise]),
                  "raw": np.stack([np.linspace(0.3, raw, 4) for _ in noise])},
        "1": {"learned": np.stack([np.full(4, 0.8) + n for n in noise]), "frozen": np.stack([np.full(4, 0.8) + n for n in noise]),
              "raw": np.stack([np.full(4, 0.8) + n + s for n, s in zip(noise, swing, strict=True)])},
    }  # fmt: skip
    matrices = {key: {arm: np.diag([20.0, 20.0, 20.0]) for arm in arms} for key, arms in curves.items()}
    matrices["0.001"]["raw"] = np.array([[0.0, 20, 0], [0, 20, 0], [0, 20, 0]])
    return AdjustmentResults(task="classification", metric="accuracy", pipeline="bi,s,me", intensities=[0.001, 1.0], arms=["learned", "frozen", "raw"],
                             folds=3, epochs=4, curves=curves, classes=CLASSES, synthetic=False, confusion=matrices if confusion else None)  # fmt: skip


def test_adjustment_findings_compare_the_arms_fold_by_fold():
    r = _adjustment()
    found = r.findings()
    low = {(c["a"], c["b"]): c for c in found["comparisons"]["0.001"]}
    assert list(low) == [("learned", "frozen"), ("learned", "raw"), ("frozen", "raw")]
    assert low["learned", "frozen"]["estimate"] == pytest.approx(0.3) and low["learned", "frozen"]["distinguishable"]
    high = {(c["a"], c["b"]): c for c in found["comparisons"]["1"]}
    assert not high["frozen", "raw"]["distinguishable"] and high["learned", "frozen"]["estimate"] == pytest.approx(0.0)
    expected = fold_interval(r.curves["1"]["frozen"][:, -1] - r.curves["1"]["raw"][:, -1])
    assert (high["frozen", "raw"]["low"], high["frozen", "raw"]["high"]) == (pytest.approx(expected.low), pytest.approx(expected.high))
    assert found["statements"][0].startswith(
        "Intensity 0.001, last epoch (accuracy, mean ± std over 3 folds): learned 0.902 ± 0.015, frozen 0.602 ± 0.015, raw 0.050 ± 0.000."
    )
    assert " learned − frozen: +0.300 (95% CI " in found["statements"][0]
    assert "frozen − raw: " in found["statements"][1] and "not distinguishable from fold noise with 3 folds" in found["statements"][1]
    flags = found["below_chance"]["cells"]
    assert [(f["intensity"], f["arm"], f["collapse"]["class"]) for f in flags] == [("0.001", "raw", "y")]
    assert found["worst_cells"][0]["cell"] == "raw at intensity 0.001"


def test_adjustment_results_round_trip_and_old_files(tmp_path):
    r = _adjustment()
    loaded = AdjustmentResults.load(r.save(tmp_path / "r.json"))
    assert loaded.to_dict() == r.to_dict()
    np.testing.assert_array_equal(loaded.confusion["0.001"]["raw"], r.confusion["0.001"]["raw"])
    old = r.to_dict()
    for key in ("findings", "classes", "synthetic", "confusion"):
        del old[key]
    found = AdjustmentResults.from_dict(old).findings()
    assert found["below_chance"]["statement"] == "Chance level unknown (the classes were not recorded)."
    assert found["comparisons"]["0.001"][0]["distinguishable"]
