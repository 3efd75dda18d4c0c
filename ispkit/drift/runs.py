"""What the three drift controls share to run a study: the run folder, the data, the device, folds, views, networks.

- :func:`open_run` starts or resumes a run: it refuses a run folder holding another
  experiment (``config.yaml`` differs), picks the device (:func:`resolve_device`) and
  reads the dataset into memory (:class:`RawSet`, :func:`load_raw_set`);
- :func:`saved_folds`: the grouped, stratified folds, kept in ``folds.json`` so that a
  resume uses the same ones;
- :class:`ViewBank`: each pipeline's prepared views of the whole dataset, computed once
  in batches while they fit a memory budget;
- :func:`seeded_network`: a task model initialised from a unit's seed alone.

The exclusive lock of a run folder is :mod:`ispkit.drift.run_lock`; the units of a study
and their seeds are :mod:`ispkit.drift.units`.
"""

from __future__ import annotations

import json
import os
import socket
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..atomic import atomic_write_text
from ..camera import Camera
from ..data.splits import grouped_stratified_kfold
from ..errors import InputError
from ..pipeline import Pipeline
from ..tasks.base import TaskNetwork, downsample_views
from ..tasks.registry import build_network
from ..tasks.training import ViewSource
from .config import FOLDER_KINDS, DatasetConfig
from .units import Progress

__all__ = ["RawSet", "load_raw_set", "ViewBank", "resolve_device", "open_run", "saved_folds", "seeded_network"]


@dataclass
class RawSet:
    """A dataset held in memory: raw mosaics ``(N, 1, H, W)`` in [0, 1] and targets.

    ``synthetic``: the data were made by ispkit's generators (the dataset config asks for
    them, or the loader found their ``SYNTHETIC.txt`` marker), which the reports say.
    """

    raws: torch.Tensor
    targets: torch.Tensor
    groups: list[str]
    labels: np.ndarray | None
    classes: list[str] | None
    camera: Camera
    task: str
    synthetic: bool = False


def load_raw_set(config: DatasetConfig, progress: Progress | None = None, *, write_synthetic: bool = True) -> RawSet:
    """Read the dataset of ``config`` (writing synthetic data first when asked and missing,
    unless ``write_synthetic`` is false: a Dask worker reads what the driving process wrote)."""
    from ..data import RawDroneClassification, RawDroneSegmentation, RawFolder, RawFolderSegmentation, RawMicroscopy, synthesize_drone, synthesize_microscopy

    if config.synthetic is not None and write_synthetic:  # existing files are kept, so this is cheap on a rerun
        if progress:
            progress(f"synthetic {config.kind} data in {config.root}")
        make = synthesize_microscopy if config.kind == "microscopy" else synthesize_drone
        make(config.root, intensities=(config.intensity,), **config.synthetic)
    data: Any  # one of the loaders: items (raw, target), groups, camera; labels and classes for classification
    if config.kind in FOLDER_KINDS:  # your own files, with their own camera unless one is given
        data = {"folder": RawFolder, "folder-segmentation": RawFolderSegmentation}[config.kind](config.source, camera=config.camera)
    else:
        loader = {"microscopy": RawMicroscopy, "drone": RawDroneSegmentation, "drone-classification": RawDroneClassification}[config.kind]
        data = loader(config.root, config.intensity, camera=config.default_camera)
    if len(data) == 0:
        raise InputError(f"dataset {config.kind} at {config.root} has no samples")
    items = [data[i] for i in range(len(data))]
    raws = torch.stack([raw for raw, _ in items])
    if config.task == "classification":
        targets = torch.as_tensor([t for _, t in items], dtype=torch.long)
        labels, classes = np.asarray(data.labels), list(data.classes)
    else:
        targets = torch.stack([t for _, t in items])
        labels, classes = None, None
    synthetic = config.synthetic is not None or bool(getattr(data, "synthetic", False))
    return RawSet(raws, targets, list(data.groups), labels, classes, data.camera, config.task, synthetic)


class ViewBank:
    """Prepared views ``downsample(pipeline(raw))`` of a whole dataset, per pipeline.

    A pipeline's views are computed once, in batches, and kept (least recently used
    first out) while all kept views fit in ``max_bytes``; a pipeline whose views alone
    exceed it is processed batch by batch whenever views are asked for.
    """

    def __init__(
        self, raws: torch.Tensor, pipelines: dict[str, Pipeline], *, downsample: int, device: torch.device, batch_size: int = 32, max_bytes: int = 2 << 30
    ) -> None:
        self.raws, self.pipelines = raws, pipelines
        self.downsample, self.device, self.batch_size, self.max_bytes = downsample, device, batch_size, max_bytes
        self._modules: dict[str, torch.nn.Module] = {}
        self._cache: OrderedDict[str, torch.Tensor] = OrderedDict()
        n, _, h, w = raws.shape
        self.view_bytes = n * 3 * (h // downsample) * (w // downsample) * 4

    def module(self, label: str) -> torch.nn.Module:
        if label not in self._modules:
            self._modules[label] = self.pipelines[label].to_torch().to(self.device).eval()
        return self._modules[label]

    def _process(self, label: str, index: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return downsample_views(self.module(label)(self.raws[index].to(self.device)), self.downsample)

    def source(self, label: str) -> ViewSource:
        """A view source for ``label``'s pipeline (see :data:`ispkit.tasks.training.ViewSource`)."""
        if self.view_bytes > self.max_bytes:
            return lambda index: self._process(label, torch.as_tensor(index))
        if label not in self._cache:
            while self._cache and (len(self._cache) + 1) * self.view_bytes > self.max_bytes:
                self._cache.popitem(last=False)
            index = torch.arange(len(self.raws))
            self._cache[label] = torch.cat([self._process(label, batch) for batch in index.split(self.batch_size)])
        self._cache.move_to_end(label)
        views = self._cache[label]
        return lambda index: views[torch.as_tensor(index, device=views.device)]


def resolve_device(name: str) -> torch.device:
    """``"auto"`` → CUDA when available, else CPU; otherwise the named device (checked)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        missing = (
            f"this torch ({torch.__version__}) was built without CUDA"
            if torch.version.cuda is None
            else f"torch {torch.__version__} (CUDA {torch.version.cuda}) finds no CUDA device (no NVIDIA driver, or CUDA_VISIBLE_DEVICES hides them)"
        )
        raise InputError(f"device {name!r} was asked for but CUDA is not available here: {missing}; use 'cpu' or 'auto'")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise InputError(
            f"device {name!r} was asked for but there are {torch.cuda.device_count()} CUDA device(s), cuda:0 to cuda:{torch.cuda.device_count() - 1}"
        )
    return device


def _prepare_run_dir(run_dir: Path, config: Any, create: bool) -> None:
    saved = run_dir / "config.yaml"
    if saved.exists():
        if saved.read_text(encoding="utf-8") != config.text:
            raise InputError(
                f"{run_dir} holds a run of a different experiment ({saved} differs from the given config); "
                "resume with the same config, or choose another output folder"
            )
    elif create:
        atomic_write_text(saved, config.text)
    else:
        raise InputError(
            f"the run folder {run_dir} is not visible on {socket.gethostname()}: with a Dask cluster the run folder and "
            "the dataset must be on a file system every worker sees under the same path"
        )


def open_run(
    run_dir: str | os.PathLike[str], config: Any, progress: Progress | None, *, downsample: int, create: bool = True
) -> tuple[Path, torch.device, RawSet]:
    """Start or resume a run of ``config``: the run folder (refusing one of another
    experiment), the device, and the dataset, with segmentation masks brought to the
    network's input resolution (area fractions after ``downsample``).

    With ``create=False`` (a Dask worker joining the run) the folder must exist already.
    """
    run_dir = Path(run_dir).absolute()  # units may run in processes with another working directory
    if create:
        run_dir.mkdir(parents=True, exist_ok=True)
    _prepare_run_dir(run_dir, config, create)
    device = resolve_device(config.device)
    data = load_raw_set(config.dataset, progress, write_synthetic=create)
    if data.task == "segmentation":
        data.targets = downsample_views(data.targets, downsample)
    return run_dir, device, data


def saved_folds(run_dir: Path, data: RawSet, config: Any) -> list[tuple[np.ndarray, np.ndarray]]:
    """The ``config.folds`` grouped, stratified folds of ``data`` (seeded by ``config.seed``) as ``(train, test)``
    index arrays, written to ``run_dir/folds.json`` on the first run and checked against it on a resume (a changed
    dataset is refused)."""
    folds = grouped_stratified_kfold(data.groups, data.labels, n_splits=config.folds, seed=config.seed)
    plain = [[train.tolist(), test.tolist()] for train, test in folds]
    file = run_dir / "folds.json"
    if file.exists():
        if json.loads(file.read_text(encoding="utf-8")) != plain:
            raise InputError(f"the dataset changed since this run started ({file} lists other folds); use another output folder")
    else:
        atomic_write_text(file, json.dumps(plain))
    return folds


def seeded_network(model: Any, data: RawSet, seed: int, device: torch.device, *, downsample: int | None = None, in_channels: int = 3) -> TaskNetwork:
    """Build ``model`` (a :class:`~ispkit.drift.config.ModelConfig`) for ``data``'s task, initialised from ``seed``
    without touching the global random state."""
    outputs = len(data.classes) if data.classes is not None else 1
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        network = build_network(model.name, outputs, task=data.task, options=model.options, downsample=model.downsample if downsample is None else downsample,
                                classes=data.classes, in_channels=in_channels)  # fmt: skip
    return network.to(device)
