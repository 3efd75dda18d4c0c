"""Colour correction: backends agree, known matrices, gradients, parameter checks, module."""

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
from ispkit.stages.color_correction import ColorCorrection, color_correction, color_correction_numpy
from ispkit.stages.module import StageModule

SETTINGS = settings(max_examples=25, deadline=None)
CAMERAS = Path(__file__).resolve().parents[2] / "ispkit" / "cameras"
WHERE = "color_correction.matrix"

matrices = st.lists(st.floats(-16.0, 16.0, allow_nan=False), min_size=9, max_size=9).map(lambda v: np.reshape(v, (3, 3)))


def validated(value) -> dict[str, np.ndarray]:
    return {"matrix": ColorCorrection.param("matrix").validate(value, WHERE)}


class TestDeclaration:
    def test_attributes(self):
        assert (ColorCorrection.kind, ColorCorrection.method) == ("color_correction", "matrix")
        assert (ColorCorrection.takes, ColorCorrection.gives) == ("rgb", "rgb")
        (p,) = ColorCorrection.params
        assert p.name == "matrix" and p.shape == (3, 3) and p.bounds == (-16.0, 16.0)
        assert p.default == FromCamera("color_matrix")

    def test_default_from_identity_camera(self):
        np.testing.assert_array_equal(default_values(ColorCorrection)["matrix"], np.eye(3))


class TestBackendsAgree:
    @SETTINGS
    @given(batch=rgb_batches(), pattern=st.sampled_from(BAYER_PATTERNS))
    def test_defaults(self, batch, pattern):
        assert_backends_agree(ColorCorrection, batch, pattern=pattern)

    @SETTINGS
    @given(batch=rgb_batches(), value=matrices)
    def test_random_matrices(self, batch, value):
        assert_backends_agree(ColorCorrection, batch, validated(value))

    @pytest.mark.parametrize("name", ["microscopy", "drone"])
    def test_published_matrices(self, name):
        camera = Camera.from_yaml(CAMERAS / f"{name}.yaml")
        batch = np.random.default_rng(0).random((2, 3, 4, 6))
        assert_backends_agree(ColorCorrection, batch, validated(camera.color_matrix), pattern=camera.pattern)


class TestKnownValues:
    def test_docstring_example(self):
        m = np.array([[0.0, 1, 0], [1, 0, 0], [0, 0, 2]])
        out = color_correction_numpy(np.arange(3.0).reshape(3, 1, 1), m)
        assert out.ravel().tolist() == [1.0, 0.0, 4.0]

    def test_identity(self):
        rgb = np.random.default_rng(1).random((3, 3, 5))
        np.testing.assert_array_equal(color_correction_numpy(rgb, np.eye(3)), rgb)

    def test_white_maps_to_row_sums(self):
        camera = Camera.from_yaml(CAMERAS / "drone.yaml")
        m = np.array(camera.color_matrix)
        out = color_correction_numpy(np.ones((3, 2, 2)), m)
        np.testing.assert_allclose(out[:, 0, 0], m.sum(axis=1), rtol=0, atol=1e-15)
        np.testing.assert_allclose(out[:, 0, 0], [1.00000005, 0.99999998, 1.00000002], rtol=0, atol=1e-12)

    def test_per_pixel_matrix_product(self):
        rng = np.random.default_rng(2)
        rgb, m = rng.random((3, 2, 3)), rng.normal(size=(3, 3))
        out = color_correction_numpy(rgb, m)
        for i, j in np.ndindex(2, 3):
            np.testing.assert_allclose(out[:, i, j], m @ rgb[:, i, j], rtol=0, atol=1e-14)

    def test_output_not_clipped(self):
        out = color_correction(torch.ones(1, 3, 1, 1, dtype=torch.float64), torch.tensor([[2.0, 0, 0], [0, -1, 0], [0, 0, 1]], dtype=torch.float64))
        assert out.ravel().tolist() == [2.0, -1.0, 1.0]

    def test_torch_batched_and_unbatched(self):
        rgb = torch.rand(2, 3, 4, 5, dtype=torch.float64)
        m = torch.randn(3, 3, dtype=torch.float64)
        out = color_correction(rgb, m)
        assert out.shape == rgb.shape
        for n in range(2):
            np.testing.assert_allclose(out[n].numpy(), color_correction_numpy(rgb[n].numpy(), m.numpy()), rtol=0, atol=1e-14)
            np.testing.assert_allclose(color_correction(rgb[n], m).numpy(), out[n].numpy(), rtol=0, atol=1e-14)


class TestGradients:
    def test_gradcheck_input_and_matrix(self):
        rgb = torch.rand(2, 3, 2, 3, dtype=torch.float64, requires_grad=True)
        m = torch.randn(3, 3, dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(color_correction, (rgb, m))

    def test_gradient_values(self):
        rgb = torch.rand(1, 3, 2, 2, dtype=torch.float64, requires_grad=True)
        m = torch.randn(3, 3, dtype=torch.float64, requires_grad=True)
        color_correction(rgb, m).sum().backward()
        sums = rgb.detach().sum(dim=(0, 2, 3))
        torch.testing.assert_close(m.grad, sums.expand(3, 3))  # d/dM_ij = Σ rgb_j
        torch.testing.assert_close(rgb.grad[0, :, 0, 0], m.detach().sum(dim=0))  # d/drgb_j = Σ_i M_ij


class TestParamValidate:
    param = ColorCorrection.param("matrix")

    def test_canonical_form(self):
        out = self.param.validate([[1, 0, 0], [0, 1, 0], [0, 0, 1]], WHERE)
        assert out.dtype == np.float64 and out.shape == (3, 3) and not out.flags.writeable

    @pytest.mark.parametrize(("value", "got"), [(np.eye(2), "(2, 2)"), (np.ones(9), "(9,)"), (np.ones((1, 3, 3)), "(1, 3, 3)")])
    def test_wrong_shape(self, value, got):
        with pytest.raises(ParameterError) as info:
            self.param.validate(value, WHERE)
        assert str(info.value) == f"{WHERE}: expected shape (3, 3), got shape {got}"

    def test_out_of_bounds(self):
        value = np.eye(3)
        value[2, 1] = -16.5
        with pytest.raises(ParameterError, match=rf"^{WHERE}: values must lie in \[-16\.0, 16\.0\] \(colour matrix M"):
            self.param.validate(value, WHERE)

    def test_non_finite(self):
        value = np.eye(3)
        value[0, 0] = np.inf
        with pytest.raises(ParameterError, match=rf"^{WHERE}: values must be finite"):
            self.param.validate(value, WHERE)


class TestStageModule:
    def module(self, trainable: bool) -> StageModule:
        return StageModule(ColorCorrection, validated(np.eye(3)), "RGGB", frozenset({"matrix"}) if trainable else frozenset())

    def test_parameter_or_buffer(self):
        m = self.module(True)
        assert isinstance(m.matrix, nn.Parameter) and m.matrix.shape == (3, 3)
        assert [name for name, _ in m.named_parameters()] == ["matrix"]
        m = self.module(False)
        assert [name for name, _ in m.named_buffers()] == ["matrix"]
        assert list(m.parameters()) == []

    def test_forward_and_gradient(self):
        m = self.module(True)
        x = torch.rand(2, 3, 2, 2, dtype=torch.float32)
        out = m(x)
        assert out.dtype == torch.float32
        torch.testing.assert_close(out, x)
        out[:, 0].sum().backward()  # red output = row 0 of M
        assert m.matrix.grad[1:].abs().max().item() == 0.0
        # the float64 parameter's gradient is a sum accumulated in float32 (the input's dtype),
        # in the backward's order: equal to the sum to float32 rounding, not to float64's
        torch.testing.assert_close(m.matrix.grad[0], x.sum(dim=(0, 2, 3)).double(), rtol=1.3e-6, atol=1e-5)

    def test_project_clamps_into_bounds(self):
        m = self.module(True)
        with torch.no_grad():
            m.matrix.copy_(torch.tensor([[20.0, 0, 0], [0, -30, 0], [0, 0, 1.5]]))
        m.project_()
        assert m.matrix.tolist() == [[16.0, 0.0, 0.0], [0.0, -16.0, 0.0], [0.0, 0.0, 1.5]]
