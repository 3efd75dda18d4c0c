"""ispkit.io.opcodes: OpcodeList structure (DNG chapter 7), GainMap and FixVignetteRadial, on built bytes, a real file and hostile input."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
from tiffmaker import gain_map_params, opcode, opcode_list, vignette_params

from ispkit.errors import RawFormatError
from ispkit.io import parse_dng
from ispkit.io.opcodes import GainMap, Opcode, VignetteRadial, parse_opcode_list

GPR = Path(__file__).parents[1] / "data" / "real" / "gopro_hero6_GOPR0024.GPR"


class TestList:
    def test_opcodes_in_order_with_their_header(self):
        gains = np.arange(6, dtype=np.float32).reshape(2, 3, 1) / 4 + 1
        data = opcode_list(
            opcode(9, gain_map_params(gains)), opcode(3, vignette_params(), flags=0), opcode(42, b"\x01\x02", flags=3, version=b"\x01\x06\x00\x00")
        )
        first, second, third = parse_opcode_list(data, 2, "x.dng")
        assert (first.list, first.id, first.name, first.version, first.optional) == (2, 9, "GainMap", (1, 3, 0, 0), True)
        assert (second.name, second.optional, third.name, third.flags, third.data, third.version) == (
            "FixVignetteRadial",
            False,
            "opcode 42",
            3,
            b"\x01\x02",
            (1, 6, 0, 0),
        )
        assert parse_opcode_list(struct.pack(">I", 0), 3) == ()

    @pytest.mark.parametrize(
        ("data", "problem"),
        [
            (b"\x00\x00", "holds 2 bytes, expected at least the 4 of its opcode count"),
            (struct.pack(">I", 2) + opcode(9, b""), "declares 2 opcodes, but its 20 bytes hold at most 1"),
            (struct.pack(">I", 2**32 - 1) + bytes(12), "declares 4294967295 opcodes"),
            (struct.pack(">I", 1) + struct.pack(">IIII", 9, 0, 0, 2**32 - 1), "declares 4294967295 parameter bytes, but only 0 remain"),
            (opcode_list(opcode(3, vignette_params())) + b"\x00", "1 bytes follow its last opcode"),
            (struct.pack(">I", 2) + opcode(9, bytes(16)), "opcode 2 of 2 starts past the end"),
        ],
    )
    def test_corrupt_lists(self, data, problem):
        with pytest.raises(RawFormatError, match=rf"^x\.dng: OpcodeList2.*{problem}"):
            parse_opcode_list(data, 2, "x.dng")


class TestGainMap:
    def test_decoded(self):
        gains = np.random.default_rng(1).uniform(1, 2, (3, 4, 2)).astype(np.float32)
        (op,) = parse_opcode_list(opcode_list(opcode(9, gain_map_params(gains, area=(1, 0, 8, 8), pitch=(2, 2), spacing=(0.25, 0.125), origin=(0.1, -0.2)))), 2)
        gm = GainMap.from_opcode(op)
        assert (gm.top, gm.left, gm.bottom, gm.right, gm.row_pitch, gm.col_pitch) == (1, 0, 8, 8, 2, 2)
        assert gm.spacing == (0.25, 0.125) and gm.origin == (0.1, -0.2) and gm.gains.dtype == np.float64
        np.testing.assert_array_equal(gm.gains, gains)

    def test_interpolation_is_the_sdks(self):
        """Pixel centres relative to the image, bilinear between points, the edge point beyond; map plane min(plane, planes - 1)."""
        gains = np.array([[1.0, 2.0], [3.0, 5.0]])[:, :, None]
        gm = GainMap(0, 0, 4, 4, 0, 1, 1, 1, (0.5, 0.5), (0.25, 0.25), gains)
        # Rows 0..3 sit at 1/8, 3/8, 5/8, 7/8: grid indices -0.25 (held at 0), 0.25, 0.75, 1.25 (held at 1).
        expected_rows = np.array([[1.0, 2.0], [1.5, 2.75], [2.5, 4.25], [3.0, 5.0]])
        out = gm.evaluate(np.arange(4), np.arange(4), 4, 4, plane=2)
        np.testing.assert_allclose(out[:, 0], expected_rows[:, 0])
        np.testing.assert_allclose(out[:, 3], expected_rows[:, 1])
        np.testing.assert_allclose(out[1, 1], 1.5 + 0.25 * (2.75 - 1.5))

    def test_one_point_axes_are_constant(self):
        (op,) = parse_opcode_list(opcode_list(opcode(9, gain_map_params(np.full((1, 1, 1), 1.5, np.float32), spacing=(0.0, -3.0), origin=(7.0, 9.0)))), 2)
        gm = GainMap.from_opcode(op)
        assert gm.spacing == (1.0, 1.0) and gm.origin == (0.0, 0.0)
        np.testing.assert_allclose(gm.evaluate(np.arange(3), np.arange(5), 3, 5), np.full((3, 5), 1.5), rtol=1e-15)

    @pytest.mark.parametrize(
        ("params", "problem"),
        [
            (gain_map_params(np.ones((2, 2, 1)))[:-1], "holds 91 parameter bytes, but a 2×2×1 map needs 92"),
            (gain_map_params(np.ones((2, 2, 1)))[:50], "holds 50 parameter bytes, expected at least 76"),
            (gain_map_params(np.ones((2, 2, 1)), area=(4, 0, 4, 8)), "area \\(4, 0, 4, 8\\) .* is empty"),
            (gain_map_params(np.ones((2, 2, 1)), pitch=(0, 1)), "pitches 0×1 is empty"),
            (gain_map_params(np.ones((2, 2, 1)), planes=0), "with 0 plane\\(s\\)"),
            (gain_map_params(np.ones((2, 2, 1)), spacing=(0.0, 0.5)), "must be finite with a positive spacing"),
            (gain_map_params(np.ones((2, 2, 1)), origin=(np.nan, 0.0)), "must be finite"),
            (gain_map_params(np.array([[1.0, np.inf], [1.0, 1.0]])[:, :, None]), "gains that are not finite"),
            (struct.pack(">10I", 0, 0, 8, 8, 0, 1, 1, 1, 2**31, 2**31) + struct.pack(">4dI", 1, 1, 0, 0, 1), "a 2147483648×2147483648×1 map needs"),
        ],
    )
    def test_refused(self, params, problem):
        (op,) = parse_opcode_list(opcode_list(opcode(9, params)), 2, "x.dng")
        with pytest.raises(RawFormatError, match=rf"^x\.dng: OpcodeList2 GainMap: .*{problem}"):
            GainMap.from_opcode(op)

    def test_other_opcodes_are_not_gain_maps(self):
        with pytest.raises(RawFormatError, match="is not a GainMap"):
            GainMap.from_opcode(Opcode(2, 3, (1, 3, 0, 0), 0, vignette_params()))


class TestVignette:
    def test_decoded_with_the_centre_as_vertical_horizontal(self):
        (op,) = parse_opcode_list(opcode_list(opcode(3, vignette_params(cx=0.6, cy=0.3))), 3)
        v = VignetteRadial.from_opcode(op)
        assert v.k == (0.1, 0.2, 0.0, 0.0, -0.01) and v.center == (0.3, 0.6)

    @pytest.mark.parametrize(
        ("params", "problem"),
        [
            (vignette_params()[:-8], "holds 48 parameter bytes, expected 56"),
            (vignette_params(k=(np.nan, 0, 0, 0, 0)), "not finite"),
            (vignette_params(cx=1.5), "optical centre \\[1.5, 0.25\\] lies outside the image"),
        ],
    )
    def test_refused(self, params, problem):
        (op,) = parse_opcode_list(opcode_list(opcode(3, params)), 3, "x.dng")
        with pytest.raises(RawFormatError, match=rf"^x\.dng: OpcodeList3 FixVignetteRadial: .*{problem}"):
            VignetteRadial.from_opcode(op)


def test_the_gopro_gainmaps():
    """GoPro HERO6's OpcodeList2: four optional GainMaps, one per CFA site (pitch 2), 23×23 points spanning the frame."""
    dng = parse_dng(GPR)
    ops = dng.opcodes(2)
    assert [op.name for op in ops] == ["GainMap"] * 4 and all(op.optional and op.version == (1, 4, 0, 0) for op in ops)
    maps = [GainMap.from_opcode(op) for op in ops]
    assert [(m.top, m.left) for m in maps] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert all((m.bottom, m.right, m.row_pitch, m.col_pitch, m.gains.shape) == (3000, 4000, 2, 2, (23, 23, 1)) for m in maps)
    assert all(m.spacing == (1 / 22, 1 / 22) and m.origin == (0.0, 0.0) for m in maps)
    assert all(m.gains.min() == 1.0 and 2.07 < m.gains.max() < 2.08 for m in maps)
    assert dng.opcodes(1) == () and dng.opcodes(3) == ()
