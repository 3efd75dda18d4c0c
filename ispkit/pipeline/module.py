"""Φ_para as a torch module (:class:`PipelineModule`), what :meth:`Pipeline.to_torch <ispkit.pipeline.Pipeline.to_torch>` builds.

Kept apart from :mod:`ispkit.pipeline`, whose NumPy backend needs no torch, because a class
deriving from ``nn.Module`` needs torch to be defined: this module imports torch,
:mod:`ispkit.pipeline` imports it only in :meth:`~ispkit.pipeline.Pipeline.to_torch`.
``ispkit.PipelineModule`` and ``ispkit.pipeline.PipelineModule`` name it too.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import torch
from torch import nn

from ..arrays import check_finite, check_mosaic, check_rgb
from ..color import YUV_FROM_RGB, with_luma
from ..errors import InputError, ParameterError
from ..memory import cached
from ..stages.module import StageModule
from ..threads import chunk_size, map_chunks
from . import Pipeline, PipelineStage, _Convert, _resolve_trainable

__all__ = ["PipelineModule"]


class PipelineModule(nn.Module):
    """Φ_para (paper Eq. 33): a pipeline as a differentiable, batched ``nn.Module``.

    Takes ``(H, W)``, ``(N, H, W)`` or ``(N, 1, H, W)`` raw tensors (any float dtype,
    any device) and returns ``(3, H, W)`` or ``(N, 3, H, W)`` in the input's dtype (the
    module of an RGB pipeline, :meth:`Pipeline.after`, takes ``(3, H, W)`` or ``(N, 3, H, W)``).
    Parameters and buffers are named ``<stage>.<param>`` and have the module's dtype
    (``dtype=`` of :meth:`Pipeline.to_torch`, then ``.to(dtype)``), except the
    parameters of raw stages before a stage that decides on its input values
    (:attr:`~ispkit.stages.base.Stage.exact_input`, Menon's demosaic): those stay
    float64, and so does the computation up to that decision, as in the NumPy backend.
    With ``track_stages`` the RGB view after each stage (the mosaic for raw stages) is
    kept in :attr:`views`.

    A call reads no tensor values back to the host except in its input check
    (:meth:`check`, on by default: ``module(raw, check=False)`` skips it); under
    ``torch.compile`` and ``torch.export`` the check is left out of the traced program.
    On a CPU without autograd, a batch is processed in chunks by the worker threads of
    :mod:`ispkit.threads`. Consecutive stages that multiply every pixel by a 3×3
    matrix (white balance, colour correction) are applied as one matrix product, and
    the luma plane of the sharpening and denoising stages is computed in the same pass
    (not when tracking stages, which need each view).
    """

    def __init__(
        self,
        pipeline: Pipeline,
        trainable: str | Iterable[str] = (),
        *,
        dtype: torch.dtype = torch.float32,
        track_stages: bool = False,
    ) -> None:
        super().__init__()
        if not (isinstance(dtype, torch.dtype) and dtype.is_floating_point and not dtype.is_complex):
            raise ParameterError(f"PipelineModule dtype: expected a floating-point torch dtype, got {dtype!r}")
        self.camera = pipeline.camera
        self.pipeline_name = pipeline.name
        self.takes = pipeline.takes
        self.track_stages = track_stages
        self.views: dict[str, torch.Tensor] = {}
        self._plan = pipeline._plan
        chosen = _resolve_trainable(pipeline, trainable)
        # A raw stage that decides on its input values (Stage.exact_input) gets them in
        # float64, as in the NumPy backend: the raw stages up to it keep float64 values.
        exact_at = next((i for i, s in enumerate(pipeline.stages) if s.stage.takes == "raw" and s.stage.exact_input), -1)
        for i, s in enumerate(pipeline.stages):
            keep = i <= exact_at and s.stage.takes == "raw"
            module = StageModule(s.stage, s.values, pipeline.camera.pattern, chosen.get(s.name, frozenset()), dtype=dtype, keep_float64=keep)
            self.add_module(s.name, module)
        self._overrides = {s.name: s.overrides | chosen.get(s.name, frozenset()) for s in pipeline.stages}
        self._exact_raw = exact_at >= 0

    def check(self, raw: torch.Tensor) -> torch.Tensor:
        """Check a raw input fully and return it as a batch ``(N, H, W)``.

        Guaranteed on return: a floating-point tensor of a shape the module takes, with
        even, non-zero height and width, and (except on the ``meta`` device, which has
        no values) finite values; otherwise :class:`~ispkit.errors.InputError` says what
        is wrong. Reading the values is the one host synchronisation of a call.
        """
        batch = self._batch(raw)
        if batch.device.type != "meta":
            check_finite(batch, "PipelineModule input")
        return batch

    def _batch(self, raw: torch.Tensor) -> torch.Tensor:
        """``raw`` as ``(N, H, W)`` (an RGB pipeline's input as ``(N, 3, H, W)``), after the checks that read only its type and shape."""
        if self.takes == "rgb" and isinstance(raw, torch.Tensor):
            check_rgb(raw, "PipelineModule input (an RGB pipeline)", batched=raw.ndim == 4)
            return raw if raw.ndim == 4 else raw[None]
        if not isinstance(raw, torch.Tensor):
            raise InputError(f"PipelineModule input: expected a torch tensor, got {type(raw).__name__}; use torch.as_tensor(raw)")
        if raw.ndim == 4 and raw.shape[1] == 1:
            raw = raw[:, 0]
        elif raw.ndim == 2:
            raw = raw[None]
        if raw.ndim != 3:
            raise InputError(f"PipelineModule input: expected (H, W), (N, H, W) or (N, 1, H, W), got shape {tuple(raw.shape)}")
        check_mosaic(raw, "PipelineModule input", batched=True)
        if min(raw.shape) == 0:
            raise InputError(f"PipelineModule input: the mosaic is empty (shape {tuple(raw.shape)})")
        return raw

    def forward(self, raw: torch.Tensor, check: bool = True) -> torch.Tensor:
        """Process raw mosaics; ``check=False`` skips the value check of :meth:`check` (shapes are always checked)."""
        single = isinstance(raw, torch.Tensor) and raw.ndim == (2 if self.takes == "raw" else 3)
        tracing = torch.compiler.is_compiling()
        batch = self._batch(raw)
        if tracing or batch.device.type != "cpu" or batch.shape[0] < 2:
            if check and not tracing:
                self.check(batch)
            out, self.views = self._run(batch)
        elif self.track_stages or (torch.is_grad_enabled() and (batch.requires_grad or any(p.requires_grad for p in self.parameters()))):
            if check:
                self.check(batch)
            done = map_chunks(self._run, batch, chunk_size(*batch.shape[-2:]), parallel=False)
            out = torch.cat([x for x, _ in done]) if len(done) > 1 else done[0][0]
            self.views = {name: torch.cat([views[name] for _, views in done]) for name in done[0][1]}
        else:
            out, self.views = self._run_parallel(batch, check), {}
        return out[0] if single else out

    def _run_parallel(self, batch: torch.Tensor, check: bool) -> torch.Tensor:
        """The stages on a CPU batch without autograd, chunk by chunk on the worker threads of :mod:`ispkit.threads`.

        The workers also check their chunks and write into one output, so this thread runs
        no parallel operation meanwhile (its idle intra-op threads would spin beside them).
        """
        out = batch.new_empty((batch.shape[0], 3, *batch.shape[-2:]))
        inference = torch.is_inference_mode_enabled()  # grad modes are per thread: the workers take the caller's

        def work(piece: torch.Tensor, start: int) -> None:
            with torch.inference_mode(inference), torch.no_grad():
                if check:
                    check_finite(piece, "PipelineModule input")
                out[start : start + piece.shape[0]].copy_(self._run(piece)[0])

        try:
            map_chunks(work, batch, chunk_size(*batch.shape[-2:]), offsets=True)
        except InputError:
            self.check(batch)  # the error for the whole batch (how many values are bad)
            raise
        return out

    def _run(self, raw: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The stages on a checked batch ``(N, H, W)``: the result and, when tracking, the views by stage."""
        track, views = self.track_stages, {}
        exact = self._exact_raw and raw.dtype != torch.float64 and raw.device.type != "mps"  # MPS has no float64
        x, y_before, y = raw.to(torch.float64) if exact else raw, None, None  # y: the luma plane while luma stages run
        pending: torch.Tensor | None = None  # a 3×3 pixel matrix not yet applied to x
        for step in self._plan:
            if step is _Convert.TO_YUV:
                x, y = _mix(x, pending, luma=True)
                y_before, pending = y, None
            elif step is _Convert.TO_RGB:
                x = with_luma(x, *_luma_planes(y_before, y))
            else:
                stage = step.stage
                module = getattr(self, step.name)
                if stage.takes == "luma":
                    y = module(y)
                elif stage.pixel_matrix is not None and not track:
                    matrix = module.pixel_matrix(x)
                    pending = matrix if pending is None else matrix @ pending
                else:
                    if pending is not None:
                        x, _ = _mix(x, pending, luma=False)
                        pending = None
                    x = module(x, raw.dtype) if exact and stage.exact_input else module(x)
                    if exact and stage.gives != "raw":
                        x, exact = x.to(raw.dtype), False
                if track:
                    views[step.name] = with_luma(x, *_luma_planes(y_before, y)) if stage.takes == "luma" else x.to(raw.dtype)
        if pending is not None:
            x, _ = _mix(x, pending, luma=False)
        return x, views

    @torch.no_grad()
    def parameter_groups(self, lr: float, *, floor: float = 1e-3) -> list[dict[str, Any]]:
        """Optimiser parameter groups whose learning rates are relative to each parameter's scale.

        Pipeline parameters live on very different scales (a black level near 1e-5, a
        colour matrix near 1, a gamma near 2); Adam moves every element by about its
        learning rate per step whatever the gradient's size, so one learning rate for
        all of them either freezes the large ones or throws the small ones around.
        Each trainable parameter gets ``lr × scale`` with ``scale = max(mean |θ₀|,
        floor × (high − low))`` (``floor`` alone without bounds), ``θ₀`` its current
        value.

        Examples
        --------
        >>> module = Pipeline.preset("bi,s,ga").to_torch(trainable=["gamma", "black_level"])
        >>> [(g["name"], round(g["lr"], 6)) for g in module.parameter_groups(0.01)]
        [('black_level.level', 2e-05), ('gamma.gamma', 0.022)]
        """
        groups = []
        for name, module in self._stage_modules():
            for p in module.stage.params:
                value = getattr(module, p.name, None)
                if isinstance(value, nn.Parameter):
                    width = floor * (p.bounds[1] - p.bounds[0]) if p.bounds is not None else floor
                    scale = max(value.abs().mean().item(), width)
                    groups.append({"params": [value], "lr": lr * scale, "name": f"{name}.{p.name}"})
        return groups

    @torch.no_grad()
    def project_(self) -> None:
        """Clamp every trainable parameter into its declared physical bounds."""
        for _, module in self._stage_modules():
            module.project_()

    def to_pipeline(self) -> Pipeline:
        """A :class:`Pipeline` with this module's current parameter values (e.g. after training).

        A value the module still holds as built (the pipeline's number rounded to the
        module's dtype) is given back as the pipeline's exact number, so an untrained
        float32 module gives back its pipeline unchanged.
        """
        stages = []
        for name, module in self._stage_modules():
            values = {p.name: module.current_value(p.name, f"{name}.{p.name}") for p in module.stage.params}
            stages.append(PipelineStage(name, module.stage, values, self._overrides[name]))
        return Pipeline(stages, self.camera, self.pipeline_name)

    def _stage_modules(self) -> Iterator[tuple[str, StageModule]]:
        """``(name, module)`` of each stage in pipeline order: the module's children, all :class:`StageModule`."""
        for name, module in self.named_children():
            assert isinstance(module, StageModule), f"{name!r} is not a stage module"
            yield name, module


# -- helpers ----------------------------------------------------------------------------


def _mix(x: torch.Tensor, matrix: torch.Tensor | None, *, luma: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(matrix · x, Y)`` per pixel of ``x`` ``(N, 3, H, W)`` in one pass: the RGB view after the
    3×3 ``matrix`` (``x`` itself if ``None``) and, if ``luma``, its Y plane (else ``None``)."""
    rows = matrix
    if luma:
        weights = cached(("pipeline.luma", x.dtype, x.device), lambda: torch.as_tensor(YUV_FROM_RGB[:1], dtype=x.dtype, device=x.device))
        rows = weights if matrix is None else torch.cat([matrix, weights @ matrix])
    if rows is None:
        return x, None
    # bmm, not matmul: matmul picks its kernel by whether the operands require grad, which
    # would make the rounding depend on what is trainable.
    out = torch.bmm(rows.expand(x.shape[0], -1, -1), x.flatten(-2)).unflatten(-1, x.shape[-2:])
    if matrix is None:
        return x, out[:, 0]
    return out[:, :3], (out[:, 3] if luma else None)


def _luma_planes(before: torch.Tensor | None, after: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """The Y plane before and after a run of luma stages, which the plan's ``TO_YUV`` step sets before either is used."""
    assert before is not None and after is not None, "the plan converts to YUV before a luma stage"
    return before, after
