"""npe2 reader: raw TIFF/DNG mosaics through ``ispkit.io.read_raw`` (see ``logic.raw_layer``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from .logic.raw_layer import SUFFIXES, read_raw_layers

__all__ = ["napari_get_reader", "read_paths"]


def napari_get_reader(path: str | list[str]) -> Callable[[Any], list] | None:
    """Return the reader for raw TIFF/DNG paths, or ``None`` for anything else."""
    paths = [path] if isinstance(path, (str, Path)) else list(path)
    if not paths or any(Path(p).suffix.lower() not in SUFFIXES for p in paths):
        return None
    return read_paths


def read_paths(path: str | list[str]) -> list:
    """Layer data tuples of one or more raw files (mosaic + hidden CFA view each)."""
    paths = [path] if isinstance(path, (str, Path)) else list(path)
    layers: list = []
    for p in paths:
        layers.extend(read_raw_layers(p))
    return layers
