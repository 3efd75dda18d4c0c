"""Total-variation denoising of the luma plane (Chambolle 2004), as ``skimage.restoration.denoise_tv_chambolle``.

Minimises the ROF energy ``½‖u − y‖² + weight · TV(u)`` by Chambolle's projection
(dual) algorithm with step ``τ = 1/4``: ``p ← (p − τ ∇(div p ... )) / (1 + τ/weight · |g|)``
on forward differences with Neumann borders.

Exact semantics of the reference, ``denoise_tv_chambolle(y, weight, eps, max_num_iter)``
(scikit-image ≥ 0.19, ``_denoise_tv_chambolle_nd``), reproduced by the torch backend
operation by operation:

* iteration ``i`` computes ``d = −div p`` (``d = 0`` at ``i = 0``), ``u = y + d``, the energy
  ``E_i = (Σ d² + weight · Σ |∇u|) / size``, then updates ``p ← (p − τ ∇u) / (1 + (τ/weight) |∇u|)``;
* **stopping rule**: at ``i ≥ 1`` it returns ``u`` as soon as ``|E_{i−1} − E_i| < eps · E_0``;
  otherwise it returns the ``u`` of iteration ``max_num_iter − 1``. The torch backend
  applies the rule image by image in a batch (``eps = 0`` runs exactly ``max_num_iter``
  iterations). Energies are summed in a different order, so a criterion within rounding
  of the threshold could stop one iteration apart (not observed in the tests).

Measured agreement with scikit-image: ≤ 1e-15 in float64, ≤ 1e-6 in float32. The torch
backend is differentiable in ``y`` and ``weight`` (``|∇u|`` uses a square root whose
gradient is taken as 0 where ``∇u = 0``); ``eps`` and ``max_num_iter`` are discrete.

References
----------
A. Chambolle, "An algorithm for total variation minimization and applications",
Journal of Mathematical Imaging and Vision 20, 89–97 (2004), doi:10.1023/B:JMIV.0000011325.36760.1e.

Examples
--------
>>> import numpy as np, torch
>>> y = np.random.default_rng(0).random((8, 9))
>>> ref = tv_chambolle_numpy(y, np.array(0.1), np.array(2e-4), 50)
>>> out = tv_chambolle(torch.from_numpy(y)[None], torch.tensor(0.1, dtype=torch.float64), torch.tensor(2e-4, dtype=torch.float64), 50)
>>> bool(np.abs(out[0].numpy() - ref).max() < 1e-12)
True
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from skimage.restoration import denoise_tv_chambolle

from ispkit.arrays import check_plane
from ispkit.stages.base import Param, Stage

from ._common import as_float, as_tensor, require

__all__ = ["tv_chambolle_numpy", "tv_chambolle", "TVChambolleDenoise"]

TAU = 1.0 / (2.0 * 2)  # scikit-image's τ = 1 / (2 · ndim)


def _check(max_num_iter: int, where: str) -> None:
    require(max_num_iter >= 1, f"{where}: max_num_iter must be ≥ 1, got {max_num_iter}")


def tv_chambolle_numpy(y: np.ndarray, weight: np.ndarray, eps: np.ndarray, max_num_iter: int) -> np.ndarray:
    """Reference: ``skimage.restoration.denoise_tv_chambolle(y, weight, eps, max_num_iter)`` on ``(H, W)``."""
    check_plane(y, "tv_chambolle_numpy", batched=False)
    _check(max_num_iter, "tv_chambolle_numpy")
    require(as_float(weight) > 0, f"tv_chambolle_numpy: weight must be > 0, got {as_float(weight)}")
    return denoise_tv_chambolle(np.asarray(y, dtype=np.float64), weight=as_float(weight), eps=as_float(eps), max_num_iter=max_num_iter)


def _safe_sqrt(x: torch.Tensor) -> torch.Tensor:
    """``sqrt(x)`` for ``x ≥ 0`` with gradient 0 (not ∞) at 0."""
    positive = x > 0
    return torch.where(positive, torch.sqrt(torch.where(positive, x, torch.ones_like(x))), torch.zeros_like(x))


def tv_chambolle(y: torch.Tensor, weight: torch.Tensor, eps: torch.Tensor, max_num_iter: int) -> torch.Tensor:
    """Torch twin of :func:`tv_chambolle_numpy` on ``(N, H, W)``; differentiable in ``y`` and ``weight``."""
    check_plane(y, "tv_chambolle", batched=True)
    _check(max_num_iter, "tv_chambolle")
    weight, eps = as_tensor(weight, y), float(as_tensor(eps, y).detach())
    require(float(weight.detach()) > 0, f"tv_chambolle: weight must be > 0, got {float(weight.detach())}")
    n = y.shape[0]
    size = y.shape[-2] * y.shape[-1]
    p0 = p1 = torch.zeros_like(y)
    result = y
    done = torch.zeros(n, dtype=torch.bool, device=y.device)
    e_init = e_prev = None
    out = y
    for i in range(max_num_iter):
        if i > 0:
            d = -(p0 + p1)
            d = d + F.pad(p0[..., :-1, :], (0, 0, 1, 0))
            d = d + F.pad(p1[..., :, :-1], (1, 0, 0, 0))
            out = y + d
        else:
            d = torch.zeros_like(y)
            out = y
        g0 = F.pad(torch.diff(out, dim=-2), (0, 0, 0, 1))
        g1 = F.pad(torch.diff(out, dim=-1), (0, 1, 0, 0))
        norm = _safe_sqrt(g0**2 + g1**2)
        with torch.no_grad():
            energy = ((d**2).sum(dim=(-2, -1)) + weight * norm.sum(dim=(-2, -1))) / float(size)
            if i == 0:
                e_init = e_prev = energy
            else:
                stop = ((e_prev - energy).abs() < eps * e_init) & ~done
                e_prev = energy
        if i > 0 and bool(stop.any()):
            result = torch.where(stop[:, None, None], out, result)
            done = done | stop
            if bool(done.all()):
                return result
        scale = norm * (TAU / weight) + 1.0
        p0 = (p0 - TAU * g0) / scale
        p1 = (p1 - TAU * g1) / scale
    return torch.where(done[:, None, None], result, out)


class TVChambolleDenoise(Stage):
    """Denoise the luma plane by total-variation minimisation (Chambolle 2004; scikit-image's ``denoise_tv_chambolle``)."""

    kind = "denoise"
    method = "tv_chambolle"
    takes = "luma"
    gives = "luma"
    params = (
        Param("weight", (), 0.1, "TV regularisation weight λ of ½‖u − y‖² + λ·TV(u), in Y units", bounds=(1e-6, 10.0)),
        Param("eps", (), 2e-4, "stop when the energy changes by less than eps · E_0 (0: run max_num_iter iterations)", bounds=(0.0, 1.0), differentiable=False),
        Param("max_num_iter", (), 200, "maximal number of Chambolle iterations", bounds=(1, 10000), differentiable=False, dtype=int),
    )
    numpy = staticmethod(tv_chambolle_numpy)
    torch = staticmethod(tv_chambolle)
