"""Gradient-corrected linear demosaicing of Malvar, He and Cutler (2004).

Each missing colour is its bilinear estimate corrected by a scaled Laplacian of the
colour sampled at the pixel; per CFA site and colour that is one fixed 5×5 linear
filter (four distinct ones in all). The method is linear in the mosaic, hence
differentiable everywhere; the torch backend reproduces
``colour_demosaicing.demosaicing_CFA_Bayer_Malvar2004`` to float rounding.

References
----------
H. S. Malvar, L.-W. He and R. Cutler, "High-Quality Linear Interpolation for
Demosaicing of Bayer-Patterned Color Images", Proc. IEEE International Conference on
Acoustics, Speech, and Signal Processing (ICASSP), vol. 3, pp. 485–488, 2004.
"""

from __future__ import annotations

import numpy as np
import torch
from colour_demosaicing import demosaicing_CFA_Bayer_Malvar2004

from ...arrays import check_mosaic
from ...cfa import check_pattern, row_mask, select, site_selectors
from ...filters import convolve2d
from ...memory import cached
from ..base import Stage

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
    return np.ascontiguousarray(np.moveaxis(demosaicing_CFA_Bayer_Malvar2004(raw, check_pattern(pattern)), -1, 0))


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
