"""Processed views to files: 16-bit RGB TIFFs that carry the pipeline that made them.

:func:`write_views_tiff` writes a view ``(H, W, 3)`` or a stack of views ``(*frames, H, W, 3)``
(a composer preview, a drift stack; NumPy or a lazy dask array, written frame by frame so
a long lazy stack is never in memory at once) as 16-bit RGB pages:
``round(clip(view, 0, 1) · 65535)``. The ImageDescription holds tifffile's JSON metadata
(``tifffile.TiffFile(path).shaped_metadata[0]``):

* ``shape``: the written array's shape, frames flattened (``[N, H, W, 3]``); ``ispkit_shape``:
  the stack's own shape (``[presets, t, z, H, W, 3]``) and ``axis_labels`` its axes;
* ``pipeline``: the pipeline YAML of a preview (``ispkit.Pipeline.from_yaml`` reads it back),
  or, for a drift stack, ``presets`` (one per index of the first axis) and ``pipelines``
  (preset → YAML);
* ``name``, ``source`` (the raw layer) and ``ispkit`` = :data:`FORMAT`.

A physical pixel size (µm on the last two axes) is written as the TIFF resolution in
pixels per centimetre (ImageJ/Fiji and most readers take their calibration from it).
The file appears complete or not at all (``ispkit.atomic.atomic_write``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ispkit import InputError
from ispkit.atomic import atomic_write

__all__ = ["FORMAT", "TIFF_SUFFIXES", "view_records", "write_views_tiff"]

FORMAT = "napari-drift views 1"
TIFF_SUFFIXES = (".tif", ".tiff")
_WHITE = 65535
_BIGTIFF_BYTES = 2**32 - 2**25  # classic TIFF offsets are 32-bit
_PER_CENTIMETRE = {"µm": 1e4, "μm": 1e4, "um": 1e4, "micrometer": 1e4, "micron": 1e4, "nm": 1e7, "nanometer": 1e7, "mm": 10.0, "millimeter": 10.0}


def view_records(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """The pipeline records of a processed view's layer metadata: ``{"pipeline": yaml}`` (a
    composer preview), ``{"presets": [...], "pipelines": {preset: yaml}}`` (a drift stack).

    Raises ``ispkit.InputError`` for metadata of anything else (a raw layer, a plain image):
    only views the plugin computed know their pipeline.
    """
    if isinstance(metadata.get("ispkit_pipeline"), str):
        return {"pipeline": metadata["ispkit_pipeline"]}
    pipelines = metadata.get("ispkit_pipelines")
    presets = metadata.get("ispkit_presets")
    if isinstance(pipelines, Mapping) and isinstance(presets, Sequence) and all(p in pipelines for p in presets):
        return {"presets": [str(p) for p in presets], "pipelines": {str(p): str(pipelines[p]) for p in presets}}
    raise InputError(
        "napari-drift writes processed views (a composer preview, a drift stack), whose metadata records their pipeline; "
        "this layer has none (save raw mosaics with ispkit.io.write_raw, other images with napari's own writer)"
    )


def _resolution(scale: Sequence[float] | None, units: Sequence[Any] | None) -> dict[str, Any]:
    """tifffile's ``resolution``/``resolutionunit`` for a physical pixel size, else nothing."""
    if scale is None or units is None or len(scale) < 2 or len(units) < 2:
        return {}
    per_cm = [_PER_CENTIMETRE.get(str(u).strip().lower()) for u in units[-2:]]
    if None in per_cm or per_cm[0] != per_cm[1]:
        return {}
    y, x = (float(s) for s in scale[-2:])
    if not (np.isfinite(x) and np.isfinite(y) and x > 0 and y > 0):
        return {}
    return {"resolution": (per_cm[1] / x, per_cm[0] / y), "resolutionunit": "CENTIMETER"}


def _to_uint16(frame: Any) -> np.ndarray:
    values = np.nan_to_num(np.asarray(frame, dtype=np.float64), nan=0.0, posinf=1.0, neginf=0.0)
    return np.round(np.clip(values, 0.0, 1.0) * _WHITE).astype(np.uint16)


def write_views_tiff(
    path: str | os.PathLike[str],
    data: Any,
    *,
    metadata: Mapping[str, Any],
    scale: Sequence[float] | None = None,
    units: Sequence[Any] | None = None,
    axis_labels: Sequence[str] | None = None,
    name: str = "",
    overwrite: bool = True,
) -> Path:
    """Write processed views as a 16-bit RGB TIFF (see the module docstring); returns the path.

    ``metadata`` is the layer's metadata (:func:`view_records` reads the pipeline from it);
    ``scale``/``units``/``axis_labels`` are the layer's (one per axis, the RGB channel not
    counted). Raises ``ispkit.InputError`` for data that is not ``(…, H, W, 3)``, a layer
    without a pipeline record or a file name that is not ``.tif``/``.tiff``.
    """
    import tifffile

    path = Path(path)
    if path.suffix.lower() not in TIFF_SUFFIXES:
        raise InputError(f"{path}: the 16-bit TIFF writer writes .tif or .tiff files, not {path.suffix or 'extension-less ones'!r}")
    shape = tuple(int(n) for n in np.shape(data))
    if len(shape) < 3 or shape[-1] != 3:
        raise InputError(f"expected RGB views (…, H, W, 3), got shape {shape}")
    records = view_records(metadata)
    leading = shape[:-3]
    description = {
        "ispkit": FORMAT,
        "name": str(name),
        "source": metadata.get("ispkit_preview_of") or metadata.get("ispkit_drift_of"),
        "ispkit_shape": list(shape),
        "axis_labels": [str(a) for a in axis_labels] if axis_labels is not None else None,
        **records,
    }
    json.dumps(description)  # fails here, not half way through the file, if something is not JSON
    options = {"photometric": "rgb", **_resolution(scale, units)}
    size = int(np.prod(shape, dtype=np.int64)) * 2

    def write(tmp: Path) -> None:
        with tifffile.TiffWriter(tmp, bigtiff=size > _BIGTIFF_BYTES) as writer:
            for i, index in enumerate(np.ndindex(*leading) if leading else [()]):
                frame = data[index] if index else data
                writer.write(_to_uint16(frame), contiguous=True, metadata=description if i == 0 else None, **options)

    return atomic_write(path, write, overwrite=overwrite)
