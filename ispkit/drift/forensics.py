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
skips finished units. The task model's training and the (subset, λ) units run here or
as Dask tasks (``scheduler=``, :mod:`ispkit.drift.execution`).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Generic, Self, TypeVar

import numpy as np
import torch
import yaml

from ..atomic import atomic_write_text
from ..pipeline import PipelineModule
from ..tasks.base import TaskNetwork
from ..tasks.checkpoint import load_checkpoint, save_checkpoint
from ..tasks.metrics import PRIMARY_METRIC, task_loss, task_metrics
from ..tasks.training import confusion_matrix, fit
from .config import AcquisitionConfig, ForensicsConfig
from .distances import distance as get_distance
from .execution import execute
from .results import ForensicsResults, ForensicsRun, plain_lambda
from .run_lock import holding_run_folder
from .runs import RawSet, ViewBank, open_run, seeded_network
from .tracking import make_tracker
from .units import Clock, Metrics, Progress, Study, Unit, epoch_metrics, slug, total_work, unit_seed

__all__ = ["ForensicsRun", "ForensicsResults", "FrozenModelStudy", "ForensicsStudy", "attack", "run_forensics"]
# ForensicsRun and ForensicsResults are defined in ispkit.drift.results (with every results class) and stay importable from here.


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
) -> tuple[ForensicsRun, PipelineModule]:
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
    scores, gaps, losses, predicted = [], [], [], []
    with torch.no_grad():
        for b in torch.arange(len(raws)).split(batch_size):
            views = module(raws[b].to(device))
            logits = network(network.prepare(views))
            target = targets[b].to(device)
            scores.append(task_metrics(network.task, logits, target)[PRIMARY_METRIC[network.task]])
            gaps.append(d(reference_views[b], views).item() * len(b))
            losses.append(task_loss(network.task, logits, target).item() * len(b))
            predicted.append(logits)
    n = len(raws)
    per_image = torch.cat(scores)
    confusion = confusion_matrix(torch.cat(predicted), targets).tolist() if network.task == "classification" else None
    run = ForensicsRun(subset, lam, per_image.mean().item(), sum(gaps) / n, sum(losses) / n, _trainable_values(module), trace, per_image.tolist(), confusion)
    return run, module


def _bounds(pipeline: Any) -> dict[str, list]:
    return {
        f"{s.name}.{p.name}": list(p.bounds) if p.bounds is not None else [None, None]
        for s in pipeline.stages
        for p in s.stage.params
        if p.differentiable and p.dtype is float
    }


ConfigT = TypeVar("ConfigT", ForensicsConfig, AcquisitionConfig)


class FrozenModelStudy(Study, Generic[ConfigT]):
    """A study of one frozen task model on one pipeline's views of a held-out fold (forensics, acquisition design).

    The first unit trains the task model on the reference views of the other folds
    (none when the experiment names a checkpoint); the subclass's units then study the
    frozen model (:attr:`network`) on the chosen fold's held-out images (``raws``, ``targets``).
    """

    def __init__(
        self,
        config: ConfigT,
        run_dir: Path,
        device: torch.device,
        data: RawSet,
        bank: ViewBank,
        train: np.ndarray,
        samples: np.ndarray,
        given: TaskNetwork | None,
    ) -> None:
        self.config, self.run_dir, self.device, self.data, self.bank, self.train = config, run_dir, device, data, bank, train
        self.raws, self.targets = data.raws[samples], data.targets[samples]
        self.pipeline = bank.pipelines[config.pipeline_label]
        self._network = given.to(device) if given is not None else None

    @classmethod
    def open(cls, config: ConfigT, run_dir: str | os.PathLike[str], *, progress: Progress | None = None, create: bool = True) -> Self:
        from ..data.splits import grouped_stratified_kfold

        given = load_checkpoint(config.checkpoint).network if config.checkpoint is not None else None
        model = given if given is not None else config.model
        assert model is not None, "a forensics experiment names a model or a checkpoint (checked when parsed)"
        downsample = model.downsample  # the frozen model's input resolution
        run_dir, device, data = open_run(run_dir, config, progress, downsample=downsample, create=create)
        train, test = grouped_stratified_kfold(data.groups, data.labels, n_splits=config.folds, seed=config.seed)[config.fold]
        bank = ViewBank(data.raws, {config.pipeline_label: config.pipeline(data.camera)}, downsample=downsample, device=device)
        return cls(config, run_dir, device, data, bank, train, test[: config.samples] if config.samples else test, given)

    @property
    def network(self) -> TaskNetwork:
        """The frozen task model: the given checkpoint, or the one trained by the model unit."""
        if self._network is None:
            self._network = load_checkpoint(self.run_dir / "model.pt", map_location=self.device).network.eval()
        return self._network

    def model_units(self) -> list[Unit]:
        """The unit training the task model (none when the experiment gives a checkpoint)."""
        if self.config.checkpoint is not None:
            return []
        return [
            Unit(
                "model",
                ("model",),
                self.run_dir,
                {"pipeline": self.config.pipeline_label, "fold": self.config.fold, "train_size": len(self.train)},
                self.config.training.epochs,
            )
        ]

    def done(self, unit: Unit) -> dict[str, Any] | None:
        if unit.key == ("model",):  # trained earlier: the checkpoint is the result
            return {} if (self.run_dir / "model.pt").exists() else None
        return super().done(unit)

    def _train(self, clock: Clock) -> dict[str, Any]:
        config = self.config
        assert config.model is not None, "a model unit exists only when the experiment names a model"
        network = seeded_network(config.model, self.data, config.seed, self.device)
        clock.say(f"training {config.model.name} on {config.pipeline_label} views ({len(self.train)} images)")
        history = fit(network, self.bank.source(config.pipeline_label), self.data.targets, self.train, config.training, state_path=self.run_dir / "train_state.pt",
                      on_epoch=lambda e, loss, _: clock.step(f"  model epoch {e}/{config.training.epochs}  loss {loss:.3f}"))  # fmt: skip
        save_checkpoint(self.run_dir / "model.pt", network, pipeline_yaml=self.pipeline.to_yaml(), metadata={"experiment": config.name, "fold": config.fold})
        (self.run_dir / "train_state.pt").unlink(missing_ok=True)
        self._network = network.eval()
        return {"history": {"loss": history.loss, "validation": history.validation}}


class ForensicsStudy(FrozenModelStudy[ForensicsConfig]):
    """The units of a forensic sweep and how to run one.

    The first unit trains the task model on the reference views of the other folds
    (none when the experiment names a checkpoint); then one unit per (subset, λ) attacks
    the frozen model on the chosen fold's held-out images.
    """

    def units(self) -> list[Unit]:
        config = self.config
        keys = [(s, lam) for s in config.subsets for lam in config.lambdas]
        return [
            Unit(f"{subset}/lambda_{plain_lambda(lam)}", (subset, lam), self.run_dir / "units" / slug(subset) / f"lambda_{plain_lambda(lam)}",
                 {"subset": subset, "lambda": lam, "seed": unit_seed(config.seed, config.subsets.index(subset), config.lambdas.index(lam))}, {"attack": 1}, (i, len(keys)))
            for i, (subset, lam) in enumerate(keys, 1)
        ]  # fmt: skip

    def run(self, unit: Unit, clock: Clock) -> dict[str, Any]:
        return self._train(clock) if unit.key == ("model",) else self._attack(unit, clock)

    def _attack(self, unit: Unit, clock: Clock) -> dict[str, Any]:
        config, (subset, lam) = self.config, unit.key
        run, module = attack(self.network, self.pipeline, self.raws, self.targets, subset=subset, lam=lam, distance=config.distance, steps=config.steps,
                             lr=config.lr, batch_size=config.batch_size, seed=unit.params["seed"])  # fmt: skip
        atomic_write_text(unit.folder / "pipeline.yaml", module.to_pipeline().to_yaml())
        atomic_write_text(unit.folder / "result.json", json.dumps(run.to_dict()))
        clock.step(f"{unit.tag} {subset:18s} λ={lam:<8g} {PRIMARY_METRIC[self.data.task]} {run.metric:.3f}  d {run.distance:.4g}", kind="attack")
        return run.to_dict()

    def metrics(self, unit: Unit, result: dict[str, Any]) -> Metrics:
        if unit.key == ("model",):
            return epoch_metrics(result["history"]) if result else []
        trace = [({k: v for k, v in point.items() if k != "step"}, int(point["step"])) for point in result["trace"]]
        return [*trace, ({PRIMARY_METRIC[self.data.task]: result["metric"], "view_distance": result["distance"]}, None)]


@holding_run_folder
def run_forensics(
    config: ForensicsConfig,
    run_dir: str | os.PathLike[str],
    *,
    tracking: bool = True,
    tracking_uri: str | None = None,
    progress: Progress | None = None,
    scheduler: Any = "local",
    workers: int = 1,
) -> ForensicsResults:
    """Run (or resume) the forensic sweep of ``config`` in ``run_dir``; write results, spec, figures and report.

    MLflow (:mod:`ispkit.drift.tracking`): one run for the sweep, a nested run for the
    task model's training and one per (subset, λ) with the objective, task loss and
    distance per step and the final metric. ``scheduler``/``workers`` say where the
    units run (:func:`ispkit.drift.execution.execute`).
    """
    from .forensics_report import write_forensics_report

    study = ForensicsStudy.open(config, run_dir, progress=progress)
    run_dir, model_units, units = study.run_dir, study.model_units(), study.units()
    clock = Clock(progress, total_work([*model_units, *units]))
    params = {"name": config.name, "dataset": config.dataset.__dict__, "pipeline": config.pipeline_label, "distance": config.distance, "steps": config.steps,
              "lr": config.lr, "batch_size": config.batch_size, "samples": len(study.raws), "tolerance": config.tolerance, "seed": config.seed}  # fmt: skip
    tracker = make_tracker(run_dir, config.name, params, tracking_uri=tracking_uri, enabled=tracking)
    if model_units:
        execute(study, model_units, clock=clock, tracker=tracker, scheduler=scheduler, workers=workers)
    found = execute(study, units, clock=clock, tracker=tracker, scheduler=scheduler, workers=workers)
    runs = [ForensicsRun.from_dict(found[unit.key]) for unit in units]
    baseline_run, _ = attack(
        study.network, study.pipeline, study.raws, study.targets, subset="all", lam=math.inf, distance=config.distance, batch_size=config.batch_size
    )
    baseline = baseline_run.metric
    results = ForensicsResults(
        task=study.data.task, metric=PRIMARY_METRIC[study.data.task], pipeline=config.pipeline_label, distance=config.distance, baseline=baseline,
        subsets=list(config.subsets), lambdas=list(config.lambdas), reference=baseline_run.params, bounds=_bounds(study.pipeline), runs=runs,
        tolerance=config.tolerance, classes=study.data.classes, synthetic=study.data.synthetic, baseline_run=baseline_run,
    )  # fmt: skip
    results.save(run_dir / "results.json")
    atomic_write_text(run_dir / "operating_spec.yaml", yaml.safe_dump(results.operating_spec(), sort_keys=False))
    report = write_forensics_report(run_dir, results, pipeline=study.pipeline, raws=study.raws[:4], config_text=config.text)
    tracker.log_metrics({f"baseline_{results.metric}": baseline})
    for path in (run_dir / "results.json", run_dir / "operating_spec.yaml", report, *sorted((run_dir / "figures").glob("*.png"))):
        tracker.log_artifact(path)
    tracker.end_study()
    clock.say(f"done: baseline {results.metric} {baseline:.3f}; report at {report}")
    return results
