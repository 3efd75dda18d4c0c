"""View distances (ispkit.drift.distances): SSIM against scikit-image on natural images, l2, errors."""

from __future__ import annotations

import numpy as np
import pytest
import skimage.data
import torch
from skimage.filters import gaussian as sk_gaussian
from skimage.metrics import structural_similarity

from ispkit.drift.distances import distance, l2_distance, ssim, ssim_distance
from ispkit.errors import InputError

SKIMAGE_SETTINGS = {"gaussian_weights": True, "sigma": 1.5, "use_sample_covariance": False, "data_range": 1.0, "channel_axis": -1}
"""The settings the module's docstring names: Wang et al. 2004 as scikit-image computes it (11×11 window,
truncate 3.5, reflected borders, the 5-pixel border cropped before the mean)."""


def _photographs() -> np.ndarray:
    """Two natural photographs (astronaut, coffee) as (2, 72, 88, 3) float64 in [0, 1]: non-square crops."""
    crops = [skimage.data.astronaut()[40:184:2, 120:296:2], skimage.data.coffee()[60:204:2, 180:356:2]]
    return np.stack([c.astype(np.float64) / 255 for c in crops])


def _distorted(reference: np.ndarray, kind: str) -> np.ndarray:
    if kind == "noise":
        return np.clip(reference + np.random.default_rng(3).normal(0.0, 0.05, reference.shape), 0.0, 1.0)
    if kind == "blur":
        return np.stack([sk_gaussian(image, sigma=1.2, channel_axis=-1) for image in reference])
    if kind == "gamma":
        return reference ** (1 / 2.2)
    if kind == "shift":  # a one-pixel shift: structure kept, every local mean moved
        return np.roll(reference, 1, axis=2)
    raise ValueError(kind)


def _batch(images: np.ndarray, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2))).to(dtype)


def _skimage_ssim(reference: np.ndarray, view: np.ndarray) -> float:
    """Mean over images of scikit-image's SSIM (every image has the same cropped area, so this is the pixel mean)."""
    return float(np.mean([structural_similarity(a, b, **SKIMAGE_SETTINGS) for a, b in zip(reference, view, strict=True)]))


@pytest.mark.parametrize("kind", ["noise", "blur", "gamma", "shift"])
def test_ssim_equals_skimage_on_distorted_photographs(kind):
    reference = _photographs()
    view = _distorted(reference, kind)
    expected = _skimage_ssim(reference, view)
    assert 0.3 < expected < 0.995  # a real distortion, not a near-identity
    got = ssim(_batch(reference), _batch(view))
    assert got.dtype == torch.float64 and got.shape == ()
    assert float(got) == pytest.approx(expected, abs=1e-12, rel=0)
    assert float(ssim_distance(_batch(reference), _batch(view))) == pytest.approx(1 - expected, abs=1e-12, rel=0)
    assert float(distance("ssim").fn(_batch(reference), _batch(view))) == pytest.approx(1 - expected, abs=1e-12, rel=0)


def test_ssim_in_float32_and_per_image():
    reference = _photographs()
    view = _distorted(reference, "gamma")
    got = ssim(_batch(reference, torch.float32), _batch(view, torch.float32))
    assert got.dtype == torch.float32 and float(got) == pytest.approx(_skimage_ssim(reference, view), abs=1e-5)
    for i in range(2):
        one = float(ssim(_batch(reference[i : i + 1]), _batch(view[i : i + 1])))
        assert one == pytest.approx(structural_similarity(reference[i], view[i], **SKIMAGE_SETTINGS), abs=1e-12, rel=0)


def test_ssim_distance_is_zero_for_identical_views_and_grows_with_the_distortion():
    reference = _batch(_photographs())
    assert float(ssim_distance(reference, reference)) == pytest.approx(0.0, abs=1e-12)
    noisy = [ssim_distance(reference, _batch(np.clip(_photographs() + np.random.default_rng(0).normal(0, s, (2, 72, 88, 3)), 0, 1))) for s in (0.01, 0.05, 0.2)]
    assert float(noisy[0]) < float(noisy[1]) < float(noisy[2])


def test_ssim_gradient_equals_finite_differences():
    reference = _batch(_photographs())
    view = _batch(_distorted(_photographs(), "blur")).requires_grad_(True)
    ssim_distance(reference, view).backward()
    assert bool(torch.isfinite(view.grad).all())
    eps = 1e-6
    for index in [(0, 0, 0, 0), (0, 1, 36, 40), (1, 2, 71, 87), (1, 0, 3, 50)]:  # corners and border included
        step = torch.zeros_like(view)
        step[index] = eps
        with torch.no_grad():
            numeric = (ssim_distance(reference, view + step) - ssim_distance(reference, view - step)) / (2 * eps)
        assert float(view.grad[index]) == pytest.approx(float(numeric), abs=1e-8, rel=1e-5), index


def test_ssim_needs_more_than_the_window_and_equal_shapes():
    with pytest.raises(InputError, match=r"larger than 10 pixels in each direction, got 10×16"):
        ssim(torch.rand(1, 3, 10, 16), torch.rand(1, 3, 10, 16))
    with pytest.raises(InputError, match=r"two view batches \(N, C, H, W\) of one shape"):
        ssim(torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 18))


def test_l2_distance_is_the_mean_squared_difference():
    reference, view = _photographs(), _distorted(_photographs(), "gamma")
    got = l2_distance(_batch(reference), _batch(view))
    assert float(got) == pytest.approx(float(np.mean((reference - view) ** 2)), abs=1e-15)
