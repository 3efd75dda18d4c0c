"""Raw-domain corruptions: physical drift of the acquisition itself, applied to the Bayer raw before the ISP.

ISP drift changes how a raw image is processed; ImageNet-C style corruptions
(:mod:`ispkit.corruptions`) change the processed image. Real devices also drift before
the ISP: less light, a moving camera, a lens out of focus, vignetting, another light, a
hotter sensor, dead pixels. Each corruption here is a physical model acting on the
normalised Bayer mosaic, camera-aware (CFA layout, black and white level, bit depth,
gain, read noise, colour model, optics), at five severities calibrated in physical units.

>>> import numpy as np, torch
>>> from ispkit.raw_corruptions import corrupt_raw, raw_corruption
>>> raw = np.full((4, 8, 8), 0.25)
>>> out = corrupt_raw(raw, "vignetting", 5, camera="drone")
>>> out.shape, bool(out[0, 0, 0] < out[0, 4, 4])
((4, 8, 8), True)
>>> cam = raw_corruption("low_light").check_camera({"name": "noisy", "gain": 2.0, "read_noise": 1.5})
>>> t = corrupt_raw(torch.full((2, 1, 8, 8), 0.25), "low_light", 3, camera=cam, seed=0)
>>> tuple(t.shape), torch.equal(t, corrupt_raw(torch.full((2, 1, 8, 8), 0.25), "low_light", 3, camera=cam, seed=0))
((2, 1, 8, 8), True)

Using them
----------
:func:`corrupt_raw` applies a corruption by name at a severity (1..5), or at values of
its quantities given as keywords (``exposure=0.05``; a tensor keeps its gradient), to a
numpy array ``(H, W)`` / ``(N, H, W)`` or a torch tensor ``(H, W)`` / ``(N, H, W)`` /
``(N, 1, H, W)`` of raw values in [0, 1], and returns the same shape (float64 for numpy;
the input's dtype and device for torch). :func:`raw_corruptions` lists them, each a
:class:`RawCorruption` (name, family, quantities with units and bounds, the five levels,
the backends). They are registered through the plugin hook ``ispkit_raw_corruptions``
(:mod:`ispkit.raw_corruptions.hookspecs`): a plugin adds its own as the optics plugin adds
``defocus``.

Backends and randomness
-----------------------
Every corruption has a torch backend: batched, on any device, differentiable in the raw
data and in the quantities listed below. Those with a static numpy reference (SciPy,
:mod:`ispkit.sensor`) give the same numbers in both backends, to float rounding, when they
draw nothing (with a given angle for ``motion_blur``); ``low_light`` draws from the same
distribution in both, from different random streams. A numpy array given to
:func:`corrupt_raw` goes through the numpy reference when there is one, else through the
torch backend in float64. Random numbers come only from the call's generator: ``seed``
(an integer in ``0 .. 2**32 - 1``) seeds a fresh one (numpy: ``default_rng(seed)``; torch:
a CPU ``torch.Generator``), so the same seed gives the same output, and ``None`` draws
fresh entropy. The ``N`` images of a batch get independent draws.

Every output is clipped to the sensor's range ``[0, D_max / W]``; corruptions that add
electrons re-quantise at the camera's bit depth (:mod:`ispkit.raw_corruptions.base`).

Severities
----------
(the physics and its calibration: each family's module, :mod:`~ispkit.raw_corruptions.exposure`,
:mod:`~ispkit.raw_corruptions.blur`, :mod:`~ispkit.raw_corruptions.shading`,
:mod:`~ispkit.raw_corruptions.aberration`, :mod:`~ispkit.raw_corruptions.illuminant`,
:mod:`~ispkit.raw_corruptions.defects`, :mod:`~ispkit.raw_corruptions.thermal`)

| corruption | family | quantity | unit | 1 | 2 | 3 | 4 | 5 |
| --- | --- | --- | --- | --- | --- | --- | --- | --- |
| `low_light` | exposure | `exposure` | × | 0.3 | 0.1 | 0.03 | 0.01 | 0.003 |
| `overexposure` | exposure | `exposure` | × | 1.5 | 2 | 4 | 8 | 16 |
| `motion_blur` | blur | `length_px` | px | 3 | 5 | 9 | 15 | 25 |
|  |  | `angle_deg` | ° | random | random | random | random | random |
| `vignetting` | optics | `field_angle_deg` | ° | 10 | 20 | 30 | 40 | 50 |
| `lens_shading` | optics | `corner_gain` | × | 0.9 | 0.8 | 0.65 | 0.5 | 0.35 |
| `chromatic_aberration` | optics | `red_pct` | % | 0.05 | 0.1 | 0.2 | 0.35 | 0.5 |
|  |  | `blue_pct` | % | -0.05 | -0.1 | -0.2 | -0.35 | -0.5 |
| `illuminant` | colour | `delta_k` | K | -1000 | -2000 | -3000 | -3500 | -4000 |
|  |  | `reference_k` | K | 6504 | 6504 | 6504 | 6504 | 6504 |
|  |  | `wavelengths_nm` | nm | matrix | matrix | matrix | matrix | matrix |
| `defective_pixels` | sensor | `density` |  | 0.0001 | 0.0003 | 0.001 | 0.003 | 0.01 |
|  |  | `hot_fraction` |  | 0.5 | 0.5 | 0.5 | 0.5 | 0.5 |
| `fixed_pattern_noise` | sensor | `row_sigma_e` | e⁻ | 2 | 4 | 8 | 16 | 32 |
|  |  | `column_sigma_e` | e⁻ | 1 | 2 | 4 | 8 | 16 |
|  |  | `banding_e` | e⁻ | 2 | 4 | 8 | 16 | 32 |
|  |  | `banding_period_px` | px | 32 | 32 | 32 | 32 | 32 |
| `dark_current` | sensor | `temperature_c` | °C | 35 | 45 | 55 | 65 | 75 |
|  |  | `reference_c` | °C | 25 | 25 | 25 | 25 | 25 |
|  |  | `dark_current_e_per_s` | e⁻/s | 10 | 10 | 10 | 10 | 10 |
|  |  | `doubling_c` | °C | 6.3 | 6.3 | 6.3 | 6.3 | 6.3 |
|  |  | `exposure_s` | s | 1 | 1 | 1 | 1 | 1 |

Backends, randomness, gradients and the camera facts each needs:

| corruption | model | backends | random | differentiable in | needs the camera's |
| --- | --- | --- | --- | --- | --- |
| `low_light` | less light: binomial thinning of the photo-electrons, fresh read noise, re-quantisation (ispkit.sensor.scale_exposure) | numpy, torch | yes | `raw`, `exposure` | gain, read_noise |
| `overexposure` | more light: extra Poisson photo-electrons, clipping at the ADC's largest number (saturation) | torch | yes | `raw`, `exposure` | gain |
| `motion_blur` | camera motion during the exposure: a line PSF of the given length, summing to 1, per CFA colour | numpy, torch | yes | `raw` | — |
| `vignetting` | natural vignetting: the signal falls off as cos⁴ of the field angle, calibrated at the corners | numpy, torch | no | `raw`, `field_angle_deg` | — |
| `lens_shading` | colour lens shading: an off-centre 33×33 gain map per CFA site, red falling off most (lens_shading stage's interpolation) | numpy, torch | no | `raw`, `corner_gain` | — |
| `chromatic_aberration` | lateral chromatic aberration: red and blue CFA planes magnified about the optical centre relative to green | numpy, torch | no | `raw`, `red_pct`, `blue_pct` | — |
| `illuminant` | another light: blackbody colour-temperature shift as per-channel gains through the camera's colour model | numpy, torch | no | `raw`, `delta_k`, `reference_k` | — |
| `defective_pixels` | hot and dead pixels: each pixel independently stuck at saturation or at black | torch | yes | `raw` | — |
| `fixed_pattern_noise` | row and column offsets and sinusoidal banding of the readout, in electrons through the gain | torch | yes | `raw`, `row_sigma_e`, `column_sigma_e`, `banding_e` | gain |
| `dark_current` | a hotter sensor: dark current doubling every 6.3 °C, its mean and Poisson noise added through the gain | torch | yes | `raw`, `temperature_c`, `exposure_s`, `dark_current_e_per_s` | gain |
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import torch

from ..camera import Camera
from ..corruptions import SEED_LIMIT
from ..errors import InputError
from ..registry import get_registry, register_kind
from .base import FAMILIES, SEVERITIES, Quantity, RawCorruption, numpy_batch
from .hookspecs import RAW_CORRUPTIONS

register_kind(RAW_CORRUPTIONS)

__all__ = [
    "FAMILIES",
    "PLUGIN_CORRUPTIONS",
    "SEVERITIES",
    "Quantity",
    "RawCorruption",
    "backend_table",
    "corrupt_raw",
    "raw_corruption",
    "raw_corruptions",
    "severity_table",
]

PLUGIN_CORRUPTIONS = {"defocus": "ispkit-plugin-optics"}
"""Corruptions that ispkit's own plugins provide, and the distribution to install for each."""


def raw_corruptions() -> dict[str, RawCorruption]:
    """Registered raw corruptions by name, ispkit's own first (in the order of the tables), then the plugins'."""
    return get_registry().items(RAW_CORRUPTIONS.hook)  # type: ignore[return-value]


def raw_corruption(name: str) -> RawCorruption:
    """The registered raw corruption ``name``; an unknown name is an :class:`~ispkit.errors.InputError` naming close matches.

    >>> raw_corruption("low_ligth")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ispkit.errors.InputError: unknown raw corruption 'low_ligth': did you mean 'low_light'...
    """
    if isinstance(name, str) and name in PLUGIN_CORRUPTIONS and name not in raw_corruptions():
        raise InputError(
            f"raw corruption {name!r} is provided by the plugin {PLUGIN_CORRUPTIONS[name]!r}, which is not installed or failed to load (ispkit plugins)"
        )
    return get_registry().get(RAW_CORRUPTIONS.hook, name)


def corrupt_raw(
    raw: np.ndarray | torch.Tensor,
    name: str,
    severity: int | None = None,
    *,
    camera: Camera | str | Mapping[str, Any],
    seed: int | None = None,
    **values: Any,
) -> np.ndarray | torch.Tensor:
    """Apply raw corruption ``name`` at ``severity`` (1..5) or at the quantity ``values`` given, with the random stream of ``seed``.

    Parameters
    ----------
    raw
        Raw values in [0, 1]: numpy ``(H, W)`` or ``(N, H, W)``, torch also ``(N, 1, H, W)``; H and W even. Not modified.
    name
        A registered corruption (:func:`raw_corruptions`).
    severity
        1 (mildest) .. 5; ``None`` when every quantity that varies with severity is given in ``values``.
    camera
        The camera that took ``raw``: a :class:`~ispkit.camera.Camera`, a registered name, a YAML path or a mapping.
    seed
        ``None`` (fresh entropy) or an integer in ``0 .. 2**32 - 1``.
    **values
        Quantities of the corruption overriding the severity's (e.g. ``angle_deg=30.0``).

    Returns
    -------
    numpy.ndarray or torch.Tensor
        The corrupted raw, of ``raw``'s shape (float64 for numpy; ``raw``'s dtype and device for torch).
    """
    corruption = raw_corruption(name)
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not 0 <= seed < SEED_LIMIT):
        raise InputError(f"corrupt_raw: seed must be None or an integer in 0..{SEED_LIMIT - 1}, got {seed!r}")
    if isinstance(raw, torch.Tensor):
        return corruption.apply_torch(raw, severity, camera=camera, generator=_torch_generator(seed), **values)
    if not isinstance(raw, np.ndarray):
        raise InputError(f"corrupt_raw: expected a numpy array or a torch tensor, got {type(raw).__name__}")
    if corruption.numpy is not None:
        return corruption.apply_numpy(raw, severity, camera=camera, rng=np.random.default_rng(seed), **values)
    batch = torch.from_numpy(numpy_batch(raw, f"raw corruption {corruption.name!r}"))
    return corruption.apply_torch(batch, severity, camera=camera, generator=_torch_generator(seed), **values).numpy().reshape(raw.shape)


def _torch_generator(seed: int | None) -> torch.Generator | None:
    return None if seed is None else torch.Generator().manual_seed(int(seed))


# -- the tables -------------------------------------------------------------------------------------


def _chosen(corruptions: Iterable[RawCorruption] | None) -> list[RawCorruption]:
    if corruptions is not None:
        return list(corruptions)
    from .builtins import BUILTIN_RAW_CORRUPTIONS

    return list(BUILTIN_RAW_CORRUPTIONS)


def severity_table(corruptions: Iterable[RawCorruption] | None = None) -> str:
    """The Markdown table of the quantities' values at severities 1..5 (default: ispkit's own corruptions), as the docs show it."""
    rows = ["| corruption | family | quantity | unit | " + " | ".join(map(str, SEVERITIES)) + " |", "| --- " * (4 + len(SEVERITIES)) + "|"]
    for corruption in _chosen(corruptions):
        for i, quantity in enumerate(corruption.quantities):
            head = f"`{corruption.name}` | {corruption.family}" if i == 0 else " | "
            values = " | ".join(quantity.show(level[quantity.name]) for level in corruption.levels)
            rows.append(f"| {head} | `{quantity.name}` | {quantity.unit} | {values} |")
    return "\n".join(rows)


def backend_table(corruptions: Iterable[RawCorruption] | None = None) -> str:
    """The Markdown table of what each corruption models, its backends, randomness, gradients and camera needs (default: ispkit's own)."""
    rows = ["| corruption | model | backends | random | differentiable in | needs the camera's |", "| --- " * 6 + "|"]
    for c in _chosen(corruptions):
        backends = "numpy, torch" if c.numpy is not None else "torch"
        grads = ", ".join(f"`{q}`" for q in ("raw", *c.differentiable))
        rows.append(f"| `{c.name}` | {c.summary} | {backends} | {'yes' if c.random else 'no'} | {grads} | {', '.join(c.needs) or '—'} |")
    return "\n".join(rows)
