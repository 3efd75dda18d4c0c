"""Cameras as data: CFA layout, bit depth, black and white level, noise, colour.

A :class:`Camera` holds what the processing and the sensor model need to know about a
device. The built-in ``microscopy`` and ``drone`` cameras carry the values published
with the Raw-Microscopy and Raw-Drone datasets (Oala et al., TMLR 2023); plugins add
more through the ``ispkit_cameras`` hook, and any camera loads from YAML.

All levels are on the normalised [0, 1] scale, i.e. stored digital numbers divided by
``white_level = 2**container_bits - 1`` (the paper divides 16-bit data by 2^16 - 1).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np
import yaml

from .cfa import check_pattern
from .config import KeyPath, Locator, check_int, check_number, check_string, holds_text_or_bool, load_yaml
from .errors import ConfigError, InputError

__all__ = ["Camera", "CameraLookup", "FromCamera", "SHADING_POINTS", "use_camera_lookup"]

_IDENTITY = ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0))

SHADING_POINTS = 33
"""Points per axis of a camera's lens-shading map (``Camera.shading_map`` is ``(4, 33, 33)``)."""

_UNIFORM_SHADING = tuple(tuple(tuple(1.0 for _ in range(SHADING_POINTS)) for _ in range(SHADING_POINTS)) for _ in range(4))
_SHADING_ORIGIN: tuple[float, float] = (0.0, 0.0)
_SHADING_SPACING: tuple[float, float] = (1.0 / (SHADING_POINTS - 1),) * 2
_NO_VIGNETTE: tuple[float, float, float, float, float] = (0.0,) * 5
_VIGNETTE_CENTER: tuple[float, float] = (0.5, 0.5)
_SHADING_DEFAULTS: dict[str, object] = {
    "shading_map": _UNIFORM_SHADING,
    "shading_origin": _SHADING_ORIGIN,
    "shading_spacing": _SHADING_SPACING,
    "vignette": _NO_VIGNETTE,
    "vignette_center": _VIGNETTE_CENTER,
}

CameraLookup = Callable[[str], "Camera"]
"""Finds a registered camera by name, or raises an :class:`~ispkit.errors.ISPKitError` naming close matches."""

_lookup: CameraLookup | None = None


def use_camera_lookup(lookup: CameraLookup) -> None:
    """Make :meth:`Camera.builtin` (and so :meth:`Camera.get` of a name) find cameras with ``lookup``.

    :mod:`ispkit.registry` installs its own (the registered cameras) when it is imported,
    which ``import ispkit`` does; this module imports nothing of the registry.
    """
    global _lookup
    _lookup = lookup


@dataclass(frozen=True)
class FromCamera:
    """A parameter default read from the camera (``Camera.<field>``)."""

    field: str


@dataclass(frozen=True)
class Camera:
    """A camera's raw-data and colour properties.

    Parameters
    ----------
    name
        Identifier (``"microscopy"``, ``"drone"``, or your own).
    pattern
        Bayer layout: ``RGGB``, ``BGGR``, ``GRBG`` or ``GBRG``.
    bit_depth
        Bits the ADC delivers.
    container_bits
        Bits of the stored numbers; when larger than ``bit_depth`` the values are
        left-justified (multiplied by ``2**(container_bits - bit_depth)``).
    black_level
        Four values, one per 2×2 CFA site in row-major order, normalised.
    white_balance
        R, G, B gains.
    color_matrix
        3×3 matrix, ``out = M · rgb``.
    gain
        Conversion gain in DN/e⁻ at ``bit_depth`` (``None`` when unpublished).
    read_noise
        Read noise in e⁻ (``None`` when unpublished).
    pixel_size
        Size of one raw pixel in the object plane, in µm (sensor pitch over the optical
        magnification), or ``None`` when unknown; viewers use it as the image's physical scale.
    description
        Free text.
    optics
        Free-form optical facts (NA, f-number, PSF, ...) for optics plugins.
    shading_map
        Lens shading (or flat-field) gains ``(4, 33, 33)``: one map per 2×2 CFA site
        in row-major order, sampled at ``shading_origin + i · shading_spacing`` (vertical,
        horizontal) in relative image coordinates, all positive; uniform (ones) by
        default. The ``lens_shading`` stage (method ``gain_map``) multiplies the
        black-subtracted mosaic by it, as the DNG ``GainMap`` opcode does
        (:mod:`ispkit.stages.lens_shading`); :func:`ispkit.flatfield.estimate` makes one
        from flat frames and :meth:`from_dng` reads it from a DNG's OpcodeList2.
    shading_origin
        Relative ``(vertical, horizontal)`` position of the map's first point.
    shading_spacing
        Relative ``(vertical, horizontal)`` spacing of its points (positive).
    vignette
        Radial vignetting correction ``k₀ … k₄`` of the DNG ``FixVignetteRadial``
        opcode: gain ``1 + k₀ r² + k₁ r⁴ + … + k₄ r¹⁰`` (zeros by default: no correction).
    vignette_center
        Its optical centre ``(vertical, horizontal)`` in relative coordinates, each in
        [0, 1] (the DNG opcode stores it the other way round, ``cx, cy``).

    Notes
    -----
    :meth:`to_dict` and :meth:`to_yaml` leave the five shading fields out while they
    are at these neutral defaults.
    """

    name: str
    pattern: str = "RGGB"
    bit_depth: int = 16
    container_bits: int = 16
    black_level: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    white_balance: tuple[float, float, float] = (1.0, 1.0, 1.0)
    color_matrix: tuple[tuple[float, ...], ...] = _IDENTITY
    gain: float | None = None
    read_noise: float | None = None
    pixel_size: float | None = None
    description: str = ""
    optics: Mapping[str, float] = field(default_factory=dict)
    shading_map: tuple[tuple[tuple[float, ...], ...], ...] = _UNIFORM_SHADING
    shading_origin: tuple[float, float] = _SHADING_ORIGIN
    shading_spacing: tuple[float, float] = _SHADING_SPACING
    vignette: tuple[float, float, float, float, float] = _NO_VIGNETTE
    vignette_center: tuple[float, float] = _VIGNETTE_CENTER

    def __post_init__(self) -> None:
        """Check every field (type, shape, finiteness, range) and store it in canonical form.

        Raises :class:`~ispkit.errors.InputError` naming the camera and the field;
        :meth:`from_dict` reports it at the field's line.
        """
        _field(self, "name", check_string, what="a camera name (a non-empty string)")
        _field(self, "pattern", check_pattern)
        for name in ("bit_depth", "container_bits"):
            _field(self, name, check_int)
        if not (1 <= self.bit_depth <= self.container_bits <= 32):
            raise _FieldError(
                self, "bit_depth", f"need 1 <= bit_depth <= container_bits <= 32, got bit_depth={self.bit_depth}, container_bits={self.container_bits}"
            )
        _field(self, "black_level", _vector, n=4)
        if not all(-1.0 < b < 1.0 for b in self.black_level):
            raise _FieldError(self, "black_level", f"need -1 < black level < 1 (the white level is 1 on the normalised scale), got {list(self.black_level)}")
        _field(self, "white_balance", _vector, n=3)
        _field(self, "color_matrix", _matrix)
        for name in ("gain", "read_noise", "pixel_size"):
            if getattr(self, name) is not None:
                _field(self, name, check_number, low=0.0, exclusive_low=True, what="a positive number or null")
        _field(self, "description", _text)
        _field(self, "optics", _optics)
        _field(self, "shading_map", _positive_grid, shape=(4, SHADING_POINTS, SHADING_POINTS))
        _field(self, "shading_origin", _vector, n=2)
        _field(self, "shading_spacing", _vector, n=2)
        if not all(s > 0 for s in self.shading_spacing):
            raise _FieldError(self, "shading_spacing", f"need a positive spacing, got {list(self.shading_spacing)}")
        _field(self, "vignette", _vector, n=5)
        _field(self, "vignette_center", _vector, n=2)
        if not all(0.0 <= c <= 1.0 for c in self.vignette_center):
            raise _FieldError(self, "vignette_center", f"need relative coordinates in [0, 1], got {list(self.vignette_center)}")

    def __reduce__(self) -> tuple[type[Camera], tuple[Any, ...]]:
        # The read-only optics view cannot be pickled; rebuild from a plain dict (DataLoader workers, process pools).
        return (type(self), tuple(dict(self.optics) if f == "optics" else getattr(self, f) for f in self.__dataclass_fields__))

    def __hash__(self) -> int:
        return hash(tuple(getattr(self, f) if f != "optics" else tuple(sorted(self.optics.items())) for f in self.__dataclass_fields__))

    @property
    def white_level(self) -> int:
        """Largest stored number, ``2**container_bits - 1``; raw data are divided by it."""
        return int(2**self.container_bits) - 1

    @property
    def justification(self) -> int:
        """Factor ``2**(container_bits - bit_depth)`` of the left-justification."""
        return int(2 ** (self.container_bits - self.bit_depth))

    @property
    def stored_gain(self) -> float | None:
        """Conversion gain on the stored numbers in DN/e⁻ (drone: 16 × 0.528 = 8.448)."""
        return None if self.gain is None else self.gain * self.justification

    def to_sensor(self, rgb: np.ndarray) -> np.ndarray:
        """The sensor response ``(3, H, W)`` that this camera's processing maps to linear ``rgb``.

        Inverts white balance and colour matrix, ``(M · diag(wb))⁻¹ · rgb`` per pixel, so
        that a scene designed in display colours is recorded with this camera's own
        channel sensitivities. Values may leave [0, 1] where a colour is outside what the
        sensor can record; clip before exposing.
        """
        forward = np.asarray(self.color_matrix) @ np.diag(self.white_balance)
        inverse = np.linalg.inv(forward)
        sensor: np.ndarray = (inverse @ np.asarray(rgb, dtype=float).reshape(3, -1)).reshape(np.shape(rgb))
        return sensor

    def resolve(self, default: Any) -> Any:
        """Return ``default``, reading it from this camera when it is a :class:`FromCamera`."""
        if isinstance(default, FromCamera):
            return getattr(self, default.field)
        return default

    # -- construction -------------------------------------------------------------------

    @classmethod
    def identity(cls, pattern: str = "RGGB") -> Camera:
        """A neutral camera: no black level, unit gains, identity colour matrix."""
        return cls(name="identity", pattern=pattern, description="neutral: black level 0, white balance 1, M = I")

    def differences(self, other: Camera) -> list[str]:
        """The fields in which this camera and ``other`` differ, each as ``"name (mine vs other's)"``
        (an empty list for equal cameras), for messages about files that should share one camera.

        >>> Camera.identity().differences(Camera.identity("GRBG"))
        ["pattern ('RGGB' vs 'GRBG')"]
        """
        return [
            f"{name} ({getattr(self, name)!r} vs {getattr(other, name)!r})" for name in self.__dataclass_fields__ if getattr(self, name) != getattr(other, name)
        ]

    @classmethod
    def builtin(cls, name: str) -> Camera:
        """A camera registered through the plugin registry (``microscopy``, ``drone``, ...).

        Found by the lookup :mod:`ispkit.registry` installs (:func:`use_camera_lookup`); an
        unknown name is an :class:`~ispkit.errors.UnknownStageError` naming close matches.
        """
        if _lookup is None:
            raise InputError(f"cannot look up camera {name!r}: no camera lookup is installed (importing ispkit.registry installs it)")
        return _lookup(name)

    @classmethod
    def get(cls, camera: Camera | str | Mapping[str, Any]) -> Camera:
        """Accept a :class:`Camera`, a registered name, a YAML path or a mapping."""
        if isinstance(camera, Camera):
            return camera
        if isinstance(camera, Mapping):
            return cls.from_dict(camera)
        if isinstance(camera, (str, os.PathLike)) and str(camera).endswith((".yaml", ".yml")):
            return cls.from_yaml(camera)
        if isinstance(camera, str):
            return cls.builtin(camera)
        raise InputError(f"expected a Camera, a camera name, a YAML path or a mapping, got {type(camera).__name__}")

    @classmethod
    def from_dng(cls, path: str | os.PathLike[str]) -> Camera:
        """The camera a DNG file describes, from its tags alone (no pixel is decoded).

        Levels and CFA layout as :func:`ispkit.io.read_raw` reads them; white balance and
        colour matrix from the DNG colour model (:mod:`ispkit.dng_color`: ColorMatrix /
        ForwardMatrix interpolated at the as-shot white, camera → linear sRGB); gain and
        read noise from NoiseProfile; lens shading from the GainMap and
        FixVignetteRadial opcodes. What was read, derived, approximated or skipped is
        listed in ``description``. See :func:`ispkit.io.dng.dng_camera`.

        Raises :class:`FileNotFoundError` for a missing file and
        :class:`~ispkit.errors.RawFormatError` for anything that is not a Bayer or linear DNG.
        """
        from .io.dng import camera_from_dng  # the I/O layer builds on this one (tests/test_architecture.py ALLOWED)

        return camera_from_dng(path)

    @classmethod
    def from_yaml(cls, path_or_text: str | os.PathLike[str]) -> Camera:
        """Load a camera from a YAML file or text (keys as the constructor's parameters)."""
        data, locator = load_yaml(path_or_text)
        return cls.from_dict(data, locator=locator)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, locator: Locator | None = None, path: KeyPath = ()) -> Camera:
        """Build a camera from a mapping, reporting unknown keys and bad values with their position."""
        locator = locator or Locator("<dict>")
        if not isinstance(data, Mapping):
            locator.error(path, f"a camera must be a mapping, got {type(data).__name__}")
        locator.check_keys(data, cls.__dataclass_fields__, path, "unknown camera field")
        if "name" not in data:
            locator.error(path, "a camera needs a 'name'")
        try:
            return cls(**data)
        except _FieldError as exc:
            locator.error((*path, exc.field), exc.problem)
        except (InputError, TypeError) as exc:
            locator.error(path, str(exc))

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (lists, floats) that :meth:`from_dict` reads back; shading fields only where not neutral."""
        neutral = [name for name, value in _SHADING_DEFAULTS.items() if getattr(self, name) == value]
        out = {name: getattr(self, name) for name in self.__dataclass_fields__ if name not in neutral}
        out["optics"] = dict(self.optics)
        for name, value in out.items():
            if isinstance(value, tuple):
                out[name] = _plain(value)
        return out

    def to_yaml(self) -> str:
        """YAML text that :meth:`from_yaml` reads back to an equal camera."""
        text: str = yaml.safe_dump(self.to_dict(), sort_keys=False)
        return text


def _plain(value: Any) -> Any:
    """Nested tuples as nested lists (for YAML)."""
    return [_plain(v) for v in value] if isinstance(value, tuple) else value


class _FieldError(InputError):
    """An invalid camera field: ``field`` names it and ``problem`` says what is wrong with it."""

    def __init__(self, camera: Camera, field: str, problem: str) -> None:
        super().__init__(f"camera {camera.name!r} {field}: {problem}")
        self.field = field
        self.problem = problem


def _field(camera: Camera, name: str, validate: Any, **options: Any) -> None:
    """Store ``validate(camera.<name>, **options)`` as the field, or raise :class:`_FieldError` for it."""
    try:
        object.__setattr__(camera, name, validate(getattr(camera, name), **options))
    except (ConfigError, InputError) as exc:
        raise _FieldError(camera, name, getattr(exc, "message", str(exc))) from None


def _numbers(values: Any, shape: tuple[int, ...]) -> np.ndarray:
    try:
        array = None if holds_text_or_bool(values) else np.asarray(values, dtype=float)
    except (TypeError, ValueError, OverflowError):
        array = None
    if array is None or array.shape != shape or not np.all(np.isfinite(array)):
        expected = f"{shape[0]}" if len(shape) == 1 else "×".join(map(str, shape))
        raise ConfigError(f"expected {expected} finite numbers, got {values!r}")
    return array


def _vector(values: Any, n: int) -> tuple[float, ...]:
    return tuple(float(v) for v in _numbers(values, (n,)))


def _matrix(values: Any) -> tuple[tuple[float, ...], ...]:
    return tuple(tuple(float(v) for v in row) for row in _numbers(values, (3, 3)))


def _positive_grid(values: Any, shape: tuple[int, ...]) -> tuple[Any, ...]:
    """A nested tuple of the finite, positive numbers ``values`` of exactly ``shape``."""
    try:
        array = None if holds_text_or_bool(values) else np.asarray(values, dtype=float)
    except (TypeError, ValueError, OverflowError):
        array = None
    expected = "×".join(map(str, shape))
    if array is None or array.shape != shape:
        found = f"{type(values).__name__}" if array is None else f"shape {array.shape}"
        raise ConfigError(f"expected {expected} numbers, got {found}")
    if not np.all(np.isfinite(array)):
        raise ConfigError(f"expected {expected} finite numbers, got {int(np.sum(~np.isfinite(array)))} that are not")
    if np.any(array <= 0):
        raise ConfigError(f"expected positive gains, got {int(np.sum(array <= 0))} value(s) <= 0 (smallest {array.min()!r})")
    return _plain_tuple(array)


def _plain_tuple(array: np.ndarray) -> tuple[Any, ...]:
    return tuple(_plain_tuple(a) for a in array) if array.ndim > 1 else tuple(float(v) for v in array)


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"expected text, got {value!r}")
    return value


def _optics(value: Any) -> MappingProxyType[str, float]:
    """Optical facts: a read-only mapping of names to finite numbers."""
    if not isinstance(value, Mapping):
        raise ConfigError(f"expected a mapping of names to numbers, got {value!r}")
    for key, number in value.items():
        if not isinstance(key, str):
            raise ConfigError(f"expected names (strings) as keys, got {key!r}")
        check_number(number, what=f"a finite number for {key!r}")
    return MappingProxyType(dict(value))
