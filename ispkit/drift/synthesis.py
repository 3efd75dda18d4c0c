"""Drift synthesis: train on one data model, test on every data model and on the corruptions.

Oala et al., TMLR 2023, §5.1 (Figures 4–5, Tables 7–11). For every train pipeline
``p`` and fold ``k`` a task model is trained on the views of the other folds processed
by ``p``; it is then tested on the held-out fold processed by every test pipeline
``q`` and on ``p``'s held-out views under each common corruption and severity
(:mod:`ispkit.corruptions`). The scores fill a :class:`~ispkit.drift.results.SynthesisResults`.

Views are computed batched in torch (a :class:`ViewBank` keeps each pipeline's
prepared views in memory while they fit a budget, and otherwise processes every
batch on the fly). A study lives in a run directory::

    config.yaml             the experiment, as given (a resume must give the same one)
    folds.json              the sample indices of each fold
    units/<p>/fold<k>/      model.pt (checkpoint), train_state.pt (per-epoch resume), result.json
    results.json, results.csv, figures/*.png, report.html
    mlflow.db, mlruns/      the local MLflow store (unless --tracking-uri or --no-tracking)

Interrupt it at any time and run it again: finished units are read back, an
unfinished unit continues from its last epoch. The units (train pipeline × fold) run
one after the other here, or as Dask tasks on a cluster (``scheduler=``, see
:mod:`ispkit.drift.execution` and :mod:`ispkit.drift.grid`) with the same results.
"""

from __future__ import annotations

import json
import math
import os
import socket
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..camera import Camera
from ..corruptions import CORRUPTIONS
from ..data.splits import grouped_stratified_kfold
from ..errors import InputError
from ..atomic import atomic_write_text
from ..pipeline import Pipeline
from ..tasks.base import TaskNetwork, downsample_views
from ..tasks.checkpoint import save_checkpoint
from ..tasks.metrics import PRIMARY_METRIC
from ..tasks.registry import build_network
from ..tasks.state import load_state
from ..tasks.training import ViewSource, evaluate, fit
from .config import DatasetConfig, SynthesisConfig
from .execution import execute
from .results import SynthesisResults
from .run_lock import holding_run_folder
from .tracking import make_tracker
from .units import Clock, Metrics, Study, Unit, epoch_metrics, slug, unit_seed

__all__ = ["RawSet", "load_raw_set", "ViewBank", "open_run", "SynthesisStudy", "run_synthesis", "resolve_device", "seeded_network"]

Progress = Callable[[str], None]


@dataclass
class RawSet:
    """A dataset held in memory: raw mosaics ``(N, 1, H, W)`` in [0, 1] and targets."""

    raws: torch.Tensor
    targets: torch.Tensor
    groups: list[str]
    labels: np.ndarray | None
    classes: list[str] | None
    camera: Camera
    task: str


def load_raw_set(config: DatasetConfig, progress: Progress | None = None, *, write_synthetic: bool = True) -> RawSet:
    """Read the dataset of ``config`` (writing synthetic data first when asked and missing,
    unless ``write_synthetic`` is false: a Dask worker reads what the driving process wrote)."""
    from ..data import RawDroneClassification, RawDroneSegmentation, RawMicroscopy, synthesize_drone, synthesize_microscopy

    if config.synthetic is not None and write_synthetic:  # existing files are kept, so this is cheap on a rerun
        if progress:
            progress(f"synthetic {config.kind} data in {config.root}")
        make = synthesize_microscopy if config.kind == "microscopy" else synthesize_drone
        make(config.root, intensities=(config.intensity,), **config.synthetic)
    camera = config.camera or ("microscopy" if config.kind == "microscopy" else "drone")
    loader = {"microscopy": RawMicroscopy, "drone": RawDroneSegmentation, "drone-classification": RawDroneClassification}[config.kind]
    data = loader(config.root, config.intensity, camera=camera)
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
    return RawSet(raws, targets, list(data.groups), labels, classes, data.camera, config.task)


class ViewBank:
    """Prepared views ``downsample(pipeline(raw))`` of a whole dataset, per pipeline.

    A pipeline's views are computed once, in batches, and kept (least recently used
    first out) while all kept views fit in ``max_bytes``; a pipeline whose views alone
    exceed it is processed batch by batch whenever views are asked for.
    """

    def __init__(self, raws: torch.Tensor, pipelines: dict[str, Pipeline], *, downsample: int, device: torch.device, batch_size: int = 32, max_bytes: int = 2 << 30) -> None:
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
        raise InputError(f"device {name!r} was asked for but CUDA is not available here; use 'cpu' or 'auto'")
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


def open_run(run_dir: str | os.PathLike[str], config: Any, progress: Progress | None, *, downsample: int, create: bool = True) -> tuple[Path, torch.device, RawSet]:
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


def _folds(run_dir: Path, data: RawSet, config: Any) -> list[tuple[np.ndarray, np.ndarray]]:
    folds = grouped_stratified_kfold(data.groups, data.labels, n_splits=config.folds, seed=config.seed)
    plain = [[train.tolist(), test.tolist()] for train, test in folds]
    file = run_dir / "folds.json"
    if file.exists():
        if json.loads(file.read_text(encoding="utf-8")) != plain:
            raise InputError(f"the dataset changed since this run started ({file} lists other folds); use another output folder")
    else:
        atomic_write_text(file, json.dumps(plain))
    return folds


def _evaluate_unit(network: torch.nn.Module, bank: ViewBank, data: RawSet, config: SynthesisConfig, test: np.ndarray, train_label: str, seed: int) -> dict[str, Any]:
    batch = config.training.batch_size
    scores = {q: evaluate(network, bank.source(q), data.targets, test, batch_size=batch) for q in config.test_pipelines}
    source = bank.source(train_label)
    width = source(torch.as_tensor(test[:1])).shape[-1]
    scale = config.corruptions.scale or width / 224
    corrupted: dict[str, dict[str, dict[str, float]]] = {}
    for c, name in enumerate(config.corruptions.names):
        corrupted[name] = {}
        for severity in config.corruptions.severities:
            generator = torch.Generator().manual_seed(unit_seed(seed, c, severity))

            def corrupt(index: torch.Tensor, name: str = name, severity: int = severity, generator: torch.Generator = generator) -> torch.Tensor:
                return CORRUPTIONS[name](source(index), severity, generator=generator, scale=scale)

            corrupted[name][str(severity)] = evaluate(network, corrupt, data.targets, test, batch_size=batch)
    return {"pipelines": scores, "corruptions": corrupted}


def seeded_network(model: Any, data: RawSet, seed: int, device: torch.device, *, downsample: int | None = None, in_channels: int = 3) -> TaskNetwork:
    """Build ``model`` (a :class:`~ispkit.drift.config.ModelConfig`) for ``data``'s task, initialised from ``seed``
    without touching the global random state."""
    outputs = len(data.classes) if data.classes is not None else 1
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        network = build_network(model.name, outputs, options=model.options, downsample=model.downsample if downsample is None else downsample,
                                classes=data.classes, in_channels=in_channels)  # fmt: skip
    return network.to(device)


class SynthesisStudy(Study):
    """The units of a drift-synthesis study (train pipeline × fold) and how to run one."""

    def __init__(self, config: SynthesisConfig, run_dir: Path, device: torch.device, data: RawSet, folds: list[tuple[np.ndarray, np.ndarray]], bank: ViewBank) -> None:
        self.config, self.run_dir, self.device, self.data, self.folds, self.bank = config, run_dir, device, data, folds, bank

    @classmethod
    def open(cls, config: SynthesisConfig, run_dir: str | os.PathLike[str], *, progress: Progress | None = None, create: bool = True, max_cache_bytes: int = 2 << 30) -> SynthesisStudy:
        run_dir, device, data = open_run(run_dir, config, progress, downsample=config.model.downsample, create=create)
        folds = _folds(run_dir, data, config)
        labels = dict.fromkeys((*config.train_pipelines, *config.test_pipelines))
        pipelines = {label: config.pipeline(label, data.camera) for label in labels}
        bank = ViewBank(data.raws, pipelines, downsample=config.model.downsample, device=device, batch_size=config.training.batch_size, max_bytes=max_cache_bytes)
        return cls(config, run_dir, device, data, folds, bank)

    def units(self) -> list[Unit]:
        config = self.config
        keys = [(p, k) for p in range(len(config.train_pipelines)) for k in range(config.folds)]
        return [
            Unit(f"{config.train_pipelines[p]}/fold{k}", (p, k), self.run_dir / "units" / slug(config.train_pipelines[p]) / f"fold{k}",
                 {"train_pipeline": config.train_pipelines[p], "fold": k, "seed": unit_seed(config.seed, p, k), "train_size": len(self.folds[k][0]),
                  "test_size": len(self.folds[k][1])}, config.training.epochs, (i, len(keys)))
            for i, (p, k) in enumerate(keys, 1)
        ]  # fmt: skip

    def run(self, unit: Unit, clock: Clock) -> dict[str, Any]:
        config, data, bank = self.config, self.data, self.bank
        fold, label, seed = unit.key[1], unit.params["train_pipeline"], unit.params["seed"]
        train, test = self.folds[fold]
        network = seeded_network(config.model, data, seed, self.device)
        metric = PRIMARY_METRIC[data.task]
        name = f"{unit.tag} {label} fold {fold + 1}/{config.folds}"
        state = unit.folder / "train_state.pt"
        if state.exists():
            done = load_state(state, what="training resume state")["epoch"]
            clock.skip(done)
            clock.say(f"{name}: resuming after epoch {done}")

        def on_epoch(epoch: int, loss: float, scores: dict[str, float]) -> None:
            clock.step(f"{name}  epoch {epoch}/{config.training.epochs}  loss {loss:.3f}  {metric} {scores[metric]:.3f}")

        history = fit(network, bank.source(label), data.targets, train, replace(config.training, seed=seed), validation_index=test, on_epoch=on_epoch, state_path=state)
        result = _evaluate_unit(network, bank, data, config, test, label, seed)
        result["history"] = {"loss": history.loss, "validation": history.validation}
        save_checkpoint(
            unit.folder / "model.pt", network, pipeline_yaml=bank.pipelines[label].to_yaml(),
            metadata={"experiment": config.name, "train_pipeline": label, "fold": fold, "seed": seed, "dataset": config.dataset.kind, "intensity": config.dataset.intensity},
        )  # fmt: skip
        atomic_write_text(unit.folder / "result.json", json.dumps(result, indent=1))
        state.unlink(missing_ok=True)
        return result

    def metrics(self, unit: Unit, result: dict[str, Any]) -> Metrics:
        metric = PRIMARY_METRIC[self.data.task]
        return [*epoch_metrics(result["history"]), ({f"test_{metric}/{q}": s[metric] for q, s in result["pipelines"].items()}, None)]


def _collect(config: SynthesisConfig, task: str, results: dict[tuple[int, int], dict[str, Any]]) -> SynthesisResults:
    names = list(next(iter(results.values()))["pipelines"][config.test_pipelines[0]])
    P, Q, K = len(config.train_pipelines), len(config.test_pipelines), config.folds
    C, S = len(config.corruptions.names), len(config.corruptions.severities)
    metrics = {m: np.zeros((P, Q, K)) for m in names}
    corrupted = {m: np.zeros((P, C, S, K)) for m in names}
    for (p, k), result in results.items():
        for q, test in enumerate(config.test_pipelines):
            for m in names:
                metrics[m][p, q, k] = result["pipelines"][test][m]
        for c, name in enumerate(config.corruptions.names):
            for s, severity in enumerate(config.corruptions.severities):
                for m in names:
                    corrupted[m][p, c, s, k] = result["corruptions"][name][str(severity)][m]
    return SynthesisResults(
        task=task, metric=PRIMARY_METRIC[task], train_pipelines=list(config.train_pipelines), test_pipelines=list(config.test_pipelines),
        folds=K, metrics=metrics, corruptions=list(config.corruptions.names), severities=list(config.corruptions.severities), corruption_metrics=corrupted,
    )  # fmt: skip


def _worst_views(bank: ViewBank, results: SynthesisResults, index: int) -> tuple[np.ndarray, np.ndarray]:
    train, test, _ = results.worst_pair()
    raw = bank.raws[index : index + 1].to(bank.device)
    with torch.no_grad():
        return tuple(bank.module(label)(raw)[0].clamp(0, 1).cpu().numpy() for label in (train, test))  # type: ignore[return-value]


@holding_run_folder
def run_synthesis(
    config: SynthesisConfig,
    run_dir: str | os.PathLike[str],
    *,
    tracking: bool = True,
    tracking_uri: str | None = None,
    progress: Progress | None = None,
    max_cache_bytes: int = 2 << 30,
    scheduler: Any = "local",
    workers: int = 1,
) -> SynthesisResults:
    """Run (or resume) the study ``config`` in ``run_dir`` and write its results and report.

    Parameters
    ----------
    config
        The experiment (:meth:`SynthesisConfig.from_yaml`).
    run_dir
        Output folder; an existing one is resumed (it must hold the same experiment).
    tracking, tracking_uri
        MLflow tracking: local store in ``run_dir`` by default, a server with
        ``tracking_uri``, none with ``tracking=False``.
    progress
        Called with one line of text per step (the CLI prints them).
    max_cache_bytes
        Memory budget for the prepared views kept by the :class:`ViewBank`.
    scheduler, workers
        Where the units run (:func:`ispkit.drift.execution.execute`): here, one after
        the other (default), a local Dask cluster of ``workers`` processes, or a Dask
        scheduler address / client.
    """
    from .report import write_report

    study = SynthesisStudy.open(config, run_dir, progress=progress, max_cache_bytes=max_cache_bytes)
    run_dir, data, bank = study.run_dir, study.data, study.bank
    units = study.units()
    clock = Clock(progress, len(units) * config.training.epochs)
    clock.say(f"{config.name}: {len(data.raws)} samples, {len(config.train_pipelines)} train × {len(config.test_pipelines)} test pipelines, {config.folds} folds, on {study.device}")
    params = {"name": config.name, "dataset": config.dataset.__dict__, "model": config.model.__dict__, "training": config.training.__dict__, "folds": config.folds, "seed": config.seed}
    tracker = make_tracker(run_dir, config.name, params, tracking_uri=tracking_uri, enabled=tracking)
    results = execute(study, units, clock=clock, tracker=tracker, scheduler=scheduler, workers=workers)
    summary = _collect(config, data.task, results)
    summary.save(run_dir / "results.json")
    summary.to_csv(run_dir / "results.csv")
    worst = _worst_views(bank, summary, int(study.folds[0][1][0])) if len(config.test_pipelines) > 1 else None
    report = write_report(run_dir, summary, worst_views=worst, config_text=config.text, title=f"Drift synthesis: {config.name}")
    s = summary.summary()
    tracker.log_metrics({k: v for k, v in s.items() if isinstance(v, float) and math.isfinite(v)})
    for path in (run_dir / "results.json", run_dir / "results.csv", report, *sorted((run_dir / "figures").glob("*.png"))):
        tracker.log_artifact(path)
    tracker.end_study()
    clock.say(f"done: report at {report}")
    return summary
