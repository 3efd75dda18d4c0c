"""Every built-in stage on real-like inputs, with both cameras' values and in every CFA layout.

The per-stage test modules draw uniform random numbers, constants and patterns. Real
data is different: photographs and raws live on an integer grid (8-bit ``k / 255``,
12/14/16-bit counts over the white level), so equal values and exact ties are common,
and that is where decision-taking stages (Menon's direction, the median's order) can
part in float32. Here each stage's two backends must agree on such inputs, on the same
numbers in both dtypes (:func:`support.assert_backends_agree_on_values`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support import assert_backends_agree_on_values, dn_raw_batches, natural_raw_batches, natural_rgb_batches

from ispkit import Camera
from ispkit.cfa import BAYER_PATTERNS
from ispkit.color import rgb_to_yuv_numpy
from ispkit.stages import all_stages
from ispkit.stages.base import Stage

CAMERAS = ["microscopy", "drone"]
#: Each stage with every layout that can change its result (only CFA-aware stages read it).
STAGE_LAYOUTS = [
    pytest.param(stage, pattern, id=f"{stage.kind}-{stage.method}-{pattern}")
    for stage in all_stages()
    for pattern in (BAYER_PATTERNS if stage.cfa_aware else ("RGGB",))
]


def camera_values(stage: type[Stage], camera: str) -> dict[str, Any]:
    """``stage``'s defaults with the camera-derived ones (black level, gains, matrix) read from ``camera``."""
    cam = Camera.builtin(camera)
    return {p.name: p.validate(cam.resolve(p.default), f"{stage.kind}.{p.name}") for p in stage.params}


@st.composite
def real_inputs(draw: Any, stage: type[Stage], pattern: str) -> np.ndarray:
    """A batch of the domain ``stage`` takes: mosaics of photographs or integer-DN raws, RGB views, luma planes."""
    if stage.takes == "raw":
        return draw(st.one_of(natural_raw_batches(pattern), dn_raw_batches()))
    views = draw(natural_rgb_batches())
    return views if stage.takes == "rgb" else np.stack([rgb_to_yuv_numpy(view)[0] for view in views])


def test_every_domain_and_layout_is_covered():
    assert {stage.takes for stage in all_stages()} == {"raw", "rgb", "luma"}
    assert sum(1 for p in STAGE_LAYOUTS if p.values[0].method == "menon2007") == 4


@pytest.mark.parametrize("camera", CAMERAS)
@pytest.mark.parametrize(("stage", "pattern"), STAGE_LAYOUTS)
@settings(max_examples=6, deadline=None)
@given(data=st.data())
def test_backends_agree_on_real_inputs(stage, pattern, camera, data):
    batch = data.draw(real_inputs(stage, pattern), label="batch")
    assert_backends_agree_on_values(stage, batch, camera_values(stage, camera), pattern)
