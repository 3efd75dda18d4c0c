"""Tests of the denoising stages (``ispkit.stages.denoise``)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import scipy.ndimage as ndi
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from support import assert_backends_agree, default_values, rgb_batches

from ispkit import filters
from ispkit.errors import InputError, ParameterError
from ispkit.stages.denoise import (
    GaussianDenoise,
    MedianDenoise,
    _median3x3,
    gaussian_kernel2d,
    median_denoise,
    median_denoise_numpy,
)
from ispkit.stages.luma_convolution import convolve_luma, convolve_luma_numpy
from ispkit.stages.module import StageModule

# Y planes of varied content in [-0.25, 1.25], sizes 2×2 to 24×24: every channel of an RGB batch.
luma_batches = rgb_batches(max_n=2).map(lambda b: b.reshape(-1, *b.shape[-2:]))
TINY = [(1, 1), (1, 4), (2, 2), (3, 2)]
FIXED = np.random.default_rng(11).uniform(-0.25, 1.25, (9, 11))


def validated(stage, **values):
    return {name: stage.param(name).validate(value, f"{stage.kind}.{name}") for name, value in values.items()}


def distinct(shape: tuple[int, ...]) -> torch.Tensor:
    """Float64 values without ties (gaps of 1/n), so the median is differentiable."""
    n = int(np.prod(shape))
    return (torch.randperm(n, generator=torch.Generator().manual_seed(n)).to(torch.float64) / n).reshape(shape)


class TestGaussianKernel2d:
    def test_default_sigma(self):
        kernel = gaussian_kernel2d(0.5)
        assert kernel.shape == (5, 5) and kernel.dtype == np.float64
        assert round(kernel[2, 2], 5) == 0.61869
        np.testing.assert_allclose(kernel.sum(), 1.0, atol=1e-15)
        np.testing.assert_array_equal(kernel, kernel.T)

    @pytest.mark.parametrize(("sigma", "truncate", "size"), [(1.0, 4.0, 9), (0.5, 2.0, 3), (2.0, 1.0, 5)])
    def test_equals_gaussian_filter(self, sigma, truncate, size):
        kernel = gaussian_kernel2d(sigma, truncate)
        assert kernel.shape == (size, size)
        np.testing.assert_allclose(ndi.convolve(FIXED, kernel, mode="reflect"), ndi.gaussian_filter(FIXED, sigma, truncate=truncate), atol=1e-12)


class TestGaussianDenoise:
    def test_smoke(self):
        assert (GaussianDenoise.kind, GaussianDenoise.method, GaussianDenoise.takes, GaussianDenoise.gives) == ("denoise", "gaussian", "luma", "luma")
        kernel = default_values(GaussianDenoise)["kernel"]
        assert convolve_luma_numpy(FIXED, kernel).shape == FIXED.shape
        for dtype in (torch.float32, torch.float64):
            out = convolve_luma(torch.rand(2, 5, 6, dtype=dtype), torch.tensor(kernel, dtype=dtype))
            assert out.shape == (2, 5, 6) and out.dtype == dtype

    @pytest.mark.parametrize("bad", [np.zeros((1, 4, 4)), np.zeros((4, 4), dtype=np.int16)])
    def test_numpy_rejects(self, bad):
        with pytest.raises(InputError, match="convolve_luma_numpy"):
            convolve_luma_numpy(bad, default_values(GaussianDenoise)["kernel"])

    @pytest.mark.parametrize("bad", [torch.zeros(4, 4), torch.zeros(1, 4, 4, dtype=torch.uint8)])
    def test_torch_rejects(self, bad):
        with pytest.raises(InputError, match="convolve_luma"):
            convolve_luma(bad, torch.ones(5, 5))

    def test_kernel_declaration(self):
        with pytest.raises(ParameterError):
            validated(GaussianDenoise, kernel=np.ones((3, 3)))
        with pytest.raises(ParameterError):
            validated(GaussianDenoise, kernel=np.full((5, 5), 2.0))

    def test_default_equals_gaussian_filter(self):
        out = convolve_luma_numpy(FIXED, default_values(GaussianDenoise)["kernel"])
        np.testing.assert_allclose(out, ndi.gaussian_filter(FIXED, 0.5), rtol=0, atol=1e-12)

    def test_single_bright_pixel(self):
        y = np.zeros((7, 7))
        y[3, 3] = 1.0
        out = convolve_luma_numpy(y, default_values(GaussianDenoise)["kernel"])
        assert round(out[3, 3], 5) == 0.61869
        assert round(out[3, 4], 5) == round(0.78657 * 0.10645, 5)

    def test_equals_scipy_convolve(self):
        kernel = np.random.default_rng(2).uniform(-1, 1, (5, 5))
        np.testing.assert_array_equal(convolve_luma_numpy(FIXED, kernel), ndi.convolve(FIXED, kernel, mode="reflect"))

    @settings(max_examples=100, deadline=None)
    @given(luma_batches)
    def test_backends_agree_default(self, batch):
        assert_backends_agree(GaussianDenoise, batch)

    @settings(max_examples=100, deadline=None)
    @given(luma_batches, arrays(np.float64, (5, 5), elements=st.floats(-1.0, 1.0)))
    def test_backends_agree_random_kernel(self, batch, kernel):
        assert_backends_agree(GaussianDenoise, batch, validated(GaussianDenoise, kernel=kernel))

    @pytest.mark.parametrize("shape", TINY)
    def test_backends_agree_tiny(self, shape):
        batch = np.random.default_rng(3).uniform(-0.25, 1.25, (2, *shape))
        assert_backends_agree(GaussianDenoise, batch, validated(GaussianDenoise, kernel=np.random.default_rng(4).uniform(-1, 1, (5, 5))))

    def test_gradcheck(self):
        y = torch.rand(2, 4, 5, dtype=torch.float64, requires_grad=True)
        kernel = torch.rand(5, 5, dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(convolve_luma, (y, kernel))

    def test_trainable_module(self):
        module = StageModule(GaussianDenoise, default_values(GaussianDenoise), "RGGB", frozenset({"kernel"}))
        module(torch.rand(2, 6, 6)).square().sum().backward()
        assert module.kernel.grad.abs().sum() > 0


class TestMedianDenoise:
    def test_smoke(self):
        assert (MedianDenoise.kind, MedianDenoise.method, MedianDenoise.takes, MedianDenoise.gives) == ("denoise", "median", "luma", "luma")
        assert default_values(MedianDenoise) == {"size": 3}
        assert median_denoise_numpy(FIXED, 3).shape == FIXED.shape
        for dtype in (torch.float32, torch.float64):
            for size in (1, 3, 5):
                out = median_denoise(torch.rand(2, 5, 6, dtype=dtype), size)
                assert out.shape == (2, 5, 6) and out.dtype == dtype

    @pytest.mark.parametrize("bad", [np.zeros((1, 4, 4)), np.zeros((4, 4), dtype=np.int32)])
    def test_numpy_rejects(self, bad):
        with pytest.raises(InputError, match="median_denoise_numpy"):
            median_denoise_numpy(bad, 3)

    @pytest.mark.parametrize("bad", [torch.zeros(4, 4), torch.zeros(1, 4, 4, dtype=torch.int32)])
    def test_torch_rejects(self, bad):
        with pytest.raises(InputError, match="median_denoise"):
            median_denoise(bad, 3)

    @pytest.mark.parametrize("size", [2, 4])
    def test_even_size(self, size):
        with pytest.raises(ParameterError, match="must be odd, got"):
            median_denoise_numpy(FIXED, size)
        with pytest.raises(ParameterError, match="must be odd, got"):
            median_denoise(torch.rand(1, 4, 4), size)

    @pytest.mark.parametrize("size", [0, 17, 3.0, True])
    def test_size_declaration(self, size):
        with pytest.raises(ParameterError):
            validated(MedianDenoise, size=size)

    def test_equals_scipy(self):
        np.testing.assert_array_equal(median_denoise_numpy(FIXED, 3), ndi.median_filter(FIXED, 3))
        np.testing.assert_array_equal(median_denoise_numpy(FIXED, 5), ndi.median_filter(FIXED, 5, mode="reflect"))
        np.testing.assert_array_equal(median_denoise_numpy(FIXED, 1), FIXED)

    def test_hand_computed(self):
        y = np.arange(9.0).reshape(3, 3)
        assert median_denoise_numpy(y, 3)[1, 1] == 4.0
        # reflect: the corner window of 0 1 / 3 4 is [0 0 1; 0 0 1; 3 3 4] → median 1
        assert median_denoise_numpy(y, 3)[0, 0] == 1.0
        salt = np.zeros((4, 4))
        salt[1, 2] = 1.0
        np.testing.assert_array_equal(median_denoise_numpy(salt, 3), np.zeros((4, 4)))

    @settings(max_examples=100, deadline=None)
    @given(luma_batches, st.sampled_from([1, 3, 5]))
    def test_backends_agree(self, batch, size):
        assert_backends_agree(MedianDenoise, batch, {"size": size})

    @pytest.mark.parametrize("shape", TINY)
    @pytest.mark.parametrize("size", [1, 3, 5, 7])
    def test_backends_agree_tiny(self, shape, size):
        batch = np.random.default_rng(6).uniform(-0.25, 1.25, (2, *shape))
        assert_backends_agree(MedianDenoise, batch, {"size": size})

    def test_fast_path_is_exact_on_all_binary_windows(self):
        """0-1 principle: a min/max network that selects the median of every 0/1 input is exact."""
        windows = torch.tensor(list(itertools.product([0.0, 1.0], repeat=9))).reshape(-1, 3, 3)
        expected = windows.flatten(-2).sum(-1) >= 5
        assert torch.equal(_median3x3(windows)[:, 1, 1], expected.to(windows.dtype))

    @settings(max_examples=50, deadline=None)
    @given(luma_batches)
    def test_fast_path_equals_generic(self, batch):
        x = torch.as_tensor(batch)
        expected = filters.median_filter(x, 3)
        assert torch.equal(_median3x3(x), expected)
        assert torch.equal(_median3x3(x.clone().requires_grad_()).detach(), expected)

    def test_gradient_reaches_one_sample_per_output(self):
        x = torch.full((1, 4, 5), 0.5, requires_grad=True)  # all ties
        median_denoise(x, 3).sum().backward()
        assert x.grad.sum() == 20 and torch.equal(x.grad, x.grad.round()) and x.grad.min() >= 0

    def test_fast_path_gradient_equals_generic(self):
        x = distinct((2, 6, 7)).requires_grad_()
        weights = torch.rand(2, 6, 7, dtype=torch.float64)
        (fast,) = torch.autograd.grad((median_denoise(x, 3) * weights).sum(), x)
        (generic,) = torch.autograd.grad((filters.median_filter(x, 3) * weights).sum(), x)
        torch.testing.assert_close(fast, generic, rtol=0, atol=1e-14)  # same samples; sums in another order

    @pytest.mark.parametrize("size", [1, 3, 5])
    def test_gradcheck(self, size):
        x = distinct((2, 5, 6)).requires_grad_()
        assert torch.autograd.gradcheck(lambda t: median_denoise(t, size), (x,))
