"""Convolution of the luma plane with a free kernel, shared by two stages.

The parametrised sharpening filter (paper Eq. 30, a 3×3 kernel) and the parametrised
Gaussian denoiser (Eq. 31, a 5×5 kernel) are the same operation with different
kernels: ``scipy.ndimage.convolve(y, kernel, mode="reflect")`` on the Y plane. Border
rule, both backends: scipy's ``reflect`` (edge-inclusive symmetric,
``b a | a b c d | d c``).

>>> y = np.zeros((3, 3)); y[1, 1] = 1.0
>>> convolve_luma_numpy(y, np.array([[0.0, -1, 0], [-1, 5, -1], [0, -1, 0]])).tolist()
[[0.0, -1.0, 0.0], [-1.0, 5.0, -1.0], [0.0, -1.0, 0.0]]
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from scipy import ndimage

from .. import filters
from ..arrays import check_plane

if TYPE_CHECKING:
    import torch
else:
    from .._torch import torch

__all__ = ["convolve_luma_numpy", "convolve_luma"]


def convolve_luma_numpy(y: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Convolve the plane ``y`` ``(H, W)`` with an odd-sized ``kernel``: ``scipy.ndimage.convolve(y, kernel, mode="reflect")``."""
    check_plane(y, "convolve_luma_numpy", batched=False)
    convolved: np.ndarray = ndimage.convolve(y, kernel, mode="reflect")
    return convolved


def convolve_luma(y: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Torch twin of :func:`convolve_luma_numpy` on ``(N, H, W)``; differentiable in ``kernel`` and ``y``."""
    check_plane(y, "convolve_luma", batched=True)
    return filters.convolve2d(y, kernel, mode="reflect")
