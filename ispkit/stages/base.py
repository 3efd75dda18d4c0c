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

ispkit calls the backends through :meth:`Stage.run_numpy` and :meth:`Stage.run_torch`
(and :class:`~ispkit.stages.module.StageModule`), which check shapes on both sides: the input must be of the
domain the stage takes, and the result of the domain it gives with the same batch size,
height and width; anything else is an :class:`~ispkit.errors.InputError` naming the stage.
:mod:`ispkit.testing` checks the rest of a stage's contract.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal, TypeVar

import numpy as np

from .._torch import is_tensor
from ..arrays import check_mosaic, check_plane, check_rgb
from ..camera import Camera, FromCamera
from ..config import holds_text_or_bool
from ..errors import InputError, ParameterError

if TYPE_CHECKING:
    import torch
else:
    from .._torch import torch

__all__ = ["Domain", "Param", "FromCamera", "Stage"]

Domain = Literal["raw", "rgb", "luma"]

if TYPE_CHECKING:
    _Tensor = torch.Tensor
    _DType = torch.dtype
    """Names of torch's types for annotations inside :class:`Stage`, whose ``torch`` attribute (the backend) hides the module."""


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
        if is_tensor(value):
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
    #: direction) that rounding the input to float32 would flip. Such a backend also takes
    #: ``dtype=``, the dtype to return (and to compute in after the decisions); a pipeline
    #: in a lower precision runs the raw stages before it in float64, as the NumPy backend
    #: does, and hands it their float64 result with ``dtype=`` its own dtype.
    exact_input: ClassVar[bool] = False
    #: Float parameters whose values the torch backend needs as Python numbers (to size a
    #: kernel, say). Such a backend also takes the keyword ``host``: a dict of those values
    #: as floats, which :class:`~ispkit.stages.module.StageModule` reads from a host copy (refreshed only when the
    #: tensor changed), so that a call neither synchronises with a GPU nor stops
    #: ``torch.export``. Called without ``host``, the backend reads the tensors itself.
    host_params: ClassVar[tuple[str, ...]] = ()
    #: For an ``rgb → rgb`` stage whose torch backend multiplies every pixel by one 3×3
    #: matrix: that matrix, from the same keyword arguments as ``torch`` (differentiably).
    #: A pipeline multiplies consecutive such stages into one product per pixel.
    pixel_matrix: ClassVar[Callable[..., torch.Tensor] | None] = None
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
    def declaration_problems(cls) -> list[str]:
        """Every way the declared parameters contradict themselves, one line each; empty when none.

        Guaranteed when empty: parameter names are distinct identifiers, every
        :class:`FromCamera` default names a :class:`~ispkit.camera.Camera` field, and every
        other default passes :meth:`Param.validate` (declared type and shape, finite,
        within ``bounds``, odd where required). The registry refuses a stage with problems.
        """
        fields = {f.name for f in dataclasses.fields(Camera)}
        problems, seen = [], set()
        for p in cls.params:
            where = f"{cls.kind}.{p.name}"
            if not (isinstance(p.name, str) and p.name.isidentifier()) or p.name in seen:
                problems.append(f"{where}: parameter names must be distinct identifiers, got {p.name!r}")
            seen.add(p.name)
            if isinstance(p.default, FromCamera):
                if p.default.field not in fields:
                    problems.append(f"{where}: the default reads Camera.{p.default.field}, which is not a camera field")
                continue
            try:
                p.validate(p.default, f"{where} default")
            except ParameterError as exc:
                problems.append(str(exc))
        return problems

    @classmethod
    def output_shape(cls, shape: tuple[int, ...]) -> tuple[int, ...]:
        """The shape a backend must return for an input of ``shape``.

        The same leading (batch) dimensions, height and width, with the channel axis of
        the domain the stage gives: ``(…, 3, H, W)`` for ``rgb``, ``(…, H, W)`` otherwise.

        >>> class Demosaic(Stage):
        ...     takes, gives = "raw", "rgb"
        >>> Demosaic.output_shape((2, 8, 10))
        (2, 3, 8, 10)
        """
        lead = shape[:-3] if cls.takes == "rgb" else shape[:-2]
        return (*lead, *((3,) if cls.gives == "rgb" else ()), *shape[-2:])

    @classmethod
    def run_numpy(cls, x: np.ndarray, values: Mapping[str, Any], pattern: str) -> np.ndarray:
        """Apply the numpy backend to one image with validated ``values``.

        ``x`` must be one image of the domain the stage takes (``(H, W)`` mosaic with even
        sides or plane, ``(3, H, W)`` view); the result is guaranteed to be an array of
        :meth:`output_shape`. Otherwise :class:`~ispkit.errors.InputError` names the stage.
        """
        _check_input(cls, x, batched=False)
        extra = {"pattern": pattern} if cls.cfa_aware else {}
        return _checked_output(cls, x, cls.numpy(x, **values, **extra), "numpy")

    @classmethod
    def run_torch(
        cls,
        x: _Tensor,
        values: Mapping[str, Any],
        pattern: str,
        dtype: _DType | None = None,
        host: Mapping[str, float] | None = None,
    ) -> _Tensor:
        """Apply the torch backend to a batch with ``values`` already cast to ``x``'s dtype and device.

        ``x`` must be a batch of the domain the stage takes (``(N, H, W)`` or
        ``(N, 3, H, W)``); the result is guaranteed to be a tensor of :meth:`output_shape`
        (same batch size, height and width). Otherwise :class:`~ispkit.errors.InputError`
        names the stage. Only shapes are read, never values (no host synchronisation).
        ``dtype`` is passed on to a stage with ``exact_input``, ``host`` (the values of
        :attr:`host_params` as floats) to a stage that declares host parameters.
        """
        _check_input(cls, x, batched=True)
        extra: dict[str, Any] = {"pattern": pattern} if cls.cfa_aware else {}
        if dtype is not None:
            extra["dtype"] = dtype
        if host is not None and cls.host_params:
            extra["host"] = host
        return _checked_output(cls, x, cls.torch(x, **values, **extra), "torch")


def _label(stage: type[Stage]) -> str:
    return f"stage {stage.kind}={stage.method}"


_DOMAIN_CHECKS = {"raw": check_mosaic, "rgb": check_rgb, "luma": check_plane}


def _check_input(stage: type[Stage], x: Any, *, batched: bool) -> None:
    """Raise :class:`InputError` unless ``x`` is one image (or a batch) of the domain ``stage`` takes."""
    _DOMAIN_CHECKS[stage.takes](x, f"{_label(stage)} ({stage.takes} → {stage.gives}) input", batched=batched)


_Array = TypeVar("_Array", np.ndarray, "torch.Tensor")


def _checked_output(stage: type[Stage], x: Any, out: _Array, backend: str) -> _Array:
    """``out``, after checking that it is an array (tensor) of ``stage.output_shape(x.shape)``."""
    expected = stage.output_shape(tuple(x.shape))
    array_type = np.ndarray if backend == "numpy" else torch.Tensor
    got = f"shape {tuple(out.shape)}" if isinstance(out, array_type) else f"a {type(out).__name__}"
    if not isinstance(out, array_type) or tuple(out.shape) != expected:
        raise InputError(
            f"{_label(stage)}: its {backend} backend returned {got} for an input of shape {tuple(x.shape)}; "
            f"a {stage.takes} → {stage.gives} stage must return {'an array' if backend == 'numpy' else 'a tensor'} of shape {expected}"
        )
    return out
