"""Task models (registered through the plugin registry), their training loop, metrics and checkpoints.

Built in: ``resnet18`` and ``unetplusplus`` (the paper's models, no pretrained weights
by default) and the CPU-sized ``small_cnn`` and ``small_unet``.
"""

from .base import TASKS, TaskModel, TaskNetwork, downsample_views, load_weights
from .checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from .metrics import PRIMARY_METRIC, accuracy, dice, dice_loss, iou
from .registry import build_network, task_model, task_models
from .training import History, TrainConfig, evaluate, fit

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
    "save_checkpoint",
    "task_model",
    "task_models",
]
