"""What a raw-domain corruption is, and the sensor arithmetic every corruption shares.

A :class:`RawCorruption` is data, like a :class:`~ispkit.camera.Camera`: a name, a family,
the physical quantities it is controlled by (:class:`Quantity`: name, unit, bounds), their
values at the five severities, and one or two backends:

``torch(raw, camera, generator, **level)``
    always present; ``raw`` a float tensor ``(N, H, W)`` in [0, 1], random numbers drawn
    from ``generator`` only, differentiable in ``raw`` and in the quantities listed in
    ``differentiable``; returns a tensor of the same shape, dtype and device;
``numpy(raw, camera, rng, **level)``
    the static reference where one makes sense (``None`` otherwise): ``raw`` a float64 array
    ``(N, H, W)``, random numbers from the :class:`numpy.random.Generator` ``rng``.

The public entry points (:meth:`RawCorruption.apply_torch`, :meth:`RawCorruption.apply_numpy`
and :func:`ispkit.raw_corruptions.corrupt_raw`) check the raw data, the camera and the level,
turn a severity into the quantities' values, accept ``(H, W)``, ``(N, H, W)`` and, in
torch, ``(N, 1, H, W)``, and give back the shape they were given.

Sensor arithmetic (the conventions of :mod:`ispkit.sensor`): a normalised value ``x`` is
``DN = x · W`` stored digital numbers (``W`` the white level), the signal above the
per-site black level ``B_s`` is ``S = DN − B_s``, electrons are ``S / g`` with the stored
gain ``g = camera.gain · J`` (DN/e⁻, ``J`` the left-justification factor), and the largest
number the ADC stores is ``D_max = (2^bit_depth − 1) · J``. Every corruption clips its
output to ``[0, D_max / W]`` (the sensor saturates; for a 16-bit camera ``D_max = W``);
those that add electrons (noise, dark current, defects) re-quantise at the camera's bit
depth as :func:`ispkit.sensor.acquire` does, the rounding passing gradients straight
through.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np
import torch
from torch import Generator as TorchGenerator
from torch import Tensor

from ..arrays import check_raw_data
from ..camera import Camera
from ..cfa import site_map_numpy
from ..errors import InputError

__all__ = [
    "FAMILIES",
    "SEVERITIES",
    "CAMERA_FACTS",
    "Quantity",
    "RawCorruption",
    "Sensor",
    "TorchBackend",
    "NumpyBackend",
    "numpy_batch",
    "draw",
    "normal",
    "pathwise",
    "standard_generator",
    "tensor_like",
    "uniform",
]

SEVERITIES = (1, 2, 3, 4, 5)
"""The severities of every raw corruption, mildest first."""

FAMILIES = ("exposure", "blur", "optics", "colour", "sensor")
"""Families of raw corruptions: what part of an acquisition drifts (the benchmark reports each)."""

CAMERA_FACTS = {
    "gain": "gain=<DN/e⁻ at the camera's bit depth>",
    "read_noise": "read_noise=<e⁻>",
    "pixel_size": "pixel_size=<µm in the object plane>",
}
"""Optional camera fields a corruption may need, and how to give them (``dataclasses.replace(camera, ...)``)."""

TorchBackend = Callable[..., torch.Tensor]
"""``torch(raw (N, H, W) tensor, camera, generator, **level) -> tensor``."""
NumpyBackend = Callable[..., np.ndarray]
"""``numpy(raw (N, H, W) float64 array, camera, rng, **level) -> array``."""


# -- quantities --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Quantity:
    """A physical quantity controlling a corruption.

    Attributes
    ----------
    name
        Keyword of the backends and of :func:`~ispkit.raw_corruptions.corrupt_raw` (an identifier).
    unit
        Physical unit as the tables show it (``"µm"``, ``"K"``, ``"e⁻"``; ``"×"`` for a factor).
    meaning
        One line: what the quantity is.
    low, high
        Inclusive bounds of a valid value (each element of a vector value).
    size
        0 for a number, ``k`` for a vector of ``k`` numbers.
    none_means
        What ``None`` stands for as a value, as the tables show it (``"random"``), or ``None``
        when a value is required.
    """

    name: str
    unit: str
    meaning: str
    low: float = -math.inf
    high: float = math.inf
    size: int = 0
    none_means: str | None = None

    def __post_init__(self) -> None:
        if not (isinstance(self.name, str) and self.name.isidentifier()):
            raise InputError(f"a quantity's name must be an identifier, got {self.name!r}")
        if not self.low <= self.high:
            raise InputError(f"quantity {self.name!r}: need low <= high, got {self.low} > {self.high}")

    def show(self, value: Any) -> str:
        """``value`` as the severity tables show it: ``0.03``, ``-0.05/0.1`` for a vector, :attr:`none_means` for ``None``."""
        if value is None:
            return str(self.none_means)
        if isinstance(value, tuple):
            return "/".join(f"{v:g}" for v in value)
        return f"{value:g}"

    def check(self, value: Any, where: str) -> Any:
        """``value`` if it is valid, as a float (a tuple of floats for a vector) or the tensor given; else :class:`InputError`.

        A tensor is checked on its values and returned as it is, so that gradients reach it.
        """
        if value is None:
            if self.none_means is not None:
                return None
            raise InputError(f"{where}: {self.name} needs a value ({self.meaning}, in {self.unit or 'no unit'})")
        try:
            values = _numbers(value, self.size)
        except (TypeError, ValueError):
            values = None
        bounds = f"in [{self.low:g}, {self.high:g}]" + (f" ({self.unit})" if self.unit else "")
        expected = f"a number {bounds}" if self.size == 0 else f"{self.size} numbers, each {bounds}"
        if values is None or not np.all(np.isfinite(values)) or np.any(values < self.low) or np.any(values > self.high):
            raise InputError(f"{where}: {self.name} must be {expected}, got {_show(value)}")
        if isinstance(value, torch.Tensor):
            return value
        return float(values) if self.size == 0 else tuple(float(v) for v in values)


def _numbers(value: Any, size: int) -> np.ndarray:
    """``value`` as a float64 array of shape ``()`` (size 0) or ``(size,)``; raises TypeError/ValueError otherwise."""
    if isinstance(value, (bool, str, bytes)):
        raise TypeError("not a number")
    if isinstance(value, torch.Tensor):
        if value.is_complex() or value.dtype == torch.bool:
            raise TypeError("not real numbers")
        value = value.detach().to("cpu", torch.float64).numpy()
    array = np.asarray(value, dtype=np.float64)
    if array.shape != (() if size == 0 else (size,)):
        raise ValueError("wrong shape")
    return array


def _show(value: Any) -> str:
    """A short rendering of a (possibly huge) value for a message."""
    if isinstance(value, torch.Tensor):
        return f"a tensor of shape {tuple(value.shape)}" if value.numel() > 4 else f"tensor {value.detach().cpu().tolist()}"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# -- the corruption ----------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class RawCorruption:
    """A physical corruption of the Bayer raw, before the ISP, at five severities.

    Attributes
    ----------
    name
        Registry key (an identifier, e.g. ``"low_light"``).
    family
        One of :data:`FAMILIES`.
    summary
        One line: the physical model.
    quantities
        The quantities the backends take as keywords.
    levels
        Five mappings, severities 1 to 5, each giving every quantity a value; severity
        must increase the corruption (the tests check it).
    torch
        The torch backend (see the module docstring).
    numpy
        The static numpy reference, or ``None``.
    needs
        Optional camera fields the corruption uses (keys of :data:`CAMERA_FACTS`).
    random
        Whether it draws random numbers.
    differentiable
        Quantities the torch backend is differentiable in (it is always differentiable in
        ``raw`` where the physics is, e.g. not through a stuck pixel).

    Two corruptions are equal only when they are the same object (they hold functions).
    """

    name: str
    family: str
    summary: str
    quantities: tuple[Quantity, ...]
    levels: tuple[Mapping[str, Any], ...]
    torch: TorchBackend
    numpy: NumpyBackend | None = None
    needs: tuple[str, ...] = ()
    random: bool = False
    differentiable: tuple[str, ...] = ()
    defaults: Mapping[str, Any] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        """Check the declaration; a problem is an :class:`InputError` naming the corruption and what was expected."""
        where = f"raw corruption {self.name!r}"
        if not (isinstance(self.name, str) and self.name.isidentifier()):
            raise InputError(f"a raw corruption's name must be an identifier, got {self.name!r}")
        if self.family not in FAMILIES:
            raise InputError(f"{where}: family must be one of {', '.join(FAMILIES)}, got {self.family!r}")
        if not (isinstance(self.quantities, tuple) and self.quantities and all(isinstance(q, Quantity) for q in self.quantities)):
            raise InputError(f"{where}: quantities must be a non-empty tuple of Quantity, got {_show(self.quantities)}")
        names = [q.name for q in self.quantities]
        if len(set(names)) != len(names):
            raise InputError(f"{where}: quantity names repeat: {names}")
        if not (isinstance(self.levels, tuple) and len(self.levels) == len(SEVERITIES)):
            raise InputError(f"{where}: levels must be a tuple of {len(SEVERITIES)} mappings (severities 1..5), got {_show(self.levels)}")
        checked = []
        for severity, level in zip(SEVERITIES, self.levels, strict=True):
            if not isinstance(level, Mapping) or set(level) != set(names):
                raise InputError(f"{where}: severity {severity} must give exactly the quantities {names}, got {_show(level)}")
            if any(isinstance(v, torch.Tensor) for v in level.values()):
                raise InputError(f"{where}: severity {severity} gives a tensor; a severity's values must be plain numbers")
            checked.append(MappingProxyType({q.name: q.check(level[q.name], f"{where} severity {severity}") for q in self.quantities}))
        object.__setattr__(self, "levels", tuple(checked))
        constant = {q.name: checked[0][q.name] for q in self.quantities if all(level[q.name] == checked[0][q.name] for level in checked)}
        object.__setattr__(self, "defaults", MappingProxyType(constant))
        if not callable(self.torch) or (self.numpy is not None and not callable(self.numpy)):
            raise InputError(f"{where}: the torch backend (and the numpy one, unless None) must be callable")
        unknown = [n for n in self.needs if n not in CAMERA_FACTS]
        if unknown:
            raise InputError(f"{where}: needs names unknown camera facts {unknown}; known: {', '.join(CAMERA_FACTS)}")
        stray = [n for n in self.differentiable if n not in names]
        if stray:
            raise InputError(f"{where}: differentiable names {stray}, which are not among its quantities {names}")

    # -- levels ----------------------------------------------------------------------------------

    def level(self, severity: int | None = None, **values: Any) -> dict[str, Any]:
        """The quantities' values at ``severity``, with ``values`` overriding some of them, checked.

        Without a severity, quantities that are the same at every severity take that value
        and the others must be given.

        >>> from ispkit.raw_corruptions import raw_corruption
        >>> raw_corruption("low_light").level(2)
        {'exposure': 0.1}
        >>> raw_corruption("low_light").level(exposure=0.5)
        {'exposure': 0.5}
        """
        where = f"raw corruption {self.name!r}"
        if severity is None:
            base = dict(self.defaults)
        else:
            if isinstance(severity, bool) or not isinstance(severity, numbers.Integral) or severity not in SEVERITIES:
                raise InputError(f"{where}: severity must be an integer in 1..5 (or None with every quantity given), got {severity!r}")
            base = dict(self.levels[int(severity) - 1])
        names = [q.name for q in self.quantities]
        unknown = [n for n in values if n not in names]
        if unknown:
            raise InputError(f"{where}: unknown quantity {', '.join(map(repr, unknown))}; its quantities are {', '.join(names)}")
        base.update(values)
        missing = [n for n in names if n not in base]
        if missing:
            raise InputError(f"{where}: give a severity (1..5) or a value for {', '.join(missing)}")
        return {q.name: q.check(base[q.name], where) for q in self.quantities}

    # -- application -----------------------------------------------------------------------------

    def describe(self, severity: int) -> str:
        """Severity ``severity`` in words: the quantities that change with severity and their values,
        e.g. ``"low_light 3: exposure 0.03 ×"``."""
        level = self.level(severity)
        changing = [q for q in self.quantities if len({repr(lv[q.name]) for lv in self.levels}) > 1] or list(self.quantities)
        values = ", ".join(f"{q.name} {q.show(level[q.name])}{' ' + q.unit if q.unit else ''}" for q in changing)
        return f"{self.name} {severity}: {values}"

    def check_camera(self, camera: Camera | str | Mapping[str, Any]) -> Camera:
        """The camera, resolved (:meth:`Camera.get`), once it has every field in :attr:`needs`; else an :class:`InputError` saying how to add them."""
        cam = Camera.get(camera)
        missing = [name for name in self.needs if getattr(cam, name) is None]
        if missing:
            how = ", ".join(CAMERA_FACTS[name] for name in missing)
            raise InputError(
                f"raw corruption {self.name!r} needs the camera's {' and '.join(missing)}, which camera {cam.name!r} does not have "
                f"(not published for it); give them with dataclasses.replace(camera, {how})"
            )
        return cam

    def apply_torch(
        self,
        raw: Tensor,
        severity: int | None = None,
        *,
        camera: Camera | str | Mapping[str, Any],
        generator: TorchGenerator | None = None,
        **values: Any,
    ) -> Tensor:
        """Corrupt a raw tensor ``(H, W)``, ``(N, H, W)`` or ``(N, 1, H, W)`` in [0, 1]; same shape, dtype and device back.

        ``generator`` (a fresh, randomly seeded CPU generator when ``None``) is the only
        source of random numbers; the ``N`` images of a batch get independent draws.
        """
        where = f"raw corruption {self.name!r}"
        level = self.level(severity, **values)
        cam = self.check_camera(camera)
        batch, shape = _torch_batch(raw, where)
        out = self.torch(batch, cam, standard_generator(generator), **level)
        return out.reshape(shape)

    def apply_numpy(
        self,
        raw: np.ndarray,
        severity: int | None = None,
        *,
        camera: Camera | str | Mapping[str, Any],
        rng: np.random.Generator | int | None = None,
        **values: Any,
    ) -> np.ndarray:
        """Corrupt a raw array ``(H, W)`` or ``(N, H, W)`` in [0, 1] with the static reference; float64 of the same shape back.

        ``rng`` is a :class:`numpy.random.Generator` or a seed for ``np.random.default_rng``.
        A corruption without a numpy backend is an :class:`InputError` (use :meth:`apply_torch`
        or :func:`~ispkit.raw_corruptions.corrupt_raw`, which runs it in torch float64).
        """
        where = f"raw corruption {self.name!r}"
        if self.numpy is None:
            raise InputError(f"{where} has no numpy reference backend (its model is random per pixel); use apply_torch or corrupt_raw")
        level = self.level(severity, **values)
        cam = self.check_camera(camera)
        batch = numpy_batch(raw, where)
        generator = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        out = self.numpy(batch, cam, generator, **{name: _plain(value) for name, value in level.items()})
        return out.reshape(np.shape(raw))


def _plain(value: Any) -> Any:
    """A tensor value as a float (a tuple of floats for a vector), for the numpy backends; anything else as it is."""
    if not isinstance(value, torch.Tensor):
        return value
    array = value.detach().to("cpu", torch.float64).numpy()
    return float(array) if array.ndim == 0 else tuple(float(v) for v in array)


# -- raw data in and out ------------------------------------------------------------------------


def _check_range(low: float, high: float, where: str) -> None:
    if low < 0.0 or high > 1.0:
        raise InputError(f"{where}: expected raw values normalised to [0, 1] (stored DN / white level), got values in [{low:g}, {high:g}]")


def numpy_batch(raw: Any, where: str) -> np.ndarray:
    """A checked float64 copy ``(N, H, W)`` of a mosaic ``(H, W)`` or batch ``(N, H, W)`` in [0, 1]."""
    if not isinstance(raw, np.ndarray):
        raise InputError(f"{where}: expected a numpy array (H, W) or (N, H, W), got {type(raw).__name__}")
    batched = check_raw_data(raw, where)
    _check_range(float(raw.min()), float(raw.max()), where)
    return np.array(raw if batched else raw[None], dtype=np.float64)


def _torch_batch(raw: Any, where: str) -> tuple[torch.Tensor, tuple[int, ...]]:
    """The mosaic as ``(N, H, W)`` (a view) and the shape to give back; ``(N, 1, H, W)`` is accepted too."""
    if not isinstance(raw, torch.Tensor):
        raise InputError(f"{where}: expected a torch tensor (H, W), (N, H, W) or (N, 1, H, W), got {type(raw).__name__}")
    shape = tuple(raw.shape)
    if raw.ndim == 4:
        if raw.shape[1] != 1:
            raise InputError(f"{where}: a 4-d raw batch must be (N, 1, H, W), got shape {shape}")
        raw = raw[:, 0]
    batched = check_raw_data(raw, where)
    low, high = torch.aminmax(raw.detach())
    _check_range(float(low), float(high), where)
    return (raw if batched else raw[None]), shape


def standard_generator(generator: torch.Generator | None) -> torch.Generator:
    """``generator``, or a fresh CPU generator seeded from fresh entropy (the global RNG is never touched)."""
    if generator is None:
        generator = torch.Generator()
        generator.seed()
    elif not isinstance(generator, torch.Generator):
        raise InputError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
    return generator


# -- the sensor ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sensor:
    """The camera's numbers in stored DN, for the arithmetic of :mod:`ispkit.sensor`.

    ``white`` the white level W, ``black`` the four per-site black levels (DN), ``levels``
    the same normalised (the camera's ``black_level``), ``gain`` the
    stored gain g (DN/e⁻; ``nan`` when the camera has none), ``read_noise`` σ (e⁻; ``nan``
    when unknown), ``step`` the left-justification J, ``top`` D_max.
    """

    white: float
    black: tuple[float, float, float, float]
    levels: tuple[float, float, float, float]
    gain: float
    read_noise: float
    step: float
    top: float

    @classmethod
    def of(cls, camera: Camera) -> Sensor:
        """The sensor numbers of ``camera``."""
        gain = math.nan if camera.stored_gain is None else float(camera.stored_gain)
        sigma = math.nan if camera.read_noise is None else float(camera.read_noise)
        black = tuple(float(b) * camera.white_level for b in camera.black_level)
        top = float((2**camera.bit_depth - 1) * camera.justification)
        return cls(float(camera.white_level), black, tuple(camera.black_level), gain, sigma, float(camera.justification), top)  # type: ignore[arg-type]

    @property
    def ceiling(self) -> float:
        """``D_max / W``: the largest normalised value the sensor stores (1 for a 16-bit camera)."""
        return self.top / self.white

    def black_numpy(self, shape: tuple[int, ...]) -> np.ndarray:
        """Black level in DN tiled over an ``(H, W)`` mosaic."""
        return site_map_numpy(np.array(self.black), shape[-2:])

    def black_torch(self, like: torch.Tensor) -> torch.Tensor:
        """Black level in DN tiled over ``like``'s ``(H, W)``, in its dtype and device."""
        h, w = like.shape[-2:]
        return torch.tensor(self.black, dtype=like.dtype, device=like.device).reshape(2, 2).repeat(h // 2, w // 2)

    def black_level_torch(self, like: torch.Tensor) -> torch.Tensor:
        """Normalised black level (the camera's ``black_level``) tiled over ``like``'s ``(H, W)``, in its dtype and device."""
        h, w = like.shape[-2:]
        return torch.tensor(self.levels, dtype=like.dtype, device=like.device).reshape(2, 2).repeat(h // 2, w // 2)

    def black_level_numpy(self, shape: tuple[int, ...]) -> np.ndarray:
        """Normalised black level tiled over an ``(H, W)`` mosaic."""
        return site_map_numpy(np.array(self.levels), shape[-2:])

    def signal_torch(self, raw: torch.Tensor) -> torch.Tensor:
        """Signal above black ``S = x · W − B`` in DN."""
        return raw * self.white - self.black_torch(raw)

    def digitise_torch(self, dn: torch.Tensor) -> torch.Tensor:
        """``clip(round(DN / J) · J, 0, D_max) / W``; the rounding passes gradients straight through."""
        steps = dn / self.step
        quantised = steps + (torch.round(steps) - steps).detach()
        return (quantised * self.step).clamp(0.0, self.top) / self.white

    def clip_torch(self, raw: torch.Tensor) -> torch.Tensor:
        """``raw`` clipped to the sensor's range ``[0, D_max / W]``."""
        return raw.clamp(0.0, self.ceiling)

    def clip_numpy(self, raw: np.ndarray) -> np.ndarray:
        """``raw`` clipped to the sensor's range ``[0, D_max / W]``."""
        return np.clip(raw, 0.0, self.ceiling)


def pathwise(sample: torch.Tensor, mean: torch.Tensor, variance: torch.Tensor) -> torch.Tensor:
    """``sample``'s value with the gradient of ``mean + sqrt(variance) · z``, ``z`` its standardised residual held fixed.

    A Poisson or binomial draw has no gradient; this gives it the reparametrised one of
    a variate with the draw's mean and variance (the Gaussian pathwise estimator), so a
    loss can be differentiated through a noisy acquisition in its exposure. The value
    is the draw's exactly (up to float rounding); where the variance is 0 the draw is
    its mean and only the mean's gradient flows.
    """
    positive = variance > 0
    std = torch.sqrt(variance.clamp_min(torch.finfo(variance.dtype).tiny)) * positive
    z = torch.where(positive, (sample - mean) / torch.where(positive, std, torch.ones_like(std)), torch.zeros_like(std)).detach()
    return mean + std * z


def tensor_like(value: Any, like: torch.Tensor) -> torch.Tensor:
    """``value`` (a number, a sequence or a tensor, whose gradient is kept) as a tensor of ``like``'s dtype and device."""
    return torch.as_tensor(value, dtype=like.dtype, device=like.device)


def draw(sampler: Callable[..., torch.Tensor], generator: torch.Generator, *parameters: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``sampler(*parameters, generator=generator)`` (``torch.poisson``, ``torch.binomial``) on the generator's device in float64, as ``like``'s dtype and device.

    The parameters are detached: a draw has no gradient (see :func:`pathwise`).
    """
    args = [p.detach().to(device=generator.device, dtype=torch.float64) for p in parameters]
    return sampler(*args, generator=generator).to(device=like.device, dtype=like.dtype)


def normal(generator: torch.Generator, shape: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
    """Standard normal variates of ``shape``, drawn in float64 on the generator's device, as ``like``'s dtype and device."""
    return torch.randn(shape, generator=generator, device=generator.device, dtype=torch.float64).to(device=like.device, dtype=like.dtype)


def uniform(generator: torch.Generator, shape: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
    """Uniform variates in [0, 1) of ``shape``, drawn in float64 on the generator's device, as ``like``'s dtype and device."""
    return torch.rand(shape, generator=generator, device=generator.device, dtype=torch.float64).to(device=like.device, dtype=like.dtype)
