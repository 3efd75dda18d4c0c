"""The pixel data of a TIFF/DNG image: checked layout, then decoding of its strips or tiles.

:func:`image_layout` reads and checks everything an IFD says about its image *before*
any pixel is decoded: size against the pixel limit (:func:`max_pixels`), sample type,
compression, predictor, strip or tile geometry, and each segment's byte range and byte
count against the declared image (exactly, for uncompressed data). :func:`decode_image`
then decodes segment by segment, each into a buffer of the declared size, so that a
decompressor can never produce more than the image holds.

Supported: uncompressed, deflate (8, 32946), LZW (5), PackBits (32773) and lossless
JPEG (7, SOF3, as DNG uses it, including the two-component frames of DNG tiles);
1- to 32-bit unsigned samples, packed most-significant bit first as TIFF and DNG
specify for widths other than 8, 16 and 32 (in either byte order); strips and tiles;
chunky or planar samples; horizontal differencing (Predictor 2, and 34892/34893 of DNG
1.5). Decoding uses ``imagecodecs`` (and :mod:`zlib`).
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import imagecodecs
import numpy as np

from ..errors import ConfigError, RawFormatError
from .tiff import Ifd, TiffStructure

__all__ = ["MAX_PIXELS", "MAX_PIXELS_ENV", "COMPRESSIONS", "max_pixels", "ImageLayout", "image_layout", "decode_image"]

MAX_PIXELS = 250_000_000
"""Default limit on the samples of one image (width × height × samples per pixel), checked
before decoding: room for 200-megapixel sensors. The float64 mosaic of such an image takes
2 GB; override with the ``max_pixels`` argument of :func:`~ispkit.io.read_raw` or the
environment variable :data:`MAX_PIXELS_ENV`."""

MAX_PIXELS_ENV = "ISPKIT_MAX_PIXELS"
"""Environment variable that overrides :data:`MAX_PIXELS` (a positive integer)."""

COMPRESSIONS: Mapping[int, str] = MappingProxyType(
    {
        1: "uncompressed",
        2: "CCITT RLE",
        3: "CCITT fax 3",
        4: "CCITT fax 4",
        5: "LZW",
        6: "old-style JPEG",
        7: "JPEG",
        8: "deflate",
        9: "VC-5 (GoPro GPR)",
        32773: "PackBits",
        32946: "deflate (old code)",
        34661: "JBIG",
        34712: "JPEG 2000",
        34892: "lossy JPEG (DNG 1.4)",
        34925: "LZMA",
        50000: "Zstandard",
        50001: "WebP",
        52546: "JPEG XL (DNG 1.7)",
    }
)
"""Names of TIFF/DNG compression codes, for messages."""

_SUPPORTED = frozenset({1, 5, 7, 8, 32773, 32946})
_PREDICTOR_DISTANCE = {1: 0, 2: 1, 34892: 2, 34893: 4}  # none, horizontal, DNG horizontal ×2, ×4
_SAMPLE_FORMATS = {1: "unsigned integer", 2: "signed integer", 3: "floating-point (IEEEFP)", 4: "undefined"}

# Tag codes.
_WIDTH, _LENGTH, _BITS, _COMPRESSION = 256, 257, 258, 259
_FILL_ORDER, _STRIP_OFFSETS, _SAMPLES, _ROWS_PER_STRIP, _STRIP_COUNTS = 266, 273, 277, 278, 279
_PLANAR, _PREDICTOR, _TILE_WIDTH, _TILE_LENGTH, _TILE_OFFSETS, _TILE_COUNTS = 284, 317, 322, 323, 324, 325
_SAMPLE_FORMAT = 339


def max_pixels(value: int | None = None) -> int:
    """The pixel limit in force: ``value`` if given, else :data:`MAX_PIXELS_ENV`, else :data:`MAX_PIXELS`.

    Raises :class:`~ispkit.errors.ConfigError` for a limit that is not a positive integer.

    >>> max_pixels(1000)
    1000
    """
    if value is None:
        text = os.environ.get(MAX_PIXELS_ENV)
        if text is None:
            return MAX_PIXELS
        try:
            value = int(text.replace("_", ""))
        except ValueError:
            raise ConfigError(f"{MAX_PIXELS_ENV}={text!r}: expected a positive integer (pixels)") from None
        if value < 1:
            raise ConfigError(f"{MAX_PIXELS_ENV}={text!r}: expected a positive integer (pixels)")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ConfigError(f"max_pixels={value!r}: expected a positive integer (pixels)")
    return int(value)


@dataclass(frozen=True)
class ImageLayout:
    """What an IFD declares about its image, checked against the file.

    Parameters
    ----------
    width, height, samples
        Image size and samples per pixel.
    bits
        Bits per sample (1 to 32).
    compression, predictor
        TIFF codes (:data:`COMPRESSIONS`; predictor 1 = none).
    planar
        Whether the samples are stored in separate planes (PlanarConfiguration 2).
    segment_width, segment_height
        Tile size, or (width, RowsPerStrip) for strips.
    tiled
        Tiles rather than strips.
    offsets, counts
        Byte offset and byte count of each segment, in the file's order (plane by plane,
        then row by row of segments).
    """

    width: int
    height: int
    samples: int
    bits: int
    compression: int
    predictor: int
    planar: bool
    segment_width: int
    segment_height: int
    tiled: bool
    offsets: np.ndarray
    counts: np.ndarray

    @property
    def dtype(self) -> np.dtype:
        """The smallest unsigned type that holds a sample: uint8, uint16 or uint32."""
        return np.dtype(np.uint8 if self.bits <= 8 else np.uint16 if self.bits <= 16 else np.uint32)

    @property
    def across(self) -> int:
        """Segments per row of segments."""
        return -(-self.width // self.segment_width)

    @property
    def down(self) -> int:
        """Rows of segments per plane."""
        return -(-self.height // self.segment_height)

    def segment(self, index: int) -> tuple[int, int, int, int, int]:
        """``(plane, top, left, rows, columns)`` of segment ``index``; rows and columns as stored
        (a full tile even at the image's edge; a strip's own rows)."""
        per_plane = self.across * self.down
        plane, rest = divmod(index, per_plane)
        row, column = divmod(rest, self.across)
        top, left = row * self.segment_height, column * self.segment_width
        rows = self.segment_height if self.tiled else min(self.segment_height, self.height - top)
        return plane, top, left, rows, self.segment_width

    def row_bytes(self, columns: int) -> int:
        """Bytes of one stored row of ``columns`` pixels (rows start on a byte boundary)."""
        per_pixel = 1 if self.planar else self.samples
        return -(-columns * per_pixel * self.bits // 8)


def image_layout(structure: TiffStructure, ifd: Ifd, *, limit: int, what: str = "the image") -> ImageLayout:
    """Read and check the image layout of ``ifd`` (see the module docstring), decoding nothing.

    Raises :class:`~ispkit.errors.RawFormatError` naming the file and the problem.
    """
    path = structure.path

    def bad(problem: str) -> RawFormatError:
        return RawFormatError(f"{path}: {what}: {problem}")

    width, height = ifd.integer(_WIDTH), ifd.integer(_LENGTH)
    if width is None or height is None:
        raise bad("no ImageWidth/ImageLength tags")
    samples = ifd.integer(_SAMPLES, 1)
    if width < 1 or height < 1 or samples < 1:
        raise bad(f"declares an empty image: {width}×{height} with {samples} sample(s) per pixel")
    if width * height * samples > limit:
        raise bad(
            f"declares {width}×{height} pixels × {samples} sample(s) = {width * height * samples:,} samples, more than "
            f"the limit of {limit:,} (a corrupt header, or raise the limit: read_raw(..., max_pixels=N) or {MAX_PIXELS_ENV})"
        )
    bits = _bits(ifd, samples, bad)
    sample_format = ifd.integer(_SAMPLE_FORMAT, 1)
    if sample_format != 1:
        raise bad(
            f"expected unsigned integer samples (1 to 32 bits), found {bits}-bit {_SAMPLE_FORMATS.get(sample_format, f'SampleFormat {sample_format}')} samples"
        )
    compression = ifd.integer(_COMPRESSION, 1)
    if compression not in _SUPPORTED:
        raise bad(
            f"compression {compression} ({COMPRESSIONS.get(compression, 'unknown')}) is not supported; ispkit reads "
            "uncompressed, deflate, LZW, PackBits and lossless JPEG data"
        )
    predictor = ifd.integer(_PREDICTOR, 1)
    if compression == 7:
        predictor = 1  # lossless JPEG predicts inside the stream; the TIFF predictor does not apply
    if predictor not in _PREDICTOR_DISTANCE:
        raise bad(f"Predictor {predictor} is not supported (expected 1 = none, 2, 34892 or 34893 = horizontal differencing)")
    if ifd.integer(_FILL_ORDER, 1) != 1:
        raise bad("FillOrder 2 (least significant bit first) is not supported")
    planar = ifd.integer(_PLANAR, 1)
    if planar not in (1, 2):
        raise bad(f"PlanarConfiguration {planar}: expected 1 (chunky) or 2 (planar)")
    planar_split = planar == 2 and samples > 1
    layout = _segments(ifd, width, height, samples, bits, compression, predictor, planar_split, limit, bad)
    _check_ranges(structure, layout, bad)
    return layout


def _bits(ifd: Ifd, samples: int, bad) -> int:
    tag = ifd.get(_BITS)
    values = [1] if tag is None else tag.integers().tolist()
    if len(values) not in (1, samples) or len(set(values)) != 1:
        raise bad(f"BitsPerSample {values}: expected one width shared by the {samples} sample(s)")
    bits = values[0]
    if not 1 <= bits <= 32:
        raise bad(f"BitsPerSample {bits}: expected unsigned integer samples of 1 to 32 bits")
    return bits


def _segments(ifd: Ifd, width, height, samples, bits, compression, predictor, planar, limit, bad) -> ImageLayout:
    tiled = _TILE_WIDTH in ifd or _TILE_LENGTH in ifd or _TILE_OFFSETS in ifd
    if tiled:
        seg_w, seg_h = ifd.integer(_TILE_WIDTH), ifd.integer(_TILE_LENGTH)
        if seg_w is None or seg_h is None or seg_w < 1 or seg_h < 1:
            raise bad(f"a tiled image needs positive TileWidth and TileLength, got {seg_w}×{seg_h}")
        offsets_code, counts_code, kind = _TILE_OFFSETS, _TILE_COUNTS, "tile"
    else:
        seg_w, seg_h = width, min(ifd.integer(_ROWS_PER_STRIP, height), height)
        if seg_h < 1:
            raise bad(f"RowsPerStrip {seg_h}: expected a positive number")
        offsets_code, counts_code, kind = _STRIP_OFFSETS, _STRIP_COUNTS, "strip"
    planes = samples if planar else 1
    expected = -(-width // seg_w) * -(-height // seg_h) * planes
    if tiled and expected * seg_w * seg_h * (1 if planar else samples) > 2 * limit:
        raise bad(f"{expected} tiles of {seg_w}×{seg_h} pixels hold far more than the {width}×{height} image (corrupt TileWidth/TileLength?)")
    offset_tag, count_tag = ifd.get(offsets_code), ifd.get(counts_code)
    if offset_tag is None or count_tag is None:
        raise bad(f"no {kind} offsets or byte counts: the image data are missing")
    offsets, counts = offset_tag.integers(), count_tag.integers()
    if offsets.size != expected or counts.size != expected:
        raise bad(
            f"{offsets.size} {kind} offsets and {counts.size} byte counts, but a {width}×{height} image in "
            f"{seg_w}×{seg_h} {kind}s{' per plane' if planar else ''} has {expected}"
        )
    return ImageLayout(width, height, samples, bits, compression, predictor, planar, seg_w, seg_h, tiled, offsets, counts)


def _check_ranges(structure: TiffStructure, layout: ImageLayout, bad) -> None:
    """Every segment lies in the file, after the header, is not empty and (uncompressed) has exactly its size."""
    kind = "tile" if layout.tiled else "strip"
    if np.any(layout.counts <= 0):
        raise bad(f"the raw page has missing image data (empty {kind}s: byte count 0)")
    if np.any(layout.offsets < structure.header_size):
        first = int(np.argmax(layout.offsets < structure.header_size))
        raise bad(f"{kind} {first} starts at byte {int(layout.offsets[first])}, inside the TIFF header (a corrupt {kind} offset)")
    ends = layout.offsets + layout.counts
    end = int(ends.max())
    if end > structure.size:
        raise bad(f"the file is truncated: its image data run to byte {end}, but it has {structure.size} bytes")
    if layout.compression != 1:
        return
    for index, count in enumerate(layout.counts.tolist()):
        allowed = _allowed_bytes(layout, index)
        if count not in allowed:
            _, _, _, rows, columns = layout.segment(index)
            raise bad(
                f"its uncompressed {kind} {index} holds {count} bytes, but {rows}×{columns} pixels of "
                f"{layout.bits}-bit samples need {allowed[0]} (a corrupt header: wrong size, BitsPerSample or Compression?)"
            )


def _allowed_bytes(layout: ImageLayout, index: int) -> tuple[int, ...]:
    """Decoded byte sizes accepted for a segment: its own size, and for a short last strip also a full strip."""
    _, _, _, rows, columns = layout.segment(index)
    own = rows * layout.row_bytes(columns)
    full = layout.segment_height * layout.row_bytes(columns)
    return (own,) if own == full else (own, full)


def decode_image(data, structure: TiffStructure, layout: ImageLayout, *, what: str = "the image") -> np.ndarray:
    """Decode the image of ``layout`` from the file content ``data``.

    Returns ``(height, width)`` for one sample per pixel, else ``(height, width, samples)``,
    of :attr:`ImageLayout.dtype`, native byte order. Raises
    :class:`~ispkit.errors.RawFormatError` naming the segment when one does not decode
    to exactly its declared size.
    """
    out = np.empty((layout.height, layout.width, layout.samples), layout.dtype)
    per_segment = 1 if layout.planar else layout.samples
    for index, (offset, count) in enumerate(zip(layout.offsets.tolist(), layout.counts.tolist(), strict=True)):
        plane, top, left, rows, columns = layout.segment(index)
        where = f"{'tile' if layout.tiled else 'strip'} {index}"
        try:
            block = _decode_segment(data[offset : offset + count], structure, layout, index, rows, columns, per_segment)
        except RawFormatError as exc:
            raise RawFormatError(f"{structure.path}: {what}: {where}: {exc}") from None
        except (ValueError, RuntimeError, OverflowError, MemoryError, zlib.error) as exc:  # imagecodecs' errors are RuntimeErrors
            raise RawFormatError(
                f"{structure.path}: {what}: {where} does not decode as {COMPRESSIONS[layout.compression]} data ({type(exc).__name__}: {exc})"
            ) from None
        block = block.reshape(-1, columns, per_segment)[: layout.height - top, : layout.width - left]
        channels = slice(plane, plane + 1) if layout.planar else slice(None)
        out[top : top + block.shape[0], left : left + block.shape[1], channels] = block
    return out[..., 0] if layout.samples == 1 else out


def _decode_segment(raw, structure: TiffStructure, layout: ImageLayout, index: int, rows: int, columns: int, per_pixel: int) -> np.ndarray:
    """One segment as a ``(rows', columns · per_pixel)`` array of samples (rows' may be a full strip)."""
    allowed = _allowed_bytes(layout, index)
    if layout.compression == 7:
        row_bytes = layout.row_bytes(columns)
        return _lossless_jpeg(bytes(raw), [size // row_bytes for size in allowed], columns * per_pixel, layout.bits)
    content = _bytes(raw, layout.compression, max(allowed))
    if len(content) not in allowed:
        raise RawFormatError(
            f"decodes to {len(content)} bytes, but {rows}×{columns} pixels of {layout.bits}-bit samples need {allowed[0]} (corrupt data or a patched header)"
        )
    stored_rows = len(content) // layout.row_bytes(columns)
    samples = _unpack(content, structure.byteorder, layout.bits, columns * per_pixel, stored_rows, layout.dtype)
    distance = _PREDICTOR_DISTANCE[layout.predictor]
    if distance:
        samples = _undo_differencing(samples.reshape(stored_rows, columns, per_pixel), distance, layout.bits)
    return samples.reshape(stored_rows, columns * per_pixel)


def _bytes(raw, compression: int, limit: int) -> bytes:
    """The decompressed bytes of a segment, never more than ``limit + 1`` (so too-long data are caught)."""
    if compression == 1:
        return bytes(raw)
    if compression in (8, 32946):
        inflate = zlib.decompressobj()
        return inflate.decompress(bytes(raw), limit + 1)
    if compression == 5:
        return bytes(imagecodecs.lzw_decode(bytes(raw), out=limit + 1))
    if compression == 32773:
        return bytes(imagecodecs.packbits_decode(bytes(raw), out=limit + 1))
    raise RawFormatError(f"compression {compression} ({COMPRESSIONS.get(compression, 'unknown')}) is not supported")


def _unpack(content: bytes, byteorder: str, bits: int, per_row: int, rows: int, dtype: np.dtype) -> np.ndarray:
    """Samples of ``rows`` rows of ``per_row`` samples each, every row starting on a byte boundary."""
    if bits in (8, 16, 32):
        return np.frombuffer(content, np.dtype(f"{byteorder}u{bits // 8}")).astype(dtype).reshape(rows, per_row)
    unpacked = imagecodecs.packints_decode(content, dtype, bits, runlen=per_row)
    return np.asarray(unpacked, dtype).reshape(rows, per_row)


def _undo_differencing(samples: np.ndarray, distance: int, bits: int) -> np.ndarray:
    """Undo horizontal differencing: each sample was stored minus the one ``distance`` pixels to its left, modulo 2**bits."""
    wide = samples.astype(np.uint64)
    for phase in range(distance):
        np.cumsum(wide[:, phase::distance], axis=1, out=wide[:, phase::distance])
    return (wide & np.uint64(2**bits - 1)).astype(samples.dtype)


def _lossless_jpeg(stream: bytes, rows: list[int], per_row: int, bits: int) -> np.ndarray:
    """A lossless JPEG (SOF3) segment of ``rows × per_row`` samples (``rows``: the accepted row counts);
    the frame size is checked before decoding."""
    precision, height, width, components = _sof3(stream)
    samples = height * width * components
    if samples not in [r * per_row for r in rows]:
        raise RawFormatError(
            f"its lossless JPEG frame is {width}×{height} with {components} component(s) = {samples} "
            f"samples, but the segment holds {rows[0]}×{per_row} (corrupt tile size or JPEG header)"
        )
    if precision > bits:
        raise RawFormatError(f"its lossless JPEG has {precision}-bit precision, more than BitsPerSample {bits}")
    try:
        decoded = imagecodecs.ljpeg_decode(stream)
    except RuntimeError:  # lj92 lacks some rarely used options; libjpeg-turbo reads every lossless JPEG
        decoded = imagecodecs.jpeg8_decode(stream)
    decoded = np.asarray(decoded)
    if decoded.size != samples:
        raise RawFormatError(f"its lossless JPEG decoded to {decoded.size} samples, expected {samples}")
    return decoded.astype(np.uint16 if bits <= 16 else np.uint32).reshape(-1, per_row)


# Start-of-frame markers other than SOF3 (lossless, Huffman-coded), which is the only one DNG allows for raw data.
_OTHER_SOF = {
    0xC0: "a lossy (baseline)",
    0xC1: "a lossy (extended)",
    0xC2: "a lossy (progressive)",
    0xC5: "a lossy (differential)",
    0xC6: "a lossy (differential progressive)",
    0xC7: "a differential lossless",
    0xC9: "a lossy (arithmetic-coded)",
    0xCA: "a lossy (arithmetic-coded progressive)",
    0xCB: "an arithmetic-coded lossless",
    0xCD: "a lossy (arithmetic-coded differential)",
    0xCE: "a lossy (arithmetic-coded differential progressive)",
    0xCF: "an arithmetic-coded differential lossless",
}


def _sof3(stream: bytes) -> tuple[int, int, int, int]:
    """``(precision, height, width, components)`` of a lossless JPEG's frame header; lossy JPEG refused."""
    if stream[:2] != b"\xff\xd8":
        raise RawFormatError("is not a JPEG stream (no start-of-image marker)")
    at = 2
    while at + 4 <= len(stream):
        if stream[at] != 0xFF:
            raise RawFormatError(f"has a malformed JPEG marker at byte {at}")
        marker = stream[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        length = int.from_bytes(stream[at + 2 : at + 4], "big")
        if marker == 0xC3:
            if length < 8 or at + 10 > len(stream):
                raise RawFormatError("has a truncated lossless JPEG frame header")
            precision = stream[at + 4]
            height = int.from_bytes(stream[at + 5 : at + 7], "big")
            width = int.from_bytes(stream[at + 7 : at + 9], "big")
            components = stream[at + 9]
            if not (2 <= precision <= 16 and height and width and components):
                raise RawFormatError(f"has an invalid lossless JPEG frame: {width}×{height}, {components} components, {precision} bits")
            return precision, height, width, components
        if marker in _OTHER_SOF:
            raise RawFormatError(f"is {_OTHER_SOF[marker]} JPEG; ispkit reads raw data in lossless Huffman-coded JPEG (SOF3) only")
        if length < 2:
            raise RawFormatError(f"has a JPEG segment of invalid length {length} at byte {at}")
        at += 2 + length
    raise RawFormatError("has no lossless JPEG frame header (SOF3)")
