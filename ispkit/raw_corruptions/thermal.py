"""Sensor temperature (``dark_current``): thermally generated electrons that the black level does not remove.

The dark current of a silicon sensor doubles every ``T_d`` ≈ 6–7 °C (Janesick, *Scientific
Charge-Coupled Devices*, SPIE 2001, ch. 7; EMVA 1288 measures it by this doubling
temperature). At temperature ``T`` a pixel collects during an exposure of ``t`` seconds

.. math::

    \\mu_d = D_{ref} \\, 2^{(T - T_{ref}) / T_d} \\, t \\quad\\text{electrons}, \\qquad
    m \\sim \\operatorname{Poisson}(\\mu_d), \\qquad \\mathrm{DN}' = \\mathrm{DN} + g\\, m

re-quantised at the camera's bit depth and clipped at D_max. The black level the ISP
subtracts does not contain ``μ_d``: the image gains an offset of ``g μ_d`` DN (lifted
blacks, less contrast) and a variance of ``g² μ_d`` DN² (dark shot noise). Defaults:
``D_ref`` = 10 e⁻/s at ``T_ref`` = 25 °C (an uncooled CMOS sensor), ``T_d`` = 6.3 °C, a
1 s exposure; the severities are sensor temperatures of 35 … 75 °C, i.e. 30, 90, 271, 815 and 2450 e⁻ of
dark signal per pixel. Torch only (random per pixel); differentiable in ``raw``,
``temperature_c``, ``exposure_s`` and ``dark_current_e_per_s``. Needs the camera's gain.
"""

from __future__ import annotations

from typing import Any

import torch

from ..camera import Camera
from .base import Quantity, RawCorruption, Sensor, draw, pathwise, tensor_like

__all__ = ["DARK_CURRENT", "dark_current", "dark_electrons"]


def dark_electrons(temperature_c: Any, reference_c: Any, dark_current_e_per_s: Any, doubling_c: Any, exposure_s: Any) -> Any:
    """Mean dark signal ``μ_d = D_ref · 2^((T − T_ref) / T_d) · t`` in electrons (numbers or tensors alike).

    >>> round(dark_electrons(31.3, 25.0, 10.0, 6.3, 1.0), 9)        # one doubling
    20.0
    """
    return dark_current_e_per_s * 2.0 ** ((temperature_c - reference_c) / doubling_c) * exposure_s


def dark_current(
    raw: torch.Tensor,
    camera: Camera,
    generator: torch.Generator,
    *,
    temperature_c: Any,
    reference_c: Any,
    dark_current_e_per_s: Any,
    doubling_c: Any,
    exposure_s: Any,
) -> torch.Tensor:
    """Add Poisson dark electrons of mean :func:`dark_electrons` through the gain and re-quantise (module docstring)."""
    sensor = Sensor.of(camera)
    values = (temperature_c, reference_c, dark_current_e_per_s, doubling_c, exposure_s)
    mean = dark_electrons(*(tensor_like(v, raw) for v in values)).expand_as(raw)
    electrons = pathwise(draw(torch.poisson, generator, mean, like=raw), mean, mean)
    return sensor.digitise_torch(raw * sensor.white + sensor.gain * electrons)


DARK_CURRENT = RawCorruption(
    name="dark_current",
    family="sensor",
    summary="a hotter sensor: dark current doubling every 6.3 °C, its mean and Poisson noise added through the gain",
    quantities=(
        Quantity("temperature_c", "°C", "sensor temperature", low=-100.0, high=150.0),
        Quantity("reference_c", "°C", "temperature at which the dark current is dark_current_e_per_s", low=-100.0, high=150.0),
        Quantity("dark_current_e_per_s", "e⁻/s", "dark current per pixel at reference_c", low=0.0, high=1e6),
        Quantity("doubling_c", "°C", "temperature rise that doubles the dark current", low=1.0, high=50.0),
        Quantity("exposure_s", "s", "exposure time", low=0.0, high=1e4),
    ),
    levels=tuple(
        {"temperature_c": t, "reference_c": 25.0, "dark_current_e_per_s": 10.0, "doubling_c": 6.3, "exposure_s": 1.0} for t in (35.0, 45.0, 55.0, 65.0, 75.0)
    ),
    torch=dark_current,
    needs=("gain",),
    random=True,
    differentiable=("temperature_c", "exposure_s", "dark_current_e_per_s"),
)
