"""ispkit.arrays: the array contract checks and their messages, for numpy and torch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ispkit.arrays import check_finite, check_float, check_mosaic, check_plane, check_raw_data, check_rgb
from ispkit.errors import InputError


def numpy_maker(shape, dtype=np.float64):
    return np.zeros(shape, dtype=dtype)


def torch_maker(shape, dtype=torch.float64):
    return torch.zeros(shape, dtype=dtype)


BACKENDS = pytest.mark.parametrize("make", [numpy_maker, torch_maker], ids=["numpy", "torch"])


class TestCheckFloat:
    @pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
    def test_numpy_floats_pass(self, dtype):
        check_float(np.zeros((2, 2), dtype=dtype), "x")

    @pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
    def test_torch_floats_pass(self, dtype):
        check_float(torch.zeros(2, 2, dtype=dtype), "x")

    @pytest.mark.parametrize(
        "x",
        [
            np.zeros((2, 2), dtype=np.uint16),
            np.zeros((2, 2), dtype=np.int32),
            np.zeros((2, 2), dtype=bool),
            np.zeros((2, 2), dtype=np.complex128),
            torch.zeros(2, 2, dtype=torch.int16),
            torch.zeros(2, 2, dtype=torch.uint8),
            torch.zeros(2, 2, dtype=torch.bool),
            torch.zeros(2, 2, dtype=torch.complex64),
        ],
        ids=["np-uint16", "np-int32", "np-bool", "np-complex", "t-int16", "t-uint8", "t-bool", "t-complex"],
    )
    def test_non_float_rejected_with_normalisation_hint(self, x):
        with pytest.raises(InputError) as info:
            check_float(x, "demosaic input")
        message = str(info.value)
        assert message.startswith("demosaic input: expected floating-point data normalised to [0, 1]")
        assert f"got dtype {x.dtype}" in message
        assert "white level" in message
        assert "65535" in message

    @pytest.mark.parametrize("x", [[[0.0, 1.0]], 1.0, "raw.dng", None])
    def test_non_arrays_rejected(self, x):
        with pytest.raises(InputError, match=f"where: expected a numpy array or torch tensor, got {type(x).__name__}"):
            check_float(x, "where")

    def test_input_error_is_value_error(self):
        with pytest.raises(ValueError, match="x: expected floating-point data"):
            check_float(np.zeros(2, dtype=int), "x")


@BACKENDS
class TestCheckMosaic:
    def test_valid(self, make):
        check_mosaic(make((4, 6)), "raw", batched=False)
        check_mosaic(make((2, 4, 6)), "raw", batched=True)
        check_mosaic(make((1, 2, 2)), "raw", batched=True)

    @pytest.mark.parametrize("shape", [(3, 4), (4, 5), (5, 5), (1, 1)])
    def test_odd_sizes(self, make, shape):
        with pytest.raises(InputError) as info:
            check_mosaic(make(shape), "raw", batched=False)
        message = str(info.value)
        assert message.startswith("raw: ")
        assert "height and width must be even" in message
        assert f"got {shape[0]}×{shape[1]}" in message

    def test_odd_sizes_batched(self, make):
        with pytest.raises(InputError, match="must be even; got 4×3"):
            check_mosaic(make((2, 4, 3)), "raw", batched=True)

    @pytest.mark.parametrize("shape", [(4,), (2, 4, 4), (1, 3, 4, 4)])
    def test_wrong_ndim_unbatched(self, make, shape):
        with pytest.raises(InputError) as info:
            check_mosaic(make(shape), "raw", batched=False)
        message = str(info.value)
        assert "expected a raw mosaic (H, W)" in message
        assert f"got a {len(shape)}-d" in message
        assert str(tuple(shape)) in message

    @pytest.mark.parametrize("shape", [(4, 4), (1, 1, 4, 4)])
    def test_wrong_ndim_batched(self, make, shape):
        with pytest.raises(InputError, match=r"expected a raw mosaic \(N, H, W\)"):
            check_mosaic(make(shape), "raw", batched=True)

    def test_kind_named(self, make):
        with pytest.raises(InputError) as info:
            check_mosaic(make((4,)), "raw", batched=False)
        assert ("tensor" if make is torch_maker else "array") in str(info.value)

    def test_integer_checked_first(self, make):
        dtype = np.uint16 if make is numpy_maker else torch.int32
        with pytest.raises(InputError, match="white level"):
            check_mosaic(make((3,), dtype), "raw", batched=False)


@BACKENDS
class TestCheckRgb:
    def test_valid(self, make):
        check_rgb(make((3, 4, 5)), "rgb", batched=False)
        check_rgb(make((2, 3, 1, 1)), "rgb", batched=True)

    @pytest.mark.parametrize("shape", [(4, 5), (4, 5, 3), (1, 3, 4, 5), (3, 4)])
    def test_wrong_shape_unbatched(self, make, shape):
        with pytest.raises(InputError) as info:
            check_rgb(make(shape), "rgb", batched=False)
        message = str(info.value)
        assert "expected a channel-first RGB view (3, H, W)" in message
        assert f"got shape {tuple(shape)}" in message

    @pytest.mark.parametrize("shape", [(3, 4, 5), (2, 4, 5, 3), (2, 1, 4, 5)])
    def test_wrong_shape_batched(self, make, shape):
        with pytest.raises(InputError, match=r"expected a channel-first RGB view \(N, 3, H, W\)"):
            check_rgb(make(shape), "rgb", batched=True)

    def test_integer_rejected(self, make):
        dtype = np.uint8 if make is numpy_maker else torch.uint8
        with pytest.raises(InputError, match="normalised"):
            check_rgb(make((3, 2, 2), dtype), "rgb", batched=False)


@BACKENDS
class TestCheckPlane:
    def test_valid(self, make):
        check_plane(make((3, 5)), "y", batched=False)  # odd sizes are fine for a plane
        check_plane(make((2, 3, 5)), "y", batched=True)

    def test_wrong_ndim(self, make):
        with pytest.raises(InputError, match=r"y: expected a plane \(H, W\), got shape \(1, 3, 5\)"):
            check_plane(make((1, 3, 5)), "y", batched=False)
        with pytest.raises(InputError, match=r"y: expected a plane \(N, H, W\), got shape \(3, 5\)"):
            check_plane(make((3, 5)), "y", batched=True)


class TestCheckFinite:
    @pytest.mark.parametrize("lib", ["numpy", "torch"])
    def test_counts_nan_and_inf(self, lib):
        x = np.zeros((4, 4))
        x[0, 0] = np.nan
        x[1, 2] = np.inf
        x[3, 3] = -np.inf
        if lib == "torch":
            x = torch.tensor(x)
        with pytest.raises(InputError, match=r"^raw: 3 value\(s\) are NaN or infinite; raw data must be finite$"):
            check_finite(x, "raw")

    @pytest.mark.parametrize("lib", ["numpy", "torch"])
    def test_single_nan(self, lib):
        x = np.full((2, 2), 0.5)
        x[1, 1] = np.nan
        x = torch.tensor(x, dtype=torch.float32) if lib == "torch" else x.astype(np.float32)
        with pytest.raises(InputError, match=r"1 value\(s\)"):
            check_finite(x, "raw")

    @pytest.mark.parametrize("lib", ["numpy", "torch"])
    def test_finite_pass(self, lib):
        x = np.array([[0.0, 1.0], [-5.0, 1e300]])
        check_finite(torch.tensor(x) if lib == "torch" else x, "raw")


class TestCheckRawData:
    @pytest.mark.parametrize(("shape", "batched"), [((4, 6), False), ((2, 4, 6), True)])
    @pytest.mark.parametrize("make", [np.zeros, torch.zeros])
    def test_accepts_single_and_batch(self, make, shape, batched):
        assert check_raw_data(make(shape), "x") is batched

    @pytest.mark.parametrize(
        ("x", "kwargs", "message"),
        [
            (np.zeros((2, 2, 4, 4)), {}, r"x: expected a raw mosaic \(H, W\) or a batch \(N, H, W\), got shape \(2, 2, 4, 4\)"),
            (np.zeros((2, 4, 4)), {"batched": False}, r"expected a raw mosaic \(H, W\)"),
            (np.zeros((3, 4)), {}, "must be even"),
            (np.zeros((0, 4, 4)), {}, r"the mosaic is empty \(shape \(0, 4, 4\)\)"),
            (np.zeros((4, 4), dtype=np.uint16), {}, "white level"),
            (torch.full((4, 4), float("nan")), {}, "16 value"),
        ],
    )
    def test_rejects(self, x, kwargs, message):
        with pytest.raises(InputError, match=message):
            check_raw_data(x, "x", **kwargs)
