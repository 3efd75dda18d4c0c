"""The raw-domain corruption ``defocus``: the lens's Airy PSF with a focus error, registered through ``ispkit_raw_corruptions``.

The PSF is this plugin's pixel-integrated Airy pattern with the Gaussian defocus
approximation (:func:`~ispkit_plugin_optics.psf.airy_psf_numpy`: blur circle of radius
``NA · |Δz|``, Gaussian of ``σ_d = NA |Δz| / 2``), one per colour at its wavelength, and the
mosaic is blurred per CFA colour by normalised convolution exactly as the ``lens`` stage
does (:func:`~ispkit_plugin_optics.lens.lens_blur_numpy`).

Calibration. A focus error means little without the optics: the same 1 µm is a blur of
ten pixels under a 0.95 NA objective and nothing for a drone camera. The severities are
therefore focus errors in units of the depth of field ``λ_G / NA²`` (``λ_G`` the green
wavelength), ``defocus_dof`` = 0.5, 1, 2, 3 and 4, turned into micrometres for the camera
at hand: ``Δz = defocus_dof · λ_G / NA²``. The blur then grows by ``σ_d = defocus_dof ·
λ_G / (2 NA)`` per unit, the same number of pixels for cameras sampled alike: 1.70 px per
unit for the microscope (0.1625 µm pixels, NA 0.95, 525 nm; Δz = 0.29 … 2.33 µm) and
1.75 px for the drone (2.4 µm pixels, image-side NA 1/(2·8), Δz = 67 … 538 µm on the
sensor side). ``defocus_um`` gives Δz directly instead.

The optics are read from the camera (:func:`camera_optics`): the numerical aperture from
``optics["numerical_aperture"]``, else ``1 / (2 · optics["f_number"])`` (image side); the
pixel in the plane the NA refers to from ``camera.pixel_size`` (object plane), else
``optics["pixel_pitch_um"] / optics.get("magnification", 1)``; the R, G, B wavelengths
from ``optics["wavelength_red_nm"]`` etc., else :data:`~ispkit_plugin_optics.psf.WAVELENGTHS_NM`.
The PSF window's half-width is ``max(4, ⌈3.5 σ⌉)`` pixels, ``σ`` the wider Gaussian
equivalent, so that it holds the blur at every severity. Both backends; the torch one is
differentiable in ``raw`` and in ``defocus_dof`` / ``defocus_um``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ispkit.camera import Camera
from ispkit.errors import InputError
from ispkit.raw_corruptions.base import Quantity, RawCorruption

from .lens import lens_blur, lens_blur_numpy
from .psf import WAVELENGTHS_NM, ZHANG_SIGMA, airy_psf, airy_psf_numpy

__all__ = ["DEFOCUS", "Optics", "camera_optics", "defocus", "defocus_numpy"]

_SUPERSAMPLE = 5
_WAVELENGTH_KEYS = ("wavelength_red_nm", "wavelength_green_nm", "wavelength_blue_nm")


@dataclass(frozen=True)
class Optics:
    """What the PSF needs of a camera: numerical aperture, pixel size in the plane the NA refers to (µm), R/G/B wavelengths (nm)."""

    na: float
    pixel_um: float
    wavelengths_nm: tuple[float, float, float]

    @property
    def depth_of_field_um(self) -> float:
        """``λ_G / NA²`` in µm: one unit of ``defocus_dof``."""
        return self.wavelengths_nm[1] * 1e-3 / self.na**2

    def radius(self, defocus_um: float) -> int:
        """Half-width in pixels of a PSF window holding the blur: ``max(4, ⌈3.5 σ⌉)``, σ the Gaussian equivalent at the longest wavelength."""
        sigma_um = math.hypot(ZHANG_SIGMA * max(self.wavelengths_nm) * 1e-3 / self.na, self.na * abs(defocus_um) / 2.0)
        return max(4, math.ceil(3.5 * sigma_um / self.pixel_um))


def camera_optics(camera: Camera) -> Optics:
    """The :class:`Optics` of ``camera`` (module docstring); a camera without an NA or a pixel size is an :class:`~ispkit.errors.InputError`.

    >>> from ispkit.camera import Camera
    >>> camera_optics(Camera.get("drone"))
    Optics(na=0.0625, pixel_um=2.4, wavelengths_nm=(620.0, 525.0, 450.0))
    """
    optics = camera.optics
    if "numerical_aperture" in optics:
        na = float(optics["numerical_aperture"])
    elif "f_number" in optics:
        na = 1.0 / (2.0 * float(optics["f_number"]))
    else:
        na = math.nan
    if camera.pixel_size is not None:
        pixel = float(camera.pixel_size)
    elif "pixel_pitch_um" in optics:
        pixel = float(optics["pixel_pitch_um"]) / float(optics.get("magnification", 1.0))
    else:
        pixel = math.nan
    if not (na > 0 and pixel > 0):
        raise InputError(
            f"defocus: camera {camera.name!r} needs optics numerical_aperture (or f_number) and a pixel size (pixel_size, or optics "
            f"pixel_pitch_um with magnification); it has optics {dict(optics)} and pixel_size {camera.pixel_size}"
        )
    wavelengths = tuple(float(optics.get(key, default)) for key, default in zip(_WAVELENGTH_KEYS, WAVELENGTHS_NM, strict=True))
    return Optics(na, pixel, wavelengths)  # type: ignore[arg-type]


def _defocus_um(optics: Optics, defocus_dof: Any, defocus_um: Any) -> Any:
    return defocus_um if defocus_um is not None else defocus_dof * optics.depth_of_field_um


def defocus_numpy(raw: np.ndarray, camera: Camera, rng: np.random.Generator, *, defocus_dof: float, defocus_um: float | None) -> np.ndarray:
    """Blur the batch ``(N, H, W)`` by the defocused Airy PSFs of the camera's optics, per CFA colour."""
    optics = camera_optics(camera)
    dz = _defocus_um(optics, defocus_dof, defocus_um)
    kernels = airy_psf_numpy(optics.na, 1.0, optics.pixel_um, np.array(optics.wavelengths_nm), dz, radius=optics.radius(dz), supersample=_SUPERSAMPLE)
    return np.stack([lens_blur_numpy(image, kernels, camera.pattern) for image in raw])


def defocus(raw: torch.Tensor, camera: Camera, generator: torch.Generator, *, defocus_dof: Any, defocus_um: Any) -> torch.Tensor:
    """Torch twin of :func:`defocus_numpy`; differentiable in ``raw`` and the focus error."""
    optics = camera_optics(camera)
    like = {"dtype": raw.dtype, "device": raw.device}
    dz = _defocus_um(optics, torch.as_tensor(defocus_dof, **like), None if defocus_um is None else torch.as_tensor(defocus_um, **like))
    na = torch.tensor(optics.na, **like)
    kernels = airy_psf(na, 1.0, optics.pixel_um, optics.wavelengths_nm, dz, radius=optics.radius(float(dz.detach())), supersample=_SUPERSAMPLE)
    return lens_blur(raw, kernels, camera.pattern)


DEFOCUS = RawCorruption(
    name="defocus",
    family="blur",
    summary="a focus error: the lens's Airy PSF with Gaussian defocus blur (ispkit-plugin-optics), per CFA colour",
    quantities=(
        Quantity("defocus_dof", "λ/NA²", "focus error in depths of field λ_G / NA² of the camera's optics", low=0.0, high=1000.0),
        Quantity("defocus_um", "µm", "focus error Δz in µm, on the side the NA refers to; from-dof: defocus_dof · λ_G / NA²", 0.0, 1e5, none_means="from-dof"),
    ),
    levels=tuple({"defocus_dof": d, "defocus_um": None} for d in (0.5, 1.0, 2.0, 3.0, 4.0)),
    torch=defocus,
    numpy=defocus_numpy,
    differentiable=("defocus_dof", "defocus_um"),
)
