"""ResNet-18 classifier (He et al., "Deep Residual Learning for Image Recognition", CVPR 2016).

The paper's classification model for Raw-Microscopy (Oala et al., TMLR 2023, App. A.2):
torchvision's ResNet-18 with its final layer replaced by one with ``outputs`` classes.
For inputs other than RGB (``in_channels``, e.g. 4 for packed Bayer mosaics) the first
convolution is replaced by one of the same geometry taking ``in_channels`` channels.
No weights are downloaded by default; ``weights`` names a local file or a URL of a
torchvision-layout state dict (an ImageNet head that does not fit is skipped).
"""

from __future__ import annotations

import os

from torch import nn

from .base import TaskModel, check_in_channels, load_weights

__all__ = ["resnet18", "RESNET18"]


def resnet18(outputs: int, *, in_channels: int = 3, weights: str | os.PathLike[str] | None = None) -> nn.Module:
    """torchvision ResNet-18 with an ``outputs``-class head and ``in_channels`` inputs.

    With ``in_channels != 3``, ``conv1`` is ``nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False)``;
    a 3-channel ``conv1.weight`` in ``weights`` then does not fit and is skipped (so is
    a head of another size), every other layer is loaded.

    >>> resnet18(9).fc.out_features
    9
    >>> resnet18(9, in_channels=4).conv1.in_channels
    4
    """
    import torchvision

    check_in_channels(in_channels, what="resnet18")
    model = torchvision.models.resnet18(weights=None, num_classes=outputs)
    if in_channels != 3:
        model.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
    if weights is not None:
        load_weights(model, weights, what="resnet18")
    return model


RESNET18 = TaskModel("resnet18", "classification", resnet18, "torchvision ResNet-18 (the paper's classifier), weights=None by default")
