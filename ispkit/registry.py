"""The plugin registry: one pluggy ``PluginManager("ispkit")`` for stages, cameras, task models and distances.

Plugins are discovered from the entry-point group ``ispkit``. Unlike pluggy's
``load_setuptools_entrypoints``, which stops at the first plugin that fails to import,
each entry point is loaded on its own: a failure is recorded (``ispkit plugins`` shows
it) and the others still load. Two environment variables steer discovery:

``ISPKIT_DISABLE_PLUGINS``
    ``all`` (or ``1``) skips every entry-point plugin; a comma-separated list of
    entry-point or distribution names skips those.
``ISPKIT_STRICT_PLUGINS``
    ``1`` turns any plugin failure into a :class:`~ispkit.errors.PluginError`.
"""

from __future__ import annotations

import os
import traceback
from collections.abc import Iterable
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

import pluggy

from . import hookspecs
from .errors import InputError, PluginError, UnknownStageError, close_matches
from .stages.base import Stage

__all__ = ["Registry", "PluginFailure", "StageEntry", "get_registry", "reset_registry"]

BUILTIN = "ispkit"
_DOMAINS = ("raw", "rgb", "luma")


@dataclass(frozen=True)
class PluginFailure:
    """A plugin that could not be used: its name, distribution and the error."""

    plugin: str
    distribution: str
    error: str
    detail: str


@dataclass(frozen=True)
class StageEntry:
    """A registered stage method and the distribution that provides it."""

    stage: type[Stage]
    provider: str


class Registry:
    """Stages and cameras provided by ispkit and by installed plugins.

    Parameters
    ----------
    entry_points
        Discover plugins from the ``ispkit`` entry-point group (tests pass ``False``).
    strict
        Raise on the first plugin failure instead of recording it; defaults to the
        ``ISPKIT_STRICT_PLUGINS`` environment variable.
    """

    def __init__(self, *, entry_points: bool = True, strict: bool | None = None) -> None:
        self.strict = os.environ.get("ISPKIT_STRICT_PLUGINS", "") in ("1", "true", "yes") if strict is None else strict
        self.manager = pluggy.PluginManager("ispkit")
        self.manager.add_hookspecs(hookspecs)
        self.failures: list[PluginFailure] = []
        self._providers: dict[str, str] = {}
        self._stages: dict[tuple[str, str], StageEntry] | None = None
        self._cameras: dict[str, Any] | None = None
        self._task_models: dict[str, Any] | None = None
        self._distances: dict[str, Any] | None = None
        from . import builtins

        self.register(builtins, name=BUILTIN, provider=BUILTIN)
        if entry_points:
            self.load_entry_points()

    # -- plugins ------------------------------------------------------------------------

    def register(self, plugin: object, *, name: str | None = None, provider: str | None = None) -> None:
        """Register a plugin object (module or instance with ``@hookimpl`` functions)."""
        registered = self.manager.register(plugin, name=name)
        if registered is None:
            raise PluginError(f"plugin {name or plugin!r} is already registered or blocked")
        self._providers[registered] = provider or registered
        self._invalidate()

    def unregister(self, name: str) -> None:
        """Remove the plugin registered under ``name``."""
        self.manager.unregister(name=name)
        self._providers.pop(name, None)
        self._invalidate()

    def load_entry_points(self, group: str = "ispkit") -> None:
        """Load every entry point of ``group`` on its own, recording failures."""
        disabled = {s.strip() for s in os.environ.get("ISPKIT_DISABLE_PLUGINS", "").split(",") if s.strip()}
        if disabled & {"all", "1"}:
            return
        for ep in entry_points(group=group):
            dist = ep.dist.name if ep.dist is not None else "?"
            if ep.name in disabled or dist in disabled or self.manager.has_plugin(ep.name):
                continue
            try:
                plugin = ep.load()
            except Exception as exc:  # any import-time error of a plugin must not be fatal
                self._fail(ep.name, dist, f"import failed: {type(exc).__name__}: {exc}")
                continue
            self.register(plugin, name=ep.name, provider=dist)

    def _fail(self, plugin: str, distribution: str, error: str) -> None:
        failure = PluginFailure(plugin, distribution, error, traceback.format_exc())
        if self.strict:
            raise PluginError(f"plugin {plugin!r} from {distribution!r}: {error}")
        self.failures.append(failure)

    def _invalidate(self) -> None:
        self._stages = None
        self._cameras = None
        self._task_models = None
        self._distances = None

    def _collect(self, hook_name: str) -> Iterable[tuple[str, str, Any]]:
        """Call ``hook_name`` plugin by plugin, yielding ``(plugin, provider, item)``; failures are recorded."""
        for impl in getattr(self.manager.hook, hook_name).get_hookimpls():
            provider = self._providers.get(impl.plugin_name, impl.plugin_name)
            try:
                items = list(impl.function() or ())
            except Exception as exc:
                self._fail(impl.plugin_name, provider, f"{hook_name}() raised {type(exc).__name__}: {exc}")
                continue
            for item in items:
                yield impl.plugin_name, provider, item

    # -- stages -------------------------------------------------------------------------

    def stages(self) -> dict[tuple[str, str], StageEntry]:
        """All registered stage methods keyed by ``(kind, method)``."""
        if self._stages is None:
            found: dict[tuple[str, str], StageEntry] = {}
            for plugin, provider, stage in self._collect("ispkit_stages"):
                problem = _stage_problem(stage)
                if problem:
                    self._fail(plugin, provider, problem)
                    continue
                key = (stage.kind, stage.method)
                if key in found:
                    raise PluginError(
                        f"stage {stage.kind}={stage.method} is provided twice: by {found[key].provider!r} "
                        f"and by {provider!r}; uninstall one or disable it with ISPKIT_DISABLE_PLUGINS"
                    )
                found[key] = StageEntry(stage, provider)
            self._stages = found
        return self._stages

    def kinds(self) -> list[str]:
        """Registered stage kinds, sorted."""
        return sorted({kind for kind, _ in self.stages()})

    def methods(self, kind: str) -> list[str]:
        """Methods registered for ``kind``, sorted; raises for an unknown kind."""
        methods = sorted(m for k, m in self.stages() if k == kind)
        if not methods:
            raise UnknownStageError(f"unknown stage kind {kind!r}: {close_matches(kind, self.kinds())}")
        return methods

    def stage(self, kind: str, method: str | None = None) -> type[Stage]:
        """The stage class for ``kind`` and ``method`` (optional when the kind has one method)."""
        methods = self.methods(kind)
        if method is None:
            if len(methods) > 1:
                raise UnknownStageError(f"stage kind {kind!r} needs a method: one of {', '.join(map(repr, methods))}")
            method = methods[0]
        entry = self.stages().get((kind, method))
        if entry is None:
            raise UnknownStageError(f"unknown method {method!r} for stage kind {kind!r}: {close_matches(method, methods)}")
        return entry.stage

    # -- cameras ------------------------------------------------------------------------

    def cameras(self) -> dict[str, Any]:
        """Registered cameras by name; a name claimed twice is an error naming both providers."""
        if self._cameras is None:
            self._cameras = self._by_name("ispkit_cameras", "camera")
        return self._cameras

    # -- task models --------------------------------------------------------------------

    def task_models(self) -> dict[str, Any]:
        """Registered :class:`~ispkit.tasks.TaskModel` objects by name."""
        if self._task_models is None:
            from .tasks.base import TaskModel

            self._task_models = self._by_name("ispkit_task_models", "task model", TaskModel)
        return self._task_models

    def task_model(self, name: str) -> Any:
        """The task model ``name``; an unknown name is an :class:`InputError` naming close matches."""
        return _named(self.task_models(), name, "task model")

    # -- distances ----------------------------------------------------------------------

    def distances(self) -> dict[str, Any]:
        """Registered :class:`~ispkit.drift.distances.Distance` objects by name (forensics)."""
        if self._distances is None:
            from .drift.distances import Distance

            self._distances = self._by_name("ispkit_distances", "distance", Distance)
        return self._distances

    def distance(self, name: str) -> Any:
        """The distance ``name``; an unknown name is an :class:`InputError` naming close matches."""
        return _named(self.distances(), name, "distance")

    def _by_name(self, hook_name: str, what: str, kind: type | None = None) -> dict[str, Any]:
        """Items of ``hook_name`` keyed by ``.name``; a name claimed twice is an error naming both providers."""
        found: dict[str, Any] = {}
        owner: dict[str, str] = {}
        for plugin, provider, item in self._collect(hook_name):
            if kind is not None and not isinstance(item, kind):
                self._fail(plugin, provider, f"{hook_name}() returned {item!r}, which is not a {kind.__qualname__}")
                continue
            if item.name in found:
                raise PluginError(f"{what} {item.name!r} is provided twice: by {owner[item.name]!r} and by {provider!r}")
            found[item.name], owner[item.name] = item, provider
        return found


def _named(items: dict[str, Any], name: str, what: str) -> Any:
    if name not in items:
        raise InputError(f"unknown {what} {name!r}: {close_matches(str(name), sorted(items))}")
    return items[name]


def _stage_problem(stage: Any) -> str | None:
    """Why ``stage`` is not a usable stage class, or ``None``."""
    if not (isinstance(stage, type) and issubclass(stage, Stage)):
        return f"ispkit_stages() returned {stage!r}, which is not a subclass of ispkit.Stage"
    name = getattr(stage, "__qualname__", repr(stage))
    for attr in ("kind", "method", "takes", "gives", "numpy", "torch"):
        if not hasattr(stage, attr):
            return f"stage class {name} does not define {attr!r}"
    if stage.takes not in _DOMAINS or stage.gives not in _DOMAINS:
        return f"stage class {name}: takes/gives must be one of {_DOMAINS}, got {stage.takes!r}/{stage.gives!r}"
    for attr in ("kind", "method"):
        value = getattr(stage, attr)
        if not (isinstance(value, str) and value.isidentifier()):
            return f"stage class {name}: {attr} must be an identifier, got {value!r}"
    return None


_REGISTRY: Registry | None = None


def get_registry() -> Registry:
    """The process-wide registry, created (and plugins discovered) on first use."""
    global _REGISTRY
    if _REGISTRY is None:
        _REGISTRY = Registry()
    return _REGISTRY


def reset_registry() -> None:
    """Forget the process-wide registry so the next :func:`get_registry` rediscovers plugins."""
    global _REGISTRY
    _REGISTRY = None
