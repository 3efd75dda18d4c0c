"""ispkit.stages.base: Param validation of integer/boolean parameters, Stage helpers, StageModule wiring."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pytest
import torch
from torch import nn

from ispkit.errors import InputError, ParameterError
from ispkit.stages.base import FromCamera, Param, Stage
from ispkit.stages.module import StageModule

SIZE = Param("size", (), 3, "odd side of the window", bounds=(1, 15), differentiable=False, dtype=int)
FLAG = Param("flag", (), False, "use the refining step", differentiable=False, dtype=bool)


class Scale(Stage):
    """Multiply by a factor; add the size, 100 when flagged and 10 for RGGB.

    Second docstring line, not part of describe().
    """

    kind = "scale"
    method = "test"
    takes = "rgb"
    gives = "rgb"
    cfa_aware = True
    params = (Param("factor", (), 2.0, "the factor", bounds=(0.0, 4.0)), SIZE, FLAG)

    @staticmethod
    def numpy(x, factor, size, flag, pattern):
        return x * factor + size + (100 if flag else 0) + (10 if pattern == "RGGB" else 0)

    @staticmethod
    def torch(x, factor, size, flag, pattern):
        return x * factor + size + (100 if flag else 0) + (10 if pattern == "RGGB" else 0)


class Plain(Stage):
    kind = "plain"
    method = "identity"
    takes = "raw"
    gives = "raw"

    @staticmethod
    def numpy(x, **kwargs):
        assert kwargs == {}
        return x


class TestIntParam:
    @pytest.mark.parametrize("value", [1, 3, 15, np.array(7)])
    def test_accepts_python_ints_and_0d_arrays(self, value):
        out = SIZE.validate(value, "denoise.size")
        assert type(out) is int and out == int(value)

    @pytest.mark.parametrize("value", [np.int64(5), np.int32(5), np.uint8(5)])
    def test_accepts_numpy_integer_scalars(self, value):
        """``np.int64(5)`` is as much an integer as ``np.array(5)`` (which is accepted):
        numpy scalars come out of every grid search and array index."""
        out = SIZE.validate(value, "denoise.size")
        assert out == 5 and isinstance(out, int)

    @pytest.mark.parametrize("value", [True, 5.0, "5", None, [5]])
    def test_rejects_non_integers(self, value):
        with pytest.raises(ParameterError, match=r"^denoise\.size: expected an integer, got "):
            SIZE.validate(value, "denoise.size")

    @pytest.mark.parametrize("value", [0, 16, -3])
    def test_bounds(self, value):
        with pytest.raises(ParameterError, match=r"^denoise\.size: values must lie in \[1, 15\] \(odd side of the window\)"):
            SIZE.validate(value, "denoise.size")


class TestBoolParam:
    @pytest.mark.parametrize(("value", "expected"), [(True, True), (False, False), (np.array(True), True)])
    def test_accepts_bools(self, value, expected):
        assert FLAG.validate(value, "demosaic.refining_step") is expected

    def test_accepts_numpy_bool_scalar(self):
        assert FLAG.validate(np.bool_(True), "demosaic.refining_step") is True

    @pytest.mark.parametrize("value", [1, 0, "yes", 1.0])
    def test_rejects_non_bools(self, value):
        with pytest.raises(ParameterError, match=r"^demosaic\.refining_step: expected a boolean, got "):
            FLAG.validate(value, "demosaic.refining_step")


class TestStage:
    def test_param_lookup(self):
        assert Scale.param("size") is SIZE
        with pytest.raises(KeyError, match="missing"):
            Scale.param("missing")

    def test_describe(self):
        assert Scale.describe() == "Multiply by a factor; add the size, 100 when flagged and 10 for RGGB."
        assert Plain.describe() == ""

    def test_run_numpy_passes_pattern_only_to_cfa_aware_stages(self):
        x = np.ones((3, 2, 2))
        values = {"factor": np.array(2.0), "size": 3, "flag": False}
        assert Scale.run_numpy(x, values, "RGGB").ravel()[0] == 15.0
        assert Scale.run_numpy(x, values, "BGGR").ravel()[0] == 5.0
        np.testing.assert_array_equal(Plain.run_numpy(x[0], {}, "RGGB"), x[0])

    def test_from_camera_is_a_frozen_value(self):
        assert FromCamera("black_level") == FromCamera("black_level")
        assert FromCamera("black_level") != FromCamera("white_balance")
        with pytest.raises(AttributeError):
            FromCamera("x").field = "y"  # type: ignore[misc]


class TestStageModule:
    values: ClassVar[dict[str, object]] = {"factor": Scale.param("factor").validate(2.0, "scale.factor"), "size": 3, "flag": True}

    def test_scalars_parameters_and_buffers(self):
        m = StageModule(Scale, self.values, "RGGB", frozenset({"factor"}))
        assert m.scalars == {"size": 3, "flag": True}
        assert [n for n, _ in m.named_parameters()] == ["factor"]
        assert isinstance(m.factor, nn.Parameter) and m.factor.dtype == torch.float64
        m = StageModule(Scale, self.values, "RGGB")
        assert [n for n, _ in m.named_buffers()] == ["factor"]

    @pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
    def test_values_cast_to_input(self, dtype):
        m = StageModule(Scale, self.values, "RGGB", frozenset({"factor"}))
        values = m.values(torch.zeros(1, dtype=dtype))
        assert values["factor"].dtype == dtype and values["size"] == 3 and values["flag"] is True

    @pytest.mark.parametrize(("pattern", "offset"), [("RGGB", 113.0), ("GRBG", 103.0)])
    def test_forward_passes_pattern_and_scalars(self, pattern, offset):
        m = StageModule(Scale, self.values, pattern, frozenset({"factor"}))
        out = m(torch.full((1, 3, 1, 1), 0.5))
        assert out.ravel().tolist() == [1.0 + offset] * 3
        out.sum().backward()
        assert m.factor.grad.item() == pytest.approx(1.5)

    def test_project_only_touches_bounded_trainable_parameters(self):
        m = StageModule(Scale, self.values, "RGGB", frozenset({"factor"}))
        with torch.no_grad():
            m.factor.fill_(9.0)
        m.project_()
        assert m.factor.item() == 4.0
        assert m.scalars["size"] == 3

    def test_repr(self):
        assert "scale=test" in repr(StageModule(Scale, self.values, "RGGB"))


class DropsBatch(Stage):
    """Issue 14: a plugin demosaic whose torch backend keeps only the first image of a batch."""

    kind = "demosaic"
    method = "drops_batch"
    takes = "raw"
    gives = "rgb"
    numpy = staticmethod(lambda raw: np.stack([raw] * 3))
    torch = staticmethod(lambda raw: torch.stack([raw[0]] * 3)[None])


class Darken(Stage):
    """A raw → raw stage: halve the mosaic."""

    kind = "lens"
    method = "darken"
    takes = "raw"
    gives = "raw"
    numpy = staticmethod(lambda raw: raw / 2)
    torch = staticmethod(lambda raw: raw / 2)


def _gains():
    from ispkit.stages.white_balance import WhiteBalance

    return WhiteBalance, {"gains": WhiteBalance.param("gains").validate((2.0, 1.0, 0.5), "white_balance.gains")}


class TestShapeContract:
    """Stage.run_numpy, Stage.run_torch and StageModule check the domains on both sides."""

    def test_a_pointwise_rgb_stage_rejects_one_channel(self):
        stage, values = _gains()  # gains (3,) broadcast a (2, 1, 4, 4) batch to (2, 3, 4, 4) before
        with pytest.raises(
            InputError, match=r"^stage white_balance=gains \(rgb → rgb\) input: expected a channel-first RGB view \(N, 3, H, W\), got shape \(2, 1, 4, 4\)$"
        ):
            StageModule(stage, values, "RGGB")(torch.rand(2, 1, 4, 4))
        with pytest.raises(InputError, match=r"expected a channel-first RGB view \(3, H, W\), got shape \(1, 4, 4\)"):
            stage.run_numpy(np.ones((1, 4, 4)), values, "RGGB")

    @pytest.mark.parametrize(
        ("shape", "message"), [((2, 3, 4, 4), r"expected a raw mosaic \(N, H, W\), got a 4-d tensor"), ((2, 3, 4), "height and width must be even")]
    )
    def test_a_raw_stage_rejects_views_and_odd_mosaics(self, shape, message):
        with pytest.raises(InputError, match=f"^stage lens=darken \\(raw → raw\\) input: .*{message}"):
            StageModule(Darken, {}, "RGGB")(torch.rand(shape))

    def test_a_backend_dropping_the_batch_is_an_input_error_naming_the_stage(self):
        message = r"^stage demosaic=drops_batch: its torch backend returned shape \(1, 3, 8, 8\) for an input of shape \(2, 8, 8\); a raw → rgb stage must return a tensor of shape \(2, 3, 8, 8\)$"
        with pytest.raises(InputError, match=message):
            StageModule(DropsBatch, {}, "RGGB")(torch.rand(2, 8, 8))
        assert StageModule(DropsBatch, {}, "RGGB")(torch.rand(1, 8, 8)).shape == (1, 3, 8, 8)

    def test_a_pipeline_with_a_stage_dropping_the_batch_raises(self, monkeypatch):
        from ispkit import Pipeline, hookimpl
        from ispkit.registry import Registry

        class Plugin:
            @hookimpl
            def ispkit_stages(self):
                return [DropsBatch]

        registry = Registry(entry_points=False)
        registry.register(Plugin(), name="drops-batch")
        monkeypatch.setattr("ispkit.registry._REGISTRY", registry)
        module = Pipeline([{"kind": "demosaic", "method": "drops_batch"}]).to_torch()
        with pytest.raises(InputError, match=r"stage demosaic=drops_batch: its torch backend returned shape \(1, 3, 8, 8\) for an input of shape \(2, 8, 8\)"):
            module(torch.rand(2, 8, 8))

    @pytest.mark.parametrize("out", [np.ones((3, 4, 5)), [[0.0]], np.ones((4, 4))], ids=["other width", "a list", "no channels"])
    def test_a_numpy_backend_returning_the_wrong_thing_is_an_input_error(self, out):
        stage = type("Bad", (DropsBatch,), {"method": "bad", "numpy": staticmethod(lambda raw: out)})
        with pytest.raises(
            InputError,
            match=r"^stage demosaic=bad: its numpy backend returned (shape \(\d+, \d+(, \d+)?\)|a list) for an input of shape \(4, 4\); a raw → rgb stage must return an array of shape \(3, 4, 4\)$",
        ):
            stage.run_numpy(np.ones((4, 4)), {}, "RGGB")

    @pytest.mark.parametrize(("stage", "channels"), [(Darken, 1), (DropsBatch, 3)])
    def test_a_raw_stage_module_takes_a_channel_axis(self, stage, channels):
        x = torch.rand(1, 1, 4, 6)
        out = StageModule(stage, {}, "RGGB")(x)
        assert out.shape == (1, channels, 4, 6)
        assert torch.equal(out.reshape(-1), StageModule(stage, {}, "RGGB")(x[:, 0]).reshape(-1))

    def test_output_shape(self):
        assert DropsBatch.output_shape((5, 8, 10)) == (5, 3, 8, 10)
        assert Darken.output_shape((8, 10)) == (8, 10)
        assert Scale.output_shape((2, 3, 8, 10)) == (2, 3, 8, 10)


class TestDeclarationProblems:
    def test_builtin_stages_have_none(self):
        from ispkit.stages import all_stages

        assert {s.method: s.declaration_problems() for s in all_stages()} == {s.method: [] for s in all_stages()}

    @pytest.mark.parametrize(
        ("param", "problem"),
        [
            (Param("g", (3,), (1.0, 1.0), "gains"), "tint.g default: expected shape (3,), got shape (2,)"),
            (Param("g", (), float("inf"), "gain"), "tint.g default: values must be finite, got inf"),
            (Param("g", (), 5.0, "gain", bounds=(0.0, 4.0)), "tint.g default: values must lie in [0.0, 4.0] (gain), got 5.0"),
            (Param("n", (), 4, "size", dtype=int, odd=True, differentiable=False), "tint.n default: expected an odd integer (size), got 4"),
            (Param("n", (), 2.0, "size", dtype=int, differentiable=False), "tint.n default: expected an integer, got 2.0"),
            (Param("g", (3,), FromCamera("gains"), "gains"), "tint.g: the default reads Camera.gains, which is not a camera field"),
        ],
    )
    def test_each_broken_default_is_named(self, param, problem):
        stage = type("Tint", (Stage,), {"kind": "tint", "method": "x", "params": (param,)})
        assert stage.declaration_problems() == [problem]

    def test_duplicate_names(self):
        stage = type("Tint", (Stage,), {"kind": "tint", "method": "x", "params": (SIZE, SIZE)})
        assert stage.declaration_problems() == ["tint.size: parameter names must be distinct identifiers, got 'size'"]
