"""White balance (paper Eq. 9 and Eq. 28): ``v_c = wb_c · v_c`` per colour channel."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .base import FromCamera, Param, Stage

if TYPE_CHECKING:
    import torch
else:
    from .._torch import torch

__all__ = ["white_balance_numpy", "white_balance", "WhiteBalance"]


def white_balance_numpy(rgb: np.ndarray, gains: np.ndarray) -> np.ndarray:
    """Multiply channel ``c`` of ``rgb`` ``(3, H, W)`` by ``gains[c]``.

    >>> white_balance_numpy(np.ones((3, 1, 1)), np.array([2.0, 1.0, 0.5])).ravel().tolist()
    [2.0, 1.0, 0.5]
    """
    balanced: np.ndarray = rgb * gains[:, None, None]
    return balanced


def white_balance(rgb: torch.Tensor, gains: torch.Tensor) -> torch.Tensor:
    """Torch twin of :func:`white_balance_numpy` on ``(*, 3, H, W)``; differentiable in ``gains``."""
    return rgb * gains[:, None, None]


class WhiteBalance(Stage):
    """Scale each colour channel by a gain."""

    kind = "white_balance"
    method = "gains"
    takes = "rgb"
    gives = "rgb"
    params = (
        Param(
            "gains",
            (3,),
            FromCamera("white_balance"),
            "R, G, B gains (the released microscopy camera has a negative red gain)",
            bounds=(-16.0, 16.0),
        ),
    )
    numpy = staticmethod(white_balance_numpy)
    torch = staticmethod(white_balance)
    pixel_matrix = staticmethod(lambda gains: torch.diag(gains))
