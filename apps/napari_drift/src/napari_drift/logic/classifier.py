"""Run an ispkit task-model checkpoint on a view: class probabilities or a predicted mask.

A checkpoint (:func:`ispkit.tasks.load_checkpoint`) holds the network and the YAML of
the pipeline whose views it was trained on. Inputs, in the order the widget prefers them:

* an **RGB view** ``(H, W, 3)`` in [0, 1], e.g. the composer's preview layer (its
  metadata carries the pipeline YAML, ``ispkit_pipeline``) or any RGB image layer;
* a **raw mosaic** ``(H, W)`` with its camera: processed by the checkpoint's own pipeline
  (``pipeline_yaml``, applied to the mosaic's camera) with ``Pipeline.to_torch()``, i.e.
  exactly as the model saw its training views. A model on packed Bayer planes
  (``in_channels == 4``, the raw arm of drift adjustment) gets the mosaic packed with
  :func:`ispkit.cfa.pack_bayer` instead.

Classification: ``softmax(network.predict(view))``. Segmentation: the mask at the view's
resolution (``sigmoid > 0.5`` for one output channel, ``argmax`` otherwise), upsampled
by nearest neighbour from the network's downsampled input.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ispkit import Camera, InputError, Pipeline
from ispkit.tasks import Checkpoint, load_checkpoint

__all__ = ["BUNDLED_CHECKPOINT", "ClassifierModel", "Prediction", "bundled_checkpoint", "softmax"]

BUNDLED_CHECKPOINT = "microscopy_small_cnn.pt"


def bundled_checkpoint() -> Path:
    """Path of the plugin's pretrained ``small_cnn`` for synthetic microscopy (``scripts/make_checkpoint.sh``)."""
    path = Path(str(resources.files("napari_drift") / "checkpoints" / BUNDLED_CHECKPOINT))
    if not path.is_file():
        raise FileNotFoundError(f"the bundled checkpoint {path} is missing; regenerate it with apps/napari_drift/scripts/make_checkpoint.sh")
    return path


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax (numerically stable)."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


@dataclass(frozen=True)
class Prediction:
    """What the model says about one view."""

    task: str
    classes: tuple[str, ...]
    probabilities: np.ndarray | None = None  # classification: (K,), sums to 1
    mask: np.ndarray | None = None  # segmentation: (H, W) int labels

    @property
    def index(self) -> int | None:
        return None if self.probabilities is None else int(np.argmax(self.probabilities))

    @property
    def label(self) -> str | None:
        i = self.index
        return None if i is None else self.classes[i]

    def table(self) -> list[tuple[str, float]]:
        """``(class, probability)`` rows, most likely first."""
        if self.probabilities is None:
            return []
        order = np.argsort(-self.probabilities, kind="stable")
        return [(self.classes[i], float(self.probabilities[i])) for i in order]


class ClassifierModel:
    """A loaded checkpoint and the way to run it on views or raw mosaics."""

    def __init__(self, checkpoint: Checkpoint, path: str | os.PathLike[str] | None = None) -> None:
        self.checkpoint = checkpoint
        self.path = None if path is None else Path(path)
        self.network.eval()

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ClassifierModel:
        """Load a checkpoint file; ``FileNotFoundError`` / ``ispkit.InputError`` for missing or invalid files."""
        return cls(load_checkpoint(path), path)

    @classmethod
    def bundled(cls) -> ClassifierModel:
        return cls.load(bundled_checkpoint())

    # -- description ----------------------------------------------------------------------

    @property
    def network(self) -> Any:
        return self.checkpoint.network

    @property
    def task(self) -> str:
        return self.network.task

    @property
    def classes(self) -> tuple[str, ...]:
        names = self.network.classes
        if names:
            return tuple(names)
        n = self.network.outputs
        return ("background", "foreground") if self.task == "segmentation" and n == 1 else tuple(f"class {i}" for i in range(n))

    @property
    def pipeline_yaml(self) -> str | None:
        return self.checkpoint.pipeline_yaml

    def pipeline(self, camera: Camera | str | None = None) -> Pipeline:
        """The checkpoint's training pipeline, applied to ``camera`` if given (explicit parameters kept)."""
        if not self.pipeline_yaml:
            raise InputError("this checkpoint carries no pipeline YAML: give it an RGB view (e.g. the composer's preview) instead of a raw layer")
        pipeline = Pipeline.from_yaml(self.pipeline_yaml)
        if camera is not None:
            pipeline = pipeline.with_camera(camera)
        return pipeline

    def describe(self) -> str:
        net = self.network
        pipeline = ""
        if self.pipeline_yaml:
            try:
                p = Pipeline.from_yaml(self.pipeline_yaml)
                pipeline = f"; trained on views of {p.name or 'a custom pipeline'}"
            except Exception:  # description only
                pipeline = "; training pipeline unreadable"
        source = f"{self.path.name}: " if self.path else ""
        return f"{source}{net.name} ({self.task}, {len(self.classes)} {'classes' if self.task == 'classification' else 'outputs'}, {net.in_channels} input channels, downsample {net.downsample}){pipeline}"

    # -- prediction -----------------------------------------------------------------------

    def logits_for_view(self, view: np.ndarray) -> torch.Tensor:
        """Raw network output for an RGB view ``(H, W, 3)`` (napari layout) or ``(3, H, W)``."""
        view = np.asarray(view, dtype=np.float32)
        if view.ndim == 3 and view.shape[-1] in (3, 4):  # napari layout (H, W, 3|4): alpha dropped
            view = np.moveaxis(view[..., :3], -1, 0)
        if view.ndim != 3 or view.shape[0] != 3:
            raise InputError(f"expected an RGB view (H, W, 3), got shape {np.shape(view)}")
        if self.network.in_channels != 3:
            raise InputError(f"this model takes {self.network.in_channels}-channel inputs (packed raw mosaics): choose a raw layer, not an RGB view")
        with torch.no_grad():
            return self.network.predict(torch.from_numpy(np.ascontiguousarray(view))[None])

    def logits_for_mosaic(self, mosaic: np.ndarray, camera: Camera | str) -> torch.Tensor:
        """Raw network output for a raw mosaic ``(H, W)``, processed as the model's training views were."""
        mosaic = np.asarray(mosaic, dtype=np.float32)
        if mosaic.ndim != 2:
            raise InputError(f"expected a raw mosaic (H, W), got shape {mosaic.shape}")
        raw = torch.from_numpy(np.ascontiguousarray(mosaic))[None, None]
        with torch.no_grad():
            if self.network.in_channels == 4:
                from ispkit.cfa import pack_bayer

                return self.network.predict(pack_bayer(raw))
            if self.network.in_channels != 3:
                raise InputError(f"cannot feed a raw mosaic to a model with {self.network.in_channels} input channels")
            view = self.pipeline(camera).to_torch()(raw)
            return self.network.predict(view)

    def predict_view(self, view: np.ndarray) -> Prediction:
        size = np.shape(view)[:2] if np.shape(view)[-1] in (3, 4) else np.shape(view)[1:]
        return self._prediction(self.logits_for_view(view), size)

    def predict_mosaic(self, mosaic: np.ndarray, camera: Camera | str) -> Prediction:
        return self._prediction(self.logits_for_mosaic(mosaic, camera), np.shape(mosaic))

    def _prediction(self, logits: torch.Tensor, size: tuple[int, ...]) -> Prediction:
        out = logits.detach().cpu().float()
        if self.task == "classification":
            return Prediction(self.task, self.classes, probabilities=softmax(out[0].numpy()))
        if out.ndim != 4:
            raise InputError(f"segmentation model returned shape {tuple(out.shape)}, expected (N, C, h, w)")
        h, w = int(size[0]), int(size[1])
        if out.shape[-2:] != (h, w):
            out = torch.nn.functional.interpolate(out, size=(h, w), mode="nearest")
        mask = (out[0, 0] > 0).numpy() if out.shape[1] == 1 else out[0].argmax(0).numpy()
        return Prediction(self.task, self.classes, mask=mask.astype(np.int32))
