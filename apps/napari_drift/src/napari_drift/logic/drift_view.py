"""Drift view: one raw mosaic through several ISP presets, as a stack, plus differences to a reference.

The stack is ``(N, H, W, 3)`` float32 in [0, 1] (each view clipped like the composer's
preview, :func:`napari_drift.logic.composer.to_view`), one slice per preset, in the order
asked for; the difference stack is ``|view - reference view|`` per pixel and channel.
Preset names travel with the layers as metadata (:data:`METADATA_PRESETS`).

Backends: ``"numpy"`` (ispkit's reference implementation, bit-identical to
``Pipeline.preset(p)(mosaic)``) or ``"torch"`` (``Pipeline.to_torch()`` in float32 under
``torch.no_grad``; equal to NumPy up to float32 rounding). The presets differ in their
stages, so every preset is its own module and the batch is the mosaic list: several
mosaics of the same size go through each module at once (:func:`drift_stacks`). On a
CPU, NumPy is faster for one mosaic (12 presets × 256² ≈ 1.2 s vs ≈ 4.7 s, mostly module
construction); torch pays off for batches of mosaics or on a GPU, so NumPy is the default.

A stack of frames (``(*frames, H, W)``, a lazy dask array) gets a lazy drift stack
``(N, *frames, H, W, 3)`` (:func:`lazy_drift_stack`): one view is computed when it is read
(napari: when it is shown), with the NumPy backend.

Physical drift before the ISP: :func:`raw_corruption_stack` shows one mosaic under each
raw-domain corruption (:mod:`ispkit.raw_corruptions`) and severity, every corrupted raw
processed by the same preset -- same ISP, another acquisition -- as ``(C, S, H, W, 3)``
with the clean view to compare with.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ispkit import Camera, InputError, Pipeline, UnknownStageError, presets

from .composer import to_view, views_of

__all__ = [
    "DriftStack",
    "RawCorruptionStack",
    "raw_corruption_stack",
    "METADATA_PRESETS",
    "METADATA_REFERENCE",
    "difference_stack",
    "drift_stack",
    "drift_stacks",
    "lazy_drift_stack",
    "METADATA_PIPELINES",
    "preset_pipelines",
]

METADATA_PRESETS = "ispkit_presets"
METADATA_REFERENCE = "ispkit_reference"
METADATA_PIPELINES = "ispkit_pipelines"  # preset → pipeline YAML, what the writer records


@dataclass(frozen=True)
class DriftStack:
    """Views of one mosaic: ``data[i]`` is ``names[i]``'s view, ``(N, H, W, 3)`` float32 in [0, 1]
    (``(N, *frames, H, W, 3)``, a lazy dask array, for a stack of frames)."""

    data: np.ndarray
    names: tuple[str, ...]

    def index(self, name: str) -> int:
        try:
            return self.names.index(name)
        except ValueError:
            raise InputError(f"preset {name!r} is not in this stack ({', '.join(self.names)})") from None

    def difference(self, reference: str) -> np.ndarray:
        """``|view - reference view|`` for every view, ``(N, H, W, 3)`` float32."""
        return difference_stack(self.data, self.index(reference))


def preset_pipelines(names: Sequence[str], camera: Camera | str) -> dict[str, str]:
    """``{preset: pipeline YAML}`` of ``names`` for ``camera``: what each slice of a drift stack went through."""
    camera = Camera.get(camera)
    return {name: Pipeline.preset(name, camera=camera).to_yaml() for name in _check_presets(names)}


def _check_presets(names: Sequence[str] | None) -> tuple[str, ...]:
    available = presets()
    names = tuple(available if names is None else names)
    if not names:
        raise InputError("choose at least one preset")
    unknown = [n for n in names if n not in available]
    if unknown:
        raise UnknownStageError(f"unknown preset(s) {', '.join(map(repr, unknown))}; presets: {', '.join(available)}")
    return names


def drift_stacks(
    mosaics: Sequence[np.ndarray],
    camera: Camera | str,
    names: Sequence[str] | None = None,
    *,
    backend: str = "numpy",
    progress: Callable[[int, int, str], None] | None = None,
) -> list[DriftStack]:
    """One :class:`DriftStack` per mosaic (all ``(H, W)`` of the same size for ``"torch"``, batched per preset)."""
    if backend not in ("numpy", "torch"):
        raise InputError(f"backend must be 'numpy' or 'torch', got {backend!r}")
    names = _check_presets(names)
    arrays = [np.asarray(m, dtype=np.float64) for m in mosaics]
    for m in arrays:
        if m.ndim != 2:
            raise InputError(f"expected (H, W) mosaics, got shape {m.shape}")
    camera = Camera.get(camera)
    per_preset: list[list[np.ndarray]] = []
    if backend == "torch":
        import torch

        if len({m.shape for m in arrays}) > 1:
            raise InputError("the torch backend batches mosaics: they must all have the same size")
        batch = torch.from_numpy(np.stack(arrays)).float()[:, None]  # (B, 1, H, W)
        with torch.no_grad():
            for i, name in enumerate(names):
                out = Pipeline.preset(name, camera=camera).to_torch()(batch).numpy()  # (B, 3, H, W)
                per_preset.append([to_view(v) for v in out])
                if progress:
                    progress(i + 1, len(names), name)
    else:
        for i, name in enumerate(names):
            pipeline = Pipeline.preset(name, camera=camera)
            per_preset.append([to_view(pipeline(m)) for m in arrays])
            if progress:
                progress(i + 1, len(names), name)
    return [DriftStack(np.stack([views[b] for views in per_preset]), names) for b in range(len(arrays))]


def drift_stack(
    mosaic: np.ndarray,
    camera: Camera | str,
    names: Sequence[str] | None = None,
    *,
    backend: str = "numpy",
    progress: Callable[[int, int, str], None] | None = None,
) -> DriftStack:
    """``mosaic`` (H, W) through the presets ``names`` (default: all twelve) for ``camera``."""
    return drift_stacks([mosaic], camera, names, backend=backend, progress=progress)[0]


def difference_stack(stack: np.ndarray, reference: int) -> np.ndarray:
    """``|stack[i] - stack[reference]|`` for every ``i``: same shape, float32 (lazy for a dask stack)."""
    if not hasattr(stack, "map_blocks"):
        stack = np.asarray(stack, dtype=np.float32)
    if not 0 <= reference < len(stack):
        raise InputError(f"reference index {reference} out of range for {len(stack)} views")
    return abs(stack - stack[reference][None])


def lazy_drift_stack(frames: Any, camera: Camera | str, names: Sequence[str] | None = None) -> DriftStack:
    """A stack of frames ``(*frames, H, W)`` (dask) through the presets ``names`` (default: all twelve), lazily.

    ``data`` is ``(N, *frames, H, W, 3)`` float32, one chunk per preset and frame; each
    view equals ``to_view(Pipeline.preset(name, camera)(frame))`` and is computed when read.
    """
    import dask.array as da

    names = _check_presets(names)
    camera = Camera.get(camera)
    if getattr(frames, "ndim", 0) < 3 or not hasattr(frames, "map_blocks"):
        raise InputError(f"expected a lazy stack of frames (*frames, H, W), got {type(frames).__name__} of shape {np.shape(frames)}")
    views = [views_of(frames, _view_function(Pipeline.preset(name, camera=camera))) for name in names]
    return DriftStack(da.stack(views), names)


def _view_function(pipeline: Pipeline) -> Callable[[np.ndarray], np.ndarray]:
    def view(mosaic: np.ndarray) -> np.ndarray:
        return to_view(pipeline(np.asarray(mosaic, dtype=np.float64)))

    return view


@dataclass(frozen=True)
class RawCorruptionStack:
    """One mosaic under raw-domain corruptions, seen through one preset.

    ``data[c, s]`` is the view of the mosaic under corruption ``names[c]`` at severity
    ``severities[s]``, ``(C, S, H, W, 3)`` float32 in [0, 1]; ``clean`` is the preset's view
    of the mosaic itself; ``skipped`` names the corruptions left out (the camera lacks what
    they need) with the reason.
    """

    data: np.ndarray
    clean: np.ndarray
    names: tuple[str, ...]
    severities: tuple[int, ...]
    preset: str
    skipped: dict[str, str]

    def difference(self) -> np.ndarray:
        """``|view - clean view|`` for every corruption and severity, ``(C, S, H, W, 3)`` float32."""
        return np.abs(self.data - self.clean[None, None])

    def describe(self, c: int, s: int) -> str:
        """Corruption ``c`` at severity ``s`` in words (its physical quantities)."""
        from ispkit.raw_corruptions import raw_corruption

        return raw_corruption(self.names[c]).describe(self.severities[s])


def raw_corruption_stack(
    mosaic: np.ndarray,
    camera: Camera | str,
    preset: str,
    names: Sequence[str] | None = None,
    severities: Sequence[int] = (1, 2, 3, 4, 5),
    *,
    seed: int = 0,
    progress: Callable[[int, int, str], None] | None = None,
) -> RawCorruptionStack:
    """``mosaic`` (H, W) under each raw-domain corruption ``names`` (default: every registered one
    the camera supports) at each of ``severities``, processed by ``preset`` for ``camera``.

    Each view equals ``to_view(Pipeline.preset(preset, camera)(corrupt_raw(mosaic, name, severity,
    camera=camera, seed=...)))`` with a seed drawn from ``seed``, the corruption's index and the
    severity, so the same call gives the same stack. A corruption named explicitly that the
    camera cannot support is an :class:`~ispkit.InputError` saying what the camera lacks.
    """
    from ispkit.raw_corruptions import SEVERITIES, corrupt_raw, raw_corruption, raw_corruptions

    (preset,) = _check_presets([preset])
    mosaic = np.asarray(mosaic, dtype=np.float64)
    if mosaic.ndim != 2:
        raise InputError(f"expected an (H, W) mosaic, got shape {mosaic.shape}")
    severities = tuple(int(s) for s in severities)
    if not severities or any(s not in SEVERITIES for s in severities):
        raise InputError(f"severities must be some of {', '.join(map(str, SEVERITIES))}, got {list(severities)}")
    camera = Camera.get(camera)
    skipped: dict[str, str] = {}
    if names is None:
        chosen = []
        for corruption in raw_corruptions().values():
            try:
                corruption.check_camera(camera)
            except InputError as exc:
                skipped[corruption.name] = str(exc)
            else:
                chosen.append(corruption.name)
    else:
        for name in names:
            raw_corruption(name).check_camera(camera)  # unknown names and unsupported cameras are InputErrors
        chosen = list(names)
    if not chosen:
        raise InputError("choose at least one raw corruption")
    pipeline = Pipeline.preset(preset, camera=camera)
    views: dict[str, np.ndarray] = {}
    for c, name in enumerate(chosen):
        try:
            views[name] = np.stack(
                [to_view(pipeline(corrupt_raw(mosaic, name, severity, camera=camera, seed=_cell_seed(seed, name, severity)))) for severity in severities]
            )
        except InputError as exc:  # e.g. an illuminant shift the camera's colour model cannot give
            if names is not None:
                raise
            skipped[name] = str(exc)
        if progress:
            progress(c + 1, len(chosen), name)
    if not views:
        raise InputError(f"no raw corruption applies to camera {camera.name!r}: " + "; ".join(skipped.values()))
    data = np.stack(list(views.values()))
    return RawCorruptionStack(data, to_view(pipeline(mosaic)), tuple(views), severities, preset, skipped)


def _cell_seed(seed: int, name: str, severity: int) -> int:
    """The seed of one corruption and severity: the same for the same call, different across cells."""
    return int(np.random.SeedSequence([seed, *name.encode(), severity]).generate_state(1)[0])
