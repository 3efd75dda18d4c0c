"""Lens shading and flat-field correction: a smooth gain on every pixel of the black-subtracted mosaic.

Uneven illumination (a microscope's illumination, a lens's vignetting, a sensor's
colour shading towards the corners) multiplies the signal by a smooth, position-dependent
factor; correcting it multiplies by the inverse, a *gain map*. The stage goes after
``black_level`` and before ``demosaic``, where the DNG specification applies the
GainMap opcode of OpcodeList2 (to linear values, black subtracted). Two methods:

``gain_map``
    The DNG ``GainMap`` opcode (DNG specification 1.4.0.0, chapter 7), one map per 2×2
    CFA site (row-major order, as ``black_level``): ``gains[k]`` is a
    :data:`~ispkit.camera.SHADING_POINTS` × :data:`~ispkit.camera.SHADING_POINTS` grid whose
    point ``(i, j)`` sits at ``origin + (i, j) · spacing`` in coordinates relative to the
    mosaic (0 at the top or left edge, 1 at the bottom or right edge). A pixel's position
    is its centre, ``((row + 0.5) / H, (col + 0.5) / W)``; between points the gain is
    interpolated bilinearly and beyond the grid the nearest edge point's gain holds,
    exactly as the DNG SDK's ``dng_gain_map_interpolator`` does. A DNG map of up to 33
    points per axis is represented exactly (:func:`ispkit.io.dng.dng_camera` pads it with
    its edge values), and so is a flat field from :func:`ispkit.flatfield.estimate`.
    Unlike the DNG SDK the result is not clipped at 1: no raw stage of ispkit clips.
``radial``
    The DNG ``FixVignetteRadial`` opcode: gain ``1 + k₀ r² + k₁ r⁴ + k₂ r⁶ + k₃ r⁸ +
    k₄ r¹⁰`` with ``r`` the distance of the pixel centre from the optical centre
    ``center`` (relative ``(vertical, horizontal)``), divided by the distance from the
    centre to the farthest image corner. The DNG SDK evaluates it with 16-bit fixed-point
    tables; here it is evaluated exactly. (The DNG writes it in OpcodeList3, after
    demosaicking; on a slowly varying gain the order makes no visible difference.)

Both read their defaults from the camera (``Camera.shading_map``, ``shading_origin``,
``shading_spacing``, ``vignette``, ``vignette_center``), which are neutral unless a DNG
(:meth:`Camera.from_dng <ispkit.camera.Camera.from_dng>`), a YAML file or a flat field
(:func:`ispkit.flatfield.estimate`) sets them. The NumPy backends interpolate with
``scipy.ndimage.map_coordinates`` (order 1, ``mode="nearest"``); the torch backends build
the same bilinear weights as two small matrices per site, ``A · gains[k] · Bᵀ``, and are
differentiable in ``gains`` and ``k``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

import numpy as np
from scipy import ndimage

from ..camera import SHADING_POINTS
from .base import FromCamera, Param, Stage

if TYPE_CHECKING:
    import torch
else:
    from .._torch import torch

_Number = TypeVar("_Number", float, "torch.Tensor")
_Array = TypeVar("_Array", np.ndarray, "torch.Tensor")

__all__ = ["gain_map_numpy", "gain_map", "radial_numpy", "radial", "GainMapShading", "RadialShading"]


def _positions(size: int, offset: int) -> np.ndarray:
    """Relative centre positions of every second pixel from ``offset`` among ``size``."""
    return (np.arange(offset, size, 2, dtype=np.float64) + 0.5) / size


def gain_map_numpy(raw: np.ndarray, gains: np.ndarray, origin: np.ndarray, spacing: np.ndarray) -> np.ndarray:
    """Multiply each 2×2 CFA site ``k`` of ``raw`` ``(H, W)`` by ``gains[k]`` interpolated bilinearly at its pixels.

    >>> gains = np.ones((4, 33, 33)); gains[3] = 2.0                 # double the bottom-right site
    >>> gain_map_numpy(np.ones((2, 4)), gains, np.zeros(2), np.full(2, 1 / 32)).tolist()
    [[1.0, 1.0, 1.0, 1.0], [1.0, 2.0, 1.0, 2.0]]
    """
    h, w = raw.shape
    out = np.empty_like(raw, dtype=np.float64)
    for site in range(4):
        dr, dc = divmod(site, 2)
        v = (_positions(h, dr) - origin[0]) / spacing[0]
        u = (_positions(w, dc) - origin[1]) / spacing[1]
        vv, uu = np.meshgrid(v, u, indexing="ij")
        gain = ndimage.map_coordinates(gains[site], [vv.ravel(), uu.ravel()], order=1, mode="nearest").reshape(vv.shape)
        out[dr::2, dc::2] = raw[dr::2, dc::2] * gain
    return out


def _weights(size: int, offset: int, origin: torch.Tensor, spacing: torch.Tensor, points: int, like: torch.Tensor) -> torch.Tensor:
    """Bilinear weights ``(size // 2, points)`` of every second pixel from ``offset`` on a grid at ``origin + i · spacing``.

    A pixel's continuous grid index is clamped to the grid, so beyond it the nearest edge point's gain holds.
    The indices are computed in float64 (except on MPS, which has none) whatever ``like``'s dtype: with a fine
    spacing a float32 index would move by up to 1e-5 of a point, enough to move a steep map's gain by more than
    the float32 contract allows. The weights are returned in ``like``'s dtype.
    """
    exact = torch.float64 if like.device.type != "mps" else like.dtype
    t = ((torch.arange(offset, size, 2, device=like.device, dtype=exact) + 0.5) / size - origin.to(exact)) / spacing.to(exact)
    t = t.clamp(0.0, points - 1.0)
    i = t.floor().clamp(max=points - 2.0)
    f = (t - i)[:, None]
    index = torch.arange(points, device=t.device, dtype=t.dtype)
    return ((index == i[:, None]) * (1.0 - f) + (index == i[:, None] + 1.0) * f).to(like.dtype)


def gain_map(raw: torch.Tensor, gains: torch.Tensor, origin: torch.Tensor, spacing: torch.Tensor) -> torch.Tensor:
    """Torch twin of :func:`gain_map_numpy` on ``(*, H, W)``; differentiable in ``gains``."""
    h, w = raw.shape[-2:]
    points = gains.shape[-1]
    rows = [_weights(h, dr, origin[0], spacing[0], points, raw) for dr in (0, 1)]
    cols = [_weights(w, dc, origin[1], spacing[1], points, raw) for dc in (0, 1)]
    a = torch.stack([rows[site // 2] for site in range(4)])  # (4, H/2, P)
    b = torch.stack([cols[site % 2] for site in range(4)])  # (4, W/2, P)
    per_site = a @ gains @ b.transpose(-1, -2)  # (4, H/2, W/2)
    # Site (dr, dc) of block (i, j) is pixel (2i + dr, 2j + dc).
    gain = per_site.reshape(2, 2, h // 2, w // 2).permute(2, 0, 3, 1).reshape(h, w)
    return raw * gain


def _radius(h: int, w: int, cv: _Number, ch: _Number, maximum: Callable[[_Number, _Number], _Number]) -> tuple[_Number, _Number, _Number]:
    """The optical centre in pixels and the distance from it to the farthest corner."""
    cy, cx = cv * h, ch * w
    return cy, cx, ((maximum(cy, h - cy)) ** 2 + (maximum(cx, w - cx)) ** 2) ** 0.5


def _polynomial(r2: _Array, k: _Array) -> _Array:
    """``1 + k₀ r² + k₁ r⁴ + … + k₄ r¹⁰`` by Horner's rule on ``r2 = r²``."""
    total = k[4] * r2
    for i in (3, 2, 1, 0):
        total = (total + k[i]) * r2
    gain: _Array = 1.0 + total
    return gain


def radial_numpy(raw: np.ndarray, k: np.ndarray, center: np.ndarray) -> np.ndarray:
    """Multiply ``raw`` ``(H, W)`` by the radial gain ``1 + Σ kᵢ r^(2i+2)`` about ``center`` (relative ``(v, h)``).

    >>> out = radial_numpy(np.ones((2, 2)), np.array([1.0, 0, 0, 0, 0]), np.array([0.5, 0.5]))
    >>> out.round(6).tolist()                       # every pixel centre lies half way to a corner: r² = 1/4
    [[1.25, 1.25], [1.25, 1.25]]
    """
    h, w = raw.shape
    cy, cx, radius = _radius(h, w, float(center[0]), float(center[1]), max)
    r2 = ((np.arange(h) + 0.5 - cy)[:, None] ** 2 + (np.arange(w) + 0.5 - cx)[None, :] ** 2) / radius**2
    shaded: np.ndarray = raw * _polynomial(r2, k)
    return shaded


def radial(raw: torch.Tensor, k: torch.Tensor, center: torch.Tensor) -> torch.Tensor:
    """Torch twin of :func:`radial_numpy` on ``(*, H, W)``; differentiable in ``k``."""
    h, w = raw.shape[-2:]
    cy, cx, radius = _radius(h, w, center[0], center[1], torch.maximum)
    rows = torch.arange(h, device=raw.device, dtype=raw.dtype) + 0.5 - cy
    cols = torch.arange(w, device=raw.device, dtype=raw.dtype) + 0.5 - cx
    r2 = (rows[:, None] ** 2 + cols[None, :] ** 2) / radius**2
    shaded: torch.Tensor = raw * _polynomial(r2, k)
    return shaded


class GainMapShading(Stage):
    """Multiply the black-subtracted mosaic by a lens-shading or flat-field gain map, per CFA site."""

    kind = "lens_shading"
    method = "gain_map"
    takes = "raw"
    gives = "raw"
    params = (
        Param(
            "gains",
            (4, SHADING_POINTS, SHADING_POINTS),
            FromCamera("shading_map"),
            "gain map per 2×2 CFA site (row-major), points at origin + i·spacing",
            bounds=(0.0, 64.0),
        ),
        Param(
            "origin",
            (2,),
            FromCamera("shading_origin"),
            "relative (vertical, horizontal) position of the first map point",
            bounds=(-1.0, 1.0),
            differentiable=False,
        ),
        Param(
            "spacing",
            (2,),
            FromCamera("shading_spacing"),
            "relative (vertical, horizontal) spacing of the map points",
            bounds=(1e-3, 1.0),
            differentiable=False,
        ),
    )
    numpy = staticmethod(gain_map_numpy)
    torch = staticmethod(gain_map)


class RadialShading(Stage):
    """Multiply the mosaic by the radial vignetting correction of the DNG FixVignetteRadial opcode."""

    kind = "lens_shading"
    method = "radial"
    takes = "raw"
    gives = "raw"
    params = (
        Param("k", (5,), FromCamera("vignette"), "coefficients of 1 + k0 r^2 + k1 r^4 + ... + k4 r^10", bounds=(-16.0, 16.0)),
        Param("center", (2,), FromCamera("vignette_center"), "relative (vertical, horizontal) optical centre", bounds=(0.0, 1.0), differentiable=False),
    )
    numpy = staticmethod(radial_numpy)
    torch = staticmethod(radial)
