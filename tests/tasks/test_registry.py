"""Task models in the plugin registry: built-ins, lookup, building, third-party plugins."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import ispkit
from ispkit.errors import InputError, PluginError
from ispkit.registry import Registry, get_registry, reset_registry
from ispkit.tasks.base import TaskModel, TaskNetwork
from ispkit.tasks.hookspecs import TASK_MODELS
from ispkit.tasks.registry import build_network, task_model, task_models

BUILTIN = {"resnet18": "classification", "unetplusplus": "segmentation", "small_cnn": "classification", "small_unet": "segmentation"}


@pytest.fixture
def registry(monkeypatch):
    """A fresh process-wide registry without entry-point plugins, restored afterwards."""
    reset_registry()
    monkeypatch.setattr("ispkit.registry._REGISTRY", Registry(entry_points=False))
    yield get_registry()
    reset_registry()


TOY = TaskModel("toy_linear", "classification", lambda outputs, hidden=4: nn.Sequential(nn.Flatten(), nn.LazyLinear(outputs)), "toy")


class ToyPlugin:
    @ispkit.hookimpl
    def ispkit_task_models(self):
        return [TOY]


class ClashingPlugin:
    @ispkit.hookimpl
    def ispkit_task_models(self):
        return [TaskModel("small_cnn", "classification", lambda outputs: nn.Identity())]


class NotATaskModelPlugin:
    @ispkit.hookimpl
    def ispkit_task_models(self):
        return [{"name": "fake"}, TaskModel("fine_one", "segmentation", lambda outputs: nn.Identity())]


class TestBuiltins:
    def test_listed_with_tasks(self, registry):
        models = task_models()
        assert {name: model.task for name, model in models.items()} == BUILTIN
        assert all(isinstance(model, TaskModel) and model.summary for model in models.values())
        assert models is registry.items(TASK_MODELS.hook)

    def test_lookup(self, registry):
        assert task_model("small_unet").name == "small_unet"

    def test_unknown_name_suggests_close_match(self, registry):
        with pytest.raises(InputError, match=r"unknown task model 'resnet19'.*resnet18"):
            task_model("resnet19")
        with pytest.raises(InputError, match=r"unknown task model 'resnet19'.*resnet18"):
            build_network("resnet19", 9)


class TestBuildNetwork:
    def test_small_cnn(self, registry):
        network = build_network("small_cnn", 5, downsample=2, classes=list("abcde")).eval()
        assert isinstance(network, TaskNetwork)
        assert (network.name, network.task, network.outputs, network.downsample) == ("small_cnn", "classification", 5, 2)
        assert network.classes == list("abcde") and network.options == {}
        assert network.predict(torch.rand(3, 3, 32, 32)).shape == (3, 5)

    def test_small_cnn_options(self, registry):
        network = build_network("small_cnn", 2, options={"widths": (4, 8)})
        assert network.options == {"widths": (4, 8)}
        assert network.net[-1].in_features == 8
        assert network.eval()(torch.rand(2, 3, 16, 16)).shape == (2, 2)

    def test_small_unet(self, registry):
        network = build_network("small_unet", 2, options={"width": 4}).eval()
        assert network.task == "segmentation"
        assert network(torch.rand(2, 3, 32, 32)).shape == (2, 2, 32, 32)

    def test_resnet18(self, registry):
        network = build_network("resnet18", 9).eval()
        assert network.net.fc.out_features == 9
        with torch.no_grad():
            assert network(torch.rand(2, 3, 64, 64)).shape == (2, 9)

    def test_unetplusplus(self, registry):
        network = build_network("unetplusplus", 1, options={"encoder": "resnet18"}).eval()
        assert network.task == "segmentation" and network.options == {"encoder": "resnet18"}
        with torch.no_grad():
            assert network(torch.rand(1, 3, 64, 64)).shape == (1, 1, 64, 64)

    def test_resnet18_weights_option(self, registry, tmp_path):
        torch.manual_seed(0)
        source = build_network("resnet18", 1000).net
        torch.save(source.state_dict(), tmp_path / "imagenet.pt")
        network = build_network("resnet18", 9, options={"weights": str(tmp_path / "imagenet.pt")})
        assert torch.equal(network.net.conv1.weight, source.conv1.weight)
        assert network.net.fc.out_features == 9

    @pytest.mark.parametrize("outputs", [0, -1, True, 2.0, "3"])
    def test_bad_outputs(self, registry, outputs):
        with pytest.raises(InputError, match="outputs must be a positive integer"):
            build_network("small_cnn", outputs)

    def test_bad_options(self, registry):
        with pytest.raises(InputError, match=r"task model 'small_cnn': bad options \{'depth': 3\}"):
            build_network("small_cnn", 2, options={"depth": 3})


class TestInChannels:
    def test_small_cnn(self, registry):
        network = build_network("small_cnn", 5, in_channels=4, options={"widths": (4, 8)}).eval()
        assert network.in_channels == 4 and network.options == {"widths": (4, 8)}
        assert network.net[0].in_channels == 4 and network.mean.shape == (4,)
        assert network(torch.rand(2, 4, 16, 16)).shape == (2, 5)

    def test_small_unet(self, registry):
        network = build_network("small_unet", 2, in_channels=4, options={"width": 4}).eval()
        assert network.net.enc1[0].in_channels == 4
        assert network(torch.rand(2, 4, 16, 16)).shape == (2, 2, 16, 16)

    def test_resnet18(self, registry):
        network = build_network("resnet18", 9, in_channels=4).eval()
        conv1 = network.net.conv1
        assert (conv1.in_channels, conv1.out_channels, conv1.kernel_size, conv1.stride, conv1.padding) == (4, 64, (7, 7), (2, 2), (3, 3))
        assert conv1.bias is None
        with torch.no_grad():
            assert network(torch.rand(1, 4, 64, 64)).shape == (1, 9)

    def test_unetplusplus(self, registry):
        network = build_network("unetplusplus", 1, in_channels=4, options={"encoder": "resnet18"}).eval()
        assert network.net.encoder.conv1.in_channels == 4
        with torch.no_grad():
            assert network(torch.rand(1, 4, 64, 64)).shape == (1, 1, 64, 64)

    def test_default_is_three(self, registry):
        network = build_network("small_cnn", 2, options={"widths": (4,)})
        assert network.in_channels == 3 and network.net[0].in_channels == 3

    def test_resnet18_weights_skip_three_channel_conv1(self, registry, tmp_path):
        torch.manual_seed(0)
        source = build_network("resnet18", 1000).net
        torch.save(source.state_dict(), tmp_path / "imagenet.pt")
        network = build_network("resnet18", 9, in_channels=4, options={"weights": str(tmp_path / "imagenet.pt")})
        assert network.net.conv1.weight.shape == (64, 4, 7, 7)
        assert torch.equal(network.net.layer1[0].conv1.weight, source.layer1[0].conv1.weight)
        assert torch.equal(network.net.bn1.weight, source.bn1.weight)

    @pytest.mark.parametrize("channels", [0, -3, True, False, 4.0, "4", None])
    def test_bad_in_channels(self, registry, channels):
        with pytest.raises(InputError, match=r"task model 'small_cnn': in_channels must be a positive integer"):
            build_network("small_cnn", 2, in_channels=channels)

    def test_in_channels_in_options_is_rejected(self, registry):
        with pytest.raises(InputError, match="give in_channels as build_network's argument, not in options"):
            build_network("small_cnn", 2, options={"in_channels": 4})

    def test_plugin_without_in_channels(self, registry):
        registry.register(ToyPlugin(), name="toy")
        assert build_network("toy_linear", 4).in_channels == 3  # not passed when 3
        with pytest.raises(InputError, match=r"task model 'toy_linear': bad options \{\} \(in_channels=4\).*in_channels"):
            build_network("toy_linear", 4, in_channels=4)


class TestPlugins:
    def test_third_party_model(self):
        registry = Registry(entry_points=False)
        assert "toy_linear" not in registry.items(TASK_MODELS.hook)
        registry.register(ToyPlugin(), name="toy")
        models = registry.items(TASK_MODELS.hook)
        assert models["toy_linear"] is TOY
        assert set(models) == set(BUILTIN) | {"toy_linear"}
        assert registry.get(TASK_MODELS.hook, "toy_linear") is TOY
        registry.unregister("toy")
        assert "toy_linear" not in registry.items(TASK_MODELS.hook)

    def test_third_party_model_builds_through_process_registry(self, registry):
        registry.register(ToyPlugin(), name="toy")
        network = build_network("toy_linear", 4)
        assert network(torch.rand(2, 3, 2, 2)).shape == (2, 4)

    def test_duplicate_name_names_both_providers(self):
        registry = Registry(entry_points=False, strict=True)  # not strict: ispkit's own is kept (tests/test_registry.py)
        registry.register(ClashingPlugin(), name="clash", provider="clash-dist")
        with pytest.raises(PluginError, match=r"task model 'small_cnn' is provided twice: by 'ispkit' and by 'clash-dist'"):
            registry.items(TASK_MODELS.hook)

    def test_non_task_model_is_recorded_not_raised(self):
        registry = Registry(entry_points=False, strict=False)
        registry.register(NotATaskModelPlugin(), name="bad", provider="bad-dist")
        models = registry.items(TASK_MODELS.hook)
        assert "fine_one" in models and "fake" not in models
        assert len(registry.failures) == 1
        failure = registry.failures[0]
        assert (failure.plugin, failure.distribution) == ("bad", "bad-dist")
        assert "not a TaskModel" in failure.error

    def test_non_task_model_raises_when_strict(self):
        registry = Registry(entry_points=False, strict=True)
        registry.register(NotATaskModelPlugin(), name="bad")
        with pytest.raises(PluginError, match="not a TaskModel"):
            registry.items(TASK_MODELS.hook)
