"""Qt-free tests of napari_drift.logic (no display needed)."""

from __future__ import annotations

import numpy as np
import pytest
from napari_drift import _reader
from napari_drift.logic import ComposerModel, camera_from_metadata, cfa_rgb, parse_value, read_raw_layers
from napari_drift.logic.composer import to_view

from ispkit import Camera, ParameterError, Pipeline, RawFormatError, UnknownStageError

# -- raw layers -------------------------------------------------------------------------


def test_reader_tiff_data_and_metadata(raw_tiff, mosaic):
    layers = read_raw_layers(raw_tiff)
    assert len(layers) == 2
    data, kwargs, kind = layers[0]
    assert kind == "image" and data.dtype == np.float32 and data.shape == mosaic.shape
    np.testing.assert_allclose(data, mosaic, atol=1 / 65535)
    assert kwargs["name"] == "cells" and kwargs["colormap"] == "gray"
    md = kwargs["metadata"]
    assert md == {"ispkit_camera": "microscopy", "ispkit_pattern": "RGGB", "ispkit_path": str(raw_tiff)}
    assert camera_from_metadata(md) == Camera.get("microscopy")
    cfa, cfa_kwargs, cfa_kind = layers[1]
    assert cfa_kind == "image" and cfa.shape == (*mosaic.shape, 3)
    assert cfa_kwargs["rgb"] and not cfa_kwargs["visible"] and cfa_kwargs["opacity"] < 1
    assert "ispkit_camera" not in cfa_kwargs["metadata"]


def test_reader_dng_camera_from_tags(raw_dng):
    path, stored = raw_dng
    layers = _reader.napari_get_reader(str(path))(str(path))
    data, kwargs, _ = layers[0]
    np.testing.assert_allclose(data, stored / 4095, atol=1e-6)
    camera = camera_from_metadata(kwargs["metadata"])
    assert camera.pattern == "RGGB" and camera.container_bits == 12
    assert "\n" in kwargs["metadata"]["ispkit_camera"]  # not a registered camera: stored as YAML


def test_cfa_rgb_puts_each_site_in_its_channel():
    m = np.arange(16, dtype=float).reshape(4, 4) / 16
    out = cfa_rgb(m, "GRBG")
    assert out[0, 0, 1] == m[0, 0] and out[0, 1, 0] == m[0, 1] and out[1, 0, 2] == m[1, 0] and out[1, 1, 1] == m[1, 1]
    assert np.count_nonzero(out.sum(-1) != out.max(-1)) == 0  # one channel per pixel
    np.testing.assert_allclose(out.sum(-1), m, atol=1e-7)


def test_tiff_without_camera_says_how_to_fix(plain_tiff):
    with pytest.raises(RawFormatError, match="sidecar"):
        read_raw_layers(plain_tiff)
    layers = read_raw_layers(plain_tiff, camera="drone")
    assert layers[0][1]["metadata"]["ispkit_camera"] == "drone"


def test_unsupported_and_unreadable_files(tmp_path):
    assert _reader.napari_get_reader(str(tmp_path / "x.png")) is None
    assert _reader.napari_get_reader([str(tmp_path / "a.tif"), str(tmp_path / "b.txt")]) is None
    bad = tmp_path / "broken.tif"
    bad.write_bytes(b"not a tiff at all")
    with pytest.raises(RawFormatError):
        read_raw_layers(bad)
    with pytest.raises(FileNotFoundError):
        read_raw_layers(tmp_path / "missing.tiff")
    with pytest.raises(RawFormatError, match="napari-drift reads"):
        read_raw_layers(tmp_path / "x.png")


def test_camera_from_metadata_errors():
    with pytest.raises(Exception, match="no ispkit camera"):
        camera_from_metadata({})


def test_sample_data_modules():
    from napari_drift import _sample_data

    for fn, cam in ((_sample_data.microscopy_sample, "microscopy"), (_sample_data.drone_sample, "drone")):
        layers = fn()
        assert layers[0][1]["metadata"]["ispkit_camera"] == cam
        assert layers[0][0].ndim == 2


# -- composer model ---------------------------------------------------------------------


def test_rows_list_registry_methods():
    model = ComposerModel(camera="microscopy")
    rows = {r.name: r for r in model.rows()}
    assert rows["demosaic"].methods == ("bilinear", "malvar2004", "menon2007")
    assert rows["demosaic"].method == "bilinear"
    gamma = rows["gamma"].params[0]
    assert gamma.key == "gamma.gamma" and gamma.bounds == (0.1, 10.0) and gamma.dtype is float and gamma.shape == ()
    assert float(gamma.value) == pytest.approx(2.2)


def test_set_param_matches_with_params(mosaic):
    model = ComposerModel(camera="microscopy")
    model.set_param("gamma", "gamma", 1.5)
    expected = Pipeline.preset("bi,s,me", camera="microscopy").with_params({"gamma.gamma": 1.5})(mosaic)
    np.testing.assert_array_equal(model.preview(mosaic), to_view(expected))
    assert float(model.pipeline["gamma"].values["gamma"]) == 1.5


def test_set_param_from_text_array():
    model = ComposerModel(camera="drone")
    model.set_param("white_balance", "gains", "1.0, 2.0, 3.0")
    np.testing.assert_array_equal(model.pipeline["white_balance"].values["gains"], [1, 2, 3])


def test_method_switch_equals_preset(mosaic):
    model = ComposerModel(camera="microscopy")
    before = model.preview(mosaic)
    model.set_method("demosaic", "malvar2004")
    after = model.preview(mosaic)
    assert not np.array_equal(before, after)
    np.testing.assert_array_equal(after, to_view(Pipeline.preset("ma,s,me", camera="microscopy")(mosaic)))
    assert model.camera == Camera.get("microscopy")


def test_bad_values_raise():
    model = ComposerModel()
    with pytest.raises(ParameterError):
        model.set_param("gamma", "gamma", 50.0)  # out of bounds
    with pytest.raises(ParameterError):
        model.set_param("white_balance", "gains", "1, 2")
    with pytest.raises(ParameterError):
        model.set_param("gamma", "nope", 1.0)
    with pytest.raises(UnknownStageError):
        model.set_param("nostage", "gamma", 1.0)
    with pytest.raises(UnknownStageError):
        model.set_method("demosaic", "magic")
    with pytest.raises(UnknownStageError):
        model.load_preset("xx")
    with pytest.raises(ParameterError):
        parse_value("a, b", (2,))


def test_yaml_round_trip_and_no_overwrite(tmp_path, mosaic):
    model = ComposerModel(camera="drone")
    model.set_method("sharpen", "unsharp_mask")
    model.set_param("gamma", "gamma", 1.8)
    path = model.save_yaml(tmp_path / "p.yaml")
    with pytest.raises(FileExistsError):
        model.save_yaml(path)
    model.save_yaml(path, overwrite=True)
    other = ComposerModel(camera="drone")
    other.load_yaml(path)
    assert other.pipeline == model.pipeline
    np.testing.assert_array_equal(other.preview(mosaic), model.preview(mosaic))


def test_load_preset_keeps_camera():
    model = ComposerModel(camera="drone")
    model.load_preset("me,u,ga")
    assert model.pipeline == Pipeline.preset("me,u,ga", camera="drone")
    assert model.label == "me,u,ga"


def test_listeners_and_torch_backend(mosaic):
    seen = []
    model = ComposerModel(backend="torch")
    model.subscribe(lambda m: seen.append(m.label))
    model.set_param("gamma", "gamma", 2.0)
    assert len(seen) == 1
    np.testing.assert_allclose(model.preview(mosaic), to_view(model.pipeline(mosaic)), atol=1e-4)


def test_view_contrast_limits_stretch_dark_views_only(mosaic):
    from napari_drift.logic.composer import VIEW_PERCENTILE, view_contrast_limits

    pipeline = Pipeline.preset("bi,s,me", camera="microscopy")
    bright = to_view(pipeline(mosaic))
    assert view_contrast_limits(bright) == (0.0, 1.0)  # a normal view keeps its brightness (edits stay visible)
    dark = to_view(pipeline(mosaic * 0.001))  # a raw at intensity 0.001: every value near 0
    low, high = view_contrast_limits(dark)
    assert low == 0.0 and high == pytest.approx(np.percentile(dark.astype(np.float64), VIEW_PERCENTILE)) and 0 < high < 0.3
    assert np.mean(dark <= high) > 0.99  # shown with a range that holds (nearly) all its values
    assert view_contrast_limits(np.zeros((4, 4, 3))) == (0.0, 1.0)  # all black: nothing to stretch
    assert view_contrast_limits(np.full((2, 2, 3), np.nan)) == (0.0, 1.0)
    with_nan = dark.copy()
    with_nan[0, 0] = np.nan
    assert view_contrast_limits(with_nan)[1] == pytest.approx(high, rel=0.01)  # the NaN is left out
