"""No load of model state runs code from the file: one test per loading path.

Each test plants a pickle whose unpickling would create a marker file (``os.system``
through ``__reduce__``, the classic torch-checkpoint exploit) where ispkit loads model
state -- weights files and URLs, checkpoints (with and without a ``weights:`` URL in
their options), per-epoch resume states, run folders, experiment YAML -- and checks
that the load is refused with an :class:`~ispkit.errors.InputError` naming the file
and that the marker was never written.
"""

from __future__ import annotations

import functools
import http.server
import os
import threading
from pathlib import Path

import pytest
import torch
from torch import nn

from ispkit.drift.synthesis import run_synthesis
from ispkit.errors import InputError
from ispkit.tasks import load_checkpoint, save_checkpoint
from ispkit.tasks.base import load_weights
from ispkit.tasks.registry import build_network
from ispkit.tasks.state import is_url, load_state
from ispkit.tasks.training import TrainConfig, fit


class _Exploit:
    """Unpickling this runs ``touch <marker>``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture
def marker(tmp_path):
    path = tmp_path / "PWNED"
    yield path
    assert not path.exists(), "unpickling ran code from the file"


ONE_PIPELINE = {"pipelines": {"train": ["bi,s,me"], "test": ["bi,s,me"]}, "training": {"lr": None}, "corruptions": {"names": ["contrast"], "severities": [1]}}
"""The tiny synthesis experiment cut to one pipeline and one corruption: the first unit loads what it is given."""


def _plant(path: Path, marker: Path, wrap=lambda evil: {"state_dict": {"conv.weight": evil}}) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(wrap(_Exploit(marker)), path)
    return path


def test_the_payload_is_live(tmp_path):
    """The planted file really runs code when unpickled without ``weights_only`` (so the tests below mean something)."""
    marker = tmp_path / "PWNED"
    torch.load(_plant(tmp_path / "evil.pt", marker), weights_only=False)
    assert marker.exists()


@pytest.fixture
def server(tmp_path):
    """A local HTTP server over ``tmp_path / "www"``; yields (base URL, list of requested paths)."""
    root = tmp_path / "www"
    root.mkdir()
    requests: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def do_GET(self):
            requests.append(self.path)
            super().do_GET()

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", requests, root
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """torch's hub cache in a temporary folder."""
    before = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path / "hub"))
    yield tmp_path / "hub"
    torch.hub.set_dir(before)


class TestLoadState:
    def test_plain_state_loads(self, tmp_path):
        torch.save({"w": torch.arange(3.0), "meta": {"epoch": 2, "name": "x"}}, tmp_path / "ok.pt")
        state = load_state(tmp_path / "ok.pt", what="test state")
        assert torch.equal(state["w"], torch.arange(3.0)) and state["meta"] == {"epoch": 2, "name": "x"}

    def test_refuses_code_and_names_the_file_and_the_global(self, tmp_path, marker):
        path = _plant(tmp_path / "evil.pt", marker)
        with pytest.raises(InputError, match=r"refusing to load test state '.*evil\.pt': .*could run code.*GLOBAL posix\.system"):
            load_state(path, what="test state")

    def test_corrupt_file_is_not_readable_rather_than_refused(self, tmp_path):
        (tmp_path / "junk.pt").write_bytes(b"not a pickle at all")
        with pytest.raises(InputError, match=r"'.*junk\.pt' is not a readable test state \(a torch\.save file\)"):
            load_state(tmp_path / "junk.pt", what="test state")

    def test_missing_file(self, tmp_path):
        with pytest.raises(FileNotFoundError, match=r"test state '.*nope\.pt' not found"):
            load_state(tmp_path / "nope.pt", what="test state")

    def test_is_url(self):
        assert is_url("http://h/w.pt") and is_url("https://h/w.pt")
        assert not is_url("w.pt") and not is_url("file:///w.pt") and not is_url(Path("http:/x"))


class TestWeights:
    def test_local_weights_file(self, tmp_path, marker):
        path = _plant(tmp_path / "weights.pt", marker)
        with pytest.raises(InputError, match="refusing to load test weights"):
            load_weights(nn.Conv2d(3, 4, 3), path, what="test")

    def test_weights_url_is_downloaded_but_never_unpickled(self, server, hub, marker):
        base, requests, root = server
        _plant(root / "evil.pth", marker)
        with pytest.raises(InputError, match=r"refusing to load test weights 'http://127\.0\.0\.1:\d+/evil\.pth'"):
            load_weights(nn.Conv2d(3, 4, 3), f"{base}/evil.pth", what="test")
        assert requests == ["/evil.pth"]

    def test_weights_url_with_a_plain_state_dict_loads(self, server, hub):
        base, _, root = server
        source = nn.Conv2d(3, 4, 3)
        torch.save(source.state_dict(), root / "good.pth")
        target = nn.Conv2d(3, 4, 3)
        assert load_weights(target, f"{base}/good.pth", what="test") == []
        assert torch.equal(target.weight, source.weight)

    def test_experiment_yaml_weights(self, tmp_path, marker, tiny):
        """``model: {options: {weights: FILE}}`` in an experiment reaches load_weights when the first unit builds its model."""
        evil = _plant(tmp_path / "evil.pth", marker)
        config = tiny.config("synthesis", name="evil-weights", **ONE_PIPELINE, model={"name": "resnet18", "downsample": 4, "options": {"weights": evil}})
        with pytest.raises(InputError, match="refusing to load resnet18 weights"):
            run_synthesis(config, tmp_path / "run", tracking=False)


class TestCheckpoints:
    def test_checkpoint_with_code_in_its_state_dict(self, tmp_path, marker):
        path = _plant(tmp_path / "model.pt", marker, wrap=lambda evil: {"format": "ispkit-task-model/1", "state_dict": evil})
        with pytest.raises(InputError, match="refusing to load ispkit task-model checkpoint"):
            load_checkpoint(path)

    def test_checkpoint_naming_a_weights_url_fetches_nothing(self, server, hub, tmp_path, marker):
        """A checkpoint whose options name a URL (of a planted pickle) loads from its own state dict alone."""
        base, requests, root = server
        _plant(root / "evil.pth", marker)
        network = build_network("resnet18", 9, downsample=4)
        network.options = {"weights": f"{base}/evil.pth"}
        path = save_checkpoint(tmp_path / "model.pt", network)
        loaded = load_checkpoint(path)
        assert requests == []
        assert loaded.network.options == {"weights": f"{base}/evil.pth"}  # provenance kept
        for key, value in network.state_dict().items():
            assert torch.equal(loaded.network.state_dict()[key], value), key

    def test_napari_classifier_loads_checkpoints_the_same_way(self, tmp_path, marker):
        classifier = pytest.importorskip("napari_drift.logic.classifier")
        path = _plant(tmp_path / "model.pt", marker, wrap=lambda evil: {"format": "ispkit-task-model/1", "state_dict": evil})
        with pytest.raises(InputError, match="refusing to load"):
            classifier.ClassifierModel.load(path)


class TestResumeStates:
    def test_training_resume_state(self, tmp_path, marker):
        network = build_network("small_cnn", 2, downsample=1)
        views = torch.rand(4, 3, 8, 8, generator=torch.Generator().manual_seed(0))
        state = _plant(tmp_path / "train_state.pt", marker, wrap=lambda evil: {"network": evil, "epoch": 1})
        with pytest.raises(InputError, match="refusing to load training resume state"):
            fit(network, lambda index: views[index], torch.tensor([0, 1, 0, 1]), [0, 1, 2, 3], TrainConfig(epochs=1, batch_size=2), state_path=state)

    def test_run_folder_resume_state(self, tmp_path, marker, tiny):
        """A planted ``units/<p>/fold<k>/train_state.pt`` in a run folder is refused when the study resumes."""
        config = tiny.config("synthesis", name="evil-resume", **ONE_PIPELINE, model={"downsample": 4})
        _plant(tmp_path / "run" / "units" / "bi,s,me" / "fold0" / "train_state.pt", marker, wrap=lambda evil: {"epoch": evil})
        with pytest.raises(InputError, match=r"refusing to load training resume state '.*fold0/train_state\.pt'"):
            run_synthesis(config, tmp_path / "run", tracking=False)
