"""The ``ispkit`` package itself: its version (``ispkit.__version__``) and what importing it loads."""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import subprocess
import sys
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


REAL_DNG = Path(__file__).parent / "data" / "real" / "canon_eos_kiss_x4_colorchart.dng"
HEAVY = ("torch", "torchvision", "segmentation_models_pytorch", "mlflow", "matplotlib", "colour", "pandas")
"""What a NumPy-only user must not pay for (colour and pandas come with colour-demosaicing's package)."""


def _loaded_after(code: str, *, plugins: bool = False) -> list[str]:
    """The top-level packages of :data:`HEAVY` in ``sys.modules`` after ``code`` ran in a fresh process
    (installed plugins off unless ``plugins``: a plugin may import what it likes once it is loaded)."""
    loaded = "{m.split('.')[0] for m, module in sys.modules.items() if module is not None}"
    report = f"import json, sys\nprint(json.dumps(sorted({loaded} & set({HEAVY!r}))))\n"
    env = {**os.environ, "ISPKIT_DISABLE_PLUGINS": "" if plugins else "all"}
    done = subprocess.run([sys.executable, "-c", code + report], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


@pytest.mark.parametrize("plugins", [False, True], ids=["plugins off", "plugins installed"])
def test_import_and_the_numpy_backend_load_no_torch_mlflow_or_matplotlib(plugins):
    # with the README's install the optics and denoise plugins (which import torch) are
    # installed: the built-in presets must not load them (ispkit.registry loads plugins when
    # they can matter)
    code = (
        "import numpy as np\nimport ispkit\nfrom ispkit import Pipeline\n"
        "raw = np.random.default_rng(0).random((2, 32, 32))\n"
        "for name in ispkit.presets():\n    assert Pipeline.preset(name, camera='microscopy')(raw).shape == (2, 3, 32, 32)\n"
        "assert Pipeline.preset('ma,s,me', camera='drone')(raw[0]).shape == (3, 32, 32)\n"
        "assert not [m for m in sys.modules if m.startswith('ispkit_plugin')]\n"
    )
    assert _loaded_after("import sys\n" + code, plugins=plugins) == []


def test_the_torch_module_is_there_when_asked_for():
    code = (
        "import numpy as np\nimport ispkit\nfrom ispkit.pipeline.module import PipelineModule\nfrom ispkit.stages.module import StageModule\n"
        "assert ispkit.PipelineModule is ispkit.pipeline.PipelineModule is PipelineModule\n"
        "assert ispkit.stages.StageModule is StageModule\n"
        "module = ispkit.Pipeline.preset('ma,s,me').to_torch()\nassert isinstance(module, PipelineModule)\n"
        "import torch\nassert module.camera.name == 'microscopy' and next(module.buffers()).dtype == torch.float32\n"
    )
    assert _loaded_after(code) == ["torch"]


@pytest.mark.parametrize("module", ["ispkit", "ispkit.pipeline", "ispkit.stages"])
def test_an_unknown_attribute_is_still_an_attribute_error(module):
    with pytest.raises(AttributeError, match="has no attribute 'Nowhere'"):
        _ = importlib.import_module(module).Nowhere


def test_the_numpy_backend_runs_where_torch_mlflow_and_matplotlib_cannot_be_imported():
    # as on a machine without them: each import of these packages fails (sys.modules[name] = None)
    code = (
        "import sys\nfor name in " + repr(HEAVY) + ":\n    sys.modules[name] = None\n"
        "import numpy as np\nimport ispkit\nfrom ispkit import Pipeline\nfrom ispkit.io import read_raw\n"
        "raw = np.random.default_rng(0).random((2, 32, 32))\n"
        "for name in ispkit.presets():\n    assert Pipeline.preset(name, camera='drone')(raw).shape == (2, 3, 32, 32)\n"
        f"real = read_raw({str(REAL_DNG)!r})\nassert Pipeline.preset('ma,s,me', camera=real.camera)(real.mosaic[:64, :64]).shape == (3, 64, 64)\n"
        "pipeline = Pipeline.from_yaml(Pipeline.preset('me,s,me').to_yaml())\nassert pipeline(raw[0]).shape == (3, 32, 32)\n"
        "try:\n    pipeline.to_torch()\nexcept ImportError as exc:\n    assert 'torch' in str(exc), exc\nelse:\n    raise AssertionError('to_torch without torch')\n"
    )
    assert _loaded_after(code, plugins=True) == []
