"""The training loop: convergence on toy tasks, determinism, resume, callbacks, validation."""

from __future__ import annotations

import pytest
import torch

from ispkit.errors import InputError
from ispkit.tasks.registry import build_network
from ispkit.tasks.training import History, TrainConfig, _augment, evaluate, evaluate_detailed, fit

WIDTHS = (8, 16)


def _brightness_data(n: int = 16, size: int = 16, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Views whose mean brightness encodes the class (0: dark, 1: bright), plus noise."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 2
    views = 0.25 + 0.5 * labels.float()[:, None, None, None] + 0.1 * torch.randn(n, 3, size, size, generator=g)
    return views, labels


def _classifier(seed: int = 0):
    torch.manual_seed(seed)
    return build_network("small_cnn", 2, options={"widths": WIDTHS})


def _state(network) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in network.state_dict().items()}


def _equal_states(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


VIEWS, LABELS = _brightness_data()


def source(index: torch.Tensor) -> torch.Tensor:
    return VIEWS[index]


CONFIG = TrainConfig(epochs=4, batch_size=4, lr=1e-2, seed=0)


class TestTrainConfig:
    def test_defaults(self):
        config = TrainConfig()
        assert (config.epochs, config.batch_size, config.lr, config.weight_decay, config.seed, config.augment) == (10, 32, 1e-3, 0.0, 0, True)

    @pytest.mark.parametrize(
        ("kwargs", "match"),
        [
            ({"epochs": 0}, "training epochs must be a positive integer, got 0"),
            ({"epochs": 2.0}, "training epochs must be a positive integer"),
            ({"batch_size": True}, "training batch_size must be a positive integer, got True"),
            ({"batch_size": -4}, "training batch_size must be a positive integer"),
            ({"lr": 0}, "training lr must be > 0, got 0"),
            ({"lr": -1e-3}, "training lr must be > 0"),
            ({"lr": float("nan")}, "training lr must be > 0"),
        ],
    )
    def test_validation(self, kwargs, match):
        with pytest.raises(InputError, match=match):
            TrainConfig(**kwargs)


class TestClassification:
    def test_learns_brightness(self):
        network = _classifier()
        epochs = []
        history = fit(
            network,
            source,
            LABELS,
            torch.arange(12),
            CONFIG,
            validation_index=torch.arange(12, 16),
            on_epoch=lambda epoch, loss, scores: epochs.append((epoch, loss, scores)),
        )
        assert isinstance(history, History) and len(history.loss) == 4
        assert history.loss[-1] < history.loss[0]
        assert evaluate(network, source, LABELS, torch.arange(16))["accuracy"] >= 0.9
        assert not network.training  # evaluate leaves eval mode
        # normalisation fitted to the training views
        assert torch.allclose(network.mean, VIEWS[:12].mean(dim=(0, 2, 3)))
        # validation recorded per epoch, on_epoch called with 1-based epochs
        assert len(history.validation) == 4 and all(set(v) == {"accuracy"} for v in history.validation)
        assert [e for e, _, _ in epochs] == [1, 2, 3, 4]
        assert [loss for _, loss, _ in epochs] == history.loss
        assert [scores for _, _, scores in epochs] == history.validation

    def test_no_validation(self):
        calls = []
        history = fit(_classifier(), source, LABELS, list(range(8)), TrainConfig(epochs=1, batch_size=8, seed=0), on_epoch=lambda *a: calls.append(a))
        assert history.validation == [] and len(calls) == 1 and calls[0][0] == 1 and calls[0][2] == {}

    def test_same_seed_is_deterministic(self):
        config = TrainConfig(epochs=2, batch_size=4, lr=1e-2, seed=3)
        a, b = _classifier(), _classifier()
        ha = fit(a, source, LABELS, torch.arange(16), config)
        hb = fit(b, source, LABELS, torch.arange(16), config)
        assert ha.loss == hb.loss
        assert _equal_states(a.state_dict(), b.state_dict())
        c = _classifier()
        hc = fit(c, source, LABELS, torch.arange(16), TrainConfig(epochs=2, batch_size=4, lr=1e-2, seed=4))
        assert hc.loss != ha.loss
        assert not _equal_states(a.state_dict(), c.state_dict())

    def test_resume_equals_uninterrupted_run(self, tmp_path):
        full = _classifier()
        expected = fit(full, source, LABELS, torch.arange(16), CONFIG, validation_index=torch.arange(4))
        state = tmp_path / "resume" / "state.pt"
        first = _classifier()
        h1 = fit(
            first, source, LABELS, torch.arange(16), TrainConfig(epochs=2, batch_size=4, lr=1e-2, seed=0), validation_index=torch.arange(4), state_path=state
        )
        assert state.is_file() and h1.loss == expected.loss[:2]
        epochs = []
        fresh = _classifier(seed=123)  # different initial weights: everything must come from the state file
        h2 = fit(
            fresh, source, LABELS, torch.arange(16), CONFIG, validation_index=torch.arange(4), state_path=state, on_epoch=lambda epoch, *_: epochs.append(epoch)
        )
        assert epochs == [3, 4]
        assert h2.loss == expected.loss
        assert h2.validation == expected.validation
        assert _equal_states(fresh.state_dict(), full.state_dict())
        # a finished run resumes to nothing
        again = fit(fresh, source, LABELS, torch.arange(16), CONFIG, state_path=state, on_epoch=lambda *a: pytest.fail("no epoch left"))
        assert again.loss == expected.loss

    def test_extra_parameters_are_optimised(self):
        gain = torch.nn.Parameter(torch.tensor(1.0))
        network = _classifier()
        before = _state(network)

        def gained(index: torch.Tensor) -> torch.Tensor:
            return VIEWS[index] * gain

        steps = []
        fit(
            network,
            gained,
            LABELS,
            torch.arange(16),
            TrainConfig(epochs=2, batch_size=4, lr=1e-2, seed=0),
            parameters=[*network.parameters(), gain],
            after_step=lambda: steps.append(gain.item()),
        )
        assert gain.item() != 1.0
        assert not torch.equal(network.net[0].weight, before["net.0.weight"])
        assert len(steps) == 8  # 16 samples / batch 4 x 2 epochs: one call per optimiser step
        assert len(set(steps)) > 1

    def test_resume_restores_extra_parameters(self, tmp_path):
        """Joint training: parameters outside the network (e.g. a pipeline's) resume too."""

        def run(epochs, state=None, seed=0):
            gain = torch.nn.Parameter(torch.tensor(1.0))
            network = _classifier(seed)
            history = fit(
                network,
                lambda index: VIEWS[index] * gain,
                LABELS,
                torch.arange(16),
                TrainConfig(epochs=epochs, batch_size=4, lr=1e-2, seed=0),
                parameters=[*network.parameters(), gain],
                state_path=state,
            )
            return history, network, gain

        expected, full, full_gain = run(4)
        run(2, tmp_path / "state.pt")
        history, resumed, gain = run(4, tmp_path / "state.pt", seed=9)
        assert history.loss == expected.loss
        assert gain.item() == full_gain.item() != 1.0
        assert _equal_states(resumed.state_dict(), full.state_dict())

    def test_only_given_parameters_change(self):
        gain = torch.nn.Parameter(torch.tensor(1.0))
        network = _classifier()
        before = _state(network)
        fit(network, lambda index: VIEWS[index] * gain, LABELS, torch.arange(8), TrainConfig(epochs=1, batch_size=4, seed=0), parameters=[gain])
        assert gain.item() != 1.0
        assert torch.equal(network.net[0].weight, before["net.0.weight"])

    def test_after_step_once_per_batch(self):
        calls = []
        # 10 samples in batches of 4: 3 batches per epoch (the last one short)
        fit(_classifier(), source, LABELS, torch.arange(10), TrainConfig(epochs=2, batch_size=4, seed=0), after_step=lambda: calls.append(1))
        assert len(calls) == 6

    def test_empty_train_index(self):
        with pytest.raises(InputError, match="fit: the training split is empty"):
            fit(_classifier(), source, LABELS, [], CONFIG)

    def test_evaluate_known_value_and_empty(self):
        network = _classifier()
        with torch.no_grad():
            predicted = network.eval()(VIEWS[:6]).argmax(1)
        scores = evaluate(network, source, LABELS, torch.arange(6), batch_size=4)
        assert scores["accuracy"] == pytest.approx((predicted == LABELS[:6]).float().mean().item())
        with pytest.raises(InputError, match="evaluate: the split is empty"):
            evaluate(network, source, LABELS, [])


def _square_masks(n: int = 8, size: int = 16, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Views with a bright square on a noisy dark background; the mask is the square."""
    g = torch.Generator().manual_seed(seed)
    masks = torch.zeros(n, 1, size, size)
    for i in range(n):
        y, x = torch.randint(0, size - 6, (2,), generator=g).tolist()
        masks[i, :, y : y + 6, x : x + 6] = 1.0
    views = 0.2 + 0.6 * masks.expand(n, 3, size, size) + 0.05 * torch.randn(n, 3, size, size, generator=g)
    return views, masks


class TestSegmentation:
    def test_dice_loss_decreases(self):
        views, masks = _square_masks()
        torch.manual_seed(0)
        network = build_network("small_unet", 1, options={"width": 4})
        history = fit(network, lambda index: views[index], masks, torch.arange(8), TrainConfig(epochs=5, batch_size=4, lr=1e-2, seed=0))
        assert history.loss[-1] < history.loss[0]
        assert all(0.0 <= loss <= 1.0 for loss in history.loss)
        scores = evaluate(network, lambda index: views[index], masks, torch.arange(8))
        assert set(scores) == {"iou", "dice"} and 0.0 <= scores["iou"] <= scores["dice"] <= 1.0

    def test_augment_flips_views_and_masks_alike(self):
        _, masks = _square_masks(n=16)
        masks[:, :, 0, :3] = 1.0  # break the remaining symmetry so every flip is visible
        views = masks.expand(16, 3, 16, 16).clone()
        out_views, out_masks = _augment(views, masks, "segmentation", torch.Generator().manual_seed(0))
        assert torch.equal(out_views[:, :1], out_masks)
        assert torch.equal(out_views, out_masks.expand(16, 3, 16, 16))
        # some samples flipped, and each one is one of the four flips of its input
        assert not torch.equal(out_masks, masks)
        for before, after in zip(masks, out_masks, strict=True):
            candidates = [before, before.flip(-1), before.flip(-2), before.flip(-1).flip(-2)]
            assert any(torch.equal(after, c) for c in candidates)

    def test_augment_leaves_labels_alone(self):
        views = torch.arange(2 * 3 * 2 * 2, dtype=torch.float32).reshape(2, 3, 2, 2)
        labels = torch.tensor([0, 1])
        _, out = _augment(views, labels, "classification", torch.Generator().manual_seed(0))
        assert torch.equal(out, labels)

    def test_augment_matches_generator_draws(self):
        views = torch.arange(4 * 3 * 2 * 2, dtype=torch.float32).reshape(4, 3, 2, 2)
        flips = torch.rand(2, 4, generator=torch.Generator().manual_seed(5)) < 0.5
        out, _ = _augment(views, torch.zeros(4), "classification", torch.Generator().manual_seed(5))
        for i in range(4):
            expected = views[i]
            if flips[0, i]:
                expected = expected.flip(-1)
            if flips[1, i]:
                expected = expected.flip(-2)
            assert torch.equal(out[i], expected)


class TestRecalibrateBatchnorm:
    def test_running_statistics_become_the_mean_over_the_views(self):
        from torch import nn

        from ispkit.tasks.training import recalibrate_batchnorm

        network = nn.Sequential(nn.BatchNorm2d(3))
        network.eval()
        index = torch.arange(16)
        assert recalibrate_batchnorm(network, source, index, batch_size=16) == 1
        bn = network[0]
        torch.testing.assert_close(bn.running_mean, VIEWS.mean(dim=(0, 2, 3)))
        torch.testing.assert_close(bn.running_var, VIEWS.transpose(0, 1).reshape(3, -1).var(dim=1))  # unbiased, as torch keeps it
        assert bn.momentum == 0.1 and not network.training  # settings and mode restored
        # several batches: the cumulative mean of the batch means (equal batches: the overall mean)
        recalibrate_batchnorm(network, source, index, batch_size=4)
        torch.testing.assert_close(bn.running_mean, VIEWS.mean(dim=(0, 2, 3)))
        assert recalibrate_batchnorm(nn.Sequential(nn.Conv2d(3, 3, 1)), source, index) == 0

    def test_fit_recalibrates_before_validation_without_changing_the_weights(self):
        from ispkit.tasks.training import recalibrate_batchnorm

        plain, calibrated = _classifier(), _classifier()
        index, validation = torch.arange(12), torch.arange(12, 16)
        a = fit(plain, source, LABELS, index, CONFIG, validation_index=validation)
        b = fit(calibrated, source, LABELS, index, TrainConfig(epochs=4, batch_size=4, lr=1e-2, seed=0, recalibrate_bn=True), validation_index=validation)
        assert a.loss == b.loss  # training itself is untouched: train mode uses batch statistics
        weights = {k: v for k, v in _state(plain).items() if "running" not in k and "num_batches" not in k}
        assert all(torch.equal(v, calibrated.state_dict()[k]) for k, v in weights.items())
        assert not torch.equal(plain.state_dict()["net.1.running_mean"], calibrated.state_dict()["net.1.running_mean"])
        again = _state(calibrated)
        recalibrate_batchnorm(calibrated, source, index, batch_size=4)  # what fit left is the recalibration itself
        assert all(torch.allclose(again[k], v) for k, v in calibrated.state_dict().items() if "running" in k)
        assert b.validation[-1] == evaluate(calibrated, source, LABELS, validation, batch_size=4)


def test_evaluate_detailed_counts_true_against_predicted_classes():
    network = _classifier()
    network.fit_normalization(VIEWS)
    index = torch.arange(len(VIEWS))
    found = evaluate_detailed(network, source, LABELS, index, batch_size=5)
    with torch.no_grad():
        network.eval()
        predicted = network(VIEWS).argmax(1)
    expected = torch.zeros(2, 2, dtype=torch.long)
    for label, guess in zip(LABELS.tolist(), predicted.tolist(), strict=True):
        expected[label, guess] += 1
    assert torch.equal(found.confusion, expected) and int(found.confusion.sum()) == len(VIEWS)
    assert found.metrics == evaluate(network, source, LABELS, index, batch_size=5)
    assert found.metrics["accuracy"] == pytest.approx(float(expected.trace()) / len(VIEWS))
    with pytest.raises(InputError, match=r"labels must lie in \[0, 1\] for a network with 2 outputs; got 0 … 2"):
        evaluate_detailed(network, source, torch.tensor([0] + [2] * (len(LABELS) - 1)), index)
