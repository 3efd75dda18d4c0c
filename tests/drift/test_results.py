"""SynthesisResults: drops, rankings, worst pair, files."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from ispkit.drift.results import Ranking, SynthesisResults
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
