"""Checks of the array contract (DESIGN.md): channel-first, floats in [0, 1], even sizes.

The shape checks are O(1) and run at the top of every public stage function; the
value check (:func:`check_finite`) reads the data once and runs where arrays enter a
pipeline.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ._torch import is_tensor
from .errors import InputError

if TYPE_CHECKING:
    import torch
else:
    from ._torch import torch

__all__ = ["check_mosaic", "check_raw_data", "check_rgb", "check_plane", "check_float", "check_finite"]


def _kind(x: Any) -> str:
    return "tensor" if is_tensor(x) else "array"


def check_float(x: Any, where: str) -> None:
    """Reject integer, boolean and complex data with a hint on how to normalise raw counts."""
    if is_tensor(x):
        ok = x.is_floating_point()
    elif isinstance(x, np.ndarray):
        ok = np.issubdtype(x.dtype, np.floating)
    else:
        raise InputError(f"{where}: expected a numpy array or torch tensor, got {type(x).__name__}")
    if not ok:
        raise InputError(
            f"{where}: expected floating-point data normalised to [0, 1], got dtype {x.dtype}; "
            "divide raw counts by the camera's white level first, e.g. "
            "raw.astype(np.float64) / camera.white_level (65535 for 16-bit data)"
        )


def _check_even(h: int, w: int, where: str) -> None:
    if h % 2 or w % 2:
        raise InputError(f"{where}: a raw mosaic must hold whole 2×2 CFA blocks, so height and width must be even; got {h}×{w} (crop one row or column)")


def check_mosaic(x: Any, where: str, *, batched: bool) -> None:
    """Check a raw mosaic: ``(H, W)`` for one image, ``(N, H, W)`` when ``batched``; H, W even."""
    check_float(x, where)
    expected = "(N, H, W)" if batched else "(H, W)"
    if x.ndim != (3 if batched else 2):
        raise InputError(f"{where}: expected a raw mosaic {expected}, got a {x.ndim}-d {_kind(x)} of shape {tuple(x.shape)}")
    h, w = x.shape[-2:]
    _check_even(h, w, where)


def check_rgb(x: Any, where: str, *, batched: bool) -> None:
    """Check an RGB view: ``(3, H, W)`` for one image, ``(N, 3, H, W)`` when ``batched``."""
    check_float(x, where)
    expected = "(N, 3, H, W)" if batched else "(3, H, W)"
    if x.ndim != (4 if batched else 3) or x.shape[-3] != 3:
        raise InputError(f"{where}: expected a channel-first RGB view {expected}, got shape {tuple(x.shape)}")


def check_plane(x: Any, where: str, *, batched: bool) -> None:
    """Check a single-channel plane (the luma Y): ``(H, W)``, or ``(N, H, W)`` when ``batched``."""
    check_float(x, where)
    expected = "(N, H, W)" if batched else "(H, W)"
    if x.ndim != (3 if batched else 2):
        raise InputError(f"{where}: expected a plane {expected}, got shape {tuple(x.shape)}")


def check_finite(x: Any, where: str) -> None:
    """Reject NaN and infinite values, saying how many there are.

    One pass over the data (its minimum and maximum, which NaN and ±inf reach) and, for
    a tensor, one number read back to the host (their difference, finite exactly when
    both are); the values are counted only when that number is not finite.
    """
    if is_tensor(x):
        if x.numel() and torch.isfinite(torch.sub(*torch.aminmax(x)[::-1]).double()).item():
            return
    elif x.size:
        with np.errstate(over="ignore", invalid="ignore"):
            if np.isfinite(np.float64(x.max()) - np.float64(x.min())):
                return
    bad = ~torch.isfinite(x) if is_tensor(x) else ~np.isfinite(x)
    count = int(bad.sum())
    if count:
        raise InputError(f"{where}: {count} value(s) are NaN or infinite; raw data must be finite")


def check_raw_data(x: Any, where: str, *, batched: bool | None = None) -> bool:
    """Full check of raw data entering ispkit: float, a mosaic of even size, non-empty, finite.

    With ``batched=None`` both ``(H, W)`` and ``(N, H, W)`` are accepted. Returns whether
    ``x`` is a batch. Reads the data once (for the finiteness check).
    """
    check_float(x, where)
    if batched is None:
        if x.ndim not in (2, 3):
            raise InputError(f"{where}: expected a raw mosaic (H, W) or a batch (N, H, W), got shape {tuple(x.shape)}")
        batched = x.ndim == 3
    check_mosaic(x, where, batched=batched)
    if min(x.shape) == 0:
        raise InputError(f"{where}: the mosaic is empty (shape {tuple(x.shape)})")
    check_finite(x, where)
    return batched
