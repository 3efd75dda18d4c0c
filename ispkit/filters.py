"""Torch twins of the ``scipy.ndimage`` filters used by the static pipeline.

Every function here reproduces its ``scipy.ndimage`` namesake on the last two axes of a
tensor, borders included, so that a torch stage equals its numpy reference to float
rounding. Border modes use scipy's names:

============  ==========================  =====================
scipy mode    extension of ``a b c d``    numpy ``np.pad`` name
============  ==========================  =====================
``reflect``   ``b a | a b c d | d c``     ``symmetric``
``mirror``    ``c b | a b c d | c b``     ``reflect``
``nearest``   ``a a | a b c d | d d``     ``edge``
``wrap``      ``c d | a b c d | a b``     ``wrap``
``constant``  ``0 0 | a b c d | 0 0``     ``constant``
============  ==========================  =====================

The index arithmetic is periodic, so pads wider than the image (tiny inputs) extend
exactly as scipy does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .memory import cached

if TYPE_CHECKING:
    import torch
    import torch.nn.functional as F
else:
    from ._torch import functional as F
    from ._torch import torch

__all__ = [
    "BORDER_MODES",
    "pad_indices",
    "pad2d",
    "correlate2d",
    "convolve2d",
    "correlate1d",
    "gaussian_radius",
    "gaussian_kernel1d",
    "gaussian_filter",
    "median_filter",
]

BORDER_MODES = ("reflect", "mirror", "nearest", "wrap", "constant")


def pad_indices(n: int, before: int, after: int, mode: str, device: torch.device | str | None = None) -> torch.Tensor:
    """Source indices along one axis of length ``n`` for a scipy-style extension.

    >>> pad_indices(4, 2, 2, "reflect").tolist()
    [1, 0, 0, 1, 2, 3, 3, 2]
    >>> pad_indices(4, 2, 2, "mirror").tolist()
    [2, 1, 0, 1, 2, 3, 2, 1]
    """
    i = torch.arange(-before, n + after, device=device)
    if mode == "reflect":
        i = i % (2 * n)
        return torch.where(i >= n, 2 * n - 1 - i, i)
    if mode == "mirror":
        if n == 1:
            return torch.zeros_like(i)
        i = i % (2 * n - 2)
        return torch.where(i >= n, 2 * n - 2 - i, i)
    if mode == "nearest":
        return i.clamp(0, n - 1)
    if mode == "wrap":
        return i % n
    raise ValueError(f"unknown border mode {mode!r}; expected one of {BORDER_MODES}")


def _indices(n: int, before: int, after: int, mode: str, device: torch.device, shift: int = 0) -> torch.Tensor:
    """:func:`pad_indices` plus ``shift``, built once per argument set (shared: never modify it)."""
    return cached(("filters.pad", n, before, after, mode, device, shift), lambda: pad_indices(n, before, after, mode, device) + shift)


def pad2d(x: torch.Tensor, pad: tuple[int, int, int, int], mode: str, cval: float = 0.0) -> torch.Tensor:
    """Extend the last two axes of ``x`` by ``pad = (top, bottom, left, right)`` pixels.

    The interior is copied once into a new tensor and only the thin border bands are
    gathered (a gather along the last axis of the whole image would cost several
    copies); autograd flows through every copy.
    """
    top, bottom, left, right = pad
    if mode == "constant":
        return F.pad(x, (left, right, top, bottom), mode="constant", value=cval)
    h, w = x.shape[-2:]
    out = x.new_empty(*x.shape[:-2], h + top + bottom, w + left + right)
    out[..., top : top + h, left : left + w] = x
    rows = _indices(h, top, bottom, mode, x.device)
    if top:
        out[..., :top, left : left + w] = x.index_select(-2, rows[:top])
    if bottom:
        out[..., top + h :, left : left + w] = x.index_select(-2, rows[top + h :])
    cols = _indices(w, left, right, mode, x.device, shift=left)
    if left:
        out[..., :left] = out.index_select(-1, cols[:left])
    if right:
        out[..., left + w :] = out.index_select(-1, cols[left + w :])
    return out


def correlate2d(x: torch.Tensor, kernel: torch.Tensor, mode: str = "reflect", cval: float = 0.0) -> torch.Tensor:
    """``scipy.ndimage.correlate`` of the ``(H, W)`` planes of ``x`` with odd-sized kernels.

    All planes are convolved as the channels of one depthwise (``groups``)
    convolution after a single padding, which on CPU is an order of magnitude faster
    than a batch of single-channel images.

    Parameters
    ----------
    x
        Tensor ``(*, H, W)``; with a kernel stack, ``(*, C, H, W)``.
    kernel
        One kernel ``(kh, kw)`` for every plane, or a stack ``(C, kh, kw)`` whose
        kernel ``c`` filters channel ``c``; odd ``kh`` and ``kw``; differentiable.
    mode
        scipy border mode (see module docstring).
    """
    kh, kw = kernel.shape[-2:]
    if kh % 2 == 0 or kw % 2 == 0:
        raise ValueError(f"kernel must have odd height and width, got {tuple(kernel.shape)}")
    kernels = kernel.reshape(-1, kh, kw)
    if kernels.shape[0] > 1 and (x.ndim < 3 or x.shape[-3] != kernels.shape[0]):
        raise ValueError(f"a stack of {kernels.shape[0]} kernels needs x of shape (*, {kernels.shape[0]}, H, W), got {tuple(x.shape)}")
    planes = x.reshape(1, -1, *x.shape[-2:])
    padded = pad2d(planes, (kh // 2, kh // 2, kw // 2, kw // 2), mode, cval)
    weight = kernels.to(x.dtype).repeat(planes.shape[1] // kernels.shape[0], 1, 1)[:, None]
    return _depthwise(padded, weight).reshape(x.shape)


_MIN_CHANNELS = 16  # below this, oneDNN's depthwise convolution runs far under its speed
_MIN_STRIP = 32


def _depthwise(padded: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Valid depthwise convolution of ``padded`` ``(1, n, H + kh - 1, W + kw - 1)`` by ``weight`` ``(n, 1, kh, kw)``.

    With few channels (one large image, say) each plane is cut into horizontal strips
    that overlap by ``kh - 1`` rows and the strips are convolved as extra channels:
    the same sums, an order of magnitude faster on CPU than one huge plane.
    """
    n, _, kh, _ = weight.shape
    h = padded.shape[-2] - kh + 1
    strips = min(-(-_MIN_CHANNELS // n), h // _MIN_STRIP)
    if strips < 2:
        return F.conv2d(padded, weight, groups=n)
    rows = -(-h // strips)  # output rows per strip; the last strip reads zero rows past the end
    extra = rows * strips - h
    tall = F.pad(padded, (0, 0, 0, extra)) if extra else padded
    cut = tall.unfold(-2, rows + kh - 1, rows).permute(0, 1, 2, 4, 3)  # (1, n, strips, rows + kh - 1, W')
    cut = cut.reshape(1, n * strips, rows + kh - 1, padded.shape[-1])
    out = F.conv2d(cut, weight.repeat_interleave(strips, 0), groups=n * strips)
    return out.reshape(1, n, strips * rows, -1)[:, :, :h]


def convolve2d(x: torch.Tensor, kernel: torch.Tensor, mode: str = "reflect", cval: float = 0.0) -> torch.Tensor:
    """``scipy.ndimage.convolve``: :func:`correlate2d` with the kernel(s) flipped on both axes."""
    return correlate2d(x, kernel.flip(-1, -2), mode, cval)


def correlate1d(x: torch.Tensor, weights: torch.Tensor, axis: int, mode: str = "reflect", cval: float = 0.0) -> torch.Tensor:
    """``scipy.ndimage.correlate1d`` along ``axis`` (``-1`` = rows' direction W, ``-2`` = H)."""
    n = weights.shape[0]
    if n % 2 == 0:
        raise ValueError(f"weights must have odd length, got {n}")
    if axis in (-1, x.ndim - 1):
        return correlate2d(x, weights[None, :], mode, cval)
    if axis in (-2, x.ndim - 2):
        return correlate2d(x, weights[:, None], mode, cval)
    raise ValueError(f"axis must be -1 or -2, got {axis}")


def gaussian_radius(sigma: float, truncate: float = 4.0) -> int:
    """The half-width ``int(truncate · sigma + 0.5)`` of scipy's Gaussian kernel (a host value).

    >>> gaussian_radius(1.0), gaussian_radius(0.5), gaussian_radius(0.1)
    (4, 2, 0)
    """
    return int(truncate * float(sigma) + 0.5)


def gaussian_kernel1d(
    sigma: torch.Tensor | float,
    truncate: float = 4.0,
    *,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
    radius: int | None = None,
) -> torch.Tensor:
    """Normalised 1-D Gaussian weights as ``scipy.ndimage.gaussian_filter`` builds them.

    The weights ``exp(-x² / 2σ²) / Σ`` are differentiable in ``sigma``. Their half-width
    is ``radius`` when given (a host value, e.g. :func:`gaussian_radius` of a copy of
    ``sigma`` kept on the host), else :func:`gaussian_radius` of the current value of
    ``sigma``, which reads a tensor ``sigma`` back to the host (a device
    synchronisation, and no ``torch.export``). ``dtype``: of the weights (default float64).

    >>> [round(v, 5) for v in gaussian_kernel1d(0.5).tolist()]
    [0.00026, 0.10645, 0.78657, 0.10645, 0.00026]
    """
    sigma = torch.as_tensor(sigma, dtype=torch.float64 if dtype is None else dtype, device=device)
    if radius is None:
        radius = gaussian_radius(float(sigma.detach()), truncate)
    x = torch.arange(-radius, radius + 1, dtype=sigma.dtype, device=sigma.device)
    phi = torch.exp(-0.5 * (x / sigma) ** 2)
    return phi / phi.sum()


def gaussian_filter(x: torch.Tensor, sigma: torch.Tensor | float, truncate: float = 4.0, mode: str = "reflect", *, radius: int | None = None) -> torch.Tensor:
    """``scipy.ndimage.gaussian_filter`` on the last two axes (separable, as scipy does).

    ``radius``: the kernel's half-width if known on the host (see
    :func:`gaussian_kernel1d`). A radius of 0 (``sigma`` below 0.125 at the default
    ``truncate``) is a one-tap kernel, the identity, as in scipy.
    """
    if radius is None:
        radius = gaussian_radius(float(torch.as_tensor(sigma).detach()), truncate)
    if radius == 0:
        return x
    weights = gaussian_kernel1d(sigma, truncate, dtype=x.dtype, device=x.device, radius=radius)
    return correlate1d(correlate1d(x, weights, -2, mode), weights, -1, mode)


def median_filter(x: torch.Tensor, size: int = 3, mode: str = "reflect") -> torch.Tensor:
    """``scipy.ndimage.median_filter`` with a square ``size``×``size`` footprint.

    The gradient flows to the selected (median) sample, which makes the filter
    differentiable almost everywhere in its input.
    """
    if size % 2 == 0 or size < 1:
        raise ValueError(f"median size must be a positive odd integer, got {size}")
    r = size // 2
    padded = pad2d(x.reshape(-1, 1, *x.shape[-2:]), (r, r, r, r), mode)
    patches = F.unfold(padded, size)  # (B, size*size, H*W)
    med = patches.median(dim=1).values if size > 1 else patches[:, 0]
    return med.reshape(x.shape)
