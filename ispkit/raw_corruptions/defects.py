"""Sensor defects: stuck pixels (``defective_pixels``) and fixed-pattern row/column noise and banding (``fixed_pattern_noise``).

``defective_pixels``
    Each pixel is defective independently with probability ``density`` (so a mosaic of
    ``P`` pixels has ``Binomial(P, density)`` of them); a defective pixel is hot (stuck at
    the largest stored number, D_max) with probability ``hot_fraction``, else dead (stuck
    at the black level: no signal). Densities 10⁻⁴ … 10⁻² span a good sensor to a
    radiation-damaged one.
``fixed_pattern_noise``
    Offsets added to the readout, in electrons through the camera's gain and re-quantised:
    one per row, ``N(0, σ_row²)``, and one per column, ``N(0, σ_col²)`` (the row and column
    amplifiers' offsets of a CMOS sensor), and horizontal banding
    ``A sin(2π (row + ½) / P + φ)`` with a phase ``φ`` uniform in [0, 2π) (interference on
    the readout). The pattern is fixed for one sensor: give a whole data set one seed to
    give it one sensor's pattern; each image of a batch gets its own draw. Needs the
    camera's gain.

Both are torch only (their models are random per pixel, with no static reference to
compare with); ``fixed_pattern_noise`` is differentiable in ``raw`` and its three amplitudes.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from ..camera import Camera
from .base import Quantity, RawCorruption, Sensor, normal, tensor_like, uniform

__all__ = ["DEFECTIVE_PIXELS", "FIXED_PATTERN_NOISE", "defective_pixels", "fixed_pattern_noise"]


def defective_pixels(raw: torch.Tensor, camera: Camera, generator: torch.Generator, *, density: Any, hot_fraction: Any) -> torch.Tensor:
    """Stuck pixels: ``density`` of them, ``hot_fraction`` of those at D_max and the rest at black (module docstring)."""
    sensor = Sensor.of(camera)
    n, h, w = raw.shape
    u = uniform(generator, (n, 2, h, w), torch.empty((), dtype=torch.float64)).to(raw.device)  # image by image: defect, then kind
    defective = u[:, 0] < float(density)
    hot = u[:, 1] < float(hot_fraction)
    black = sensor.black_level_torch(raw).expand_as(raw)
    stuck = torch.where(hot, torch.full_like(raw, sensor.ceiling), black)
    return torch.where(defective, stuck, raw)


def fixed_pattern_noise(
    raw: torch.Tensor, camera: Camera, generator: torch.Generator, *, row_sigma_e: Any, column_sigma_e: Any, banding_e: Any, banding_period_px: Any
) -> torch.Tensor:
    """Row, column and banding offsets in electrons added through the gain, re-quantised (module docstring)."""
    sensor = Sensor.of(camera)
    n, h, w = raw.shape
    rows = tensor_like(row_sigma_e, raw) * normal(generator, (n, h, 1), raw)
    cols = tensor_like(column_sigma_e, raw) * normal(generator, (n, 1, w), raw)
    phase = 2.0 * math.pi * uniform(generator, (n, 1, 1), raw)
    lines = (torch.arange(h, dtype=raw.dtype, device=raw.device)[:, None] + 0.5) / tensor_like(banding_period_px, raw)
    bands = tensor_like(banding_e, raw) * torch.sin(2.0 * math.pi * lines + phase)
    return sensor.digitise_torch(raw * sensor.white + sensor.gain * (rows + cols + bands))


DEFECTIVE_PIXELS = RawCorruption(
    name="defective_pixels",
    family="sensor",
    summary="hot and dead pixels: each pixel independently stuck at saturation or at black",
    quantities=(
        Quantity("density", "", "fraction of the pixels that are defective", low=0.0, high=1.0),
        Quantity("hot_fraction", "", "fraction of the defective pixels that are hot (the rest are dead)", low=0.0, high=1.0),
    ),
    levels=tuple({"density": d, "hot_fraction": 0.5} for d in (1e-4, 3e-4, 1e-3, 3e-3, 1e-2)),
    torch=defective_pixels,
    random=True,
)

FIXED_PATTERN_NOISE = RawCorruption(
    name="fixed_pattern_noise",
    family="sensor",
    summary="row and column offsets and sinusoidal banding of the readout, in electrons through the gain",
    quantities=(
        Quantity("row_sigma_e", "e⁻", "standard deviation of the per-row offsets", low=0.0, high=1e5),
        Quantity("column_sigma_e", "e⁻", "standard deviation of the per-column offsets", low=0.0, high=1e5),
        Quantity("banding_e", "e⁻", "amplitude of the horizontal banding", low=0.0, high=1e5),
        Quantity("banding_period_px", "px", "period of the banding, in rows", low=2.0, high=1e5),
    ),
    levels=tuple({"row_sigma_e": s, "column_sigma_e": s / 2, "banding_e": s, "banding_period_px": 32.0} for s in (2.0, 4.0, 8.0, 16.0, 32.0)),
    torch=fixed_pattern_noise,
    needs=("gain",),
    random=True,
    differentiable=("row_sigma_e", "column_sigma_e", "banding_e"),
)
