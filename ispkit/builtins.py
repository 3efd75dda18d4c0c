"""The core's own stages and cameras, registered as the plugin ``ispkit`` exactly like third-party ones.

The other layers register their own built-ins the same way: :mod:`ispkit.tasks.builtins`
(task models) and :mod:`ispkit.drift.builtins` (view distances).
"""

from __future__ import annotations

from importlib import resources

from .camera import Camera
from .hookspecs import hookimpl
from .stages import all_stages
from .stages.base import Stage

__all__ = ["ispkit_stages", "ispkit_cameras"]


@hookimpl
def ispkit_stages() -> list[type[Stage]]:
    """The built-in stage methods of :mod:`ispkit.stages`."""
    return all_stages()


@hookimpl
def ispkit_cameras() -> list[Camera]:
    """The published ``microscopy`` and ``drone`` cameras shipped as YAML in ``ispkit/cameras``."""
    folder = resources.files("ispkit") / "cameras"
    return [Camera.from_yaml(str(folder / name)) for name in ("microscopy.yaml", "drone.yaml")]
