"""ispkit.filters: every torch filter equals its scipy.ndimage namesake, borders included."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage as ndi
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.ndimage._filters import _gaussian_kernel1d
from support import planes

from ispkit.filters import (
    BORDER_MODES,
    convolve2d,
    correlate1d,
    correlate2d,
    gaussian_filter,
    gaussian_kernel1d,
    median_filter,
    pad2d,
    pad_indices,
)

SETTINGS = settings(max_examples=25, deadline=None)
TOL = {torch.float64: 1e-12, torch.float32: 1e-5}
INDEX_MODES = tuple(m for m in BORDER_MODES if m != "constant")
# scipy mode -> np.pad mode (module docstring table)
NP_PAD = {"reflect": "symmetric", "mirror": "reflect", "nearest": "edge", "wrap": "wrap"}

# tiny sizes (the pad exceeds the image) mixed with ordinary ones, even and odd
TINY = [(1, 1), (1, 5), (5, 1), (2, 2), (3, 3), (1, 2), (2, 1)]
sizes = st.one_of(st.sampled_from(TINY), st.tuples(st.integers(1, 9), st.integers(1, 9)))


@st.composite
def any_planes(draw):
    h, w = draw(sizes)
    return draw(planes(h, w))


odd = st.sampled_from([1, 3, 5, 7, 9, 11])


@st.composite
def kernels(draw, shape=None):
    shape = shape if shape is not None else (draw(odd), draw(odd))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    k = rng.uniform(-1.0, 1.0, shape)
    return k / np.abs(k).sum()  # unit L1 norm, as a filter has: float32 rounding stays ~1e-7


def _torch(x: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
    return torch.as_tensor(np.ascontiguousarray(x), dtype=dtype)


def _assert_close(got: torch.Tensor, expected: np.ndarray, dtype: torch.dtype, what: str = "") -> None:
    got = got.detach().to(torch.float64).numpy()
    assert got.shape == expected.shape, (what, got.shape, expected.shape)
    err = np.abs(got - expected).max()
    assert err <= TOL[dtype], f"{what} [{dtype}]: max error {err:.3g} > {TOL[dtype]}"


# -- pad_indices / pad2d ----------------------------------------------------------------


class TestPadIndices:
    @pytest.mark.parametrize(
        ("mode", "expected"),
        [
            ("reflect", [1, 0, 0, 1, 2, 3, 3, 2]),
            ("mirror", [2, 1, 0, 1, 2, 3, 2, 1]),
            ("nearest", [0, 0, 0, 1, 2, 3, 3, 3]),
            ("wrap", [2, 3, 0, 1, 2, 3, 0, 1]),
        ],
    )
    def test_known_values(self, mode, expected):
        assert pad_indices(4, 2, 2, mode).tolist() == expected

    @pytest.mark.parametrize(
        ("mode", "expected"),
        [
            # pads wider than the image: periodic extension
            ("reflect", [0, 1, 1, 0, 0, 1, 1, 0, 0, 1]),
            ("mirror", [0, 1, 0, 1, 0, 1, 0, 1, 0, 1]),
            ("nearest", [0, 0, 0, 0, 0, 1, 1, 1, 1, 1]),
            ("wrap", [0, 1, 0, 1, 0, 1, 0, 1, 0, 1]),
        ],
    )
    def test_known_values_pad_wider_than_image(self, mode, expected):
        assert pad_indices(2, 4, 4, mode).tolist() == expected

    @pytest.mark.parametrize("mode", INDEX_MODES)
    def test_single_pixel_repeats(self, mode):
        assert pad_indices(1, 3, 2, mode).tolist() == [0] * 6

    def test_asymmetric_pad_and_no_pad(self):
        assert pad_indices(3, 0, 0, "reflect").tolist() == [0, 1, 2]
        assert pad_indices(3, 1, 0, "wrap").tolist() == [2, 0, 1, 2]
        assert pad_indices(3, 0, 2, "mirror").tolist() == [0, 1, 2, 1, 0]

    @pytest.mark.parametrize("mode", INDEX_MODES)
    @pytest.mark.parametrize("n", [1, 2, 3, 4, 5])
    @pytest.mark.parametrize("r", [0, 1, 2, 5, 8])
    def test_equals_scipy_extension(self, mode, n, r):
        """A delta kernel at offset j makes scipy output the extended signal at i + j - r."""
        idx = pad_indices(n, r, r, mode).numpy()
        signal = np.arange(n, dtype=float)
        for j in range(2 * r + 1):
            delta = np.zeros(2 * r + 1)
            delta[j] = 1.0
            shifted = ndi.correlate1d(signal, delta, mode=mode)
            np.testing.assert_array_equal(shifted, idx[j : j + n])

    @pytest.mark.parametrize("mode", INDEX_MODES)
    @pytest.mark.parametrize("n", [2, 3, 6])
    def test_equals_numpy_pad_when_pad_fits(self, mode, n):
        r = n - 1 if mode in ("mirror",) else n
        expected = np.pad(np.arange(n), (r, r), mode=NP_PAD[mode])
        assert pad_indices(n, r, r, mode).tolist() == expected.tolist()

    @pytest.mark.parametrize("mode", ["constant", "symmetric", "edge", "grid-wrap", ""])
    def test_unknown_mode_raises(self, mode):
        with pytest.raises(ValueError, match="unknown border mode"):
            pad_indices(4, 1, 1, mode)


class TestPad2d:
    def test_constant_uses_cval(self):
        x = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
        out = pad2d(x, (1, 0, 0, 2), "constant", cval=-1.0)
        assert out.tolist() == [[-1.0, -1.0, -1.0, -1.0], [1.0, 2.0, -1.0, -1.0], [3.0, 4.0, -1.0, -1.0]]

    @pytest.mark.parametrize("mode", INDEX_MODES)
    def test_matches_numpy_pad(self, mode):
        x = np.arange(12.0).reshape(3, 4)
        out = pad2d(torch.tensor(x)[None, None], (2, 1, 3, 2), mode)[0, 0].numpy()
        np.testing.assert_array_equal(out, np.pad(x, ((2, 1), (3, 2)), mode=NP_PAD[mode]))

    def test_unknown_mode_raises(self):
        with pytest.raises(ValueError, match="unknown border mode"):
            pad2d(torch.zeros(2, 2), (1, 1, 1, 1), "bogus")


# -- correlate / convolve ---------------------------------------------------------------


DTYPES = (torch.float64, torch.float32)


class TestCorrelate2d:
    """Every border mode and both dtypes are checked on each drawn plane and kernel."""

    @SETTINGS
    @given(x=any_planes(), k=kernels())
    def test_equals_scipy_correlate(self, x, k):
        for mode in BORDER_MODES:
            expected = ndi.correlate(x, k, mode=mode)
            for dtype in DTYPES:
                _assert_close(correlate2d(_torch(x, dtype), _torch(k, dtype), mode), expected, dtype, mode)

    @SETTINGS
    @given(x=any_planes(), k=kernels())
    def test_equals_scipy_convolve(self, x, k):
        for mode in BORDER_MODES:
            expected = ndi.convolve(x, k, mode=mode)
            for dtype in DTYPES:
                _assert_close(convolve2d(_torch(x, dtype), _torch(k, dtype), mode), expected, dtype, mode)

    @SETTINGS
    @given(x=any_planes(), k=kernels(), cval=st.floats(-2.0, 2.0))
    def test_constant_value(self, x, k, cval):
        got = correlate2d(_torch(x, torch.float64), _torch(k, torch.float64), "constant", cval=cval)
        _assert_close(got, ndi.correlate(x, k, mode="constant", cval=cval), torch.float64)
        got = convolve2d(_torch(x, torch.float64), _torch(k, torch.float64), "constant", cval=cval)
        _assert_close(got, ndi.convolve(x, k, mode="constant", cval=cval), torch.float64)

    @pytest.mark.parametrize("mode", BORDER_MODES)
    def test_leading_batch_dims(self, mode):
        rng = np.random.default_rng(0)
        x = rng.random((2, 3, 5, 4))
        k = rng.normal(size=(3, 5))
        got = correlate2d(torch.tensor(x), torch.tensor(k), mode)
        assert got.shape == x.shape
        expected = np.stack([[ndi.correlate(p, k, mode=mode) for p in img] for img in x])
        _assert_close(got, expected, torch.float64)
        got = convolve2d(torch.tensor(x[0]), torch.tensor(k), mode)
        _assert_close(got, np.stack([ndi.convolve(p, k, mode=mode) for p in x[0]]), torch.float64)

    @pytest.mark.parametrize("mode", BORDER_MODES)
    def test_gradcheck_input_and_kernel(self, mode):
        rng = np.random.default_rng(1)
        for shape in [(2, 3), (1, 1)]:
            x = torch.tensor(rng.random(shape), requires_grad=True)
            k = torch.tensor(rng.normal(size=(3, 5)), requires_grad=True)
            assert torch.autograd.gradcheck(lambda a, b: correlate2d(a, b, mode), (x, k))
            assert torch.autograd.gradcheck(lambda a, b: convolve2d(a, b, mode), (x, k))


class TestCorrelate2dKnownValues:
    def test_identity_and_shift(self):
        x = torch.arange(12.0, dtype=torch.float64).reshape(3, 4)
        delta = torch.zeros(3, 3, dtype=torch.float64)
        delta[1, 1] = 1.0
        assert torch.equal(correlate2d(x, delta), x)
        right = torch.zeros(3, 3, dtype=torch.float64)
        right[1, 2] = 1.0  # correlate: out[i, j] = x[i, j + 1]
        assert correlate2d(x, right, "nearest")[0].tolist() == [1.0, 2.0, 3.0, 3.0]
        # convolve flips the kernel: out[i, j] = x[i, j - 1]
        assert convolve2d(x, right, "nearest")[0].tolist() == [0.0, 0.0, 1.0, 2.0]

    def test_box_sum_with_constant_border(self):
        x = torch.ones(2, 2, dtype=torch.float64)
        out = correlate2d(x, torch.ones(3, 3, dtype=torch.float64), "constant")
        assert out.tolist() == [[4.0, 4.0], [4.0, 4.0]]
        out = correlate2d(x, torch.ones(3, 3, dtype=torch.float64), "constant", cval=1.0)
        assert out.tolist() == [[9.0, 9.0], [9.0, 9.0]]


class TestKernelStacks:
    """A stack ``(C, kh, kw)`` filters channel ``c`` of ``(*, C, H, W)`` with kernel ``c``."""

    @SETTINGS
    @given(x=any_planes(), data=st.data(), mode=st.sampled_from(BORDER_MODES), n=st.integers(1, 2))
    def test_each_channel_matches_scipy(self, x, data, mode, n):
        stack = np.stack([data.draw(kernels(shape=(3, 5))) for _ in range(3)])
        batch = np.stack([np.stack([x, 1 - x, x**2]) for _ in range(n)])  # (n, 3, H, W)
        for fn, ref in ((correlate2d, ndi.correlate), (convolve2d, ndi.convolve)):
            expected = np.stack([[ref(img[c], stack[c], mode=mode) for c in range(3)] for img in batch])
            _assert_close(fn(_torch(batch, torch.float64), torch.from_numpy(stack), mode), expected, torch.float64, fn.__name__)

    def test_gradcheck_wrt_stack(self):
        x = torch.rand(2, 3, 5, 6, dtype=torch.float64, requires_grad=True)
        stack = torch.rand(3, 3, 3, dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(lambda x, k: convolve2d(x, k, "mirror"), (x, stack))

    def test_channel_count_must_match(self):
        with pytest.raises(ValueError, match=r"a stack of 3 kernels needs x of shape \(\*, 3, H, W\), got \(2, 4, 5, 5\)"):
            correlate2d(torch.zeros(2, 4, 5, 5), torch.zeros(3, 3, 3))


class TestStripPath:
    """Few tall planes are cut into overlapping strips convolved as extra channels."""

    @pytest.mark.parametrize("shape", [(1, 64, 9), (1, 97, 5), (2, 130, 7), (3, 1, 200, 4)])
    @pytest.mark.parametrize("mode", BORDER_MODES)
    def test_matches_scipy(self, shape, mode):
        x = np.random.default_rng(sum(shape)).random(shape)
        k = np.random.default_rng(1).random((5, 3))
        expected = np.stack([ndi.correlate(p, k, mode=mode) for p in x.reshape(-1, *shape[-2:])]).reshape(shape)
        got = correlate2d(torch.from_numpy(x), torch.from_numpy(k), mode).numpy()
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)

    def test_gradcheck(self):
        x = torch.rand(1, 70, 6, dtype=torch.float64, requires_grad=True)
        k = torch.rand(3, 3, dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(lambda x, k: correlate2d(x, k, "reflect"), (x, k))


class TestCorrelate2dErrors:
    @pytest.mark.parametrize("shape", [(2, 3), (3, 2), (4, 4), (0, 1)])
    def test_even_kernel(self, shape):
        with pytest.raises(ValueError, match="odd"):
            correlate2d(torch.zeros(4, 4), torch.zeros(shape))
        with pytest.raises(ValueError, match="odd"):
            convolve2d(torch.zeros(4, 4), torch.zeros(shape))

    def test_unknown_mode(self):
        with pytest.raises(ValueError, match="unknown border mode 'symmetric'"):
            correlate2d(torch.zeros(4, 4), torch.zeros(3, 3), "symmetric")


# -- correlate1d ------------------------------------------------------------------------


class TestCorrelate1d:
    @SETTINGS
    @given(x=any_planes(), n=odd, seed=st.integers(0, 2**32 - 1))
    def test_equals_scipy(self, x, n, seed):
        w = np.random.default_rng(seed).uniform(-1, 1, n)
        w /= np.abs(w).sum()
        for mode in BORDER_MODES:
            for axis in (-1, -2):
                expected = ndi.correlate1d(x, w, axis=axis, mode=mode)
                for dtype in DTYPES:
                    got = correlate1d(_torch(x, dtype), _torch(w, dtype), axis, mode)
                    _assert_close(got, expected, dtype, f"{mode}, axis {axis}")

    @pytest.mark.parametrize("mode", BORDER_MODES)
    def test_positive_axis_and_batch(self, mode):
        rng = np.random.default_rng(2)
        x = rng.random((2, 3, 4, 5))
        w = rng.normal(size=5)
        for axis in (2, 3):
            got = correlate1d(torch.tensor(x), torch.tensor(w), axis, mode)
            _assert_close(got, ndi.correlate1d(x, w, axis=axis, mode=mode), torch.float64)

    @pytest.mark.parametrize("mode", BORDER_MODES)
    def test_gradcheck(self, mode):
        rng = np.random.default_rng(3)
        x = torch.tensor(rng.random((2, 3, 3)), requires_grad=True)
        w = torch.tensor(rng.normal(size=5), requires_grad=True)
        for axis in (-1, -2):
            assert torch.autograd.gradcheck(lambda a, b, axis=axis: correlate1d(a, b, axis, mode), (x, w))


class TestCorrelate1dErrors:
    def test_even_weights(self):
        with pytest.raises(ValueError, match="odd length, got 4"):
            correlate1d(torch.zeros(4, 4), torch.zeros(4), -1)

    @pytest.mark.parametrize("axis", [-3, 0, 5])
    def test_bad_axis(self, axis):
        with pytest.raises(ValueError, match="axis must be -1 or -2"):
            correlate1d(torch.zeros(2, 4, 4), torch.ones(3), axis)


# -- gaussian ---------------------------------------------------------------------------


class TestGaussianKernel1d:
    @pytest.mark.parametrize("sigma", [0.1, 0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 3.7, 5.0])
    @pytest.mark.parametrize("truncate", [4.0, 2.5, 1.0])
    def test_equals_scipy_weights(self, sigma, truncate):
        radius = int(truncate * sigma + 0.5)
        expected = _gaussian_kernel1d(sigma, 0, radius)[::-1]
        got = gaussian_kernel1d(sigma, truncate)
        assert got.dtype == torch.float64
        assert got.shape == (2 * radius + 1,)
        np.testing.assert_allclose(got.numpy(), expected, rtol=0, atol=1e-15)

    def test_equals_formula(self):
        sigma = 1.3
        x = np.arange(-5, 6)
        phi = np.exp(-0.5 * (x / sigma) ** 2)
        np.testing.assert_allclose(gaussian_kernel1d(sigma).numpy(), phi / phi.sum(), rtol=0, atol=1e-15)

    def test_known_values(self):
        w = gaussian_kernel1d(0.5).numpy()
        np.testing.assert_allclose(w, [0.000263865, 0.106450772, 0.786570726, 0.106450772, 0.000263865], atol=1e-9)
        assert w.sum() == pytest.approx(1.0, abs=1e-15)

    def test_dtype_and_tensor_sigma(self):
        w = gaussian_kernel1d(torch.tensor(1.0), dtype=torch.float32)
        assert w.dtype == torch.float32
        np.testing.assert_allclose(w.numpy(), _gaussian_kernel1d(1.0, 0, 4), atol=1e-7)

    @pytest.mark.parametrize("sigma", [0.7, 1.3, 2.2])
    def test_gradcheck_sigma(self, sigma):
        s = torch.tensor(sigma, dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(lambda t: gaussian_kernel1d(t), (s,))

    def test_gradient_value(self):
        """d/dσ of the centre weight is negative (wider Gaussian, lower peak)."""
        s = torch.tensor(1.0, dtype=torch.float64, requires_grad=True)
        gaussian_kernel1d(s)[4].backward()
        assert s.grad is not None and s.grad.item() < 0


SIGMAS = (0.3, 0.5, 0.8, 1.0, 2.0, 3.5)


class TestGaussianFilter:
    @SETTINGS
    @given(x=any_planes())
    def test_equals_scipy(self, x):
        for sigma in SIGMAS:
            for mode in BORDER_MODES:
                expected = ndi.gaussian_filter(x, sigma, mode=mode)
                for dtype in DTYPES:
                    got = gaussian_filter(_torch(x, dtype), sigma, mode=mode)
                    _assert_close(got, expected, dtype, f"{mode}, sigma {sigma}")

    @pytest.mark.parametrize("mode", BORDER_MODES)
    @pytest.mark.parametrize("truncate", [1.0, 2.0])
    def test_truncate_and_batch(self, mode, truncate):
        x = np.random.default_rng(4).random((2, 3, 6, 7))
        got = gaussian_filter(torch.tensor(x), 1.2, truncate=truncate, mode=mode)
        expected = np.stack([[ndi.gaussian_filter(p, 1.2, truncate=truncate, mode=mode) for p in img] for img in x])
        _assert_close(got, expected, torch.float64)

    @pytest.mark.parametrize("sigma", [0.0, 1e-16])
    def test_vanishing_sigma_is_identity_as_in_scipy(self, sigma):
        """scipy skips axes with sigma <= 1e-15, so sigma = 0 returns the input unchanged."""
        x = np.random.default_rng(8).random((3, 4))
        np.testing.assert_array_equal(ndi.gaussian_filter(x, sigma), x)
        got = gaussian_filter(torch.tensor(x), sigma)
        np.testing.assert_array_equal(got.numpy(), x)

    @pytest.mark.parametrize("mode", BORDER_MODES)
    def test_gradcheck_sigma_and_input(self, mode):
        x = torch.tensor(np.random.default_rng(5).random((2, 3, 4)), requires_grad=True)
        s = torch.tensor(0.9, dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(lambda a, b: gaussian_filter(a, b, mode=mode), (x, s))


# -- median -----------------------------------------------------------------------------


class TestMedianFilter:
    @SETTINGS
    @given(x=any_planes())
    def test_equals_scipy(self, x):
        for size in (1, 3, 5):
            for mode in INDEX_MODES:
                expected = ndi.median_filter(x, size=size, mode=mode)
                for dtype in DTYPES:
                    got = median_filter(_torch(x, dtype), size, mode)
                    _assert_close(got, expected, dtype, f"{mode}, size {size}")

    @pytest.mark.parametrize("mode", INDEX_MODES)
    def test_batch(self, mode):
        x = np.random.default_rng(6).random((2, 3, 5, 6))
        got = median_filter(torch.tensor(x), 3, mode)
        expected = np.stack([[ndi.median_filter(p, size=3, mode=mode) for p in img] for img in x])
        _assert_close(got, expected, torch.float64)

    @pytest.mark.parametrize("mode", INDEX_MODES)
    def test_gradcheck(self, mode):
        x = torch.tensor(np.random.default_rng(7).random((4, 5)), requires_grad=True)
        assert torch.autograd.gradcheck(lambda a: median_filter(a, 3, mode), (x,))


class TestMedianFilterKnownValues:
    def test_removes_impulse(self):
        x = torch.zeros(5, 5, dtype=torch.float64)
        x[2, 2] = 1.0
        assert torch.equal(median_filter(x, 3), torch.zeros(5, 5, dtype=torch.float64))

    def test_size_one_is_identity(self):
        x = torch.rand(3, 4, dtype=torch.float64)
        assert torch.equal(median_filter(x, 1), x)

    def test_gradient_goes_to_median_sample(self):
        x = torch.tensor([[0.1, 0.9, 0.5], [0.3, 0.2, 0.8], [0.7, 0.4, 0.6]], dtype=torch.float64, requires_grad=True)
        out = median_filter(x, 3, "nearest")
        assert out[1, 1].item() == 0.5
        out[1, 1].backward()
        expected = torch.zeros(3, 3, dtype=torch.float64)
        expected[0, 2] = 1.0
        assert torch.equal(x.grad, expected)


class TestMedianFilterErrors:
    @pytest.mark.parametrize("size", [0, 2, 4, -1])
    def test_bad_size(self, size):
        with pytest.raises(ValueError, match="positive odd integer"):
            median_filter(torch.zeros(4, 4), size)

    def test_unknown_mode(self):
        with pytest.raises(ValueError, match="unknown border mode"):
            median_filter(torch.zeros(4, 4), 3, "edge")
