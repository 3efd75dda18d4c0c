"""Build TIFF and DNG files byte by byte for the reader's tests (independent of the reader and of tifffile).

A :class:`Page` is an IFD: its tags (code → (TIFF type, values)), its image segments
(already encoded strips or tiles, whose offsets and byte counts the builder fills in)
and its SubIFDs. :func:`build` lays out header, segment data and IFDs in either byte
order; the encoders (:func:`pack_bits`, :func:`ljpeg`, :func:`deflate`,
:func:`difference`) produce segments the way DNG writers do.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

import imagecodecs
import numpy as np

BYTE, ASCII, SHORT, LONG, RATIONAL, UNDEFINED, SSHORT, SLONG, SRATIONAL, FLOAT, DOUBLE = 1, 2, 3, 4, 5, 7, 8, 9, 10, 11, 12
_FORMATS = {BYTE: "B", ASCII: "B", SHORT: "H", LONG: "I", RATIONAL: "I", UNDEFINED: "B", SSHORT: "h", SLONG: "i", SRATIONAL: "i", FLOAT: "f", DOUBLE: "d"}

DNG_VERSION = (50706, BYTE, (1, 4, 0, 0))


@dataclass
class Page:
    """One IFD. ``tags``: code → (type, values); values a sequence of numbers (RATIONALs as
    flat numerator, denominator pairs), a ``str`` for ASCII or ``bytes`` for UNDEFINED."""

    tags: dict[int, tuple[int, object]]
    segments: list[bytes] = field(default_factory=list)
    tiled: bool = False
    subifds: list[Page] = field(default_factory=list)


def build(pages: list[Page], *, byteorder: str = "<") -> bytes:
    """The TIFF file of ``pages`` (IFD0, IFD1, ...): header, segment data, then IFDs (children before parents)."""
    out = bytearray(b"II*\x00\x00\x00\x00\x00" if byteorder == "<" else b"MM\x00*\x00\x00\x00\x00")
    for page in _walk(pages):
        page._offsets = []
        for segment in page.segments:
            page._offsets.append(len(out))
            out += segment
            if len(out) % 2:
                out += b"\x00"
    following = 0
    for page in reversed(pages):
        following = _write_ifd(out, page, following, byteorder)
    struct.pack_into(byteorder + "I", out, 4, following)
    return bytes(out)


def _walk(pages):
    for page in pages:
        yield page
        yield from _walk(page.subifds)


def _write_ifd(out: bytearray, page: Page, following: int, bo: str) -> int:
    tags = dict(page.tags)
    if page.subifds:
        tags[330] = (LONG, [_write_ifd(out, sub, 0, bo) for sub in page.subifds])
    if page.segments:
        offsets_code, counts_code = (324, 325) if page.tiled else (273, 279)
        tags[offsets_code] = (LONG, page._offsets)
        tags[counts_code] = (LONG, [len(s) for s in page.segments])
    if len(out) % 2:
        out += b"\x00"
    start = len(out)
    entries = sorted(tags.items())
    data_at = start + 2 + 12 * len(entries) + 4
    table, extra = bytearray(), bytearray()
    for code, (kind, values) in entries:
        payload = _encode(kind, values, bo)
        count = len(payload) // struct.calcsize(_FORMATS[kind]) // (2 if kind in (RATIONAL, SRATIONAL) else 1)
        if len(payload) <= 4:
            field_bytes = payload.ljust(4, b"\x00")
        else:
            field_bytes = struct.pack(bo + "I", data_at + len(extra))
            extra += payload + (b"\x00" if len(payload) % 2 else b"")
        table += struct.pack(bo + "HHI", code, kind, count) + field_bytes
    out += struct.pack(bo + "H", len(entries)) + table + struct.pack(bo + "I", following) + extra
    return start


def _encode(kind: int, values, bo: str) -> bytes:
    if kind == ASCII:
        return values.encode("ascii") + b"\x00"
    if kind == UNDEFINED and isinstance(values, bytes):
        return values
    values = list(values)
    return struct.pack(bo + _FORMATS[kind] * len(values), *values)


def entry_offset(content: bytes, ifd_offset: int, code: int, byteorder: str = "<") -> int:
    """Byte offset of the value field of tag ``code`` in the IFD at ``ifd_offset`` (for patching)."""
    (n,) = struct.unpack_from(byteorder + "H", content, ifd_offset)
    for i in range(n):
        at = ifd_offset + 2 + 12 * i
        if struct.unpack_from(byteorder + "H", content, at)[0] == code:
            return at + 8
    raise KeyError(code)


def ifd_offsets(content: bytes, byteorder: str = "<") -> list[int]:
    """Offsets of the main chain of IFDs (no loop protection: for files built here)."""
    offsets, at = [], struct.unpack_from(byteorder + "I", content, 4)[0]
    while at:
        offsets.append(at)
        (n,) = struct.unpack_from(byteorder + "H", content, at)
        at = struct.unpack_from(byteorder + "I", content, at + 2 + 12 * n)[0]
    return offsets


# -- segment encoders, written independently of the reader ----------------------------------


def pack_bits(rows: np.ndarray, bits: int) -> bytes:
    """Samples ``(rows, n)`` packed most-significant bit first, each row padded to a whole byte (TIFF/DNG)."""
    rows = np.asarray(rows, dtype=np.uint64)
    shifts = np.arange(bits - 1, -1, -1, dtype=np.uint64)
    bitplane = ((rows[..., None] >> shifts) & np.uint64(1)).astype(np.uint8).reshape(rows.shape[0], -1)
    return np.packbits(bitplane, axis=1).tobytes()


def plain(rows: np.ndarray, bits: int, byteorder: str = "<") -> bytes:
    """Samples as 8, 16 or 32-bit integers of the file's byte order."""
    return np.asarray(rows).astype(f"{byteorder}u{bits // 8}").tobytes()


def difference(rows: np.ndarray, bits: int, distance: int = 1) -> np.ndarray:
    """Horizontal differencing (TIFF Predictor 2 for ``distance`` 1, DNG 34892/34893 for 2/4), modulo 2**bits."""
    rows = np.asarray(rows, dtype=np.int64)
    out = rows.copy()
    out[:, distance:] = rows[:, distance:] - rows[:, :-distance]
    return (out % 2**bits).astype(np.uint64)


def deflate(data: bytes) -> bytes:
    return zlib.compress(data, 6)


def ljpeg(block: np.ndarray, bits: int, components: int = 1) -> bytes:
    """A lossless JPEG of ``block`` ``(rows, cols)``; with ``components=2`` as DNG tiles are
    written: a frame half as wide with two interleaved components."""
    rows, cols = block.shape
    data = np.asarray(block, dtype=np.uint16)
    if components == 1:
        return bytes(imagecodecs.ljpeg_encode(data, bitspersample=bits))
    return bytes(imagecodecs.jpeg8_encode(data.reshape(rows, cols // components, components), lossless=True, bitspersample=bits))


def tiles(image: np.ndarray, size: tuple[int, int]) -> list[np.ndarray]:
    """The tiles of ``image`` in row-major order, zero-padded at the right and bottom edges."""
    th, tw = size
    h, w = image.shape[:2]
    padded = np.zeros((-(-h // th) * th, -(-w // tw) * tw, *image.shape[2:]), image.dtype)
    padded[:h, :w] = image
    return [padded[r : r + th, c : c + tw] for r in range(0, padded.shape[0], th) for c in range(0, padded.shape[1], tw)]


def cfa_page(
    width: int,
    height: int,
    bits: int,
    segments: list[bytes],
    *,
    compression: int = 1,
    extra=None,
    tiled=None,
    rows_per_strip=None,
    subfile=0,
    pattern=(0, 1, 1, 2),
) -> Page:
    """The IFD of a CFA raw image (DNG tags for a 2×2 pattern)."""
    tags = {
        254: (LONG, [subfile]),
        256: (LONG, [width]),
        257: (LONG, [height]),
        258: (SHORT, [bits]),
        259: (SHORT, [compression]),
        262: (SHORT, [32803]),
        277: (SHORT, [1]),
        284: (SHORT, [1]),
        33421: (SHORT, [2, 2]),
        33422: (BYTE, list(pattern)),
    }
    if tiled is not None:
        tags[322], tags[323] = (LONG, [tiled[1]]), (LONG, [tiled[0]])
    else:
        tags[278] = (LONG, [rows_per_strip or height])
    tags.update(extra or {})
    return Page(tags, segments, tiled is not None)


def dng(raw: Page, *, main_tags=None, in_subifd: bool = False, byteorder: str = "<") -> bytes:
    """A DNG: the raw page as IFD0, or as a SubIFD behind a small RGB preview IFD0."""
    main = {50706: (BYTE, [1, 4, 0, 0])}
    main.update(main_tags or {})
    if not in_subifd:
        raw.tags.update(main)
        return build([raw], byteorder=byteorder)
    preview = np.zeros((2, 2, 3), np.uint8)
    page = Page(
        {
            254: (LONG, [1]),
            256: (LONG, [2]),
            257: (LONG, [2]),
            258: (SHORT, [8, 8, 8]),
            259: (SHORT, [1]),
            262: (SHORT, [2]),
            277: (SHORT, [3]),
            278: (LONG, [2]),
            **main,
        },
        [preview.tobytes()],
        subifds=[raw],
    )
    return build([page], byteorder=byteorder)


def opcode(code: int, params: bytes, *, flags: int = 1, version: bytes = b"\x01\x03\x00\x00") -> bytes:
    """One DNG opcode (chapter 7), big-endian whatever the file's byte order: ID, version, flags, parameter byte count, parameters."""
    return struct.pack(">I", code) + version + struct.pack(">II", flags, len(params)) + params


def opcode_list(*opcodes: bytes) -> bytes:
    """An OpcodeList1/2/3 tag value: the count, then the opcodes."""
    return struct.pack(">I", len(opcodes)) + b"".join(opcodes)


def gain_map_params(gains: np.ndarray, *, area=(0, 0, 8, 8), plane=0, planes=1, pitch=(1, 1), spacing=(0.5, 0.5), origin=(0.0, 0.0)) -> bytes:
    """GainMap (ID 9) parameters: area, plane(s), pitches, map size, spacing and origin (vertical, horizontal), map planes, float32 gains."""
    points_v, points_h, map_planes = gains.shape
    head = struct.pack(">10I", *area, plane, planes, *pitch, points_v, points_h)
    geometry = struct.pack(">4dI", *spacing, *origin, map_planes)
    return head + geometry + np.asarray(gains).astype(">f4").tobytes()


def vignette_params(k=(0.1, 0.2, 0.0, 0.0, -0.01), cx=0.5, cy=0.25) -> bytes:
    """FixVignetteRadial (ID 3) parameters: k0..k4 and the optical centre cx, cy (doubles)."""
    return struct.pack(">7d", *k, cx, cy)
