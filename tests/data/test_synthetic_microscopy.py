"""Synthetic Raw-Microscopy scenes: valid, deterministic, and the classes are distinguishable."""

from __future__ import annotations

import numpy as np
import pytest

from ispkit.data.synthetic_microscopy import CLASS_PROPORTIONS, CLASSES, render_scene
from ispkit.errors import InputError


def test_stain_scales_absorbance():
    pale, strong = render_scene("LYT", 64, seed=1, stain=np.full(3, 0.5)), render_scene("LYT", 64, seed=1, stain=np.full(3, 1.5))
    assert pale.min() > strong.min()


def test_shape_range_and_determinism():
    a = render_scene("MON", 128, seed=4)
    assert a.shape == (3, 128, 128) and a.dtype == np.float64
    assert 0.0 < a.min() and a.max() < 0.9  # below full scale: the background is not saturated
    np.testing.assert_array_equal(a, render_scene("MON", 128, seed=4))
    assert not np.array_equal(a, render_scene("MON", 128, seed=5))


def test_published_class_proportions():
    assert len(CLASSES) == len(CLASS_PROPORTIONS) == 9
    assert sum(CLASS_PROPORTIONS) == pytest.approx(1.0, abs=0.002)


def _features(scene: np.ndarray) -> np.ndarray:
    """Histograms of the absorbance −log(T / background) per channel, over the centre."""
    centre = scene[:, 64:192, 64:192]
    background = np.median(scene.reshape(3, -1), axis=1)
    absorbance = -np.log(centre / background[:, None, None])
    return np.concatenate([np.histogram(a, bins=8, range=(0.05, 2.5))[0] / a.size for a in absorbance])


def test_classes_are_learnable_from_simple_features():
    """A nearest-centroid classifier on colour histograms beats chance (1/9) by far, yet is
    far from perfect: stain, focus and size vary, so shape must be learnt (a small CNN
    reaches 97 % in 30 CPU seconds, ``benchmarks/learnability.py``)."""
    train = {c: np.mean([_features(render_scene(c, seed=100 + i)) for i in range(12)], axis=0) for c in CLASSES}
    centroids = np.stack([train[c] for c in CLASSES])
    correct = 0
    for k, c in enumerate(CLASSES):
        for i in range(6):
            f = _features(render_scene(c, seed=1000 + i))
            correct += int(np.argmin(((centroids - f) ** 2).sum(axis=1)) == k)
    accuracy = correct / (6 * len(CLASSES))
    assert 0.35 <= accuracy <= 0.9, accuracy


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"label": "XYZ"}, "unknown Raw-Microscopy class 'XYZ'"), ({"label": "LYT", "size": 33}, "even and at least 32")],
)
def test_errors(kwargs, message):
    with pytest.raises(InputError, match=message):
        render_scene(**kwargs)
