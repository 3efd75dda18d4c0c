"""Hook specifications of the ``ispkit`` plugin system (pluggy project name ``"ispkit"``).

A plugin is any module or object with functions marked ``@ispkit.hookimpl``. Installed
distributions expose it through an entry point in the group ``ispkit``::

    [project.entry-points.ispkit]
    optics = "ispkit_plugin_optics.plugin"

ispkit's own stages, cameras, task models and distances are registered through these same hooks
(:mod:`ispkit.builtins`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from .camera import Camera
    from .stages.base import Stage
    from .drift.distances import Distance
    from .tasks.base import TaskModel

__all__ = ["hookspec", "hookimpl", "ispkit_stages", "ispkit_cameras", "ispkit_task_models", "ispkit_distances"]

hookspec = pluggy.HookspecMarker("ispkit")
hookimpl = pluggy.HookimplMarker("ispkit")


@hookspec
def ispkit_stages() -> Iterable[type[Stage]]:
    """Return the stage method classes (subclasses of :class:`ispkit.Stage`) a plugin provides.

    Each class is identified by its ``(kind, method)``; a pair claimed by two plugins
    is an error naming both.
    """


@hookspec
def ispkit_cameras() -> Iterable[Camera]:
    """Return the :class:`ispkit.Camera` objects a plugin provides, registered by name."""


@hookspec
def ispkit_task_models() -> Iterable[TaskModel]:
    """Return the :class:`ispkit.tasks.TaskModel` objects a plugin provides, registered by name."""


@hookspec
def ispkit_distances() -> Iterable[Distance]:
    """Return the :class:`ispkit.drift.distances.Distance` objects a plugin provides (forensics), by name."""
