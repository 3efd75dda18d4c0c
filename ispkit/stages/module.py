"""A stage as a torch module (:class:`StageModule`): its parameters as ``nn.Parameter`` or buffers, its torch backend as ``forward``.

Kept apart from :mod:`ispkit.stages.base`, whose stage interface the NumPy backend uses,
because a class deriving from ``nn.Module`` needs torch to be defined: this module imports
torch, :mod:`ispkit.stages.base` does not. ``ispkit.stages.StageModule`` names it too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from ..arrays import check_float
from .base import Stage, _label

__all__ = ["StageModule"]


class StageModule(nn.Module):
    """A stage as an ``nn.Module``: parameters chosen as trainable are ``nn.Parameter``,
    the others buffers; both are named as declared.

    Parameters
    ----------
    stage
        The stage method class.
    values
        Validated parameter values (see :meth:`Param.validate`).
    pattern
        The camera's CFA layout (used by CFA-aware stages).
    trainable
        Names of the continuous, differentiable parameters to expose as ``nn.Parameter``.
    dtype
        The dtype of the parameters and buffers; ``module.to(dtype)`` changes it as for
        any module. The backend computes in its input's dtype: the parameters are cast to
        it when they differ (differentiably), which is a no-op when they agree.
    keep_float64
        Keep the parameters in float64 whatever ``.to(dtype)``, ``.half()`` or
        ``.float()`` ask (devices still change): for raw stages whose result decides a
        later :attr:`Stage.exact_input` stage, which must see the float64 numbers.
    """

    def __init__(
        self,
        stage: type[Stage],
        values: Mapping[str, Any],
        pattern: str,
        trainable: frozenset[str] = frozenset(),
        *,
        dtype: torch.dtype = torch.float64,
        keep_float64: bool = False,
    ) -> None:
        super().__init__()
        self.stage = stage
        self.pattern = pattern
        self.keep_float64 = keep_float64
        self.scalars: dict[str, Any] = {}
        dtype = torch.float64 if keep_float64 else dtype
        for p in stage.params:
            value = values[p.name]
            if p.dtype is not float:
                self.scalars[p.name] = value
            elif p.name in trainable:
                self.register_parameter(p.name, nn.Parameter(torch.tensor(value, dtype=dtype)))
            else:
                self.register_buffer(p.name, torch.tensor(value, dtype=dtype))
        self._built = dict(values)
        # Host copies of the host parameters: (tensor they were read from, its version, value).
        self._host: dict[str, tuple[torch.Tensor | None, int, float]] = {name: (None, -1, float(values[name])) for name in stage.host_params}

    def values(self, like: torch.Tensor) -> dict[str, Any]:
        """Parameter values cast to ``like``'s dtype and device (differentiably; a no-op where they agree)."""
        out: dict[str, Any] = dict(self.scalars)
        for p in self.stage.params:
            if p.dtype is float:
                value = getattr(self, p.name)
                out[p.name] = value if (value.dtype, value.device) == (like.dtype, like.device) else value.to(dtype=like.dtype, device=like.device)
        return out

    def host_values(self) -> dict[str, float] | None:
        """The current values of the stage's :attr:`Stage.host_params` as floats, or ``None`` if it has none.

        Read from a host copy, which is refreshed (one read of the tensor) only when the
        tensor was replaced or changed in place since (its version counter moved), so
        steady-state calls do not synchronise with a device; inference tensors have no
        version counter and are read on every call. While
        tracing (``torch.compile``, ``torch.export``) and on the ``meta`` device the copy
        is used as it is: a traced program keeps the sizes of its trace.
        """
        if not self.stage.host_params:
            return None
        if not torch.compiler.is_compiling():
            for name in self.stage.host_params:
                tensor = getattr(self, name)
                held, version, _ = self._host[name]
                if tensor.device.type == "meta":  # no values: keep the copy
                    continue
                # Inference tensors have no version counter (-1: read them every time).
                current = -1 if tensor.is_inference() else tensor._version
                if current < 0 or held is not tensor or version != current:
                    self._host[name] = (tensor, current, float(tensor.detach()))
        return {name: value for name, (_, _, value) in self._host.items()}

    def current_value(self, name: str, where: str | None = None) -> Any:
        """The validated value of parameter ``name`` as the module holds it now (``where`` names it in errors).

        Where the tensor still holds the value the module was built with, rounded to its
        dtype, that value itself (the exact float64 number) is returned.
        """
        p = self.stage.param(name)
        if p.dtype is not float:
            return self.scalars[name]
        tensor = getattr(self, name).detach()
        built = self._built[name]
        if torch.equal(tensor.cpu(), torch.tensor(built, dtype=tensor.dtype)):
            return built
        return p.validate(tensor.cpu().double().numpy(), where or f"{self.stage.kind}.{name}")

    def pixel_matrix(self, like: torch.Tensor) -> torch.Tensor:
        """The stage's :attr:`Stage.pixel_matrix` ``(3, 3)`` in ``like``'s dtype and on its device."""
        if self.stage.pixel_matrix is None:
            raise TypeError(f"{_label(self.stage)} declares no pixel_matrix")
        return self.stage.pixel_matrix(**self.values(like))

    def forward(self, x: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
        """Run the stage on a batch (see :meth:`Stage.run_torch`), in ``x``'s dtype and on its device.

        A stage taking ``raw`` also accepts ``(N, 1, H, W)``; a raw result then keeps
        the channel axis, ``(N, 1, H, W)``. ``dtype``: for a stage with ``exact_input``.
        """
        check_float(x, f"{_label(self.stage)} input")
        channel = self.stage.takes == "raw" and x.ndim == 4 and x.shape[1] == 1
        out = self.stage.run_torch(x[:, 0] if channel else x, self.values(x), self.pattern, dtype, self.host_values())
        shaped: torch.Tensor = out[:, None] if channel and self.stage.gives != "rgb" else out
        return shaped

    def _apply(self, fn: Callable[[torch.Tensor], torch.Tensor], recurse: bool = True) -> StageModule:
        """``nn.Module._apply`` (behind ``.to``, ``.half``, ``.cuda``, …), keeping float64 where :attr:`keep_float64`."""
        if not self.keep_float64:
            return self._apply_module(fn, recurse)

        def keep(t: torch.Tensor) -> torch.Tensor:
            out = fn(t)
            if t.dtype == torch.float64 and out.dtype != torch.float64 and out.device.type != "mps":  # MPS has no float64
                return t.to(device=out.device)
            return out

        return self._apply_module(keep, recurse)

    def _apply_module(self, fn: Callable[[torch.Tensor], torch.Tensor], recurse: bool) -> StageModule:
        moved: StageModule = nn.Module._apply(self, fn, recurse)
        return moved

    @torch.no_grad()
    def project_(self) -> None:
        """Clamp every trainable parameter into its declared physical bounds, in place."""
        for p in self.stage.params:
            if p.bounds is not None and isinstance(getattr(self, p.name, None), nn.Parameter):
                getattr(self, p.name).clamp_(*p.bounds)

    def extra_repr(self) -> str:
        return f"{self.stage.kind}={self.stage.method}"
