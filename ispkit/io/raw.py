"""Raw images: :class:`RawImage` (:func:`read_raw`, :func:`write_raw`) and linear DNGs (:class:`LinearImage`, :func:`read_linear`)."""

from __future__ import annotations

import contextlib
import errno
import os
import struct
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import tifffile

from ..arrays import check_mosaic, check_raw_data, check_rgb
from ..atomic import atomic_write
from ..camera import Camera
from ..cfa import site_map_numpy
from ..errors import InputError, ISPKitError, RawFormatError
from ..flatfield import cropped_shading
from .decode import COMPRESSIONS, decode_image, image_layout
from .decode import max_pixels as pixel_limit
from .dng import (
    DngFile,
    RawLevels,
    active_area,
    cfa_pattern,
    default_crop,
    dng_camera,
    dng_file,
    is_dng,
    linear_camera,
    raw_levels,
)
from .sidecar import embed_camera, embedded_camera, find_sidecar, sidecar_paths
from .tiff import Ifd, TiffStructure, open_tiff

__all__ = ["RawImage", "LinearImage", "read_raw", "read_linear", "write_raw"]

Box = tuple[int, int, int, int]


@dataclass(frozen=True, eq=False)
class RawImage:
    """A raw mosaic read from a file, with the camera that describes it.

    Parameters
    ----------
    mosaic
        ``(H, W)`` float64: the stored numbers divided by ``camera.white_level`` (in
        [0, 1] for a file's numbers).
    camera
        The camera the numbers belong to (CFA pattern, black level, colour, ...).
    path
        The file it was read from, or ``None``.
    dng
        For a DNG, its parsed IFDs: every tag, readable without parsing the file again
        (:class:`~ispkit.io.dng.DngFile`); ``None`` for a TIFF.
    crop
        The DNG's default crop (DefaultCropOrigin/Size) as ``(top, left, bottom, right)``
        in mosaic coordinates, or ``None``; the mosaic itself is not cropped (demosaicking
        needs the margin), see :meth:`cropped`.
    levels
        The DNG's exact levels when the camera was read from its tags (see
        :meth:`black_map`), else ``None``.
    """

    mosaic: np.ndarray
    camera: Camera
    path: Path | None = None
    dng: DngFile | None = None
    crop: Box | None = None
    levels: RawLevels | None = None

    def __post_init__(self) -> None:
        check_mosaic(self.mosaic, "RawImage", batched=False)
        if not isinstance(self.camera, Camera):
            raise InputError(f"RawImage: expected a Camera, got {type(self.camera).__name__}")

    def __repr__(self) -> str:
        h, w = self.mosaic.shape
        where = "None" if self.path is None else repr(str(self.path))
        return f"RawImage({h}×{w} mosaic, camera={self.camera.name!r}, path={where})"

    def black_map(self) -> np.ndarray:
        """The black level of every pixel ``(H, W)``, on the mosaic's scale.

        Exact for a DNG read with its own camera (BlackLevel pattern plus
        BlackLevelDeltaH/V); otherwise the camera's four per-site values repeated.
        """
        h, w = self.mosaic.shape
        if self.levels is None:
            return site_map_numpy(np.asarray(self.camera.black_level), (h, w))
        return self.levels.black_map(h, w) / self.camera.white_level

    def cropped(self) -> RawImage:
        """This image restricted to its default :attr:`crop`, widened to whole 2×2 CFA blocks (itself without a crop).

        The camera's lens shading, which is relative to the image, is re-expressed for the
        crop (:func:`ispkit.flatfield.cropped_shading`), so every pixel keeps its gain.
        """
        if self.crop is None:
            return self
        top, left, bottom, right = self.crop
        r0, c0, r1, c1 = top - top % 2, left - left % 2, bottom + bottom % 2, right + right % 2
        levels = self.levels
        if levels is not None:
            rows, cols = levels.black.shape[:2]
            levels = replace(
                levels,
                black=np.roll(levels.black, (-r0 % rows, -c0 % cols), axis=(0, 1)),
                delta_rows=None if levels.delta_rows is None else levels.delta_rows[r0:r1],
                delta_cols=None if levels.delta_cols is None else levels.delta_cols[c0:c1],
            )
        camera = cropped_shading(self.camera, (r0, c0, r1, c1), self.mosaic.shape)
        return RawImage(self.mosaic[r0:r1, c0:c1], camera, self.path, self.dng, (top - r0, left - c0, bottom - r0, right - c0), levels)


@dataclass(frozen=True, eq=False)
class LinearImage:
    """A linear (demosaiced) DNG: RGB data, black level subtracted, ready for the stages after demosaicking.

    Parameters
    ----------
    rgb
        ``(3, H, W)`` float64 in the camera's RGB: ``(stored - black) / camera.white_level``
        per pixel and channel, with the file's exact black levels (pattern and deltas)
        subtracted; not clipped, so noise below black stays negative as after the
        ``black_level`` stage.
    camera
        The camera (black level 0, since it is subtracted; white balance from AsShotNeutral).
    path
        The file it was read from.
    dng
        Its parsed IFDs (:class:`~ispkit.io.dng.DngFile`).
    crop
        The default crop ``(top, left, bottom, right)``, or ``None``.
    """

    rgb: np.ndarray
    camera: Camera
    path: Path | None = None
    dng: DngFile | None = None
    crop: Box | None = None

    def __post_init__(self) -> None:
        check_rgb(self.rgb, "LinearImage", batched=False)
        if not isinstance(self.camera, Camera):
            raise InputError(f"LinearImage: expected a Camera, got {type(self.camera).__name__}")

    def __repr__(self) -> str:
        _, h, w = self.rgb.shape
        where = "None" if self.path is None else repr(str(self.path))
        return f"LinearImage({h}×{w} RGB, camera={self.camera.name!r}, path={where})"


def write_raw(
    path: str | os.PathLike[str],
    raw: np.ndarray,
    camera: Camera | str | Mapping[str, Any],
    *,
    overwrite: bool = False,
) -> Path:
    """Save a normalised raw mosaic as a 16-bit TIFF with the camera embedded.

    The file holds one ``uint16`` page of the stored numbers ``round(raw · white_level)``
    (``white_level = 2**camera.container_bits - 1``), and the ImageDescription tag holds
    ``ispkit-camera: 1`` followed by :meth:`Camera.to_yaml <ispkit.camera.Camera.to_yaml>`,
    which :func:`read_raw` reads back. The write is atomic and, without ``overwrite``,
    race-free (:func:`ispkit.atomic.atomic_write`): of two processes writing the same new
    file exactly one succeeds, and no temporary file is left behind on any failure.

    Parameters
    ----------
    path
        Destination, conventionally ``*.tiff``; its folder is created if missing.
    raw
        ``(H, W)`` floating-point mosaic in [0, 1], H and W even. Values outside [0, 1]
        are an error, not clipped: clipping would lose data silently.
    camera
        A :class:`~ispkit.camera.Camera`, a registered name, a YAML path or a mapping.
        Its ``container_bits`` must be at most 16 (the file stores ``uint16``).
    overwrite
        If false (the default), an existing ``path`` raises :class:`FileExistsError`
        and stays untouched.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    InputError
        ``raw`` is not a finite float mosaic of even size in [0, 1], or the camera needs
        more than 16 bits.

    Examples
    --------
    >>> import shutil, tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> path = write_raw(folder / "tiny.tiff", np.array([[0.0, 0.5], [1.0, 0.25]]), Camera.identity())
    >>> image = read_raw(path)
    >>> (image.mosaic * image.camera.white_level).tolist()
    [[0.0, 32768.0], [65535.0, 16384.0]]
    >>> image.camera == Camera.identity()
    True
    >>> shutil.rmtree(folder)
    """
    camera = Camera.get(camera)
    if camera.container_bits > 16:
        raise InputError(f"write_raw: the file stores uint16 numbers, but camera {camera.name!r} has container_bits={camera.container_bits} > 16")
    stored = _stored_numbers(raw, camera)
    description = embed_camera(camera)
    path = Path(path)
    if not overwrite and path.exists():
        raise FileExistsError(f"{path} exists; refusing to overwrite it (pass overwrite=True to replace it)")

    def write(tmp: Path) -> None:
        tifffile.imwrite(tmp, stored, photometric="minisblack", description=description, metadata=None, software="ispkit")

    try:
        return atomic_write(path, write, overwrite=overwrite)
    except FileExistsError:  # another writer created it meanwhile
        raise FileExistsError(f"{path} exists; refusing to overwrite it (pass overwrite=True to replace it)") from None


def read_raw(
    path: str | os.PathLike[str],
    camera: Camera | str | Mapping[str, Any] | None = None,
    *,
    max_pixels: int | None = None,
) -> RawImage:
    """Read a raw mosaic from a TIFF or DNG file, normalised by the camera's white level.

    Parameters
    ----------
    path
        A TIFF (one 2-D page of unsigned integers, as :func:`write_raw` writes and as the
        Raw-Microscopy / Raw-Drone datasets publish) or a Bayer DNG.
    camera
        Overrides any camera found with the file: a :class:`~ispkit.camera.Camera`, a
        registered name (``"microscopy"``, ``"drone"``), a YAML path or a mapping.
        Without it the camera comes from the ImageDescription that :func:`write_raw`
        embeds, else from a sidecar (:func:`~ispkit.io.sidecar_paths`,
        :func:`~ispkit.io.write_sidecar`), else, for a DNG, from the DNG tags.
    max_pixels
        Largest image (width × height × samples) read; default :data:`ispkit.io.MAX_PIXELS`
        (250 million) or the environment variable ``ISPKIT_MAX_PIXELS``. Checked before
        anything is decoded.

    Returns
    -------
    RawImage
        ``mosaic = stored / camera.white_level`` as float64, the camera, the path and,
        for a DNG, its tags (:attr:`RawImage.dng`) and default crop.

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    RawFormatError
        For any file that cannot be read as described here: not a TIFF or DNG,
        truncated, inconsistent (byte counts, offsets, sizes, levels), larger than
        ``max_pixels``, an unsupported compression or layout, a linear DNG (read it with
        :func:`read_linear`), numbers above the camera's white level or wider than its
        ``container_bits``, or no camera. Nothing else is raised for a malformed file,
        and reading takes time and memory bounded by ``max_pixels``.
    ConfigError
        A bad sidecar, or an invalid ``max_pixels`` / ``ISPKIT_MAX_PIXELS``.

    Notes
    -----
    **Stored numbers.** The file's unsigned integers (1 to 32 bit) are divided by the
    camera's ``white_level = 2**container_bits - 1``; the file's sample width must be at
    least ``container_bits`` (an 8-bit file read with a 16-bit camera is refused rather
    than read as a nearly black image) and no number may exceed the white level.

    **DNG.** The raw image is the IFD or SubIFD with PhotometricInterpretation 32803 (CFA)
    and NewSubFileType 0, in big- or little-endian files, stripped or tiled,
    uncompressed (8/16/32-bit, or packed 10/12/14-bit as DNG specifies), deflate or
    lossless JPEG (:mod:`ispkit.io.decode`). Supported: a 2×2 Bayer CFARepeatPatternDim
    with CFAPattern (0 = R, 1 = G, 2 = B, through CFAPlaneColor), a rectangular CFALayout,
    an ActiveArea starting on an even row and column (the mosaic is cropped to it), a
    LinearizationTable (applied exactly: ``table[min(stored, len - 1)]``, as the DNG SDK
    and LibRaw do). The camera built from the tags (:func:`ispkit.io.dng.dng_camera`)
    takes the name from UniqueCameraModel, the pattern from CFAPattern, ``container_bits``
    from the bits of WhiteLevel, the black level per 2×2 site from BlackLevel (with
    BlackLevelRepeatDim; BlackLevelDeltaH/V averaged per site, exact in
    :meth:`RawImage.black_map`), and white balance ``1 / AsShotNeutral``; the colour
    matrix is the identity.
    """
    path = _existing(path)
    limit = pixel_limit(max_pixels)
    explicit = None if camera is None else Camera.get(camera)
    with _reading(path), open_tiff(path) as (structure, content):
        if is_dng(structure):
            dng = dng_file(structure)
            if dng.linear:
                raise RawFormatError(
                    f"{path}: a linear DNG (PhotometricInterpretation 34892, LinearRaw) holds demosaiced RGB data, "
                    "not a mosaic; read it with ispkit.io.read_linear(path)"
                )
            pattern = cfa_pattern(dng)  # checked even when a camera is given: the data must be a Bayer mosaic
            stored, levels, crop = _dng_pixels(content, dng, limit)
            bits = levels.bits
        else:
            dng, levels, crop = None, None, None
            page = _single_page(structure)
            _one_sample(structure, page)
            layout = image_layout(structure, page, limit=limit, what="the raw page")
            stored, bits = _decoded(content, structure, layout, "the raw page"), layout.bits
        _check_mosaic_shape(stored, path)
        description = _description(structure.pages[0])
        own_levels = None  # the file's exact levels, kept when the camera comes from them
        if explicit is not None:
            camera = explicit
        elif (embedded := embedded_camera(description, path)) is not None:
            camera = embedded
        elif (sidecar := find_sidecar(path)) is not None:
            camera = Camera.from_yaml(sidecar)
        elif dng is not None:
            assert levels is not None, "a DNG's levels are read with its pixels"
            camera, own_levels = dng_camera(dng, levels, pattern), levels
        else:
            a, b = (p.name for p in sidecar_paths(path))
            raise RawFormatError(
                f"{path} carries no camera metadata (no ispkit ImageDescription, no sidecar {a} or {b}); "
                f'pass one, e.g. read_raw(path, camera="microscopy") (a Camera, a registered name or a YAML path), '
                f"or write a sidecar once with write_sidecar(path, camera)"
            )
        return RawImage(_normalise(stored, bits, camera, path), camera, path, dng, crop, own_levels)


def read_linear(path: str | os.PathLike[str], *, max_pixels: int | None = None) -> LinearImage:
    """Read a linear (demosaiced) DNG as RGB, black level subtracted, for the stages after demosaicking.

    Adobe's DNG Converter writes such files (PhotometricInterpretation 34892, LinearRaw),
    e.g. for cameras whose mosaic it cannot keep. The data, levels and crop are read as
    by :func:`read_raw` (any of its layouts and compressions, LinearizationTable,
    ActiveArea, BlackLevel per sample with BlackLevelRepeatDim and deltas, WhiteLevel
    per sample), and the camera comes from the tags
    (:func:`ispkit.io.dng.linear_camera`, with the file's colour science). Process it with
    the stages after demosaicking, :meth:`Pipeline.after <ispkit.pipeline.Pipeline.after>`:
    ``Pipeline.preset("bi,s,me", camera=image.camera).after("demosaic")(image.rgb)``.

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    RawFormatError
        The file is not a linear DNG with three samples per pixel, or any problem
        :func:`read_raw` refuses.
    """
    path = _existing(path)
    limit = pixel_limit(max_pixels)
    with _reading(path), open_tiff(path) as (structure, content):
        if not is_dng(structure) or not (dng := dng_file(structure)).linear:
            raise RawFormatError(f"{path}: not a linear DNG (PhotometricInterpretation 34892); read mosaics with ispkit.io.read_raw")
        stored, levels, crop = _dng_pixels(content, dng, limit)
        camera = linear_camera(dng, levels)
        h, w = stored.shape[:2]
        rgb = np.stack([stored[..., s] - levels.black_map(h, w, s) for s in range(3)]) / camera.white_level
        return LinearImage(rgb, camera, path, dng, crop)


# -- reading -------------------------------------------------------------------------------


def _existing(path: str | os.PathLike[str]) -> Path:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(errno.ENOENT, "no such raw file", str(path))
    return path


@contextlib.contextmanager
def _reading(path: Path) -> Iterator[None]:
    """The reader's promise: a malformed file gives RawFormatError (ConfigError for a sidecar), nothing else.

    The parser checks what it reads; an exception of another type from a malformed file
    is a gap in those checks, turned into a RawFormatError that says so.
    """
    try:
        yield
    except (ISPKitError, OSError):
        raise
    except MemoryError as exc:
        raise RawFormatError(f"{path}: no memory to read its image; corrupt header or too large a file (see max_pixels)") from exc
    except (ValueError, TypeError, KeyError, IndexError, ArithmeticError, RecursionError, struct.error, BufferError) as exc:
        raise RawFormatError(f"{path}: unreadable file (internal check missed: {type(exc).__name__}: {exc})") from exc


def _single_page(structure: TiffStructure) -> Ifd:
    count = len(structure.pages)
    if count != 1:
        raise RawFormatError(f"{structure.path}: expected a single-page raw TIFF, found {count} pages (an image stack?)")
    return structure.pages[0]


def _one_sample(structure: TiffStructure, ifd: Ifd) -> None:
    samples = ifd.integer(277, 1)
    if samples != 1:
        raise RawFormatError(f"{structure.path}: expected a raw mosaic with one sample per pixel, found {samples} (an RGB or multi-channel image?)")


def _decoded(content: Any, structure: TiffStructure, layout: Any, what: str) -> np.ndarray:
    try:
        return decode_image(content, structure, layout, what=what)
    except MemoryError as exc:
        raise RawFormatError(
            f"{structure.path}: no memory for its {layout.height}×{layout.width} image "
            f"({COMPRESSIONS.get(layout.compression)}); corrupt header or too large a file (see max_pixels)"
        ) from exc


def _dng_pixels(content: Any, dng: DngFile, limit: int) -> tuple[np.ndarray, RawLevels, Box | None]:
    """The raw image's numbers cropped to its ActiveArea and linearized, its levels and its default crop."""
    structure = dng.structure
    samples = 3 if dng.linear else 1
    found = dng.raw.integer(277, 1)
    if found != samples:
        kind = "a LinearRaw image" if dng.linear else "a CFA image"
        raise RawFormatError(f"{dng.path}: {kind} needs {samples} sample(s) per pixel, found {found}")
    layout = image_layout(structure, dng.raw, limit=limit, what="its raw image")
    stored = _decoded(content, structure, layout, "its raw image")
    top, left, bottom, right = active_area(dng, layout.height, layout.width)
    stored = stored[top:bottom, left:right]
    h, w = bottom - top, right - left
    levels = raw_levels(dng, layout.bits, samples, h, w)
    if levels.table is not None:
        stored = levels.table[np.minimum(stored, levels.table.size - 1)]
    crop = default_crop(dng, h, w)
    return stored, levels, None if crop == (0, 0, h, w) else crop


def _check_mosaic_shape(data: np.ndarray, path: Path) -> None:
    if data.ndim != 2:
        raise RawFormatError(f"{path}: expected a 2-D raw mosaic (H, W), found shape {data.shape}")
    h, w = data.shape
    if h % 2 or w % 2 or h == 0:
        raise RawFormatError(f"{path}: a raw mosaic must hold whole 2×2 CFA blocks, so its height and width must be even; found {h}×{w}")


def _description(ifd: Ifd) -> str:
    tag = ifd.get(270)
    return tag.value if tag is not None and isinstance(tag.value, str) else ""


def _normalise(data: np.ndarray, bits: int, camera: Camera, path: Path) -> np.ndarray:
    if bits < camera.container_bits:
        raise RawFormatError(
            f"{path}: the file holds {bits}-bit numbers but camera {camera.name!r} stores "
            f"{camera.container_bits}-bit ones (container_bits={camera.container_bits}); pass a camera that matches the file"
        )
    white = camera.white_level
    over = data > white
    if over.any():
        raise RawFormatError(
            f"{path}: {int(over.sum())} stored value(s) exceed the white level {white} of camera {camera.name!r} "
            f"(container_bits={camera.container_bits}; largest {int(data.max())}); the file and the camera disagree"
        )
    return data.astype(np.float64) / white


# -- writing -------------------------------------------------------------------------------


def _stored_numbers(raw: Any, camera: Camera) -> np.ndarray:
    if hasattr(raw, "detach"):  # a torch tensor
        raw = raw.detach().cpu().numpy()
    check_raw_data(raw, "write_raw", batched=False)
    outside = (raw < 0) | (raw > 1)
    if outside.any():
        raise InputError(
            f"write_raw: {int(outside.sum())} value(s) lie outside [0, 1] (min {raw.min()!r}, max {raw.max()!r}); "
            "write_raw does not clip, which would lose data: clip or rescale first"
        )
    return np.round(raw.astype(np.float64) * camera.white_level).astype(np.uint16)
