"""npe2 reader: raw TIFF/DNG mosaics, multi-page (OME-)TIFF stacks and folders of raw files (see ``logic.raw_layer``).

When a layer carries a physical pixel size (µm), the current viewer's scale bar is shown
(bottom left: napari's notifications open at the bottom right).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from .logic.raw_layer import SUFFIXES, read_raw_layers

__all__ = ["napari_get_reader", "read_paths", "show_scale_bar"]


def _readable(path: Path) -> bool:
    if path.is_dir():
        return any(p.is_file() and p.suffix.lower() in SUFFIXES for p in path.iterdir())
    return path.suffix.lower() in SUFFIXES


def napari_get_reader(path: str | list[str]) -> Callable[[Any], list] | None:
    """Return the reader for raw TIFF/DNG paths and folders holding raw files, or ``None`` for anything else."""
    paths = [Path(path)] if isinstance(path, (str, Path)) else [Path(p) for p in path]
    if not paths or not all(_readable(p) for p in paths):
        return None
    return read_paths


def read_paths(path: str | list[str]) -> list:
    """Layer data tuples of one or more raw files, stacks or folders (mosaic + hidden CFA view each)."""
    paths = [path] if isinstance(path, (str, Path)) else list(path)
    layers: list = []
    for p in paths:
        layers.extend(read_raw_layers(p))
    if any("units" in kwargs for _data, kwargs, _kind in layers):
        show_scale_bar()
    return layers


def show_scale_bar(viewer: Any = None) -> None:
    """Show ``viewer``'s scale bar (default: napari's current viewer, if any) at the bottom left."""
    if viewer is None:
        import napari

        viewer = napari.current_viewer()
    if viewer is None:
        return
    scale_bar = viewer.canvas.overlays.scale_bar
    scale_bar.position = "bottom_left"
    scale_bar.visible = True
