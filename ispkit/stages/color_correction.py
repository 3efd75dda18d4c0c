"""Colour correction (paper Eq. 11 and Eq. 29): ``v = M · rgb`` per pixel.

The output may leave [0, 1]; gamma correction clips it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .base import FromCamera, Param, Stage

if TYPE_CHECKING:
    import torch
else:
    from .._torch import torch

__all__ = ["color_correction_numpy", "color_correction", "ColorCorrection"]


def color_correction_numpy(rgb: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply the 3×3 colour ``matrix`` to every pixel of ``rgb`` ``(3, H, W)``.

    >>> m = np.array([[0.0, 1, 0], [1, 0, 0], [0, 0, 2]])
    >>> color_correction_numpy(np.arange(3.0).reshape(3, 1, 1), m).ravel().tolist()
    [1.0, 0.0, 4.0]
    """
    corrected: np.ndarray = np.einsum("ij,jhw->ihw", matrix, rgb, optimize=False)  # no BLAS call, so no BLAS threads (ispkit.threads)
    return corrected


def color_correction(rgb: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
    """Torch twin of :func:`color_correction_numpy` on ``(*, 3, H, W)``; differentiable in ``matrix``."""
    return (matrix @ rgb.flatten(-2)).reshape(rgb.shape)


class ColorCorrection(Stage):
    """Multiply every pixel by a 3×3 colour matrix."""

    kind = "color_correction"
    method = "matrix"
    takes = "rgb"
    gives = "rgb"
    params = (Param("matrix", (3, 3), FromCamera("color_matrix"), "colour matrix M, out = M · rgb", bounds=(-16.0, 16.0)),)
    numpy = staticmethod(color_correction_numpy)
    torch = staticmethod(color_correction)
    pixel_matrix = staticmethod(lambda matrix: matrix)
