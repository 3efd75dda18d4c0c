"""Task-model checkpoints: round trip, provenance, malformed files, overwrite protection."""

from __future__ import annotations

import pytest
import torch

from ispkit.errors import InputError
from ispkit.tasks.checkpoint import FORMAT, Checkpoint, load_checkpoint, save_checkpoint
from ispkit.tasks.registry import build_network
from ispkit.tasks.training import TrainConfig, fit

YAML = "stages:\n  - demosaic: bilinear\n"


@pytest.fixture(scope="module")
def trained():
    """A briefly trained small_cnn with fitted normalisation and updated BatchNorm statistics."""
    torch.manual_seed(0)
    views = torch.rand(8, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    labels = torch.arange(8) % 3
    network = build_network("small_cnn", 3, options={"widths": (4, 8)}, downsample=2, classes=["a", "b", "c"])
    fit(network, lambda index: network.prepare(views[index]), labels, torch.arange(8), TrainConfig(epochs=1, batch_size=4, seed=0))
    return network.eval(), views


class TestRoundTrip:
    def test_predictions_and_provenance(self, trained, tmp_path):
        network, views = trained
        path = save_checkpoint(tmp_path / "sub" / "model.pt", network, pipeline_yaml=YAML, metadata={"epochs": 1, "split": [0, 1]})
        assert path == tmp_path / "sub" / "model.pt" and path.is_file()
        checkpoint = load_checkpoint(path)
        assert isinstance(checkpoint, Checkpoint)
        loaded = checkpoint.network
        assert not loaded.training
        assert (loaded.name, loaded.task, loaded.outputs, loaded.downsample) == ("small_cnn", "classification", 3, 2)
        assert loaded.classes == ["a", "b", "c"]
        assert loaded.options == {"widths": (4, 8)}
        assert checkpoint.pipeline_yaml == YAML
        assert checkpoint.metadata == {"epochs": 1, "split": [0, 1]}
        assert torch.equal(loaded.mean, network.mean) and torch.equal(loaded.std, network.std)
        assert not torch.equal(loaded.std, torch.ones(3))  # normalisation was fitted and travelled
        for key, value in network.state_dict().items():
            assert torch.equal(loaded.state_dict()[key], value), key
        with torch.no_grad():
            assert torch.equal(loaded.predict(views), network.predict(views))

    def test_defaults(self, trained, tmp_path):
        network, _ = trained
        checkpoint = load_checkpoint(save_checkpoint(tmp_path / "m.pt", network))
        assert checkpoint.pipeline_yaml is None and checkpoint.metadata == {}

    def test_segmentation_without_classes(self, tmp_path):
        torch.manual_seed(0)
        network = build_network("small_unet", 1, options={"width": 4}).eval()
        loaded = load_checkpoint(save_checkpoint(tmp_path / "seg.pt", network)).network
        assert loaded.classes is None and loaded.options == {"width": 4} and loaded.task == "segmentation"
        x = torch.rand(1, 3, 16, 16)
        with torch.no_grad():
            assert torch.equal(loaded(x), network(x))

    def test_payload_is_plain(self, trained, tmp_path):
        network, _ = trained
        path = save_checkpoint(tmp_path / "m.pt", network, metadata={"k": "v"})
        payload = torch.load(path, weights_only=True)
        assert payload["format"] == FORMAT == "ispkit-task-model/1"
        assert payload["model"] == "small_cnn" and payload["classes"] == ["a", "b", "c"]

    def test_payload_records_in_channels(self, trained, tmp_path):
        network, _ = trained
        payload = torch.load(save_checkpoint(tmp_path / "m.pt", network), weights_only=True)
        assert payload["in_channels"] == 3 and payload["format"] == FORMAT


class TestFourChannels:
    def test_round_trip_reproduces_predictions(self, tmp_path):
        torch.manual_seed(0)
        packed = torch.rand(8, 4, 16, 16, generator=torch.Generator().manual_seed(2))
        labels = torch.arange(8) % 2
        network = build_network("small_cnn", 2, options={"widths": (4, 8)}, in_channels=4, classes=["x", "y"])
        fit(network, lambda index: network.prepare(packed[index]), labels, torch.arange(8), TrainConfig(epochs=1, batch_size=4, seed=0))
        network.eval()
        assert network.mean.shape == (4,) and not torch.equal(network.std, torch.ones(4))
        path = save_checkpoint(tmp_path / "raw.pt", network, metadata={"arm": "raw"})
        assert torch.load(path, weights_only=True)["in_channels"] == 4
        loaded = load_checkpoint(path).network
        assert loaded.in_channels == 4 and loaded.net[0].in_channels == 4
        assert torch.equal(loaded.mean, network.mean) and torch.equal(loaded.std, network.std)
        with torch.no_grad():
            assert torch.equal(loaded.predict(packed), network.predict(packed))
        with pytest.raises(InputError, match="with 4 channels, got 3 channels"):
            loaded.predict(torch.rand(1, 3, 16, 16))

    def test_segmentation_round_trip(self, tmp_path):
        torch.manual_seed(0)
        network = build_network("small_unet", 1, options={"width": 4}, in_channels=4).eval()
        network.mean.copy_(torch.tensor([0.1, 0.2, 0.3, 0.4]))
        loaded = load_checkpoint(save_checkpoint(tmp_path / "seg.pt", network)).network
        x = torch.rand(1, 4, 16, 16)
        with torch.no_grad():
            assert torch.equal(loaded(x), network(x))


class TestErrors:
    def test_missing_file(self, tmp_path):
        with pytest.raises(FileNotFoundError, match=r"task-model checkpoint .*missing\.pt not found"):
            load_checkpoint(tmp_path / "missing.pt")

    def test_folder_is_not_a_file(self, tmp_path):
        with pytest.raises(FileNotFoundError):
            load_checkpoint(tmp_path)

    def test_random_bytes(self, tmp_path):
        path = tmp_path / "random.pt"
        path.write_bytes(bytes(range(256)) * 4)
        with pytest.raises(InputError, match="is not a readable ispkit task-model checkpoint"):
            load_checkpoint(path)

    def test_torch_file_without_format(self, tmp_path):
        torch.save({"state_dict": {}}, tmp_path / "plain.pt")
        with pytest.raises(InputError, match=r"is not an ispkit task-model checkpoint \(expected format 'ispkit-task-model/1', found None\)"):
            load_checkpoint(tmp_path / "plain.pt")

    def test_torch_file_with_other_format(self, tmp_path):
        torch.save({"format": "other/2"}, tmp_path / "other.pt")
        with pytest.raises(InputError, match="found 'other/2'"):
            load_checkpoint(tmp_path / "other.pt")

    def test_torch_file_not_a_dict(self, tmp_path):
        torch.save(torch.zeros(3), tmp_path / "tensor.pt")
        with pytest.raises(InputError, match="found 'Tensor'"):
            load_checkpoint(tmp_path / "tensor.pt")

    def test_missing_in_channels(self, trained, tmp_path):
        network, _ = trained
        path = save_checkpoint(tmp_path / "m.pt", network)
        payload = torch.load(path, weights_only=True)
        del payload["in_channels"]
        torch.save(payload, path)
        with pytest.raises(InputError, match="task-model checkpoint lacks 'in_channels'"):
            load_checkpoint(path)

    def test_overwrite_false_keeps_existing_file(self, trained, tmp_path):
        network, _ = trained
        path = tmp_path / "model.pt"
        path.write_bytes(b"precious")
        with pytest.raises(FileExistsError, match="refusing to overwrite"):
            save_checkpoint(path, network, overwrite=False)
        assert path.read_bytes() == b"precious"
        assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]  # no temporary left behind

    def test_overwrite_true_replaces(self, trained, tmp_path):
        network, _ = trained
        path = tmp_path / "model.pt"
        path.write_bytes(b"old")
        save_checkpoint(path, network)
        assert load_checkpoint(path).network.classes == ["a", "b", "c"]
