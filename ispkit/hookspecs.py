"""Hook specifications of the core (pluggy project name ``"ispkit"``): stages and cameras.

A plugin is any module or object with functions marked ``@ispkit.hookimpl``. Installed
distributions expose it through an entry point in the group ``ispkit``::

    [project.entry-points.ispkit]
    optics = "ispkit_plugin_optics.plugin"

ispkit's own stages and cameras are registered through these same hooks
(:mod:`ispkit.builtins`). The other layers specify their hooks next to their code and
register them with the one plugin manager when they are imported
(:func:`ispkit.registry.register_kind`): :mod:`ispkit.tasks.hookspecs` (task models) and
:mod:`ispkit.drift.hookspecs` (view distances for forensics).
"""

from __future__ import annotations

from collections.abc import Iterable

import pluggy

from .camera import Camera
from .stages.base import Stage

__all__ = ["hookspec", "hookimpl", "ispkit_stages", "ispkit_cameras"]

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
