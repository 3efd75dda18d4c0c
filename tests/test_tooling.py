"""The project's checks: scripts/test.sh runs ruff and mypy before pytest, the pre-commit hooks
run the same tools, and mypy's strict section covers exactly the core layer of
tests/test_architecture.py (configuration in pyproject.toml)."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml
from test_architecture import LAYERS

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _pinned(name: str) -> str:
    """The exact version ``name==X`` pins in the test extra."""
    pins = [req.split("==", 1)[1] for req in PYPROJECT["project"]["optional-dependencies"]["test"] if req.startswith(f"{name}==")]
    assert len(pins) == 1, f"the test extra should pin {name} exactly once, found {pins}"
    return pins[0]


def _hooks() -> dict[str, tuple[dict, dict]]:
    """Hook id → (its repo entry, the hook) of .pre-commit-config.yaml."""
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text(encoding="utf-8"))
    return {hook["id"]: (repo, hook) for repo in config["repos"] for hook in repo["hooks"]}


def test_pre_commit_runs_ruff_of_the_pinned_version_the_installed_mypy_and_the_whitespace_hooks():
    hooks = _hooks()
    assert {"trailing-whitespace", "end-of-file-fixer", "ruff-check", "ruff-format", "mypy"} <= set(hooks)
    for hook_id in ("trailing-whitespace", "end-of-file-fixer"):
        repo, _ = hooks[hook_id]
        assert repo["repo"] == "https://github.com/pre-commit/pre-commit-hooks" and re.fullmatch(r"v\d+\.\d+\.\d+", repo["rev"])
    ruff_repo, ruff_check = hooks["ruff-check"]
    assert ruff_repo["repo"] == "https://github.com/astral-sh/ruff-pre-commit"
    assert ruff_repo["rev"] == f"v{_pinned('ruff')}", "the hook's ruff must be the one scripts/test.sh runs"
    assert ruff_check.get("args") == ["--fix"]
    assert "markdown" in hooks["ruff-format"][1]["types_or"], "`ruff format .` also formats the Python blocks of the docs"
    mypy_repo, mypy = hooks["mypy"]
    assert mypy_repo["repo"] == "local" and mypy["language"] == "system"
    assert mypy["entry"].split()[-2:] == ["-m", "mypy"] and mypy["pass_filenames"] is False  # the whole package, as configured


def test_the_test_command_runs_ruff_check_ruff_format_and_mypy_before_pytest():
    script = (ROOT / "scripts" / "test.sh").read_text(encoding="utf-8")
    steps = ["-m ruff check .", "-m ruff format --check .", "-m mypy", '-m pytest "$@"']
    at = [script.find(step) for step in steps]
    assert -1 not in at, dict(zip(steps, at, strict=True))
    assert at == sorted(at), "the checks run before pytest, in this order"
    assert "set -euo pipefail" in script and "exit 1" in script


def test_mypy_is_strict_on_exactly_the_core_layer():
    mypy = PYPROJECT["tool"]["mypy"]
    strict = [o for o in mypy["overrides"] if o.get("disallow_untyped_defs")]
    assert len(strict) == 1
    expected = set()
    for module in LAYERS["core"]:
        expected.add(module)
        if (ROOT / Path(*module.split("."))).is_dir() and module != "ispkit":
            expected.add(f"{module}.*")
    assert set(strict[0]["module"]) == expected


def test_the_strict_section_sets_every_flag_of_mypys_strict_mode():
    """``strict = true`` per module would switch the flags on for every module (python/mypy#11401),
    so the section lists them; this fails when a mypy upgrade adds a flag to ``--strict``."""
    help_text = subprocess.run([sys.executable, "-m", "mypy", "--help"], capture_output=True, text=True, check=True).stdout
    listed = re.search(r"--strict\s+Strict mode; enables the following flags:(.*?)\n  --", help_text, flags=re.DOTALL)
    assert listed, "mypy --help no longer describes --strict"
    flags = {f.replace("-", "_") for f in re.findall(r"--([a-z-]+)", re.sub(r"-\n\s+", "-", listed.group(1)))}
    assert "disallow_untyped_defs" in flags and "warn_return_any" in flags
    mypy = PYPROJECT["tool"]["mypy"]
    (section,) = [o for o in mypy["overrides"] if o.get("disallow_untyped_defs")]
    missing = {f for f in flags if section.get(f) is not True and mypy.get(f) is not True}
    assert not missing, f"flags of --strict set neither for the core nor globally: {sorted(missing)}"
