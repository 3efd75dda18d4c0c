"""TaskModel, TaskNetwork (downsampling, normalisation) and load_weights."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ispkit.errors import InputError, ParameterError
from ispkit.tasks.base import TASKS, TaskModel, TaskNetwork, downsample_views, load_weights


def _network(net: nn.Module | None = None, **kwargs) -> TaskNetwork:
    return TaskNetwork(net if net is not None else nn.Identity(), name="identity", task="classification", outputs=3, **kwargs)


class TestDownsample:
    def test_known_values(self):
        views = torch.arange(16.0).reshape(1, 1, 4, 4)
        out = downsample_views(views, 2)
        assert torch.equal(out[0, 0], torch.tensor([[2.5, 4.5], [10.5, 12.5]]))
        assert downsample_views(views, 4).item() == 7.5

    def test_factor_one_is_identity(self):
        views = torch.rand(2, 3, 5, 5)
        assert downsample_views(views, 1) is views

    def test_shape_and_mean(self):
        views = torch.rand(2, 3, 8, 12, generator=torch.Generator().manual_seed(0))
        out = downsample_views(views, 4)
        assert out.shape == (2, 3, 2, 3)
        assert torch.allclose(out[1, 2, 1, 2], views[1, 2, 4:8, 8:12].mean())

    @pytest.mark.parametrize("factor", [0, -2, 1.5, 2.0, True, "2", None])
    def test_bad_factor(self, factor):
        with pytest.raises(ParameterError, match="downsample factor must be an integer >= 1"):
            downsample_views(torch.zeros(1, 3, 4, 4), factor)

    def test_gradient_flows(self):
        views = torch.rand(1, 1, 4, 4, dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(lambda v: downsample_views(v, 2), (views,))


class TestTaskModel:
    def test_fields(self):
        model = TaskModel("m", "segmentation", lambda outputs: nn.Identity(), "summary")
        assert (model.name, model.task, model.summary) == ("m", "segmentation", "summary")
        assert TASKS == ("classification", "segmentation")

    def test_bad_task(self):
        with pytest.raises(InputError, match=r"task model 'm': task must be one of .*'detection'"):
            TaskModel("m", "detection", lambda outputs: nn.Identity())


class TestTaskNetwork:
    def test_defaults(self):
        network = _network(options={"a": 1}, classes=("x", "y", "z"))
        assert torch.equal(network.mean, torch.zeros(3)) and torch.equal(network.std, torch.ones(3))
        assert network.downsample == 1 and network.options == {"a": 1} and network.classes == ["x", "y", "z"]
        assert set(network.state_dict()) == {"mean", "std"}

    def test_fit_normalization_per_channel(self):
        g = torch.Generator().manual_seed(0)
        prepared = torch.rand(4, 3, 5, 6, generator=g) * torch.tensor([1.0, 2.0, 4.0])[:, None, None] + torch.tensor([0.0, 1.0, -3.0])[:, None, None]
        network = _network()
        network.fit_normalization(prepared)
        for c in range(3):
            assert network.mean[c].item() == pytest.approx(prepared[:, c].mean().item(), rel=1e-6)
            assert network.std[c].item() == pytest.approx(prepared[:, c].std().item(), rel=1e-6)

    def test_fit_normalization_constant_channel_clamps_std(self):
        prepared = torch.rand(2, 3, 4, 4)
        prepared[:, 1] = 0.25
        network = _network()
        network.fit_normalization(prepared)
        assert network.mean[1].item() == pytest.approx(0.25)
        assert network.std[1].item() == pytest.approx(1e-6)
        assert torch.isfinite(network(prepared)).all()

    def test_forward_normalises_exactly(self):
        g = torch.Generator().manual_seed(1)
        network = _network()
        network.fit_normalization(torch.rand(3, 3, 4, 4, generator=g) * 3 + 1)
        x = torch.rand(2, 3, 4, 4, generator=g)
        expected = (x - network.mean.view(1, 3, 1, 1)) / network.std.view(1, 3, 1, 1)
        assert torch.equal(network(x), expected)
        out = network(x)
        assert torch.allclose(out.mean(dim=(0, 2, 3)) * network.std + network.mean, x.mean(dim=(0, 2, 3)), atol=1e-6)

    def test_predict_downsamples_then_normalises(self):
        network = _network(downsample=2)
        network.mean.copy_(torch.tensor([1.0, 2.0, 3.0]))
        network.std.copy_(torch.tensor([2.0, 4.0, 8.0]))
        views = torch.rand(1, 3, 4, 4)
        expected = (downsample_views(views, 2) - network.mean[:, None, None]) / network.std[:, None, None]
        assert torch.equal(network.predict(views), expected)
        assert network.predict(views).shape == (1, 3, 2, 2)

    @pytest.mark.parametrize("shape", [(3, 4, 4), (1, 1, 4, 4), (1, 4, 4, 4), (1, 3, 4, 4, 1)])
    def test_wrong_input_shape(self, shape):
        with pytest.raises(InputError, match=r"identity: expected prepared views \(N, 3, H, W\)"):
            _network()(torch.zeros(shape))

    @pytest.mark.parametrize("factor", [0, 1.5, True])
    def test_bad_downsample(self, factor):
        with pytest.raises(ParameterError, match="downsample factor"):
            _network(downsample=factor)

    def test_gradcheck_through_normalisation(self):
        network = _network(nn.Conv2d(3, 2, 1)).double()
        network.mean.copy_(torch.tensor([0.1, 0.2, 0.3]))
        network.std.copy_(torch.tensor([0.5, 2.0, 1.5]))
        x = torch.rand(1, 3, 2, 2, dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(network, (x,))


class TestTaskNetworkChannels:
    def test_buffers_sized_by_in_channels(self):
        network = _network(in_channels=4)
        assert network.in_channels == 4
        assert torch.equal(network.mean, torch.zeros(4)) and torch.equal(network.std, torch.ones(4))
        assert _network().in_channels == 3

    def test_four_channels_normalise_per_channel(self):
        g = torch.Generator().manual_seed(0)
        scale, shift = torch.tensor([1.0, 2.0, 4.0, 0.5]), torch.tensor([0.0, 1.0, -3.0, 2.0])
        prepared = torch.rand(4, 4, 5, 6, generator=g) * scale[:, None, None] + shift[:, None, None]
        network = _network(in_channels=4)
        network.fit_normalization(prepared)
        for c in range(4):
            assert network.mean[c].item() == pytest.approx(prepared[:, c].mean().item(), rel=1e-6)
            assert network.std[c].item() == pytest.approx(prepared[:, c].std().item(), rel=1e-6)
        out = network(prepared)
        assert torch.equal(out, (prepared - network.mean.view(1, 4, 1, 1)) / network.std.view(1, 4, 1, 1))
        assert torch.allclose(out.mean(dim=(0, 2, 3)), torch.zeros(4), atol=1e-5)
        assert torch.allclose(out.std(dim=(0, 2, 3)), torch.ones(4), atol=1e-5)

    @pytest.mark.parametrize("channels", [1, 2, 6])
    def test_any_channel_count(self, channels):
        network = _network(in_channels=channels)
        network.fit_normalization(torch.rand(2, channels, 3, 3) * 2 + 1)
        assert network.mean.shape == network.std.shape == (channels,)
        assert network.predict(torch.rand(1, channels, 3, 3)).shape == (1, channels, 3, 3)

    def test_rejects_three_channels_naming_expected_and_got(self):
        network = _network(in_channels=4)
        with pytest.raises(InputError, match=r"identity: expected prepared views \(N, 4, H, W\) with 4 channels, got 3 channels, shape \(2, 3, 8, 8\)"):
            network(torch.zeros(2, 3, 8, 8))
        with pytest.raises(InputError, match="with 4 channels, got 3 channels"):
            network.predict(torch.zeros(1, 3, 8, 8))

    def test_fit_normalization_checks_channels(self):
        network = _network(in_channels=4)
        with pytest.raises(InputError, match="with 4 channels, got 3 channels"):
            network.fit_normalization(torch.rand(2, 3, 4, 4))
        assert torch.equal(network.mean, torch.zeros(4))

    @pytest.mark.parametrize("channels", [0, -1, True, 4.0, "4", None])
    def test_bad_in_channels(self, channels):
        with pytest.raises(InputError, match=r"task network 'identity': in_channels must be a positive integer"):
            _network(in_channels=channels)

    def test_state_dict_loads_only_into_same_channel_count(self):
        source = _network(in_channels=4)
        source.mean.copy_(torch.arange(4.0))
        target = _network(in_channels=4)
        target.load_state_dict(source.state_dict())
        assert torch.equal(target.mean, torch.arange(4.0))
        with pytest.raises(RuntimeError, match="size mismatch"):
            _network().load_state_dict(source.state_dict())


class _Backbone(nn.Module):
    def __init__(self, outputs: int) -> None:
        super().__init__()
        self.features = nn.Linear(4, 5)
        self.head = nn.Linear(5, outputs)


class TestLoadWeights:
    def test_matching_state_dict_file(self, tmp_path):
        source, target = _Backbone(3), _Backbone(3)
        torch.save(source.state_dict(), tmp_path / "w.pt")
        skipped = load_weights(target, tmp_path / "w.pt", what="test")
        assert skipped == []
        for key, value in source.state_dict().items():
            assert torch.equal(target.state_dict()[key], value)

    def test_mismatched_head_is_skipped(self, tmp_path):
        torch.manual_seed(0)
        source, target = _Backbone(1000), _Backbone(9)
        head_before = {k: v.clone() for k, v in target.head.state_dict().items()}
        state = source.state_dict()
        state["extra.weight"] = torch.zeros(2)
        torch.save(state, tmp_path / "w.pt")
        skipped = load_weights(target, str(tmp_path / "w.pt"), what="test")
        assert skipped == ["extra.weight", "head.bias", "head.weight"]
        assert torch.equal(target.features.weight, source.features.weight)
        assert torch.equal(target.features.bias, source.features.bias)
        for key, value in head_before.items():
            assert torch.equal(target.head.state_dict()[key], value)

    def test_checkpoint_dict_with_state_dict_entry(self, tmp_path):
        source, target = _Backbone(3), _Backbone(3)
        torch.save({"epoch": 7, "state_dict": source.state_dict()}, tmp_path / "ckpt.pth")
        assert load_weights(target, tmp_path / "ckpt.pth", what="test") == []
        assert torch.equal(target.head.weight, source.head.weight)

    def test_missing_file(self, tmp_path):
        with pytest.raises(FileNotFoundError, match=r"test: weights file .*nope\.pt.* not found"):
            load_weights(_Backbone(3), tmp_path / "nope.pt", what="test")

    def test_not_a_dict(self, tmp_path):
        torch.save([torch.zeros(2)], tmp_path / "list.pt")
        with pytest.raises(InputError, match=r"test: .* does not hold a state dict \(got list\)"):
            load_weights(_Backbone(3), tmp_path / "list.pt", what="test")

    def test_nothing_matches(self, tmp_path):
        target = _Backbone(3)
        before = {k: v.clone() for k, v in target.state_dict().items()}
        torch.save({"conv.weight": torch.zeros(2, 2), "head.weight": torch.zeros(7, 5)}, tmp_path / "other.pt")
        with pytest.raises(InputError, match=r"no tensor in .* matches the model"):
            load_weights(target, tmp_path / "other.pt", what="test")
        for key, value in before.items():
            assert torch.equal(target.state_dict()[key], value)
