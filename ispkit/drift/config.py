"""Drift-synthesis experiments as YAML files.

An experiment names its data, the data models to train and test on, the task model,
the training schedule, the folds, the corruption baseline and a seed::

    name: microscopy-small
    seed: 0
    dataset:
      kind: microscopy          # microscopy | drone (car segmentation) | drone-classification | folder | folder-segmentation
      root: ../data/synthetic   # relative to this file
      intensity: 1.0
      synthetic: {n: 360}       # optional: write synthetic data there if it is missing
      camera: microscopy        # optional: a camera name or YAML file (relative to this file)
    pipelines:
      train: all                # "all" (the twelve presets) or a list of preset names / YAML files
      test: all
    model: {name: small_cnn, downsample: 4, options: {}}
    training: {epochs: 10, batch_size: 32, lr: 0.003}
    folds: 3
    corruptions: {names: all, severities: [3], scale: auto}
    raw_corruptions: {names: all, severities: [1, 3, 5], baseline: "bi,s,me"}   # optional: the raw-domain axis
    device: auto                # auto | cpu | cuda[:N]
    threads: 2                  # optional: torch threads per unit wherever it runs

**Your own data** (:mod:`ispkit.data.folder`): kind ``folder`` (classification) or
``folder-segmentation``, with either ``root:`` (a folder of class sub-folders, or of raw
files with ``masks/``) or ``manifest:`` (a CSV file with ``path,label[,group]`` or
``path[,mask][,group]``); ``camera:`` is optional (default: the files' own, which must agree);
``intensity`` and ``synthetic`` belong to the published kinds::

    dataset: {kind: folder, manifest: my_cells/labels.csv}

The layout and the manifest are checked when the experiment is read: a manifest's mistakes
are :class:`~ispkit.errors.ConfigError` at the CSV's line, and the first raw file must
carry a camera unless ``camera:`` gives one.

**Your own model** (:mod:`ispkit.tasks.factory`): instead of ``name:`` (a registered task
model), ``factory:`` names any ``torch.nn.Module`` factory by its path, with an optional
``task:`` (default: the dataset's task, which it must be)::

    model: {factory: "my_package.models:tiny_cnn", task: classification, options: {width: 8}, downsample: 4}

The module is imported when the experiment is read, so a missing module, a missing or
non-callable attribute and unknown options are errors at their line.

**Raw-domain corruptions** (:mod:`ispkit.raw_corruptions`, optional; absent: the study has no
such axis): ``names`` (``all``: every registered raw corruption, plugins' included, or a
list), ``severities`` (default ``[1, 2, 3, 4, 5]``), ``baseline`` (the train pipeline whose
errors normalise the mean corruption error, default: the first train pipeline) and
``camera`` (camera facts the corruptions need and the dataset's camera lacks:
``{gain: 2.2, read_noise: 1.5}`` for the synthetic microscopy data)::

    raw_corruptions: {names: [low_light, vignetting], severities: [1, 3], baseline: "bi,s,me", camera: {gain: 2.2, read_noise: 1.5}}

When the experiment is read, every corruption is applied once at every severity to a tiny
raw with the dataset's camera, so an unknown name (with close matches), a camera fact
missing, or a severity the camera cannot take (``illuminant`` 4–5 on the published
microscopy colour matrix) is an error at its line before anything runs.

``threads`` makes the results independent of where the units run: floating-point sums
in torch depend on the number of threads, so without it a unit uses the threads of the
process it runs in (all cores here; a share of the host's cores on a Dask worker), which
can flip a borderline prediction (:mod:`ispkit.drift.grid`). Every experiment kind takes
``seed``, ``device`` and ``threads``.

Every key and every value is checked when the file is read, before anything runs: a
mistake (an unknown key, a string where a number belongs, ``.nan``, ``.inf``, a value
out of range, ``'no'`` where a boolean belongs) is a :class:`~ispkit.errors.ConfigError`
with the file, line and column, the key and what was expected.
"""

from __future__ import annotations

import inspect
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import Locator, check_bool, check_choice, check_int, check_number, check_string, parse_yaml, read_text_or_path
from ..corruptions import CORRUPTIONS
from ..errors import ISPKitError, close_matches
from ..pipeline import Pipeline, presets
from ..tasks.training import TrainConfig
from .distances import distances

__all__ = [
    "DATASET_KINDS", "FOLDER_KINDS", "DatasetConfig", "ModelConfig", "CorruptionConfig", "RawCorruptionConfig", "ExperimentConfig", "SynthesisConfig", "RawBenchConfig", "ForensicsConfig", "AdjustmentConfig", "ARMS",
    "DEFAULT_ARMS", "AUGMENTATION_CORRUPTIONS", "AugmentationConfig", "HeldOutConfig",
    "AcquisitionConfig", "ACQUISITION_VARIABLES", "OPTICS_PLUGIN", "optics_of",
    "COMMANDS", "ShippedExperiment", "shipped_experiments", "copy_experiment",
]  # fmt: skip

DATASET_KINDS = {
    "microscopy": "classification",
    "drone": "segmentation",
    "drone-classification": "classification",
    "folder": "classification",
    "folder-segmentation": "segmentation",
}
"""Dataset kinds and the task each one poses."""

FOLDER_KINDS = ("folder", "folder-segmentation")
"""The dataset kinds of your own raw files (:mod:`ispkit.data.folder`); the others read the published layout."""

_BUILT_IN_CAMERAS = {"microscopy": "microscopy", "drone": "drone", "drone-classification": "drone"}


@dataclass(frozen=True)
class DatasetConfig:
    """The data an experiment runs on.

    Attributes
    ----------
    kind
        One of :data:`DATASET_KINDS`.
    root
        The dataset's folder (for a manifest, the manifest's folder), absolute.
    intensity
        The published intensity (published kinds).
    camera
        A registered camera name or a camera YAML file (absolute path), or ``None``: the
        published kinds' built-in camera, the files' own for :data:`FOLDER_KINDS`.
    synthetic
        Settings to write synthetic data at ``root`` when missing (published kinds).
    manifest
        The CSV manifest of a folder kind, absolute, or ``None``.
    """

    kind: str
    root: Path
    intensity: float = 1.0
    camera: str | None = None
    synthetic: dict[str, Any] | None = None
    manifest: Path | None = None

    @property
    def task(self) -> str:
        return DATASET_KINDS[self.kind]

    @property
    def source(self) -> Path:
        """What a folder kind's dataset reads: the manifest, else the folder."""
        return self.manifest or self.root

    @property
    def default_camera(self) -> str | None:
        """The camera the raws are read with: ``camera``, else the kind's built-in one; ``None``: the files' own."""
        return self.camera or _BUILT_IN_CAMERAS.get(self.kind)


@dataclass(frozen=True)
class ModelConfig:
    """The task model to train: ``name`` is a registered task model or a factory path ``"package.module:function"``
    (:mod:`ispkit.tasks.factory`), built with ``options`` on views downsampled by ``downsample``."""

    name: str
    downsample: int = 1
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CorruptionConfig:
    names: tuple[str, ...] = tuple(CORRUPTIONS)
    severities: tuple[int, ...] = (3,)
    scale: float | None = None
    """Spatial scale of the corruptions; ``None`` (``auto``): view width / 224."""


RAW_CAMERA_FACTS = ("gain", "read_noise", "pixel_size")
"""Camera facts a synthesis experiment may give for its raw corruptions (``raw_corruptions.camera``)."""


@dataclass(frozen=True)
class RawCorruptionConfig:
    """The raw-domain axis of a synthesis study (:mod:`ispkit.raw_corruptions`).

    Attributes
    ----------
    names
        Registered raw corruptions, in the order of the tables.
    severities
        Severities 1..5 each corruption is evaluated at.
    baseline
        The train pipeline whose model's errors normalise the mean corruption error (a train pipeline label).
    camera
        Camera facts (:data:`RAW_CAMERA_FACTS`) replacing the dataset camera's for the corruptions.
    """

    names: tuple[str, ...]
    severities: tuple[int, ...]
    baseline: str
    camera: dict[str, Any] = field(default_factory=dict)

    def camera_for(self, camera: Any) -> Any:
        """``camera`` (a :class:`~ispkit.camera.Camera` or anything :meth:`Camera.get` takes) with :attr:`camera`'s facts replacing its own."""
        from dataclasses import replace as replaced

        from ..camera import Camera

        resolved = Camera.get(camera)
        return replaced(resolved, **self.camera) if self.camera else resolved


@dataclass(frozen=True, kw_only=True)
class ExperimentConfig:
    """What every experiment holds, whichever drift control it is for (keyword-only fields).

    Attributes
    ----------
    name
        The experiment's name (a folder name: the default run folder is ``runs/<name>``).
    dataset
        The data it runs on.
    model
        The task model to train (``None`` when a forensics experiment names a checkpoint).
    training
        The task model's training schedule, seeded by ``seed``.
    seed
        The seed every unit's seed is derived from (:func:`ispkit.drift.units.unit_seed`).
    device
        ``"auto"``, ``"cpu"`` or ``"cuda[:N]"``.
    text
        The YAML text as given (a resume must give the same).
    threads
        Torch threads per unit wherever it runs, or ``None`` for the process's own.
    """

    name: str
    dataset: DatasetConfig
    model: ModelConfig | None
    training: TrainConfig
    seed: int = 0
    device: str = "auto"
    text: str = ""
    threads: int | None = None


@dataclass(frozen=True)
class SynthesisConfig(ExperimentConfig):
    """A parsed drift-synthesis experiment (see the module docstring for the YAML)."""

    train_pipelines: tuple[str, ...]
    test_pipelines: tuple[str, ...]
    pipeline_files: dict[str, Path]
    folds: int
    corruptions: CorruptionConfig
    raw_corruptions: RawCorruptionConfig | None = None
    """The raw-domain axis, or ``None`` when the experiment has no ``raw_corruptions:``."""

    @classmethod
    def from_yaml(cls, path_or_text: str | os.PathLike[str]) -> SynthesisConfig:
        return _read(path_or_text, _parse)

    def pipeline(self, label: str, camera: Any) -> Pipeline:
        """The :class:`~ispkit.Pipeline` a label stands for (a preset, or a YAML file)."""
        return _labelled_pipeline(label, self.pipeline_files, camera)


class RawBenchConfig(SynthesisConfig):
    """A raw-domain corruption benchmark (``ispkit rawbench run``): a drift-synthesis experiment that must have ``raw_corruptions:``.

    :meth:`from_yaml` returns the :class:`SynthesisConfig` (the study is a synthesis study); an
    experiment without ``raw_corruptions:`` is a :class:`~ispkit.errors.ConfigError`.
    """

    @classmethod
    def from_yaml(cls, path_or_text: str | os.PathLike[str]) -> SynthesisConfig:
        return _read(path_or_text, _parse_rawbench)


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
class ForensicsConfig(ExperimentConfig, _ReferencePipeline):
    """A parsed drift-forensics experiment (see :mod:`ispkit.drift.forensics` for the YAML)."""

    pipeline_label: str
    pipeline_files: dict[str, Path]
    checkpoint: Path | None
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

    @classmethod
    def from_yaml(cls, path_or_text: str | os.PathLike[str]) -> ForensicsConfig:
        return _read(path_or_text, _parse_forensics)


ARMS = ("learned", "frozen", "raw", "augmented")
"""Drift-adjustment arms: pipeline trained jointly, pipeline frozen, model on the packed raw mosaic, and the frozen
pipeline's views of raws with random raw-domain corruptions (:mod:`ispkit.drift.augmentation`)."""

DEFAULT_ARMS = ("learned", "frozen", "raw")
"""The arms of an adjustment experiment that lists none."""

AUGMENTATION_CORRUPTIONS = ("low_light", "motion_blur", "vignetting", "illuminant", "fixed_pattern_noise")
"""The raw corruptions the augmented arm trains with unless ``augmentation.corruptions`` names others: one of each
family of :mod:`ispkit.raw_corruptions`; the other five of ispkit's ten are held out by default."""


@dataclass(frozen=True)
class AugmentationConfig:
    """What the ``augmented`` arm draws for each training sample in each epoch (:mod:`ispkit.drift.augmentation`).

    With probability ``clean`` the sample is the frozen pipeline's view as it is; otherwise one
    of ``corruptions`` (uniformly) at a severity drawn uniformly from ``severities[0]`` to
    ``severities[1]`` (inclusive) corrupts its raw, and, when ``operating_spec`` names a forensics
    ``operating_spec.yaml``, each pipeline parameter of ``ranges`` (``name → (safe_min, safe_max)``,
    numbers or nested lists) is drawn uniformly, element by element, within its range.
    """

    corruptions: tuple[str, ...] = AUGMENTATION_CORRUPTIONS
    severities: tuple[int, int] = (1, 3)
    clean: float = 0.25
    operating_spec: Path | None = None
    ranges: dict[str, tuple[Any, Any]] = field(default_factory=dict)

    def trains_on(self, corruption: str, severity: int) -> bool:
        """Whether ``corruption`` at ``severity`` can be drawn in training."""
        return corruption in self.corruptions and self.severities[0] <= severity <= self.severities[1]


@dataclass(frozen=True)
class HeldOutConfig:
    """What every arm of an adjustment study is tested on after training, besides its validation split's clean views.

    ``corruptions`` × ``severities``: raw corruptions, each cell one that the augmented arm
    never trains on (checked when read); ``pipelines``: test pipelines other than the
    experiment's pipeline (preset names or YAML files' stems).
    """

    corruptions: tuple[str, ...] = ()
    severities: tuple[int, ...] = (3,)
    pipelines: tuple[str, ...] = ()

    def cells(self) -> list[tuple[str, int]]:
        """The held-out corruption cells ``(name, severity)``, corruption by corruption."""
        return [(c, s) for c in self.corruptions for s in self.severities]


@dataclass(frozen=True)
class AdjustmentConfig(ExperimentConfig, _ReferencePipeline):
    """A parsed drift-adjustment experiment (see :mod:`ispkit.drift.adjustment` for the YAML)."""

    pipeline_label: str
    pipeline_files: dict[str, Path]
    intensities: tuple[float, ...]
    gain: float | None
    read_noise: float | None
    arms: tuple[str, ...]
    pipeline_lr: float
    folds: int
    augmentation: AugmentationConfig = AugmentationConfig()
    held_out: HeldOutConfig = HeldOutConfig()

    @classmethod
    def from_yaml(cls, path_or_text: str | os.PathLike[str]) -> AdjustmentConfig:
        return _read(path_or_text, _parse_adjustment)

    def held_out_pipeline(self, label: str, camera: Any) -> Pipeline:
        """The held-out test pipeline ``label`` (a preset, or a YAML file's stem)."""
        return _labelled_pipeline(label, self.pipeline_files, camera)


ACQUISITION_VARIABLES = ("exposure", "bit_depth", "numerical_aperture", "pixel_pitch")
"""The control variables of an acquisition-design study (:mod:`ispkit.drift.acquisition`), in the order it runs them."""

OPTICS_PLUGIN = "ispkit-plugin-optics"
"""The distribution whose PSF the ``numerical_aperture`` variable blurs with."""


@dataclass(frozen=True)
class AcquisitionConfig(ExperimentConfig, _ReferencePipeline):
    """A parsed acquisition-design experiment (see :mod:`ispkit.drift.acquisition` for the YAML).

    ``variables`` maps each swept control variable (a key of :data:`ACQUISITION_VARIABLES`,
    in that order) to its grid as given; ``gain``/``read_noise`` override the camera's.
    """

    pipeline_label: str
    pipeline_files: dict[str, Path]
    checkpoint: Path | None
    folds: int
    fold: int
    samples: int | None
    gain: float | None
    read_noise: float | None
    epsilon: float
    draws: int
    batch_size: int
    variables: dict[str, tuple[float, ...]]
    search_steps: int
    search_tolerance: float
    search_draws: int

    @classmethod
    def from_yaml(cls, path_or_text: str | os.PathLike[str]) -> AcquisitionConfig:
        return _read(path_or_text, _parse_acquisition)


def optics_of(camera: Any) -> Any:
    """The optics plugin's :class:`Optics` of ``camera`` (its NA, pixel size in the NA's plane, R/G/B wavelengths).

    Raises :class:`~ispkit.errors.InputError` when the plugin is not installed (naming it)
    or the camera has no NA or pixel size (the plugin's message).
    """
    from importlib import import_module

    from ..errors import InputError

    try:
        defocus = import_module("ispkit_plugin_optics.defocus")
    except ImportError:
        raise InputError(
            f"the control variable numerical_aperture needs the optics plugin {OPTICS_PLUGIN!r} (it blurs with its PSF), which is not installed "
            f"(pip install -e plugins/{OPTICS_PLUGIN}); leave numerical_aperture out of variables without it"
        ) from None
    return defocus.camera_optics(camera)


def _read(path_or_text: str | os.PathLike[str], parse: Any) -> Any:
    """Load the YAML document and hand it to ``parse(data, locator, base folder, text)``."""
    text, source = read_text_or_path(path_or_text)
    data, loc = parse_yaml(text, source)
    return parse(data, loc, Path.cwd() if source == "<string>" else Path(source).parent, text)


_COMMON_TOP = ("name", "seed", "device", "threads", "dataset", "model", "training")
"""Top-level keys of every experiment (:class:`ExperimentConfig`)."""
_TOP = ("pipelines", "folds", "corruptions", "raw_corruptions")


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


Check = tuple[Callable[..., Any], dict[str, Any]]
"""A validator of :mod:`ispkit.config` and its options, e.g. ``(check_int, {"minimum": 1})``."""


def _section(mapping: dict[str, Any], loc: Locator, path: tuple, checks: dict[str, Check], what: str) -> dict[str, Any]:
    """The keys of ``mapping`` (all known to ``checks``), each value checked at its position."""
    loc.check_keys(mapping, checks, path, what)
    return {key: loc.check((*path, key), checks[key][0], value, **checks[key][1]) for key, value in mapping.items()}


def _distinct_list(value: Any, loc: Locator, path: tuple, check: Check, what: str) -> list[Any]:
    """A non-empty list without repeats, each item checked at its position."""
    if not isinstance(value, list) or not value:
        loc.error(path, f"expected a non-empty list of {what}, got {value!r}")
    items: list[Any] = []
    seen: set[Any] = set()
    for i, raw in enumerate(value):
        item = loc.check((*path, i), check[0], raw, **check[1])
        if item in seen:
            loc.error((*path, i), f"{raw!r} is listed twice")
        seen.add(item)
        items.append(item)
    return items


def _integer(minimum: int, **options: Any) -> Check:
    return (check_int, {"minimum": minimum, **options})


def _number(low: float = 0.0, high: float = float("inf"), *, exclusive_low: bool = False, allow_inf: bool = False, what: str) -> Check:
    return (check_number, {"low": low, "high": high, "exclusive_low": exclusive_low, "allow_inf": allow_inf, "what": what})


_TRAINING: dict[str, Check] = {
    "epochs": _integer(1),
    "batch_size": _integer(1),
    "lr": _number(exclusive_low=True, what="a learning rate > 0 (finite)"),
    "weight_decay": _number(what="a weight decay >= 0 (finite)"),
    "augment": (check_bool, {}),
    "recalibrate_bn": (check_bool, {}),
}
_SYNTHETIC: dict[str, dict[str, Check]] = {
    "microscopy": {"n": _integer(1), "seed": _integer(0), "size": _integer(32, even=True)},
    "drone": {
        "n_frames": _integer(1),
        "seed": _integer(0),
        "height": _integer(128, even=True),
        "width": _integer(128, even=True),
        "cars_per_frame": _integer(0),
    },
}
_SPLIT: dict[str, Check] = {"folds": _integer(2), "fold": _integer(0)}
_OPTIMISATION: dict[str, Check] = {
    "steps": _integer(1),
    "lr": _number(high=1e6, exclusive_low=True, what="a relative learning rate in (0, 1e6]"),
    "batch_size": _integer(1),
}
_SENSOR: dict[str, Check] = {
    "gain": _number(exclusive_low=True, what="a gain > 0 (DN per electron, finite)"),
    "read_noise": _number(what="a read noise >= 0 (electrons, finite)"),
}
_DEVICE = re.compile(r"auto|cpu|cuda(:\d+)?")


def _pipelines(value: Any, loc: Locator, path: tuple, base: Path, files: dict[str, Path]) -> tuple[str, ...]:
    if value == "all":
        return tuple(presets())
    if not isinstance(value, list) or not value:
        loc.error(path, f"expected 'all' or a non-empty list of preset names / pipeline YAML files, got {value!r}")
    labels: list[str] = []
    for i, item in enumerate(value):
        if not isinstance(item, str) or not item:
            loc.error((*path, i), f"expected a preset name or a YAML file, got {item!r}")
        is_file = item.endswith((".yaml", ".yml"))
        label = (base / item).resolve().stem if is_file else item
        if label in labels:
            loc.error((*path, i), f"pipelines listed twice: {label!r}")
        if is_file:
            files[label] = _pipeline_file(item, loc, (*path, i), base, files)
        elif item not in presets():
            loc.error((*path, i), f"unknown preset {item!r}: {close_matches(item, presets())}")
        labels.append(label)
    return tuple(labels)


def _pipeline_file(item: str, loc: Locator, path: tuple, base: Path, files: dict[str, Path]) -> Path:
    """The pipeline YAML file ``item`` (relative to ``base``), checked to load and to have a label of its own."""
    file = (base / item).resolve()
    if not file.is_file():
        loc.error(path, f"pipeline file {str(file)!r} not found")
    if files.get(file.stem, file) != file:
        loc.error(path, f"two pipeline files are both labelled {file.stem!r}: rename one")
    try:
        Pipeline.from_yaml(file)
    except ISPKitError as exc:
        loc.error(path, f"pipeline file {item!r} is invalid: {exc}")
    return file


_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._,+-]{0,99}")


def _header(data: Any, loc: Locator, allowed: tuple[str, ...], default_name: str, text: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The top mapping, checked against :data:`_COMMON_TOP` and ``allowed``, and the fields of
    :class:`ExperimentConfig` it sets before dataset, model and training: name, seed, device, torch
    threads per unit, and ``text``."""
    top = _mapping(data, loc, (), "the experiment")
    loc.check_keys(top, (*_COMMON_TOP, *allowed), (), "unknown experiment key")
    # a name not given is the file's name, made a folder name (see _NAME)
    default = (re.sub(r"[^A-Za-z0-9 ._,+-]", "_", Path(loc.source).stem).lstrip(" ._,+-")[:100] or default_name) if loc.source != "<string>" else default_name
    name = loc.check(("name",), check_string, top.get("name", default), what="an experiment name (a non-empty string)")
    if not _NAME.fullmatch(name):
        # the default run folder is runs/<name>: a name must not reach outside it ("../x", "/etc", "a/b")
        loc.error(
            ("name",),
            f"an experiment name is a folder name (letters, digits and ._,+- and spaces, starting with a letter or digit, at most 100 characters), got {name!r}",
        )
    seed = loc.check(("seed",), check_int, top.get("seed", 0), minimum=0)
    device = top.get("device", "auto")
    if not (isinstance(device, str) and _DEVICE.fullmatch(device)):
        loc.error(("device",), f"expected 'auto', 'cpu' or 'cuda[:N]', got {device!r}")
    threads = loc.check(("threads",), check_int, top["threads"], minimum=1) if "threads" in top else None
    return top, {"name": name, "seed": seed, "device": device, "threads": threads, "text": text}


def _dataset(top: dict[str, Any], loc: Locator, base: Path) -> DatasetConfig:
    from ..data.published import intensity_folder

    ds = _mapping(_require(top, "dataset", loc, ()), loc, ("dataset",), "dataset")
    loc.check_keys(ds, ("kind", "root", "manifest", "intensity", "camera", "synthetic"), ("dataset",), "unknown dataset key")
    kind = loc.check(("dataset", "kind"), check_choice, _require(ds, "kind", loc, ("dataset",)), choices=DATASET_KINDS)
    if kind in FOLDER_KINDS:
        return _folder_dataset(ds, loc, base, kind)
    if "manifest" in ds:
        loc.error(
            ("dataset", "manifest"), f"a manifest belongs to your own data (kind {' or '.join(FOLDER_KINDS)}); kind {kind!r} reads the published layout at root"
        )
    intensity = loc.check(("dataset", "intensity"), check_number, ds.get("intensity", 1.0), what="a published intensity (a number)")
    try:
        intensity_folder(intensity)
    except ISPKitError as exc:
        loc.error(("dataset", "intensity"), str(exc))
    synthetic = None
    if "synthetic" in ds:
        given = _mapping(ds["synthetic"], loc, ("dataset", "synthetic"), "dataset.synthetic")
        checks = _SYNTHETIC["microscopy" if kind == "microscopy" else "drone"]
        synthetic = _section(given, loc, ("dataset", "synthetic"), checks, f"unknown synthetic {kind} setting")
    root = loc.check(("dataset", "root"), check_string, _require(ds, "root", loc, ("dataset",)), what="a folder (a non-empty string)")
    return DatasetConfig(kind, (base / root).resolve(), intensity, _camera(ds, loc, base), synthetic)


def _folder_dataset(ds: dict[str, Any], loc: Locator, base: Path, kind: str) -> DatasetConfig:
    """A dataset of your own raw files: ``root`` or ``manifest`` (relative to ``base``), its layout checked now."""
    from ..data.folder import scan_raw_folder
    from ..errors import ConfigError, RawFormatError
    from ..io import read_raw

    for key in ("intensity", "synthetic"):
        if key in ds:
            loc.error(("dataset", key), f"dataset kind {kind!r} takes no {key!r}: your own raw files are used as they are")
    given = [key for key in ("root", "manifest") if key in ds]
    if len(given) != 1:
        where = ("dataset", given[1]) if given else ("dataset",)
        loc.error(where, f"a {kind} dataset names either root (a folder) or manifest (a CSV file), {'not both' if given else 'one of them'}")
    key = given[0]
    what = "a folder (a non-empty string)" if key == "root" else "a CSV file (a non-empty string)"
    source = (base / loc.check(("dataset", key), check_string, ds[key], what=what)).resolve()
    if key == "root" and not source.is_dir():
        loc.error(
            ("dataset", key), f"folder {source} not found" if not source.exists() else f"{source} is a file; give a CSV file as manifest:, a folder as root:"
        )
    if key == "manifest" and not source.is_file():
        loc.error(("dataset", key), f"manifest {source} not found" if not source.exists() else f"{source} is a folder; give it as root:")
    camera = _camera(ds, loc, base)
    try:
        first = scan_raw_folder(source, DATASET_KINDS[kind])[0].path
    except ConfigError:
        raise  # a manifest's mistake, at its own line
    except (ISPKitError, OSError) as exc:
        loc.error(("dataset", key), str(exc))
    if camera is None:
        try:
            read_raw(first)
        except (RawFormatError, OSError) as exc:
            loc.error(("dataset", key), f"{exc}; or give the camera of all files as dataset.camera (a camera name or YAML file)")
    root, manifest = (source, None) if key == "root" else (source.parent, source)
    return DatasetConfig(kind, root, camera=camera, manifest=manifest)


def _camera(ds: dict[str, Any], loc: Locator, base: Path) -> str | None:
    """``dataset.camera``: ``None``, or a registered camera name or camera YAML file (relative to ``base``, made absolute) that loads."""
    from ..camera import Camera

    if ds.get("camera") is None:
        return None
    camera = loc.check(("dataset", "camera"), check_string, ds["camera"], what="a camera name or camera YAML file")
    if camera.endswith((".yaml", ".yml")):
        camera = str((base / camera).resolve())
    try:
        Camera.get(camera)
    except ISPKitError as exc:
        loc.error(("dataset", "camera"), str(exc))
    return camera


def _reference_camera(dataset: DatasetConfig) -> Any:
    """The camera of the dataset's raws, for pipelines made while reading an experiment: :attr:`DatasetConfig.default_camera`,
    else (a folder dataset of the files' own camera) the first file's."""
    from ..data.folder import scan_raw_folder
    from ..io import read_raw

    if dataset.default_camera is not None:
        return dataset.default_camera
    return read_raw(scan_raw_folder(dataset.source, dataset.task)[0].path).camera


def _model(md: dict[str, Any], loc: Locator, task: str, kind: str, extra: tuple[str, ...] = ()) -> ModelConfig:
    loc.check_keys(md, ("name", "factory", "task", "downsample", "options", *extra), ("model",), "unknown model key")
    if ("name" in md) == ("factory" in md):
        where = ("model", "factory") if "name" in md else ("model",)
        loc.error(
            where,
            "give either name (a registered task model, see `ispkit models`) or factory ('package.module:function'), "
            + ("not both" if "name" in md else "one of them"),
        )
    spec = _factory_model(md, loc, task, kind) if "factory" in md else _registered_model(md, loc, task, kind)
    downsample = loc.check(("model", "downsample"), check_int, md.get("downsample", 1), minimum=1)
    options = dict(_mapping(md.get("options"), loc, ("model", "options"), "model.options"))
    accepted = _option_names(spec.build)
    if accepted is not None:
        loc.check_keys(options, accepted, ("model", "options"), f"{spec.name} has no option")
    return ModelConfig(spec.name, downsample, options)


def _registered_model(md: dict[str, Any], loc: Locator, task: str, kind: str) -> Any:
    """The registered :class:`~ispkit.tasks.TaskModel` ``model.name``, checked to solve ``task``."""
    from ..tasks.registry import task_models

    if "task" in md:
        loc.error(("model", "task"), "a registered model has its own task; task goes with factory")
    models = task_models()
    model_name = loc.check(("model", "name"), check_string, md["name"], what="a task model name")
    if model_name not in models:
        loc.error(("model", "name"), f"unknown task model {model_name!r}: {close_matches(model_name, sorted(models))}")
    if models[model_name].task != task:
        loc.error(("model", "name"), f"{model_name!r} is a {models[model_name].task} model but dataset kind {kind!r} is a {task} task")
    return models[model_name]


def _factory_model(md: dict[str, Any], loc: Locator, task: str, kind: str) -> Any:
    """The :class:`~ispkit.tasks.TaskModel` of the factory path ``model.factory`` (imported now), for ``model.task``."""
    from ..tasks.base import TASKS
    from ..tasks.factory import factory_model

    path = loc.check(("model", "factory"), check_string, md["factory"], what="a factory path 'package.module:function'")
    given = loc.check(("model", "task"), check_choice, md.get("task", task), choices=TASKS)
    if given != task:
        loc.error(("model", "task"), f"a {given} model, but dataset kind {kind!r} is a {task} task")
    try:
        return factory_model(path, task)
    except ISPKitError as exc:
        loc.error(("model", "factory"), str(exc))


def _option_names(build: Callable[..., Any]) -> list[str] | None:
    """Keyword options a model factory takes (``None`` when it takes any); ``in_channels`` is not an option."""
    try:
        parameters = list(inspect.signature(build).parameters.values())[1:]  # the first is the number of outputs
    except (TypeError, ValueError):
        return None
    if any(p.kind is p.VAR_KEYWORD for p in parameters):
        return None
    return [p.name for p in parameters if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and p.name != "in_channels"]


def _training(top: dict[str, Any], loc: Locator, seed: int, **defaults: Any) -> TrainConfig:
    tr = _section(_mapping(top.get("training"), loc, ("training",), "training"), loc, ("training",), _TRAINING, "unknown training key")
    try:
        return TrainConfig(seed=seed, **{**defaults, **tr})
    except ISPKitError as exc:
        loc.error(("training",), str(exc))


def _parse(data: Any, loc: Locator, base: Path, text: str) -> SynthesisConfig:
    top, common = _header(data, loc, _TOP, "synthesis", text)
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
    training = _training(top, loc, common["seed"])
    folds = loc.check(("folds",), check_int, top.get("folds", 5), minimum=2)
    corruptions = _corruptions(top, loc)
    raw = _raw_corruptions(top["raw_corruptions"], loc, train, dataset) if "raw_corruptions" in top else None
    return SynthesisConfig(
        **common, dataset=dataset, model=model, training=training, train_pipelines=train, test_pipelines=test, pipeline_files=files,
        folds=folds, corruptions=corruptions, raw_corruptions=raw,
    )  # fmt: skip


def _parse_rawbench(data: Any, loc: Locator, base: Path, text: str) -> SynthesisConfig:
    config = _parse(data, loc, base, text)
    if config.raw_corruptions is None:
        loc.error(
            (),
            "a raw-corruption benchmark needs raw_corruptions: (e.g. raw_corruptions: {names: all, severities: [1, 3]}); "
            "this experiment has none: add it, or run it as a plain study with `ispkit synthesis run`",
        )
    return config


def _corruptions(top: dict[str, Any], loc: Locator) -> CorruptionConfig:
    cr = _mapping(top.get("corruptions"), loc, ("corruptions",), "corruptions")
    loc.check_keys(cr, ("names", "severities", "scale"), ("corruptions",), "unknown corruptions key")
    names = cr.get("names", "all")
    if names != "all":
        if not isinstance(names, list):
            loc.error(("corruptions", "names"), f"expected 'all' or a list from {list(CORRUPTIONS)}, got {names!r}")
        names = _distinct_list(names, loc, ("corruptions", "names"), (check_choice, {"choices": CORRUPTIONS}), "corruption names")
    severities = _distinct_list(cr.get("severities", [3]), loc, ("corruptions", "severities"), (check_int, {"minimum": 1, "maximum": 5}), "severities 1..5")
    scale = cr.get("scale", "auto")
    if scale != "auto":
        scale = loc.check(("corruptions", "scale"), check_number, scale, low=0.0, exclusive_low=True, what="'auto' or a positive number (finite)")
    return CorruptionConfig(tuple(CORRUPTIONS) if names == "all" else tuple(names), tuple(severities), None if scale == "auto" else scale)


_RAW_CAMERA: dict[str, Check] = {
    "gain": _number(exclusive_low=True, what="a conversion gain > 0 (DN per electron at the camera's bit depth, finite)"),
    "read_noise": _number(what="a read noise >= 0 (electrons, finite)"),
    "pixel_size": _number(exclusive_low=True, what="a pixel size > 0 (µm in the object plane, finite)"),
}
_RAW_PROBE_SIZE = 16
"""Side of the flat raw each raw corruption is tried on when an experiment is read."""


def _raw_corruptions(value: Any, loc: Locator, train: tuple[str, ...], dataset: DatasetConfig) -> RawCorruptionConfig:
    """``raw_corruptions:`` checked key by key, then every corruption tried at every severity with the dataset's camera."""
    from ..raw_corruptions import raw_corruptions

    path = ("raw_corruptions",)
    rc = _mapping(value, loc, path, "raw_corruptions")
    loc.check_keys(rc, ("names", "severities", "baseline", "camera"), path, "unknown raw_corruptions key")
    registered = raw_corruptions()
    names = rc.get("names", "all")
    listed = names != "all"
    if not listed:
        names = list(registered)
    elif not isinstance(names, list):
        loc.error((*path, "names"), f"expected 'all' or a list of raw corruptions, got {names!r}; {close_matches(str(names), registered)}")
    else:
        names = _distinct_list(names, loc, (*path, "names"), (check_string, {"what": "a raw corruption name"}), "raw corruption names")
        for i, name in enumerate(names):
            if name not in registered:
                loc.error((*path, "names", i), f"unknown raw corruption {name!r}: {close_matches(name, registered)}")
    severities = _distinct_list(rc.get("severities", [1, 2, 3, 4, 5]), loc, (*path, "severities"), _integer(1, maximum=5), "severities 1..5")
    baseline = loc.check((*path, "baseline"), check_string, rc.get("baseline", train[0]), what="a train pipeline label")
    if baseline not in train:
        loc.error((*path, "baseline"), f"the baseline must be one of the train pipelines, got {baseline!r}: {close_matches(baseline, train)}")
    camera = _section(_mapping(rc.get("camera"), loc, (*path, "camera"), "raw_corruptions.camera"), loc, (*path, "camera"), _RAW_CAMERA, "unknown camera fact")
    config = RawCorruptionConfig(tuple(names), tuple(severities), baseline, camera)
    _probe_raw_corruptions(config, loc, dataset, listed)
    return config


def _probe_raw_corruptions(config: RawCorruptionConfig, loc: Locator, dataset: DatasetConfig, listed: bool) -> None:
    """Apply each raw corruption at each severity to a flat raw of the dataset's camera: what the camera cannot take is an
    error now, at the corruption's name (``listed``) or at ``names: all``."""
    import torch

    from ..raw_corruptions import raw_corruption

    camera = config.camera_for(_reference_camera(dataset))
    raw = torch.full((1, _RAW_PROBE_SIZE, _RAW_PROBE_SIZE), 0.25, dtype=torch.float64)
    for i, name in enumerate(config.names):
        corruption = raw_corruption(name)
        for severity in config.severities:
            try:
                corruption.apply_torch(raw, severity, camera=camera, generator=torch.Generator().manual_seed(0))
            except ISPKitError as exc:
                hint = "; give the missing facts as raw_corruptions.camera" if any(getattr(camera, n) is None for n in corruption.needs) else ""
                where = ("raw_corruptions", "names", i) if listed else ("raw_corruptions", "names")
                loc.error(where, f"{name} at severity {severity}: {exc}{hint}")


_FORENSICS_TOP = ("pipeline", "split", "samples", "subsets", "lambdas", "distance", "optimisation", "tolerance")


def _parse_forensics(data: Any, loc: Locator, base: Path, text: str) -> ForensicsConfig:
    top, common = _header(data, loc, _FORENSICS_TOP, "forensics", text)
    dataset = _dataset(top, loc, base)
    files: dict[str, Path] = {}
    label = _pipelines([_require(top, "pipeline", loc, ())], loc, ("pipeline",), base, files)[0]
    reference = Pipeline.from_yaml(files[label]) if label in files else Pipeline.preset(label, camera=_reference_camera(dataset))

    model, checkpoint = _model_or_checkpoint(top, loc, base, dataset)
    training = _training(top, loc, common["seed"])
    folds, fold, samples = _held_out(top, loc)

    trainable = {s.name for s in reference.stages if any(p.differentiable and p.dtype is float for p in s.stage.params)}
    subsets = top.get("subsets", "all")
    if subsets == "all":
        subsets = ["all", *[s.name for s in reference.stages if s.name in trainable]]
    if not isinstance(subsets, list) or not subsets:
        loc.error(("subsets",), f"expected 'all' or a list of 'all' and stage names, got {subsets!r}")
    seen: set[str] = set()
    for i, subset in enumerate(subsets):
        if loc.check(("subsets", i), check_string, subset, what="'all' or a stage name") in seen:
            loc.error(("subsets", i), f"subset {subset!r} is listed twice")
        seen.add(subset)
        if subset != "all" and subset not in trainable:
            names = [s.name for s in reference.stages]
            why = "has no differentiable parameters" if subset in names else f"is not a stage of {label!r} ({', '.join(names)})"
            loc.error(("subsets", i), f"subset {subset!r} {why}")

    lambdas = _distinct_list(
        top.get("lambdas", [0.0, 0.1, 1.0, 10.0, 100.0]), loc, ("lambdas",), _number(allow_inf=True, what="λ >= 0 (.inf allowed)"), "λ >= 0 (.inf allowed)"
    )

    distance = loc.check(("distance",), check_string, top.get("distance", "l2"), what="a distance name")
    found = distances()
    if distance not in found:
        loc.error(("distance",), f"unknown distance {distance!r}: {close_matches(distance, sorted(found))}")

    op = {
        "steps": 60,
        "lr": 0.02,
        "batch_size": 32,
        **_section(
            _mapping(top.get("optimisation"), loc, ("optimisation",), "optimisation"), loc, ("optimisation",), _OPTIMISATION, "unknown optimisation key"
        ),
    }
    steps, lr, batch = op["steps"], op["lr"], op["batch_size"]
    tolerance = loc.check(("tolerance",), check_number, top.get("tolerance", 0.05), low=0.0, high=1.0, what="a tolerance in [0, 1]")
    return ForensicsConfig(
        **common, dataset=dataset, model=model, training=training, pipeline_label=label, pipeline_files=files, checkpoint=checkpoint, folds=folds,
        fold=fold, samples=samples, subsets=tuple(subsets), lambdas=tuple(lambdas), distance=distance, steps=steps, lr=lr, batch_size=batch,
        tolerance=tolerance,
    )  # fmt: skip


def _model_or_checkpoint(top: dict[str, Any], loc: Locator, base: Path, dataset: DatasetConfig) -> tuple[ModelConfig | None, Path | None]:
    """``model:``, either a model to train or ``{checkpoint: file}`` (relative to ``base``, made absolute): ``(model, None)`` or ``(None, file)``."""
    md = _mapping(_require(top, "model", loc, ()), loc, ("model",), "model")
    if "checkpoint" not in md:
        return _model(md, loc, dataset.task, dataset.kind), None
    loc.check_keys(md, ("checkpoint",), ("model",), "with a checkpoint, unexpected model key")
    file = loc.check(("model", "checkpoint"), check_string, md["checkpoint"], what="a checkpoint file (a non-empty string)")
    return None, (base / file).resolve()  # may be written by a study run before this one


def _held_out(top: dict[str, Any], loc: Locator) -> tuple[int, int, int | None]:
    """``split: {folds, fold}`` and ``samples``: the held-out images a frozen model is studied on (at most ``samples`` of fold ``fold``)."""
    split = {"folds": 5, "fold": 0, **_section(_mapping(top.get("split"), loc, ("split",), "split"), loc, ("split",), _SPLIT, "unknown split key")}
    folds, fold = split["folds"], split["fold"]
    if fold >= folds:
        loc.error(("split", "fold"), f"fold {fold} does not exist with {folds} folds (folds are numbered from 0)")
    samples = top.get("samples")
    if samples is not None:
        samples = loc.check(("samples",), check_int, samples, minimum=1)
    return folds, fold, samples


_ADJUSTMENT_TOP = ("pipeline", "intensities", "sensor", "arms", "pipeline_lr", "folds", "augmentation", "held_out")


def _parse_adjustment(data: Any, loc: Locator, base: Path, text: str) -> AdjustmentConfig:
    top, common = _header(data, loc, _ADJUSTMENT_TOP, "adjustment", text)
    dataset = _dataset(top, loc, base)
    files: dict[str, Path] = {}
    label = _pipelines([_require(top, "pipeline", loc, ())], loc, ("pipeline",), base, files)[0]
    intensity = _number(exclusive_low=True, high=1.0, what="an intensity factor in (0, 1]")
    intensities = _distinct_list(top.get("intensities", [0.001, 1.0]), loc, ("intensities",), intensity, "intensity factors in (0, 1]")
    sensor = _section(_mapping(top.get("sensor"), loc, ("sensor",), "sensor"), loc, ("sensor",), _SENSOR, "unknown sensor key")
    gain, read_noise = sensor.get("gain"), sensor.get("read_noise")
    arms = _distinct_list(top.get("arms", list(DEFAULT_ARMS)), loc, ("arms",), (check_choice, {"choices": ARMS}), f"arms from {list(ARMS)}")
    if "augmentation" in top and "augmented" not in arms:
        loc.error(
            ("augmentation",), f"augmentation configures the augmented arm, which arms {arms} does not list: add augmented to arms, or remove augmentation"
        )
    pipeline = _labelled_pipeline(label, files, _reference_camera(dataset))
    augmentation = _augmentation(top, loc, base, pipeline, label)
    held_out = _adjustment_held_out(top, loc, base, files, label, augmentation)
    _probe_adjustment_corruptions(augmentation if "augmented" in arms else None, held_out, loc, dataset, sensor)
    model = _model(_mapping(_require(top, "model", loc, ()), loc, ("model",), "model"), loc, dataset.task, dataset.kind)
    if "raw" in arms and model.downsample > 1 and model.downsample % 2:
        loc.error(("model", "downsample"), f"the raw arm packs the mosaic to half resolution, so downsample must be 1 or even, got {model.downsample}")
    training = _training(top, loc, common["seed"], recalibrate_bn=True)  # the learned arm's inputs change as it trains
    pipeline_lr = loc.check(
        ("pipeline_lr",), check_number, top.get("pipeline_lr", 0.01), low=0.0, high=1e6, exclusive_low=True, what="a learning rate in (0, 1e6]"
    )
    folds = loc.check(("folds",), check_int, top.get("folds", 5), minimum=2)
    return AdjustmentConfig(
        **common, dataset=dataset, model=model, training=training, pipeline_label=label, pipeline_files=files, intensities=tuple(intensities),
        gain=gain, read_noise=read_noise, arms=tuple(arms), pipeline_lr=pipeline_lr, folds=folds, augmentation=augmentation, held_out=held_out,
    )  # fmt: skip


_AUGMENTATION_KEYS = ("corruptions", "severities", "clean", "operating_spec")
_HELD_OUT_KEYS = ("corruptions", "severities", "pipelines")
_SPEC_KEYS = ("pipeline", "metric", "baseline", "tolerance", "distance", "note", "parameters")
"""The keys of the ``operating_spec.yaml`` that ``ispkit forensics run`` writes (:meth:`ForensicsResults.operating_spec`)."""
_SPEC_ENTRY_KEYS = ("reference", "bounds", "safe_min", "safe_max", "searched", "breaking")


def _augmentation(top: dict[str, Any], loc: Locator, base: Path, pipeline: Pipeline, label: str) -> AugmentationConfig:
    """``augmentation:`` (every key optional): the corruptions, the severity range, the clean share and the operating spec."""
    path = ("augmentation",)
    ag = _mapping(top.get("augmentation"), loc, path, "augmentation")
    loc.check_keys(ag, _AUGMENTATION_KEYS, path, "unknown augmentation key")
    corruptions = _raw_corruption_names(ag.get("corruptions", list(AUGMENTATION_CORRUPTIONS)), loc, (*path, "corruptions"), allow_empty=False)
    severities = _severity_range(ag.get("severities", list(AugmentationConfig.severities)), loc, (*path, "severities"))
    clean = loc.check((*path, "clean"), check_number, ag.get("clean", AugmentationConfig.clean), low=0.0, high=1.0, what="a probability in [0, 1)")
    if clean == 1.0:
        loc.error((*path, "clean"), "expected a probability in [0, 1), got 1: with clean 1 no sample is ever corrupted (that is the frozen arm)")
    spec, ranges = _operating_spec(ag["operating_spec"], loc, base, pipeline, label) if "operating_spec" in ag else (None, {})
    return AugmentationConfig(tuple(corruptions), severities, clean, spec, ranges)


def _raw_corruption_names(value: Any, loc: Locator, path: tuple, *, allow_empty: bool) -> list[str]:
    """A list of registered raw corruptions without repeats (``[]`` too when ``allow_empty``), each name checked at its position."""
    from ..errors import InputError
    from ..raw_corruptions import raw_corruption

    if allow_empty and value == []:
        return []
    names = _distinct_list(value, loc, path, (check_string, {"what": "a raw corruption name"}), "raw corruption names")
    for i, name in enumerate(names):
        try:
            raw_corruption(name)
        except InputError as exc:
            loc.error((*path, i), str(exc))
    return names


def _severity_range(value: Any, loc: Locator, path: tuple) -> tuple[int, int]:
    """``[lowest, highest]``: two severities in 1..5, the first not above the second."""
    if not (isinstance(value, list) and len(value) == 2):
        loc.error(path, f"expected a severity range [lowest, highest] within 1..5, got {value!r}")
    low, high = (loc.check((*path, i), check_int, v, minimum=1, maximum=5) for i, v in enumerate(value))
    if low > high:
        loc.error(path, f"the lowest severity {low} is above the highest {high}: give [lowest, highest]")
    return low, high


def _operating_spec(value: Any, loc: Locator, base: Path, pipeline: Pipeline, label: str) -> tuple[Path, dict[str, tuple[Any, Any]]]:
    """The operating spec file (relative to ``base``) and its safe ranges, each checked against ``pipeline``'s parameters.

    A mistake inside the file is a :class:`~ispkit.errors.ConfigError` at the file's own line.
    """
    from ..config import load_yaml

    key = ("augmentation", "operating_spec")
    given = loc.check(key, check_string, value, what="the path of an operating_spec.yaml written by ispkit forensics run")
    file = (base / given).resolve()
    if not file.is_file():
        loc.error(
            key,
            f"operating spec {str(file)!r} not found ({'a folder' if file.exists() else 'no such file'}); ispkit forensics run writes operating_spec.yaml into its run folder",
        )
    data, spec_loc = load_yaml(file)
    spec = _mapping(data, spec_loc, (), "an operating spec")
    spec_loc.check_keys(spec, _SPEC_KEYS, (), "unknown operating spec key")
    of = _require(spec, "pipeline", spec_loc, ())
    if of != label:
        spec_loc.error(("pipeline",), f"this operating spec is of pipeline {of!r}, but the experiment {loc.source} trains on {label!r}")
    parameters = _mapping(_require(spec, "parameters", spec_loc, ()), spec_loc, ("parameters",), "parameters")
    if not parameters:
        spec_loc.error(("parameters",), "the operating spec lists no parameters: nothing to draw")
    return file, {name: _safe_range(name, entry, spec_loc, pipeline, label) for name, entry in parameters.items()}


def _safe_range(name: str, entry: Any, loc: Locator, pipeline: Pipeline, label: str) -> tuple[Any, Any]:
    """``(safe_min, safe_max)`` of one operating-spec parameter: a continuous parameter of ``pipeline``, both ends of its shape,
    finite, in order element by element, and valid values of the parameter."""
    import numpy as np

    path = ("parameters", name)
    known = pipeline.params()
    if name not in known:
        loc.error(path, f"{name!r} is not a parameter of pipeline {label!r}: {close_matches(str(name), sorted(known))}")
    stage, _, param = name.partition(".")
    if pipeline[stage].stage.param(param).dtype is not float:
        loc.error(
            path, f"{name!r} is not a continuous parameter (it takes {pipeline[stage].stage.param(param).dtype.__name__} values); ranges are drawn for numbers"
        )
    fields = _mapping(entry, loc, path, name)
    loc.check_keys(fields, _SPEC_ENTRY_KEYS, path, "unknown operating spec entry key")
    shape = np.shape(known[name])
    ends = []
    for end in ("safe_min", "safe_max"):
        raw = _require(fields, end, loc, path)
        try:
            array = np.asarray(raw, dtype=float)
        except (TypeError, ValueError):
            loc.error((*path, end), f"expected a number or a list of numbers of shape {shape}, got {raw!r}")
        if array.shape != shape or not np.isfinite(array).all():
            loc.error((*path, end), f"expected finite numbers of the parameter's shape {shape}, got {raw!r}")
        try:
            pipeline.with_params({name: array})
        except ISPKitError as exc:
            loc.error((*path, end), f"not a valid value of {name}: {exc}")
        ends.append(array)
    if (ends[0] > ends[1]).any():
        loc.error((*path, "safe_min"), f"safe_min is above safe_max (element by element): {ends[0].tolist()} > {ends[1].tolist()}")
    return ends[0].tolist(), ends[1].tolist()


def _adjustment_held_out(top: dict[str, Any], loc: Locator, base: Path, files: dict[str, Path], label: str, augmentation: AugmentationConfig) -> HeldOutConfig:
    """``held_out:``: raw corruptions × severities none of which the augmented arm trains on (default: ispkit's own corruptions
    it does not train with, at severity 3), and test pipelines other than ``label`` (default ``all``: every other preset)."""
    from ..raw_corruptions.builtins import BUILTIN_RAW_CORRUPTIONS

    path = ("held_out",)
    ho = _mapping(top.get("held_out"), loc, path, "held_out")
    loc.check_keys(ho, _HELD_OUT_KEYS, path, "unknown held_out key")
    default = [c.name for c in BUILTIN_RAW_CORRUPTIONS if c.name not in augmentation.corruptions]
    corruptions = _raw_corruption_names(ho.get("corruptions", default), loc, (*path, "corruptions"), allow_empty=True)
    severities = _distinct_list(ho.get("severities", list(HeldOutConfig.severities)), loc, (*path, "severities"), _integer(1, maximum=5), "severities 1..5")
    for i, name in enumerate(corruptions):
        trained = [s for s in severities if augmentation.trains_on(name, s)]
        if trained:
            low, high = augmentation.severities
            loc.error(
                (*path, "corruptions", i) if "corruptions" in ho else (*path, "severities"),
                f"{name} at severity {', '.join(map(str, trained))} is drawn in training (augmentation: {name} at severities {low}..{high}); "
                "a held-out cell must be a corruption or a severity the augmented arm never trains on",
            )
    pipelines = ho.get("pipelines", "all")
    if pipelines == "all":
        labels: tuple[str, ...] = tuple(p for p in presets() if p != label)
    elif pipelines == []:
        labels = ()
    else:
        labels = _pipelines(pipelines, loc, (*path, "pipelines"), base, files)
        if label in labels:
            loc.error((*path, "pipelines", labels.index(label)), f"{label!r} is the experiment's own pipeline; held-out pipelines are the others")
    return HeldOutConfig(tuple(corruptions), tuple(severities), labels)


_PROBE_SIZE = 16
"""Side of the flat raw each raw corruption of an adjustment experiment is tried on when the experiment is read."""


def _probe_adjustment_corruptions(
    augmentation: AugmentationConfig | None, held_out: HeldOutConfig, loc: Locator, dataset: DatasetConfig, sensor: dict[str, Any]
) -> None:
    """Apply every raw corruption cell the study will use (the training range when the augmented arm runs, the held-out
    cells) to a flat raw of the dataset's camera: a severity the camera cannot take is an error now, at its key.

    Gain and read noise are the experiment's ``sensor``, else the camera's, else a stand-in: the study itself refuses to
    run without them (:mod:`ispkit.drift.adjustment`)."""
    from dataclasses import replace as replaced

    import torch

    from ..camera import Camera
    from ..raw_corruptions import raw_corruption

    camera = Camera.get(_reference_camera(dataset))
    gain, read_noise = sensor.get("gain", camera.gain), sensor.get("read_noise", camera.read_noise)
    camera = replaced(camera, gain=1.0 if gain is None else gain, read_noise=1.0 if read_noise is None else read_noise)
    raw = torch.full((1, _PROBE_SIZE, _PROBE_SIZE), 0.25, dtype=torch.float64)
    cells: list[tuple[str, int, tuple]] = []
    if augmentation is not None:
        low, high = augmentation.severities
        cells += [(name, s, ("augmentation", "corruptions")) for name in augmentation.corruptions for s in range(low, high + 1)]
    cells += [(name, s, ("held_out", "corruptions")) for name, s in held_out.cells()]
    for name, severity, where in cells:
        try:
            raw_corruption(name).apply_torch(raw, severity, camera=camera, generator=torch.Generator().manual_seed(0))
        except ISPKitError as exc:
            loc.error(where, f"{name} at severity {severity} fails on camera {camera.name!r}: {exc}")


_ACQUISITION_TOP = ("pipeline", "split", "samples", "sensor", "epsilon", "draws", "batch_size", "variables", "search")
_SEARCH: dict[str, Check] = {
    "steps": _integer(1),
    "tolerance": _number(exclusive_low=True, high=1.0, what="a relative tolerance in (0, 1]"),
    "draws": _integer(1),
}


def _parse_acquisition(data: Any, loc: Locator, base: Path, text: str) -> AcquisitionConfig:
    from ..camera import Camera

    top, common = _header(data, loc, _ACQUISITION_TOP, "acquisition", text)
    dataset = _dataset(top, loc, base)
    files: dict[str, Path] = {}
    label = _pipelines([_require(top, "pipeline", loc, ())], loc, ("pipeline",), base, files)[0]
    model, checkpoint = _model_or_checkpoint(top, loc, base, dataset)
    training = _training(top, loc, common["seed"])
    folds, fold, samples = _held_out(top, loc)
    sensor = _section(_mapping(top.get("sensor"), loc, ("sensor",), "sensor"), loc, ("sensor",), _SENSOR, "unknown sensor key")
    epsilon = loc.check(("epsilon",), check_number, top.get("epsilon", 0.05), low=0.0, high=1.0, what="an accuracy tolerance ε in [0, 1]")
    draws = loc.check(("draws",), check_int, top.get("draws", 3), minimum=1)
    batch_size = loc.check(("batch_size",), check_int, top.get("batch_size", 32), minimum=1)
    camera = Camera.get(_reference_camera(dataset))
    variables = _variables(_mapping(_require(top, "variables", loc, ()), loc, ("variables",), "variables"), loc, camera)
    search = {
        "steps": 12,
        "tolerance": 0.05,
        "draws": 1,
        **_section(_mapping(top.get("search"), loc, ("search",), "search"), loc, ("search",), _SEARCH, "unknown search key"),
    }
    return AcquisitionConfig(
        **common, dataset=dataset, model=model, training=training, pipeline_label=label, pipeline_files=files, checkpoint=checkpoint, folds=folds,
        fold=fold, samples=samples, gain=sensor.get("gain"), read_noise=sensor.get("read_noise"), epsilon=epsilon, draws=draws, batch_size=batch_size,
        variables=variables, search_steps=search["steps"], search_tolerance=search["tolerance"], search_draws=search["draws"],
    )  # fmt: skip


def _variables(given: dict[str, Any], loc: Locator, camera: Any) -> dict[str, tuple[float, ...]]:
    """Each control variable's grid, checked against its physical range for ``camera`` (in :data:`ACQUISITION_VARIABLES` order)."""
    from ..errors import InputError

    if not given:
        loc.error(("variables",), f"give at least one control variable with its grid, from {list(ACQUISITION_VARIABLES)}")
    loc.check_keys(given, ACQUISITION_VARIABLES, ("variables",), "unknown control variable")
    checks: dict[str, tuple[Check, str]] = {
        "exposure": (_number(1e-6, 1.0, what="an exposure factor in [1e-6, 1]"), "exposure factors in [1e-6, 1]"),
        "bit_depth": (_integer(6, maximum=camera.bit_depth), f"bit depths from 6 to the camera's {camera.bit_depth}"),
        "pixel_pitch": (_integer(1, maximum=64), "binning factors from 1 to 64 (pitch = factor × the camera's)"),
    }
    if "numerical_aperture" in given:
        try:
            na = float(optics_of(camera).na)
        except InputError as exc:
            loc.error(("variables", "numerical_aperture"), str(exc))
        what = f"a numerical aperture in (0, {na:g}] (the camera's objective: {na:g})"
        checks["numerical_aperture"] = (_number(0.0, na, exclusive_low=True, what=what), f"numerical apertures in (0, {na:g}]")
    return {
        name: tuple(float(v) for v in _distinct_list(given[name], loc, ("variables", name), checks[name][0], checks[name][1]))
        for name in ACQUISITION_VARIABLES
        if name in given
    }


# -- the example experiments shipped with ispkit ---------------------------------------------

COMMANDS: dict[str, type[SynthesisConfig] | type[ForensicsConfig] | type[AdjustmentConfig] | type[AcquisitionConfig]] = {
    "synthesis": SynthesisConfig,
    "rawbench": RawBenchConfig,
    "forensics": ForensicsConfig,
    "adjust": AdjustmentConfig,
    "acquire": AcquisitionConfig,
}
"""The command (``ispkit <command> run``) of each experiment kind, and the class that reads it."""

_ADJUSTMENT_ONLY = ("intensities", "sensor", "arms", "pipeline_lr", "augmentation", "held_out")


@dataclass(frozen=True)
class ShippedExperiment:
    """An example experiment packaged with ispkit (``ispkit/experiments/<name>.yaml``).

    Attributes
    ----------
    name
        The file's stem, e.g. ``"synthesis_microscopy_small"``.
    command
        The command that runs it: a key of :data:`COMMANDS`.
    summary
        The comment the file opens with, as one paragraph.
    text
        The YAML text.
    """

    name: str
    command: str
    summary: str
    text: str


def shipped_experiments() -> dict[str, ShippedExperiment]:
    """The example experiments packaged with ispkit, by name (sorted).

    Their relative paths (``root: ../out/data/synthetic``, ``../data/raw``, ``../runs/...``) are
    relative to the file, as in every experiment: they assume the file lies in a folder
    ``experiments/`` of a project folder, and that it is run from the project folder, as the
    repository's ``experiments/`` (identical files) are. :func:`copy_experiment` puts a copy
    there.

    >>> {name: e.command for name, e in shipped_experiments().items() if name.endswith("microscopy_small")}
    ... # doctest: +NORMALIZE_WHITESPACE
    {'acquisition_microscopy_small': 'acquire', 'adjustment_microscopy_small': 'adjust',
     'augmentation_microscopy_small': 'adjust', 'forensics_microscopy_small': 'forensics',
     'rawbench_microscopy_small': 'rawbench', 'synthesis_microscopy_small': 'synthesis'}
    """
    from importlib import resources

    found = {}
    for item in sorted(resources.files("ispkit").joinpath("experiments").iterdir(), key=lambda item: item.name):
        if item.name.endswith(".yaml"):
            text = item.read_text(encoding="utf-8")
            name = item.name.removesuffix(".yaml")
            found[name] = ShippedExperiment(name, _command(text, name), _summary(text), text)
    return found


def _command(text: str, name: str) -> str:
    """The command of an experiment, from its top-level keys (``pipelines``: synthesis, or rawbench with ``raw_corruptions``;
    ``variables``: acquire; an adjustment key: adjust; else forensics)."""
    data, _ = parse_yaml(text, name)
    keys = set(data) if isinstance(data, dict) else set()
    if "pipelines" in keys:
        return "rawbench" if "raw_corruptions" in keys else "synthesis"
    if "variables" in keys:
        return "acquire"
    return "adjust" if keys & set(_ADJUSTMENT_ONLY) else "forensics"


def _summary(text: str) -> str:
    """The comment lines an experiment opens with, as one paragraph."""
    lines = text.splitlines()
    header = lines[: next((i for i, line in enumerate(lines) if not line.startswith("#")), len(lines))]
    return " ".join(line.lstrip("#").strip() for line in header)


def copy_experiment(name: str, folder: str | os.PathLike[str] = "experiments") -> Path:
    """Copy the shipped experiment ``name`` (with or without ``.yaml``) into ``folder`` (created if missing) and return the copy.

    The copy is byte-identical. An existing file is never overwritten
    (:class:`FileExistsError`); an unknown name is an :class:`~ispkit.errors.InputError`
    naming close matches.
    """
    from ..atomic import atomic_write_text
    from ..errors import InputError

    shipped = shipped_experiments()
    key = name.removesuffix(".yaml")
    if key not in shipped:
        raise InputError(f"no shipped experiment {name!r}: {close_matches(key, sorted(shipped))} (`ispkit experiments list` lists them)")
    target = Path(folder) / f"{key}.yaml"
    if target.exists():
        raise FileExistsError(f"{target} exists; refusing to overwrite it (remove it, or copy into another folder)")
    return atomic_write_text(target, shipped[key].text, overwrite=False)
