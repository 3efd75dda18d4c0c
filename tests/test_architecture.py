"""The layers of ispkit: imports point downward only and close no circle (docs/architecture.md).

:data:`LAYERS` is the one map of the layers, lowest first; ``docs/architecture.md`` shows
it (:func:`layer_table`, checked below). A module may import modules of its own layer and of
the layers below it, never one above. Every import counts as an arrow: at module level,
inside a function (a lazy import), under ``if TYPE_CHECKING:``, and a literal
``import_module("ispkit.x")``. A lazy arrow that has to point upward is allowed only when
:data:`ALLOWED` names it with the reason. No set of modules may import each other in a
circle, whatever the layers (an allowed lazy arrow aside). The napari app and the plugins
use public ispkit modules only (no module or name starting with ``_``).
"""

from __future__ import annotations

import ast
import re
import textwrap
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

LAYERS: dict[str, tuple[str, ...]] = {
    "core": (
        "ispkit", "ispkit._torch", "ispkit.errors", "ispkit.arrays", "ispkit.atomic", "ispkit.config", "ispkit.memory", "ispkit.threads", "ispkit.cfa",
        "ispkit.color", "ispkit.dng_color", "ispkit.flatfield", "ispkit.filters", "ispkit.stages", "ispkit.camera", "ispkit.stage_probe",
        "ispkit.testing", "ispkit.hookspecs", "ispkit.builtins", "ispkit.registry", "ispkit.pipeline", "ispkit.static",
    ),
    "data": ("ispkit.io", "ispkit.sensor", "ispkit.data", "ispkit.corruptions", "ispkit.raw_corruptions"),
    "tasks": ("ispkit.tasks",),
    "scale": ("ispkit.scale",),
    "drift": ("ispkit.drift",),
    "apps": ("ispkit.cli", "ispkit.__main__", "ispkit.demo"),
}  # fmt: skip
"""Layer name → its modules and packages (a package stands for all its modules; ``ispkit`` is its ``__init__``), lowest layer first."""

LAYER_ROLES = {
    "core": "arrays, Bayer layouts, filters, stages, cameras, the registry and its own plugin, pipelines, atomic writes, errors, YAML config",
    "data": "raw files, the sensor model, datasets, the corruption baseline, raw-domain corruptions (registered as the hook kind `ispkit_raw_corruptions`)",
    "tasks": "task models (registered as the hook kind `ispkit_task_models`), training, metrics, checkpoints",
    "scale": "Dask: the cluster switch, bulk processing of raw archives",
    "drift": "the three drift controls (distances registered as the hook kind `ispkit_distances`)",
    "apps": "the command line and the demo job; outside the package: apps/napari_drift, plugins/",
}
"""What each layer is for, as the docs table shows it."""

ALLOWED: dict[tuple[str, str], str] = {
    ("ispkit.camera", "ispkit.io.dng"): "Camera.from_dng(path) reads the file with the DNG reader of the I/O layer, imported when called",
}
"""``(importer, imported)`` → why this lazy import may point upward (it then closes no circle either)."""

EXTERNAL = ("apps/napari_drift", "plugins")
"""Code outside the package that may use public ispkit modules only."""


@dataclass(frozen=True)
class Arrow:
    """One import: ``source`` (a module) imports ``target`` at ``line``; ``lazy`` inside a function."""

    source: str
    target: str
    line: int
    lazy: bool


def modules(package: Path) -> dict[str, Path]:
    """Every module of the package folder ``package`` by dotted name (a package by its own name)."""
    found = {}
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _base(module: str, path: Path, node: ast.ImportFrom) -> str:
    """The module a ``from ... import`` names, relative imports resolved against ``module``."""
    if not node.level:
        return node.module or ""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    if node.level - 1 > len(package) - 1:
        raise ValueError(f"{path}:{node.lineno}: relative import beyond the top-level package")
    package = package[: len(package) - (node.level - 1)]
    return ".".join([*package, node.module] if node.module else package)


def _lazy_nodes(tree: ast.AST) -> set[int]:
    """ids of the import nodes inside a function or lambda (run when called, not when imported)."""
    inside = set()
    for scope in ast.walk(tree):
        if isinstance(scope, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            inside |= {id(node) for node in ast.walk(scope) if node is not scope}
    return inside


def _imported(module: str, path: Path, node: ast.AST) -> Iterator[tuple[str, tuple[str, ...]]]:
    """``(module named, names taken from it)`` for an import statement or a literal ``import_module("...")`` call."""
    if isinstance(node, ast.Import):
        for alias in node.names:
            yield alias.name, ()
    elif isinstance(node, ast.ImportFrom):
        base = _base(module, path, node)
        for alias in node.names:
            yield (f"{base}.{alias.name}", ()) if alias.name != "*" else (base, ("*",))
            yield base, (alias.name,)
    elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
        if name in ("import_module", "__import__"):
            yield node.args[0].value, ()


def arrows(package: Path, prefix: str = "ispkit") -> list[Arrow]:
    """Every import from a module of ``package`` to another module of it (the deepest module named).

    ``from a import b`` points at ``a.b`` when that is a module, else at ``a``; importing a
    module's own parent packages is implied and not listed.
    """
    known = modules(package)
    found: set[Arrow] = set()
    for module, path in known.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        lazy = _lazy_nodes(tree)
        for node in ast.walk(tree):
            for name, _ in _imported(module, path, node):
                if name != prefix and not name.startswith(prefix + "."):
                    continue
                if name not in known:
                    continue  # ``from a import name``: the name itself is not a module (its base is yielded too)
                if name != module and not module.startswith(name + "."):
                    found.add(Arrow(module, name, node.lineno, id(node) in lazy))
    return sorted(found, key=lambda a: (a.source, a.target, a.line))


def layer_of(module: str, layers: dict[str, tuple[str, ...]] = LAYERS) -> str:
    """The layer holding ``module``: the one with the longest matching module or package name.

    A package stands for its modules, except the top-level package, which stands for its ``__init__`` alone.
    """
    matches = [
        (len(entry), layer) for layer, entries in layers.items() for entry in entries if module == entry or ("." in entry and module.startswith(entry + "."))
    ]
    if not matches:
        raise KeyError(f"module {module} is in no layer: add it to LAYERS in tests/test_architecture.py and to docs/architecture.md")
    return max(matches)[1]


def upward(found: Iterable[Arrow], layers: dict[str, tuple[str, ...]] = LAYERS, allowed: dict[tuple[str, str], str] = ALLOWED) -> list[str]:
    """One line per arrow pointing to a higher layer and not allowed (allowed ones must be lazy)."""
    rank = {layer: i for i, layer in enumerate(layers)}
    bad = []
    for arrow in found:
        low, high = layer_of(arrow.source, layers), layer_of(arrow.target, layers)
        if rank[high] <= rank[low] or (arrow.lazy and (arrow.source, arrow.target) in allowed):
            continue
        kind = "lazy import" if arrow.lazy else "import"
        bad.append(f"{arrow.source} ({low}) → {arrow.target} ({high}): {kind} at line {arrow.line}")
    return bad


def circles(found: Iterable[Arrow], allowed: dict[tuple[str, str], str] = ALLOWED) -> list[list[str]]:
    """The sets of modules that import each other in a circle (strongly connected components), sorted.

    An allowed lazy arrow (:data:`ALLOWED`) is left out: it is a documented exception, not a dependency.
    """
    graph: dict[str, set[str]] = {}
    for arrow in found:
        if arrow.lazy and (arrow.source, arrow.target) in allowed:
            continue
        graph.setdefault(arrow.source, set()).add(arrow.target)
        graph.setdefault(arrow.target, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan's algorithm
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in sorted(graph[node]):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(components)


def private_uses(folder: Path, package: Path) -> list[str]:
    """Imports of ispkit in ``folder``'s Python files that name a private or missing module, or a private name."""
    known = modules(package)
    bad = []
    for path in sorted(folder.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Import, ast.ImportFrom)) or getattr(node, "level", 0):
                continue
            for name, names in _imported("", path, node):
                if not (name == "ispkit" or name.startswith("ispkit.")) or (names == () and name not in known and isinstance(node, ast.ImportFrom)):
                    continue
                where = f"{path.relative_to(folder.parent)}:{node.lineno}"
                if name not in known:
                    bad.append(f"{where}: {name} is not an ispkit module")
                elif any(part.startswith("_") for part in name.split(".")):
                    bad.append(f"{where}: {name} is a private module")
                elif any(n.startswith("_") for n in names):
                    bad.append(f"{where}: {', '.join(names)} is private to {name}")
    return bad


def layer_table(layers: dict[str, tuple[str, ...]] = LAYERS, allowed: dict[tuple[str, str], str] = ALLOWED) -> str:
    """The Markdown table of the layers, highest first, and the list of allowed upward lazy imports, as docs/architecture.md shows them."""
    rows = ["| layer | modules | what it holds |", "| --- | --- | --- |"]
    for layer in reversed(layers):
        names = ", ".join(f"`{m}`" for m in layers[layer])
        rows.append(f"| {layer} | {names} | {LAYER_ROLES[layer]} |")
    rows += ["", "Lazy imports allowed to point upward, with their reason:", ""]
    rows += [f"- `{source}` → `{target}`: {reason}" for (source, target), reason in sorted(allowed.items())] or ["- none"]
    return "\n".join(rows)


PACKAGE = ROOT / "ispkit"
ARROWS = arrows(PACKAGE)


class TestTheLayers:
    def test_every_module_is_in_exactly_one_layer(self):
        for module in modules(PACKAGE):
            layer_of(module)
        entries = [entry for layer in LAYERS.values() for entry in layer]
        assert len(entries) == len(set(entries)), "a module is listed in two layers"
        assert set(entries) <= set(modules(PACKAGE)), f"LAYERS names modules that do not exist: {set(entries) - set(modules(PACKAGE))}"

    def test_no_import_points_upward(self):
        assert upward(ARROWS) == []

    def test_no_imports_close_a_circle(self):
        assert circles(ARROWS) == []

    def test_allowed_upward_arrows_exist_and_give_a_reason(self):
        present = {(a.source, a.target) for a in ARROWS if a.lazy}
        for pair, reason in ALLOWED.items():
            assert pair in present, f"ALLOWED lists {pair}, which is not a lazy import any more: remove it"
            assert len(reason.split()) >= 4, f"ALLOWED[{pair}] needs a reason"

    @pytest.mark.parametrize("folder", EXTERNAL)
    def test_apps_and_plugins_use_public_modules_only(self, folder):
        assert private_uses(ROOT / folder, PACKAGE) == []

    def test_the_drift_package_reads_top_down_as_its_docstring_lists_it(self):
        doc = ast.get_docstring(ast.parse((PACKAGE / "drift" / "__init__.py").read_text(encoding="utf-8"))) or ""
        listed = doc[doc.index("read top-down") : doc.index("Importing this package")]
        order = list(dict.fromkeys(re.findall(r":mod:`~(ispkit\.drift\.\w+)`", listed)))
        assert set(order) == {m for m in modules(PACKAGE) if m.startswith("ispkit.drift.")}, "ispkit/drift/__init__.py must list every drift module"
        back = [
            f"{a.source} → {a.target} (line {a.line})"
            for a in ARROWS
            if a.source in order and a.target in order and order.index(a.target) > order.index(a.source)
        ]
        assert back == [], "a drift module imports one listed after it in ispkit/drift/__init__.py"

    def test_the_architecture_page_shows_the_layer_map(self):
        page = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
        assert layer_table() in page, f"docs/architecture.md must hold the layer table of tests/test_architecture.py:\n{layer_table()}"


def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    """A package ``pkg`` under ``tmp_path`` made of ``files`` (relative path → source)."""
    for name, source in files.items():
        path = tmp_path / "pkg" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source), encoding="utf-8")
    return tmp_path / "pkg"


TOY_LAYERS = {"low": ("pkg", "pkg.low"), "high": ("pkg.high",)}
"""``pkg.low`` is a package, ``pkg.high`` a module."""


class TestTheChecker:
    """The checker finds what it promises on a toy package (so a pass above means something)."""

    def test_a_lazy_upward_import_is_an_arrow(self, tmp_path):
        package = _package(tmp_path, {
            "__init__.py": "",
            "low/__init__.py": "from .base import thing\n",
            "low/base.py": "def thing():\n    from ..high import top\n    return top\n",
            "high.py": "from .low.base import thing\ntop = thing\n",
        })  # fmt: skip
        found = arrows(package, "pkg")
        assert [(a.source, a.target, a.lazy) for a in found] == [
            ("pkg.high", "pkg.low.base", False), ("pkg.low", "pkg.low.base", False), ("pkg.low.base", "pkg.high", True),
        ]  # fmt: skip
        assert upward(found, TOY_LAYERS, {}) == ["pkg.low.base (low) → pkg.high (high): lazy import at line 2"]
        assert upward(found, TOY_LAYERS, {("pkg.low.base", "pkg.high"): "the reason"}) == []
        assert circles(found, {}) == [["pkg.high", "pkg.low.base"]]
        assert circles(found, {("pkg.low.base", "pkg.high"): "the reason"}) == []

    def test_type_checking_and_import_module_count(self, tmp_path):
        package = _package(tmp_path, {
            "__init__.py": "",
            "low.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.high import Top\n",
            "high.py": "import importlib\nX = importlib.import_module('pkg.low')\n",
        })  # fmt: skip
        found = arrows(package, "pkg")
        assert upward(found, TOY_LAYERS, {}) == ["pkg.low (low) → pkg.high (high): import at line 3"]
        assert circles(found, {}) == [["pkg.high", "pkg.low"]]

    def test_an_allowed_arrow_must_be_lazy(self, tmp_path):
        package = _package(tmp_path, {"__init__.py": "", "low.py": "from . import high\n", "high.py": ""})
        assert upward(arrows(package, "pkg"), TOY_LAYERS, {("pkg.low", "pkg.high"): "the reason"}) == ["pkg.low (low) → pkg.high (high): import at line 1"]

    def test_a_module_in_no_layer_is_named(self):
        with pytest.raises(KeyError, match=r"module pkg\.other is in no layer"):
            layer_of("pkg.other", TOY_LAYERS)

    def test_private_uses_are_named(self, tmp_path):
        app = tmp_path / "app"
        app.mkdir()
        (app / "a.py").write_text(
            "from ispkit.drift.synthesis import _folds, open_run\nimport ispkit.nowhere\nfrom ispkit import Pipeline\nfrom ispkit.tasks import _x\n",
            encoding="utf-8",
        )
        assert private_uses(app, PACKAGE) == [
            "app/a.py:1: _folds is private to ispkit.drift.synthesis",
            "app/a.py:2: ispkit.nowhere is not an ispkit module",
            "app/a.py:4: _x is private to ispkit.tasks",
        ]
