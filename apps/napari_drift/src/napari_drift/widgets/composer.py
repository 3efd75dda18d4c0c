"""The ISP pipeline composer: pick a raw layer, edit the pipeline stage by stage, watch a live preview.

All pipeline logic lives in :class:`napari_drift.logic.ComposerModel`; this module is
only the Qt view of it. Previews are debounced (:data:`DEBOUNCE_MS`) and computed in a
napari ``thread_worker``; at most one computation runs at a time, and a result whose
pipeline is no longer current is dropped (a function worker cannot be interrupted, so
"cancel" means: never shown, and the latest request runs as soon as the busy one ends).

A stack source (a multi-page TIFF, OME-TIFF or folder) gets a lazy preview stack, frame
by frame (:meth:`~napari_drift.logic.ComposerModel.preview_stack`): napari processes the
frame it shows. The preview lies on its source (same scale and units) and is shown with
:func:`~napari_drift.logic.composer.view_contrast_limits` of the view (of the frame shown
when the edit was made), so a view of a very dark raw is not black.
"""

from __future__ import annotations

import itertools
import weakref
from typing import Any

import numpy as np
from napari.qt.threading import thread_worker
from qtpy.QtCore import QTimer, Signal
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)
from superqt import QCollapsible

from ..logic.composer import ComposerModel, ParamRow, format_value, parse_value, view_contrast_limits
from ..logic.raw_layer import camera_from_metadata, is_raw_layer, mosaic_from_layer
from ._common import DockedWidget, RawLayerCombo, current_frame, derived_geometry, frame_axes, guarded, layer_kind, notify_error, put_layer

__all__ = ["ComposerWidget", "DEBOUNCE_MS", "PREVIEW_PREFIX", "find_composer"]

_INSTANCES: weakref.WeakSet[ComposerWidget] = weakref.WeakSet()


def find_composer(viewer: Any) -> ComposerWidget | None:
    """The (most recently created, still alive) composer widget of ``viewer``, if any."""
    for widget in sorted(_INSTANCES, key=lambda w: w._serial, reverse=True):
        if widget.viewer is viewer:
            try:
                widget.objectName()  # raises RuntimeError if the Qt object is gone
            except RuntimeError:
                continue
            return widget
    return None


DEBOUNCE_MS = 200
PREVIEW_PREFIX = "preview: "
_PRESET_PLACEHOLDER = "— preset —"
_SERIAL = itertools.count()


class ComposerWidget(DockedWidget):
    """Dock widget: source raw layer, presets, one row per stage, Load/Save YAML, live preview layer."""

    preview_updated = Signal(object)  # the preview layer, after each shown result

    def __init__(self, napari_viewer: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.viewer = napari_viewer
        self.model = ComposerModel()
        self._serial = next(_SERIAL)
        _INSTANCES.add(self)
        self._source: Any = None
        self._mosaic: np.ndarray | None = None  # a single mosaic's data
        self._frames: Any = None  # a stack's lazy frames
        self._preview_layer: Any = None
        self._generation = 0
        self._busy = False
        self._pending = False
        self._worker: Any = None
        self._built_for: tuple = ()
        self._editing = False
        self._editors: dict[str, QWidget] = {}

        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(DEBOUNCE_MS)
        self._timer.timeout.connect(self._start_preview)

        layout = QVBoxLayout(self)

        source_row = QHBoxLayout()
        source_row.addWidget(QLabel("Raw layer"))
        self.layer_combo = RawLayerCombo(napari_viewer, self)
        self.layer_combo.setToolTip("Image layers opened with the napari-drift reader or sample data")
        source_row.addWidget(self.layer_combo, 1)
        self.use_selected_button = QPushButton("Use selected")
        self.use_selected_button.setToolTip("Use the layer selected in the layer list")
        source_row.addWidget(self.use_selected_button)
        layout.addLayout(source_row)

        pipeline_row = QHBoxLayout()
        self.preset_combo = QComboBox(self)
        self.preset_combo.addItem(_PRESET_PLACEHOLDER)
        self.preset_combo.addItems(ComposerModel.presets())
        self.preset_combo.setToolTip("Load one of the paper's twelve presets (demosaic,sharpen,denoise)")
        pipeline_row.addWidget(self.preset_combo, 1)
        self.load_button = QPushButton("Load YAML…")
        self.save_button = QPushButton("Save YAML…")
        pipeline_row.addWidget(self.load_button)
        pipeline_row.addWidget(self.save_button)
        layout.addLayout(pipeline_row)

        self.pipeline_label = QLabel()
        self.pipeline_label.setWordWrap(True)
        layout.addWidget(self.pipeline_label)

        self._stages_box = QWidget()
        self._stages_layout = QVBoxLayout(self._stages_box)
        self._stages_layout.setContentsMargins(0, 0, 0, 0)
        scroll = QScrollArea(self)
        scroll.setWidgetResizable(True)
        scroll.setWidget(self._stages_box)
        layout.addWidget(scroll, 1)

        self.layer_combo.currentTextChanged.connect(self._on_combo_changed)
        self.use_selected_button.clicked.connect(self._on_use_selected)
        self.preset_combo.activated.connect(self._on_preset)
        self.load_button.clicked.connect(self._on_load)
        self.save_button.clicked.connect(self._on_save)
        self.model.subscribe(self._on_model_changed)

        self._rebuild_rows()
        if self.layer_combo.currentText():
            self._on_combo_changed(self.layer_combo.currentText())

    # -- public API (also used by tests and future widgets) ------------------------------

    @property
    def source_layer(self) -> Any:
        return self._source

    @property
    def preview_layer(self) -> Any:
        return self._preview_layer

    def set_source(self, layer: Any) -> bool:
        """Use ``layer`` as the raw source; a non-raw layer gives an error notification and returns False."""
        if layer is None:
            notify_error("No layer selected: choose an ispkit raw layer (open a TIFF/DNG with napari-drift or load a sample).")
            return False
        if not is_raw_layer(layer):
            notify_error(
                f"Layer {layer.name!r} ({layer_kind(layer)}) is not an ispkit raw mosaic: the composer needs a grey image "
                "layer opened with the napari-drift reader or sample data."
            )
            return False
        try:
            if frame_axes(layer):
                mosaic, frames, camera = None, layer.data, camera_from_metadata(layer.metadata)
            else:
                (mosaic, camera), frames = mosaic_from_layer(layer), None
        except Exception as exc:
            notify_error(f"Cannot use layer {layer.name!r}: {exc}")
            return False
        self._source, self._mosaic, self._frames = layer, mosaic, frames
        if self.layer_combo.currentText() != layer.name:
            self.layer_combo.blockSignals(True)
            self.layer_combo.setCurrentText(layer.name)
            self.layer_combo.blockSignals(False)
        if camera != self.model.camera:
            self.model.set_camera(camera)  # triggers a preview through the listener
        else:
            self.schedule_preview()
        return True

    def schedule_preview(self) -> None:
        """(Re)start the debounce timer; the preview is computed when edits pause."""
        if self._mosaic is not None or self._frames is not None:
            self._generation += 1
            self._timer.start()

    def is_idle(self) -> bool:
        """No preview pending, scheduled or running."""
        return not (self._busy or self._pending or self._timer.isActive())

    # -- slots ---------------------------------------------------------------------------

    @guarded
    def _on_combo_changed(self, name: str) -> None:
        if name:
            layer = self.layer_combo.layer()
            if layer is not None and layer is not self._source:
                self.set_source(layer)

    @guarded
    def _on_use_selected(self, *_: Any) -> None:
        self.set_source(self.viewer.layers.selection.active)

    @guarded
    def _on_preset(self, index: int) -> None:
        name = self.preset_combo.itemText(index)
        if name and name != _PRESET_PLACEHOLDER:
            self.model.load_preset(name)
        self.preset_combo.setCurrentIndex(0)

    @guarded
    def _on_load(self, *_: Any) -> None:
        path, _filter = QFileDialog.getOpenFileName(self, "Load pipeline YAML", "", "Pipeline YAML (*.yaml *.yml);;All files (*)")
        if path:
            self.model.load_yaml(path)

    @guarded
    def _on_save(self, *_: Any) -> None:
        path, _filter = QFileDialog.getSaveFileName(self, "Save pipeline YAML", f"{self.model.label.replace(',', '_')}.yaml", "Pipeline YAML (*.yaml *.yml)")
        if path:
            # the save dialog has already asked before replacing an existing file
            self.model.save_yaml(path, overwrite=True)

    @guarded
    def _on_model_changed(self, model: ComposerModel) -> None:
        if not self._editing:
            self._rebuild_rows()
        self._update_label()
        self.schedule_preview()

    def _set_param(self, stage: str, param: str, value: Any) -> bool:
        self._editing = True
        try:
            self.model.set_param(stage, param, value)
            return True
        except Exception as exc:
            notify_error(f"{stage}.{param}: {exc}")
            return False
        finally:
            self._editing = False

    @guarded
    def _set_method(self, stage: str, method: str) -> None:
        self.model.set_method(stage, method)

    # -- stage rows ----------------------------------------------------------------------

    def _update_label(self) -> None:
        p = self.model.pipeline
        chain = " → ".join(f"{s.name}={s.stage.method}" for s in p.stages)
        self.pipeline_label.setText(f"<b>{self.model.label}</b> (camera {p.camera.name}): {chain}")

    def _rebuild_rows(self) -> None:
        while self._stages_layout.count():
            item = self._stages_layout.takeAt(0)
            widget = item.widget()
            if widget is not None:  # hide and detach now: deleteLater alone leaves it painted until the next loop
                widget.hide()
                widget.setParent(None)
                widget.deleteLater()
        self._editors = {}
        for row in self.model.rows():
            box = QCollapsible(row.name if row.name == row.kind else f"{row.name} ({row.kind})")
            box.setToolTip(row.description)
            fields = QWidget()
            form = QFormLayout(fields)
            form.setContentsMargins(0, 0, 0, 0)
            methods = QComboBox(fields)
            methods.addItems(list(row.methods))
            methods.setCurrentText(row.method)
            methods.setEnabled(len(row.methods) > 1)
            methods.currentTextChanged.connect(lambda m, s=row.name: self._set_method(s, m))
            self._editors[f"{row.name}:method"] = methods
            form.addRow("method", methods)
            for p in row.params:
                editor = self._editor(row.name, p)
                editor.setToolTip(_tooltip(p))
                self._editors[p.key] = editor
                label = QLabel(p.name + ("*" if p.overridden else ""))
                label.setToolTip(_tooltip(p))
                form.addRow(label, editor)
            box.addWidget(fields)
            box.expand(animate=False)  # every stage open; a click on its title folds it away
            self._stages_layout.addWidget(box)
        self._stages_layout.addStretch(1)
        self._update_label()

    def _editor(self, stage: str, p: ParamRow) -> QWidget:
        if p.dtype is bool:
            box = QCheckBox()
            box.setChecked(bool(p.value))
            box.toggled.connect(lambda v, k=p.name: self._set_param(stage, k, bool(v)))
            return box
        if p.is_scalar and p.dtype is int:
            spin = QSpinBox()
            low, high = p.bounds if p.bounds else (-(2**31), 2**31 - 1)
            spin.setRange(int(low), int(high))
            spin.setValue(int(p.value))
            spin.setKeyboardTracking(False)
            spin.valueChanged.connect(lambda v, k=p.name: self._set_param(stage, k, int(v)))
            return spin
        if p.is_scalar:
            spin = QDoubleSpinBox()
            low, high = p.bounds if p.bounds else (-1e9, 1e9)
            spin.setDecimals(6)
            spin.setRange(float(low), float(high))
            spin.setSingleStep(0.05 if p.bounds is None else max((high - low) / 200, 1e-6))
            spin.setValue(float(p.value))
            spin.setKeyboardTracking(False)
            spin.valueChanged.connect(lambda v, k=p.name: self._set_param(stage, k, float(v)))
            return spin
        line = QLineEdit(format_value(p.value))
        line.setPlaceholderText(f"{int(np.prod(p.shape))} numbers, comma-separated, row-major {p.shape}")

        def commit(edit: QLineEdit = line, k: str = p.name, shape: tuple = p.shape, dtype: type = p.dtype) -> None:
            try:
                value = parse_value(edit.text(), shape, dtype)
            except Exception as exc:
                notify_error(f"{stage}.{k}: {exc}")
                value = None
            if value is None or not self._set_param(stage, k, value):
                edit.setText(format_value(self.model.pipeline[stage].values[k]))

        line.editingFinished.connect(commit)
        return line

    def editor(self, key: str) -> QWidget:
        """The editor of ``"<stage>.<param>"`` or the method combo ``"<stage>:method"``."""
        return self._editors[key]

    # -- preview -------------------------------------------------------------------------

    def _start_preview(self) -> None:
        if self._mosaic is None and self._frames is None:
            return
        if self._busy:
            self._pending = True
            return
        self._busy = True
        generation, label = self._generation, self.model.label
        pipeline_yaml = self.model.pipeline.to_yaml()
        if self._frames is not None:
            stack, frame = self.model.preview_stack(self._frames), current_frame(self.viewer, self._source)

            def work() -> tuple[Any, tuple[float, float]]:
                return stack, view_contrast_limits(np.asarray(stack[frame]))

        else:
            compute, mosaic = self.model.preview_function(), self._mosaic

            def work() -> tuple[Any, tuple[float, float]]:
                view = compute(mosaic)
                return view, view_contrast_limits(view)

        worker = thread_worker(work, start_thread=False)()
        worker.returned.connect(lambda result: self._show_preview(generation, label, pipeline_yaml, *result))
        worker.errored.connect(lambda exc: notify_error(f"Preview failed: {type(exc).__name__}: {exc}"))
        worker.finished.connect(self._on_worker_finished)
        self._worker = worker
        worker.start()

    def _on_worker_finished(self) -> None:
        self._busy = False
        self._worker = None
        if self._pending:
            self._pending = False
            self._start_preview()

    @guarded
    def _show_preview(self, generation: int, label: str, pipeline_yaml: str, data: Any, limits: tuple[float, float]) -> None:
        if generation != self._generation:
            if not self._timer.isActive():
                self._pending = True  # outdated: drop it; the current request runs next
            return
        metadata = {"ispkit_preview_of": getattr(self._source, "name", None), "ispkit_pipeline": pipeline_yaml}
        kwargs = {"name": PREVIEW_PREFIX + label, "metadata": metadata, "contrast_limits": limits, **derived_geometry(self._source)}
        self._preview_layer = put_layer(self.viewer, self._preview_layer, data, kwargs)
        self.preview_updated.emit(self._preview_layer)


def _tooltip(p: ParamRow) -> str:
    bounds = f"; bounds {p.bounds[0]}…{p.bounds[1]}" if p.bounds else ""
    kind = p.dtype.__name__ + (f" {p.shape}" if p.shape else "")
    return f"{p.description} ({kind}{bounds}{'; differentiable' if p.differentiable and p.dtype is float else ''})"
