"""A quick numerical check that a stage's numpy and torch backends agree (the float64 contract).

DESIGN.md promises that a stage's torch backend equals its numpy backend within 1e-6 in
float64. :func:`backend_difference` measures that on a small deterministic probe, calling
both backends exactly as a pipeline does: parameters at their declared defaults (read from
``camera`` where a default is a :class:`~ispkit.stages.base.FromCamera`), validated as a
pipeline validates them; numpy through :meth:`Stage.run_numpy` on one image, torch through a
:class:`~ispkit.stages.base.StageModule` on a batch of one, both in float64.

The probe images are 16×16: a smooth ramp and a crop of ``skimage.data.astronaut()``. Raw
stages get each as a Bayer mosaic and are probed under all four CFA layouts; RGB stages get
``(3, 16, 16)`` images and luma stages the Y plane. The registry runs this once on each
plugin stage, the first time a pipeline asks for it.
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
from .stages.base import Domain, Stage, StageModule

__all__ = ["FLOAT64_TOLERANCE", "PROBE_SIZE", "ProbeResult", "backend_difference", "default_values", "probe_inputs"]

FLOAT64_TOLERANCE = 1e-6
"""Largest |numpy − torch| allowed in float64 (DESIGN.md, stage contract)."""

PROBE_SIZE = 16
"""Side of the square probe images, in pixels."""

_CROP = (208, 88)  # top-left of an astronaut crop with edges in luma and colour, values 0.04 … 0.95


@dataclass(frozen=True)
class ProbeResult:
    """Outcome of :func:`backend_difference`.

    Attributes
    ----------
    max_difference
        Largest elementwise |numpy − torch| over every probe input; ``inf`` where the two
        backends give different shapes or disagree on which values are finite.
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
def _ramp_rgb() -> np.ndarray:
    """Three smooth ramps in [0.1, 0.9] in different directions, ``(3, 16, 16)``; their luma spans about [0.1, 0.9] too."""
    y, x = np.mgrid[0:PROBE_SIZE, 0:PROBE_SIZE] / (PROBE_SIZE - 1)
    return 0.1 + 0.8 * np.stack([0.6 * x + 0.4 * y, 0.3 * x + 0.7 * y, 0.5 + 0.5 * (x - y)])


@cache
def _natural_rgb() -> np.ndarray:
    """A textured 16×16 crop of ``skimage.data.astronaut()`` in [0, 1], ``(3, 16, 16)``."""
    from skimage import data

    r, c = _CROP
    return np.moveaxis(data.astronaut()[r : r + PROBE_SIZE, c : c + PROBE_SIZE] / 255.0, -1, 0)


def _as_domain(rgb: np.ndarray, takes: Domain, pattern: str) -> np.ndarray:
    """``rgb`` as the input of a stage that takes ``takes``: a Bayer mosaic, the RGB image or its luma."""
    if takes == "raw":
        return np.sum(masks_numpy(rgb.shape[1:], pattern) * rgb, axis=0)
    if takes == "luma":
        return rgb_to_yuv_numpy(rgb)[0]
    return rgb.copy()


def probe_inputs(takes: Domain, pattern: str = "RGGB") -> dict[str, np.ndarray]:
    """The float64 probe images for a stage taking ``takes``, by name (``"ramp"``, ``"astronaut crop"``).

    Raw inputs are mosaics ``(16, 16)`` of ``pattern``; RGB inputs are ``(3, 16, 16)``; luma
    inputs are the Y plane ``(16, 16)``. The same call always returns the same values.
    """
    return {"ramp": _as_domain(_ramp_rgb(), takes, pattern), "astronaut crop": _as_domain(_natural_rgb(), takes, pattern)}


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


def _difference(a: np.ndarray, b: np.ndarray) -> float:
    """Largest |a − b|; ``inf`` for different shapes or a value finite in one and not equal in the other."""
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
        The worst difference and where it occurred. Exceptions of either backend propagate.
    """
    results = []
    for label, cam, image in _cases(stage, camera):
        values = default_values(stage, cam)
        expected = np.asarray(stage.run_numpy(image, values, cam.pattern), dtype=np.float64)
        got = StageModule(stage, values, cam.pattern)(torch.as_tensor(image)[None])[0].detach().cpu().numpy()
        results.append(ProbeResult(_difference(expected, got), label))
    return max(results, key=lambda r: r.max_difference)
