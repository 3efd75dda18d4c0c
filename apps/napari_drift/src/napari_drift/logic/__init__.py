"""Qt-free logic of the plugin: everything here imports and runs without a display."""

from .composer import ComposerModel, ParamRow, StageRow, format_value, parse_value
from .raw_layer import (
    METADATA_CAMERA,
    METADATA_PATH,
    METADATA_PATTERN,
    camera_from_metadata,
    cfa_rgb,
    is_raw_layer,
    mosaic_from_layer,
    raw_layer_data,
    read_raw_layers,
)

__all__ = [
    "ComposerModel",
    "METADATA_CAMERA",
    "METADATA_PATH",
    "METADATA_PATTERN",
    "ParamRow",
    "StageRow",
    "camera_from_metadata",
    "cfa_rgb",
    "format_value",
    "is_raw_layer",
    "mosaic_from_layer",
    "parse_value",
    "raw_layer_data",
    "read_raw_layers",
]
