"""A quick numerical check that a stage's numpy and torch backends agree (the float64 contract).

DESIGN.md promises that a stage's torch backend equals its numpy backend within 1e-6 in
float64. :func:`backend_difference` measures that on a small deterministic probe, calling
both backends exactly as a pipeline does: parameters at their declared defaults (read from
``camera`` where a default is a :class:`~ispkit.stages.base.FromCamera`), validated as a
pipeline validates them; numpy through :meth:`Stage.run_numpy` on one image, torch through a
:class:`~ispkit.stages.module.StageModule` on a batch of one, both in float64.

The probe images are 16×16: a smooth ramp and a crop of ``skimage.data.astronaut()``. Raw
stages get each as a Bayer mosaic and are probed under all four CFA layouts; RGB stages get
``(3, 16, 16)`` images and luma stages the Y plane. The registry runs this once on each
plugin stage, the first time a pipeline asks for it.

:func:`conformance_inputs` is the larger set :func:`ispkit.testing.check_stage` uses
(random numbers, two natural images, integer sensor counts of three bit depths), and
:func:`numpy_outputs` / :func:`torch_outputs` run either backend on a batch exactly as a
pipeline does; both checks are built from them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
import torch

from .camera import Camera
from .cfa import BAYER_PATTERNS, masks_numpy
from .color import rgb_to_yuv_numpy
from .stages.base import Domain, Stage
from .stages.module import StageModule

__all__ = [
    "CONFORMANCE_SHAPE",
    "FLOAT32_TOLERANCE",
    "FLOAT64_TOLERANCE",
    "PROBE_SIZE",
    "TOLERANCES",
    "ProbeResult",
    "backend_difference",
    "conformance_inputs",
    "default_values",
    "max_difference",
    "numpy_outputs",
    "probe_inputs",
    "torch_outputs",
]

FLOAT64_TOLERANCE = 1e-6
"""Largest |numpy − torch| allowed in float64 (DESIGN.md, stage contract)."""

FLOAT32_TOLERANCE = 1e-4
"""Largest |numpy − torch| allowed when the torch backend runs in float32 (DESIGN.md, stage contract)."""

TOLERANCES: dict[torch.dtype, float] = {torch.float64: FLOAT64_TOLERANCE, torch.float32: FLOAT32_TOLERANCE}
"""The contract's tolerance per torch dtype."""

CONFORMANCE_SHAPE = (24, 32)
"""Height and width of :func:`conformance_inputs` (not square, so that swapped axes show)."""

PROBE_SIZE = 16
"""Side of the square probe images, in pixels."""

_CROP = (208, 88)  # top-left of an astronaut crop with edges in luma and colour, values 0.04 … 0.95
_NATURAL = {"astronaut": (200, 80), "coffee": (190, 320)}  # top-left of crops with edges in luma and colour (coffee: clipped black and white too)
_COUNTS = {  # integer sensor counts / white level: (label, bits, exposure, left shift)
    12: ("12-bit counts", 12, 1.0, 0),
    14: ("14-bit counts, dark", 14, 1 / 16, 0),
    16: ("16-bit counts of a 10-bit sensor", 10, 1.0, 6),
}


@dataclass(frozen=True)
class ProbeResult:
    """Outcome of :func:`backend_difference`.

    Attributes
    ----------
    max_difference
        Largest elementwise |numpy − torch| over every probe input; ``inf`` where the two
        backends disagree on which values are finite.
    where
        The probe input (image and CFA layout) at which ``max_difference`` occurred.
    """

    max_difference: float
    where: str

    @property
    def agrees(self) -> bool:
        """Whether the backends meet the float64 contract, ``max_difference <= FLOAT64_TOLERANCE``."""
        return self.max_difference <= FLOAT64_TOLERANCE


@cache
def _ramp_rgb(shape: tuple[int, int] = (PROBE_SIZE, PROBE_SIZE)) -> np.ndarray:
    """Three smooth ramps in [0.1, 0.9] in different directions, ``(3, *shape)``; their luma spans about [0.1, 0.9] too."""
    y, x = np.mgrid[0 : shape[0], 0 : shape[1]]
    y, x = y / max(shape[0] - 1, 1), x / max(shape[1] - 1, 1)
    return 0.1 + 0.8 * np.stack([0.6 * x + 0.4 * y, 0.3 * x + 0.7 * y, 0.5 + 0.5 * (x - y)])


@cache
def _natural_rgb(name: str = "astronaut", top_left: tuple[int, int] = _CROP, shape: tuple[int, int] = (PROBE_SIZE, PROBE_SIZE)) -> np.ndarray:
    """A crop of ``skimage.data.<name>()`` (8-bit) at ``top_left`` in [0, 1], ``(3, *shape)``."""
    from skimage import data

    (r, c), (h, w) = top_left, shape
    crop = getattr(data, name)()[r : r + h, c : c + w]
    if crop.shape[:2] != shape:
        raise ValueError(f"a {h}×{w} crop at {top_left} does not fit in skimage.data.{name}()")
    return np.moveaxis(crop / 255.0, -1, 0)


def _counts(rgb: np.ndarray, bits: int, exposure: float, shift: int) -> np.ndarray:
    """``rgb`` as integer counts of a ``bits``-bit sensor at ``exposure``, left-shifted by ``shift`` bits, over the white level."""
    counts = np.round(rgb * exposure * (2**bits - 1)) * 2**shift
    scaled: np.ndarray = counts / (2 ** (bits + shift) - 1)
    return scaled


def _as_domain(rgb: np.ndarray, takes: Domain, pattern: str) -> np.ndarray:
    """``rgb`` as the input of a stage that takes ``takes``: a Bayer mosaic, the RGB image or its luma."""
    if takes == "raw":
        mosaic: np.ndarray = np.sum(masks_numpy(rgb.shape[1:], pattern) * rgb, axis=0)
        return mosaic
    if takes == "luma":
        luma: np.ndarray = rgb_to_yuv_numpy(rgb)[0]
        return luma
    return rgb.copy()


def probe_inputs(takes: Domain, pattern: str = "RGGB") -> dict[str, np.ndarray]:
    """The float64 probe images for a stage taking ``takes``, by name (``"ramp"``, ``"astronaut crop"``).

    Raw inputs are mosaics ``(16, 16)`` of ``pattern``; RGB inputs are ``(3, 16, 16)``; luma
    inputs are the Y plane ``(16, 16)``. The same call always returns the same values.
    """
    return {"ramp": _as_domain(_ramp_rgb(), takes, pattern), "astronaut crop": _as_domain(_natural_rgb(), takes, pattern)}


def conformance_inputs(takes: Domain, pattern: str = "RGGB", shape: tuple[int, int] = CONFORMANCE_SHAPE) -> dict[str, np.ndarray]:
    """Float64 test images for a stage taking ``takes``, by name, each of ``shape`` (raw: a mosaic of ``pattern``).

    ``"ramp"`` (smooth); ``"uniform random"`` (seeded; in [0, 1] for raw stages, in
    [-0.25, 1.25] otherwise, as views leave [0, 1] after colour correction); the natural
    8-bit photographs ``"astronaut"`` and ``"coffee"`` of ``skimage.data``; and the coffee
    crop as integer sensor counts divided by the white level, which produce the exact ties
    real raw data have: ``"12-bit counts"``, ``"14-bit counts, dark"`` (1/16 exposure) and
    ``"16-bit counts of a 10-bit sensor"`` (left-justified: multiples of 64). ``shape``
    must fit in the crops (at most 250×350). The same call always returns equal values.
    """
    rng = np.random.default_rng(sum(map(ord, takes)))
    low, high = (0.0, 1.0) if takes == "raw" else (-0.25, 1.25)
    natural = {name: _natural_rgb(name, top_left, shape) for name, top_left in _NATURAL.items()}
    rgb = {
        "ramp": _ramp_rgb(shape),
        "uniform random": rng.uniform(low, high, (3, *shape)),
        **natural,
        **{label: _counts(natural["coffee"], bits, exposure, shift) for label, bits, exposure, shift in _COUNTS.values()},
    }
    return {name: _as_domain(image, takes, pattern) for name, image in rgb.items()}


def default_values(stage: type[Stage], camera: Camera) -> dict[str, Any]:
    """Every declared parameter of ``stage`` at its default for ``camera``, validated as a pipeline validates it.

    Raises :class:`~ispkit.errors.ParameterError` when a default breaks its own declaration.
    """
    return {p.name: p.validate(camera.resolve(p.default), f"{stage.kind}.{p.name}") for p in stage.params}


def _cases(stage: type[Stage], camera: Camera) -> Iterator[tuple[str, Camera, np.ndarray]]:
    """``(label, camera, image)`` for every probe input; raw stages under each CFA layout."""
    cameras = [dataclasses.replace(camera, pattern=p) for p in BAYER_PATTERNS] if stage.takes == "raw" else [camera]
    for cam in cameras:
        for name, image in probe_inputs(stage.takes, cam.pattern).items():
            yield (f"{name}, {cam.pattern}" if stage.takes == "raw" else name), cam, image


def numpy_outputs(stage: type[Stage], images: np.ndarray, values: dict[str, Any], pattern: str) -> np.ndarray:
    """The numpy backend on each image of the batch ``images`` through :meth:`Stage.run_numpy`, stacked, as float64."""
    return np.stack([np.asarray(stage.run_numpy(image, values, pattern), dtype=np.float64) for image in images])


def torch_outputs(
    stage: type[Stage],
    images: np.ndarray,
    values: dict[str, Any],
    pattern: str,
    dtype: torch.dtype = torch.float64,
    device: str | torch.device = "cpu",
) -> torch.Tensor:
    """The torch backend on the batch ``images`` in ``dtype`` on ``device``, through a :class:`StageModule` as a pipeline runs it.

    Returns the module's output as it is (its dtype and device are the backend's), detached.
    """
    module = StageModule(stage, values, pattern).to(device)
    with torch.no_grad():
        outputs: torch.Tensor = module(torch.as_tensor(images, dtype=dtype, device=device)).detach()
        return outputs


def max_difference(a: np.ndarray, b: np.ndarray) -> float:
    """Largest |a − b|; ``inf`` for different shapes or a value finite in one and not equal in the other (NaN equals NaN)."""
    if a.shape != b.shape:
        return float("inf")
    with np.errstate(invalid="ignore"):
        diff = np.abs(a - b)
    same = (a == b) | (np.isnan(a) & np.isnan(b))
    diff = np.where(same, 0.0, np.where(np.isnan(diff), np.inf, diff))
    return float(diff.max(initial=0.0))


@torch.no_grad()
def backend_difference(stage: type[Stage], camera: Camera) -> ProbeResult:
    """Largest |numpy − torch| of ``stage`` at its default parameters over the probe inputs.

    Parameters
    ----------
    stage
        The stage method class.
    camera
        The camera whose fields fill :class:`~ispkit.stages.base.FromCamera` defaults and whose
        CFA layout non-raw stages see; raw stages are probed under every layout.

    Returns
    -------
    ProbeResult
        The worst difference and where it occurred. Exceptions of either backend propagate;
        a backend returning the wrong shape is an :class:`~ispkit.errors.InputError`
        (:meth:`Stage.run_numpy`, :meth:`Stage.run_torch`).
    """
    results = []
    for label, cam, image in _cases(stage, camera):
        values = default_values(stage, cam)
        expected = numpy_outputs(stage, image[None], values, cam.pattern)
        got = torch_outputs(stage, image[None], values, cam.pattern).cpu().numpy()
        results.append(ProbeResult(max_difference(expected, got), label))
    return max(results, key=lambda r: r.max_difference)
