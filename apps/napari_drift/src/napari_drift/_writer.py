"""npe2 writer: processed views (composer previews, drift stacks) as 16-bit RGB TIFFs with their pipeline (see ``logic.export``)."""

from __future__ import annotations

from typing import Any

from .logic.export import write_views_tiff

__all__ = ["write_views"]


def write_views(path: str, data: Any, attributes: dict) -> list[str]:
    """Write one image layer (napari's ``(data, attributes)``) as a 16-bit TIFF; the written path."""
    written = write_views_tiff(
        path,
        data,
        metadata=attributes.get("metadata") or {},
        scale=attributes.get("scale"),
        units=attributes.get("units"),
        axis_labels=attributes.get("axis_labels"),
        name=attributes.get("name", ""),
    )
    return [str(written)]
