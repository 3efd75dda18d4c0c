"""Gradient-corrected linear demosaicing of Malvar, He and Cutler (2004).

Each missing colour is its bilinear estimate corrected by a scaled Laplacian of the
colour sampled at the pixel; per CFA site and colour that is one fixed 5×5 linear
filter (four distinct ones in all). The method is linear in the mosaic, hence
differentiable everywhere. The NumPy backend is
``colour_demosaicing.demosaicing_CFA_Bayer_Malvar2004`` written out operation for operation
(equal bit for bit, without importing colour); the torch backend reproduces it to float
rounding.

References
----------
H. S. Malvar, L.-W. He and R. Cutler, "High-Quality Linear Interpolation for
Demosaicing of Bayer-Patterned Color Images", Proc. IEEE International Conference on
Acoustics, Speech, and Signal Processing (ICASSP), vol. 3, pp. 485–488, 2004.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from scipy import ndimage

from ...arrays import check_mosaic
from ...cfa import check_pattern, masks_numpy, row_mask, select, site_selectors
from ...filters import convolve2d
from ...memory import cached
from ..base import Stage

if TYPE_CHECKING:
    import torch
else:
    from ..._torch import torch

__all__ = ["KERNELS", "demosaic_malvar2004_numpy", "demosaic_malvar2004", "Malvar2004"]

_ROW = np.array(
    [
        [0.0, 0.0, 0.5, 0.0, 0.0],
        [0.0, -1.0, 0.0, -1.0, 0.0],
        [-1.0, 4.0, 5.0, 4.0, -1.0],
        [0.0, -1.0, 0.0, -1.0, 0.0],
        [0.0, 0.0, 0.5, 0.0, 0.0],
    ]
)
#: The paper's filters (Fig. 2), in the order: G at R and B sites; at G sites, the
#: colour sampled along the row, then along the column; R at B and B at R sites.
KERNELS = (
    np.stack(
        [
            [
                [0.0, 0.0, -1.0, 0.0, 0.0],
                [0.0, 0.0, 2.0, 0.0, 0.0],
                [-1.0, 2.0, 4.0, 2.0, -1.0],
                [0.0, 0.0, 2.0, 0.0, 0.0],
                [0.0, 0.0, -1.0, 0.0, 0.0],
            ],
            _ROW,
            _ROW.T,
            [
                [0.0, 0.0, -1.5, 0.0, 0.0],
                [0.0, 2.0, 0.0, 2.0, 0.0],
                [-1.5, 0.0, 6.0, 0.0, -1.5],
                [0.0, 2.0, 0.0, 2.0, 0.0],
                [0.0, 0.0, -1.5, 0.0, 0.0],
            ],
        ]
    )
    / 8
)


def demosaic_malvar2004_numpy(raw: np.ndarray, *, pattern: str) -> np.ndarray:
    """Demosaic one mosaic with the gradient-corrected filters of Malvar et al. (2004).

    Parameters
    ----------
    raw
        Bayer mosaic ``(H, W)`` with even H and W, float64.
    pattern
        CFA layout: ``RGGB``, ``BGGR``, ``GRBG`` or ``GBRG``.

    Returns
    -------
    numpy.ndarray
        RGB view ``(3, H, W)``, not clipped.

    Notes
    -----
    A missing value is the bilinear estimate plus a gain times the discrete Laplacian
    Δ of the colour sampled at the pixel (paper Eq. 1 and its analogues):

    * G at an R (or B) site: ``ĝ_bilinear + ½ Δ_R``,
    * R (or B) at a G site: ``r̂_bilinear + ⅝ Δ_G``,
    * R at a B site (B at an R site): ``r̂_bilinear + ¾ Δ_B``.

    Each is one 5×5 filter of :data:`KERNELS` applied to the whole mosaic (``scipy``
    ``reflect`` borders) and kept at the sites where it applies; sampled values are
    kept as they are. At a G site the filter ``KERNELS[1]`` serves the colour whose
    samples lie along the row, ``KERNELS[2]`` the one along the column.

    Examples
    --------
    A flat colour (R, G, B) = (0.2, 0.5, 0.8) seen through an ``RGGB`` filter is
    recovered two pixels away from the border, where the 5×5 filters read only
    genuine samples:

    >>> raw = np.tile([[0.2, 0.5], [0.5, 0.8]], (4, 4))
    >>> rgb = demosaic_malvar2004_numpy(raw, pattern="RGGB")
    >>> np.allclose(rgb[:, 2:-2, 2:-2], [[[0.2]], [[0.5]], [[0.8]]])
    True
    """
    check_mosaic(raw, "demosaic_malvar2004_numpy", batched=False)
    cfa = np.asarray(raw, dtype=np.float64)
    r_m, g_m, b_m = masks_numpy(cfa.shape, check_pattern(pattern))
    at_rb, along_row, along_column, across = (ndimage.convolve(cfa, kernel) for kernel in KERNELS)
    red_rows, blue_rows = r_m.any(axis=1)[:, None], b_m.any(axis=1)[:, None]
    red_columns, blue_columns = r_m.any(axis=0)[None], b_m.any(axis=0)[None]
    # colour_demosaicing.demosaicing_CFA_Bayer_Malvar2004 (colour-demosaicing 0.2.7, BSD-3-Clause,
    # Colour Developers) operation for operation, so bit for bit the library's result; written
    # out because importing colour-demosaicing imports all of colour (about a second).
    g = np.where(r_m | b_m, at_rb, cfa * g_m)
    r = np.where(red_rows & blue_columns, along_row, cfa * r_m)
    r = np.where(blue_rows & red_columns, along_column, r)
    b = np.where(blue_rows & red_columns, along_row, cfa * b_m)
    b = np.where(red_rows & blue_columns, along_column, b)
    r = np.where(blue_rows & blue_columns, across, r)
    b = np.where(red_rows & red_columns, across, b)
    return np.stack([r, g, b])


def demosaic_malvar2004(raw: torch.Tensor, *, pattern: str) -> torch.Tensor:
    """Torch twin of :func:`demosaic_malvar2004_numpy` on a batch ``(N, H, W)`` → ``(N, 3, H, W)``.

    Examples
    --------
    >>> raw = np.random.default_rng(0).random((4, 6))
    >>> got = demosaic_malvar2004(torch.from_numpy(raw)[None], pattern="GRBG")[0].numpy()
    >>> bool(np.abs(got - demosaic_malvar2004_numpy(raw, pattern="GRBG")).max() < 1e-12)
    True
    """
    check_mosaic(raw, "demosaic_malvar2004", batched=True)
    pattern = check_pattern(pattern)
    red, green, blue = site_selectors(raw.shape[-2:], pattern, dtype=raw.dtype, device=raw.device)
    red_rows = row_mask(raw.shape[-2:], pattern, 0, device=raw.device)
    kernels = cached(("malvar2004.kernels", raw.dtype, raw.device), lambda: torch.as_tensor(KERNELS, dtype=raw.dtype, device=raw.device))
    at_rb, along_row, along_column, across = convolve2d(raw[:, None].expand(-1, len(kernels), -1, -1), kernels, "reflect").unbind(1)
    # At a green site the colour of its row comes from the row filter, the other one
    # from the column filter.
    r = select(red, raw, select(green, torch.where(red_rows, along_row, along_column), across))
    b = select(blue, raw, select(green, torch.where(red_rows, along_column, along_row), across))
    return torch.stack([r, select(green, raw, at_rb), b], 1)


class Malvar2004(Stage):
    """Gradient-corrected bilinear interpolation (Malvar, He, Cutler 2004)."""

    kind = "demosaic"
    method = "malvar2004"
    takes = "raw"
    gives = "rgb"
    cfa_aware = True
    numpy = staticmethod(demosaic_malvar2004_numpy)
    torch = staticmethod(demosaic_malvar2004)
