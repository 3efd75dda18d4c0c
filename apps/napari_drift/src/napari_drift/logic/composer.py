"""The composer's model: an ispkit :class:`~ispkit.Pipeline` plus a camera, edited stage by stage.

Everything goes through ispkit's public API: pipelines are immutable, so each edit
builds a new one (``Pipeline(stage_dicts, camera, name)`` for a method switch,
``Pipeline.with_params`` for a parameter), and ispkit validates every value
(``ispkit.ParameterError`` / ``ispkit.UnknownStageError`` propagate unchanged).
The list of methods per kind comes from ``ispkit.get_registry()``, so stages that
ispkit plugins register appear without changes here.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ispkit import Camera, ParameterError, Pipeline, UnknownStageError, get_registry, presets
from ispkit.atomic import atomic_write_text

__all__ = ["ComposerModel", "ParamRow", "StageRow", "format_value", "parse_value", "to_view", "view_contrast_limits", "views_of"]

VIEW_PERCENTILE = 99.9  # a dark view's upper contrast limit: this percentile of its values

DEFAULT_PRESET = "bi,s,me"


@dataclass(frozen=True)
class ParamRow:
    """One parameter of one stage, as the composer shows it."""

    name: str
    key: str  # "<stage>.<param>", as in Pipeline.params()
    value: Any  # canonical: read-only float64 array for floats, Python scalar for int/bool
    description: str
    shape: tuple[int, ...]
    bounds: tuple[float, float] | None
    dtype: type
    differentiable: bool
    overridden: bool  # set explicitly rather than from the camera/defaults

    @property
    def is_scalar(self) -> bool:
        return self.shape == ()


@dataclass(frozen=True)
class StageRow:
    """One stage of the pipeline: its name, kind, chosen method, the alternatives and parameters."""

    name: str
    kind: str
    method: str
    methods: tuple[str, ...]
    description: str
    params: tuple[ParamRow, ...]


def format_value(value: Any) -> str:
    """Compact text for a parameter value: ``"2.2"``, ``"3"``, ``"1, 2, 3"`` (arrays flattened)."""
    if isinstance(value, (bool, int, np.integer)):
        return str(value)
    array = np.asarray(value, dtype=np.float64)
    return ", ".join(f"{v:.6g}" for v in array.ravel())


def parse_value(text: str, shape: tuple[int, ...], dtype: type = float) -> Any:
    """Parse a parameter typed as text: ``"1.0, 2.0, 3.0"`` (commas, spaces or brackets), reshaped to ``shape``.

    Raises ``ispkit.ParameterError`` with the expected count when the text does not fit.
    """
    if dtype is bool:
        lowered = str(text).strip().lower()
        if lowered in {"true", "1", "yes", "on"}:
            return True
        if lowered in {"false", "0", "no", "off"}:
            return False
        raise ParameterError(f"expected true/false, got {text!r}")
    tokens = str(text).replace("[", " ").replace("]", " ").replace(",", " ").replace(";", " ").split()
    size = int(np.prod(shape)) if shape else 1
    if len(tokens) != size:
        raise ParameterError(f"expected {size} number{'s' if size != 1 else ''} for shape {shape}, got {len(tokens)} in {text!r}")
    try:
        numbers = [int(t) for t in tokens] if dtype is int else [float(t) for t in tokens]
    except ValueError:
        raise ParameterError(f"expected {'integers' if dtype is int else 'numbers'}, got {text!r}") from None
    if not shape:
        return numbers[0]
    return np.array(numbers, dtype=np.float64).reshape(shape)


def to_view(rgb: np.ndarray) -> np.ndarray:
    """A pipeline output ``(3, H, W)`` as napari RGB data: ``(H, W, 3)`` float32 clipped to [0, 1]."""
    return np.clip(np.moveaxis(np.asarray(rgb), 0, -1), 0.0, 1.0).astype(np.float32)


def view_contrast_limits(view: Any) -> tuple[float, float]:
    """Contrast limits to show a view in [0, 1]: ``(0, 1)``, or ``(0, p)`` for a dark one.

    ``p`` is the view's :data:`VIEW_PERCENTILE`-th percentile when that is below 1, so a view
    of a raw at very low intensity (all values near 0) is stretched to be seen rather than
    shown black, while a normally exposed view keeps its true brightness (a gamma or gain
    edit in the composer stays visible). An all-black (or empty, or non-finite) view keeps ``(0, 1)``.
    """
    values = np.asarray(view, dtype=np.float64)
    values = values[np.isfinite(values)]
    if not values.size:
        return (0.0, 1.0)
    high = float(np.percentile(values, VIEW_PERCENTILE))
    return (0.0, high) if 0.0 < high < 1.0 else (0.0, 1.0)


def _views_block(block: np.ndarray, function: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    frames = block.reshape((-1, *block.shape[-2:]))
    return np.stack([function(f) for f in frames]).reshape((*block.shape, 3))


def views_of(frames: Any, function: Callable[[np.ndarray], np.ndarray]) -> Any:
    """``function`` (an ``(H, W)`` mosaic → ``(H, W, 3)`` view) over a lazy stack ``(*frames, H, W)``, lazily.

    A dask array ``(*frames, H, W, 3)`` float32 with one chunk per frame: a frame is
    processed when it is read (napari: when it is shown), never before.
    """
    return frames.map_blocks(
        _views_block, function, new_axis=frames.ndim, chunks=(*frames.chunks, (3,)), dtype=np.float32, meta=np.empty((0,) * (frames.ndim + 1), np.float32)
    )


class ComposerModel:
    """An editable pipeline for one camera.

    Parameters
    ----------
    pipeline
        Start from this pipeline (its camera is replaced by ``camera`` if given).
    camera
        A :class:`ispkit.Camera` or registered name; default: the pipeline's, else ``"microscopy"``.
    backend
        ``"numpy"`` (ispkit's reference backend; about 0.1 s for 512×512 on one CPU core
        except menon2007 ≈ 0.2 s) or ``"torch"`` (float32 ``to_torch()`` module).
    """

    def __init__(self, pipeline: Pipeline | None = None, camera: Camera | str | None = None, *, backend: str = "numpy") -> None:
        if backend not in ("numpy", "torch"):
            raise ParameterError(f"backend must be 'numpy' or 'torch', got {backend!r}")
        self.backend = backend
        if pipeline is None:
            pipeline = Pipeline.preset(DEFAULT_PRESET, camera=camera or "microscopy")
        elif camera is not None:
            pipeline = pipeline.with_camera(camera)
        self._pipeline = pipeline
        self._listeners: list[Callable[[ComposerModel], None]] = []

    # -- state ------------------------------------------------------------------------

    @property
    def pipeline(self) -> Pipeline:
        """The current (immutable) pipeline."""
        return self._pipeline

    @property
    def camera(self) -> Camera:
        return self._pipeline.camera

    @property
    def label(self) -> str:
        """Short name for the current pipeline: the preset name, or the demosaic/sharpen/denoise methods."""
        if self._pipeline.name:
            return self._pipeline.name
        return ",".join(f"{s.stage.method}" for s in self._pipeline.stages if s.stage.kind in ("demosaic", "sharpen", "denoise")) or "custom"

    def subscribe(self, callback: Callable[[ComposerModel], None]) -> None:
        """Call ``callback(model)`` after every change (the widget uses this to refresh and re-preview)."""
        self._listeners.append(callback)

    def _set(self, pipeline: Pipeline) -> None:
        self._pipeline = pipeline
        for callback in list(self._listeners):
            callback(self)

    def rows(self) -> list[StageRow]:
        """One :class:`StageRow` per stage, in pipeline order."""
        registry = get_registry()
        out = []
        for s in self._pipeline.stages:
            params = tuple(
                ParamRow(
                    name=p.name,
                    key=f"{s.name}.{p.name}",
                    value=s.values[p.name],
                    description=p.doc,
                    shape=tuple(p.shape),
                    bounds=p.bounds,
                    dtype=p.dtype,
                    differentiable=p.differentiable,
                    overridden=p.name in s.overrides,
                )
                for p in s.stage.params
            )
            out.append(StageRow(s.name, s.stage.kind, s.stage.method, tuple(registry.methods(s.stage.kind)), s.stage.describe(), params))
        return out

    def stage_names(self) -> list[str]:
        return [s.name for s in self._pipeline.stages]

    # -- edits ------------------------------------------------------------------------

    def set_camera(self, camera: Camera | str | Mapping[str, Any]) -> None:
        """Use ``camera``: parameters not set explicitly are re-read from it."""
        self._set(self._pipeline.with_camera(camera))

    def set_method(self, stage: str, method: str) -> None:
        """Switch stage ``stage`` to ``method`` with that method's defaults (camera kept)."""
        target = self._stage(stage)
        if target.stage.method == method:
            return
        get_registry().stage(target.stage.kind, method)  # UnknownStageError with suggestions
        specs = []
        for s in self._pipeline.stages:
            spec = s.to_dict()
            if s.name == stage:
                spec = {"kind": s.stage.kind, "method": method}
                if s.name != s.stage.kind:
                    spec["name"] = s.name
            specs.append(spec)
        self._set(Pipeline(specs, self.camera, None))

    def set_param(self, stage: str, param: str, value: Any) -> None:
        """Set ``<stage>.<param>``; ispkit validates shape, dtype and bounds (``ParameterError``)."""
        self._stage(stage)
        if isinstance(value, str):
            declared = self._stage(stage).stage
            try:
                p = declared.param(param)
            except KeyError:
                raise ParameterError(f"stage {stage!r} has no parameter {param!r}") from None
            value = parse_value(value, tuple(p.shape), p.dtype)
        pipeline = self._pipeline.with_params({f"{stage}.{param}": value})
        self._set(_renamed(pipeline, None))

    def load_preset(self, name: str) -> None:
        """Replace the pipeline by ispkit preset ``name`` (``ispkit.presets()``) for the current camera."""
        self._set(Pipeline.preset(name, camera=self.camera))

    def set_pipeline(self, pipeline: Pipeline, *, keep_camera: bool = True) -> None:
        """Replace the pipeline; with ``keep_camera`` its stages are rebuilt for the current camera."""
        self._set(pipeline.with_camera(self.camera) if keep_camera else pipeline)

    def load_yaml(self, path: str | os.PathLike[str], *, keep_camera: bool = True) -> None:
        """Load a pipeline YAML (``Pipeline.from_yaml``). With ``keep_camera`` (default) the
        stages are applied to the current camera (the raw data's), else the file's camera is used."""
        self.set_pipeline(Pipeline.from_yaml(Path(path)), keep_camera=keep_camera)

    def save_yaml(self, path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
        """Write the pipeline as YAML; an existing file raises ``FileExistsError`` unless ``overwrite``."""
        path = Path(path)
        if path.exists() and not overwrite:
            raise FileExistsError(f"{path} exists; refusing to overwrite it (pass overwrite=True to replace it)")
        return atomic_write_text(path, self._pipeline.to_yaml(), overwrite=overwrite)

    # -- preview ----------------------------------------------------------------------

    def preview_function(self) -> Callable[[np.ndarray], np.ndarray]:
        """A function of a mosaic computing the current pipeline's view; it captures a snapshot,
        so later edits do not affect a computation already running in a worker thread."""
        pipeline, backend = self._pipeline, self.backend

        def run(mosaic: np.ndarray) -> np.ndarray:
            mosaic = np.asarray(mosaic, dtype=np.float64)
            if backend == "torch":
                import torch

                with torch.no_grad():
                    rgb = pipeline.to_torch()(torch.from_numpy(mosaic).float()).numpy()
            else:
                rgb = pipeline(mosaic)
            return to_view(rgb)

        return run

    def preview(self, mosaic: np.ndarray) -> np.ndarray:
        """The current pipeline's view of ``mosaic`` (H, W) as napari RGB data (H, W, 3) float32 in [0, 1]."""
        return self.preview_function()(mosaic)

    def preview_stack(self, frames: Any) -> Any:
        """The current pipeline's views of a lazy stack ``(*frames, H, W)``: ``(*frames, H, W, 3)``, frame by frame (:func:`views_of`)."""
        return views_of(frames, self.preview_function())

    # -- helpers ----------------------------------------------------------------------

    def _stage(self, stage: str):
        try:
            return self._pipeline[stage]
        except KeyError:
            raise UnknownStageError(f"no stage named {stage!r}; stages: {', '.join(self.stage_names())}") from None

    @staticmethod
    def presets() -> list[str]:
        return presets()


def _renamed(pipeline: Pipeline, name: str | None) -> Pipeline:
    return Pipeline(pipeline.stages, pipeline.camera, name)
