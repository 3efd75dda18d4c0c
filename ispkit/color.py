"""RGB ↔ YUV as in scikit-image (``skimage.color.rgb2yuv`` / ``yuv2rgb``).

YUV uses the BT.601 luma weights: ``Y = 0.299 R + 0.587 G + 0.114 B``. Sharpening and
denoising act on Y only (paper §4.2.1, Eqs. 12–18, as in the released code); U and V
pass through. The inverse matrix is ``scipy.linalg.inv`` of the forward one, as
scikit-image computes it, so both backends invert identically.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from scipy import linalg
from skimage.color import rgb2yuv, yuv2rgb

from .memory import cached

if TYPE_CHECKING:
    import torch
else:
    from ._torch import torch

__all__ = [
    "YUV_FROM_RGB",
    "RGB_FROM_YUV",
    "rgb_to_yuv_numpy",
    "yuv_to_rgb_numpy",
    "rgb_to_yuv",
    "yuv_to_rgb",
    "luma",
    "with_luma",
]

YUV_FROM_RGB = np.array(
    [
        [0.299, 0.587, 0.114],
        [-0.14714119, -0.28886916, 0.43601035],
        [0.61497538, -0.51496512, -0.10001026],
    ]
)
RGB_FROM_YUV = linalg.inv(YUV_FROM_RGB)


def rgb_to_yuv_numpy(rgb: np.ndarray) -> np.ndarray:
    """``skimage.color.rgb2yuv`` on a channel-first ``(3, H, W)`` image."""
    yuv: np.ndarray = rgb2yuv(rgb, channel_axis=0)
    return yuv


def yuv_to_rgb_numpy(yuv: np.ndarray) -> np.ndarray:
    """``skimage.color.yuv2rgb`` on a channel-first ``(3, H, W)`` image."""
    rgb: np.ndarray = yuv2rgb(yuv, channel_axis=0)
    return rgb


def _constant(matrix: np.ndarray, like: torch.Tensor) -> torch.Tensor:
    """``matrix`` as a tensor of ``like``'s dtype and device, built once (shared: never modify it)."""

    def build() -> torch.Tensor:
        return torch.as_tensor(matrix, dtype=like.dtype, device=like.device)

    if torch.compiler.is_compiling():  # no key: tobytes() cannot be traced
        return build()
    return cached(("color", matrix.tobytes(), matrix.shape, like.dtype, like.device), build)


def _apply(matrix: np.ndarray, x: torch.Tensor) -> torch.Tensor:
    m = _constant(matrix, x)
    mixed: torch.Tensor = (m @ x.flatten(-2)).unflatten(-1, x.shape[-2:])
    return mixed


def rgb_to_yuv(rgb: torch.Tensor) -> torch.Tensor:
    """Torch twin of :func:`rgb_to_yuv_numpy` on ``(*, 3, H, W)``."""
    return _apply(YUV_FROM_RGB, rgb)


def yuv_to_rgb(yuv: torch.Tensor) -> torch.Tensor:
    """Torch twin of :func:`yuv_to_rgb_numpy` on ``(*, 3, H, W)``."""
    return _apply(RGB_FROM_YUV, yuv)


def luma(rgb: torch.Tensor) -> torch.Tensor:
    """The Y plane ``(*, H, W)`` of :func:`rgb_to_yuv` alone: ``0.299 R + 0.587 G + 0.114 B``."""
    return _apply(YUV_FROM_RGB[:1], rgb)[..., 0, :, :]


def with_luma(rgb: torch.Tensor, before: torch.Tensor, after: torch.Tensor) -> torch.Tensor:
    """``yuv_to_rgb`` of ``rgb_to_yuv(rgb)`` with its Y plane changed from ``before`` to ``after``.

    By linearity this is ``rgb + c₀ (after − before)`` with ``c₀`` the first column of
    :data:`RGB_FROM_YUV`, which equals the explicit round trip to float rounding
    without computing U and V.
    """
    c0 = _constant(RGB_FROM_YUV[:, :1, None], rgb)
    return torch.addcmul(rgb, c0, (after - before).unsqueeze(-3))
