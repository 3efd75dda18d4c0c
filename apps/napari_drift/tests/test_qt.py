"""Qt tests (pytest-qt + napari's make_napari_viewer). Run: xvfb-run -a python -m pytest apps/napari_drift/tests"""

from __future__ import annotations

import numpy as np
import pytest
from napari_drift.logic.composer import to_view

from ispkit import Pipeline

pytestmark = pytest.mark.qt  # skipped without Qt or a display (conftest.py)


def _composer(viewer, qtbot):
    from napari_drift.widgets.composer import ComposerWidget

    widget = ComposerWidget(viewer)
    viewer.window.add_dock_widget(widget, name="composer")
    return widget


def _wait_idle(qtbot, widget):
    qtbot.waitUntil(lambda: widget.is_idle() and widget.preview_layer is not None, timeout=15000)


def test_viewer_open_with_plugin(viewer, raw_tiff, mosaic):
    layers = viewer.open(str(raw_tiff), plugin="napari-drift")
    assert [layer.name for layer in layers] == ["cells", "cells [CFA]"]
    np.testing.assert_allclose(viewer.layers["cells"].data, mosaic, atol=1 / 65535)
    assert viewer.layers["cells"].metadata["ispkit_camera"] == "microscopy"
    assert viewer.layers["cells [CFA]"].rgb and not viewer.layers["cells [CFA]"].visible


def test_sample_data_loads(viewer):
    viewer.open_sample("napari-drift", "microscopy")
    raw = [layer for layer in viewer.layers if "ispkit_camera" in layer.metadata]
    assert len(raw) == 1 and raw[0].metadata["ispkit_camera"] == "microscopy" and raw[0].data.ndim == 2
    # at the microscopy camera's pixel size (6.5 µm pitch / 40x), with the scale bar in µm
    assert tuple(raw[0].scale) == (6.5 / 40, 6.5 / 40) and [str(u) for u in raw[0].units] == ["micrometer", "micrometer"]
    assert viewer.canvas.overlays.scale_bar.visible


def test_composer_live_preview(viewer, qtbot, raw_tiff, mosaic, errors):
    viewer.open(str(raw_tiff), plugin="napari-drift")
    widget = _composer(viewer, qtbot)
    assert widget.source_layer is viewer.layers["cells"]
    _wait_idle(qtbot, widget)
    data = np.asarray(widget.preview_layer.data)
    source = np.asarray(viewer.layers["cells"].data, dtype=np.float64)
    np.testing.assert_array_equal(data, to_view(Pipeline.preset("bi,s,me", camera="microscopy")(source)))
    assert widget.preview_layer.name == "preview: bi,s,me"

    widget.editor("gamma.gamma").setValue(1.3)
    expected = to_view(Pipeline.preset("bi,s,me", camera="microscopy").with_params({"gamma.gamma": 1.3})(source))
    qtbot.waitUntil(lambda: np.array_equal(widget.preview_layer.data, expected), timeout=15000)
    _wait_idle(qtbot, widget)

    widget.editor("demosaic:method").setCurrentText("malvar2004")
    expected = to_view(Pipeline.preset("ma,s,me", camera="microscopy").with_params({"gamma.gamma": 1.3})(source))
    qtbot.waitUntil(lambda: np.array_equal(widget.preview_layer.data, expected), timeout=15000)
    _wait_idle(qtbot, widget)
    assert errors == []


def test_array_param_line_edit(viewer, qtbot, raw_tiff, errors):
    viewer.open(str(raw_tiff), plugin="napari-drift")
    widget = _composer(viewer, qtbot)
    _wait_idle(qtbot, widget)
    edit = widget.editor("white_balance.gains")
    edit.setText("1, 1.5, 2")
    edit.editingFinished.emit()
    np.testing.assert_array_equal(widget.model.pipeline["white_balance"].values["gains"], [1, 1.5, 2])
    edit.setText("1, 2")
    edit.editingFinished.emit()
    assert len(errors) == 1 and "gains" in errors[0]
    assert edit.text() == "1, 1.5, 2"  # reverted
    _wait_idle(qtbot, widget)


def test_wrong_layer_type_notifies(viewer, qtbot, errors):
    widget = _composer(viewer, qtbot)
    viewer.add_points(np.zeros((2, 2)), name="points")
    viewer.layers.selection.active = viewer.layers["points"]
    widget.use_selected_button.click()  # must not raise
    assert len(errors) == 1 and "not an ispkit raw mosaic" in errors[0]
    assert widget.source_layer is None
    viewer.add_image(np.zeros((4, 4)), name="plain")
    assert widget.set_source(viewer.layers["plain"]) is False
    assert len(errors) == 2


def test_preset_menu_switches_pipeline(viewer, qtbot, raw_tiff):
    viewer.open(str(raw_tiff), plugin="napari-drift")
    widget = _composer(viewer, qtbot)
    _wait_idle(qtbot, widget)
    index = widget.preset_combo.findText("me,u,ga")
    widget.preset_combo.activated.emit(index)
    # the rows of the previous pipeline are gone at once, not left painted under the new ones
    from superqt import QCollapsible

    boxes = [b for b in widget._stages_box.findChildren(QCollapsible) if b.isVisibleTo(widget)]
    assert [b.text() for b in boxes] == [s.name for s in widget.model.pipeline.stages]
    assert all(b.isExpanded() for b in boxes)  # every stage's editors open
    assert widget.model.pipeline == Pipeline.preset("me,u,ga", camera="microscopy")
    assert widget.editor("demosaic:method").currentText() == "menon2007"
    qtbot.waitUntil(lambda: widget.preview_layer.name == "preview: me,u,ga", timeout=15000)
    _wait_idle(qtbot, widget)


def test_load_and_save_yaml_dialogs(viewer, qtbot, tmp_path, monkeypatch, errors):
    from qtpy.QtWidgets import QFileDialog

    widget = _composer(viewer, qtbot)
    target = tmp_path / "saved.yaml"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(lambda *a, **k: (str(target), "")))
    widget.model.load_preset("ma,u,me")
    widget.save_button.click()
    assert Pipeline.from_yaml(target) == widget.model.pipeline
    widget.model.load_preset("bi,s,ga")
    monkeypatch.setattr(QFileDialog, "getOpenFileName", staticmethod(lambda *a, **k: (str(target), "")))
    widget.load_button.click()
    assert widget.model.label == "ma,u,me"
    bad = tmp_path / "bad.yaml"
    bad.write_text("stages: 3\n")
    monkeypatch.setattr(QFileDialog, "getOpenFileName", staticmethod(lambda *a, **k: (str(bad), "")))
    widget.load_button.click()
    assert len(errors) == 1


def test_widget_from_manifest(viewer, qtbot):
    _dock, widget = viewer.window.add_plugin_dock_widget("napari-drift", "ISP pipeline composer")
    from napari_drift.widgets.composer import ComposerWidget

    assert isinstance(widget, ComposerWidget)


def test_rapid_edits_show_only_the_last(viewer, qtbot, raw_tiff, errors):
    viewer.open(str(raw_tiff), plugin="napari-drift")
    widget = _composer(viewer, qtbot)
    _wait_idle(qtbot, widget)
    shown = []
    widget.preview_updated.connect(lambda layer: shown.append(layer.name))
    for value in (1.1, 1.2, 1.3, 1.4, 1.5):
        widget.editor("gamma.gamma").setValue(value)
    source = np.asarray(viewer.layers["cells"].data, dtype=np.float64)
    expected = to_view(Pipeline.preset("bi,s,me", camera="microscopy").with_params({"gamma.gamma": 1.5})(source))
    qtbot.waitUntil(lambda: np.array_equal(widget.preview_layer.data, expected), timeout=15000)
    _wait_idle(qtbot, widget)
    assert len(shown) == 1  # debounced: one computation for five edits
    assert errors == []
