"""Qt tests of raw stacks in napari: opening them, the scale bar, and the composer and drift view frame by frame."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from napari_drift.logic.composer import to_view

from ispkit import Pipeline
from ispkit.io import write_raw, write_sidecar

pytestmark = pytest.mark.qt  # skipped without Qt or a display (conftest.py)

PIXEL = 6.5 / 40  # µm, the microscopy camera's


@pytest.fixture
def stack_tif(tmp_path):
    """Three 64×48 frames as separate pages, with a microscopy sidecar; and the frames' normalised values."""
    frames = (np.random.default_rng(5).random((3, 64, 48)) * 0.8 + 0.1) * 65535
    stored = np.round(frames).astype(np.uint16)
    path = tmp_path / "series.tif"
    tifffile.imwrite(path, stored, photometric="minisblack")
    write_sidecar(path, "microscopy")
    return path, (stored / 65535.0).astype(np.float32)


def test_a_stack_opens_lazily_with_scale_units_and_scale_bar(viewer, stack_tif, tmp_path):
    path, frames = stack_tif
    layers = viewer.open(str(path), plugin="napari-drift")
    assert [layer.name for layer in layers] == ["series", "series [CFA]"]
    raw = viewer.layers["series"]
    assert raw.data.shape == (3, 64, 48) and hasattr(raw.data, "dask")
    assert tuple(raw.scale) == (1.0, PIXEL, PIXEL) and [str(u) for u in raw.units] == ["pixel", "micrometer", "micrometer"]
    assert tuple(viewer.layers["series [CFA]"].scale) == tuple(raw.scale)
    scale_bar = viewer.canvas.overlays.scale_bar
    assert scale_bar.visible and scale_bar.position == "bottom_left"  # away from the notifications (bottom right)
    np.testing.assert_array_equal(np.asarray(raw.data[1]), frames[1])

    folder = tmp_path / "folder"
    folder.mkdir()
    for i, frame in enumerate(frames):
        write_raw(folder / f"f{i}.tiff", frame.astype(np.float64), "microscopy")
    viewer.open(str(folder), plugin="napari-drift")
    stack = viewer.layers["folder"]
    assert stack.data.shape == (3, 64, 48) and tuple(stack.axis_labels) == ("file", "y", "x")
    np.testing.assert_allclose(np.asarray(stack.data[2]), frames[2], atol=1 / 65535)


def test_composer_and_drift_view_process_a_stack_frame_by_frame(viewer, qtbot, stack_tif, errors):
    from napari_drift.widgets.composer import ComposerWidget
    from napari_drift.widgets.drift_view import DriftViewWidget

    path, frames = stack_tif
    viewer.open(str(path), plugin="napari-drift")
    composer = ComposerWidget(viewer)
    viewer.window.add_dock_widget(composer)
    qtbot.waitUntil(lambda: composer.is_idle() and composer.preview_layer is not None, timeout=15000)
    preview = composer.preview_layer
    assert preview.data.shape == (3, 64, 48, 3) and hasattr(preview.data, "dask")  # lazy: one frame processed when shown
    assert tuple(preview.scale) == (1.0, PIXEL, PIXEL) and tuple(preview.axis_labels) == tuple(viewer.layers["series"].axis_labels)
    viewer.dims.set_current_step(0, 2)
    expected = to_view(Pipeline.preset("bi,s,me", camera="microscopy")(frames[2].astype(np.float64)))
    np.testing.assert_array_equal(np.asarray(preview.data[2]), expected)

    drift = DriftViewWidget(viewer)
    viewer.window.add_dock_widget(drift)
    drift.set_presets(["bi,s,me", "ma,s,ga"])
    drift.reference_combo.setCurrentText("ma,s,ga")
    with qtbot.waitSignal(drift.computed, timeout=30000):
        drift.compute_button.click()
    stack, diff = drift.stack_layer, drift.diff_layer
    assert stack.data.shape == (2, 3, 64, 48, 3) and hasattr(stack.data, "dask")
    assert tuple(stack.axis_labels)[:2] == ("preset", next(iter(viewer.layers["series"].axis_labels)))
    assert tuple(stack.scale) == (1.0, 1.0, PIXEL, PIXEL)
    views = [to_view(Pipeline.preset(p, camera="microscopy")(frames[1].astype(np.float64))) for p in ("bi,s,me", "ma,s,ga")]
    np.testing.assert_array_equal(np.asarray(stack.data[:, 1]), np.stack(views))
    np.testing.assert_array_equal(np.asarray(diff.data[0, 1]), np.abs(views[0] - views[1]))
    viewer.dims.set_current_step(0, 1)  # the preset axis
    assert drift.current_preset() == "ma,s,ga" and viewer.canvas.overlays.text.text == "preset: ma,s,ga"
    qtbot.waitUntil(composer.is_idle, timeout=15000)
    assert not errors
