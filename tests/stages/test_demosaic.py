"""Demosaicing: library equality, golden images, backends agree (borders, ties, photographs and integer
raws included), the shift metamorphism, gradients, errors."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from support import (
    TOLERANCE,
    assert_backends_agree,
    assert_backends_agree_on_values,
    default_values,
    dn_raw_batches,
    float32_values,
    mosaic,
    natural_crop,
    natural_raw_batches,
    raw_batches,
    run_torch,
)

from ispkit.cfa import BAYER_PATTERNS, masks_torch, site_selectors
from ispkit.errors import InputError, ParameterError
from ispkit.stages.demosaic import (
    BILINEAR_KERNELS,
    Bilinear,
    Malvar2004,
    Menon2007,
    demosaic_bilinear,
    demosaic_bilinear_numpy,
    demosaic_malvar2004,
    demosaic_malvar2004_numpy,
    demosaic_menon2007,
    demosaic_menon2007_numpy,
)
from ispkit.stages.demosaic.menon2007 import _classifier, _green_estimates
from ispkit.stages.module import StageModule

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # colour's note that matplotlib is missing
    from colour_demosaicing import demosaicing_CFA_Bayer_bilinear, demosaicing_CFA_Bayer_Malvar2004, demosaicing_CFA_Bayer_Menon2007


STAGES = [pytest.param(s, id=s.method) for s in (Bilinear, Malvar2004, Menon2007)]
#: Every method with each setting that changes what it computes (``None``: the declared defaults).
CONFIGURED = [
    pytest.param(Bilinear, None, id="bilinear"),
    pytest.param(Malvar2004, {}, id="malvar2004"),
    pytest.param(Menon2007, {"refining_step": True}, id="menon2007"),
    pytest.param(Menon2007, {"refining_step": False}, id="menon2007-no-refining"),
]
SETTINGS = settings(max_examples=50, deadline=None)
REAL_SETTINGS = settings(max_examples=8, deadline=None)
#: How far (in pixels) an output pixel reads the mosaic: Menon's refining step reaches 11.
REACH = 12
#: The layout a mosaic has after ``np.roll(raw, 1, axis)``: one column over swaps the
#: colours within each row, one row down swaps the rows.
ROLLED = {
    -1: {"RGGB": "GRBG", "GRBG": "RGGB", "BGGR": "GBRG", "GBRG": "BGGR"},
    -2: {"RGGB": "GBRG", "GBRG": "RGGB", "BGGR": "GRBG", "GRBG": "BGGR"},
}
INTERIOR = (slice(None), slice(REACH, -REACH), slice(REACH, -REACH))
FIXED = np.random.default_rng(11).random((3, 6, 8))

# The examples of the colour-demosaicing 0.2.7 docstrings: CFA and the printed
# (8-decimal, channel-last) results.
CFA = {
    "RGGB": np.array([[0.30980393, 0.36078432, 0.30588236, 0.3764706], [0.35686275, 0.39607844, 0.36078432, 0.40000001]]),
    "BGGR": np.array([[0.3764706, 0.36078432, 0.40784314, 0.3764706], [0.35686275, 0.30980393, 0.36078432, 0.29803923]]),
}
DOCSTRING_EXAMPLES = {
    ("bilinear", "RGGB"): [
        [[0.69705884, 0.17941177, 0.09901961], [0.46176472, 0.4509804, 0.19803922], [0.45882354, 0.27450981, 0.19901961], [0.22941177, 0.5647059, 0.30000001]],
        [[0.23235295, 0.53529412, 0.29705883], [0.15392157, 0.26960785, 0.59411766], [0.15294118, 0.4509804, 0.59705884], [0.07647059, 0.18431373, 0.90000002]],
    ],
    ("bilinear", "BGGR"): [
        [[0.07745098, 0.17941177, 0.84705885], [0.15490197, 0.4509804, 0.5882353], [0.15196079, 0.27450981, 0.61176471], [0.22352942, 0.5647059, 0.30588235]],
        [[0.23235295, 0.53529412, 0.28235295], [0.4647059, 0.26960785, 0.19607843], [0.45588237, 0.4509804, 0.20392157], [0.67058827, 0.18431373, 0.10196078]],
    ],
    ("malvar2004", "RGGB"): [
        [[0.30980393, 0.31666668, 0.32941177], [0.33039216, 0.36078432, 0.38112746], [0.30588236, 0.32794118, 0.34877452], [0.36274511, 0.3764706, 0.38480393]],
        [[0.34828432, 0.35686275, 0.36568628], [0.35318628, 0.38186275, 0.39607844], [0.3379902, 0.36078432, 0.3754902], [0.37769609, 0.39558825, 0.40000001]],
    ],
    ("malvar2004", "BGGR"): [
        [[0.35539217, 0.37058825, 0.3764706], [0.34264707, 0.36078432, 0.37450981], [0.36568628, 0.39607844, 0.40784314], [0.36568629, 0.3764706, 0.3882353]],
        [
            [0.34411765, 0.35686275, 0.36200981],
            [0.30980393, 0.32990197, 0.34975491],
            [0.33039216, 0.36078432, 0.38063726],
            [0.29803923, 0.30441178, 0.31740197],
        ],
    ],
    ("menon2007", "RGGB"): [
        [[0.30980393, 0.35686275, 0.39215687], [0.30980393, 0.36078432, 0.39607844], [0.30588236, 0.36078432, 0.39019608], [0.32156864, 0.3764706, 0.40000001]],
        [[0.30980393, 0.35686275, 0.39215687], [0.30980393, 0.36078432, 0.39607844], [0.30588236, 0.36078432, 0.39019609], [0.32156864, 0.3764706, 0.40000001]],
    ],
    ("menon2007", "BGGR"): [
        [[0.30588236, 0.35686275, 0.3764706], [0.30980393, 0.36078432, 0.39411766], [0.29607844, 0.36078432, 0.40784314], [0.29803923, 0.3764706, 0.42352942]],
        [[0.30588236, 0.35686275, 0.3764706], [0.30980393, 0.36078432, 0.39411766], [0.29607844, 0.36078432, 0.40784314], [0.29803923, 0.3764706, 0.42352942]],
    ],
}
FUNCTIONS = [
    pytest.param(demosaic_bilinear_numpy, demosaic_bilinear, {"kernels": BILINEAR_KERNELS}, id="bilinear"),
    pytest.param(demosaic_malvar2004_numpy, demosaic_malvar2004, {}, id="malvar2004"),
    pytest.param(demosaic_menon2007_numpy, demosaic_menon2007, {"refining_step": True}, id="menon2007"),
]


def torch_values(values: dict, dtype: torch.dtype = torch.float64) -> dict:
    return {k: torch.tensor(v, dtype=dtype) if isinstance(v, np.ndarray) else v for k, v in values.items()}


def validated_kernels(kernels) -> dict[str, np.ndarray]:
    return {"kernels": Bilinear.param("kernels").validate(kernels, "demosaic.kernels")}


def configured(stage, values) -> dict:
    return default_values(stage) if values is None else values


class TestDemosaic:
    """The contract shared by the three methods."""

    @pytest.mark.parametrize("stage", STAGES)
    def test_declaration(self, stage):
        assert (stage.kind, stage.takes, stage.gives, stage.cfa_aware) == ("demosaic", "raw", "rgb", True)
        assert stage.describe()

    @pytest.mark.parametrize("stage", STAGES)
    def test_smoke(self, stage):
        values = default_values(stage)
        out = stage.numpy(FIXED[0], **values, pattern="GRBG")
        assert out.shape == (3, 6, 8) and out.dtype == np.float64
        for dtype in (torch.float32, torch.float64):
            out = stage.torch(torch.rand(2, 4, 6, dtype=dtype), **torch_values(values, dtype), pattern="gbrg")
            assert out.shape == (2, 3, 4, 6) and out.dtype == dtype

    @pytest.mark.parametrize(("numpy_fn", "torch_fn", "values"), FUNCTIONS)
    @pytest.mark.parametrize(
        ("bad", "message"),
        [
            (np.zeros((3, 4)), r"height and width must be even; got 3×4"),
            (np.zeros((4, 5)), r"height and width must be even; got 4×5"),
            (np.zeros((1, 4, 4)), r"expected a raw mosaic \(H, W\), got a 3-d array"),
            (np.zeros((4, 4), dtype=np.int64), r"expected floating-point data .* got dtype int64"),
        ],
        ids=["odd-height", "odd-width", "3-d", "int64"],
    )
    def test_numpy_rejects(self, numpy_fn, torch_fn, values, bad, message):
        with pytest.raises(InputError, match=rf"{numpy_fn.__name__}: .*{message}"):
            numpy_fn(bad, **values, pattern="RGGB")

    @pytest.mark.parametrize(("numpy_fn", "torch_fn", "values"), FUNCTIONS)
    @pytest.mark.parametrize(
        ("bad", "message"),
        [
            (torch.zeros(1, 3, 4), r"height and width must be even; got 3×4"),
            (torch.zeros(2, 4, 7), r"height and width must be even; got 4×7"),
            (torch.zeros(4, 4), r"expected a raw mosaic \(N, H, W\), got a 2-d tensor"),
            (torch.zeros(1, 1, 4, 4), r"expected a raw mosaic \(N, H, W\), got a 4-d tensor"),
            (torch.zeros(1, 4, 4, dtype=torch.int32), r"expected floating-point data .* got dtype torch.int32"),
        ],
        ids=["odd-height", "odd-width", "2-d", "4-d", "int32"],
    )
    def test_torch_rejects(self, numpy_fn, torch_fn, values, bad, message):
        with pytest.raises(InputError, match=rf"{torch_fn.__name__}: .*{message}"):
            torch_fn(bad, **torch_values(values), pattern="RGGB")

    @pytest.mark.parametrize(("numpy_fn", "torch_fn", "values"), FUNCTIONS)
    def test_unknown_pattern(self, numpy_fn, torch_fn, values):
        with pytest.raises(InputError, match=r"unknown CFA pattern 'RGBG'.*'RGGB'"):
            numpy_fn(FIXED[0], **values, pattern="RGBG")
        with pytest.raises(InputError, match=r"unknown CFA pattern 'XYZW'"):
            torch_fn(torch.from_numpy(FIXED), **torch_values(values), pattern="XYZW")

    @pytest.mark.parametrize("pattern", ["RGGB", "BGGR"])
    @pytest.mark.parametrize(("numpy_fn", "torch_fn", "values"), FUNCTIONS)
    def test_docstring_examples(self, numpy_fn, torch_fn, values, pattern):
        method = numpy_fn.__name__.split("_")[1]
        expected = np.moveaxis(np.array(DOCSTRING_EXAMPLES[method, pattern]), -1, 0)
        cfa = CFA[pattern]
        np.testing.assert_allclose(numpy_fn(cfa, **values, pattern=pattern), expected, rtol=0, atol=1e-8)
        got = torch_fn(torch.from_numpy(cfa)[None], **torch_values(values), pattern=pattern)[0]
        np.testing.assert_allclose(got.numpy(), expected, rtol=0, atol=1e-8)

    @pytest.mark.parametrize("pattern", ["GRBG", "BGGR"])
    @pytest.mark.parametrize("stage", STAGES)
    def test_batch_equals_one_by_one(self, stage, pattern):
        values = torch_values(default_values(stage))
        batch = torch.from_numpy(FIXED)
        whole = stage.torch(batch, **values, pattern=pattern)
        for image, out in zip(batch, whole, strict=True):
            np.testing.assert_allclose(stage.torch(image[None], **values, pattern=pattern)[0], out, rtol=0, atol=1e-14)

    @pytest.mark.parametrize("pattern", BAYER_PATTERNS)
    @pytest.mark.parametrize("stage", STAGES)
    def test_flat_colour_interior(self, stage, pattern):
        """A uniform colour is recovered wherever the filters read only genuine samples."""
        colour = {"R": 0.2, "G": 0.5, "B": 0.8}
        raw = np.tile(np.array([colour[c] for c in pattern]).reshape(2, 2), (5, 5))
        out = stage.numpy(raw, **default_values(stage), pattern=pattern)
        np.testing.assert_allclose(out[:, 2:-2, 2:-2], np.broadcast_to([[[0.2]], [[0.5]], [[0.8]]], (3, 6, 6)), atol=1e-14)

    @pytest.mark.parametrize("pattern", BAYER_PATTERNS)
    @pytest.mark.parametrize(("stage", "values"), CONFIGURED)
    def test_backends_agree_on_photographs(self, stage, values, pattern):
        """Crops at odd offsets of four photographs, 8-bit and on the 12-bit grid: full of exact ties."""
        values = configured(stage, values)
        for top, left, bits in ((101, 57, 8), (33, 211, 12)):
            batch = np.stack(
                [mosaic(natural_crop(name, top, left, 24, 32, bits), pattern) for name in ("astronaut", "coffee", "chelsea", "immunohistochemistry")]
            )
            assert_backends_agree_on_values(stage, batch, values, pattern)

    @pytest.mark.parametrize("pattern", BAYER_PATTERNS)
    @pytest.mark.parametrize(("stage", "values"), CONFIGURED)
    @REAL_SETTINGS
    @given(data=st.data())
    def test_backends_agree_on_natural_mosaics(self, stage, values, pattern, data):
        assert_backends_agree_on_values(stage, data.draw(natural_raw_batches(pattern)), configured(stage, values), pattern)

    @pytest.mark.parametrize("pattern", BAYER_PATTERNS)
    @pytest.mark.parametrize(("stage", "values"), CONFIGURED)
    @REAL_SETTINGS
    @given(batch=dn_raw_batches())
    def test_backends_agree_on_integer_raws(self, stage, values, pattern, batch):
        """12-, 14- and 16-bit counts over the white level."""
        assert_backends_agree_on_values(stage, batch, configured(stage, values), pattern)

    @pytest.mark.parametrize("axis", [-1, -2])
    @pytest.mark.parametrize("pattern", BAYER_PATTERNS)
    @pytest.mark.parametrize(("stage", "values"), CONFIGURED)
    def test_rolled_mosaic_is_the_neighbouring_layout(self, stage, values, pattern, axis):
        """Kornia-style metamorphism: a mosaic rolled by one pixel is a mosaic of the neighbouring
        layout, and demosaicing it as that layout rolls the interior of the result, in both backends."""
        values = configured(stage, values)
        raw = mosaic(natural_crop("astronaut", 101, 203, 2 * REACH + 16, 2 * REACH + 20), pattern)
        rolled, layout = np.roll(raw, 1, axis), ROLLED[axis][pattern]
        expected = np.roll(stage.run_numpy(raw, values, pattern), 1, axis)[INTERIOR]
        np.testing.assert_allclose(stage.run_numpy(rolled, values, layout)[INTERIOR], expected, rtol=0, atol=1e-12)
        for dtype, tol in TOLERANCE.items():
            expected = np.roll(run_torch(stage, raw[None], values, pattern, dtype)[0], 1, axis)[INTERIOR]
            np.testing.assert_allclose(run_torch(stage, rolled[None], values, layout, dtype)[0][INTERIOR], expected, rtol=0, atol=tol)
        # the interior really reads the layout: demosaicing the rolled mosaic as the old layout is far off
        assert np.abs(stage.run_numpy(rolled, values, pattern)[INTERIOR] - np.roll(stage.run_numpy(raw, values, pattern), 1, axis)[INTERIOR]).max() > 0.05

    def test_numpy_backends_import_neither_colour_nor_torch(self):
        """The NumPy references are written out (colour imports matplotlib and pandas), the torch twins import torch when called."""
        code = (
            "import sys, numpy as np; from ispkit.stages.demosaic import demosaic_malvar2004_numpy, demosaic_menon2007_numpy; "
            "raw = np.random.default_rng(0).random((8, 8)); demosaic_malvar2004_numpy(raw, pattern='RGGB'); "
            "demosaic_menon2007_numpy(raw, True, pattern='RGGB'); print(sorted(m for m in ('colour', 'colour_demosaicing', 'matplotlib', 'torch') if m in sys.modules))"
        )
        result = subprocess.run([sys.executable, "-W", "error", "-c", code], capture_output=True, text=True)
        assert result.stdout.strip() == "[]", result.stderr
        assert result.returncode == 0, result.stderr


@pytest.fixture(scope="module")
def lighthouse():
    """Crops of colour-demosaicing's reference images (see golden/README.md)."""
    with np.load(Path(__file__).with_name("golden") / "lighthouse.npz") as data:
        return dict(data)


class TestGolden:
    """colour-demosaicing's own reference images: its Lighthouse mosaics and their demosaiced
    results for all four layouts (float32 OpenEXR files), compared on a 40 × 40 interior."""

    MARGIN = 12  # the stored mosaic crops are 64 × 64; the references are their interior

    @pytest.mark.parametrize("pattern", BAYER_PATTERNS)
    @pytest.mark.parametrize(
        ("stage", "values", "name"),
        [pytest.param(*p.values, n, id=p.id) for p, n in zip(CONFIGURED, ("Bilinear", "Malvar2004", "Menon2007", "Menon2007_NR"), strict=True)],
    )
    def test_equals_the_reference_image(self, lighthouse, stage, values, name, pattern):
        values = configured(stage, values)
        cfa = lighthouse[f"cfa_{pattern}"].astype(np.float64)  # half floats: the same numbers in float32
        expected = lighthouse[f"{name}_{pattern}"].astype(np.float64)  # the library's result rounded to float32
        inner = (slice(None), slice(self.MARGIN, -self.MARGIN), slice(self.MARGIN, -self.MARGIN))
        assert expected.shape == (3, 40, 40) and np.ptp(expected) > 0.5
        np.testing.assert_allclose(stage.run_numpy(cfa, values, pattern)[inner], expected, rtol=0, atol=1e-7)
        for dtype, tol in ((torch.float64, 1e-7), (torch.float32, 1e-6)):
            got = run_torch(stage, cfa[None], values, pattern, dtype)[0][inner]
            np.testing.assert_allclose(got, expected, rtol=0, atol=tol, err_msg=f"{name} {pattern} {dtype}")


class TestBilinear:
    def test_declaration(self):
        (p,) = Bilinear.params
        assert (p.name, p.shape, p.differentiable, p.dtype) == ("kernels", (3, 3, 3), True, float)
        k_g = np.array([[0, 1, 0], [1, 4, 1], [0, 1, 0]]) / 4
        k_rb = np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]]) / 4
        np.testing.assert_array_equal(default_values(Bilinear)["kernels"], [k_rb, k_g, k_rb])

    @pytest.mark.parametrize("pattern", BAYER_PATTERNS)
    @settings(max_examples=20, deadline=None)
    @given(batch=raw_batches(max_n=1))
    def test_equals_library(self, pattern, batch):
        expected = np.moveaxis(demosaicing_CFA_Bayer_bilinear(batch[0], pattern), -1, 0)
        np.testing.assert_allclose(demosaic_bilinear_numpy(batch[0], BILINEAR_KERNELS, pattern=pattern), expected, rtol=0, atol=1e-12)

    def test_orientation_is_convolution(self):
        """An isolated red sample spreads as the kernel itself, not its mirror image."""
        raw = np.zeros((6, 6))
        raw[2, 2] = 1.0
        kernels = np.stack([np.arange(9.0).reshape(3, 3), np.zeros((3, 3)), np.zeros((3, 3))])
        out = demosaic_bilinear_numpy(raw, kernels, pattern="RGGB")
        np.testing.assert_array_equal(out[0, 1:4, 1:4], kernels[0])
        got = demosaic_bilinear(torch.from_numpy(raw)[None], torch.from_numpy(kernels), pattern="RGGB")[0]
        np.testing.assert_array_equal(got.numpy(), out)

    @pytest.mark.parametrize("pattern", BAYER_PATTERNS)
    @SETTINGS
    @given(batch=raw_batches())
    def test_backends_agree(self, pattern, batch):
        assert_backends_agree(Bilinear, batch, default_values(Bilinear), pattern)

    @pytest.mark.parametrize("pattern", BAYER_PATTERNS)
    @SETTINGS
    @given(batch=raw_batches(), kernels=arrays(np.float64, (3, 3, 3), elements=st.floats(-2.0, 2.0)))
    def test_backends_agree_random_kernels(self, pattern, batch, kernels):
        assert_backends_agree(Bilinear, batch, validated_kernels(kernels), pattern)

    def test_kernels_shape_checked(self):
        with pytest.raises(ParameterError, match=r"demosaic.kernels: expected shape \(3, 3, 3\)"):
            validated_kernels(np.ones((3, 5, 5)))

    @pytest.mark.parametrize("pattern", ["RGGB", "GBRG"])
    def test_gradcheck(self, pattern):
        generator = torch.Generator().manual_seed(0)
        raw = torch.rand(2, 4, 6, dtype=torch.float64, generator=generator, requires_grad=True)
        kernels = torch.randn(3, 3, 3, dtype=torch.float64, generator=generator, requires_grad=True)
        assert torch.autograd.gradcheck(lambda x, k: demosaic_bilinear(x, k, pattern=pattern), (raw, kernels))

    def test_trainable_module(self):
        module = StageModule(Bilinear, default_values(Bilinear), "GRBG", frozenset({"kernels"}))
        module(torch.rand(2, 6, 6)).square().sum().backward()
        assert module.kernels.grad is not None and module.kernels.grad.abs().sum() > 0


def assert_bit_equal(got: np.ndarray, library: np.ndarray) -> None:
    """``got`` (channel-first) is exactly the library's channel-last result moved channel-first: no tolerance."""
    expected = np.moveaxis(library, -1, 0)
    assert got.shape == expected.shape and got.dtype == np.float64
    assert np.array_equal(got, expected), f"differs by up to {np.abs(got - expected).max():.3g}"


class TestMalvar2004:
    @pytest.mark.parametrize("pattern", BAYER_PATTERNS)
    @SETTINGS
    @given(batch=raw_batches(max_n=1) | dn_raw_batches(max_n=1))
    def test_numpy_is_the_library_bit_for_bit(self, pattern, batch):
        assert_bit_equal(demosaic_malvar2004_numpy(batch[0], pattern=pattern), demosaicing_CFA_Bayer_Malvar2004(batch[0], pattern))

    def test_declaration(self):
        assert Malvar2004.method == "malvar2004" and Malvar2004.params == ()

    @pytest.mark.parametrize("pattern", BAYER_PATTERNS)
    @SETTINGS
    @given(batch=raw_batches())
    def test_backends_agree(self, pattern, batch):
        assert_backends_agree(Malvar2004, batch, {}, pattern)

    def test_linear(self):
        a, b = torch.from_numpy(FIXED[:1]), torch.from_numpy(FIXED[1:2])
        lhs = demosaic_malvar2004(2.0 * a - b, pattern="GBRG")
        rhs = 2.0 * demosaic_malvar2004(a, pattern="GBRG") - demosaic_malvar2004(b, pattern="GBRG")
        np.testing.assert_allclose(lhs, rhs, rtol=0, atol=1e-14)

    @pytest.mark.parametrize("pattern", BAYER_PATTERNS)
    def test_gradcheck(self, pattern):
        raw = torch.rand(2, 6, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(1), requires_grad=True)
        assert torch.autograd.gradcheck(lambda x: demosaic_malvar2004(x, pattern=pattern), (raw,))


def decisions(batch: np.ndarray, pattern: str, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """Menon's directional decision ``d_V >= d_H`` computed in ``dtype``, and the margin
    ``d_V - d_H``, at the red and blue sites (at green sites both sums are 0, and unused)."""
    raw = torch.as_tensor(batch, dtype=dtype)
    green = site_selectors(raw.shape[-2:], pattern, dtype=dtype)[1]
    d_h, d_v = (d[:, green[0] == 0] for d in _classifier(raw, *_green_estimates(raw, green), green))
    return d_v >= d_h, (d_v - d_h).double()


# A diagonal ramp: rows and columns look alike, so d_H and d_V tie in exact arithmetic
# and float rounding picks the direction (here at pixels whose estimates differ).
RAMP = np.add.outer(np.arange(4.0), np.arange(4.0)) / 6


class TestMenon2007:
    @pytest.mark.parametrize("pattern", BAYER_PATTERNS)
    @pytest.mark.parametrize("refining_step", [True, False])
    @SETTINGS
    @given(batch=raw_batches(max_n=1) | dn_raw_batches(max_n=1) | st.just(RAMP[None]))
    def test_numpy_is_the_library_bit_for_bit(self, pattern, refining_step, batch):
        """Integer-DN raws and the ramp tie the directional decision in exact arithmetic: the ties go the library's way too."""
        raw = batch[0]
        assert_bit_equal(demosaic_menon2007_numpy(raw, refining_step, pattern=pattern), demosaicing_CFA_Bayer_Menon2007(raw, pattern, refining_step))

    @pytest.mark.parametrize("pattern", BAYER_PATTERNS)
    def test_numpy_is_the_library_bit_for_bit_on_a_photograph(self, pattern):
        raw = mosaic(natural_crop("astronaut", 40, 60, 96, 128), pattern)
        for refining_step in (True, False):
            assert_bit_equal(demosaic_menon2007_numpy(raw, refining_step, pattern=pattern), demosaicing_CFA_Bayer_Menon2007(raw, pattern, refining_step))

    def test_declaration(self):
        (p,) = Menon2007.params
        assert (p.name, p.shape, p.default, p.differentiable, p.dtype) == ("refining_step", (), True, False, bool)
        with pytest.raises(ParameterError, match=r"demosaic\.refining_step: expected a bool"):
            p.validate(1, "demosaic.refining_step")

    @pytest.mark.parametrize("pattern", BAYER_PATTERNS)
    @pytest.mark.parametrize("refining_step", [True, False])
    @settings(max_examples=60, deadline=None)
    @given(batch=raw_batches())
    def test_backends_agree(self, pattern, refining_step, batch):
        """On the same numbers, ties included: the decision is taken in float64 whatever the input dtype."""
        assert_backends_agree_on_values(Menon2007, batch, {"refining_step": refining_step}, pattern)

    @pytest.mark.parametrize("pattern", BAYER_PATTERNS)
    def test_float32_takes_the_library_decisions_on_a_photograph(self, pattern):
        """A 64 × 64 crop of a photograph has directions that float32 arithmetic would decide
        the other way; the float32 module still equals the library on the same numbers."""
        raw = float32_values(mosaic(natural_crop("astronaut", 7, 151, 64, 64), pattern))[None]
        flipped = decisions(raw, pattern, torch.float32)[0] != decisions(raw, pattern, torch.float64)[0]
        assert flipped.sum() >= 3  # the input is one that float32 decisions get wrong
        for refining_step in (True, False):
            expected = demosaic_menon2007_numpy(raw[0], refining_step, pattern=pattern)
            got = demosaic_menon2007(torch.from_numpy(raw).float(), refining_step, pattern=pattern)[0]
            np.testing.assert_allclose(got.double().numpy(), expected, rtol=0, atol=1e-6)

    @pytest.mark.parametrize("pattern", BAYER_PATTERNS)
    def test_dtype_keyword_decides_on_the_float64_input(self, pattern):
        """``dtype=`` (what a pipeline passes, Stage.exact_input): float64 numbers in, the decision
        on them, the result in float32: equal to the library on the float64 numbers, which the
        float32 rounding of the same photograph is not."""
        assert Menon2007.exact_input
        raw = mosaic(natural_crop("astronaut", 7, 151, 64, 64), pattern)  # k / 255: not float32 numbers
        expected = demosaic_menon2007_numpy(raw, True, pattern=pattern)
        got = demosaic_menon2007(torch.from_numpy(raw)[None], True, pattern=pattern, dtype=torch.float32)
        assert got.dtype == torch.float32
        np.testing.assert_allclose(got[0].double().numpy(), expected, rtol=0, atol=1e-6)
        rounded = demosaic_menon2007(torch.from_numpy(raw)[None].float(), True, pattern=pattern)
        assert np.abs(rounded[0].double().numpy() - expected).max() > 1e-2

    @pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
    def test_half_precision_takes_the_float64_decisions(self, dtype):
        """Inputs of any float dtype: the direction is the library's on the numbers the tensor holds."""
        raw = torch.from_numpy(mosaic(natural_crop("coffee", 51, 99, 32, 32), "GRBG")).to(dtype)[None]
        exact = raw.double()
        expected = demosaic_menon2007_numpy(exact[0].numpy(), True, pattern="GRBG")
        got = demosaic_menon2007(raw, True, pattern="GRBG")
        assert got.dtype == dtype
        # half-precision rounding of the output only (8 and 11 significant bits), never a wrong direction
        np.testing.assert_allclose(got[0].double().numpy(), expected, rtol=0, atol=2.0 * float(torch.finfo(dtype).eps))

    @pytest.mark.parametrize("pattern", BAYER_PATTERNS)
    @settings(max_examples=60, deadline=None)
    @given(batch=raw_batches(), refining_step=st.booleans())
    def test_float64_equal_on_every_input(self, pattern, batch, refining_step):
        """Ties included: the classifier sums are formed in scipy's order, so float64 decisions match bit for bit."""
        values = {"refining_step": refining_step}
        expected = np.stack([Menon2007.run_numpy(x, values, pattern) for x in batch])
        np.testing.assert_allclose(run_torch(Menon2007, batch, values, pattern, torch.float64), expected, rtol=0, atol=1e-12)

    @pytest.mark.parametrize("pattern", BAYER_PATTERNS)
    def test_ramp_ties_resolved_as_the_library_in_float64(self, pattern):
        _, margin = decisions(RAMP[None], pattern, torch.float64)
        assert margin.abs().min() < 1e-15  # genuine ties
        got = demosaic_menon2007(torch.from_numpy(RAMP)[None], True, pattern=pattern)[0].numpy()
        # A tie resolved the other way moves the output by ~0.17; rounding alone stays below 1e-15.
        np.testing.assert_allclose(got, demosaic_menon2007_numpy(RAMP, True, pattern=pattern), rtol=0, atol=1e-12)

    def test_float32_cannot_resolve_exact_ties(self):
        """The reference itself moves by far more than 1e-4 when its float64 input is
        rounded to float32, so the float32 contract is on the same numbers
        (:func:`support.assert_backends_agree_on_values`), not on the float64 data they came from."""
        rounded = RAMP.astype(np.float32).astype(np.float64)
        exact = demosaic_menon2007_numpy(RAMP, False, pattern="GRBG")
        assert np.abs(demosaic_menon2007_numpy(rounded, False, pattern="GRBG") - exact).max() > 0.1

    def test_refining_step_changes_the_result(self):
        raw = FIXED[0]
        refined = demosaic_menon2007_numpy(raw, True, pattern="RGGB")
        assert np.abs(refined - demosaic_menon2007_numpy(raw, False, pattern="RGGB")).max() > 1e-3
        masks = masks_torch(raw.shape, "RGGB", dtype=torch.float64).numpy()
        np.testing.assert_array_equal((refined * masks).sum(0), raw)  # the samples are kept

    @pytest.mark.parametrize("refining_step", [True, False])
    @pytest.mark.parametrize("pattern", ["RGGB", "GBRG"])
    def test_gradcheck(self, pattern, refining_step):
        raw = torch.rand(2, 6, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(5), requires_grad=True)
        _, margin = decisions(raw.detach().numpy(), pattern, torch.float64)
        assert margin.abs().min() > 1e-4  # no decision within reach of gradcheck's eps = 1e-6
        assert torch.autograd.gradcheck(lambda x: demosaic_menon2007(x, refining_step, pattern=pattern), (raw,))

    def test_no_gradient_through_the_decision(self):
        raw = torch.rand(1, 6, 6, dtype=torch.float64, requires_grad=True)
        green = site_selectors((6, 6), "RGGB", dtype=torch.float64)[1]
        d_h, d_v = _classifier(raw, *_green_estimates(raw, green), green)
        assert not d_h.requires_grad and not d_v.requires_grad
