"""ispkit.raw_corruptions (the package): lookup, corrupt_raw, and the contracts every registered corruption keeps.

Every registered corruption (the optics plugin's ``defocus`` too, when installed) is run on
raws of natural scenes: severity is monotone, seeds reproduce, a batch gets independent
draws, shapes and dtypes come back, numpy equals torch where both exist, gradients reach
the quantities declared differentiable, and bad input is rejected with a message naming it.
"""

from __future__ import annotations

import dataclasses
import itertools
import re
from pathlib import Path

import numpy as np
import pytest
import torch

import ispkit.raw_corruptions as rc
from ispkit.camera import Camera
from ispkit.errors import InputError
from ispkit.raw_corruptions import SEVERITIES, corrupt_raw, raw_corruption, raw_corruptions
from ispkit.raw_corruptions.builtins import BUILTIN_RAW_CORRUPTIONS

ROOT = Path(__file__).resolve().parents[2]
NAMES = sorted(raw_corruptions())
RANDOM = [name for name in NAMES if raw_corruption(name).random]
BOTH = [name for name in NAMES if raw_corruption(name).numpy is not None]
FIXED = {"motion_blur": {"angle_deg": 30.0}}
"""Values that make a corruption draw nothing, so that its two backends can be compared number for number."""


def _torch(raw: np.ndarray, name: str, severity: int, camera: Camera, seed: int = 0, **values) -> np.ndarray:
    return corrupt_raw(torch.from_numpy(raw), name, severity, camera=camera, seed=seed, **values).numpy()


def test_the_builtins_and_their_families():
    assert [c.name for c in BUILTIN_RAW_CORRUPTIONS] == [
        "low_light", "overexposure", "motion_blur", "vignetting", "lens_shading", "chromatic_aberration",
        "illuminant", "defective_pixels", "fixed_pattern_noise", "dark_current",
    ]  # fmt: skip
    assert list(raw_corruptions())[:10] == [c.name for c in BUILTIN_RAW_CORRUPTIONS]
    assert {c.family for c in BUILTIN_RAW_CORRUPTIONS} == set(rc.FAMILIES)
    assert [name for name in BOTH if name in {c.name for c in BUILTIN_RAW_CORRUPTIONS}] == [
        "chromatic_aberration", "illuminant", "lens_shading", "low_light", "motion_blur", "vignetting",
    ]  # fmt: skip


@pytest.mark.parametrize("name", NAMES)
def test_severity_is_monotone_on_natural_raws(name, natural_raw, camera):
    distances = [np.abs(_torch(natural_raw, name, s, camera) - natural_raw).mean() for s in SEVERITIES]
    assert all(a < b for a, b in itertools.pairwise(distances)), distances
    assert distances[0] > 0


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_output_and_the_input_untouched(name, natural_raw, camera):
    before = natural_raw.copy()
    first = _torch(natural_raw, name, 3, camera, seed=7)
    np.testing.assert_array_equal(first, _torch(natural_raw, name, 3, camera, seed=7))
    np.testing.assert_array_equal(natural_raw, before)
    other = _torch(natural_raw, name, 3, camera, seed=8)
    assert (not np.array_equal(first, other)) == raw_corruption(name).random


@pytest.mark.parametrize("name", RANDOM)
def test_a_batch_gets_independent_draws(name, natural_raw, camera):
    copies = np.stack([natural_raw[0]] * 4)
    pattern = name == "fixed_pattern_noise"  # 128 draws per image (rows and columns; its banding's phase is one more)
    out = _torch(copies, name, 4, camera, seed=3, **({"banding_e": 0.0} if pattern else {}))
    assert all(not np.array_equal(out[0], out[i]) for i in (1, 2, 3))
    if name != "motion_blur":  # noise: the differences of two pairs of draws are uncorrelated (within 4 standard errors)
        samples = 128 if pattern else out[0].size
        assert abs(np.corrcoef((out[0] - out[1]).ravel(), (out[2] - out[3]).ravel())[0, 1]) < 4 / np.sqrt(samples)


@pytest.mark.parametrize("name", NAMES)
def test_shapes_dtypes_and_range_come_back(name, natural_raw, camera):
    ceiling = (2**camera.bit_depth - 1) * camera.justification / camera.white_level
    x = torch.from_numpy(natural_raw).to(torch.float32)
    for given in (x, x[:, None], x[0]):
        out = corrupt_raw(given, name, 2, camera=camera, seed=0)
        assert out.shape == given.shape and out.dtype == torch.float32
        assert 0.0 <= float(out.min()) and float(out.max()) <= ceiling + 1e-6
    single = corrupt_raw(natural_raw[0], name, 2, camera=camera, seed=0)
    assert isinstance(single, np.ndarray) and single.shape == (64, 64) and single.dtype == np.float64


@pytest.mark.parametrize("name", BOTH)
def test_numpy_equals_torch_where_both_exist(name, natural_raw, camera):
    values = FIXED.get(name, {})
    if raw_corruption(name).random and not values:  # low_light: the same distribution from different streams
        flat = np.full((1, 64, 64), 0.3)
        a = np.stack([corrupt_raw(flat, name, 2, camera=camera, seed=s) for s in range(8)])
        b = np.stack([_torch(flat, name, 2, camera, seed=s) for s in range(8)])
        assert abs(a.mean() - b.mean()) < 5 * a.std() / np.sqrt(a.size) + 1e-9
        assert a.var() == pytest.approx(b.var(), rel=0.05)
        return
    reference = corrupt_raw(natural_raw, name, 4, camera=camera, seed=0, **values)
    np.testing.assert_allclose(_torch(natural_raw, name, 4, camera, **values), reference, rtol=0, atol=1e-12)
    as_float32 = corrupt_raw(torch.from_numpy(natural_raw).float(), name, 4, camera=camera, seed=0, **values)
    np.testing.assert_allclose(as_float32.double().numpy(), reference, rtol=0, atol=1e-4)


@pytest.mark.parametrize(("name", "quantity"), [(n, q) for n in NAMES for q in raw_corruption(n).differentiable])
def test_gradients_reach_the_differentiable_quantities(name, quantity, natural_raw, camera):
    corruption = raw_corruption(name)
    value = torch.tensor(float(corruption.levels[2][quantity] if corruption.levels[2][quantity] is not None else 1.0), dtype=torch.float64, requires_grad=True)
    raw = torch.from_numpy(natural_raw).requires_grad_(True)
    out = corrupt_raw(raw, name, 3, camera=camera, seed=0, **{quantity: value})
    grad_value, grad_raw = torch.autograd.grad((out * torch.linspace(0, 1, out.numel(), dtype=out.dtype).reshape(out.shape)).sum(), (value, raw))
    assert torch.isfinite(grad_value) and float(grad_value) != 0.0
    assert torch.isfinite(grad_raw).all() and float(grad_raw.abs().sum()) > 0


class TestErrors:
    @pytest.mark.parametrize("severity", [0, 6, 2.5, True, "3"])
    def test_invalid_severity(self, severity, natural_raw, camera):
        with pytest.raises(InputError, match=r"raw corruption 'vignetting': severity must be an integer in 1\.\.5"):
            corrupt_raw(natural_raw, "vignetting", severity, camera=camera)

    def test_no_severity_and_a_varying_quantity_missing(self, natural_raw, camera):
        with pytest.raises(InputError, match=r"give a severity .* or a value for length_px"):
            corrupt_raw(natural_raw, "motion_blur", camera=camera)
        out = corrupt_raw(natural_raw, "motion_blur", camera=camera, length_px=0.0)  # the angle's default (random) is kept
        np.testing.assert_allclose(out, natural_raw, atol=1e-15)

    @pytest.mark.parametrize(
        ("values", "message"),
        [
            ({"exposure": 1.5}, r"exposure must be a number in \[1e-06, 1\] \(×\), got 1\.5"),
            ({"exposure": float("nan")}, "exposure must be a number"),
            ({"exposure": "dark"}, "exposure must be a number"),
            ({"exposure": torch.tensor([0.1, 0.2])}, r"got a tensor of shape|got tensor \[0\.1"),
            ({"exposur": 0.1}, "unknown quantity 'exposur'; its quantities are exposure"),
        ],
    )
    def test_invalid_quantity(self, values, message, natural_raw, camera):
        with pytest.raises(InputError, match=message):
            corrupt_raw(natural_raw, "low_light", 2, camera=camera, **values)

    def test_a_camera_without_gain_or_read_noise_is_named(self, natural_raw):
        with pytest.raises(
            InputError, match=r"'low_light' needs the camera's gain and read_noise, which camera 'microscopy' does not have .*dataclasses\.replace"
        ):
            corrupt_raw(natural_raw, "low_light", 1, camera="microscopy")
        with pytest.raises(InputError, match=r"'dark_current' needs the camera's gain, which camera 'microscopy'"):
            corrupt_raw(torch.from_numpy(natural_raw), "dark_current", 1, camera="microscopy")

    def test_an_unknown_camera_or_corruption_is_named(self, natural_raw, camera):
        with pytest.raises(Exception, match="unknown camera 'dron'"):
            corrupt_raw(natural_raw, "vignetting", 1, camera="dron")
        with pytest.raises(InputError, match="unknown raw corruption 'vignette': did you mean 'vignetting'"):
            corrupt_raw(natural_raw, "vignette", 1, camera=camera)

    @pytest.mark.parametrize(
        ("raw", "message"),
        [
            (np.full((8, 8), 1.5), r"expected raw values normalised to \[0, 1\] .*got values in \[1\.5, 1\.5\]"),
            (np.full((7, 8), 0.5), "height and width must be even"),
            (np.full((8, 8), 128, dtype=np.uint8), "expected floating-point data"),
            (np.full((2, 3, 8, 8), 0.5), r"expected a raw mosaic \(H, W\) or a batch \(N, H, W\)"),
            (np.array([[np.nan, 0.5], [0.5, 0.5]]), "NaN or infinite"),
            ([[0.5, 0.5], [0.5, 0.5]], "expected a numpy array or a torch tensor, got list"),
        ],
    )
    def test_bad_raw_data(self, raw, message, camera):
        for name in ("vignetting", "dark_current"):  # the numpy reference and the torch-only path
            with pytest.raises(InputError, match=message):
                corrupt_raw(raw, name, 1, camera=camera)

    def test_a_four_d_tensor_needs_one_channel(self, camera):
        with pytest.raises(InputError, match=r"a 4-d raw batch must be \(N, 1, H, W\), got shape \(1, 3, 8, 8\)"):
            corrupt_raw(torch.zeros(1, 3, 8, 8), "vignetting", 1, camera=camera)

    @pytest.mark.parametrize("seed", [-1, 2**32, 1.5, True])
    def test_invalid_seed(self, seed, camera):
        with pytest.raises(InputError, match=r"seed must be None or an integer in 0\.\.4294967295"):
            corrupt_raw(np.zeros((8, 8)), "vignetting", 1, camera=camera, seed=seed)

    def test_a_torch_only_corruption_has_no_numpy_reference(self, camera):
        with pytest.raises(InputError, match="'dark_current' has no numpy reference backend"):
            raw_corruption("dark_current").apply_numpy(np.zeros((8, 8)), 1, camera=camera)
        out = corrupt_raw(np.zeros((8, 8)), "dark_current", 5, camera=camera, seed=0)  # corrupt_raw runs it in torch float64
        assert isinstance(out, np.ndarray) and out.dtype == np.float64 and out.mean() > 0


class TestDeclarations:
    """A RawCorruption checks its own declaration, so that a plugin's mistake is caught when it is made."""

    def _make(self, **changes):
        base = dict(
            name="toy", family="sensor", summary="a toy", quantities=(rc.Quantity("gain", "×", "a gain", 0.0, 2.0),),
            levels=tuple({"gain": g} for g in (0.1, 0.2, 0.3, 0.4, 0.5)), torch=lambda raw, camera, generator, gain: raw * gain,
        )  # fmt: skip
        return rc.RawCorruption(**{**base, **changes})

    @pytest.mark.parametrize(
        ("changes", "message"),
        [
            ({"name": "two words"}, "name must be an identifier"),
            ({"family": "weather"}, "family must be one of exposure, blur, optics, colour, sensor, got 'weather'"),
            ({"levels": ({"gain": 0.1},) * 4}, "levels must be a tuple of 5 mappings"),
            ({"levels": ({"gain": 0.1},) * 4 + ({"gain": 3.0},)}, r"severity 5: gain must be a number in \[0, 2\]"),
            ({"levels": ({"gain": 0.1},) * 4 + ({"gian": 0.1},)}, "severity 5 must give exactly the quantities"),
            ({"needs": ("focal_length",)}, "needs names unknown camera facts"),
            ({"differentiable": ("offset",)}, "differentiable names"),
            ({"torch": None}, "must be callable"),
        ],
    )
    def test_invalid_declarations(self, changes, message):
        with pytest.raises(InputError, match=re.escape(message) if "[" not in message else message):
            self._make(**changes)

    def test_a_quantity_constant_over_severities_is_a_default(self):
        toy = self._make(
            quantities=(rc.Quantity("gain", "×", "a gain", 0.0, 2.0), rc.Quantity("offset", "", "an offset")),
            levels=tuple({"gain": g, "offset": 0.5} for g in (0.1, 0.2, 0.3, 0.4, 0.5)),
        )
        assert toy.level(gain=1.0) == {"gain": 1.0, "offset": 0.5}
        assert toy.level(4, offset=0.0) == {"gain": 0.4, "offset": 0.0}


class TestRegistry:
    """Raw corruptions are a hook kind: plugins add their own, and their faults are recorded and skipped."""

    @pytest.fixture
    def registry(self, monkeypatch):
        import ispkit.registry as registry_module

        registry_module.reset_registry()
        monkeypatch.setattr("ispkit.registry._REGISTRY", registry_module.Registry(entry_points=False))
        yield registry_module.get_registry()
        registry_module.reset_registry()

    @staticmethod
    def _plugin(result):
        import ispkit

        def implementation(self):
            if isinstance(result, BaseException):
                raise result
            return result

        return type("Plugin", (), {"ispkit_raw_corruptions": ispkit.hookimpl(implementation)})()

    def test_the_builtins_are_ispkit_s(self, registry):
        plugins = dict(registry.manager.list_name_plugin())
        assert plugins["ispkit.raw_corruptions"].__name__ == "ispkit.raw_corruptions.builtins"
        assert list(raw_corruptions()) == [c.name for c in BUILTIN_RAW_CORRUPTIONS]

    def test_a_plugin_corruption_is_usable(self, registry, camera):
        halve = dataclasses.replace(raw_corruption("vignetting"), name="halve", torch=lambda raw, camera, generator, field_angle_deg: raw / 2, numpy=None)
        registry.register(self._plugin([halve]), name="toy", provider="toy-dist")
        assert corrupt_raw(np.full((2, 4), 0.5), "halve", 1, camera=camera).tolist() == [[0.25] * 4] * 2

    @pytest.mark.parametrize(
        ("result", "error"),
        [
            (RuntimeError("boom"), "ispkit_raw_corruptions() raised RuntimeError: boom"),
            ([object()], "which is not a RawCorruption"),
            ("defocus", "returned 'defocus'; expected a list"),
        ],
    )
    def test_faults_are_recorded_and_the_builtins_kept(self, registry, result, error):
        registry.register(self._plugin(result), name="faulty", provider="faulty-dist")
        assert list(raw_corruptions()) == [c.name for c in BUILTIN_RAW_CORRUPTIONS]
        [failure] = registry.failures
        assert (failure.plugin, failure.distribution) == ("faulty", "faulty-dist") and error in failure.error

    def test_a_plugin_cannot_replace_a_builtin(self, registry, camera):
        impostor = dataclasses.replace(raw_corruption("low_light"), torch=lambda raw, camera, generator, exposure: raw)
        registry.register(self._plugin([impostor]), name="impostor", provider="impostor-dist")
        assert raw_corruption("low_light").torch is not impostor.torch
        assert raw_corruptions()["low_light"].torch is not impostor.torch  # the listing records the clash
        assert "raw corruption 'low_light' is provided twice: by 'ispkit' and by 'impostor-dist'" in registry.failures[0].error

    def test_a_missing_plugin_corruption_names_the_plugin(self, registry, camera):
        with pytest.raises(InputError, match="'defocus' is provided by the plugin 'ispkit-plugin-optics', which is not installed"):
            corrupt_raw(np.zeros((8, 8)), "defocus", 1, camera=camera)


class TestDescribe:
    def test_a_severity_in_words_names_the_quantities_that_change(self):
        assert raw_corruption("low_light").describe(3) == "low_light 3: exposure 0.03 ×"
        assert raw_corruption("chromatic_aberration").describe(5) == "chromatic_aberration 5: red_pct 0.5 %, blue_pct -0.5 %"
        # hot_fraction is the same at every severity: only the density is named
        assert raw_corruption("defective_pixels").describe(2) == "defective_pixels 2: density 0.0003"

    def test_an_unknown_severity_is_refused(self):
        with pytest.raises(InputError, match="severity"):
            raw_corruption("vignetting").describe(6)


class TestDocs:
    """The severity and backend tables of the module docstring and docs/raw-corruptions.md are those the code declares."""

    def test_the_docstring_holds_the_tables(self):
        assert rc.severity_table() in rc.__doc__
        assert rc.backend_table() in rc.__doc__

    def test_the_docs_page_holds_the_tables_and_is_in_the_nav(self):
        page = (ROOT / "docs" / "raw-corruptions.md").read_text(encoding="utf-8")
        assert rc.severity_table() in page and rc.backend_table() in page
        if "defocus" in raw_corruptions():
            defocus = [raw_corruption("defocus")]
            assert rc.severity_table(defocus) in page and rc.backend_table(defocus) in page
        assert "raw-corruptions.md" in (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
