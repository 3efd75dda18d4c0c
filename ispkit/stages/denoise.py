"""Denoising of the luma plane Y (paper §4.2.1, Eqs. 12–18; free kernel of Eq. 31).

Oala et al., "Data Models for Dataset Drift Controls in Machine Learning With Optical
Images", TMLR 2023, denoise the Y plane of skimage's YUV; U and V pass through. Two
methods:

* ``gaussian``: convolution with a free 5×5 kernel (Eq. 31), at θ_stat the kernel of
  ``scipy.ndimage.gaussian_filter(y, 0.5)`` (reference: ``scipy.ndimage.convolve``, via :mod:`.luma_convolution`).
* ``median``: the median of each ``size``×``size`` window
  (reference: ``scipy.ndimage.median_filter``).

Border rule, both methods and both backends: scipy's ``mode="reflect"``
(edge-inclusive symmetric, ``b a | a b c d | d c``).

>>> round(float(gaussian_kernel2d(0.5)[2, 2]), 5)
0.61869
>>> median_denoise_numpy(np.array([[0.0, 9.0, 0.0], [0.0, 0.0, 0.0]]), 3).tolist()
[[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from scipy import ndimage

from .. import filters
from ..arrays import check_plane
from ..errors import ParameterError
from .base import Param, Stage
from .luma_convolution import convolve_luma, convolve_luma_numpy

if TYPE_CHECKING:
    import torch
else:
    from .._torch import torch

__all__ = [
    "gaussian_kernel2d",
    "GaussianDenoise",
    "median_denoise_numpy",
    "median_denoise",
    "MedianDenoise",
]


def gaussian_kernel2d(sigma: float, truncate: float = 4.0) -> np.ndarray:
    """The 2-D kernel of ``scipy.ndimage.gaussian_filter(·, sigma, truncate=truncate)``.

    The outer product of scipy's normalised 1-D weights ``exp(-x² / 2σ²) / Σ``, computed as
    :func:`ispkit.filters.gaussian_kernel1d` computes them (in NumPy: equal to it at σ = 0.5,
    within 3e-16 elsewhere), of size ``2 · int(truncate · sigma + 0.5) + 1``.

    >>> gaussian_kernel2d(0.5).shape
    (5, 5)
    """
    radius = filters.gaussian_radius(sigma, truncate)
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    phi = np.exp(-0.5 * (x / sigma) ** 2)
    weights = phi / phi.sum()
    return np.outer(weights, weights)


class GaussianDenoise(Stage):
    """Denoise the luma plane by convolution with a 5×5 kernel.

    At θ_stat the kernel is :func:`gaussian_kernel2d` ``(0.5)`` (centre 0.61869), so the
    stage equals ``scipy.ndimage.gaussian_filter(y, 0.5)``; set
    ``gaussian_kernel2d(sigma)`` for another σ with the same 5×5 support
    (0.375 ≤ σ < 0.625).
    """

    kind = "denoise"
    method = "gaussian"
    takes = "luma"
    gives = "luma"
    params = (
        Param(
            "kernel",
            (5, 5),
            tuple(map(tuple, gaussian_kernel2d(0.5).tolist())),
            "5×5 convolution kernel applied to Y (scipy.ndimage.convolve orientation)",
            bounds=(-1.0, 1.0),
        ),
    )
    numpy = staticmethod(convolve_luma_numpy)
    torch = staticmethod(convolve_luma)


def _check_size(size: int, where: str) -> None:
    if size % 2 == 0:
        raise ParameterError(f"{where}: the median window size must be odd, got {size}")


def median_denoise_numpy(y: np.ndarray, size: int) -> np.ndarray:
    """Median of each ``size``×``size`` window of ``y`` ``(H, W)``: ``scipy.ndimage.median_filter(y, size, mode="reflect")``."""
    check_plane(y, "median_denoise_numpy", batched=False)
    _check_size(size, "median_denoise_numpy")
    denoised: np.ndarray = ndimage.median_filter(y, size=size, mode="reflect")
    return denoised


def median_denoise(y: torch.Tensor, size: int) -> torch.Tensor:
    """Torch twin of :func:`median_denoise_numpy` on ``(N, H, W)``; differentiable in ``y`` almost everywhere.

    The gradient of each output flows to the one window sample it selects. Size 3
    takes a fast exact path (:func:`_median3x3`); other sizes use
    :func:`ispkit.filters.median_filter`.
    """
    check_plane(y, "median_denoise", batched=True)
    _check_size(size, "median_denoise")
    return _median3x3(y) if size == 3 else filters.median_filter(y, size, mode="reflect")


class MedianDenoise(Stage):
    """Denoise the luma plane by a ``size``×``size`` median filter (the paper uses size 3)."""

    kind = "denoise"
    method = "median"
    takes = "luma"
    gives = "luma"
    params = (Param("size", (), 3, "odd side of the square median window, in pixels", bounds=(1, 15), differentiable=False, dtype=int, odd=True),)
    numpy = staticmethod(median_denoise_numpy)
    torch = staticmethod(median_denoise)


def _min_max(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.minimum(a, b), torch.maximum(a, b)


def _median3(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    low, high = _min_max(a, b)
    return torch.maximum(low, torch.minimum(high, c))


def _median3x3(y: torch.Tensor) -> torch.Tensor:
    """Exact 3×3 median of ``(N, H, W)`` with reflect borders, by a selection network.

    With autograd on, the output gathers the first window sample equal to the median,
    so the gradient reaches one sample, as in :func:`ispkit.filters.median_filter`.
    """
    h, w = y.shape[-2:]
    padded = filters.pad2d(y, (1, 1, 1, 1), "reflect")
    if not (torch.is_grad_enabled() and y.requires_grad):
        return _median9(padded)
    with torch.no_grad():
        value = _median9(padded)
        offset = torch.zeros(value.shape, dtype=torch.uint8, device=y.device)
        for k in reversed(range(9)):  # the first matching sample wins
            i, j = divmod(k, 3)
            offset.masked_fill_(padded[..., i : i + h, j : j + w] == value, k)
        offset = offset.long()
        rows = torch.arange(h, device=y.device)[:, None] + offset // 3
        cols = torch.arange(w, device=y.device) + offset % 3
        index = (rows * (w + 2) + cols).flatten(-2)
    return padded.flatten(-2).gather(-1, index).view(y.shape)


def _median9(padded: torch.Tensor) -> torch.Tensor:
    """Median of every 3×3 window of ``padded`` ``(*, H + 2, W + 2)``, by min/max only.

    Each horizontal triple is sorted once into ``low ≤ mid ≤ high``; the median of a
    window is the median of (max of its three lows, median of its three mids, min of
    its three highs): the anti-diagonal of the window sorted by rows, then columns.
    """
    h, w = padded.shape[-2] - 2, padded.shape[-1] - 2
    left, centre, right = padded[..., :w], padded[..., 1 : w + 1], padded[..., 2:]
    ab_low, ab_high = _min_max(left, centre)
    low, high = torch.minimum(ab_low, right), torch.maximum(ab_high, right)
    mid = torch.maximum(ab_low, torch.minimum(ab_high, right))
    up, row, down = slice(0, h), slice(1, h + 1), slice(2, h + 2)
    return _median3(
        torch.maximum(torch.maximum(low[..., up, :], low[..., row, :]), low[..., down, :]),
        _median3(mid[..., up, :], mid[..., row, :], mid[..., down, :]),
        torch.minimum(torch.minimum(high[..., up, :], high[..., row, :]), high[..., down, :]),
    )
