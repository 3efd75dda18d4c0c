"""Shading: natural vignetting (``vignetting``, cos⁴ of the field angle) and colour lens shading (``lens_shading``, a gain map).

Both multiply the signal above black, per pixel, by a relative illumination ≤ 1; the black
level stays. Both backends; the torch ones are differentiable in ``raw`` and the strength.

``vignetting``
    The cos⁴ law of a thin lens: a pixel seen under the field angle ``θ`` receives
    ``cos⁴ θ`` of the irradiance at the optical axis (the image centre). With focal
    length ``f`` and the pixel at distance ``r`` from the centre on the sensor,
    ``tan θ = r / f``; the corruption is calibrated by the field angle ``θ_c`` of the
    corner pixels' centres, ``tan θ = tan θ_c · r / r_c`` with ``r_c`` their distance,
    so the corners keep exactly ``cos⁴ θ_c``. For a lens of focal length ``f`` on a
    sensor whose pixels' half-diagonal is ``d``, ``θ_c = atan(d / f)``
    (:func:`corner_field_angle`; the drone's 10.3 mm lens on its full 5472 × 3648
    sensor of 2.4 µm pixels: 37.5°).
``lens_shading``
    A measured-style shading map: 33 × 33 points per 2×2 CFA site, interpolated
    bilinearly between them exactly as the ``lens_shading`` stage applies a DNG GainMap
    (:func:`ispkit.stages.lens_shading.gain_map_numpy`). The map is a smooth radial fall-off
    about an optical centre off the image centre, :data:`SHADING_CENTRE`, of the shape
    measured on real modules, ``g(ρ) = 1 − (1 − c)(0.6 ρ² + 0.4 ρ⁴)`` with ``ρ`` the distance
    from the centre over that of the farthest image corner, so that green keeps ``c`` there;
    red and blue fall off as ``g^1.25`` and ``g^0.8`` (:data:`SHADING_EXPONENTS`: colour
    shading, the red end of the spectrum losing most at oblique incidence through the
    infrared-cut filter).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from ..camera import SHADING_POINTS, Camera
from ..cfa import site_channels
from ..stages.lens_shading import gain_map, gain_map_numpy
from .base import Quantity, RawCorruption, Sensor, tensor_like

__all__ = [
    "LENS_SHADING",
    "SHADING_CENTRE",
    "SHADING_EXPONENTS",
    "VIGNETTING",
    "corner_field_angle",
    "cos4",
    "lens_shading",
    "lens_shading_numpy",
    "relative_illumination",
    "vignetting",
    "vignetting_numpy",
]

SHADING_CENTRE = (0.53, 0.47)
"""Optical centre of ``lens_shading``'s map, relative ``(vertical, horizontal)`` (a module's lens is rarely centred)."""

SHADING_EXPONENTS = (1.25, 1.0, 0.8)
"""Fall-off of R, G and B as powers of green's relative illumination."""

_SPACING = 1.0 / (SHADING_POINTS - 1)


def corner_field_angle(focal_length_mm: float, width_px: int, height_px: int, pixel_pitch_um: float) -> float:
    """The field angle in degrees of the corner pixels' centres of a ``width_px`` × ``height_px`` sensor behind a lens of ``focal_length_mm``.

    >>> round(corner_field_angle(10.3, 5472, 3648, 2.4), 1)      # the drone's camera
    37.5
    """
    half_diagonal_mm = math.hypot(width_px - 1, height_px - 1) / 2 * pixel_pitch_um * 1e-3
    return math.degrees(math.atan(half_diagonal_mm / focal_length_mm))


def cos4(rho2: Any, tan_corner: Any) -> Any:
    """``cos⁴ θ`` with ``tan² θ = tan_corner² · rho2`` (arrays or tensors alike)."""
    return (1.0 + tan_corner**2 * rho2) ** -2


def _rho2(h: int, w: int) -> np.ndarray:
    """Squared distance of each pixel centre from the image centre over that of the corner pixels' centres."""
    rows = np.arange(h) + 0.5 - h / 2
    cols = np.arange(w) + 0.5 - w / 2
    return (rows[:, None] ** 2 + cols[None, :] ** 2) / (((h - 1) / 2) ** 2 + ((w - 1) / 2) ** 2)


def vignetting_numpy(raw: np.ndarray, camera: Camera, rng: np.random.Generator, *, field_angle_deg: float) -> np.ndarray:
    """``B + (x − B) · cos⁴ θ`` over the batch ``(N, H, W)`` (normalised units), clipped to the sensor's range."""
    sensor = Sensor.of(camera)
    black = sensor.black_level_numpy(raw.shape)
    gain = cos4(_rho2(*raw.shape[-2:]), math.tan(math.radians(field_angle_deg)))
    return sensor.clip_numpy(black + (raw - black) * gain)


def vignetting(raw: torch.Tensor, camera: Camera, generator: torch.Generator, *, field_angle_deg: Any) -> torch.Tensor:
    """Torch twin of :func:`vignetting_numpy`; differentiable in ``raw`` and ``field_angle_deg``."""
    sensor = Sensor.of(camera)
    black = sensor.black_level_torch(raw)
    angle = tensor_like(field_angle_deg, raw)
    rho2 = tensor_like(_rho2(*raw.shape[-2:]), raw)
    return sensor.clip_torch(black + (raw - black) * cos4(rho2, torch.tan(torch.deg2rad(angle))))


def relative_illumination(rho2: Any, corner_gain: Any, exponent: float) -> Any:
    """``(1 − (1 − c)(0.6 ρ² + 0.4 ρ⁴))^exponent`` (arrays or tensors alike)."""
    return (1.0 - (1.0 - corner_gain) * (0.6 * rho2 + 0.4 * rho2**2)) ** exponent


def _map_rho2(h: int, w: int) -> np.ndarray:
    """ρ² at the map's points (relative positions ``i · spacing``) for an ``h`` × ``w`` image."""
    cv, ch = SHADING_CENTRE
    v = np.arange(SHADING_POINTS) * _SPACING
    far = max(((a - cv) * h) ** 2 + ((b - ch) * w) ** 2 for a in (0.0, 1.0) for b in (0.0, 1.0))
    return (((v[:, None] - cv) * h) ** 2 + ((v[None, :] - ch) * w) ** 2) / far


def _exponents(camera: Camera) -> list[float]:
    return [SHADING_EXPONENTS[c] for c in site_channels(camera.pattern)]


def lens_shading_numpy(raw: np.ndarray, camera: Camera, rng: np.random.Generator, *, corner_gain: float) -> np.ndarray:
    """The batch ``(N, H, W)`` shaded by the map (module docstring), through :func:`~ispkit.stages.lens_shading.gain_map_numpy`."""
    rho2 = _map_rho2(*raw.shape[-2:])
    gains = np.stack([relative_illumination(rho2, corner_gain, e) for e in _exponents(camera)])
    sensor = Sensor.of(camera)
    black = sensor.black_level_numpy(raw.shape)
    origin, spacing = np.zeros(2), np.full(2, _SPACING)
    return sensor.clip_numpy(np.stack([black + gain_map_numpy(image - black, gains, origin, spacing) for image in raw]))


def lens_shading(raw: torch.Tensor, camera: Camera, generator: torch.Generator, *, corner_gain: Any) -> torch.Tensor:
    """Torch twin of :func:`lens_shading_numpy` (through :func:`~ispkit.stages.lens_shading.gain_map`); differentiable in ``raw`` and ``corner_gain``."""
    sensor = Sensor.of(camera)
    rho2 = tensor_like(_map_rho2(*raw.shape[-2:]), raw)
    corner = tensor_like(corner_gain, raw)
    gains = torch.stack([relative_illumination(rho2, corner, e) for e in _exponents(camera)])
    black = sensor.black_level_torch(raw)
    origin, spacing = tensor_like([0.0, 0.0], raw), tensor_like([_SPACING, _SPACING], raw)
    return sensor.clip_torch(black + gain_map(raw - black, gains, origin, spacing))


VIGNETTING = RawCorruption(
    name="vignetting",
    family="optics",
    summary="natural vignetting: the signal falls off as cos⁴ of the field angle, calibrated at the corners",
    quantities=(Quantity("field_angle_deg", "°", "field angle of the corner pixels (tan θ = half-diagonal / focal length)", low=0.0, high=89.0),),
    levels=tuple({"field_angle_deg": a} for a in (10.0, 20.0, 30.0, 40.0, 50.0)),
    torch=vignetting,
    numpy=vignetting_numpy,
    differentiable=("field_angle_deg",),
)

LENS_SHADING = RawCorruption(
    name="lens_shading",
    family="optics",
    summary="colour lens shading: an off-centre 33×33 gain map per CFA site, red falling off most (lens_shading stage's interpolation)",
    quantities=(Quantity("corner_gain", "×", "relative illumination of green at the farthest image corner", low=0.01, high=1.0),),
    levels=tuple({"corner_gain": c} for c in (0.9, 0.8, 0.65, 0.5, 0.35)),
    torch=lens_shading,
    numpy=lens_shading_numpy,
    differentiable=("corner_gain",),
)
