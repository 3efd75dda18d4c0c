"""File input and output: raw mosaics (TIFF, DNG), PNG views, atomic non-clobbering writes.

Writing
    Everything is written to a temporary file in the destination folder and renamed into
    place (:func:`atomic_write`), so a reader sees either the old file or the complete new
    one. :func:`write_png` saves an RGB view; :func:`write_raw` saves a raw mosaic.

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
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tifffile
from PIL import Image

from .arrays import check_float, check_mosaic, check_raw_data
from .camera import Camera
from .config import parse_yaml
from .errors import ConfigError, InputError, ISPKitError, RawFormatError, storage_oserror

__all__ = [
    "atomic_write",
    "atomic_write_text",
    "to_uint8",
    "write_png",
    "RawImage",
    "read_raw",
    "write_raw",
    "write_sidecar",
    "sidecar_paths",
    "CAMERA_MARKER",
]


def atomic_write(path: str | os.PathLike[str], write: Callable[[Path], None], *, overwrite: bool = True) -> Path:
    """Call ``write(tmp_path)`` and rename the result to ``path``.

    Parameters
    ----------
    path
        Destination; its folder is created if missing.
    write
        Writes the complete file to the temporary path it is given.
    overwrite
        If false, an existing ``path`` raises :class:`FileExistsError` and stays untouched.
    """
    path = Path(path)
    if not overwrite and path.exists():
        raise FileExistsError(f"{path} exists; refusing to overwrite it")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes files private; give the mode a plain open() would
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        cause = storage_oserror(exc)
        if cause is not None and cause.filename is None:  # name the file the full disk (etc.) stopped
            raise OSError(cause.errno, cause.strerror, str(path)) from exc
        raise
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | os.PathLike[str], text: str, *, overwrite: bool = True) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"), overwrite=overwrite)


def to_uint8(rgb: np.ndarray) -> np.ndarray:
    """A channel-first view ``(3, H, W)`` in [0, 1] as an 8-bit ``(H, W, 3)`` image (rounded, clipped).

    >>> to_uint8(np.array([[[0.0]], [[0.5]], [[1.2]]])).ravel().tolist()
    [0, 128, 255]
    """
    check_float(rgb, "to_uint8")
    if rgb.ndim != 3 or rgb.shape[0] != 3:
        raise InputError(f"to_uint8: expected a channel-first RGB view (3, H, W), got shape {rgb.shape}")
    return np.round(np.clip(np.moveaxis(rgb, 0, -1), 0.0, 1.0) * 255.0).astype(np.uint8)


def write_png(path: str | os.PathLike[str], rgb: np.ndarray, *, overwrite: bool = True) -> Path:
    """Save a channel-first RGB view in [0, 1] as an 8-bit PNG, atomically."""
    image = Image.fromarray(to_uint8(rgb))
    return atomic_write(path, lambda tmp: image.save(tmp, format="PNG"), overwrite=overwrite)


# -- raw mosaics -------------------------------------------------------------------------

CAMERA_MARKER = "ispkit-camera"
"""First key of the ImageDescription that :func:`write_raw` writes: ``ispkit-camera: 1``."""

_FORMAT_VERSION = 1
_SIDECAR = ".camera.yaml"

# TIFF and DNG tag codes and values (TIFF 6.0, TIFF/EP, DNG 1.4 specification).
_CFA = 32803  # PhotometricInterpretation: colour filter array
_LINEAR_RAW = 34892  # PhotometricInterpretation: demosaiced ("linear") DNG
_CFA_REPEAT_DIM = 33421
_CFA_PATTERN = 33422
_DNG_VERSION = 50706
_UNIQUE_CAMERA_MODEL = 50708
_CFA_PLANE_COLOR = 50710
_CFA_LAYOUT = 50711
_LINEARIZATION_TABLE = 50712
_BLACK_REPEAT_DIM = 50713
_BLACK_LEVEL = 50714
_BLACK_DELTA_H = 50715
_BLACK_DELTA_V = 50716
_WHITE_LEVEL = 50717
_AS_SHOT_NEUTRAL = 50728
_ACTIVE_AREA = 50829


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


def sidecar_paths(path: str | os.PathLike[str]) -> tuple[Path, Path]:
    """The two sidecar names :func:`read_raw` looks for, in the order it tries them.

    Examples
    --------
    >>> [p.name for p in sidecar_paths("data/img.tiff")]
    ['img.tiff.camera.yaml', 'img.camera.yaml']
    """
    path = Path(path)
    return path.with_name(path.name + _SIDECAR), path.with_name(path.stem + _SIDECAR)


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
    description = _embed(camera)
    path = Path(path)
    if not overwrite and path.exists():
        raise FileExistsError(f"{path} exists; refusing to overwrite it (pass overwrite=True to replace it)")

    def write(tmp: Path) -> None:
        tifffile.imwrite(tmp, stored, photometric="minisblack", description=description, metadata=None, software="ispkit")

    return atomic_write(path, write, overwrite=overwrite)


def write_sidecar(
    path: str | os.PathLike[str],
    camera: Camera | str | Mapping[str, Any],
    *,
    overwrite: bool = False,
) -> Path:
    """Describe a raw file that has no camera metadata with a sidecar ``<path>.camera.yaml``.

    Published raw TIFFs (Raw-Microscopy, Raw-Drone) carry no camera; after
    ``write_sidecar("img.tiff", "microscopy")``, ``read_raw("img.tiff")`` picks up
    ``img.tiff.camera.yaml`` (a camera passed to :func:`read_raw` and one embedded by
    :func:`write_raw` still take precedence). The write is atomic.

    Parameters
    ----------
    path
        The raw file; it must exist.
    camera
        A :class:`~ispkit.camera.Camera`, a registered name, a YAML path or a mapping.
    overwrite
        If false (the default), an existing sidecar raises :class:`FileExistsError`.

    Returns
    -------
    Path
        The sidecar's path.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(errno.ENOENT, "no raw file to write a sidecar for", str(path))
    camera = Camera.get(camera)
    target = sidecar_paths(path)[0]
    if not overwrite and target.exists():
        raise FileExistsError(f"{target} exists; refusing to overwrite it (pass overwrite=True to replace it)")
    text = f"# Camera of {path.name}; ispkit.io.read_raw reads it when the file carries no camera.\n" + camera.to_yaml()
    return atomic_write_text(target, text, overwrite=overwrite)


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
    elif (embedded := _embedded_camera(description, path)) is not None:
        camera = embedded
    elif (sidecar := next((p for p in sidecar_paths(path) if p.is_file()), None)) is not None:
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


def _embed(camera: Camera) -> str:
    text = f"{CAMERA_MARKER}: {_FORMAT_VERSION}\n{camera.to_yaml()}"
    text.encode("ascii")  # yaml.safe_dump escapes non-ASCII; TIFF strings must be ASCII
    return text


def _embedded_camera(description: str, path: Path) -> Camera | None:
    if not description.startswith(f"{CAMERA_MARKER}:"):
        return None
    where = f"{path}: the camera embedded in its ImageDescription"
    try:
        data, locator = parse_yaml(description, f"{path} (ImageDescription)")
    except ConfigError as exc:
        raise RawFormatError(f"{where} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise RawFormatError(f"{where} is not a mapping")
    version = data.pop(CAMERA_MARKER)
    if version != _FORMAT_VERSION:
        raise RawFormatError(f"{where} has format version {version!r}; this ispkit reads version {_FORMAT_VERSION}")
    try:
        return Camera.from_dict(data, locator=locator)
    except ConfigError as exc:
        raise RawFormatError(f"{where} is invalid: {exc}") from exc


@contextlib.contextmanager
def _wrapped(path: Path, what: str) -> Iterator[None]:
    """Turn any error of tifffile on a bad file into a RawFormatError naming ``path``."""
    try:
        yield
    except (ISPKitError, MemoryError, FileNotFoundError, IsADirectoryError, PermissionError):
        raise
    except Exception as exc:
        raise RawFormatError(f"{path}: {what} ({type(exc).__name__}: {exc})") from exc


@dataclass(frozen=True)
class _DngTags:
    pattern: str
    white: float | None
    black: list[float] | None
    black_dim: list[float] | None
    deltas: bool
    model: str | None
    neutral: list[float] | None


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


def _name(value: Any) -> str:
    return getattr(value, "name", str(value))


def _single_page(tif: tifffile.TiffFile, path: Path) -> tifffile.TiffPage:
    count = len(tif.pages)
    if count != 1:
        raise RawFormatError(f"{path}: expected a single-page raw TIFF, found {count} pages (an image stack?)")
    return tif.pages[0]


def _dng_raw_page(tif: tifffile.TiffFile, path: Path) -> tifffile.TiffPage:
    pages = []
    for top in tif.pages:
        pages.append(top)
        if top.subifds:
            pages.extend(top.pages)
    for page in pages:
        if page.photometric == _CFA and page.subfiletype == 0:
            return page
    if any(page.photometric == _LINEAR_RAW for page in pages):
        raise RawFormatError(
            f"{path}: a linear DNG (PhotometricInterpretation 34892, LinearRaw) holds demosaiced data; "
            "read_raw supports CFA (Bayer) DNGs only"
        )
    found = ", ".join(f"{_name(p.photometric)}/NewSubFileType {int(p.subfiletype)}" for p in pages)
    raise RawFormatError(
        f"{path}: this DNG has no full-resolution CFA image (expected an IFD or SubIFD with "
        f"PhotometricInterpretation 32803 and NewSubFileType 0); found {found}"
    )


def _check_page(page: tifffile.TiffPage, path: Path) -> None:
    if page.samplesperpixel != 1:
        raise RawFormatError(
            f"{path}: expected a raw mosaic with one sample per pixel, found {page.samplesperpixel} "
            "(an RGB or multi-channel image?)"
        )
    if len(page.shape) != 2:
        raise RawFormatError(f"{path}: expected a 2-D raw mosaic (H, W), found a page of shape {page.shape}")
    dtype = page.dtype
    if page.sampleformat != 1 or dtype is None or dtype.kind != "u" or page.bitspersample > 32:
        raise RawFormatError(
            f"{path}: expected unsigned integers (8, 16 or 32 bit), found {page.bitspersample}-bit "
            f"{_name(page.sampleformat)} samples (dtype {dtype})"
        )


def _check_complete(page: tifffile.TiffPage, path: Path, size: int) -> None:
    segments = list(zip(page.dataoffsets, page.databytecounts))
    if not segments or any(count == 0 for _, count in segments):
        raise RawFormatError(f"{path}: the raw page has missing image data (empty strips or tiles)")
    end = max(offset + count for offset, count in segments)
    if end > size:
        raise RawFormatError(f"{path}: the file is truncated: its image data run to byte {end}, but it has {size} bytes")
    h, w = page.shape
    needed = h * ((w * page.bitspersample + 7) // 8)
    stored = sum(count for _, count in segments)
    if page.compression == 1 and stored < needed:
        raise RawFormatError(
            f"{path}: its uncompressed image data hold {stored} bytes, but a {h}×{w} image of "
            f"{page.bitspersample}-bit samples needs {needed} (corrupt header?)"
        )


def _numbers(path: Path, page: tifffile.TiffPage, code: int, *fallbacks: tifffile.TiffPage) -> list[float] | None:
    """A tag's values as floats (rationals divided out), from ``page`` or else ``fallbacks``."""
    for where in (page, *fallbacks):
        tag = where.tags.get(code)
        if tag is not None:
            break
    else:
        return None
    value = tag.value
    if isinstance(value, (bytes, bytearray)):
        values = list(value)
    else:
        values = [float(v) for v in np.ravel(np.asarray(value, dtype=float))]
    if int(tag.dtype) in (5, 10):  # (S)RATIONAL: numerator, denominator pairs
        if len(values) % 2 or 0 in values[1::2]:
            raise RawFormatError(f"{path}: tag {tag.name} holds an invalid rational {value!r}")
        values = [n / d for n, d in zip(values[::2], values[1::2])]
    return [float(v) for v in values]


def _dng_tags(first: tifffile.TiffPage, page: tifffile.TiffPage, path: Path) -> _DngTags:
    def bad(message: str) -> RawFormatError:
        return RawFormatError(f"{path}: unsupported DNG: {message}")

    dim = _numbers(path, page, _CFA_REPEAT_DIM)
    if dim is None:
        raise bad("the CFA image has no CFARepeatPatternDim (tag 33421)")
    if dim != [2.0, 2.0]:
        raise bad(f"CFARepeatPatternDim is {tuple(int(v) for v in dim)}; read_raw supports 2×2 Bayer patterns only")
    codes = _numbers(path, page, _CFA_PATTERN)
    if codes is None or len(codes) != 4:
        raise bad(f"CFAPattern (tag 33422) must hold 4 values for a 2×2 pattern, got {codes}")
    planes = _numbers(path, page, _CFA_PLANE_COLOR, first) or [0.0, 1.0, 2.0]
    layout = _numbers(path, page, _CFA_LAYOUT, first)
    if layout is not None and layout != [1.0]:
        raise bad(f"CFALayout is {int(layout[0])}; only the rectangular layout (1) is supported")
    if page.tags.get(_LINEARIZATION_TABLE) is not None:
        raise bad("LinearizationTable (tag 50712) is not supported")
    try:
        pattern = "".join("RGB"[int(planes[int(c)])] for c in codes)
    except IndexError:
        raise bad(
            f"CFAPattern {tuple(int(c) for c in codes)} with CFAPlaneColor {planes} names colours other than R, G, B"
        ) from None
    if pattern not in ("RGGB", "BGGR", "GRBG", "GBRG"):
        raise bad(f"CFAPattern {tuple(int(c) for c in codes)} is {pattern}, not a Bayer layout")
    white = _numbers(path, page, _WHITE_LEVEL, first)
    deltas = any(any(v != 0 for v in (_numbers(path, page, code) or [])) for code in (_BLACK_DELTA_H, _BLACK_DELTA_V))
    model_tag = first.tags.get(_UNIQUE_CAMERA_MODEL)
    model = str(model_tag.value).strip() if model_tag is not None else None
    return _DngTags(
        pattern=pattern,
        white=None if white is None else white[0],
        black=_numbers(path, page, _BLACK_LEVEL, first),
        black_dim=_numbers(path, page, _BLACK_REPEAT_DIM, first),
        deltas=deltas,
        model=model or None,
        neutral=_numbers(path, first, _AS_SHOT_NEUTRAL),
    )


def _active_area(data: np.ndarray, page: tifffile.TiffPage, path: Path) -> np.ndarray:
    area = _numbers(path, page, _ACTIVE_AREA)
    if area is None:
        return data
    if len(area) != 4:
        raise RawFormatError(f"{path}: ActiveArea must hold top, left, bottom, right; got {area}")
    top, left, bottom, right = (int(v) for v in area)
    h, w = data.shape[-2:]
    if not (0 <= top < bottom <= h and 0 <= left < right <= w):
        raise RawFormatError(f"{path}: ActiveArea {(top, left, bottom, right)} lies outside the {h}×{w} raw image")
    if top % 2 or left % 2:
        raise RawFormatError(
            f"{path}: unsupported DNG: ActiveArea {(top, left, bottom, right)} starts on an odd row or column, "
            "which shifts the CFA pattern"
        )
    return data[..., top:bottom, left:right]


def _dng_camera(tags: _DngTags, bits: int, path: Path) -> Camera:
    def bad(message: str) -> RawFormatError:
        return RawFormatError(f"{path}: unsupported DNG: {message}")

    white = 2**bits - 1 if tags.white is None else tags.white
    if white != int(white) or not 1 <= white <= 2**bits - 1:
        raise bad(f"WhiteLevel {white:g} does not fit BitsPerSample {bits}")
    container = int(white).bit_length()
    scale = 2**container - 1
    black = tags.black or [0.0]
    rows, cols = (int(v) for v in (tags.black_dim or [1.0, 1.0]))
    if rows not in (1, 2) or cols not in (1, 2) or len(black) != rows * cols:
        raise bad(f"BlackLevel {black} with BlackLevelRepeatDim {(rows, cols)}: expected 1, 2 or 4 values repeating over 2×2")
    if tags.deltas:
        raise bad("non-zero BlackLevelDeltaH/V (per-column or per-row black levels) are not supported")
    sites = tuple(black[(r % rows) * cols + c % cols] / scale for r in (0, 1) for c in (0, 1))
    balance = (1.0, 1.0, 1.0)
    if tags.neutral is not None and len(tags.neutral) == 3 and all(v > 0 for v in tags.neutral):
        r, g, b = tags.neutral
        balance = (g / r, 1.0, g / b)
    description = (
        f"from the DNG tags of {path.name}: BitsPerSample {bits}, WhiteLevel {white:g}, "
        f"BlackLevel {[float(v) for v in black]}"
    )
    try:
        return Camera(
            name=tags.model or path.stem,
            pattern=tags.pattern,
            bit_depth=container,
            container_bits=container,
            black_level=sites,
            white_balance=balance,
            description=description,
        )
    except InputError as exc:
        raise bad(str(exc)) from exc


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
