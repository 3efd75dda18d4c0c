"""DNG opcode lists (OpcodeList1/2/3): parsed, and the two ispkit applies, GainMap and FixVignetteRadial, decoded.

An opcode list (DNG specification 1.4.0.0, chapter 7 "Opcode List Processing") is a
big-endian byte string whatever the file's byte order: a ``uint32`` count, then per
opcode its ``uint32`` ID, DNG version (4 bytes), flags (bit 0: optional; bit 1: may be
skipped for previews), the byte count of its parameters, and the parameters.
:func:`parse_opcode_list` reads that structure for any opcode; :class:`GainMap` (ID 9)
and :class:`VignetteRadial` (ID 3) decode their parameters. A malformed list is a
:class:`~ispkit.errors.RawFormatError` naming the file, the list and the opcode.

Where each list applies: OpcodeList1 to the stored numbers before linearization,
OpcodeList2 to the linear values (black subtracted, white 1) of the raw image,
OpcodeList3 to the demosaiced image. Coordinates of a GainMap or a vignette centre are
relative to the image the list applies to (the ActiveArea).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from ..errors import RawFormatError

__all__ = ["OPCODE_NAMES", "Opcode", "GainMap", "VignetteRadial", "parse_opcode_list"]

OPCODE_NAMES: dict[int, str] = {
    1: "WarpRectilinear",
    2: "WarpFisheye",
    3: "FixVignetteRadial",
    4: "FixBadPixelsConstant",
    5: "FixBadPixelsList",
    6: "TrimBounds",
    7: "MapTable",
    8: "MapPolynomial",
    9: "GainMap",
    10: "DeltaPerRow",
    11: "DeltaPerColumn",
    12: "ScalePerRow",
    13: "ScalePerColumn",
    14: "WarpRectilinear2",
}
"""The opcodes of DNG 1.3 to 1.6, by ID."""

_HEADER = struct.Struct(">IIII")  # id, version, flags, byte count
_AREA = struct.Struct(">10I")  # Top, Left, Bottom, Right, Plane, Planes, RowPitch, ColPitch, MapPointsV, MapPointsH
_MAP_GEOMETRY = struct.Struct(">4dI")  # MapSpacingV, MapSpacingH, MapOriginV, MapOriginH, MapPlanes
_VIGNETTE = struct.Struct(">7d")  # k0..k4, cx, cy


@dataclass(frozen=True)
class Opcode:
    """One opcode of a list: where it is, what it is, and its raw parameter bytes.

    Parameters
    ----------
    list
        1, 2 or 3: the OpcodeList it came from.
    id
        The opcode ID (:data:`OPCODE_NAMES`).
    version
        The DNG version it was written for, e.g. ``(1, 3, 0, 0)``.
    flags
        Bit 0: optional (a reader may skip it); bit 1: may be skipped for previews.
    data
        Its parameters, big-endian, exactly as many bytes as the list declares.
    source
        The file, for error messages.
    """

    list: int
    id: int
    version: tuple[int, int, int, int]
    flags: int
    data: bytes
    source: str = ""

    @property
    def name(self) -> str:
        """The opcode's name, or ``"opcode <id>"`` for an ID the specification does not define."""
        return OPCODE_NAMES.get(self.id, f"opcode {self.id}")

    @property
    def optional(self) -> bool:
        """Whether the writer marked it optional (flag bit 0)."""
        return bool(self.flags & 1)

    def bad(self, message: str) -> RawFormatError:
        """A :class:`RawFormatError` naming the file, the list and this opcode."""
        return RawFormatError(f"{self.source}: OpcodeList{self.list} {self.name}: {message}")


def parse_opcode_list(data: bytes, which: int, source: str | Path = "") -> tuple[Opcode, ...]:
    """The opcodes of an OpcodeList tag's bytes (big-endian, DNG specification chapter 7).

    Guaranteed on return: every opcode's parameters lie inside ``data`` and the list
    ends exactly where the last one does. Otherwise :class:`~ispkit.errors.RawFormatError`
    names the file, the list and what is wrong (a count larger than the bytes can hold, a
    parameter size running past the end, trailing bytes).

    Examples
    --------
    >>> one = struct.pack(">IIIII", 1, 9, 0x01030000, 1, 0)   # one optional GainMap with no parameters
    >>> (op,) = parse_opcode_list(one, 2)
    >>> op.name, op.version, op.optional, op.data
    ('GainMap', (1, 3, 0, 0), True, b'')
    """
    where = f"{source}: OpcodeList{which}"
    data = bytes(data)
    if len(data) < 4:
        raise RawFormatError(f"{where} holds {len(data)} bytes, expected at least the 4 of its opcode count")
    (count,) = struct.unpack_from(">I", data, 0)
    if count > (len(data) - 4) // _HEADER.size:
        raise RawFormatError(f"{where} declares {count} opcodes, but its {len(data)} bytes hold at most {(len(data) - 4) // _HEADER.size}")
    opcodes, offset = [], 4
    for index in range(count):
        if offset + _HEADER.size > len(data):
            raise RawFormatError(f"{where}: opcode {index + 1} of {count} starts past the end of the list ({len(data)} bytes)")
        code, version, flags, size = _HEADER.unpack_from(data, offset)
        offset += _HEADER.size
        if size > len(data) - offset:
            raise RawFormatError(
                f"{where}: opcode {index + 1} of {count} ({OPCODE_NAMES.get(code, f'opcode {code}')}) declares "
                f"{size} parameter bytes, but only {len(data) - offset} remain"
            )
        opcodes.append(Opcode(which, code, tuple(version.to_bytes(4, "big")), flags, data[offset : offset + size], str(source)))
        offset += size
    if offset != len(data):
        raise RawFormatError(f"{where}: {len(data) - offset} bytes follow its last opcode (a corrupt list)")
    return tuple(opcodes)


@dataclass(frozen=True)
class GainMap:
    """A decoded GainMap opcode (ID 9): a grid of gains over an area, bilinearly interpolated.

    Parameters
    ----------
    top, left, bottom, right
        The area it applies to, in pixels of the image its list applies to.
    plane, planes
        The first image plane and the number of planes it applies to.
    row_pitch, col_pitch
        It applies to every ``row_pitch``-th row from ``top`` and every
        ``col_pitch``-th column from ``left`` (2 and 2 select one site of a Bayer mosaic).
    spacing, origin
        ``(vertical, horizontal)`` spacing of the map points and position of the first,
        in coordinates relative to the image (0 at the top or left edge, 1 at the
        bottom or right edge). With one point along an axis, spacing 1 and origin 0, as
        the DNG SDK sets them.
    gains
        ``(MapPointsV, MapPointsH, MapPlanes)`` float64 gains.
    """

    top: int
    left: int
    bottom: int
    right: int
    plane: int
    planes: int
    row_pitch: int
    col_pitch: int
    spacing: tuple[float, float]
    origin: tuple[float, float]
    gains: np.ndarray

    @classmethod
    def from_opcode(cls, op: Opcode) -> GainMap:
        """Decode ``op`` (a GainMap). Raises :class:`~ispkit.errors.RawFormatError` for a size that does not match
        the declared map, an empty area, a zero pitch or plane count, a non-positive spacing, or gains that are not finite."""
        if op.id != 9:
            raise op.bad("is not a GainMap (ID 9)")
        header = _AREA.size + _MAP_GEOMETRY.size
        if len(op.data) < header:
            raise op.bad(f"holds {len(op.data)} parameter bytes, expected at least {header}")
        top, left, bottom, right, plane, planes, row_pitch, col_pitch, points_v, points_h = _AREA.unpack_from(op.data, 0)
        spacing_v, spacing_h, origin_v, origin_h, map_planes = _MAP_GEOMETRY.unpack_from(op.data, _AREA.size)
        if not (top < bottom and left < right and planes >= 1 and row_pitch >= 1 and col_pitch >= 1):
            raise op.bad(f"area ({top}, {left}, {bottom}, {right}) with {planes} plane(s) and pitches {row_pitch}×{col_pitch} is empty")
        if points_v < 1 or points_h < 1 or map_planes < 1:
            raise op.bad(f"a map of {points_v}×{points_h} points and {map_planes} plane(s) is empty")
        expected = header + 4 * points_v * points_h * map_planes
        if len(op.data) != expected:
            raise op.bad(f"holds {len(op.data)} parameter bytes, but a {points_v}×{points_h}×{map_planes} map needs {expected}")
        if points_v == 1:
            spacing_v, origin_v = 1.0, 0.0
        if points_h == 1:
            spacing_h, origin_h = 1.0, 0.0
        geometry = np.array([spacing_v, spacing_h, origin_v, origin_h])
        if not np.all(np.isfinite(geometry)) or spacing_v <= 0 or spacing_h <= 0:
            raise op.bad(f"map spacing ({spacing_v}, {spacing_h}) and origin ({origin_v}, {origin_h}) must be finite with a positive spacing")
        gains = np.frombuffer(op.data, ">f4", offset=header).astype(np.float64).reshape(points_v, points_h, map_planes)
        if not np.all(np.isfinite(gains)):
            raise op.bad("holds gains that are not finite numbers")
        return cls(top, left, bottom, right, plane, planes, row_pitch, col_pitch, (spacing_v, spacing_h), (origin_v, origin_h), gains)

    def at(self, v: np.ndarray, h: np.ndarray, plane: int = 0) -> np.ndarray:
        """The gain at relative positions ``v × h`` (an outer grid: vertical, horizontal) for image plane ``plane``.

        As the DNG SDK's ``dng_gain_map_interpolator``: between map points the gain is
        interpolated bilinearly, outside the map the nearest edge point's gain holds;
        map plane ``min(plane, MapPlanes - 1)`` serves image plane ``plane``.
        """
        grid = self.gains[:, :, min(plane, self.gains.shape[2] - 1)]
        vv, hh = np.meshgrid(
            (np.asarray(v, dtype=np.float64) - self.origin[0]) / self.spacing[0],
            (np.asarray(h, dtype=np.float64) - self.origin[1]) / self.spacing[1],
            indexing="ij",
        )
        return ndimage.map_coordinates(grid, [vv.ravel(), hh.ravel()], order=1, mode="nearest").reshape(vv.shape)

    def evaluate(self, rows: np.ndarray, cols: np.ndarray, height: int, width: int, plane: int = 0) -> np.ndarray:
        """The gain at pixels ``rows × cols`` of a ``height × width`` image: :meth:`at` their centres,
        ``((row + 0.5) / height, (col + 0.5) / width)``. Whether a pixel lies in the opcode's area is not checked."""
        return self.at((np.asarray(rows) + 0.5) / height, (np.asarray(cols) + 0.5) / width, plane)


@dataclass(frozen=True)
class VignetteRadial:
    """A decoded FixVignetteRadial opcode (ID 3): gain ``1 + k₀ r² + k₁ r⁴ + k₂ r⁶ + k₃ r⁸ + k₄ r¹⁰``.

    Parameters
    ----------
    k
        The five coefficients.
    center
        The optical centre ``(vertical, horizontal)`` in relative coordinates, each in
        [0, 1] (the opcode stores ``cx, cy``, horizontal first); ``r`` is the distance
        from it, 1 at the farthest image corner.
    """

    k: tuple[float, float, float, float, float]
    center: tuple[float, float]

    @classmethod
    def from_opcode(cls, op: Opcode) -> VignetteRadial:
        """Decode ``op`` (FixVignetteRadial). Raises :class:`~ispkit.errors.RawFormatError` for a size other
        than 56 bytes, values that are not finite, or a centre outside [0, 1] (the DNG SDK refuses it too)."""
        if op.id != 3:
            raise op.bad("is not a FixVignetteRadial (ID 3)")
        if len(op.data) != _VIGNETTE.size:
            raise op.bad(f"holds {len(op.data)} parameter bytes, expected {_VIGNETTE.size} (k0..k4, cx, cy as doubles)")
        values = _VIGNETTE.unpack(op.data)
        if not all(np.isfinite(values)):
            raise op.bad(f"holds values that are not finite numbers: {list(values)}")
        center = values[5:]
        if not all(0.0 <= c <= 1.0 for c in center):
            raise op.bad(f"its optical centre {list(center)} lies outside the image (relative coordinates in [0, 1])")
        return cls(tuple(values[:5]), (center[1], center[0]))
