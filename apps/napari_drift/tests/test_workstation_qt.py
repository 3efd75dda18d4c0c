"""Qt tests of the microscopist's workflow (issue 16): export through napari's writer, the batch widget,
the docked layout on a 1920×1080 screen, and the label, message and display fixes."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from ispkit import Pipeline
from ispkit.io import write_raw

pytestmark = pytest.mark.qt  # skipped without Qt or a display (conftest.py)

PIXEL = 6.5 / 40


def test_a_preview_saved_through_napari_is_a_16_bit_tiff_with_its_pipeline(viewer, qtbot, raw_tiff, tmp_path, errors):
    from napari_drift.widgets.composer import ComposerWidget

    viewer.open(str(raw_tiff), plugin="napari-drift")
    composer = ComposerWidget(viewer)
    viewer.window.add_dock_widget(composer)
    qtbot.waitUntil(lambda: composer.is_idle() and composer.preview_layer is not None, timeout=15000)
    composer.model.set_param("gamma", "gamma", 1.7)
    qtbot.waitUntil(lambda: composer.is_idle() and "gamma: 1.7" in composer.preview_layer.metadata["ispkit_pipeline"], timeout=15000)
    [written] = composer.preview_layer.save(str(tmp_path / "preview.tif"), plugin="napari-drift")  # File → Save Selected Layer
    with tifffile.TiffFile(written) as tif:
        data, meta = tif.asarray(), tif.shaped_metadata[0]
        x_resolution = tif.pages.first.tags["XResolution"].value
    expected = np.round(np.asarray(composer.preview_layer.data, dtype=np.float64) * 65535).astype(np.uint16)
    np.testing.assert_array_equal(data, expected)
    assert Pipeline.from_yaml(meta["pipeline"]) == composer.model.pipeline and meta["source"] == "cells"
    assert x_resolution[0] / x_resolution[1] == pytest.approx(1e4 / PIXEL)
    assert not errors


def test_the_batch_widget_runs_a_folder_and_opens_the_results(viewer, qtbot, tmp_path, errors):
    from napari_drift.widgets.batch import RESULT_PREFIX, BatchWidget

    folder = tmp_path / "raws"
    folder.mkdir()
    rng = np.random.default_rng(4)
    for i in range(3):
        write_raw(folder / f"img_{i}.tiff", rng.random((32, 32)) * 0.8 + 0.1, "microscopy")
    widget = BatchWidget(viewer)
    viewer.window.add_dock_widget(widget)
    widget.source_edit.setText(str(folder))
    widget.store_edit.setText(str(tmp_path / "views.zarr"))
    widget.set_presets(["bi,s,me", "me,u,ga"])
    with qtbot.waitSignal(widget.batch_finished, timeout=120000) as blocker:
        widget.start_button.click()
    assert blocker.args == ["finished"] and widget.status_label.text() == "finished"
    assert widget.progress_bar.value() == 1000 and widget.progress_bar.text() == "100% · 6 of 6 views (3 images × 2 presets)"
    widget.open_button.click()
    layer = viewer.layers[f"{RESULT_PREFIX}me,u,ga: raws"]
    assert layer.data.shape == (3, 32, 32, 3) and tuple(layer.scale) == (1.0, PIXEL, PIXEL)
    view = Pipeline.preset("me,u,ga", camera="microscopy")(_mosaic(folder / "img_2.tiff"))
    np.testing.assert_array_equal(np.asarray(layer.data[2]), np.moveaxis(view.astype(np.float32), 0, -1))
    assert Pipeline.from_yaml(layer.metadata["ispkit_pipeline"]).name == "me,u,ga"
    assert not errors


def _mosaic(path):
    from ispkit.io import read_raw

    return read_raw(path).mosaic
