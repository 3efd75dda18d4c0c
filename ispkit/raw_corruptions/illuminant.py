"""Illuminant change (``illuminant``): the scene lit by a blackbody of another colour temperature, in the camera's colour model.

The camera's white balance and colour matrix map its reference white to neutral: linear
sRGB ``(1, 1, 1)``, the sRGB white D65, whose correlated colour temperature (Robertson,
:func:`ispkit.dng_color.correlated_color_temperature`) is :data:`REFERENCE_K` = 6504 K. The
pipeline keeps that white balance while the light changes from a blackbody at
``T₀ = reference_k`` to one at ``T = T₀ + delta_k``. A grey surface then records, per
camera channel ``c``, the response to the new white over the response to the old
(von Kries in the camera's own channels, the DNG model of a camera neutral):

.. math::

    r(T) = (M \\operatorname{diag}(wb))^{-1}\\, M_{sRGB \\leftarrow XYZ}\\, XYZ(T), \\qquad
    g_c = r_c(T) / r_c(T_0)

with ``XYZ(T)`` the Planckian locus (Kang et al. 2002, :func:`planckian_xy`) at luminance
``Y = 1`` (the illuminance is kept) and ``M``, ``wb`` the camera's colour matrix and white
balance (``wb`` cancels in the ratio). Each CFA site's signal above black is multiplied
by the gain of its colour and clipped at saturation. A channel whose response ``r_c`` is
not positive at ``T`` or ``T₀`` has no such model (the published microscopy matrix below
about 3450 K, severities 4 and 5): that is an error. For a camera whose channels are narrow-band filters
(Raw-Microscopy: three exposures through 620/525/450 nm filters), pass
``wavelengths_nm``: the gains are then Planck's law at those wavelengths,
``g_c = B(λ_c, T) / B(λ_c, T₀)``, normalised to green's.

A warmer light (``delta_k < 0``) raises red and lowers blue. The severities are shifts
from 6504 K to about 5500, 4500, 3500, 3000 and 2500 K (daylight to tungsten). Both
backends; the gains are computed once, in torch float64, and the torch backend is
differentiable in ``raw``, ``delta_k`` and ``reference_k``. Approximations: a camera is
assumed to follow its 3×3 colour model (the Luther condition); colours other than grey
shift as the camera's channels do, not as their spectra would.

References
----------
B. Kang, O. Moon, C. Hong, H. Lee, B. Cho, Y. Kim, "Design of advanced color temperature
control system for HDTV applications", J. Korean Physical Society 41 (2002) 865–871.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..camera import Camera
from ..cfa import site_channels
from ..dng_color import D65_XY, SRGB_FROM_XYZ, correlated_color_temperature
from ..errors import InputError
from .base import Quantity, RawCorruption, Sensor

__all__ = ["ILLUMINANT", "PLANCK_RANGE_K", "REFERENCE_K", "illuminant", "illuminant_gains", "illuminant_numpy", "planckian_xy"]

REFERENCE_K = float(round(correlated_color_temperature(D65_XY)))
"""6504 K: the correlated colour temperature of D65, the white a camera's colour model maps to neutral."""

PLANCK_RANGE_K = (1667.0, 25000.0)
"""Colour temperatures the Planckian-locus approximation of Kang et al. (2002) covers."""

_C2 = 1.4387769e-2
"""Second radiation constant h c / k in m·K (CODATA 2018)."""


def planckian_xy(temperature_k: torch.Tensor) -> torch.Tensor:
    """CIE 1931 ``(x, y)`` of a blackbody at ``temperature_k`` (1667–25000 K), Kang et al. (2002); differentiable.

    The cubic approximation stays within 6e-4 of the blackbody's chromaticity computed
    from Planck's law and the CIE 1931 colour-matching functions.

    >>> planckian_xy(torch.tensor(2856.0, dtype=torch.float64)).round(decimals=4).tolist()   # the blackbody's: 0.4475, 0.4074
    [0.4471, 0.4075]
    """
    t = temperature_k
    x = torch.where(
        t <= 4000.0,
        -0.2661239e9 / t**3 - 0.2343589e6 / t**2 + 0.8776956e3 / t + 0.179910,
        -3.0258469e9 / t**3 + 2.1070379e6 / t**2 + 0.2226347e3 / t + 0.240390,
    )
    y = torch.where(
        t <= 2222.0,
        -1.1063814 * x**3 - 1.34811020 * x**2 + 2.18555832 * x - 0.20219683,
        torch.where(
            t <= 4000.0,
            -0.9549476 * x**3 - 1.37418593 * x**2 + 2.09137015 * x - 0.16748867,
            3.0817580 * x**3 - 5.87338670 * x**2 + 3.75112997 * x - 0.37001483,
        ),
    )
    return torch.stack((x, y))


def _matrix_response(camera: Camera, temperature_k: torch.Tensor) -> torch.Tensor:
    """Camera RGB ``(M diag(wb))⁻¹ M_sRGB←XYZ XYZ(T)`` of the blackbody's white at ``Y = 1``."""
    x, y = planckian_xy(temperature_k)
    xyz = torch.stack((x / y, torch.ones_like(x), (1.0 - x - y) / y))
    forward = torch.tensor(camera.color_matrix, dtype=torch.float64) @ torch.diag(torch.tensor(camera.white_balance, dtype=torch.float64))
    return torch.linalg.inv(forward) @ torch.as_tensor(SRGB_FROM_XYZ) @ xyz


def _planck_response(wavelengths_nm: tuple[float, float, float], temperature_k: torch.Tensor) -> torch.Tensor:
    """Planck's spectral radiance at the three wavelengths, up to a constant factor, normalised to green's."""
    lam = torch.tensor(wavelengths_nm, dtype=torch.float64) * 1e-9
    radiance = lam**-5 / torch.expm1(_C2 / (lam * temperature_k))
    return radiance / radiance[1]


def illuminant_gains(camera: Camera, delta_k: Any, reference_k: Any = REFERENCE_K, wavelengths_nm: tuple[float, float, float] | None = None) -> torch.Tensor:
    """R, G, B gains ``(3,)`` (float64) of a change of the light from ``reference_k`` to ``reference_k + delta_k`` (module docstring).

    Raises :class:`~ispkit.errors.InputError` when a temperature is outside
    :data:`PLANCK_RANGE_K` or the camera's colour model gives a channel no positive response.

    >>> from ispkit.camera import Camera
    >>> illuminant_gains(Camera.get("drone"), 0.0).tolist()
    [1.0, 1.0, 1.0]
    >>> [round(g, 3) for g in illuminant_gains(Camera.get("drone"), -3000.0).tolist()]   # 3504 K: warmer
    [1.245, 0.843, 0.518]
    """
    reference = torch.as_tensor(reference_k, dtype=torch.float64).to("cpu")  # the colour model is evaluated on the CPU (gradients kept)
    target = reference + torch.as_tensor(delta_k, dtype=torch.float64).to("cpu")
    low, high = PLANCK_RANGE_K
    for name, t in (("reference_k", reference), ("reference_k + delta_k", target)):
        if not low <= float(t.detach()) <= high:
            raise InputError(f"illuminant: {name} = {float(t):g} K is outside the Planckian locus model's {low:g}..{high:g} K")
    if wavelengths_nm is not None:
        return _planck_response(wavelengths_nm, target) / _planck_response(wavelengths_nm, reference)
    before, after = _matrix_response(camera, reference), _matrix_response(camera, target)
    if bool((before <= 0).any() or (after <= 0).any()):
        raise InputError(
            f"illuminant: the colour model of camera {camera.name!r} gives the channel responses {after.detach().numpy().round(4).tolist()} at "
            f"{float(target):g} K and {before.detach().numpy().round(4).tolist()} at {float(reference):g} K; a channel without a positive response "
            "has no gain: choose a smaller shift, or pass the filter wavelengths (wavelengths_nm=...) of a narrow-band camera"
        )
    return after / before


def _site_gains(gains: torch.Tensor, camera: Camera) -> list[torch.Tensor]:
    return [gains[c] for c in site_channels(camera.pattern)]


def illuminant_numpy(
    raw: np.ndarray, camera: Camera, rng: np.random.Generator, *, delta_k: float, reference_k: float, wavelengths_nm: tuple[float, float, float] | None
) -> np.ndarray:
    """Each CFA site's signal above black times its colour's gain (:func:`illuminant_gains`), batch ``(N, H, W)``, clipped."""
    sensor = Sensor.of(camera)
    gains = np.array([float(g) for g in _site_gains(illuminant_gains(camera, delta_k, reference_k, wavelengths_nm), camera)])
    site_gain = np.tile(gains.reshape(2, 2), (raw.shape[-2] // 2, raw.shape[-1] // 2))
    black = sensor.black_level_numpy(raw.shape)
    return sensor.clip_numpy(black + (raw - black) * site_gain)


def illuminant(raw: torch.Tensor, camera: Camera, generator: torch.Generator, *, delta_k: Any, reference_k: Any, wavelengths_nm: Any) -> torch.Tensor:
    """Torch twin of :func:`illuminant_numpy`; differentiable in ``raw``, ``delta_k`` and ``reference_k``."""
    sensor = Sensor.of(camera)
    wavelengths = None
    if wavelengths_nm is not None:
        red, green, blue = (float(v) for v in torch.as_tensor(wavelengths_nm).tolist())
        wavelengths = (red, green, blue)
    gains = illuminant_gains(camera, delta_k, reference_k, wavelengths).to(device=raw.device, dtype=raw.dtype)
    h, w = raw.shape[-2:]
    site_gain = torch.stack(_site_gains(gains, camera)).reshape(2, 2).repeat(h // 2, w // 2)
    black = sensor.black_level_torch(raw)
    return sensor.clip_torch(black + (raw - black) * site_gain)


ILLUMINANT = RawCorruption(
    name="illuminant",
    family="colour",
    summary="another light: blackbody colour-temperature shift as per-channel gains through the camera's colour model",
    quantities=(
        Quantity("delta_k", "K", "change of the light's colour temperature (negative: warmer, towards tungsten)", low=-23333.0, high=23333.0),
        Quantity("reference_k", "K", "colour temperature of the light the camera is balanced for (D65's)", low=PLANCK_RANGE_K[0], high=PLANCK_RANGE_K[1]),
        Quantity(
            "wavelengths_nm",
            "nm",
            "R, G, B filter wavelengths of a narrow-band camera; matrix: use the colour matrix instead",
            200.0,
            2000.0,
            size=3,
            none_means="matrix",
        ),
    ),
    levels=tuple({"delta_k": d, "reference_k": REFERENCE_K, "wavelengths_nm": None} for d in (-1000.0, -2000.0, -3000.0, -3500.0, -4000.0)),
    torch=illuminant,
    numpy=illuminant_numpy,
    differentiable=("delta_k", "reference_k"),
)
