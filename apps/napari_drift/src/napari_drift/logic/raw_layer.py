"""Raw mosaics as napari layer data, and the way back from a layer to its ispkit camera.

A raw file becomes up to two napari layer data tuples ``(data, kwargs, "image")``:

1. the **mosaic**: ``(H, W)`` float32 in [0, 1] (``ispkit.io.read_raw``'s normalised
   numbers), grey colormap, named after the file, with metadata

   * ``ispkit_camera``: the camera's registered name (``"microscopy"``) when the camera
     equals the registered one, else its full YAML (``Camera.to_yaml``),
   * ``ispkit_pattern``: the CFA layout (``"RGGB"``, ...),
   * ``ispkit_path``: the file, as a string (``None`` for in-memory data);

   a **stack** of frames (a multi-page TIFF or OME-TIFF, a folder of raw files:
   :mod:`napari_drift.logic.stacks`) is one layer ``(*frames, H, W)``, a lazy dask array
   read frame by frame, with the file's axis labels (``t``, ``z``, ``frame``, ``file``);

2. the **CFA view** (optional, on by default): an RGB ``(…, H, W, 3)`` float32 layer in which
   each pixel keeps its mosaic value in the channel of its colour filter and is zero in
   the other two, named ``"<name> [CFA]"``, opacity 0.6 and hidden (``visible=False``).
   Toggled on, it shows the Bayer layout directly over the grey mosaic (zoom in to see
   the 2×2 pattern). It carries ``ispkit_cfa_of: <name>`` instead of the camera keys, so
   widgets that look for raw layers (:func:`is_raw_layer`) never mistake it for a source.

   Why a separate RGB layer rather than an overlay or a colormap: a single colormap cannot
   colour neighbouring pixels differently, and napari overlays are not data; an RGB
   layer is plain data, saved and shown like any other, and costs 3×H×W floats.

**Physical scale.** When the pixel size is known (the file's calibration or the camera's
``pixel_size``, :func:`napari_drift.logic.stacks.pixel_size_of`) both layers get
``scale`` (µm per pixel on the last two axes, 1 on frame axes) and ``units``
(``µm``; ``pixel`` on frame axes), so napari's scale bar shows micrometres.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ispkit import Camera, InputError, RawFormatError, get_registry
from ispkit.io import read_raw

__all__ = [
    "MICROMETRE",
    "METADATA_CAMERA",
    "METADATA_PATTERN",
    "METADATA_PATH",
    "METADATA_CFA_OF",
    "SUFFIXES",
    "camera_to_metadata",
    "camera_from_metadata",
    "cfa_rgb",
    "frame_count",
    "is_raw_layer",
    "physical_scale",
    "mosaic_from_layer",
    "raw_layer_data",
    "read_raw_layers",
]

METADATA_CAMERA = "ispkit_camera"
METADATA_PATTERN = "ispkit_pattern"
METADATA_PATH = "ispkit_path"
METADATA_CFA_OF = "ispkit_cfa_of"
SUFFIXES = (".tif", ".tiff", ".dng")
MICROMETRE = "µm"

LayerData = tuple[Any, dict[str, Any], str]

_CHANNEL = {"R": 0, "G": 1, "B": 2}


def camera_to_metadata(camera: Camera) -> str:
    """The camera's registered name when it equals the registered camera, else its YAML."""
    registered = get_registry().cameras().get(camera.name)
    return camera.name if registered == camera else camera.to_yaml()


def camera_from_metadata(metadata: Mapping[str, Any]) -> Camera:
    """The :class:`ispkit.Camera` stored in a layer's metadata (name or YAML).

    Raises ``ispkit.InputError`` when the metadata carries no ispkit camera.
    """
    spec = metadata.get(METADATA_CAMERA) if isinstance(metadata, Mapping) else None
    if not isinstance(spec, str) or not spec.strip():
        raise InputError("this layer carries no ispkit camera (metadata 'ispkit_camera'); open the raw file with the napari-drift reader")
    if "\n" in spec or ":" in spec:
        return Camera.from_yaml(spec)
    return Camera.get(spec)


def is_raw_layer(layer: Any) -> bool:
    """Whether ``layer`` is a grey image layer (2-D, or a stack of 2-D frames) carrying ispkit raw metadata (duck-typed)."""
    metadata = getattr(layer, "metadata", None)
    data = getattr(layer, "data", None)
    return (
        isinstance(metadata, Mapping)
        and isinstance(metadata.get(METADATA_CAMERA), str)
        and not getattr(layer, "rgb", False)
        and (getattr(data, "ndim", 0) or 0) >= 2
    )


def frame_count(layer: Any) -> int:
    """How many 2-D frames a raw layer holds (1 for a single mosaic)."""
    return int(np.prod(np.shape(layer.data)[:-2], dtype=np.int64))


def mosaic_from_layer(layer: Any, index: tuple[int, ...] = ()) -> tuple[np.ndarray, Camera]:
    """``(mosaic, camera)`` of a raw layer: the (H, W) float64 mosaic (of frame ``index`` for a stack) and its camera.

    ``index`` holds one integer per frame axis (``()`` for a single mosaic); a stack's
    frame is read (computed) here.
    """
    if not is_raw_layer(layer):
        name = getattr(layer, "name", repr(layer))
        raise InputError(
            f"layer {name!r} is not an ispkit raw mosaic (a grey image layer with 'ispkit_camera' metadata); "
            "open a raw TIFF/DNG with the napari-drift reader or load a napari-drift sample"
        )
    shape = np.shape(layer.data)
    index = tuple(int(i) for i in index)
    if len(index) != len(shape) - 2 or any(not 0 <= i < n for i, n in zip(index, shape, strict=False)):
        raise InputError(f"layer {layer.name!r} has frames {shape[:-2]} of {shape[-2]}×{shape[-1]}; frame index {index} is not one of them")
    return np.asarray(layer.data[index] if index else layer.data, dtype=np.float64), camera_from_metadata(layer.metadata)


def physical_scale(frame_axes: int, pixel_size: tuple[float, float] | None) -> dict[str, Any]:
    """Layer keyword arguments ``scale`` and ``units`` for ``pixel_size`` ``(y, x)`` in µm (``{}`` when unknown)."""
    if pixel_size is None:
        return {}
    return {"scale": (1.0,) * frame_axes + tuple(float(p) for p in pixel_size), "units": ("pixel",) * frame_axes + (MICROMETRE, MICROMETRE)}


def cfa_rgb(mosaic: np.ndarray, pattern: str) -> np.ndarray:
    """``(H, W, 3)`` float32: every pixel's value in the channel of its colour filter, zero elsewhere."""
    mosaic = np.asarray(mosaic)
    if mosaic.ndim != 2:
        raise InputError(f"cfa_rgb: expected an (H, W) mosaic, got shape {mosaic.shape}")
    if len(pattern) != 4 or set(pattern) - set(_CHANNEL):
        raise InputError(f"cfa_rgb: expected a 2×2 Bayer pattern such as 'RGGB', got {pattern!r}")
    out = np.zeros((*mosaic.shape, 3), dtype=np.float32)
    for i, letter in enumerate(pattern):
        dy, dx = divmod(i, 2)
        out[dy::2, dx::2, _CHANNEL[letter]] = mosaic[dy::2, dx::2]
    return out


def _cfa_block(block: np.ndarray, pattern: str) -> np.ndarray:
    """:func:`cfa_rgb` of every frame of a block ``(..., H, W)``: ``(..., H, W, 3)``."""
    frames = block.reshape((-1, *block.shape[-2:]))
    return np.stack([cfa_rgb(f, pattern) for f in frames]).reshape((*block.shape, 3))


def _cfa_view(data: Any, pattern: str) -> Any:
    """The CFA view of a mosaic (NumPy, at once) or of a lazy stack (dask, frame by frame)."""
    if isinstance(data, np.ndarray):
        return cfa_rgb(data, pattern)
    return data.map_blocks(
        _cfa_block, pattern, new_axis=data.ndim, chunks=(*data.chunks, (3,)), dtype=np.float32, meta=np.empty((0,) * (data.ndim + 1), np.float32)
    )


def raw_layer_data(
    mosaic: Any,
    camera: Camera | str | Mapping[str, Any],
    name: str,
    path: str | os.PathLike[str] | None = None,
    *,
    cfa_layer: bool = True,
    pixel_size: tuple[float, float] | None = None,
    axes: tuple[str, ...] | None = None,
) -> list[LayerData]:
    """Layer data tuples for a normalised mosaic ``(H, W)`` or a lazy stack ``(*frames, H, W)`` (see the module docstring).

    ``pixel_size`` ``(y, x)`` in µm sets the layers' scale and units; ``axes`` labels the
    axes of a stack (one per axis of ``mosaic``).
    """
    camera = Camera.get(camera)
    data = np.asarray(mosaic, dtype=np.float32) if isinstance(mosaic, np.ndarray) or not hasattr(mosaic, "map_blocks") else mosaic
    if data.ndim < 2:
        raise InputError(f"{name}: a raw layer needs an (H, W) mosaic or a stack of them, got shape {np.shape(data)}")
    if axes is not None and len(axes) != data.ndim:
        raise InputError(f"{name}: {len(axes)} axis labels {axes} for {data.ndim} axes")
    metadata = {
        METADATA_CAMERA: camera_to_metadata(camera),
        METADATA_PATTERN: camera.pattern,
        METADATA_PATH: None if path is None else str(path),
    }
    common = physical_scale(data.ndim - 2, pixel_size)
    if axes is not None and data.ndim > 2:
        common["axis_labels"] = tuple(axes)
    layers: list[LayerData] = [(data, {"name": name, "colormap": "gray", "metadata": metadata, **common}, "image")]
    if cfa_layer:
        kwargs = {"name": f"{name} [CFA]", "rgb": True, "opacity": 0.6, "visible": False, "metadata": {METADATA_CFA_OF: name, METADATA_PATTERN: camera.pattern}}
        layers.append((_cfa_view(data, camera.pattern), {**kwargs, **common}, "image"))
    return layers


def read_raw_layers(
    path: str | os.PathLike[str],
    camera: Camera | str | Mapping[str, Any] | None = None,
    *,
    cfa_layer: bool = True,
) -> list[LayerData]:
    """Read a raw TIFF/DNG, a multi-page (OME-)TIFF stack or a folder of raw files; their layer data tuples.

    A single mosaic is read with ``ispkit.io.read_raw``; stacks and folders lazily
    (:mod:`napari_drift.logic.stacks`). Raises ``FileNotFoundError`` for a missing path and
    ``ispkit.RawFormatError`` for an unsupported or unreadable file, or for a TIFF without
    camera metadata (the message says to pass a camera or write a sidecar);
    ``ispkit.InputError`` for a folder without raw files.
    """
    from .stacks import folder_stack, pixel_size_of, tiff_stack

    path = Path(path)
    if path.is_dir():
        stack = folder_stack(path, camera)
        return raw_layer_data(stack.frames, stack.camera, stack.name, path, cfa_layer=cfa_layer, pixel_size=stack.pixel_size, axes=stack.axes)
    if path.suffix.lower() not in SUFFIXES:
        raise RawFormatError(
            f"{path}: napari-drift reads raw mosaics from {', '.join(SUFFIXES)} files and folders of them, not {path.suffix or 'extension-less files'!r}"
        )
    if path.suffix.lower() != ".dng":
        stack = tiff_stack(path, camera)
        if stack is not None:
            return raw_layer_data(stack.frames, stack.camera, stack.name, path, cfa_layer=cfa_layer, pixel_size=stack.pixel_size, axes=stack.axes)
    try:
        image = read_raw(path, camera=camera)
    except RawFormatError as exc:
        if "carries no camera" in str(exc):
            raise RawFormatError(
                f'{exc}. In napari: write the sidecar once (python -c "from ispkit.io import write_sidecar; '
                f"write_sidecar({str(path)!r}, 'microscopy')\") and open the file again, or call "
                "napari_drift.logic.read_raw_layers(path, camera='microscopy') and add the layers yourself."
            ) from exc
        raise
    return raw_layer_data(image.mosaic, image.camera, path.stem, path, cfa_layer=cfa_layer, pixel_size=pixel_size_of(path, image.camera))
