"""ispkit.testing: every built-in stage conforms, and each kind of broken stage is reported with what is wrong."""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest
import torch

from ispkit.errors import InputError
from ispkit.registry import BUILTIN, get_registry
from ispkit.stages.base import FromCamera, Param, Stage
from ispkit.testing import CHECKS, ConformanceError, Failure, assert_backends_agree, check_stage

GAINS = Param("gains", (3,), (1.0, 0.5, 2.0), "gain per channel", bounds=(-4.0, 4.0))


def _tint(numpy=None, torch_=None, *, name: str = "tint", takes: str = "rgb", gives: str = "rgb", params=(GAINS,), **attrs) -> type[Stage]:
    """A stage ``probe=<name>``; by default a conforming RGB gain per channel."""

    def gain_numpy(rgb, gains):
        return rgb * gains[:, None, None]

    def gain_torch(rgb, gains):
        return rgb * gains[:, None, None]

    body = {"kind": "probe", "method": name, "takes": takes, "gives": gives, "params": params, **attrs}
    return type(name, (Stage,), {**body, "numpy": staticmethod(numpy or gain_numpy), "torch": staticmethod(torch_ or gain_torch)})


def _failures(stage: type[Stage], **kwargs) -> ConformanceError:
    with pytest.raises(ConformanceError) as info:
        check_stage(stage, **kwargs)
    return info.value


def _builtins() -> list[type[Stage]]:
    return [entry.stage for entry in get_registry().stages().values() if entry.provider == BUILTIN]


@pytest.mark.parametrize("stage", _builtins(), ids=lambda s: f"{s.kind}={s.method}")
def test_every_builtin_stage_conforms(stage):
    check_stage(stage)


def test_every_builtin_stage_is_checked():
    assert len(_builtins()) == 13


def test_a_conforming_stage_passes_and_the_checks_are_named():
    assert check_stage(_tint()) is None
    assert CHECKS == ("parameters", "shapes", "input checks", "batch", "dtype", "device", "agreement", "gradients", "bounds")


def _drops_batch() -> type[Stage]:
    """Issue 14: a demosaic whose torch backend returns the first image only."""
    return _tint(lambda raw: np.stack([raw] * 3), lambda raw: torch.stack([raw[0]] * 3)[None], name="drops_batch", takes="raw", params=())


def _half_gradient(rgb, gains):
    """The right values with half the gradient in ``gains``."""
    return rgb * (gains.detach() + 0.5 * (gains - gains.detach()))[:, None, None]


BROKEN = {
    "drops the batch": (
        _drops_batch(),
        ["batch"],
        r"\[batch\] raised InputError: stage probe=drops_batch: its torch backend returned shape \(1, 3, 24, 32\) "
        r"for an input of shape \(3, 24, 32\); a raw → rgb stage must return a tensor of shape \(3, 3, 24, 32\)",
    ),
    "wrong channel count": (
        _tint(torch_=lambda rgb, gains: rgb[:, :1] * gains[0], name="one_channel"),
        ["shapes"],
        r"\[shapes\] raised InputError: stage probe=one_channel: its torch backend returned shape \(1, 1, 24, 32\) "
        r"for an input of shape \(1, 3, 24, 32\); a rgb → rgb stage must return a tensor of shape \(1, 3, 24, 32\)",
    ),
    "backends disagree by 0.48": (
        _tint(torch_=lambda rgb, gains: rgb * gains[:, None, None] + 0.48, name="offset"),
        ["agreement", "agreement"],
        r"\[agreement\] float64 on cpu: numpy and torch differ by up to 0\.48 on [a-z ]+ \(the contract allows 1e-06\); also over it on: ",
    ),
    "wrong-shaped default": (
        _tint(params=(Param("gains", (3,), (1.0, 0.5), "gain per channel"),), name="short_default"),
        ["parameters"],
        r"\[parameters\] probe\.gains default: expected shape \(3,\), got shape \(2,\)",
    ),
    "wrong-shaped camera default": (
        _tint(params=(Param("gains", (4,), FromCamera("white_balance"), "gain per channel"),), name="camera_default"),
        ["parameters"],
        r"\[parameters\] probe\.gains default \(Camera\.white_balance of camera 'microscopy'\): expected shape \(4,\), got shape \(3,\)",
    ),
    "declared differentiable, but detached": (
        _tint(torch_=lambda rgb, gains: rgb * torch.tensor(gains.tolist(), dtype=rgb.dtype)[:, None, None], name="detached"),
        ["gradients"],
        r"\[gradients\] gains is declared differentiable, but no gradient reaches it",
    ),
    "declared differentiable, wrong gradient": (
        _tint(torch_=_half_gradient, name="half_gradient"),
        ["gradients"],
        r"\[gradients\] gains: torch\.autograd\.gradcheck in float64 at \[1\.0, 0\.5, 2\.0\] failed: Jacobian mismatch",
    ),
    "float32 output for float64 input": (
        _tint(torch_=lambda rgb, gains: (rgb * gains[:, None, None]).float(), name="float32_out"),
        ["dtype", "gradients"],  # gradcheck in float64 cannot pass either
        r"\[dtype\] the torch backend returned torch\.float32 for a torch\.float64 input; it must keep the input's dtype",
    ),
    "numpy returns float32": (
        _tint(lambda rgb, gains: (rgb * gains[:, None, None]).astype(np.float32), name="numpy_float32"),
        ["dtype"],
        r"\[dtype\] the numpy backend returned float32 for a float64 input; expected float64",
    ),
    "images of a batch affect each other": (
        _tint(torch_=lambda rgb, gains: rgb * gains[:, None, None] + 0.01 * (rgb - rgb.mean(0)), name="mixes"),
        ["batch", "batch", "batch"],
        r"\[batch\] the ramp image differs by 0\.0\d+ in a batch of 3 from the same image alone",
    ),
    "fails at a bound": (
        _tint(lambda rgb, gains: rgb * gains[:, None, None] if gains.max() < 4.0 else rgb.no_such_attribute, name="bound"),
        ["bounds"],
        r"\[bounds\] gains at its bound 4\.0: raised AttributeError: 'numpy\.ndarray' object has no attribute 'no_such_attribute'",
    ),
}


@pytest.mark.parametrize(("stage", "checks", "message"), BROKEN.values(), ids=BROKEN)
def test_a_broken_stage_is_reported_with_what_is_wrong(stage, checks, message):
    error = _failures(stage)
    assert error.checks == checks, str(error)
    assert re.search(message, str(error)), str(error)
    assert str(error).startswith(f"probe={stage.method} ({stage.__module__}.{stage.__qualname__}) fails {len(checks)} conformance check(s):")


def test_float32_disagreement_is_reported_on_its_own_line():
    error = _failures(BROKEN["backends disagree by 0.48"][0])
    assert [f.message.split(":")[0] for f in error.failures] == ["float64 on cpu", "float32 on cpu"]
    assert "(the contract allows 0.0001)" in error.failures[1].message


def test_checks_that_need_the_declared_shape_are_named_as_not_run():
    error = _failures(BROKEN["wrong channel count"][0])
    assert error.not_run == ("batch", "dtype", "device", "agreement", "gradients", "bounds")
    assert str(error).endswith("not run, as they need what the failed checks could not give: batch, dtype, device, agreement, gradients, bounds")
    error = _failures(BROKEN["wrong-shaped default"][0])
    assert error.not_run == CHECKS[1:]


def test_every_failing_check_is_listed():
    def broken(raw):
        return torch.stack([raw[0].float()] * 3)[None]  # drops the batch and returns float32

    params = (Param("gain", (), 1.0, "gain", bounds=(0.0, 2.0)),)
    stage = _tint(lambda raw, gain: np.stack([raw * float(gain)] * 3), lambda raw, gain: broken(raw) * gain.item(), name="many", takes="raw", params=params)
    error = _failures(stage)
    assert error.checks == ["batch", "dtype", "gradients"]
    lines = str(error).splitlines()[1:]
    assert [line.split("]")[0] + "]" for line in lines] == ["  [batch]", "  [dtype]", "  [gradients]"]
    assert "returned shape (1, 3, 24, 32) for an input of shape (3, 24, 32)" in lines[0]
    assert "returned torch.float32 for a torch.float64 input" in lines[1] and "gain is declared differentiable" in lines[2]


def test_a_stage_skipping_its_input_checks_is_reported():
    class Sloppy(_tint(name="sloppy")):
        @classmethod
        def run_numpy(cls, x, values, pattern):  # overrides the checked entry point
            return cls.numpy(x, **values)

    error = _failures(Sloppy)
    assert error.checks == ["input checks", "input checks"]
    assert [f.message for f in error.failures] == [
        "numpy backend given one channel (1, 24, 32): accepted it and returned shape (3, 24, 32); expected an ispkit.errors.InputError naming the stage",
        "numpy backend given no channel axis (24, 32): accepted it and returned shape (3, 24, 32); expected an ispkit.errors.InputError naming the stage",
    ]


def test_ties_of_integer_and_natural_inputs_are_exercised():
    """A raw stage whose torch backend breaks ties the other way: uniform random numbers never tie, counts and photographs do."""

    def numpy(raw):
        return np.where(raw >= np.roll(raw, 2, -1), raw, 1.0 - raw)  # compares with the same colour two columns left

    def torch_(raw):
        return torch.where(raw > torch.roll(raw, 2, -1), raw, 1.0 - raw)

    error = _failures(_tint(numpy, torch_, name="ties", takes="raw", gives="raw", params=()))
    assert error.checks == ["agreement", "agreement"]
    assert "counts" in str(error) and "coffee" in str(error) and "uniform random" not in str(error)


def test_params_replace_the_defaults_in_every_check():
    params = (Param("k", (), 1.0, "kink at 1", bounds=(0.0, 4.0)),)
    stage = _tint(lambda rgb, k: rgb * (k + max(k - 1.0, 0.0)), lambda rgb, k: rgb * (k + (k - 1.0).clamp(min=0.0)), name="kink", params=params)
    assert _failures(stage).checks == ["gradients"]  # k + max(k - 1, 0) has no derivative at the default
    check_stage(stage, params={"k": 2.5})
    error = _failures(stage, params={"nope": 1.0})
    assert error.failures == (Failure("parameters", "params= names 'nope', which probe=kink does not declare"),)


class TestAssertBackendsAgree:
    BATCH = np.random.default_rng(0).uniform(-0.25, 1.25, (3, 3, 6, 8))

    def test_agreeing_backends_pass(self):
        assert_backends_agree(_tint(), self.BATCH)

    @pytest.mark.parametrize(("offset", "fails"), [(5e-5, False), (2e-4, True)])
    def test_float32_is_held_to_its_own_tolerance(self, offset, fails):
        def torch_(rgb, gains):
            return rgb * gains[:, None, None] + (offset if rgb.dtype == torch.float32 else 0.0)

        stage = _tint(torch_=torch_, name="float32_offset")
        if not fails:
            assert_backends_agree(stage, self.BATCH)
            return
        with pytest.raises(ConformanceError) as info:
            assert_backends_agree(stage, self.BATCH)
        [failure] = info.value.failures
        assert re.fullmatch(
            r"float32 on cpu: numpy and torch differ by up to 0\.0002\d* on image \d of the batch \(the contract allows 0\.0001\); also over it on: .*",
            failure.message,
        )

    def test_the_image_at_fault_is_named(self):
        def torch_(rgb, gains):
            return rgb * gains[:, None, None] + torch.tensor([0.0, 0.3, 0.0], dtype=rgb.dtype)[:, None, None, None]

        with pytest.raises(
            ConformanceError, match=r"float64 on cpu: numpy and torch differ by up to 0\.3 on image 1 of the batch \(the contract allows 1e-06\)\n"
        ):
            assert_backends_agree(_tint(torch_=torch_, name="second"), self.BATCH)

    def test_a_wrong_batch_shape_is_an_input_error(self):
        with pytest.raises(InputError, match="its torch backend returned shape"):
            assert_backends_agree(_drops_batch(), np.random.default_rng(1).random((2, 4, 6)))


def test_conformance_error_is_an_assertion_error():
    error = ConformanceError("probe=x", [Failure("dtype", "first\nsecond")], ["bounds"])
    assert isinstance(error, AssertionError)
    assert (
        str(error)
        == "probe=x fails 1 conformance check(s):\n  [dtype] first\n  [dtype] second\n  not run, as they need what the failed checks could not give: bounds"
    )


def test_importable_and_usable_without_pytest_or_hypothesis():
    code = (
        "import sys; sys.modules['pytest'] = sys.modules['hypothesis'] = None\n"
        "from ispkit.testing import check_stage\nfrom ispkit.stages.gamma import Gamma\ncheck_stage(Gamma)\n"
        "assert 'pytest' not in [m.split('.')[0] for m in sys.modules if sys.modules[m] is not None]\nprint('ok')"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]
