"""torch, imported the first time the code that needs it runs.

``import ispkit`` and the NumPy backend import no torch, so a NumPy-only user does not
pay its start-up (about a second and 500 MB). The torch backends are written as if
torch were imported at module level, and name it through the proxies here::

    from typing import TYPE_CHECKING

    if TYPE_CHECKING:
        import torch
    else:
        from ._torch import torch

A type checker sees the real module. At run time ``torch`` is a :class:`LazyModule` that
imports torch when one of its attributes is first read (``torch.zeros``) and hands out the
module's attributes from then on; annotations (``x: torch.Tensor``) are never evaluated
(``from __future__ import annotations``). Guaranteed: merely importing a module that does
this imports no torch. :func:`is_tensor` tells tensors from arrays without importing torch,
and :func:`no_grad` is ``@torch.no_grad()`` for a function defined at module level.

>>> lazy = LazyModule("json")
>>> lazy.dumps([1]), repr(lazy)
('[1]', "<lazy module 'json' (imported)>")
>>> is_tensor([1.0])
False
"""

from __future__ import annotations

import functools
import importlib
import sys
from collections.abc import Callable
from types import ModuleType
from typing import TYPE_CHECKING, Any, ParamSpec, TypeGuard, TypeVar

if TYPE_CHECKING:
    import torch as _real_torch

__all__ = ["LazyModule", "torch", "functional", "nn", "is_tensor", "no_grad"]

_P = ParamSpec("_P")
_R = TypeVar("_R")


class LazyModule:
    """A stand-in for the module ``name``, imported when one of its attributes is first read.

    Dunder names (``__wrapped__``, ``__file__``, …) are not forwarded: tools that look for
    them on every global of a module (``inspect.unwrap``, doctest's finder) would otherwise
    import the module just by looking.
    """

    __slots__ = ("_module", "_name")

    def __init__(self, name: str) -> None:
        self._name = name
        self._module: ModuleType | None = None

    def load(self) -> ModuleType:
        """The module itself, imported now if it was not yet."""
        if self._module is None:
            self._module = importlib.import_module(self._name)
        return self._module

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__") and attr.endswith("__"):
            raise AttributeError(attr)
        return getattr(self.load(), attr)

    def __dir__(self) -> list[str]:
        return dir(self.load())

    def __repr__(self) -> str:
        return f"<lazy module {self._name!r}{' (imported)' if self._module is not None else ''}>"


torch = LazyModule("torch")
"""``torch``, imported on first use."""
functional = LazyModule("torch.nn.functional")
"""``torch.nn.functional`` (``F``), imported on first use."""
nn = LazyModule("torch.nn")
"""``torch.nn``, imported on first use."""


def is_tensor(x: object) -> TypeGuard[_real_torch.Tensor]:
    """Whether ``x`` is a torch tensor; never imports torch (nothing is a tensor before torch is imported)."""
    module = sys.modules.get("torch")
    tensor = getattr(module, "Tensor", None)
    return tensor is not None and isinstance(x, tensor)


def no_grad(fn: Callable[_P, _R]) -> Callable[_P, _R]:
    """``fn`` run under ``torch.no_grad()``: the decorator ``@torch.no_grad()``, without importing torch to define ``fn``."""

    @functools.wraps(fn)
    def without_grad(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        with torch.no_grad():
            return fn(*args, **kwargs)

    return without_grad
