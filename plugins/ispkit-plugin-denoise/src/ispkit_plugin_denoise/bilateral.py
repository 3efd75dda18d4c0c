"""Bilateral filter of the luma plane (Tomasi & Manduchi 1998), as ``skimage.restoration.denoise_bilateral``.

Each output pixel is the normalised sum over a ``win_size``×``win_size`` window of
``spatial weight × colour weight × value``, with Gaussian weights of the spatial
offset (σ = ``sigma_spatial``) and of the grey-level distance to the centre pixel
(σ = ``sigma_color``).

Exact semantics of the reference, ``denoise_bilateral(y, win_size, sigma_color,
sigma_spatial, bins, mode="symmetric")`` (scikit-image 0.22–0.26), reproduced by the
torch backend operation by operation:

* **window**: ``win_size`` (odd); ``0`` here means scikit-image's automatic size (piecewise constant in ``sigma_spatial``, so the gradient in it ignores the window jumps)
  ``max(5, 2·ceil(3·sigma_spatial) + 1)``.
* **spatial weights**: scikit-image builds ``exp(-½ d²/σ_s²)`` on the grid
  ``arange(-win//2, win//2 + 1)``², which has ``win + 1`` points per side, and reads it
  flat at ``kr·win + kc``. For ``win = 5`` the weight at window offset ``(0, 0)`` is thus
  the grid entry at ``(-3, -3)``, not the centre: the spatial kernel is *not* the
  radially symmetric Gaussian of the paper. The torch backend reproduces this
  indexing (:func:`spatial_weights`) so the two backends agree.
* **colour weights**: the distance ``|y_c − y_n|`` is binned,
  ``bin = min(floor(|y_c − y_n| · bins / (max − min)), bins − 1)``, and weighted by
  ``exp(-½ (bin · (max − min)/bins)² / σ_c²)`` (a look-up table of ``bins`` entries); the
  binning is reproduced exactly, so the colour weight is piecewise constant in the
  image (the torch gradient reaches ``y`` through the averaged values only) and smooth
  in ``sigma_color``.
* **negative values**: if ``min(y) < 0`` the image is shifted by ``−min`` before filtering
  and shifted back after; the bin width is then ``(max − min)/bins`` but the table is
  still built as ``k · max/bins`` from the unshifted ``max`` (a quirk of scikit-image,
  reproduced; with ``min(y) ≥ 0`` both are ``max/bins``). A constant image is returned
  unchanged.
* **border**: ``mode="symmetric"`` (edge-inclusive, ``b a | a b c d | d c``; scipy's
  ``"reflect"``, the built-in denoisers' rule). The mode is fixed: ispkit's
  :class:`~ispkit.Param` has no string parameters.

Measured agreement with scikit-image: ≤ 1e-15 in float64; ≤ 1e-4 in float32 (5e-5
measured: bin flips of rounded distances). Compared with the continuous (unbinned) Gaussian colour
weight, the default ``bins=10000`` changes outputs by ~1e-5.

References
----------
C. Tomasi and R. Manduchi, "Bilateral filtering for gray and color images", Proc.
ICCV 1998, pp. 839–846, doi:10.1109/ICCV.1998.710815.

Examples
--------
>>> import numpy as np, torch
>>> y = np.random.default_rng(0).random((8, 9))
>>> ref = bilateral_numpy(y, np.array(0.1), np.array(1.0), 5, 10000)
>>> out = bilateral(torch.from_numpy(y)[None], torch.tensor(0.1, dtype=torch.float64), torch.tensor(1.0, dtype=torch.float64), 5, 10000)
>>> bool(np.abs(out[0].numpy() - ref).max() < 1e-12)
True
"""

from __future__ import annotations

import math

import numpy as np
import torch
from skimage.restoration import denoise_bilateral

from ispkit import filters
from ispkit.arrays import check_plane
from ispkit.stages.base import Param, Stage

from ._common import as_float, as_tensor, require

__all__ = ["window_size", "spatial_weights", "bilateral_numpy", "bilateral", "BilateralDenoise"]


def window_size(win_size: int, sigma_spatial: float) -> int:
    """The window side: ``win_size``, or scikit-image's ``max(5, 2·ceil(3σ_s) + 1)`` when it is 0.

    >>> window_size(0, 1.0), window_size(0, 0.5), window_size(9, 1.0)
    (7, 5, 9)
    """
    return win_size if win_size else max(5, 2 * math.ceil(3 * sigma_spatial) + 1)


def _check(win_size: int, bins: int, where: str) -> None:
    require(win_size == 0 or (win_size % 2 == 1 and win_size >= 3), f"{where}: win_size must be 0 (automatic) or odd ≥ 3, got {win_size}")
    require(bins >= 1, f"{where}: bins must be ≥ 1, got {bins}")


def spatial_weights(win: int, sigma_spatial: torch.Tensor) -> torch.Tensor:
    """The ``(win, win)`` spatial weights scikit-image applies, differentiable in ``sigma_spatial``.

    scikit-image's table ``exp(-½ hypot(r, c)² / σ²)`` over ``r, c ∈ arange(-win//2, win//2 + 1)``
    (``win + 1`` values) read flat at ``kr·win + kc`` (see the module docstring).

    >>> w = spatial_weights(5, torch.tensor(1.0, dtype=torch.float64))
    >>> round(float(w[0, 0]), 6) == round(math.exp(-9.0), 6)   # grid point (-3, -3), not (-2, -2)
    True
    """
    grid = torch.arange(-win // 2, win // 2 + 1, dtype=sigma_spatial.dtype, device=sigma_spatial.device)
    rr, cc = torch.meshgrid(grid, grid, indexing="ij")
    distances = torch.hypot(rr, cc)
    table = torch.exp(-0.5 * (distances**2 / sigma_spatial**2)).reshape(-1)
    return table[: win * win].reshape(win, win)


def bilateral_numpy(y: np.ndarray, sigma_color: np.ndarray, sigma_spatial: np.ndarray, win_size: int, bins: int) -> np.ndarray:
    """Reference: ``skimage.restoration.denoise_bilateral(y, win_size or None, sigma_color, sigma_spatial, bins, mode="symmetric")`` on ``(H, W)``."""
    check_plane(y, "bilateral_numpy", batched=False)
    _check(win_size, bins, "bilateral_numpy")
    # scikit-image squeezes a one-row plane to (W,); the stage keeps the plane's shape
    return denoise_bilateral(
        np.asarray(y, dtype=np.float64),
        win_size=win_size or None,
        sigma_color=as_float(sigma_color),
        sigma_spatial=as_float(sigma_spatial),
        bins=bins,
        mode="symmetric",
    ).reshape(np.shape(y))


def bilateral(y: torch.Tensor, sigma_color: torch.Tensor, sigma_spatial: torch.Tensor, win_size: int, bins: int) -> torch.Tensor:
    """Torch twin of :func:`bilateral_numpy` on ``(N, H, W)``; differentiable in ``y``, ``sigma_color`` and ``sigma_spatial``.

    The colour weight uses the binned distance (as scikit-image), so it is piecewise
    constant in ``y``; the gradient in ``y`` flows through the averaged values.
    """
    check_plane(y, "bilateral", batched=True)
    _check(win_size, bins, "bilateral")
    sigma_color, sigma_spatial = as_tensor(sigma_color, y), as_tensor(sigma_spatial, y)
    win = window_size(win_size, float(sigma_spatial.detach()))
    ext = (win - 1) // 2
    h, w = y.shape[-2:]
    low = y.detach().amin(dim=(-2, -1), keepdim=True)
    high = y.detach().amax(dim=(-2, -1), keepdim=True)
    constant = low == high
    shift = torch.where(low < 0, low, torch.zeros_like(low))
    x = y - shift
    span = torch.where(constant, torch.ones_like(high), high - shift)  # scikit-image's max_value after the shift
    dist_scale = bins / span
    # scikit-image builds its colour table from the max *before* the shift: np.linspace(0, max, bins, endpoint=False)[k] = k · max/bins
    step = high / bins
    spatial = spatial_weights(win, sigma_spatial)
    padded = filters.pad2d(x, (ext, ext, ext, ext), "reflect")
    xd = x.detach()
    total = torch.zeros_like(x)
    total_weight = torch.zeros_like(x)
    for kr in range(win):
        for kc in range(win):
            values = padded[..., kr : kr + h, kc : kc + w]
            with torch.no_grad():
                dist = (xd - values.detach()).abs()  # sqrt(t·t) == |t| in IEEE arithmetic
                index = torch.clamp(torch.floor(dist * dist_scale), max=bins - 1)
                level = index * step
            colour = torch.exp(-0.5 * (level**2 / sigma_color**2))
            weight = spatial[kr, kc] * colour
            total = total + values * weight
            total_weight = total_weight + weight
    out = total / total_weight + shift
    return torch.where(constant, y, out)


class BilateralDenoise(Stage):
    """Denoise the luma plane by a bilateral filter (Tomasi & Manduchi 1998; scikit-image's ``denoise_bilateral``)."""

    kind = "denoise"
    method = "bilateral"
    takes = "luma"
    gives = "luma"
    params = (
        Param("sigma_color", (), 0.1, "standard deviation of the grey-level (range) Gaussian, in Y units", bounds=(1e-3, 10.0)),
        Param("sigma_spatial", (), 1.0, "standard deviation of the spatial Gaussian, in pixels", bounds=(0.1, 10.0)),
        Param("win_size", (), 0, "odd side of the window in pixels; 0: max(5, 2·ceil(3·sigma_spatial) + 1)", bounds=(0, 61), differentiable=False, dtype=int),
        Param("bins", (), 10000, "number of bins of the colour-distance look-up table (scikit-image)", bounds=(1, 10**7), differentiable=False, dtype=int),
    )
    numpy = staticmethod(bilateral_numpy)
    torch = staticmethod(bilateral)
