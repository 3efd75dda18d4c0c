"""Qt-free tests of the drift view and classifier logic (the jobs: test_jobs.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from napari_drift.logic.classifier import ClassifierModel, bundled_checkpoint, softmax
from napari_drift.logic.composer import to_view
from napari_drift.logic.drift_view import difference_stack, drift_stack

from ispkit import Pipeline
from ispkit.data import RawMicroscopy, sample
from ispkit.tasks import build_network, save_checkpoint

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
