"""Small CPU-sized task models for quick studies, demos and tests.

Both keep the paper's task structure at a fraction of the cost: ``small_cnn`` is four
convolution blocks and a linear head (~80 k parameters, a CPU epoch over a few hundred
64×64 views takes seconds); ``small_unet`` is a two-level U-Net (Ronneberger et al.,
"U-Net: Convolutional Networks for Biomedical Image Segmentation", MICCAI 2015). Both
take ``in_channels`` (3 for RGB views, 4 for packed Bayer mosaics).
"""

from __future__ import annotations

import torch
from torch import nn

from .base import TaskModel, check_in_channels

__all__ = ["small_cnn", "small_unet", "SMALL_CNN", "SMALL_UNET"]


def _block(inputs: int, outputs: int) -> list[nn.Module]:
    return [nn.Conv2d(inputs, outputs, 3, padding=1), nn.BatchNorm2d(outputs), nn.ReLU(inplace=True)]


def small_cnn(outputs: int, *, in_channels: int = 3, widths: tuple[int, ...] = (16, 32, 64, 96)) -> nn.Module:
    """Conv–BN–ReLU–max-pool blocks of ``widths`` channels, global average pool, linear head.

    The first convolution takes ``in_channels`` channels.

    >>> small_cnn(9)(torch.zeros(2, 3, 64, 64)).shape
    torch.Size([2, 9])
    >>> small_cnn(9, in_channels=4)(torch.zeros(2, 4, 32, 32)).shape
    torch.Size([2, 9])
    """
    layers: list[nn.Module] = []
    width = check_in_channels(in_channels, what="small_cnn")
    for out in widths:
        layers += [*_block(width, out), nn.MaxPool2d(2)]
        width = out
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, outputs))


class SmallUNet(nn.Module):
    """Two-level U-Net: encoder 16→32→64 channels, skip connections, ``outputs`` logit maps.

    Height and width must be divisible by 4. The first convolution takes ``in_channels``.
    """

    def __init__(self, outputs: int = 1, width: int = 16, in_channels: int = 3) -> None:
        super().__init__()
        w = width
        self.enc1 = nn.Sequential(*_block(check_in_channels(in_channels, what="small_unet"), w), *_block(w, w))
        self.enc2 = nn.Sequential(nn.MaxPool2d(2), *_block(w, 2 * w), *_block(2 * w, 2 * w))
        self.bottom = nn.Sequential(nn.MaxPool2d(2), *_block(2 * w, 4 * w), nn.ConvTranspose2d(4 * w, 2 * w, 2, stride=2))
        self.dec2 = nn.Sequential(*_block(4 * w, 2 * w), nn.ConvTranspose2d(2 * w, w, 2, stride=2))
        self.dec1 = nn.Sequential(*_block(2 * w, w), nn.Conv2d(w, outputs, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e1 = self.enc1(x)
        e2 = self.enc2(e1)
        d2 = self.dec2(torch.cat([self.bottom(e2), e2], dim=1))
        return self.dec1(torch.cat([d2, e1], dim=1))


def small_unet(outputs: int = 1, *, in_channels: int = 3, width: int = 16) -> nn.Module:
    """A :class:`SmallUNet` taking ``in_channels`` input channels.

    >>> small_unet(1)(torch.zeros(2, 3, 32, 32)).shape
    torch.Size([2, 1, 32, 32])
    >>> small_unet(1, in_channels=4)(torch.zeros(2, 4, 16, 16)).shape
    torch.Size([2, 1, 16, 16])
    """
    return SmallUNet(outputs, width, in_channels)


SMALL_CNN = TaskModel("small_cnn", "classification", small_cnn, "four conv blocks + linear head (~80k parameters), CPU-sized")
SMALL_UNET = TaskModel("small_unet", "segmentation", small_unet, "two-level U-Net (~70k parameters), CPU-sized")
