"""ispkit's own stages, cameras, task models and distances, registered as a plugin exactly like third-party ones."""

from __future__ import annotations

from importlib import resources

from .camera import Camera
from .hookspecs import hookimpl
from .stages import all_stages
from .stages.base import Stage
from .tasks.base import TaskModel

__all__ = ["ispkit_stages", "ispkit_cameras", "ispkit_task_models", "ispkit_distances"]


@hookimpl
def ispkit_stages() -> list[type[Stage]]:
    """The built-in stage methods of :mod:`ispkit.stages`."""
    return all_stages()


@hookimpl
def ispkit_cameras() -> list[Camera]:
    """The published ``microscopy`` and ``drone`` cameras shipped as YAML in ``ispkit/cameras``."""
    folder = resources.files("ispkit") / "cameras"
    return [Camera.from_yaml(str(folder / name)) for name in ("microscopy.yaml", "drone.yaml")]


@hookimpl
def ispkit_task_models() -> list[TaskModel]:
    """The paper's ``resnet18`` and ``unetplusplus`` and the CPU-sized ``small_cnn`` and ``small_unet``."""
    from .tasks.resnet18 import RESNET18
    from .tasks.small import SMALL_CNN, SMALL_UNET
    from .tasks.unetplusplus import UNETPLUSPLUS

    return [RESNET18, UNETPLUSPLUS, SMALL_CNN, SMALL_UNET]


@hookimpl
def ispkit_distances() -> list:
    """``l2`` and ``ssim`` (1 − SSIM) for drift forensics."""
    from .drift.distances import L2, SSIM

    return [L2, SSIM]
