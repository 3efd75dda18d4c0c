"""Black-level correction: backends agree, per-site values, gradients, parameter checks, module."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from support import assert_backends_agree, default_values, raw_batches
from torch import nn

from ispkit.camera import Camera
from ispkit.cfa import BAYER_PATTERNS, masks_numpy, site_channels
from ispkit.errors import ParameterError
from ispkit.stages.base import FromCamera
from ispkit.stages.black_level import BlackLevel, black_level, black_level_numpy
from ispkit.stages.module import StageModule

SETTINGS = settings(max_examples=25, deadline=None)
CAMERAS = Path(__file__).resolve().parents[2] / "ispkit" / "cameras"
WHERE = "black_level.level"

levels = st.lists(st.floats(-1.0, 1.0, allow_nan=False), min_size=4, max_size=4).map(np.array)


def validated(level) -> dict[str, np.ndarray]:
    return {"level": BlackLevel.param("level").validate(level, WHERE)}


class TestDeclaration:
    def test_attributes(self):
        assert (BlackLevel.kind, BlackLevel.method) == ("black_level", "per_site")
        assert (BlackLevel.takes, BlackLevel.gives) == ("raw", "raw")
        assert not BlackLevel.cfa_aware
        (p,) = BlackLevel.params
        assert p.name == "level" and p.shape == (4,) and p.bounds == (-1.0, 1.0)
        assert p.default == FromCamera("black_level")
        assert p.differentiable and p.dtype is float
        assert BlackLevel.describe() == "Subtract a black level per 2×2 CFA site."

    def test_default_from_identity_camera(self):
        values = default_values(BlackLevel)
        np.testing.assert_array_equal(values["level"], np.zeros(4))


class TestBackendsAgree:
    @SETTINGS
    @given(batch=raw_batches(), pattern=st.sampled_from(BAYER_PATTERNS))
    def test_defaults(self, batch, pattern):
        assert_backends_agree(BlackLevel, batch, pattern=pattern)

    @SETTINGS
    @given(batch=raw_batches(), level=levels, pattern=st.sampled_from(BAYER_PATTERNS))
    def test_random_levels(self, batch, level, pattern):
        assert_backends_agree(BlackLevel, batch, validated(level), pattern=pattern)

    @pytest.mark.parametrize("name", ["microscopy", "drone"])
    def test_published_levels(self, name):
        camera = Camera.from_yaml(CAMERAS / f"{name}.yaml")
        batch = np.random.default_rng(0).random((2, 6, 8))
        values = validated(camera.resolve(BlackLevel.param("level").default))
        assert_backends_agree(BlackLevel, batch, values, pattern=camera.pattern)


class TestKnownValues:
    def test_docstring_example(self):
        out = black_level_numpy(np.ones((2, 4)), np.array([0.1, 0.2, 0.3, 0.4]))
        np.testing.assert_allclose(out, [[0.9, 0.8, 0.9, 0.8], [0.7, 0.6, 0.7, 0.6]], rtol=0, atol=1e-15)

    def test_rggb_site_order(self):
        """RGGB: R at (0, 0), G at (0, 1) and (1, 0), B at (1, 1), levels in row-major order."""
        r, g1, g2, b = 0.01, 0.02, 0.03, 0.04
        out = black_level_numpy(np.full((4, 4), 0.5), np.array([r, g1, g2, b]))
        assert out[0, 0] == 0.5 - r and out[2, 2] == 0.5 - r
        assert out[0, 1] == 0.5 - g1 and out[2, 3] == 0.5 - g1
        assert out[1, 0] == 0.5 - g2 and out[3, 0] == 0.5 - g2
        assert out[1, 1] == 0.5 - b and out[3, 3] == 0.5 - b
        red, _, blue = masks_numpy((4, 4), "RGGB")
        np.testing.assert_array_equal(out[red], np.full(4, 0.5 - r))
        np.testing.assert_array_equal(out[blue], np.full(4, 0.5 - b))

    @pytest.mark.parametrize("pattern", BAYER_PATTERNS)
    def test_sites_are_positions_not_colours(self, pattern):
        """Level k goes to position k of the 2×2 block whatever the layout; its colour follows the pattern."""
        level = np.array([0.1, 0.2, 0.3, 0.4])
        out = black_level_numpy(np.zeros((4, 6)), level)
        masks = masks_numpy((4, 6), pattern)
        for site, channel in enumerate(site_channels(pattern)):
            i, j = divmod(site, 2)
            assert masks[channel, i, j]
            np.testing.assert_array_equal(out[i::2, j::2], np.full((2, 3), -level[site]))

    def test_not_clipped(self):
        out = black_level(torch.zeros(1, 2, 2, dtype=torch.float64), torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=torch.float64))
        assert out.tolist() == [[[-0.1, -0.2], [-0.3, -0.4]]]

    def test_torch_any_leading_dims(self):
        raw = torch.rand(2, 3, 4, 6, dtype=torch.float64)
        level = torch.tensor([0.1, -0.2, 0.3, 0.05], dtype=torch.float64)
        out = black_level(raw, level)
        assert out.shape == raw.shape
        for index in np.ndindex(2, 3):
            np.testing.assert_array_equal(out[index].numpy(), black_level_numpy(raw[index].numpy(), level.numpy()))
        np.testing.assert_array_equal(black_level(raw[0, 0], level).numpy(), out[0, 0].numpy())


class TestGradients:
    def test_gradcheck_input_and_level(self):
        raw = torch.rand(2, 4, 6, dtype=torch.float64, requires_grad=True)
        level = torch.tensor([0.1, 0.2, -0.3, 0.4], dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(black_level, (raw, level))
        assert torch.autograd.gradgradcheck(black_level, (raw, level))

    def test_gradient_values(self):
        raw = torch.rand(3, 4, 6, dtype=torch.float64, requires_grad=True)
        level = torch.zeros(4, dtype=torch.float64, requires_grad=True)
        black_level(raw, level).sum().backward()
        assert level.grad.tolist() == [-18.0, -18.0, -18.0, -18.0]  # 3 images × 6 sites each
        assert torch.equal(raw.grad, torch.ones_like(raw))


class TestParamValidate:
    param = BlackLevel.param("level")

    def test_canonical_form(self):
        for value in ([0.1, 0.2, 0.3, 0.4], (0.1, 0.2, 0.3, 0.4), np.array([0.1, 0.2, 0.3, 0.4], dtype=np.float32), torch.tensor([0.1, 0.2, 0.3, 0.4])):
            out = self.param.validate(value, WHERE)
            assert isinstance(out, np.ndarray) and out.dtype == np.float64 and out.shape == (4,)
            assert not out.flags.writeable
            np.testing.assert_allclose(out, [0.1, 0.2, 0.3, 0.4], rtol=1e-7)

    def test_bounds_inclusive(self):
        np.testing.assert_array_equal(self.param.validate([-1.0, 1.0, 0.0, 0.0], WHERE), [-1.0, 1.0, 0.0, 0.0])

    @pytest.mark.parametrize(("value", "got"), [([0.1, 0.2, 0.3], "(3,)"), (0.1, "()"), ([[0.1, 0.2], [0.3, 0.4]], "(2, 2)")])
    def test_wrong_shape(self, value, got):
        with pytest.raises(ParameterError) as info:
            self.param.validate(value, WHERE)
        message = str(info.value)
        assert message == f"{WHERE}: expected shape (4,), got shape {got}"

    @pytest.mark.parametrize("value", [[0.0, 0.0, 0.0, 1.5], [-1.01, 0.0, 0.0, 0.0]])
    def test_out_of_bounds(self, value):
        with pytest.raises(ParameterError, match=rf"^{WHERE}: values must lie in \[-1\.0, 1\.0\]"):
            self.param.validate(value, WHERE)

    @pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
    def test_non_finite(self, bad):
        with pytest.raises(ParameterError, match=rf"^{WHERE}: values must be finite"):
            self.param.validate([0.0, bad, 0.0, 0.0], WHERE)

    @pytest.mark.parametrize("value", ["abc", [0.1, "x", 0.2, 0.3], None, [[0.1], [0.2, 0.3]]])
    def test_not_numbers(self, value):
        with pytest.raises(ParameterError, match=rf"^{WHERE}: expected (numbers of )?shape \(4,\)"):
            self.param.validate(value, WHERE)


class TestStageModule:
    level = np.array([0.1, 0.2, 0.3, 0.4])

    def module(self, trainable: bool) -> StageModule:
        return StageModule(BlackLevel, validated(self.level), "RGGB", frozenset({"level"}) if trainable else frozenset())

    def test_trainable_is_parameter(self):
        m = self.module(True)
        assert isinstance(m.level, nn.Parameter)
        assert m.level.dtype == torch.float64
        assert list(dict(m.named_parameters())) == ["level"]
        assert list(dict(m.named_buffers())) == []

    def test_frozen_is_buffer(self):
        m = self.module(False)
        assert not isinstance(m.level, nn.Parameter)
        assert list(m.parameters()) == []
        assert list(dict(m.named_buffers())) == ["level"]
        assert "level" in m.state_dict()

    @pytest.mark.parametrize("trainable", [True, False])
    @pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
    def test_forward(self, trainable, dtype):
        x = torch.rand(2, 4, 4, dtype=dtype)
        out = self.module(trainable)(x)
        assert out.dtype == dtype
        expected = black_level(x, torch.tensor(self.level, dtype=dtype))
        torch.testing.assert_close(out, expected)

    def test_gradient_reaches_parameter(self):
        m = self.module(True)
        m(torch.rand(1, 2, 4, dtype=torch.float32)).sum().backward()
        assert m.level.grad.tolist() == [-2.0, -2.0, -2.0, -2.0]

    def test_project_clamps_into_bounds(self):
        m = self.module(True)
        with torch.no_grad():
            m.level.copy_(torch.tensor([2.0, -3.0, 0.5, -1.0]))
        m.project_()
        assert m.level.tolist() == [1.0, -1.0, 0.5, -1.0]
        assert isinstance(m.level, nn.Parameter) and m.level.requires_grad

    def test_project_leaves_buffers(self):
        m = self.module(False)
        m.level.copy_(torch.tensor([2.0, 0.0, 0.0, 0.0], dtype=torch.float64))
        m.project_()
        assert m.level.tolist() == [2.0, 0.0, 0.0, 0.0]

    def test_repr(self):
        assert "black_level=per_site" in repr(self.module(False))
