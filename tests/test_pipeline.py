"""Pipelines: presets, YAML round trip, both backends, the torch module, errors."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

import ispkit
from ispkit import Camera, Pipeline
from ispkit.errors import ConfigError, InputError, ParameterError, UnknownStageError

RNG = np.random.default_rng(7)
RAW = RNG.random((2, 8, 12))


def test_presets_are_the_papers_twelve():
    assert ispkit.presets() == [
        "bi,s,me", "bi,s,ga", "bi,u,me", "bi,u,ga",
        "ma,s,me", "ma,s,ga", "ma,u,me", "ma,u,ga",
        "me,s,me", "me,s,ga", "me,u,me", "me,u,ga",
    ]  # fmt: skip


@pytest.mark.parametrize("name", ispkit.PRESETS)
def test_preset_structure_and_yaml_round_trip(name):
    dm, sh, dn = name.split(",")
    pipeline = Pipeline.preset(name, camera="drone")
    methods = [(s.stage.kind, s.stage.method) for s in pipeline.stages]
    assert methods == [
        ("black_level", "per_site"),
        ("demosaic", {"bi": "bilinear", "ma": "malvar2004", "me": "menon2007"}[dm]),
        ("white_balance", "gains"),
        ("color_correction", "matrix"),
        ("sharpen", {"s": "filter", "u": "unsharp_mask"}[sh]),
        ("denoise", {"me": "median", "ga": "gaussian"}[dn]),
        ("gamma", "power"),
    ]
    np.testing.assert_array_equal(pipeline["white_balance"].values["gains"], Camera.builtin("drone").white_balance)
    again = Pipeline.from_yaml(pipeline.to_yaml())
    assert again == pipeline and again.name == name and again.camera.name == "drone"


def test_yaml_round_trip_with_overrides_and_custom_camera(tmp_path):
    camera = dataclasses.replace(Camera.builtin("microscopy"), name="my-scope", pattern="GBRG")
    pipeline = Pipeline.preset("ma,u,ga", camera=camera).with_params({"sharpen.amount": 0.5, "gamma.gamma": 1.8})
    path = tmp_path / "p.yaml"
    pipeline.to_yaml(path)
    again = Pipeline.from_yaml(path)
    assert again == pipeline
    assert again.camera.pattern == "GBRG" and float(again["sharpen"].values["amount"]) == 0.5
    assert "amount: 0.5" in path.read_text() and "radius" not in path.read_text()


class TestNumpyBackend:
    def test_shapes(self):
        pipeline = Pipeline.preset("bi,s,me")
        assert pipeline(RAW[0]).shape == (3, 8, 12)
        out = pipeline(RAW)
        assert out.shape == (2, 3, 8, 12)
        np.testing.assert_array_equal(out[1], pipeline(RAW[1]))

    def test_output_in_unit_range(self):
        out = Pipeline.preset("me,u,ga")(RAW)
        assert out.min() >= 0.0 and out.max() <= 1.0

    def test_input_is_not_modified(self):
        raw = RAW.copy()
        Pipeline.preset("ma,s,me")(raw)
        np.testing.assert_array_equal(raw, RAW)

    def test_float32_input_is_processed_in_float64(self):
        out = Pipeline.preset("bi,s,ga")(RAW[0].astype(np.float32))
        assert out.dtype == np.float64

    @pytest.mark.parametrize(
        ("raw", "message"),
        [
            (np.zeros((7, 8)), "must be even; got 7×8"),
            (np.zeros((8, 9)), "must be even; got 8×9"),
            (np.zeros((1, 2, 8, 8)), r"expected a raw mosaic \(H, W\) or a batch \(N, H, W\)"),
            (np.zeros(8), r"expected a raw mosaic"),
            (np.zeros((8, 8), dtype=np.uint16), "divide raw counts by the camera's white level"),
            (np.full((8, 8), np.nan), "64 value"),
            (np.array([[np.inf, 0], [0, 0]]), "1 value"),
            (np.zeros((0, 8, 8)), r"the mosaic is empty \(shape \(0, 8, 8\)\)"),
        ],
    )
    def test_bad_input(self, raw, message):
        with pytest.raises(InputError, match=message):
            Pipeline.preset("bi,s,me")(raw)

    def test_tensor_input_is_redirected_to_torch(self):
        with pytest.raises(InputError, match="to_torch"):
            Pipeline.preset("bi,s,me")(torch.zeros(4, 4))


class TestTorchModule:
    def test_parameter_names_and_trainable_selection(self):
        pipeline = Pipeline.preset("bi,s,ga")
        frozen = pipeline.to_torch()
        assert list(frozen.parameters()) == []
        assert sorted(n for n, _ in frozen.named_buffers()) == [
            "black_level.level", "color_correction.matrix", "demosaic.kernels", "denoise.kernel",
            "gamma.gamma", "sharpen.kernel", "white_balance.gains",
        ]  # fmt: skip
        every = pipeline.to_torch(trainable="all")
        assert len(list(every.parameters())) == 7
        some = pipeline.to_torch(trainable=["denoise", "black_level.level"])
        assert sorted(n for n, _ in some.named_parameters()) == ["black_level.level", "denoise.kernel"]

    def test_menon_and_median_have_no_trainable_parameters(self):
        module = Pipeline.preset("me,u,me").to_torch(trainable="all")
        assert sorted(n for n, _ in module.named_parameters()) == [
            "black_level.level", "color_correction.matrix", "gamma.gamma", "sharpen.amount", "sharpen.radius", "white_balance.gains",
        ]  # fmt: skip

    @pytest.mark.parametrize(
        ("trainable", "message"),
        [
            ("denoize", "no stage named 'denoize'.*did you mean 'denoise'"),
            ("demosaic.refining_step", "refining_step is not a differentiable parameter"),
            ("sharpen.sigma", "has no parameter 'sigma'"),
        ],
    )
    def test_bad_trainable(self, trainable, message):
        with pytest.raises(ParameterError, match=message):
            Pipeline.preset("me,u,me").to_torch(trainable=trainable)

    @pytest.mark.parametrize("shape", [(8, 12), (2, 8, 12), (2, 1, 8, 12)])
    def test_input_layouts(self, shape):
        module = Pipeline.preset("bi,s,me").to_torch()
        raw = torch.rand(shape, dtype=torch.float64)
        out = module(raw)
        assert out.shape == ((3, 8, 12) if len(shape) == 2 else (2, 3, 8, 12))

    @pytest.mark.parametrize(
        ("raw", "message"),
        [
            (torch.zeros(2, 7, 8), "must be even"),
            (torch.zeros(2, 3, 8, 8), r"expected \(H, W\), \(N, H, W\) or \(N, 1, H, W\)"),
            (torch.zeros(8, 8, dtype=torch.int32), "floating-point"),
            (torch.full((8, 8), float("nan")), "NaN or infinite"),
            (np.zeros((8, 8)), "expected a torch tensor"),
        ],
    )
    def test_bad_input(self, raw, message):
        with pytest.raises(InputError, match=message):
            Pipeline.preset("bi,s,me").to_torch()(raw)

    def test_input_is_not_modified(self):
        raw = torch.rand(2, 8, 8, dtype=torch.float64)
        before = raw.clone()
        Pipeline.preset("me,s,ga").to_torch(trainable="all")(raw)
        assert torch.equal(raw, before)

    def test_track_stages(self):
        module = Pipeline.preset("ma,u,me").to_torch(track_stages=True)
        out = module(torch.rand(2, 8, 8, dtype=torch.float64))
        assert list(module.views) == ["black_level", "demosaic", "white_balance", "color_correction", "sharpen", "denoise", "gamma"]
        assert module.views["black_level"].shape == (2, 8, 8)
        assert all(v.shape == (2, 3, 8, 8) for k, v in module.views.items() if k != "black_level")
        assert torch.equal(module.views["gamma"], out)

    def test_gradients_reach_every_trainable_parameter(self):
        module = Pipeline.preset("bi,u,ga", camera="drone").to_torch(trainable="all")
        raw = torch.rand(2, 16, 16, dtype=torch.float64) * 0.6 + 0.1
        module(raw).mean().backward()
        for name, param in module.named_parameters():
            assert param.grad is not None and torch.isfinite(param.grad).all(), name
            assert param.grad.abs().sum() > 0, name

    def test_gradcheck_whole_pipeline(self):
        module = Pipeline.preset("bi,s,ga", camera="drone").to_torch(trainable="all", dtype=torch.float64)
        raw = torch.rand(1, 6, 6, dtype=torch.float64) * 0.5 + 0.2
        names = [n for n, _ in module.named_parameters()]

        def run(*values):
            return torch.func.functional_call(module, dict(zip(names, values, strict=True)), (raw,))

        assert torch.autograd.gradcheck(run, tuple(p.detach().clone().requires_grad_() for p in module.parameters()))

    def test_to_pipeline_carries_trained_values(self):
        pipeline = Pipeline.preset("bi,s,ga")
        module = pipeline.to_torch(trainable=["white_balance", "gamma"])
        with torch.no_grad():
            module.gamma.gamma.fill_(1.7)
        back = module.to_pipeline()
        assert float(back["gamma"].values["gamma"]) == pytest.approx(1.7)
        assert Pipeline.from_yaml(back.to_yaml()) == back
        assert "gamma: 1.7" in back.to_yaml()

    def test_project_clamps_into_bounds(self):
        module = Pipeline.preset("bi,s,ga").to_torch(trainable="gamma")
        with torch.no_grad():
            module.gamma.gamma.fill_(100.0)
        module.project_()
        assert module.gamma.gamma.item() == 10.0

    def test_float32_and_float64(self):
        module = Pipeline.preset("me,s,me").to_torch()
        raw = torch.rand(2, 8, 8, dtype=torch.float64)
        torch.testing.assert_close(module(raw.float()).double(), module(raw), atol=1e-4, rtol=0)

    @pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
    def test_cuda_matches_cpu(self):
        module = Pipeline.preset("me,u,ga").to_torch()
        raw = torch.rand(2, 16, 16)
        torch.testing.assert_close(module.cuda()(raw.cuda()).cpu(), module.cpu()(raw), atol=1e-4, rtol=0)


class TestConfigErrors:
    def test_unknown_method_has_line_and_close_match(self):
        text = "stages:\n  - kind: black_level\n  - kind: demosaic\n    method: bilnear\n"
        with pytest.raises(UnknownStageError, match=r"<string>:4:13: stages\[1\]\.method: unknown method 'bilnear'.*did you mean 'bilinear'"):
            Pipeline.from_yaml(text)

    def test_unknown_kind(self):
        with pytest.raises(UnknownStageError, match=r"<string>:2:11: stages\[0\]\.kind: unknown stage kind 'demosiac'.*'demosaic'"):
            Pipeline.from_yaml("stages:\n  - kind: demosiac\n")

    def test_wrong_parameter_shape_names_stage_param_and_expected_shape(self, tmp_path):
        path = tmp_path / "bad.yaml"
        path.write_text("stages:\n  - kind: demosaic\n    method: bilinear\n    params:\n      kernels: [[1, 2], [3, 4]]\n")
        with pytest.raises(ConfigError, match=rf"{path}:5:16: .*demosaic\.kernels: expected shape \(3, 3, 3\), got shape \(2, 2\)"):
            Pipeline.from_yaml(path)

    def test_unknown_parameter(self):
        with pytest.raises(ConfigError, match=r"gamma=power has no parameter 'gama'.*did you mean 'gamma'"):
            Pipeline.from_yaml("stages:\n  - kind: demosaic\n    method: bilinear\n  - kind: gamma\n    params: {gama: 2}\n")

    def test_malformed_yaml_has_line(self):
        with pytest.raises(ConfigError, match=r"<string>:4:1: malformed YAML: .*flow sequence at line 3, column 11"):
            Pipeline.from_yaml("stages:\n  - kind: gamma\n  - kind: [demosaic\n")
        with pytest.raises(ConfigError, match=r"<string>:3:10: malformed YAML: mapping values are not allowed here"):
            Pipeline.from_yaml("stages:\n  - kind: gamma\n    bad: : x\n")

    def test_missing_demosaic(self):
        with pytest.raises(ConfigError, match=r"takes an RGB view, but the stages before it give a raw mosaic \(add a demosaic stage first\)"):
            Pipeline.from_yaml("stages:\n  - kind: black_level\n  - kind: gamma\n")

    def test_ends_on_raw(self):
        with pytest.raises(ConfigError, match="ends on a raw mosaic"):
            Pipeline.from_yaml("stages:\n  - kind: black_level\n")

    def test_duplicate_stage_names(self):
        text = "stages:\n  - kind: demosaic\n    method: bilinear\n  - kind: denoise\n    method: median\n  - kind: denoise\n    method: gaussian\n"
        with pytest.raises(ConfigError, match="two stages are named 'denoise'"):
            Pipeline.from_yaml(text)
        text += "    name: denoise_again\n"
        assert [s.name for s in Pipeline.from_yaml(text).stages] == ["demosaic", "denoise", "denoise_again"]

    def test_unknown_top_level_key_and_camera(self):
        with pytest.raises(ConfigError, match="unknown pipeline key 'stage'"):
            Pipeline.from_yaml("stage:\n  - kind: gamma\n")
        with pytest.raises(ConfigError, match=r"unknown camera 'microscope'.*'microscopy'"):
            Pipeline.from_yaml("camera: microscope\nstages:\n  - kind: demosaic\n    method: bilinear\n")

    def test_out_of_bounds_parameter(self):
        with pytest.raises(ConfigError, match=r"gamma\.gamma: values must lie in \[0\.1, 10\.0\]"):
            Pipeline.from_yaml("stages:\n  - kind: demosaic\n    method: bilinear\n  - kind: gamma\n    params: {gamma: -1}\n")

    def test_unknown_preset(self):
        with pytest.raises(UnknownStageError, match="did you mean 'bi,s,me'"):
            Pipeline.preset("bi,s,mx")

    def test_with_params_errors(self):
        pipeline = Pipeline.preset("bi,s,me")
        with pytest.raises(ParameterError, match=r"white_balance\.gains: expected shape \(3,\), got shape \(2,\)"):
            pipeline.with_params({"white_balance.gains": [1, 2]})
        with pytest.raises(KeyError, match="no stage named 'wb'"):
            pipeline.with_params({"wb.gains": [1, 2, 3]})


class TestStageEquality:
    """PipelineStage equality: the same function, i.e. name, method and every parameter value."""

    def test_equal_when_kind_method_and_values_agree(self):
        a, b = Pipeline.preset("ma,s,me", camera="drone"), Pipeline.preset("ma,s,me", camera="drone")
        assert a == b and all(s == t and hash(s) == hash(t) for s, t in zip(a.stages, b.stages, strict=True))
        assert len(set(a.stages) | set(b.stages)) == len(a.stages)
        explicit = a.with_params({"gamma.gamma": 2.2})  # the default, given explicitly: same function
        assert explicit["gamma"].overrides == {"gamma"} and explicit == a

    def test_a_different_gamma_is_a_different_stage(self):
        a = Pipeline.preset("ma,s,me", camera="drone")
        b = a.with_params({"gamma.gamma": 2.4})
        assert b["gamma"] != a["gamma"] and b != a
        assert b["demosaic"] == a["demosaic"]

    def test_one_changed_matrix_entry_is_a_different_stage(self):
        a = Pipeline.preset("bi,s,ga", camera="drone")
        matrix = np.array(a["color_correction"].values["matrix"])
        matrix[2, 1] = np.nextafter(matrix[2, 1], 1.0)  # one ulp: equality has no tolerance
        b = a.with_params({"color_correction.matrix": matrix})
        assert b["color_correction"] != a["color_correction"] and b != a

    def test_values_compare_as_numbers_not_storage(self):
        gamma = Pipeline.preset("bi,s,ga")["gamma"]
        as_float32 = dataclasses.replace(gamma, values={"gamma": np.array(2.2, dtype=np.float32)})
        assert as_float32 != gamma  # float32(2.2) is another number than 2.2
        two = gamma.stage.param("gamma").validate(2.0, "gamma.gamma")
        assert dataclasses.replace(gamma, values={"gamma": two}) == dataclasses.replace(gamma, values={"gamma": np.float32(2.0)})
        assert dataclasses.replace(gamma, values={"gamma": np.array([2.2])}) != gamma  # shape (1,) vs ()

    def test_name_method_and_type_matter(self):
        p = Pipeline.preset("bi,s,me")
        renamed = dataclasses.replace(p["gamma"], name="tone")
        assert renamed != p["gamma"] and p["denoise"] != Pipeline.preset("bi,s,ga")["denoise"]
        assert p["gamma"] != "gamma" and p["gamma"] != p["gamma"].to_dict()


class TestValuesCheckedAtLoad:
    """Every stage parameter and camera value of a pipeline YAML is checked when it is read, at its line."""

    HEAD = "name: p\nstages:\n  - kind: demosaic\n    method: bilinear\n"

    def _error(self, tmp_path, stage: str) -> ConfigError:
        path = tmp_path / "p.yaml"
        path.write_text(self.HEAD + stage)
        with pytest.raises(ConfigError) as info:
            Pipeline.from_yaml(path)
        assert info.value.source == str(path)
        return info.value

    def test_median_size_must_be_odd(self, tmp_path):
        err = self._error(tmp_path, "  - kind: denoise\n    method: median\n    params:\n      size: 4\n")
        assert err.line == 8
        assert err.message == "stages[1].params.size: denoise.size: expected an odd integer (odd side of the square median window, in pixels), got 4"
        assert Pipeline.from_yaml(self.HEAD + "  - kind: denoise\n    method: median\n    params: {size: 5}\n")["denoise"].values["size"] == 5

    def test_median_size_4_through_with_params(self):
        with pytest.raises(ParameterError, match=r"denoise\.size: expected an odd integer"):
            Pipeline.preset("bi,s,me").with_params({"denoise.size": 4})

    @pytest.mark.parametrize(
        ("value", "problem"),
        [
            (".inf", "values must be finite, got inf"),
            (".nan", "values must be finite, got nan"),
            ("yes", "expected numbers of shape (), got True"),
            ("'2.2'", "expected numbers of shape (), got '2.2'"),
            ("fast", "expected numbers of shape (), got 'fast'"),
            ("20.0", "values must lie in [0.1, 10.0]"),
        ],
    )
    def test_float_parameters(self, tmp_path, value, problem):
        err = self._error(tmp_path, f"  - kind: gamma\n    params:\n      gamma: {value}\n")
        assert err.line == 7 and err.message.startswith(f"stages[1].params.gamma: gamma.gamma: {problem}")

    def test_list_parameter_with_a_boolean_or_text(self, tmp_path):
        err = self._error(tmp_path, "  - kind: white_balance\n    params:\n      gains: [1.0, true, 1.0]\n")
        assert err.line == 7 and "white_balance.gains: expected numbers of shape (3,), got [1.0, True, 1.0]" in err.message

    @pytest.mark.parametrize(
        ("stage", "line", "message"),
        [
            ("  - kind: 3\n", 5, "stages[1].kind: expected a stage kind name, got 3"),
            ("  - kind: gamma\n    method: 3\n", 6, "stages[1].method: expected a stage method name (or null for a kind with one method), got 3"),
            ("  - kind: gamma\n    method: [power]\n", 6, "stages[1].method: expected a stage method name"),
        ],
    )
    def test_kind_and_method_must_be_names(self, tmp_path, stage, line, message):
        err = self._error(tmp_path, stage)
        assert err.line == line and err.message.startswith(message)

    def test_pipeline_name_must_be_text(self):
        with pytest.raises(ConfigError, match=r"^<string>:1:7: name: expected a pipeline name \(a non-empty string\) or null, got \['p'\]"):
            Pipeline.from_yaml("name: [p]\nstages: [{kind: demosaic, method: bilinear}]\n")

    @pytest.mark.parametrize(
        ("field", "value", "problem"),
        [
            ("gain", ".inf", "expected a positive number or null, got inf"),
            ("bit_depth", "12.5", "expected an integer, got 12.5"),
            ("white_balance", "[1, yes, 1]", "expected 3 finite numbers, got [1, True, 1]"),
        ],
    )
    def test_embedded_camera_values(self, field, value, problem):
        text = f"camera:\n  name: c\n  {field}: {value}\nstages: [{{kind: demosaic, method: bilinear}}]\n"
        with pytest.raises(ConfigError) as info:
            Pipeline.from_yaml(text)
        assert info.value.line == 3 and info.value.message == f"camera.{field}: {problem}"


class TestAfter:
    """Pipeline.after(kind): the stages after a kind, as a pipeline of RGB views (linear DNGs start after demosaicking)."""

    def test_equals_the_full_pipeline_from_that_stage_on(self):
        full = Pipeline.preset("ma,u,ga", camera="drone")
        rest = full.after("demosaic")
        assert rest.takes == "rgb" and full.takes == "raw" and rest.camera == full.camera
        assert [s.name for s in rest.stages] == ["white_balance", "color_correction", "sharpen", "denoise", "gamma"]
        raw = np.random.default_rng(3).uniform(0.06, 0.9, (2, 8, 10))
        demosaicked = np.stack(
            [full.stages[1].stage.run_numpy(full.stages[0].stage.run_numpy(r, full.stages[0].values, "RGGB"), full.stages[1].values, "RGGB") for r in raw]
        )
        np.testing.assert_array_equal(rest(demosaicked), full(raw))
        np.testing.assert_array_equal(rest(demosaicked[0]), full(raw[0]))
        module = rest.to_torch(dtype=torch.float64)
        out = module(torch.as_tensor(demosaicked))
        assert out.shape == (2, 3, 8, 10)
        np.testing.assert_allclose(out.numpy(), full(raw), atol=1e-6)
        assert module(torch.as_tensor(demosaicked[0])).shape == (3, 8, 10)

    def test_torch_module_is_differentiable_and_round_trips(self):
        rest = Pipeline.preset("bi,s,ga", camera="microscopy").after("demosaic")
        module = rest.to_torch(trainable="all", dtype=torch.float64)
        module(torch.rand(1, 3, 6, 6, dtype=torch.float64)).sum().backward()
        assert module.white_balance.gains.grad is not None and module.gamma.gamma.grad is not None
        assert Pipeline.from_yaml(rest.to_yaml()) == rest and module.to_pipeline() == rest

    def test_rgb_pipelines_refuse_mosaics(self):
        rest = Pipeline.preset("bi,s,ga").after("demosaic")
        with pytest.raises(InputError, match=r"starts with 'white_balance', which takes RGB views\): expected a channel-first RGB view \(3, H, W\)"):
            rest(np.zeros((4, 4)))
        with pytest.raises(InputError, match=r"expected a channel-first RGB view \(N, 3, H, W\), got shape \(2, 1, 4, 4\)"):
            rest.to_torch()(torch.zeros(2, 1, 4, 4))
        with pytest.raises(InputError, match="finite"):
            rest(np.full((3, 4, 4), np.nan))

    def test_bad_kinds(self):
        full = Pipeline.preset("bi,s,ga")
        with pytest.raises(UnknownStageError, match=r"no stage of kind 'demosiac'.*did you mean 'demosaic'"):
            full.after("demosiac")
        with pytest.raises(
            ConfigError, match=r"after\('black_level'\): the stages after it must start on an RGB view, but 'demosaic', which takes a raw mosaic"
        ):
            full.after("black_level")
        with pytest.raises(ConfigError, match="but nothing follows it"):
            full.after("gamma")


def natural_batch(pattern: str = "RGGB", size: int = 32) -> np.ndarray:
    """Two mosaics of photographs (8-bit values k / 255), as float32 numbers."""
    from support import float32_values, mosaic, natural_crop

    return float32_values(np.stack([mosaic(natural_crop(name, 101, 57, size, size), pattern) for name in ("astronaut", "coffee")]))


class _NoHostReads(torch.utils._python_dispatch.TorchDispatchMode):
    """Raises on every read of a tensor value back to Python (``.item()``, ``float(t)``, ``bool(t)``)."""

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func is torch.ops.aten._local_scalar_dense.default:
            raise AssertionError("a tensor value was read back to the host")
        return func(*args, **(kwargs or {}))


#: One preset per demosaic method; the unsharp mask reads its radius's value to size its kernel.
ONE_PER_DEMOSAIC = ["bi,u,ga", "ma,s,me", "me,u,me"]


class TestDeviceCleanModule:
    """Issue 14 item 5: no host reads in forward, torch.export / torch.compile, any dtype and device."""

    def test_parameters_and_buffers_take_the_module_dtype(self):
        module = Pipeline.preset("bi,s,ga").to_torch(trainable="gamma")
        assert {t.dtype for t in [*module.parameters(), *module.buffers()]} == {torch.float32}
        assert {t.dtype for t in module.to(torch.float64).buffers()} == {torch.float64}
        assert Pipeline.preset("bi,s,ga").to_torch(dtype=torch.bfloat16).gamma.gamma.dtype == torch.bfloat16
        with pytest.raises(ParameterError, match="floating-point torch dtype"):
            Pipeline.preset("bi,s,ga").to_torch(dtype=torch.int32)

    def test_raw_stages_before_menon_stay_float64(self):
        """Menon decides on the black level's float64 result, whatever the module's dtype."""
        module = Pipeline.preset("me,s,ga").to_torch(trainable="black_level")
        assert module.black_level.level.dtype == torch.float64 and module.gamma.gamma.dtype == torch.float32
        module.half()
        assert module.black_level.level.dtype == torch.float64 and module.gamma.gamma.dtype == torch.float16
        assert Pipeline.preset("bi,s,ga").to_torch().black_level.level.dtype == torch.float32

    def test_untrained_float32_module_gives_back_its_exact_pipeline(self):
        pipeline = Pipeline.preset("ma,u,ga", camera="drone")
        assert pipeline.to_torch(trainable="all").to_pipeline() == pipeline

    @pytest.mark.parametrize("preset", ONE_PER_DEMOSAIC)
    def test_forward_reads_no_tensor_value_without_the_check(self, preset):
        module = Pipeline.preset(preset).to_torch(trainable="all")
        raw = torch.from_numpy(natural_batch()).float()
        module(raw)  # the first call copies the unsharp radius to the host
        with _NoHostReads():
            out = module(raw, check=False)
            out.mean().backward()
        with pytest.raises(AssertionError, match="read back to the host"), _NoHostReads():
            module(raw)  # the check reads the values once

    def test_check_keeps_clear_errors_and_can_be_called_alone(self):
        module = Pipeline.preset("bi,s,me").to_torch()
        with pytest.raises(InputError, match="1 value\\(s\\) are NaN or infinite"):
            module.check(torch.tensor([[0.5, float("inf")], [0.1, 0.2]]))
        assert module.check(torch.zeros(2, 1, 4, 6)).shape == (2, 4, 6)
        with pytest.raises(InputError, match="must be even"):
            module(torch.zeros(3, 4), check=False)  # shapes are always checked

    @pytest.mark.parametrize("preset", ONE_PER_DEMOSAIC)
    def test_exported_program_equals_eager_on_a_photograph(self, preset):
        module = Pipeline.preset(preset, camera="drone").to_torch().eval()
        raw = torch.from_numpy(natural_batch("GRBG")).float()
        program = torch.export.export(module, (raw,))
        torch.testing.assert_close(program.module()(raw), module(raw), atol=1e-6, rtol=0)

    def test_torch_compile_traces_the_whole_forward(self):
        """fullgraph: a graph break (a host read, say) would be an error."""
        module = Pipeline.preset("bi,u,ga").to_torch().eval()
        raw = torch.from_numpy(natural_batch()).float()
        compiled = torch.compile(module, backend="eager", fullgraph=True)
        torch.testing.assert_close(compiled(raw), module(raw), atol=1e-6, rtol=0)

    @pytest.mark.parametrize("preset", ispkit.PRESETS)
    def test_meta_device_gives_shapes(self, preset):
        module = Pipeline.preset(preset).to_torch(trainable="all").to("meta")
        out = module(torch.empty(3, 8, 10, device="meta"))
        assert out.shape == (3, 3, 8, 10) and out.device.type == "meta" and out.dtype == torch.float32

    @pytest.mark.parametrize("camera", ["microscopy", "drone"])
    @pytest.mark.parametrize("preset", ONE_PER_DEMOSAIC)
    @pytest.mark.parametrize(("dtype", "before_gamma", "mean_after", "max_after"), [(torch.float16, 4e-3, 1e-3, 0.1), (torch.bfloat16, 3e-2, 5e-3, 0.35)])
    def test_half_precision_is_close_to_float32(self, preset, camera, dtype, before_gamma, mean_after, max_after):
        """On the same input numbers: before gamma within ``before_gamma`` × the largest value
        (about 4 and 8 units in the last place), after it within ``mean_after`` on average
        and ``max_after`` at worst (gamma's slope at black magnifies the difference)."""
        from test_static import without_gamma

        pipeline = Pipeline.preset(preset, camera=camera)
        raw = torch.from_numpy(natural_batch()).to(dtype)
        same = raw.float()
        for p, check_before in ((without_gamma(pipeline), True), (pipeline, False)):
            got = p.to_torch(dtype=dtype)(raw)
            assert got.dtype == dtype and torch.isfinite(got).all()
            reference = p.to_torch()(same)
            difference = (got.float() - reference).abs()
            if check_before:
                assert difference.max() <= before_gamma * reference.abs().max()
            else:
                assert difference.mean() <= mean_after and difference.max() <= max_after


class TestChunkedBatches:
    """CPU batches run in chunks (ispkit.threads); the chunks compute exactly what one pass computes."""

    @pytest.mark.parametrize("preset", ONE_PER_DEMOSAIC)
    def test_chunked_equals_one_pass_bit_for_bit(self, preset, monkeypatch):
        from ispkit import threads

        module = Pipeline.preset(preset).to_torch()
        raw = torch.from_numpy(np.concatenate([natural_batch(size=16)] * 3)).float()
        whole = module(raw)  # 16×16: one chunk of all six images
        monkeypatch.setattr(threads, "CHUNK_PIXELS", 2 * 16 * 16)
        assert threads.chunk_size(16, 16) == 2
        with torch.no_grad():
            parallel = module(raw)  # three chunks on the worker threads
        with torch.enable_grad():
            serial = module(raw.requires_grad_())  # three chunks in this thread
        assert torch.equal(parallel, serial.detach())
        torch.testing.assert_close(parallel, whole, atol=1e-6, rtol=0)

    def test_workers_keep_the_callers_inference_mode_and_check_every_chunk(self, monkeypatch):
        from ispkit import threads

        monkeypatch.setattr(threads, "CHUNK_PIXELS", 8 * 8)
        monkeypatch.setenv("ISPKIT_NUM_THREADS", "2")
        module = Pipeline.preset("bi,s,me").to_torch()
        raw = torch.rand(4, 8, 8)
        with torch.inference_mode():
            out = module(raw)
        assert out.is_inference() and torch.equal(out, module(raw))
        raw[3, 2, 2], raw[3, 4, 4] = float("nan"), float("inf")
        with torch.no_grad(), pytest.raises(InputError, match="2 value\\(s\\) are NaN or infinite"):
            module(raw)

    def test_tracked_views_cover_the_whole_batch(self, monkeypatch):
        from ispkit import threads

        monkeypatch.setattr(threads, "CHUNK_PIXELS", 8 * 8)
        module = Pipeline.preset("ma,u,me").to_torch(track_stages=True)
        out = module(torch.rand(3, 8, 8))
        assert all(v.shape[0] == 3 for v in module.views.values()) and torch.equal(module.views["gamma"], out)
