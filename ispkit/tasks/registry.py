"""Task models from the plugin registry (hook ``ispkit_task_models``, :data:`ispkit.tasks.hookspecs.TASK_MODELS`)."""

from __future__ import annotations

from typing import Any

from ..errors import InputError
from ..registry import get_registry
from .base import TaskModel, TaskNetwork, check_in_channels
from .hookspecs import TASK_MODELS

__all__ = ["task_models", "task_model", "build_network"]


def task_models() -> dict[str, TaskModel]:
    """Registered task models by name."""
    return get_registry().items(TASK_MODELS.hook)  # type: ignore[return-value]


def task_model(name: str) -> TaskModel:
    """The registered task model ``name`` (an :class:`~ispkit.errors.InputError` names close matches)."""
    return get_registry().get(TASK_MODELS.hook, name)


def build_network(
    name: str,
    outputs: int,
    *,
    options: dict[str, Any] | None = None,
    downsample: int = 1,
    classes: list[str] | None = None,
    in_channels: int = 3,
) -> TaskNetwork:
    """Build registered model ``name`` with ``outputs`` outputs inside a :class:`TaskNetwork`.

    ``in_channels`` is the number of channels of the views the model sees: 3 for RGB
    views, 4 for packed Bayer mosaics (:func:`ispkit.cfa.pack_bayer`). It is passed to
    the model's factory as ``in_channels=`` only when it is not 3, so a plugin factory
    without that keyword still builds RGB models (and fails clearly otherwise). It is a
    property of the network, not an option: giving it in ``options`` is an error.

    >>> import torch
    >>> net = build_network("small_cnn", 9, downsample=4)
    >>> net.task, net.predict(torch.zeros(2, 3, 64, 64)).shape
    ('classification', torch.Size([2, 9]))
    >>> build_network("small_cnn", 9, in_channels=4)(torch.zeros(2, 4, 16, 16)).shape
    torch.Size([2, 9])
    """
    spec = task_model(name)
    if isinstance(outputs, bool) or not isinstance(outputs, int) or outputs < 1:
        raise InputError(f"task model {name!r}: outputs must be a positive integer, got {outputs!r}")
    check_in_channels(in_channels, what=f"task model {name!r}")
    options = dict(options or {})
    if "in_channels" in options:
        raise InputError(f"task model {name!r}: give in_channels as build_network's argument, not in options {options!r}")
    extra = {} if in_channels == 3 else {"in_channels": in_channels}
    try:
        net = spec.build(outputs, **options, **extra)
    except TypeError as exc:
        raise InputError(f"task model {name!r}: bad options {options!r} (in_channels={in_channels}): {exc}") from None
    return TaskNetwork(net, name=name, task=spec.task, outputs=outputs, options=options, downsample=downsample, classes=classes, in_channels=in_channels)
