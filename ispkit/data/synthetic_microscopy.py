"""Synthetic Raw-Microscopy scenes: procedurally drawn leukocytes in bright field.

Raw-Microscopy (Oala et al., TMLR 2023, §3) holds 256×256 crops of single leukocytes
in stained blood smears, in nine classes. This module draws noiseless scenes with the
same classes, which differ in morphology the way the real cells do:

=====  ===========================  ========================  ======================
class  nucleus                      granules                  cytoplasm
=====  ===========================  ========================  ======================
BAS    lobed, hidden by granules    many, dark purple         little, pale
EOS    two lobes                    many, red-orange          moderate, pink
KSC    smudged, irregular, pale     none                      none (smudge cell)
LYA    large, irregular             none                      much, deep blue
LYT    round, dense, small cell     none                      thin blue rim
MON    kidney-shaped, large cell    none (a few vacuoles)     much, grey-blue
NGB    band (C-shaped)              fine, faint               moderate, pale pink
NGS    3–5 connected lobes          fine, faint               moderate, pale pink
UNC    fragments, debris            random                    irregular
=====  ===========================  ========================  ======================

Every scene also holds red blood cells around the leukocyte. Light is rendered as a
bright-field transmission image (Beer–Lambert): each structure has an absorbance per
filter channel (the 620, 525 and 450 nm exposures of the real data, as R, G, B),
densities add up, and the channel intensity is ``illumination · exp(−Σ absorbance ·
density)``. Scenes are fractions of the sensor's full scale, ready for
:func:`ispkit.sensor.acquire`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ..errors import InputError

__all__ = ["CLASSES", "CLASS_PROPORTIONS", "render_scene"]

CLASSES: tuple[str, ...] = ("BAS", "EOS", "KSC", "LYA", "LYT", "MON", "NGB", "NGS", "UNC")
"""The nine Raw-Microscopy classes."""

CLASS_PROPORTIONS: tuple[float, ...] = (0.0191, 0.0574, 0.1734, 0.0319, 0.2447, 0.2032, 0.0085, 0.2298, 0.0319)
"""Class proportions of the published dataset (REFERENCE.md), used for synthetic sampling."""

# Absorbance per unit density in the (R, G, B) filter channels.
_NUCLEUS = np.array([0.55, 1.35, 0.45])  # purple (haematoxylin-like): absorbs green most
_CYTO_BLUE = np.array([0.45, 0.30, 0.10])  # basophilic cytoplasm
_CYTO_PINK = np.array([0.05, 0.25, 0.15])  # neutrophilic cytoplasm
_GRANULE_RED = np.array([0.10, 0.95, 0.85])  # eosinophil granules: red-orange
_GRANULE_DARK = np.array([1.30, 1.60, 0.90])  # basophil granules: dark purple
_RBC = np.array([0.05, 0.55, 0.35])  # red blood cells: pink-red
_ILLUMINATION = np.array([0.78, 0.82, 0.74])  # background level per channel, fraction of full scale


@dataclass(frozen=True)
class _Morphology:
    cell_radius: tuple[float, float]  # pixels at 0.16 µm/pixel (40× objective, 6.5 µm sensor pixels)
    nucleus: str  # round, kidney, band, lobed, bilobed, smudge, fragments
    nucleus_scale: float  # nucleus size relative to the cell
    cytoplasm: np.ndarray  # absorbance
    cytoplasm_density: float
    granules: np.ndarray | None
    granule_fraction: float  # of cytoplasm pixels


_MORPHOLOGY = {
    "BAS": _Morphology((30, 42), "lobed", 0.55, _CYTO_PINK, 0.25, _GRANULE_DARK, 0.16),
    "EOS": _Morphology((32, 45), "bilobed", 0.50, _CYTO_PINK, 0.35, _GRANULE_RED, 0.22),
    "KSC": _Morphology((25, 45), "smudge", 0.95, _CYTO_PINK, 0.0, None, 0.0),
    "LYA": _Morphology((27, 42), "irregular", 0.60, _CYTO_BLUE, 0.80, None, 0.0),
    "LYT": _Morphology((21, 31), "round", 0.78, _CYTO_BLUE, 0.75, None, 0.0),
    "MON": _Morphology((36, 55), "kidney", 0.60, _CYTO_BLUE + 0.5 * _CYTO_PINK, 0.55, None, 0.0),
    "NGB": _Morphology((31, 45), "band", 0.55, _CYTO_PINK, 0.45, _CYTO_PINK * 2.0, 0.10),
    "NGS": _Morphology((31, 45), "segmented", 0.55, _CYTO_PINK, 0.45, _CYTO_PINK * 2.0, 0.10),
    "UNC": _Morphology((15, 40), "fragments", 0.70, _CYTO_PINK, 0.30, _NUCLEUS, 0.04),
}


def _soft(distance: np.ndarray, edge: float = 1.2) -> np.ndarray:
    """Anti-aliased inside-indicator of a signed distance (negative inside)."""
    return 1.0 / (1.0 + np.exp(np.clip(distance / edge, -30, 30)))


def _blob(yy: np.ndarray, xx: np.ndarray, cy: float, cx: float, radius: float, rng: np.random.Generator, wobble: float = 0.08) -> np.ndarray:
    """A round shape with a wavy outline: radius · (1 + Σ small harmonics of the angle).

    Evaluated only inside its bounding box (the rest of the frame is 0), which keeps a
    scene of a dozen shapes at a few milliseconds.
    """
    harmonics = [(k, rng.normal(0, wobble / k), rng.uniform(0, 2 * np.pi)) for k in (2, 3, 5)]
    reach = radius * (1 + 3 * wobble) + 8
    rows = slice(max(int(cy - reach), 0), max(min(int(cy + reach) + 1, yy.shape[0]), 0))
    cols = slice(max(int(cx - reach), 0), max(min(int(cx + reach) + 1, yy.shape[1]), 0))
    out = np.zeros(yy.shape)
    y, x = yy[rows, cols] - cy, xx[rows, cols] - cx
    angle = np.arctan2(y, x)
    outline = radius * (1 + sum(a * np.cos(k * angle + phase) for k, a, phase in harmonics))
    out[rows, cols] = _soft(np.hypot(y, x) - outline)
    return out


def _nucleus(kind: str, yy: np.ndarray, xx: np.ndarray, cy: float, cx: float, r: float, rng: np.random.Generator) -> np.ndarray:
    """Nucleus density (0–1) of the given shape centred at (cy, cx) with size ``r``."""
    if kind == "round":
        return _blob(yy, xx, cy + rng.normal(0, 0.05 * r), cx + rng.normal(0, 0.05 * r), r, rng, 0.04)
    if kind == "irregular":
        return _blob(yy, xx, cy, cx, r, rng, 0.18)
    if kind == "smudge":
        return 0.55 * ndimage.gaussian_filter(_blob(yy, xx, cy, cx, r, rng, 0.3), 2.5)
    if kind == "kidney":  # a disc with a bite taken out of one side
        theta = rng.uniform(0, 2 * np.pi)
        disc = _blob(yy, xx, cy, cx, r, rng, 0.05)
        bite = _blob(yy, xx, cy + 0.9 * r * np.sin(theta), cx + 0.9 * r * np.cos(theta), 0.55 * r, rng, 0.02)
        return np.clip(disc - bite, 0, 1)
    if kind == "band":  # a thick arc (C-shape)
        theta, span = rng.uniform(0, 2 * np.pi), rng.uniform(0.9, 1.3) * np.pi
        angle = (np.arctan2(yy - cy, xx - cx) - theta) % (2 * np.pi)
        ring = np.abs(np.hypot(yy - cy, xx - cx) - 0.75 * r) - 0.28 * r
        return _soft(np.maximum(ring, (angle - span) * 0.75 * r))
    lobes = {"bilobed": 2, "lobed": int(rng.integers(2, 4)), "segmented": int(rng.integers(3, 6)), "fragments": int(rng.integers(3, 7))}[kind]
    density = np.zeros_like(yy)
    theta0 = rng.uniform(0, 2 * np.pi)
    for i in range(lobes):
        a = theta0 + 2 * np.pi * i / lobes + rng.normal(0, 0.25)
        spread = 0.55 * r if kind != "fragments" else rng.uniform(0.5, 1.6) * r
        size = (0.48 if kind == "bilobed" else 0.38) * r * rng.uniform(0.8, 1.15)
        density = np.maximum(density, _blob(yy, xx, cy + spread * np.sin(a), cx + spread * np.cos(a), size, rng, 0.06))
    if kind == "segmented":  # thin chromatin bridges between consecutive lobes
        density = np.maximum(density, 0.6 * _blob(yy, xx, cy, cx, 0.25 * r, rng, 0.02))
    return density


def render_scene(
    label: str,
    size: int = 256,
    seed: int | np.random.Generator | None = None,
    stain: np.ndarray | None = None,
) -> np.ndarray:
    """Draw one leukocyte of class ``label`` among red blood cells.

    Parameters
    ----------
    label
        One of :data:`CLASSES`.
    size
        Side of the square scene in pixels (even).
    seed
        Seed or generator; the same seed gives the same scene.
    stain
        Staining strength of the slide: a factor per channel on every absorbance
        (default 1). Smears of one slide share it; slides differ by about ±20 %.

    Returns
    -------
    numpy.ndarray
        Noiseless transmission ``(3, size, size)`` in [0, 1] (fraction of the sensor's
        full scale) in the R (620 nm), G (525 nm) and B (450 nm) filter channels.

    Examples
    --------
    >>> scene = render_scene("LYT", size=64, seed=0)
    >>> scene.shape, bool(0 < scene.min() and scene.max() < 1)
    ((3, 64, 64), True)
    """
    if label not in _MORPHOLOGY:
        raise InputError(f"unknown Raw-Microscopy class {label!r}; expected one of {', '.join(CLASSES)}")
    if size % 2 or size < 32:
        raise InputError(f"scene size must be even and at least 32 pixels, got {size}")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    m = _MORPHOLOGY[label]
    scale = size / 256
    yy, xx = np.mgrid[0:size, 0:size].astype(float)
    absorbance = np.zeros((3, size, size))
    for _ in range(rng.integers(6, 14)):  # red blood cells: discs with a paler centre
        cy, cx, r = rng.uniform(0, size), rng.uniform(0, size), rng.uniform(21, 25) * scale
        disc = _blob(yy, xx, cy, cx, r, rng, 0.03)
        pallor = 1 - 0.55 * _blob(yy, xx, cy, cx, 0.5 * r, rng, 0.02)
        absorbance += _RBC[:, None, None] * (disc * pallor)[None] * rng.uniform(0.7, 1.0)
    cy, cx = size / 2 + rng.normal(0, 6 * scale, 2)
    radius = rng.uniform(*m.cell_radius) * scale
    cell = _blob(yy, xx, cy, cx, radius, rng, 0.07 if label != "UNC" else 0.3)
    absorbance = absorbance * (1 - cell)[None]  # the leukocyte lies over the red cells
    texture = ndimage.gaussian_filter(rng.normal(0, 1, (size, size)), 1.5 * scale + 0.5)
    absorbance += m.cytoplasm[:, None, None] * (cell * m.cytoplasm_density * (1 + 0.25 * texture))[None]
    if m.granules is not None:
        speckle = ndimage.gaussian_filter(rng.random((size, size)), 0.7 * scale + 0.3)
        fraction = m.granule_fraction * rng.uniform(0.5, 1.3)  # granule density varies from cell to cell
        granules = cell * (speckle > np.quantile(speckle, 1 - fraction))
        absorbance += m.granules[:, None, None] * granules[None]
    nucleus = _nucleus(m.nucleus, yy, xx, cy, cx, m.nucleus_scale * radius, rng) * cell
    absorbance += _NUCLEUS[:, None, None] * (nucleus * (0.9 + 0.2 * texture))[None]
    if label == "MON":  # a few vacuoles: holes in the cytoplasm
        for _ in range(rng.integers(2, 6)):
            a, d = rng.uniform(0, 2 * np.pi), rng.uniform(0.6, 0.85) * radius
            hole = _blob(yy, xx, cy + d * np.sin(a), cx + d * np.cos(a), rng.uniform(1.5, 3.0) * scale, rng, 0.0)
            absorbance *= (1 - 0.8 * hole)[None]
    absorbance *= (np.ones(3) if stain is None else np.asarray(stain, dtype=float))[:, None, None]
    illumination = _ILLUMINATION[:, None, None] * rng.uniform(0.8, 1.1) * (1 + rng.normal(0, 0.03, (3, 1, 1)))
    transmitted = illumination * np.exp(-np.clip(absorbance, 0, None))
    focus = rng.uniform(0.0, 2.0) * scale  # defocus differs from crop to crop
    if focus > 0.3:
        transmitted = ndimage.gaussian_filter(transmitted, (0, focus, focus))
    return np.clip(transmitted, 0.0, 1.0)
