"""One training loop for classification and segmentation task models.

Adam on the task loss (cross-entropy, or soft Dice for segmentation; Oala et al.,
TMLR 2023, App. A.2), seeded mini-batches, random flips as augmentation (applied to
masks too), and evaluation by per-image metrics averaged over a split. Views are
produced batch by batch by a *view source* ``source(index) -> (B, 3, h, w)``: a cached
tensor of prepared views for a frozen pipeline, or a differentiable pipeline run on
the raw batch for joint training -- never a per-sample numpy ISP in a data loader.

Training can resume: with ``state_path`` the network, optimiser, random generator and
history are written (atomically) after every epoch and picked up by the next call.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import InputError
from .base import TaskNetwork
from .metrics import task_loss, task_metrics
from .state import load_state, save_state

__all__ = ["TrainConfig", "History", "fit", "evaluate", "Evaluation", "evaluate_detailed", "confusion_matrix", "recalibrate_batchnorm", "ViewSource"]

ViewSource = Callable[[torch.Tensor], torch.Tensor]
"""``source(index)`` returns the prepared views ``(len(index), 3, h, w)`` of those samples."""


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings (defaults are CPU-sized; the paper used lr 1e-4, batch 128,
    100 epochs for ResNet-18 and lr 7.5e-5, batch 12 for U-Net++)."""

    epochs: int = 10
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 0.0
    seed: int = 0
    augment: bool = True
    recalibrate_bn: bool = False
    """Before each validation (and after the last epoch), set the BatchNorm running
    statistics to their exact mean over the training views (:func:`recalibrate_batchnorm`).
    Needed when the inputs change during training, as in drift adjustment, where the
    pipeline is learned: the running averages otherwise mix views of earlier pipelines."""

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"training {name} must be a positive integer, got {value!r}")
        if not self.lr > 0:
            raise InputError(f"training lr must be > 0, got {self.lr!r}")


@dataclass
class History:
    """Per-epoch training loss and, when a validation split is given, validation metrics."""

    loss: list[float] = field(default_factory=list)
    validation: list[dict[str, float]] = field(default_factory=list)


def _augment(views: torch.Tensor, targets: torch.Tensor, task: str, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Random horizontal and vertical flips per sample (masks flipped alike)."""
    flips = torch.rand(2, len(views), generator=generator) < 0.5
    for dim, flip in zip((-1, -2), flips, strict=True):
        pick = flip.to(views.device)[:, None, None, None]
        views = torch.where(pick, views.flip(dim), views)
        if task == "segmentation":
            targets = torch.where(pick, targets.flip(dim), targets)
    return views, targets


def _save_state(
    path: Path, network: TaskNetwork, optimiser: torch.optim.Optimizer, generator: torch.Generator, history: History, extra: dict[str, Any]
) -> None:
    state = {
        "network": network.state_dict(),
        # the values of everything optimised, so that parameters outside the network
        # (a jointly trained pipeline's) resume too, not only their Adam moments
        "parameters": [p.detach().cpu() for group in optimiser.param_groups for p in group["params"]],
        "optimiser": optimiser.state_dict(),
        "generator": generator.get_state(),
        "epoch": len(history.loss),
        "loss": history.loss,
        "validation": history.validation,
        "extra": extra,
    }
    save_state(state, path)


def fit(
    network: TaskNetwork,
    source: ViewSource,
    targets: torch.Tensor,
    train_index: Sequence[int] | np.ndarray | torch.Tensor,
    config: TrainConfig = TrainConfig(),
    *,
    parameters: Iterable[torch.Tensor] | Iterable[dict[str, Any]] | None = None,
    validation_index: Sequence[int] | np.ndarray | torch.Tensor | None = None,
    on_epoch: Callable[[int, float, dict[str, float]], None] | None = None,
    state_path: str | os.PathLike[str] | None = None,
    after_step: Callable[[], None] | None = None,
) -> History:
    """Train ``network`` on ``source`` views of ``train_index`` with Adam.

    Parameters
    ----------
    network
        The task network; its normalisation is fitted to the training views first
        (unless resuming).
    source
        View source, see :data:`ViewSource`; it may carry trainable parameters.
    targets
        Class indices ``(N,)`` or masks ``(N, 1, h, w)`` for the whole dataset.
    train_index
        Samples to train on.
    config
        :class:`TrainConfig`.
    parameters
        What Adam optimises (default: the network's parameters): parameters, or Adam
        parameter groups (dicts with ``params`` and e.g. their own ``lr``); joint
        training passes the pipeline's parameters too.
    validation_index
        If given, evaluated after every epoch (recorded in the history).
    on_epoch
        ``on_epoch(epoch, loss, validation_metrics)`` after every epoch (1-based).
    state_path
        Resume file: loaded if present, rewritten after every epoch.
    after_step
        Called after every optimiser step (e.g. to project parameters onto their bounds).
    """
    train_index = torch.as_tensor(train_index, dtype=torch.long)
    if len(train_index) == 0:
        raise InputError("fit: the training split is empty")
    task = network.task
    device = next(network.parameters()).device
    generator = torch.Generator().manual_seed(config.seed)
    optimiser = torch.optim.Adam(network.parameters() if parameters is None else parameters, lr=config.lr, weight_decay=config.weight_decay)
    history = History()
    path = Path(state_path) if state_path is not None else None
    if path is not None and path.exists():
        state = load_state(path, what="training resume state", map_location=device)
        network.load_state_dict(state["network"])
        optimiser.load_state_dict(state["optimiser"])
        with torch.no_grad():
            for p, value in zip([p for group in optimiser.param_groups for p in group["params"]], state["parameters"], strict=True):
                p.copy_(value)
        generator.set_state(state["generator"])
        history = History(list(state["loss"]), list(state["validation"]))
    else:
        with torch.no_grad():
            network.fit_normalization(torch.cat([source(batch) for batch in train_index.split(config.batch_size)]))
    for epoch in range(len(history.loss) + 1, config.epochs + 1):
        network.train()
        total, seen = 0.0, 0
        for batch in train_index[torch.randperm(len(train_index), generator=generator)].split(config.batch_size):
            views, target = source(batch), targets[batch].to(device)
            if config.augment:
                views, target = _augment(views, target, task, generator)
            loss = task_loss(task, network(views), target)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            if after_step is not None:
                after_step()
            total += loss.item() * len(batch)
            seen += len(batch)
        history.loss.append(total / seen)
        if config.recalibrate_bn:
            recalibrate_batchnorm(network, source, train_index, batch_size=config.batch_size)
        scores = evaluate(network, source, targets, validation_index, batch_size=config.batch_size) if validation_index is not None else {}
        if validation_index is not None:
            history.validation.append(scores)
        if path is not None:
            _save_state(path, network, optimiser, generator, history, {})
        if on_epoch is not None:
            on_epoch(epoch, history.loss[-1], scores)
    return history


def recalibrate_batchnorm(network: nn.Module, source: ViewSource, index: Sequence[int] | np.ndarray | torch.Tensor, *, batch_size: int = 64) -> int:
    """Set every BatchNorm layer's running mean and variance to their average over the views of ``index``.

    The running statistics a network uses in eval mode are exponential averages over the
    training batches, computed while the weights -- and, when a pipeline is learned, the
    inputs -- kept changing. This recomputes them for the network and views as they are
    now: each layer's running statistics become the cumulative mean of the batch
    statistics over one pass (``momentum=None``), as in ``torch.optim.swa_utils.update_bn``;
    weights and the gradients of later steps are untouched. Returns the number of
    BatchNorm layers (0: nothing to do).
    """
    layers = [m for m in network.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not layers:
        return 0
    index = torch.as_tensor(index, dtype=torch.long)
    momenta = [m.momentum for m in layers]
    for m in layers:
        m.reset_running_stats()
        m.momentum = None
    was_training = network.training
    network.train()
    with torch.no_grad():
        for batch in index.split(batch_size):
            network(source(batch))
    for m, momentum in zip(layers, momenta, strict=True):
        m.momentum = momentum
    network.train(was_training)
    return len(layers)


def evaluate(
    network: TaskNetwork, source: ViewSource, targets: torch.Tensor, index: Sequence[int] | np.ndarray | torch.Tensor, *, batch_size: int = 64
) -> dict[str, float]:
    """Mean per-image metrics of ``network`` on ``source`` views of ``index`` (eval mode, no grad)."""
    return evaluate_detailed(network, source, targets, index, batch_size=batch_size).metrics


@dataclass
class Evaluation:
    """What :func:`evaluate_detailed` measured on a split.

    ``metrics``: the mean per-image metrics (as :func:`evaluate`). ``confusion``: for
    classification, the ``(classes, classes)`` int64 counts of true class (row) against
    predicted class (column, ``argmax`` of the logits), summing to the split's size;
    ``None`` for segmentation.
    """

    metrics: dict[str, float]
    confusion: torch.Tensor | None = None


def evaluate_detailed(
    network: TaskNetwork, source: ViewSource, targets: torch.Tensor, index: Sequence[int] | np.ndarray | torch.Tensor, *, batch_size: int = 64
) -> Evaluation:
    """:func:`evaluate`, and for classification the confusion matrix of the same predictions (one pass)."""
    index = torch.as_tensor(index, dtype=torch.long)
    if len(index) == 0:
        raise InputError("evaluate: the split is empty")
    network.eval()
    device = next(network.parameters()).device
    sums: dict[str, float] = {}
    confusion: torch.Tensor | None = None
    with torch.no_grad():
        for batch in index.split(batch_size):
            logits, target = network(source(batch)), targets[batch].to(device)
            scores = task_metrics(network.task, logits, target)
            for name, values in scores.items():
                sums[name] = sums.get(name, 0.0) + values.sum().item()
            if network.task == "classification":
                counts = confusion_matrix(logits, target)
                confusion = counts if confusion is None else confusion + counts
    return Evaluation({name: value / len(index) for name, value in sums.items()}, confusion)


def confusion_matrix(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Counts of (true label, ``argmax`` of the logits) pairs: int64 ``(C, C)`` on the CPU, ``C`` = the number of logits.

    >>> confusion_matrix(torch.tensor([[2.0, 1.0], [0.0, 3.0], [1.0, 0.0]]), torch.tensor([0, 0, 1])).tolist()
    [[1, 1], [1, 0]]
    """
    classes = logits.shape[1]
    labels = labels.long().cpu()
    if len(labels) and not 0 <= int(labels.min()) <= int(labels.max()) < classes:
        raise InputError(
            f"evaluate: class labels must lie in [0, {classes - 1}] for a network with {classes} outputs; got {int(labels.min())} … {int(labels.max())}"
        )
    pairs = labels * classes + logits.argmax(dim=1).cpu()
    return torch.bincount(pairs, minlength=classes * classes).reshape(classes, classes)
