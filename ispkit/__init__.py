"""ispkit: explicit, swappable, differentiable image-signal-processing data models.

Process the same raw data through many physically faithful pipelines (drift
synthesis), push gradients from a task model into pipeline parameters (drift
forensics), and train pipelines with task models (drift adjustment). After Oala et al.,
"Data Models for Dataset Drift Controls in Machine Learning With Optical Images",
TMLR 2023.

Importing ispkit, and processing with the NumPy backend (``Pipeline.preset(...)(raw)``),
loads no torch: :class:`PipelineModule` (and with it torch) is imported when first named,
``ispkit.PipelineModule`` or :meth:`Pipeline.to_torch`.

>>> import ispkit
>>> ispkit.presets()[:3]
['bi,s,me', 'bi,s,ga', 'bi,u,me']
"""

from importlib import metadata as _metadata
from pathlib import Path as _Path
from typing import TYPE_CHECKING as _TYPE_CHECKING
from typing import Any as _Any

from .camera import Camera
from .errors import (
    ConfigError,
    DownloadError,
    InputError,
    ISPKitError,
    ParameterError,
    PluginError,
    RawFormatError,
    UnknownStageError,
)
from .hookspecs import hookimpl
from .memory import keep_freed_memory
from .pipeline import PRESETS, Pipeline, presets
from .registry import get_registry
from .stages.base import FromCamera, Param, Stage

if _TYPE_CHECKING:
    from .pipeline.module import PipelineModule


def __getattr__(name: str) -> _Any:
    """``PipelineModule``, imported (with torch) when first asked for."""
    if name == "PipelineModule":
        from .pipeline.module import PipelineModule

        return PipelineModule
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _source_version(pyproject: _Path) -> str:
    """The version in ``pyproject`` if it is ispkit's, else ``"0+unknown"``."""
    import tomllib

    try:
        project = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("project")
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return "0+unknown"
    version = project.get("version") if isinstance(project, dict) else None
    return version if isinstance(project, dict) and project.get("name") == "ispkit" and isinstance(version, str) else "0+unknown"


def _version() -> str:
    """The installed distribution's version; for a source tree that is not installed, its ``pyproject.toml``'s."""
    try:
        return _metadata.version("ispkit")
    except _metadata.PackageNotFoundError:
        return _source_version(_Path(__file__).resolve().parent.parent / "pyproject.toml")


__version__ = _version()
"""ispkit's version (semantic versioning; CHANGELOG.md says what each one changed)."""

__all__ = [
    "Camera",
    "ConfigError",
    "DownloadError",
    "FromCamera",
    "InputError",
    "ISPKitError",
    "Param",
    "ParameterError",
    "Pipeline",
    "PipelineModule",
    "PluginError",
    "PRESETS",
    "RawFormatError",
    "Stage",
    "UnknownStageError",
    "get_registry",
    "hookimpl",
    "keep_freed_memory",
    "presets",
]
