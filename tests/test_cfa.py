"""ispkit.cfa: Bayer masks, site order and per-site maps."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from ispkit.cfa import (
    BAYER_PATTERNS,
    check_pattern,
    masks_numpy,
    masks_torch,
    pack_bayer,
    site_channels,
    site_map_numpy,
    site_map_torch,
    unpack_bayer,
)
from ispkit.errors import InputError

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # colour warns that matplotlib is missing
    from colour_demosaicing import masks_CFA_Bayer


SHAPES = [(2, 2), (4, 6), (6, 4), (8, 8), (1, 1), (3, 5), (5, 2)]


class TestMasks:
    @pytest.mark.parametrize("pattern", BAYER_PATTERNS)
    @pytest.mark.parametrize("shape", SHAPES)
    def test_equal_colour_demosaicing(self, pattern, shape):
        expected = np.stack(masks_CFA_Bayer(shape, pattern))
        got = masks_numpy(shape, pattern)
        assert got.dtype == bool
        assert got.shape == (3, *shape)
        np.testing.assert_array_equal(got, expected)

    @pytest.mark.parametrize("pattern", BAYER_PATTERNS)
    def test_partition_of_the_mosaic(self, pattern):
        masks = masks_numpy((6, 8), pattern)
        np.testing.assert_array_equal(masks.sum(axis=0), np.ones((6, 8)))
        assert masks.sum(axis=(1, 2)).tolist() == [12, 24, 12]

    @pytest.mark.parametrize("pattern", BAYER_PATTERNS)
    @pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
    def test_torch_masks(self, pattern, dtype):
        got = masks_torch((4, 6), pattern, dtype=dtype)
        assert got.dtype == dtype
        assert got.shape == (3, 4, 6)
        np.testing.assert_array_equal(got.numpy(), masks_numpy((4, 6), pattern).astype(float))

    def test_known_values_rggb(self):
        assert masks_numpy((2, 2), "RGGB").astype(int).tolist() == [[[1, 0], [0, 0]], [[0, 1], [1, 0]], [[0, 0], [0, 1]]]

    def test_lower_case_pattern(self):
        np.testing.assert_array_equal(masks_numpy((4, 4), "gbrg"), masks_numpy((4, 4), "GBRG"))


class TestSiteChannels:
    @pytest.mark.parametrize(
        ("pattern", "expected"),
        [("RGGB", (0, 1, 1, 2)), ("BGGR", (2, 1, 1, 0)), ("GRBG", (1, 0, 2, 1)), ("GBRG", (1, 2, 0, 1))],
    )
    def test_values(self, pattern, expected):
        assert site_channels(pattern) == expected
        assert site_channels(pattern.lower()) == expected

    @pytest.mark.parametrize("pattern", BAYER_PATTERNS)
    def test_consistent_with_masks(self, pattern):
        masks = masks_numpy((2, 2), pattern)
        for site, channel in enumerate(site_channels(pattern)):
            assert masks[channel, site // 2, site % 2]


class TestCheckPattern:
    @pytest.mark.parametrize("pattern", BAYER_PATTERNS)
    def test_accepts_and_upper_cases(self, pattern):
        assert check_pattern(pattern) == pattern
        assert check_pattern(pattern.lower()) == pattern
        assert check_pattern(pattern.capitalize()) == pattern

    def test_rejects_rgbg_with_close_matches(self):
        with pytest.raises(InputError) as info:
            check_pattern("RGBG")
        message = str(info.value)
        assert "'RGBG'" in message
        assert "did you mean" in message
        assert "'RGGB'" in message.split("?")[0]
        assert "Available: 'BGGR', 'GBRG', 'GRBG', 'RGGB'" in message

    @pytest.mark.parametrize("bad", ["", "XYZW", "RGGBB", "bayer"])
    def test_rejects_other_strings(self, bad):
        with pytest.raises(InputError, match="unknown CFA pattern"):
            check_pattern(bad)

    @pytest.mark.parametrize("bad", [None, 3, ("R", "G", "G", "B")])
    def test_rejects_non_strings(self, bad):
        with pytest.raises(InputError, match="unknown CFA pattern"):
            check_pattern(bad)

    def test_is_a_value_error(self):
        with pytest.raises(ValueError, match="unknown CFA pattern 'RGBG'"):
            site_channels("RGBG")


class TestSiteMap:
    def test_numpy_known_values(self):
        got = site_map_numpy(np.array([0.1, 0.2, 0.3, 0.4]), (4, 6))
        assert got.shape == (4, 6)
        np.testing.assert_array_equal(got[0], [0.1, 0.2, 0.1, 0.2, 0.1, 0.2])
        np.testing.assert_array_equal(got[1], [0.3, 0.4, 0.3, 0.4, 0.3, 0.4])
        np.testing.assert_array_equal(got[2], got[0])
        np.testing.assert_array_equal(got[3], got[1])

    def test_values_at_sites(self):
        values = np.array([1.0, 2.0, 3.0, 4.0])
        got = site_map_numpy(values, (6, 8))
        for site in range(4):
            block = got[site // 2 :: 2, site % 2 :: 2]
            assert block.shape == (3, 4)
            assert np.all(block == values[site])

    def test_numpy_accepts_lists(self):
        got = site_map_numpy([1, 2, 3, 4], (2, 2))
        assert got.dtype == np.float64
        assert got.tolist() == [[1.0, 2.0], [3.0, 4.0]]

    @pytest.mark.parametrize("shape", [(2, 2), (4, 6), (10, 2)])
    @pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
    def test_torch_equals_numpy(self, shape, dtype):
        values = np.array([0.25, -0.5, 1.5, 3.0])
        got = site_map_torch(torch.tensor(values, dtype=dtype), shape)
        assert got.dtype == dtype
        np.testing.assert_array_equal(got.double().numpy(), site_map_numpy(values, shape))

    def test_torch_gradcheck_and_gradient_counts_sites(self):
        values = torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(lambda v: site_map_torch(v, (4, 6)), (values,))
        site_map_torch(values, (4, 6)).sum().backward()
        assert values.grad.tolist() == [6.0, 6.0, 6.0, 6.0]


class TestPackBayer:
    def test_known_values_4x4_arange(self):
        raw = torch.arange(16.0).reshape(1, 1, 4, 4)
        packed = pack_bayer(raw)
        assert packed.shape == (1, 4, 2, 2)
        assert packed[0].tolist() == [
            [[0.0, 2.0], [8.0, 10.0]],  # site (0, 0)
            [[1.0, 3.0], [9.0, 11.0]],  # site (0, 1)
            [[4.0, 6.0], [12.0, 14.0]],  # site (1, 0)
            [[5.0, 7.0], [13.0, 15.0]],  # site (1, 1)
        ]

    def test_three_dimensional_input(self):
        raw = torch.rand(2, 6, 8, generator=torch.Generator().manual_seed(0))
        assert torch.equal(pack_bayer(raw), pack_bayer(raw[:, None]))
        assert pack_bayer(raw).shape == (2, 4, 3, 4)

    @pytest.mark.parametrize("pattern", BAYER_PATTERNS)
    def test_planes_follow_site_order_and_masks(self, pattern):
        masks = masks_numpy((4, 6), pattern)
        raw = torch.arange(24.0).reshape(1, 1, 4, 6)
        packed = pack_bayer(raw)
        for site, channel in enumerate(site_channels(pattern)):
            expected = raw[0, 0].numpy()[site // 2 :: 2, site % 2 :: 2]
            np.testing.assert_array_equal(packed[0, site].numpy(), expected)
            assert masks[channel, site // 2 :: 2, site % 2 :: 2].all()  # plane k has colour pattern[k]

    @pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.int32])
    def test_keeps_dtype_and_values(self, dtype):
        raw = torch.arange(2 * 4 * 8).reshape(2, 1, 4, 8).to(dtype)
        packed = pack_bayer(raw)
        assert packed.dtype == dtype
        assert sorted(packed.flatten().tolist()) == sorted(raw.flatten().tolist())

    @pytest.mark.parametrize("shape", [(1, 1, 2, 2), (3, 1, 4, 6), (2, 1, 10, 4)])
    def test_round_trip(self, shape):
        raw = torch.rand(shape, generator=torch.Generator().manual_seed(2))
        assert torch.equal(unpack_bayer(pack_bayer(raw)), raw)
        packed = torch.rand(shape[0], 4, shape[2] // 2, shape[3] // 2, generator=torch.Generator().manual_seed(3))
        assert torch.equal(pack_bayer(unpack_bayer(packed)), packed)

    def test_unpack_known_values(self):
        packed = torch.tensor([[[[1.0]], [[2.0]], [[3.0]], [[4.0]]]])
        assert unpack_bayer(packed).tolist() == [[[[1.0, 2.0], [3.0, 4.0]]]]

    @pytest.mark.parametrize("shape", [(1, 1, 3, 4), (1, 1, 4, 5), (1, 5, 5), (1, 1, 0, 4)])
    def test_rejects_odd_or_empty_sizes(self, shape):
        with pytest.raises(InputError, match="pack_bayer: mosaic height and width must be even"):
            pack_bayer(torch.zeros(shape))

    @pytest.mark.parametrize("shape", [(4, 4), (1, 1, 1, 4, 4), (4,)])
    def test_rejects_wrong_rank(self, shape):
        with pytest.raises(InputError, match=r"pack_bayer: expected a mosaic \(N, 1, H, W\) or \(N, H, W\)"):
            pack_bayer(torch.zeros(shape))

    def test_rejects_several_channels(self):
        with pytest.raises(InputError, match=r"with one channel, got shape \(1, 3, 4, 4\)"):
            pack_bayer(torch.zeros(1, 3, 4, 4))

    def test_rejects_non_tensor(self):
        with pytest.raises(InputError, match=r"expected a torch\.Tensor mosaic, got ndarray"):
            pack_bayer(np.zeros((1, 1, 4, 4)))

    @pytest.mark.parametrize("shape", [(1, 3, 2, 2), (4, 2, 2), (1, 1, 4, 2, 2)])
    def test_unpack_rejects_wrong_shape(self, shape):
        with pytest.raises(InputError, match=r"unpack_bayer: expected packed planes \(N, 4, h, w\)"):
            unpack_bayer(torch.zeros(shape))

    def test_gradient_flows(self):
        raw = torch.rand(2, 1, 4, 6, dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(pack_bayer, (raw,))
        weights = torch.arange(4.0, dtype=torch.float64)[None, :, None, None]
        (pack_bayer(raw) * weights).sum().backward()
        expected = site_map_torch(torch.arange(4.0, dtype=torch.float64), (4, 6))
        assert torch.equal(raw.grad[0, 0], expected) and torch.equal(raw.grad[1, 0], expected)

    def test_unpack_gradient_flows(self):
        packed = torch.rand(1, 4, 2, 3, dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(unpack_bayer, (packed,))


class TestSelect:
    """cfa.select: where() for 0/1 float masks, exact on finite values, with where's gradients."""

    @pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
    def test_equals_where_bit_for_bit(self, dtype):
        from ispkit.cfa import select, site_selectors

        gen = torch.Generator().manual_seed(3)
        a = (torch.randn(2, 6, 8, generator=gen, dtype=dtype) * 1e3).requires_grad_()
        b = (torch.randn(2, 6, 8, generator=gen, dtype=dtype) * 1e-3).requires_grad_()
        for channel, selector in enumerate(site_selectors((6, 8), "GBRG", dtype=dtype)):
            mask = masks_torch((6, 8), "GBRG", dtype=torch.bool)[channel]
            got, expected = select(selector, a, b), torch.where(mask, a, b)
            assert torch.equal(got, expected)
            ga = torch.autograd.grad(got.sum(), (a, b))
            gb = torch.autograd.grad(expected.sum(), (a, b))
            assert all(torch.equal(x, y) for x, y in zip(ga, gb, strict=True))

    def test_selectors_are_cached_and_complementary(self):
        from ispkit.cfa import site_selectors

        first = site_selectors((4, 4), "RGGB", dtype=torch.float32)
        assert first[0][0].data_ptr() == site_selectors((4, 4), "RGGB", dtype=torch.float32)[0][0].data_ptr()
        assert all(torch.equal(m + c, torch.ones(4, 4)) for m, c in first)
