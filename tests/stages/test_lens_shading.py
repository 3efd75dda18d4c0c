"""Lens shading (gain_map, radial): the DNG SDK's interpolation, both backends, conformance, pipelines."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from support import assert_backends_agree, raw_batches

from ispkit import Pipeline
from ispkit.camera import SHADING_POINTS, Camera
from ispkit.errors import ConfigError
from ispkit.stages.base import FromCamera
from ispkit.stages.lens_shading import GainMapShading, RadialShading, gain_map, gain_map_numpy, radial, radial_numpy
from ispkit.testing import check_stage

RNG = np.random.default_rng(5)
SETTINGS = settings(max_examples=25, deadline=None)


def sdk_gain(grid: np.ndarray, origin, spacing, row: int, col: int, height: int, width: int) -> float:
    """The gain the DNG SDK's dng_gain_map_interpolator gives pixel (row, col), written out literally from the SDK's steps."""
    points_v, points_h = grid.shape

    def index(position: float, origin: float, spacing: float, points: int) -> tuple[int, int, float]:
        t = (position - origin) / spacing
        if t <= 0.0:
            return 0, 0, 0.0
        i = int(t)
        if i >= points - 1:
            return points - 1, points - 1, 0.0
        return i, i + 1, t - i

    r1, r2, fr = index((row + 0.5) / height, origin[0], spacing[0], points_v)
    c1, c2, fc = index((col + 0.5) / width, origin[1], spacing[1], points_h)
    top = grid[r1, c1] * (1 - fc) + grid[r1, c2] * fc
    bottom = grid[r2, c1] * (1 - fc) + grid[r2, c2] * fc
    return top * (1 - fr) + bottom * fr


def sdk_vignette(k, center, row: int, col: int, height: int, width: int) -> float:
    """FixVignetteRadial as the DNG SDK defines it (exact arithmetic, without its 16-bit tables)."""
    cy, cx = center[0] * height, center[1] * width
    radius = math.hypot(max(abs(cy), abs(height - cy)), max(abs(cx), abs(width - cx)))
    r2 = ((row + 0.5 - cy) ** 2 + (col + 0.5 - cx) ** 2) / radius**2
    return 1.0 + sum(k[i] * r2 ** (i + 1) for i in range(5))


def padded(grid: np.ndarray) -> np.ndarray:
    return np.pad(grid, ((0, SHADING_POINTS - grid.shape[0]), (0, SHADING_POINTS - grid.shape[1])), mode="edge")


def shaded_camera(**fields) -> Camera:
    return Camera(
        name="shaded",
        shading_map=RNG.uniform(0.5, 3.0, (4, SHADING_POINTS, SHADING_POINTS)),
        shading_origin=(0.03, -0.1),
        shading_spacing=(1 / 22, 1 / 40),
        vignette=(0.3, -0.2, 0.1, 0.05, -0.01),
        vignette_center=(0.4, 0.7),
        **fields,
    )


class TestDeclaration:
    def test_methods_and_parameters(self):
        assert (GainMapShading.kind, GainMapShading.method, RadialShading.method) == ("lens_shading", "gain_map", "radial")
        assert GainMapShading.takes == GainMapShading.gives == RadialShading.takes == RadialShading.gives == "raw"
        gains, origin, spacing = GainMapShading.params
        assert gains.shape == (4, 33, 33) and gains.default == FromCamera("shading_map") and gains.differentiable
        assert not origin.differentiable and not spacing.differentiable and spacing.bounds[0] > 0
        k, center = RadialShading.params
        assert k.shape == (5,) and k.default == FromCamera("vignette") and k.differentiable and not center.differentiable

    @pytest.mark.parametrize("stage", [GainMapShading, RadialShading])
    def test_neutral_by_default(self, stage):
        raw = RNG.random((6, 8))
        values = {p.name: p.validate(Camera(name="c").resolve(p.default), p.name) for p in stage.params}
        np.testing.assert_array_equal(stage.run_numpy(raw, values, "RGGB"), raw)


class TestConformance:
    @pytest.mark.parametrize("stage", [GainMapShading, RadialShading])
    def test_default_camera(self, stage):
        check_stage(stage)

    @pytest.mark.parametrize("stage", [GainMapShading, RadialShading])
    def test_shaded_camera(self, stage):
        check_stage(stage, camera=shaded_camera())


class TestGainMapIsTheDngInterpolation:
    @pytest.mark.parametrize(
        ("points", "origin", "spacing"),
        [
            ((23, 23), (0.0, 0.0), (1 / 22, 1 / 22)),
            ((13, 17), (0.0, 0.0), (1 / 12, 1 / 16)),
            ((5, 9), (0.1, -0.05), (0.2, 0.13)),
            ((1, 4), (0.0, 0.3), (1.0, 0.1)),
        ],
    )
    def test_a_smaller_map_padded_with_its_edges_is_exact(self, points, origin, spacing):
        """A DNG map of fewer points, padded to 33×33 with its last row and column, gives every pixel the SDK's gain."""
        h, w = 14, 22
        maps = RNG.uniform(0.8, 2.5, (4, *points))
        grids = np.stack([padded(m) for m in maps])
        raw = RNG.uniform(0.0, 1.0, (h, w))
        expected = np.array([[raw[r, c] * sdk_gain(maps[2 * (r % 2) + c % 2], origin, spacing, r, c, h, w) for c in range(w)] for r in range(h)])
        np.testing.assert_allclose(gain_map_numpy(raw, grids, np.array(origin), np.array(spacing)), expected, rtol=1e-12)
        out = gain_map(
            torch.as_tensor(raw)[None], torch.as_tensor(grids), torch.tensor(origin, dtype=torch.float64), torch.tensor(spacing, dtype=torch.float64)
        )
        np.testing.assert_allclose(out[0].numpy(), expected, rtol=1e-12)

    def test_each_site_reads_its_own_map(self):
        grids = np.ones((4, SHADING_POINTS, SHADING_POINTS)) * np.array([1.0, 2.0, 3.0, 4.0])[:, None, None]
        out = gain_map_numpy(np.ones((4, 4)), grids, np.zeros(2), np.full(2, 1 / 32))
        assert out.tolist() == [[1, 2, 1, 2], [3, 4, 3, 4], [1, 2, 1, 2], [3, 4, 3, 4]]

    @SETTINGS
    @given(
        batch=raw_batches(),
        seed=st.integers(0, 2**31),
        origin=st.tuples(st.floats(-1, 1), st.floats(-1, 1)),
        spacing=st.tuples(st.floats(0.02, 1), st.floats(0.02, 1)),
    )
    def test_backends_agree_on_any_geometry(self, batch, seed, origin, spacing):
        """Any origin, spacings down to 1/50 of the image, gains from 0.25 to 8 (float32 parameters round the origin by
        up to 3e-8, which a map rising by 64 within 1/500 of the image, the bounds' extreme, turns into 1e-3)."""
        gains = np.random.default_rng(seed).uniform(0.25, 8.0, (4, SHADING_POINTS, SHADING_POINTS))
        values = {
            "gains": GainMapShading.param("gains").validate(gains, "gains"),
            "origin": GainMapShading.param("origin").validate(origin, "origin"),
            "spacing": GainMapShading.param("spacing").validate(spacing, "spacing"),
        }
        assert_backends_agree(GainMapShading, batch, values)

    def test_gradient_reaches_the_points_that_weigh_on_pixels(self):
        gains = torch.ones(4, SHADING_POINTS, SHADING_POINTS, dtype=torch.float64, requires_grad=True)
        gain_map(
            torch.ones(1, 4, 4, dtype=torch.float64), gains, torch.zeros(2, dtype=torch.float64), torch.full((2,), 1 / 32, dtype=torch.float64)
        ).sum().backward()
        # Four pixels of each site, all weights summing to 1 per pixel: each site's gradient sums to 4.
        np.testing.assert_allclose(gains.grad.sum(dim=(1, 2)).numpy(), [4.0] * 4)
        # The last pixel centre, 3.5 / 4 = 28 / 32, lies on point 28: the points after it carry nothing.
        assert gains.grad[:, 28, :].sum() > 0 and gains.grad[:, 29:, :].abs().sum() == 0 and gains.grad[:, :, 29:].abs().sum() == 0


class TestRadialIsFixVignetteRadial:
    @pytest.mark.parametrize("center", [(0.5, 0.5), (0.2, 0.9), (0.0, 1.0)])
    def test_known_values(self, center):
        k = np.array([0.4, -0.3, 0.2, 0.1, -0.05])
        h, w = 10, 16
        raw = RNG.uniform(0.0, 1.0, (h, w))
        expected = np.array([[raw[r, c] * sdk_vignette(k, center, r, c, h, w) for c in range(w)] for r in range(h)])
        np.testing.assert_allclose(radial_numpy(raw, k, np.array(center)), expected, rtol=1e-12)
        out = radial(torch.as_tensor(raw)[None], torch.as_tensor(k), torch.tensor(center, dtype=torch.float64))
        np.testing.assert_allclose(out[0].numpy(), expected, rtol=1e-12)

    def test_the_farthest_corner_is_at_radius_one(self):
        """With k0 = 1 alone the gain is 1 + r²; the optical centre at a corner puts the opposite pixel centre just inside r = 1."""
        out = radial_numpy(np.ones((4, 4)), np.array([1.0, 0, 0, 0, 0]), np.array([0.0, 0.0]))
        assert out[0, 0] == pytest.approx(1 + 0.5**2 * 2 / 32)
        assert out[3, 3] == pytest.approx(1 + 3.5**2 * 2 / 32)


class TestInPipelines:
    def test_after_black_level_and_from_the_camera(self):
        camera = shaded_camera(black_level=(0.05, 0.06, 0.05, 0.06))
        stages = [
            {"kind": "black_level"},
            {"kind": "lens_shading", "method": "gain_map"},
            {"kind": "lens_shading", "method": "radial", "name": "vignette"},
            {"kind": "demosaic", "method": "bilinear"},
        ]
        pipeline = Pipeline(stages, camera)
        raw = RNG.uniform(0.1, 0.9, (8, 12))
        black = raw - np.tile(np.array(camera.black_level).reshape(2, 2), (4, 6))
        shaded = radial_numpy(
            gain_map_numpy(black, np.asarray(camera.shading_map), np.array(camera.shading_origin), np.array(camera.shading_spacing)),
            np.array(camera.vignette),
            np.array(camera.vignette_center),
        )
        expected = Pipeline([{"kind": "demosaic", "method": "bilinear"}], camera)(shaded)
        np.testing.assert_allclose(pipeline(raw), expected, atol=1e-12)
        module = pipeline.to_torch(trainable="lens_shading", dtype=torch.float64)
        out = module(torch.as_tensor(raw))
        np.testing.assert_allclose(out.detach().numpy(), expected, atol=1e-9)
        out.sum().backward()
        assert module.lens_shading.gains.grad is not None
        assert Pipeline.from_yaml(pipeline.to_yaml()) == pipeline

    def test_bounds_refuse_a_camera_map_out_of_range(self):
        camera = dataclasses.replace(shaded_camera(), shading_map=np.full((4, SHADING_POINTS, SHADING_POINTS), 100.0))
        with pytest.raises(ConfigError, match=r"lens_shading\.gains: values must lie in \[0\.0, 64\.0\]"):
            Pipeline([{"kind": "black_level"}, {"kind": "lens_shading", "method": "gain_map"}, {"kind": "demosaic", "method": "bilinear"}], camera)
