"""ispkit.errors: the exception hierarchy, positions in messages and close-match hints."""

from __future__ import annotations

import pytest

from ispkit.errors import (
    ConfigError,
    DownloadError,
    InputError,
    ISPKitError,
    ParameterError,
    PluginError,
    RawFormatError,
    UnknownStageError,
    close_matches,
)

METHODS = ["bilinear", "malvar2004", "menon2007"]


class TestCloseMatches:
    def test_typo_hint(self):
        assert close_matches("bilnear", METHODS) == ("did you mean 'bilinear'? Available: 'bilinear', 'malvar2004', 'menon2007'")

    def test_several_hints_joined_with_or(self):
        hint = close_matches("menon2004", METHODS)
        assert hint.startswith("did you mean 'menon2007' or 'malvar2004'?")

    def test_no_hint_lists_available_sorted(self):
        assert close_matches("xyz", ["b", "a", "c"]) == "available: 'a', 'b', 'c'"

    def test_no_candidates(self):
        assert close_matches("anything", []) == "available: none"

    def test_accepts_any_iterable(self):
        assert close_matches("gama", (k for k in ["gamma", "denoise"])) == ("did you mean 'gamma'? Available: 'denoise', 'gamma'")

    def test_at_most_three_hints(self):
        hint = close_matches("aaaa", ["aaab", "aaac", "aaad", "aaae", "aaaf"])
        assert hint.split("?")[0].count(" or ") == 2


class TestConfigError:
    def test_full_position(self):
        err = ConfigError("bad value", source="pipe.yaml", line=3, column=7)
        assert str(err) == "pipe.yaml:3:7: bad value"
        assert (err.message, err.source, err.line, err.column) == ("bad value", "pipe.yaml", 3, 7)

    def test_line_only(self):
        assert str(ConfigError("bad", source="pipe.yaml", line=12)) == "pipe.yaml:12: bad"

    def test_source_only(self):
        assert str(ConfigError("bad", source="<string>")) == "<string>: bad"

    def test_column_without_line_is_ignored(self):
        assert str(ConfigError("bad", source="f.yaml", column=4)) == "f.yaml: bad"

    def test_no_source(self):
        err = ConfigError("just the message", line=3, column=2)
        assert str(err) == "just the message"

    def test_hierarchy(self):
        err = ConfigError("x")
        assert isinstance(err, ISPKitError)
        assert isinstance(err, ValueError)


class TestUnknownStageError:
    def test_is_config_and_key_error(self):
        err = UnknownStageError("unknown stage 'foo'", source="p.yaml", line=2, column=3)
        assert isinstance(err, ConfigError)
        assert isinstance(err, KeyError)
        assert isinstance(err, LookupError)
        assert isinstance(err, ISPKitError)

    def test_str_is_not_quoted(self):
        err = UnknownStageError("unknown stage 'foo'", source="p.yaml", line=2, column=3)
        assert str(err) == "p.yaml:2:3: unknown stage 'foo'"
        assert str(UnknownStageError("unknown method bar")) == "unknown method bar"
        # a plain KeyError quotes its message
        assert str(KeyError("unknown method bar")) == "'unknown method bar'"

    def test_caught_as_key_error(self):
        with pytest.raises(KeyError):
            raise UnknownStageError("nope")
        with pytest.raises(ConfigError, match=r"^nope$"):
            raise UnknownStageError("nope")


@pytest.mark.parametrize(
    ("cls", "bases"),
    [
        (InputError, (ISPKitError, ValueError)),
        (ParameterError, (ISPKitError, ValueError)),
        (RawFormatError, (ISPKitError, ValueError)),
        (PluginError, (ISPKitError,)),
        (DownloadError, (ISPKitError,)),
    ],
)
def test_hierarchy(cls, bases):
    for base in bases:
        assert issubclass(cls, base)
    assert str(cls("message")) == "message"


def test_plugin_error_is_not_value_error():
    assert not issubclass(PluginError, ValueError)
