"""Non-local means denoising of the luma plane (Buades, Coll & Morel 2005), as ``skimage.restoration.denoise_nl_means``.

Each output pixel is the weighted mean of the pixels of a ``(2·patch_distance + 1)²``
search window, weighted by the similarity of the ``patch_size``×``patch_size`` patches
around them.

Exact semantics of the reference, ``denoise_nl_means(y, patch_size, patch_distance, h,
fast_mode=False, sigma)`` (scikit-image's ``_nl_means_denoising_2d``, the pixelwise
algorithm; ``fast_mode`` is fixed to ``False``), reproduced by the torch backend:

* the image is padded by ``s // 2`` (``s = patch_size``) with numpy's ``"reflect"``
  (scipy's ``"mirror"``, ``c b | a b c d | c b``); search positions are restricted to the
  image (the window is clipped at the borders, not padded);
* patch weights ``w = exp(−(r² + c²) / (2A²))``, ``A = (s − 1)/4``, normalised to
  ``w / (Σw · h²)``;
* patch distance ``D = Σ w · ((P₁ − P₂)² − 2σ²)``; pixel weight ``exp(−max(0, D))``, but
  **0** when a partial sum over the first ``k`` patch rows (``1 ≤ k < s``) exceeds 5
  (scikit-image's early exit, ``DISTANCE_CUTOFF = 5``);
* output ``Σ weight · y / Σ weight``.

The torch backend vectorises this over all search offsets (one shifted patch-distance
map per offset). It is *not* bit-exact: the weights use the untruncated fast exp
(relative 2^-20). Measured agreement with scikit-image on random, binary and smooth
planes: ≤ 2e-7 in float64, ≤ 5e-6 in float32. It is differentiable in ``y``, ``h`` and ``sigma``
(almost everywhere: the cutoff and ``max(0, ·)`` are kinks).

References
----------
A. Buades, B. Coll and J.-M. Morel, "A non-local algorithm for image denoising",
Proc. CVPR 2005, vol. 2, pp. 60–65, doi:10.1109/CVPR.2005.38.

Examples
--------
>>> import numpy as np, torch
>>> y = np.random.default_rng(0).random((8, 9))
>>> ref = nl_means_numpy(y, np.array(0.2), np.array(0.0), 3, 2)
>>> t = lambda v: torch.tensor(v, dtype=torch.float64)
>>> out = nl_means(torch.from_numpy(y)[None], t(0.2), t(0.0), 3, 2)
>>> bool(np.abs(out[0].numpy() - ref).max() < 1e-6)
True
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from skimage.restoration import denoise_nl_means

from ispkit import filters
from ispkit.arrays import check_plane
from ispkit.stages.base import Param, Stage

from ._common import as_float, as_tensor, require

__all__ = ["nl_means_numpy", "nl_means", "NLMeansDenoise", "DISTANCE_CUTOFF"]

DISTANCE_CUTOFF = 5.0  # scikit-image's early exit of the patch distance
EXP_A = 1512775.3951951856938  # 2^20 / ln 2, scikit-image's _shared/fast_exp.h
EXP_BC = 1072632447  # 1023 · 2^20 − 60801


def fast_exp(y: torch.Tensor) -> torch.Tensor:
    """Schraudolph's exp approximation used by scikit-image (``_fast_exp``), continuous and differentiable.

    scikit-image writes ``int32(EXP_A·y) + EXP_BC`` into the high word of a double (low
    word 0), i.e. ``2^k · (1 + f)`` with ``k + f = (EXP_A·y + EXP_BC)/2^20 − 1023``, after
    truncating ``EXP_A·y`` to an integer. This is the same piecewise-linear function
    without the truncation (relative difference ≤ 2^-20 ≈ 1e-6, ~1e-7 on outputs), so its
    gradient is the slope of the line, not 0. Valid for ``−700 ≤ y ≤ 0`` (clamped below).

    >>> round(float(fast_exp(torch.tensor(0.0, dtype=torch.float64))), 4)  # exp(0) ≈ 0.9710 (min-RMS fit)
    0.971
    """
    z = (EXP_A * torch.clamp(y, min=-700.0) + EXP_BC) / 2.0**20 - 1023.0
    k = torch.floor(z).detach()
    return torch.exp2(k) * (1.0 + (z - k))


def _check(patch_size: int, patch_distance: int, where: str) -> None:
    require(patch_size % 2 == 1 and patch_size >= 3, f"{where}: patch_size must be odd and ≥ 3, got {patch_size}")
    require(patch_distance >= 1, f"{where}: patch_distance must be ≥ 1, got {patch_distance}")


def nl_means_numpy(y: np.ndarray, h: np.ndarray, sigma: np.ndarray, patch_size: int, patch_distance: int) -> np.ndarray:
    """Reference: ``skimage.restoration.denoise_nl_means(y, patch_size, patch_distance, h, fast_mode=False, sigma=sigma)`` on ``(H, W)``."""
    check_plane(y, "nl_means_numpy", batched=False)
    _check(patch_size, patch_distance, "nl_means_numpy")
    # scikit-image squeezes a one-row plane to (W,); the stage keeps the plane's shape
    return denoise_nl_means(
        np.asarray(y, dtype=np.float64),
        patch_size=patch_size,
        patch_distance=patch_distance,
        h=as_float(h),
        fast_mode=False,
        sigma=as_float(sigma),
        preserve_range=True,
    ).reshape(np.shape(y))


def nl_means(y: torch.Tensor, h: torch.Tensor, sigma: torch.Tensor, patch_size: int, patch_distance: int) -> torch.Tensor:
    """Torch twin of :func:`nl_means_numpy` on ``(N, H, W)``; differentiable in ``y``, ``h`` and ``sigma``."""
    check_plane(y, "nl_means", batched=True)
    _check(patch_size, patch_distance, "nl_means")
    h, sigma = as_tensor(h, y), as_tensor(sigma, y)
    s, d = patch_size, patch_distance
    off = s // 2
    rows, cols = y.shape[-2:]
    a = (s - 1.0) / 4.0
    grid = torch.arange(-off, off + 1, dtype=y.dtype, device=y.device)
    rr, cc = torch.meshgrid(grid, grid, indexing="ij")
    w = torch.exp(-(rr * rr + cc * cc) / (2 * a * a))
    w = w * (1.0 / (w.sum() * h * h))
    var = 2 * (sigma * sigma)
    padded = filters.pad2d(y, (off, off, off, off), "mirror")  # numpy "reflect"
    # room for the search offsets; positions outside the image get weight 0 below
    big = F.pad(padded, (d, d, d, d))
    hp, wp = padded.shape[-2:]
    inside = F.pad(torch.ones(rows, cols, dtype=torch.bool, device=y.device), (d, d, d, d))
    centre_values = F.pad(y, (d, d, d, d))
    kernel_rows = w.reshape(s, 1, 1, s)  # one 1-D row filter per patch row
    total = torch.zeros_like(y)
    total_weight = torch.zeros_like(y)
    for di in range(-d, d + 1):
        for dj in range(-d, d + 1):
            valid = inside[d + di : d + di + rows, d + dj : d + dj + cols]
            if not bool(valid.any()):
                continue
            other = big[..., d + di : d + di + hp, d + dj : d + dj + wp]
            sq = (padded - other) ** 2 - var  # (N, Hp, Wp)
            # row sums of the patch distance: R[a] = Σ_b w[a, b] · sq[r + a, c + b]
            row_sums = F.conv2d(sq.unsqueeze(1), kernel_rows)  # (N, s, Hp, W)
            parts = torch.stack([row_sums[:, k, k : k + rows, :] for k in range(s)], dim=1)  # (N, s, H, W)
            partial = parts.cumsum(dim=1)
            distance = partial[:, -1]
            cut = (partial[:, :-1] > DISTANCE_CUTOFF).any(dim=1)
            weight = fast_exp(-torch.clamp(distance, min=0.0))
            weight = torch.where(cut | ~valid, torch.zeros_like(weight), weight)
            values = centre_values[..., d + di : d + di + rows, d + dj : d + dj + cols]
            total = total + weight * values
            total_weight = total_weight + weight
    return total / total_weight


class NLMeansDenoise(Stage):
    """Denoise the luma plane by non-local means (Buades et al. 2005; scikit-image's ``denoise_nl_means``, pixelwise mode)."""

    kind = "denoise"
    method = "nl_means"
    takes = "luma"
    gives = "luma"
    params = (
        Param("h", (), 0.1, "cut-off distance of the patch weights exp(-D), in Y units", bounds=(1e-3, 10.0)),
        Param("sigma", (), 0.0, "known noise standard deviation subtracted from patch distances, in Y units", bounds=(0.0, 10.0)),
        Param("patch_size", (), 5, "odd side of the compared patches, in pixels", bounds=(3, 15), differentiable=False, dtype=int),
        Param("patch_distance", (), 3, "half side of the search window, in pixels", bounds=(1, 15), differentiable=False, dtype=int),
    )
    numpy = staticmethod(nl_means_numpy)
    torch = staticmethod(nl_means)
