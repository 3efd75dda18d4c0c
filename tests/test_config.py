"""ispkit.config: YAML from text or file, with 1-based positions in errors."""

from __future__ import annotations

import math
import time
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ispkit import config
from ispkit.camera import Camera
from ispkit.config import (
    INT_RANGE,
    MAX_DEPTH,
    MAX_NODES,
    MAX_TEXT,
    Locator,
    check_bool,
    check_choice,
    check_int,
    check_number,
    check_string,
    holds_text_or_bool,
    load_yaml,
    parse_yaml,
    read_text_or_path,
)
from ispkit.drift.config import AdjustmentConfig, ForensicsConfig, SynthesisConfig
from ispkit.errors import ConfigError, UnknownStageError
from ispkit.pipeline import Pipeline

PIPELINE = """\
name: example
stages:
  - kind: demosaic
    method: bilinear
  - kind: sharpen
    method: unsharp
    params: {amount: 1.5, sigma: 0.8}
"""


class TestLoadYaml:
    def test_from_text(self):
        data, locator = load_yaml(PIPELINE)
        assert data == {
            "name": "example",
            "stages": [
                {"kind": "demosaic", "method": "bilinear"},
                {"kind": "sharpen", "method": "unsharp", "params": {"amount": 1.5, "sigma": 0.8}},
            ],
        }
        assert locator.source == "<string>"

    def test_single_line_text(self):
        data, locator = load_yaml("a: 1")
        assert data == {"a": 1}
        assert locator.source == "<string>"

    def test_from_file_path_str_and_pathlike(self, tmp_path):
        path = tmp_path / "pipe.yaml"
        path.write_text(PIPELINE, encoding="utf-8")
        for arg in (path, str(path)):
            data, locator = load_yaml(arg)
            assert data["stages"][1]["params"]["sigma"] == 0.8
            assert locator.source == str(path)

    def test_existing_file_without_yaml_suffix(self, tmp_path):
        path = tmp_path / "camera.cfg"
        path.write_text("name: x\n", encoding="utf-8")
        data, locator = load_yaml(str(path))
        assert data == {"name": "x"}
        assert locator.source == str(path)

    def test_empty_document(self):
        data, locator = load_yaml("")
        assert data is None
        assert locator.marks == {}

    @pytest.mark.parametrize("path", ["missing.yaml", "some/dir/missing.yml"])
    def test_nonexistent_yaml_path(self, path):
        with pytest.raises(ConfigError, match=f"no such YAML file: '{path}'"):
            load_yaml(path)

    def test_nonexistent_pathlike(self, tmp_path):
        with pytest.raises(ConfigError, match="no such YAML file"):
            load_yaml(tmp_path / "nope")

    def test_not_text_nor_path(self):
        with pytest.raises(ConfigError, match="expected a YAML path or YAML text, got int"):
            read_text_or_path(3)

    def test_read_text_or_path(self, tmp_path):
        assert read_text_or_path("a: 1\nb: 2\n") == ("a: 1\nb: 2\n", "<string>")
        path = tmp_path / "x.yml"
        path.write_text("k: v\n", encoding="utf-8")
        assert read_text_or_path(path) == ("k: v\n", str(path))


class TestMalformedYaml:
    @pytest.mark.parametrize(
        ("text", "line", "column", "problem"),
        [
            ("a: 1\nb: 2\n  c: 3\n", 3, 4, "mapping values are not allowed here"),
            ("a: [1, 2\nb: 3\n", 2, 2, "expected ',' or ']'"),
            ("a: 1\n\tb: 2\n", 2, 1, "cannot start any token"),
            ("x: 1\ny: 2\nz: 3\nw: {a: 1\n", 5, 1, "expected ',' or '}'"),
        ],
    )
    def test_position(self, text, line, column, problem):
        with pytest.raises(ConfigError) as info:
            load_yaml(text)
        err = info.value
        assert (err.source, err.line, err.column) == ("<string>", line, column)
        assert problem in err.message
        assert str(err).startswith(f"<string>:{line}:{column}: malformed YAML: ")

    def test_position_in_file(self, tmp_path):
        path = tmp_path / "bad.yaml"
        path.write_text("name: x\nstages:\n  - kind: gamma\n   method: power\n", encoding="utf-8")
        with pytest.raises(ConfigError) as info:
            load_yaml(path)
        assert info.value.source == str(path)
        assert info.value.line == 4
        assert str(info.value).startswith(f"{path}:4:")


class TestLocator:
    def test_marks_are_one_based(self):
        _, locator = load_yaml(PIPELINE)
        assert locator.marks[()] == (1, 1)
        assert locator.marks[("name",)] == (1, 7)
        assert locator.marks[("stages", 0)] == (3, 5)
        assert locator.marks[("stages", 1, "params", "sigma")] == (7, PIPELINE.splitlines()[6].index("0.8") + 1) == (7, 34)

    def test_error_reports_nested_key(self):
        _, locator = load_yaml(PIPELINE)
        with pytest.raises(ConfigError) as info:
            locator.error(("stages", 1, "method"), "unknown method 'unsharp'")
        err = info.value
        assert (err.line, err.column) == (6, 13)
        assert str(err) == "<string>:6:13: stages[1].method: unknown method 'unsharp'"

    def test_error_falls_back_to_nearest_parent(self):
        _, locator = load_yaml(PIPELINE)
        with pytest.raises(ConfigError) as info:
            locator.error(("stages", 1, "params", "radius"), "missing")
        assert (info.value.line, info.value.column) == (7, 13)
        assert "stages[1].params.radius: missing" in str(info.value)
        with pytest.raises(ConfigError) as info:
            locator.error(("stages", 5, "kind"), "no such stage")
        assert info.value.line == 3  # the 'stages' sequence itself

    def test_error_at_root(self):
        _, locator = load_yaml(PIPELINE)
        with pytest.raises(ConfigError) as info:
            locator.error((), "whole document wrong")
        assert str(info.value) == "<string>:1:1: whole document wrong"

    def test_error_class(self):
        _, locator = load_yaml(PIPELINE)
        with pytest.raises(UnknownStageError) as info:
            locator.error(("stages", 0, "kind"), "unknown kind", UnknownStageError)
        assert str(info.value) == "<string>:3:11: stages[0].kind: unknown kind"

    def test_error_in_file(self, tmp_path):
        path = tmp_path / "p.yaml"
        path.write_text(PIPELINE, encoding="utf-8")
        _, locator = load_yaml(path)
        with pytest.raises(ConfigError, match=rf"^{path}:4:13: stages\[0\]\.method: bad$"):
            locator.error(("stages", 0, "method"), "bad")

    def test_empty_locator(self):
        locator = Locator("<dict>")
        with pytest.raises(ConfigError) as info:
            locator.error(("a", 0), "bad")
        assert info.value.line is None
        assert str(info.value) == "<dict>: a[0]: bad"

    def test_sequence_top_level(self):
        _, locator = load_yaml("- 1\n- [2, 3]\n")
        assert locator.marks[(1, 1)] == (2, 7)


# -- hostile input ----------------------------------------------------------------------

BILLION_LAUGHS = """\
a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]
"""


def bounded(load, *args):
    """Run ``load(*args)``, expecting a ConfigError; return it, its seconds and its peak traced memory in bytes."""
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(ConfigError) as info:
            load(*args)
    finally:
        seconds = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return info.value, seconds, peak


class TestHostileYaml:
    def test_billion_laughs_is_refused_quickly_in_little_memory(self, tmp_path):
        path = tmp_path / "bomb.yaml"
        path.write_text(BILLION_LAUGHS, encoding="utf-8")
        err, seconds, peak = bounded(load_yaml, path)
        assert (err.source, err.line, err.column) == (str(path), 2, 8)
        assert "aliases are not allowed (found *a)" in err.message
        assert seconds < 2.0 and peak < 5_000_000

    @pytest.mark.parametrize(("text", "line", "column"), [("a: &x [*x]\n", 1, 8), ("a: &x {b: *x}\n", 1, 11), ("a: *nowhere\n", 1, 4)])
    def test_recursive_and_undefined_aliases(self, text, line, column):
        with pytest.raises(ConfigError, match="aliases are not allowed") as info:
            load_yaml(text)
        assert (info.value.line, info.value.column) == (line, column)

    def test_anchors_without_aliases_are_plain_values(self):
        assert load_yaml("a: &x 1\nb: 2\n")[0] == {"a": 1, "b": 2}

    def test_binary_file_names_the_file_and_line(self, tmp_path):
        path = tmp_path / "photo.yaml"
        path.write_bytes(b"name: x\n\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe")
        with pytest.raises(ConfigError, match=r"not a YAML text file: byte 0x89 is not UTF-8") as info:
            load_yaml(path)
        assert (info.value.source, info.value.line, info.value.column) == (str(path), 2, 1)
        assert str(info.value).startswith(f"{path}:2:1: ")

    @pytest.mark.parametrize("character", ["\x00", "\x07", "\x1b"])
    def test_control_characters_in_utf8_are_refused_at_their_position(self, tmp_path, character):
        path = tmp_path / "ctl.yaml"
        path.write_text(f"name: x\nkey: ab{character}c\n", encoding="utf-8")
        with pytest.raises(ConfigError, match=rf"character #x{ord(character):04x} is not allowed") as info:
            load_yaml(path)
        assert (info.value.source, info.value.line, info.value.column) == (str(path), 2, 8)

    def test_duplicate_key_names_the_key_and_both_lines(self):
        text = "name: x\nstages:\n  - kind: gamma\n    params: {gamma: 2.2}\n    kind: demosaic\n"
        with pytest.raises(ConfigError) as info:
            load_yaml(text)
        assert (info.value.line, info.value.column) == (5, 5)
        assert info.value.message == "duplicate key 'kind': first at line 3, again at line 5"

    def test_duplicate_top_level_key(self):
        with pytest.raises(ConfigError, match="duplicate key 'lr': first at line 1, again at line 3") as info:
            load_yaml("lr: 0.1\nepochs: 3\nlr: .inf\n")
        assert info.value.line == 3

    def test_huge_integer_is_refused_where_it_is(self):
        with pytest.raises(ConfigError, match=r"integer 1000.*\(401 characters\) is out of range") as info:
            load_yaml("name: x\nseed: 1" + "0" * 400 + "\n")
        assert (info.value.line, info.value.column) == (2, 7)

    def test_integer_range_is_signed_64_bit(self):
        low, high = INT_RANGE
        assert load_yaml(f"a: {high}\nb: {low}\n")[0] == {"a": 2**63 - 1, "b": -(2**63)}
        with pytest.raises(ConfigError, match=f"integer {high + 1} is out of range"):
            load_yaml(f"a: {high + 1}\n")
        with pytest.raises(ConfigError, match="out of range"):
            load_yaml("a: 0x" + "f" * 17 + "\n")

    def test_integer_longer_than_python_converts_is_refused_without_converting(self):
        with pytest.raises(ConfigError, match=r"\(5001 characters\) is out of range"):
            load_yaml("a: 1" + "0" * 5000 + "\n")

    def test_float_overflow_is_refused_but_inf_is_kept(self):
        with pytest.raises(ConfigError, match=r"too large for a float \(write \.inf if infinity is meant\)") as info:
            load_yaml("a: 1.0\nb: 1" + "0" * 400 + ".0\n")
        assert info.value.line == 2
        with pytest.raises(ConfigError, match="too large for a float"):
            load_yaml("a: !!float 1e400\n")
        data, _ = load_yaml("a: .inf\nb: -.Inf\nc: 1e400\n")
        assert data == {"a": math.inf, "b": -math.inf, "c": "1e400"}  # 1e400 is a string in YAML 1.1

    @pytest.mark.parametrize(
        ("text", "match"),
        [
            ("a: !!python/object/apply:os.system [echo]\n", "unsupported YAML tag 'tag:yaml.org,2002:python/object/apply:os.system'"),
            ("a: !!python/name:os.system\n", "unsupported YAML tag"),
            ("a: !!binary aGVsbG8=\n", "unsupported YAML tag 'tag:yaml.org,2002:binary'"),
            ("a: !!set {x, y}\n", "unsupported YAML tag 'tag:yaml.org,2002:set' on a mapping"),
            ("a: !!omap [b: 1]\n", "unsupported YAML tag 'tag:yaml.org,2002:omap' on a list"),
            ("a: !camera {name: x}\n", "unsupported YAML tag '!camera'"),
            ("a: !!bool maybe\n", "'maybe' is not a valid bool"),
            ("a: !!int ten\n", "'ten' is not a valid int"),
            ("a: !!timestamp soon\n", "'soon' is not a valid timestamp"),
            ("a: 2024-02-30\n", "'2024-02-30' is not a valid timestamp: day is out of range"),
            ("<<: {a: 1}\nb: 2\n", r"merge keys \('<<'\) are not supported"),
            ("? [a, b]\n: 1\n", "mapping keys must be plain values, got a list"),
            ("? {a: 1}\n: 1\n", "mapping keys must be plain values, got a mapping"),
        ],
    )
    def test_anything_but_plain_data_is_refused(self, text, match):
        with pytest.raises(ConfigError, match=match) as info:
            load_yaml(text)
        assert info.value.line == 1

    def test_nesting_depth_is_bounded(self):
        assert load_yaml("[" * MAX_DEPTH + "]" * MAX_DEPTH)[0] is not None
        with pytest.raises(ConfigError, match=f"nested deeper than {MAX_DEPTH} levels") as info:
            load_yaml("[" * 5000 + "]" * 5000)  # a RecursionError without the bound
        assert (info.value.line, info.value.column) == (1, MAX_DEPTH + 1)

    def test_node_budget(self, monkeypatch):
        monkeypatch.setattr(config, "MAX_NODES", 10)
        assert load_yaml("[1, 2, 3, 4, 5, 6, 7, 8, 9]")[0] == list(range(1, 10))  # 10 nodes with the list
        with pytest.raises(ConfigError, match="more than 10 values in one YAML document") as info:
            load_yaml("a: [1, 2, 3, 4, 5, 6, 7, 8, 9]")
        assert (info.value.line, info.value.column) == (1, 26)  # mapping, key, list, 1 ... 7 are ten: 8 is one too many

    def test_node_budget_default_bounds_a_long_flat_list(self):
        start = time.perf_counter()
        with pytest.raises(ConfigError, match="more than 100,000 values") as info:
            load_yaml("[" + "0," * (MAX_NODES + 1) + "]")
        assert info.value.column == 2 * MAX_NODES and time.perf_counter() - start < 30  # about 3 s on one busy core

    def test_size_budget_on_files_and_text(self, tmp_path):
        path = tmp_path / "big.yaml"
        path.write_text("a: " + "x" * MAX_TEXT + "\n", encoding="utf-8")
        with pytest.raises(ConfigError, match="YAML file is larger than 1,000,000 bytes") as info:
            load_yaml(path)
        assert info.value.source == str(path)
        with pytest.raises(ConfigError, match="YAML text is longer than 1,000,000 characters"):
            load_yaml("a: 1\n" + "#" * MAX_TEXT)
        assert load_yaml("a: " + "x" * (MAX_TEXT - 3))[0]["a"] == "x" * (MAX_TEXT - 3)

    def test_a_directory_or_device_is_not_read(self, tmp_path):
        (tmp_path / "dir.yaml").mkdir()
        with pytest.raises(ConfigError, match="no such YAML file"):
            load_yaml(tmp_path / "dir.yaml")

    @pytest.mark.parametrize("text", ["[" * 5000 + "]" * 5000, "a: b\x00c", "x" * 100_000], ids=["deep", "nul", "long"])
    def test_one_line_text_that_cannot_be_a_path_is_text(self, text):
        try:
            load_yaml(text)  # no OSError (name too long) or ValueError (NUL) from asking whether it is a file
        except ConfigError as exc:
            assert exc.source == "<string>"  # noqa: PT017 - a ConfigError is allowed here, not required
        with pytest.raises(ConfigError, match="no such YAML file"):
            load_yaml("x" * 5000 + ".yaml")

    def test_keys_are_recorded_as_read(self):
        data, locator = load_yaml("1: a\nfalse: b\nx:\n  - 2\n")
        assert data == {1: "a", False: "b", "x": [2]}
        assert locator.marks[(1,)] == (1, 4) and locator.marks[("x", 0)] == (4, 5)

    def test_parse_yaml_names_its_source(self):
        with pytest.raises(ConfigError, match=r"^cam\.tiff \(ImageDescription\):2:1: duplicate key 'a'"):
            parse_yaml("a: 1\na: 2\n", "cam.tiff (ImageDescription)")


BOMB_CAMERA = "name: bomb\n" + BILLION_LAUGHS.replace("a: &a", "description: &a", 1)


def _bomb_file(tmp_path: Path, text: str = BOMB_CAMERA) -> Path:
    path = tmp_path / "bomb.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _checkpoint_pipeline(tmp_path: Path) -> Any:
    """Rebuilding the pipeline of a checkpoint whose ``pipeline_yaml`` is a bomb (what the napari classifier does)."""
    from ispkit.tasks import load_checkpoint, save_checkpoint
    from ispkit.tasks.registry import build_network

    path = save_checkpoint(tmp_path / "model.pt", build_network("small_cnn", 2), pipeline_yaml=BOMB_CAMERA)
    checkpoint = load_checkpoint(path)
    assert checkpoint.pipeline_yaml == BOMB_CAMERA
    return lambda: Pipeline.from_yaml(checkpoint.pipeline_yaml)


@pytest.mark.parametrize(
    "prepare",
    [
        pytest.param(lambda tmp: lambda: Pipeline.from_yaml(_bomb_file(tmp)), id="Pipeline.from_yaml(file)"),
        pytest.param(lambda tmp: lambda: Pipeline.from_yaml(BOMB_CAMERA), id="Pipeline.from_yaml(text)"),
        pytest.param(lambda tmp: lambda: Camera.from_yaml(_bomb_file(tmp)), id="Camera.from_yaml"),
        pytest.param(lambda tmp: lambda: Camera.get(str(_bomb_file(tmp))), id="Camera.get(path)"),
        pytest.param(lambda tmp: lambda: SynthesisConfig.from_yaml(_bomb_file(tmp)), id="SynthesisConfig.from_yaml"),
        pytest.param(lambda tmp: lambda: ForensicsConfig.from_yaml(_bomb_file(tmp)), id="ForensicsConfig.from_yaml"),
        pytest.param(lambda tmp: lambda: AdjustmentConfig.from_yaml(_bomb_file(tmp)), id="AdjustmentConfig.from_yaml"),
        pytest.param(_checkpoint_pipeline, id="checkpoint pipeline_yaml"),
    ],
)
def test_every_reader_refuses_the_bomb_quickly(tmp_path, prepare):
    err, seconds, peak = bounded(prepare(tmp_path))
    assert err.line == 3 and "aliases are not allowed (found *a)" in err.message
    assert seconds < 2.0 and peak < 20_000_000


class TestValidators:
    def test_check_number(self):
        assert check_number(2, what="x") == 2.0 and type(check_number(np.float32(0.5), what="x")) is float
        assert check_number(math.inf, what="λ", allow_inf=True) == math.inf
        for bad in (True, "1.0", None, [1.0], math.nan, math.inf, 10**400, -1):
            with pytest.raises(ConfigError, match=r"^expected a rate >= 0, got "):
                check_number(bad, what="a rate >= 0", low=0.0)
        with pytest.raises(ConfigError, match="got 0"):
            check_number(0, what="a rate > 0", low=0.0, exclusive_low=True)
        with pytest.raises(ConfigError, match="got 2"):
            check_number(2, what="a fraction", high=1.0)

    def test_check_int(self):
        assert check_int(np.int64(3), minimum=1, odd=True) == 3 and type(check_int(np.int64(3))) is int
        cases = [(True, {}, "an integer"), (3.0, {}, "an integer"), ("3", {}, "an integer"), (0, {"minimum": 1}, "an integer >= 1"),
                 (6, {"minimum": 1, "maximum": 5}, r"an integer in \[1, 5\]"), (4, {"odd": True}, "an odd integer"), (65, {"minimum": 32, "even": True}, "an even integer >= 32")]  # fmt: skip
        for value, options, expected in cases:
            with pytest.raises(ConfigError, match=f"^expected {expected}, got {value!r}$"):
                check_int(value, **options)

    def test_check_bool_string_and_choice(self):
        assert check_bool(False) is False and check_string("x") == "x" and check_choice("raw", ("raw", "rgb")) == "raw"
        for bad in ("no", "false", 0, None):
            with pytest.raises(ConfigError, match=f"^expected true or false, got {bad!r}$"):
                check_bool(bad)
        with pytest.raises(ConfigError, match=r"^expected a stage name, got \[\]$"):
            check_string([], what="a stage name")
        with pytest.raises(ConfigError, match=r"^expected one of \['raw', 'rgb'\], got 'rbg' \(did you mean 'rgb'\?\)$"):
            check_choice("rbg", ("raw", "rgb"))
        with pytest.raises(ConfigError, match=r"^expected one of \['raw', 'rgb'\], got \['raw'\]$"):
            check_choice(["raw"], ("raw", "rgb"))

    def test_holds_text_or_bool(self):
        assert holds_text_or_bool([[1.0, 2.0], [3.0, "4"]]) and holds_text_or_bool(np.bool_(True)) and holds_text_or_bool((1, True))
        assert not holds_text_or_bool([[1.0, 2], (3, np.float64(4))]) and not holds_text_or_bool(np.array([True]))
