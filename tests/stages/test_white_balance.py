"""White balance: backends agree, known gains, gradients, parameter checks, module."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from support import assert_backends_agree, default_values, rgb_batches
from torch import nn

from ispkit.camera import Camera
from ispkit.cfa import BAYER_PATTERNS
from ispkit.errors import ParameterError
from ispkit.stages.base import FromCamera
from ispkit.stages.module import StageModule
from ispkit.stages.white_balance import WhiteBalance, white_balance, white_balance_numpy

SETTINGS = settings(max_examples=25, deadline=None)
CAMERAS = Path(__file__).resolve().parents[2] / "ispkit" / "cameras"
WHERE = "white_balance.gains"

gains = st.lists(st.floats(-16.0, 16.0, allow_nan=False), min_size=3, max_size=3).map(np.array)


def validated(value) -> dict[str, np.ndarray]:
    return {"gains": WhiteBalance.param("gains").validate(value, WHERE)}


class TestDeclaration:
    def test_attributes(self):
        assert (WhiteBalance.kind, WhiteBalance.method) == ("white_balance", "gains")
        assert (WhiteBalance.takes, WhiteBalance.gives) == ("rgb", "rgb")
        assert not WhiteBalance.cfa_aware
        (p,) = WhiteBalance.params
        assert p.name == "gains" and p.shape == (3,) and p.bounds == (-16.0, 16.0)
        assert p.default == FromCamera("white_balance")
        assert WhiteBalance.describe() == "Scale each colour channel by a gain."

    def test_default_from_identity_camera(self):
        np.testing.assert_array_equal(default_values(WhiteBalance)["gains"], np.ones(3))


class TestBackendsAgree:
    @SETTINGS
    @given(batch=rgb_batches(), pattern=st.sampled_from(BAYER_PATTERNS))
    def test_defaults(self, batch, pattern):
        assert_backends_agree(WhiteBalance, batch, pattern=pattern)

    @SETTINGS
    @given(batch=rgb_batches(), value=gains)
    def test_random_gains(self, batch, value):
        assert_backends_agree(WhiteBalance, batch, validated(value))

    @pytest.mark.parametrize("name", ["microscopy", "drone"])
    def test_published_gains(self, name):
        camera = Camera.from_yaml(CAMERAS / f"{name}.yaml")
        batch = np.random.default_rng(0).random((2, 3, 4, 6))
        assert_backends_agree(WhiteBalance, batch, validated(camera.white_balance), pattern=camera.pattern)


class TestKnownValues:
    def test_docstring_example(self):
        out = white_balance_numpy(np.ones((3, 1, 1)), np.array([2.0, 1.0, 0.5]))
        assert out.ravel().tolist() == [2.0, 1.0, 0.5]

    def test_per_channel(self):
        rgb = np.random.default_rng(1).random((3, 2, 4))
        g = np.array([2.86653646, 1.0, 1.73079425])
        out = white_balance_numpy(rgb, g)
        for c in range(3):
            np.testing.assert_array_equal(out[c], rgb[c] * g[c])

    def test_negative_gain_kept(self):
        out = white_balance_numpy(np.full((3, 1, 1), 0.5), np.array([-0.6567, 1.9673, 3.5304]))
        assert out.ravel().tolist() == [-0.32835, 0.98365, 1.7652]

    def test_torch_batched_and_unbatched(self):
        rgb = torch.rand(2, 3, 4, 5, dtype=torch.float64)
        g = torch.tensor([0.5, 2.0, -1.0], dtype=torch.float64)
        out = white_balance(rgb, g)
        assert out.shape == rgb.shape
        for n in range(2):
            np.testing.assert_array_equal(out[n].numpy(), white_balance_numpy(rgb[n].numpy(), g.numpy()))
            np.testing.assert_array_equal(white_balance(rgb[n], g).numpy(), out[n].numpy())


class TestGradients:
    def test_gradcheck_input_and_gains(self):
        rgb = torch.rand(2, 3, 3, 4, dtype=torch.float64, requires_grad=True)
        g = torch.tensor([2.0, 1.0, -0.5], dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(white_balance, (rgb, g))

    def test_gradient_values(self):
        rgb = torch.rand(2, 3, 2, 2, dtype=torch.float64, requires_grad=True)
        g = torch.tensor([2.0, 1.0, 0.5], dtype=torch.float64, requires_grad=True)
        white_balance(rgb, g).sum().backward()
        torch.testing.assert_close(g.grad, rgb.detach().sum(dim=(0, 2, 3)))
        assert rgb.grad[:, 0].unique().tolist() == [2.0]
        assert rgb.grad[:, 2].unique().tolist() == [0.5]


class TestParamValidate:
    param = WhiteBalance.param("gains")

    def test_canonical_form(self):
        out = self.param.validate((2, 1, 0.5), WHERE)
        assert out.dtype == np.float64 and out.shape == (3,) and not out.flags.writeable
        assert out.tolist() == [2.0, 1.0, 0.5]

    @pytest.mark.parametrize(("value", "got"), [([1.0, 1.0], "(2,)"), ([1.0] * 4, "(4,)"), (1.0, "()")])
    def test_wrong_shape(self, value, got):
        with pytest.raises(ParameterError) as info:
            self.param.validate(value, WHERE)
        assert str(info.value) == f"{WHERE}: expected shape (3,), got shape {got}"

    @pytest.mark.parametrize("value", [[16.5, 1.0, 1.0], [1.0, -17.0, 1.0]])
    def test_out_of_bounds(self, value):
        with pytest.raises(ParameterError) as info:
            self.param.validate(value, WHERE)
        assert str(info.value).startswith(f"{WHERE}: values must lie in [-16.0, 16.0]")

    def test_non_finite(self):
        with pytest.raises(ParameterError, match=rf"^{WHERE}: values must be finite, got \[1\.0, nan, 1\.0\]"):
            self.param.validate([1.0, float("nan"), 1.0], WHERE)


class TestStageModule:
    value = np.array([2.0, 1.0, 0.5])

    def module(self, trainable: bool) -> StageModule:
        return StageModule(WhiteBalance, validated(self.value), "BGGR", frozenset({"gains"}) if trainable else frozenset())

    def test_parameter_or_buffer(self):
        m = self.module(True)
        assert isinstance(m.gains, nn.Parameter)
        assert [name for name, _ in m.named_parameters()] == ["gains"]
        m = self.module(False)
        assert not isinstance(m.gains, nn.Parameter)
        assert [name for name, _ in m.named_buffers()] == ["gains"]
        assert list(m.parameters()) == []

    @pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
    def test_forward(self, dtype):
        x = torch.rand(2, 3, 2, 4, dtype=dtype)
        out = self.module(True)(x)
        assert out.dtype == dtype
        torch.testing.assert_close(out, x * torch.tensor([2.0, 1.0, 0.5], dtype=dtype)[:, None, None])

    def test_project_clamps_into_bounds(self):
        m = self.module(True)
        with torch.no_grad():
            m.gains.copy_(torch.tensor([20.0, -20.0, 3.0]))
        m.project_()
        assert m.gains.tolist() == [16.0, -16.0, 3.0]
