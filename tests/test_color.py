"""ispkit.color: RGB <-> YUV exactly as scikit-image does it, in both backends."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from skimage.color import colorconv, rgb2yuv, yuv2rgb
from support import rgb_batches

from ispkit.color import RGB_FROM_YUV, YUV_FROM_RGB, rgb_to_yuv, rgb_to_yuv_numpy, yuv_to_rgb, yuv_to_rgb_numpy

SETTINGS = settings(max_examples=25, deadline=None)


class TestMatrices:
    def test_forward_equals_skimage_exactly(self):
        assert YUV_FROM_RGB.dtype == np.float64
        np.testing.assert_array_equal(YUV_FROM_RGB, colorconv.yuv_from_rgb)

    def test_inverse_equals_skimage_exactly(self):
        np.testing.assert_array_equal(RGB_FROM_YUV, colorconv.rgb_from_yuv)

    def test_bt601_luma_weights(self):
        assert YUV_FROM_RGB[0].tolist() == [0.299, 0.587, 0.114]

    def test_inverse(self):
        np.testing.assert_allclose(RGB_FROM_YUV @ YUV_FROM_RGB, np.eye(3), atol=1e-12)


class TestNumpy:
    def test_equals_skimage_channel_last(self):
        rgb = np.random.default_rng(0).random((3, 4, 6))
        np.testing.assert_array_equal(rgb_to_yuv_numpy(rgb), np.moveaxis(rgb2yuv(np.moveaxis(rgb, 0, -1)), -1, 0))
        np.testing.assert_array_equal(yuv_to_rgb_numpy(rgb), np.moveaxis(yuv2rgb(np.moveaxis(rgb, 0, -1)), -1, 0))

    def test_is_the_matrix_per_pixel(self):
        rgb = np.random.default_rng(1).random((3, 2, 5))
        np.testing.assert_allclose(rgb_to_yuv_numpy(rgb), np.einsum("ij,jhw->ihw", YUV_FROM_RGB, rgb), atol=1e-15)

    def test_white_and_grey(self):
        yuv = rgb_to_yuv_numpy(np.ones((3, 2, 2)))
        assert yuv[0] == pytest.approx(np.ones((2, 2)), abs=1e-15)
        assert np.abs(yuv[1:]).max() < 1e-15
        grey = rgb_to_yuv_numpy(np.full((3, 1, 1), 0.4))
        assert grey.ravel() == pytest.approx([0.4, 0.0, 0.0], abs=1e-15)

    def test_known_primaries(self):
        red = rgb_to_yuv_numpy(np.array([1.0, 0.0, 0.0]).reshape(3, 1, 1)).ravel()
        np.testing.assert_array_equal(red, [0.299, -0.14714119, 0.61497538])
        blue = rgb_to_yuv_numpy(np.array([0.0, 0.0, 1.0]).reshape(3, 1, 1)).ravel()
        np.testing.assert_array_equal(blue, [0.114, 0.43601035, -0.10001026])


class TestTorch:
    @SETTINGS
    @given(batch=rgb_batches())
    def test_equals_numpy(self, batch):
        expected_yuv = np.stack([rgb_to_yuv_numpy(x) for x in batch])
        expected_rgb = np.stack([yuv_to_rgb_numpy(x) for x in batch])
        for dtype, tol in ((torch.float64, 1e-12), (torch.float32, 1e-5)):
            x = torch.as_tensor(batch, dtype=dtype)
            yuv = rgb_to_yuv(x)
            rgb = yuv_to_rgb(x)
            assert yuv.dtype == dtype and yuv.shape == batch.shape
            assert np.abs(yuv.double().numpy() - expected_yuv).max() <= tol
            assert np.abs(rgb.double().numpy() - expected_rgb).max() <= tol

    @SETTINGS
    @given(batch=rgb_batches())
    def test_round_trip(self, batch):
        x = torch.as_tensor(batch, dtype=torch.float64)
        np.testing.assert_allclose(yuv_to_rgb(rgb_to_yuv(x)).numpy(), batch, atol=1e-12)
        np.testing.assert_allclose(rgb_to_yuv(yuv_to_rgb(x)).numpy(), batch, atol=1e-12)
        for image in batch:
            np.testing.assert_allclose(yuv_to_rgb_numpy(rgb_to_yuv_numpy(image)), image, atol=1e-12)

    def test_unbatched_image(self):
        rgb = np.random.default_rng(2).random((3, 4, 4))
        np.testing.assert_allclose(rgb_to_yuv(torch.tensor(rgb)).numpy(), rgb_to_yuv_numpy(rgb), atol=1e-15)

    @pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
    def test_y_of_white_is_one(self, dtype):
        yuv = rgb_to_yuv(torch.ones(2, 3, 2, 2, dtype=dtype))
        tol = 1e-15 if dtype == torch.float64 else 1e-7
        assert torch.all((yuv[:, 0] - 1.0).abs() <= tol)
        assert torch.all(yuv[:, 1:].abs() <= 1e-7)

    def test_gradcheck(self):
        x = torch.rand(2, 3, 2, 3, dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(rgb_to_yuv, (x,))
        assert torch.autograd.gradcheck(yuv_to_rgb, (x,))

    def test_gradient_of_y_is_luma_weights(self):
        x = torch.rand(1, 3, 1, 1, dtype=torch.float64, requires_grad=True)
        rgb_to_yuv(x)[:, 0].sum().backward()
        assert x.grad.ravel().tolist() == [0.299, 0.587, 0.114]
