"""File input and output: raw mosaics (TIFF, DNG) with their cameras, and PNG views.

Writing
    Everything is written to a temporary file in the destination folder and renamed into
    place (:func:`ispkit.atomic.atomic_write`), so a reader sees either the old file or
    the complete new one. :func:`write_png` saves an RGB view; :func:`write_raw` saves a
    raw mosaic.

Raw files
    :func:`write_raw` stores a normalised mosaic as a single-page ``uint16`` TIFF of the
    stored numbers ``round(raw · white_level)`` and embeds the :class:`~ispkit.camera.Camera`
    as YAML in the TIFF ImageDescription tag, after a first line ``ispkit-camera: 1``.

    :func:`read_raw` reads such a TIFF, a plain 16-bit raw TIFF as published with the
    Raw-Microscopy and Raw-Drone datasets, or a Bayer DNG, and returns a :class:`RawImage`
    whose mosaic is normalised by the camera's white level ``2**container_bits - 1``.
    The camera comes from, in this order:

    1. the ``camera`` argument (a Camera, a registered name such as ``"microscopy"``, a
       YAML path or a mapping; see :meth:`Camera.get <ispkit.camera.Camera.get>`);
    2. the camera embedded by :func:`write_raw`;
    3. a sidecar file ``<name>.camera.yaml`` (e.g. ``img.tiff.camera.yaml``) or
       ``<stem>.camera.yaml`` (``img.camera.yaml``) beside the file, as written by
       :func:`write_sidecar`;
    4. for a DNG, its own tags (see :func:`read_raw`).

    A file that is corrupt, truncated or not a 2-D unsigned-integer mosaic of even size
    raises :class:`~ispkit.errors.RawFormatError` naming the file and what was expected.

Modules
    :mod:`ispkit.io.raw` (:class:`RawImage`, :func:`read_raw`, :func:`write_raw`),
    :mod:`ispkit.io.tiff` (TIFF structure), :mod:`ispkit.io.dng` (DNG tags and camera),
    :mod:`ispkit.io.sidecar` (camera metadata with a file), :mod:`ispkit.io.png`.
"""

from __future__ import annotations

from .png import to_uint8, write_png
from .raw import RawImage, read_raw, write_raw
from .sidecar import CAMERA_MARKER, sidecar_paths, write_sidecar

__all__ = [
    "to_uint8",
    "write_png",
    "RawImage",
    "read_raw",
    "write_raw",
    "write_sidecar",
    "sidecar_paths",
    "CAMERA_MARKER",
]
