"""Bilinear demosaicing (Losson, Macaire and Yang 2010; paper Eqs. 25–27).

Each colour plane is the mosaic masked to that colour's CFA sites, convolved with a
3×3 kernel. The kernels are a stage parameter, so a pipeline can learn them; at their
defaults the method is ``colour_demosaicing.demosaicing_CFA_Bayer_bilinear``.

References
----------
O. Losson, L. Macaire and Y. Yang, "Comparison of Color Demosaicing Methods",
Advances in Imaging and Electron Physics 162, 173–265, 2010.
doi:10.1016/S1076-5670(10)62005-8
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from scipy import ndimage

from ...arrays import check_mosaic
from ...cfa import check_pattern, masks_numpy, masks_torch
from ...filters import convolve2d
from ..base import Param, Stage

if TYPE_CHECKING:
    import torch
else:
    from ..._torch import torch

__all__ = ["BILINEAR_KERNELS", "demosaic_bilinear_numpy", "demosaic_bilinear", "Bilinear"]

_K_G = np.array([[0.0, 1.0, 0.0], [1.0, 4.0, 1.0], [0.0, 1.0, 0.0]]) / 4
_K_RB = np.array([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]]) / 4
#: Default kernels of the R, G and B planes, ``(K_RB, K_G, K_RB)``.
BILINEAR_KERNELS = np.stack([_K_RB, _K_G, _K_RB])
BILINEAR_KERNELS.setflags(write=False)


def demosaic_bilinear_numpy(raw: np.ndarray, kernels: np.ndarray, *, pattern: str) -> np.ndarray:
    """Demosaic one mosaic by convolving each masked colour plane with its kernel.

    Parameters
    ----------
    raw
        Bayer mosaic ``(H, W)`` with even H and W, float64.
    kernels
        ``(3, 3, 3)``: the convolution kernels of the R, G and B planes.
    pattern
        CFA layout: ``RGGB``, ``BGGR``, ``GRBG`` or ``GBRG``.

    Returns
    -------
    numpy.ndarray
        RGB view ``(3, H, W)``, not clipped.

    Notes
    -----
    With ``x`` the mosaic, ``m_c`` the indicator of the CFA sites of colour ``c`` and
    ``∗`` convolution with ``scipy.ndimage``'s ``reflect`` border,

    ``v_c = (x · m_c) ∗ K_c``,  with by default ``K_R = K_B = [[1, 2, 1], [2, 4, 2],
    [1, 2, 1]] / 4`` and ``K_G = [[0, 1, 0], [1, 4, 1], [0, 1, 0]] / 4``.

    At a sampled site the kernel's centre returns the sample; elsewhere it averages
    the two or four nearest samples of that colour. The paper's Eq. 26 has the labels
    of the two kernels swapped; colour-demosaicing, and this function, use the
    cross-shaped kernel for green. This is a convolution (the kernel is flipped), which
    matters only for non-symmetric kernels.

    Examples
    --------
    A flat colour (R, G, B) = (0.2, 0.5, 0.8) seen through an ``RGGB`` filter is
    recovered away from the border. On the border the ``reflect`` extension mirrors
    the CFA out of phase: at the top-left corner the R sample counts 9/4 times and
    two of the four green neighbours are R sites, i.e. zeros:

    >>> raw = np.tile([[0.2, 0.5], [0.5, 0.8]], (3, 3))
    >>> rgb = demosaic_bilinear_numpy(raw, BILINEAR_KERNELS, pattern="RGGB")
    >>> np.allclose(rgb[:, 1:-1, 1:-1], [[[0.2]], [[0.5]], [[0.8]]])
    True
    >>> rgb[:, 0, 0].round(12).tolist()
    [0.45, 0.25, 0.2]
    """
    check_mosaic(raw, "demosaic_bilinear_numpy", batched=False)
    masks = masks_numpy(raw.shape, check_pattern(pattern))
    return np.stack([ndimage.convolve(raw * m, k, mode="reflect") for m, k in zip(masks, kernels, strict=True)])


def demosaic_bilinear(raw: torch.Tensor, kernels: torch.Tensor, *, pattern: str) -> torch.Tensor:
    """Torch twin of :func:`demosaic_bilinear_numpy` on a batch ``(N, H, W)`` → ``(N, 3, H, W)``.

    Differentiable in ``raw`` and in ``kernels``.

    Examples
    --------
    >>> raw = torch.tensor([[0.2, 0.5], [0.5, 0.8]], dtype=torch.float64).repeat(2, 3, 3)
    >>> kernels = torch.tensor(BILINEAR_KERNELS, requires_grad=True)
    >>> rgb = demosaic_bilinear(raw, kernels, pattern="RGGB")
    >>> rgb.shape
    torch.Size([2, 3, 6, 6])
    >>> rgb[0, :, 0, 0].tolist()
    [0.45, 0.25, 0.2]
    >>> rgb.sum().backward()
    >>> kernels.grad.shape
    torch.Size([3, 3, 3])
    """
    check_mosaic(raw, "demosaic_bilinear", batched=True)
    masks = masks_torch(raw.shape[-2:], check_pattern(pattern), dtype=raw.dtype, device=raw.device)
    return convolve2d(raw[:, None] * masks, kernels, "reflect")


class Bilinear(Stage):
    """Bilinear interpolation of each colour plane (Losson et al. 2010)."""

    kind = "demosaic"
    method = "bilinear"
    takes = "raw"
    gives = "rgb"
    cfa_aware = True
    params = (Param("kernels", (3, 3, 3), BILINEAR_KERNELS, "3×3 interpolation kernels of the R, G and B planes (paper Eq. 26)"),)
    numpy = staticmethod(demosaic_bilinear_numpy)
    torch = staticmethod(demosaic_bilinear)
