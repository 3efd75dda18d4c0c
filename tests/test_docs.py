"""The documentation: every Python example runs, and the site builds with ``mkdocs build --strict``."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ispkit.data import synthesize_drone, synthesize_microscopy

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md")])
FENCE = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def _examples() -> list[tuple[str, int, str]]:
    found = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for match in FENCE.finditer(text):
            line = text[: match.start()].count("\n") + 1
            found.append((str(page.relative_to(ROOT)), line, match.group(1)))
    return found


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A folder with a tiny dataset at ``DATA`` (the name the dataset docs use)."""
    folder = tmp_path_factory.mktemp("docs")
    synthesize_microscopy(folder / "DATA", n=80, seed=0, size=64, intensities=(1.0, 0.01), workers=1)
    synthesize_drone(folder / "DATA", n_frames=1, seed=0, height=512, width=512, cars_per_frame=6, intensities=(1.0,))
    return folder


def test_the_docs_have_python_examples():
    pages = {page for page, _, _ in _examples()}
    assert {"README.md", "docs/index.md", "docs/getting-started.md", "docs/synthesis.md", "docs/datasets.md"} <= pages


@pytest.mark.parametrize(("page", "line", "code"), _examples(), ids=[f"{p}:{n}" for p, n, _ in _examples()])
def test_example_runs(page, line, code, workdir, monkeypatch):
    monkeypatch.chdir(workdir)
    if "napari" not in code:
        exec(compile(code, f"{page}:{line}", "exec"), {"__name__": "__docs__"})
        return
    # a napari example opens a real viewer: run it in a fresh process (as a user would) under the display
    if not os.environ.get("DISPLAY"):
        pytest.skip("a napari example needs a display (the test command runs the suite under xvfb-run)")
    script = workdir / "napari_example.py"
    script.write_text(code + "\nnapari.Viewer.close_all()\n", encoding="utf-8")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{page}:{line}\n{done.stderr[-3000:]}"


@pytest.mark.skipif(shutil.which("mkdocs") is None and not (Path(sys.executable).parent / "mkdocs").exists(), reason="mkdocs is not installed")
def test_site_builds_strictly(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT, capture_output=True, text=True, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "site" / "reference" / "drift" / "index.html").is_file()
