"""Tests of the sharpening stages (``ispkit.stages.sharpen``)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage as ndi
import skimage.filters
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from support import assert_backends_agree, default_values, rgb_batches

from ispkit.errors import InputError, ParameterError
from ispkit.stages.luma_convolution import convolve_luma, convolve_luma_numpy
from ispkit.stages.module import StageModule
from ispkit.stages.sharpen import SharpenFilter, UnsharpMask, unsharp_mask, unsharp_mask_numpy

# Y planes of varied content in [-0.25, 1.25], sizes 2×2 to 24×24: every channel of an RGB batch.
luma_batches = rgb_batches(max_n=2).map(lambda b: b.reshape(-1, *b.shape[-2:]))
TINY = [(1, 1), (1, 4), (2, 2), (3, 2)]
FIXED = np.random.default_rng(7).uniform(-0.25, 1.25, (9, 11))


def validated(stage, **values):
    return {name: stage.param(name).validate(value, f"{stage.kind}.{name}") for name, value in values.items()}


class TestSharpenFilter:
    def test_smoke(self):
        assert (SharpenFilter.kind, SharpenFilter.method, SharpenFilter.takes, SharpenFilter.gives) == ("sharpen", "filter", "luma", "luma")
        kernel = default_values(SharpenFilter)["kernel"]
        assert convolve_luma_numpy(FIXED, kernel).shape == FIXED.shape
        for dtype in (torch.float32, torch.float64):
            out = convolve_luma(torch.rand(2, 5, 6, dtype=dtype), torch.tensor(kernel, dtype=dtype))
            assert out.shape == (2, 5, 6) and out.dtype == dtype

    @pytest.mark.parametrize("bad", [np.zeros((1, 4, 4)), np.zeros(4), np.zeros((4, 4), dtype=np.int64)])
    def test_numpy_rejects(self, bad):
        with pytest.raises(InputError, match="convolve_luma_numpy"):
            convolve_luma_numpy(bad, default_values(SharpenFilter)["kernel"])

    @pytest.mark.parametrize("bad", [torch.zeros(4, 4), torch.zeros(1, 1, 4, 4), torch.zeros(1, 4, 4, dtype=torch.int32)])
    def test_torch_rejects(self, bad):
        with pytest.raises(InputError, match="convolve_luma"):
            convolve_luma(bad, torch.ones(3, 3))

    def test_kernel_bounds(self):
        with pytest.raises(ParameterError):
            validated(SharpenFilter, kernel=np.full((3, 3), 20.0))
        with pytest.raises(ParameterError):
            validated(SharpenFilter, kernel=np.ones((5, 5)))

    def test_single_bright_pixel(self):
        y = np.zeros((5, 5))
        y[2, 2] = 1.0
        out = convolve_luma_numpy(y, default_values(SharpenFilter)["kernel"])
        expected = np.zeros((5, 5))
        expected[2, 2] = 5.0
        expected[[1, 3, 2, 2], [2, 2, 1, 3]] = -1.0
        np.testing.assert_array_equal(out, expected)

    def test_flat_plane_unchanged(self):
        out = convolve_luma_numpy(np.full((4, 6), 0.3), default_values(SharpenFilter)["kernel"])
        np.testing.assert_allclose(out, 0.3, atol=1e-15)

    def test_equals_scipy_convolve(self):
        kernel = np.random.default_rng(1).normal(size=(3, 3))
        for k in (default_values(SharpenFilter)["kernel"], kernel):
            np.testing.assert_array_equal(convolve_luma_numpy(FIXED, k), ndi.convolve(FIXED, k, mode="reflect"))

    def test_orientation_is_convolution(self):
        y = np.zeros((3, 3))
        y[1, 1] = 1.0
        kernel = np.arange(9.0).reshape(3, 3)
        np.testing.assert_array_equal(convolve_luma_numpy(y, kernel), kernel)

    @settings(max_examples=100, deadline=None)
    @given(luma_batches)
    def test_backends_agree_default(self, batch):
        assert_backends_agree(SharpenFilter, batch)

    @settings(max_examples=100, deadline=None)
    @given(luma_batches, arrays(np.float64, (3, 3), elements=st.floats(-3.0, 3.0)))
    def test_backends_agree_random_kernel(self, batch, kernel):
        assert_backends_agree(SharpenFilter, batch, validated(SharpenFilter, kernel=kernel))

    @pytest.mark.parametrize("shape", TINY)
    def test_backends_agree_tiny(self, shape):
        batch = np.random.default_rng(3).uniform(-0.25, 1.25, (2, *shape))
        assert_backends_agree(SharpenFilter, batch, validated(SharpenFilter, kernel=np.random.default_rng(4).normal(size=(3, 3))))

    def test_gradcheck(self):
        y = torch.rand(2, 4, 5, dtype=torch.float64, requires_grad=True)
        kernel = torch.randn(3, 3, dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(convolve_luma, (y, kernel))

    def test_trainable_module(self):
        module = StageModule(SharpenFilter, default_values(SharpenFilter), "RGGB", frozenset({"kernel"}))
        module(torch.rand(2, 6, 6)).square().sum().backward()
        assert module.kernel.grad is not None and module.kernel.grad.abs().sum() > 0


class TestUnsharpMask:
    def test_smoke(self):
        assert (UnsharpMask.kind, UnsharpMask.method, UnsharpMask.takes, UnsharpMask.gives) == ("sharpen", "unsharp_mask", "luma", "luma")
        values = default_values(UnsharpMask)
        assert unsharp_mask_numpy(FIXED, **values).shape == FIXED.shape
        for dtype in (torch.float32, torch.float64):
            out = unsharp_mask(torch.rand(3, 4, 7, dtype=dtype), torch.tensor(1.0, dtype=dtype), torch.tensor(1.0, dtype=dtype))
            assert out.shape == (3, 4, 7) and out.dtype == dtype

    @pytest.mark.parametrize("bad", [np.zeros((2, 4, 4)), np.zeros((4, 4), dtype=np.uint8)])
    def test_numpy_rejects(self, bad):
        with pytest.raises(InputError, match="unsharp_mask_numpy"):
            unsharp_mask_numpy(bad, **default_values(UnsharpMask))

    @pytest.mark.parametrize("bad", [torch.zeros(4, 4), torch.zeros(1, 4, 4, dtype=torch.int64)])
    def test_torch_rejects(self, bad):
        with pytest.raises(InputError, match="unsharp_mask"):
            unsharp_mask(bad, torch.tensor(1.0), torch.tensor(1.0))

    @pytest.mark.parametrize("values", [{"radius": 0.0}, {"radius": 11.0}, {"amount": -1.5}, {"amount": 11.0}])
    def test_bounds(self, values):
        with pytest.raises(ParameterError):
            validated(UnsharpMask, **values)

    @pytest.mark.parametrize(("radius", "amount"), [(1.0, 1.0), (0.5, 2.0), (2.7, -0.6)])
    def test_equals_skimage(self, radius, amount):
        values = validated(UnsharpMask, radius=radius, amount=amount)
        expected = skimage.filters.unsharp_mask(FIXED, radius=radius, amount=amount, preserve_range=True)
        np.testing.assert_array_equal(unsharp_mask_numpy(FIXED, **values), expected)

    def test_no_clipping(self):
        y = np.zeros((5, 5))
        y[2, 2] = 1.0
        out = unsharp_mask_numpy(y, **validated(UnsharpMask, radius=0.5, amount=2.0))
        assert out[2, 2] > 1.0 and out.min() < 0.0

    def test_formula(self):
        values = validated(UnsharpMask, radius=1.5, amount=0.8)
        blurred = ndi.gaussian_filter(FIXED, 1.5, mode="reflect")
        np.testing.assert_allclose(unsharp_mask_numpy(FIXED, **values), FIXED + 0.8 * (FIXED - blurred), atol=1e-14)

    def test_special_amounts(self):
        np.testing.assert_array_equal(unsharp_mask_numpy(FIXED, **validated(UnsharpMask, radius=1.0, amount=0.0)), FIXED)
        blurred = unsharp_mask_numpy(FIXED, **validated(UnsharpMask, radius=1.0, amount=-1.0))
        np.testing.assert_allclose(blurred, ndi.gaussian_filter(FIXED, 1.0), atol=1e-15)

    def test_blurs_in_two_dimensions(self):
        """Unlike the released code (multichannel=True on 2-D: vertical blur only)."""
        y = np.zeros((7, 7))
        y[3, 3] = 1.0
        out = unsharp_mask_numpy(y, **default_values(UnsharpMask))
        assert out[3, 2] < 0.0 and out[2, 3] < 0.0
        np.testing.assert_allclose(out[3, 2], out[2, 3], atol=1e-15)

    @settings(max_examples=80, deadline=None)
    @given(luma_batches)
    def test_backends_agree_default(self, batch):
        assert_backends_agree(UnsharpMask, batch)

    @settings(max_examples=100, deadline=None)
    @given(luma_batches, st.floats(0.3, 3.0), st.floats(-1.0, 3.0))
    def test_backends_agree_random(self, batch, radius, amount):
        assert_backends_agree(UnsharpMask, batch, validated(UnsharpMask, radius=radius, amount=amount))

    @pytest.mark.parametrize("shape", TINY)
    @pytest.mark.parametrize("radius", [0.05, 0.7, 3.0, 10.0])
    def test_backends_agree_tiny(self, shape, radius):
        batch = np.random.default_rng(5).uniform(-0.25, 1.25, (2, *shape))
        assert_backends_agree(UnsharpMask, batch, validated(UnsharpMask, radius=radius, amount=1.5))

    def test_gradcheck(self):
        y = torch.rand(2, 5, 6, dtype=torch.float64, requires_grad=True)
        radius = torch.tensor(1.3, dtype=torch.float64, requires_grad=True)
        amount = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(unsharp_mask, (y, radius, amount))

    def test_trainable_module(self):
        module = StageModule(UnsharpMask, default_values(UnsharpMask), "RGGB", frozenset({"radius", "amount"}))
        module(torch.rand(2, 8, 8)).square().sum().backward()
        assert module.radius.grad.abs() > 0 and module.amount.grad.abs() > 0
