"""Task-model checkpoints: a trained :class:`~ispkit.tasks.TaskNetwork` and what it was trained on.

A checkpoint is a ``torch.save`` file of plain values (loadable with
``weights_only=True``): the registry name and options of the model, its task, number
of outputs, class names, number of input channels (3 for RGB views, 4 for packed
Bayer mosaics), input downsampling, normalisation and weights, plus the YAML
of the pipeline whose views it was trained on and free-form metadata. The napari
plugin and :func:`load_checkpoint` rebuild the network from it alone.

The model is found by its name: a registered model (built in, from a plugin, or
registered from Python with :func:`~ispkit.tasks.register_model`), or a factory path
``"package.module:function"`` (:mod:`ispkit.tasks.factory`), which loading imports by its
dotted name from ``sys.path`` -- never from a path stored in the file -- and refuses when
the module is not importable, lies in the standard library or in ``__main__``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..errors import InputError
from .base import TaskNetwork
from .state import load_state, save_state

__all__ = ["Checkpoint", "save_checkpoint", "load_checkpoint", "FORMAT"]

FORMAT = "ispkit-task-model/1"
_KEYS = ("model", "outputs", "options", "in_channels", "downsample", "classes", "state_dict", "pipeline_yaml", "metadata")


@dataclass
class Checkpoint:
    """A loaded checkpoint: the network (in eval mode) and its provenance."""

    network: TaskNetwork
    pipeline_yaml: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


def save_checkpoint(
    path: str | os.PathLike[str],
    network: TaskNetwork,
    *,
    pipeline_yaml: str | None = None,
    metadata: dict[str, Any] | None = None,
    overwrite: bool = True,
) -> Path:
    """Write ``network`` (atomically) with the pipeline YAML and ``metadata``."""
    payload = {
        "format": FORMAT,
        "model": network.name,
        "task": network.task,
        "outputs": network.outputs,
        "options": network.options,
        "in_channels": network.in_channels,
        "downsample": network.downsample,
        "classes": network.classes,
        "state_dict": {k: v.detach().cpu() for k, v in network.state_dict().items()},
        "pipeline_yaml": pipeline_yaml,
        "metadata": dict(metadata or {}),
    }
    return save_state(payload, path, overwrite=overwrite)


def load_checkpoint(path: str | os.PathLike[str], *, map_location: str | torch.device = "cpu") -> Checkpoint:
    """Rebuild the network saved by :func:`save_checkpoint` (model from the registry, or its factory path imported)."""
    from .registry import build_network

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"task-model checkpoint {path} not found")
    payload = load_state(path, what="ispkit task-model checkpoint", map_location=map_location)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise InputError(f"{path} is not an ispkit task-model checkpoint (expected format {FORMAT!r}, found {found!r})")
    missing = [key for key in _KEYS if key not in payload]
    if missing:
        raise InputError(f"{path}: task-model checkpoint lacks {', '.join(map(repr, missing))}")
    options = payload["options"]
    if not isinstance(options, dict):
        raise InputError(f"{path}: task-model checkpoint options must be a mapping, found {type(options).__name__}")
    # the checkpoint's own state dict replaces every weight, so initial weights named in the
    # options (a file or a URL) are neither read nor fetched: loading a checkpoint reads one file
    network = build_network(
        payload["model"],
        payload["outputs"],
        task=payload.get("task"),
        options={k: v for k, v in options.items() if k != "weights"},
        downsample=payload["downsample"],
        classes=payload["classes"],
        in_channels=payload["in_channels"],
    )
    network.options = dict(options)
    network.load_state_dict(payload["state_dict"])
    network.to(map_location).eval()
    return Checkpoint(network, payload["pipeline_yaml"], payload["metadata"])
