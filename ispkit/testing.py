"""A conformance kit for stage authors: ``check_stage(MyStage)`` checks the whole stage contract.

DESIGN.md's stage contract, checked by :func:`check_stage` on a stage class at its
default parameters (or at ``params=``), each item a named check:

``parameters``
    The declaration holds (:meth:`~ispkit.stages.base.Stage.declaration_problems`, as the
    registry checks it) and every default, camera-derived ones included, passes its own
    :class:`~ispkit.stages.base.Param` (shape, finite, within bounds).
``shapes``
    One image through the numpy backend (``(H, W)`` or ``(3, H, W)``) and a batch of one
    through the torch module give the shape the ``takes``/``gives`` domains imply; a raw
    stage's module also takes ``(N, 1, H, W)``.
``input checks``
    Inputs of the wrong rank or channel count (``(2, 1, H, W)`` for an RGB stage, a mosaic
    of odd height, …) are an :class:`~ispkit.errors.InputError` in both backends.
``batch``
    A batch of three images gives the declared shape and equals the three images run alone.
``dtype``
    The numpy backend returns float64; the torch backend keeps float32 and float64.
``device``
    The torch backend returns on the input's device (CPU, and CUDA or MPS where present)
    and agrees with numpy there.
``agreement``
    numpy and torch agree within 1e-6 in float64 and 1e-4 in float32, borders included,
    on every image of :func:`~ispkit.stage_probe.conformance_inputs` (smooth, uniform
    random, two natural photographs, and integer 12-, 14- and 16-bit sensor counts
    over the white level), mosaicked in all four CFA layouts when the stage takes raw.
    Both backends see the same numbers: in float32, numpy runs on the float32 tensor's
    values, as rounding the input is not the backend's error (DESIGN.md, stage contract).
``gradients``
    ``torch.autograd.gradcheck`` in float64 of every parameter declared differentiable,
    on a small natural input.
``bounds``
    Every bounded parameter at each of its bounds (booleans at both values) runs in both
    backends and they agree in float64 (unless ``agreement`` failed already); the torch
    module's ``project_`` clamps trainable parameters set outside their bounds back onto
    them.

Every failing check is collected and reported together in one :class:`ConformanceError`
(an :class:`AssertionError`, so pytest shows it as a test failure). When ``parameters``
fails nothing else can run; when ``shapes`` fails, the checks that read the torch
backend's output are named as not run rather than failing for the same reason again.

This module needs neither pytest nor hypothesis: call :func:`check_stage` from any test
runner or script. :func:`assert_backends_agree` is the agreement check alone, on inputs
and parameter values of the caller's choice (for property tests).

Examples
--------
>>> from ispkit.stages.gamma import Gamma
>>> check_stage(Gamma)  # silent when the stage conforms
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .camera import Camera
from .cfa import BAYER_PATTERNS
from .errors import InputError, ParameterError
from .stage_probe import (
    CONFORMANCE_SHAPE,
    FLOAT64_TOLERANCE,
    TOLERANCES,
    conformance_inputs,
    default_values,
    max_difference,
    numpy_outputs,
    torch_outputs,
)
from .stages.base import FromCamera, Param, Stage
from .stages.module import StageModule

__all__ = ["CHECKS", "ConformanceError", "Failure", "assert_backends_agree", "check_stage"]

GRADCHECK_SHAPE = (4, 6)
"""Height and width of the input ``gradients`` runs ``torch.autograd.gradcheck`` on."""


@dataclass(frozen=True)
class Failure:
    """One failed check: its name (one of :data:`CHECKS`) and what was wrong."""

    check: str
    message: str


class ConformanceError(AssertionError):
    """A stage breaks its contract; the message lists every failed check.

    Attributes
    ----------
    subject
        The stage (``"kind=method (module.Class)"``).
    failures
        Every :class:`Failure`, in the order of :data:`CHECKS`.
    not_run
        Names of the checks left out because an earlier one failed.
    """

    def __init__(self, subject: str, failures: Sequence[Failure], not_run: Sequence[str] = ()) -> None:
        self.subject = subject
        self.failures = tuple(failures)
        self.not_run = tuple(not_run)
        lines = [f"{subject} fails {len(self.failures)} conformance check(s):"]
        lines += [f"  [{f.check}] {line}" for f in self.failures for line in f.message.splitlines()]
        if self.not_run:
            lines.append(f"  not run, as they need what the failed checks could not give: {', '.join(self.not_run)}")
        super().__init__("\n".join(lines))

    @property
    def checks(self) -> list[str]:
        """Names of the failed checks."""
        return [f.check for f in self.failures]


@dataclass(frozen=True)
class _Subject:
    """A stage under test, its camera, parameter values and the devices to try."""

    stage: type[Stage]
    camera: Camera
    values: dict[str, Any]
    devices: tuple[str, ...]
    failed: frozenset[str] = frozenset()  # the checks failed so far

    @property
    def batched(self) -> bool:
        """Whether checks may run several images as one batch (not once ``batch`` failed)."""
        return "batch" not in self.failed

    @property
    def patterns(self) -> tuple[str, ...]:
        """The CFA layouts to try: all four for a stage taking raw, the camera's otherwise."""
        return BAYER_PATTERNS if self.stage.takes == "raw" else (self.camera.pattern,)

    def image(self, name: str = "astronaut", shape: tuple[int, int] = CONFORMANCE_SHAPE) -> np.ndarray:
        """One conformance input (see :func:`~ispkit.stage_probe.conformance_inputs`) in the camera's layout."""
        return conformance_inputs(self.stage.takes, self.camera.pattern, shape)[name]

    def torch(self, images: np.ndarray, dtype: torch.dtype = torch.float64, device: str = "cpu") -> torch.Tensor:
        """The torch module's output on ``images`` (a batch)."""
        return torch_outputs(self.stage, images, self.values, self.camera.pattern, dtype, device)


def check_stage(
    stage: type[Stage],
    *,
    camera: Camera | str | None = None,
    params: Mapping[str, Any] | None = None,
    devices: Sequence[str] | None = None,
) -> None:
    """Check that ``stage`` meets the stage contract; raise :class:`ConformanceError` listing every failure.

    Parameters
    ----------
    stage
        The stage class (a subclass of :class:`~ispkit.stages.base.Stage`).
    camera
        The camera (or a registered camera's name) whose fields fill
        :class:`~ispkit.stages.base.FromCamera` defaults; ``None`` is the built-in
        ``microscopy`` camera. Raw stages are run under all four CFA layouts whatever its
        pattern.
    params
        Values replacing the defaults of some parameters in every check (validated as a
        pipeline validates them), e.g. a fixed window size where the default one jumps.
    devices
        Torch devices for the ``device`` check; ``None`` is the CPU plus CUDA and MPS
        where available.

    Returns
    -------
    None
        When every check of :data:`CHECKS` passes. Needs neither pytest nor hypothesis.
    """
    camera = Camera.get(camera if camera is not None else "microscopy")
    subject_name = f"{getattr(stage, 'kind', '?')}={getattr(stage, 'method', '?')} ({stage.__module__}.{stage.__qualname__})"
    failures = _run_check("parameters", lambda: _check_parameters(stage, camera, params or {}))
    if failures:
        raise ConformanceError(subject_name, failures, list(_CHECKS))
    values = {**default_values(stage, camera), **_validated(stage, params or {})}
    subject = _Subject(stage, camera, values, tuple(devices) if devices is not None else _available_devices())
    not_run: list[str] = []
    for name, check in _CHECKS.items():
        if name in _NEED_SHAPES and "shapes" in subject.failed:
            not_run.append(name)
            continue
        found = _run_check(name, functools.partial(check, subject))
        if found:
            failures += found
            subject = dataclasses.replace(subject, failed=subject.failed | {name})
    if failures:
        raise ConformanceError(subject_name, failures, not_run)


def assert_backends_agree(
    stage: type[Stage],
    batch: np.ndarray,
    values: Mapping[str, Any] | None = None,
    pattern: str = "RGGB",
    *,
    camera: Camera | str | None = None,
) -> None:
    """Assert that the torch backend equals the numpy backend image by image, in float64 and in float32.

    Both backends see the same numbers: the float32 result is compared with numpy run on
    the float32 tensor's values (see :func:`check_stage`'s ``agreement``).

    Parameters
    ----------
    stage
        The stage class.
    batch
        Float64 inputs ``(N, H, W)`` or ``(N, 3, H, W)`` of the domain the stage takes.
    values
        Validated parameter values; ``None`` takes the defaults for ``camera``
        (``None``: the built-in ``microscopy`` camera).
    pattern
        The CFA layout passed to CFA-aware stages.

    Raises
    ------
    ConformanceError
        Naming each dtype whose largest difference exceeds the contract's tolerance
        (1e-6 float64, 1e-4 float32), the difference and the image where it occurred.
    """
    if values is None:
        values = default_values(stage, Camera.get(camera if camera is not None else "microscopy"))
    labels = [f"image {i} of the batch" for i in range(len(batch))]
    problems = _disagreements(stage, np.asarray(batch, dtype=np.float64), labels, dict(values), pattern, batched=True)
    if problems:
        raise ConformanceError(f"{stage.kind}={stage.method}", [Failure("agreement", p) for p in problems])


# -- running checks ------------------------------------------------------------------------


def _run_check(name: str, check: Callable[[], list[str]]) -> list[Failure]:
    """The failures of one check: each problem it reports, or the exception it raised."""
    try:
        problems = check()
    except Exception as exc:  # a stage's own bug must be reported, not abort the other checks
        problems = [f"raised {type(exc).__name__}: {exc}"]
    return [Failure(name, problem) for problem in problems]


def _available_devices() -> tuple[str, ...]:
    """``cpu``, plus ``cuda`` and ``mps`` when torch can use them."""
    mps = getattr(torch.backends, "mps", None)
    return ("cpu", *(("cuda",) if torch.cuda.is_available() else ()), *(("mps",) if mps is not None and mps.is_available() else ()))


def _validated(stage: type[Stage], params: Mapping[str, Any]) -> dict[str, Any]:
    return {name: stage.param(name).validate(value, f"{stage.kind}.{name}") for name, value in params.items()}


def _torch_values(values: Mapping[str, Any]) -> dict[str, Any]:
    """Validated values as the torch backend receives them in float64: float arrays as tensors."""
    return {k: torch.tensor(v, dtype=torch.float64) if isinstance(v, np.ndarray) else v for k, v in values.items()}


def _expect_input_error(call: Callable[[], Any], what: str) -> str | None:
    """Why ``call`` (given the wrong input ``what``) did not raise :class:`InputError`, or ``None``."""
    try:
        out = call()
    except InputError:
        return None
    except Exception as exc:
        return f"{what}: raised {type(exc).__name__}: {exc}; expected an ispkit.errors.InputError naming the stage"
    got = f"shape {tuple(out.shape)}" if hasattr(out, "shape") else f"a {type(out).__name__}"
    return f"{what}: accepted it and returned {got}; expected an ispkit.errors.InputError naming the stage"


def _disagreements(
    stage: type[Stage],
    images: np.ndarray,
    labels: Sequence[str],
    values: dict[str, Any],
    pattern: str,
    device: str = "cpu",
    dtypes: Sequence[torch.dtype] = tuple(TOLERANCES),
    *,
    batched: bool,
) -> list[str]:
    """One line per dtype whose worst |numpy − torch| over ``images`` exceeds the contract.

    Both backends see the same numbers: torch a tensor of ``dtype`` made from ``images``,
    numpy (image by image) that tensor's values in float64. Rounding the input to float32
    is not the backend's error, and a stage deciding on exact ties (Menon's direction)
    can only reproduce the reference on the values it is given. torch runs the images as
    one batch, or each as a batch of one when not ``batched``.
    """
    problems = []
    for dtype in dtypes:
        tolerance = TOLERANCES[dtype]
        if device == "mps" and dtype == torch.float64:
            continue  # MPS has no float64
        held = torch.as_tensor(images, dtype=dtype).double().numpy()  # the values a tensor of dtype holds
        expected = numpy_outputs(stage, held, values, pattern)
        batches = [held] if batched else [image[None] for image in held]
        got = np.concatenate([torch_outputs(stage, b, values, pattern, dtype, device).cpu().double().numpy() for b in batches])
        differences = [max_difference(e, g) for e, g in zip(expected, got, strict=True)]
        over = [(d, label) for d, label in zip(differences, labels, strict=True) if not d <= tolerance]
        if over:
            worst, where = max(over)
            others = "; ".join(label for _, label in sorted(over, reverse=True) if label != where)
            problems.append(
                f"{str(dtype).removeprefix('torch.')} on {device}: numpy and torch differ by up to {worst:.3g} on {where} "
                f"(the contract allows {tolerance:g})" + (f"; also over it on: {others}" if others else "")
            )
    return problems


# -- the checks ----------------------------------------------------------------------------


def _check_parameters(stage: type[Stage], camera: Camera, params: Mapping[str, Any]) -> list[str]:
    """The registry's declaration check, camera-derived defaults for ``camera``, and the names in ``params``."""
    problems = list(stage.declaration_problems())  # the registry's check: every default but the camera's
    for p in stage.params:
        if isinstance(p.default, FromCamera) and hasattr(camera, p.default.field):
            try:
                p.validate(camera.resolve(p.default), f"{stage.kind}.{p.name} default (Camera.{p.default.field} of camera {camera.name!r})")
            except ParameterError as exc:
                problems.append(str(exc))
    declared = {p.name for p in stage.params}
    problems += [f"params= names {name!r}, which {stage.kind}={stage.method} does not declare" for name in params if name not in declared]
    if not problems:
        _validated(stage, params)
    return problems


def _check_shapes(s: _Subject) -> list[str]:
    """One image through numpy, a batch of one through torch, and ``(1, 1, H, W)`` for raw stages."""
    image = s.image()
    s.stage.run_numpy(image, s.values, s.camera.pattern)  # raises InputError naming the stage on a wrong shape
    single = s.torch(image[None])
    if s.stage.takes != "raw":
        return []
    with_channel = s.torch(image[None, None])
    expected = (1, 3, *image.shape) if s.stage.gives == "rgb" else (1, 1, *image.shape)
    if tuple(with_channel.shape) != expected:
        return [f"the torch module returned shape {tuple(with_channel.shape)} for a (1, 1, H, W) mosaic {(1, 1, *image.shape)}; expected {expected}"]
    if not torch.equal(with_channel.reshape(single.shape), single):
        return ["the torch module gives another result for a (N, 1, H, W) mosaic than for the same (N, H, W) mosaic"]
    return []


def _wrong_inputs(takes: str, h: int, w: int) -> dict[str, tuple[tuple[int, ...], tuple[int, ...]]]:
    """Wrong inputs for a stage taking ``takes``, by description: ``(numpy shape, torch shape)``."""
    if takes == "rgb":
        return {"one channel": ((1, h, w), (2, 1, h, w)), "no channel axis": ((h, w), (2, h, w))}
    wrong: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {"three channels": ((3, h, w), (2, 3, h, w))}
    if takes == "raw":
        wrong["odd height"] = ((h - 1, w), (2, h - 1, w))
    return wrong


def _check_input_checks(s: _Subject) -> list[str]:
    """Inputs of a wrong rank, channel count or (raw) odd size are an :class:`InputError` in both backends."""
    h, w = CONFORMANCE_SHAPE
    problems = []
    for name, (numpy_shape, torch_shape) in _wrong_inputs(s.stage.takes, h, w).items():
        numpy_call = functools.partial(s.stage.run_numpy, np.full(numpy_shape, 0.5), s.values, s.camera.pattern)
        problems.append(_expect_input_error(numpy_call, f"numpy backend given {name} {numpy_shape}"))
        problems.append(_expect_input_error(functools.partial(s.torch, np.full(torch_shape, 0.5)), f"torch module given {name} {torch_shape}"))
    return [p for p in problems if p is not None]


def _check_batch(s: _Subject) -> list[str]:
    """A batch of three gives the declared shape and equals its images run alone (and ``(N, 1, H, W)`` for raw)."""
    names = ("ramp", "uniform random", "astronaut")
    images = np.stack([s.image(name) for name in names])
    batched = s.torch(images).cpu().numpy()  # raises InputError naming the stage on a wrong shape
    problems = []
    for name, image, got in zip(names, images, batched, strict=True):
        difference = max_difference(got, s.torch(image[None])[0].cpu().numpy())
        if not difference <= FLOAT64_TOLERANCE:
            problems.append(
                f"the {name} image differs by {difference:.3g} in a batch of {len(names)} from the same image alone; images of a batch must not affect each other"
            )
    if s.stage.takes == "raw":
        with_channel = s.torch(images[:, None]).cpu().numpy()
        if with_channel.reshape(batched.shape).tolist() != batched.tolist():
            problems.append("a (N, 1, H, W) batch gives another result than the same (N, H, W) batch")
    return problems


def _check_dtype(s: _Subject) -> list[str]:
    """numpy returns float64; torch returns the input's float32 or float64."""
    image = s.image()
    problems = []
    out = s.stage.run_numpy(image, s.values, s.camera.pattern)
    if out.dtype != np.float64:
        problems.append(f"the numpy backend returned {out.dtype} for a float64 input; expected float64")
    for dtype in TOLERANCES:
        got = s.torch(image[None], dtype).dtype
        if got != dtype:
            problems.append(f"the torch backend returned {got} for a {dtype} input; it must keep the input's dtype")
    return problems


def _check_device(s: _Subject) -> list[str]:
    """torch returns on each device of ``s.devices`` and, off the CPU, agrees with numpy there."""
    image = s.image()[None]
    problems = []
    for device in s.devices:
        got = s.torch(image, torch.float32, device).device
        if got.type != torch.device(device).type:
            problems.append(f"the torch backend returned a tensor on {got} for an input on {device}")
        elif device != "cpu":
            problems += _disagreements(s.stage, image, ["astronaut"], s.values, s.camera.pattern, device, batched=True)
    return problems


def _check_agreement(s: _Subject) -> list[str]:
    """numpy and torch agree on every conformance input, in each CFA layout for raw stages."""
    problems = []
    for pattern in s.patterns:
        inputs = conformance_inputs(s.stage.takes, pattern)
        labels = [f"{name}, {pattern}" if s.stage.takes == "raw" else name for name in inputs]
        problems += _disagreements(s.stage, np.stack(list(inputs.values())), labels, s.values, pattern, batched=s.batched)
    return _merged(problems)


def _merged(problems: list[str]) -> list[str]:
    """Problems of several layouts merged to one line per dtype (the first found for it, with a count)."""
    by_dtype: dict[str, list[str]] = {}
    for problem in problems:
        by_dtype.setdefault(problem.split(":", 1)[0], []).append(problem)
    return [lines[0] + (f" (and over it in {len(lines) - 1} more layout(s))" if len(lines) > 1 else "") for lines in by_dtype.values()]


def _check_gradients(s: _Subject) -> list[str]:
    """A gradient reaches every parameter declared differentiable, and ``gradcheck`` (fast mode, float64) passes."""
    x = torch.as_tensor(s.image(shape=GRADCHECK_SHAPE)[None])
    base = _torch_values(s.values)
    problems = []
    for p in s.stage.params:
        if not (p.differentiable and p.dtype is float):
            continue
        theta = base[p.name].clone().requires_grad_(True)

        def f(value: torch.Tensor, name: str = p.name) -> torch.Tensor:
            out: torch.Tensor = s.stage.run_torch(x, {**base, name: value}, s.camera.pattern)
            return out

        if not f(theta).requires_grad:
            problems.append(
                f"{p.name} is declared differentiable, but no gradient reaches it (does the torch backend detach it or turn it into a Python number?)"
            )
            continue
        try:
            torch.autograd.gradcheck(f, (theta,), raise_exception=True, fast_mode=True)
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()[0]
            problems.append(f"{p.name}: torch.autograd.gradcheck in float64 at {np.asarray(s.values[p.name]).tolist()} failed: {first}")
    return problems


def _bound_values(p: Param) -> list[Any]:
    """The values of ``p`` at its bounds (booleans: both), odd integers moved inward where needed."""
    if p.dtype is bool:
        return [False, True]
    if p.bounds is None:
        return []
    low, high = p.bounds
    if p.dtype is int:
        low, high = int(np.ceil(low)), int(np.floor(high))
        if p.odd:
            low, high = low + (low % 2 == 0), high - (high % 2 == 0)
        return [low, high]
    return [np.full(p.shape, float(low)), np.full(p.shape, float(high))]


def _check_bounds(s: _Subject) -> list[str]:
    """Each bound value runs in both backends; they agree there in float64 unless ``agreement`` already failed."""
    image, pattern = s.image()[None], s.camera.pattern
    problems = []
    for p in s.stage.params:
        for value in _bound_values(p):
            shown = value if not isinstance(value, np.ndarray) else float(value.flat[0])
            try:
                values = {**s.values, p.name: p.validate(value, f"{s.stage.kind}.{p.name}")}
                if "agreement" in s.failed:  # only whether it runs: the disagreement is reported already
                    numpy_outputs(s.stage, image, values, pattern), torch_outputs(s.stage, image, values, pattern)
                    found = []
                else:
                    found = _disagreements(s.stage, image, ["astronaut"], values, pattern, dtypes=[torch.float64], batched=True)
            except Exception as exc:  # the stage's failure at this value is the finding
                found = [f"raised {type(exc).__name__}: {exc}"]
            problems += [f"{p.name} at its bound {shown}: {problem}" for problem in found]
    return problems + _projection_problems(s)


def _projection_problems(s: _Subject) -> list[str]:
    """Whether ``StageModule.project_`` puts trainable parameters set outside their bounds back onto them."""
    bounded = [(p, p.bounds) for p in s.stage.params if p.differentiable and p.dtype is float and p.bounds is not None]
    module = StageModule(s.stage, s.values, s.camera.pattern, frozenset(p.name for p, _ in bounded))
    problems = []
    for p, (low, high) in bounded:
        for outside, bound in ((low - (high - low) - 1.0, low), (high + (high - low) + 1.0, high)):
            with torch.no_grad():
                getattr(module, p.name).fill_(outside)
            module.project_()
            if not torch.all(getattr(module, p.name) == bound):
                problems.append(f"{p.name}: the torch module's project_() left {outside} where the bound is {bound}")
    return problems


_CHECKS: dict[str, Callable[[_Subject], list[str]]] = {  # after "parameters", which check_stage runs before values exist
    "shapes": _check_shapes,
    "input checks": _check_input_checks,
    "batch": _check_batch,
    "dtype": _check_dtype,
    "device": _check_device,
    "agreement": _check_agreement,
    "gradients": _check_gradients,
    "bounds": _check_bounds,
}

CHECKS: tuple[str, ...] = ("parameters", *_CHECKS)
"""Names of the checks of :func:`check_stage`, in the order they run (see the module docstring)."""

_NEED_SHAPES = frozenset({"batch", "dtype", "device", "agreement", "gradients", "bounds"})
