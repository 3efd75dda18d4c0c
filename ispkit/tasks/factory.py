"""Task models from a factory path: any ``torch.nn.Module`` factory, without writing a plugin.

A *factory path* ``"package.module:function"`` names a callable in a module importable
from ``sys.path`` (an installed package, a folder on ``PYTHONPATH``, or for ``python -m``
the current folder). The callable is called as a registered model's factory is
(:class:`~ispkit.tasks.TaskModel`): ``function(outputs, **options)``, with
``in_channels=`` when the views do not have 3 channels, and must return a
:class:`torch.nn.Module` mapping normalised views ``(N, C, H, W)`` to logits. Wherever a
registered model's name is taken -- :func:`~ispkit.tasks.build_network`, an experiment's
``model: {factory: ...}``, a checkpoint -- a factory path may stand instead, with the
task given (it cannot be told from the callable).

What a factory path may name (:func:`resolve_factory`): a module given by its dotted
name, never a file path; a callable defined outside Python's standard library and outside
``__main__`` (a script's or notebook's functions cannot be imported again by a checkpoint
or a Dask worker: put them in a module, or use :func:`~ispkit.tasks.register_model` in the
process); no ``__dunder__`` attribute on the way. A checkpoint that records a factory path
imports that module when it is loaded: the module is code on your machine, trusted as an
installed plugin is (``docs/guarantees.md``).
"""

from __future__ import annotations

import importlib
import re
import sys
from collections.abc import Callable
from typing import Any

from torch import nn

from ..errors import InputError
from .base import TASKS, TaskModel

__all__ = ["FACTORY_PATH", "is_factory_path", "resolve_factory", "factory_model"]

_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
FACTORY_PATH = re.compile(rf"{_NAME}(?:\.{_NAME})*:{_NAME}(?:\.{_NAME})*")
"""The form of a factory path: dotted module name, a colon, dotted attribute name."""


def is_factory_path(name: Any) -> bool:
    """Whether ``name`` stands for a factory path (it holds a colon) rather than a registered model's name.

    >>> is_factory_path("my_models.nets:tiny_cnn"), is_factory_path("small_cnn")
    (True, False)
    """
    return isinstance(name, str) and ":" in name


def _refuse(path: str, problem: str) -> InputError:
    return InputError(f"model factory {path!r}: {problem}")


def _outside_stdlib(module: str) -> bool:
    top = module.split(".")[0]
    return top != "__main__" and top not in sys.stdlib_module_names


def resolve_factory(path: str) -> Callable[..., nn.Module]:
    """The callable ``path`` names, imported (see the module docstring for what may be named).

    Raises
    ------
    InputError
        ``path`` is not ``"package.module:function"``, names ``__main__``, the standard
        library or a ``__dunder__`` attribute, its module cannot be imported (the message
        says whether the module is missing or failed while importing), the attribute does
        not exist, or it is not callable.

    Examples
    --------
    >>> resolve_factory("ispkit.tasks.small:small_cnn").__name__
    'small_cnn'
    >>> resolve_factory("no_such_package.models:net")
    Traceback (most recent call last):
    ...
    ispkit.errors.InputError: model factory 'no_such_package.models:net': cannot import module 'no_such_package.models': no module named 'no_such_package' is installed or on sys.path (install the package that holds it, or add its folder to PYTHONPATH)
    """
    if not isinstance(path, str) or not FACTORY_PATH.fullmatch(path):
        raise _refuse(
            str(path) if isinstance(path, str) else repr(path),
            "expected 'package.module:function' (a module importable by its dotted name, a colon, a callable in it); file paths are not accepted",
        )
    module_name, attribute = path.split(":")
    if module_name.endswith(".py"):
        raise _refuse(path, f"give the module's dotted name ({module_name.removesuffix('.py')!r}, its folder on sys.path), not a file name")
    if not _outside_stdlib(module_name):
        why = (
            "a script's or notebook's own code (__main__) cannot be imported again"
            if module_name.split(".")[0] == "__main__"
            else "that is Python's standard library"
        )
        raise _refuse(path, f"{why}; define the factory in a module of your own (or register it with ispkit.tasks.register_model)")
    if any(part.startswith("__") and part.endswith("__") for part in attribute.split(".")):
        raise _refuse(path, "a factory is a function or class of the module, not a __dunder__ attribute")
    module = _import(path, module_name)
    target: Any = module
    for i, part in enumerate(attribute.split(".")):
        if not hasattr(target, part):
            owner = ".".join([module_name, *attribute.split(".")[:i]])
            raise _refuse(path, f"{owner!r} has no attribute {part!r}")
        target = getattr(target, part)
    if not callable(target):
        raise _refuse(path, f"{attribute!r} is a {type(target).__name__}, not a function or class returning a torch.nn.Module")
    defined = getattr(target, "__module__", None)
    if not isinstance(defined, str) or not _outside_stdlib(defined):
        raise _refuse(
            path, f"{attribute!r} is defined in {defined or type(target).__module__!r}, not in a module of yours; define the factory with def or class"
        )
    return target


def _import(path: str, module_name: str) -> Any:
    """Import ``module_name``, turning every failure into an :class:`InputError` that says which kind it was."""
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if module_name == missing or module_name.startswith(missing + "."):
            raise _refuse(
                path,
                f"cannot import module {module_name!r}: no module named {missing!r} is installed or on sys.path "
                "(install the package that holds it, or add its folder to PYTHONPATH)",
            ) from None
        raise _refuse(path, f"importing module {module_name!r} failed: {type(exc).__name__}: {exc}") from None
    except Exception as exc:  # the module's own code failed while importing
        raise _refuse(path, f"importing module {module_name!r} failed: {type(exc).__name__}: {exc}") from None


def factory_model(path: str, task: str | None) -> TaskModel:
    """The :class:`~ispkit.tasks.TaskModel` of a factory path for ``task``, named by the path.

    >>> factory_model("ispkit.tasks.small:small_unet", "segmentation").name
    'ispkit.tasks.small:small_unet'
    """
    if task not in TASKS:
        raise _refuse(path, f"a factory model needs its task, one of {TASKS}, got {task!r}")
    return TaskModel(path, task, resolve_factory(path), f"factory {path}")  # type: ignore[arg-type]  # task checked above
