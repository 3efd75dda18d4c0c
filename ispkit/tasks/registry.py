"""Task models from the plugin registry (hook ``ispkit_task_models``)."""

from __future__ import annotations

from typing import Any

from ..errors import InputError
from ..registry import get_registry
from .base import TaskModel, TaskNetwork

__all__ = ["task_models", "task_model", "build_network"]


def task_models() -> dict[str, TaskModel]:
    """Registered task models by name."""
    return get_registry().task_models()


def task_model(name: str) -> TaskModel:
    """The registered task model ``name`` (an :class:`~ispkit.errors.InputError` names close matches)."""
    return get_registry().task_model(name)


def build_network(
    name: str,
    outputs: int,
    *,
    options: dict[str, Any] | None = None,
    downsample: int = 1,
    classes: list[str] | None = None,
) -> TaskNetwork:
    """Build registered model ``name`` with ``outputs`` outputs inside a :class:`TaskNetwork`.

    >>> import torch
    >>> net = build_network("small_cnn", 9, downsample=4)
    >>> net.task, net.predict(torch.zeros(2, 3, 64, 64)).shape
    ('classification', torch.Size([2, 9]))
    """
    spec = task_model(name)
    if isinstance(outputs, bool) or not isinstance(outputs, int) or outputs < 1:
        raise InputError(f"task model {name!r}: outputs must be a positive integer, got {outputs!r}")
    try:
        net = spec.build(outputs, **(options or {}))
    except TypeError as exc:
        raise InputError(f"task model {name!r}: bad options {options!r}: {exc}") from None
    return TaskNetwork(net, name=name, task=spec.task, outputs=outputs, options=options, downsample=downsample, classes=classes)
