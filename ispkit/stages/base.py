"""The stage interface: one processing method, its declared parameters, two backends.

A stage method is a class with

* ``kind`` and ``method`` names (``"demosaic"`` / ``"menon2007"``),
* ``takes`` and ``gives``: the domain it maps between: ``"raw"`` (a Bayer mosaic
  ``(H, W)``), ``"rgb"`` (``(3, H, W)``) or ``"luma"`` (the Y plane ``(H, W)`` of
  skimage's YUV, on which sharpening and denoising act),
* ``params``: the declared :class:`Param` tuple,
* ``numpy(x, **params)``: the static reference on one image, float64,
* ``torch(x, **params)``: batched (``(N, H, W)`` or ``(N, 3, H, W)``), differentiable
  in every continuous parameter, equal to ``numpy`` within float tolerance.

Stages with ``cfa_aware = True`` also receive the camera's ``pattern=`` keyword.
Both backends receive parameters as keyword arguments under their declared names:
float parameters as arrays (numpy) or tensors of the input's dtype (torch), integer
and boolean parameters as Python scalars.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from torch import nn

from ..config import holds_text_or_bool
from ..errors import ParameterError

__all__ = ["Domain", "Param", "FromCamera", "Stage", "StageModule"]

Domain = Literal["raw", "rgb", "luma"]


@dataclass(frozen=True)
class FromCamera:
    """A parameter default read from the camera (``Camera.<field>``)."""

    field: str


@dataclass(frozen=True)
class Param:
    """Declaration of one stage parameter.

    Parameters
    ----------
    name
        Identifier; the torch module names it ``<stage>.<name>``.
    shape
        Exact shape of the value (``()`` for a scalar).
    default
        Value used when neither the pipeline nor the camera sets one; a
        :class:`FromCamera` reads it from the camera.
    doc
        One line: what the parameter means physically.
    bounds
        Inclusive physical ``(low, high)`` bounds applied elementwise, or ``None``.
    differentiable
        Whether the torch backend is differentiable in it (continuous floats only).
    dtype
        ``float``, ``int`` or ``bool``.
    odd
        For ``int`` parameters: the value must be odd (the side of a centred window).
    """

    name: str
    shape: tuple[int, ...]
    default: Any
    doc: str
    bounds: tuple[float, float] | None = None
    differentiable: bool = True
    dtype: type = float
    odd: bool = False

    def validate(self, value: Any, where: str) -> Any:
        """Check ``value`` against the declaration and return it in canonical form.

        Floats become read-only float64 arrays of the declared shape; ints and bools
        become Python scalars. ``where`` names the parameter in errors
        (``"demosaic.kernels"``). Guaranteed on return: the type is the declared one
        (strings and booleans are no numbers, numbers no booleans), floats are finite,
        every value lies within ``bounds`` and odd parameters are odd; otherwise
        :class:`~ispkit.errors.ParameterError` says which of these failed.
        """
        if self.dtype is not float:
            if isinstance(value, (np.ndarray, np.generic)) and np.ndim(value) == 0:
                value = value.item()
            ok = isinstance(value, bool) if self.dtype is bool else isinstance(value, int) and not isinstance(value, bool)
            if not ok:
                raise ParameterError(f"{where}: expected {'a boolean' if self.dtype is bool else 'an integer'}, got {value!r}")
            self._check_bounds(np.asarray(value), where)
            if self.odd and value % 2 == 0:
                raise ParameterError(f"{where}: expected an odd integer ({self.doc}), got {value!r}")
            return value
        if isinstance(value, torch.Tensor):
            value = value.detach().cpu().numpy()
        try:
            array = None if holds_text_or_bool(value) else np.array(value, dtype=np.float64)
        except (TypeError, ValueError, OverflowError):
            array = None
        if array is None:
            raise ParameterError(f"{where}: expected numbers of shape {self.shape}, got {value!r}")
        if array.shape != self.shape:
            raise ParameterError(f"{where}: expected shape {self.shape}, got shape {array.shape}")
        if not np.all(np.isfinite(array)):
            raise ParameterError(f"{where}: values must be finite, got {array.tolist()}")
        self._check_bounds(array, where)
        array.setflags(write=False)
        return array

    def _check_bounds(self, array: np.ndarray, where: str) -> None:
        if self.bounds is None:
            return
        low, high = self.bounds
        if np.any(array < low) or np.any(array > high):
            raise ParameterError(f"{where}: values must lie in [{low}, {high}] ({self.doc}), got {array.tolist()}")


class Stage:
    """Base class of a stage method; subclasses set the class attributes below."""

    kind: ClassVar[str]
    method: ClassVar[str]
    takes: ClassVar[Domain]
    gives: ClassVar[Domain]
    params: ClassVar[tuple[Param, ...]] = ()
    cfa_aware: ClassVar[bool] = False
    #: The torch backend takes discrete decisions from its input values (Menon's choice of
    #: direction) that rounding the input to float32 would flip; a pipeline then runs its
    #: raw stages in float64, as the NumPy backend does, and casts after the demosaic.
    exact_input: ClassVar[bool] = False
    numpy: ClassVar[Callable[..., np.ndarray]]
    torch: ClassVar[Callable[..., torch.Tensor]]

    @classmethod
    def param(cls, name: str) -> Param:
        """The declaration of parameter ``name``."""
        for p in cls.params:
            if p.name == name:
                return p
        raise KeyError(name)

    @classmethod
    def describe(cls) -> str:
        """First line of the class docstring."""
        return (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""

    @classmethod
    def run_numpy(cls, x: np.ndarray, values: Mapping[str, Any], pattern: str) -> np.ndarray:
        """Apply the numpy backend to one image with validated ``values``."""
        extra = {"pattern": pattern} if cls.cfa_aware else {}
        return cls.numpy(x, **values, **extra)


class StageModule(nn.Module):
    """A stage as an ``nn.Module``: parameters chosen as trainable are ``nn.Parameter``,
    the others buffers; both are named as declared.

    Parameters
    ----------
    stage
        The stage method class.
    values
        Validated parameter values (see :meth:`Param.validate`).
    pattern
        The camera's CFA layout (used by CFA-aware stages).
    trainable
        Names of the continuous, differentiable parameters to expose as ``nn.Parameter``.
    """

    def __init__(self, stage: type[Stage], values: Mapping[str, Any], pattern: str, trainable: frozenset[str] = frozenset()) -> None:
        super().__init__()
        self.stage = stage
        self.pattern = pattern
        self.scalars: dict[str, Any] = {}
        for p in stage.params:
            value = values[p.name]
            if p.dtype is not float:
                self.scalars[p.name] = value
            elif p.name in trainable:
                self.register_parameter(p.name, nn.Parameter(torch.tensor(value, dtype=torch.float64)))
            else:
                self.register_buffer(p.name, torch.tensor(value, dtype=torch.float64))

    def values(self, like: torch.Tensor) -> dict[str, Any]:
        """Parameter values cast to ``like``'s dtype and device (differentiably)."""
        out: dict[str, Any] = dict(self.scalars)
        for p in self.stage.params:
            if p.dtype is float:
                out[p.name] = getattr(self, p.name).to(dtype=like.dtype, device=like.device)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        extra = {"pattern": self.pattern} if self.stage.cfa_aware else {}
        return self.stage.torch(x, **self.values(x), **extra)

    @torch.no_grad()
    def project_(self) -> None:
        """Clamp every trainable parameter into its declared physical bounds, in place."""
        for p in self.stage.params:
            if p.bounds is not None and isinstance(getattr(self, p.name, None), nn.Parameter):
                getattr(self, p.name).clamp_(*p.bounds)

    def extra_repr(self) -> str:
        return f"{self.stage.kind}={self.stage.method}"
