"""TIFF structure: a bounded, cycle-safe reader of IFDs and tags (classic TIFF, BigTIFF, DNG).

:func:`read_tiff` parses the header, the chain of IFDs and their SubIFDs of a TIFF or
DNG held in memory, and returns a :class:`TiffStructure` whose :class:`Ifd` s map tag
codes to decoded :class:`Tag` s. Nothing is decoded lazily, so the structure can be
kept (e.g. by :class:`~ispkit.io.RawImage`) after the file is closed. Every problem is a
:class:`~ispkit.errors.RawFormatError` naming the file.

Bounds (a crafted file cannot make the reader loop or allocate without limit):

- at most :data:`MAX_IFDS` IFDs in all, each visited once: a next-IFD or SubIFD pointer
  back to an IFD already read is an error (an IFD loop), SubIFDs at most
  :data:`MAX_SUBIFD_DEPTH` levels deep;
- at most :data:`MAX_ENTRIES` entries per IFD;
- every tag value lies inside the file, and all out-of-line values together occupy no
  more bytes than the file has (values of legitimate files never overlap; a file that
  points thousands of tags at the same megabyte is refused rather than copied);
- large opaque blobs (:data:`UNLOADED`: maker notes, XMP, ICC profiles, embedded
  original raw files) are not copied: their :attr:`Tag.value` is ``None`` and
  :attr:`Tag.offset` says where they are.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import struct
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, overload

import numpy as np

from ..errors import RawFormatError

__all__ = [
    "MAX_IFDS",
    "MAX_SUBIFD_DEPTH",
    "MAX_ENTRIES",
    "UNLOADED",
    "TAG_NAMES",
    "Tag",
    "Ifd",
    "TiffStructure",
    "read_tiff",
    "open_tiff",
]

MAX_IFDS = 64
"""Most IFDs (pages and SubIFDs together) one file may hold; raw files have a handful."""

MAX_SUBIFD_DEPTH = 2
"""SubIFDs of SubIFDs are followed this deep (DNG uses one level)."""

MAX_ENTRIES = 4096
"""Most entries one IFD may hold; a DNG's IFD0 has about a hundred."""

UNLOADED = frozenset({700, 33723, 34377, 34675, 37500, 50740, 50817, 50831})
"""Tags whose values are opaque blobs that ispkit never reads and does not copy: XMP,
IPTC, Photoshop, ICC profile, MakerNote, DNGPrivateData, OriginalRawFileData and
AsShotICCProfile."""

TAG_NAMES: Mapping[int, str] = MappingProxyType(
    {
        254: "NewSubFileType",
        256: "ImageWidth",
        257: "ImageLength",
        258: "BitsPerSample",
        259: "Compression",
        262: "PhotometricInterpretation",
        266: "FillOrder",
        270: "ImageDescription",
        271: "Make",
        272: "Model",
        273: "StripOffsets",
        277: "SamplesPerPixel",
        278: "RowsPerStrip",
        279: "StripByteCounts",
        284: "PlanarConfiguration",
        305: "Software",
        317: "Predictor",
        322: "TileWidth",
        323: "TileLength",
        324: "TileOffsets",
        325: "TileByteCounts",
        330: "SubIFDs",
        339: "SampleFormat",
        33421: "CFARepeatPatternDim",
        33422: "CFAPattern",
        34665: "ExifIFD",
        50706: "DNGVersion",
        50707: "DNGBackwardVersion",
        50708: "UniqueCameraModel",
        50710: "CFAPlaneColor",
        50711: "CFALayout",
        50712: "LinearizationTable",
        50713: "BlackLevelRepeatDim",
        50714: "BlackLevel",
        50715: "BlackLevelDeltaH",
        50716: "BlackLevelDeltaV",
        50717: "WhiteLevel",
        50718: "DefaultScale",
        50719: "DefaultCropOrigin",
        50720: "DefaultCropSize",
        50721: "ColorMatrix1",
        50722: "ColorMatrix2",
        50723: "CameraCalibration1",
        50724: "CameraCalibration2",
        50727: "AnalogBalance",
        50728: "AsShotNeutral",
        50729: "AsShotWhiteXY",
        50730: "BaselineExposure",
        50731: "BaselineNoise",
        50778: "CalibrationIlluminant1",
        50779: "CalibrationIlluminant2",
        50725: "ReductionMatrix1",
        50726: "ReductionMatrix2",
        50732: "BaselineSharpness",
        50733: "BayerGreenSplit",
        50734: "LinearResponseLimit",
        50735: "CameraSerialNumber",
        50739: "ShadowScale",
        50829: "ActiveArea",
        50830: "MaskedAreas",
        50931: "CameraCalibrationSignature",
        50932: "ProfileCalibrationSignature",
        50933: "ExtraCameraProfiles",
        50934: "AsShotProfileName",
        50936: "ProfileName",
        50937: "ProfileHueSatMapDims",
        50938: "ProfileHueSatMapData1",
        50939: "ProfileHueSatMapData2",
        50940: "ProfileToneCurve",
        50964: "ForwardMatrix1",
        50965: "ForwardMatrix2",
        50981: "ProfileLookTableDims",
        50982: "ProfileLookTableData",
        51008: "OpcodeList1",
        51009: "OpcodeList2",
        51022: "OpcodeList3",
        51041: "NoiseProfile",
        51110: "DefaultBlackRender",
        51125: "DefaultUserCrop",
        52529: "CalibrationIlluminant3",
        52530: "CameraCalibration3",
        52531: "ColorMatrix3",
        52532: "ForwardMatrix3",
        52533: "IlluminantData1",
        52534: "IlluminantData2",
        52535: "IlluminantData3",
    }
)
"""Names of the tags ispkit reads or reports (TIFF 6.0, TIFF/EP, DNG 1.6)."""

# TIFF field types: numpy dtype (without byte order) of one value; RATIONALs are pairs.
_TYPES: dict[int, str] = {
    1: "u1",  # BYTE
    2: "u1",  # ASCII
    3: "u2",  # SHORT
    4: "u4",  # LONG
    5: "u4",  # RATIONAL (numerator, denominator)
    6: "i1",  # SBYTE
    7: "u1",  # UNDEFINED
    8: "i2",  # SSHORT
    9: "i4",  # SLONG
    10: "i4",  # SRATIONAL
    11: "f4",  # FLOAT
    12: "f8",  # DOUBLE
    13: "u4",  # IFD
    16: "u8",  # LONG8 (BigTIFF)
    17: "i8",  # SLONG8
    18: "u8",  # IFD8
}
_RATIONALS = frozenset({5, 10})
_ASCII, _UNDEFINED = 2, 7
_SUBIFDS = 330


def _type_size(kind: int) -> int:
    return np.dtype(_TYPES[kind]).itemsize * (2 if kind in _RATIONALS else 1)


@dataclass(frozen=True)
class Tag:
    """One decoded TIFF tag.

    Parameters
    ----------
    code
        The tag number (see :data:`TAG_NAMES`).
    type
        The TIFF field type (1 BYTE, 2 ASCII, 3 SHORT, 4 LONG, 5 RATIONAL, 7 UNDEFINED,
        10 SRATIONAL, 11 FLOAT, 12 DOUBLE, ...).
    count
        Number of values.
    value
        ``str`` for ASCII (trailing NULs removed), ``bytes`` for UNDEFINED (e.g. the DNG
        opcode lists, to be parsed big-endian as the DNG specification says), a read-only
        numpy array in native byte order for numbers (RATIONALs as ``(count, 2)`` pairs of
        numerator and denominator), or ``None`` for an :data:`UNLOADED` blob.
    offset
        Byte offset of the value in the file.
    source
        The file, for error messages.
    """

    code: int
    type: int
    count: int
    value: np.ndarray | str | bytes | None
    offset: int
    source: str = ""

    @property
    def name(self) -> str:
        """The tag's name, e.g. ``"ColorMatrix1"`` (``"Tag 12345"`` for unknown codes)."""
        return TAG_NAMES.get(self.code, f"Tag {self.code}")

    def _bad(self, problem: str) -> RawFormatError:
        return RawFormatError(f"{self.source}: tag {self.name} ({self.code}) {problem}")

    def numbers(self) -> np.ndarray:
        """The values as a 1-D float64 array, rationals divided out.

        Raises :class:`~ispkit.errors.RawFormatError` for text, blobs, a zero
        denominator or a value that is not finite.
        """
        if isinstance(self.value, str) or self.value is None:
            raise self._bad(f"holds {'text' if isinstance(self.value, str) else 'an opaque blob'}, expected numbers")
        if isinstance(self.value, bytes):
            return np.frombuffer(self.value, np.uint8).astype(np.float64)
        if self.type in _RATIONALS:
            numerators, denominators = self.value[:, 0].astype(np.float64), self.value[:, 1].astype(np.float64)
            if np.any(denominators == 0):
                raise self._bad(f"holds a rational with denominator 0: {self.value.tolist()}")
            values = numerators / denominators
        else:
            values = self.value.astype(np.float64)
        if not np.all(np.isfinite(values)):
            raise self._bad(f"holds a value that is not finite: {values.tolist()}")
        return values

    def integers(self) -> np.ndarray:
        """The values as a 1-D int64 array; only for integer types (BYTE, SHORT, LONG, ...).

        Raises :class:`~ispkit.errors.RawFormatError` for any other type.
        """
        if not isinstance(self.value, np.ndarray) or self.value.dtype.kind not in "ui" or self.type in _RATIONALS:
            raise self._bad(f"has TIFF type {self.type}, expected integers (BYTE, SHORT or LONG)")
        if self.value.dtype == np.uint64 and self.value.size and int(self.value.max()) > 2**62:
            raise self._bad(f"holds an integer beyond 2**62: {int(self.value.max())}")
        return self.value.astype(np.int64)

    def text(self) -> str:
        """The value of an ASCII tag (UTF-8, undecodable bytes replaced)."""
        if not isinstance(self.value, str):
            raise self._bad(f"has TIFF type {self.type}, expected text (ASCII)")
        return self.value


@dataclass(frozen=True)
class Ifd:
    """One image file directory: its tags and its SubIFDs.

    Parameters
    ----------
    offset
        Byte offset of the IFD in the file (its identity).
    tags
        Tag code → :class:`Tag`, the first entry of each code (duplicates are ignored).
    subifds
        The IFDs listed in its SubIFDs tag (330), parsed.
    source
        The file, for error messages.
    """

    offset: int
    tags: Mapping[int, Tag]
    subifds: tuple[Ifd, ...] = ()
    source: str = ""

    def __contains__(self, code: object) -> bool:
        return code in self.tags

    def get(self, code: int) -> Tag | None:
        """The tag ``code`` or ``None``."""
        return self.tags.get(code)

    def numbers(self, code: int, *, count: int | tuple[int, ...] | None = None) -> np.ndarray | None:
        """Tag ``code`` as float64 values (see :meth:`Tag.numbers`), or ``None`` if absent.

        ``count`` (one number or the allowed numbers) is checked when given.
        """
        tag = self.tags.get(code)
        if tag is None:
            return None
        values = tag.numbers()
        allowed = (count,) if isinstance(count, int) else count
        if allowed is not None and values.size not in allowed:
            raise tag._bad(f"holds {values.size} value(s), expected {' or '.join(map(str, allowed))}")
        return values

    @overload
    def integer(self, code: int, default: int) -> int: ...

    @overload
    def integer(self, code: int, default: None = None) -> int | None: ...

    def integer(self, code: int, default: int | None = None) -> int | None:
        """The single integer value of tag ``code`` (all values must agree, as for BitsPerSample), or ``default``."""
        tag = self.tags.get(code)
        if tag is None:
            return default
        values = tag.integers()
        if values.size == 0 or np.any(values != values[0]):
            raise tag._bad(f"must hold one value (or equal values), got {values.tolist()}")
        return int(values[0])


@dataclass(frozen=True)
class TiffStructure:
    """The parsed structure of a TIFF file.

    Parameters
    ----------
    path
        The file.
    byteorder
        ``"<"`` (``II``, little-endian) or ``">"`` (``MM``, big-endian).
    bigtiff
        Whether the file is a BigTIFF (64-bit offsets).
    size
        The file's size in bytes.
    pages
        The main chain of IFDs (IFD0, IFD1, ...), each with its SubIFDs.
    """

    path: Path
    byteorder: str
    bigtiff: bool
    size: int
    pages: tuple[Ifd, ...] = field(default=())

    @property
    def header_size(self) -> int:
        """Bytes of the header; no IFD or image data may start inside it."""
        return 16 if self.bigtiff else 8

    def walk(self) -> Iterator[Ifd]:
        """Every IFD, depth first: IFD0, its SubIFDs (and theirs), IFD1, ..."""

        def visit(ifd: Ifd) -> Iterator[Ifd]:
            yield ifd
            for sub in ifd.subifds:
                yield from visit(sub)

        for page in self.pages:
            yield from visit(page)


@contextlib.contextmanager
def open_tiff(path: Path) -> Iterator[tuple[TiffStructure, Any]]:
    """Map the file ``path`` into memory and parse it: yields ``(structure, content)``.

    ``content`` (bytes-like, valid inside the ``with`` block only) is what
    :func:`~ispkit.io.decode.decode_image` decodes pixels from. Raises
    :class:`FileNotFoundError` / :class:`PermissionError` / :class:`IsADirectoryError`
    as :func:`open` does, and :class:`~ispkit.errors.RawFormatError` for anything that
    is not a TIFF.
    """
    with open(path, "rb") as handle:
        if os.fstat(handle.fileno()).st_size == 0:
            raise RawFormatError(f"{path}: not a readable TIFF or DNG file (the file is empty)")
        try:
            content: Any = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError):  # a file system or special file without mmap
            content = handle.read()
        try:
            yield read_tiff(content, path), content
        finally:
            if isinstance(content, mmap.mmap):
                content.close()


def read_tiff(data: Any, path: Path) -> TiffStructure:
    """Parse the TIFF held in ``data`` (bytes, mmap or memoryview) read from ``path``.

    Raises :class:`~ispkit.errors.RawFormatError` naming ``path`` when the data is not a
    TIFF, is truncated inside an IFD, or breaks one of the bounds of this module.
    """
    return _Parser(data, path).parse()


class _Parser:
    """One pass over the IFDs of a file, with the bounds of the module docstring."""

    def __init__(self, data: Any, path: Path) -> None:
        self.data = data
        self.path = path
        self.size = len(data)
        self.visited: set[int] = set()
        self.loaded = 0  # bytes of out-of-line tag values copied so far

    def error(self, problem: str) -> RawFormatError:
        return RawFormatError(f"{self.path}: {problem}")

    def parse(self) -> TiffStructure:
        head = bytes(self.data[:16])
        if len(head) < 8 or head[:2] not in (b"II", b"MM"):
            raise self.error(f"not a readable TIFF or DNG file (not a TIFF file: it starts with {head[:8]!r}, expected b'II*\\x00' or b'MM\\x00*')")
        self.order: Literal["<", ">"] = "<" if head[:2] == b"II" else ">"
        magic = struct.unpack(self.order + "H", head[2:4])[0]
        if magic == 42:
            self.bigtiff, first = False, struct.unpack(self.order + "I", head[4:8])[0]
        elif magic == 43 and len(head) == 16 and struct.unpack(self.order + "HH", head[4:8]) == (8, 0):
            self.bigtiff, first = True, struct.unpack(self.order + "Q", head[8:16])[0]
        else:
            raise self.error(f"not a readable TIFF or DNG file (not a TIFF file: version {magic}, expected 42 or BigTIFF's 43)")
        self.header = 16 if self.bigtiff else 8
        pages: list[Ifd] = []
        offset = first
        while offset:
            ifd, offset = self.ifd(offset, depth=0, what="IFD" if not pages else f"IFD{len(pages)}")
            pages.append(ifd)
        if not pages:
            raise self.error("the TIFF holds no IFD (its first IFD offset is 0)")
        return TiffStructure(self.path, self.order, self.bigtiff, self.size, tuple(pages))

    def ifd(self, offset: int, depth: int, what: str) -> tuple[Ifd, int]:
        """The IFD at ``offset`` and the offset of the next one in its chain."""
        if offset in self.visited:
            raise self.error(f"{what} at offset {offset} was already read: the IFD pointers form a loop (a corrupt or crafted file)")
        if len(self.visited) >= MAX_IFDS:
            raise self.error(f"the file holds more than {MAX_IFDS} IFDs (pages and SubIFDs); a raw file has a handful")
        if not self.header <= offset < self.size:
            raise self.error(f"{what} offset {offset} lies outside the file ({self.size} bytes) or inside its header")
        self.visited.add(offset)
        count_format, entry_size, offset_format = ("Q", 20, "Q") if self.bigtiff else ("H", 12, "I")
        count_size = struct.calcsize(count_format)
        n = self.unpack(count_format, offset, count_size, f"{what} at offset {offset}")
        if not 1 <= n <= MAX_ENTRIES:
            raise self.error(f"{what} at offset {offset} claims {n} entries; expected 1 to {MAX_ENTRIES}")
        start = offset + count_size
        end = start + n * entry_size
        pointer_size = struct.calcsize(offset_format)
        if end + pointer_size > self.size:
            raise self.error(f"{what} at offset {offset} with {n} entries runs past the end of the file ({self.size} bytes): truncated")
        tags: dict[int, Tag] = {}
        for i in range(n):
            tag = self.entry(start + i * entry_size)
            if tag is not None and tag.code not in tags:
                tags[tag.code] = tag
        following = self.unpack(offset_format, end, pointer_size, what)
        subifds = self.subifds(tags, depth, what)
        return Ifd(offset, MappingProxyType(tags), subifds, str(self.path)), following

    def subifds(self, tags: dict[int, Tag], depth: int, what: str) -> tuple[Ifd, ...]:
        tag = tags.get(_SUBIFDS)
        if tag is None or depth >= MAX_SUBIFD_DEPTH:
            return ()
        offsets = tag.integers() if isinstance(tag.value, np.ndarray) else np.zeros(0, np.int64)
        return tuple(self.ifd(int(o), depth + 1, f"SubIFD {i} of {what}")[0] for i, o in enumerate(offsets))

    def entry(self, where: int) -> Tag | None:
        """The tag of the IFD entry at byte ``where``; ``None`` for an unknown field type (TIFF: ignore it)."""
        if self.bigtiff:
            code, kind, count = struct.unpack_from(self.order + "HHQ", self.data, where)
            inline, value_at = 8, where + 12
        else:
            code, kind, count = struct.unpack_from(self.order + "HHI", self.data, where)
            inline, value_at = 4, where + 8
        if kind not in _TYPES:
            return None
        nbytes = count * _type_size(kind)
        if nbytes > inline:
            value_at = struct.unpack_from(self.order + ("Q" if self.bigtiff else "I"), self.data, value_at)[0]
            name = TAG_NAMES.get(code, f"tag {code}")
            if value_at < self.header or value_at + nbytes > self.size:
                raise self.error(
                    f"{name} ({code}): its {count} value(s) at bytes {value_at}..{value_at + nbytes} lie outside the "
                    f"file ({self.size} bytes) or inside its header: truncated or corrupt"
                )
            if code in UNLOADED:
                return Tag(code, kind, count, None, value_at, str(self.path))
            self.loaded += nbytes
            if self.loaded > self.size:
                raise self.error(
                    f"{name} ({code}): the tag values read so far ({self.loaded} bytes) exceed the file's size "
                    f"({self.size} bytes): tags share their data, which no valid file does (a crafted file)"
                )
        raw = bytes(self.data[value_at : value_at + nbytes])
        return Tag(code, kind, count, self.value(kind, count, raw), value_at, str(self.path))

    def value(self, kind: int, count: int, raw: bytes) -> np.ndarray | str | bytes:
        if kind == _ASCII:
            return raw.split(b"\x00", 1)[0].decode("utf-8", errors="replace") if b"\x00" in raw else raw.decode("utf-8", errors="replace")
        if kind == _UNDEFINED:
            return raw
        dtype = np.dtype(_TYPES[kind]).newbyteorder(self.order)
        array = np.frombuffer(raw, dtype).astype(dtype.newbyteorder("="))
        if kind in _RATIONALS:
            array = array.reshape(count, 2)
        array.setflags(write=False)
        return array

    def unpack(self, fmt: str, where: int, size: int, what: str) -> int:
        if where + size > self.size:
            raise self.error(f"{what}: the file ends at byte {self.size}, inside the IFD (truncated)")
        return struct.unpack_from(self.order + fmt, self.data, where)[0]
