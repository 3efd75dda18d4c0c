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
from .config import Locator, check_int, check_number, check_string, holds_text_or_bool, load_yaml
from .errors import ConfigError, InputError

__all__ = ["Camera", "CameraLookup", "FromCamera", "use_camera_lookup"]

_IDENTITY = ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0))

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
            raise _FieldError(
                self, "black_level", f"need -1 < black level < 1 (the white level is 1 on the normalised scale), got {list(self.black_level)}"
            )
        _field(self, "white_balance", _vector, n=3)
        _field(self, "color_matrix", _matrix)
        for name in ("gain", "read_noise", "pixel_size"):
            if getattr(self, name) is not None:
                _field(self, name, check_number, low=0.0, exclusive_low=True, what="a positive number or null")
        _field(self, "description", _text)
        _field(self, "optics", _optics)

    def __reduce__(self) -> tuple:
        # The read-only optics view cannot be pickled; rebuild from a plain dict (DataLoader workers, process pools).
        return (type(self), tuple(dict(self.optics) if f == "optics" else getattr(self, f) for f in self.__dataclass_fields__))

    def __hash__(self) -> int:
        return hash(tuple(getattr(self, f) if f != "optics" else tuple(sorted(self.optics.items())) for f in self.__dataclass_fields__))

    @property
    def white_level(self) -> int:
        """Largest stored number, ``2**container_bits - 1``; raw data are divided by it."""
        return 2**self.container_bits - 1

    @property
    def justification(self) -> int:
        """Factor ``2**(container_bits - bit_depth)`` of the left-justification."""
        return 2 ** (self.container_bits - self.bit_depth)

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
        return (inverse @ np.asarray(rgb, dtype=float).reshape(3, -1)).reshape(np.shape(rgb))

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
    def from_yaml(cls, path_or_text: str | os.PathLike[str]) -> Camera:
        """Load a camera from a YAML file or text (keys as the constructor's parameters)."""
        data, locator = load_yaml(path_or_text)
        return cls.from_dict(data, locator=locator)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, locator: Locator | None = None, path: tuple = ()) -> Camera:
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
        """Plain-data form (lists, floats) that :meth:`from_dict` reads back."""
        out = {name: getattr(self, name) for name in self.__dataclass_fields__}
        out["optics"] = dict(self.optics)
        out["black_level"] = list(self.black_level)
        out["white_balance"] = list(self.white_balance)
        out["color_matrix"] = [list(row) for row in self.color_matrix]
        return out

    def to_yaml(self) -> str:
        """YAML text that :meth:`from_yaml` reads back to an equal camera."""
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


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


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"expected text, got {value!r}")
    return value


def _optics(value: Any) -> MappingProxyType:
    """Optical facts: a read-only mapping of names to finite numbers."""
    if not isinstance(value, Mapping):
        raise ConfigError(f"expected a mapping of names to numbers, got {value!r}")
    for key, number in value.items():
        if not isinstance(key, str):
            raise ConfigError(f"expected names (strings) as keys, got {key!r}")
        check_number(number, what=f"a finite number for {key!r}")
    return MappingProxyType(dict(value))
