"""Common-corruptions baseline: the ImageNet-C corruptions an ISP could plausibly cause.

Hendrycks & Dietterich, "Benchmarking Neural Network Robustness to Common Corruptions
and Perturbations", ICLR 2019, define 15 (+4 extra) corruptions at five severities.
Oala et al. (TMLR 2023) compare drift caused by changing the image signal processing
(ISP) pipeline with the subset an ISP could plausibly produce itself -- sensor noise
(gaussian, shot, impulse, speckle), optics/processing blur (gaussian, zoom), tone and
colour processing (contrast, brightness, saturate) and geometric warping
(elastic transform).  Weather, occlusion and compression corruptions are left out.

Every corruption here is a pure torch function
``name(images, severity, *, generator=None, scale=1.0) -> Tensor`` on a batch
``(N, 3, H, W)`` of floats in [0, 1] (any float dtype, any device).  Like ImageNet-C,
every output is clipped to [0, 1]; the output has the input's dtype and device.

Randomness
----------
Random numbers come only from ``generator`` (a :class:`torch.Generator`; a fresh,
non-deterministically seeded CPU generator when ``None`` -- the global RNG is never
touched).  They are drawn in float64 on the generator's device, for the whole batch in
one call laid out image by image, and then moved to the images' device.  Hence, on a
CPU generator, corrupting a batch equals corrupting its images one at a time, in batch
order, with the same generator object (each call continuing where the previous one left
off); and the same generator seed gives the same output.  Normal variates are made from
uniform ones by the Box-Muller transform so that this holds for every corruption.

Spatial scale
-------------
The published spatial constants (blur sigma, elastic displacement, smoothing and
affine jitter, all in pixels) are meant for 224-pixel ImageNet crops.  ``scale``
multiplies every such length, e.g. ``scale=32 / 224`` for CIFAR-sized images; the
default 1.0 uses the published values.  Zoom factors are relative and the photometric
corruptions have no length, so ``scale`` does not change them.

Constants (severities 1..5) and where they were checked
-------------------------------------------------------
All were read from ``hendrycks/robustness`` ``ImageNet-C/create_c/make_imagenet_c.py``
(H) and ``ImageNet-C/imagenet_c/imagenet_c/corruptions.py`` (P, the ``imagenet_c`` pip
package), and compared with ``bethgelab/imagecorruptions``
``imagecorruptions/corruptions.py`` (B, commit 952dc3e):

=================  ==========================================================  =========
corruption         constant                                                    source
=================  ==========================================================  =========
gaussian_noise     sigma = .08, .12, .18, .26, .38                             H, P, B
shot_noise         lambda = 60, 25, 12, 5, 3 (Poisson(x*lambda)/lambda)        H, P, B
impulse_noise      amount = .03, .06, .09, .17, .27 (salt vs pepper 0.5)       H, P, B
speckle_noise      sigma = .15, .2, .35, .45, .6 (x + x*N(0, sigma))           H, P, B
gaussian_blur      sigma = 1, 2, 3, 4, 6 px (skimage gaussian: nearest, 4σ)    H, P, B
zoom_blur          arange(1,1.11,.01), (1,1.16,.01), (1,1.21,.02),             H, P, B
                   (1,1.26,.02), (1,1.31,.03)
contrast           c = .4, .3, .2, .1, .05 ((x - channel mean)*c + mean)       H, P, B
brightness         V += .1, .2, .3, .4, .5 (HSV)                               H, P, B
saturate           S = S*a + b, (a, b) = (.3, 0), (.1, 0), (2, 0), (5, .1),     H, P, B
                   (20, .2)
elastic_transform  (alpha, sigma, affine) = 244*(2, .7, .1), 244*(2, .08, .2),  H, P
                   244*(.05, .01, .02), 244*(.07, .01, .02), 244*(.12, .01, .02)
=================  ==========================================================  =========

B's ``elastic_transform`` is a different, later design (no affine step, sigma and
displacement relative to the image size); this module follows H/P.  Note that in the
source ``contrast`` subtracts the mean of each channel of each image (``axis=(0, 1)``
of an HWC array), and that ``saturate`` at severities 4 and 5 adds saturation
``b > 0``, so it tints grey pixels (hue 0, red) rather than leaving them grey.

Exactness and approximations
----------------------------
* Noises, contrast, brightness and saturate are the published formulas; the RGB<->HSV
  conversions reproduce ``skimage.color.rgb2hsv`` / ``hsv2rgb`` (tie rules included).
  The random streams differ from numpy's, so only distributions match.
* impulse_noise follows current scikit-image ``random_noise(mode='s&p')``: every value
  (pixel *and* channel) is replaced independently with probability ``amount``, by 1 or
  0 with equal odds.  The 2019 scikit-image instead drew ``ceil(amount*size/2)`` salt
  and as many pepper positions with replacement, so slightly fewer values changed.
* gaussian_blur equals ``skimage.filters.gaussian(x, sigma, channel_axis=-1)``
  (border mode ``'nearest'``, truncate 4) to float rounding.
* zoom_blur crops the centre, zooms it with ``bilinear, align_corners=True``
  interpolation -- which is what ``scipy.ndimage.zoom(order=1)`` computes (no spline
  prefilter at order 1; output size ``round(size*zoom)``) -- and trims the centre back,
  per axis, so that non-square images work (H/P assume square images).
* elastic_transform: H/P warp with ``cv2.warpAffine`` (bilinear, ``BORDER_REFLECT_101``)
  and then displace with ``scipy.ndimage.map_coordinates(order=1, mode='reflect')``.
  Both steps are done here by exact bilinear gathering with the same border rules
  ('mirror' resp. 'reflect' in scipy's names), but OpenCV quantises its interpolation
  weights to 1/32 pixel, which is not reproduced.  The affine anchor points are the
  source's ``centre ± min(H, W)//3``; the source builds them from (H, W) where OpenCV
  expects (x, y), which only matters for non-square images; here x pairs with W.
  The displacement fields are uniform(-1, 1) noise smoothed by a Gaussian (truncate 3,
  'reflect') and scaled by alpha, as in the source.

>>> import torch
>>> x = torch.full((1, 3, 8, 8), 0.5, dtype=torch.float64)
>>> contrast(x, 3).allclose(x)
True
>>> y = corrupt(x, "gaussian_noise", 2, seed=0)
>>> tuple(y.shape), bool(((y >= 0) & (y <= 1)).all())
((1, 3, 8, 8), True)
>>> torch.equal(y, corrupt(x, "gaussian_noise", 2, seed=0))
True
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from .arrays import check_rgb
from .errors import InputError, close_matches
from .filters import gaussian_filter

__all__ = [
    "CORRUPTIONS",
    "SEED_LIMIT",
    "SEVERITIES",
    "corrupt",
    "rgb_to_hsv",
    "hsv_to_rgb",
    "gaussian_noise",
    "shot_noise",
    "impulse_noise",
    "speckle_noise",
    "gaussian_blur",
    "zoom_blur",
    "contrast",
    "brightness",
    "saturate",
    "elastic_transform",
]

# ---------------------------------------------------------------- constants (see table)
GAUSSIAN_NOISE = (0.08, 0.12, 0.18, 0.26, 0.38)
SHOT_NOISE = (60, 25, 12, 5, 3)
IMPULSE_NOISE = (0.03, 0.06, 0.09, 0.17, 0.27)
SPECKLE_NOISE = (0.15, 0.2, 0.35, 0.45, 0.6)
GAUSSIAN_BLUR = (1, 2, 3, 4, 6)
ZOOM_BLUR = tuple(tuple(float(z) for z in np.arange(1, stop, step)) for stop, step in ((1.11, 0.01), (1.16, 0.01), (1.21, 0.02), (1.26, 0.02), (1.31, 0.03)))
CONTRAST = (0.4, 0.3, 0.2, 0.1, 0.05)
BRIGHTNESS = (0.1, 0.2, 0.3, 0.4, 0.5)
SATURATE = ((0.3, 0.0), (0.1, 0.0), (2.0, 0.0), (5.0, 0.1), (20.0, 0.2))
# (alpha, sigma, affine jitter) in pixels for 224-px images; "244 should have been 224"
# says the source, which keeps 244.
ELASTIC_TRANSFORM = tuple(
    (244 * a, 244 * s, 244 * j) for a, s, j in ((2, 0.7, 0.1), (2, 0.08, 0.2), (0.05, 0.01, 0.02), (0.07, 0.01, 0.02), (0.12, 0.01, 0.02))
)

SEVERITIES = (1, 2, 3, 4, 5)


# ---------------------------------------------------------------- checks and randomness
def _check(images, severity, scale, where: str) -> None:
    check_rgb(images, where, batched=True)
    if not isinstance(images, torch.Tensor):
        raise InputError(f"{where}: expected a torch tensor (N, 3, H, W), got {type(images).__name__}")
    if isinstance(severity, bool) or not isinstance(severity, numbers.Integral) or not 1 <= int(severity) <= 5:
        raise InputError(f"{where}: severity must be an integer in 1..5, got {severity!r}")
    if isinstance(scale, bool) or not isinstance(scale, numbers.Real) or not (math.isfinite(scale) and float(scale) > 0):
        raise InputError(f"{where}: scale must be a finite number > 0, got {scale!r}")


def _generator(generator: torch.Generator | None) -> torch.Generator:
    if generator is None:
        generator = torch.Generator()
        generator.seed()
    return generator


def _uniform(shape, generator: torch.Generator) -> torch.Tensor:
    """float64 uniforms in [0, 1) on the generator's device."""
    return torch.rand(shape, generator=generator, dtype=torch.float64, device=generator.device)


def _normal(shape, generator: torch.Generator) -> torch.Tensor:
    """Standard normals by Box-Muller from one uniform draw of shape ``(N, 2, *rest)``."""
    u = _uniform((shape[0], 2, *shape[1:]), generator)
    radius = torch.sqrt(-2.0 * torch.log1p(-u[:, 0]))  # 1 - u in (0, 1]
    return radius * torch.cos(2.0 * math.pi * u[:, 1])


def _finish(y: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return y.to(device=like.device, dtype=like.dtype).clamp(0.0, 1.0)


# ---------------------------------------------------------------- HSV (skimage twins)
def rgb_to_hsv(rgb: torch.Tensor) -> torch.Tensor:
    """``skimage.color.rgb2hsv`` on channel-first tensors ``(..., 3, H, W)``.

    Ties for the maximum follow skimage: blue wins over green, green over red.

    >>> rgb_to_hsv(torch.tensor([[[1.0]], [[0.5]], [[0.0]]], dtype=torch.float64)).flatten().tolist()
    [0.08333333333333333, 1.0, 1.0]
    """
    r, g, b = rgb.unbind(-3)
    v = torch.maximum(torch.maximum(r, g), b)
    delta = v - torch.minimum(torch.minimum(r, g), b)
    zero = delta == 0
    safe = torch.where(zero, torch.ones_like(delta), delta)
    s = torch.where(zero, torch.zeros_like(v), delta / torch.where(v == 0, torch.ones_like(v), v))
    h = (g - b) / safe
    h = torch.where(g == v, 2.0 + (b - r) / safe, h)
    h = torch.where(b == v, 4.0 + (r - g) / safe, h)
    h = torch.remainder(h / 6.0, 1.0)
    h = torch.where(zero, torch.zeros_like(h), h)
    return torch.stack((h, s, v), dim=-3)


def hsv_to_rgb(hsv: torch.Tensor) -> torch.Tensor:
    """``skimage.color.hsv2rgb`` on channel-first tensors ``(..., 3, H, W)``.

    >>> hsv_to_rgb(torch.tensor([[[1 / 12]], [[1.0]], [[1.0]]], dtype=torch.float64)).flatten().tolist()
    [1.0, 0.5, 0.0]
    """
    h, s, v = hsv.unbind(-3)
    hi = torch.floor(h * 6)
    f = h * 6 - hi
    p = v * (1 - s)
    q = v * (1 - f * s)
    t = v * (1 - (1 - f) * s)
    sector = torch.remainder(hi.to(torch.int64), 6)
    table = (
        (v, t, p),
        (q, v, p),
        (p, v, t),
        (p, q, v),
        (t, p, v),
        (v, p, q),
    )
    out = [torch.zeros_like(v) for _ in range(3)]
    for k, row in enumerate(table):
        sel = sector == k
        out = [torch.where(sel, row[c], out[c]) for c in range(3)]
    return torch.stack(out, dim=-3)


# ---------------------------------------------------------------- noise
def gaussian_noise(images: torch.Tensor, severity: int, *, generator: torch.Generator | None = None, scale: float = 1.0) -> torch.Tensor:
    """Additive white Gaussian noise, ``clip(x + N(0, sigma²))``, sigma from ``GAUSSIAN_NOISE``."""
    _check(images, severity, scale, "gaussian_noise")
    sigma = GAUSSIAN_NOISE[severity - 1]
    n = _normal(tuple(images.shape), _generator(generator)).to(images.device)
    return _finish(images.to(torch.float64) + sigma * n, images)


def shot_noise(images: torch.Tensor, severity: int, *, generator: torch.Generator | None = None, scale: float = 1.0) -> torch.Tensor:
    """Photon (Poisson) noise, ``clip(Poisson(x * lam) / lam)``, lam from ``SHOT_NOISE``."""
    _check(images, severity, scale, "shot_noise")
    lam = SHOT_NOISE[severity - 1]
    gen = _generator(generator)
    rates = images.detach().to(device=gen.device, dtype=torch.float64).clamp_min(0.0) * lam
    counts = torch.poisson(rates, generator=gen)
    return _finish(counts / lam, images)


def impulse_noise(images: torch.Tensor, severity: int, *, generator: torch.Generator | None = None, scale: float = 1.0) -> torch.Tensor:
    """Salt-and-pepper noise: each value becomes 1 or 0 (even odds) with probability ``amount``."""
    _check(images, severity, scale, "impulse_noise")
    amount = IMPULSE_NOISE[severity - 1]
    n = images.shape[0]
    u = _uniform((n, 2, *images.shape[1:]), _generator(generator)).to(images.device)
    flipped = u[:, 0] <= amount
    salted = u[:, 1] <= 0.5
    y = torch.where(flipped, salted.to(torch.float64), images.to(torch.float64))
    return _finish(y, images)


def speckle_noise(images: torch.Tensor, severity: int, *, generator: torch.Generator | None = None, scale: float = 1.0) -> torch.Tensor:
    """Multiplicative noise, ``clip(x + x * N(0, sigma²))``, sigma from ``SPECKLE_NOISE``."""
    _check(images, severity, scale, "speckle_noise")
    sigma = SPECKLE_NOISE[severity - 1]
    n = _normal(tuple(images.shape), _generator(generator)).to(images.device)
    x = images.to(torch.float64)
    return _finish(x + x * sigma * n, images)


# ---------------------------------------------------------------- blur
def gaussian_blur(images: torch.Tensor, severity: int, *, generator: torch.Generator | None = None, scale: float = 1.0) -> torch.Tensor:
    """Per-channel Gaussian blur, sigma ``GAUSSIAN_BLUR * scale`` px, border 'nearest', truncate 4."""
    _check(images, severity, scale, "gaussian_blur")
    sigma = GAUSSIAN_BLUR[severity - 1] * scale
    return gaussian_filter(images, sigma, truncate=4.0, mode="nearest").clamp(0.0, 1.0)


def _clipped_zoom(x: torch.Tensor, zoom: float) -> torch.Tensor:
    """Centre crop of size ceil(n / zoom), zoomed (order 1) and trimmed back to n, per axis."""
    h, w = x.shape[-2:]
    ch, cw = math.ceil(h / zoom), math.ceil(w / zoom)
    top, left = (h - ch) // 2, (w - cw) // 2
    crop = x[..., top : top + ch, left : left + cw]
    oh, ow = round(ch * zoom), round(cw * zoom)
    if (oh, ow) != (ch, cw):
        crop = F.interpolate(crop, size=(oh, ow), mode="bilinear", align_corners=True)
    th, tw = (oh - h) // 2, (ow - w) // 2
    return crop[..., th : th + h, tw : tw + w]


def zoom_blur(images: torch.Tensor, severity: int, *, generator: torch.Generator | None = None, scale: float = 1.0) -> torch.Tensor:
    """Mean of the image and its centre-zoomed copies for the factors in ``ZOOM_BLUR``.

    ``scale`` is accepted for a uniform signature; zoom factors are relative.
    """
    _check(images, severity, scale, "zoom_blur")
    factors = ZOOM_BLUR[severity - 1]
    acc = images.clone()
    for z in factors:
        acc = acc + _clipped_zoom(images, z)
    return (acc / (len(factors) + 1)).clamp(0.0, 1.0)


# ---------------------------------------------------------------- photometric
def contrast(images: torch.Tensor, severity: int, *, generator: torch.Generator | None = None, scale: float = 1.0) -> torch.Tensor:
    """``clip((x - m) * c + m)`` with ``m`` the mean of each channel of each image."""
    _check(images, severity, scale, "contrast")
    c = CONTRAST[severity - 1]
    means = images.mean(dim=(-2, -1), keepdim=True)
    return ((images - means) * c + means).clamp(0.0, 1.0)


def brightness(images: torch.Tensor, severity: int, *, generator: torch.Generator | None = None, scale: float = 1.0) -> torch.Tensor:
    """Add ``BRIGHTNESS`` to the HSV value (clipped to [0, 1]) and convert back."""
    _check(images, severity, scale, "brightness")
    c = BRIGHTNESS[severity - 1]
    h, s, v = rgb_to_hsv(images).unbind(-3)
    return hsv_to_rgb(torch.stack((h, s, (v + c).clamp(0.0, 1.0)), dim=-3)).clamp(0.0, 1.0)


def saturate(images: torch.Tensor, severity: int, *, generator: torch.Generator | None = None, scale: float = 1.0) -> torch.Tensor:
    """HSV saturation ``S * a + b`` (clipped to [0, 1]) with ``(a, b)`` from ``SATURATE``."""
    _check(images, severity, scale, "saturate")
    a, b = SATURATE[severity - 1]
    h, s, v = rgb_to_hsv(images).unbind(-3)
    return hsv_to_rgb(torch.stack((h, (s * a + b).clamp(0.0, 1.0), v), dim=-3)).clamp(0.0, 1.0)


# ---------------------------------------------------------------- geometric
def _fold(i: torch.Tensor, n: int, mode: str) -> torch.Tensor:
    """Map integer indices onto 0..n-1 with scipy's 'reflect' or 'mirror' extension."""
    if mode == "reflect":
        i = torch.remainder(i, 2 * n)
        return torch.where(i >= n, 2 * n - 1 - i, i)
    if n == 1:
        return torch.zeros_like(i)
    i = torch.remainder(i, 2 * n - 2)
    return torch.where(i >= n, 2 * n - 2 - i, i)


def _bilinear(x: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor, mode: str) -> torch.Tensor:
    """Sample ``x`` (N, C, H, W) at ``rows``, ``cols`` (N, H', W') by order-1 interpolation."""
    n, c, h, w = x.shape
    r0f, c0f = torch.floor(rows), torch.floor(cols)
    fr, fc = (rows - r0f).to(x.dtype), (cols - c0f).to(x.dtype)
    r0, c0 = r0f.to(torch.int64), c0f.to(torch.int64)
    flat = x.reshape(n, c, h * w)
    out = torch.zeros((), dtype=x.dtype, device=x.device)  # 0 + the first term, as with a Python 0
    for dr, wr in ((0, 1 - fr), (1, fr)):
        rr = _fold(r0 + dr, h, mode)
        for dc, wc in ((0, 1 - fc), (1, fc)):
            cc = _fold(c0 + dc, w, mode)
            idx = (rr * w + cc).reshape(n, 1, -1).expand(n, c, -1)
            out = out + torch.gather(flat, 2, idx).reshape(n, c, *rows.shape[1:]) * (wr * wc).unsqueeze(1)
    return out


def elastic_transform(images: torch.Tensor, severity: int, *, generator: torch.Generator | None = None, scale: float = 1.0) -> torch.Tensor:
    """Random affine warp followed by a smoothed random displacement field (ImageNet-C).

    Per image: three anchor points ``centre ± min(H, W)//3`` are jittered by
    uniform(-j, j) px and the affine map taking the anchors to the jittered points warps
    the image (bilinear, 'mirror' border = OpenCV's REFLECT_101).  Then two fields of
    uniform(-1, 1) noise are smoothed by a Gaussian of sigma ``s`` (truncate 3,
    'reflect') and multiplied by ``alpha``; the image is resampled at
    ``(row + dy, col + dx)`` (bilinear, 'reflect').  ``alpha``, ``s`` and ``j`` come
    from ``ELASTIC_TRANSFORM`` times ``scale``.
    """
    _check(images, severity, scale, "elastic_transform")
    alpha, sigma, jitter = (v * scale for v in ELASTIC_TRANSFORM[severity - 1])
    n, _, h, w = images.shape
    gen = _generator(generator)
    u = _uniform((n, 6 + 2 * h * w), gen).to(images.device)
    dev = images.device
    f64 = torch.float64

    # affine: anchors as (x, y) points
    cx, cy, sq = float(w // 2), float(h // 2), float(min(h, w) // 3)
    src = torch.tensor([[cx + sq, cy + sq], [cx + sq, cy - sq], [cx - sq, cy - sq]], dtype=f64, device=dev)
    dst = src + jitter * (2 * u[:, :6].reshape(n, 3, 2) - 1)
    ones = torch.ones(n, 3, 1, dtype=f64, device=dev)
    # forward map: [x', y'] = [x, y, 1] @ A ; output pixel p samples the input at the inverse map
    inv = torch.linalg.solve(torch.cat([dst, ones], -1), src.expand(n, 3, 2))  # dst -> src
    yy, xx = torch.meshgrid(torch.arange(h, dtype=f64, device=dev), torch.arange(w, dtype=f64, device=dev), indexing="ij")
    grid = torch.stack([xx, yy, torch.ones_like(xx)], -1).reshape(1, h * w, 3)
    src_xy = (grid @ inv).reshape(n, h, w, 2)
    x = _bilinear(images.to(f64), src_xy[..., 1], src_xy[..., 0], "mirror")

    # displacement field
    fields = 2 * u[:, 6:].reshape(n, 2, h, w) - 1
    fields = gaussian_filter(fields, sigma, truncate=3.0, mode="reflect") * alpha
    dx, dy = fields[:, 0], fields[:, 1]
    y = _bilinear(x, yy + dy, xx + dx, "reflect")
    return _finish(y, images)


# ---------------------------------------------------------------- registry
CORRUPTIONS: dict[str, Callable[..., torch.Tensor]] = {
    "gaussian_noise": gaussian_noise,
    "shot_noise": shot_noise,
    "impulse_noise": impulse_noise,
    "speckle_noise": speckle_noise,
    "gaussian_blur": gaussian_blur,
    "zoom_blur": zoom_blur,
    "contrast": contrast,
    "brightness": brightness,
    "saturate": saturate,
    "elastic_transform": elastic_transform,
}


SEED_LIMIT = 2**32
"""Seeds of :func:`corrupt` lie in ``0 .. SEED_LIMIT - 1``: torch's CPU generator (Mersenne
Twister) keeps only the low 32 bits of its seed, so ``2**32`` would repeat seed 0."""


def corrupt(images: torch.Tensor, name: str, severity: int, *, seed: int | None = None, scale: float = 1.0) -> torch.Tensor:
    """Apply corruption ``name`` at ``severity`` (1..5) with the random stream chosen by ``seed``.

    ``seed`` (an integer in ``0 .. 2**32 - 1``) seeds a fresh CPU generator: the output
    equals ``CORRUPTIONS[name](images, severity, generator=torch.Generator().manual_seed(seed))``,
    so the same seed gives the same output and distinct seeds give independent streams.
    ``None`` draws fresh entropy. Other seeds are an :class:`InputError` (torch would
    silently keep only their low 32 bits: ``2**32`` would repeat seed 0 and ``-1`` seed
    ``2**32 - 1``).

    >>> corrupt(torch.zeros(1, 3, 4, 4), "gausian_noise", 1)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ispkit.errors.InputError: unknown corruption 'gausian_noise'; did you mean 'gaussian_noise'...
    """
    fn = CORRUPTIONS.get(name) if isinstance(name, str) else None
    if fn is None:
        raise InputError(f"unknown corruption {name!r}; {close_matches(str(name), CORRUPTIONS)}")
    generator = None
    if seed is not None:
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not 0 <= seed < SEED_LIMIT:
            raise InputError(f"corrupt: seed must be None or an integer in 0..{SEED_LIMIT - 1} (torch keeps 32 bits of a seed), got {seed!r}")
        generator = torch.Generator()
        generator.manual_seed(int(seed))
    return fn(images, severity, generator=generator, scale=scale)
