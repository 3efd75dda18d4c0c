"""Point-spread functions of a diffraction-limited lens, sampled on the sensor grid.

Two models, each in NumPy (the reference, float64) and in torch (differentiable in the
numerical aperture, the magnification, the pixel pitch, the wavelengths and the defocus):

* **Airy** (:func:`airy_psf_numpy`, :func:`airy_psf`): the in-focus intensity PSF of an
  aberration-free lens with a circular pupil under incoherent illumination,

  .. math:: I(r) = I_0 \\left[\\frac{2 J_1(v)}{v}\\right]^2, \\qquad v = \\frac{2\\pi\\,\\mathrm{NA}\\,r}{\\lambda},

  with ``r`` measured in the **object** (sample) plane: one sensor pixel spans
  ``pixel_pitch_um / magnification`` µm there. Its first zero lies at
  ``r = 0.61 λ / NA`` (``v = 3.8317``). Each kernel pixel is the mean of
  ``supersample × supersample`` point evaluations spread evenly over the pixel's
  area (the pixel integrates the light falling on it); the kernel is then normalised
  to sum 1 over its ``(2 radius + 1)²`` window (the energy outside the window is dropped).
* **Gaussian** (:func:`gaussian_psf_numpy`, :func:`gaussian_psf`): the Gaussian
  approximation of the Airy core, ``σ = 0.21 λ / NA`` (Zhang, Zerubia & Olivo-Marin,
  "Gaussian approximations of fluorescence microscope point-spread function models",
  Applied Optics 46(10), 2007), integrated exactly over each pixel with ``erf``.

**Defocus** (both models) is an approximation, not a defocused pupil: a lens focused
``Δz`` away from the object spreads each point over a geometric blur circle of radius
``NA · |Δz|`` in the object plane (small-angle rays; ``tan(asin NA) ≈ NA``). That disc is
replaced by the Gaussian with the same second moment, ``σ_d = NA · |Δz| / 2``, and
convolved with the in-focus PSF: for ``gaussian`` the variances add,
``σ² = (0.21 λ / NA)² + σ_d²``; for ``airy`` the supersampled Airy pattern is convolved
with the Gaussian on the supersampling grid before the pixels are integrated. The
approximation ignores the diffraction rings of a defocused pupil; it is accurate when
the blur circle is small against or large against the Airy core, and qualitative in
between.

Wavelengths are per colour channel (R, G, B). :data:`WAVELENGTHS_NM` holds the
Raw-Microscopy filter centres published by Oala et al. (TMLR 2023, §3): 620, 525 and
450 nm for red, green and blue.

All lengths: µm, except wavelengths in nm.

>>> k = airy_psf_numpy(0.95, 40.0, 6.5, 525.0)
>>> k.shape, round(float(k.sum()), 12)
((9, 9), 1.0)
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy import special

from ispkit.errors import ParameterError

__all__ = [
    "WAVELENGTHS_NM",
    "AIRY_FIRST_ZERO",
    "ZHANG_SIGMA",
    "gaussian_sigma_um",
    "airy_psf_numpy",
    "airy_psf",
    "gaussian_psf_numpy",
    "gaussian_psf",
    "bessel_j1",
]

WAVELENGTHS_NM: tuple[float, float, float] = (620.0, 525.0, 450.0)
"""R, G, B wavelengths: the Raw-Microscopy filters (Oala et al., TMLR 2023, §3)."""

AIRY_FIRST_ZERO = 3.8317059702075125
"""First positive zero of J1; the Airy pattern's first dark ring is at v = 3.8317, r = 0.6098 λ / NA."""

ZHANG_SIGMA = 0.21
"""σ = 0.21 λ / NA: Gaussian approximation of the paraxial widefield PSF (Zhang et al. 2007)."""


def gaussian_sigma_um(na: float, wavelength_nm: float) -> float:
    """Standard deviation ``0.21 λ / NA`` in µm of the Gaussian approximating the Airy core.

    >>> round(gaussian_sigma_um(0.95, 525.0), 6)
    0.116053
    """
    return ZHANG_SIGMA * wavelength_nm * 1e-3 / na


def _check(radius: int, supersample: int) -> None:
    if not (isinstance(radius, int) and radius >= 0):
        raise ParameterError(f"radius must be a non-negative integer, got {radius!r}")
    if not (isinstance(supersample, int) and supersample >= 1):
        raise ParameterError(f"supersample must be a positive integer, got {supersample!r}")


def _check_optics(na, magnification, pixel_pitch_um, wavelength_nm) -> None:
    """Raise :class:`ParameterError` unless the optics are physical (positive, finite, NA < 1.7)."""

    def values(v):
        return np.asarray(v.detach().cpu() if isinstance(v, torch.Tensor) else v, dtype=np.float64)

    for name, value, high in (
        ("na", na, 1.7),
        ("magnification", magnification, np.inf),
        ("pixel_pitch_um", pixel_pitch_um, np.inf),
        ("wavelength_nm", wavelength_nm, np.inf),
    ):
        v = values(value)
        if not (np.all(np.isfinite(v)) and np.all(v > 0) and np.all(v <= high)):
            raise ParameterError(f"{name} must be positive and finite{' and at most 1.7' if name == 'na' else ''}, got {v.tolist()}")


def _fine_offsets(radius: int, supersample: int) -> np.ndarray:
    """Sample positions in pixel units along one axis: ``supersample`` per pixel, centred in sub-pixels."""
    pixels = np.arange(-radius, radius + 1, dtype=np.float64)
    sub = (np.arange(supersample, dtype=np.float64) + 0.5) / supersample - 0.5
    return (pixels[:, None] + sub[None, :]).reshape(-1)


# -- NumPy reference -----------------------------------------------------------------------


def _airy_numpy(v: np.ndarray) -> np.ndarray:
    small = np.abs(v) < 1e-6
    safe = np.where(small, 1.0, v)
    amplitude = np.where(small, 1.0 - v**2 / 8.0, 2.0 * special.j1(safe) / safe)
    return amplitude**2


def _defocus_matrix_numpy(fine_um: np.ndarray, sigma_um: float) -> np.ndarray:
    diff = fine_um[:, None] - fine_um[None, :]
    return np.exp(-0.5 * (diff / sigma_um) ** 2)


def _bin_normalise_numpy(fine: np.ndarray, radius: int, supersample: int) -> np.ndarray:
    k = 2 * radius + 1
    pixels = fine.reshape(*fine.shape[:-2], k, supersample, k, supersample).sum(axis=(-3, -1))
    return pixels / pixels.sum(axis=(-2, -1), keepdims=True)


def airy_psf_numpy(
    na: float,
    magnification: float,
    pixel_pitch_um: float,
    wavelength_nm: float | np.ndarray,
    defocus_um: float = 0.0,
    *,
    radius: int = 4,
    supersample: int = 5,
) -> np.ndarray:
    """Pixel-integrated Airy PSF ``(2r+1, 2r+1)``, or ``(C, 2r+1, 2r+1)`` for ``C`` wavelengths; each sums to 1.

    Parameters
    ----------
    na
        Numerical aperture (object side).
    magnification
        Lateral magnification object → sensor (1 for a camera working in image space).
    pixel_pitch_um
        Sensor pixel pitch in µm.
    wavelength_nm
        One wavelength or an array of them (one kernel each), nm.
    defocus_um
        Object-side focus error Δz in µm (Gaussian approximation, see module docstring).
    radius, supersample
        Kernel half-width in pixels and point evaluations per pixel and axis.
    """
    _check(radius, supersample)
    _check_optics(na, magnification, pixel_pitch_um, wavelength_nm)
    wavelengths = np.asarray(wavelength_nm, dtype=np.float64)
    lam = wavelengths.reshape(-1, 1, 1) * 1e-3
    pixel_um = float(pixel_pitch_um) / float(magnification)
    fine = _fine_offsets(radius, supersample) * pixel_um
    r = np.hypot(fine[:, None], fine[None, :])
    intensity = _airy_numpy(2.0 * np.pi * float(na) * r[None] / lam)
    sigma_d = float(na) * abs(float(defocus_um)) / 2.0
    if sigma_d > 0.0:
        g = _defocus_matrix_numpy(fine, sigma_d)
        intensity = g @ intensity @ g.T
    kernels = _bin_normalise_numpy(intensity, radius, supersample)
    return kernels.reshape(*wavelengths.shape, *kernels.shape[-2:])


def gaussian_psf_numpy(
    na: float,
    magnification: float,
    pixel_pitch_um: float,
    wavelength_nm: float | np.ndarray,
    defocus_um: float = 0.0,
    *,
    radius: int = 4,
) -> np.ndarray:
    """Pixel-integrated Gaussian PSF, σ² = (0.21 λ/NA)² + (NA |Δz| / 2)², shape as :func:`airy_psf_numpy`; sums to 1.

    Each pixel ``d`` gets ``Φ((d + ½) p / σ) − Φ((d − ½) p / σ)`` per axis (exact
    integral over the pixel), ``p`` the pixel size in the object plane.
    """
    _check(radius, 1)
    _check_optics(na, magnification, pixel_pitch_um, wavelength_nm)
    wavelengths = np.asarray(wavelength_nm, dtype=np.float64)
    lam = wavelengths.reshape(-1, 1) * 1e-3
    pixel_um = float(pixel_pitch_um) / float(magnification)
    sigma = np.sqrt((ZHANG_SIGMA * lam / float(na)) ** 2 + (float(na) * float(defocus_um) / 2.0) ** 2)
    d = np.arange(-radius, radius + 1, dtype=np.float64)
    scale = pixel_um / (np.sqrt(2.0) * sigma)
    w = 0.5 * (special.erf((d + 0.5) * scale) - special.erf((d - 0.5) * scale))
    kernels = w[:, :, None] * w[:, None, :]
    kernels = kernels / kernels.sum(axis=(-2, -1), keepdims=True)
    return kernels.reshape(*wavelengths.shape, *kernels.shape[-2:])


# -- torch, differentiable -----------------------------------------------------------------


def bessel_j1(v: torch.Tensor) -> torch.Tensor:
    """Bessel function J1 to float64 precision, differentiable to any order.

    ``torch.special.bessel_j1`` has no autograd formula and is only accurate to about
    5e-7 beyond ``v = 5`` (torch 2.x), so this evaluates Bessel's integral
    ``J1(v) = (1/π) ∫₀^π cos(τ − v sin τ) dτ`` by the trapezoidal rule. The integrand
    is smooth and periodic, so the rule converges geometrically once the number of
    nodes exceeds ``|v|``; ``M = 0.65 max|v| + 24`` intervals give ≤ 4e-15 against
    ``scipy.special.j1`` for ``|v| ≤ 200``.
    """
    vmax = float(v.detach().abs().max()) if v.numel() else 0.0
    m = max(32, int(0.65 * vmax) + 24)
    tau = torch.linspace(0.0, math.pi, m + 1, dtype=v.dtype, device=v.device)
    weights = torch.full((m + 1,), 1.0 / m, dtype=v.dtype, device=v.device)
    weights[0] = weights[-1] = 0.5 / m
    return (torch.cos(tau - v[..., None] * torch.sin(tau)) * weights).sum(-1)


def _airy(v: torch.Tensor) -> torch.Tensor:
    small = v.abs() < 1e-6
    safe = torch.where(small, torch.ones_like(v), v)
    amplitude = torch.where(small, 1.0 - v**2 / 8.0, 2.0 * bessel_j1(safe) / safe)
    return amplitude**2


def _bin_normalise(fine: torch.Tensor, radius: int, supersample: int) -> torch.Tensor:
    k = 2 * radius + 1
    pixels = fine.reshape(*fine.shape[:-2], k, supersample, k, supersample).sum(dim=(-3, -1))
    return pixels / pixels.sum(dim=(-2, -1), keepdim=True)


def _as(value, like: torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(value, dtype=like.dtype, device=like.device)


def airy_psf(
    na: torch.Tensor,
    magnification: torch.Tensor,
    pixel_pitch_um: torch.Tensor,
    wavelength_nm: torch.Tensor,
    defocus_um: torch.Tensor | float = 0.0,
    *,
    radius: int = 4,
    supersample: int = 5,
) -> torch.Tensor:
    """Torch twin of :func:`airy_psf_numpy`; differentiable in every tensor argument.

    The dtype and device are those of ``na`` (pass float64 tensors for the reference
    precision). At ``defocus_um == 0`` exactly the defocus blur is skipped, as its
    derivative there is zero (the blur variance grows with Δz²).
    """
    _check(radius, supersample)
    _check_optics(na, magnification, pixel_pitch_um, wavelength_nm)
    na = torch.as_tensor(na, dtype=torch.float64) if not isinstance(na, torch.Tensor) else na
    magnification, pixel_pitch_um, defocus_um = (_as(v, na) for v in (magnification, pixel_pitch_um, defocus_um))
    wavelengths = _as(wavelength_nm, na)
    lam = wavelengths.reshape(-1, 1, 1) * 1e-3
    pixel_um = pixel_pitch_um / magnification
    fine = _as(_fine_offsets(radius, supersample), na) * pixel_um
    # The Airy pattern depends on the radius only: evaluate it once per distinct radius
    # (about 1/8 of the grid), with integer squared radii in units of half a sub-pixel.
    ticks = np.rint(_fine_offsets(radius, supersample) * 2 * supersample).astype(np.int64)
    q_unique, index = np.unique(ticks[:, None] ** 2 + ticks[None, :] ** 2, return_inverse=True)
    r = torch.sqrt(_as(q_unique.astype(np.float64), na)) * (pixel_um / (2 * supersample))
    profile = _airy(2.0 * math.pi * na * r[None] / lam[:, :, 0])  # (C, U)
    intensity = profile[:, torch.as_tensor(index.reshape(ticks.size, ticks.size), device=na.device)]
    sigma_d = na * defocus_um.abs() / 2.0
    if float(sigma_d.detach()) > 0.0:
        diff = fine[:, None] - fine[None, :]
        g = torch.exp(-0.5 * (diff / sigma_d) ** 2)
        intensity = g @ intensity @ g.transpose(0, 1)
    else:
        intensity = intensity + 0.0 * defocus_um  # keep Δz in the graph (its gradient is 0 here)
    kernels = _bin_normalise(intensity, radius, supersample)
    return kernels.reshape(*wavelengths.shape, *kernels.shape[-2:])


def gaussian_psf(
    na: torch.Tensor,
    magnification: torch.Tensor,
    pixel_pitch_um: torch.Tensor,
    wavelength_nm: torch.Tensor,
    defocus_um: torch.Tensor | float = 0.0,
    *,
    radius: int = 4,
) -> torch.Tensor:
    """Torch twin of :func:`gaussian_psf_numpy`; differentiable in every tensor argument (smooth in Δz, also at 0)."""
    _check(radius, 1)
    _check_optics(na, magnification, pixel_pitch_um, wavelength_nm)
    na = torch.as_tensor(na, dtype=torch.float64) if not isinstance(na, torch.Tensor) else na
    magnification, pixel_pitch_um, defocus_um = (_as(v, na) for v in (magnification, pixel_pitch_um, defocus_um))
    wavelengths = _as(wavelength_nm, na)
    lam = wavelengths.reshape(-1, 1) * 1e-3
    pixel_um = pixel_pitch_um / magnification
    sigma = torch.sqrt((ZHANG_SIGMA * lam / na) ** 2 + (na * defocus_um / 2.0) ** 2)
    d = torch.arange(-radius, radius + 1, dtype=na.dtype, device=na.device)
    scale = pixel_um / (math.sqrt(2.0) * sigma)
    w = 0.5 * (torch.special.erf((d + 0.5) * scale) - torch.special.erf((d - 0.5) * scale))
    kernels = w[:, :, None] * w[:, None, :]
    kernels = kernels / kernels.sum(dim=(-2, -1), keepdim=True)
    return kernels.reshape(*wavelengths.shape, *kernels.shape[-2:])
