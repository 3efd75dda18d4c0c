"""Drift-synthesis experiments as YAML files.

An experiment names its data, the data models to train and test on, the task model,
the training schedule, the folds, the corruption baseline and a seed::

    name: microscopy-small
    seed: 0
    dataset:
      kind: microscopy          # microscopy | drone (car segmentation) | drone-classification
      root: ../data/synthetic   # relative to this file
      intensity: 1.0
      synthetic: {n: 360}       # optional: write synthetic data there if it is missing
    pipelines:
      train: all                # "all" (the twelve presets) or a list of preset names / YAML files
      test: all
    model: {name: small_cnn, downsample: 4, options: {}}
    training: {epochs: 10, batch_size: 32, lr: 0.003}
    folds: 3
    corruptions: {names: all, severities: [3], scale: auto}

Every key is checked; a mistake is a :class:`~ispkit.errors.ConfigError` with the
file, line and column and the closest valid key.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import Locator, load_yaml
from ..corruptions import CORRUPTIONS
from ..errors import ISPKitError, close_matches
from ..pipeline import Pipeline, presets
from ..tasks.training import TrainConfig

__all__ = ["DATASET_KINDS", "DatasetConfig", "ModelConfig", "CorruptionConfig", "SynthesisConfig"]

DATASET_KINDS = {"microscopy": "classification", "drone": "segmentation", "drone-classification": "classification"}
"""Dataset kinds and the task each one poses."""


@dataclass(frozen=True)
class DatasetConfig:
    kind: str
    root: Path
    intensity: float = 1.0
    camera: str | None = None
    synthetic: dict[str, Any] | None = None

    @property
    def task(self) -> str:
        return DATASET_KINDS[self.kind]


@dataclass(frozen=True)
class ModelConfig:
    name: str
    downsample: int = 1
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CorruptionConfig:
    names: tuple[str, ...] = tuple(CORRUPTIONS)
    severities: tuple[int, ...] = (3,)
    scale: float | None = None
    """Spatial scale of the corruptions; ``None`` (``auto``): view width / 224."""


@dataclass(frozen=True)
class SynthesisConfig:
    """A parsed drift-synthesis experiment (see the module docstring for the YAML)."""

    name: str
    dataset: DatasetConfig
    train_pipelines: tuple[str, ...]
    test_pipelines: tuple[str, ...]
    pipeline_files: dict[str, Path]
    model: ModelConfig
    training: TrainConfig
    folds: int
    corruptions: CorruptionConfig
    seed: int = 0
    device: str = "auto"
    text: str = ""

    @classmethod
    def from_yaml(cls, path_or_text: str | os.PathLike[str]) -> SynthesisConfig:
        data, loc = load_yaml(path_or_text)
        base = Path(loc.source).parent if loc.source != "<string>" else Path.cwd()
        text = Path(loc.source).read_text(encoding="utf-8") if loc.source != "<string>" else str(path_or_text)
        return _parse(data, loc, base, text)

    def pipeline(self, label: str, camera: Any) -> Pipeline:
        """The :class:`~ispkit.Pipeline` a label stands for (a preset, or a YAML file)."""
        if label in self.pipeline_files:
            return Pipeline.from_yaml(self.pipeline_files[label])
        return Pipeline.preset(label, camera=camera)


_TOP = ("name", "seed", "device", "dataset", "pipelines", "model", "training", "folds", "corruptions")


def _mapping(value: Any, loc: Locator, path: tuple, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        loc.error(path, f"{what} must be a mapping, got {type(value).__name__}")
    return value


def _require(mapping: dict[str, Any], key: str, loc: Locator, path: tuple) -> Any:
    if key not in mapping:
        loc.error(path, f"missing required key {key!r}")
    return mapping[key]


def _int(value: Any, loc: Locator, path: tuple, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        loc.error(path, f"expected an integer >= {minimum}, got {value!r}")
    return value


def _pipelines(value: Any, loc: Locator, path: tuple, base: Path, files: dict[str, Path]) -> tuple[str, ...]:
    if value == "all":
        return tuple(presets())
    if not isinstance(value, list) or not value:
        loc.error(path, f"expected 'all' or a non-empty list of preset names / pipeline YAML files, got {value!r}")
    labels = []
    for i, item in enumerate(value):
        if not isinstance(item, str):
            loc.error((*path, i), f"expected a preset name or a YAML file, got {item!r}")
        if item.endswith((".yaml", ".yml")):
            file = (base / item).resolve()
            if not file.is_file():
                loc.error((*path, i), f"pipeline file {str(file)!r} not found")
            try:
                Pipeline.from_yaml(file)
            except ISPKitError as exc:
                loc.error((*path, i), f"pipeline file {item!r} is invalid: {exc}")
            label = file.stem
            if files.get(label, file) != file:
                loc.error((*path, i), f"two pipeline files are both labelled {label!r}: rename one")
            files[label] = file
        elif item not in presets():
            loc.error((*path, i), f"unknown preset {item!r}: {close_matches(item, presets())}")
        else:
            label = item
        labels.append(label)
    if len(set(labels)) != len(labels):
        loc.error(path, f"pipelines listed twice: {sorted({x for x in labels if labels.count(x) > 1})}")
    return tuple(labels)


def _parse(data: Any, loc: Locator, base: Path, text: str) -> SynthesisConfig:
    top = _mapping(data, loc, (), "the experiment")
    loc.check_keys(top, _TOP, (), "unknown experiment key")
    name = str(top.get("name", Path(loc.source).stem if loc.source != "<string>" else "synthesis"))
    seed = _int(top.get("seed", 0), loc, ("seed",), 0)
    device = top.get("device", "auto")
    if device not in ("auto", "cpu") and not str(device).startswith("cuda"):
        loc.error(("device",), f"expected 'auto', 'cpu' or 'cuda[:N]', got {device!r}")

    ds = _mapping(_require(top, "dataset", loc, ()), loc, ("dataset",), "dataset")
    loc.check_keys(ds, ("kind", "root", "intensity", "camera", "synthetic"), ("dataset",), "unknown dataset key")
    kind = _require(ds, "kind", loc, ("dataset",))
    if kind not in DATASET_KINDS:
        loc.error(("dataset", "kind"), f"expected one of {sorted(DATASET_KINDS)}, got {kind!r}")
    from ..data.published import intensity_folder

    intensity = ds.get("intensity", 1.0)
    try:
        intensity_folder(intensity)
    except ISPKitError as exc:
        loc.error(("dataset", "intensity"), str(exc))
    synthetic = _mapping(ds.get("synthetic"), loc, ("dataset", "synthetic"), "dataset.synthetic") if "synthetic" in ds else None
    allowed = ("n", "seed", "size") if kind == "microscopy" else ("n_frames", "seed", "height", "width", "cars_per_frame")
    if synthetic is not None:
        loc.check_keys(synthetic, allowed, ("dataset", "synthetic"), f"unknown synthetic {kind} setting")
    dataset = DatasetConfig(kind, (base / str(_require(ds, "root", loc, ("dataset",)))).resolve(), float(intensity), ds.get("camera"), synthetic)

    pl = _mapping(_require(top, "pipelines", loc, ()), loc, ("pipelines",), "pipelines")
    loc.check_keys(pl, ("train", "test"), ("pipelines",), "unknown pipelines key")
    files: dict[str, Path] = {}
    train = _pipelines(pl.get("train", "all"), loc, ("pipelines", "train"), base, files)
    test = _pipelines(pl.get("test", "all"), loc, ("pipelines", "test"), base, files)
    missing = [p for p in train if p not in test]
    if missing:
        loc.error(("pipelines", "test"), f"every train pipeline must also be a test pipeline (for its in-distribution score); missing {missing}")

    md = _mapping(_require(top, "model", loc, ()), loc, ("model",), "model")
    loc.check_keys(md, ("name", "downsample", "options"), ("model",), "unknown model key")
    from ..tasks.registry import task_models

    models = task_models()
    model_name = _require(md, "name", loc, ("model",))
    if model_name not in models:
        loc.error(("model", "name"), f"unknown task model {model_name!r}: {close_matches(str(model_name), sorted(models))}")
    if models[model_name].task != dataset.task:
        loc.error(("model", "name"), f"{model_name!r} is a {models[model_name].task} model but dataset kind {kind!r} is a {dataset.task} task")
    model = ModelConfig(model_name, _int(md.get("downsample", 1), loc, ("model", "downsample"), 1), dict(_mapping(md.get("options"), loc, ("model", "options"), "model.options")))

    tr = _mapping(top.get("training"), loc, ("training",), "training")
    loc.check_keys(tr, ("epochs", "batch_size", "lr", "weight_decay", "augment"), ("training",), "unknown training key")
    try:
        training = TrainConfig(seed=seed, **tr)
    except (ISPKitError, TypeError) as exc:
        loc.error(("training",), str(exc))

    folds = _int(top.get("folds", 5), loc, ("folds",), 2)

    cr = _mapping(top.get("corruptions"), loc, ("corruptions",), "corruptions")
    loc.check_keys(cr, ("names", "severities", "scale"), ("corruptions",), "unknown corruptions key")
    names = cr.get("names", "all")
    names = tuple(CORRUPTIONS) if names == "all" else names
    if not isinstance(names, (list, tuple)) or any(n not in CORRUPTIONS for n in names):
        loc.error(("corruptions", "names"), f"expected 'all' or a list from {list(CORRUPTIONS)}, got {names!r}")
    severities = cr.get("severities", [3])
    if not isinstance(severities, list) or not severities or any(isinstance(s, bool) or s not in (1, 2, 3, 4, 5) for s in severities):
        loc.error(("corruptions", "severities"), f"expected a non-empty list of severities 1..5, got {severities!r}")
    scale = cr.get("scale", "auto")
    if scale != "auto" and (isinstance(scale, bool) or not isinstance(scale, (int, float)) or scale <= 0):
        loc.error(("corruptions", "scale"), f"expected 'auto' or a positive number, got {scale!r}")
    corruptions = CorruptionConfig(tuple(names), tuple(severities), None if scale == "auto" else float(scale))
    return SynthesisConfig(name, dataset, train, test, files, model, training, folds, corruptions, seed, str(device), text)

