"""File input and output: raw mosaics (TIFF, DNG) with their cameras, linear DNGs, and PNG views.

Writing
    Everything is written to a temporary file in the destination folder and renamed into
    place (:func:`ispkit.atomic.atomic_write`), so a reader sees either the old file or
    the complete new one. :func:`write_png` saves an RGB view; :func:`write_raw` saves a
    raw mosaic.

Raw files
    :func:`write_raw` stores a normalised mosaic as a single-page ``uint16`` TIFF of the
    stored numbers ``round(raw · white_level)`` and embeds the :class:`~ispkit.camera.Camera`
    as YAML in the TIFF ImageDescription tag, after a first line ``ispkit-camera: 1``.

    :func:`read_raw` reads such a TIFF, a plain raw TIFF as published with the
    Raw-Microscopy and Raw-Drone datasets, or a Bayer DNG (uncompressed, packed
    10/12/14-bit, deflate or lossless JPEG; stripped or tiled; either byte order), and
    returns a :class:`RawImage` whose mosaic is normalised by the camera's white level
    ``2**container_bits - 1``. :func:`read_linear` reads a linear (demosaiced) DNG as a
    :class:`LinearImage`. The camera comes from, in this order:

    1. the ``camera`` argument (a Camera, a registered name such as ``"microscopy"``, a
       YAML path or a mapping; see :meth:`Camera.get <ispkit.camera.Camera.get>`);
    2. the camera embedded by :func:`write_raw`;
    3. a sidecar file ``<name>.camera.yaml`` (e.g. ``img.tiff.camera.yaml``) or
       ``<stem>.camera.yaml`` (``img.camera.yaml``) beside the file, as written by
       :func:`write_sidecar`;
    4. for a DNG, its own tags (see :func:`read_raw`; every tag stays readable through
       :attr:`RawImage.dng`, see :mod:`ispkit.io.dng`).

Untrusted files
    A file that is corrupt, truncated, crafted or simply not a raw mosaic raises
    :class:`~ispkit.errors.RawFormatError` naming the file and what was expected (a bad
    sidecar: :class:`~ispkit.errors.ConfigError`), never another exception, in time and
    memory bounded by :data:`MAX_PIXELS`: IFD loops, oversized declarations, byte counts
    that do not match the declared image and YAML bombs are refused before any decoding.

Modules
    :mod:`ispkit.io.raw` (images and the readers), :mod:`ispkit.io.tiff` (TIFF
    structure), :mod:`ispkit.io.decode` (pixel data), :mod:`ispkit.io.dng` (DNG tags,
    levels and camera), :mod:`ispkit.io.sidecar` (camera metadata with a file),
    :mod:`ispkit.io.png`.
"""

from __future__ import annotations

from .decode import MAX_PIXELS, MAX_PIXELS_ENV
from .dng import DngFile, parse_dng
from .png import to_uint8, write_png
from .raw import LinearImage, RawImage, read_linear, read_raw, write_raw
from .sidecar import CAMERA_MARKER, sidecar_paths, write_sidecar

__all__ = [
    "to_uint8",
    "write_png",
    "RawImage",
    "LinearImage",
    "read_raw",
    "read_linear",
    "write_raw",
    "write_sidecar",
    "sidecar_paths",
    "parse_dng",
    "DngFile",
    "MAX_PIXELS",
    "MAX_PIXELS_ENV",
    "CAMERA_MARKER",
]
