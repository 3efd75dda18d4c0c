"""DNG: the raw image among the IFDs, its tags, and what they say about the pixels and the camera.

:func:`parse_dng` (or :attr:`RawImage.dng <ispkit.io.RawImage.dng>` after
:func:`~ispkit.io.read_raw`) gives a :class:`DngFile`: the parsed IFDs, with IFD0
(:attr:`DngFile.main`, where the camera-wide tags live) and the IFD of the main raw
image (:attr:`DngFile.raw`, NewSubFileType 0, in IFD0 or a SubIFD). Any tag can be read
from it without parsing the file again, by code or by name, looked up in the raw IFD
first and then in IFD0, as the DNG specification lets a writer put several tags in
either place::

    dng = parse_dng("photo.dng")                  # or read_raw("photo.dng").dng
    dng.numbers("ColorMatrix1", count=9)          # float64 array, rationals divided out
    dng.numbers("AsShotNeutral")                  # None when the tag is absent
    dng.integer("CalibrationIlluminant1")         # e.g. 21 (D65)
    dng.get("OpcodeList2").value                  # bytes, big-endian as the spec says
    dng.get(51041)                                # NoiseProfile as a Tag (code, type, count, value)

:func:`raw_levels` reads the levels (black pattern and deltas, white, linearization
table), :func:`cfa_pattern` the Bayer layout, :func:`active_area` and
:func:`default_crop` the rectangles; :func:`dng_camera` builds the
:class:`~ispkit.camera.Camera` of a mosaic from them.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..camera import Camera
from ..errors import InputError, RawFormatError
from .tiff import TAG_NAMES, Ifd, Tag, TiffStructure, open_tiff

__all__ = [
    "CFA",
    "LINEAR_RAW",
    "DngFile",
    "RawLevels",
    "parse_dng",
    "dng_file",
    "cfa_pattern",
    "raw_levels",
    "active_area",
    "default_crop",
    "dng_camera",
    "linear_camera",
    "container_bits",
    "is_dng",
]

CFA = 32803
"""PhotometricInterpretation of a colour-filter-array (mosaic) image."""
LINEAR_RAW = 34892
"""PhotometricInterpretation of a linear (already demosaiced) DNG image."""

_CODES = {name: code for code, name in TAG_NAMES.items()}
_NEW_SUBFILE_TYPE, _PHOTOMETRIC, _SAMPLES, _BITS = 254, 262, 277, 258
_MAX_REPEAT = 64  # BlackLevelRepeatDim beyond this is not a sensor pattern but a crafted file


@dataclass(frozen=True)
class DngFile:
    """The parsed IFDs of a DNG and its main raw image.

    Parameters
    ----------
    structure
        Every IFD of the file (:class:`~ispkit.io.tiff.TiffStructure`).
    main
        IFD0: DNGVersion, UniqueCameraModel, ColorMatrix1/2, ForwardMatrix1/2,
        CameraCalibration1/2, CalibrationIlluminant1/2, AnalogBalance,
        AsShotNeutral/AsShotWhiteXY, BaselineExposure, BaselineNoise, NoiseProfile, ...
    raw
        The main raw image's IFD (NewSubFileType 0; CFA or LinearRaw): its levels,
        crop rectangles, opcode lists, and the pixel data.
    """

    structure: TiffStructure
    main: Ifd
    raw: Ifd

    @property
    def path(self) -> Path:
        """The file."""
        return self.structure.path

    @property
    def linear(self) -> bool:
        """Whether the raw image is a linear (demosaiced, PhotometricInterpretation 34892) image."""
        return self.raw.integer(_PHOTOMETRIC) == LINEAR_RAW

    @property
    def version(self) -> tuple[int, ...]:
        """DNGVersion, e.g. ``(1, 4, 0, 0)``."""
        return tuple(int(v) for v in self.main.get(50706).numbers())

    def get(self, tag: int | str) -> Tag | None:
        """The tag (a code such as ``50721`` or a name such as ``"ColorMatrix1"``) from the raw IFD, else IFD0, else ``None``."""
        code = _code(tag)
        found = self.raw.get(code)
        return found if found is not None else self.main.get(code)

    def numbers(self, tag: int | str, *, count: int | tuple[int, ...] | None = None) -> np.ndarray | None:
        """:meth:`get` as float64 values (rationals divided out, all finite), or ``None``; ``count`` checked when given."""
        code = _code(tag)
        where = self.raw if code in self.raw else self.main
        return where.numbers(code, count=count)

    def integer(self, tag: int | str, default: int | None = None) -> int | None:
        """:meth:`get` as one integer, or ``default``."""
        code = _code(tag)
        where = self.raw if code in self.raw else self.main
        return where.integer(code, default)

    def text(self, tag: int | str) -> str | None:
        """:meth:`get` as text (ASCII tags), or ``None``."""
        found = self.get(tag)
        return None if found is None else found.text()


def _code(tag: int | str) -> int:
    if isinstance(tag, str):
        if tag not in _CODES:
            raise KeyError(f"unknown DNG tag name {tag!r}; pass the tag's number instead")
        return _CODES[tag]
    return int(tag)


def is_dng(structure: TiffStructure) -> bool:
    """Whether IFD0 carries DNGVersion (tag 50706)."""
    return 50706 in structure.pages[0]


def dng_file(structure: TiffStructure) -> DngFile:
    """The :class:`DngFile` of a parsed DNG: finds the main raw image among IFDs and SubIFDs.

    Raises :class:`~ispkit.errors.RawFormatError` when no IFD holds a full-resolution
    CFA or LinearRaw image (NewSubFileType 0).
    """
    ifds = list(structure.walk())
    main_images = [ifd for ifd in ifds if ifd.integer(_NEW_SUBFILE_TYPE, 0) == 0]
    for photometric in (CFA, LINEAR_RAW):
        for ifd in main_images:
            if ifd.integer(_PHOTOMETRIC) == photometric:
                return DngFile(structure, structure.pages[0], ifd)
    found = ", ".join(f"PhotometricInterpretation {_photometric(i)}/NewSubFileType {i.integer(_NEW_SUBFILE_TYPE, 0)}" for i in ifds)
    raise RawFormatError(
        f"{structure.path}: this DNG has no full-resolution CFA image (expected an IFD or SubIFD with "
        f"PhotometricInterpretation 32803 or 34892 and NewSubFileType 0); found {found}"
    )


def _photometric(ifd: Ifd) -> str:
    names = {0: "MINISWHITE", 1: "MINISBLACK", 2: "RGB", 6: "YCBCR", CFA: "CFA", LINEAR_RAW: "LINEAR_RAW"}
    code = ifd.integer(_PHOTOMETRIC)
    return "absent" if code is None else names.get(code, str(code))


def parse_dng(path: str | os.PathLike[str]) -> DngFile:
    """Parse the IFDs of the DNG at ``path`` (no pixel is decoded).

    Raises :class:`FileNotFoundError` for a missing file and
    :class:`~ispkit.errors.RawFormatError` for anything that is not a DNG with a raw image.
    """
    with open_tiff(Path(path)) as (structure, _):
        if not is_dng(structure):
            raise RawFormatError(f"{path}: not a DNG (IFD0 has no DNGVersion tag 50706)")
        return dng_file(structure)


# -- what the tags say ---------------------------------------------------------------------


def cfa_pattern(dng: DngFile) -> str:
    """The Bayer layout (``"RGGB"``, ``"BGGR"``, ``"GRBG"`` or ``"GBRG"``) of a CFA image.

    Raises :class:`~ispkit.errors.RawFormatError` for a repeat other than 2×2, colours
    other than R, G, B, a non-Bayer 2×2 pattern or a non-rectangular CFALayout.
    """
    path = dng.path

    def bad(message: str) -> RawFormatError:
        return RawFormatError(f"{path}: unsupported DNG: {message}")

    dim = dng.numbers("CFARepeatPatternDim")
    if dim is None:
        raise bad("the CFA image has no CFARepeatPatternDim (tag 33421)")
    if dim.tolist() != [2.0, 2.0]:
        raise bad(f"CFARepeatPatternDim is {tuple(int(v) for v in dim)}; read_raw supports 2×2 Bayer patterns only")
    codes = dng.numbers("CFAPattern")
    if codes is None or codes.size != 4:
        raise bad(f"CFAPattern (tag 33422) must hold 4 values for a 2×2 pattern, got {None if codes is None else codes.tolist()}")
    planes = dng.numbers("CFAPlaneColor")
    planes = [0.0, 1.0, 2.0] if planes is None else planes.tolist()
    layout = dng.numbers("CFALayout")
    if layout is not None and layout.tolist() != [1.0]:
        raise bad(f"CFALayout is {layout.tolist()}; only the rectangular layout (1) is supported")
    try:
        pattern = "".join("RGB"[int(planes[int(c)])] for c in codes)
    except IndexError:
        raise bad(f"CFAPattern {tuple(int(c) for c in codes)} with CFAPlaneColor {planes} names colours other than R, G, B") from None
    if pattern not in ("RGGB", "BGGR", "GRBG", "GBRG"):
        raise bad(f"CFAPattern {tuple(int(c) for c in codes)} is {pattern}, not a Bayer layout")
    return pattern


def active_area(dng: DngFile, height: int, width: int) -> tuple[int, int, int, int]:
    """ActiveArea ``(top, left, bottom, right)`` inside the ``height × width`` stored image (the whole image without the tag).

    Raises :class:`~ispkit.errors.RawFormatError` for a rectangle outside the image, or
    (for a CFA image) one starting on an odd row or column, which would shift the pattern.
    """
    area = dng.numbers("ActiveArea", count=4)
    if area is None:
        return 0, 0, height, width
    top, left, bottom, right = (int(v) for v in area)
    if not (0 <= top < bottom <= height and 0 <= left < right <= width) or not np.array_equal(area, np.floor(area)):
        raise RawFormatError(f"{dng.path}: ActiveArea {tuple(area.tolist())} lies outside the {height}×{width} raw image")
    if not dng.linear and (top % 2 or left % 2):
        raise RawFormatError(
            f"{dng.path}: unsupported DNG: ActiveArea {(top, left, bottom, right)} starts on an odd row or column, "
            "which shifts the CFA pattern"
        )
    return top, left, bottom, right


def default_crop(dng: DngFile, height: int, width: int) -> tuple[int, int, int, int]:
    """DefaultCropOrigin/Size as ``(top, left, bottom, right)`` in the active area (``height × width``), outward to whole pixels.

    The whole area without the tags. Raises :class:`~ispkit.errors.RawFormatError` for a
    rectangle that is empty or leaves the active area.
    """
    origin, size = dng.numbers("DefaultCropOrigin", count=2), dng.numbers("DefaultCropSize", count=2)
    if origin is None and size is None:
        return 0, 0, height, width
    left, top = (0.0, 0.0) if origin is None else origin.tolist()
    crop_w, crop_h = (width - left, height - top) if size is None else size.tolist()
    box = (math.floor(top), math.floor(left), math.ceil(top + crop_h), math.ceil(left + crop_w))
    if not (0 <= box[0] < box[2] <= height and 0 <= box[1] < box[3] <= width):
        raise RawFormatError(
            f"{dng.path}: DefaultCropOrigin {origin if origin is None else origin.tolist()} with DefaultCropSize "
            f"{size if size is None else size.tolist()} leaves the {height}×{width} active area"
        )
    return box


@dataclass(frozen=True)
class RawLevels:
    """The encoding levels of a DNG raw image, in stored (linearized) units.

    Parameters
    ----------
    white
        WhiteLevel per sample (one value for a mosaic).
    black
        BlackLevel as ``(rows, cols, samples)``: the pattern repeating from the top-left
        of the active area (BlackLevelRepeatDim).
    delta_rows, delta_cols
        BlackLevelDeltaV per row and BlackLevelDeltaH per column of the active area, or
        ``None`` when absent.
    table
        LinearizationTable, or ``None``.
    bits
        Bits of the numbers after linearization: BitsPerSample, or 16 with a table.
    """

    white: np.ndarray
    black: np.ndarray
    delta_rows: np.ndarray | None
    delta_cols: np.ndarray | None
    table: np.ndarray | None
    bits: int

    def black_map(self, height: int, width: int, sample: int = 0) -> np.ndarray:
        """The exact black level of every pixel of the ``height × width`` active area (pattern plus deltas)."""
        rows, cols = self.black.shape[:2]
        tile = self.black[:, :, sample]
        out = np.tile(tile, (-(-height // rows), -(-width // cols)))[:height, :width].astype(np.float64)
        if self.delta_rows is not None:
            out += self.delta_rows[:height, None]
        if self.delta_cols is not None:
            out += self.delta_cols[None, :width]
        return out

    def site_black(self, sample: int = 0) -> np.ndarray:
        """Mean black of each 2×2 CFA site ``(2, 2)``: the pattern averaged per site plus the mean delta of the site's rows and columns."""
        rows, cols = self.black.shape[:2]
        period = (math.lcm(rows, 2), math.lcm(cols, 2))
        tile = np.tile(self.black[:, :, sample], (period[0] // rows, period[1] // cols)).astype(np.float64)
        sites = tile.reshape(period[0] // 2, 2, period[1] // 2, 2).mean(axis=(0, 2))
        if self.delta_rows is not None and self.delta_rows.size >= 2:
            sites += np.array([self.delta_rows[0::2].mean(), self.delta_rows[1::2].mean()])[:, None]
        if self.delta_cols is not None and self.delta_cols.size >= 2:
            sites += np.array([self.delta_cols[0::2].mean(), self.delta_cols[1::2].mean()])[None, :]
        return sites


def raw_levels(dng: DngFile, bits: int, samples: int, height: int, width: int) -> RawLevels:
    """Read WhiteLevel, BlackLevel (with BlackLevelRepeatDim), BlackLevelDeltaH/V and LinearizationTable.

    ``bits`` and ``samples`` are the raw image's; ``height × width`` its active area.
    Raises :class:`~ispkit.errors.RawFormatError` for counts that do not match, a
    non-integer or out-of-range white level, or a black level at or above it.
    """
    path = dng.path

    def bad(message: str) -> RawFormatError:
        return RawFormatError(f"{path}: unsupported DNG: {message}")

    table = None
    tag = dng.get("LinearizationTable")
    if tag is not None:
        table = tag.integers()
        if table.size == 0 or table.size > 65536 or table.min() < 0 or table.max() > 65535:
            raise bad(f"LinearizationTable must map stored numbers to 16-bit values; got {table.size} entries in [{table.min(initial=0)}, {table.max(initial=0)}]")
        table = table.astype(np.uint16)
    value_bits = 16 if table is not None else bits
    white = dng.numbers("WhiteLevel", count=(1, samples))
    white = np.full(samples, 2.0**bits - 1) if white is None else np.resize(white, samples)
    if np.any(white != np.floor(white)) or np.any(white < 1) or np.any(white > 2.0**value_bits - 1):
        shown = "/".join(f"{w:g}" for w in white)
        raise bad(f"WhiteLevel {shown} does not fit BitsPerSample {bits}" + (" after the LinearizationTable" if table is not None else ""))
    dim = dng.numbers("BlackLevelRepeatDim", count=2)
    rows, cols = (1, 1) if dim is None else (int(v) for v in dim)
    if not (1 <= rows <= _MAX_REPEAT and 1 <= cols <= _MAX_REPEAT) or (dim is not None and not np.array_equal(dim, np.floor(dim))):
        raise bad(f"BlackLevelRepeatDim {None if dim is None else dim.tolist()}: expected two integers from 1 to {_MAX_REPEAT}")
    black = dng.numbers("BlackLevel")
    black = np.zeros(rows * cols * samples) if black is None else black
    if black.size != rows * cols * samples:
        raise bad(
            f"BlackLevel {black.tolist()} with BlackLevelRepeatDim {(rows, cols)}: expected {rows * cols * samples} values "
            f"({rows}×{cols} positions × {samples} sample(s))"
        )
    delta_rows = _deltas(dng, "BlackLevelDeltaV", height, bad)
    delta_cols = _deltas(dng, "BlackLevelDeltaH", width, bad)
    levels = RawLevels(white, black.reshape(rows, cols, samples), delta_rows, delta_cols, table, value_bits)
    for s in range(samples):
        highest = float(levels.black[:, :, s].max()) + _largest(delta_rows) + _largest(delta_cols)
        if highest >= white[s]:
            raise RawFormatError(
                f"{path}: its black level ({highest:g}, BlackLevel plus deltas) is not below its WhiteLevel {white[s]:g}: "
                "no signal could be recorded (a corrupt header)"
            )
    return levels


def _deltas(dng: DngFile, name: str, size: int, bad) -> np.ndarray | None:
    values = dng.numbers(name)
    if values is None or not np.any(values):
        return None
    if values.size != size:
        raise bad(f"{name} holds {values.size} values, expected {size} (one per {'row' if name.endswith('V') else 'column'} of the active area)")
    return values


def _largest(values: np.ndarray | None) -> float:
    return 0.0 if values is None else float(values.max())


def dng_camera(dng: DngFile, levels: RawLevels, pattern: str) -> Camera:
    """The :class:`~ispkit.camera.Camera` of a DNG mosaic, from its tags.

    - ``name``: UniqueCameraModel, else the file stem;
    - ``container_bits = bit_depth``: the number of bits of WhiteLevel, so that ispkit's
      white level ``2**container_bits - 1`` is the DNG WhiteLevel whenever that is of the
      form ``2**k - 1`` (WhiteLevel 15520 gives 14 bits and saturation at 15520 / 16383);
    - ``black_level``: :meth:`RawLevels.site_black` divided by that white level;
    - ``white_balance``: ``1 / AsShotNeutral`` scaled to green = 1, else (1, 1, 1);
    - ``color_matrix``: identity (the DNG colour model is not applied here); gain and
      read noise unset.
    """
    container = container_bits(levels)
    sites = levels.site_black() / (2**container - 1)
    notes = [f"BlackLevel {levels.black[:, :, 0].ravel().tolist()}"]
    if levels.delta_rows is not None or levels.delta_cols is not None:
        notes.append("BlackLevelDeltaH/V averaged per CFA site (RawImage.black_map() is exact)")
    return _camera(dng, levels, pattern, container, tuple(sites.ravel().tolist()), notes)


def linear_camera(dng: DngFile, levels: RawLevels) -> Camera:
    """The :class:`~ispkit.camera.Camera` of a linear DNG, as :func:`dng_camera` but with black level 0
    (the reader subtracts the file's black levels from the RGB data) and the white level of the largest WhiteLevel."""
    black = [levels.black[:, :, s].ravel().tolist() for s in range(levels.black.shape[2])]
    notes = [f"linear (demosaiced) data with BlackLevel {black} already subtracted"]
    return _camera(dng, levels, "RGGB", container_bits(levels), (0.0, 0.0, 0.0, 0.0), notes)


def container_bits(levels: RawLevels) -> int:
    """ispkit's ``container_bits`` for these levels: the number of bits of the largest WhiteLevel."""
    return int(levels.white.max()).bit_length()


def _camera(dng: DngFile, levels: RawLevels, pattern: str, container: int, black: tuple[float, ...], notes: list[str]) -> Camera:
    neutral = dng.numbers("AsShotNeutral")
    balance = (1.0, 1.0, 1.0)
    if neutral is not None and neutral.size == 3 and np.all(neutral > 0):
        r, g, b = neutral.tolist()
        balance = (g / r, 1.0, g / b)
    model = dng.get("UniqueCameraModel")
    name = "" if model is None else model.text().strip()  # text() refuses a non-ASCII (e.g. numeric) tag
    if levels.table is not None:
        notes.append("LinearizationTable applied")
    description = (
        f"from the DNG tags of {dng.path.name}: BitsPerSample {dng.raw.integer(_BITS, 1)}, "
        "WhiteLevel " + "/".join(f"{w:g}" for w in levels.white) + ", " + ", ".join(notes)
    )
    try:
        return Camera(
            name=name or dng.path.stem,
            pattern=pattern,
            bit_depth=container,
            container_bits=container,
            black_level=black,
            white_balance=balance,
            description=description,
        )
    except InputError as exc:
        raise RawFormatError(f"{dng.path}: unsupported DNG: {exc}") from exc
