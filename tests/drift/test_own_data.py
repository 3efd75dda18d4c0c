"""A drift-synthesis study on a user's own raw files and a user's own model, end to end.

The files are what a user has: photographs exposed on a 12-bit GRBG camera that ispkit does
not ship, as raw TIFFs with a CSV manifest (path, label, group) or with masks; the model is a
plain ``torch.nn.Module`` factory in a module of the user's (``tests/tasks/factory_models.py``),
named by its path in the experiment. Nothing is registered as a plugin.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from rawfolders import LAB_CAMERA, natural_raws, write_manifest

from ispkit.drift.config import SynthesisConfig
from ispkit.drift.runs import load_raw_set
from ispkit.drift.synthesis import run_synthesis
from ispkit.errors import InputError, RawFormatError
from ispkit.io import write_raw
from ispkit.pipeline import Pipeline
from ispkit.tasks import load_checkpoint

TASKS_DIR = Path(__file__).resolve().parents[1] / "tasks"
PIPELINES = ["bi,s,me", "me,u,ga"]


@pytest.fixture
def own_module(monkeypatch):
    monkeypatch.syspath_prepend(str(TASKS_DIR))  # the user's module of model factories, importable by name


def _experiment(folder: Path, dataset: str, model: str, pipelines: list[str] = PIPELINES) -> Path:
    listed = ", ".join(f'"{p}"' for p in pipelines)
    text = f"""\
name: own-data
dataset: {dataset}
pipelines: {{train: [{listed}], test: [{listed}]}}
model: {model}
training: {{epochs: 1, batch_size: 8, lr: 0.003}}
folds: 2
corruptions: {{names: [contrast], severities: [3]}}
device: cpu
"""
    file = folder / "experiment.yaml"
    file.write_text(text, encoding="utf-8")
    return file


def test_a_study_on_raw_files_with_a_csv_manifest_and_a_factory_model(tmp_path, own_module):
    write_manifest(tmp_path / "my_data", n=8)  # 3 photographs × 8 crops, groups: photograph and half
    config = SynthesisConfig.from_yaml(
        _experiment(tmp_path, "{kind: folder, manifest: my_data/labels.csv}", '{factory: "factory_models:tiny_cnn", options: {width: 4}}')
    )
    results = run_synthesis(config, tmp_path / "run", tracking=False)
    assert results.task == "classification" and results.metric == "accuracy" and results.train_pipelines == PIPELINES
    accuracy = results.metrics["accuracy"]
    assert accuracy.shape == (2, 2, 2) and results.corruption_metrics["accuracy"].shape == (2, 1, 1, 2)
    # the grouped folds never split a source (a photograph's half), and an accuracy over n test images is a multiple of 1/n
    groups = load_raw_set(config.dataset).groups
    folds = json.loads((tmp_path / "run" / "folds.json").read_text())
    assert sorted(i for _, test in folds for i in test) == list(range(24))
    assert not {groups[i] for i in folds[0][1]} & {groups[i] for i in folds[1][1]}
    for k, (_, test) in enumerate(folds):
        counts = accuracy[:, :, k] * len(test)
        np.testing.assert_allclose(counts, np.round(counts), atol=1e-9)
    # each unit's checkpoint records the factory path and rebuilds from it, reproducing the unit's score
    checkpoint = load_checkpoint(tmp_path / "run" / "units" / "me,u,ga" / "fold1" / "model.pt")
    network = checkpoint.network
    assert (network.name, network.options, network.classes) == ("factory_models:tiny_cnn", {"width": 4}, ["chelsea", "coffee", "rocket"])
    assert Pipeline.from_yaml(checkpoint.pipeline_yaml) == Pipeline.preset("me,u,ga", camera=LAB_CAMERA)  # the files' camera
    data = load_raw_set(config.dataset)
    assert data.camera == LAB_CAMERA
    test = torch.as_tensor(folds[1][1])
    with torch.no_grad():
        views = Pipeline.preset("bi,s,me", camera=LAB_CAMERA).to_torch()(data.raws[test])
        score = (network.predict(views).argmax(1) == data.targets[test]).float().mean().item()
    assert score == pytest.approx(accuracy[1, 0, 1], abs=1e-6)


def test_a_segmentation_study_on_raw_files_with_masks_and_a_factory_class(tmp_path, own_module):
    root = tmp_path / "scenes"
    for i, raw in enumerate(natural_raws("rocket", 6)):
        write_raw(root / f"scene{i}.tiff", raw, LAB_CAMERA)
        (root / "masks").mkdir(exist_ok=True)
        Image.fromarray(((raw > np.median(raw)) * 255).astype(np.uint8)).save(root / "masks" / f"scene{i}.png")
    config = SynthesisConfig.from_yaml(
        _experiment(tmp_path, "{kind: folder-segmentation, root: scenes}", '{factory: "factory_models:TinySegmenter", task: segmentation}', ["bi,s,me"])
    )
    results = run_synthesis(config, tmp_path / "run", tracking=False)
    assert results.task == "segmentation" and results.metrics[results.metric].shape == (1, 1, 2)
    assert np.all((results.metrics["dice"] >= 0) & (results.metrics["dice"] <= 1))
    network = load_checkpoint(tmp_path / "run" / "units" / "bi,s,me" / "fold0" / "model.pt").network
    assert (network.name, network.task) == ("factory_models:TinySegmenter", "segmentation")


def test_a_study_refuses_files_that_do_not_share_a_camera_or_a_size_before_training(tmp_path, own_module):
    write_manifest(tmp_path / "my_data", n=4)
    odd = tmp_path / "my_data" / "files" / "rocket_03.tiff"
    odd.unlink()
    write_raw(odd, natural_raws("rocket", 4)[3], replace(LAB_CAMERA, white_balance=(2.0, 1.0, 1.4)))  # another shot's white balance
    file = _experiment(tmp_path, "{kind: folder, manifest: my_data/labels.csv}", '{factory: "factory_models:tiny_cnn"}')
    config = SynthesisConfig.from_yaml(file)  # only the first file is read when the experiment is
    with pytest.raises(
        RawFormatError, match=r"rocket_03.tiff and .*coffee_00.tiff carry different cameras: white_balance \(\(2.0, 1.0, 1.4\) vs \(1.8, 1.0, 1.5\)\)"
    ):
        run_synthesis(config, tmp_path / "run", tracking=False)
    assert not (tmp_path / "run" / "units").exists()
    # one camera for all, given in the experiment: the study runs past the files' own cameras, but sizes must still agree
    write_raw(odd, natural_raws("rocket", 4, size=48)[3], LAB_CAMERA, overwrite=True)
    file.write_text(file.read_text().replace("labels.csv}", "labels.csv, camera: microscopy}"))
    config = SynthesisConfig.from_yaml(file)
    with pytest.raises(RawFormatError, match=r"rocket_03.tiff: mosaic 48×48, but .*coffee_00.tiff \(the dataset's first file\) is 32×32"):
        run_synthesis(config, tmp_path / "run2", tracking=False)


def test_a_factory_whose_module_disappeared_is_refused_when_the_units_are_built(tmp_path, own_module, monkeypatch):
    write_manifest(tmp_path / "my_data", n=4)
    config = SynthesisConfig.from_yaml(_experiment(tmp_path, "{kind: folder, manifest: my_data/labels.csv}", '{factory: "factory_models:tiny_cnn"}'))
    gone = replace(config, model=replace(config.model, name="factory_models_gone:tiny_cnn"))  # as a Dask worker without the module sees it
    with pytest.raises(InputError, match="model factory 'factory_models_gone:tiny_cnn': cannot import module 'factory_models_gone'"):
        run_synthesis(gone, tmp_path / "run", tracking=False)
