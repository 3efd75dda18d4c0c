"""Qt tests of the drift view, classifier and jobs widgets (run under xvfb-run -a)."""

from __future__ import annotations

import numpy as np
import pytest
from napari_drift.logic.composer import to_view

from ispkit import Pipeline

pytestmark = pytest.mark.qt  # skipped without Qt or a display (conftest.py)


@pytest.fixture
def crop_tiff(tmp_path):
    from ispkit.io import write_raw

    mosaic = np.random.default_rng(3).random((128, 128)) * 0.8 + 0.1
    return write_raw(tmp_path / "crop.tiff", mosaic, "microscopy")


def test_drift_view_stack(viewer, qtbot, raw_tiff, errors):
    from napari_drift.widgets.drift_view import DriftViewWidget

    viewer.open(str(raw_tiff), plugin="napari-drift")
    widget = DriftViewWidget(viewer)
    viewer.window.add_dock_widget(widget)
    widget.set_presets(["bi,s,me", "ma,s,ga", "me,u,me"])
    widget.reference_combo.setCurrentText("ma,s,ga")
    with qtbot.waitSignal(widget.computed, timeout=30000):
        widget.compute_button.click()
    source = np.asarray(viewer.layers["cells"].data, dtype=np.float64)
    stack, diff = widget.stack_layer, widget.diff_layer
    assert stack.metadata["ispkit_presets"] == ["bi,s,me", "ma,s,ga", "me,u,me"]
    assert stack.data.shape == (3, *source.shape, 3)
    views = [to_view(Pipeline.preset(p, camera="microscopy")(source)) for p in stack.metadata["ispkit_presets"]]
    np.testing.assert_array_equal(stack.data, np.stack(views))
    np.testing.assert_array_equal(diff.data, np.abs(np.stack(views) - views[1]))
    viewer.dims.set_current_step(0, 2)
    # napari 0.9's overlay API (viewer.text_overlay is deprecated: an error under this suite's
    # filterwarnings), top left, away from the notifications that open at the bottom right
    overlay = viewer.canvas.overlays.text
    assert widget.current_preset() == "me,u,me" and overlay.text == "preset: me,u,me" and overlay.visible
    assert overlay.position == "top_left"
    assert not errors


def test_drift_view_shows_raw_corruptions_through_one_preset(viewer, qtbot, tmp_path, errors):
    from napari_drift.logic.drift_view import raw_corruption_stack
    from napari_drift.widgets.drift_view import MODES, RAW_DIFF_PREFIX, RAW_STACK_PREFIX, DriftViewWidget
    from skimage import data

    from ispkit import Camera
    from ispkit.demo import scene_to_raw
    from ispkit.io import write_raw

    scene = np.moveaxis(data.coffee()[100:164, 200:296], -1, 0) / 255.0
    path = write_raw(tmp_path / "coffee.tiff", scene_to_raw(scene, Camera.get("drone")), "drone")
    viewer.open(str(path), plugin="napari-drift")
    widget = DriftViewWidget(viewer)
    viewer.window.add_dock_widget(widget)
    widget.mode_combo.setCurrentText(MODES[1])
    assert widget.corruption_list.isVisibleTo(widget) and not widget.preset_list.isVisibleTo(widget)
    assert widget.compute_button.text() == "Compute raw corruption stack" and widget.reference_label.text() == "Preset"
    widget.set_raw_corruptions(["lens_shading", "chromatic_aberration"])
    for box in widget.severity_boxes:
        box.setChecked(box.text() in ("2", "5"))
    widget.reference_combo.setCurrentText("ma,u,me")
    with qtbot.waitSignal(widget.computed, timeout=60000):
        widget.compute_button.click()
    source = np.asarray(viewer.layers["coffee"].data, dtype=np.float64)
    expected = raw_corruption_stack(source, "drone", "ma,u,me", ["lens_shading", "chromatic_aberration"], [2, 5])
    stack, diff = widget.raw_stack_layer, widget.raw_diff_layer
    assert stack.name == RAW_STACK_PREFIX + "coffee" and diff.name == RAW_DIFF_PREFIX + "coffee"
    np.testing.assert_array_equal(stack.data, expected.data)
    np.testing.assert_array_equal(diff.data, expected.difference())
    assert tuple(stack.axis_labels[:2]) == ("corruption", "severity") and stack.metadata["ispkit_severities"] == [2, 5]
    viewer.dims.set_current_step(0, 1)
    viewer.dims.set_current_step(1, 1)
    assert viewer.canvas.overlays.text.text == "chromatic_aberration 5: red_pct 0.5 %, blue_pct -0.5 % (through ma,u,me)"
    assert not errors


def test_drift_view_with_every_raw_corruption_names_those_the_camera_cannot_support(viewer, qtbot, raw_tiff, errors):
    from napari_drift.widgets.drift_view import MODES, DriftViewWidget

    viewer.open(str(raw_tiff), plugin="napari-drift")  # a microscopy raw: no published gain or read noise
    widget = DriftViewWidget(viewer)
    widget.mode_combo.setCurrentText(MODES[1])
    for box in widget.severity_boxes:
        box.setChecked(box.text() == "1")
    with qtbot.waitSignal(widget.computed, timeout=60000):
        widget.compute_button.click()
    assert "Left out (the camera cannot support them): low_light" in widget.status.text()
    assert "low_light" not in widget.raw_stack.names and "vignetting" in widget.raw_stack.names
    assert not errors


def test_drift_view_without_raw_layer_notifies(viewer, errors):
    from napari_drift.widgets.drift_view import DriftViewWidget

    widget = DriftViewWidget(viewer)
    widget.compute_button.click()
    assert errors and "raw layer" in errors[0]


def test_classifier_follows_the_composer(viewer, qtbot, crop_tiff, errors):
    from napari_drift.widgets.classifier import ClassifierWidget
    from napari_drift.widgets.composer import ComposerWidget

    viewer.open(str(crop_tiff), plugin="napari-drift")
    composer = ComposerWidget(viewer)
    viewer.window.add_dock_widget(composer)
    qtbot.waitUntil(lambda: composer.is_idle() and composer.preview_layer is not None, timeout=15000)
    widget = ClassifierWidget(viewer)
    viewer.window.add_dock_widget(widget)
    with qtbot.waitSignal(widget.predicted, timeout=15000):
        assert widget.load_bundled()
    assert widget.source_layer is composer.preview_layer
    first = widget.prediction.probabilities.copy()
    assert first.sum() == pytest.approx(1.0) and widget.table.rowCount() == 8
    expected = widget.model.predict_view(np.asarray(composer.preview_layer.data)).probabilities
    np.testing.assert_allclose(first, expected, rtol=1e-5)
    assert widget.prediction.label in widget.prediction_label.text()
    # an edit in the composer replaces the preview's data: the classifier re-runs on it
    with qtbot.waitSignal(widget.predicted, timeout=15000):
        composer.model.set_param("gamma", "gamma", 0.5)
    qtbot.waitUntil(widget.is_idle, timeout=15000)
    second = widget.prediction.probabilities
    assert not np.allclose(first, second)
    np.testing.assert_allclose(second, widget.model.predict_view(np.asarray(composer.preview_layer.data)).probabilities, rtol=1e-5)
    assert not errors


def test_classifier_bad_checkpoint_notifies(viewer, tmp_path, errors):
    from napari_drift.widgets.classifier import ClassifierWidget

    widget = ClassifierWidget(viewer)
    assert not widget.load(tmp_path / "missing.pt")
    bad = tmp_path / "bad.pt"
    bad.write_text("nope")
    assert not widget.load(bad)
    assert len(errors) == 2 and widget.model is None


def test_jobs_run_and_cancel(viewer, qtbot, tiny_forensics, tmp_path, errors):
    from napari_drift.widgets.composer import ComposerWidget
    from napari_drift.widgets.jobs import FIGURE_PREFIX, JobsWidget

    widget = JobsWidget(viewer)
    viewer.window.add_dock_widget(widget)
    widget.config_edit.setText(str(tiny_forensics))
    widget.run_edit.setText(str(tmp_path / "run"))
    with qtbot.waitSignal(widget.job_finished, timeout=60000) as blocker:
        widget.start_button.click()
    assert blocker.args == ["finished"] and widget.status_label.text() == "finished"
    assert widget.progress_bar.value() == 1000 and widget.progress_bar.text() == "100% · 3 of 3 units"
    assert "[3/3]" in widget.log.toPlainText() and widget.runner.scheduler == "local"
    figures = [layer for layer in viewer.layers if layer.name.startswith(FIGURE_PREFIX)]
    assert figures and all(layer.rgb and layer.data.ndim == 3 for layer in figures)
    assert widget.pipeline_combo.count() == 3
    label = next(t for t in widget.pipelines() if "λ=0" in t)
    assert widget.load_pipeline(label)
    composer = next(w for w in viewer.window._qt_window.findChildren(ComposerWidget))
    expected = Pipeline.from_yaml(widget.pipelines()[label]).params()["gamma.gamma"]
    assert composer.model.pipeline.params()["gamma.gamma"] == pytest.approx(expected)

    # second job: cancel after the first finished unit
    widget.run_edit.setText(str(tmp_path / "cancelled"))
    widget.start_button.click()
    qtbot.waitUntil(lambda: "[1/3]" in widget.log.toPlainText(), timeout=60000)
    with qtbot.waitSignal(widget.job_finished, timeout=60000) as blocker:
        widget.cancel_button.click()
    assert blocker.args == ["cancelled"] and "cancelled" in widget.log.toPlainText()
    assert widget.status_label.text().startswith("cancelled")
    assert "[3/3]" not in widget.log.toPlainText()
    assert not (tmp_path / "cancelled" / "results.json").exists()
    assert not errors


def test_jobs_scheduler_field_is_checked_before_a_job_starts(viewer, tiny_forensics, tmp_path, errors):
    from napari_drift.widgets.jobs import JobsWidget

    widget = JobsWidget(viewer)
    widget.scheduler_edit.setText("10.0.0.5:8786")  # no protocol: not an address Dask can reach
    assert not widget.start(tiny_forensics, tmp_path / "run")
    assert len(errors) == 1 and "Dask scheduler address such as tcp://host:8786" in errors[0] and widget.runner is None
    widget.scheduler_edit.setText("tcp://10.0.0.5:8786")
    widget.workers_spin.setValue(2)
    assert not widget.start(tiny_forensics, tmp_path / "run")
    assert "workers=2 applies to the local scheduler only" in errors[1] and not (tmp_path / "run").exists()


def test_jobs_failure_in_the_job_process_is_shown(viewer, qtbot, tiny_forensics, tiny_microscopy_root, tmp_path, errors):
    from napari_drift.widgets.jobs import JobsWidget

    empty = tmp_path / "empty"
    empty.mkdir()
    config = tmp_path / "no_data.yaml"  # valid, but the dataset folder holds no images: the run fails in the job process
    config.write_text(tiny_forensics.read_text().replace(str(tiny_microscopy_root), str(empty)), encoding="utf-8")
    widget = JobsWidget(viewer)
    with qtbot.waitSignal(widget.job_finished, timeout=60000) as blocker:
        assert widget.start(config, tmp_path / "run")
    assert blocker.args == ["error"] and widget.start_button.isEnabled()
    assert len(errors) == 1 and errors[0].startswith("forensics job failed: FileNotFoundError: Raw-Microscopy images not found")
    log = widget.log.toPlainText()
    assert "Traceback (most recent call last)" in log and "failed: FileNotFoundError" in log
