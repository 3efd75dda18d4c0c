"""Distances between a reference view and a modified view, for drift forensics.

Forensics (Oala et al., TMLR 2023, Eq. 35) keeps a modified view ``V`` close to the
reference view ``V̄`` with a penalty ``λ · d(V̄, V)``. Distances are registered through
the plugin registry (hook ``ispkit_distances``); ispkit provides

``l2``
    Mean squared difference over every pixel, channel and image,
    ``d = (1 / NCHW) Σ (V̄ − V)²`` (views in [0, 1], so ``d`` ∈ [0, 1]).
``ssim``
    ``1 − SSIM(V̄, V)`` with the structural similarity of Wang et al., "Image Quality
    Assessment: From Error Visibility to Structural Similarity", IEEE TIP 2004: Gaussian
    window σ = 1.5 (truncated at 3.5 σ, 11 × 11), ``C1 = (0.01 L)²``, ``C2 = (0.03 L)²``
    with data range ``L = 1``, population (co)variances, reflected borders and the mean
    taken over the interior (the window's half-width cropped), per channel, then
    averaged -- as ``skimage.metrics.structural_similarity(..., gaussian_weights=True,
    sigma=1.5, use_sample_covariance=False, data_range=1)`` (equal to 1e-12 in float64
    and 1e-5 in float32, on natural images). The released code added
    the SSIM term with the wrong sign (rewarding dissimilarity); here ``d`` grows as the
    views differ, like ``l2``.

A distance is ``fn(reference, view) -> scalar tensor``, differentiable in ``view``, on
batches ``(N, 3, H, W)``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..errors import InputError
from ..filters import gaussian_filter
from ..registry import get_registry

__all__ = ["Distance", "l2_distance", "ssim", "ssim_distance", "L2", "SSIM", "distances", "distance"]

HOOK = "ispkit_distances"
"""The hook distances are registered through (its kind: :data:`ispkit.drift.hookspecs.DISTANCES`)."""

SSIM_SIGMA = 1.5
SSIM_TRUNCATE = 3.5


@dataclass(frozen=True)
class Distance:
    """A registered view distance: ``fn(reference, view) -> scalar`` and a one-line summary."""

    name: str
    fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    summary: str = ""


def _check(reference: torch.Tensor, view: torch.Tensor, where: str) -> None:
    if reference.shape != view.shape or view.ndim != 4:
        raise InputError(f"{where}: expected two view batches (N, C, H, W) of one shape, got {tuple(reference.shape)} and {tuple(view.shape)}")


def l2_distance(reference: torch.Tensor, view: torch.Tensor) -> torch.Tensor:
    """Mean squared difference.

    >>> l2_distance(torch.zeros(1, 3, 2, 2), torch.full((1, 3, 2, 2), 0.5)).item()
    0.25
    """
    _check(reference, view, "l2_distance")
    return ((reference - view) ** 2).mean()


def ssim(reference: torch.Tensor, view: torch.Tensor) -> torch.Tensor:
    """Mean structural similarity of two view batches in [0, 1] (see the module docstring).

    >>> x = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    >>> round(ssim(x, x).item(), 6)
    1.0
    """
    _check(reference, view, "ssim")
    n, c, h, w = view.shape
    pad = int(SSIM_TRUNCATE * SSIM_SIGMA + 0.5)
    if h <= 2 * pad or w <= 2 * pad:
        raise InputError(f"ssim: views must be larger than {2 * pad} pixels in each direction, got {h}×{w}")
    stack = torch.cat([reference, view, reference * reference, view * view, reference * view]).flatten(0, 1)
    mu_x, mu_y, xx, yy, xy = gaussian_filter(stack, SSIM_SIGMA, truncate=SSIM_TRUNCATE).unflatten(0, (5 * n, c)).split(n)
    var_x, var_y, cov = xx - mu_x**2, yy - mu_y**2, xy - mu_x * mu_y
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return s[..., pad : h - pad, pad : w - pad].mean()


def ssim_distance(reference: torch.Tensor, view: torch.Tensor) -> torch.Tensor:
    """``1 − SSIM``: 0 for identical views, growing as they differ."""
    return 1 - ssim(reference, view)


L2 = Distance("l2", l2_distance, "mean squared difference of the views")
SSIM = Distance("ssim", ssim_distance, "1 − SSIM (Gaussian window σ = 1.5)")


def distances() -> dict[str, Distance]:
    """Registered distances by name."""
    return get_registry().items(HOOK)  # type: ignore[return-value]


def distance(name: str) -> Distance:
    """The registered distance ``name`` (an unknown name is an :class:`InputError` naming close matches)."""
    return get_registry().get(HOOK, name)
