"""Flat-field correction: a lens-shading gain map estimated from images of a uniform scene.

Uneven illumination is the first thing a microscopist corrects: the condenser lights the
field unevenly, the objective vignettes, and dust and sensor sensitivity vary across the
chip. The standard correction (Young 2000) images a uniform, featureless specimen (the
*flat*, ``F``) and the sensor in the dark (``D``), and corrects every image ``R`` as::

    C = (R − D) · m / (F − D)        m = the mean of F − D

:func:`estimate` computes the gain ``m / (F − D)`` per 2×2 CFA site (``m`` the site's own
mean, so each colour channel keeps its level and white balance stays the
``white_balance`` stage's job) and represents it as the ``(4, 33, 33)`` map of the
``lens_shading`` stage (:mod:`ispkit.stages.lens_shading`, method ``gain_map``):
the grid whose bilinear interpolation fits the per-pixel gain best in the least-squares
sense, with a second-difference penalty that smooths out the noise of the flats and lets
grid points the image does not reach (a mosaic narrower than the grid) continue the map
linearly. The grid spans the image (origin 0, spacing 1/32): the map follows illumination
that varies smoothly over the field and leaves out finer structure (noise, dust,
pixel-to-pixel sensitivity), which a gain map of this kind is not meant to hold. :func:`with_gain_map`
puts the map into a camera, which the stage then reads by default.

References
----------
I. T. Young, "Shading correction: compensation for illumination and sensor
inhomogeneities", *Current Protocols in Cytometry* 2.11 (2000),
doi:10.1002/0471142956.cy0211s14. Adobe, *Digital Negative (DNG) Specification*
1.4.0.0, chapter 7, GainMap (the map's interpolation).

Examples
--------
>>> import numpy as np
>>> from ispkit.camera import Camera
>>> yy, xx = np.mgrid[0:64, 0:96] / 64
>>> flats = np.stack([0.5 * (1 - 0.3 * ((yy - 0.5) ** 2 + (xx - 0.75) ** 2))] * 4)   # brightest in the middle
>>> gains = estimate(flats)
>>> gains.shape, bool(gains[:, 16, 16].mean() < 1 < gains[:, 0, 0].mean())       # corners are lifted
((4, 33, 33), True)
>>> camera = with_gain_map(Camera(name="scope"), gains)
>>> camera.shading_spacing
(0.03125, 0.03125)
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from .arrays import check_finite, check_mosaic
from .camera import SHADING_POINTS, Camera
from .cfa import site_map_numpy
from .errors import InputError

__all__ = ["estimate", "with_gain_map", "cropped_shading", "design_matrix", "SPACING"]

SPACING = 1.0 / (SHADING_POINTS - 1)
"""Spacing of the estimated map's points in relative coordinates: the grid spans the image from edge to edge."""


def design_matrix(size: int, offset: int, points: int = SHADING_POINTS, origin: float = 0.0, spacing: float = SPACING) -> np.ndarray:
    """The bilinear weights ``(size // 2, points)`` with which the ``gain_map`` stage reads the map at every second pixel from ``offset``.

    Row ``i`` holds the weights of the grid points for pixel ``offset + 2 i`` (centre at
    relative position ``(offset + 2 i + 0.5) / size``): at most two non-zero, summing to
    1, the nearest edge point alone beyond the grid. So a site's gain plane is
    ``design_matrix(H, dr) @ gains[k] @ design_matrix(W, dc).T``.

    >>> design_matrix(4, 0, points=3, spacing=0.5).tolist()     # pixels 0 and 2 of 4: positions 1/8 and 5/8
    [[0.75, 0.25, 0.0], [0.0, 0.75, 0.25]]
    """
    t = np.clip(((np.arange(offset, size, 2) + 0.5) / size - origin) / spacing, 0.0, points - 1.0)
    i = np.minimum(np.floor(t), points - 2).astype(int)
    weights = np.zeros((t.size, points))
    weights[np.arange(t.size), i] = 1.0 - (t - i)
    weights[np.arange(t.size), i + 1] += t - i
    return weights


def _smoothing(points: int) -> np.ndarray:
    """``DᵀD`` of the second differences along one grid axis (its null space: the linear functions)."""
    d = np.diff(np.eye(points), n=2, axis=0)
    return d.T @ d


def _fit(target: np.ndarray, rows: np.ndarray, cols: np.ndarray, smoothness: float) -> np.ndarray:
    """The grid ``G`` minimising ``‖rows · G · colsᵀ − target‖²`` along each axis, with the second-difference penalty."""
    left = rows.T @ rows
    right = cols.T @ cols
    left = left + smoothness * np.trace(left) / left.shape[0] * _smoothing(left.shape[0])
    right = right + smoothness * np.trace(right) / right.shape[0] * _smoothing(right.shape[0])
    return np.linalg.solve(left, np.linalg.solve(right, (rows.T @ target @ cols).T).T)


def estimate(
    frames: np.ndarray,
    camera: Camera | None = None,
    *,
    dark: np.ndarray | None = None,
    smoothness: float = 1.0,
) -> np.ndarray:
    """The flat-field gain map ``(4, 33, 33)`` of flat frames, for ``Camera.shading_map`` and the ``lens_shading`` stage.

    Parameters
    ----------
    frames
        Flat frames: raw mosaics ``(H, W)`` or a stack ``(N, H, W)`` normalised as
        :func:`ispkit.io.read_raw` returns them, of a uniform, featureless scene (an empty
        slide, a diffuser), well exposed and not saturated. They are averaged first.
    camera
        Its per-site black level is subtracted when ``dark`` is not given (none without a camera).
    dark
        Dark frames (``(H, W)`` or ``(N, H, W)``, averaged), subtracted instead of the black level.
    smoothness
        Weight of the second-difference penalty relative to the data (> 0): larger values
        give a smoother map. The default, about as much weight on smoothness as on the
        pixels around each grid point, halves the estimation error of a smooth
        illumination from noisy flats compared with a pure fit (1e-3); lower it for
        illumination with structure finer than about a tenth of the field.

    Returns
    -------
    numpy.ndarray
        ``(4, 33, 33)`` positive gains, one map per 2×2 CFA site (row-major), for points
        at relative positions ``i / 32``: the least-squares fit of ``mean_k / (F − D)``
        over the pixels of site ``k``. Put it into a camera with :func:`with_gain_map`.

    Raises
    ------
    InputError
        Frames that are not finite float mosaics of even size, a dark frame of another
        size, a non-positive ``smoothness``, a site whose mean flat signal is not above
        black, or a fit with non-positive gains (pixels at or below black).
    """
    flat = _mean_frame(frames, "flatfield.estimate frames")
    if dark is not None:
        background = _mean_frame(dark, "flatfield.estimate dark")
        if background.shape != flat.shape:
            raise InputError(
                f"flatfield.estimate: dark frames are {background.shape[0]}×{background.shape[1]}, the flat frames {flat.shape[0]}×{flat.shape[1]}"
            )
        flat = flat - background
    elif camera is not None:
        flat = flat - site_map_numpy(np.asarray(camera.black_level), flat.shape)
    if not (isinstance(smoothness, (int, float)) and np.isfinite(smoothness) and smoothness > 0):
        raise InputError(f"flatfield.estimate: smoothness must be a positive number, got {smoothness!r}")
    h, w = flat.shape
    gains = []
    for site in range(4):
        dr, dc = divmod(site, 2)
        plane = flat[dr::2, dc::2]
        mean = float(plane.mean())
        if mean <= 0:
            raise InputError(f"flatfield.estimate: CFA site {site} of the flat frames has mean signal {mean:.3g} above black; expected a bright flat field")
        target = mean / np.where(plane > 0, plane, np.nan)
        if np.isnan(target).any():
            raise InputError(
                f"flatfield.estimate: {int(np.isnan(target).sum())} pixel(s) of CFA site {site} are at or below black; a flat field must be bright everywhere"
            )
        gains.append(_fit(target, design_matrix(h, dr), design_matrix(w, dc), smoothness))
    result = np.stack(gains)
    if np.any(result <= 0):
        raise InputError(
            f"flatfield.estimate: the fitted map has {int(np.sum(result <= 0))} non-positive gain(s); the flat frames are too dark or too uneven to fit"
        )
    return result


def _mean_frame(frames: Any, where: str) -> np.ndarray:
    array = np.asarray(frames)
    if array.ndim not in (2, 3) or not np.issubdtype(array.dtype, np.floating):
        raise InputError(f"{where}: expected float raw mosaics (H, W) or (N, H, W), got {array.dtype} of shape {array.shape}")
    check_mosaic(array, where, batched=array.ndim == 3)
    if array.size == 0:
        raise InputError(f"{where}: no frames (shape {array.shape})")
    check_finite(array, where)
    return array.astype(np.float64).mean(axis=0) if array.ndim == 3 else array.astype(np.float64)


def with_gain_map(camera: Camera, gains: np.ndarray) -> Camera:
    """``camera`` with ``gains`` (from :func:`estimate`) as its lens-shading map spanning the image (origin 0, spacing 1/32)."""
    shading_map = tuple(tuple(tuple(float(g) for g in row) for row in site) for site in np.asarray(gains, dtype=np.float64))
    return dataclasses.replace(camera, shading_map=shading_map, shading_origin=(0.0, 0.0), shading_spacing=(SPACING, SPACING))


def cropped_shading(camera: Camera, box: tuple[int, int, int, int], shape: tuple[int, int]) -> Camera:
    """``camera`` with its lens shading re-expressed for the crop ``box = (top, left, bottom, right)`` of a ``shape`` mosaic.

    The shading map and the vignette centre are in coordinates relative to the image, so a
    crop moves them: the map's origin becomes ``(origin · H − top) / h`` and its spacing
    ``spacing · H / h`` (per axis, ``h`` the cropped size), which gives every remaining pixel
    the same gain as before; the vignette centre moves likewise and its coefficients are
    rescaled by ``(R' / R)^(2i+2)`` for the new distance ``R'`` to the farthest corner, so the
    gain ``1 + Σ kᵢ r^(2i+2)`` is unchanged. A camera with neutral shading is returned as it is.

    Raises :class:`~ispkit.errors.InputError` for a box outside the image, or when the
    optical centre falls outside the crop (the radial correction cannot be expressed there).

    >>> import numpy as np
    >>> camera = Camera(name="c", shading_map=np.full((4, 33, 33), 2.0), shading_spacing=(0.1, 0.1))
    >>> cropped_shading(camera, (10, 0, 90, 100), (100, 100)).shading_origin, cropped_shading(camera, (10, 0, 90, 100), (100, 100)).shading_spacing
    ((-0.125, 0.0), (0.125, 0.1))
    """
    height, width = shape
    top, left, bottom, right = box
    if not (0 <= top < bottom <= height and 0 <= left < right <= width):
        raise InputError(f"cropped_shading: the box {tuple(box)} lies outside the {height}×{width} image")
    h, w = bottom - top, right - left
    neutral = Camera(name=camera.name)
    changes: dict[str, Any] = {}
    if camera.shading_map != neutral.shading_map:  # a uniform map gives every pixel the same gain wherever its points are
        (ov, oh), (sv, sh) = camera.shading_origin, camera.shading_spacing
        changes["shading_origin"] = ((ov * height - top) / h, (oh * width - left) / w)
        changes["shading_spacing"] = (sv * height / h, sh * width / w)
    if camera.vignette != neutral.vignette:
        cv, ch = camera.vignette_center[0] * height, camera.vignette_center[1] * width
        center = ((cv - top) / h, (ch - left) / w)
        if not all(0.0 <= c <= 1.0 for c in center):
            raise InputError(f"cropped_shading: the optical centre {camera.vignette_center} of camera {camera.name!r} lies outside the crop {tuple(box)}")
        before = np.hypot(max(cv, height - cv), max(ch, width - ch))
        after = np.hypot(max(cv - top, bottom - cv), max(ch - left, right - ch))
        changes["vignette"] = tuple(k * (after / before) ** (2 * i + 2) for i, k in enumerate(camera.vignette))
        changes["vignette_center"] = center
    return dataclasses.replace(camera, **changes) if changes else camera
