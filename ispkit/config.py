"""Reading YAML configurations with file/line positions for error messages.

Pipelines, cameras and experiments are YAML documents. :func:`load_yaml` reads one
from a path or from text and returns the data together with a :class:`Locator`, which
turns a key path such as ``("stages", 3, "method")`` into ``file:line:column`` for
:class:`~ispkit.errors.ConfigError`.

Every YAML document ispkit reads goes through :func:`load_yaml` (or
:func:`parse_yaml`), which treats its input as untrusted: whatever the text, it either
returns plain data (dicts, lists, strings, numbers, booleans, ``None``, dates) or
raises :class:`~ispkit.errors.ConfigError` naming the file and, where there is one, the
line, in time and memory bounded by :data:`MAX_TEXT` and :data:`MAX_NODES`. It refuses

* texts over :data:`MAX_TEXT` (1 MB) and text that is not UTF-8 or holds control
  characters (a binary file),
* aliases (``*name``): ispkit's own YAML never uses them, and they are how a ten-line
  "billion laughs" file expands to gigabytes,
* more than :data:`MAX_NODES` (100 000) values, nesting deeper than
  :data:`MAX_DEPTH` (64) levels,
* duplicate mapping keys (naming the key and both lines), non-scalar keys and ``<<``
  merge keys,
* tags other than the plain scalar, list and mapping ones (``!!python/...``,
  ``!!binary``, ``!!set``, custom ``!tags``),
* integers outside the signed 64-bit range and floats that overflow to infinity
  (``.inf`` written as such is kept).

The small typed validators :func:`check_number`, :func:`check_int`, :func:`check_bool`,
:func:`check_string` and :func:`check_choice` check one value each; :meth:`Locator.check`
runs one and turns its complaint into an error at the value's position.
"""

from __future__ import annotations

import difflib
import math
import numbers
import os
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn, Protocol, TypeVar

import numpy as np
import yaml

from .errors import ConfigError, close_matches

__all__ = [
    "Locator",
    "load_yaml",
    "parse_yaml",
    "read_text_or_path",
    "check_number",
    "check_int",
    "check_bool",
    "check_string",
    "check_choice",
    "holds_text_or_bool",
    "MAX_TEXT",
    "MAX_NODES",
    "MAX_DEPTH",
    "INT_RANGE",
]

KeyPath = tuple[Any, ...]
T = TypeVar("T")

MAX_TEXT = 1_000_000
"""Largest YAML document read: bytes of a file, characters of text given directly."""

MAX_NODES = 100_000
"""Largest number of values (scalars, lists, mappings) in one YAML document."""

MAX_DEPTH = 64
"""Deepest nesting of lists and mappings in one YAML document."""

INT_RANGE = (-(2**63), 2**63 - 1)
"""Integers outside this (signed 64-bit) range are refused when a document is read."""

_TAG = "tag:yaml.org,2002:"
_SCALAR_TAGS = frozenset(_TAG + t for t in ("str", "int", "float", "bool", "null", "timestamp"))
_MAX_INT_LITERAL = 100  # characters; longer integer literals are out of range whatever their digits


@dataclass
class Locator:
    """Positions (1-based line, column) of every node of a YAML document."""

    source: str
    marks: dict[KeyPath, tuple[int, int]] = field(default_factory=dict)

    def error(self, path: KeyPath, message: str, cls: type[ConfigError] = ConfigError) -> NoReturn:
        """Raise ``cls`` for the node at ``path`` (or its nearest located parent)."""
        key = tuple(path)
        while key and key not in self.marks:
            key = key[:-1]
        line, column = self.marks.get(key, (None, None))
        where = ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in path).replace(".[", "[")
        raise cls(f"{where}: {message}" if where else message, source=self.source, line=line, column=column)

    def check_keys(self, mapping: Mapping[str, Any], allowed: Iterable[str], path: KeyPath, what: str) -> None:
        """Raise for the first key of ``mapping`` not in ``allowed``, naming close matches."""
        allowed = list(allowed)
        for key in mapping:
            if key not in allowed:
                self.error((*path, key), f"{what} {key!r}: {close_matches(str(key), allowed)}")

    def check(self, path: KeyPath, validate: Callable[..., T], value: Any, **options: Any) -> T:
        """``validate(value, **options)``, its :class:`ConfigError` raised again at ``path``.

        >>> _, loc = load_yaml("training:\\n  lr: .inf\\n")
        >>> loc.check(("training", "lr"), check_number, float("inf"), what="a learning rate > 0")
        Traceback (most recent call last):
        ...
        ispkit.errors.ConfigError: <string>:2:7: training.lr: expected a learning rate > 0, got inf
        """
        try:
            return validate(value, **options)
        except ConfigError as exc:
            self.error(path, exc.message)


# -- typed values -----------------------------------------------------------------------


def check_number(
    value: Any,
    *,
    what: str,
    low: float = -math.inf,
    high: float = math.inf,
    exclusive_low: bool = False,
    allow_inf: bool = False,
) -> float:
    """``value`` as a float, if it is a number in ``[low, high]`` (``(low, high]`` with ``exclusive_low``).

    Booleans, strings, NaN and (unless ``allow_inf``) infinities are refused with
    ``ConfigError("expected <what>, got <value>")``.
    """
    number = _as_float(value)
    if number is None or math.isnan(number) or (math.isinf(number) and not allow_inf) or not low <= number <= high or (exclusive_low and number == low):
        raise ConfigError(f"expected {what}, got {value!r}")
    return number


def _as_float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    try:
        return float(value)
    except OverflowError:  # an int beyond float range
        return None


def check_int(
    value: Any,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
    even: bool = False,
    odd: bool = False,
    what: str | None = None,
) -> int:
    """``value`` as an ``int`` if it is an integer (not a boolean, not a float) within the bounds and parity."""
    number = int(value) if isinstance(value, numbers.Integral) and not isinstance(value, bool) else None
    if (
        number is None
        or (minimum is not None and number < minimum)
        or (maximum is not None and number > maximum)
        or (even and number % 2)
        or (odd and not number % 2)
    ):
        raise ConfigError(f"expected {what or _describe_int(minimum, maximum, even, odd)}, got {value!r}")
    return number


def _describe_int(minimum: int | None, maximum: int | None, even: bool, odd: bool) -> str:
    parity = "an even integer" if even else "an odd integer" if odd else "an integer"
    if minimum is not None and maximum is not None:
        return f"{parity} in [{minimum}, {maximum}]"
    if minimum is not None:
        return f"{parity} >= {minimum}"
    return f"{parity} <= {maximum}" if maximum is not None else parity


def holds_text_or_bool(values: Any) -> bool:
    """Whether ``values`` (a value or nested lists of them) holds a string or a boolean.

    NumPy turns ``"2.2"`` and ``True`` into numbers; a YAML typo such as ``gamma: yes``
    or a quoted number must be an error instead.
    """
    if isinstance(values, (str, bytes, bool, np.bool_)):
        return True
    return isinstance(values, (list, tuple)) and any(holds_text_or_bool(v) for v in values)


def check_bool(value: Any) -> bool:
    """``value`` if it is a YAML boolean; the strings ``'no'``, ``'yes'``, ``'false'`` ... are refused."""
    if not isinstance(value, bool):
        raise ConfigError(f"expected true or false, got {value!r}")
    return value


def check_string(value: Any, *, what: str = "a non-empty string") -> str:
    """``value`` if it is a non-empty string (numbers, ``null`` and lists are refused)."""
    if not isinstance(value, str) or not value:
        raise ConfigError(f"expected {what}, got {value!r}")
    return value


def check_choice(value: Any, choices: Collection[str]) -> str:
    """``value`` if it is one of the strings ``choices``; the error lists them and names close matches."""
    if isinstance(value, str) and value in choices:
        return value
    hint = difflib.get_close_matches(value, sorted(choices), n=3, cutoff=0.5) if isinstance(value, str) else []
    suggestion = f" (did you mean {' or '.join(map(repr, hint))}?)" if hint else ""
    raise ConfigError(f"expected one of {sorted(choices)}, got {value!r}{suggestion}")


# -- reading ----------------------------------------------------------------------------


def read_text_or_path(path_or_text: str | os.PathLike[str]) -> tuple[str, str]:
    """Return ``(text, source_name)`` for a file path or for YAML text itself.

    A ``str`` is taken as a path when it has no line break and names an existing
    file or ends in ``.yaml``/``.yml``; otherwise it is the document. Files over
    :data:`MAX_TEXT` bytes and files that are not UTF-8 text raise :class:`ConfigError`
    naming the file (and the line of the first bad byte).
    """
    if isinstance(path_or_text, os.PathLike) or (
        isinstance(path_or_text, str) and "\n" not in path_or_text and (path_or_text.endswith((".yaml", ".yml")) or _is_file(path_or_text))
    ):
        path = Path(path_or_text)
        if not _is_file(str(path)):
            raise ConfigError(f"no such YAML file: {str(path)!r}")
        return _read_file(path), str(path)
    if not isinstance(path_or_text, str):
        raise ConfigError(f"expected a YAML path or YAML text, got {type(path_or_text).__name__}")
    return path_or_text, "<string>"


def _is_file(name: str) -> bool:
    """Whether ``name`` names an existing file; ``False`` for what cannot be a path (too long, NUL)."""
    try:
        return Path(name).is_file()
    except (OSError, ValueError):
        return False


def _read_file(path: Path) -> str:
    """The UTF-8 text of ``path``, at most :data:`MAX_TEXT` bytes."""
    try:
        with path.open("rb") as stream:
            data = stream.read(MAX_TEXT + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read YAML file: {exc.strerror or exc}", source=str(path)) from None
    if len(data) > MAX_TEXT:
        raise ConfigError(f"YAML file is larger than {MAX_TEXT:,} bytes, the limit for a configuration", source=str(path))
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ConfigError(
            f"not a YAML text file: byte 0x{data[exc.start]:02x} is not UTF-8 (a binary file?)", source=str(path), line=line, column=column
        ) from None


def load_yaml(path_or_text: str | os.PathLike[str]) -> tuple[Any, Locator]:
    """Parse a YAML document from a path or text (see :func:`read_text_or_path`) with :func:`parse_yaml`."""
    return parse_yaml(*read_text_or_path(path_or_text))


def parse_yaml(text: str, source: str = "<string>") -> tuple[Any, Locator]:
    """Parse the YAML document ``text`` read from ``source`` into plain data and its :class:`Locator`.

    Guarantees (see the module docstring): plain data only; a :class:`ConfigError` at
    ``source:line:column`` for malformed YAML, aliases, duplicate keys, unsupported
    tags, out-of-range numbers, control characters, more than :data:`MAX_TEXT`
    characters, :data:`MAX_NODES` values or :data:`MAX_DEPTH` levels; time and memory
    linear in the (bounded) text.
    """
    if len(text) > MAX_TEXT:
        raise ConfigError(f"YAML text is longer than {MAX_TEXT:,} characters, the limit for a configuration", source=source)
    try:
        loader = _Loader(text, source)
    except yaml.reader.ReaderError as exc:
        raise _reader_error(exc, text, source) from None
    try:
        node = loader.get_single_node()
        locator = Locator(source)
        data = None if node is None else _Builder(loader, locator).build(node, ())
    except yaml.YAMLError as exc:
        raise _yaml_error(exc, source) from None
    finally:
        loader.dispose()
    return data, locator


class _Mark(Protocol):
    """A position in YAML text, 0-based (PyYAML's ``Mark``, pure-Python or LibYAML's)."""

    line: int
    column: int


def _at(mark: _Mark | None, message: str, source: str) -> ConfigError:
    """A :class:`ConfigError` at a PyYAML ``mark`` (0-based) of ``source``."""
    return ConfigError(message, source=source, line=mark.line + 1 if mark else None, column=mark.column + 1 if mark else None)


def _yaml_error(exc: yaml.YAMLError, source: str) -> ConfigError:
    """A PyYAML parse error as a :class:`ConfigError` at its problem's position."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    context, context_mark = getattr(exc, "context", None), getattr(exc, "context_mark", None)
    if context and context_mark is not None and context_mark is not mark:
        problem += f" ({context} at line {context_mark.line + 1}, column {context_mark.column + 1})"
    return _at(mark, f"malformed YAML: {problem}", source)


def _reader_error(exc: yaml.reader.ReaderError, text: str, source: str) -> ConfigError:
    """PyYAML's refusal of a control character, at its line and column."""
    position = exc.position if isinstance(exc.position, int) else 0
    line = text.count("\n", 0, position) + 1
    column = position - (text.rfind("\n", 0, position) + 1) + 1
    return ConfigError(f"not YAML text: character #x{exc.character:04x} is not allowed ({exc.reason}; a binary file?)", source=source, line=line, column=column)


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader composing a bounded node tree: no aliases, at most
    :data:`MAX_NODES` nodes, at most :data:`MAX_DEPTH` levels."""

    def __init__(self, text: str, source: str) -> None:
        super().__init__(text)
        self.source = source
        self.nodes = 0
        self.depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        event = self.peek_event()  # type: ignore[no-untyped-call]  # types-PyYAML leaves Parser.peek_event unannotated
        if isinstance(event, yaml.AliasEvent):
            raise _at(
                event.start_mark,
                f"YAML aliases are not allowed (found *{event.anchor}): write the value out instead of referring to an anchor",
                self.source,
            )
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise _at(event.start_mark, f"more than {MAX_NODES:,} values in one YAML document, the limit for a configuration", self.source)
        if self.depth >= MAX_DEPTH:
            raise _at(event.start_mark, f"lists and mappings nested deeper than {MAX_DEPTH} levels, the limit for a configuration", self.source)
        self.depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


class _Builder:
    """One pass over a composed node tree: plain Python data, each node's position recorded."""

    def __init__(self, loader: _Loader, locator: Locator) -> None:
        self.loader = loader
        self.locator = locator

    def fail(self, node: yaml.Node, message: str) -> NoReturn:
        raise _at(node.start_mark, message, self.locator.source)

    def build(self, node: yaml.Node, path: KeyPath) -> Any:
        self.locator.marks[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
        if isinstance(node, yaml.ScalarNode):
            return self.scalar(node)
        if isinstance(node, yaml.SequenceNode):
            self.expect_tag(node, _TAG + "seq", "list")
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        assert isinstance(node, yaml.MappingNode), f"a YAML node is a scalar, a sequence or a mapping, got {node!r}"
        self.expect_tag(node, _TAG + "map", "mapping")
        return self.mapping(node, path)

    def mapping(self, node: yaml.MappingNode, path: KeyPath) -> dict[Any, Any]:
        out: dict[Any, Any] = {}
        first: dict[Any, yaml.Node] = {}
        for key_node, value_node in node.value:
            key = self.key(key_node)
            if key in first:
                self.fail(key_node, f"duplicate key {key!r}: first at line {first[key].start_mark.line + 1}, again at line {key_node.start_mark.line + 1}")
            first[key] = key_node
            out[key] = self.build(value_node, (*path, key))
        return out

    def key(self, node: yaml.Node) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            self.fail(node, f"mapping keys must be plain values, got a {'list' if isinstance(node, yaml.SequenceNode) else 'mapping'}")
        if node.tag == _TAG + "merge":
            self.fail(node, "merge keys ('<<') are not supported: write the keys out")
        return self.scalar(node)

    def expect_tag(self, node: yaml.Node, tag: str, what: str) -> None:
        if node.tag != tag:
            self.fail(node, f"unsupported YAML tag {node.tag!r} on a {what}: use a plain {what}")

    def scalar(self, node: yaml.ScalarNode) -> Any:
        if node.tag not in _SCALAR_TAGS:
            self.fail(node, f"unsupported YAML tag {node.tag!r}: ispkit reads plain strings, numbers, booleans, null and dates")
        if node.tag == _TAG + "int" and len(node.value) > _MAX_INT_LITERAL:
            self.fail(node, f"integer {node.value[:20]}... ({len(node.value)} characters) is out of range {list(INT_RANGE)}")
        try:
            value = self.loader.yaml_constructors[node.tag](self.loader, node)
        except (ValueError, OverflowError, KeyError, AttributeError, TypeError) as exc:  # an explicit tag on a value it cannot read
            detail = f": {exc}" if isinstance(exc, (ValueError, OverflowError)) else ""
            self.fail(node, f"{node.value[:40]!r} is not a valid {node.tag.removeprefix(_TAG)}{detail}")
        if node.tag == _TAG + "int" and not INT_RANGE[0] <= value <= INT_RANGE[1]:
            self.fail(node, f"integer {node.value} is out of range {list(INT_RANGE)}")
        if node.tag == _TAG + "float" and math.isinf(value) and node.value.lower().lstrip("+-") != ".inf":
            self.fail(node, f"number {node.value[:40]} is too large for a float (write .inf if infinity is meant)")
        return value
