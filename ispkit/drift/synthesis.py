"""Drift synthesis: train on one data model, test on every data model and on the corruptions.

Oala et al., TMLR 2023, §5.1 (Figures 4–5, Tables 7–11). For every train pipeline
``p`` and fold ``k`` a task model is trained on the views of the other folds processed
by ``p``; it is then tested on the held-out fold processed by every test pipeline
``q`` and on ``p``'s held-out views under each common corruption and severity
(:mod:`ispkit.corruptions`). With ``raw_corruptions:`` in the experiment it is also tested on
the held-out fold's raw mosaics corrupted in the raw domain (:mod:`ispkit.raw_corruptions`)
at each severity and then processed by ``p``, its own pipeline: the same ISP, a physically
different acquisition. The scores fill a :class:`~ispkit.drift.results.SynthesisResults`.

A raw corruption draws its random numbers from a generator seeded by
:func:`raw_corruption_seed` (the study's seed, the fold, the corruption's name and the
severity, not the train pipeline), fed batch by batch in the order of the fold's test
indices: every model of a fold sees the same corrupted acquisitions, so their errors, and
the mean corruption error normalised by the baseline model's, differ by the model alone.

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
import zlib
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..atomic import atomic_write_text
from ..camera import Camera
from ..corruptions import CORRUPTIONS
from ..raw_corruptions import raw_corruption
from ..tasks.base import TaskNetwork, downsample_views
from ..tasks.checkpoint import save_checkpoint
from ..tasks.metrics import PRIMARY_METRIC
from ..tasks.state import load_state
from ..tasks.training import Evaluation, ViewSource, evaluate_detailed, fit
from .config import RawCorruptionConfig, SynthesisConfig
from .execution import execute
from .report import write_report
from .results import SynthesisResults
from .run_lock import holding_run_folder
from .runs import RawSet, ViewBank, load_raw_set, open_run, resolve_device, saved_folds, seeded_network
from .tracking import make_tracker
from .units import Clock, Metrics, Progress, Study, Unit, epoch_metrics, slug, total_work, unit_seed

__all__ = [
    "RawSet", "load_raw_set", "ViewBank", "open_run", "SynthesisStudy", "run_synthesis", "resolve_device", "seeded_network", "raw_corruption_seed",
    "raw_corrupted_source",
]  # fmt: skip
# RawSet, load_raw_set, ViewBank, open_run, resolve_device and seeded_network are defined in ispkit.drift.runs
# (the plumbing all three controls share) and stay importable from here.


def _evaluate_unit(
    network: TaskNetwork, bank: ViewBank, data: RawSet, config: SynthesisConfig, test: np.ndarray, train_label: str, seed: int, fold: int
) -> dict[str, Any]:
    batch = config.training.batch_size
    evaluations = {q: evaluate_detailed(network, bank.source(q), data.targets, test, batch_size=batch) for q in config.test_pipelines}
    source = bank.source(train_label)
    width = source(torch.as_tensor(test[:1])).shape[-1]
    scale = config.corruptions.scale or width / 224
    corrupted: dict[str, dict[str, Evaluation]] = {}
    for c, name in enumerate(config.corruptions.names):
        corrupted[name] = {}
        for severity in config.corruptions.severities:
            generator = torch.Generator().manual_seed(unit_seed(seed, c, severity))

            def corrupt(index: torch.Tensor, name: str = name, severity: int = severity, generator: torch.Generator = generator) -> torch.Tensor:
                return CORRUPTIONS[name](source(index), severity, generator=generator, scale=scale)

            corrupted[name][str(severity)] = evaluate_detailed(network, corrupt, data.targets, test, batch_size=batch)
    raw = _evaluate_raw(network, bank, data, config.raw_corruptions, test, train_label, fold, config.seed, batch) if config.raw_corruptions else {}
    result: dict[str, Any] = {
        "pipelines": {q: e.metrics for q, e in evaluations.items()},
        "corruptions": {name: {s: e.metrics for s, e in by_severity.items()} for name, by_severity in corrupted.items()},
    }
    if config.raw_corruptions:
        result["raw_corruptions"] = {name: {s: e.metrics for s, e in by_severity.items()} for name, by_severity in raw.items()}
    if data.task == "classification":  # the confusion matrices (true × predicted class) of the same predictions
        result["confusion"] = {
            "pipelines": {q: _counts(e) for q, e in evaluations.items()},
            "corruptions": {name: {s: _counts(e) for s, e in by_severity.items()} for name, by_severity in corrupted.items()},
        }
        if config.raw_corruptions:
            result["confusion"]["raw_corruptions"] = {name: {s: _counts(e) for s, e in by_severity.items()} for name, by_severity in raw.items()}
    return result


def raw_corruption_seed(seed: int, fold: int, name: str, severity: int) -> int:
    """The seed of raw corruption ``name`` at ``severity`` on fold ``fold``'s test raws (the same for every train pipeline).

    The name enters through its CRC-32, so adding or removing corruptions leaves the others' draws as they were.

    >>> raw_corruption_seed(0, 1, "low_light", 3) == raw_corruption_seed(0, 1, "low_light", 3) != raw_corruption_seed(0, 1, "low_light", 4)
    True
    """
    return unit_seed(seed, fold, zlib.crc32(name.encode("utf-8")), severity)


def raw_corrupted_source(bank: ViewBank, label: str, camera: Camera, name: str, severity: int, generator: torch.Generator) -> ViewSource:
    """A view source: the raws at an index corrupted by ``name`` at ``severity`` (on the CPU, drawing from ``generator``),
    then processed by ``label``'s pipeline and downsampled as the bank's views are."""
    corruption, module = raw_corruption(name), bank.module(label)

    def source(index: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            raws = corruption.apply_torch(bank.raws[torch.as_tensor(index)], severity, camera=camera, generator=generator)
            return downsample_views(module(raws.to(bank.device)), bank.downsample)

    return source


def _evaluate_raw(
    network: TaskNetwork, bank: ViewBank, data: RawSet, raw: RawCorruptionConfig, test: np.ndarray, label: str, fold: int, seed: int, batch: int
) -> dict[str, dict[str, Evaluation]]:
    """The unit's model on the test fold's raws under each raw corruption and severity, processed by its own pipeline ``label``."""
    camera = raw.camera_for(data.camera)
    evaluations: dict[str, dict[str, Evaluation]] = {}
    for name in raw.names:
        evaluations[name] = {}
        for severity in raw.severities:
            generator = torch.Generator().manual_seed(raw_corruption_seed(seed, fold, name, severity))
            source = raw_corrupted_source(bank, label, camera, name, severity, generator)
            evaluations[name][str(severity)] = evaluate_detailed(network, source, data.targets, test, batch_size=batch)
    return evaluations


def has_raw_axis(result: dict[str, Any], raw: RawCorruptionConfig | None) -> bool:
    """Whether a unit's ``result`` holds every raw corruption and severity ``raw`` asks for (always, when ``raw`` is ``None``)."""
    if raw is None:
        return True
    found = result.get("raw_corruptions") or {}
    return all(str(s) in found.get(name, {}) for name in raw.names for s in raw.severities)


def _counts(evaluation: Evaluation) -> list[list[int]] | None:
    return None if evaluation.confusion is None else evaluation.confusion.tolist()


class SynthesisStudy(Study):
    """The units of a drift-synthesis study (train pipeline × fold) and how to run one."""

    def __init__(
        self, config: SynthesisConfig, run_dir: Path, device: torch.device, data: RawSet, folds: list[tuple[np.ndarray, np.ndarray]], bank: ViewBank
    ) -> None:
        self.config, self.run_dir, self.device, self.data, self.folds, self.bank = config, run_dir, device, data, folds, bank

    @classmethod
    def open(
        cls, config: SynthesisConfig, run_dir: str | os.PathLike[str], *, progress: Progress | None = None, create: bool = True, max_cache_bytes: int = 2 << 30
    ) -> SynthesisStudy:
        assert config.model is not None, "a synthesis experiment names its model (checked when parsed)"
        run_dir, device, data = open_run(run_dir, config, progress, downsample=config.model.downsample, create=create)
        folds = saved_folds(run_dir, data, config)
        labels = dict.fromkeys((*config.train_pipelines, *config.test_pipelines))
        pipelines = {label: config.pipeline(label, data.camera) for label in labels}
        bank = ViewBank(
            data.raws, pipelines, downsample=config.model.downsample, device=device, batch_size=config.training.batch_size, max_bytes=max_cache_bytes
        )
        return cls(config, run_dir, device, data, folds, bank)

    def units(self) -> list[Unit]:
        config = self.config
        keys = [(p, k) for p in range(len(config.train_pipelines)) for k in range(config.folds)]
        return [
            Unit(f"{config.train_pipelines[p]}/fold{k}", (p, k), self.run_dir / "units" / slug(config.train_pipelines[p]) / f"fold{k}",
                 {"train_pipeline": config.train_pipelines[p], "fold": k, "seed": unit_seed(config.seed, p, k), "train_size": len(self.folds[k][0]),
                  "test_size": len(self.folds[k][1])}, {"work": config.training.epochs, "evaluation": 1}, (i, len(keys)))
            for i, (p, k) in enumerate(keys, 1)
        ]  # fmt: skip

    def run(self, unit: Unit, clock: Clock) -> dict[str, Any]:
        config, data, bank = self.config, self.data, self.bank
        fold, label, seed = unit.key[1], unit.params["train_pipeline"], unit.params["seed"]
        train, test = self.folds[fold]
        network = seeded_network(config.model, data, seed, self.device)
        metric = PRIMARY_METRIC[data.task]
        name = f"{unit.tag} {label} fold {fold + 1}/{config.folds}"
        if (unit.folder / "result.json").exists():
            clock.say(f"{name}: its result lacks raw corruptions this experiment asks for; running it again")
        state = unit.folder / "train_state.pt"
        if state.exists():
            done = load_state(state, what="training resume state")["epoch"]
            clock.skip(done)
            clock.say(f"{name}: resuming after epoch {done}")

        def on_epoch(epoch: int, loss: float, scores: dict[str, float]) -> None:
            clock.step(f"{name}  epoch {epoch}/{config.training.epochs}  loss {loss:.3f}  {metric} {scores[metric]:.3f}")

        history = fit(
            network, bank.source(label), data.targets, train, replace(config.training, seed=seed), validation_index=test, on_epoch=on_epoch, state_path=state
        )
        clock.say(f"{name}  evaluating on {len(config.test_pipelines)} test pipelines and the corruptions")
        result = _evaluate_unit(network, bank, data, config, test, label, seed, fold)
        clock.step(f"{name}  evaluated", kind="evaluation")
        result["history"] = {"loss": history.loss, "validation": history.validation}
        save_checkpoint(
            unit.folder / "model.pt", network, pipeline_yaml=bank.pipelines[label].to_yaml(),
            metadata={"experiment": config.name, "train_pipeline": label, "fold": fold, "seed": seed, "dataset": config.dataset.kind, "intensity": config.dataset.intensity},
        )  # fmt: skip
        atomic_write_text(unit.folder / "result.json", json.dumps(result, indent=1))
        state.unlink(missing_ok=True)
        return result

    def done(self, unit: Unit) -> dict[str, Any] | None:
        """The unit's result if it finished and holds every raw corruption and severity the experiment asks for, else ``None``
        (a unit finished without them, e.g. under an earlier config, runs again rather than being reused)."""
        result = super().done(unit)
        return result if result is not None and has_raw_axis(result, self.config.raw_corruptions) else None

    def metrics(self, unit: Unit, result: dict[str, Any]) -> Metrics:
        metric = PRIMARY_METRIC[self.data.task]
        return [*epoch_metrics(result["history"]), ({f"test_{metric}/{q}": s[metric] for q, s in result["pipelines"].items()}, None)]


def _collect(config: SynthesisConfig, data: RawSet, results: dict[tuple[int, int], dict[str, Any]]) -> SynthesisResults:
    task = data.task
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
    confusion = _confusions(config, data, results) if task == "classification" else None
    return SynthesisResults(
        task=task, metric=PRIMARY_METRIC[task], train_pipelines=list(config.train_pipelines), test_pipelines=list(config.test_pipelines),
        folds=K, metrics=metrics, corruptions=list(config.corruptions.names), severities=list(config.corruptions.severities), corruption_metrics=corrupted,
        classes=data.classes, synthetic=data.synthetic, confusion=confusion[0] if confusion else None, corruption_confusion=confusion[1] if confusion else None,
        **_raw_fields(config, names, results, task),
    )  # fmt: skip


def _raw_fields(config: SynthesisConfig, names: list[str], results: dict[tuple[int, int], dict[str, Any]], task: str) -> dict[str, Any]:
    """The raw-domain axis as :class:`SynthesisResults` fields: metric arrays ``(P, R, S, K)``, names, severities, families,
    baseline and, for classification, confusion matrices ``(P, R, S, n, n)`` summed over folds (NaN for a train pipeline
    with a unit that did not record them); nothing when the experiment has no ``raw_corruptions:``."""
    raw = config.raw_corruptions
    if raw is None:
        return {}
    values = {m: np.zeros((len(config.train_pipelines), len(raw.names), len(raw.severities), config.folds)) for m in names}
    for (p, k), result in results.items():
        for c, name in enumerate(raw.names):
            for s, severity in enumerate(raw.severities):
                for m in names:
                    values[m][p, c, s, k] = result["raw_corruptions"][name][str(severity)][m]
    fields = {
        "raw_corruptions": list(raw.names), "raw_severities": list(raw.severities), "raw_corruption_metrics": values,
        "raw_families": {name: raw_corruption(name).family for name in raw.names}, "raw_baseline": raw.baseline,
    }  # fmt: skip
    recorded = [r["confusion"]["raw_corruptions"] for r in results.values() if "raw_corruptions" in (r.get("confusion") or {})]
    if task == "classification" and recorded:
        first = recorded[0][raw.names[0]][str(raw.severities[0])]
        counts = np.zeros((len(config.train_pipelines), len(raw.names), len(raw.severities), len(first), len(first)))
        for (p, _), result in results.items():
            found = (result.get("confusion") or {}).get("raw_corruptions")
            if found is None:
                counts[p] = np.nan
                continue
            for c, name in enumerate(raw.names):
                for s, severity in enumerate(raw.severities):
                    counts[p, c, s] += found[name][str(severity)]
        fields["raw_corruption_confusion"] = counts
    return fields


def _confusions(config: SynthesisConfig, data: RawSet, results: dict[tuple[int, int], dict[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
    """Confusion matrices summed over folds, ``(P, Q, n, n)`` and ``(P, C, S, n, n)``; a train
    pipeline with a unit from before they were recorded (no ``confusion`` in its result) is NaN."""
    recorded = [r["confusion"] for r in results.values() if r.get("confusion") is not None]
    n = len(recorded[0]["pipelines"][config.test_pipelines[0]]) if recorded else len(data.classes or [])
    P, Q, C, S = len(config.train_pipelines), len(config.test_pipelines), len(config.corruptions.names), len(config.corruptions.severities)
    pipelines, corruptions = np.zeros((P, Q, n, n)), np.zeros((P, C, S, n, n))
    for (p, _), result in results.items():
        counts = result.get("confusion")
        if counts is None:
            pipelines[p], corruptions[p] = np.nan, np.nan
            continue
        for q, test in enumerate(config.test_pipelines):
            pipelines[p, q] += counts["pipelines"][test]
        for c, name in enumerate(config.corruptions.names):
            for s, severity in enumerate(config.corruptions.severities):
                corruptions[p, c, s] += counts["corruptions"][name][str(severity)]
    return pipelines, corruptions


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
    study = SynthesisStudy.open(config, run_dir, progress=progress, max_cache_bytes=max_cache_bytes)
    run_dir, data, bank = study.run_dir, study.data, study.bank
    units = study.units()
    clock = Clock(progress, total_work(units))
    clock.say(
        f"{config.name}: {len(data.raws)} samples, {len(config.train_pipelines)} train × {len(config.test_pipelines)} test pipelines, {config.folds} folds, on {study.device}"
    )
    params = {
        "name": config.name,
        "dataset": config.dataset.__dict__,
        "model": config.model.__dict__,
        "training": config.training.__dict__,
        "folds": config.folds,
        "seed": config.seed,
    }
    if config.raw_corruptions is not None:
        params["raw_corruptions"] = config.raw_corruptions.__dict__
    tracker = make_tracker(run_dir, config.name, params, tracking_uri=tracking_uri, enabled=tracking)
    results = execute(study, units, clock=clock, tracker=tracker, scheduler=scheduler, workers=workers)
    summary = _collect(config, data, results)
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
