"""Models of your own without a plugin: factory paths, register_model, and checkpoints that rebuild them."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from torch import nn

from ispkit.errors import InputError
from ispkit.registry import Registry, get_registry, reset_registry
from ispkit.tasks import TaskModel, load_checkpoint, register_model, save_checkpoint, task_models, unregister_model
from ispkit.tasks.factory import resolve_factory
from ispkit.tasks.registry import build_network

HERE = Path(__file__).resolve().parent


@pytest.fixture
def own_module(monkeypatch):
    """This folder on sys.path, so that ``factory_models`` (a user's module) imports by name."""
    monkeypatch.syspath_prepend(str(HERE))
    return "factory_models"


@pytest.fixture
def registry(monkeypatch):
    """A fresh process-wide registry without entry-point plugins, restored afterwards."""
    reset_registry()
    monkeypatch.setattr("ispkit.registry._REGISTRY", Registry(entry_points=False))
    yield get_registry()
    reset_registry()


def test_a_factory_path_builds_a_task_network(own_module):
    network = build_network("factory_models:tiny_cnn", 3, task="classification", options={"width": 4}, downsample=2, classes=["a", "b", "c"])
    assert (network.name, network.task, network.outputs, network.options, network.downsample) == (
        "factory_models:tiny_cnn",
        "classification",
        3,
        {"width": 4},
        2,
    )
    assert network.net[0].out_channels == 4
    assert network.predict(torch.zeros(2, 3, 32, 32)).shape == (2, 3)
    packed = build_network("factory_models:tiny_cnn", 3, task="classification", in_channels=4)  # in_channels reaches the factory
    assert packed.net[0].in_channels == 4
    segmenter = build_network("factory_models:TinySegmenter", 1, task="segmentation", options={"width": 2})
    assert segmenter.task == "segmentation" and segmenter(torch.zeros(1, 3, 8, 8)).shape == (1, 1, 8, 8)


def test_the_task_is_needed_for_a_factory_and_must_match_a_registered_model(own_module):
    with pytest.raises(
        InputError, match=r"model factory 'factory_models:tiny_cnn': a factory model needs its task, one of \('classification', 'segmentation'\), got None"
    ):
        build_network("factory_models:tiny_cnn", 3)
    with pytest.raises(InputError, match="task model 'small_cnn' is a classification model, not a segmentation one"):
        build_network("small_cnn", 3, task="segmentation")
    with pytest.raises(InputError, match=r"factory_models:tiny_cnn': bad options \{'depth': 3\}"):
        build_network("factory_models:tiny_cnn", 3, task="classification", options={"depth": 3})


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/tmp/evil.py:net", "expected 'package.module:function' .* file paths are not accepted"),
        ("models.py:net", r"give the module's dotted name \('models', its folder on sys.path\), not a file name"),
        ("factory_models", "expected 'package.module:function'"),
        ("factory_models:tiny_cnn:x", "expected 'package.module:function'"),
        ("os:system", "that is Python's standard library; define the factory in a module of your own"),
        ("__main__:net", r"a script's or notebook's own code \(__main__\) cannot be imported again"),
        ("factory_models:__builtins__", "a factory is a function or class of the module, not a __dunder__ attribute"),
        ("factory_models:torch.nn.__class__", "a factory is a function or class of the module, not a __dunder__ attribute"),
        ("factory_models:NOT_CALLABLE", "'NOT_CALLABLE' is a int, not a function or class returning a torch.nn.Module"),
        ("factory_models:tiny_rnn", "'factory_models' has no attribute 'tiny_rnn'"),
        ("factory_models:TinySegmenter.nothing", "'factory_models.TinySegmenter' has no attribute 'nothing'"),
        ("no_such_package.models:net", "cannot import module 'no_such_package.models': no module named 'no_such_package' is installed or on sys.path"),
        ("factory_models.sub:net", "cannot import module 'factory_models.sub': no module named 'factory_models.sub'"),
    ],
)
def test_factory_paths_that_are_refused(own_module, path, message):
    with pytest.raises(InputError, match=f"model factory '{path}': {message}" if not path.startswith("/") else message):
        resolve_factory(path)


def test_modules_that_fail_to_import_and_callables_from_elsewhere(tmp_path, monkeypatch):
    (tmp_path / "user_broken.py").write_text("raise RuntimeError('the GPU is not there')\n")
    (tmp_path / "user_needs.py").write_text("import not_installed_dependency\n")
    (tmp_path / "user_reexports.py").write_text("import os\nfrom os import system\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(InputError, match="importing module 'user_broken' failed: RuntimeError: the GPU is not there"):
        resolve_factory("user_broken:net")
    with pytest.raises(InputError, match="importing module 'user_needs' failed: ModuleNotFoundError: No module named 'not_installed_dependency'"):
        resolve_factory("user_needs:net")
    for path in ("user_reexports:system", "user_reexports:os.system"):  # a module's imports do not open the standard library
        with pytest.raises(InputError, match=f"'{path.split(':')[1]}' is defined in 'posix', not in a module of yours"):
            resolve_factory(path)


def test_a_factory_must_return_a_module(own_module):
    with pytest.raises(InputError, match=r"task model 'factory_models:not_a_module': its factory returned a str, not a torch.nn.Module"):
        build_network("factory_models:not_a_module", 2, task="classification")


@pytest.fixture
def checkpoint(own_module, tmp_path):
    """A checkpoint of a factory model with fitted normalisation, and the network."""
    torch.manual_seed(0)
    network = build_network("factory_models:tiny_cnn", 3, task="classification", options={"width": 4}, downsample=2, classes=["a", "b", "c"])
    network.fit_normalization(torch.rand(6, 3, 16, 16, generator=torch.Generator().manual_seed(1)))
    return save_checkpoint(tmp_path / "model.pt", network.eval(), metadata={"fold": 0}), network


def test_a_checkpoint_records_the_factory_path_and_rebuilds_from_it(checkpoint):
    path, network = checkpoint
    payload = torch.load(path, weights_only=True)
    assert payload["model"] == "factory_models:tiny_cnn" and payload["task"] == "classification" and payload["options"] == {"width": 4}
    loaded = load_checkpoint(path).network
    assert (loaded.name, loaded.task, loaded.classes, loaded.downsample) == ("factory_models:tiny_cnn", "classification", ["a", "b", "c"], 2)
    views = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        assert torch.equal(loaded.predict(views), network.predict(views))


def test_a_checkpoint_loads_in_a_fresh_process_that_can_import_the_factory(checkpoint):
    path, network = checkpoint
    views = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        expected = network.predict(views)
    torch.save(views, path.parent / "views.pt")
    script = textwrap.dedent(f"""
        import torch
        from ispkit.tasks import load_checkpoint
        network = load_checkpoint({str(path)!r}).network
        with torch.no_grad():
            torch.save(network.predict(torch.load({str(path.parent / "views.pt")!r})), {str(path.parent / "out.pt")!r})
    """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300, cwd=path.parent)
    assert done.returncode == 0, done.stderr[-2000:]
    assert torch.equal(torch.load(path.parent / "out.pt"), expected)
    # without the module on the path the checkpoint is refused, naming the module and what to do
    env["PYTHONPATH"] = os.environ.get("PYTHONPATH", "")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300, cwd=path.parent)
    assert done.returncode == 1
    assert "InputError: model factory 'factory_models:tiny_cnn': cannot import module 'factory_models'" in done.stderr


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ("gone_package.nets:tiny", "cannot import module 'gone_package.nets'"),
        ("builtins:open", "that is Python's standard library"),
        ("../../tmp/evil.py:net", "expected 'package.module:function'"),
    ],
)
def test_a_checkpoint_naming_an_unusable_factory_is_refused(checkpoint, model, message):
    path, _ = checkpoint
    payload = torch.load(path, weights_only=True)
    payload["model"] = model
    torch.save(payload, path)
    with pytest.raises(InputError, match=message):
        load_checkpoint(path)


# -- register_model -----------------------------------------------------------------------


def test_register_model_makes_a_name_usable_and_a_checkpoint_of_it_loads(registry, tmp_path):
    def my_factory(outputs, *, width=4):  # defined here, as in a notebook: not importable, so registered
        return nn.Sequential(nn.Conv2d(3, width, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, outputs))

    register_model(TaskModel("my_net", "classification", my_factory, "a notebook's model"))
    assert task_models()["my_net"].summary == "a notebook's model"
    network = build_network("my_net", 2, options={"width": 3})
    assert network.net[0].out_channels == 3
    loaded = load_checkpoint(save_checkpoint(tmp_path / "m.pt", network)).network
    assert loaded.name == "my_net" and loaded.net[0].out_channels == 3
    register_model(TaskModel("my_net", "classification", lambda outputs: nn.Flatten(), "replaced"))  # registering again replaces
    assert task_models()["my_net"].summary == "replaced"
    unregister_model("my_net")
    assert "my_net" not in task_models()
    with pytest.raises(InputError, match=r"unknown task model 'my_net'"):
        load_checkpoint(tmp_path / "m.pt")


def test_register_model_refuses_taken_and_malformed_names(registry):
    with pytest.raises(InputError, match="task model 'small_cnn' is provided by ispkit or an installed plugin; choose another name"):
        register_model(TaskModel("small_cnn", "classification", lambda outputs: nn.Flatten()))
    with pytest.raises(InputError, match=r"without ':' .* got 'mine:net'"):
        register_model(TaskModel("mine:net", "classification", lambda outputs: nn.Flatten()))
    with pytest.raises(InputError, match=r"expected an ispkit\.tasks\.TaskModel, got function"):
        register_model(lambda outputs: nn.Flatten())  # type: ignore[arg-type]
    with pytest.raises(InputError, match="no task model 'never' was registered with register_model"):
        unregister_model("never")
