"""Lateral chromatic aberration (``chromatic_aberration``): each colour imaged at its own magnification.

A lens's focal length depends on the wavelength, so the red and the blue image of a
scene are slightly larger or smaller than the green one about the optical centre (the
image centre here): a point at distance ``r`` from the centre is imaged at ``m_c · r``,
``m_c = 1 + pct_c / 100`` for red and blue, green unchanged. On the mosaic each CFA
site's plane (the samples of one 2×2 site, a lattice of step 2) is resampled: the output
at a pixel centre ``p`` is the plane interpolated bilinearly at ``c + (p − c) / m``, the
nearest edge value beyond the plane (numpy: ``scipy.ndimage.map_coordinates(order=1,
mode="nearest")``; torch: ``grid_sample(align_corners=True, padding_mode="border")``, the
same sums). A flat field stays flat. The severities give red +0.05 … +0.5 % and blue
−0.05 … −0.5 %: at the corner of a 512 × 512 raw (362 px from the centre) red and blue
part by 0.4 … 3.6 px. Both backends; the torch one is differentiable in ``raw`` and in
both magnifications.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from ..camera import Camera
from ..cfa import site_channels
from .base import Quantity, RawCorruption, tensor_like

__all__ = ["CHROMATIC_ABERRATION", "chromatic_aberration", "chromatic_aberration_numpy", "source_positions"]


def source_positions(size: int, offset: int, magnification: Any) -> Any:
    """Where, in plane indices, the plane of sites ``offset::2`` along an axis of ``size`` pixels is sampled at magnification ``magnification``.

    Pixel ``offset + 2 i`` has its centre at ``offset + 2 i + ½``; its source ``c + (p − c) / m`` (``c = size / 2``)
    is plane index ``(source − offset − ½) / 2``. ``magnification`` may be a float or a tensor.

    >>> source_positions(8, 0, 1.0).tolist()
    [0.0, 1.0, 2.0, 3.0]
    """
    centre = size / 2
    pixels = np.arange(offset, size, 2) + 0.5
    at = tensor_like(pixels, magnification) if isinstance(magnification, torch.Tensor) else pixels
    return (centre + (at - centre) / magnification - offset - 0.5) / 2


def _magnifications(camera: Camera, red_pct: Any, blue_pct: Any) -> list[Any]:
    """Magnification of each 2×2 site (row-major): ``1 + pct / 100`` for red and blue, ``None`` (unchanged) for green."""
    per_colour = (1.0 + red_pct / 100.0, None, 1.0 + blue_pct / 100.0)
    return [per_colour[c] for c in site_channels(camera.pattern)]


def chromatic_aberration_numpy(raw: np.ndarray, camera: Camera, rng: np.random.Generator, *, red_pct: float, blue_pct: float) -> np.ndarray:
    """Resample the red and blue sites' planes of the batch ``(N, H, W)`` at their magnifications (module docstring)."""
    out = raw.copy()
    h, w = raw.shape[-2:]
    for site, m in enumerate(_magnifications(camera, red_pct, blue_pct)):
        if m is None:
            continue
        dr, dc = divmod(site, 2)
        rows, cols = np.meshgrid(source_positions(h, dr, m), source_positions(w, dc, m), indexing="ij")
        for image, target in zip(raw, out, strict=True):
            target[dr::2, dc::2] = ndimage.map_coordinates(image[dr::2, dc::2], [rows, cols], order=1, mode="nearest")
    return out


def _normalised(index: torch.Tensor, size: int) -> torch.Tensor:
    """Plane index → grid_sample's coordinate with ``align_corners=True`` (−1 the first sample, +1 the last)."""
    return 2.0 * index / max(size - 1, 1) - 1.0


def chromatic_aberration(raw: torch.Tensor, camera: Camera, generator: torch.Generator, *, red_pct: Any, blue_pct: Any) -> torch.Tensor:
    """Torch twin of :func:`chromatic_aberration_numpy`; differentiable in ``raw``, ``red_pct`` and ``blue_pct``."""
    red, blue = tensor_like(red_pct, raw), tensor_like(blue_pct, raw)
    n, h, w = raw.shape
    sites = []
    for site, m in enumerate(_magnifications(camera, red, blue)):
        dr, dc = divmod(site, 2)
        plane = raw[:, dr::2, dc::2]
        if m is None:
            sites.append(plane)
            continue
        rows = _normalised(source_positions(h, dr, m), h // 2)
        cols = _normalised(source_positions(w, dc, m), w // 2)
        grid = torch.stack(torch.broadcast_tensors(cols[None, :], rows[:, None]), dim=-1).expand(n, -1, -1, -1)
        sites.append(F.grid_sample(plane[:, None], grid, mode="bilinear", padding_mode="border", align_corners=True)[:, 0])
    # Site (dr, dc) of block (i, j) is pixel (2i + dr, 2j + dc).
    return torch.stack(sites, dim=1).reshape(n, 2, 2, h // 2, w // 2).permute(0, 3, 1, 4, 2).reshape(n, h, w)


CHROMATIC_ABERRATION = RawCorruption(
    name="chromatic_aberration",
    family="optics",
    summary="lateral chromatic aberration: red and blue CFA planes magnified about the optical centre relative to green",
    quantities=(
        Quantity("red_pct", "%", "magnification of the red image relative to the green one, minus 1", low=-10.0, high=10.0),
        Quantity("blue_pct", "%", "magnification of the blue image relative to the green one, minus 1", low=-10.0, high=10.0),
    ),
    levels=tuple({"red_pct": p, "blue_pct": -p} for p in (0.05, 0.1, 0.2, 0.35, 0.5)),
    torch=chromatic_aberration,
    numpy=chromatic_aberration_numpy,
    differentiable=("red_pct", "blue_pct"),
)
