"""Task metrics and losses: known values, edge cases, thresholds, gradients."""

from __future__ import annotations

import math

import pytest
import torch

from ispkit.tasks.metrics import PRIMARY_METRIC, accuracy, dice, dice_loss, iou, task_loss, task_metrics

BIG = 20.0  # a logit whose sigmoid is 1 to ~2e-9


def _logits(mask: list[list[float]]) -> torch.Tensor:
    """Confident logits (+BIG where ``mask`` is 1, -BIG elsewhere), shape (1, 1, H, W)."""
    m = torch.tensor(mask)
    return torch.where(m > 0, BIG, -BIG)[None, None]


def _mask(mask: list[list[float]]) -> torch.Tensor:
    return torch.tensor(mask)[None, None]


class TestAccuracy:
    def test_known_values(self):
        logits = torch.tensor([[2.0, 1.0, 0.0], [0.0, 3.0, 1.0], [0.0, 0.0, 5.0], [1.0, 4.0, 0.0]])
        labels = torch.tensor([0, 1, 0, 2])
        result = accuracy(logits, labels)
        assert result.dtype == torch.float32
        assert result.tolist() == [1.0, 1.0, 0.0, 0.0]

    def test_ties_resolve_to_first_class(self):
        assert accuracy(torch.tensor([[1.0, 1.0]]), torch.tensor([0])).tolist() == [1.0]


class TestIouDice:
    def test_hand_case(self):
        # prediction covers 3 pixels, target 2, overlap 1: IoU 1/4, Dice 2/5
        logits = _logits([[1, 1], [1, 0]])
        masks = _mask([[1, 0], [0, 1]])
        assert iou(logits, masks).tolist() == pytest.approx([0.25])
        assert dice(logits, masks).tolist() == pytest.approx([0.4])

    def test_perfect(self):
        m = [[1, 0, 1], [0, 1, 1]]
        assert iou(_logits(m), _mask(m)).item() == 1.0
        assert dice(_logits(m), _mask(m)).item() == 1.0

    def test_empty_prediction_and_empty_target_score_one(self):
        z = [[0, 0], [0, 0]]
        assert iou(_logits(z), _mask(z)).item() == 1.0
        assert dice(_logits(z), _mask(z)).item() == 1.0

    def test_empty_prediction_with_nonempty_target_scores_zero(self):
        assert iou(_logits([[0, 0], [0, 0]]), _mask([[1, 0], [0, 0]])).item() == 0.0
        assert dice(_logits([[0, 0], [0, 0]]), _mask([[1, 0], [0, 0]])).item() == 0.0

    def test_disjoint_scores_zero(self):
        logits, masks = _logits([[1, 1], [0, 0]]), _mask([[0, 0], [1, 1]])
        assert iou(logits, masks).item() == 0.0
        assert dice(logits, masks).item() == 0.0

    def test_per_image(self):
        logits = torch.cat([_logits([[1, 1], [0, 0]]), _logits([[1, 1], [1, 1]]), _logits([[0, 0], [0, 0]])])
        masks = torch.cat([_mask([[1, 1], [0, 0]]), _mask([[1, 0], [0, 0]]), _mask([[0, 0], [0, 0]])])
        assert iou(logits, masks).tolist() == pytest.approx([1.0, 0.25, 1.0])
        assert dice(logits, masks).tolist() == pytest.approx([1.0, 0.4, 1.0])

    def test_threshold_at_exactly_one_half_is_negative(self):
        # logit 0 -> probability exactly 0.5, which is not > 0.5: predicted empty
        zero = torch.zeros(1, 1, 2, 2)
        assert iou(zero, torch.zeros(1, 1, 2, 2)).item() == 1.0
        assert iou(zero, torch.ones(1, 1, 2, 2)).item() == 0.0
        # a tiny positive logit crosses the threshold
        assert iou(torch.full((1, 1, 2, 2), 1e-3), torch.ones(1, 1, 2, 2)).item() == 1.0

    def test_custom_threshold(self):
        logits = torch.full((1, 1, 1, 2), math.log(0.7 / 0.3))  # probability 0.7
        masks = torch.ones(1, 1, 1, 2)
        assert iou(logits, masks, threshold=0.6).item() == 1.0
        assert iou(logits, masks, threshold=0.8).item() == 0.0

    def test_soft_masks_are_binarised_at_one_half(self):
        logits = _logits([[1, 1]])
        # 0.5 is background, 0.51 is foreground
        assert iou(logits, _mask([[0.5, 0.51]])).item() == pytest.approx(0.5)


class TestDiceLoss:
    def test_perfect_confident_prediction_is_near_zero(self):
        m = [[1, 0], [1, 1]]
        assert dice_loss(_logits(m), _mask(m)).item() == pytest.approx(0.0, abs=1e-6)

    def test_hand_case(self):
        # probability 0.5 everywhere on 4 pixels, target 2 pixels, eps 1:
        # 1 - (2 * 1 + 1) / (2 + 2 + 1) = 0.4
        loss = dice_loss(torch.zeros(1, 1, 2, 2), _mask([[1, 1], [0, 0]]))
        assert loss.item() == pytest.approx(0.4)

    def test_hand_case_eps(self):
        # disjoint confident prediction: 1 - eps / (|P| + |T| + eps)
        loss = dice_loss(_logits([[1, 0]]), _mask([[0, 1]]), eps=2.0)
        assert loss.item() == pytest.approx(1 - 2 / 4, abs=1e-6)

    def test_pooled_over_the_batch(self):
        logits = torch.cat([_logits([[1, 1]]), _logits([[0, 0]])])
        masks = torch.cat([_mask([[1, 1]]), _mask([[1, 1]])])
        # sums over the batch: p = 2, t = 4, p*t = 2 -> 1 - 5 / 7
        assert dice_loss(logits, masks).item() == pytest.approx(2 / 7, abs=1e-6)

    def test_gradcheck(self):
        logits = torch.randn(2, 1, 3, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0), requires_grad=True)
        masks = (torch.rand(2, 1, 3, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1)) > 0.5).double()
        assert torch.autograd.gradcheck(lambda x: dice_loss(x, masks), (logits,))

    def test_gradient_direction(self):
        logits = torch.zeros(1, 1, 1, 2, requires_grad=True)
        dice_loss(logits, _mask([[1, 0]])).backward()
        assert logits.grad[0, 0, 0, 0] < 0 < logits.grad[0, 0, 0, 1]


class TestTaskLoss:
    def test_classification_is_cross_entropy(self):
        logits = torch.tensor([[2.0, -1.0, 0.5], [0.1, 0.2, 3.0]])
        labels = torch.tensor([0, 1])
        expected = torch.nn.functional.cross_entropy(logits, labels)
        assert torch.equal(task_loss("classification", logits, labels), expected)
        # by hand: mean of -log softmax at the label
        by_hand = -(torch.log_softmax(logits, 1)[[0, 1], [0, 1]]).mean()
        assert task_loss("classification", logits, labels).item() == pytest.approx(by_hand.item())

    def test_segmentation_is_dice(self):
        logits = torch.randn(2, 1, 4, 4, generator=torch.Generator().manual_seed(0))
        masks = (logits > 0.3).float()
        assert torch.equal(task_loss("segmentation", logits, masks), dice_loss(logits, masks))

    def test_task_metrics(self):
        logits = torch.tensor([[2.0, 1.0], [0.0, 3.0]])
        scores = task_metrics("classification", logits, torch.tensor([0, 0]))
        assert set(scores) == {"accuracy"} and scores["accuracy"].tolist() == [1.0, 0.0]
        scores = task_metrics("segmentation", _logits([[1, 1], [1, 0]]), _mask([[1, 0], [0, 1]]))
        assert set(scores) == {"iou", "dice"}
        assert scores["iou"].tolist() == pytest.approx([0.25]) and scores["dice"].tolist() == pytest.approx([0.4])
        assert PRIMARY_METRIC == {"classification": "accuracy", "segmentation": "iou"}
