"""U-Net++ segmenter (Zhou et al., "UNet++: A Nested U-Net Architecture for Medical Image
Segmentation", DLMIA 2018).

The paper's car-segmentation model for Raw-Drone (Oala et al., TMLR 2023, App. A.2):
segmentation-models-pytorch's ``UnetPlusPlus`` with a ResNet encoder. Encoder weights
default to none (nothing is downloaded); ``weights`` names a local file or URL of a
state dict for the whole model. Inputs need a height and width divisible by 32;
``in_channels`` (3 by default, 4 for packed Bayer mosaics) goes to smp's argument of the
same name.
"""

from __future__ import annotations

import os

from torch import nn

from .base import TaskModel, check_in_channels, load_weights

__all__ = ["unetplusplus", "UNETPLUSPLUS"]


def unetplusplus(
    outputs: int = 1,
    *,
    in_channels: int = 3,
    encoder: str = "resnet34",
    encoder_weights: str | None = None,
    weights: str | os.PathLike[str] | None = None,
) -> nn.Module:
    """segmentation-models-pytorch U-Net++ with ``outputs`` logit channels and ``in_channels`` inputs.

    >>> unetplusplus(1, encoder="resnet18").segmentation_head[0].out_channels
    1
    >>> unetplusplus(1, in_channels=4, encoder="resnet18").encoder.conv1.in_channels
    4
    """
    import segmentation_models_pytorch as smp

    model = smp.UnetPlusPlus(
        encoder_name=encoder, encoder_weights=encoder_weights, in_channels=check_in_channels(in_channels, what="unetplusplus"), classes=outputs
    )
    if weights is not None:
        load_weights(model, weights, what="unetplusplus")
    return model


UNETPLUSPLUS = TaskModel("unetplusplus", "segmentation", unetplusplus, "segmentation-models-pytorch U-Net++ with a ResNet encoder (the paper's segmenter)")
