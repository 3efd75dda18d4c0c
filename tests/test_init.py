"""The ``ispkit`` package itself: its version (``ispkit.__version__``)."""

from __future__ import annotations

import importlib.metadata
import re
import tomllib
from pathlib import Path

import pytest

import ispkit

ROOT = Path(__file__).resolve().parents[1]


def _pyproject_version() -> str:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]


def test_the_version_is_the_installed_distributions_and_the_source_trees():
    assert ispkit.__version__ == importlib.metadata.version("ispkit") == _pyproject_version()
    assert re.fullmatch(r"\d+\.\d+\.\d+", ispkit.__version__), "a release version MAJOR.MINOR.PATCH"


def test_the_changelog_describes_this_version_as_its_latest_release():
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    releases = re.findall(r"^## \[(\d+\.\d+\.\d+)\] - (\d{4}-\d{2}-\d{2})$", changelog, flags=re.MULTILINE)
    assert releases, "no '## [X.Y.Z] - YYYY-MM-DD' release heading in CHANGELOG.md"
    assert releases[0][0] == ispkit.__version__
    versions = [tuple(map(int, v.split("."))) for v, _ in releases]
    assert versions == sorted(versions, reverse=True), "releases newest first"
    assert "## [Unreleased]" in changelog.split(f"## [{ispkit.__version__}]")[0]


def test_without_installed_metadata_the_source_trees_pyproject_gives_the_version(monkeypatch):
    def missing(name: str) -> str:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(ispkit._metadata, "version", missing)
    assert ispkit._version() == _pyproject_version()


@pytest.mark.parametrize(
    "text",
    [
        '[project]\nname = "other"\nversion = "9.9.9"\n',  # another project's file
        '[project]\nname = "ispkit"\n',  # no version
        '[project]\nname = "ispkit"\nversion = 2\n',  # not a string
        'project = "ispkit"\n',  # not a table
        "[project\n",  # not TOML
    ],
)
def test_a_pyproject_that_does_not_give_ispkits_version_gives_an_unknown_one(tmp_path, text):
    path = tmp_path / "pyproject.toml"
    path.write_text(text, encoding="utf-8")
    assert ispkit._source_version(path) == "0+unknown"


def test_a_missing_or_binary_pyproject_gives_an_unknown_version(tmp_path):
    assert ispkit._source_version(tmp_path / "absent.toml") == "0+unknown"
    (tmp_path / "binary.toml").write_bytes(b"\xff\xfe\x00[project]")
    assert ispkit._source_version(tmp_path / "binary.toml") == "0+unknown"
