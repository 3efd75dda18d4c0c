"""npe2 sample data: the first raw file of ispkit's small synthetic datasets.

``ispkit.data.sample(kind)`` writes the samples once (a few seconds) into
``$ISPKIT_CACHE`` (default ``~/.cache/ispkit``) and returns the dataset root.
"""

from __future__ import annotations

from pathlib import Path

from ispkit import InputError

from ._reader import show_scale_bar
from .logic.raw_layer import read_raw_layers

__all__ = ["drone_sample", "microscopy_sample", "sample_file"]

_FOLDERS = {"microscopy": "microscopy/images/raw_scale100", "drone": "drone/images_full/raw_scale100"}


def sample_file(kind: str) -> Path:
    """The first full-intensity raw file of ispkit's synthetic ``kind`` sample."""
    from ispkit.data.samples import sample

    folder = Path(sample(kind)) / _FOLDERS[kind]
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".tif", ".tiff"))
    if not files:
        raise InputError(f"ispkit sample {kind!r} has no raw files in {folder}")
    return files[0]


def microscopy_sample() -> list:
    """The microscopy sample, at the camera's pixel size (µm), with the scale bar shown."""
    layers = read_raw_layers(sample_file("microscopy"), camera="microscopy")
    show_scale_bar()
    return layers


def drone_sample() -> list:
    return read_raw_layers(sample_file("drone"), camera="drone")
