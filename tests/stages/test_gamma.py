"""Gamma correction: backends agree (near black too), the difference it propagates, clipping, black stays
black, gradients, parameter checks, module."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from support import assert_backends_agree, assert_backends_agree_on_values, default_values, natural_rgb_batches, rgb_batches
from torch import nn

from ispkit.cfa import BAYER_PATTERNS
from ispkit.errors import ParameterError
from ispkit.stages.gamma import Gamma, gamma, gamma_numpy, propagated_difference
from ispkit.stages.module import StageModule

SETTINGS = settings(max_examples=25, deadline=None)
WHERE = "gamma.gamma"

gammas = st.floats(0.1, 10.0)


def validated(value) -> dict[str, np.ndarray]:
    return {"gamma": Gamma.param("gamma").validate(value, WHERE)}


def t(values, dtype=torch.float64, grad=False) -> torch.Tensor:
    return torch.tensor(values, dtype=dtype, requires_grad=grad)


class TestDeclaration:
    def test_attributes(self):
        assert (Gamma.kind, Gamma.method) == ("gamma", "power")
        assert (Gamma.takes, Gamma.gives) == ("rgb", "rgb")
        (p,) = Gamma.params
        assert p.name == "gamma" and p.shape == () and p.default == 2.2 and p.bounds == (0.1, 10.0)

    def test_default(self):
        value = default_values(Gamma)["gamma"]
        assert value.shape == () and float(value) == 2.2


class TestBackendsAgree:
    @SETTINGS
    @given(batch=rgb_batches(), pattern=st.sampled_from(BAYER_PATTERNS))
    def test_defaults(self, batch, pattern):
        assert_backends_agree(Gamma, batch, pattern=pattern)

    @SETTINGS
    @given(batch=rgb_batches(), value=gammas)
    def test_random_gamma(self, batch, value):
        assert_backends_agree(Gamma, batch, validated(value))

    @SETTINGS
    @given(batch=natural_rgb_batches(), value=gammas)
    def test_photographs_and_integer_values(self, batch, value):
        assert_backends_agree_on_values(Gamma, batch, validated(value))

    @pytest.mark.parametrize("value", [1.0, 2.2, 10.0])
    def test_near_black_on_the_same_input(self, value):
        """Where the slope is unbounded the stage itself still agrees: the float32 power of a
        float32 number is its float64 power to rounding (subnormals included)."""
        tiny = np.concatenate([[1e-45, 1e-40, 1.2e-38], np.logspace(-37, -1, 73)])
        batch = np.broadcast_to(tiny, (1, 3, 1, tiny.size)).copy()
        assert_backends_agree_on_values(Gamma, batch, validated(value))
        got = gamma(torch.tensor(batch, dtype=torch.float32), t(value, torch.float32)).double().numpy()
        # relative too: γ rounded to float32 moves v^(1/γ) by about |ln v|·2^-24 relative (2e-6 at 1e-45)
        np.testing.assert_allclose(got, gamma_numpy(batch.astype(np.float32).astype(np.float64), np.array(value)), rtol=1e-5, atol=0)

    @pytest.mark.parametrize("value", [0.1, 1.0, 10.0])
    def test_bounds_and_exact_edges(self, value):
        """Exact 0, 1 and out-of-range values in one batch, at the extreme gammas."""
        edges = np.array([-0.25, -1e-12, 0.0, 1e-12, 0.5, 1.0 - 1e-12, 1.0, 1.0 + 1e-12, 1.25])
        batch = np.broadcast_to(edges, (1, 3, 2, edges.size)).copy()
        assert_backends_agree(Gamma, batch, validated(value))


class TestKnownValues:
    def test_docstring_example(self):
        assert gamma_numpy(np.array([-0.5, 0.25, 2.0]), np.array(2.0)).tolist() == [0.0, 0.5, 1.0]

    def test_default_gamma(self):
        out = gamma_numpy(np.array([0.0, 0.5, 1.0]), np.array(2.2))
        np.testing.assert_allclose(out, [0.0, 0.5 ** (1 / 2.2), 1.0], rtol=0, atol=1e-15)
        assert out[1] == pytest.approx(0.7297400528, abs=1e-10)

    def test_gamma_one_is_clip(self):
        x = np.array([-0.1, 0.0, 0.3, 0.99, 1.0, 1.7])
        np.testing.assert_array_equal(gamma_numpy(x, np.array(1.0)), np.clip(x, 0, 1))
        np.testing.assert_array_equal(gamma(torch.tensor(x), t(1.0)).numpy(), np.clip(x, 0, 1))

    @pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
    def test_black_stays_black_and_white_stays_white(self, dtype):
        out = gamma(torch.tensor([[0.0, 1.0]], dtype=dtype), t(2.2, dtype))
        assert out.tolist() == [[0.0, 1.0]]
        assert gamma_numpy(np.array([0.0, 1.0]), np.array(2.2)).tolist() == [0.0, 1.0]

    @pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
    def test_above_one_is_one_and_below_zero_is_zero(self, dtype):
        x = torch.tensor([1.0000001, 1.5, 7.0, 1e30, -1e-30, -0.5, -3.0], dtype=dtype)
        out = gamma(x, t(2.2, dtype))
        assert out.tolist() == [1.0] * 4 + [0.0] * 3
        np.testing.assert_array_equal(gamma_numpy(x.double().numpy(), np.array(2.2)), out.double().numpy())

    def test_monotone(self):
        x = torch.linspace(-0.5, 1.5, 201, dtype=torch.float64)
        out = gamma(x, t(2.2))
        assert torch.all(out[1:] >= out[:-1])

    def test_batched_shape_and_dtype(self):
        x = torch.rand(2, 3, 4, 6, dtype=torch.float32)
        out = gamma(x, t(2.2, torch.float32))
        assert out.shape == x.shape and out.dtype == torch.float32


class TestPropagatedDifference:
    """``propagated_difference(v, δ, γ)``: the most the output moves when the input moves by δ."""

    def test_docstring_example(self):
        got = propagated_difference(np.array([0.0, 0.25, 1.0]), 1e-6, np.array(2.0))
        np.testing.assert_allclose(got, [1e-3, 1e-6, 5e-7], rtol=1e-5)

    @settings(max_examples=200, deadline=None)
    @given(
        v=st.floats(-0.5, 1.5),
        t_=st.floats(-0.1, 0.1),
        slack=st.floats(0.0, 0.1),
        value=gammas,
    )
    def test_bounds_every_move_within_delta(self, v, t_, slack, value):
        delta = abs(t_) + slack
        g = np.array(value)
        moved = abs(float(gamma_numpy(np.array(v + t_), g) - gamma_numpy(np.array(v), g)))
        bound = float(propagated_difference(np.array(v), delta, g))
        assert moved <= bound + 1e-15
        # ... and it is at most δ^(1/γ) (γ ≥ 1, Hölder) or δ/γ (γ < 1, Lipschitz)
        assert bound <= (delta ** (1 / value) if value >= 1 else delta / value) + 1e-15

    @pytest.mark.parametrize("value", [1.0, 2.2, 10.0])
    def test_attained_at_black(self, value):
        for delta in (1e-8, 1e-6, 1e-4):
            assert float(propagated_difference(np.array(0.0), delta, np.array(value))) == pytest.approx(delta ** (1 / value), rel=1e-12)

    def test_small_away_from_black(self):
        """About δ·f'(v): below δ where the slope is below 1 (v > 0.235 for γ = 2.2)."""
        v = np.array([0.25, 0.5, 1.0])
        slope = v ** (1 / 2.2 - 1) / 2.2
        np.testing.assert_allclose(propagated_difference(v, 1e-4, np.array(2.2)), 1e-4 * slope, rtol=1e-3)

    def test_the_readme_pixel(self):
        """The README example's one value off by 1.3e-3: float64 reaches gamma with 4.3e-7, float32 with -2.4e-7."""
        numpy_value, torch_value = 4.31774059173e-07, -2.38418579102e-07
        g = np.array(2.2)
        moved = float(gamma_numpy(np.array(numpy_value), g) - gamma_numpy(np.array(torch_value), g))
        assert moved == pytest.approx(1.279e-3, rel=1e-3)
        assert moved <= float(propagated_difference(np.array(numpy_value), numpy_value - torch_value, g))


class TestGradients:
    def test_gradcheck_inside_unit_interval(self):
        x = (0.05 + 0.9 * torch.rand(2, 3, 2, 3, dtype=torch.float64)).requires_grad_()
        for value in (0.4, 2.2, 7.0):
            g = t(value, grad=True)
            assert torch.autograd.gradcheck(gamma, (x, g))

    def test_gradient_values(self):
        x = t([0.25], grad=True)
        g = t(2.0, grad=True)
        gamma(x, g).sum().backward()
        assert x.grad.item() == pytest.approx(0.5 * 0.25 ** (-0.5))  # (1/γ) x^(1/γ - 1) = 1
        assert g.grad.item() == pytest.approx(-(0.25**0.5) * math.log(0.25) / 4.0)  # -x^(1/γ) ln x / γ²

    @pytest.mark.parametrize("value", [0.1, 2.2, 10.0])
    def test_zero_input_has_zero_output_and_finite_zero_gradient(self, value):
        x = torch.zeros(1, 3, 2, 2, dtype=torch.float64, requires_grad=True)
        g = t(value, grad=True)
        out = gamma(x, g)
        assert torch.equal(out, torch.zeros_like(out))
        out.sum().backward()
        assert torch.all(torch.isfinite(x.grad)) and torch.equal(x.grad, torch.zeros_like(x))
        assert torch.isfinite(g.grad) and g.grad.item() == 0.0

    def test_clipped_inputs_have_zero_gradient(self):
        x = t([-0.5, -1e-9, 1.0 + 1e-9, 3.0], grad=True)
        g = t(2.2, grad=True)
        out = gamma(x, g)
        assert out.tolist() == [0.0, 0.0, 1.0, 1.0]
        out.sum().backward()
        assert x.grad.tolist() == [0.0, 0.0, 0.0, 0.0]
        assert g.grad.item() == 0.0

    def test_mixed_batch_gradient_is_finite(self):
        x = t([[0.0, 0.5], [-0.2, 1.3]], grad=True)
        g = t(2.2, grad=True)
        gamma(x, g).sum().backward()
        assert torch.all(torch.isfinite(x.grad)) and torch.isfinite(g.grad)
        assert x.grad[0, 1].item() == pytest.approx(0.5 ** (1 / 2.2 - 1) / 2.2)
        assert x.grad[0, 0].item() == 0.0 and x.grad[1].tolist() == [0.0, 0.0]


class TestParamValidate:
    param = Gamma.param("gamma")

    def test_canonical_form(self):
        for value in (2.2, np.float32(2.2), torch.tensor(2.2, dtype=torch.float64), np.array(2.2)):
            out = self.param.validate(value, WHERE)
            assert isinstance(out, np.ndarray) and out.shape == () and out.dtype == np.float64
            assert not out.flags.writeable
            assert float(out) == pytest.approx(2.2, rel=1e-7)

    def test_integer_value_accepted_as_float(self):
        assert float(self.param.validate(2, WHERE)) == 2.0

    @pytest.mark.parametrize(("value", "got"), [([2.2], "(1,)"), ([[2.2]], "(1, 1)"), (np.ones(3), "(3,)")])
    def test_wrong_shape(self, value, got):
        with pytest.raises(ParameterError) as info:
            self.param.validate(value, WHERE)
        assert str(info.value) == f"{WHERE}: expected shape (), got shape {got}"

    @pytest.mark.parametrize("value", [0.0, 0.09, -2.2, 10.01, 1e9])
    def test_out_of_bounds(self, value):
        with pytest.raises(ParameterError) as info:
            self.param.validate(value, WHERE)
        message = str(info.value)
        assert message.startswith(f"{WHERE}: values must lie in [0.1, 10.0] (display gamma")
        assert message.endswith(f"got {float(value)}")

    def test_bounds_inclusive(self):
        assert float(self.param.validate(0.1, WHERE)) == 0.1
        assert float(self.param.validate(10.0, WHERE)) == 10.0

    @pytest.mark.parametrize("value", [float("nan"), float("inf")])
    def test_non_finite(self, value):
        with pytest.raises(ParameterError, match=rf"^{WHERE}: values must be finite"):
            self.param.validate(value, WHERE)

    def test_not_a_number(self):
        with pytest.raises(ParameterError, match=rf"^{WHERE}: expected numbers of shape \(\), got 'bright'"):
            self.param.validate("bright", WHERE)


class TestStageModule:
    def module(self, trainable: bool) -> StageModule:
        return StageModule(Gamma, validated(2.2), "GBRG", frozenset({"gamma"}) if trainable else frozenset())

    def test_parameter_or_buffer(self):
        m = self.module(True)
        assert isinstance(m.gamma, nn.Parameter) and m.gamma.shape == ()
        assert [name for name, _ in m.named_parameters()] == ["gamma"]
        m = self.module(False)
        assert not isinstance(m.gamma, nn.Parameter)
        assert [name for name, _ in m.named_buffers()] == ["gamma"]
        assert list(m.parameters()) == []

    @pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
    def test_forward(self, dtype):
        x = torch.rand(2, 3, 2, 2, dtype=dtype) * 1.4 - 0.2
        out = self.module(False)(x)
        assert out.dtype == dtype
        torch.testing.assert_close(out, gamma(x, t(2.2, dtype)))

    def test_gradient_reaches_parameter(self):
        m = self.module(True)
        m(torch.full((1, 3, 1, 1), 0.25)).sum().backward()
        expected = -3 * 0.25 ** (1 / 2.2) * math.log(0.25) / 2.2**2
        assert m.gamma.grad.item() == pytest.approx(expected, rel=1e-5)

    @pytest.mark.parametrize(("value", "clamped"), [(0.01, 0.1), (-5.0, 0.1), (12.0, 10.0), (3.0, 3.0)])
    def test_project_clamps_into_bounds(self, value, clamped):
        m = self.module(True)
        with torch.no_grad():
            m.gamma.fill_(value)
        m.project_()
        assert m.gamma.item() == pytest.approx(clamped, abs=1e-15)
