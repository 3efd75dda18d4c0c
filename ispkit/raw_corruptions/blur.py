"""Blur on the mosaic: the normalised per-colour convolution, and ``motion_blur`` (a line PSF).

A blur acts on the light before the colour filter array samples it; a raw image only
has each colour at its own CFA sites. :func:`cfa_blur_numpy` blurs every colour from
the samples it has, by normalised convolution (Knutsson & Westin, 1993) on the full
sensor grid, and re-mosaics::

    y = Σ_c m_c · (k ∗ (m_c x)) / (k ∗ m_c)

with ``m_c`` the CFA mask of colour ``c``, ``k`` the PSF (one for all colours, or
``k_c`` one per colour, as a lens's wavelength-dependent PSF) and ``∗`` the convolution
``scipy.ndimage.convolve(·, mode="reflect")`` (torch: :func:`ispkit.filters.convolve2d`,
its twin, borders included). At a site of colour ``c`` the output is the PSF-weighted
mean of the ``c`` samples around it, renormalised over the samples present: a flat
field stays flat everywhere, colours do not mix, and a PSF that sums to 1 keeps each
colour's mean (the energy) away from the borders. (The optics plugin's ``lens`` stage
and its ``defocus`` corruption blur with these functions, one PSF per colour.)

``motion_blur``
    The PSF of a camera moving at constant speed during the exposure: a line segment of
    ``length`` pixels at ``angle`` degrees (counter-clockwise from the +x axis, rows
    pointing down), centred on the pixel. It is sampled at the midpoints of ``8 · ⌈length⌉``
    equal pieces of the segment, each point splatted bilinearly onto the pixel grid, and
    normalised to sum 1 (energy-conserving; a length of 0 is the identity). Without a
    given angle, each image's is drawn uniformly in [0°, 180°). Both backends; the torch
    one is differentiable in ``raw``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from scipy import ndimage

from .. import filters
from ..camera import Camera
from ..cfa import masks_numpy, masks_torch
from .base import Quantity, RawCorruption, uniform

__all__ = ["MOTION_BLUR", "cfa_blur", "cfa_blur_each", "cfa_blur_numpy", "motion_kernel", "motion_blur", "motion_blur_numpy"]

_MODE = "reflect"
_POINTS_PER_PIXEL = 8


def cfa_blur_numpy(raw: np.ndarray, kernel: np.ndarray, pattern: str) -> np.ndarray:
    """Blur each colour of the mosaic ``raw`` ``(H, W)`` from its own samples by ``kernel``, normalised convolution.

    ``kernel`` is ``(k, k)`` for every colour or ``(3, k, k)`` for R, G, B (odd ``k``).
    """
    kernel = np.asarray(kernel, dtype=np.float64)
    if kernel.ndim not in (2, 3) or (kernel.ndim == 3 and kernel.shape[0] != 3):
        raise ValueError(f"expected a kernel (k, k) or one per colour (3, k, k), got shape {kernel.shape}")
    kernels = np.broadcast_to(kernel, (3, *kernel.shape[-2:]))
    masks = masks_numpy(raw.shape, pattern).astype(np.float64)
    out = np.zeros(raw.shape, dtype=np.float64)
    for mask, k in zip(masks, kernels, strict=True):
        numerator = ndimage.convolve(mask * raw, k, mode=_MODE)
        denominator = ndimage.convolve(mask, k, mode=_MODE)
        out += mask * numerator / np.where(mask > 0, denominator, 1.0)  # used at the colour's own sites only
    return out


def cfa_blur(raw: torch.Tensor, kernel: torch.Tensor, pattern: str) -> torch.Tensor:
    """Torch twin of :func:`cfa_blur_numpy` on ``(*, H, W)`` with a kernel ``(k, k)`` or ``(3, k, k)``; differentiable in ``raw`` and ``kernel``.

    A kernel whose centre weight is 0 at a colour's site with no other sample under it
    would divide by 0; a PSF centred on the pixel (every PSF here) has a positive centre.
    """
    masks = masks_torch(raw.shape[-2:], pattern, dtype=raw.dtype, device=raw.device)  # (3, H, W)
    kernel = kernel.to(raw.dtype)
    numerator = filters.convolve2d(masks * raw[..., None, :, :], kernel, _MODE)
    denominator = filters.convolve2d(masks, kernel, _MODE)
    denominator = torch.where(masks > 0, denominator, torch.ones_like(denominator))
    return (masks * numerator / denominator).sum(dim=-3)


def motion_kernel(length: float, angle_deg: float) -> np.ndarray:
    """The line PSF ``(2r + 1, 2r + 1)``, ``r = ⌈length / 2⌉``, of a motion over ``length`` pixels at ``angle_deg``; sums to 1.

    >>> k = motion_kernel(4.0, 0.0)
    >>> k.shape, round(float(k.sum()), 12), bool(np.allclose(k, k[::-1, ::-1]))
    ((5, 5), 1.0, True)
    >>> k[2].round(6).tolist()                     # horizontal: the middle row alone; a box over [-2, 2] seen by pixels
    [0.125, 0.25, 0.25, 0.25, 0.125]
    """
    half = 0.5 * float(length)
    radius = int(np.ceil(half))
    size = 2 * radius + 1
    points = _POINTS_PER_PIXEL * max(1, int(np.ceil(length)))
    t = (np.arange(points) + 0.5) / points * float(length) - half  # midpoints of equal pieces of the segment
    theta = np.deg2rad(float(angle_deg))
    cols, rows = radius + t * np.cos(theta), radius - t * np.sin(theta)
    kernel = np.zeros((size, size))
    r0, c0 = np.floor(rows).astype(int), np.floor(cols).astype(int)
    fr, fc = rows - r0, cols - c0
    for dr, wr in ((0, 1.0 - fr), (1, fr)):
        for dc, wc in ((0, 1.0 - fc), (1, fc)):
            np.add.at(kernel, (np.minimum(r0 + dr, size - 1), np.minimum(c0 + dc, size - 1)), wr * wc)
    return kernel / kernel.sum()


def _angles_numpy(n: int, angle_deg: float | None, rng: np.random.Generator) -> np.ndarray:
    return np.full(n, angle_deg) if angle_deg is not None else rng.uniform(0.0, 180.0, size=n)


def motion_blur_numpy(raw: np.ndarray, camera: Camera, rng: np.random.Generator, *, length_px: float, angle_deg: float | None) -> np.ndarray:
    """Blur each image of ``raw`` ``(N, H, W)`` by its motion PSF (:func:`motion_kernel`), per CFA colour (:func:`cfa_blur_numpy`)."""
    angles = _angles_numpy(len(raw), angle_deg, rng)
    return np.stack([cfa_blur_numpy(image, motion_kernel(length_px, angle), camera.pattern) for image, angle in zip(raw, angles, strict=True)])


def motion_blur(raw: torch.Tensor, camera: Camera, generator: torch.Generator, *, length_px: Any, angle_deg: Any) -> torch.Tensor:
    """Torch twin of :func:`motion_blur_numpy` (angles drawn from ``generator`` when not given); differentiable in ``raw``."""
    n = raw.shape[0]
    drawn = angle_deg is None
    angles = (uniform(generator, (n,), torch.empty((), dtype=torch.float64)) * 180.0).tolist() if drawn else [float(angle_deg)] * n
    kernels = torch.stack([torch.as_tensor(motion_kernel(float(length_px), angle)) for angle in angles]).to(raw.device)  # one size: the length's
    return cfa_blur_each(raw, kernels, camera.pattern)


def cfa_blur_each(raw: torch.Tensor, kernels: torch.Tensor, pattern: str) -> torch.Tensor:
    """:func:`cfa_blur` of each image ``raw[i]`` ``(N, H, W)`` by its own kernel ``kernels[i]`` ``(N, k, k)``, as one
    depthwise convolution of all images' colour planes (a batch of 32 256² images: ~30× faster than one call per image)."""
    n, h, w = raw.shape
    masks = masks_torch((h, w), pattern, dtype=raw.dtype, device=raw.device)  # (3, H, W)
    per_plane = kernels.to(raw.dtype).repeat_interleave(len(masks), dim=0)  # (N·3, k, k): image i's kernel for its 3 colours
    numerator = filters.convolve2d((masks * raw[:, None]).reshape(-1, h, w), per_plane, _MODE).reshape(n, -1, h, w)
    denominator = filters.convolve2d(masks.repeat(n, 1, 1), per_plane, _MODE).reshape(n, -1, h, w)
    denominator = torch.where(masks > 0, denominator, torch.ones_like(denominator))
    return (masks * numerator / denominator).sum(dim=-3)


MOTION_BLUR = RawCorruption(
    name="motion_blur",
    family="blur",
    summary="camera motion during the exposure: a line PSF of the given length, summing to 1, per CFA colour",
    quantities=(
        Quantity("length_px", "px", "length of the motion during the exposure, in raw pixels", low=0.0, high=256.0),
        Quantity(
            "angle_deg",
            "°",
            "direction of the motion, counter-clockwise from the +x axis; random: uniform in [0°, 180°) per image",
            0.0,
            360.0,
            none_means="random",
        ),
    ),
    levels=tuple({"length_px": length, "angle_deg": None} for length in (3.0, 5.0, 9.0, 15.0, 25.0)),
    torch=motion_blur,
    numpy=motion_blur_numpy,
    random=True,
)
