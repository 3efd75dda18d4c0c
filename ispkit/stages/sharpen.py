"""Sharpening of the luma plane Y (paper §4.2.1, Eqs. 12–18; kernel of Eq. 13 and Eq. 30).

Oala et al., "Data Models for Dataset Drift Controls in Machine Learning With Optical
Images", TMLR 2023, sharpen the Y plane of skimage's YUV; U and V pass through. Two
methods:

* ``filter``: convolution with a free 3×3 kernel, at θ_stat the Laplacian sharpening
  kernel of Eq. 13 (reference: ``scipy.ndimage.convolve``, via :mod:`.luma_convolution`).
* ``unsharp_mask``: ``Y + amount · (Y − G_radius ∗ Y)``
  (reference: ``skimage.filters.unsharp_mask(..., preserve_range=True)``).

Border rule, both methods and both backends: scipy's ``mode="reflect"``
(edge-inclusive symmetric, ``b a | a b c d | d c``). Results are not clipped.

>>> y = np.zeros((3, 3)); y[1, 1] = 1.0
>>> SharpenFilter.numpy(y, np.array(SharpenFilter.param("kernel").default)).tolist()
[[0.0, -1.0, 0.0], [-1.0, 5.0, -1.0], [0.0, -1.0, 0.0]]
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np
from skimage import filters as skfilters

from .. import filters
from ..arrays import check_plane
from .base import Param, Stage
from .luma_convolution import convolve_luma, convolve_luma_numpy

if TYPE_CHECKING:
    import torch
else:
    from .._torch import torch

__all__ = ["SharpenFilter", "unsharp_mask_numpy", "unsharp_mask", "UnsharpMask"]


class SharpenFilter(Stage):
    """Sharpen the luma plane by convolution with a 3×3 kernel.

    At θ_stat the kernel is the Laplacian sharpening kernel of Eq. 13 / Eq. 30,
    ``[[0, -1, 0], [-1, 5, -1], [0, -1, 0]]``, whose weights sum to 1 so that flat
    regions are unchanged.
    """

    kind = "sharpen"
    method = "filter"
    takes = "luma"
    gives = "luma"
    params = (
        Param(
            "kernel",
            (3, 3),
            ((0.0, -1.0, 0.0), (-1.0, 5.0, -1.0), (0.0, -1.0, 0.0)),
            "3×3 convolution kernel applied to Y (scipy.ndimage.convolve orientation)",
            bounds=(-16.0, 16.0),
        ),
    )
    numpy = staticmethod(convolve_luma_numpy)
    torch = staticmethod(convolve_luma)


def unsharp_mask_numpy(y: np.ndarray, radius: np.ndarray, amount: np.ndarray) -> np.ndarray:
    """Unsharp masking of the plane ``y`` ``(H, W)``: ``y + amount · (y − G_radius ∗ y)``.

    This is ``skimage.filters.unsharp_mask(y, radius, amount, preserve_range=True)``,
    whose blur is ``scipy.ndimage.gaussian_filter(y, radius, mode="reflect")``
    (truncate 4.0) and which does not clip when ``preserve_range=True``.
    """
    check_plane(y, "unsharp_mask_numpy", batched=False)
    sharpened: np.ndarray = skfilters.unsharp_mask(y, radius=float(radius), amount=float(amount), preserve_range=True)
    return sharpened


def unsharp_mask(y: torch.Tensor, radius: torch.Tensor, amount: torch.Tensor, *, host: Mapping[str, float] | None = None) -> torch.Tensor:
    """Torch twin of :func:`unsharp_mask_numpy` on ``(N, H, W)``; differentiable in ``radius``, ``amount`` and ``y``.

    The Gaussian weights are differentiable in ``radius``; their support
    ``2 · int(4 · radius + 0.5) + 1`` follows its current value, as scipy's does: taken
    from ``host["radius"]`` when given (what :class:`~ispkit.stages.module.StageModule`
    passes, so that no call reads the device), else read from ``radius``.
    """
    check_plane(y, "unsharp_mask", batched=True)
    support = filters.gaussian_radius(host["radius"]) if host is not None else None
    return y + amount * (y - filters.gaussian_filter(y, radius, mode="reflect", radius=support))


class UnsharpMask(Stage):
    """Sharpen the luma plane by unsharp masking: ``Y + amount · (Y − G_radius ∗ Y)``.

    ``radius`` is the standard deviation (pixels) of the Gaussian blur G, truncated at
    4 σ; below 0.125 the blur has a single tap, so the stage is the identity and has no
    gradient in ``radius``. ``amount`` scales the detail ``Y − G ∗ Y``: 0 is the identity,
    positive values sharpen and ``-1`` gives the blurred plane ``G ∗ Y`` itself, the
    lower bound (below it the detail would be subtracted more than once).

    The released code called ``unsharp_mask(..., multichannel=True)`` on the 2-D Y
    plane, which took the last axis for channels and so blurred along the vertical
    axis only; both backends here blur in 2-D, as unsharp masking intends.
    """

    kind = "sharpen"
    method = "unsharp_mask"
    takes = "luma"
    gives = "luma"
    params = (
        Param("radius", (), 1.0, "standard deviation of the Gaussian blur, in pixels", bounds=(0.05, 10.0)),
        Param("amount", (), 1.0, "gain of the detail Y − G∗Y (0: identity, -1: the blur itself)", bounds=(-1.0, 10.0)),
    )
    host_params = ("radius",)
    numpy = staticmethod(unsharp_mask_numpy)
    torch = staticmethod(unsharp_mask)
