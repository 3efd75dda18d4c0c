"""The ``lens`` stage: optical blur by a physical point-spread function, on the raw mosaic.

Physically the lens blurs the scene *before* the colour filter array samples it: each
colour plane of the irradiance is convolved with that colour's PSF, and the sensor then
keeps one colour per pixel. A raw pipeline only has the mosaic, i.e. every colour known
at its own CFA sites only. The stage therefore blurs each colour plane from the samples
it has, by **normalised convolution** (Knutsson & Westin, 1993) on the full-resolution
sensor grid, and re-mosaics:

.. math:: y = \\sum_{c \\in \\{R,G,B\\}} m_c \\cdot \\frac{k_c \\ast (m_c\\, x)}{k_c \\ast m_c}

``x`` the mosaic ``(H, W)``, ``m_c`` the CFA mask of colour ``c`` (1 where the sensor
samples ``c``), ``k_c`` the PSF of colour ``c`` (:mod:`.psf`) sampled at the sensor's
pixel pitch, ``∗`` the convolution ``scipy.ndimage.convolve(·, mode="reflect")`` (torch:
:func:`ispkit.filters.convolve2d`, the exact twin, borders included). At a site of colour
``c`` the output is the PSF-weighted mean of the ``c`` samples around it, with the
weights the PSF takes at their distances, renormalised over the samples present. So

* a flat colour plane stays flat (no loss of energy at the sparse sites),
* each colour is blurred only by its own wavelength's PSF, and only its own samples mix
  (no colour crosstalk), and
* the denominator is only used at the colour's own sites, where it is at least the
  kernel's centre weight (positive for every PSF of :mod:`.psf`), and
* the sampling density of the CFA is respected: the blur acts as on the continuous plane
  restricted to that colour's sub-lattice (exact for R and B, which are full 2×2
  lattices, and for the green quincunx).

What it is not: a blur of the true scene, which the mosaic no longer contains; detail
finer than the CFA's sampling of a colour is already aliased in the input. For a
simulation from a full-resolution scene, blur each scene channel with
:func:`~ispkit_plugin_optics.psf.airy_psf_numpy` first and mosaic afterwards.

Borders: scipy's ``reflect`` (``b a | a b c d | d c``), in mask and data alike, so every
colour's reflected samples stay its own. The convolution is ispkit's own
(:mod:`ispkit.raw_corruptions.blur`, which the raw corruptions use with one PSF for all
colours): the plugin passes one PSF per colour.
"""

from __future__ import annotations

from ispkit.raw_corruptions.blur import cfa_blur, cfa_blur_numpy
from ispkit.stages.base import Param, Stage

from .psf import WAVELENGTHS_NM, airy_psf, airy_psf_numpy, gaussian_psf, gaussian_psf_numpy

__all__ = ["lens_blur_numpy", "lens_blur", "AiryLens", "GaussianLens", "MICROSCOPY_PIXEL_PITCH_UM"]

MICROSCOPY_PIXEL_PITCH_UM = 6.5
"""PCO edge 5.5 pixel pitch (manufacturer datasheet; not stated in the paper or in ispkit's camera)."""

lens_blur_numpy = cfa_blur_numpy
"""Blur the mosaic ``raw`` ``(H, W)`` by the R, G, B kernels ``(3, k, k)``: ispkit's normalised per-colour
convolution (:func:`ispkit.raw_corruptions.blur.cfa_blur_numpy`, see the module docstring)."""

lens_blur = cfa_blur
"""Torch twin of :func:`lens_blur_numpy` on ``(N, H, W)``; differentiable in ``raw`` and ``kernels``
(:func:`ispkit.raw_corruptions.blur.cfa_blur`)."""


_COMMON = (
    Param("na", (), 0.95, "numerical aperture of the objective, object side (microscopy: 0.95, published)", bounds=(1e-3, 1.7)),
    Param("magnification", (), 40.0, "lateral magnification object → sensor (microscopy: 40, published; 1 for a camera in image space)", bounds=(1e-3, 1e4)),
    Param(
        "pixel_pitch_um",
        (),
        MICROSCOPY_PIXEL_PITCH_UM,
        "sensor pixel pitch in µm (microscopy: 6.5, PCO edge 5.5 datasheet; drone: 2.4, published)",
        bounds=(0.1, 100.0),
    ),
    Param("defocus_um", (), 0.0, "object-side focus error Δz in µm (blur circle radius NA·|Δz|, Gaussian approximation)", bounds=(-1000.0, 1000.0)),
    Param("wavelengths_nm", (3,), WAVELENGTHS_NM, "R, G, B wavelengths in nm (Raw-Microscopy filters 620/525/450, published)", bounds=(200.0, 2000.0)),
    Param("radius", (), 4, "PSF kernel half-width in pixels: the kernel is (2·radius + 1)²", bounds=(1, 32), differentiable=False, dtype=int),
)


def _airy_numpy(raw, na, magnification, pixel_pitch_um, defocus_um, wavelengths_nm, radius, supersample, pattern):
    kernels = airy_psf_numpy(na, magnification, pixel_pitch_um, wavelengths_nm, defocus_um, radius=radius, supersample=supersample)
    return lens_blur_numpy(raw, kernels, pattern)


def _airy_torch(raw, na, magnification, pixel_pitch_um, defocus_um, wavelengths_nm, radius, supersample, pattern):
    kernels = airy_psf(na, magnification, pixel_pitch_um, wavelengths_nm, defocus_um, radius=radius, supersample=supersample)
    return lens_blur(raw, kernels, pattern)


def _gaussian_numpy(raw, na, magnification, pixel_pitch_um, defocus_um, wavelengths_nm, radius, pattern):
    kernels = gaussian_psf_numpy(na, magnification, pixel_pitch_um, wavelengths_nm, defocus_um, radius=radius)
    return lens_blur_numpy(raw, kernels, pattern)


def _gaussian_torch(raw, na, magnification, pixel_pitch_um, defocus_um, wavelengths_nm, radius, pattern):
    kernels = gaussian_psf(na, magnification, pixel_pitch_um, wavelengths_nm, defocus_um, radius=radius)
    return lens_blur(raw, kernels, pattern)


class AiryLens(Stage):
    """Blur the raw mosaic by the pixel-integrated Airy PSF of a diffraction-limited lens, per CFA colour."""

    kind = "lens"
    method = "airy"
    takes = "raw"
    gives = "raw"
    cfa_aware = True
    params = (
        *_COMMON,
        Param(
            "supersample", (), 5, "point evaluations per pixel and axis when integrating the PSF over a pixel", bounds=(1, 15), differentiable=False, dtype=int
        ),
    )
    numpy = staticmethod(_airy_numpy)
    torch = staticmethod(_airy_torch)


class GaussianLens(Stage):
    """Blur the raw mosaic by the Gaussian approximation (σ = 0.21 λ/NA) of the Airy PSF, per CFA colour."""

    kind = "lens"
    method = "gaussian"
    takes = "raw"
    gives = "raw"
    cfa_aware = True
    params = _COMMON
    numpy = staticmethod(_gaussian_numpy)
    torch = staticmethod(_gaussian_torch)
