"""Exposure: less light (``low_light``) and more light with saturation (``overexposure``), through the sensor's noise model.

``low_light``
    The exposure scaled by ``f ≤ 1`` exactly as :func:`ispkit.sensor.scale_exposure` makes
    the datasets' intensity variants (which is the numpy reference): the photo-electrons
    ``n = round(S / g)`` are thinned binomially, ``k ~ Binomial(n, f)``, fresh read noise
    ``ε ~ N(0, σ²)`` e⁻ is added, the sub-electron remainder ``r = S − n g`` is scaled, and
    the result is re-quantised::

        DN' = g (k + ε) + f r + B

    A Poisson count thinned by ``f`` is a Poisson count of ``f`` times the light, so the
    output lies on the photon-transfer line: variance ``g · f S + g² σ² + J²/12`` DN² at
    mean ``f S`` (EMVA 1288; the input's own read noise survives scaled by ``f``). Needs
    the camera's gain and read noise.
``overexposure``
    The exposure scaled by ``a ≥ 1``: by the superposition of independent Poisson counts a
    longer exposure adds ``m ~ Poisson((a − 1) S⁺ / g)`` electrons to those recorded
    (``S⁺ = max(S, 0)``; the read noise, read once, is already in the input)::

        DN' = S + g m + B,   clipped at D_max

    so the mean is ``a S`` below saturation and every pixel whose ``a S`` exceeds
    ``D_max − B`` stores the largest number the ADC can hold. Needs the camera's gain.

Severities are exposure factors, half a decade apart for low light (1.7 stops each) and
0.6, 1, 2, 3, 4 stops for overexposure. The torch backends are differentiable in the
exposure and in ``raw`` (a draw's gradient is that of its mean and standardised residual,
:func:`~ispkit.raw_corruptions.base.pathwise`; the ADC rounding passes it straight through,
saturated pixels stop it).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..camera import Camera
from ..sensor import scale_exposure
from .base import Quantity, RawCorruption, Sensor, draw, normal, pathwise, tensor_like

__all__ = ["LOW_LIGHT", "OVEREXPOSURE", "low_light", "low_light_numpy", "overexposure"]


def low_light_numpy(raw: np.ndarray, camera: Camera, rng: np.random.Generator, *, exposure: float) -> np.ndarray:
    """:func:`ispkit.sensor.scale_exposure` of the batch ``(N, H, W)`` by ``exposure`` (image ``i`` from ``rng.spawn(N)[i]``)."""
    return scale_exposure(raw, exposure, camera, seed=rng)


def low_light(raw: torch.Tensor, camera: Camera, generator: torch.Generator, *, exposure: Any) -> torch.Tensor:
    """Torch twin of :func:`low_light_numpy` (same distribution, torch's random stream); differentiable in ``exposure`` and ``raw``."""
    sensor = Sensor.of(camera)
    f = tensor_like(exposure, raw)
    signal = sensor.signal_torch(raw)
    electrons = torch.round(signal.detach().clamp_min(0.0) / sensor.gain)
    kept = draw(torch.binomial, generator, electrons, f.expand_as(electrons), like=raw)
    kept = pathwise(kept, f * electrons, f * (1.0 - f) * electrons)
    if sensor.read_noise > 0:
        kept = kept + sensor.read_noise * normal(generator, tuple(raw.shape), raw)
    dn = sensor.gain * kept + f * (signal - electrons * sensor.gain) + sensor.black_torch(raw)
    return sensor.digitise_torch(dn)


def overexposure(raw: torch.Tensor, camera: Camera, generator: torch.Generator, *, exposure: Any) -> torch.Tensor:
    """A longer exposure by ``exposure`` ≥ 1: Poisson electrons added, re-quantised, clipped at D_max (module docstring)."""
    sensor = Sensor.of(camera)
    a = tensor_like(exposure, raw)
    signal = sensor.signal_torch(raw)
    rate = (a - 1.0) * signal.clamp_min(0.0) / sensor.gain
    extra = pathwise(draw(torch.poisson, generator, rate, like=raw), rate, rate)
    return sensor.digitise_torch(raw * sensor.white + sensor.gain * extra)


_EXPOSURE = "exposure factor: the light collected relative to the input's acquisition"

LOW_LIGHT = RawCorruption(
    name="low_light",
    family="exposure",
    summary="less light: binomial thinning of the photo-electrons, fresh read noise, re-quantisation (ispkit.sensor.scale_exposure)",
    quantities=(Quantity("exposure", "×", _EXPOSURE, low=1e-6, high=1.0),),
    levels=tuple({"exposure": f} for f in (0.3, 0.1, 0.03, 0.01, 0.003)),
    torch=low_light,
    numpy=low_light_numpy,
    needs=("gain", "read_noise"),
    random=True,
    differentiable=("exposure",),
)

OVEREXPOSURE = RawCorruption(
    name="overexposure",
    family="exposure",
    summary="more light: extra Poisson photo-electrons, clipping at the ADC's largest number (saturation)",
    quantities=(Quantity("exposure", "×", _EXPOSURE, low=1.0, high=1e6),),
    levels=tuple({"exposure": a} for a in (1.5, 2.0, 4.0, 8.0, 16.0)),
    torch=overexposure,
    needs=("gain",),
    random=True,
    differentiable=("exposure",),
)
