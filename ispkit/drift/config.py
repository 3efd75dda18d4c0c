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
    device: auto                # auto | cpu | cuda[:N]
    threads: 2                  # optional: torch threads per unit wherever it runs

``threads`` makes the results independent of where the units run: floating-point sums
in torch depend on the number of threads, so without it a unit uses the threads of the
process it runs in (all cores here; a share of the host's cores on a Dask worker), which
can flip a borderline prediction (:mod:`ispkit.drift.grid`). Every experiment kind takes
``seed``, ``device`` and ``threads``.

Every key is checked; a mistake is a :class:`~ispkit.errors.ConfigError` with the
file, line and column and the closest valid key.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import Locator, load_yaml
from ..corruptions import CORRUPTIONS
from ..errors import ISPKitError, close_matches
from ..pipeline import Pipeline, presets
from ..tasks.training import TrainConfig

__all__ = ["DATASET_KINDS", "DatasetConfig", "ModelConfig", "CorruptionConfig", "SynthesisConfig", "ForensicsConfig", "AdjustmentConfig", "ARMS"]

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
    threads: int | None = None

    @classmethod
    def from_yaml(cls, path_or_text: str | os.PathLike[str]) -> SynthesisConfig:
        return _read(path_or_text, _parse)

    def pipeline(self, label: str, camera: Any) -> Pipeline:
        """The :class:`~ispkit.Pipeline` a label stands for (a preset, or a YAML file)."""
        return _labelled_pipeline(label, self.pipeline_files, camera)


def _labelled_pipeline(label: str, files: dict[str, Path], camera: Any) -> Pipeline:
    """The pipeline of ``label``: the YAML file it names in ``files``, else the preset of that name for ``camera``."""
    if label in files:
        return Pipeline.from_yaml(files[label])
    return Pipeline.preset(label, camera=camera)


class _ReferencePipeline:
    """For experiments built around one pipeline: ``pipeline_label`` (a preset or a YAML file's stem)."""

    pipeline_label: str
    pipeline_files: dict[str, Path]

    def pipeline(self, camera: Any) -> Pipeline:
        """The experiment's pipeline (the reference of forensics, the start of the learned arm)."""
        return _labelled_pipeline(self.pipeline_label, self.pipeline_files, camera)


@dataclass(frozen=True)
class ForensicsConfig(_ReferencePipeline):
    """A parsed drift-forensics experiment (see :mod:`ispkit.drift.forensics` for the YAML)."""

    name: str
    dataset: DatasetConfig
    pipeline_label: str
    pipeline_files: dict[str, Path]
    checkpoint: Path | None
    model: ModelConfig | None
    training: TrainConfig
    folds: int
    fold: int
    samples: int | None
    subsets: tuple[str, ...]
    lambdas: tuple[float, ...]
    distance: str
    steps: int
    lr: float
    batch_size: int
    tolerance: float
    seed: int = 0
    device: str = "auto"
    text: str = ""
    threads: int | None = None

    @classmethod
    def from_yaml(cls, path_or_text: str | os.PathLike[str]) -> ForensicsConfig:
        return _read(path_or_text, _parse_forensics)



ARMS = ("learned", "frozen", "raw")
"""Drift-adjustment arms: pipeline trained jointly, pipeline frozen, model on the packed raw mosaic."""


@dataclass(frozen=True)
class AdjustmentConfig(_ReferencePipeline):
    """A parsed drift-adjustment experiment (see :mod:`ispkit.drift.adjustment` for the YAML)."""

    name: str
    dataset: DatasetConfig
    pipeline_label: str
    pipeline_files: dict[str, Path]
    intensities: tuple[float, ...]
    gain: float | None
    read_noise: float | None
    arms: tuple[str, ...]
    model: ModelConfig
    training: TrainConfig
    pipeline_lr: float
    folds: int
    seed: int = 0
    device: str = "auto"
    text: str = ""
    threads: int | None = None

    @classmethod
    def from_yaml(cls, path_or_text: str | os.PathLike[str]) -> AdjustmentConfig:
        return _read(path_or_text, _parse_adjustment)



def _read(path_or_text: str | os.PathLike[str], parse: Any) -> Any:
    """Load the YAML document and hand it to ``parse(data, locator, base folder, text)``."""
    data, loc = load_yaml(path_or_text)
    if loc.source == "<string>":
        return parse(data, loc, Path.cwd(), str(path_or_text))
    return parse(data, loc, Path(loc.source).parent, Path(loc.source).read_text(encoding="utf-8"))


_TOP = ("name", "seed", "device", "threads", "dataset", "pipelines", "model", "training", "folds", "corruptions")


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


def _header(data: Any, loc: Locator, allowed: tuple[str, ...], default_name: str) -> tuple[dict[str, Any], str, int, str, int | None]:
    """The top mapping, checked against ``allowed``, and its name, seed, device and torch threads per unit."""
    top = _mapping(data, loc, (), "the experiment")
    loc.check_keys(top, allowed, (), "unknown experiment key")
    name = str(top.get("name", Path(loc.source).stem if loc.source != "<string>" else default_name))
    seed = _int(top.get("seed", 0), loc, ("seed",), 0)
    device = top.get("device", "auto")
    if device not in ("auto", "cpu") and not str(device).startswith("cuda"):
        loc.error(("device",), f"expected 'auto', 'cpu' or 'cuda[:N]', got {device!r}")
    threads = _int(top["threads"], loc, ("threads",), 1) if "threads" in top else None
    return top, name, seed, str(device), threads


def _dataset(top: dict[str, Any], loc: Locator, base: Path) -> DatasetConfig:
    from ..data.published import intensity_folder

    ds = _mapping(_require(top, "dataset", loc, ()), loc, ("dataset",), "dataset")
    loc.check_keys(ds, ("kind", "root", "intensity", "camera", "synthetic"), ("dataset",), "unknown dataset key")
    kind = _require(ds, "kind", loc, ("dataset",))
    if kind not in DATASET_KINDS:
        loc.error(("dataset", "kind"), f"expected one of {sorted(DATASET_KINDS)}, got {kind!r}")
    intensity = ds.get("intensity", 1.0)
    try:
        intensity_folder(intensity)
    except ISPKitError as exc:
        loc.error(("dataset", "intensity"), str(exc))
    synthetic = _mapping(ds.get("synthetic"), loc, ("dataset", "synthetic"), "dataset.synthetic") if "synthetic" in ds else None
    allowed = ("n", "seed", "size") if kind == "microscopy" else ("n_frames", "seed", "height", "width", "cars_per_frame")
    if synthetic is not None:
        loc.check_keys(synthetic, allowed, ("dataset", "synthetic"), f"unknown synthetic {kind} setting")
    return DatasetConfig(kind, (base / str(_require(ds, "root", loc, ("dataset",)))).resolve(), float(intensity), ds.get("camera"), synthetic)


def _model(md: dict[str, Any], loc: Locator, task: str, kind: str, extra: tuple[str, ...] = ()) -> ModelConfig:
    from ..tasks.registry import task_models

    loc.check_keys(md, ("name", "downsample", "options", *extra), ("model",), "unknown model key")
    models = task_models()
    model_name = _require(md, "name", loc, ("model",))
    if model_name not in models:
        loc.error(("model", "name"), f"unknown task model {model_name!r}: {close_matches(str(model_name), sorted(models))}")
    if models[model_name].task != task:
        loc.error(("model", "name"), f"{model_name!r} is a {models[model_name].task} model but dataset kind {kind!r} is a {task} task")
    return ModelConfig(model_name, _int(md.get("downsample", 1), loc, ("model", "downsample"), 1), dict(_mapping(md.get("options"), loc, ("model", "options"), "model.options")))


def _training(top: dict[str, Any], loc: Locator, seed: int, **defaults: Any) -> TrainConfig:
    tr = _mapping(top.get("training"), loc, ("training",), "training")
    loc.check_keys(tr, ("epochs", "batch_size", "lr", "weight_decay", "augment", "recalibrate_bn"), ("training",), "unknown training key")
    try:
        return TrainConfig(seed=seed, **{**defaults, **tr})
    except (ISPKitError, TypeError) as exc:
        loc.error(("training",), str(exc))


def _parse(data: Any, loc: Locator, base: Path, text: str) -> SynthesisConfig:
    top, name, seed, device, threads = _header(data, loc, _TOP, "synthesis")
    dataset = _dataset(top, loc, base)
    pl = _mapping(_require(top, "pipelines", loc, ()), loc, ("pipelines",), "pipelines")
    loc.check_keys(pl, ("train", "test"), ("pipelines",), "unknown pipelines key")
    files: dict[str, Path] = {}
    train = _pipelines(pl.get("train", "all"), loc, ("pipelines", "train"), base, files)
    test = _pipelines(pl.get("test", "all"), loc, ("pipelines", "test"), base, files)
    missing = [p for p in train if p not in test]
    if missing:
        loc.error(("pipelines", "test"), f"every train pipeline must also be a test pipeline (for its in-distribution score); missing {missing}")
    model = _model(_mapping(_require(top, "model", loc, ()), loc, ("model",), "model"), loc, dataset.task, dataset.kind)
    training = _training(top, loc, seed)
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
    return SynthesisConfig(name, dataset, train, test, files, model, training, folds, corruptions, seed, device, text, threads)


_FORENSICS_TOP = ("name", "seed", "device", "threads", "dataset", "pipeline", "model", "training", "split", "samples", "subsets", "lambdas", "distance", "optimisation", "tolerance")


def _number(value: Any, loc: Locator, path: tuple, *, low: float, high: float = math.inf, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        loc.error(path, f"expected {what}, got {value!r}")
    return float(value)


def _parse_forensics(data: Any, loc: Locator, base: Path, text: str) -> ForensicsConfig:
    from ..registry import get_registry

    top, name, seed, device, threads = _header(data, loc, _FORENSICS_TOP, "forensics")
    dataset = _dataset(top, loc, base)
    files: dict[str, Path] = {}
    label = _pipelines([_require(top, "pipeline", loc, ())], loc, ("pipeline",), base, files)[0]
    camera = dataset.camera or ("microscopy" if dataset.kind == "microscopy" else "drone")
    reference = Pipeline.from_yaml(files[label]) if label in files else Pipeline.preset(label, camera=camera)

    md = _mapping(_require(top, "model", loc, ()), loc, ("model",), "model")
    checkpoint, model = None, None
    if "checkpoint" in md:
        loc.check_keys(md, ("checkpoint",), ("model",), "with a checkpoint, unexpected model key")
        checkpoint = (base / str(md["checkpoint"])).resolve()  # may be written by a study run before this one
    else:
        model = _model(md, loc, dataset.task, dataset.kind)
    training = _training(top, loc, seed)

    sp = _mapping(top.get("split"), loc, ("split",), "split")
    loc.check_keys(sp, ("folds", "fold"), ("split",), "unknown split key")
    folds = _int(sp.get("folds", 5), loc, ("split", "folds"), 2)
    fold = _int(sp.get("fold", 0), loc, ("split", "fold"), 0)
    if fold >= folds:
        loc.error(("split", "fold"), f"fold {fold} does not exist with {folds} folds (folds are numbered from 0)")
    samples = top.get("samples")
    if samples is not None:
        samples = _int(samples, loc, ("samples",), 1)

    trainable = {s.name for s in reference.stages if any(p.differentiable and p.dtype is float for p in s.stage.params)}
    subsets = top.get("subsets", "all")
    if subsets == "all":
        subsets = ["all", *[s.name for s in reference.stages if s.name in trainable]]
    if not isinstance(subsets, list) or not subsets:
        loc.error(("subsets",), f"expected 'all' or a list of 'all' and stage names, got {subsets!r}")
    for i, subset in enumerate(subsets):
        if subset != "all" and subset not in trainable:
            names = [s.name for s in reference.stages]
            why = "has no differentiable parameters" if subset in names else f"is not a stage of {label!r} ({', '.join(names)})"
            loc.error(("subsets", i), f"subset {subset!r} {why}")

    lambdas = top.get("lambdas", [0.0, 0.1, 1.0, 10.0, 100.0])
    if not isinstance(lambdas, list) or not lambdas:
        loc.error(("lambdas",), f"expected a non-empty list of λ >= 0 (.inf allowed), got {lambdas!r}")
    lambdas = [_number(v, loc, ("lambdas", i), low=0.0, what="λ >= 0 (.inf allowed)") for i, v in enumerate(lambdas)]

    distance = top.get("distance", "l2")
    found = get_registry().distances()
    if distance not in found:
        loc.error(("distance",), f"unknown distance {distance!r}: {close_matches(str(distance), sorted(found))}")

    op = _mapping(top.get("optimisation"), loc, ("optimisation",), "optimisation")
    loc.check_keys(op, ("steps", "lr", "batch_size"), ("optimisation",), "unknown optimisation key")
    steps = _int(op.get("steps", 60), loc, ("optimisation", "steps"), 1)
    lr = _number(op.get("lr", 0.02), loc, ("optimisation", "lr"), low=1e-12, high=1e6, what="a relative learning rate > 0")
    batch = _int(op.get("batch_size", 32), loc, ("optimisation", "batch_size"), 1)
    tolerance = _number(top.get("tolerance", 0.05), loc, ("tolerance",), low=0.0, high=1.0, what="a tolerance in [0, 1]")
    return ForensicsConfig(
        name, dataset, label, files, checkpoint, model, training, folds, fold, samples, tuple(subsets), tuple(lambdas),
        distance, steps, lr, batch, tolerance, seed, device, text, threads,
    )  # fmt: skip


_ADJUSTMENT_TOP = ("name", "seed", "device", "threads", "dataset", "pipeline", "intensities", "sensor", "arms", "model", "training", "pipeline_lr", "folds")


def _parse_adjustment(data: Any, loc: Locator, base: Path, text: str) -> AdjustmentConfig:
    top, name, seed, device, threads = _header(data, loc, _ADJUSTMENT_TOP, "adjustment")
    dataset = _dataset(top, loc, base)
    files: dict[str, Path] = {}
    label = _pipelines([_require(top, "pipeline", loc, ())], loc, ("pipeline",), base, files)[0]
    intensities = top.get("intensities", [0.001, 1.0])
    if not isinstance(intensities, list) or not intensities:
        loc.error(("intensities",), f"expected a non-empty list of intensity factors in (0, 1], got {intensities!r}")
    intensities = [_number(v, loc, ("intensities", i), low=1e-9, high=1.0, what="an intensity factor in (0, 1]") for i, v in enumerate(intensities)]
    sensor = _mapping(top.get("sensor"), loc, ("sensor",), "sensor")
    loc.check_keys(sensor, ("gain", "read_noise"), ("sensor",), "unknown sensor key")
    gain = _number(sensor["gain"], loc, ("sensor", "gain"), low=1e-9, what="a gain > 0 (DN per electron)") if "gain" in sensor else None
    read_noise = _number(sensor["read_noise"], loc, ("sensor", "read_noise"), low=0.0, what="a read noise >= 0 (electrons)") if "read_noise" in sensor else None
    arms = top.get("arms", list(ARMS))
    if not isinstance(arms, list) or not arms or any(a not in ARMS for a in arms) or len(set(arms)) != len(arms):
        loc.error(("arms",), f"expected a list of distinct arms from {list(ARMS)}, got {arms!r}")
    model = _model(_mapping(_require(top, "model", loc, ()), loc, ("model",), "model"), loc, dataset.task, dataset.kind)
    if "raw" in arms and model.downsample > 1 and model.downsample % 2:
        loc.error(("model", "downsample"), f"the raw arm packs the mosaic to half resolution, so downsample must be 1 or even, got {model.downsample}")
    training = _training(top, loc, seed, recalibrate_bn=True)  # the learned arm's inputs change as it trains
    pipeline_lr = _number(top.get("pipeline_lr", 0.01), loc, ("pipeline_lr",), low=1e-12, high=1e6, what="a learning rate > 0")
    folds = _int(top.get("folds", 5), loc, ("folds",), 2)
    return AdjustmentConfig(name, dataset, label, files, tuple(intensities), gain, read_noise, tuple(arms), model, training, pipeline_lr, folds, seed, device, text, threads)
