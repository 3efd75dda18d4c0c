"""ResNet-18 classifier (He et al., "Deep Residual Learning for Image Recognition", CVPR 2016).

The paper's classification model for Raw-Microscopy (Oala et al., TMLR 2023, App. A.2):
torchvision's ResNet-18 with its final layer replaced by one with ``outputs`` classes.
No weights are downloaded by default; ``weights`` names a local file or a URL of a
torchvision-layout state dict (an ImageNet head that does not fit is skipped).
"""

from __future__ import annotations

import os

from torch import nn

from .base import TaskModel, load_weights

__all__ = ["resnet18", "RESNET18"]


def resnet18(outputs: int, *, weights: str | os.PathLike[str] | None = None) -> nn.Module:
    """torchvision ResNet-18 with an ``outputs``-class head.

    >>> resnet18(9).fc.out_features
    9
    """
    import torchvision

    model = torchvision.models.resnet18(weights=None, num_classes=outputs)
    if weights is not None:
        load_weights(model, weights, what="resnet18")
    return model


RESNET18 = TaskModel("resnet18", "classification", resnet18, "torchvision ResNet-18 (the paper's classifier), weights=None by default")
