"""Task metrics and the segmentation loss (Oala et al., TMLR 2023, App. A.2).

Classification is scored by accuracy. Segmentation is scored by the intersection over
union of the mask thresholded at 0.5 (``IoU = |P ∩ T| / |P ∪ T|``) and the Dice
coefficient ``2|P ∩ T| / (|P| + |T|)``, both per image and then averaged (an image
with an empty prediction and an empty target scores 1); it is trained with the soft
Dice loss ``1 − (2 Σ p t + ε) / (Σ p + Σ t + ε)`` on sigmoid probabilities ``p``.
"""

from __future__ import annotations

import torch

from ..errors import InputError

__all__ = ["accuracy", "iou", "dice", "dice_loss", "task_loss", "task_metrics", "PRIMARY_METRIC"]

PRIMARY_METRIC = {"classification": "accuracy", "segmentation": "iou"}


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per-image correctness (0/1 floats) of ``argmax(logits)`` against ``labels``.

    >>> accuracy(torch.tensor([[2.0, 1.0], [0.0, 3.0]]), torch.tensor([0, 0])).tolist()
    [1.0, 0.0]
    """
    return (logits.argmax(dim=1) == labels).float()


def _overlaps(logits: torch.Tensor, masks: torch.Tensor, threshold: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    predicted = (torch.sigmoid(logits) > threshold).flatten(1).float()
    target = (masks > 0.5).flatten(1).float()
    return (predicted * target).sum(1), predicted.sum(1), target.sum(1)


def iou(logits: torch.Tensor, masks: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """Per-image IoU of ``sigmoid(logits) > threshold`` against binary ``masks``.

    >>> logits = torch.tensor([[[[5.0, 5.0], [-5.0, -5.0]]]])
    >>> iou(logits, torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]]])).tolist()
    [0.5]
    """
    inter, p, t = _overlaps(logits, masks, threshold)
    union = p + t - inter
    return torch.where(union > 0, inter / union.clamp_min(1), torch.ones_like(union))


def dice(logits: torch.Tensor, masks: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """Per-image Dice coefficient of the thresholded prediction.

    >>> logits = torch.tensor([[[[5.0, 5.0], [-5.0, -5.0]]]])
    >>> round(dice(logits, torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]]])).item(), 4)
    0.6667
    """
    inter, p, t = _overlaps(logits, masks, threshold)
    total = p + t
    return torch.where(total > 0, 2 * inter / total.clamp_min(1), torch.ones_like(total))


def dice_loss(logits: torch.Tensor, masks: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """Soft Dice loss over the batch (differentiable).

    >>> round(dice_loss(torch.full((1, 1, 2, 2), 20.0), torch.ones(1, 1, 2, 2)).item(), 4)
    0.0
    """
    p = torch.sigmoid(logits).flatten(1)
    t = masks.flatten(1)
    return 1 - ((2 * (p * t).sum() + eps) / (p.sum() + t.sum() + eps))


def _check_masks(logits: torch.Tensor, masks: torch.Tensor) -> None:
    if logits.shape != masks.shape:
        raise InputError(
            f"segmentation: masks of shape {tuple(masks.shape)} do not match the model output {tuple(logits.shape)}; "
            "masks must be at the network's input resolution (downsample them like the views)"
        )


def task_loss(task: str, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy (classification) or soft Dice loss (segmentation)."""
    if task == "classification":
        return torch.nn.functional.cross_entropy(logits, targets)
    _check_masks(logits, targets)
    return dice_loss(logits, targets)


def task_metrics(task: str, logits: torch.Tensor, targets: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-image metrics: ``{"accuracy"}`` or ``{"iou", "dice"}``."""
    if task == "classification":
        return {"accuracy": accuracy(logits, targets)}
    _check_masks(logits, targets)
    return {"iou": iou(logits, targets), "dice": dice(logits, targets)}
