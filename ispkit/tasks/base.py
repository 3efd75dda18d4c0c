"""Task models: what a plugin registers, and the network wrapper every task model runs in.

A task model is registered as a :class:`TaskModel` (``ispkit_task_models`` hook): a
name, the task it solves and a ``build(outputs, **options)`` factory returning a plain
:class:`torch.nn.Module` that maps a normalised view batch ``(N, C, H, W)`` to logits,
``(N, outputs)`` for classification or ``(N, outputs, H, W)`` for segmentation. ``C`` is
the model's number of input channels: 3 for RGB views (the default), 4 for a packed
Bayer mosaic (:func:`ispkit.cfa.pack_bayer`, the raw arm of drift adjustment, Oala et
al., TMLR 2023, §5.3). Factories that support other channel counts take an
``in_channels`` keyword (all built-ins do); it is only passed when it is not 3, so a
factory without it still builds RGB models.

:class:`TaskNetwork` puts that module behind the two things a view needs before a
model sees it and that must travel with the trained weights: the spatial downsampling
of the view (``prepare``) and the per-channel normalisation computed from the training
views (inside ``forward``). A checkpoint of a ``TaskNetwork`` is therefore enough to
run the model on any new view (:mod:`ispkit.tasks.checkpoint`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn

from ..errors import InputError, ParameterError

__all__ = ["TASKS", "TaskModel", "TaskNetwork", "check_in_channels", "downsample_views", "load_weights"]

TASKS = ("classification", "segmentation")


@dataclass(frozen=True)
class TaskModel:
    """A registered task model.

    Parameters
    ----------
    name
        Registry name, e.g. ``"resnet18"``.
    task
        ``"classification"`` or ``"segmentation"``.
    build
        ``build(outputs, **options) -> nn.Module``; ``outputs`` is the number of
        classes (classification) or of output channels (segmentation, 1 for a
        binary mask). A factory that accepts ``in_channels=`` (default 3) can build
        models for inputs other than RGB views.
    summary
        One line for listings (``ispkit models``).
    """

    name: str
    task: Literal["classification", "segmentation"]
    build: Callable[..., nn.Module]
    summary: str = ""

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise InputError(f"task model {self.name!r}: task must be one of {TASKS}, got {self.task!r}")


def downsample_views(views: torch.Tensor, factor: int) -> torch.Tensor:
    """Average-pool views ``(N, C, H, W)`` by an integer ``factor`` (1: unchanged).

    >>> downsample_views(torch.arange(16.0).reshape(1, 1, 4, 4), 2)[0, 0]
    tensor([[ 2.5000,  4.5000],
            [10.5000, 12.5000]])
    """
    return views if _check_factor(factor) == 1 else nn.functional.avg_pool2d(views, factor)


def check_in_channels(in_channels: Any, *, what: str = "task model") -> int:
    """Return ``in_channels`` if it is a positive integer, else raise :class:`InputError`.

    >>> check_in_channels(4)
    4
    """
    if isinstance(in_channels, bool) or not isinstance(in_channels, int) or in_channels < 1:
        raise InputError(f"{what}: in_channels must be a positive integer, got {in_channels!r}")
    return in_channels


def _check_factor(factor: Any) -> int:
    if isinstance(factor, bool) or not isinstance(factor, int) or factor < 1:
        raise ParameterError(f"downsample factor must be an integer >= 1, got {factor!r}")
    return factor


class TaskNetwork(nn.Module):
    """A task model with its input preparation: ``net((prepare(views) - mean) / std)``.

    Parameters
    ----------
    net
        The model built by a :class:`TaskModel`.
    name, task, outputs, options
        Where ``net`` came from (recorded in checkpoints).
    downsample
        Integer average-pooling factor applied to views by :meth:`prepare`.
    classes
        Class names (classification) for readable predictions.
    in_channels
        Number of channels of the prepared views (3 for RGB views, 4 for packed
        Bayer mosaics); sizes the ``mean`` and ``std`` buffers and is checked in
        :meth:`forward`. It must match what ``net`` expects.

    Examples
    --------
    >>> network = TaskNetwork(nn.Identity(), name="id", task="classification", outputs=2, in_channels=4)
    >>> network.mean.shape, network(torch.zeros(1, 4, 2, 2)).shape
    (torch.Size([4]), torch.Size([1, 4, 2, 2]))
    """

    mean: torch.Tensor  # buffers, registered in __init__
    std: torch.Tensor

    def __init__(
        self,
        net: nn.Module,
        *,
        name: str,
        task: str,
        outputs: int,
        options: dict[str, Any] | None = None,
        downsample: int = 1,
        classes: list[str] | None = None,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        self.net = net
        self.name, self.task, self.outputs = name, task, outputs
        self.options = dict(options or {})
        self.downsample = _check_factor(downsample)
        self.classes = list(classes) if classes is not None else None
        self.in_channels = check_in_channels(in_channels, what=f"task network {name!r}")
        self.register_buffer("mean", torch.zeros(self.in_channels))
        self.register_buffer("std", torch.ones(self.in_channels))

    def prepare(self, views: torch.Tensor) -> torch.Tensor:
        """Downsample full-resolution views to the network's input resolution."""
        return downsample_views(views, self.downsample)

    @torch.no_grad()
    def fit_normalization(self, prepared: torch.Tensor) -> None:
        """Set the per-channel mean and std from prepared training views ``(N, C, h, w)``."""
        self._check_prepared(prepared)
        self.mean.copy_(prepared.mean(dim=(0, 2, 3)))
        self.std.copy_(prepared.std(dim=(0, 2, 3)).clamp_min(1e-6))

    def forward(self, prepared: torch.Tensor) -> torch.Tensor:
        """Logits for prepared views ``(N, C, h, w)`` with ``C = in_channels``."""
        self._check_prepared(prepared)
        return self.net((prepared - self.mean[:, None, None]) / self.std[:, None, None])

    def _check_prepared(self, prepared: torch.Tensor) -> None:
        c = self.in_channels
        if prepared.ndim != 4 or prepared.shape[1] != c:
            got = f"{prepared.shape[1]} channels, " if prepared.ndim == 4 else ""
            raise InputError(f"{self.name}: expected prepared views (N, {c}, H, W) with {c} channels, got {got}shape {tuple(prepared.shape)}")

    def predict(self, views: torch.Tensor) -> torch.Tensor:
        """Logits for full-resolution views: ``forward(prepare(views))``."""
        return self(self.prepare(views))


def load_weights(module: nn.Module, source: str | os.PathLike[str], *, what: str) -> list[str]:
    """Load a state dict from a local file or an ``http(s)://`` URL into ``module``.

    Tensors whose shape does not match (e.g. a 1000-class ImageNet head on a 9-class
    model) are skipped; so are keys the module does not have. Returns the skipped
    keys. A file that holds a checkpoint dict with a ``state_dict`` entry is accepted.
    Files and URLs are loaded by :func:`ispkit.tasks.state.load_state`: a file holding
    anything but tensors and plain values is refused, never unpickled.
    """
    from .state import is_url, load_state

    text = os.fspath(source)
    if not is_url(text) and not os.path.isfile(text):
        raise FileNotFoundError(f"{what}: weights file {text!r} not found (give a local .pt/.pth file or an http(s) URL)")
    state = load_state(text, what=f"{what} weights")
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise InputError(f"{what}: {text!r} does not hold a state dict (got {type(state).__name__})")
    own = module.state_dict()
    usable = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    if not usable:
        raise InputError(f"{what}: no tensor in {text!r} matches the model (is it the right architecture?)")
    module.load_state_dict(usable, strict=False)
    return sorted(set(state) - set(usable))
