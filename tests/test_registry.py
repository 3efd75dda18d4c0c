"""The plugin registry: built-ins as a plugin, runtime plugins, entry-point distributions, failures."""

from __future__ import annotations

import dataclasses
import importlib
import os
import re
import subprocess
import sys
import textwrap
import types
import warnings

import numpy as np
import pytest
import torch
from torch import nn

import ispkit
from ispkit import Camera, Pipeline
from ispkit.drift.distances import Distance
from ispkit.drift.hookspecs import DISTANCES
from ispkit.errors import InputError, PluginError, UnknownStageError
from ispkit.hookspecs import hookimpl, hookspec
from ispkit.pipeline import PRESETS
from ispkit.registry import HOOK_KINDS, PluginWarning, Registry, get_registry, named_kind, register_kind, reset_registry
from ispkit.stages.base import Param, Stage
from ispkit.tasks.base import TaskModel
from ispkit.tasks.hookspecs import TASK_MODELS

BUILTIN = {
    ("black_level", "per_site"),
    ("lens_shading", "gain_map"),
    ("lens_shading", "radial"),
    ("demosaic", "bilinear"),
    ("demosaic", "malvar2004"),
    ("demosaic", "menon2007"),
    ("white_balance", "gains"),
    ("color_correction", "matrix"),
    ("sharpen", "filter"),
    ("sharpen", "unsharp_mask"),
    ("denoise", "gaussian"),
    ("denoise", "median"),
    ("gamma", "power"),
}


class Vignette(Stage):
    """Darken the mosaic by a constant factor (a toy raw → raw plugin stage)."""

    kind = "lens"
    method = "vignette"
    takes = "raw"
    gives = "raw"
    params = (Param("strength", (), 0.5, "fraction of light kept", bounds=(0.0, 1.0)),)
    numpy = staticmethod(lambda raw, strength: raw * strength)
    torch = staticmethod(lambda raw, strength: raw * strength)


class LensPlugin:
    @ispkit.hookimpl
    def ispkit_stages(self):
        return [Vignette]


class BrokenHookPlugin:
    @ispkit.hookimpl
    def ispkit_stages(self):
        raise RuntimeError("boom")


class NotAStagePlugin:
    @ispkit.hookimpl
    def ispkit_stages(self):
        return [dict]


def _plugin(hook: str, result: object) -> object:
    """A plugin object whose ``hook`` returns ``result``, or raises it when it is an exception."""

    def implementation(self):
        if isinstance(result, BaseException):
            raise result
        return result

    return type("Plugin", (), {hook: ispkit.hookimpl(implementation)})()


@pytest.fixture
def registry(monkeypatch):
    """A fresh process-wide registry without entry-point plugins, restored afterwards."""
    reset_registry()
    monkeypatch.setattr("ispkit.registry._REGISTRY", Registry(entry_points=False))
    yield get_registry()
    reset_registry()


class TestBuiltins:
    def test_builtin_stages_are_registered_by_the_ispkit_plugin(self, registry):
        stages = registry.stages()
        assert set(stages) == BUILTIN
        assert {entry.provider for entry in stages.values()} == {"ispkit"}

    def test_builtin_cameras(self, registry):
        assert set(registry.cameras()) == {"microscopy", "drone"}

    def test_lookup_and_single_method_default(self, registry):
        assert registry.stage("gamma").method == "power"
        assert registry.stage("demosaic", "menon2007").kind == "demosaic"

    def test_unknown_method_lists_close_matches(self, registry):
        with pytest.raises(UnknownStageError, match=r"did you mean 'bilinear'.*'malvar2004'"):
            registry.stage("demosaic", "bilnear")

    def test_unknown_kind_lists_close_matches(self, registry):
        with pytest.raises(UnknownStageError, match="did you mean 'denoise'"):
            registry.stage("denoize")

    def test_kind_with_several_methods_needs_one(self, registry):
        with pytest.raises(UnknownStageError, match="needs a method"):
            registry.stage("sharpen")


class TestRuntimePlugins:
    def test_plugin_stage_is_usable_in_a_yaml_pipeline(self, registry):
        registry.register(LensPlugin(), name="lens-plugin")
        assert registry.stages()[("lens", "vignette")].provider == "lens-plugin"
        pipeline = ispkit.Pipeline.from_yaml("stages:\n  - kind: lens\n    params: {strength: 0.25}\n  - kind: demosaic\n    method: bilinear\n")
        raw = np.random.default_rng(0).random((4, 6))
        expected = ispkit.Pipeline.from_yaml("stages:\n  - kind: demosaic\n    method: bilinear\n")(raw * 0.25)
        np.testing.assert_allclose(pipeline(raw), expected, rtol=0, atol=1e-15)
        module = pipeline.to_torch(trainable="lens", dtype=torch.float64)
        assert [n for n, _ in module.named_parameters()] == ["lens.strength"]
        np.testing.assert_allclose(module(torch.as_tensor(raw)).detach().numpy(), expected, rtol=0, atol=1e-12)

    def test_duplicate_stage_names_both_providers(self, registry):
        registry.register(LensPlugin(), name="first-lens")
        registry.register(LensPlugin(), name="second-lens")
        with pytest.raises(PluginError, match=r"lens=vignette.*'first-lens'.*'second-lens'"):
            registry.stages()

    def test_duplicate_camera_from_two_plugins_names_both(self, registry):
        registry.register(_plugin("ispkit_cameras", [Camera(name="lab")]), name="first", provider="first-dist")
        registry.register(_plugin("ispkit_cameras", [Camera(name="lab")]), name="second", provider="second-dist")
        with pytest.raises(PluginError, match="camera 'lab' is provided twice: by 'first-dist' and by 'second-dist'"):
            registry.cameras()

    def test_raising_hook_is_recorded_and_skipped(self, registry):
        registry.register(BrokenHookPlugin(), name="broken")
        registry.register(LensPlugin(), name="lens-plugin")
        assert ("lens", "vignette") in registry.stages()
        assert [(f.plugin, "boom" in f.error) for f in registry.failures] == [("broken", True)]

    def test_non_stage_is_recorded_and_skipped(self, registry):
        registry.register(NotAStagePlugin(), name="not-a-stage")
        assert set(registry.stages()) == BUILTIN
        assert "not a subclass of ispkit.Stage" in registry.failures[0].error

    def test_strict_mode_raises(self):
        strict = Registry(entry_points=False, strict=True)
        strict.register(BrokenHookPlugin(), name="broken")
        with pytest.raises(PluginError, match=r"broken.*boom"):
            strict.stages()

    def test_unregister(self, registry):
        registry.register(LensPlugin(), name="lens-plugin")
        registry.unregister("lens-plugin")
        assert ("lens", "vignette") not in registry.stages()


class ImpostorGamma(Stage):
    """Claims the built-in gamma=power but blacks the image out."""

    kind = "gamma"
    method = "power"
    takes = "rgb"
    gives = "rgb"
    numpy = staticmethod(lambda rgb: rgb * 0)
    torch = staticmethod(lambda rgb: rgb * 0)


def _tint(default: object, bounds: tuple[float, float] | None = None, field: str = "tint") -> type[Stage]:
    """A plugin stage ``tint=gains`` whose one parameter is declared with ``default``."""
    param = Param(field, (3,), default, "gain per channel", bounds=bounds)
    attrs = {"kind": "tint", "method": "gains", "takes": "rgb", "gives": "rgb", "params": (param,)}
    return type("Tint", (Stage,), {**attrs, "numpy": staticmethod(lambda rgb, tint: rgb), "torch": staticmethod(lambda rgb, tint: rgb)})


_IMPOSTOR_MODEL = TaskModel("small_cnn", "classification", lambda outputs: nn.Identity())
CLASHES = " is provided twice: by 'ispkit' and by 'faulty-dist'; ispkit's own takes precedence, so the plugin's is not used"
FAULTS = {
    "camera-not-a-camera": ("ispkit_cameras", ["microscopy"], "ispkit_cameras() returned 'microscopy', which is not a Camera"),
    "distance-unnamed": ("ispkit_distances", [Distance(" ", lambda a, b: a)], "ispkit_distances() returned a Distance named ' '; expected a non-empty string"),
    "cameras-as-a-string": ("ispkit_cameras", "drone", "ispkit_cameras() returned 'drone'; expected a list"),
    "stage-not-a-class": ("ispkit_stages", [ImpostorGamma()], "which is not a subclass of ispkit.Stage"),
    "stages-not-in-a-list": ("ispkit_stages", ImpostorGamma, "ispkit_stages() returned <class"),
    "task-model-not-a-task-model": ("ispkit_task_models", [{"name": "fake"}], "returned {'name': 'fake'}, which is not a TaskModel"),
    "task-models-as-a-mapping": ("ispkit_task_models", {"small_cnn": _IMPOSTOR_MODEL}, "; expected a list"),
    "distance-not-a-distance": ("ispkit_distances", [42], "ispkit_distances() returned 42, which is not a Distance"),
    "hook-raises": ("ispkit_distances", RuntimeError("boom"), "ispkit_distances() raised RuntimeError: boom"),
    "hook-calls-sys-exit": ("ispkit_cameras", SystemExit(3), "ispkit_cameras() raised SystemExit: the plugin called sys.exit(3)"),
    "claims-builtin-stage": ("ispkit_stages", [ImpostorGamma], "stage gamma=power" + CLASHES),
    "default-of-wrong-shape": (
        "ispkit_stages",
        [_tint((1.0, 1.0))],
        "returned stage class Tint, whose parameter declarations are invalid: tint.tint default: expected shape (3,), got shape (2,)",
    ),
    "default-not-finite": ("ispkit_stages", [_tint((1.0, float("nan"), 1.0))], "tint.tint default: values must be finite, got [1.0, nan, 1.0]"),
    "default-out-of-bounds": (
        "ispkit_stages",
        [_tint((1.0, 5.0, 1.0), (0.0, 4.0))],
        "tint.tint default: values must lie in [0.0, 4.0] (gain per channel), got [1.0, 5.0, 1.0]",
    ),
    "default-from-no-camera-field": (
        "ispkit_stages",
        [_tint(ispkit.FromCamera("tint_gains"))],
        "tint.tint: the default reads Camera.tint_gains, which is not a camera field",
    ),
    "claims-builtin-camera": ("ispkit_cameras", [Camera(name="microscopy", pattern="BGGR")], "camera 'microscopy'" + CLASHES),
    "claims-builtin-task-model": ("ispkit_task_models", [_IMPOSTOR_MODEL], "task model 'small_cnn'" + CLASHES),
    "claims-builtin-distance": ("ispkit_distances", [Distance("l2", lambda a, b: a.sum() * 0)], "distance 'l2'" + CLASHES),
}


def _everything(registry: Registry) -> tuple:
    return tuple(registry.items(hook) for hook in ("ispkit_stages", "ispkit_cameras", "ispkit_task_models", "ispkit_distances"))


class TestFaultyPlugins:
    """Each fault of a plugin is recorded and skipped; ispkit's own items and the presets are untouched."""

    @pytest.mark.parametrize(("hook", "result", "error"), FAULTS.values(), ids=FAULTS)
    def test_recorded_and_builtins_kept(self, registry, hook, result, error):
        raw = np.random.default_rng(1).random((8, 8))
        expected = {name: Pipeline.preset(name)(raw) for name in ("bi,s,me", "me,u,ga")}
        registry.register(_plugin(hook, result), name="faulty", provider="faulty-dist")
        assert _everything(registry) == _everything(Registry(entry_points=False))
        [failure] = registry.failures
        assert (failure.plugin, failure.distribution) == ("faulty", "faulty-dist")
        assert error in failure.error
        assert [Pipeline.preset(name).name for name in PRESETS] == list(PRESETS)
        for name, rgb in expected.items():
            np.testing.assert_array_equal(Pipeline.preset(name)(raw), rgb)
            np.testing.assert_array_equal(Pipeline.from_yaml(Pipeline.preset(name).to_yaml())(raw), rgb)

    @pytest.mark.parametrize(("hook", "result", "error"), FAULTS.values(), ids=FAULTS)
    def test_strict_mode_raises(self, hook, result, error):
        strict = Registry(entry_points=False, strict=True)
        strict.register(_plugin(hook, result), name="faulty", provider="faulty-dist")
        with pytest.raises(PluginError, match=f"^plugin 'faulty' from 'faulty-dist': .*{re.escape(error)}"):
            strict.collect_all()

    @pytest.mark.parametrize(("hook", "result", "error"), FAULTS.values(), ids=FAULTS)
    def test_cli_lists_the_failure(self, registry, capsys, hook, result, error):
        from ispkit.cli import main

        registry.register(_plugin(hook, result), name="faulty", provider="faulty-dist")
        assert main(["plugins"]) == 0
        out = capsys.readouterr().out
        assert "  faulty (faulty-dist): " in out and error in out
        assert "menon2007" in out and "cameras: drone, microscopy" in out
        assert main(["plugins", "--strict"]) == 1

    def test_a_builtin_wins_whatever_the_hook_order(self, registry):
        class First:
            @ispkit.hookimpl(trylast=True)  # pluggy lists it before ispkit's own
            def ispkit_stages(self):
                return [ImpostorGamma]

        registry.register(First(), name="first", provider="first-dist")
        assert [impl.plugin_name for impl in registry.manager.hook.ispkit_stages.get_hookimpls()] == ["first", "ispkit"]
        assert registry.stages()[("gamma", "power")].provider == "ispkit"
        assert "stage gamma=power is provided twice: by 'ispkit' and by 'first-dist'" in registry.failures[0].error

    def test_an_item_whose_inspection_raises_is_recorded(self, registry):
        class Hostile(Camera):
            pass

        camera = Hostile(name="hostile")
        Hostile.name = property(lambda self: 1 / 0)  # reading the camera's name raises
        registry.register(_plugin("ispkit_cameras", [camera]), name="hostile")
        assert set(registry.cameras()) == {"microscopy", "drone"}
        assert registry.failures[0].error == ("ispkit_cameras() returned an item that could not be inspected (ZeroDivisionError: division by zero)")


class Skewed(Stage):
    """A broken plugin stage: its torch backend adds 0.48 to what numpy gives."""

    kind = "lens"
    method = "skewed"
    takes = "raw"
    gives = "raw"
    params = (Param("strength", (), 0.5, "fraction of light kept", bounds=(0.0, 1.0)),)
    numpy = staticmethod(lambda raw, strength: raw * strength)
    torch = staticmethod(lambda raw, strength: raw * strength + 0.48)


class Crashing(Vignette):
    """A plugin stage whose torch backend cannot run."""

    method = "crashing"
    torch = staticmethod(lambda raw, strength: raw.no_such_method())


def _lens_yaml(method: str) -> str:
    return f"stages:\n  - kind: lens\n    method: {method}\n  - kind: demosaic\n    method: bilinear\n"


def _plugin_warnings(action) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        action()
    return [str(w.message) for w in caught if issubclass(w.category, PluginWarning)]


class TestBackendProbe:
    """A plugin stage's numpy and torch backends are compared once, when a pipeline first asks for it."""

    def test_disagreement_warns_once_naming_plugin_stage_and_difference(self, registry):
        registry.register(_plugin("ispkit_stages", [Skewed]), name="skewed", provider="skewed-dist")
        [message] = _plugin_warnings(lambda: Pipeline.from_yaml(_lens_yaml("skewed")))
        assert re.fullmatch(
            r"plugin stage lens=skewed from 'skewed-dist': its numpy and torch backends differ by up to 0\.48 on the probe input "
            r"\(ramp, RGGB\) at its default parameters; the float64 contract allows 1e-06",
            message,
        ), message
        assert _plugin_warnings(lambda: Pipeline.from_yaml(_lens_yaml("skewed"))) == []

    def test_disagreement_is_an_error_when_strict(self):
        strict = Registry(entry_points=False, strict=True)
        strict.register(_plugin("ispkit_stages", [Skewed]), name="skewed", provider="skewed-dist")
        with pytest.raises(PluginError, match=r"lens=skewed from 'skewed-dist'.* differ by up to 0\.48 "):
            strict.stage("lens", "skewed")

    def test_a_backend_raising_on_the_probe_warns(self, registry):
        registry.register(_plugin("ispkit_stages", [Crashing]), name="crashing", provider="crashing-dist")
        [message] = _plugin_warnings(lambda: registry.stage("lens", "crashing"))
        assert message.startswith("plugin stage lens=crashing from 'crashing-dist' could not be checked: at its default parameters")
        assert "AttributeError" in message and "no_such_method" in message

    def test_agreeing_plugin_stage_is_silent(self, registry):
        registry.register(LensPlugin(), name="lens-plugin")
        assert _plugin_warnings(lambda: Pipeline.from_yaml(_lens_yaml("vignette"))) == []

    def test_probe_is_lazy_once_and_only_for_plugin_stages(self, registry, monkeypatch):
        from ispkit import stage_probe

        probed = []

        def recording(stage, camera):
            probed.append(stage)
            return real(stage, camera)

        real = stage_probe.backend_difference
        monkeypatch.setattr(stage_probe, "backend_difference", recording)
        registry.register(LensPlugin(), name="lens-plugin")
        registry.collect_all()
        for name in PRESETS:
            Pipeline.preset(name)
        assert probed == []
        Pipeline.from_yaml(_lens_yaml("vignette"))
        Pipeline.from_yaml(_lens_yaml("vignette"))
        assert probed == [Vignette]


class ToySpecs:
    """The specification of a toy layer's hook (a class, as pluggy allows)."""

    @hookspec
    def ispkit_toys(self):
        """Return toy items (objects with a ``name``)."""


@dataclasses.dataclass(frozen=True)
class Toy:
    name: str


def _toy_builtins() -> types.ModuleType:
    """The toy layer's built-ins: a module ``toylayer.builtins`` providing the toy ``one``."""
    module = types.ModuleType("toylayer.builtins")
    module.ispkit_toys = hookimpl(lambda: [Toy("one")])
    return module


class TestHookKinds:
    """The registry is generic over hook kinds; each layer registers its own when it is imported."""

    def test_the_core_alone_knows_only_its_own_kinds(self):
        code = (
            "import sys\nimport ispkit.registry as r\nfrom ispkit import Camera\n"
            "print(sorted(r.HOOK_KINDS), Camera.get('drone').pattern, sorted(m for m in sys.modules if m.startswith(('ispkit.tasks', 'ispkit.drift'))))\n"
            "import ispkit.tasks, ispkit.drift\nprint(list(r.HOOK_KINDS)[2:], sorted(r.get_registry().items('ispkit_distances')))"
        )
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, "ISPKIT_DISABLE_PLUGINS": "all"})
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines() == [
            "['ispkit_cameras', 'ispkit_stages'] RGGB []",
            "['ispkit_task_models', 'ispkit_distances'] ['l2', 'ssim']",
        ]

    def test_each_layer_registers_its_builtins_as_ispkit(self, registry):
        plugins = dict(registry.manager.list_name_plugin())
        assert {name: plugins[name].__name__ for name in ("ispkit", "ispkit.tasks", "ispkit.drift")} == {
            "ispkit": "ispkit.builtins", "ispkit.tasks": "ispkit.tasks.builtins", "ispkit.drift": "ispkit.drift.builtins",
        }  # fmt: skip
        assert [HOOK_KINDS[hook] for hook in ("ispkit_task_models", "ispkit_distances")] == [TASK_MODELS, DISTANCES]
        assert set(registry.items("ispkit_task_models")) == {"resnet18", "unetplusplus", "small_cnn", "small_unet"}

    def test_one_lookup_by_kind_and_name(self, registry):
        assert registry.get("ispkit_distances", "ssim").name == "ssim"
        assert registry.get("ispkit_stages", ("gamma", "power")).stage.method == "power"
        with pytest.raises(InputError, match="unknown distance 'l3': did you mean 'l2'"):
            registry.get("ispkit_distances", "l3")
        with pytest.raises(PluginError, match=r"no hook kind 'ispkit_toys' is registered \(known: ispkit_cameras, .*\); its layer registers it"):
            registry.items("ispkit_toys")

    def test_a_kind_registered_later_reaches_existing_registries(self, registry, monkeypatch):
        monkeypatch.setattr("ispkit.registry.HOOK_KINDS", dict(HOOK_KINDS))
        other = Registry(entry_points=False)
        registry.register(_plugin("ispkit_toys", [Toy("two"), Toy("one")]), name="toys", provider="toys-dist")

        class Misfit:  # its implementation takes an argument the specification does not offer
            @ispkit.hookimpl
            def ispkit_toys(self, size):
                return [Toy("three")]

        registry.register(Misfit(), name="misfit", provider="misfit-dist")
        kind = register_kind(named_kind("ispkit_toys", "toy", Toy, specs=ToySpecs, builtins=_toy_builtins()))
        assert registry.items("ispkit_toys") == {"one": Toy("one"), "two": Toy("two")}
        assert registry.get("ispkit_toys", "one") is not None and "misfit" not in dict(registry.manager.list_name_plugin())
        assert [(f.plugin, f.error.split(":")[0]) for f in registry.failures] == [("misfit", "registration failed"), ("toys", "toy 'one' is provided twice")]
        assert "ispkit_toys" in registry.failures[0].error and "size" in registry.failures[0].error
        assert "toylayer" in dict(registry.manager.list_name_plugin()) and registry.kind("ispkit_toys") is kind
        assert set(other.items("ispkit_toys")) == {"one"}  # a registry made before the kind gets it when asked

    def test_another_kind_for_a_registered_hook_is_an_error(self, registry, monkeypatch):
        monkeypatch.setattr("ispkit.registry.HOOK_KINDS", dict(HOOK_KINDS))
        register_kind(named_kind("ispkit_toys", "toy", Toy, specs=ToySpecs))
        with pytest.raises(PluginError, match="hook 'ispkit_toys' is registered twice: for toys and for gadgets"):
            register_kind(named_kind("ispkit_toys", "gadget", Toy, specs=ToySpecs))

    def test_typed_lookups_of_other_layers_are_deprecated_delegates(self, registry):
        with pytest.warns(DeprecationWarning, match=r"use ispkit\.tasks\.task_models\(\)"):
            assert registry.task_models() is registry.items("ispkit_task_models")
        with pytest.warns(DeprecationWarning, match=r"use ispkit\.tasks\.task_model\(name\)"):
            assert registry.task_model("small_cnn") is registry.get("ispkit_task_models", "small_cnn")
        with pytest.warns(DeprecationWarning, match=r"use ispkit\.drift\.distances\.distances\(\)"):
            assert registry.distances() is registry.items("ispkit_distances")
        with pytest.warns(DeprecationWarning, match=r"use ispkit\.drift\.distances\.distance\(name\)"):
            assert registry.distance("l2").name == "l2"


@pytest.fixture
def install(tmp_path, monkeypatch):
    """``install(dist, entry_point, source)``: a real distribution on sys.path whose ``ispkit`` entry point is a module."""
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("ISPKIT_DISABLE_PLUGINS", raising=False)
    modules = []

    def install(dist: str, entry_point: str, source: str) -> None:
        module = dist.replace("-", "_")
        (tmp_path / f"{module}.py").write_text(textwrap.dedent(source))
        info = tmp_path / f"{module}-0.1.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
        (info / "entry_points.txt").write_text(f"[ispkit]\n{entry_point} = {module}\n")
        modules.append(module)
        importlib.invalidate_caches()

    yield install
    for module in modules:
        sys.modules.pop(module, None)


@pytest.fixture
def installed_plugins(install):
    """Two real distributions on sys.path: a working plugin and one that raises on import."""
    install(
        "ispkit-plugin-dummy",
        "dummy",
        '''
        import ispkit
        from ispkit.stages.base import Param, Stage

        class Offset(Stage):
            """Add a constant to the mosaic."""
            kind = "offset"
            method = "constant"
            takes = "raw"
            gives = "raw"
            params = (Param("value", (), 0.1, "added value"),)
            numpy = staticmethod(lambda raw, value: raw + value)
            torch = staticmethod(lambda raw, value: raw + value)

        @ispkit.hookimpl
        def ispkit_stages():
            return [Offset]
        ''',
    )
    install("ispkit-plugin-broken", "broken", "raise ImportError('missing optional dependency xyz')\n")


class TestEntryPoints:
    def test_installed_plugin_loads_and_broken_one_is_reported(self, installed_plugins, monkeypatch):
        monkeypatch.delenv("ISPKIT_DISABLE_PLUGINS", raising=False)
        registry = Registry(strict=False)
        assert registry.stages()[("offset", "constant")].provider == "ispkit-plugin-dummy"
        assert BUILTIN <= set(registry.stages())
        [failure] = registry.failures
        assert failure.distribution == "ispkit-plugin-broken"
        assert "missing optional dependency xyz" in failure.error

    def test_disable_by_name_and_all(self, installed_plugins, monkeypatch):
        monkeypatch.setenv("ISPKIT_DISABLE_PLUGINS", "broken")
        registry = Registry(strict=False)
        assert ("offset", "constant") in registry.stages() and not registry.failures
        monkeypatch.setenv("ISPKIT_DISABLE_PLUGINS", "all")
        assert set(Registry(strict=False).stages()) == BUILTIN

    def test_strict_env_raises_on_broken_import(self, installed_plugins, monkeypatch):
        monkeypatch.delenv("ISPKIT_DISABLE_PLUGINS", raising=False)
        monkeypatch.setenv("ISPKIT_STRICT_PLUGINS", "1")
        with pytest.raises(PluginError, match=r"ispkit-plugin-broken.*missing optional dependency"):
            Registry()

    def test_cli_lists_providers_and_failures(self, installed_plugins, monkeypatch, capsys):
        from ispkit.cli import main

        monkeypatch.delenv("ISPKIT_DISABLE_PLUGINS", raising=False)
        reset_registry()
        try:
            assert main(["plugins"]) == 0
            out = capsys.readouterr().out
            assert "offset" in out and "ispkit-plugin-dummy" in out
            assert "menon2007" in out and "ispkit-plugin-broken" in out and "missing optional dependency xyz" in out
            assert main(["plugins", "--strict"]) == 1
        finally:
            reset_registry()

    def test_disable_by_distribution_name(self, installed_plugins, monkeypatch):
        monkeypatch.setenv("ISPKIT_DISABLE_PLUGINS", "ispkit-plugin-broken")
        registry = Registry(strict=False)
        assert ("offset", "constant") in registry.stages() and not registry.failures
        monkeypatch.setenv("ISPKIT_DISABLE_PLUGINS", " Ispkit_Plugin.Dummy , ispkit-plugin-broken")  # PEP 503 spellings
        registry = Registry(strict=False)
        assert ("offset", "constant") not in registry.stages() and not registry.failures
        assert not {"dummy", "broken"} & {record.plugin for record in registry.imports}

    def test_sys_exit_at_import_is_recorded(self, installed_plugins, install, capsys, tmp_path):
        from ispkit.cli import main

        install("ispkit-plugin-exiting", "exiting", "import sys\nsys.exit(0)\n")
        registry = Registry(strict=False)
        assert ("offset", "constant") in registry.stages()
        [exiting] = [f for f in registry.failures if f.distribution == "ispkit-plugin-exiting"]
        assert (exiting.plugin, exiting.error) == ("exiting", "import failed: SystemExit: the plugin called sys.exit(0)")
        assert "sys.exit(0)" in exiting.detail  # the traceback points at the plugin's line
        reset_registry()
        try:
            assert main(["plugins"]) == 0
            out = capsys.readouterr().out
            assert "offset" in out and "  exiting (ispkit-plugin-exiting): import failed: SystemExit: the plugin called sys.exit(0)" in out
            assert main(["views", "--out", str(tmp_path / "views"), "--size", "16", "--presets", "bi,s,me"]) == 0
            assert "ispkit views: generated 16×16 demo scene" in capsys.readouterr().out
            assert (tmp_path / "views" / "contact_sheet.png").is_file()
        finally:
            reset_registry()

    def test_sys_exit_at_import_raises_when_strict(self, install, monkeypatch):
        install("ispkit-plugin-exiting", "exiting", "import sys\nsys.exit(0)\n")
        monkeypatch.setenv("ISPKIT_STRICT_PLUGINS", "1")
        with pytest.raises(PluginError, match=r"'exiting' from 'ispkit-plugin-exiting': import failed: SystemExit"):
            Registry()

    def test_import_times_are_kept_and_slow_ones_reported(self, installed_plugins, install, monkeypatch, capsys):
        from ispkit.cli import main

        install("ispkit-plugin-sleepy", "sleepy", "import time\ntime.sleep(0.3)\n")
        monkeypatch.setattr("ispkit.registry.SLOW_IMPORT_S", 0.25)
        reset_registry()
        try:
            assert main(["plugins"]) == 0
            registry = get_registry()
        finally:
            reset_registry()
        out = capsys.readouterr().out
        assert "plugins slow to import (over 0.25 s; every ispkit command waits for them):" in out
        assert re.search(r"^  sleepy \(ispkit-plugin-sleepy\): 0\.[3-9] s$", out, re.MULTILINE), out
        seconds = {record.plugin: record.seconds for record in registry.imports}
        assert {"dummy", "broken", "sleepy"} <= set(seconds)  # failed imports are timed too
        assert seconds["sleepy"] >= 0.3 and seconds["dummy"] < 0.25
        assert ("sleepy", "ispkit-plugin-sleepy") in [(r.plugin, r.distribution) for r in registry.slow_imports()]
        assert "dummy" not in [r.plugin for r in registry.slow_imports()] and "dummy (" not in out.split("slow to import")[1]
        assert registry.slow_imports(threshold=60) == []

    def test_a_second_distribution_reusing_an_entry_point_name_is_recorded(self, installed_plugins, install):
        install("ispkit-plugin-copycat", "dummy", "raise AssertionError('must not be imported')\n")
        registry = Registry(strict=False)
        assert registry.stages()[("offset", "constant")].provider in {"ispkit-plugin-dummy", "ispkit-plugin-copycat"}
        [clash] = [f for f in registry.failures if f.plugin == "dummy"]
        assert "entry point name 'dummy' is already taken by" in clash.error


WATCHED_PLUGIN = '''
import sys

import ispkit
from ispkit.stages.base import Stage

sys.modules["ispkit_plugin_watched_imported"] = sys  # a mark that this module ran

class BlackLevelToo(Stage):
    """A second black_level method, as a plugin may add to a built-in kind."""
    kind = "black_level"
    method = "shifted"
    takes = "raw"
    gives = "raw"
    params = ()
    numpy = staticmethod(lambda raw: raw)
    torch = staticmethod(lambda raw: raw)

@ispkit.hookimpl
def ispkit_stages():
    return [BlackLevelToo]
'''


class TestPluginsLoadWhenTheyCanMatter:
    @pytest.fixture
    def watched(self, install):
        install("ispkit-plugin-watched", "watched", WATCHED_PLUGIN)
        yield
        sys.modules.pop("ispkit_plugin_watched_imported", None)

    def test_builtin_presets_and_cameras_import_no_plugin(self, watched):
        registry = Registry(strict=False)
        monkey = pytest.MonkeyPatch()
        monkey.setattr("ispkit.registry._REGISTRY", registry)
        try:
            views = Pipeline.preset("ma,s,me", camera="microscopy")(np.full((8, 8), 0.5))
            assert views.shape == (3, 8, 8)
            assert registry.camera("drone").name == "drone"
            assert registry.stage("demosaic", "menon2007").method == "menon2007"
            assert "ispkit_plugin_watched_imported" not in sys.modules
            assert ("black_level", "shifted") in registry.stages()  # a listing loads the plugins
            assert "ispkit_plugin_watched_imported" in sys.modules
        finally:
            monkey.undo()

    @pytest.mark.parametrize("ask", ["failures", "imports", "kinds", "unknown method"])
    def test_anything_else_loads_them(self, watched, ask):
        registry = Registry(strict=False)
        if ask == "unknown method":
            assert registry.stage("black_level", "shifted").method == "shifted"
        elif ask == "kinds":
            assert "black_level" in registry.kinds()
        else:
            getattr(registry, ask)
        assert "ispkit_plugin_watched_imported" in sys.modules

    def test_a_strict_registry_loads_them_when_made(self, watched):
        Registry(strict=True)
        assert "ispkit_plugin_watched_imported" in sys.modules

    def test_a_plugin_adding_a_method_to_a_builtin_kind_keeps_the_kind_unambiguous(self, watched):
        registry = Registry(strict=False)
        assert registry.methods("black_level") == ["per_site", "shifted"]
        assert registry.stage("black_level").method == "per_site"  # ispkit's only method of the kind
