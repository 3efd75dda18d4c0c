"""Black-level correction (paper Eq. 6 and Eq. 24).

One value is subtracted per position of the 2×2 CFA block, in row-major order
(top-left, top-right, bottom-left, bottom-right; for ``RGGB`` that is R, G, G, B), as
the released code does. The result is not clipped.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..cfa import site_map_numpy, site_map_torch
from .base import FromCamera, Param, Stage

if TYPE_CHECKING:
    import torch
else:
    from .._torch import torch

__all__ = ["black_level_numpy", "black_level", "BlackLevel"]


def black_level_numpy(raw: np.ndarray, level: np.ndarray) -> np.ndarray:
    """Subtract ``level[k]`` from CFA site ``k`` of the mosaic ``raw`` ``(H, W)``.

    >>> black_level_numpy(np.ones((2, 4)), np.array([0.1, 0.2, 0.3, 0.4])).tolist()
    [[0.9, 0.8, 0.9, 0.8], [0.7, 0.6, 0.7, 0.6]]
    """
    subtracted: np.ndarray = raw - site_map_numpy(level, raw.shape[-2:])
    return subtracted


def black_level(raw: torch.Tensor, level: torch.Tensor) -> torch.Tensor:
    """Torch twin of :func:`black_level_numpy` on ``(*, H, W)``; differentiable in ``level``."""
    return raw - site_map_torch(level, raw.shape[-2:])


class BlackLevel(Stage):
    """Subtract a black level per 2×2 CFA site."""

    kind = "black_level"
    method = "per_site"
    takes = "raw"
    gives = "raw"
    params = (Param("level", (4,), FromCamera("black_level"), "black level per CFA site, on the [0, 1] scale", bounds=(-1.0, 1.0)),)
    numpy = staticmethod(black_level_numpy)
    torch = staticmethod(black_level)
