"""The plugin registry: one pluggy ``PluginManager("ispkit")``, generic over the kinds of items hooks provide.

Plugins are discovered from the entry-point group ``ispkit``. Unlike pluggy's
``load_setuptools_entrypoints``, which stops at the first plugin that fails to import,
each entry point is loaded on its own, and a plugin's faults stay its own: an import that
raises (or calls ``sys.exit``), a hook that raises or returns something of the wrong type,
and an item claiming a name ispkit itself provides are each recorded as a
:class:`PluginFailure` (``ispkit plugins`` shows them) and skipped; everything else still
loads. ispkit's own items always win over a plugin claiming the same name; two third-party
plugins claiming one name is a :class:`~ispkit.errors.PluginError` naming both. Each entry
point's import time is kept (:meth:`Registry.slow_imports`).

**Plugins load when they can matter.** ispkit's own items always win, so looking up one of
them (a built-in stage method or camera by name, as the presets do) has the same answer
whether plugins are loaded or not: such a lookup imports no plugin. Entry points are loaded
the first time anything else is asked -- a listing, a name ispkit does not provide,
:attr:`Registry.failures` -- or at once in strict mode. A NumPy-only user of the built-in
presets therefore does not pay for a plugin that imports torch.

**Hook kinds.** What a hook provides is described by a :class:`HookKind`: its hook
specification, how an item is checked and keyed, and the plugin with ispkit's own items.
The registry knows no kind in particular: each layer registers its kinds with
:func:`register_kind` when it is imported -- the core its stages and cameras (here, with
:mod:`ispkit.hookspecs` and :mod:`ispkit.builtins`), :mod:`ispkit.tasks` its task models,
:mod:`ispkit.drift` its view distances -- and looks items up with :meth:`Registry.items` and
:meth:`Registry.get` by hook name. The one ``PluginManager`` gets every registered kind's
specification (``add_hookspecs``, one module or class per layer).

A plugin stage's numpy and torch backends are checked for agreement on a small probe
(:mod:`ispkit.stage_probe`) the first time :meth:`Registry.stage` hands it out; a
disagreement beyond the float64 contract is a :class:`PluginWarning`.

Importing this module installs the registry's camera lookup into :class:`~ispkit.camera.Camera`
(:func:`ispkit.camera.use_camera_lookup`), so that ``Camera.get("microscopy")`` finds
registered cameras while the camera module imports nothing of the registry.

Two environment variables steer discovery:

``ISPKIT_DISABLE_PLUGINS``
    ``all`` (or ``1``) skips every entry-point plugin; a comma-separated list of
    entry-point or distribution names skips those.
``ISPKIT_STRICT_PLUGINS``
    ``1`` turns any plugin failure or backend disagreement into a :class:`~ispkit.errors.PluginError`.
"""

from __future__ import annotations

import os
import re
import reprlib
import time
import traceback
import warnings
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any

import pluggy

from . import builtins, hookspecs
from .camera import Camera, use_camera_lookup
from .errors import InputError, PluginError, UnknownStageError, close_matches
from .stages.base import Param, Stage

__all__ = [
    "CAMERAS",
    "HOOK_KINDS",
    "HookKind",
    "PluginFailure",
    "PluginImport",
    "PluginWarning",
    "Registry",
    "SLOW_IMPORT_S",
    "STAGES",
    "StageEntry",
    "get_registry",
    "named_kind",
    "register_kind",
    "reset_registry",
]

BUILTIN = "ispkit"
SLOW_IMPORT_S = 1.0
"""Imports of an entry point taking longer than this many seconds are reported by ``ispkit plugins``."""
PROBE_CAMERA = "microscopy"
"""The built-in camera whose fields fill a probed plugin stage's camera-derived defaults."""

_DOMAINS = ("raw", "rgb", "luma")
_PLUGIN_FAULTS = (Exception, SystemExit)  # what plugin code may raise without taking ispkit down; Ctrl-C still stops
_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = 60
_short = _REPR.repr  # a plugin's item shown in a message: its repr, cut to about 60 characters


class PluginWarning(UserWarning):
    """A plugin that loaded but breaks a contract, e.g. its numpy and torch backends disagree."""


@dataclass(frozen=True)
class PluginFailure:
    """A plugin (or one item of it) that could not be used: its name, distribution, the error and its traceback."""

    plugin: str
    distribution: str
    error: str
    detail: str


@dataclass(frozen=True)
class PluginImport:
    """How long importing one entry point took, in seconds (whether or not the import succeeded)."""

    plugin: str
    distribution: str
    seconds: float


@dataclass(frozen=True)
class StageEntry:
    """A registered stage method and the distribution that provides it."""

    stage: type[Stage]
    provider: str


@dataclass(frozen=True)
class HookKind:
    """What one hook provides, how each item is checked and keyed, and what the registry keeps of it.

    Attributes
    ----------
    hook
        Hook name (``"ispkit_cameras"``).
    what
        Noun naming one item in messages (``"camera"``).
    problem
        Why an item is unusable (completing ``"<hook>() ..."``), or ``None`` for a usable one.
    key
        The registry key of a usable item.
    label
        A key as messages show it.
    entry
        The registry's value for a usable item and the distribution providing it.
    specs
        The module (or class) holding the hook's ``@hookspec``; a module may hold the
        specifications of several kinds of one layer.
    builtins
        The plugin (a module named ``<layer>.builtins``, or ``None``) with ispkit's own items
        of this kind; it is registered as ispkit's (provider ``"ispkit"``, plugin name
        ``<layer>``) together with the kind, and its items win over any plugin's.
    """

    hook: str
    what: str
    problem: Callable[[Any], str | None]
    key: Callable[[Any], Hashable]
    label: Callable[[Any], str]
    entry: Callable[[Any, str], Any]
    specs: Any
    builtins: Any = None


class Registry:
    """The items of every registered :class:`HookKind` provided by ispkit and by installed plugins.

    Every kind registered so far (:data:`HOOK_KINDS`) is added before plugins are loaded; a
    kind registered later (its layer imported later) is added then (:meth:`add_kind`).
    Entry points are loaded on first need (see the module docstring), or here when strict.

    Parameters
    ----------
    entry_points
        Discover plugins from the ``ispkit`` entry-point group (tests pass ``False``).
    strict
        Raise on the first plugin failure instead of recording it; defaults to the
        ``ISPKIT_STRICT_PLUGINS`` environment variable. A strict registry loads its entry
        points when it is made, so that a failing plugin raises there.
    """

    def __init__(self, *, entry_points: bool = True, strict: bool | None = None) -> None:
        self.strict = os.environ.get("ISPKIT_STRICT_PLUGINS", "") in ("1", "true", "yes") if strict is None else strict
        self.manager = pluggy.PluginManager("ispkit")
        self._failures: list[PluginFailure] = []
        self._imports: list[PluginImport] = []
        self._entry_points_pending = False
        self._kinds: dict[str, HookKind] = {}
        self._providers: dict[str, str] = {}
        self._builtin: set[str] = set()
        self._found: dict[str, dict[Hashable, Any]] = {}
        self._own: dict[str, dict[Hashable, Any]] = {}
        self._checked: set[type[Stage]] = set()
        for kind in list(HOOK_KINDS.values()):
            self.add_kind(kind)
        self._entry_points_pending = entry_points
        if self.strict:
            self._load_pending_entry_points()

    @property
    def failures(self) -> list[PluginFailure]:
        """The plugins (or items of plugins) that could not be used (loading pending entry points first)."""
        self._load_pending_entry_points()
        return self._failures

    @property
    def imports(self) -> list[PluginImport]:
        """Each loaded entry point's import time (loading pending entry points first)."""
        self._load_pending_entry_points()
        return self._imports

    # -- kinds --------------------------------------------------------------------------

    def add_kind(self, kind: HookKind) -> None:
        """Make ``kind`` usable here: add its hook specification and register ispkit's own items of it (once).

        Plugins registered earlier whose implementation of the hook does not fit the
        specification are recorded as failures and unregistered, as they would have been
        had the kind been known when they were registered.
        """
        known = self._kinds.get(kind.hook)
        if known is kind:
            return
        if known is not None:
            raise PluginError(f"hook {kind.hook!r} is registered twice: for {known.what}s and for {kind.what}s")
        caller = getattr(self.manager.hook, kind.hook, None)
        if caller is None or not caller.has_spec():
            self._drop_misfits(kind)
            self.manager.add_hookspecs(kind.specs)
        self._kinds[kind.hook] = kind
        if kind.builtins is not None and not self.manager.is_registered(kind.builtins):
            name = self.manager.get_canonical_name(kind.builtins).removesuffix(".builtins")
            self.register(kind.builtins, name=name, provider=BUILTIN)
            self._builtin.add(name)
        self._invalidate()

    def _drop_misfits(self, kind: HookKind) -> None:
        """Unregister (and record) each plugin whose implementations do not fit ``kind.specs``.

        pluggy checks an implementation when its specification is added and raises at the
        first misfit, leaving the hook half-checked; so the check is made first on a scratch
        manager holding only these specifications.
        """
        scratch = pluggy.PluginManager("ispkit")
        scratch.add_hookspecs(kind.specs)
        for name, plugin in list(self.manager.list_name_plugin()):
            if name in self._builtin:
                continue
            try:
                scratch.register(plugin, name=name)
            except _PLUGIN_FAULTS as exc:
                self.unregister(name)
                self._fail(name, self._providers.get(name, name), f"registration failed: {_describe(exc)}", exc)

    def kind(self, hook: str) -> HookKind:
        """The registered kind of ``hook`` (added here first when it was registered after this registry was made)."""
        if hook not in self._kinds:
            if hook not in HOOK_KINDS:
                known = ", ".join(sorted(HOOK_KINDS))
                raise PluginError(f"no hook kind {hook!r} is registered (known: {known}); its layer registers it when imported")
            self.add_kind(HOOK_KINDS[hook])
        return self._kinds[hook]

    def items(self, hook: str) -> dict[Hashable, Any]:
        """The usable items of the kind of ``hook`` by key, ispkit's own first (computed once until plugins change)."""
        return self._registered(self.kind(hook))

    def get(self, hook: str, key: Hashable) -> Any:
        """The item ``key`` of the kind of ``hook``; an unknown key is an :class:`InputError` naming close matches."""
        kind = self.kind(hook)
        own = self._own_items(kind)
        if key in own:
            return own[key]
        found = self.items(hook)
        if key not in found:
            raise InputError(f"unknown {kind.what} {kind.label(key)}: {close_matches(str(key), sorted(map(str, found)))}")
        return found[key]

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

    def _load_pending_entry_points(self) -> None:
        """Load the ``ispkit`` entry points if this registry discovers plugins and has not loaded them yet."""
        if self._entry_points_pending:
            self._entry_points_pending = False
            self.load_entry_points()

    def load_entry_points(self, group: str = "ispkit") -> None:
        """Load every entry point of ``group`` on its own, recording failures and import times.

        Entry points named in ``ISPKIT_DISABLE_PLUGINS``, by entry-point name or by
        distribution name (compared after PEP 503 normalisation), are skipped.
        """
        disabled = {s.strip() for s in os.environ.get("ISPKIT_DISABLE_PLUGINS", "").split(",") if s.strip()}
        if disabled & {"all", "1"}:
            return
        disabled_dists = {_normalise(name) for name in disabled}
        for ep in entry_points(group=group):
            dist = ep.dist.name if ep.dist is not None else "?"
            if ep.name in disabled or _normalise(dist) in disabled_dists:
                continue
            self._load_entry_point(ep, dist)

    def _load_entry_point(self, ep: EntryPoint, dist: str) -> None:
        """Import and register one entry point, timing the import; every fault is recorded."""
        if self.manager.has_plugin(ep.name):
            owner = self._providers.get(ep.name, ep.name)
            if owner != dist:
                self._fail(ep.name, dist, f"entry point name {ep.name!r} is already taken by {owner!r}; skipped")
            return
        start = time.perf_counter()
        try:
            plugin = ep.load()
        except _PLUGIN_FAULTS as exc:  # any import-time error of a plugin, sys.exit included, must not be fatal
            self._fail(ep.name, dist, f"import failed: {_describe(exc)}", exc)
            return
        finally:
            self._imports.append(PluginImport(ep.name, dist, time.perf_counter() - start))
        try:
            self.register(plugin, name=ep.name, provider=dist)
        except _PLUGIN_FAULTS as exc:  # pluggy rejects hook implementations it cannot call
            self._fail(ep.name, dist, f"registration failed: {_describe(exc)}", exc)

    def slow_imports(self, threshold: float | None = None) -> list[PluginImport]:
        """Entry points whose import took longer than ``threshold`` seconds (default :data:`SLOW_IMPORT_S`)."""
        limit = SLOW_IMPORT_S if threshold is None else threshold
        return [record for record in self.imports if record.seconds > limit]

    def collect_all(self) -> None:
        """Call the hook of every registered kind now, so that :attr:`failures` holds the faults of every kind of item."""
        for hook in list(HOOK_KINDS):
            self.items(hook)

    def _fail(self, plugin: str, distribution: str, error: str, exc: BaseException | None = None) -> None:
        """Record that ``plugin`` (or one of its items) was skipped because of ``error``; raise when strict."""
        if self.strict:
            raise PluginError(f"plugin {plugin!r} from {distribution!r}: {error}") from exc
        detail = "".join(traceback.format_exception(exc)) if exc is not None else ""
        self._failures.append(PluginFailure(plugin, distribution, error, detail))

    def _invalidate(self) -> None:
        self._found, self._own = {}, {}

    def _own_items(self, kind: HookKind) -> dict[Hashable, Any]:
        """ispkit's own items of ``kind`` by key (their registry values); loads no plugin.

        ispkit's own items win over any plugin's, so :meth:`items` holds each of them under
        its key whichever plugins are installed.
        """
        if kind.hook not in self._own:
            self._own[kind.hook] = {kind.key(item): kind.entry(item, BUILTIN) for _, _, item in self._collect(kind.hook, own_only=True)}
        return self._own[kind.hook]

    def _collect(self, hook: str, *, own_only: bool = False) -> Iterator[tuple[str, str, Any]]:
        """Call ``hook`` plugin by plugin, ispkit's own first (only those with ``own_only``), yielding ``(plugin, provider, item)``.

        A hook that raises (or calls ``sys.exit``) or returns something other than a
        collection of items is recorded as a failure and contributes nothing.
        """
        impls = sorted(getattr(self.manager.hook, hook).get_hookimpls(), key=lambda impl: impl.plugin_name not in self._builtin)
        if own_only:
            impls = [impl for impl in impls if impl.plugin_name in self._builtin]
        for impl in impls:
            provider = self._providers.get(impl.plugin_name, impl.plugin_name)
            try:
                result = impl.function()
                items = list(result) if _is_collection(result) else None
            except _PLUGIN_FAULTS as exc:
                self._fail(impl.plugin_name, provider, f"{hook}() raised {_describe(exc)}", exc)
                continue
            if items is None:
                self._fail(impl.plugin_name, provider, f"{hook}() returned {_short(result)}; expected a list")
                continue
            for item in items:
                yield impl.plugin_name, provider, item

    def _registered(self, kind: HookKind) -> dict[Hashable, Any]:
        """The usable items of ``kind`` by key (computed once until plugins change).

        Unusable items and items claiming a key ispkit itself provides are recorded and
        skipped; two third-party plugins claiming one key raise :class:`PluginError`.
        """
        self._load_pending_entry_points()
        if kind.hook not in self._found:
            found: dict[Hashable, Any] = {}
            owners: dict[Hashable, tuple[str, str]] = {}
            for plugin, provider, item in self._collect(kind.hook):
                problem = _problem(kind, item)
                if problem is not None:
                    self._fail(plugin, provider, f"{kind.hook}() {problem}")
                    continue
                key = kind.key(item)
                if key in owners:
                    self._clash(kind, key, owners[key], plugin, provider)
                    continue
                found[key], owners[key] = kind.entry(item, provider), (plugin, provider)
            self._found[kind.hook] = found
        return self._found[kind.hook]

    def _clash(self, kind: HookKind, key: Hashable, first: tuple[str, str], plugin: str, provider: str) -> None:
        """Handle ``plugin`` claiming ``key`` after ``first``: skip it if ``first`` is ispkit, else raise."""
        message = f"{kind.what} {kind.label(key)} is provided twice: by {first[1]!r} and by {provider!r}"
        if first[0] not in self._builtin:
            raise PluginError(f"{message}; uninstall one or disable it with ISPKIT_DISABLE_PLUGINS")
        self._fail(plugin, provider, f"{message}; ispkit's own takes precedence, so the plugin's is not used")

    # -- stages -------------------------------------------------------------------------

    def stages(self) -> dict[tuple[str, str], StageEntry]:
        """All registered stage methods keyed by ``(kind, method)``."""
        return self.items(STAGES.hook)  # type: ignore[return-value]

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
        """The stage class for ``kind`` and ``method``.

        ``method`` may be omitted when the kind has one method -- or when ispkit itself
        provides exactly one method of the kind, which is then the one: a plugin adding
        methods to a built-in kind does not make existing pipelines ambiguous. The first
        time a plugin's stage is handed out its backends are probed (see
        :meth:`_check_backends`).
        """
        own = self._own_items(STAGES)
        if method is None:
            own_methods = [entry.stage.method for entry in own.values() if entry.stage.kind == kind]
            method = own_methods[0] if len(own_methods) == 1 else None
        if (kind, method) in own:
            return own[kind, method].stage  # type: ignore[no-any-return]
        methods = self.methods(kind)
        if method is None:
            if len(methods) > 1:
                raise UnknownStageError(f"stage kind {kind!r} needs a method: one of {', '.join(map(repr, methods))}")
            method = methods[0]
        entry = self.stages().get((kind, method))
        if entry is None:
            raise UnknownStageError(f"unknown method {method!r} for stage kind {kind!r}: {close_matches(method, methods)}")
        self._check_backends(entry)
        return entry.stage

    def _check_backends(self, entry: StageEntry) -> None:
        """Probe a plugin stage's numpy and torch backends once; warn on disagreement, raise when strict.

        Built-in stages are not probed (their tests check them). A disagreement beyond
        :data:`ispkit.stage_probe.FLOAT64_TOLERANCE`, or a backend that raises on the probe,
        is a :class:`PluginWarning` naming the provider, the stage and the difference, or
        a :class:`PluginError` in strict mode (then the stage is probed again next time).
        """
        if entry.provider == BUILTIN or entry.stage in self._checked:
            return
        from .stage_probe import FLOAT64_TOLERANCE, PROBE_SIZE, backend_difference

        stage = entry.stage
        name = f"plugin stage {stage.kind}={stage.method} from {entry.provider!r}"
        try:
            result = backend_difference(stage, self.cameras()[PROBE_CAMERA])
        except _PLUGIN_FAULTS as exc:
            problem: str | None = f"{name} could not be checked: at its default parameters on a {PROBE_SIZE}×{PROBE_SIZE} probe it raised {_describe(exc)}"
        else:
            problem = (
                None
                if result.agrees
                else (
                    f"{name}: its numpy and torch backends differ by up to {result.max_difference:.3g} on the probe input "
                    f"({result.where}) at its default parameters; the float64 contract allows {FLOAT64_TOLERANCE:g}"
                )
            )
        if problem is not None:
            if self.strict:
                raise PluginError(problem)
            warnings.warn(problem, PluginWarning, stacklevel=3)
        self._checked.add(stage)

    # -- cameras ------------------------------------------------------------------------

    def cameras(self) -> dict[str, Camera]:
        """Registered cameras by name; a name claimed by two plugins is an error naming both providers."""
        return self.items(CAMERAS.hook)  # type: ignore[return-value]

    def camera(self, name: str) -> Camera:
        """The registered camera ``name``; an unknown name is an :class:`~ispkit.errors.UnknownStageError` naming close matches."""
        own = self._own_items(CAMERAS)
        if name in own:
            return own[name]  # type: ignore[no-any-return]
        cameras = self.cameras()
        if name not in cameras:
            raise UnknownStageError(f"unknown camera {name!r}: {close_matches(name, cameras)}")
        return cameras[name]

    # -- deprecated typed lookups of other layers' kinds ----------------------------------

    def task_models(self) -> dict[Hashable, Any]:
        """Deprecated: use :func:`ispkit.tasks.task_models` (or ``items("ispkit_task_models")``)."""
        _deprecated("ispkit.tasks.task_models()")
        return self.items("ispkit_task_models")

    def task_model(self, name: str) -> Any:
        """Deprecated: use :func:`ispkit.tasks.task_model` (or ``get("ispkit_task_models", name)``)."""
        _deprecated("ispkit.tasks.task_model(name)")
        return self.get("ispkit_task_models", name)

    def distances(self) -> dict[Hashable, Any]:
        """Deprecated: use :func:`ispkit.drift.distances.distances` (or ``items("ispkit_distances")``)."""
        _deprecated("ispkit.drift.distances.distances()")
        return self.items("ispkit_distances")

    def distance(self, name: str) -> Any:
        """Deprecated: use :func:`ispkit.drift.distances.distance` (or ``get("ispkit_distances", name)``)."""
        _deprecated("ispkit.drift.distances.distance(name)")
        return self.get("ispkit_distances", name)


def _deprecated(instead: str) -> None:
    """Warn the caller of a deprecated typed lookup (two frames up) to use ``instead``."""
    warnings.warn(f"Registry lookups by type are deprecated: use {instead}", DeprecationWarning, stacklevel=3)


def named_kind(hook: str, what: str, cls: type[Any], *, specs: Any, builtins: Any = None) -> HookKind:
    """The :class:`HookKind` of a hook whose items are ``cls`` instances registered by their non-empty string ``name``."""

    def problem(item: Any) -> str | None:
        if not isinstance(item, cls):
            return f"returned {_short(item)}, which is not a {cls.__name__}"
        if not (isinstance(item.name, str) and item.name.strip()):
            return f"returned a {cls.__name__} named {_short(item.name)}; expected a non-empty string"
        return None

    return HookKind(hook, what, problem, lambda item: item.name, repr, lambda item, provider: item, specs, builtins)


def register_kind(kind: HookKind) -> HookKind:
    """Register ``kind`` process-wide (:data:`HOOK_KINDS`) and add it to the process-wide registry if there is one.

    A layer calls this when it is imported, for each kind of item its hooks provide.
    Registering the same kind again does nothing; another kind for a registered hook is a
    :class:`~ispkit.errors.PluginError`.
    """
    known = HOOK_KINDS.setdefault(kind.hook, kind)
    if known is not kind:
        raise PluginError(f"hook {kind.hook!r} is registered twice: for {known.what}s and for {kind.what}s")
    if _REGISTRY is not None:
        _REGISTRY.add_kind(kind)
    return kind


def _normalise(distribution: str) -> str:
    """A distribution name in PEP 503 normal form (``Ispkit_Plugin.X`` → ``ispkit-plugin-x``)."""
    return re.sub(r"[-_.]+", "-", distribution).lower()


def _describe(exc: BaseException) -> str:
    """One line naming an exception raised by plugin code."""
    if isinstance(exc, SystemExit):
        return f"SystemExit: the plugin called sys.exit({exc.code!r})"
    return f"{type(exc).__name__}: {exc}"


def _is_collection(result: Any) -> bool:
    """Whether a hook's return value is a collection of items (``None`` counts as an empty one)."""
    return result is None or (isinstance(result, Iterable) and not isinstance(result, (str, bytes, Mapping)))


def _problem(kind: HookKind, item: Any) -> str | None:
    """``kind.problem(item)``, with an item whose inspection itself raises counted as unusable."""
    try:
        return kind.problem(item)
    except _PLUGIN_FAULTS as exc:
        return f"returned an item that could not be inspected ({_describe(exc)})"


def _stage_problem(stage: Any) -> str | None:
    """Why ``stage`` is not a usable stage class (completing ``"ispkit_stages() ..."``), or ``None``."""
    if not (isinstance(stage, type) and issubclass(stage, Stage)):
        return f"returned {_short(stage)}, which is not a subclass of ispkit.Stage"
    name = f"stage class {stage.__qualname__}"
    for attr in ("kind", "method", "takes", "gives", "numpy", "torch"):
        if not hasattr(stage, attr):
            return f"returned {name}, which does not define {attr!r}"
    for attr in ("numpy", "torch"):
        if not callable(getattr(stage, attr)):
            return f"returned {name}, whose {attr!r} backend is not callable"
    if stage.takes not in _DOMAINS or stage.gives not in _DOMAINS:
        return f"returned {name}: takes/gives must be one of {_DOMAINS}, got {_short(stage.takes)}/{_short(stage.gives)}"
    for attr in ("kind", "method"):
        value = getattr(stage, attr)
        if not (isinstance(value, str) and value.isidentifier()):
            return f"returned {name}: {attr} must be an identifier, got {_short(value)}"
    if not (isinstance(stage.params, (tuple, list)) and all(isinstance(p, Param) for p in stage.params)):
        return f"returned {name}: params must be a tuple of ispkit.Param, got {_short(stage.params)}"
    problems = stage.declaration_problems()
    if problems:
        return f"returned {name}, whose parameter declarations are invalid: {'; '.join(problems)}"
    return None


_REGISTRY: Registry | None = None

HOOK_KINDS: dict[str, HookKind] = {}
"""Every registered hook kind by hook name, in the order registered: the core's own below, then those of
each layer imported so far (``ispkit_task_models`` by :mod:`ispkit.tasks`, ``ispkit_distances`` by
:mod:`ispkit.drift`). Filled by :func:`register_kind`."""

STAGES = register_kind(
    HookKind(
        "ispkit_stages", "stage", _stage_problem, lambda stage: (stage.kind, stage.method), lambda key: f"{key[0]}={key[1]}", StageEntry,
        hookspecs, builtins,
    )
)  # fmt: skip
"""Stage method classes, keyed by ``(kind, method)`` (:func:`ispkit.hookspecs.ispkit_stages`)."""
CAMERAS = register_kind(named_kind("ispkit_cameras", "camera", Camera, specs=hookspecs, builtins=builtins))
"""Cameras, keyed by name (:func:`ispkit.hookspecs.ispkit_cameras`)."""


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


use_camera_lookup(lambda name: get_registry().camera(name))
