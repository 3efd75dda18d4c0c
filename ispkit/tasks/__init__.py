"""Task models (registered through the plugin registry), their training loop, metrics and checkpoints.

Built in: ``resnet18`` and ``unetplusplus`` (the paper's models, no pretrained weights
by default) and the CPU-sized ``small_cnn`` and ``small_unet``. Importing this package
registers the task-model hook kind (:data:`~ispkit.tasks.hookspecs.TASK_MODELS`) and
these built-ins with the plugin registry.

Models of your own, without a plugin: :func:`register_model` registers a
:class:`TaskModel` in this process, and a factory path ``"package.module:function"``
stands for any ``torch.nn.Module`` factory wherever a model is named
(:mod:`ispkit.tasks.factory`).
"""

from ..registry import register_kind
from .base import TASKS, TaskModel, TaskNetwork, downsample_views, load_weights
from .checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from .hookspecs import TASK_MODELS
from .metrics import PRIMARY_METRIC, accuracy, dice, dice_loss, iou
from .registry import build_network, register_model, task_model, task_models, unregister_model
from .training import History, TrainConfig, evaluate, fit

register_kind(TASK_MODELS)

__all__ = [
    "PRIMARY_METRIC",
    "TASKS",
    "Checkpoint",
    "History",
    "TaskModel",
    "TaskNetwork",
    "TrainConfig",
    "accuracy",
    "build_network",
    "dice",
    "dice_loss",
    "downsample_views",
    "evaluate",
    "fit",
    "iou",
    "load_checkpoint",
    "load_weights",
    "register_model",
    "save_checkpoint",
    "task_model",
    "task_models",
    "unregister_model",
]
