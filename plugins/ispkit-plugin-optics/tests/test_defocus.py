"""The ``defocus`` raw corruption: registered through ispkit's hook, calibrated in depths of field, energy-conserving, both backends."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

import ispkit.registry
from ispkit.camera import Camera
from ispkit.cfa import masks_numpy
from ispkit.errors import InputError
from ispkit.raw_corruptions import backend_table, corrupt_raw, raw_corruption, severity_table
from ispkit_plugin_optics.defocus import DEFOCUS, camera_optics
from ispkit_plugin_optics.psf import airy_psf_numpy

README = (__import__("pathlib").Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


@pytest.fixture
def fresh_registry():
    ispkit.registry.reset_registry()
    yield ispkit.registry.get_registry()
    ispkit.registry.reset_registry()


def test_registered_through_the_hook_by_the_distribution(fresh_registry):
    assert raw_corruption("defocus") is DEFOCUS
    assert not [f for f in fresh_registry.failures if f.distribution == "ispkit-plugin-optics"]
    assert ("optics", "ispkit-plugin-optics") in {(record.plugin, record.distribution) for record in fresh_registry.imports}


def test_the_readme_holds_its_tables():
    assert severity_table([DEFOCUS]) in README and backend_table([DEFOCUS]) in README


@pytest.mark.parametrize(("name", "na", "pixel", "dof_um"), [("microscopy", 0.95, 0.1625, 0.525 / 0.95**2), ("drone", 1 / 16, 2.4, 0.525 * 16**2)])
def test_the_optics_come_from_the_camera(name, na, pixel, dof_um):
    optics = camera_optics(Camera.get(name))
    assert optics.na == pytest.approx(na) and optics.pixel_um == pytest.approx(pixel)
    assert optics.depth_of_field_um == pytest.approx(dof_um)
    narrow = dataclasses.replace(Camera.get(name), optics={**Camera.get(name).optics, "wavelength_green_nm": 550.0})
    assert camera_optics(narrow).wavelengths_nm == (620.0, 550.0, 450.0)


def test_a_camera_without_optics_is_named():
    with pytest.raises(InputError, match=r"defocus: camera 'plain' needs optics numerical_aperture \(or f_number\) and a pixel size"):
        corrupt_raw(np.zeros((8, 8)), "defocus", 1, camera=Camera(name="plain"))


@pytest.mark.parametrize("name", ["microscopy", "drone"])
def test_the_blur_grows_by_the_stated_pixels_per_depth_of_field(name):
    """σ_d = NA Δz / 2 = dof · λ_G / (2 NA): 1.70 px per unit for the microscope, 1.75 px for the drone; the measured spread of a point
    (its second moment, minus the in-focus one) follows it, and each kernel sums to 1 within its window, which holds the blur."""
    camera = Camera.get(name)
    optics = camera_optics(camera)
    per_unit = optics.wavelengths_nm[1] * 1e-3 / (2 * optics.na) / optics.pixel_um
    assert per_unit == pytest.approx({"microscopy": 1.70, "drone": 1.75}[name], abs=0.01)
    raw = np.zeros((96, 96))
    raw[48, 49] = 1.0  # a green site of RGGB
    green = masks_numpy(raw.shape, camera.pattern)[1]
    rows = np.mgrid[0:96, 0:96][0]

    def spread(dof: float) -> float:
        out = corrupt_raw(raw, "defocus", camera=camera, defocus_dof=dof)
        weights = np.where(green, out, 0.0)
        assert weights.sum() == pytest.approx(1.0, abs=1e-6)  # the green light is kept (interior)
        return float((weights * (rows - 48) ** 2).sum() / weights.sum())

    focused = spread(0.0)
    for dof in (2.0, 4.0):
        assert math.sqrt(spread(dof) - focused) == pytest.approx(dof * per_unit, rel=0.08)
        dz = dof * optics.depth_of_field_um
        kernels = airy_psf_numpy(optics.na, 1.0, optics.pixel_um, np.array(optics.wavelengths_nm), dz, radius=optics.radius(dz))
        np.testing.assert_allclose(kernels.sum(axis=(-2, -1)), 1.0, atol=1e-12)
        assert kernels[:, 0, :].sum(axis=-1).max() < 2e-3  # the window's edge holds almost nothing


@pytest.mark.parametrize("pattern", ["RGGB", "GBRG"])
def test_a_flat_field_stays_flat_and_the_backends_agree(pattern):
    camera = dataclasses.replace(Camera.get("drone"), pattern=pattern)
    flat = np.tensordot([0.2, 0.5, 0.8], masks_numpy((32, 32), pattern), axes=1)
    np.testing.assert_allclose(corrupt_raw(flat, "defocus", 4, camera=camera), flat, atol=1e-12)
    raw = np.random.default_rng(0).random((2, 32, 32))
    expected = corrupt_raw(raw, "defocus", 3, camera=camera)
    np.testing.assert_allclose(corrupt_raw(torch.from_numpy(raw), "defocus", 3, camera=camera).numpy(), expected, atol=1e-12)
    assert np.abs(expected - raw).mean() > 0.05


def test_a_focus_error_in_micrometres_overrides_the_depths_of_field():
    camera = Camera.get("microscopy")
    raw = np.random.default_rng(1).random((1, 32, 32))
    dz = 2.0 * camera_optics(camera).depth_of_field_um
    np.testing.assert_array_equal(corrupt_raw(raw, "defocus", camera=camera, defocus_dof=0.0, defocus_um=dz), corrupt_raw(raw, "defocus", 3, camera=camera))


def test_differentiable_in_the_focus_error():
    camera = Camera.get("microscopy")
    raw = torch.rand(1, 16, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    dof = torch.tensor(1.5, dtype=torch.float64, requires_grad=True)
    out = corrupt_raw(raw, "defocus", camera=camera, defocus_dof=dof)
    (grad,) = torch.autograd.grad((out - raw).pow(2).sum(), dof)
    assert float(grad) > 0  # more defocus, farther from the sharp raw
