"""Bayer colour filter arrays (CFA).

A layout is named by the colours of its top-left 2×2 block read row by row, as in
colour-demosaicing: ``RGGB`` has red at (0, 0), green at (0, 1) and (1, 0), blue at
(1, 1). (Kornia's ``CFA.BG`` is ``RGGB`` in this naming.) The layout belongs to the
camera, not to a stage.

:func:`pack_bayer` turns a mosaic into four half-resolution planes (one per 2×2 site)
for task models trained directly on raw data (Oala et al., TMLR 2023, §5.3);
:func:`unpack_bayer` is its inverse.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

import numpy as np

from .errors import InputError, close_matches
from .memory import cached

if TYPE_CHECKING:
    import torch
else:
    from ._torch import torch

__all__ = [
    "BAYER_PATTERNS",
    "Pattern",
    "check_pattern",
    "site_channels",
    "masks_numpy",
    "masks_torch",
    "site_selectors",
    "row_mask",
    "select",
    "site_map_numpy",
    "site_map_torch",
    "pack_bayer",
    "unpack_bayer",
]

Pattern = Literal["RGGB", "BGGR", "GRBG", "GBRG"]
BAYER_PATTERNS: tuple[str, ...] = ("RGGB", "BGGR", "GRBG", "GBRG")
_CHANNEL = {"R": 0, "G": 1, "B": 2}


def check_pattern(pattern: str) -> str:
    """Return ``pattern`` upper-cased, or raise :class:`InputError` if it is no Bayer layout.

    >>> check_pattern("rggb")
    'RGGB'
    """
    if not isinstance(pattern, str) or pattern.upper() not in BAYER_PATTERNS:
        raise InputError(f"unknown CFA pattern {pattern!r}: {close_matches(str(pattern).upper(), BAYER_PATTERNS)}")
    return pattern.upper()


def site_channels(pattern: str) -> tuple[int, int, int, int]:
    """Channel index (0 = R, 1 = G, 2 = B) of the four 2×2 CFA sites in row-major order.

    >>> site_channels("GRBG")
    (1, 0, 2, 1)
    """
    return tuple(_CHANNEL[c] for c in check_pattern(pattern))  # type: ignore[return-value]


def masks_numpy(shape: Sequence[int], pattern: str) -> np.ndarray:
    """Boolean masks ``(3, H, W)`` that are true where the CFA samples R, G and B.

    Equal to ``colour_demosaicing.masks_CFA_Bayer(shape, pattern)`` stacked on axis 0.

    >>> masks_numpy((2, 2), "RGGB").astype(int).tolist()
    [[[1, 0], [0, 0]], [[0, 1], [1, 0]], [[0, 0], [0, 1]]]
    """
    h, w = shape
    masks = np.zeros((3, h, w), dtype=bool)
    for site, channel in enumerate(site_channels(pattern)):
        masks[channel, site // 2 :: 2, site % 2 :: 2] = True
    return masks


def masks_torch(shape: Sequence[int], pattern: str, *, dtype: torch.dtype, device: torch.device | str | None = None) -> torch.Tensor:
    """The masks of :func:`masks_numpy` as a ``(3, H, W)`` tensor of ``dtype`` (1 or 0).

    Built on ``device`` with torch operations (no host copy) and, in eager mode, once per
    shape, layout, dtype and device (:func:`ispkit.memory.cached`): the result is shared,
    so it must not be modified in place.

    >>> masks_torch((2, 2), "GRBG", dtype=torch.int64).tolist()
    [[[0, 1], [0, 0]], [[1, 0], [0, 1]], [[0, 0], [1, 0]]]
    """
    h, w = int(shape[0]), int(shape[1])
    pattern = check_pattern(pattern)
    device = torch.device(device) if device is not None else torch.device("cpu")
    return cached(("cfa.masks", h, w, pattern, dtype, device), lambda: _build_masks(h, w, pattern, dtype, device))


def _build_masks(h: int, w: int, pattern: str, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """``(3, H, W)``: channel ``c`` is 1 where the 2×2 site ``2 (i mod 2) + (j mod 2)`` has colour ``c``."""
    site = (torch.arange(h, device=device)[:, None] % 2) * 2 + torch.arange(w, device=device) % 2
    colour = torch.tensor(site_channels(pattern), device=device)[site]
    return (colour == torch.arange(3, device=device)[:, None, None]).to(dtype)


def site_selectors(
    shape: Sequence[int], pattern: str, *, dtype: torch.dtype, device: torch.device | str | None = None
) -> tuple[tuple[torch.Tensor, torch.Tensor], ...]:
    """For R, G and B: the mask of :func:`masks_torch` as 0/1 floats and its complement, ready for :func:`select`.

    Cached like :func:`masks_torch` (shared tensors: never modify them in place).
    """
    masks = masks_torch(shape, pattern, dtype=dtype, device=device)
    complements = cached(("cfa.complements", *masks.shape, check_pattern(pattern), dtype, masks.device), lambda: 1 - masks)
    return tuple(zip(masks.unbind(0), complements.unbind(0), strict=True))


def row_mask(shape: Sequence[int], pattern: str, channel: int, *, device: torch.device | str | None = None) -> torch.Tensor:
    """``(H, 1)`` booleans: the rows of the mosaic that hold samples of ``channel`` (0 = R, 2 = B)."""
    masks = masks_torch(shape, pattern, dtype=torch.bool, device=device)
    return cached(("cfa.rows", *masks.shape, check_pattern(pattern), channel, masks.device), lambda: masks[channel].any(-1, keepdim=True))


def select(selector: tuple[torch.Tensor, torch.Tensor], a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``torch.where(mask, a, b)`` for a mask given as 0/1 floats ``m`` with ``1 − m``: ``a·m + b·(1 − m)``.

    Exact for finite ``a`` and ``b`` (``x·1 = x``, ``x·0 = ±0`` and ``x ± 0 = x``, up to the
    sign of a zero) with the gradients of ``where`` (``m`` to ``a``, ``1 − m`` to ``b``),
    and an order of magnitude faster on a CPU than ``where`` with a boolean mask, which
    is not vectorised there.

    >>> m = torch.tensor([1.0, 0.0])
    >>> select((m, 1 - m), torch.tensor([0.5, 0.25]), torch.tensor([3.0, 4.0])).tolist()
    [0.5, 4.0]
    """
    mask, complement = selector
    return torch.addcmul(a * mask, b, complement)


def site_map_numpy(values: np.ndarray | Sequence[float], shape: Sequence[int]) -> np.ndarray:
    """Tile four per-site ``values`` (row-major 2×2 order) over an ``(H, W)`` mosaic."""
    h, w = shape
    return np.tile(np.asarray(values, dtype=float).reshape(2, 2), (h // 2, w // 2))


def site_map_torch(values: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    """Differentiable twin of :func:`site_map_numpy` for a ``(4,)`` tensor."""
    h, w = shape
    return values.reshape(2, 2).repeat(h // 2, w // 2)


def pack_bayer(raw: torch.Tensor) -> torch.Tensor:
    """Pack a Bayer mosaic ``(N, 1, H, W)`` or ``(N, H, W)`` into planes ``(N, 4, H/2, W/2)``.

    Plane ``k`` holds the samples of 2×2 site ``k`` in row-major order: (0, 0), (0, 1),
    (1, 0), (1, 1). The order does not depend on the CFA layout; the pattern string
    tells which plane is which colour (plane ``k`` has colour ``pattern[k]``, channel
    ``site_channels(pattern)[k]``), so an ``RGGB`` mosaic packs to R, G, G, B and a
    ``GRBG`` one to G, R, B, G. Pure slicing and stacking: differentiable, any dtype
    and device, no rescaling. :func:`unpack_bayer` is the inverse.

    Parameters
    ----------
    raw
        Mosaic batch ``(N, 1, H, W)`` or ``(N, H, W)`` with even ``H`` and ``W``.

    Returns
    -------
    torch.Tensor
        ``(N, 4, H/2, W/2)``, same dtype and device as ``raw``.

    Raises
    ------
    InputError
        If ``raw`` is not a tensor of rank 3 or 4 with one channel, or ``H`` or ``W``
        is odd or zero.

    Examples
    --------
    >>> packed = pack_bayer(torch.arange(16.0).reshape(1, 1, 4, 4))
    >>> packed.shape
    torch.Size([1, 4, 2, 2])
    >>> packed[0].tolist()
    [[[0.0, 2.0], [8.0, 10.0]], [[1.0, 3.0], [9.0, 11.0]], [[4.0, 6.0], [12.0, 14.0]], [[5.0, 7.0], [13.0, 15.0]]]
    >>> torch.equal(unpack_bayer(packed), torch.arange(16.0).reshape(1, 1, 4, 4))
    True
    """
    if not isinstance(raw, torch.Tensor):
        raise InputError(f"pack_bayer: expected a torch.Tensor mosaic, got {type(raw).__name__}")
    if raw.ndim == 4:
        if raw.shape[1] != 1:
            raise InputError(f"pack_bayer: expected a mosaic (N, 1, H, W) with one channel, got shape {tuple(raw.shape)}")
        raw = raw[:, 0]
    elif raw.ndim != 3:
        raise InputError(f"pack_bayer: expected a mosaic (N, 1, H, W) or (N, H, W), got shape {tuple(raw.shape)}")
    h, w = raw.shape[-2:]
    if h % 2 or w % 2 or h == 0 or w == 0:
        raise InputError(f"pack_bayer: mosaic height and width must be even and positive, got {h}×{w}")
    return torch.stack([raw[:, i::2, j::2] for i in (0, 1) for j in (0, 1)], dim=1)


def unpack_bayer(packed: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`pack_bayer`: planes ``(N, 4, h, w)`` to a mosaic ``(N, 1, 2h, 2w)``.

    Plane ``k`` goes to 2×2 site ``k`` in row-major order, (0, 0), (0, 1), (1, 0), (1, 1).
    Differentiable (an interleaving reshape).

    Parameters
    ----------
    packed
        Planes ``(N, 4, h, w)``.

    Returns
    -------
    torch.Tensor
        Mosaic ``(N, 1, 2h, 2w)``, same dtype and device as ``packed``.

    Raises
    ------
    InputError
        If ``packed`` is not a tensor of shape ``(N, 4, h, w)``.

    Examples
    --------
    >>> unpack_bayer(torch.tensor([[[[1.0]], [[2.0]], [[3.0]], [[4.0]]]]))[0, 0].tolist()
    [[1.0, 2.0], [3.0, 4.0]]
    """
    if not isinstance(packed, torch.Tensor):
        raise InputError(f"unpack_bayer: expected a torch.Tensor, got {type(packed).__name__}")
    if packed.ndim != 4 or packed.shape[1] != 4:
        raise InputError(f"unpack_bayer: expected packed planes (N, 4, h, w), got shape {tuple(packed.shape)}")
    n, _, h, w = packed.shape
    # (N, i, j, h, w) -> (N, h, i, w, j) -> (N, 1, 2h, 2w): row 2y + i, column 2x + j.
    return packed.reshape(n, 2, 2, h, w).permute(0, 3, 1, 4, 2).reshape(n, 1, 2 * h, 2 * w)
