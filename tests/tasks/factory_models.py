"""A user's own model module: plain ``torch.nn.Module`` factories, no ispkit plugin.

The tests put this folder on ``sys.path`` and name the factories by path, e.g.
``"factory_models:tiny_cnn"``, as a user names ``"my_package.models:my_net"``.
"""

from __future__ import annotations

import torch
from torch import nn


def tiny_cnn(outputs: int, *, width: int = 8, in_channels: int = 3) -> nn.Module:
    """Two convolutions, global average pooling and a linear head: ``(N, C, H, W)`` → ``(N, outputs)``.

    >>> tiny_cnn(3, width=4)(torch.zeros(2, 3, 16, 16)).shape
    torch.Size([2, 3])
    """
    return nn.Sequential(
        nn.Conv2d(in_channels, width, 3, padding=1),
        nn.BatchNorm2d(width),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(width, 2 * width, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(2 * width, outputs),
    )


class TinySegmenter(nn.Module):
    """A class is a factory too: ``TinySegmenter(outputs, width=4)`` maps ``(N, 3, H, W)`` to ``(N, outputs, H, W)``.

    >>> TinySegmenter(1)(torch.zeros(1, 3, 8, 8)).shape
    torch.Size([1, 1, 8, 8])
    """

    def __init__(self, outputs: int, width: int = 4) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.ReLU(), nn.Conv2d(width, outputs, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


NOT_CALLABLE = 3
"""Not a factory: a factory path naming it is refused."""


def not_a_module(outputs: int) -> str:
    """Not a model factory: it returns a string."""
    return f"{outputs} outputs"
