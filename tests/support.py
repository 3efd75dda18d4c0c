"""Shared test support: hypothesis strategies for images and the backend-equality check.

Every stage method must give the same result in both backends (≤1e-6 in float64,
≤1e-4 in float32) on random, constant, saturated and structured inputs, borders
included. :func:`assert_backends_agree` is that check; the strategies below draw the
inputs.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from hypothesis import strategies as st

from ispkit import testing
from ispkit.stages.base import Stage

TOLERANCE = {torch.float64: 1e-6, torch.float32: 1e-4}

even_sizes = st.integers(1, 12).map(lambda k: 2 * k)


def _structured(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    kind = rng.integers(5)
    if kind == 0:  # vertical and horizontal edges
        return ((xx >= rng.integers(w + 1)) ^ (yy >= rng.integers(h + 1))).astype(float)
    if kind == 1:  # diagonal ramp
        return (xx + yy) / max(h + w - 2, 1)
    if kind == 2:  # single-pixel checkerboard (worst case for a CFA)
        return ((xx + yy) % 2).astype(float)
    if kind == 3:  # stripes of random period
        period = rng.integers(1, 5)
        return ((xx // period) % 2).astype(float)
    return np.clip(0.5 + 0.5 * np.sin(xx * rng.uniform(0.2, 3.0) + yy * rng.uniform(0.2, 3.0)), 0, 1)


@st.composite
def planes(draw: Any, h: int | None = None, w: int | None = None, low: float = 0.0, high: float = 1.0) -> np.ndarray:
    """One ``(H, W)`` float64 plane: random, constant, saturated or structured."""
    h = h if h is not None else draw(even_sizes)
    w = w if w is not None else draw(even_sizes)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    kind = draw(st.sampled_from(["random", "constant", "saturated", "structured"]))
    if kind == "random":
        unit = rng.random((h, w))
    elif kind == "constant":
        unit = np.full((h, w), draw(st.sampled_from([0.0, 1.0, 0.5, rng.random()])))
    elif kind == "saturated":
        unit = (rng.random((h, w)) < 0.5).astype(float)
    else:
        unit = _structured(rng, h, w)
    return low + (high - low) * unit


@st.composite
def raw_batches(draw: Any, max_n: int = 3) -> np.ndarray:
    """A batch ``(N, H, W)`` of raw mosaics in [0, 1]."""
    h, w = draw(even_sizes), draw(even_sizes)
    n = draw(st.integers(1, max_n))
    return np.stack([draw(planes(h, w)) for _ in range(n)])


@st.composite
def rgb_batches(draw: Any, max_n: int = 3, low: float = -0.25, high: float = 1.25) -> np.ndarray:
    """A batch ``(N, 3, H, W)`` of RGB views, values possibly outside [0, 1] (as after colour correction)."""
    h, w = draw(even_sizes), draw(even_sizes)
    n = draw(st.integers(1, max_n))
    return np.stack([np.stack([draw(planes(h, w, low, high)) for _ in range(3)]) for _ in range(n)])


def run_torch(stage: type[Stage], x: np.ndarray, values: dict[str, Any], pattern: str, dtype: torch.dtype) -> np.ndarray:
    """Run ``stage``'s torch backend on a batch in ``dtype`` and return float64 numpy."""
    tvalues = {k: torch.tensor(v, dtype=dtype) if isinstance(v, np.ndarray) else v for k, v in values.items()}
    extra = {"pattern": pattern} if stage.cfa_aware else {}
    out = stage.torch(torch.as_tensor(x, dtype=dtype), **tvalues, **extra)
    return out.detach().to(torch.float64).numpy()


def assert_backends_agree(stage: type[Stage], batch: np.ndarray, values: dict[str, Any] | None = None, pattern: str = "RGGB") -> None:
    """:func:`ispkit.testing.assert_backends_agree` with the identity camera's defaults when ``values`` is ``None``."""
    testing.assert_backends_agree(stage, batch, values if values is not None else default_values(stage), pattern)


def default_values(stage: type[Stage]) -> dict[str, Any]:
    """Declared defaults of ``stage``, validated (camera-derived ones use the identity camera)."""
    from ispkit.camera import Camera

    camera = Camera.identity()
    return {p.name: p.validate(camera.resolve(p.default), f"{stage.kind}.{p.name}") for p in stage.params}


# Real-like inputs. Uniform random numbers never tie; photographs and integer-valued raws
# (every sensor's DN grid) tie all the time, and decisions taken on ties (Menon's
# direction, the median) are where float32 and float64 part. The helpers below draw
# such inputs: crops of skimage's photographs (8-bit ``k / 255``, or re-quantised to
# 12-bit counts) mosaicked with colour-demosaicing, and integer DN counts divided by
# the white level.

#: ``skimage.data`` photographs (bundled with scikit-image): a portrait, a cup of coffee,
#: a cat's fur and a stained tissue section (the microscopy camera's kind of scene).
NATURAL_IMAGES = ("astronaut", "coffee", "chelsea", "immunohistochemistry")
#: Bit depths of the integer-DN raws: counts in ``[0, 2**bits - 1]`` over the white level ``2**bits - 1``.
DN_BITS = (12, 14, 16)

_NATURAL: dict[str, np.ndarray] = {}


def natural_image(name: str) -> np.ndarray:
    """``skimage.data.<name>()`` as a read-only float64 ``(H, W, 3)`` array of the 8-bit values ``k / 255``."""
    if name not in _NATURAL:
        import skimage.data

        image = getattr(skimage.data, name)() / 255.0
        image.setflags(write=False)
        _NATURAL[name] = image
    return _NATURAL[name]


def on_dn_grid(x: np.ndarray, bits: int) -> np.ndarray:
    """``x`` in [0, 1] rounded to integer counts of ``bits`` bits and divided by the white level ``2**bits - 1``."""
    white = 2**bits - 1
    return np.round(x * white) / white


def natural_crop(name: str, top: int, left: int, h: int, w: int, bits: int = 8) -> np.ndarray:
    """The ``(h, w, 3)`` crop at ``(top, left)`` (any offsets, odd included) of a natural image on a ``bits``-bit DN grid."""
    crop = natural_image(name)[top : top + h, left : left + w]
    return crop if bits == 8 else on_dn_grid(crop, bits)


def mosaic(rgb: np.ndarray, pattern: str) -> np.ndarray:
    """``colour_demosaicing.mosaicing_CFA_Bayer``: the ``(H, W)`` Bayer mosaic of a channel-last RGB image."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # colour's note that matplotlib is missing
        from colour_demosaicing import mosaicing_CFA_Bayer

    return mosaicing_CFA_Bayer(rgb, pattern)


def integer_dn_raw(rng: np.random.Generator, shape: tuple[int, ...], bits: int) -> np.ndarray:
    """Uniform random integer counts of ``bits`` bits divided by the white level ``2**bits - 1``."""
    white = 2**bits - 1
    return rng.integers(0, white + 1, shape) / white


def float32_values(x: np.ndarray) -> np.ndarray:
    """The numbers a float32 tensor made from ``x`` holds, as float64 (what the numpy backend sees of it)."""
    return np.asarray(x, dtype=np.float32).astype(np.float64)


@st.composite
def natural_crops(draw: Any, h: int, w: int) -> np.ndarray:
    """A channel-last ``(h, w, 3)`` crop of a natural image at a random (often odd) offset, 8-bit or on the 12-bit grid."""
    name = draw(st.sampled_from(NATURAL_IMAGES))
    height, width = natural_image(name).shape[:2]
    top, left = draw(st.integers(0, height - h)), draw(st.integers(0, width - w))
    return natural_crop(name, top, left, h, w, bits=draw(st.sampled_from([8, 12])))


@st.composite
def natural_raw_batches(draw: Any, pattern: str, max_n: int = 2) -> np.ndarray:
    """A batch ``(N, H, W)`` of natural-image crops mosaicked in ``pattern``."""
    h, w = draw(even_sizes), draw(even_sizes)
    return np.stack([mosaic(draw(natural_crops(h, w)), pattern) for _ in range(draw(st.integers(1, max_n)))])


@st.composite
def dn_raw_batches(draw: Any, max_n: int = 2) -> np.ndarray:
    """A batch ``(N, H, W)`` of uniform random integer-DN raws of 12, 14 or 16 bits."""
    h, w = draw(even_sizes), draw(even_sizes)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    return integer_dn_raw(rng, (draw(st.integers(1, max_n)), h, w), draw(st.sampled_from(DN_BITS)))


@st.composite
def natural_rgb_batches(draw: Any, max_n: int = 2) -> np.ndarray:
    """A batch ``(N, 3, H, W)`` of RGB views: natural crops (8-bit or 12-bit grid) or integer-DN colours."""
    h, w = draw(even_sizes), draw(even_sizes)
    n = draw(st.integers(1, max_n))
    if draw(st.booleans()):
        return np.stack([np.moveaxis(draw(natural_crops(h, w)), -1, 0) for _ in range(n)])
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    return integer_dn_raw(rng, (n, 3, h, w), draw(st.sampled_from(DN_BITS)))


def assert_backends_agree_on_values(stage: type[Stage], batch: np.ndarray, values: dict[str, Any] | None = None, pattern: str = "RGGB") -> None:
    """The backend contract on the same numbers: torch float64 on ``batch`` and torch float32
    on its float32 rounding, each against the numpy backend run on exactly those numbers.

    This is what a float32 tensor can promise: rounding a float64 input to float32 can
    itself move a decision-taking stage (Menon's tie between directions) far more than
    1e-4, in the reference as much as in torch.
    """
    values = values if values is not None else default_values(stage)
    for dtype, tol in TOLERANCE.items():
        x = batch if dtype == torch.float64 else float32_values(batch)
        expected = np.stack([stage.run_numpy(image, values, pattern) for image in x])
        got = run_torch(stage, x, values, pattern, dtype)
        assert got.shape == expected.shape, (got.shape, expected.shape)
        err = np.abs(got - expected).max()
        assert err <= tol, f"{stage.kind}.{stage.method} [{dtype}]: max |torch - numpy| = {err:.3g} > {tol} on the same input"
