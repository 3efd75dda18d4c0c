"""Raw mosaics: :class:`RawImage`, :func:`read_raw` and :func:`write_raw`."""

from __future__ import annotations

import errno
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tifffile

from ..arrays import check_mosaic, check_raw_data
from ..atomic import atomic_write
from ..camera import Camera
from ..errors import InputError, RawFormatError
from .dng import _DNG_VERSION, _DngTags, _active_area, _dng_camera, _dng_raw_page, _dng_tags
from .sidecar import embed_camera, embedded_camera, find_sidecar, sidecar_paths
from .tiff import _check_complete, _check_page, _name, _single_page, _wrapped

__all__ = ["RawImage", "read_raw", "write_raw"]


@dataclass(frozen=True, eq=False)
class RawImage:
    """A raw mosaic read from a file, with the camera that describes it.

    Parameters
    ----------
    mosaic
        ``(H, W)`` float64 in [0, 1]: the stored numbers divided by ``camera.white_level``.
    camera
        The camera the numbers belong to (CFA pattern, black level, colour, ...).
    path
        The file it was read from, or ``None``.
    """

    mosaic: np.ndarray
    camera: Camera
    path: Path | None = None

    def __post_init__(self) -> None:
        check_mosaic(self.mosaic, "RawImage", batched=False)
        if not isinstance(self.camera, Camera):
            raise InputError(f"RawImage: expected a Camera, got {type(self.camera).__name__}")

    def __repr__(self) -> str:
        h, w = self.mosaic.shape
        where = "None" if self.path is None else repr(str(self.path))
        return f"RawImage({h}×{w} mosaic, camera={self.camera.name!r}, path={where})"


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
    which :func:`read_raw` reads back. The write is atomic (temporary file and rename).

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
        raise InputError(
            f"write_raw: the file stores uint16 numbers, but camera {camera.name!r} has "
            f"container_bits={camera.container_bits} > 16"
        )
    stored = _stored_numbers(raw, camera)
    description = embed_camera(camera)
    path = Path(path)
    if not overwrite and path.exists():
        raise FileExistsError(f"{path} exists; refusing to overwrite it (pass overwrite=True to replace it)")

    def write(tmp: Path) -> None:
        tifffile.imwrite(tmp, stored, photometric="minisblack", description=description, metadata=None, software="ispkit")

    return atomic_write(path, write, overwrite=overwrite)


def read_raw(path: str | os.PathLike[str], camera: Camera | str | Mapping[str, Any] | None = None) -> RawImage:
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
        embeds, else from a sidecar (:func:`sidecar_paths`, :func:`write_sidecar`), else,
        for a DNG, from the DNG tags.

    Returns
    -------
    RawImage
        ``mosaic = stored / camera.white_level`` as float64, the camera and the path.

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    RawFormatError
        The file is not a TIFF or DNG, is truncated, holds no 2-D unsigned-integer mosaic
        of even size, holds numbers above the camera's white level or more bits than the
        camera's ``container_bits``, is an unsupported DNG, or carries no camera.

    Notes
    -----
    **Stored numbers.** The file's unsigned integers (8, 16 or 32 bit) are divided by the
    camera's ``white_level = 2**container_bits - 1``; the file's sample width must be at
    least ``container_bits`` (an 8-bit file read with a 16-bit camera is refused rather
    than read as a nearly black image) and no number may exceed the white level.

    **DNG.** The raw image is the IFD or SubIFD with PhotometricInterpretation 32803 (CFA)
    and NewSubFileType 0, uncompressed or in a compression tifffile decodes (lossless JPEG
    needs the ``imagecodecs`` package). Supported: a 2×2 Bayer CFARepeatPatternDim with
    CFAPattern (0 = R, 1 = G, 2 = B, through CFAPlaneColor), a rectangular CFALayout, an
    ActiveArea starting on an even row and column (the mosaic is cropped to it). Refused:
    other CFA repeats, linear (demosaiced) DNGs, LinearizationTable, non-zero
    BlackLevelDeltaH/V. The camera built from the tags takes

    - ``name``: UniqueCameraModel, else the file stem;
    - ``pattern``: from CFAPattern;
    - ``container_bits = bit_depth``: the number of bits of WhiteLevel (default
      ``2**BitsPerSample - 1``), so that ispkit's white level ``2**container_bits - 1`` is
      the DNG WhiteLevel whenever that is of the form ``2**k - 1`` (16-bit samples with
      WhiteLevel 4095 read as 12-bit numbers, 1.0 = saturation); a WhiteLevel such as
      15520 gives 14 bits and saturation at 15520 / 16383;
    - ``black_level``: BlackLevel (1, 2 or 4 values, repeated over the 2×2 sites as
      BlackLevelRepeatDim says; rationals allowed) divided by that white level;
    - ``white_balance``: ``1 / AsShotNeutral`` scaled to green = 1, else (1, 1, 1);
    - ``color_matrix``: identity (DNG colour matrices map to XYZ, not to ispkit's
      camera-to-output matrix); gain and read noise unset.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(errno.ENOENT, "no such raw file", str(path))
    explicit = None if camera is None else Camera.get(camera)
    data, bits, description, dng = _read_file(path)
    if explicit is not None:
        camera = explicit
    elif (embedded := embedded_camera(description, path)) is not None:
        camera = embedded
    elif (sidecar := find_sidecar(path)) is not None:
        camera = Camera.from_yaml(sidecar)
    elif dng is not None:
        camera = _dng_camera(dng, bits, path)
    else:
        a, b = (p.name for p in sidecar_paths(path))
        raise RawFormatError(
            f"{path} carries no camera metadata (no ispkit ImageDescription, no sidecar {a} or {b}); "
            f'pass one, e.g. read_raw(path, camera="microscopy") (a Camera, a registered name or a YAML path), '
            f"or write a sidecar once with write_sidecar(path, camera)"
        )
    return RawImage(_normalise(data, bits, camera, path), camera, path)


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


def _read_file(path: Path) -> tuple[np.ndarray, int, str, _DngTags | None]:
    """The raw page's numbers (cropped to a DNG ActiveArea), bits per sample, the first
    ImageDescription and, for a DNG, its tags."""
    expected = "expected a single-page raw TIFF or a Bayer DNG"
    with _wrapped(path, f"not a readable TIFF or DNG file; {expected}"), tifffile.TiffFile(path) as tif:
        first = tif.pages[0]
        is_dng = _DNG_VERSION in first.tags
        page = _dng_raw_page(tif, path) if is_dng else _single_page(tif, path)
        _check_page(page, path)
        _check_complete(page, path, tif.filehandle.size)
        description = first.description or ""
        dng = _dng_tags(first, page, path) if is_dng else None
        with _wrapped(path, f"cannot decode its image data (compression {_name(page.compression)})"):
            try:
                data = page.asarray()
            except MemoryError as exc:
                h, w = page.shape
                raise RawFormatError(f"{path}: no memory for its {h}×{w} image; corrupt header or too large a file") from exc
        if is_dng:
            data = _active_area(data, page, path)
    if data.ndim != 2:
        raise RawFormatError(f"{path}: expected a 2-D raw mosaic (H, W), found shape {data.shape}")
    h, w = data.shape
    if h % 2 or w % 2 or h == 0:
        raise RawFormatError(
            f"{path}: a raw mosaic must hold whole 2×2 CFA blocks, so its height and width must be even; "
            f"found {h}×{w}"
        )
    return data, int(page.bitspersample), description, dng


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
