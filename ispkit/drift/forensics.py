"""Drift forensics: search the pipeline's parameters for settings under which a model fails.

Oala et al., TMLR 2023, §5.2 (Eq. 35, Figure 6). With the task model frozen, a chosen
subset of the reference pipeline's parameters θ is optimised to

.. math::

    \\min_\\theta \\; \\lambda \\, d(\\bar V, V_\\theta) - L(M(V_\\theta), Y)
    \\quad \\text{s.t.} \\quad \\theta \\in [\\theta_\\text{low}, \\theta_\\text{high}],

i.e. to make the task loss ``L`` large while the view ``V_θ`` stays close (distance
``d``, :mod:`ispkit.drift.distances`) to the reference view ``V̄``. The box bounds are
each parameter's declared physical range, enforced by projection after every Adam step.
``λ = ∞`` is the reference itself; ``λ = 0`` is an unconstrained attack.

Sweeping λ for each subset (``all`` and every stage with differentiable parameters)
gives the **forensic signature** -- the task metric against λ and against ``d`` per
subset -- and an **operating specification**: for every parameter element, the range of
values, found by the sweep of its own stage, within which the metric stayed within a
tolerance of the baseline, and the nearest setting found that broke the model. The
specification is empirical: it reports what the search found, not a proof that every
setting inside the ranges (or any combination of them) is safe.

An experiment file::

    name: forensics-microscopy-small
    dataset: {kind: microscopy, root: ../out/data/synthetic, synthetic: {n: 360}}
    pipeline: "bi,s,ga"                 # the reference data model (preset or YAML file)
    model: {name: small_cnn, downsample: 4}   # trained first on the other folds, or:
    # model: {checkpoint: "../out/synthesis/units/bi,s,ga/fold0/model.pt"}
    training: {epochs: 12, batch_size: 32, lr: 0.003}
    split: {folds: 3, fold: 0}          # the attacked images: this fold's held-out images
    samples: 96                         # at most this many of them
    subsets: all                        # or e.g. [all, black_level, denoise]
    lambdas: [0, 0.1, 1, 10, 100]
    distance: l2                        # or ssim, or a plugin's
    optimisation: {steps: 60, lr: 0.02, batch_size: 16}   # lr relative to each parameter's scale
    tolerance: 0.05

The run folder holds ``config.yaml``, ``model.pt`` (when trained here),
``units/<subset>/lambda_<λ>/result.json`` and ``pipeline.yaml`` (the found parameters),
``results.json``, ``operating_spec.yaml``, ``figures/`` and ``report.html``; a rerun
skips finished units.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from ..errors import InputError
from ..io import atomic_write_text
from ..tasks.base import TaskNetwork
from ..tasks.checkpoint import load_checkpoint, save_checkpoint
from ..tasks.metrics import PRIMARY_METRIC, task_loss, task_metrics
from ..tasks.training import fit
from .config import ForensicsConfig
from .distances import distance as get_distance
from .results import JsonResults
from .synthesis import RawSet, ViewBank, _duration, _slug, _unit_seed, open_run, seeded_network
from .tracking import make_tracker

__all__ = ["ForensicsRun", "ForensicsResults", "attack", "run_forensics"]

Progress = Callable[[str], None]


@dataclass
class ForensicsRun:
    """One optimisation: a subset at one λ, and what it found."""

    subset: str
    lam: float
    metric: float
    distance: float
    loss: float
    params: dict[str, list]
    trace: list[dict[str, float]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (λ = ∞ as ``"inf"``)."""
        return {**self.__dict__, "lam": _plain_lambda(self.lam)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ForensicsRun:
        return cls(**{**data, "lam": float(data["lam"])})


@dataclass
class ForensicsResults(JsonResults):
    """The forensic sweep: baseline, one :class:`ForensicsRun` per (subset, λ), and the reference parameters."""

    task: str
    metric: str
    pipeline: str
    distance: str
    baseline: float
    subsets: list[str]
    lambdas: list[float]
    reference: dict[str, list]
    bounds: dict[str, list]
    runs: list[ForensicsRun]
    tolerance: float = 0.05

    def run(self, subset: str, lam: float) -> ForensicsRun:
        for r in self.runs:
            if r.subset == subset and r.lam == lam:
                return r
        raise InputError(f"no forensics run for subset {subset!r} at λ = {lam}")

    def table(self, what: str = "metric") -> np.ndarray:
        """``(subsets, lambdas)`` array of the metric (or ``"distance"``)."""
        return np.array([[getattr(self.run(s, lam), what) for lam in self.lambdas] for s in self.subsets])

    def operating_spec(self, tolerance: float | None = None) -> dict[str, Any]:
        """Per parameter: reference, safe range found by its own stage's sweep, and the nearest breaking setting.

        A parameter element's safe range is the smallest interval holding its reference
        value and every value it took in the runs of its own stage (subset = the stage)
        whose metric stayed at or above ``baseline − tolerance``. ``breaking`` is the run of
        that stage with the smallest view distance among those that fell below it.
        """
        tolerance = self.tolerance if tolerance is None else tolerance
        floor = self.baseline - tolerance
        spec: dict[str, Any] = {}
        for name, ref in self.reference.items():
            stage = name.split(".")[0]
            runs = [r for r in self.runs if r.subset == stage and name in r.params]
            ref_arr = np.asarray(ref, dtype=float)
            safe = [np.asarray(r.params[name], dtype=float) for r in runs if r.metric >= floor]
            low = np.minimum.reduce([ref_arr, *safe])
            high = np.maximum.reduce([ref_arr, *safe])
            broken = sorted((r for r in runs if r.metric < floor), key=lambda r: r.distance)
            entry: dict[str, Any] = {
                "reference": ref,
                "bounds": self.bounds[name],
                "safe_min": low.tolist(),
                "safe_max": high.tolist(),
                "searched": bool(runs),
            }
            if broken:
                b = broken[0]
                entry["breaking"] = {"lambda": _plain_lambda(b.lam), self.metric: b.metric, "distance": b.distance, "values": b.params[name]}
            spec[name] = entry
        return {
            "pipeline": self.pipeline,
            "metric": self.metric,
            "baseline": self.baseline,
            "tolerance": tolerance,
            "distance": self.distance,
            "note": "empirical: ranges found by the forensic search of each stage alone; not a guarantee for other settings or combinations",
            "parameters": spec,
        }

    def to_dict(self) -> dict[str, Any]:
        data = {k: v for k, v in self.__dict__.items() if k != "runs"}
        data["lambdas"] = [_plain_lambda(v) for v in self.lambdas]
        data["runs"] = [r.to_dict() for r in self.runs]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ForensicsResults:
        fields = dict(data)
        fields["lambdas"] = [float(v) for v in data["lambdas"]]
        fields["runs"] = [ForensicsRun.from_dict(r) for r in data["runs"]]
        return cls(**fields)


def _plain_lambda(lam: float) -> float | str:
    """JSON has no infinity: λ = ∞ is written as the string ``"inf"``."""
    return "inf" if math.isinf(lam) else lam


def _trainable_values(module: torch.nn.Module) -> dict[str, list]:
    return {name: p.detach().cpu().double().tolist() for name, p in module.named_parameters()}


def attack(
    network: TaskNetwork,
    pipeline: Any,
    raws: torch.Tensor,
    targets: torch.Tensor,
    *,
    subset: str,
    lam: float,
    distance: str = "l2",
    steps: int = 60,
    lr: float = 0.02,
    batch_size: int = 32,
    seed: int = 0,
) -> tuple[ForensicsRun, torch.nn.Module]:
    """Optimise ``subset`` of ``pipeline``'s parameters against the frozen ``network`` (Eq. 35).

    Returns the run record and the attacked pipeline module. Adam's learning rate decays
    linearly to 0 over ``steps``; ``lr`` is relative to each parameter's scale
    (:meth:`ispkit.PipelineModule.parameter_groups`): 0.02 moves a gamma of 2.2 by at most
    about 0.044 per step and a black level by about 4e-5. ``λ = ∞`` returns the reference
    unchanged (no step is taken).
    """
    device = next(network.parameters()).device
    network.eval()
    for p in network.parameters():
        p.requires_grad_(False)
    reference = pipeline.to_torch().to(device).eval()
    module = pipeline.to_torch(trainable=subset).to(device).eval()
    d = get_distance(distance).fn
    with torch.no_grad():
        reference_views = torch.cat([reference(raws[b].to(device)) for b in torch.arange(len(raws)).split(batch_size)])
    generator = torch.Generator().manual_seed(seed)
    trace = []
    if not math.isinf(lam):
        optimiser = torch.optim.Adam(module.parameter_groups(lr))  # steps relative to each parameter's scale
        # linear decay to 0: Adam's steps keep a size of about lr whatever the gradient, so
        # without it the last iterate jitters around the optimum by ~lr and a large λ
        # could not pull the view back to the reference
        schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda step: 1 - step / steps)
        for step in range(1, steps + 1):
            batch = torch.randperm(len(raws), generator=generator)[:batch_size]
            views = module(raws[batch].to(device))
            task = task_loss(network.task, network(network.prepare(views)), targets[batch].to(device))
            gap = d(reference_views[batch], views)
            loss = lam * gap - task
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            schedule.step()
            module.project_()
            trace.append({"step": step, "objective": loss.item(), "task_loss": task.item(), "distance": gap.item()})
    scores, gaps, losses = [], [], []
    with torch.no_grad():
        for b in torch.arange(len(raws)).split(batch_size):
            views = module(raws[b].to(device))
            logits = network(network.prepare(views))
            target = targets[b].to(device)
            scores.append(task_metrics(network.task, logits, target)[PRIMARY_METRIC[network.task]])
            gaps.append(d(reference_views[b], views).item() * len(b))
            losses.append(task_loss(network.task, logits, target).item() * len(b))
    n = len(raws)
    run = ForensicsRun(subset, lam, torch.cat(scores).mean().item(), sum(gaps) / n, sum(losses) / n, _trainable_values(module), trace)
    return run, module


def _trained_network(config: ForensicsConfig, run_dir: Path, data: RawSet, bank: ViewBank, train: np.ndarray, device: torch.device, say: Progress) -> TaskNetwork:
    """The task model trained here on the reference views (or read back from an earlier run)."""
    path = run_dir / "model.pt"
    if path.exists():
        say(f"task model: {path} (trained earlier)")
        return load_checkpoint(path, map_location=device).network
    network = seeded_network(config.model, data, config.seed, device)
    say(f"training {config.model.name} on {config.pipeline_label} views ({len(train)} images)")
    fit(network, bank.source(config.pipeline_label), data.targets, train, config.training, state_path=run_dir / "train_state.pt",
        on_epoch=lambda e, loss, _: say(f"  epoch {e}/{config.training.epochs}  loss {loss:.3f}"))  # fmt: skip
    save_checkpoint(path, network, pipeline_yaml=bank.pipelines[config.pipeline_label].to_yaml(), metadata={"experiment": config.name, "fold": config.fold})
    (run_dir / "train_state.pt").unlink(missing_ok=True)
    return network.eval()


def _bounds(pipeline: Any) -> dict[str, list]:
    return {
        f"{s.name}.{p.name}": list(p.bounds) if p.bounds is not None else [None, None]
        for s in pipeline.stages
        for p in s.stage.params
        if p.differentiable and p.dtype is float
    }


def run_forensics(
    config: ForensicsConfig,
    run_dir: str | os.PathLike[str],
    *,
    tracking: bool = True,
    tracking_uri: str | None = None,
    progress: Progress | None = None,
) -> ForensicsResults:
    """Run (or resume) the forensic sweep of ``config`` in ``run_dir``; write results, spec, figures and report.

    MLflow (:mod:`ispkit.drift.tracking`): one run for the sweep, a nested run per
    (subset, λ) with the objective, task loss and distance per step and the final metric.
    """
    from ..data.splits import grouped_stratified_kfold
    from .forensics_report import write_forensics_report

    say = progress or (lambda _: None)
    given = load_checkpoint(config.checkpoint).network if config.checkpoint is not None else None
    downsample = given.downsample if given is not None else config.model.downsample  # the frozen model's input resolution
    run_dir, device, data = open_run(run_dir, config, progress, downsample=downsample)
    train, test = grouped_stratified_kfold(data.groups, data.labels, n_splits=config.folds, seed=config.seed)[config.fold]
    pipeline = config.pipeline(data.camera)
    bank = ViewBank(data.raws, {config.pipeline_label: pipeline}, downsample=downsample, device=device)
    network = given.to(device) if given is not None else _trained_network(config, run_dir, data, bank, train, device, say)
    samples = test[: config.samples] if config.samples else test
    raws, targets = data.raws[samples], data.targets[samples]
    units = [(s, lam) for s in config.subsets for lam in config.lambdas]
    runs: list[ForensicsRun] = []
    start = time.perf_counter()
    params = {"name": config.name, "dataset": config.dataset.__dict__, "pipeline": config.pipeline_label, "distance": config.distance, "steps": config.steps,
              "lr": config.lr, "batch_size": config.batch_size, "samples": len(samples), "tolerance": config.tolerance, "seed": config.seed}  # fmt: skip
    tracker = make_tracker(run_dir, config.name, params, tracking_uri=tracking_uri, enabled=tracking)
    for number, (subset, lam) in enumerate(units, 1):
        unit = run_dir / "units" / _slug(subset) / f"lambda_{_plain_lambda(lam)}"
        done = unit / "result.json"
        if done.exists():
            runs.append(ForensicsRun.from_dict(json.loads(done.read_text(encoding="utf-8"))))
            continue
        seed = _unit_seed(config.seed, config.subsets.index(subset), config.lambdas.index(lam))
        tracker.start_unit(f"{subset}/lambda_{_plain_lambda(lam)}", {"subset": subset, "lambda": lam, "seed": seed})
        try:
            run, module = attack(network, pipeline, raws, targets, subset=subset, lam=lam, distance=config.distance, steps=config.steps, lr=config.lr, batch_size=config.batch_size, seed=seed)
        except BaseException:
            tracker.end_study("KILLED")
            raise
        for point in run.trace:
            tracker.log_metrics({k: v for k, v in point.items() if k != "step"}, step=int(point["step"]))
        tracker.log_metrics({PRIMARY_METRIC[data.task]: run.metric, "view_distance": run.distance})
        tracker.end_unit()
        atomic_write_text(unit / "pipeline.yaml", module.to_pipeline().to_yaml())
        atomic_write_text(done, json.dumps(run.to_dict()))
        runs.append(run)
        say(f"[{number}/{len(units)}] {subset:18s} λ={lam:<8g} {PRIMARY_METRIC[data.task]} {run.metric:.3f}  d {run.distance:.4g}  elapsed {_duration(time.perf_counter() - start)}")
    baseline_run, _ = attack(network, pipeline, raws, targets, subset="all", lam=math.inf, distance=config.distance, batch_size=config.batch_size)
    baseline = baseline_run.metric
    results = ForensicsResults(
        task=data.task, metric=PRIMARY_METRIC[data.task], pipeline=config.pipeline_label, distance=config.distance, baseline=baseline,
        subsets=list(config.subsets), lambdas=list(config.lambdas), reference=baseline_run.params, bounds=_bounds(pipeline), runs=runs,
        tolerance=config.tolerance,
    )  # fmt: skip
    results.save(run_dir / "results.json")
    atomic_write_text(run_dir / "operating_spec.yaml", yaml.safe_dump(results.operating_spec(), sort_keys=False))
    report = write_forensics_report(run_dir, results, pipeline=pipeline, raws=raws[:4], config_text=config.text)
    tracker.log_metrics({f"baseline_{results.metric}": baseline})
    for path in (run_dir / "results.json", run_dir / "operating_spec.yaml", report, *sorted((run_dir / "figures").glob("*.png"))):
        tracker.log_artifact(path)
    tracker.end_study()
    say(f"done: baseline {results.metric} {baseline:.3f}; report at {report}")
    return results
