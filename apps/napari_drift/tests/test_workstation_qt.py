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


# -- the layout -----------------------------------------------------------------------------------

SCREEN = (1920, 1080)


def _rows_shown(view, rows: int) -> int:
    """How many of a list's or table's first ``rows`` rows lie wholly inside its viewport."""
    height = view.viewport().height()
    if hasattr(view, "rowViewportPosition"):
        return sum(1 for i in range(rows) if 0 <= view.rowViewportPosition(i) and view.rowViewportPosition(i) + view.rowHeight(i) <= height)
    return sum(1 for i in range(rows) if view.visualItemRect(view.item(i)).bottom() < height)


def test_every_widget_docked_together_fits_a_1920x1080_screen(make_napari_viewer, qtbot):
    """Docked from the manifest as the Plugins menu docks them, the widgets share one tab group, each
    usable at full height, and the window can be made shorter than the screen (issue 16: 1088 px minimum)."""
    import npe2
    from qtpy.QtWidgets import QScrollArea

    viewer = make_napari_viewer(show=True)
    window = viewer.window._qt_window
    window.resize(*SCREEN)
    viewer.open_sample("napari-drift", "microscopy")
    docks = {}
    for contribution in npe2.PluginManager.instance().get_manifest("napari-drift").contributions.widgets:
        docks[contribution.display_name] = viewer.window.add_plugin_dock_widget("napari-drift", contribution.display_name)
        qtbot.wait(50)
    frames = {name: dock for name, (dock, _widget) in docks.items()}
    qtbot.waitUntil(lambda: all(len(window.tabifiedDockWidgets(d)) == len(frames) - 1 for d in frames.values()), timeout=5000)
    assert window.size().height() == SCREEN[1]

    def shown(name: str):
        frames[name].raise_()
        qtbot.wait(100)
        widget = docks[name][1]
        assert widget.isVisible() and frames[name].height() >= 800, (name, frames[name].size())
        return widget

    composer = shown("ISP pipeline composer")
    qtbot.waitUntil(lambda: composer.is_idle() and composer.preview_layer is not None, timeout=15000)
    editors = composer.findChild(QScrollArea).viewport()
    assert editors.height() >= 600  # the stage editors: most stages open at once, not a scroll strip (41 px before)
    drift = shown("Drift view")
    assert _rows_shown(drift.preset_list, 12) == 12
    classifier = shown("Classifier")
    with qtbot.waitSignal(classifier.predicted, timeout=30000):
        assert classifier.load_bundled()
    assert classifier.table.rowCount() == 8 and _rows_shown(classifier.table, 8) >= 5  # one row before
    jobs = shown("Drift jobs")
    assert jobs.log.height() >= 300
    batch = shown("Batch")
    assert _rows_shown(batch.preset_list, 12) >= 8 and batch.log.height() >= 150

    assert window.minimumSizeHint().height() <= 720  # the sum of five docks' minimum heights (1464 px) before
    window.resize(1280, 720)
    qtbot.waitUntil(lambda: window.size().height() == 720, timeout=5000)


# -- labels, messages and display (issue 16 item 7) -----------------------------------------------


def test_labels_follow_renamed_layers(viewer, qtbot, tmp_path, errors):
    from napari_drift.widgets.classifier import ClassifierWidget
    from napari_drift.widgets.composer import ComposerWidget
    from napari_drift.widgets.drift_view import DriftViewWidget

    crop = np.random.default_rng(3).random((128, 128)) * 0.8 + 0.1  # large enough for the bundled classifier
    viewer.open(str(write_raw(tmp_path / "cells.tiff", crop, "microscopy")), plugin="napari-drift")
    composer, drift = ComposerWidget(viewer), DriftViewWidget(viewer)
    qtbot.waitUntil(lambda: composer.is_idle() and composer.preview_layer is not None, timeout=15000)
    classifier = ClassifierWidget(viewer)
    with qtbot.waitSignal(classifier.predicted, timeout=30000):
        classifier.load_bundled()
    assert classifier.source_label.text() == "source: preview: bi,s,me — RGB view"

    composer.model.load_preset("ma,s,ga")  # the composer renames its preview after the pipeline
    qtbot.waitUntil(lambda: composer.is_idle() and composer.preview_layer.name == "preview: ma,s,ga", timeout=15000)
    assert classifier.source_label.text() == "source: preview: ma,s,ga — RGB view"  # was "preview: bi,s,me"
    items = [classifier.source_combo.itemText(i) for i in range(classifier.source_combo.count())]
    assert "preview: ma,s,ga" in items and "preview: bi,s,me" not in items

    classifier.source_combo.setCurrentText("cells")  # a source chosen by name stays chosen when it is renamed
    classifier.source_combo.activated.emit(classifier.source_combo.currentIndex())
    viewer.layers["cells"].name = "cells (day 2)"
    assert classifier.source_combo.currentText() == "cells (day 2)" and classifier.source_label.text().startswith("source: cells (day 2) — raw")
    for combo in (composer.layer_combo, drift.layer_combo):
        assert combo.currentText() == "cells (day 2)" and combo.layer() is viewer.layers["cells (day 2)"]
    assert composer.source_layer is viewer.layers["cells (day 2)"]
    qtbot.waitUntil(lambda: composer.is_idle() and classifier.is_idle(), timeout=15000)
    assert not errors


def test_error_messages_name_the_layer_type_not_naparis_proxy(viewer, errors):
    _dock, composer = viewer.window.add_plugin_dock_widget("napari-drift", "ISP pipeline composer")  # sees napari's proxies
    viewer.add_points(np.zeros((2, 2)), name="spots")
    viewer.layers.selection.active = viewer.layers["spots"]
    composer.use_selected_button.click()
    assert len(errors) == 1 and "Layer 'spots' (Points) is not an ispkit raw mosaic" in errors[0]
    assert "Proxy" not in errors[0]


def test_notifications_do_not_cover_the_drift_views_overlay(make_napari_viewer, qtbot, raw_tiff):
    from napari._qt.dialogs.qt_notification import NapariQtNotification
    from napari.utils.notifications import show_error
    from napari_drift.widgets.drift_view import DriftViewWidget

    viewer = make_napari_viewer(show=True)
    viewer.window._qt_window.resize(1280, 800)
    viewer.open(str(raw_tiff), plugin="napari-drift")
    drift = DriftViewWidget(viewer)
    viewer.window.add_dock_widget(drift)
    drift.set_presets(["bi,s,me", "ma,s,ga"])
    with qtbot.waitSignal(drift.computed, timeout=30000):
        drift.compute_button.click()
    show_error("a notification while the drift stack is shown")
    qtbot.waitUntil(lambda: bool(viewer.window._qt_window.findChildren(NapariQtNotification)), timeout=5000)
    canvas = viewer.window._qt_viewer.canvas.native
    toast = viewer.window._qt_window.findChildren(NapariQtNotification)[-1]
    top_left, bottom_right = toast.mapTo(canvas, toast.rect().topLeft()), toast.mapTo(canvas, toast.rect().bottomRight())
    # napari opens notifications in the canvas's bottom half, at its right edge; the preset's name is at the top left
    assert top_left.y() > canvas.height() / 2 and bottom_right.x() > canvas.width() - 40, (top_left, bottom_right, canvas.size())
    assert viewer.canvas.overlays.text.position == "top_left" and viewer.canvas.overlays.text.text == "preset: bi,s,me"
    assert viewer.canvas.overlays.scale_bar.position == "bottom_left" and viewer.canvas.overlays.scale_bar.visible


def test_views_of_a_very_dark_raw_are_not_shown_black(viewer, qtbot, tmp_path, mosaic, errors):
    from napari_drift.logic.composer import view_contrast_limits
    from napari_drift.widgets.composer import ComposerWidget
    from napari_drift.widgets.drift_view import DriftViewWidget

    viewer.open(str(write_raw(tmp_path / "dim.tiff", mosaic * 0.001, "microscopy")), plugin="napari-drift")  # intensity 0.001
    composer = ComposerWidget(viewer)
    qtbot.waitUntil(lambda: composer.is_idle() and composer.preview_layer is not None, timeout=15000)
    preview = composer.preview_layer
    low, high = preview.contrast_limits
    assert (low, high) == pytest.approx(view_contrast_limits(np.asarray(preview.data))) and high < 0.3  # (0, 1) before: black
    drift = DriftViewWidget(viewer)
    drift.set_presets(["bi,s,me", "me,u,ga"])
    with qtbot.waitSignal(drift.computed, timeout=30000):
        drift.compute_button.click()
    assert tuple(drift.stack_layer.contrast_limits) == pytest.approx(view_contrast_limits(np.asarray(drift.stack_layer.data)))
    assert drift.stack_layer.contrast_limits[1] < 0.3 and drift.diff_layer.contrast_limits[1] < drift.stack_layer.contrast_limits[1]
    assert not errors
