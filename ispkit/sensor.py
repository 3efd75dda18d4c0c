"""Sensor physics: shot and read noise, ADC quantisation, exposure scaling, photon transfer.

The Raw-Microscopy and Raw-Drone datasets come with intensity variants of every raw
image (scales 1.0, 0.75, 0.5, 0.25, 0.1, 0.05, 0.01, and 0.001 in the paper), made
"with a physical model based on sensor calibration" (Oala et al., TMLR 2023, section
"Raw dataset acquisition" and the dataset appendix A.3 / datasheets A.5; the variants
were made with the commercial JetRaw Data Suite, whose model is not published). This
module is ispkit's open model of the same physics:

- :func:`scale_exposure` turns a raw acquisition into a dimmer acquisition of the same
  scene (binomial thinning of the photo-electrons, fresh read noise, re-quantisation);
- :func:`acquire` turns a noiseless radiance image into a noisy Bayer raw, the way
  Raw-Microscopy was assembled from three filtered exposures by keeping a Bayer subset
  of each;
- :func:`photon_transfer` and :func:`fit_gain` measure the conversion gain from pairs of
  flat fields with the photon-transfer method of the EMVA 1288 standard.

Conventions
-----------
A normalised raw value ``x`` in [0, 1] is the stored digital number
``DN = x · white_level`` with ``white_level = 2**container_bits - 1``. Per CFA site ``s``
(row-major order of the 2×2 block) the black level is ``B_s = black_level[s] ·
white_level`` DN and the signal is ``DN - B_s``. Electrons are ``(DN - B_s) / g`` with
the *stored* gain ``g = camera.gain · J`` in DN/e⁻, ``J = camera.justification =
2**(container_bits - bit_depth)`` (drone: ``g = 0.528 · 16 = 8.448`` DN/e⁻). The ADC
delivers ``bit_depth`` bits that are left-justified into the container::

    DN_stored = clip(round(DN / J) · J, 0, (2**bit_depth - 1) · J)

(``round`` is numpy's round-half-to-even) and the result is ``DN_stored / white_level``.
All arithmetic is float64; the output is always a new float64 array.

Seeding
-------
``seed`` is ``None`` (fresh entropy), a non-negative int, a
:class:`numpy.random.SeedSequence` or a :class:`numpy.random.Generator`. A single image is
drawn from ``np.random.default_rng(seed)``. In a batch, image ``i`` is drawn from its own
generator seeded with ``batch_seeds(seed, N)[i]``, i.e. ``SeedSequence(seed).spawn(N)[i]``:
image ``i`` of a batch equals the single-image call with that seed, and does not depend
on the batch size or on the other images. A :class:`~numpy.random.Generator` is consumed:
used directly for one image, split with ``Generator.spawn(N)`` for a batch.

Examples
--------
>>> import numpy as np
>>> from ispkit.camera import Camera
>>> from ispkit.sensor import acquire, scale_exposure, fit_gain
>>> cam = Camera(name="demo", bit_depth=12, container_bits=16, gain=0.5, read_noise=2.0)
>>> cam.stored_gain                        # DN/e⁻ on the 16-bit numbers
8.0
>>> raw = acquire(np.full((3, 4, 4), 0.5), cam, seed=0)
>>> raw.shape, raw.dtype
((4, 4), dtype('float64'))
>>> bool(np.all(np.round(raw * cam.white_level) % 16 == 0))   # 12 bit left-justified
True
>>> np.array_equal(scale_exposure(raw, 1.0, cam, read_noise=0.0, seed=1), raw)
True
>>> dim = scale_exposure(raw, 0.1, cam, seed=1)
>>> bool(dim.mean() < raw.mean())
True
>>> fit_gain([100.0, 200.0, 300.0], [850.0, 1650.0, 2450.0])   # variance = 8 · mean + 50
8.0
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np

from .arrays import check_finite, check_float, check_mosaic, check_raw_data
from .camera import Camera
from .cfa import masks_numpy, site_map_numpy
from .errors import InputError

__all__ = ["acquire", "batch_seeds", "fit_gain", "photon_transfer", "scale_exposure"]

SeedLike = int | np.integer | np.random.SeedSequence | np.random.Generator | None


# -- seeding ------------------------------------------------------------------------------


def _check_seed(seed: Any, where: str) -> None:
    ok = (
        seed is None
        or isinstance(seed, (np.random.SeedSequence, np.random.Generator))
        or (isinstance(seed, (numbers.Integral, np.integer)) and not isinstance(seed, bool) and int(seed) >= 0)
    )
    if not ok:
        raise InputError(f"{where}: seed must be None, a non-negative int, a numpy SeedSequence or a numpy Generator, got {seed!r}")


def batch_seeds(seed: SeedLike, n: int) -> list[np.random.SeedSequence] | list[np.random.Generator]:
    """Per-image seeds of a batch of ``n`` images: ``SeedSequence(seed).spawn(n)``.

    Image ``i`` of a batch processed with ``seed`` equals the single image processed with
    ``seed=batch_seeds(seed, n)[i]``. The children depend only on ``seed`` and ``i``, not
    on ``n``. A :class:`~numpy.random.SeedSequence` passed in is not advanced (the
    children are built from its entropy and spawn key); a
    :class:`~numpy.random.Generator` is split with ``Generator.spawn(n)``, which advances it.

    Examples
    --------
    >>> [s.spawn_key for s in batch_seeds(7, 2)]
    [(0,), (1,)]
    """
    _check_seed(seed, "batch_seeds")
    if isinstance(seed, np.random.Generator):
        return seed.spawn(n)
    parent = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    return [np.random.SeedSequence(parent.entropy, spawn_key=(*parent.spawn_key, i), pool_size=parent.pool_size) for i in range(n)]


def _generators(seed: SeedLike, n: int | None) -> list[np.random.Generator]:
    """One generator for a single image (``n is None``), else one per batch image."""
    if n is None:
        return [np.random.default_rng(seed)]
    return [np.random.default_rng(s) for s in batch_seeds(seed, n)]


# -- camera and parameter checks -----------------------------------------------------------


def _camera(camera: Any) -> Camera:
    return Camera.get(camera)


def _positive(value: Any, name: str, where: str, *, allow_zero: bool = False) -> float:
    bound = ">= 0" if allow_zero else "> 0"
    if isinstance(value, bool) or not isinstance(value, (numbers.Real, np.floating, np.integer)):
        raise InputError(f"{where}: {name} must be a finite number {bound}, got {value!r}")
    value = float(value)
    if not np.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        raise InputError(f"{where}: {name} must be a finite number {bound}, got {value!r}")
    return value


def _noise_model(camera: Camera, gain: Any, read_noise: Any, where: str) -> tuple[float, float]:
    """Return (stored gain in DN/e⁻, read noise in e⁻), overrides first."""
    missing = []
    if gain is None and camera.gain is None:
        missing.append(("conversion gain", f"gain=<DN/e⁻ at its {camera.bit_depth}-bit depth>"))
    if read_noise is None and camera.read_noise is None:
        missing.append(("read noise", "read_noise=<e⁻>"))
    if missing:
        raise InputError(
            f"{where}: camera {camera.name!r} has no {' and no '.join(m[0] for m in missing)} "
            f"(not published for it); pass {' and '.join(m[1] for m in missing)} explicitly, "
            f"e.g. {where}(..., gain=2.2, read_noise=1.5), or give the camera values with "
            "dataclasses.replace(camera, gain=..., read_noise=...)"
        )
    g = _positive(camera.gain if gain is None else gain, "gain (DN/e⁻ at bit_depth)", where)
    sigma = _positive(camera.read_noise if read_noise is None else read_noise, "read_noise (e⁻)", where, allow_zero=True)
    return g * camera.justification, sigma


def _black_dn(camera: Camera, shape: tuple[int, int]) -> np.ndarray:
    """Black level in stored DN, tiled over an ``(H, W)`` mosaic."""
    return site_map_numpy(camera.black_level, shape) * camera.white_level


def _max_dn(camera: Camera) -> float:
    """Largest number the ADC can store: ``(2**bit_depth - 1) · J``."""
    return float((2**camera.bit_depth - 1) * camera.justification)


def _digitise(dn: np.ndarray, camera: Camera) -> np.ndarray:
    """Quantise DN at the native bit depth, left-justify, clip, normalise (in place on ``dn``)."""
    j = camera.justification
    if j != 1:
        np.divide(dn, j, out=dn)
    np.round(dn, out=dn)
    if j != 1:
        np.multiply(dn, j, out=dn)
    np.clip(dn, 0.0, _max_dn(camera), out=dn)
    np.divide(dn, camera.white_level, out=dn)
    return dn


def _check_unit_range(x: np.ndarray, where: str) -> None:
    lo, hi = float(np.min(x)), float(np.max(x))
    if lo < 0.0 or hi > 1.0:
        raise InputError(f"{where}: expected raw values normalised to [0, 1] (stored DN / white level), got values in [{lo:g}, {hi:g}]")


def _check_raw(raw: Any, where: str) -> bool:
    """Check a mosaic ``(H, W)`` or ``(N, H, W)``; return whether it is batched."""
    if not isinstance(raw, np.ndarray):
        raise InputError(f"{where}: expected a numpy array, got {type(raw).__name__}")
    batched = check_raw_data(raw, where)
    _check_unit_range(raw, where)
    return batched


# -- exposure scaling ----------------------------------------------------------------------


def scale_exposure(
    raw: np.ndarray,
    factor: float,
    camera: Camera | str | Mapping[str, Any],
    *,
    seed: SeedLike = None,
    gain: float | None = None,
    read_noise: float | None = None,
) -> np.ndarray:
    r"""Synthesise a dimmer acquisition of the same scene (intensity variants of the datasets).

    The model of the Raw-Microscopy / Raw-Drone intensity variants (Oala et al., TMLR 2023,
    "Raw dataset acquisition" and Appendix A.3/A.5: a calibrated sensor model with shot
    noise from the gain and read noise, scales 1.0 ... 0.01 and 0.001). Per pixel, with
    stored gain ``g`` (DN/e⁻), black ``B`` (DN), ``J = camera.justification``:

    .. math::

        S &= x \cdot W - B  \quad\text{(signal, DN)}, \qquad
        n = \operatorname{round}(\max(S, 0) / g), \qquad r = S - n g \\
        k &\sim \operatorname{Binomial}(n, f), \qquad \varepsilon \sim \mathcal N(0, \sigma^2) \\
        \mathrm{DN}' &= g\,(k + \varepsilon) + f\,r + B, \qquad
        x' = \operatorname{clip}(\operatorname{round}(\mathrm{DN}'/J)\,J,\ 0,\ (2^{b}-1)J) / W

    If ``n ~ Poisson(λ)`` then ``k ~ Poisson(f λ)`` (thinning), so the output has the shot
    noise of a true acquisition with ``f`` times the light: mean ``f·S`` and variance
    ``g · f·S + g²σ² + J²/12`` in DN², i.e. it lies on the photon-transfer line of slope
    ``g``. The sub-electron remainder ``r`` of the rounding (and any below-black
    excursion, where ``n = 0``) is carried deterministically and scaled by ``f``: the mean
    scales exactly by ``f`` and ``factor == 1`` with ``read_noise=0`` returns the input
    quantised, i.e. unchanged for data already on the ADC grid.

    Approximations (the model sees one noisy frame, not the scene):

    - the input's own noise is treated as signal: its read noise and quantisation noise
      are thinned with it and survive scaled by ``f``, so the output read noise is
      ``sqrt(σ² + f²σ_in²)`` rather than ``σ`` (≤ 12 % too high for ``f ≤ 0.5``,
      negligible at the low scales where read noise matters); at ``f = 1`` with
      ``read_noise > 0`` the read noise is added a second time;
    - thinning treats the rounded electron count as a Poisson count; a non-Poisson input
      (read noise, fixed-pattern noise) is thinned as if it were one;
    - saturated input pixels keep their clipped value times ``f`` (the true signal above
      saturation is unknown);
    - no dark current, no PRNU or other fixed-pattern noise, no non-linearity; the black
      level is the camera's constant per-site value; read noise is Gaussian in electrons.

    Parameters
    ----------
    raw
        Normalised float mosaic ``(H, W)`` or batch ``(N, H, W)`` in [0, 1]; H and W even.
        Not modified.
    factor
        Exposure scale ``f``, ``0 < f <= 1`` (the datasets use 1.0 ... 0.001).
    camera
        :class:`~ispkit.camera.Camera`, a registered camera name, a YAML path or a mapping.
    seed
        See the module's *Seeding* section: a batch draws image ``i`` from
        ``batch_seeds(seed, N)[i]``.
    gain
        Conversion gain in DN/e⁻ **at the camera's bit depth** (the unit of
        ``Camera.gain``: 0.528 for the drone, not 8.448); overrides the camera's.
    read_noise
        Read noise ``σ`` of the simulated acquisition in e⁻ (may be 0); overrides the camera's.

    Returns
    -------
    numpy.ndarray
        float64 array of the shape of ``raw``, values in ``[0, (2**bit_depth - 1)·J / W]``
        and multiples of ``J / W``.

    Raises
    ------
    InputError
        Bad shape, dtype, non-finite or out-of-range values, ``factor`` outside (0, 1], or
        no gain / read noise known (the published microscopy camera has neither; the drone
        camera has no read noise).
    """
    where = "scale_exposure"
    batched = _check_raw(raw, f"{where} raw")
    if isinstance(factor, bool) or not isinstance(factor, (numbers.Real, np.floating, np.integer)):
        raise InputError(f"{where}: factor must be a number with 0 < factor <= 1, got {factor!r}")
    f = float(factor)
    if not (np.isfinite(f) and 0.0 < f <= 1.0):
        raise InputError(f"{where}: factor must satisfy 0 < factor <= 1 (exposure scale, e.g. 0.1), got {factor!r}")
    cam = _camera(camera)
    g, sigma = _noise_model(cam, gain, read_noise, where)
    _check_seed(seed, where)

    images = raw if batched else raw[None]
    black = _black_dn(cam, images.shape[-2:])
    out = np.empty(images.shape, dtype=np.float64)
    for image, rng, dst in zip(images, _generators(seed, len(images) if batched else None), out, strict=True):
        signal = image.astype(np.float64) * cam.white_level - black
        electrons = np.rint(np.maximum(signal, 0.0) / g)
        remainder = signal - electrons * g
        kept = rng.binomial(electrons.astype(np.int64), f).astype(np.float64)
        if sigma > 0:
            kept += rng.normal(0.0, sigma, size=kept.shape)
        dst[...] = kept * g + f * remainder + black
        _digitise(dst, cam)
    return out if batched else out[0]


# -- acquisition ---------------------------------------------------------------------------


def acquire(
    scene: np.ndarray,
    camera: Camera | str | Mapping[str, Any],
    *,
    seed: SeedLike = None,
    gain: float | None = None,
    read_noise: float | None = None,
    full_scale_electrons: float | None = None,
) -> np.ndarray:
    r"""Expose a noiseless radiance image onto the camera's Bayer sensor.

    Each CFA site keeps the channel of its filter, which is how Raw-Microscopy was built
    from three filtered exposures (450/525/620 nm) by keeping a Bayer subset of each
    (Oala et al., TMLR 2023, "Raw dataset acquisition" and Appendix A.3/A.5). Per pixel of
    CFA site ``s`` with filter channel ``c(s)``, stored gain ``g`` (DN/e⁻), black ``B_s``
    (DN), largest stored number ``D_max = (2^b - 1)·J``:

    .. math::

        E_s &= (D_{max} - B_s) / g \quad\text{(electrons at full scale, unless given)} \\
        \lambda &= \mathrm{scene}_{c(s)} \cdot E_s, \qquad
        n \sim \operatorname{Poisson}(\lambda), \qquad \varepsilon \sim \mathcal N(0, \sigma^2) \\
        \mathrm{DN} &= g\,(n + \varepsilon) + B_s, \qquad
        x = \operatorname{clip}(\operatorname{round}(\mathrm{DN}/J)\,J,\ 0,\ D_{max}) / W

    so a scene value of 1 is, on average, exactly the largest stored number at every site
    (drone: ``E ≈ (65520 - 4096) / 8.448 ≈ 7271`` e⁻) and the mean of ``x`` is
    ``black_level_s + scene·(D_max - B_s)/W`` below saturation. With
    ``full_scale_electrons=E`` the same ``E`` is used at every site (an exposure setting:
    a scene value of 1 yields ``E`` electrons, which clip if ``g·E`` exceeds the range).

    Noise model: Poisson shot noise, Gaussian read noise in electrons, ADC quantisation
    at the native bit depth; no dark current, fixed-pattern noise or non-linearity.

    Parameters
    ----------
    scene
        Float radiance ``(3, H, W)`` (channels R, G, B of the filters) or batch
        ``(N, 3, H, W)``; fraction of the sensor's full scale above black, normally in
        [0, 1]; values above 1 overexpose and saturate; negative values are rejected.
        H and W even. Not modified.
    camera
        :class:`~ispkit.camera.Camera`, a registered camera name, a YAML path or a mapping.
    seed
        See the module's *Seeding* section.
    gain
        Conversion gain in DN/e⁻ at the camera's bit depth; overrides the camera's.
    read_noise
        Read noise in e⁻ (may be 0); overrides the camera's.
    full_scale_electrons
        Electrons for a scene value of 1 (> 0); default ``E_s`` above.

    Returns
    -------
    numpy.ndarray
        float64 mosaic ``(H, W)``, or ``(N, H, W)`` for a batch, normalised to [0, 1].
    """
    where = "acquire"
    if not isinstance(scene, np.ndarray):
        raise InputError(f"{where} scene: expected a numpy array, got {type(scene).__name__}")
    check_float(scene, f"{where} scene")
    if scene.ndim not in (3, 4) or scene.shape[-3] != 3:
        raise InputError(f"{where} scene: expected a radiance image (3, H, W) with channels R, G, B (or a batch (N, 3, H, W)), got shape {scene.shape}")
    batched = scene.ndim == 4
    h, w = scene.shape[-2:]
    if h % 2 or w % 2 or h == 0 or w == 0:
        raise InputError(
            f"{where} scene: height and width must be even and non-zero so that the mosaic holds whole 2×2 CFA blocks; got {h}×{w} (crop one row or column)"
        )
    check_finite(scene, f"{where} scene")
    if scene.size and float(np.min(scene)) < 0:
        raise InputError(f"{where} scene: radiance must be >= 0 (fraction of full scale above black), got a minimum of {float(np.min(scene)):g}")
    cam = _camera(camera)
    g, sigma = _noise_model(cam, gain, read_noise, where)
    _check_seed(seed, where)
    black = _black_dn(cam, (h, w))
    full_scale = (_max_dn(cam) - black) / g if full_scale_electrons is None else _positive(full_scale_electrons, "full_scale_electrons (e⁻)", where)
    masks = masks_numpy((h, w), cam.pattern)

    scenes = scene if batched else scene[None]
    out = np.empty((len(scenes), h, w), dtype=np.float64)
    for image, rng, dst in zip(scenes, _generators(seed, len(scenes) if batched else None), out, strict=True):
        radiance = np.where(masks, image, 0.0).sum(axis=0, dtype=np.float64)
        electrons = rng.poisson(radiance * full_scale).astype(np.float64)
        if sigma > 0:
            electrons += rng.normal(0.0, sigma, size=electrons.shape)
        dst[...] = electrons * g + black
        _digitise(dst, cam)
    return out if batched else out[0]


# -- photon transfer -----------------------------------------------------------------------


def photon_transfer(flats: np.ndarray, camera: Camera | str | Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    r"""Mean signal and temporal variance of pairs of flat fields (EMVA 1288 photon transfer).

    For each pair ``(A, B)`` of flat fields taken at the same illumination, in stored DN
    (``y = x · white_level``) with the per-site black level ``B_s`` subtracted:

    .. math::

        \mu = \tfrac12 (\langle y_A - B \rangle + \langle y_B - B \rangle), \qquad
        \sigma^2 = \tfrac{1}{2}\,\big\langle \big((y_A - y_B) - \langle y_A - y_B\rangle\big)^2 \big\rangle

    Differencing the two frames removes the fixed-pattern part (PRNU, DSNU, scene
    structure), leaving twice the temporal variance (EMVA Standard 1288, Release 4.0,
    "Mean and variance"). All pixels of all CFA sites are pooled; this is exact for
    white light and stays on the photon-transfer line for coloured light because the
    variance is linear in the mean. Keep the flats below saturation: clipped pixels bend
    the curve (a :class:`UserWarning` says when a frame touches the largest stored number).

    Parameters
    ----------
    flats
        Normalised float pairs ``(K, 2, H, W)`` (``K`` illumination levels), or one pair
        ``(2, H, W)``; H and W even. Not modified.
    camera
        The camera that took them (black level, white level, bit depth).

    Returns
    -------
    means, variances : numpy.ndarray
        Two float64 arrays of length ``K``: mean signal above black in stored DN and
        temporal variance in DN². Feed them to :func:`fit_gain`.
    """
    where = "photon_transfer flats"
    if not isinstance(flats, np.ndarray):
        raise InputError(f"{where}: expected a numpy array, got {type(flats).__name__}")
    check_float(flats, where)
    if flats.ndim not in (3, 4) or flats.shape[-3] != 2:
        raise InputError(f"{where}: expected pairs of flat fields (K, 2, H, W) or one pair (2, H, W), got shape {flats.shape}")
    pairs = flats if flats.ndim == 4 else flats[None]
    check_mosaic(pairs.reshape(-1, *pairs.shape[-2:]), where, batched=True)
    if pairs.size == 0:
        raise InputError(f"{where}: no flat fields (shape {flats.shape})")
    check_finite(pairs, where)
    cam = _camera(camera)
    black = _black_dn(cam, pairs.shape[-2:])
    top = _max_dn(cam)
    means = np.empty(len(pairs))
    variances = np.empty(len(pairs))
    for k, (a, b) in enumerate(pairs):
        ya = a.astype(np.float64) * cam.white_level
        yb = b.astype(np.float64) * cam.white_level
        saturated = int(np.count_nonzero(ya >= top) + np.count_nonzero(yb >= top))
        if saturated:
            warnings.warn(
                f"photon_transfer: pair {k} has {saturated} saturated pixel(s); clipping bends the photon-transfer curve, keep the flats below saturation",
                UserWarning,
                stacklevel=2,
            )
        means[k] = 0.5 * (np.mean(ya - black) + np.mean(yb - black))
        variances[k] = 0.5 * np.var(ya - yb)
    return means, variances


def fit_gain(means: Any, variances: Any) -> float:
    r"""Slope of the photon-transfer line: the conversion gain on the numbers measured.

    Least squares fit of ``variance = K · mean + c`` (EMVA Standard 1288: ``σ_y² = K²σ_d² +
    σ_q² + K (μ_y - μ_y.dark)``). For shot-noise-limited data in DN the slope ``K`` is the
    conversion gain in **DN/e⁻** (= 1 / (e⁻ per DN)) on the numbers that were measured:
    on stored, left-justified numbers it is ``Camera.stored_gain`` (drone: 8.448 DN/e⁻
    on the 16-bit numbers = 16 × 0.528 DN/e⁻ at 12 bit); divide by
    ``camera.justification`` for the gain at the native bit depth.

    Parameters
    ----------
    means
        Mean signals above black in DN, e.g. from :func:`photon_transfer`.
    variances
        Temporal variances in DN², same length (at least two distinct means).

    Returns
    -------
    float
        The slope in DN/e⁻.

    >>> fit_gain([10.0, 20.0, 40.0], [30.0, 50.0, 90.0])
    2.0
    """
    try:
        m = np.asarray(means, dtype=np.float64)
        v = np.asarray(variances, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(
            f"fit_gain: expected two 1-d sequences of numbers (means in DN, variances in DN²), got {type(means).__name__} and {type(variances).__name__}"
        ) from None
    if m.ndim != 1 or v.shape != m.shape:
        raise InputError(f"fit_gain: means and variances must be 1-d of the same length, got shapes {m.shape} and {v.shape}")
    if not (np.all(np.isfinite(m)) and np.all(np.isfinite(v))):
        raise InputError("fit_gain: means and variances must be finite")
    if m.size < 2 or np.ptp(m) == 0:
        raise InputError(f"fit_gain: need at least two different mean levels to fit a slope, got means {m.tolist()}")
    dm = m - m.mean()
    return float(np.dot(dm, v - v.mean()) / np.dot(dm, dm))
