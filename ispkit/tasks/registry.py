"""Task models from the plugin registry (hook ``ispkit_task_models``, :data:`ispkit.tasks.hookspecs.TASK_MODELS`),
registered from Python (:func:`register_model`), or named by a factory path (:mod:`ispkit.tasks.factory`)."""

from __future__ import annotations

from typing import Any

from torch import nn

from ..errors import InputError
from ..hookspecs import hookimpl
from ..registry import get_registry
from .base import TaskModel, TaskNetwork, check_in_channels
from .factory import factory_model, is_factory_path
from .hookspecs import TASK_MODELS

__all__ = ["task_models", "task_model", "register_model", "unregister_model", "build_network"]

_PYTHON = "register_model"
"""Provider of the models registered by :func:`register_model`; their plugins are named ``register_model:<name>``."""


def task_models() -> dict[str, TaskModel]:
    """Registered task models by name."""
    return get_registry().items(TASK_MODELS.hook)  # type: ignore[return-value]


def task_model(name: str) -> TaskModel:
    """The registered task model ``name`` (an :class:`~ispkit.errors.InputError` names close matches)."""
    return get_registry().get(TASK_MODELS.hook, name)


class _Registered:
    """The plugin holding one model registered from Python."""

    def __init__(self, model: TaskModel) -> None:
        self.model = model

    @hookimpl
    def ispkit_task_models(self) -> list[TaskModel]:
        return [self.model]


def register_model(model: TaskModel) -> None:
    """Register ``model`` in this process, as a plugin would: its name then works wherever a task model is named.

    Registering a name again replaces the model registered under it from Python; a name
    ispkit or an installed plugin provides is refused. The model lives in this process's
    registry (until :func:`unregister_model` or :func:`ispkit.registry.reset_registry`): a
    checkpoint of it loads where it is registered again, and Dask workers in other processes
    do not know it -- a factory path (:mod:`ispkit.tasks.factory`) works everywhere.

    >>> from ispkit.tasks.small import small_cnn
    >>> register_model(TaskModel("my_cnn", "classification", small_cnn, "small_cnn under my name"))
    >>> build_network("my_cnn", 2).name, task_models()["my_cnn"].summary
    ('my_cnn', 'small_cnn under my name')
    >>> unregister_model("my_cnn")
    """
    if not isinstance(model, TaskModel):
        raise InputError(f"register_model: expected an ispkit.tasks.TaskModel, got {type(model).__name__}")
    if not isinstance(model.name, str) or not model.name.strip() or is_factory_path(model.name):
        raise InputError(f"register_model: a task model's name is a non-empty string without ':' (a name with one is a factory path), got {model.name!r}")
    registry, plugin = get_registry(), f"{_PYTHON}:{model.name}"
    if registry.manager.has_plugin(plugin):
        registry.unregister(plugin)
    elif model.name in task_models():
        raise InputError(f"register_model: task model {model.name!r} is provided by ispkit or an installed plugin; choose another name")
    registry.register(_Registered(model), name=plugin, provider=_PYTHON)


def unregister_model(name: str) -> None:
    """Remove the model registered from Python as ``name`` (:func:`register_model`)."""
    registry = get_registry()
    if not registry.manager.has_plugin(f"{_PYTHON}:{name}"):
        raise InputError(f"unregister_model: no task model {name!r} was registered with register_model")
    registry.unregister(f"{_PYTHON}:{name}")


def build_network(
    name: str,
    outputs: int,
    *,
    task: str | None = None,
    options: dict[str, Any] | None = None,
    downsample: int = 1,
    classes: list[str] | None = None,
    in_channels: int = 3,
) -> TaskNetwork:
    """Build registered model ``name`` with ``outputs`` outputs inside a :class:`TaskNetwork`.

    ``name`` is a registered model's name or a factory path ``"package.module:function"``
    (:mod:`ispkit.tasks.factory`), which needs ``task``; for a registered model, a ``task``
    given must be the model's. The factory must return a :class:`torch.nn.Module`.

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
    >>> build_network("ispkit.tasks.small:small_unet", 1, task="segmentation").name
    'ispkit.tasks.small:small_unet'
    """
    spec = factory_model(name, task) if is_factory_path(name) else task_model(name)
    if task is not None and spec.task != task:
        raise InputError(f"task model {name!r} is a {spec.task} model, not a {task} one")
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
    if not isinstance(net, nn.Module):
        raise InputError(f"task model {name!r}: its factory returned a {type(net).__name__}, not a torch.nn.Module")
    return TaskNetwork(net, name=name, task=spec.task, outputs=outputs, options=options, downsample=downsample, classes=classes, in_channels=in_channels)
