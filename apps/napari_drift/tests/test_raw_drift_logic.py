"""Qt-free tests of the raw-corruption drift view (napari_drift/logic/drift_view.py: raw_corruption_stack)."""

from __future__ import annotations

import numpy as np
import pytest
from napari_drift.logic.composer import to_view
from napari_drift.logic.drift_view import raw_corruption_stack
from skimage import data

from ispkit import Camera, InputError, Pipeline, UnknownStageError
from ispkit.demo import scene_to_raw
from ispkit.raw_corruptions import corrupt_raw


@pytest.fixture(scope="module")
def photo_raw() -> np.ndarray:
    """A photograph (scikit-image's astronaut, 96×128 crop) as a drone raw mosaic."""
    scene = np.moveaxis(data.astronaut()[100:196, 180:308], -1, 0).astype(np.float64) / 255.0  # (3, H, W)
    return scene_to_raw(scene, Camera.get("drone"))


def test_each_view_is_the_corrupted_raw_through_the_preset(photo_raw):
    stack = raw_corruption_stack(photo_raw, "drone", "ma,s,ga", ["vignetting", "motion_blur", "dark_current"], [1, 4], seed=7)
    assert stack.data.shape == (3, 2, 96, 128, 3) and stack.data.dtype == np.float32
    assert stack.names == ("vignetting", "motion_blur", "dark_current") and stack.severities == (1, 4) and stack.skipped == {}
    pipeline = Pipeline.preset("ma,s,ga", camera="drone")
    np.testing.assert_array_equal(stack.clean, to_view(pipeline(photo_raw)))
    # a deterministic corruption: the view is exactly the corrupted raw through the preset
    np.testing.assert_array_equal(stack.data[0, 1], to_view(pipeline(corrupt_raw(photo_raw, "vignetting", 4, camera="drone"))))
    np.testing.assert_array_equal(stack.difference(), np.abs(stack.data - stack.clean[None, None]))
    # vignetting darkens the corners more at severity 4 than at 1, and leaves the centre
    corner = np.s_[:8, :8]
    assert stack.data[0, 1][corner].mean() < stack.data[0, 0][corner].mean() < stack.clean[corner].mean()
    assert abs(float(stack.data[0, 1][44:52, 60:68].mean() - stack.clean[44:52, 60:68].mean())) < 0.02
    # a hotter sensor (dark current, random) adds signal, more at severity 4
    assert stack.difference()[2, 1].mean() > stack.difference()[2, 0].mean() > 0
    assert stack.describe(2, 1) == "dark_current 4: temperature_c 65 °C"


def test_the_same_call_gives_the_same_stack_and_another_seed_another(photo_raw):
    one = raw_corruption_stack(photo_raw, "drone", "bi,s,me", ["defective_pixels"], [3], seed=1)
    again = raw_corruption_stack(photo_raw, "drone", "bi,s,me", ["defective_pixels"], [3], seed=1)
    other = raw_corruption_stack(photo_raw, "drone", "bi,s,me", ["defective_pixels"], [3], seed=2)
    np.testing.assert_array_equal(one.data, again.data)
    assert not np.array_equal(one.data, other.data)


def test_every_corruption_leaves_out_what_the_camera_cannot_support(photo_raw):
    # the microscopy camera publishes no gain or read noise: the sensor-noise corruptions need them
    mosaic = photo_raw[:32, :48]
    stack = raw_corruption_stack(mosaic, "microscopy", "bi,s,me", severities=[2])
    assert {"low_light", "dark_current"} <= set(stack.skipped) and "gain" in stack.skipped["low_light"]
    assert {"vignetting", "motion_blur"} <= set(stack.names) and not set(stack.names) & set(stack.skipped)
    with pytest.raises(InputError, match=r"'low_light' needs the camera's gain"):
        raw_corruption_stack(mosaic, "microscopy", "bi,s,me", ["low_light"], [2])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"severities": [0]}, r"severities must be some of 1, 2, 3, 4, 5"),
        ({"severities": []}, r"severities must be some of"),
        ({"names": ["moonlight"]}, r"moonlight"),
        ({"names": []}, r"at least one raw corruption"),
        ({"preset": "xx,s,me"}, r"unknown preset\(s\) 'xx,s,me'; presets: bi,s,me"),
    ],
)
def test_bad_choices_are_refused_with_what_was_expected(photo_raw, kwargs, message):
    call = {"preset": "bi,s,me", "names": ["vignetting"], "severities": [1], **kwargs}
    with pytest.raises((InputError, UnknownStageError), match=message):
        raw_corruption_stack(photo_raw[:16, :16], "drone", call.pop("preset"), call.pop("names"), call.pop("severities"))


def test_a_mosaic_must_be_two_dimensional(photo_raw):
    with pytest.raises(InputError, match=r"expected an \(H, W\) mosaic"):
        raw_corruption_stack(np.stack([photo_raw, photo_raw]), "drone", "bi,s,me", ["vignetting"], [1])
