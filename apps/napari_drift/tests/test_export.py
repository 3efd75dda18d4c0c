"""Qt-free tests of the writer (napari_drift/logic/export.py, _writer.py): write, read back with tifffile, compare."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
import tifffile
from napari_drift._writer import write_views
from napari_drift.logic.composer import to_view
from napari_drift.logic.drift_view import lazy_drift_stack, preset_pipelines
from napari_drift.logic.export import FORMAT, write_views_tiff

from ispkit import InputError, Pipeline

PIXEL = 6.5 / 40


def _metadata(path):
    with tifffile.TiffFile(path) as tif:
        page = tif.pages.first
        x, y = page.tags["XResolution"].value, page.tags["YResolution"].value
        return tif.shaped_metadata[0], (x[0] / x[1], y[0] / y[1]), int(page.tags["ResolutionUnit"].value), page.photometric


def test_a_preview_is_written_as_16_bit_rgb_with_its_pipeline_and_pixel_size(tmp_path, mosaic):
    pipeline = Pipeline.preset("ma,s,me", camera="microscopy").with_params({"gamma.gamma": 1.6})
    view = to_view(pipeline(mosaic))
    view[0, 0] = [np.nan, -0.5, 2.0]  # out of range and not a number: clipped, NaN as 0
    attributes = {"name": "preview: ma,s,me", "metadata": {"ispkit_pipeline": pipeline.to_yaml(), "ispkit_preview_of": "cells"},
                  "scale": (PIXEL, PIXEL), "units": ("micrometer", "micrometer"), "axis_labels": ("y", "x")}  # fmt: skip
    [written] = write_views(str(tmp_path / "preview.tif"), view, attributes)
    data = tifffile.imread(written)
    assert data.dtype == np.uint16 and data.shape == (*mosaic.shape, 3)
    expected = np.round(np.clip(np.nan_to_num(view.astype(np.float64)), 0, 1) * 65535).astype(np.uint16)
    np.testing.assert_array_equal(data, expected)
    assert data[0, 0].tolist() == [0, 0, 65535]
    meta, (x_per_cm, y_per_cm), unit, photometric = _metadata(written)
    assert Pipeline.from_yaml(meta["pipeline"]) == pipeline and meta["ispkit"] == FORMAT
    assert meta["name"] == "preview: ma,s,me" and meta["source"] == "cells" and meta["ispkit_shape"] == [*mosaic.shape, 3]
    assert unit == 3 and x_per_cm == pytest.approx(1e4 / PIXEL) and y_per_cm == pytest.approx(1e4 / PIXEL)  # pixels per cm
    assert photometric == tifffile.PHOTOMETRIC.RGB


class _Reads:
    """An array that records which frames are read from it (the writer must read one frame at a time)."""

    def __init__(self, array):
        self.array, self.shape, self.reads = array, array.shape, []

    def __getitem__(self, index):
        self.reads.append(index)
        return self.array[index]


def test_a_lazy_drift_stack_is_written_frame_by_frame_with_every_preset(tmp_path, mosaic):
    frames = da.from_array(np.stack([mosaic, mosaic[::-1]]), chunks=(1, *mosaic.shape))  # (t=2, H, W)
    names = ["bi,s,me", "ma,s,ga", "me,u,me"]
    stack = _Reads(lazy_drift_stack(frames, "microscopy", names).data)  # (3 presets, 2 frames, H, W, 3), lazy
    metadata = {"ispkit_presets": names, "ispkit_pipelines": preset_pipelines(names, "microscopy"), "ispkit_drift_of": "series"}
    path = write_views_tiff(tmp_path / "drift.tiff", stack, metadata=metadata, scale=(1, 1, PIXEL, PIXEL),
                            units=("pixel", "pixel", "µm", "µm"), axis_labels=("preset", "t", "y", "x"), name="drift: series")  # fmt: skip
    assert stack.reads == [(p, t) for p in range(3) for t in range(2)]  # one (H, W, 3) view at a time, in row-major order
    data = tifffile.imread(path)
    assert data.shape == (6, *mosaic.shape, 3)  # presets × frames pages, in row-major order
    meta = _metadata(path)[0]
    assert meta["ispkit_shape"] == [3, 2, *mosaic.shape, 3] and meta["axis_labels"] == ["preset", "t", "y", "x"]
    assert meta["presets"] == names and meta["source"] == "series"
    assert {k: Pipeline.from_yaml(v) for k, v in meta["pipelines"].items()} == {n: Pipeline.preset(n, camera="microscopy") for n in names}
    restored = data.reshape(meta["ispkit_shape"])
    view = to_view(Pipeline.preset("me,u,me", camera="microscopy")(mosaic[::-1]))
    np.testing.assert_array_equal(restored[2, 1], np.round(view.astype(np.float64) * 65535).astype(np.uint16))


def test_the_writer_refuses_what_it_cannot_record(tmp_path):
    view = np.zeros((4, 4, 3), np.float32)
    with pytest.raises(InputError, match=r"writes processed views .* this layer has none"):
        write_views_tiff(tmp_path / "plain.tif", view, metadata={"ispkit_camera": "microscopy"})
    with pytest.raises(InputError, match="writes processed views"):  # presets without their pipelines
        write_views_tiff(tmp_path / "half.tif", view[None], metadata={"ispkit_presets": ["bi,s,me"], "ispkit_pipelines": {}})
    with pytest.raises(InputError, match=r"expected RGB views \(…, H, W, 3\), got shape \(4, 4\)"):
        write_views_tiff(tmp_path / "grey.tif", view[..., 0], metadata={"ispkit_pipeline": "x"})
    with pytest.raises(InputError, match=r"writes \.tif or \.tiff files, not '\.png'"):
        write_views_tiff(tmp_path / "view.png", view, metadata={"ispkit_pipeline": "x"})
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing half-written
