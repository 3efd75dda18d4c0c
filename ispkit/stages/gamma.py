"""Gamma correction (paper Eqs. 19–20 and Eq. 32): clip to [0, 1], then ``v^(1/γ)``.

The torch backend is differentiable in ``γ`` and in its input almost everywhere: the
clip has no gradient outside (0, 1), and at ``v = 0`` the output is 0 with zero
gradient (``v^(1/γ)`` has an infinite slope there). Unlike the released code, which
clipped to [1e-5, 1] and so lifted black to 0.0053, both backends clip to [0, 1], so
black stays black and Eq. 23 holds exactly.

On the same input the two backends agree to the rounding of the power (about 1e-7 in
float32, near black included). What the curve cannot do is shrink a difference that
arrives with its input: for γ > 1 its slope is unbounded at 0, so inputs ``v`` and
``v + δ`` give outputs up to :func:`propagated_difference` apart, at most ``δ^(1/γ)``.
A float32 pipeline reaches gamma with a rounding difference δ of about 1e-6, which
just above black becomes up to about 2e-3 after ``v^(1/2.2)``. Evaluating the power in
float64 would not help (the difference is in its input); evaluating the stages before
it in float64 would, at 5 to 25 times the cost of the float32 pipeline on CPU.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .base import Param, Stage

if TYPE_CHECKING:
    import torch
else:
    from .._torch import torch

__all__ = ["gamma_numpy", "gamma", "propagated_difference", "Gamma"]


def gamma_numpy(rgb: np.ndarray, gamma: np.ndarray | float) -> np.ndarray:
    """``clip(rgb, 0, 1) ** (1 / gamma)``.

    >>> gamma_numpy(np.array([-0.5, 0.25, 2.0]), np.array(2.0)).tolist()
    [0.0, 0.5, 1.0]
    """
    encoded: np.ndarray = np.clip(rgb, 0.0, 1.0) ** (1.0 / gamma)
    return encoded


def gamma(rgb: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
    """Torch twin of :func:`gamma_numpy`; differentiable in ``gamma`` (see module notes)."""
    clipped = rgb.clamp(0.0, 1.0)
    if not torch.is_grad_enabled() or not (rgb.requires_grad or gamma.requires_grad):
        return clipped.pow_(1.0 / gamma)  # in place on the new clipped tensor
    positive = clipped > 0
    safe = torch.where(positive, clipped, torch.ones_like(clipped))
    return torch.where(positive, safe ** (1.0 / gamma), torch.zeros_like(clipped))


def propagated_difference(rgb: np.ndarray, delta: np.ndarray | float, gamma: np.ndarray | float) -> np.ndarray:
    """The most :func:`gamma_numpy`'s output can move when its input ``rgb`` moves by at most ``delta``.

    With ``f(v) = clip(v, 0, 1)^(1/γ)`` monotone, the largest ``|f(v + t) - f(v)|`` over
    ``|t| <= δ`` is taken at an end: ``max(f(v + δ) - f(v), f(v) - f(v - δ))``, elementwise
    (``delta`` broadcasts). For γ >= 1 it is at most ``δ^(1/γ)`` (``t^(1/γ)`` is
    (1/γ)-Hölder with constant 1), reached at black; elsewhere it is about ``δ f'(v)``.
    For γ < 1 it is at most ``δ / γ``.

    >>> propagated_difference(np.array([0.0, 0.25, 1.0]), 1e-6, np.array(2.0)).round(8).tolist()
    [0.001, 1e-06, 5e-07]
    """
    rgb = np.asarray(rgb, dtype=np.float64)
    at = gamma_numpy(rgb, gamma)
    moved: np.ndarray = np.maximum(gamma_numpy(rgb + delta, gamma) - at, at - gamma_numpy(rgb - delta, gamma))
    return moved


class Gamma(Stage):
    """Clip to [0, 1] and apply the power law ``v^(1/γ)``."""

    kind = "gamma"
    method = "power"
    takes = "rgb"
    gives = "rgb"
    params = (Param("gamma", (), 2.2, "display gamma γ; the output is v^(1/γ)", bounds=(0.1, 10.0)),)
    numpy = staticmethod(gamma_numpy)
    torch = staticmethod(gamma)
