"""Raw mosaics as napari layer data, and the way back from a layer to its ispkit camera.

A raw file becomes up to two napari layer data tuples ``(data, kwargs, "image")``:

1. the **mosaic**: ``(H, W)`` float32 in [0, 1] (``ispkit.io.read_raw``'s normalised
   numbers), grey colormap, named after the file, with metadata

   * ``ispkit_camera``: the camera's registered name (``"microscopy"``) when the camera
     equals the registered one, else its full YAML (``Camera.to_yaml``),
   * ``ispkit_pattern``: the CFA layout (``"RGGB"``, ...),
   * ``ispkit_path``: the file, as a string (``None`` for in-memory data);

2. the **CFA view** (optional, on by default): an RGB ``(H, W, 3)`` float32 layer in which
   each pixel keeps its mosaic value in the channel of its colour filter and is zero in
   the other two, named ``"<name> [CFA]"``, opacity 0.6 and hidden (``visible=False``).
   Toggled on, it shows the Bayer layout directly over the grey mosaic (zoom in to see
   the 2×2 pattern). It carries ``ispkit_cfa_of: <name>`` instead of the camera keys, so
   widgets that look for raw layers (:func:`is_raw_layer`) never mistake it for a source.

   Why a separate RGB layer rather than an overlay or a colormap: a single colormap cannot
   colour neighbouring pixels differently, and napari overlays are not data; an RGB
   layer is plain data, saved and shown like any other, and costs 3×H×W floats.
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
    "METADATA_CAMERA",
    "METADATA_PATTERN",
    "METADATA_PATH",
    "METADATA_CFA_OF",
    "SUFFIXES",
    "camera_to_metadata",
    "camera_from_metadata",
    "cfa_rgb",
    "is_raw_layer",
    "mosaic_from_layer",
    "raw_layer_data",
    "read_raw_layers",
]

METADATA_CAMERA = "ispkit_camera"
METADATA_PATTERN = "ispkit_pattern"
METADATA_PATH = "ispkit_path"
METADATA_CFA_OF = "ispkit_cfa_of"
SUFFIXES = (".tif", ".tiff", ".dng")

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
    """Whether ``layer`` is a 2-D image layer carrying ispkit raw metadata (duck-typed, no napari import)."""
    metadata = getattr(layer, "metadata", None)
    data = getattr(layer, "data", None)
    return (
        isinstance(metadata, Mapping)
        and isinstance(metadata.get(METADATA_CAMERA), str)
        and not getattr(layer, "rgb", False)
        and getattr(data, "ndim", None) == 2
    )


def mosaic_from_layer(layer: Any) -> tuple[np.ndarray, Camera]:
    """``(mosaic, camera)`` of a raw layer: the (H, W) float64 mosaic and its camera."""
    if not is_raw_layer(layer):
        name = getattr(layer, "name", repr(layer))
        raise InputError(
            f"layer {name!r} is not an ispkit raw mosaic (a 2-D image layer with 'ispkit_camera' metadata); "
            "open a raw TIFF/DNG with the napari-drift reader or load a napari-drift sample"
        )
    return np.asarray(layer.data, dtype=np.float64), camera_from_metadata(layer.metadata)


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


def raw_layer_data(
    mosaic: np.ndarray,
    camera: Camera | str | Mapping[str, Any],
    name: str,
    path: str | os.PathLike[str] | None = None,
    *,
    cfa_layer: bool = True,
) -> list[LayerData]:
    """Layer data tuples for a normalised mosaic (see the module docstring)."""
    camera = Camera.get(camera)
    data = np.asarray(mosaic, dtype=np.float32)
    metadata = {
        METADATA_CAMERA: camera_to_metadata(camera),
        METADATA_PATTERN: camera.pattern,
        METADATA_PATH: None if path is None else str(path),
    }
    layers: list[LayerData] = [(data, {"name": name, "colormap": "gray", "metadata": metadata}, "image")]
    if cfa_layer:
        layers.append(
            (
                cfa_rgb(data, camera.pattern),
                {"name": f"{name} [CFA]", "rgb": True, "opacity": 0.6, "visible": False, "metadata": {METADATA_CFA_OF: name, METADATA_PATTERN: camera.pattern}},
                "image",
            )
        )
    return layers


def read_raw_layers(
    path: str | os.PathLike[str],
    camera: Camera | str | Mapping[str, Any] | None = None,
    *,
    cfa_layer: bool = True,
) -> list[LayerData]:
    """Read a raw TIFF/DNG with ``ispkit.io.read_raw`` and return its layer data tuples.

    Raises ``FileNotFoundError`` for a missing file and ``ispkit.RawFormatError`` for an
    unsupported or unreadable one, or for a TIFF without camera metadata (the message
    says to pass a camera or write a sidecar).
    """
    path = Path(path)
    if path.suffix.lower() not in SUFFIXES:
        raise RawFormatError(f"{path}: napari-drift reads raw mosaics from {', '.join(SUFFIXES)} files, not {path.suffix or 'extension-less files'!r}")
    try:
        image = read_raw(path, camera=camera)
    except RawFormatError as exc:
        if "carries no camera" in str(exc):
            raise RawFormatError(
                f"{exc}. In napari: write the sidecar once (python -c \"from ispkit.io import write_sidecar; "
                f"write_sidecar({str(path)!r}, 'microscopy')\") and open the file again, or call "
                "napari_drift.logic.read_raw_layers(path, camera='microscopy') and add the layers yourself."
            ) from exc
        raise
    return raw_layer_data(image.mosaic, image.camera, path.stem, path, cfa_layer=cfa_layer)
