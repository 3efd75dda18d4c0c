"""Hook specification of the tasks layer: task models (pluggy project ``"ispkit"``, one plugin manager).

:data:`TASK_MODELS` describes the hook's items for the registry; :mod:`ispkit.tasks`
registers it (:func:`ispkit.registry.register_kind`) when it is imported, with ispkit's own
task models (:mod:`ispkit.tasks.builtins`). A plugin implements the hook with
``@ispkit.hookimpl`` like the core's hooks (:mod:`ispkit.hookspecs`).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable

from ..hookspecs import hookspec
from ..registry import named_kind
from . import builtins
from .base import TaskModel

__all__ = ["TASK_MODELS", "ispkit_task_models"]


@hookspec
def ispkit_task_models() -> Iterable[TaskModel]:
    """Return the :class:`ispkit.tasks.TaskModel` objects a plugin provides, registered by name."""


TASK_MODELS = named_kind("ispkit_task_models", "task model", TaskModel, specs=sys.modules[__name__], builtins=builtins)
"""Task models, keyed by name: what the drift controls' ``model:`` key and ``ispkit models`` use."""
