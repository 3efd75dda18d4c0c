"""ispkit.corruptions: ImageNet-C constants, formulas and references (skimage, scipy)."""

from __future__ import annotations

import importlib.util
import itertools
import subprocess
import sys

import numpy as np
import pytest
import scipy.ndimage as ndi
import skimage.data
import torch
from scipy.stats import norm
from skimage.color import hsv2rgb, rgb2hsv
from skimage.filters import gaussian as sk_gaussian

from ispkit import corruptions as C
from ispkit.corruptions import CORRUPTIONS, corrupt
from ispkit.errors import InputError

RANDOM = ("gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise", "elastic_transform")


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def rand_images(n=2, h=32, w=32, seed=0, dtype=torch.float64):
    return torch.rand(n, 3, h, w, generator=gen(seed), dtype=dtype)


def grey(value=0.5, n=1, h=128, w=128):
    return torch.full((n, 3, h, w), value, dtype=torch.float64)


def hwc(x: torch.Tensor) -> np.ndarray:
    return x.numpy().transpose(1, 2, 0)


def chw(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)))


# ------------------------------------------------------------------ constants
def test_severity_tables_equal_published_imagenet_c():
    # values read from hendrycks/robustness ImageNet-C/create_c/make_imagenet_c.py
    assert C.GAUSSIAN_NOISE == (0.08, 0.12, 0.18, 0.26, 0.38)
    assert C.SHOT_NOISE == (60, 25, 12, 5, 3)
    assert C.IMPULSE_NOISE == (0.03, 0.06, 0.09, 0.17, 0.27)
    assert C.SPECKLE_NOISE == (0.15, 0.2, 0.35, 0.45, 0.6)
    assert C.GAUSSIAN_BLUR == (1, 2, 3, 4, 6)
    assert C.CONTRAST == (0.4, 0.3, 0.2, 0.1, 0.05)
    assert C.BRIGHTNESS == (0.1, 0.2, 0.3, 0.4, 0.5)
    assert C.SATURATE == ((0.3, 0), (0.1, 0), (2, 0), (5, 0.1), (20, 0.2))
    assert C.ELASTIC_TRANSFORM[0] == pytest.approx((488.0, 170.8, 24.4))
    assert C.ELASTIC_TRANSFORM[4] == pytest.approx((29.28, 2.44, 4.88))
    # np.arange(1, 1.11, 0.01) in the source yields 12 factors up to 1.11 (float step)
    assert [len(z) for z in C.ZOOM_BLUR] == [12, 16, 11, 13, 11]
    assert C.ZOOM_BLUR[0][-1] == pytest.approx(1.11)
    assert C.ZOOM_BLUR[0][0] == 1.0 and C.ZOOM_BLUR[4][-1] == pytest.approx(1.30)
    assert C.ZOOM_BLUR[2] == tuple(np.arange(1, 1.21, 0.02))


def test_corruptions_in_paper_order():
    assert list(CORRUPTIONS) == [
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


# ------------------------------------------------------------------ known values
@pytest.mark.parametrize("severity", [1, 3, 5])
def test_contrast_formula_per_image_per_channel_mean(severity):
    x = rand_images(2, 16, 12, seed=1)
    c = C.CONTRAST[severity - 1]
    m = x.mean(dim=(2, 3), keepdim=True)
    assert torch.allclose(C.contrast(x, severity), ((x - m) * c + m).clamp(0, 1), atol=1e-15)
    # as the source: np.mean(x, axis=(0, 1)) on one HWC image
    a = hwc(x[0])
    ref = np.clip((a - a.mean(axis=(0, 1), keepdims=True)) * c + a.mean(axis=(0, 1), keepdims=True), 0, 1)
    np.testing.assert_allclose(hwc(C.contrast(x, severity)[0]), ref, atol=1e-15)


def test_brightness_on_grey_adds_to_value():
    for severity, c in enumerate(C.BRIGHTNESS, 1):
        y = C.brightness(grey(0.3, h=4, w=4), severity)
        assert torch.allclose(y, grey(min(0.3 + c, 1.0), h=4, w=4), atol=1e-12)
    assert torch.allclose(C.brightness(grey(0.8, h=4, w=4), 5), grey(1.0, h=4, w=4))


@pytest.mark.parametrize("severity", [1, 2, 3, 4, 5])
def test_brightness_and_saturate_equal_skimage_reference(severity):
    x = rand_images(1, 16, 16, seed=severity)[0]
    a = hwc(x)
    hsv = rgb2hsv(a)
    hsv[..., 2] = np.clip(hsv[..., 2] + C.BRIGHTNESS[severity - 1], 0, 1)
    ref_b = np.clip(hsv2rgb(hsv), 0, 1)
    np.testing.assert_allclose(hwc(C.brightness(x[None], severity)[0]), ref_b, atol=1e-12)
    s_mul, s_add = C.SATURATE[severity - 1]
    hsv = rgb2hsv(a)
    hsv[..., 1] = np.clip(hsv[..., 1] * s_mul + s_add, 0, 1)
    ref_s = np.clip(hsv2rgb(hsv), 0, 1)
    np.testing.assert_allclose(hwc(C.saturate(x[None], severity)[0]), ref_s, atol=1e-12)


def test_saturate_on_grey():
    g = torch.rand(2, 1, 8, 8, generator=gen(3), dtype=torch.float64).expand(2, 3, 8, 8)
    for severity in (1, 2, 3):  # b = 0: grey stays grey
        assert torch.allclose(C.saturate(g, severity), g, atol=1e-15)
    for severity in (4, 5):  # b > 0 tints grey at hue 0: R = V, G = B = V (1 - b)
        b = C.SATURATE[severity - 1][1]
        y = C.saturate(g, severity)
        assert torch.allclose(y[:, 0], g[:, 0], atol=1e-15)
        assert torch.allclose(y[:, 1], g[:, 0] * (1 - b), atol=1e-15)
        assert torch.allclose(y[:, 2], g[:, 0] * (1 - b), atol=1e-15)


def test_hsv_equals_skimage_with_ties():
    rng = np.random.default_rng(0)
    a = rng.random((24, 24, 3))
    a[:8] = rng.integers(0, 5, (8, 24, 3)) / 4  # many ties, greys, zeros and ones
    hsv = C.rgb_to_hsv(chw(a))
    np.testing.assert_allclose(hwc(hsv), rgb2hsv(a), atol=1e-14, rtol=0)
    h = rng.random((24, 24, 3))
    h[0, :3, 0] = [0.0, 1.0, 5 / 6]
    np.testing.assert_allclose(hwc(C.hsv_to_rgb(chw(h))), hsv2rgb(h), atol=1e-14, rtol=0)
    np.testing.assert_allclose(hwc(C.hsv_to_rgb(hsv)), a, atol=1e-14)  # round trip


@pytest.mark.parametrize("severity", [1, 2])
def test_gaussian_noise_statistics(severity):
    y = C.gaussian_noise(grey(), severity, generator=gen(0))
    sigma = C.GAUSSIAN_NOISE[severity - 1]
    assert float(y.std()) == pytest.approx(sigma, rel=0.03)
    assert float(y.mean()) == pytest.approx(0.5, abs=3e-3)


@pytest.mark.parametrize("severity", [1, 3])
def test_shot_noise_variance_is_x_over_lambda(severity):
    lam = C.SHOT_NOISE[severity - 1]
    x = 0.25
    y = C.shot_noise(grey(x), severity, generator=gen(1))
    assert float(y.mean()) == pytest.approx(x, rel=0.02)
    assert float(y.var()) == pytest.approx(x / lam, rel=0.05)
    assert torch.allclose(y * lam, torch.round(y * lam))  # counts / lambda


@pytest.mark.parametrize("severity", [1, 5])
def test_impulse_noise_fraction(severity):
    amount = C.IMPULSE_NOISE[severity - 1]
    y = C.impulse_noise(grey(), severity, generator=gen(2))
    changed = y != 0.5
    assert float(changed.double().mean()) == pytest.approx(amount, rel=0.05)
    assert bool(((y[changed] == 0) | (y[changed] == 1)).all())
    assert float((y == 1).double().mean()) == pytest.approx(amount / 2, rel=0.1)


@pytest.mark.parametrize("severity", [1, 2])
def test_speckle_noise_std_is_x_sigma(severity):
    x = 0.4
    y = C.speckle_noise(grey(x), severity, generator=gen(3))
    assert float(y.std()) == pytest.approx(x * C.SPECKLE_NOISE[severity - 1], rel=0.03)
    assert float(y.mean()) == pytest.approx(x, abs=3e-3)


@pytest.mark.parametrize(("severity", "scale"), [(1, 1.0), (3, 1.0), (5, 1.0), (5, 0.5)])
def test_gaussian_blur_equals_skimage(severity, scale):
    x = rand_images(2, 40, 36, seed=4)
    y = C.gaussian_blur(x, severity, scale=scale)
    sigma = C.GAUSSIAN_BLUR[severity - 1] * scale
    for i in range(2):
        ref = np.clip(sk_gaussian(hwc(x[i]), sigma=sigma, channel_axis=-1), 0, 1)
        np.testing.assert_allclose(hwc(y[i]), ref, atol=1e-6)
        # skimage gaussian = scipy gaussian_filter with mode 'nearest' per channel
        ref2 = np.stack([ndi.gaussian_filter(x[i, c].numpy(), sigma, mode="nearest") for c in range(3)])
        np.testing.assert_allclose(y[i].numpy(), np.clip(ref2, 0, 1), atol=1e-6)


def _zoom_blur_reference(a: np.ndarray, severity: int) -> np.ndarray:
    """ImageNet-C zoom blur on a square HWC float image, with scipy's order-1 zoom."""
    h = a.shape[0]
    out = np.zeros_like(a)
    factors = C.ZOOM_BLUR[severity - 1]
    for z in factors:
        ch = int(np.ceil(h / z))
        top = (h - ch) // 2
        zoomed = ndi.zoom(a[top : top + ch, top : top + ch], (z, z, 1), order=1)
        t = (zoomed.shape[0] - h) // 2
        out += zoomed[t : t + h, t : t + h]
    return np.clip((a + out) / (len(factors) + 1), 0, 1)


@pytest.mark.parametrize("severity", [1, 2, 3, 4, 5])
def test_zoom_blur_equals_scipy_zoom_reference(severity):
    x = rand_images(1, 48, 48, seed=5)
    y = C.zoom_blur(x, severity)
    np.testing.assert_allclose(hwc(y[0]), _zoom_blur_reference(hwc(x[0]), severity), atol=1e-6)


@pytest.mark.parametrize(("mode", "scipy_mode"), [("reflect", "reflect"), ("mirror", "mirror")])
def test_bilinear_sampling_equals_map_coordinates(mode, scipy_mode):
    x = rand_images(1, 9, 7, seed=6)
    rng = np.random.default_rng(1)
    rows = rng.uniform(-3, 11, (9, 7))
    cols = rng.uniform(-3, 9, (9, 7))
    y = C._bilinear(x, torch.from_numpy(rows)[None], torch.from_numpy(cols)[None], mode)
    for c in range(3):
        ref = ndi.map_coordinates(x[0, c].numpy(), [rows, cols], order=1, mode=scipy_mode)
        np.testing.assert_allclose(y[0, c].numpy(), ref, atol=1e-12)


def test_elastic_transform_tiny_scale_is_near_identity_and_warps_at_full_scale():
    x = rand_images(2, 32, 32, seed=7)
    y = C.elastic_transform(x, 3, generator=gen(0), scale=1e-6)
    assert float((y - x).abs().max()) < 1e-3
    z = C.elastic_transform(x, 3, generator=gen(0))
    assert float((z - x).abs().mean()) > 0.05
    # a constant image stays constant under any warp
    g = grey(0.3, n=2, h=32, w=32)
    assert torch.allclose(C.elastic_transform(g, 5, generator=gen(1)), g, atol=1e-12)


# ------------------------------------------------------------------ randomness
@pytest.mark.parametrize("name", RANDOM)
def test_same_seed_same_output_different_seed_differs(name):
    x = rand_images(2, 16, 16, seed=8)
    f = CORRUPTIONS[name]
    a = f(x, 3, generator=gen(10))
    assert torch.equal(a, f(x, 3, generator=gen(10)))
    assert not torch.equal(a, f(x, 3, generator=gen(11)))
    assert torch.equal(corrupt(x, name, 3, seed=4), corrupt(x, name, 3, seed=4))


@pytest.mark.parametrize("name", list(CORRUPTIONS))
def test_batch_equals_images_one_by_one_with_the_same_generator(name):
    """Semantics: a batch consumes the generator image by image, in batch order."""
    x = rand_images(3, 12, 10, seed=9)
    f = CORRUPTIONS[name]
    batch = f(x, 4, generator=gen(5))
    g = gen(5)
    singles = torch.cat([f(x[i : i + 1], 4, generator=g) for i in range(3)])
    assert torch.allclose(batch, singles, atol=1e-12)


def test_global_rng_untouched():
    state = torch.random.get_rng_state()
    for name in RANDOM:
        CORRUPTIONS[name](rand_images(1, 8, 8), 2)
    assert torch.equal(state, torch.random.get_rng_state())


# ------------------------------------------------------------------ every corruption
@pytest.mark.parametrize("name", list(CORRUPTIONS))
@pytest.mark.parametrize("severity", [1, 2, 3, 4, 5])
def test_every_corruption_and_severity_runs_in_range(name, severity):
    x = rand_images(2, 32, 32, seed=severity)
    y = CORRUPTIONS[name](x, severity, generator=gen(0))
    assert y.shape == x.shape and y.dtype == x.dtype
    assert bool(torch.isfinite(y).all()) and float(y.min()) >= 0 and float(y.max()) <= 1


@pytest.mark.parametrize("name", list(CORRUPTIONS))
def test_float32_and_non_square(name):
    x = rand_images(2, 20, 28, dtype=torch.float32)
    y = corrupt(x, name, 3, seed=0, scale=0.25)
    assert y.dtype == torch.float32 and y.shape == x.shape
    assert float(y.min()) >= 0 and float(y.max()) <= 1


# ------------------------------------------------------------------ errors
@pytest.mark.parametrize("severity", [0, 6, -1, 2.5, True, "3"])
def test_bad_severity(severity):
    with pytest.raises(InputError, match=r"severity must be an integer in 1\.\.5"):
        C.contrast(rand_images(1, 4, 4), severity)


def test_bad_name_shape_dtype_scale():
    with pytest.raises(InputError, match="did you mean 'zoom_blur'"):
        corrupt(rand_images(1, 4, 4), "zoom_blur_", 1)
    with pytest.raises(InputError, match=r"\(N, 3, H, W\)"):
        C.gaussian_noise(torch.rand(3, 8, 8), 1)
    with pytest.raises(InputError, match=r"\(N, 3, H, W\)"):
        C.brightness(torch.rand(1, 4, 8, 8), 1)
    with pytest.raises(InputError, match="floating-point"):
        C.saturate(torch.zeros(1, 3, 4, 4, dtype=torch.uint8), 1)
    with pytest.raises(InputError, match="scale"):
        C.gaussian_blur(rand_images(1, 4, 4), 1, scale=0.0)


# ------------------------------------------------------------------ imagecorruptions
_IMAGECORRUPTIONS = """
import sys, numpy as np
import imagecorruptions as ic
img = np.load(sys.argv[1])
out = {}
for name in ("contrast", "brightness", "saturate", "gaussian_blur", "zoom_blur"):
    for severity in (1, 3, 5):
        try:
            out[f"{name}/{severity}"] = np.asarray(ic.corrupt(img, corruption_name=name, severity=severity))
        except Exception:  # broken on current numpy / scikit-image
            pass
out["gaussian_noise/flat"] = np.asarray(ic.corrupt(np.full((64, 64, 3), 128, np.uint8), corruption_name="gaussian_noise", severity=1))
out["speckle_noise/flat5"] = np.asarray(ic.corrupt(np.full((256, 256, 3), 102, np.uint8), corruption_name="speckle_noise", severity=5))
np.savez(sys.argv[2], **out)
"""
IC_IMAGE = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def imagecorruptions_refs(tmp_path_factory) -> dict[str, np.ndarray]:
    """imagecorruptions' outputs on ``IC_IMAGE`` and on flat images (see ``_IMAGECORRUPTIONS``)."""
    # In a subprocess: imagecorruptions imports OpenCV, whose bundled Qt must not meet napari's in this process.
    if importlib.util.find_spec("imagecorruptions") is None:
        pytest.skip("imagecorruptions is not installed")
    tmp_path = tmp_path_factory.mktemp("imagecorruptions")
    np.save(tmp_path / "img.npy", IC_IMAGE)
    done = subprocess.run([sys.executable, "-c", _IMAGECORRUPTIONS, tmp_path / "img.npy", tmp_path / "ref.npz"], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"imagecorruptions does not run here (1.1.2 needs pkg_resources, i.e. setuptools < 81): {done.stderr.strip().splitlines()[-1]}")
    return dict(np.load(tmp_path / "ref.npz"))


def test_cross_check_with_imagecorruptions_package(imagecorruptions_refs):
    refs = imagecorruptions_refs
    x = chw(IC_IMAGE.astype(np.float64) / 255)[None]
    compared = set()
    for key, ref in refs.items():
        name, severity = key.split("/")
        if severity.startswith("flat"):
            continue
        ours = hwc(CORRUPTIONS[name](x, int(severity))[0])
        np.testing.assert_allclose(ours, ref.astype(np.float64) / 255, atol=1.5 / 255, err_msg=key)
        compared.add(name)
    assert {"contrast", "brightness", "saturate", "zoom_blur"} <= compared  # gaussian_blur fails there on current scikit-image
    ref = refs["gaussian_noise/flat"].astype(np.float64) / 255
    ours = corrupt(torch.full((1, 3, 64, 64), 128 / 255, dtype=torch.float64), "gaussian_noise", 1, seed=0)
    assert float(ours.std()) == pytest.approx(float(ref.std()), rel=0.1)
    assert float(ref.std()) == pytest.approx(C.GAUSSIAN_NOISE[0], rel=0.1)


# ------------------------------------------------------------------ seeds and severities on natural images
MONOTONE = tuple(n for n in CORRUPTIONS if n not in ("saturate", "elastic_transform"))
"""Corruptions whose published severity table is monotone in strength (saturate's (a, b) and
elastic_transform's (alpha, sigma) are not: severity 3 of either changes less than severity 2)."""


def natural() -> torch.Tensor:
    """Two natural photographs (astronaut, coffee), 96×96 crops, (2, 3, 96, 96) float64 in [0, 1]."""
    crops = [skimage.data.astronaut()[100:292:2, 150:342:2], skimage.data.coffee()[50:242:2, 200:392:2]]
    return torch.stack([chw(c.astype(np.float64) / 255) for c in crops])


@pytest.mark.parametrize("name", RANDOM)
def test_corrupt_seed_selects_the_random_stream(name):
    """``corrupt(seed=s)`` is the corruption with a fresh CPU generator seeded with ``s``: same seed, same
    output; every other seed, another output (the largest seed too)."""
    x = natural()
    seeds = (0, 1, 2, 12345, C.SEED_LIMIT - 1)
    outs = [corrupt(x, name, 3, seed=s) for s in seeds]
    for s, y in zip(seeds, outs, strict=True):
        assert torch.equal(y, CORRUPTIONS[name](x, 3, generator=gen(s))), s
        assert torch.equal(y, corrupt(x, name, 3, seed=s)), s
    for (s, a), (t, b) in itertools.combinations(zip(seeds, outs, strict=True), 2):
        assert not torch.equal(a, b), (s, t)


@pytest.mark.parametrize("name", sorted(set(CORRUPTIONS) - set(RANDOM)))
def test_deterministic_corruptions_ignore_the_seed(name):
    x = natural()
    assert torch.equal(corrupt(x, name, 3, seed=0), corrupt(x, name, 3, seed=1))
    assert torch.equal(corrupt(x, name, 3, seed=0), CORRUPTIONS[name](x, 3))


@pytest.mark.parametrize("name", MONOTONE)
def test_effect_grows_with_severity(name):
    x = natural()
    change = [float((corrupt(x, name, s, seed=0) - x).abs().mean()) for s in C.SEVERITIES]
    assert all(b > 1.02 * a for a, b in itertools.pairwise(change)), change


def _clipped_normal(sigma: float, low: float, high: float) -> tuple[float, float, float, float]:
    """Mean, variance, P(at low) and P(at high) of ``clip(sigma·Z, low, high)``, Z standard normal."""
    a, b = low / sigma, high / sigma
    p_low, p_high = float(norm.cdf(a)), float(norm.sf(b))
    m1 = a * p_low + b * p_high + norm.pdf(a) - norm.pdf(b)
    m2 = a * a * p_low + b * b * p_high + (norm.cdf(b) - p_low) + a * norm.pdf(a) - b * norm.pdf(b)
    return sigma * m1, sigma**2 * (m2 - m1**2), p_low, p_high


@pytest.mark.parametrize("severity", C.SEVERITIES)
def test_speckle_relative_change_is_a_clipped_normal(severity):
    """On a flat image x, (out - x) / x = clip(sigma·Z, -1, (1 - x) / x): the masses clipped to 0 and 1, the
    mean and the variance have closed forms in sigma, checked to 5 standard errors on 786 432 values."""
    x, sigma = 0.4, C.SPECKLE_NOISE[severity - 1]
    y = C.speckle_noise(grey(x, n=4, h=256, w=256), severity, generator=gen(30 + severity)).flatten().numpy()
    r, n = (y - x) / x, y.size
    mean, var, p_low, p_high = _clipped_normal(sigma, -1.0, (1 - x) / x)
    for observed, p in ((np.mean(y == 0), p_low), (np.mean(y == 1), p_high)):
        assert observed == pytest.approx(p, abs=5 * np.sqrt(p * (1 - p) / n) + 2 / n)
    assert np.mean(r) == pytest.approx(mean, abs=5 * np.sqrt(var / n))
    assert np.var(r) == pytest.approx(var, rel=5 * np.sqrt(2 / n))


def test_speckle_severity_5_is_x_plus_x_times_0_6_normal():
    x = natural()
    z = C._normal(tuple(x.shape), gen(7))  # the normals the corruption draws from this generator
    assert torch.equal(C.speckle_noise(x, 5, generator=gen(7)), (x + x * 0.6 * z).clamp(0, 1))
    assert C.SPECKLE_NOISE[4] == 0.6


def test_speckle_severity_5_matches_imagecorruptions(imagecorruptions_refs):
    """imagecorruptions' speckle at severity 5 on a flat 102/255 image: its uint8 output is 255 where
    0.4·(1 + 0.6·Z) >= 1 and 0 where it is below 1/255 (the package truncates to uint8)."""
    ref = imagecorruptions_refs["speckle_noise/flat5"].astype(np.float64).ravel()
    x, sigma, n = 102 / 255, 0.6, ref.size
    p_top = float(norm.sf((1 / x - 1) / sigma))
    p_zero = float(norm.cdf((1 / (255 * x) - 1) / sigma))
    for observed, p in ((np.mean(ref == 255), p_top), (np.mean(ref == 0), p_zero)):
        assert observed == pytest.approx(p, abs=5 * np.sqrt(p * (1 - p) / n))
    _, var, _, _ = _clipped_normal(sigma, -1.0, (1 - x) / x)
    assert np.std(ref / 255) == pytest.approx(x * np.sqrt(var), rel=0.02)
    ours = C.speckle_noise(grey(x, n=1, h=256, w=256), 5, generator=gen(0))
    assert float(ours.std()) == pytest.approx(float(np.std(ref / 255)), rel=0.02)


@pytest.mark.parametrize("seed", [C.SEED_LIMIT, 2**40, -1, True, 1.0, "0"])
def test_seeds_torch_would_alias_are_refused(seed):
    # torch keeps the low 32 bits of a seed: 2**32 and 2**40 would silently repeat seed 0, -1 seed 2**32 - 1
    with pytest.raises(InputError, match=r"seed must be None or an integer in 0\.\.4294967295.*got"):
        corrupt(natural(), "gaussian_noise", 1, seed=seed)
