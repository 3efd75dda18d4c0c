"""Drift adjustment: train the pipeline's parameters together with the task model.

Oala et al., TMLR 2023, §5.3 (Figure 7). Up to four arms are trained on the same raw data,
for each intensity and fold:

``learned``
    the reference pipeline as a differentiable module whose every continuous parameter
    is optimised jointly with the task model, with learning rates ``pipeline_lr`` relative
    to each parameter's scale (:meth:`ispkit.PipelineModule.parameter_groups`; one
    learning rate for a black level near 1e-5 and a colour matrix near 1 destroys the
    former) and a projection onto the physical bounds after each step;
``frozen``
    the same pipeline with its parameters fixed (views computed once);
``raw``
    no pipeline: the task model sees the packed raw mosaic, four half-resolution
    planes (:func:`ispkit.cfa.pack_bayer`);
``augmented``
    a control (issue 19): the frozen pipeline's views of raws that, per training sample
    and epoch, are corrupted by a randomly drawn raw-domain corruption and severity, and
    optionally processed with pipeline parameters drawn within a forensic operating
    specification (:mod:`ispkit.drift.augmentation`).

After training, every arm is tested on its validation split under **held-out raw
corruptions** (``held_out.corruptions`` × ``held_out.severities``, each a corruption or a
severity the augmented arm never trains on; the same corrupted raws for every arm, seeded
by the study's seed, the intensity, the cell and the fold) and through **held-out
pipelines** (test pipelines other than the experiment's; the frozen, augmented and learned
arms' models see their views; the raw arm sees no pipeline, so it has no score there).

Low-light data are made with the sensor model from the dataset's raws
(:func:`ispkit.sensor.scale_exposure`: binomial thinning of the photo-electrons, fresh
read noise, re-quantisation), e.g. intensity 0.001 as in the paper. The outcome is the
validation metric per epoch, mean ± std over folds, for every arm and intensity, and
the final views of the learned pipelines.

Before each validation the task model's BatchNorm running statistics are recomputed
over the training views as they are at that epoch, in every arm
(``training: {recalibrate_bn: true}``, the default here; see
:func:`ispkit.tasks.training.recalibrate_batchnorm`). Without it the learned arm is
evaluated with running averages that mix views of earlier pipelines: measured on the
small study's checkpoints at intensity 0.001, that alone took the learned arm from
0.712 ± 0.102 to 0.860 ± 0.005.

An experiment file::

    name: adjustment-microscopy-small
    dataset: {kind: microscopy, root: ../out/data/synthetic, synthetic: {n: 360}}
    pipeline: "bi,s,me"              # the start of the learned arm, and the frozen arm
    intensities: [0.001, 1.0]        # factors applied to the intensity-1.0 raws
    sensor: {gain: 2.2, read_noise: 1.5}   # default: the camera's (or the synthetic data's)
    arms: [learned, frozen, raw, augmented]   # default: learned, frozen, raw
    model: {name: small_cnn, downsample: 4}
    training: {epochs: 12, batch_size: 32, lr: 0.003}
    pipeline_lr: 0.01                # relative: × each parameter's scale
    folds: 3
    augmentation:                    # the augmented arm (every key optional)
      corruptions: [low_light, motion_blur, vignetting, illuminant, fixed_pattern_noise]
      severities: [1, 3]             # drawn uniformly from this range (inclusive)
      clean: 0.25                    # probability that a sample stays the frozen view
      operating_spec: ../runs/forensics/operating_spec.yaml   # optional, from ispkit forensics run
    held_out:                        # what every arm is tested on after training
      corruptions: [overexposure, lens_shading, chromatic_aberration, defective_pixels, dark_current]
      severities: [3]
      pipelines: all                 # every other preset; or a list, or []

The run folder holds ``config.yaml``, ``folds.json``,
``units/<intensity>/<arm>/fold<k>/`` (``result.json`` with the curves and the held-out
scores, ``model.pt``, ``pipeline.yaml`` of the learned arm, ``train_state.pt`` while
unfinished), ``operating_spec.yaml`` (a copy of the augmentation's, when given; a resume
refuses a changed one), ``results.json``, ``figures/`` and ``report.html``. A rerun skips
finished units and continues an unfinished one from its last epoch (the augmented arm draws
from that epoch on exactly what an uninterrupted run draws). The units (intensity × arm × fold) run
here or as Dask tasks (``scheduler=``, :mod:`ispkit.drift.execution`).
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..atomic import atomic_write_text
from ..cfa import pack_bayer
from ..errors import InputError
from ..raw_corruptions import raw_corruption
from ..sensor import scale_exposure
from ..tasks.base import TaskNetwork, downsample_views
from ..tasks.checkpoint import save_checkpoint
from ..tasks.metrics import PRIMARY_METRIC
from ..tasks.state import load_state
from ..tasks.training import ViewSource, evaluate, evaluate_detailed, fit
from .augmentation import AugmentationSampler, AugmentedSource
from .config import AcquisitionConfig, AdjustmentConfig
from .execution import execute
from .results import AdjustmentResults
from .run_lock import holding_run_folder
from .runs import RawSet, ViewBank, open_run, saved_folds, seeded_network
from .tracking import make_tracker
from .units import Clock, Metrics, Progress, Study, Unit, epoch_metrics, unit_seed

__all__ = ["AdjustmentResults", "AdjustmentStudy", "low_light", "run_adjustment"]
# AdjustmentResults is defined in ispkit.drift.results (with every results class) and stays importable from here.


def _intensity_key(intensity: float) -> str:
    """Folder and dictionary key of an intensity, e.g. ``0.001`` → ``"0.001"``."""
    return f"{intensity:g}"


def _sensor_noise(config: AdjustmentConfig | AcquisitionConfig, data: RawSet) -> tuple[float, float]:
    """Gain and read noise: the config's, else the camera's, else what the synthetic data were made with."""
    from ..data.synthesize import DRONE_READ_NOISE, MICROSCOPY_NOISE

    gain = config.gain if config.gain is not None else data.camera.gain
    read_noise = config.read_noise if config.read_noise is not None else data.camera.read_noise
    marker = config.dataset.root / ("microscopy" if config.dataset.kind == "microscopy" else "drone") / "SYNTHETIC.txt"
    if marker.exists() and config.dataset.kind == "microscopy":
        gain = MICROSCOPY_NOISE["gain"] if gain is None else gain
        read_noise = MICROSCOPY_NOISE["read_noise"] if read_noise is None else read_noise
    elif marker.exists():
        read_noise = DRONE_READ_NOISE if read_noise is None else read_noise
    if gain is None or read_noise is None:
        raise InputError(
            f"camera {data.camera.name!r} has no {'gain' if gain is None else 'read noise'}; "
            "give sensor: {gain: DN per electron, read_noise: electrons} in the experiment"
        )
    return float(gain), float(read_noise)


def low_light(raws: torch.Tensor, intensity: float, camera: Any, *, gain: float, read_noise: float, seed: int) -> torch.Tensor:
    """Raws ``(N, 1, H, W)`` as acquired with ``intensity`` times the light (sensor model, seeded)."""
    if intensity == 1.0:
        return raws
    dim = scale_exposure(raws[:, 0].double().numpy(), intensity, camera, seed=seed, gain=gain, read_noise=read_noise)
    return torch.from_numpy(dim).float()[:, None]


def _viewer(arm: str, pipeline: torch.nn.Module | None, downsample: int, device: torch.device) -> Callable[[torch.Tensor], torch.Tensor]:
    """How ``arm``'s task model sees raws ``(n, 1, H, W)``: the packed mosaic (``raw``), else ``pipeline``'s views
    (the frozen pipeline, or the learned arm's module), downsampled as the model expects."""
    if arm == "raw":
        return lambda raws: downsample_views(pack_bayer(raws), max(downsample // 2, 1)).to(device)
    assert pipeline is not None, f"the {arm} arm sees a pipeline's views"
    return lambda raws: downsample_views(pipeline(raws.to(device)), downsample)


def _indexed(views: torch.Tensor) -> ViewSource:
    """A view source over prepared ``views``: ``source(index)`` is ``views[index]``."""
    return lambda index: views[torch.as_tensor(index, device=views.device)]


def _next_epoch(state: Path) -> int:
    """The epoch a training run resumed from ``state`` continues with (1 without one)."""
    return int(load_state(state, what="training resume state")["epoch"]) + 1 if state.exists() else 1


class AdjustmentStudy(Study):
    """The units of an adjustment study (intensity × arm × fold) and how to run one."""

    def __init__(
        self,
        config: AdjustmentConfig,
        run_dir: Path,
        device: torch.device,
        data: RawSet,
        folds: list[tuple[np.ndarray, np.ndarray]],
        gain: float,
        read_noise: float,
    ) -> None:
        self.config, self.run_dir, self.device, self.data, self.folds = config, run_dir, device, data, folds
        self.gain, self.read_noise = gain, read_noise
        self.camera = replace(data.camera, gain=gain, read_noise=read_noise)  # with the facts the raw corruptions need
        self.pipeline = config.pipeline(data.camera)
        self.held_out_pipelines = {label: config.held_out_pipeline(label, data.camera) for label in config.held_out.pipelines}
        self._banks: dict[float, ViewBank] = {}
        self._samples: dict[float, torch.Tensor] = {}

    @classmethod
    def open(cls, config: AdjustmentConfig, run_dir: str | os.PathLike[str], *, progress: Progress | None = None, create: bool = True) -> AdjustmentStudy:
        assert config.model is not None, "an adjustment experiment names its model (checked when parsed)"
        run_dir, device, data = open_run(run_dir, config, progress, downsample=config.model.downsample, create=create)
        folds = saved_folds(run_dir, data, config)
        if config.augmentation.operating_spec is not None and "augmented" in config.arms:
            _saved_operating_spec(run_dir, config.augmentation.operating_spec, create)
        return cls(config, run_dir, device, data, folds, *_sensor_noise(config, data))

    def bank(self, intensity: float) -> ViewBank:
        """The raws at ``intensity`` (seeded sensor model) with the frozen and the held-out pipelines' views, each made once when first asked for."""
        if intensity not in self._banks:
            self._banks.clear()  # one intensity's raws at a time
            seed = unit_seed(self.config.seed, 10**6, self.config.intensities.index(intensity))
            raws = low_light(self.data.raws, intensity, self.data.camera, gain=self.gain, read_noise=self.read_noise, seed=seed)
            pipelines = {self.config.pipeline_label: self.pipeline, **self.held_out_pipelines}
            self._banks[intensity] = ViewBank(raws, pipelines, downsample=self.config.model.downsample, device=self.device,
                                              batch_size=self.config.training.batch_size)  # fmt: skip
            self._samples[intensity] = raws[self.folds[0][1][:4]]
        return self._banks[intensity]

    def samples(self, intensity: float) -> torch.Tensor:
        """The report's four sample raws at ``intensity`` (fold 0's first test images), kept when
        the raws were made so that the report does not make them again."""
        if intensity not in self._samples:
            self.bank(intensity)
        return self._samples[intensity]

    def units(self) -> list[Unit]:
        config = self.config
        keys = [(i, a, k) for i in config.intensities for a in config.arms for k in range(config.folds)]
        return [
            Unit(f"{_intensity_key(i)}/{a}/fold{k}", (i, a, k), self.run_dir / "units" / _intensity_key(i) / a / f"fold{k}",
                 {"arm": a, "intensity": i, "fold": k, "seed": unit_seed(config.seed, config.arms.index(a), config.intensities.index(i), k)},
                 config.training.epochs, (n, len(keys)))
            for n, (i, a, k) in enumerate(keys, 1)
        ]  # fmt: skip

    def _source(self, arm: str, bank: ViewBank, module: torch.nn.Module | None, train: np.ndarray, seed: int, state: Path) -> ViewSource:
        """The training views of ``arm``: the frozen pipeline's (made once), the packed raw mosaics, the learned
        pipeline's (made again for every batch, so gradients reach it), or the augmented draws of the epoch
        a resumed run continues with."""
        downsample, device = self.config.model.downsample, self.device
        if arm == "frozen":
            return bank.source(self.config.pipeline_label)
        if arm == "augmented":
            sampler = AugmentationSampler(self.config.augmentation, unit_seed(seed, 1))
            return AugmentedSource(sampler, bank.raws, bank.source(self.config.pipeline_label), self.pipeline, self.camera, train,
                                   downsample=downsample, device=device, epoch=_next_epoch(state))  # fmt: skip
        if arm == "raw":
            return _indexed(_viewer(arm, None, downsample, device)(bank.raws))
        view = _viewer(arm, module, downsample, device)
        return lambda index: view(bank.raws[torch.as_tensor(index)])

    def corrupted(self, intensity: float, fold: int, cell: int) -> torch.Tensor:
        """Fold ``fold``'s validation raws at ``intensity`` under held-out corruption cell ``cell`` (of
        ``config.held_out.cells()``): the same raws for every arm, seeded by the study's seed, the intensity, the cell and the fold."""
        config = self.config
        name, severity = config.held_out.cells()[cell]
        seed = unit_seed(config.seed, 10**6 + 1, config.intensities.index(intensity), cell, fold)
        raws = self.bank(intensity).raws[self.folds[fold][1]]
        return raw_corruption(name).apply_torch(raws, severity, camera=self.camera, generator=torch.Generator().manual_seed(seed))

    def held_out(self, arm: str, network: TaskNetwork, module: torch.nn.Module | None, intensity: float, fold: int) -> dict[str, list[float | None]]:
        """``arm``'s trained ``network`` on its validation split under each held-out corruption cell and through each held-out
        pipeline: the primary metric per cell, in the config's order (``None`` for the raw arm's pipelines: it sees none)."""
        config, bank, data = self.config, self.bank(intensity), self.data
        metric, batch, test = PRIMARY_METRIC[data.task], config.training.batch_size, self.folds[fold][1]
        view = _viewer(arm, module if arm == "learned" else bank.module(config.pipeline_label), config.model.downsample, self.device)
        targets, positions = data.targets[test], torch.arange(len(test))
        corruptions: list[float | None] = []
        for cell in range(len(config.held_out.cells())):
            raws = self.corrupted(intensity, fold, cell)
            with torch.no_grad():
                views = torch.cat([view(raws[part]) for part in positions.split(batch)])
            corruptions.append(evaluate(network, _indexed(views), targets, positions, batch_size=batch)[metric])
        pipelines: list[float | None] = [
            None if arm == "raw" else evaluate(network, bank.source(label), data.targets, test, batch_size=batch)[metric] for label in config.held_out.pipelines
        ]
        return {"corruptions": corruptions, "pipelines": pipelines}

    def run(self, unit: Unit, clock: Clock) -> dict[str, Any]:
        config, data, device = self.config, self.data, self.device
        (intensity, arm, fold), seed = unit.key, unit.params["seed"]
        bank = self.bank(intensity)
        train, test = self.folds[fold]
        # the view source prepares the views; the network records the factor for use on full views later
        downsample = max(config.model.downsample // 2, 1) if arm == "raw" else config.model.downsample
        network = seeded_network(config.model, data, seed, device, downsample=downsample, in_channels=4 if arm == "raw" else 3)
        module = self.pipeline.to_torch(trainable="all").to(device) if arm == "learned" else None
        parameters: list[Any] = [{"params": list(network.parameters())}]
        if module is not None:  # step sizes relative to each parameter's scale (see PipelineModule.parameter_groups)
            parameters += module.parameter_groups(config.pipeline_lr)
        state = unit.folder / "train_state.pt"
        source = self._source(arm, bank, module, train, seed, state)
        metric = PRIMARY_METRIC[data.task]

        def on_epoch(epoch: int, loss: float, scores: dict[str, float]) -> None:
            clock.step(
                f"{unit.tag} intensity {_intensity_key(intensity)} {arm:7s} fold {fold + 1}/{config.folds}  epoch {epoch}/{config.training.epochs}  loss {loss:.3f}  {metric} {scores[metric]:.3f}"
            )
            if isinstance(source, AugmentedSource):  # the state of this epoch is saved: draw the next one's
                source.set_epoch(epoch + 1)

        history = fit(network, source, data.targets, train, replace(config.training, seed=seed), parameters=parameters, validation_index=test, on_epoch=on_epoch,
                      state_path=state, after_step=module.project_ if module is not None else None)  # fmt: skip
        result: dict[str, Any] = {"loss": history.loss, "validation": history.validation}
        if data.task == "classification":  # the last epoch's predictions again (same network, same views) as true × predicted counts
            confusion = evaluate_detailed(network, source, data.targets, test, batch_size=config.training.batch_size).confusion
            result["confusion"] = confusion.tolist() if confusion is not None else None
        result["held_out"] = self.held_out(arm, network, module, intensity, fold)
        learned_yaml = None
        if module is not None:
            learned_yaml = module.to_pipeline().to_yaml()
            atomic_write_text(unit.folder / "pipeline.yaml", learned_yaml)
        save_checkpoint(unit.folder / "model.pt", network, pipeline_yaml=learned_yaml if arm == "learned" else (self.pipeline.to_yaml() if arm == "frozen" else None),
                        metadata={"experiment": config.name, "arm": arm, "intensity": intensity, "fold": fold, "downsample": config.model.downsample})  # fmt: skip
        atomic_write_text(unit.folder / "result.json", json.dumps(result))
        state.unlink(missing_ok=True)
        return result

    def metrics(self, unit: Unit, result: dict[str, Any]) -> Metrics:
        held_out = {f"held_out_{kind}": float(np.mean(scores)) for kind, scores in (result.get("held_out") or {}).items() if scores and None not in scores}
        return epoch_metrics(result) + ([(held_out, None)] if held_out else [])


def _saved_operating_spec(run_dir: Path, spec: Path, create: bool) -> None:
    """Keep a copy of the augmentation's operating spec in the run folder; a resume with a changed spec is refused."""
    copy, text = run_dir / "operating_spec.yaml", spec.read_text(encoding="utf-8")
    if copy.exists():
        if copy.read_text(encoding="utf-8") != text:
            raise InputError(
                f"{spec} changed since this run started ({copy} holds the spec it began with); resume with that spec, or choose another output folder"
            )
    elif create:
        atomic_write_text(copy, text)


def _held_out_scores(units: list[Unit], found: dict[tuple, dict[str, Any]], config: AdjustmentConfig) -> dict[str, dict[str, dict[str, np.ndarray]]]:
    """``[intensity][kind][arm]``: array ``(cells, folds)`` of the held-out scores (NaN where not applicable or not recorded:
    units run before held-out scores were recorded)."""
    sizes = {"corruptions": len(config.held_out.cells()), "pipelines": len(config.held_out.pipelines)}
    scores = {_intensity_key(i): {kind: {a: np.full((n, config.folds), np.nan) for a in config.arms} for kind, n in sizes.items()} for i in config.intensities}
    for unit in units:
        intensity, arm, fold = unit.key
        recorded = found[unit.key].get("held_out") or {}
        for kind, n in sizes.items():
            values = recorded.get(kind)
            if values is not None and len(values) == n:
                scores[_intensity_key(intensity)][kind][arm][:, fold] = [np.nan if v is None else v for v in values]
    return scores


def _held_out_cells(config: AdjustmentConfig) -> dict[str, list[str]]:
    """The names of the held-out cells: ``"<corruption>/<severity>"`` and the pipelines' labels."""
    return {"corruptions": [f"{name}/{severity}" for name, severity in config.held_out.cells()], "pipelines": list(config.held_out.pipelines)}


def _augmentation_summary(config: AdjustmentConfig) -> dict[str, Any] | None:
    """What the augmented arm trained with, for the results (``None`` without that arm)."""
    if "augmented" not in config.arms:
        return None
    a = config.augmentation
    return {"corruptions": list(a.corruptions), "severities": list(a.severities), "clean": a.clean,
            "operating_spec": str(a.operating_spec) if a.operating_spec else None, "parameters": list(a.ranges)}  # fmt: skip


def _confusions(units: list[Unit], found: dict[tuple, dict[str, Any]], classes: list[str] | None) -> dict[str, dict[str, np.ndarray]]:
    """Last-epoch confusion matrices summed over folds, per intensity and arm; NaN when a fold's unit
    was run before they were recorded (no ``confusion`` in its result)."""
    cells: dict[str, dict[str, list[Any]]] = {}
    for unit in units:
        intensity, arm, _ = unit.key
        cells.setdefault(_intensity_key(intensity), {}).setdefault(arm, []).append(found[unit.key].get("confusion"))
    n = len(classes or [])
    return {
        key: {arm: np.sum(np.asarray(m, dtype=float), axis=0) if all(c is not None for c in m) else np.full((n, n), np.nan) for arm, m in arms.items()}
        for key, arms in cells.items()
    }


@holding_run_folder
def run_adjustment(config: AdjustmentConfig, run_dir: str | os.PathLike[str], *, tracking: bool = True, tracking_uri: str | None = None,
                   progress: Progress | None = None, scheduler: Any = "local", workers: int = 1) -> AdjustmentResults:  # fmt: skip
    """Run (or resume) the adjustment study ``config`` in ``run_dir``; write results, figures and report.

    ``scheduler``/``workers`` say where the units run (:func:`ispkit.drift.execution.execute`).
    """
    from .adjustment_report import write_adjustment_report

    study = AdjustmentStudy.open(config, run_dir, progress=progress)
    run_dir, data = study.run_dir, study.data
    units = study.units()
    clock = Clock(progress, len(units) * config.training.epochs)
    clock.say(
        f"{config.name}: {len(data.raws)} samples, arms {', '.join(config.arms)}, intensities {', '.join(map(_intensity_key, config.intensities))}, {config.folds} folds, on {study.device}"
    )
    params = {"name": config.name, "dataset": config.dataset.__dict__, "pipeline": config.pipeline_label, "model": config.model.__dict__,
              "training": config.training.__dict__, "pipeline_lr": config.pipeline_lr, "folds": config.folds, "seed": config.seed, "gain": study.gain, "read_noise": study.read_noise,
              "augmentation": _augmentation_summary(config), "held_out": _held_out_cells(config)}  # fmt: skip
    tracker = make_tracker(run_dir, config.name, params, tracking_uri=tracking_uri, enabled=tracking)
    start = time.perf_counter()
    found = execute(study, units, clock=clock, tracker=tracker, scheduler=scheduler, workers=workers)
    metric = PRIMARY_METRIC[data.task]
    curves: dict[str, dict[str, list[list[float]]]] = {}
    for unit in units:  # in (intensity, arm, fold) order
        intensity, arm, _ = unit.key
        curves.setdefault(_intensity_key(intensity), {}).setdefault(arm, []).append([v[metric] for v in found[unit.key]["validation"]])
    samples = {_intensity_key(i): study.samples(i) for i in config.intensities}
    results = AdjustmentResults(
        task=data.task, metric=metric, pipeline=config.pipeline_label, intensities=list(config.intensities), arms=list(config.arms),
        folds=config.folds, epochs=config.training.epochs, curves={i: {a: np.asarray(c) for a, c in arms.items()} for i, arms in curves.items()},
        classes=data.classes, synthetic=data.synthetic, confusion=_confusions(units, found, data.classes) if data.task == "classification" else None,
        held_out_cells=_held_out_cells(config), held_out=_held_out_scores(units, found, config), augmentation=_augmentation_summary(config),
    )  # fmt: skip
    results.save(run_dir / "results.json")
    report = write_adjustment_report(run_dir, results, pipeline=study.pipeline, samples=samples, config_text=config.text)
    final = results.final()
    tracker.log_metrics({f"final_{metric}/{i}/{a}": m for i, arms in final.items() for a, (m, _) in arms.items() if math.isfinite(m)})
    for path in (run_dir / "results.json", report, *sorted((run_dir / "figures").glob("*.png"))):
        tracker.log_artifact(path)
    tracker.end_study()
    clock.say(f"done in {time.perf_counter() - start:.0f} s: report at {report}")
    return results
