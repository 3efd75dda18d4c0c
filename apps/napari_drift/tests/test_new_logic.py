"""Qt-free tests of the drift view, classifier and jobs logic."""

from __future__ import annotations

import json
import os
import signal

import numpy as np
import pytest
import torch
from ispkit import Pipeline
from ispkit.data import RawMicroscopy, sample
from ispkit.tasks import build_network, save_checkpoint

from napari_drift.logic.classifier import ClassifierModel, bundled_checkpoint, softmax
from napari_drift.logic.composer import to_view
from napari_drift.logic.drift_view import difference_stack, drift_stack
from napari_drift.logic.jobs import JobError, JobRunner, _decode, detect_kind, figures, forensics_pipelines, parse_progress


# -- drift view -------------------------------------------------------------------------


def test_drift_stack_equals_presets(mosaic):
    stack = drift_stack(mosaic, "microscopy", ["bi,s,me", "ma,s,ga"], backend="numpy")
    assert stack.names == ("bi,s,me", "ma,s,ga") and stack.data.shape == (2, *mosaic.shape, 3) and stack.data.dtype == np.float32
    for i, name in enumerate(stack.names):
        np.testing.assert_array_equal(stack.data[i], to_view(Pipeline.preset(name, camera="microscopy")(mosaic)))
    torch_stack = drift_stack(mosaic, "microscopy", ["bi,s,me", "ma,s,ga"], backend="torch")
    np.testing.assert_allclose(torch_stack.data, stack.data, atol=1e-4)


def test_drift_stack_all_presets_and_difference(mosaic):
    stack = drift_stack(mosaic, "microscopy")
    assert len(stack.names) == 12
    a, b = stack.index("bi,s,me"), stack.index("ma,s,ga")
    diff = stack.difference("ma,s,ga")
    np.testing.assert_array_equal(diff[a], np.abs(stack.data[a] - stack.data[b]))
    assert not diff[b].any() and diff[a].max() > 0
    np.testing.assert_array_equal(difference_stack(stack.data, b), diff)


def test_drift_stack_rejects_bad_input(mosaic):
    with pytest.raises(Exception, match="unknown preset"):
        drift_stack(mosaic, "microscopy", ["nope"])
    with pytest.raises(Exception, match="at least one"):
        drift_stack(mosaic, "microscopy", [])


# -- classifier -------------------------------------------------------------------------


@pytest.fixture
def crop() -> np.ndarray:
    return np.random.default_rng(2).random((128, 128)) * 0.8 + 0.1


@pytest.fixture(scope="module")
def bundled():
    return ClassifierModel.bundled()


def test_probabilities_are_softmax_of_predict(bundled, crop):
    view = to_view(Pipeline.preset("bi,s,me", camera="microscopy")(crop))
    prediction = bundled.predict_view(view)
    with torch.no_grad():
        logits = bundled.network.predict(torch.from_numpy(np.moveaxis(view, -1, 0).copy())[None])[0].numpy()
    manual = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    np.testing.assert_allclose(prediction.probabilities, manual, rtol=1e-5, atol=1e-7)
    assert prediction.probabilities.sum() == pytest.approx(1.0)
    assert prediction.label == bundled.classes[int(np.argmax(logits))]
    assert [p for _, p in prediction.table()] == sorted(prediction.probabilities, reverse=True)
    np.testing.assert_allclose(softmax(np.array([[0.0, np.log(3.0)]])), [[0.25, 0.75]])


def test_bundled_checkpoint_beats_chance(bundled):
    assert bundled_checkpoint().stat().st_size < 2_000_000
    assert bundled.task == "classification" and bundled.network.name == "small_cnn" and len(bundled.classes) == 8
    assert Pipeline.from_yaml(bundled.pipeline_yaml).name == "bi,s,me"
    data = RawMicroscopy(sample("microscopy"), min_samples=1)
    hits = 0
    for i in range(len(data)):
        raw, label = data[i]
        hits += bundled.predict_mosaic(raw[0].numpy(), data.camera).label == data.classes[label]
    # measured: 8 of 12 (chance: 1 in 8 classes)
    assert hits / len(data) >= 0.5


def test_missing_and_invalid_checkpoints(tmp_path):
    with pytest.raises(FileNotFoundError):
        ClassifierModel.load(tmp_path / "nope.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(Exception, match="not a readable"):
        ClassifierModel.load(bad)


def test_segmentation_checkpoint_gives_a_mask(tmp_path, crop):
    mosaic = crop[:64, :64]
    torch.manual_seed(0)
    network = build_network("small_unet", 1, downsample=2)
    path = save_checkpoint(tmp_path / "seg.pt", network, pipeline_yaml=Pipeline.preset("bi,s,me", camera="microscopy").to_yaml())
    model = ClassifierModel.load(path)
    prediction = model.predict_mosaic(mosaic, "microscopy")
    assert prediction.task == "segmentation" and prediction.probabilities is None
    assert prediction.mask.shape == mosaic.shape and set(np.unique(prediction.mask)) <= {0, 1}


# -- jobs ---------------------------------------------------------------------------------


def test_parse_progress():
    assert parse_progress("[3/40] gamma λ=0 accuracy 0.5").fraction == pytest.approx(3 / 40)
    assert parse_progress("[2/4] bi,s,me fold 2/3  epoch 6/12  loss 1").done == pytest.approx(1.5)
    assert parse_progress("training small_cnn") is None


def test_forensics_job_runs_and_cancel_stops_early(tiny_forensics, tmp_path):
    assert detect_kind(tiny_forensics) == "forensics"
    runner = JobRunner(None, tiny_forensics, tmp_path / "run")
    lines = runner.run()
    assert runner.finished and not runner.cancelled
    assert [parse_progress(l).done for l in lines if parse_progress(l)] == [1, 2, 3]
    assert set(forensics_pipelines(tmp_path / "run")) == {("gamma", 0.0), ("gamma", 100.0), ("gamma", float("inf"))}
    assert figures(tmp_path / "run") and json.loads((tmp_path / "run" / "results.json").read_text())

    cancelled = JobRunner("forensics", tiny_forensics, tmp_path / "cancelled")
    seen = []
    for line in cancelled.lines():
        seen.append(line)
        if parse_progress(line):
            cancelled.cancel()
    assert cancelled.cancelled and not cancelled.finished
    assert not (tmp_path / "cancelled" / "results.json").exists()
    done = len(forensics_pipelines(tmp_path / "cancelled"))
    assert 1 <= done < 3
    resumed = JobRunner("forensics", tiny_forensics, tmp_path / "cancelled")
    again = resumed.run()
    assert resumed.finished and len(forensics_pipelines(tmp_path / "cancelled")) == 3
    assert sum(1 for l in again if parse_progress(l) and "done earlier" not in l) == 3 - done  # finished units are not redone
    assert sum("done earlier, read back" in l for l in again) == done + 1  # and the task model


def test_cancel_before_first_progress_point(tiny_forensics, tmp_path):
    runner = JobRunner("forensics", tiny_forensics, tmp_path / "run")
    runner.cancel()
    assert list(runner.lines())[-1].startswith("cancelled") and runner.cancelled
    assert not forensics_pipelines(tmp_path / "run")


def test_detect_kind_refuses_a_yaml_bomb_quickly(tmp_path):
    """The jobs panel reads an experiment the user picks: through ispkit's hardened loader, not plain PyYAML."""
    import time

    from ispkit.errors import ConfigError

    lines = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 10)]
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + "\nsubsets: *a9\n")
    start = time.perf_counter()
    with pytest.raises(ConfigError, match=r"bomb\.yaml:2:\d+: .*alias"):
        detect_kind(path)
    assert time.perf_counter() - start < 2


def test_detect_kind_rejects_synthesis(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("name: x\npipelines: {train: all, test: all}\n")
    with pytest.raises(Exception, match="synthesis"):
        detect_kind(path)
    with pytest.raises(FileNotFoundError):
        JobRunner(None, tmp_path / "missing.yaml", tmp_path / "run")


def test_a_failing_job_raises_its_error_from_the_job_process(tiny_forensics, tiny_microscopy_root, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    config = tmp_path / "no_data.yaml"  # valid YAML, but the dataset folder holds no images: the run fails
    config.write_text(tiny_forensics.read_text().replace(str(tiny_microscopy_root), str(empty)), encoding="utf-8")
    runner = JobRunner("forensics", config, tmp_path / "run")
    with pytest.raises(JobError, match=r"^FileNotFoundError: Raw-Microscopy images not found") as info:
        runner.run()
    assert info.value.type_name == "FileNotFoundError" and "Traceback (most recent call last)" in info.value.details
    assert runner.returncode == 1 and not runner.finished and not runner.cancelled


def test_a_killed_job_process_is_an_error_not_a_crash(tiny_forensics, tmp_path):
    runner = JobRunner("forensics", tiny_forensics, tmp_path / "run")
    lines = runner.lines()
    assert runner.pid is None
    next(lines)  # the job process is running
    os.kill(runner.pid, signal.SIGKILL)
    with pytest.raises(JobError, match="ended without a result \\(killed by SIGKILL\\)") as info:
        list(lines)
    assert info.value.type_name == "JobProcessDied" and runner.returncode == -signal.SIGKILL


def test_job_protocol_ignores_foreign_lines():
    assert _decode('{"event": "line", "text": "[1/3] x"}') == {"event": "line", "text": "[1/3] x"}
    for foreign in ("[1/3] gamma", "", "{", "[]", '"event"', '{"event": 3}', '{"text": "x"}', "null"):
        assert _decode(foreign) is None, foreign
