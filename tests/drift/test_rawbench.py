"""The raw-domain axis of drift synthesis (``raw_corruptions:``, ``ispkit rawbench run``): config, values, mCE, files, resume, CLI."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from ispkit.cli import main
from ispkit.drift.config import RawBenchConfig, SynthesisConfig
from ispkit.drift.report import plot_matrix, plot_raw_corruptions, write_report
from ispkit.drift.results import SynthesisResults, corruption_errors
from ispkit.drift.runs import load_raw_set
from ispkit.drift.synthesis import raw_corruption_seed, run_synthesis
from ispkit.errors import ConfigError, InputError
from ispkit.pipeline import Pipeline
from ispkit.raw_corruptions import corrupt_raw, raw_corruptions
from ispkit.raw_corruptions.builtins import BUILTIN_RAW_CORRUPTIONS
from ispkit.tasks import load_checkpoint

MICROSCOPY_SENSOR = {"gain": 2.2, "read_noise": 1.5}
RAW = {"names": ["low_light", "vignetting"], "severities": [1, 3], "baseline": "me,u,ga", "camera": MICROSCOPY_SENSOR}
"""The tiny study's raw axis: a random and a deterministic corruption, two severities, the second train pipeline as baseline."""


# -- the experiment --------------------------------------------------------------------------


def test_the_axis_is_read_with_defaults(tiny):
    config = tiny.config("synthesis", raw_corruptions={"names": "all", "camera": MICROSCOPY_SENSOR, "severities": [1, 2, 3]})
    raw = config.raw_corruptions
    assert raw.names == tuple(raw_corruptions()) and set(c.name for c in BUILTIN_RAW_CORRUPTIONS) <= set(raw.names)
    assert raw.severities == (1, 2, 3) and raw.baseline == "bi,s,me" and raw.camera == MICROSCOPY_SENSOR
    assert tiny.config("synthesis").raw_corruptions is None  # no key, no axis
    default = tiny.config("synthesis", raw_corruptions={"names": ["vignetting"]}).raw_corruptions
    assert default.severities == (1, 2, 3, 4, 5) and default.camera == {}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"names": ["low_ligth"]}, r"raw_corruptions\.names\[0\]: unknown raw corruption 'low_ligth': did you mean 'low_light'\?"),
        ({"names": "vignetting"}, r"raw_corruptions\.names: expected 'all' or a list of raw corruptions, got 'vignetting'; did you mean 'vignetting'"),
        ({"names": ["vignetting", "vignetting"]}, r"raw_corruptions\.names\[1\]: 'vignetting' is listed twice"),
        ({"names": ["vignetting"], "severities": [0]}, r"raw_corruptions\.severities\[0\]: expected an integer in \[1, 5\], got 0"),
        ({"names": ["vignetting"], "baseline": "ma,s,ga"}, r"raw_corruptions\.baseline: the baseline must be one of the train pipelines, got 'ma,s,ga'"),
        ({"names": ["vignetting"], "severity": [1]}, r"raw_corruptions\.severity: unknown raw_corruptions key 'severity': did you mean 'severities'"),
        ({"names": ["vignetting"], "camera": {"gian": 2.0}}, r"raw_corruptions\.camera\.gian: unknown camera fact 'gian': did you mean 'gain'"),
        ({"names": ["vignetting"], "camera": {"gain": -1}}, r"raw_corruptions\.camera\.gain: expected a conversion gain > 0"),
        (
            {"names": ["vignetting", "low_light"]},
            r"raw_corruptions\.names\[1\]: low_light at severity 1: .*needs the camera's gain and read_noise.*give the missing facts as raw_corruptions\.camera",
        ),
        ({"names": ["illuminant"], "severities": [3, 4]}, r"raw_corruptions\.names\[0\]: illuminant at severity 4: .*no gain"),
    ],
)
def test_mistakes_are_errors_at_their_line(tiny, raw, message):
    text = tiny.text("synthesis", raw_corruptions=raw)
    with pytest.raises(ConfigError, match=message) as info:
        SynthesisConfig.from_yaml(text)
    assert info.value.line == text.splitlines().index(next(line for line in text.splitlines() if line.startswith("raw_corruptions:"))) + 1


def test_rawbench_refuses_an_experiment_without_the_axis(tiny):
    with pytest.raises(ConfigError, match=r"a raw-corruption benchmark needs raw_corruptions:.*`ispkit synthesis run`"):
        RawBenchConfig.from_yaml(tiny.text("synthesis"))
    config = RawBenchConfig.from_yaml(tiny.text("synthesis", raw_corruptions=RAW))
    assert type(config) is SynthesisConfig and config.raw_corruptions.names == ("low_light", "vignetting")


# -- corruption errors on known numbers --------------------------------------------------------


def _raw_results(raw_accuracy, in_distribution=(0.9, 0.8), baseline="a"):
    """Two train pipelines a, b (one fold) with the given in-distribution accuracies and raw axis ``(2, 3, 2)``."""
    own = np.array(in_distribution)
    metrics = np.array([[[own[0]], [0.5]], [[0.6], [own[1]]]])
    return SynthesisResults(
        task="classification", metric="accuracy", train_pipelines=["a", "b"], test_pipelines=["a", "b"], folds=1, metrics={"accuracy": metrics},
        raw_corruptions=["low_light", "vignetting", "dark_current"], raw_severities=[1, 3],
        raw_corruption_metrics={"accuracy": np.asarray(raw_accuracy, dtype=float)[..., None]},
        raw_families={"low_light": "exposure", "vignetting": "optics", "dark_current": "sensor"}, raw_baseline=baseline,
    )  # fmt: skip


# accuracies (P=2, R=3, S=2): a is the baseline
ACCURACY = [[[0.8, 0.6], [0.9, 0.9], [0.7, 0.5]], [[0.7, 0.5], [0.8, 0.6], [0.75, 0.75]]]


def test_mce_and_relative_mce_on_known_numbers():
    r = _raw_results(ACCURACY)
    mce = r.raw_mce()
    # errors a: low_light 0.2+0.4=0.6, vignetting 0.1+0.1=0.2, dark_current 0.3+0.5=0.8; b: 0.3+0.5=0.8, 0.2+0.4=0.6, 0.25+0.25=0.5
    assert mce["ce"]["b"] == pytest.approx({"low_light": 0.8 / 0.6, "vignetting": 0.6 / 0.2, "dark_current": 0.5 / 0.8})
    assert mce["ce"]["a"] == pytest.approx({"low_light": 1.0, "vignetting": 1.0, "dark_current": 1.0})
    # clean errors a 0.1, b 0.2: degradations a: 0.4, 0.0, 0.6; b: 0.4, 0.2, 0.1 -> vignetting undefined (the baseline is unharmed)
    rel = mce["relative_ce"]["b"]
    assert rel["low_light"] == pytest.approx(1.0) and rel["dark_current"] == pytest.approx(0.1 / 0.6) and math.isnan(rel["vignetting"])
    assert mce["undefined"] == {"ce": [], "relative_ce": ["vignetting"]}
    assert mce["families"] == {"exposure": ["low_light"], "optics": ["vignetting"], "sensor": ["dark_current"]}
    assert mce["mce"]["b"] == pytest.approx({"exposure": 0.8 / 0.6, "optics": 3.0, "sensor": 0.625, "all": (0.8 / 0.6 + 3.0 + 0.625) / 3})
    assert mce["relative_mce"]["b"]["all"] == pytest.approx((1.0 + 0.1 / 0.6) / 2) and math.isnan(mce["relative_mce"]["b"]["optics"])
    assert mce["baseline"] == "a" and mce["error"] == "1 − accuracy" and mce["severities"] == [1, 3]
    # the drop: in-distribution 0.85 - mean raw accuracy
    assert r.raw_corruption_drop == pytest.approx(0.85 - np.mean(ACCURACY))
    assert r.summary()["under_raw_corruptions"] == pytest.approx(np.mean(ACCURACY))


def test_corruption_errors_normalise_by_the_named_baseline():
    errors = np.array([[[0.1, 0.3]], [[0.2, 0.2]], [[0.4, 0.4]]])
    ce, rel = corruption_errors(errors, np.array([0.0, 0.1, 0.2]), baseline=1)
    np.testing.assert_allclose(ce[:, 0], [0.4 / 0.4, 1.0, 0.8 / 0.4])
    np.testing.assert_allclose(rel[:, 0], [0.4 / 0.2, 1.0, 0.4 / 0.2])
    ce, rel = corruption_errors(np.zeros((2, 1, 2)), np.zeros(2), baseline=0)  # a perfect baseline: undefined, not infinite
    assert np.isnan(ce).all() and np.isnan(rel).all()


def test_results_json_carries_the_axis_and_older_files_load(tmp_path):
    r = _raw_results(ACCURACY)
    data = r.to_dict()
    assert data["raw_corruptions"] == ["low_light", "vignetting", "dark_current"] and data["raw_baseline"] == "a"
    assert data["raw_mce"]["relative_ce"]["b"]["vignetting"] is None  # NaN is null in JSON
    assert data["raw_mce"]["mce"]["b"]["optics"] == pytest.approx(3.0)
    assert any("mean corruption error relative to the baseline model (trained on a" in s.lower() for s in data["findings"]["statements"])
    assert [c["corruption"] for c in data["findings"]["raw_corruption_cells"]] == ["low_light"] * 2 + ["vignetting"] * 2 + ["dark_current"] * 2
    r.save(tmp_path / "results.json")
    back = SynthesisResults.load(tmp_path / "results.json")
    assert back.to_dict() == data
    # a file written before the axis existed: none of its keys
    old = {k: v for k, v in data.items() if not k.startswith("raw_")}
    older = SynthesisResults.from_dict(json.loads(json.dumps(old)))
    assert not older.has_raw_axis and older.raw_mce() == {} and math.isnan(older.raw_corruption_drop)
    assert not any(k.startswith("raw_") for k in older.to_dict()) and "under_raw_corruptions" not in older.summary()
    assert "raw_corruption_cells" not in older.findings()


def test_results_refuse_an_inconsistent_axis():
    with pytest.raises(InputError, match=r"raw_corruption_metrics\['accuracy'\] has shape \(2, 3, 3, 1\), expected \(2, 3, 2, 1\)"):
        _raw_results(np.zeros((2, 3, 3)))
    with pytest.raises(InputError, match=r"raw_baseline must be one of the train pipelines \['a', 'b'\], got 'c'"):
        _raw_results(ACCURACY, baseline="c")


def test_the_report_has_the_raw_section_with_the_baseline(tmp_path):
    page = write_report(tmp_path, _raw_results(ACCURACY)).read_text(encoding="utf-8")
    assert "<h2>Raw-domain corruptions</h2>" in page and "3 raw corruptions × 2 severities (baseline a)" in page
    assert "trained on <code>a</code>, 100% by construction" in page
    assert "Undefined where the baseline is unharmed (left out of the means): vignetting." in page
    assert '<td class="num">300%</td>' in page  # b's optics mCE
    assert "Under raw-domain corruptions:" in page
    plain = SynthesisResults(**{k: v for k, v in vars(_raw_results(ACCURACY)).items() if not k.startswith("raw_")})
    assert "Raw-domain" not in write_report(tmp_path / "plain", plain).read_text(encoding="utf-8")


def test_raw_cells_below_chance_are_flagged_with_the_class_they_collapse_to(tmp_path):
    # three classes (chance 1/3): b under dark_current at severity 3 scores 0.2, its predictions all 'z'
    accuracy = [[[0.8, 0.6], [0.9, 0.9], [0.7, 0.5]], [[0.7, 0.5], [0.8, 0.6], [0.75, 0.2]]]
    counts = np.zeros((2, 3, 2, 3, 3))
    counts[..., 0, 0] = counts[..., 1, 1] = counts[..., 2, 2] = 10.0
    counts[1, 2, 1] = [[0, 0, 10], [0, 0, 10], [0, 0, 10]]
    r = _raw_results(accuracy)
    r = SynthesisResults(**{**vars(r), "classes": ["x", "y", "z"], "raw_corruption_confusion": counts})
    below = r.findings()["below_chance"]
    [cell] = below["cells"]
    assert (cell["kind"], cell["train"], cell["corruption"], cell["severity"]) == ("raw corruption", "b", "dark_current", 3)
    assert cell["collapse"]["class"] == "z" and cell["collapse"]["collapsed"]
    assert "1 raw-corruption cells (dark_current)" in below["statement"] and "collapse to 'z'" in below["statement"]
    worst = {c["kind"]: c for c in r.findings()["worst_cells"]}
    assert worst["raw corruption"]["cell"] == "b → raw dark_current (severity 3)" and worst["raw corruption"]["confusion"] == counts[1, 2, 1].tolist()
    r.save(tmp_path / "results.json")
    back = SynthesisResults.load(tmp_path / "results.json")
    np.testing.assert_array_equal(back.raw_corruption_confusion, counts)
    with pytest.raises(InputError, match="raw_corruption_confusion"):
        SynthesisResults(**{**vars(r), "raw_corruption_confusion": counts[:, :2]})


def test_the_raw_heatmap_has_a_column_per_corruption_and_severity_on_the_matrix_scale(tmp_path):
    r = _raw_results(ACCURACY)
    fig = plot_raw_corruptions(r)
    ax = fig.axes[0]
    np.testing.assert_allclose(ax.images[0].get_array(), np.reshape(ACCURACY, (2, 6)))
    assert [t.get_text() for t in ax.get_xticklabels()] == ["low_light 1", "low_light 3", "vignetting 1", "vignetting 3", "dark_current 1", "dark_current 3"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a", "b"]
    assert ax.images[0].get_clim() == plot_matrix(r).axes[0].images[0].get_clim()
    write_report(tmp_path, r)
    assert (tmp_path / "figures" / "raw_corruptions.png").is_file()
    plain = SynthesisResults(**{k: v for k, v in vars(r).items() if not k.startswith("raw_")})
    with pytest.raises(InputError, match="the study has no raw corruptions"):
        plot_raw_corruptions(plain)
    write_report(tmp_path, plain)  # the same folder: the stale figure goes
    assert not (tmp_path / "figures" / "raw_corruptions.png").exists()


# -- a tiny study ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def raw_study(tmp_path_factory, tiny):
    """The tiny study with the raw axis (one test batch per fold: batch_size 32), run once: (config, run folder, results, progress lines)."""
    config = tiny.config("synthesis", raw_corruptions=RAW, training={"batch_size": 32})
    run = tmp_path_factory.mktemp("rawbench") / "run"
    lines: list[str] = []
    return config, run, run_synthesis(config, run, tracking=False, progress=lines.append), lines


def test_the_axis_equals_a_direct_computation(raw_study):
    """A unit's scores under raw corruptions are its model on the fold's raws corrupted by corrupt_raw with the documented seed, through its own pipeline."""
    config, run, results, _ = raw_study
    assert results.raw_corruption_metrics["accuracy"].shape == (2, 2, 2, 2)
    assert results.raw_families == {"low_light": "exposure", "vignetting": "optics"} and results.raw_baseline == "me,u,ga"
    folds = json.loads((run / "folds.json").read_text())
    data = load_raw_set(config.dataset)
    camera = config.raw_corruptions.camera_for(data.camera)
    for p, label in enumerate(config.train_pipelines):
        network = load_checkpoint(run / "units" / label / "fold1" / "model.pt").network.eval()
        module = Pipeline.preset(label, camera="microscopy").to_torch().eval()
        test = torch.as_tensor(folds[1][1])
        assert len(test) <= 32  # one batch: corrupt_raw's fresh generator draws what the study's did
        for c, name in enumerate(config.raw_corruptions.names):
            for s, severity in enumerate(config.raw_corruptions.severities):
                raws = corrupt_raw(data.raws[test], name, severity, camera=camera, seed=raw_corruption_seed(config.seed, 1, name, severity))
                with torch.no_grad():
                    predicted = network.predict(module(raws)).argmax(1)  # predict downsamples as the study does
                accuracy = (predicted == data.targets[test]).double().mean().item()
                assert results.raw_corruption_metrics["accuracy"][p, c, s, 1] == pytest.approx(accuracy, abs=1e-9), (label, name, severity)
    # low light at 3 % of the light really changes what the models see
    assert not np.allclose(results.raw_corruption_metrics["accuracy"][:, 0, 1], results.in_distribution_per_fold())
    # the confusion matrices summed over folds: every held-out image once per cell, the diagonal its accuracy
    confusion = results.raw_corruption_confusion
    images = sum(len(test) for _, test in folds)
    assert confusion.shape[:3] == (2, 2, 2) and (confusion.sum(axis=(-1, -2)) == images).all()
    per_fold = results.raw_corruption_metrics["accuracy"] * np.array([len(test) for _, test in folds])
    np.testing.assert_allclose(np.trace(confusion, axis1=-2, axis2=-1), per_fold.sum(axis=-1))


def test_the_run_folder_carries_the_axis(raw_study):
    run = raw_study[1]
    saved = json.loads((run / "results.json").read_text())
    assert saved["raw_corruptions"] == ["low_light", "vignetting"] and saved["raw_mce"]["baseline"] == "me,u,ga"
    assert saved["raw_mce"]["mce"]["me,u,ga"]["all"] == pytest.approx(1.0)
    unit = json.loads((run / "units" / "bi,s,me" / "fold0" / "result.json").read_text())
    assert set(unit["raw_corruptions"]) == {"low_light", "vignetting"} and set(unit["raw_corruptions"]["low_light"]) == {"1", "3"}
    assert set(unit["confusion"]["raw_corruptions"]["vignetting"]) == {"1", "3"}
    assert (
        sum(row.startswith("raw_corruption,") for row in (run / "results.csv").read_text().splitlines()) == 2 * 2 * 2 * 2
    )  # P × R × S × K of the one metric, accuracy
    assert "<h2>Raw-domain corruptions</h2>" in (run / "report.html").read_text(encoding="utf-8")


def test_a_unit_finished_without_the_axis_runs_again(raw_study):
    config, run, results, _ = raw_study
    stripped = run / "units" / "me,u,ga" / "fold0" / "result.json"
    result = json.loads(stripped.read_text())
    del result["raw_corruptions"]
    stripped.write_text(json.dumps(result))
    lines: list[str] = []
    again = run_synthesis(config, run, tracking=False, progress=lines.append)
    assert sum("done earlier, read back" in line for line in lines) == 3
    assert any("me,u,ga fold 1/2: its result lacks raw corruptions this experiment asks for; running it again" in line for line in lines)
    assert "raw_corruptions" in json.loads(stripped.read_text())
    np.testing.assert_array_equal(again.raw_corruption_metrics["accuracy"], results.raw_corruption_metrics["accuracy"])


# -- the command line --------------------------------------------------------------------------


def test_rawbench_run_refuses_an_experiment_without_the_axis(tmp_path, tiny, capsys):
    file = tiny.write("synthesis", tmp_path / "plain.yaml")
    assert main(["rawbench", "run", str(file), "--out", str(tmp_path / "run"), "--no-tracking"]) == 2
    assert "a raw-corruption benchmark needs raw_corruptions:" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_rawbench_run_runs_the_synthesis_study_and_prints_the_mce(tmp_path, tiny, capsys):
    file = tiny.write("synthesis", tmp_path / "bench.yaml", raw_corruptions={**RAW, "names": ["vignetting"], "severities": [3]}, folds=2)
    assert main(["rawbench", "run", str(file), "--out", str(tmp_path / "run"), "--no-tracking"]) == 0
    out = capsys.readouterr().out
    results = SynthesisResults.load(tmp_path / "run" / "results.json")
    assert results.raw_corruptions == ["vignetting"] and results.raw_corruption_metrics["accuracy"].shape == (2, 1, 1, 2)
    mce = results.raw_mce()["mce"]["bi,s,me"]["all"]
    assert f"mCE relative to me,u,ga: bi,s,me {100 * mce:.0f}%" in out
