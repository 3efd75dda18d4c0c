"""ispkit's own task models, registered as the plugin ``ispkit.tasks`` (provider ``ispkit``) with their hook kind."""

from __future__ import annotations

from ..hookspecs import hookimpl
from .base import TaskModel

__all__ = ["ispkit_task_models"]


@hookimpl
def ispkit_task_models() -> list[TaskModel]:
    """The paper's ``resnet18`` and ``unetplusplus`` and the CPU-sized ``small_cnn`` and ``small_unet``."""
    from .resnet18 import RESNET18
    from .small import SMALL_CNN, SMALL_UNET
    from .unetplusplus import UNETPLUSPLUS

    return [RESNET18, UNETPLUSPLUS, SMALL_CNN, SMALL_UNET]
