"""Stacks of raw mosaics: multi-page TIFFs, OME-TIFFs and folders of raw files, read lazily.

A :class:`RawStack` is a lazy dask array ``(*frames, H, W)`` float32 of normalised mosaics
(the stored numbers divided by the camera's white level, as ``ispkit.io.read_raw`` gives
them), one chunk per frame: napari reads a frame when it shows it, and the plugin's
widgets process the stack frame by frame.

* **Multi-page TIFF / OME-TIFF** (:func:`tiff_stack`): tifffile's first series, when it
  holds more than one 2-D frame of unsigned integers: pages (``QYX``, ``IYX``), an OME or
  ImageJ hyperstack (``TZYX`` …, axes kept) or the sample planes of a planar page (``SYX``:
  what ``tifffile.imwrite`` makes of a ``(3, H, W)`` array). A single 2-D page is not a
  stack (``None``: ``read_raw`` reads it), nor are interleaved samples (``…YXS``, an RGB
  image). The camera is the ``camera`` argument or the file's sidecar (as for
  ``read_raw``); the numbers must fit the camera (bits, white level), checked on the first
  frame at once and on every frame when it is read.
* **Folder** (:func:`folder_stack`): its raw files (``*.tif``, ``*.tiff``, ``*.dng``, sorted)
  through ``ispkit.scale.raw_archive``: one shape and one camera, every file checked when read.

**Pixel size** (:func:`pixel_size_of`): the file's own calibration, else the camera's
``pixel_size``: OME ``PhysicalSizeY``/``PhysicalSizeX`` (with their units), an ImageJ
``unit`` with the resolution tags, or resolution tags in centimetres. Resolutions in
inches are ignored: most software writes a screen default (72 dpi) there.

Untrusted files: anything tifffile cannot parse, or that is not as described, raises
``ispkit.RawFormatError`` naming the file and the problem; a frame larger than
``ispkit.io.MAX_PIXELS`` is refused before it is read.
"""

from __future__ import annotations

import math
import os
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ispkit import Camera, RawFormatError
from ispkit.io import MAX_PIXELS, sidecar_paths

__all__ = ["RawStack", "folder_stack", "pixel_size_of", "tiff_stack"]

_MICROMETRES = {"µm": 1.0, "μm": 1.0, "um": 1.0, "micron": 1.0, "microns": 1.0, "micrometer": 1.0, "micrometre": 1.0,
                "nm": 1e-3, "nanometer": 1e-3, "mm": 1e3, "millimeter": 1e3, "cm": 1e4, "m": 1e6, "\\u00b5m": 1.0}  # fmt: skip
_RESOLUTION_CENTIMETRE = 3
_MAX_OME_BYTES = 16_000_000  # OME-XML larger than this is not parsed for the pixel size


@dataclass(frozen=True)
class RawStack:
    """Lazy raw frames with their camera and calibration.

    Attributes
    ----------
    frames
        dask array ``(*frames, H, W)`` float32, one chunk per frame, values in [0, 1].
    camera
        The camera of every frame.
    axes
        One lower-case label per axis of ``frames`` (``("t", "z", "y", "x")``, ``("frame", "y", "x")``).
    pixel_size
        ``(y, x)`` in µm, or ``None``.
    name
        Layer name: the file's stem or the folder's name.
    path
        The file or folder.
    """

    frames: Any
    camera: Camera
    axes: tuple[str, ...]
    pixel_size: tuple[float, float] | None
    name: str
    path: Path


# -- pixel size ------------------------------------------------------------------------------


def _micrometres(value: Any, unit: Any) -> float | None:
    """``value`` in ``unit`` as µm, or ``None`` when either is unusable."""
    factor = _MICROMETRES.get(str(unit).strip().lower() if unit is not None else "µm")
    try:
        size = float(value) * factor if factor is not None else math.nan
    except (TypeError, ValueError):
        return None
    return size if math.isfinite(size) and size > 0 else None


def _ome_pixel_size(xml: str) -> tuple[float, float] | None:
    """``(y, x)`` µm of the first OME ``Pixels`` element, or ``None``."""
    if not xml or len(xml) > _MAX_OME_BYTES:
        return None
    try:
        root = ElementTree.fromstring(xml)
    except ElementTree.ParseError:
        return None
    pixels = next((e for e in root.iter() if e.tag.rsplit("}", 1)[-1] == "Pixels"), None)
    if pixels is None:
        return None
    y = _micrometres(pixels.get("PhysicalSizeY"), pixels.get("PhysicalSizeYUnit", "µm"))
    x = _micrometres(pixels.get("PhysicalSizeX"), pixels.get("PhysicalSizeXUnit", "µm"))
    return (y, x) if y and x else None


def _resolution_pixel_size(page: Any, unit_name: str | None) -> tuple[float, float] | None:
    """``(y, x)`` µm from a page's X/YResolution (pixels per unit): centimetres, or ImageJ's ``unit``."""
    x_tag, y_tag = page.tags.get("XResolution"), page.tags.get("YResolution")
    if x_tag is None or y_tag is None:
        return None
    try:
        per_unit_x = x_tag.value[0] / x_tag.value[1]
        per_unit_y = y_tag.value[0] / y_tag.value[1]
    except (TypeError, ValueError, IndexError, ZeroDivisionError):
        return None
    if unit_name is not None:
        unit = unit_name
    elif page.tags.get("ResolutionUnit") is not None and int(page.tags["ResolutionUnit"].value) == _RESOLUTION_CENTIMETRE:
        unit = "cm"
    else:
        return None  # no unit, or inches (a screen default in most software)
    if per_unit_x <= 0 or per_unit_y <= 0:
        return None
    y, x = _micrometres(1 / per_unit_y, unit), _micrometres(1 / per_unit_x, unit)
    return (y, x) if y and x else None


def _tiff_pixel_size(tif: Any) -> tuple[float, float] | None:
    if tif.is_ome:
        found = _ome_pixel_size(tif.ome_metadata or "")
        if found:
            return found
    imagej = tif.imagej_metadata if tif.is_imagej else None
    unit = imagej.get("unit") if isinstance(imagej, dict) else None
    return _resolution_pixel_size(tif.pages.first, str(unit) if unit else None)


def pixel_size_of(path: str | os.PathLike[str], camera: Camera | None = None) -> tuple[float, float] | None:
    """``(y, x)`` µm of a raw file: its own calibration (see the module docstring), else ``camera.pixel_size``.

    Never raises for an unreadable calibration: it is then the camera's (or ``None``).
    """
    found = None
    if Path(path).suffix.lower() in (".tif", ".tiff"):
        import tifffile

        try:
            with tifffile.TiffFile(path) as tif:
                found = _tiff_pixel_size(tif)
        except Exception:  # the calibration is optional; read_raw judges the file
            found = None
    if found is None and camera is not None and camera.pixel_size is not None:
        found = (camera.pixel_size, camera.pixel_size)
    return found


# -- multi-page TIFFs ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Layout:
    """Where the frames of a TIFF series are: file page indices, planes per page, frame shape."""

    pages: tuple[int, ...]
    planes: int
    shape: tuple[int, ...]  # (*frames, H, W)
    axes: str
    dtype: np.dtype


def _layout(tif: Any, path: Path) -> _Layout | None:
    """The stack layout of ``tif``'s first series, ``None`` when it is not a stack of 2-D frames."""
    if not tif.series:
        return None
    series = tif.series[0]
    shape, axes = tuple(int(n) for n in series.shape), str(series.axes)
    if len(shape) < 3 or axes[-2:] != "YX":
        return None  # one 2-D page (read_raw's), or interleaved samples (an RGB image: read_raw says so)
    dtype = np.dtype(series.dtype)
    if dtype.kind != "u":
        raise RawFormatError(f"{path}: a raw stack holds unsigned integers (the sensor's numbers), found {dtype} frames")
    frames = math.prod(shape[:-2])
    pages = tuple(int(p.index) for p in series.pages if p is not None)
    if not pages or frames % len(pages):
        raise RawFormatError(f"{path}: {frames} frames of {shape[-2]}×{shape[-1]} do not divide into its {len(pages)} pages")
    return _Layout(pages, frames // len(pages), shape, axes, dtype)


def _read_frame(path: Path, layout: _Layout, index: int, camera: Camera) -> np.ndarray:
    """Frame ``index`` (flat) normalised to [0, 1] as float32, checked against the camera."""
    import tifffile

    page, plane = divmod(index, layout.planes)
    try:
        with tifffile.TiffFile(path) as tif:
            data = tif.pages[layout.pages[page]].asarray()
    except Exception as exc:  # an untrusted file: one error type, naming it
        raise RawFormatError(f"{path}: cannot read frame {index} (page {layout.pages[page]}): {type(exc).__name__}: {exc}") from None
    if data.ndim == 3 and data.shape[0] == layout.planes:
        data = data[plane]
    height, width = layout.shape[-2:]
    if data.shape != (height, width):
        raise RawFormatError(f"{path}: frame {index} has shape {data.shape}, the stack's frames are {height}×{width}")
    white = camera.white_level
    if data.size and int(data.max()) > white:
        raise RawFormatError(
            f"{path}: frame {index} holds values up to {int(data.max())}, above the white level {white} of camera "
            f"{camera.name!r} (container_bits={camera.container_bits}); the file and the camera disagree"
        )
    return (data.astype(np.float64) / white).astype(np.float32)


def _stack_camera(path: Path, camera: Any = None) -> Camera:
    if camera is not None:
        return Camera.get(camera)
    for sidecar in sidecar_paths(path):
        if sidecar.is_file():
            return Camera.from_yaml(sidecar)
    a, b = (p.name for p in sidecar_paths(path))
    raise RawFormatError(
        f"{path} is a stack of raw frames without camera metadata (no sidecar {a} or {b}); pass a camera "
        f'(napari_drift.logic.read_raw_layers(path, camera="microscopy")) or write a sidecar once with ispkit.io.write_sidecar(path, camera)'
    )


def _frame_block(block_id: tuple[int, ...] | None = None, *, path: Path, layout: _Layout, camera: Camera) -> np.ndarray:
    leading = layout.shape[:-2]
    index = int(np.ravel_multi_index(block_id[: len(leading)], leading))
    return _read_frame(path, layout, index, camera).reshape((1,) * len(leading) + layout.shape[-2:])


def tiff_stack(path: str | os.PathLike[str], camera: Any = None) -> RawStack | None:
    """The frames of a multi-page (OME-)TIFF as a :class:`RawStack`; ``None`` when it is not a stack.

    ``None`` for a single 2-D page, interleaved samples, or a file tifffile cannot parse:
    ``ispkit.io.read_raw`` (hardened against hostile files) then reads it or says why not.
    Raises ``FileNotFoundError`` for a missing file and ``ispkit.RawFormatError`` for a
    stack of non-integers, frames above ``MAX_PIXELS`` or of odd size, a stack without a
    camera (no argument, no sidecar), a first frame that does not fit the camera or cannot
    be decoded (later frames: when they are read).
    """
    import dask.array as da
    import tifffile
    from dask.base import tokenize

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found")
    try:
        with tifffile.TiffFile(path) as tif:
            layout = _layout(tif, path)
            pixel_size = _tiff_pixel_size(tif) if layout is not None else None
    except RawFormatError:
        raise
    except Exception:  # not a TIFF tifffile can parse: read_raw, hardened, says what is wrong
        return None
    if layout is None:
        return None
    height, width = layout.shape[-2:]
    if height * width > MAX_PIXELS:
        raise RawFormatError(f"{path}: frames of {height}×{width} exceed the {MAX_PIXELS} pixels ispkit reads (ispkit.io.MAX_PIXELS)")
    if height % 2 or width % 2:
        raise RawFormatError(f"{path}: a raw mosaic must hold whole 2×2 CFA blocks; its frames are {height}×{width}")
    cam = _stack_camera(path, camera)
    if layout.dtype.itemsize * 8 < cam.container_bits:
        raise RawFormatError(
            f"{path}: the file holds {layout.dtype.itemsize * 8}-bit numbers but camera {cam.name!r} stores {cam.container_bits}-bit ones; pass a camera that matches the file"
        )
    _read_frame(path, layout, 0, cam)  # a bad file fails now, not when napari first shows it
    leading = layout.shape[:-2]
    frames = da.map_blocks(
        _frame_block,
        path=path,
        layout=layout,
        camera=cam,
        chunks=(*tuple((1,) * n for n in leading), (height,), (width,)),
        dtype=np.float32,
        meta=np.empty((0,) * len(layout.shape), np.float32),
        name=f"napari-drift-stack-{tokenize(str(path), os.stat(path).st_mtime_ns, cam.to_yaml())}",
    )
    if pixel_size is None and cam.pixel_size is not None:
        pixel_size = (cam.pixel_size, cam.pixel_size)
    axes = tuple("frame" if a in "QIS" else a.lower() for a in layout.axes)
    return RawStack(frames, cam, axes, pixel_size, path.stem, path)


# -- folders ---------------------------------------------------------------------------------


def folder_stack(folder: str | os.PathLike[str], camera: Any = None) -> RawStack:
    """A folder's raw files as a :class:`RawStack` ``(files, H, W)``, in sorted order.

    ``ispkit.scale.raw_archive`` reads the first file now and every other when napari
    shows it (one shape and one camera: a file that differs raises ``ispkit.InputError``
    naming it, then). Raises ``ispkit.InputError`` for a folder without raw files.
    """
    from ispkit.scale import raw_archive

    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a folder")
    archive = raw_archive(folder, camera, check=False)
    frames = archive.to_dask(np.float32)
    return RawStack(frames, archive.camera, ("file", "y", "x"), pixel_size_of(archive.paths[0], archive.camera), folder.name, folder)
