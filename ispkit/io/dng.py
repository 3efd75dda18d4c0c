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
:func:`default_crop` the rectangles; :meth:`DngFile.opcodes` the opcode lists
(:mod:`ispkit.io.opcodes`). :func:`dng_camera` builds the :class:`~ispkit.camera.Camera`
of a mosaic from them with the file's colour science (:func:`dng_color`, the DNG colour
model of :mod:`ispkit.dng_color`), noise (:func:`noise_model`, from NoiseProfile) and
lens shading (:func:`lens_shading`, from the GainMap and FixVignetteRadial opcodes);
:func:`camera_from_dng` (:meth:`Camera.from_dng <ispkit.camera.Camera.from_dng>`) does it
from the tags alone.

Colour, noise and opcode tags only describe how to render the pixels: one that is
malformed (a zero denominator, a wrong count, a singular matrix, a truncated opcode
list) is left out, and the camera's ``description`` says which and why, as it lists
every opcode not applied; each such omission is also a :class:`DngWarning`. Tags that
decide what the pixels are (levels, layout, sizes) are checked strictly, as before:
:class:`~ispkit.errors.RawFormatError`.
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from ..camera import SHADING_POINTS, Camera
from ..dng_color import D55_XY, ColorCalibration, DngColor, render
from ..errors import InputError, RawFormatError
from .opcodes import GainMap, Opcode, VignetteRadial, parse_opcode_list
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
    "camera_from_dng",
    "dng_calibration",
    "dng_color",
    "noise_model",
    "lens_shading",
    "DngWarning",
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
        return tuple(int(v) for v in self.main.tags[50706].numbers())  # present: checked when the file was opened

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

    def opcodes(self, which: int) -> tuple[Opcode, ...]:
        """The opcodes of OpcodeList1, 2 or 3 (``which``), parsed (:func:`~ispkit.io.opcodes.parse_opcode_list`); empty without the tag.

        Raises :class:`~ispkit.errors.RawFormatError` for a list that is not a byte
        string (TIFF type UNDEFINED) or whose structure is corrupt.
        """
        if which not in (1, 2, 3):
            raise InputError(f"DngFile.opcodes: there are OpcodeList1, 2 and 3, not {which}")
        tag = self.get(f"OpcodeList{which}")
        if tag is None:
            return ()
        if not isinstance(tag.value, bytes):
            raise RawFormatError(f"{self.path}: OpcodeList{which} has TIFF type {tag.type}, expected a byte string (UNDEFINED, 7)")
        return parse_opcode_list(tag.value, which, self.path)


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
    plane_colors = dng.numbers("CFAPlaneColor")
    planes = [0.0, 1.0, 2.0] if plane_colors is None else plane_colors.tolist()
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
            f"{dng.path}: unsupported DNG: ActiveArea {(top, left, bottom, right)} starts on an odd row or column, which shifts the CFA pattern"
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
            raise bad(
                f"LinearizationTable must map stored numbers to 16-bit values; got {table.size} entries in [{table.min(initial=0)}, {table.max(initial=0)}]"
            )
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


class DngWarning(UserWarning):
    """A DNG tag or opcode that describes the rendering was left out (malformed or not supported); the camera's description lists it too."""


def dng_camera(dng: DngFile, levels: RawLevels, pattern: str) -> Camera:
    """The :class:`~ispkit.camera.Camera` of a DNG mosaic, from its tags.

    - ``name``: UniqueCameraModel, else the file stem;
    - ``container_bits = bit_depth``: the number of bits of WhiteLevel, so that ispkit's
      white level ``2**container_bits - 1`` is the DNG WhiteLevel whenever that is of the
      form ``2**k - 1`` (WhiteLevel 15520 gives 14 bits and saturation at 15520 / 16383);
    - ``black_level``: :meth:`RawLevels.site_black` divided by that white level;
    - ``white_balance`` and ``color_matrix``: the DNG colour model (:func:`dng_color`),
      camera → linear sRGB, with the matrix multiplied by
      ``(2**container_bits - 1) / (WhiteLevel - black)`` so that the DNG's white level
      becomes 1 as in the DNG SDK and LibRaw; without ColorMatrix1, ``1 / AsShotNeutral``
      (green 1) and the identity;
    - ``gain`` and ``read_noise``: from NoiseProfile (:func:`noise_model`), else unset;
    - ``shading_*`` and ``vignette*``: from the GainMap opcodes of OpcodeList2 and a
      FixVignetteRadial opcode (:func:`lens_shading`), else neutral;
    - ``description``: what was read, derived, approximated and left out, including
      BaselineExposure (not applied; multiply by ``2**BaselineExposure`` to apply it) and
      BaselineNoise. Everything left out is also a :class:`DngWarning`.
    """
    container = container_bits(levels)
    sites = levels.site_black() / (2**container - 1)
    notes = [f"BlackLevel {levels.black[:, :, 0].ravel().tolist()}"]
    if levels.delta_rows is not None or levels.delta_cols is not None:
        notes.append("BlackLevelDeltaH/V averaged per CFA site (RawImage.black_map() is exact)")
    height, width = _active_shape(dng)
    b0, b1, b2, b3 = (float(b) for b in sites.ravel())
    return _camera(dng, levels, pattern, container, (b0, b1, b2, b3), notes, lens_shading(dng, pattern, height, width, notes))


def linear_camera(dng: DngFile, levels: RawLevels) -> Camera:
    """The :class:`~ispkit.camera.Camera` of a linear DNG, as :func:`dng_camera` but with black level 0
    (the reader subtracts the file's black levels from the RGB data), the white level of the largest WhiteLevel,
    and no lens shading (its opcodes act on the mosaic stages a linear image has passed)."""
    black = [levels.black[:, :, s].ravel().tolist() for s in range(levels.black.shape[2])]
    notes = [f"linear (demosaiced) data with BlackLevel {black} already subtracted"]
    for which in (1, 2, 3):
        found = _opcodes(dng, which, notes)
        if found:
            notes.append(f"OpcodeList{which} ({', '.join(op.name for op in found)}) not applied to a linear image")
    return _camera(dng, levels, "RGGB", container_bits(levels), (0.0, 0.0, 0.0, 0.0), notes, {})


def camera_from_dng(path: str | os.PathLike[str]) -> Camera:
    """:meth:`Camera.from_dng <ispkit.camera.Camera.from_dng>`: the camera of the DNG at ``path`` from its tags, no pixel decoded.

    The same camera :func:`~ispkit.io.read_raw` (or :func:`~ispkit.io.read_linear` for a
    linear DNG) returns for the file when no other camera is given, so it also works for
    files whose pixels ispkit cannot decode (e.g. VC-5 compressed GoPro GPR).

    Raises :class:`FileNotFoundError` for a missing file and
    :class:`~ispkit.errors.RawFormatError` for anything that is not a DNG with a Bayer
    or linear raw image, or whose levels are inconsistent.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(2, "no such DNG file", str(path))
    dng = parse_dng(path)
    height, width = _active_shape(dng)
    samples = 3 if dng.linear else 1
    found = dng.raw.integer(_SAMPLES, 1)
    if found != samples:
        raise RawFormatError(f"{path}: {'a LinearRaw' if dng.linear else 'a CFA'} image needs {samples} sample(s) per pixel, found {found}")
    bits = dng.raw.integer(_BITS, 1)
    if not 1 <= bits <= 32:
        raise RawFormatError(f"{path}: BitsPerSample {bits} is not a sample width from 1 to 32")
    levels = raw_levels(dng, bits, samples, height, width)
    return linear_camera(dng, levels) if dng.linear else dng_camera(dng, levels, cfa_pattern(dng))


def _active_shape(dng: DngFile) -> tuple[int, int]:
    """Height and width of the raw image's ActiveArea, from ImageLength/ImageWidth and ActiveArea."""
    width, height = dng.raw.integer(256), dng.raw.integer(257)
    if width is None or height is None or width < 1 or height < 1:
        raise RawFormatError(f"{dng.path}: the raw image needs a positive ImageWidth and ImageLength, got {width}×{height}")
    top, left, bottom, right = active_area(dng, height, width)
    return bottom - top, right - left


def container_bits(levels: RawLevels) -> int:
    """ispkit's ``container_bits`` for these levels: the number of bits of the largest WhiteLevel."""
    return int(levels.white.max()).bit_length()


def _camera(
    dng: DngFile, levels: RawLevels, pattern: str, container: int, black: tuple[float, float, float, float], notes: list[str], shading: dict[str, Any]
) -> Camera:
    model = dng.get("UniqueCameraModel")
    name = "" if model is None else model.text().strip()  # text() refuses a non-ASCII (e.g. numeric) tag
    if levels.table is not None:
        notes.append("LinearizationTable applied")
    scale = (2**container - 1) / _signal_range(levels)
    color = dng_color(dng, notes)
    balance: tuple[float, float, float] | np.ndarray
    if color is None:
        balance, matrix = _neutral_balance(dng, notes), np.eye(3)
    else:
        balance, matrix = color.white_balance, scale * color.color_matrix
        notes.append(
            f"colour: as-shot white xy ({color.white_xy[0]:.4f}, {color.white_xy[1]:.4f}), {color.temperature:.0f} K, "
            f"weight {color.weight:.3f} of the lower-temperature calibration; colour matrix = camera → linear sRGB "
            f"× diag(1 / white balance) × {scale:.6g} ((2**{container} - 1) / (WhiteLevel - black))"
        )
    gain, read_noise = noise_model(dng, levels, notes)
    _baselines(dng, notes)
    description = (
        f"from the DNG tags of {dng.path.name}: BitsPerSample {dng.raw.integer(_BITS, 1)}, "
        "WhiteLevel " + "/".join(f"{w:g}" for w in levels.white) + ", " + "; ".join(notes)
    )
    try:
        return Camera(
            name=name or dng.path.stem,
            pattern=pattern,
            bit_depth=container,
            container_bits=container,
            black_level=black,
            white_balance=(float(balance[0]), float(balance[1]), float(balance[2])),
            color_matrix=tuple(tuple(float(v) for v in row) for row in matrix),
            gain=gain,
            read_noise=read_noise,
            description=description,
            **shading,
        )
    except InputError as exc:
        raise RawFormatError(f"{dng.path}: unsupported DNG: {exc}") from exc


def _signal_range(levels: RawLevels) -> float:
    """WhiteLevel minus the mean black level (pattern and deltas), in stored units: the span of the linear signal."""
    black = float(levels.black.mean())
    black += 0.0 if levels.delta_rows is None else float(levels.delta_rows.mean())
    black += 0.0 if levels.delta_cols is None else float(levels.delta_cols.mean())
    return float(levels.white.max()) - black


# -- tags that describe the rendering: colour, noise, exposure ---------------------------------


def _left_out(dng: DngFile, notes: list[str], message: str) -> None:
    """Record that something describing the rendering was left out: in ``notes`` and as a :class:`DngWarning`."""
    notes.append(message)
    warnings.warn(f"{dng.path}: {message}", DngWarning, stacklevel=4)


def _optional(dng: DngFile, name: str, notes: list[str], count: int | tuple[int, ...] | None = None) -> np.ndarray | None:
    """Tag ``name`` as numbers, or ``None`` when absent or malformed (then recorded with :func:`_left_out`)."""
    try:
        return dng.numbers(name, count=count)
    except RawFormatError as exc:
        _left_out(dng, notes, f"{name} left out: {str(exc).removeprefix(f'{dng.path}: ')}")
        return None


def dng_calibration(dng: DngFile, notes: list[str] | None = None) -> ColorCalibration | None:
    """The file's :class:`~ispkit.dng_color.ColorCalibration` (ColorMatrix1/2, CalibrationIlluminant1/2,
    ForwardMatrix1/2, CameraCalibration1/2, AnalogBalance), or ``None`` without a usable ColorMatrix1.

    CameraCalibration1/2 are used only when CameraCalibrationSignature equals
    ProfileCalibrationSignature (both absent counts as equal), as the DNG specification
    says. A third illuminant (DNG 1.6 ColorMatrix3) is not modelled: the first two are
    used, and ``notes`` says so. Malformed tags are left out and recorded in ``notes``.
    """
    notes = [] if notes is None else notes
    first = _optional(dng, "ColorMatrix1", notes, count=9)
    if first is None:
        return None
    second = _optional(dng, "ColorMatrix2", notes, count=9)
    matrices = [m.reshape(3, 3) for m in (first, second) if m is not None]
    illuminants = []
    for i in (1, 2):
        code = _optional(dng, f"CalibrationIlluminant{i}", notes, count=1)
        illuminants.append(0 if code is None else int(code[0]))
    forward = [_optional(dng, f"ForwardMatrix{i}", notes, count=9) for i in (1, 2)]
    calibrations = [_optional(dng, f"CameraCalibration{i}", notes, count=9) for i in (1, 2)]
    if _signature(dng, "CameraCalibrationSignature") != _signature(dng, "ProfileCalibrationSignature"):
        calibrations = [None, None]
        notes.append("CameraCalibration1/2 not used: CameraCalibrationSignature differs from ProfileCalibrationSignature")
    balance = _optional(dng, "AnalogBalance", notes, count=3)
    if dng.get("ColorMatrix3") is not None:
        notes.append("ColorMatrix3 (a DNG 1.6 triple-illuminant profile) not modelled: ColorMatrix1/2 interpolated")
    try:
        return ColorCalibration(
            tuple(matrices),
            tuple(illuminants[: len(matrices)]),
            tuple(None if m is None else m.reshape(3, 3) for m in forward[: len(matrices)]),
            tuple(np.eye(3) if m is None else m.reshape(3, 3) for m in calibrations[: len(matrices)]),
            np.ones(3) if balance is None else balance,
        )
    except InputError as exc:
        _left_out(dng, notes, f"the colour calibration left out: {exc}")
        return None


def _signature(dng: DngFile, name: str) -> str:
    tag = dng.get(name)
    return tag.value if tag is not None and isinstance(tag.value, str) else ""


def dng_color(dng: DngFile, notes: list[str] | None = None) -> DngColor | None:
    """The DNG colour model of the shot (:func:`ispkit.dng_color.render`), or ``None`` without a usable calibration.

    The white is AsShotNeutral, else AsShotWhiteXY, else D55 (the DNG SDK's default);
    ``notes`` records which, and anything left out.
    """
    notes = [] if notes is None else notes
    calibration = dng_calibration(dng, notes)
    if calibration is None:
        notes.append("no usable ColorMatrix1: colour matrix left at the identity (camera RGB)")
        return None
    neutral = _optional(dng, "AsShotNeutral", notes, count=3)
    white_xy = _optional(dng, "AsShotWhiteXY", notes, count=2) if neutral is None else None
    try:
        if neutral is not None:
            return render(calibration, neutral=neutral)
        if white_xy is not None:
            notes.append("white from AsShotWhiteXY")
            return render(calibration, white_xy=white_xy)
        notes.append("no AsShotNeutral or AsShotWhiteXY: rendered for D55, as the DNG SDK does")
        return render(calibration, white_xy=D55_XY)
    except InputError as exc:
        _left_out(dng, notes, f"the colour model left out: {exc}")
        return None


def _neutral_balance(dng: DngFile, notes: list[str]) -> tuple[float, float, float]:
    """``1 / AsShotNeutral`` scaled to green 1 (without a colour calibration), else (1, 1, 1)."""
    neutral = _optional(dng, "AsShotNeutral", notes, count=3)
    if neutral is None or not np.all(neutral > 0):
        return (1.0, 1.0, 1.0)
    r, g, b = neutral.tolist()
    return (g / r, 1.0, g / b)


def noise_model(dng: DngFile, levels: RawLevels, notes: list[str] | None = None) -> tuple[float | None, float | None]:
    """Conversion gain (DN/e⁻ on the stored numbers) and read noise (e⁻) from NoiseProfile, or ``None`` for each unknown.

    NoiseProfile gives, per colour plane or once for all, ``(S, O)`` with the variance
    of a linear signal ``x`` (black 0, white 1) equal to ``S·x + O`` (DNG specification
    1.4, NoiseProfile: ``N(x) = sqrt(S x + O)``, ``S = k`` the photon-noise scale and
    ``O = r²`` the read-noise variance, both normalised). With ``R = WhiteLevel − black``
    stored numbers per unit of ``x``, the photon-transfer model of
    :mod:`ispkit.sensor`, ``var(DN) = g·(DN − B) + (g·σ)²``, has ``var(x) = (g / R)·x +
    (g·σ / R)²``, so::

        g = S · R      (DN/e⁻)         σ = sqrt(O) / S      (e⁻)

    computed per plane and averaged over the planes (the spread is noted). ``O = 0``
    leaves the read noise unset (a camera's read noise must be positive). BaselineNoise
    is a noise level relative to a reference camera, not a physical quantity: it is only
    recorded. Malformed or non-physical profiles (``S <= 0``, ``O < 0``) are left out.
    """
    notes = [] if notes is None else notes
    profile = _optional(dng, "NoiseProfile", notes)
    if profile is None:
        notes.append("no NoiseProfile: gain and read noise unknown")
        return None, None
    if profile.size == 0 or profile.size % 2:
        _left_out(dng, notes, f"NoiseProfile left out: {profile.size} values, expected pairs (S, O)")
        return None, None
    scale, offset = profile[0::2], profile[1::2]
    if np.any(scale <= 0) or np.any(offset < 0):
        _left_out(dng, notes, f"NoiseProfile left out: needs S > 0 and O >= 0, got {profile.tolist()}")
        return None, None
    span = _signal_range(levels)
    gains, noises = scale * span, np.sqrt(offset) / scale
    gain, noise = float(gains.mean()), float(noises.mean())
    spread = f" (planes {np.round(gains, 4).tolist()} DN/e⁻, {np.round(noises, 3).tolist()} e⁻)" if profile.size > 2 else ""
    notes.append(f"gain {gain:.6g} DN/e⁻ and read noise {noise:.6g} e⁻ from NoiseProfile {profile.tolist()}{spread}")
    if noise == 0:
        notes.append("NoiseProfile O = 0: read noise left unset")
        return gain, None
    return gain, noise


def _baselines(dng: DngFile, notes: list[str]) -> None:
    """Record BaselineExposure (not applied) and BaselineNoise (relative; not a physical noise)."""
    exposure = _quiet(dng, "BaselineExposure", notes)
    if exposure is not None and exposure[0] != 0:
        notes.append(f"BaselineExposure {exposure[0]:+g} EV not applied (multiply by {2.0 ** exposure[0]:.4g} to apply it)")
    noise = _quiet(dng, "BaselineNoise", notes)
    if noise is not None:
        notes.append(f"BaselineNoise {noise[0]:g} (relative to a reference camera; recorded only)")


def _quiet(dng: DngFile, name: str, notes: list[str]) -> np.ndarray | None:
    """A one-value hint ispkit records but never applies: malformed, it is only noted (no warning: nothing changes)."""
    try:
        return dng.numbers(name, count=1)
    except RawFormatError as exc:
        notes.append(f"{name} unreadable: {str(exc).removeprefix(f'{dng.path}: ')}")
        return None


# -- lens shading: GainMap and FixVignetteRadial opcodes ---------------------------------------


def _opcodes(dng: DngFile, which: int, notes: list[str]) -> tuple[Opcode, ...]:
    """The opcodes of list ``which``; a corrupt list is left out (recorded) rather than refused."""
    try:
        return dng.opcodes(which)
    except RawFormatError as exc:
        _left_out(dng, notes, f"OpcodeList{which} left out: {str(exc).removeprefix(f'{dng.path}: ')}")
        return ()


def lens_shading(dng: DngFile, pattern: str, height: int, width: int, notes: list[str] | None = None) -> dict[str, Any]:
    """The camera's ``shading_*`` and ``vignette*`` fields from the opcode lists of a ``height × width`` mosaic (the ActiveArea).

    - A **GainMap** of OpcodeList2 that covers whole CFA sites (row and column pitch 1 or
      2, starting within the first pitch, reaching the last row and column) becomes the
      map of those sites; one of OpcodeList3 (which acts on RGB planes) becomes the map
      of the sites of its planes' colours, applied before demosaicking. When the maps
      share their geometry, have at most :data:`~ispkit.camera.SHADING_POINTS` points per
      axis and no site has two, they are stored exactly (padded with their edge values,
      which the interpolation holds beyond the map anyway); otherwise each site's
      product of maps is resampled onto an evenly spaced grid over the image, and the
      largest difference this makes is noted.
    - The first **FixVignetteRadial** (OpcodeList2 or 3) becomes ``vignette`` and
      ``vignette_center``.
    - Every other opcode, and these in OpcodeList1 (which acts before linearization), is
      left out: noted, and a :class:`DngWarning` (required opcodes are named as such).

    Returns the fields to pass to :class:`~ispkit.camera.Camera` (empty when nothing applies).
    """
    notes = [] if notes is None else notes
    per_site: list[list[tuple[GainMap, int]]] = [[] for _ in range(4)]
    fields: dict[str, Any] = {}
    for which in (1, 2, 3):
        for op in _opcodes(dng, which, notes):
            try:
                if op.id == 9 and which in (2, 3):
                    _place_gain_map(GainMap.from_opcode(op), which, pattern, height, width, per_site, notes, op)
                    continue
                if op.id == 3 and which in (2, 3) and "vignette" not in fields:
                    vignette = VignetteRadial.from_opcode(op)
                    fields["vignette"], fields["vignette_center"] = vignette.k, vignette.center
                    notes.append(f"OpcodeList{which} FixVignetteRadial k {list(vignette.k)}, centre {list(vignette.center)}")
                    continue
            except RawFormatError as exc:
                _left_out(dng, notes, f"{str(exc).removeprefix(f'{dng.path}: ')}; left out")
                continue
            why = "acts before linearization" if which == 1 and op.id in (3, 9) else "a second one cannot be combined" if op.id == 3 else "not supported"
            _left_out(dng, notes, f"OpcodeList{which} {op.name}{'' if op.optional else ' (required)'} not applied: {why}")
    if any(per_site):
        fields.update(_shading_fields(per_site, height, width, notes))
    return fields


def _place_gain_map(gain_map: GainMap, which: int, pattern: str, height: int, width: int, per_site, notes: list[str], op: Opcode) -> None:
    """Add ``gain_map`` to the sites it covers (``per_site[k]`` holds ``(map, map plane)``), or refuse it with a RawFormatError."""
    rows, cols = _parities(gain_map.top, gain_map.bottom, gain_map.row_pitch, height), _parities(gain_map.left, gain_map.right, gain_map.col_pitch, width)
    if rows is None or cols is None:
        raise op.bad(
            f"area ({gain_map.top}, {gain_map.left}, {gain_map.bottom}, {gain_map.right}) with pitches "
            f"{gain_map.row_pitch}×{gain_map.col_pitch} does not cover whole CFA sites of the {height}×{width} image"
        )
    planes = range(gain_map.plane, gain_map.plane + gain_map.planes)
    if which == 2:
        if 0 not in planes:
            raise op.bad(f"applies to planes {list(planes)[:4]} of a mosaic, which has one")
        targets = [(2 * r + c, 0) for r in rows for c in cols]
    else:
        colours = "RGB"
        targets = [
            (site, channel)
            for site in range(4)
            for channel in planes
            if channel < 3 and pattern[site] == colours[channel] and site // 2 in rows and site % 2 in cols
        ]
        notes.append("OpcodeList3 GainMap applied to the mosaic, before demosaicking")
    if not targets:
        raise op.bad("covers no CFA site")
    for site, plane in targets:
        per_site[site].append((gain_map, plane))


def _parities(start: int, stop: int, pitch: int, size: int) -> tuple[int, ...] | None:
    """The row (or column) parities an opcode area covers completely, or ``None`` when it covers only part of one."""
    if pitch == 1 and start == 0 and stop >= size:
        return (0, 1)
    if pitch == 2 and start in (0, 1) and stop >= size - 1 + start:
        return (start,)
    return None


def _shading_fields(per_site: list[list[tuple[GainMap, int]]], height: int, width: int, notes: list[str]) -> dict[str, Any]:
    """``shading_map``, ``shading_origin`` and ``shading_spacing`` holding the maps of each site, exactly when possible."""
    entries = [entry for site in per_site for entry in site]
    geometry = _shared_geometry([m for m, _ in entries])
    one_each = all(len(site) <= 1 for site in per_site) and all(max(m.gains.shape[:2]) <= SHADING_POINTS for m, _ in entries)
    described = ", ".join(f"{m.gains.shape[0]}×{m.gains.shape[1]}" for m, _ in entries)
    if geometry is not None and one_each:
        origin, spacing = geometry
        grids = [_padded(site[0][0].gains[:, :, site[0][1]]) if site else np.ones((SHADING_POINTS, SHADING_POINTS)) for site in per_site]
        notes.append(f"GainMap ({described} points) stored exactly: origin {list(origin)}, spacing {list(spacing)}")
        return {"shading_map": np.stack(grids), "shading_origin": origin, "shading_spacing": spacing}
    spacing = (1.0 / (SHADING_POINTS - 1),) * 2
    nodes = np.arange(SHADING_POINTS) * spacing[0]
    grids = [_product_at(site, nodes, nodes) for site in per_site]
    probe = (np.arange(257) + 0.5) / 257
    worst = max(
        float(np.abs(_product_at(site, probe, probe) - _bilinear(grid, probe * (SHADING_POINTS - 1))).max()) for site, grid in zip(per_site, grids, strict=True)
    )
    notes.append(f"GainMap ({described} points) resampled onto a {SHADING_POINTS}×{SHADING_POINTS} grid per site: largest difference {worst:.2g}")
    return {"shading_map": np.stack(grids), "shading_origin": (0.0, 0.0), "shading_spacing": spacing}


def _shared_geometry(maps: list[GainMap]) -> tuple[tuple[float, float], tuple[float, float]] | None:
    """The common ``(origin, spacing)`` of the maps (an axis with one point fits any), when it lies within the stage's bounds."""
    origin: list[float | None] = [None, None]
    spacing: list[float | None] = [None, None]
    for m in maps:
        for axis in (0, 1):
            if m.gains.shape[axis] == 1:
                continue
            if origin[axis] is None:
                origin[axis], spacing[axis] = m.origin[axis], m.spacing[axis]
            elif (origin[axis], spacing[axis]) != (m.origin[axis], m.spacing[axis]):
                return None
    oy, ox = (0.0 if o is None else float(o) for o in origin)
    sy, sx = (1.0 / (SHADING_POINTS - 1) if s is None else float(s) for s in spacing)
    if not (all(-1.0 <= o <= 1.0 for o in (oy, ox)) and all(1e-3 <= s <= 1.0 for s in (sy, sx))):
        return None
    return (oy, ox), (sy, sx)


def _padded(grid: np.ndarray) -> np.ndarray:
    """``grid`` extended to SHADING_POINTS × SHADING_POINTS with its last row and column (a constant along any axis of one point)."""
    return np.pad(grid, ((0, SHADING_POINTS - grid.shape[0]), (0, SHADING_POINTS - grid.shape[1])), mode="edge")


def _product_at(site: list[tuple[GainMap, int]], v: np.ndarray, h: np.ndarray) -> np.ndarray:
    """The product of a site's maps at relative positions ``v × h`` (ones without maps)."""
    out = np.ones((v.size, h.size))
    for gain_map, plane in site:
        out *= gain_map.at(v, h, plane)
    return out


def _bilinear(grid: np.ndarray, t: np.ndarray) -> np.ndarray:
    """``grid`` interpolated bilinearly at the continuous indices ``t × t``, edges held."""
    vv, hh = np.meshgrid(t, t, indexing="ij")
    return ndimage.map_coordinates(grid, [vv.ravel(), hh.ravel()], order=1, mode="nearest").reshape(vv.shape)
