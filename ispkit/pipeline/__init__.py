"""Pipelines: an ordered list of stages plus the camera whose raw data they process.

A :class:`Pipeline` is the data model Φ_Proc of the paper (Oala et al., TMLR 2023,
§4.2). It runs in two backends that agree to float rounding:

* ``pipeline(raw)``: the static model Φ_stat (Eq. 5) in NumPy, image by image, from
  the library calls each stage wraps;
* ``pipeline.to_torch(trainable=...)``: the parametrised model Φ_para (Eq. 33) as an
  ``nn.Module`` differentiable in its continuous parameters; at the default
  parameters θ_stat it equals the static model (Eq. 23).

Sharpening and denoising act on the luma Y of YUV. Consecutive luma stages share one
RGB→YUV conversion before them and one YUV→RGB conversion after them, as in the
paper's Eqs. 14–18 (in the NumPy backend with scikit-image's matrices, by ``einsum``).

YAML form (``to_yaml`` writes it, ``from_yaml`` reads it)::

    name: ma,s,me
    camera: microscopy        # a registered name, or a mapping of Camera fields
    stages:
      - kind: black_level
      - kind: demosaic
        method: malvar2004
      - kind: white_balance
      - kind: color_correction
      - kind: sharpen
        method: filter
      - kind: denoise
        method: median
      - kind: gamma
        params: {gamma: 2.2}

``method`` may be left out for kinds with a single method; ``name`` (default: the
kind) names the stage in the torch module's parameters, ``<stage>.<param>``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from importlib import resources
from typing import TYPE_CHECKING, Any

import numpy as np
import yaml

from .._torch import is_tensor
from ..arrays import check_finite, check_raw_data, check_rgb
from ..camera import Camera
from ..color import RGB_FROM_YUV, YUV_FROM_RGB
from ..config import KeyPath, Locator, check_string, load_yaml
from ..errors import InputError, ParameterError, UnknownStageError, close_matches
from ..registry import get_registry
from ..stages.base import Stage

if TYPE_CHECKING:
    import torch

    from .module import PipelineModule

__all__ = ["Pipeline", "PipelineStage", "PipelineModule", "presets", "PRESETS"]

PRESETS: tuple[str, ...] = tuple(f"{dm},{sh},{dn}" for dm in ("bi", "ma", "me") for sh in ("s", "u") for dn in ("me", "ga"))
"""The paper's twelve static data models, ``demosaic,sharpen,denoise`` (Fig. 3b)."""

_DM = {"bi": "bilinear", "ma": "malvar2004", "me": "menon2007"}
_SH = {"s": "filter", "u": "unsharp_mask"}
_DN = {"me": "median", "ga": "gaussian"}
_STAGE_KEYS = ("kind", "method", "name", "params")


def __getattr__(name: str) -> Any:
    """``PipelineModule``, from :mod:`ispkit.pipeline.module`, imported (with torch) when first asked for."""
    if name == "PipelineModule":
        from .module import PipelineModule

        return PipelineModule
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def presets() -> list[str]:
    """Names of the twelve paper presets, in the paper's order (``"bi,s,me"`` … ``"me,u,ga"``)."""
    return list(PRESETS)


@dataclass(frozen=True)
class PipelineStage:
    """One configured stage: its name, method class and complete validated parameter values.

    Two stages are equal when they compute the same function: the same ``name``, the
    same method class and the same parameter names with values of the same shape and
    exactly equal numbers (no tolerance: gamma 2.2 and 2.2000001 differ, and so does any
    changed matrix entry). Values are compared as numbers, not as storage: a float32
    array equals a float64 array holding the same numbers (float32(2.2) is not the
    float64 2.2, so those differ). ``overrides`` (which values were given explicitly
    rather than taken from the camera or the defaults) is not compared. The hash
    depends on ``name`` and ``stage`` only, so equal stages hash alike.
    """

    name: str
    stage: type[Stage]
    values: Mapping[str, Any]
    overrides: frozenset[str] = frozenset()

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, PipelineStage)
            and (self.name, self.stage) == (other.name, other.stage)
            and self.values.keys() == other.values.keys()
            and all(np.array_equal(self.values[k], other.values[k]) for k in self.values)
        )

    def __hash__(self) -> int:
        return hash((self.name, self.stage))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.stage.kind, "method": self.stage.method}
        if self.name != self.stage.kind:
            out["name"] = self.name
        if self.overrides:
            out["params"] = {k: _plain(self.values[k]) for k in sorted(self.overrides)}
        return out


class _Convert(Enum):
    """A colour conversion of the execution plan, around a run of luma stages."""

    TO_YUV = "to_yuv"
    TO_RGB = "to_rgb"


_Step = PipelineStage | _Convert
"""One step of the execution plan: a stage, or a colour conversion around luma stages."""


class Pipeline:
    """An ISP data model: ordered stages applied to a camera's raw mosaics.

    Parameters
    ----------
    stages
        Stage specifications, each a mapping with ``kind``, optional ``method``,
        ``name`` and ``params`` (as in the YAML form), or a :class:`PipelineStage`.
    camera
        A :class:`Camera`, a registered camera name, or a camera mapping.
    name
        Optional pipeline name (presets use theirs, e.g. ``"bi,s,me"``).

    Examples
    --------
    >>> p = Pipeline.preset("bi,s,me", camera="drone")
    >>> rgb = p(np.full((4, 4), 0.3))
    >>> rgb.shape
    (3, 4, 4)
    """

    def __init__(
        self,
        stages: Iterable[Mapping[str, Any] | PipelineStage],
        camera: Camera | str | Mapping[str, Any] = "microscopy",
        name: str | None = None,
        *,
        locator: Locator | None = None,
    ) -> None:
        locator = locator or Locator("<stages>")
        self.camera = Camera.get(camera)
        self.name = name
        self.stages: tuple[PipelineStage, ...] = tuple(
            s if isinstance(s, PipelineStage) else _build_stage(s, self.camera, locator, ("stages", i)) for i, s in enumerate(stages)
        )
        self._plan = _plan(self.stages, locator)

    # -- construction -------------------------------------------------------------------

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, locator: Locator | None = None) -> Pipeline:
        """Build a pipeline from its mapping form; errors carry the YAML position when known."""
        locator = locator or Locator("<dict>")
        if not isinstance(data, Mapping):
            locator.error((), f"a pipeline must be a mapping with 'stages', got {type(data).__name__}")
        locator.check_keys(data, ("name", "camera", "stages"), (), "unknown pipeline key")
        stages = data.get("stages")
        if not isinstance(stages, list) or not stages:
            locator.error(("stages",), "a pipeline needs a non-empty list 'stages'")
        if data.get("name") is not None:
            locator.check(("name",), check_string, data["name"], what="a pipeline name (a non-empty string) or null")
        camera_spec = data.get("camera", "microscopy")
        try:
            camera = Camera.get(camera_spec) if not isinstance(camera_spec, Mapping) else Camera.from_dict(camera_spec, locator=locator, path=("camera",))
        except (InputError, UnknownStageError) as exc:
            locator.error(("camera",), str(exc))
        return cls(stages, camera, data.get("name"), locator=locator)

    @classmethod
    def from_yaml(cls, path_or_text: str | os.PathLike[str]) -> Pipeline:
        """Load a pipeline from a YAML file or YAML text (see the module docstring)."""
        data, locator = load_yaml(path_or_text)
        return cls.from_dict(data, locator=locator)

    @classmethod
    def preset(cls, name: str, camera: Camera | str | Mapping[str, Any] = "microscopy") -> Pipeline:
        """One of the paper's twelve static data models, e.g. ``"ma,s,me"``, for ``camera``."""
        if name not in PRESETS:
            raise UnknownStageError(f"unknown preset {name!r}: {close_matches(name, PRESETS)}")
        text = (resources.files("ispkit") / "presets" / f"{name.replace(',', '_')}.yaml").read_text(encoding="utf-8")
        data, locator = load_yaml(text)
        return cls(data["stages"], camera, data["name"], locator=locator)

    # -- description --------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Mapping form: parameters appear only where they differ from the camera/defaults."""
        registered = get_registry().cameras().get(self.camera.name)
        camera: Any = self.camera.name if registered == self.camera else self.camera.to_dict()
        out: dict[str, Any] = {}
        if self.name is not None:
            out["name"] = self.name
        out["camera"] = camera
        out["stages"] = [s.to_dict() for s in self.stages]
        return out

    def to_yaml(self, path: str | os.PathLike[str] | None = None) -> str:
        """YAML text that :meth:`from_yaml` reads back to an equal pipeline; written to ``path`` if given."""
        text: str = yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=None)
        if path is not None:
            from ..atomic import atomic_write_text

            atomic_write_text(path, text)
        return text

    def __getitem__(self, name: str) -> PipelineStage:
        for s in self.stages:
            if s.name == name:
                return s
        raise KeyError(f"no stage named {name!r}; stages: {', '.join(s.name for s in self.stages)}")

    def params(self) -> dict[str, Any]:
        """All parameter values keyed ``<stage>.<param>``."""
        return {f"{s.name}.{k}": v for s in self.stages for k, v in s.values.items()}

    def with_camera(self, camera: Camera | str | Mapping[str, Any]) -> Pipeline:
        """The same stages for another camera: explicit parameters kept, camera-derived ones re-read.

        >>> p = Pipeline.preset("bi,s,me", camera="microscopy").with_params({"gamma.gamma": 2.0})
        >>> q = p.with_camera("drone")
        >>> q.camera.name, float(q.params()["gamma.gamma"])
        ('drone', 2.0)
        >>> bool(np.all(q.params()["white_balance.gains"] == Camera.get("drone").white_balance))
        True
        """
        return Pipeline([s.to_dict() for s in self.stages], camera, self.name)

    def with_params(self, values: Mapping[str, Any]) -> Pipeline:
        """A copy with parameters ``{"<stage>.<param>": value}`` replaced (validated)."""
        by_stage: dict[str, dict[str, Any]] = {}
        for key, value in values.items():
            stage_name, _, param = key.partition(".")
            stage = self[stage_name]
            if param not in {p.name for p in stage.stage.params}:
                _unknown_param(stage, param)
            by_stage.setdefault(stage_name, {})[param] = value
        stages = [
            PipelineStage(
                s.name,
                s.stage,
                {**s.values, **{k: s.stage.param(k).validate(v, f"{s.name}.{k}") for k, v in by_stage.get(s.name, {}).items()}},
                s.overrides | frozenset(by_stage.get(s.name, {})),
            )
            for s in self.stages
        ]
        return Pipeline(stages, self.camera, self.name)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Pipeline) and (self.name, self.camera, self.stages) == (other.name, other.camera, other.stages)

    def __repr__(self) -> str:
        chain = " → ".join(f"{s.name}={s.stage.method}" for s in self.stages)
        return f"Pipeline({self.name or 'unnamed'}, camera={self.camera.name}: {chain})"

    @property
    def takes(self) -> str:
        """``"raw"`` for a pipeline of raw mosaics, ``"rgb"`` for one whose first stage takes an RGB view (see :meth:`after`)."""
        return "raw" if not self.stages or self.stages[0].stage.takes == "raw" else "rgb"

    def after(self, kind: str) -> Pipeline:
        """The stages after the first stage of ``kind``, as a pipeline of RGB views (same camera; name ``"<name> after <kind>"``).

        ``pipeline.after("demosaic")`` processes demosaiced images, such as a linear DNG
        read by :func:`ispkit.io.read_linear`: both backends take ``(3, H, W)`` or
        ``(N, 3, H, W)`` and equal the full pipeline's stages from there on. Any
        pipeline whose first stage takes RGB works so; ``after`` is the usual way to get one.
        Raises :class:`~ispkit.errors.UnknownStageError` when no stage has ``kind``, and
        :class:`~ispkit.errors.ConfigError` when the stages after it do not start on RGB
        (``kind`` is a raw stage before demosaicking) or there are none.

        >>> rgb = Pipeline.preset("bi,s,me", camera="drone").after("demosaic")
        >>> [s.name for s in rgb.stages], rgb.takes
        (['white_balance', 'color_correction', 'sharpen', 'denoise', 'gamma'], 'rgb')
        >>> rgb(np.full((3, 4, 4), 0.2)).shape
        (3, 4, 4)
        """
        kinds = [s.stage.kind for s in self.stages]
        if kind not in kinds:
            raise UnknownStageError(f"Pipeline.after: no stage of kind {kind!r} in this pipeline: {close_matches(kind, kinds)}")
        rest = self.stages[kinds.index(kind) + 1 :]
        if not rest or rest[0].stage.takes == "raw":
            follows = "nothing" if not rest else f"{rest[0].name!r}, which takes a raw mosaic"
            Locator("<stages>").error((), f"Pipeline.after({kind!r}): the stages after it must start on an RGB view, but {follows} follows it")
        return Pipeline(rest, self.camera, f"{self.name or 'pipeline'} after {kind}")

    # -- numpy backend ------------------------------------------------------------------

    def __call__(self, raw: np.ndarray) -> np.ndarray:
        """Process ``(H, W)`` → ``(3, H, W)`` or ``(N, H, W)`` → ``(N, 3, H, W)`` with the numpy backend
        (an RGB pipeline, :attr:`takes` ``"rgb"``: ``(3, H, W)`` or ``(N, 3, H, W)``)."""
        if is_tensor(raw):
            raise InputError("Pipeline(raw) is the numpy backend and takes a numpy array; for tensors use pipeline.to_torch()(raw)")
        if self.takes == "rgb":
            return self._run_rgb(raw)
        batched = check_raw_data(raw, "Pipeline input")
        x = np.asarray(raw, dtype=np.float64)
        if not batched:
            return self._run_numpy(x)
        return np.stack([self._run_numpy(image) for image in x])

    def _run_rgb(self, rgb: np.ndarray) -> np.ndarray:
        """The numpy backend of an RGB pipeline: ``(3, H, W)`` or ``(N, 3, H, W)``, checked (float, shape, finite)."""
        batched = getattr(rgb, "ndim", 0) == 4
        check_rgb(rgb, f"Pipeline input (this pipeline starts with {self.stages[0].name!r}, which takes RGB views)", batched=batched)
        check_finite(rgb, "Pipeline input")
        x = np.asarray(rgb, dtype=np.float64)
        return np.stack([self._run_numpy(image) for image in x]) if batched else self._run_numpy(x)

    def _run_numpy(self, x: np.ndarray) -> np.ndarray:
        pattern = self.camera.pattern
        y: np.ndarray | None = None  # the luma plane while luma stages run; x holds the YUV image then
        for step in self._plan:
            if step is _Convert.TO_YUV:
                x = _convert_numpy(YUV_FROM_RGB, x)
                y = x[0]
            elif step is _Convert.TO_RGB:
                x[0] = y  # x is this call's own YUV array
                x, y = _convert_numpy(RGB_FROM_YUV, x), None
            elif step.stage.takes == "luma":
                assert y is not None, "the plan converts to YUV before a luma stage"
                y = step.stage.run_numpy(y, step.values, pattern)
            else:
                x = step.stage.run_numpy(x, step.values, pattern)
        return x

    # -- torch backend ------------------------------------------------------------------

    def to_torch(self, trainable: str | Iterable[str] = (), *, dtype: torch.dtype | None = None, track_stages: bool = False) -> PipelineModule:
        """The parametrised data model as an ``nn.Module`` (see :class:`~ispkit.pipeline.module.PipelineModule`; torch is imported here).

        Parameters
        ----------
        trainable
            ``"all"`` for every differentiable parameter, or names of stages
            (``"denoise"``) and parameters (``"denoise.kernel"``) to expose as
            ``nn.Parameter``; everything else is a buffer.
        dtype
            The dtype of the module's parameters and buffers (``None``: float32, what
            training uses; ``module.to(dtype)`` changes it later). The module computes
            in its input's dtype; for the float64 contract (≤ 1e-6 from the NumPy
            backend) use ``dtype=torch.float64`` with float64 input, since float32
            parameters are float32-rounded numbers.
        track_stages
            Keep every intermediate RGB view in ``module.views`` after each call.
        """
        import torch

        from .module import PipelineModule

        return PipelineModule(self, trainable, dtype=torch.float32 if dtype is None else dtype, track_stages=track_stages)


# -- helpers ----------------------------------------------------------------------------


def _convert_numpy(matrix: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``matrix`` applied to every pixel of ``(3, H, W)``: ``skimage.color.rgb2yuv`` / ``yuv2rgb`` for
    :data:`~ispkit.color.YUV_FROM_RGB` / :data:`~ispkit.color.RGB_FROM_YUV` (their matrices), to float
    rounding, without a BLAS call (``einsum`` without ``optimize`` loops in C), so no BLAS thread pool
    wakes up (see :mod:`ispkit.threads`)."""
    out: np.ndarray = np.einsum("ij,jhw->ihw", matrix, x, optimize=False)
    return out


def _plain(value: Any) -> Any:
    return value.tolist() if isinstance(value, np.ndarray) else value


def _unknown_param(s: PipelineStage, param: str) -> None:
    raise ParameterError(
        f"stage {s.name!r} ({s.stage.kind}={s.stage.method}) has no parameter {param!r}: {close_matches(param, [p.name for p in s.stage.params])}"
    )


def _build_stage(spec: Any, camera: Camera, locator: Locator, path: KeyPath) -> PipelineStage:
    if not isinstance(spec, Mapping):
        locator.error(path, f"a stage must be a mapping with 'kind', got {spec!r}")
    locator.check_keys(spec, _STAGE_KEYS, path, "unknown stage key")
    if "kind" not in spec:
        locator.error(path, "a stage needs a 'kind'")
    locator.check((*path, "kind"), check_string, spec["kind"], what="a stage kind name")
    if spec.get("method") is not None:
        locator.check((*path, "method"), check_string, spec["method"], what="a stage method name (or null for a kind with one method)")
    try:
        stage = get_registry().stage(spec["kind"], spec.get("method"))
    except UnknownStageError as exc:
        locator.error((*path, "method" if "method" in spec and "unknown method" in str(exc) else "kind"), str(exc), UnknownStageError)
    name = spec.get("name", stage.kind)
    if not (isinstance(name, str) and name.isidentifier()):
        locator.error((*path, "name"), f"stage names must be identifiers (they name torch parameters), got {name!r}")
    given = spec.get("params") or {}
    if not isinstance(given, Mapping):
        locator.error((*path, "params"), f"'params' must be a mapping of parameter names to values, got {given!r}")
    declared = {p.name for p in stage.params}
    values: dict[str, Any] = {}
    locator.check_keys(given, declared, (*path, "params"), f"{stage.kind}={stage.method} has no parameter")
    for p in stage.params:
        raw = given[p.name] if p.name in given else camera.resolve(p.default)
        try:
            values[p.name] = p.validate(raw, f"{name}.{p.name}")
        except ParameterError as exc:
            locator.error((*path, "params", p.name), str(exc))
    return PipelineStage(name, stage, values, frozenset(given))


def _plan(stages: Sequence[PipelineStage], locator: Locator) -> tuple[_Step, ...]:
    """Check that the stages chain (raw → … → rgb) and insert YUV conversions around luma runs."""
    names = [s.name for s in stages]
    for i, n in enumerate(names):
        if names.index(n) != i:
            locator.error(("stages", i, "name"), f"two stages are named {n!r}; give one a distinct 'name'")
    steps: list[_Step] = []
    domain = "raw" if not stages or stages[0].stage.takes == "raw" else "rgb"  # an RGB pipeline starts after demosaicking
    for i, s in enumerate(stages):
        takes = s.stage.takes
        if (takes == "raw") != (domain == "raw"):
            locator.error(
                ("stages", i),
                f"stage {s.name!r} ({s.stage.kind}={s.stage.method}) takes {'a raw mosaic' if takes == 'raw' else 'an RGB view'}, "
                f"but the stages before it give {'a raw mosaic (add a demosaic stage first)' if domain == 'raw' else 'an RGB view'}",
            )
        if takes == "luma" and domain != "yuv":
            steps.append(_Convert.TO_YUV)
            domain = "yuv"
        elif takes != "luma" and domain == "yuv":
            steps.append(_Convert.TO_RGB)
            domain = "rgb"
        steps.append(s)
        if takes != "luma":
            domain = s.stage.gives
    if domain == "yuv":
        steps.append(_Convert.TO_RGB)
        domain = "rgb"
    if domain != "rgb":
        locator.error(("stages",), "the pipeline ends on a raw mosaic; it needs a demosaic stage to give an RGB view")
    return tuple(steps)


def _resolve_trainable(pipeline: Pipeline, trainable: str | Iterable[str]) -> dict[str, frozenset[str]]:
    """Map ``"all"``, stage names and ``stage.param`` names to differentiable parameters per stage."""
    differentiable = {s.name: [p.name for p in s.stage.params if p.differentiable and p.dtype is float] for s in pipeline.stages}
    items = [trainable] if isinstance(trainable, str) else list(trainable)
    chosen: dict[str, set[str]] = {}
    for item in items:
        if item == "all":
            for stage, params in differentiable.items():
                chosen.setdefault(stage, set()).update(params)
            continue
        stage, _, param = item.partition(".")
        if stage not in differentiable:
            raise ParameterError(f"trainable: no stage named {stage!r}: {close_matches(stage, differentiable)}")
        if not param:
            chosen.setdefault(stage, set()).update(differentiable[stage])
        elif param in differentiable[stage]:
            chosen.setdefault(stage, set()).add(param)
        else:
            s = pipeline[stage]
            if param in {p.name for p in s.stage.params}:
                raise ParameterError(f"trainable: {stage}.{param} is not a differentiable parameter")
            _unknown_param(s, param)
    return {k: frozenset(v) for k, v in chosen.items()}
