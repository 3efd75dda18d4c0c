"""ispkit-plugin-optics: a physically based lens stage for ispkit.

Adds the stage kind ``lens`` (methods ``airy`` and ``gaussian``) and the raw-domain
corruption ``defocus`` through the ``ispkit`` entry-point group; see :mod:`.psf` for the
point-spread functions, :mod:`.lens` for the stage and :mod:`.defocus` for the corruption.
"""

from __future__ import annotations

from .lens import AiryLens, GaussianLens, lens_blur, lens_blur_numpy
from .psf import (
    WAVELENGTHS_NM,
    airy_psf,
    airy_psf_numpy,
    gaussian_psf,
    gaussian_psf_numpy,
    gaussian_sigma_um,
)

__all__ = [
    "WAVELENGTHS_NM",
    "airy_psf",
    "airy_psf_numpy",
    "gaussian_psf",
    "gaussian_psf_numpy",
    "gaussian_sigma_um",
    "AiryLens",
    "GaussianLens",
    "lens_blur",
    "lens_blur_numpy",
]
__version__ = "0.1.0"
