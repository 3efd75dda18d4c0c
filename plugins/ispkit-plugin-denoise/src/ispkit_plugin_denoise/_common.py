"""Helpers shared by the plugin's denoisers."""

from __future__ import annotations

import torch

from ispkit.errors import ParameterError

__all__ = ["require", "as_float"]


def require(condition: bool, message: str) -> None:
    """Raise :class:`ispkit.errors.ParameterError` with ``message`` unless ``condition``."""
    if not condition:
        raise ParameterError(message)


def as_float(value) -> float:
    """A Python float from a 0-d numpy array, tensor or number (the numpy backend's parameters)."""
    if isinstance(value, torch.Tensor):
        return float(value.detach())
    return float(value)


def as_tensor(value, like: torch.Tensor) -> torch.Tensor:
    """``value`` as a 0-d tensor of ``like``'s dtype and device (kept differentiable when it is one)."""
    if isinstance(value, torch.Tensor):
        return value.to(dtype=like.dtype, device=like.device)
    return torch.tensor(float(value), dtype=like.dtype, device=like.device)
