"""ispkit.io.tiff: the bounded, cycle-safe IFD reader (tags, both byte orders, BigTIFF, loops, limits)."""

from __future__ import annotations

import struct
import time

import numpy as np
import pytest
import tifffile
import tiffmaker as tm

from ispkit.errors import RawFormatError
from ispkit.io import read_raw
from ispkit.io.tiff import MAX_IFDS, TiffStructure, open_tiff, read_tiff


def _grey(extra: dict | None = None, width: int = 4, height: int = 2) -> tm.Page:
    data = np.arange(width * height, dtype=np.uint16).reshape(height, width)
    tags = {256: (tm.LONG, [width]), 257: (tm.LONG, [height]), 258: (tm.SHORT, [16]), 259: (tm.SHORT, [1]), 262: (tm.SHORT, [1]), 278: (tm.LONG, [height])}
    tags.update(extra or {})
    return tm.Page(tags, [data.astype("<u2").tobytes()])


def _parse(tmp_path, content: bytes, name="f.tif") -> TiffStructure:
    path = tmp_path / name
    path.write_bytes(content)
    with open_tiff(path) as (structure, _):
        return structure


class TestTags:
    @pytest.mark.parametrize("byteorder", ["<", ">"])
    def test_values_of_every_kind(self, tmp_path, byteorder):
        extra = {
            270: (tm.ASCII, "hello"),
            33422: (tm.BYTE, [1, 0, 2, 1]),
            50714: (tm.RATIONAL, [257, 4, 3, 2]),
            50715: (tm.SRATIONAL, [-1, 2, 5, -4]),
            50717: (tm.LONG, [70000]),
            50730: (tm.DOUBLE, [1.5]),
            51009: (tm.UNDEFINED, b"\x00\x00\x00\x01opcode"),
        }
        structure = _parse(tmp_path, tm.build([_grey(extra)], byteorder=byteorder))
        assert structure.byteorder == byteorder and not structure.bigtiff and len(structure.pages) == 1
        ifd = structure.pages[0]
        assert ifd.get(270).text() == "hello" and ifd.get(270).name == "ImageDescription"
        assert ifd.get(33422).integers().tolist() == [1, 0, 2, 1]
        assert ifd.numbers(50714).tolist() == [64.25, 1.5]
        assert ifd.get(50714).value.tolist() == [[257, 4], [3, 2]]
        assert ifd.numbers(50715).tolist() == [-0.5, -1.25]
        assert ifd.integer(50717) == 70000 and ifd.numbers(50730).tolist() == [1.5]
        assert ifd.get(51009).value == b"\x00\x00\x00\x01opcode"
        assert ifd.integer(256) == 4 and 12345 not in ifd and ifd.get(12345) is None

    def test_count_checked(self, tmp_path):
        ifd = _parse(tmp_path, tm.build([_grey({50714: (tm.SHORT, [1, 2, 3])})])).pages[0]
        with pytest.raises(RawFormatError, match=r"f\.tif: tag BlackLevel \(50714\) holds 3 value\(s\), expected 1 or 4"):
            ifd.numbers(50714, count=(1, 4))

    @pytest.mark.parametrize(
        ("tag", "problem"),
        [
            ((50717, (tm.RATIONAL, [1, 0])), r"WhiteLevel \(50717\) holds a rational with denominator 0"),
            ((50717, (tm.DOUBLE, [float("nan")])), r"WhiteLevel \(50717\) holds a value that is not finite"),
            ((50717, (tm.ASCII, "lots")), r"WhiteLevel \(50717\) holds text, expected numbers"),
        ],
    )
    def test_bad_numbers(self, tmp_path, tag, problem):
        ifd = _parse(tmp_path, tm.build([_grey({tag[0]: tag[1]})])).pages[0]
        with pytest.raises(RawFormatError, match=problem):
            ifd.numbers(tag[0])

    def test_integers_refuse_other_types(self, tmp_path):
        ifd = _parse(tmp_path, tm.build([_grey({256: (tm.RATIONAL, [4, 1])})])).pages[0]
        with pytest.raises(RawFormatError, match=r"ImageWidth \(256\) has TIFF type 5, expected integers"):
            ifd.integer(256)

    def test_unknown_field_types_are_skipped_and_duplicates_keep_the_first(self, tmp_path):
        content = bytearray(tm.build([_grey({305: (tm.ASCII, "first"), 306: (tm.ASCII, "second")})]))
        (ifd,) = tm.ifd_offsets(bytes(content))
        struct.pack_into("<H", content, tm.entry_offset(bytes(content), ifd, 306) - 8, 305)  # 306 now claims to be 305 again
        struct.pack_into("<H", content, tm.entry_offset(bytes(content), ifd, 259) - 6, 99)  # Compression gets field type 99
        parsed = _parse(tmp_path, bytes(content)).pages[0]
        assert parsed.get(305).text() == "first" and 259 not in parsed

    def test_blobs_are_not_copied(self, tmp_path):
        blob = bytes(range(256)) * 8
        structure = _parse(tmp_path, tm.build([_grey({37500: (tm.UNDEFINED, blob), 50740: (tm.BYTE, list(blob[:100]))})]))
        note = structure.pages[0].get(37500)
        assert note.value is None and note.count == len(blob) and note.name == "Tag 37500"
        assert (tmp_path / "f.tif").read_bytes()[note.offset : note.offset + note.count] == blob


class TestStructure:
    def test_bigtiff(self, tmp_path):
        path = tmp_path / "big.tif"
        data = np.arange(24, dtype=np.uint16).reshape(4, 6) * 1000
        tifffile.imwrite(path, data, bigtiff=True)
        with open_tiff(path) as (structure, _):
            assert structure.bigtiff and structure.header_size == 16
        np.testing.assert_array_equal(read_raw(path, "microscopy").mosaic * 65535, data)

    def test_walk_visits_subifds_depth_first(self, tmp_path):
        leaf = _grey({305: (tm.ASCII, "sub")})
        top = _grey({305: (tm.ASCII, "top")})
        top.subifds = [leaf]
        structure = _parse(tmp_path, tm.build([top, _grey({305: (tm.ASCII, "next")})]))
        assert [ifd.get(305).text() for ifd in structure.walk()] == ["top", "sub", "next"]

    @pytest.mark.parametrize("content", [b"", b"II*\x00", b"PK\x03\x04" + bytes(20), b"II+\x00" + bytes(20), b"II*\x00\x00\x00\x00\x00"])
    def test_not_a_tiff(self, tmp_path, content):
        path = tmp_path / "x.tif"
        path.write_bytes(content)
        with pytest.raises(RawFormatError, match=r"x\.tif: (not a readable TIFF or DNG file|the TIFF holds no IFD)"):
            read_raw(path, "microscopy")


def _loop(content: bytes, at_ifd: int, to_offset: int, code: int | None = None) -> bytes:
    """``content`` with the next-IFD pointer of IFD ``at_ifd`` (or its tag ``code``) pointing to ``to_offset``."""
    content = bytearray(content)
    ifd = tm.ifd_offsets(bytes(content))[at_ifd]
    if code is None:
        (n,) = struct.unpack_from("<H", content, ifd)
        struct.pack_into("<I", content, ifd + 2 + 12 * n, to_offset)
    else:
        struct.pack_into("<I", content, tm.entry_offset(bytes(content), ifd, code), to_offset)
    return bytes(content)


class TestHostileStructure:
    """Crafted IFD structures: refused quickly, never followed forever."""

    def test_next_ifd_pointing_to_itself(self, tmp_path):
        content = tm.build([_grey()])
        (ifd,) = tm.ifd_offsets(content)
        path = tmp_path / "loop.tif"
        path.write_bytes(_loop(content, 0, ifd))
        start = time.perf_counter()
        with pytest.raises(RawFormatError, match=rf"loop\.tif: IFD1 at offset {ifd} was already read: the IFD pointers form a loop"):
            read_raw(path, "microscopy")
        assert time.perf_counter() - start < 1.0

    def test_chain_looping_back_to_ifd0(self, tmp_path):
        content = tm.build([_grey(), _grey(), _grey()])
        first = tm.ifd_offsets(content)[0]
        with pytest.raises(RawFormatError, match=r"IFD3 at offset \d+ was already read"):
            _parse(tmp_path, _loop(content, 2, first))

    def test_subifd_pointing_to_its_parent(self, tmp_path):
        raw = tm.cfa_page(4, 2, 16, [bytes(16)])
        content = tm.dng(raw, in_subifd=True)
        parent = tm.ifd_offsets(content)[0]
        path = tmp_path / "sub.dng"
        path.write_bytes(_loop(content, 0, parent, code=330))
        with pytest.raises(RawFormatError, match=r"sub\.dng: SubIFD 0 of IFD at offset \d+ was already read: the IFD pointers form a loop"):
            read_raw(path)

    def test_too_many_ifds(self, tmp_path):
        content = tm.build([_grey() for _ in range(MAX_IFDS + 1)])
        with pytest.raises(RawFormatError, match=rf"more than {MAX_IFDS} IFDs"):
            _parse(tmp_path, content)
        assert len(_parse(tmp_path, tm.build([_grey() for _ in range(MAX_IFDS)])).pages) == MAX_IFDS

    @pytest.mark.parametrize("offset", [0xFFFFFFF0, 3])
    def test_ifd_offset_outside_the_file_or_in_the_header(self, tmp_path, offset):
        content = bytearray(tm.build([_grey()]))
        struct.pack_into("<I", content, 4, offset)
        with pytest.raises(RawFormatError, match=rf"IFD offset {offset} lies outside the file \(\d+ bytes\) or inside its header"):
            _parse(tmp_path, bytes(content))

    def test_entry_count_too_large_for_the_file(self, tmp_path):
        content = bytearray(tm.build([_grey()]))
        (ifd,) = tm.ifd_offsets(bytes(content))
        struct.pack_into("<H", content, ifd, 4000)
        with pytest.raises(RawFormatError, match=r"IFD at offset \d+ with 4000 entries runs past the end of the file .*truncated"):
            _parse(tmp_path, bytes(content))

    def test_tag_value_outside_the_file(self, tmp_path):
        content = bytearray(tm.build([_grey({305: (tm.ASCII, "a long software name")})]))
        (ifd,) = tm.ifd_offsets(bytes(content))
        struct.pack_into("<I", content, tm.entry_offset(bytes(content), ifd, 305), len(content) - 3)
        with pytest.raises(RawFormatError, match=r"Software \(305\): its 21 value\(s\) at bytes \d+\.\.\d+ lie outside the file"):
            _parse(tmp_path, bytes(content))

    def test_tags_sharing_one_large_value_are_refused(self, tmp_path):
        """Thousands of entries pointing at the same data would be copied thousands of times."""
        big = list(range(2000))
        tags = {40000 + i: (tm.LONG, big) for i in range(2)}
        content = bytearray(tm.build([_grey(tags)]))
        (ifd,) = tm.ifd_offsets(bytes(content))
        shared = struct.unpack_from("<I", content, tm.entry_offset(bytes(content), ifd, 40000))[0]
        (n,) = struct.unpack_from("<H", content, ifd)
        entries = bytearray()
        for i in range(n):  # every entry now points at the same 8000 bytes, claiming to be a new tag
            entries += struct.pack("<HHII", 41000 + i, tm.LONG, len(big), shared)
        content[ifd + 2 : ifd + 2 + 12 * n] = entries
        with pytest.raises(RawFormatError, match=r"the tag values read so far \(\d+ bytes\) exceed the file's size .* tags share their data"):
            _parse(tmp_path, bytes(content))

    def test_read_tiff_on_bytes(self, tmp_path):
        structure = read_tiff(tm.build([_grey()], byteorder=">"), tmp_path / "mem.tif")
        assert structure.byteorder == ">" and structure.pages[0].integer(256) == 4
