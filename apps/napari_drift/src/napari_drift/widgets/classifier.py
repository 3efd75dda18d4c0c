"""Classifier: run an ispkit task-model checkpoint on the current view and watch its prediction.

Source (combo): *Auto* prefers the composer's preview layer (metadata ``ispkit_pipeline``),
else the first raw layer; or any RGB image layer / raw layer by name. RGB layers are fed
as they are; raw layers go through the checkpoint's own training pipeline. The widget
re-runs whenever the source layer's data changes (``layer.events.data``: the composer
replaces its preview's data after every edit), debounced, in a ``thread_worker``. A stack
source (a preview of a raw stack, a raw stack) is predicted on the frame the viewer shows,
again whenever the viewer moves to another frame.

Classification checkpoints: predicted class (large) and a probability table with bars.
Segmentation checkpoints: the predicted mask as a labels layer ``prediction: <source>``.
"""

from __future__ import annotations

import contextlib
from typing import Any

from napari.qt.threading import thread_worker
from qtpy.QtCore import QTimer, Signal
from qtpy.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ..logic.classifier import ClassifierModel
from ..logic.raw_layer import camera_from_metadata, is_raw_layer
from ._common import DockedWidget, current_frame, frame_axes, guarded, image_geometry, notify_error

__all__ = ["AUTO", "ClassifierWidget", "MASK_PREFIX"]

AUTO = "Auto (composer preview, else raw layer)"
MASK_PREFIX = "prediction: "
DEBOUNCE_MS = 100


def _is_rgb_layer(layer: Any) -> bool:
    """An RGB image layer (a view, or a stack of views), not a CFA view."""
    data = getattr(layer, "data", None)
    return bool(getattr(layer, "rgb", False)) and (getattr(data, "ndim", 0) or 0) >= 3 and "ispkit_cfa_of" not in getattr(layer, "metadata", {})


def _usable(layer: Any) -> bool:
    return _is_rgb_layer(layer) or is_raw_layer(layer)


class ClassifierWidget(DockedWidget):
    """Dock widget: checkpoint, source layer, predicted class and probability table."""

    predicted = Signal(object)  # the Prediction, after each shown result

    def __init__(self, napari_viewer: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.viewer = napari_viewer
        self.model: ClassifierModel | None = None
        self.prediction: Any = None
        self.mask_layer: Any = None
        self._source: Any = None
        self._busy = False
        self._pending = False
        self._generation = 0

        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(DEBOUNCE_MS)
        self._timer.timeout.connect(self._start)

        layout = QVBoxLayout(self)
        row = QHBoxLayout()
        self.load_button = QPushButton("Load checkpoint…")
        self.bundled_button = QPushButton("Load bundled synthetic-microscopy model")
        row.addWidget(self.load_button)
        row.addWidget(self.bundled_button)
        layout.addLayout(row)
        self.model_label = QLabel("No model loaded.")
        self.model_label.setWordWrap(True)
        layout.addWidget(self.model_label)

        row = QHBoxLayout()
        row.addWidget(QLabel("Source"))
        self.source_combo = QComboBox(self)
        row.addWidget(self.source_combo, 1)
        layout.addLayout(row)
        self.source_label = QLabel("")
        self.source_label.setWordWrap(True)
        layout.addWidget(self.source_label)

        self.prediction_label = QLabel("—")
        font = self.prediction_label.font()
        font.setPointSize(font.pointSize() * 2)
        font.setBold(True)
        self.prediction_label.setFont(font)
        layout.addWidget(self.prediction_label)

        self.table = QTableWidget(0, 3, self)
        self.table.setHorizontalHeaderLabels(["class", "probability", ""])
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setStretchLastSection(True)
        layout.addWidget(self.table, 1)
        self.run_button = QPushButton("Predict now")
        layout.addWidget(self.run_button)

        self.load_button.clicked.connect(self._on_load)
        self.bundled_button.clicked.connect(self._on_bundled)
        self.run_button.clicked.connect(lambda *_: self.schedule())
        self.source_combo.activated.connect(lambda *_: self._on_source_choice())
        events = napari_viewer.layers.events
        for emitter in (events.inserted, events.removed, events.reordered):
            emitter.connect(self._on_layers_changed)
        napari_viewer.dims.events.current_step.connect(self._on_step)
        self._frame: tuple[int, ...] = ()
        self._refresh_sources()

    # -- public API -------------------------------------------------------------------------

    def load(self, path: Any) -> bool:
        """Load a checkpoint; missing/invalid files give an error notification and return False."""
        try:
            model = ClassifierModel.load(path)
        except Exception as exc:
            notify_error(f"Cannot load checkpoint {path}: {exc}")
            return False
        self.set_model(model)
        return True

    def load_bundled(self) -> bool:
        try:
            model = ClassifierModel.bundled()
        except Exception as exc:
            notify_error(f"Cannot load the bundled model: {exc}")
            return False
        self.set_model(model)
        return True

    def set_model(self, model: ClassifierModel) -> None:
        self.model = model
        self.model_label.setText(model.describe())
        self._clear_result()
        self.schedule()

    @property
    def source_layer(self) -> Any:
        return self._source

    def is_idle(self) -> bool:
        return not (self._busy or self._pending or self._timer.isActive())

    def schedule(self) -> None:
        """Re-run the prediction once changes pause."""
        self._generation += 1
        self._timer.start()

    # -- sources ----------------------------------------------------------------------------

    def _on_layers_changed(self, *_: Any) -> None:
        try:
            self._refresh_sources()
        except RuntimeError:  # widget deleted: stop listening
            events = self.viewer.layers.events
            for emitter in (events.inserted, events.removed, events.reordered):
                with contextlib.suppress(Exception):
                    emitter.disconnect(self._on_layers_changed)
        except Exception as exc:
            notify_error(f"Classifier: {type(exc).__name__}: {exc}")

    def _refresh_sources(self, keep: str | None = None) -> None:
        """List the usable layers (keeping the choice, or ``keep``); follow every layer's renames."""
        current = keep or self.source_combo.currentText() or AUTO
        for layer in self.viewer.layers:
            layer.events.name.connect(self._on_renamed)  # once: napari ignores a callback connected again
        names = [AUTO] + [layer.name for layer in self.viewer.layers if _usable(layer)]
        self.source_combo.blockSignals(True)
        self.source_combo.clear()
        self.source_combo.addItems(names)
        self.source_combo.setCurrentText(current if current in names else AUTO)
        self.source_combo.blockSignals(False)
        self._on_source_choice()

    def _resolve(self) -> Any:
        choice = self.source_combo.currentText()
        if choice and choice != AUTO:
            return self.viewer.layers[choice] if choice in self.viewer.layers else None  # noqa: SIM401 - a LayerList has no .get
        layers = list(self.viewer.layers)
        for layer in reversed(layers):
            if _is_rgb_layer(layer) and "ispkit_pipeline" in layer.metadata:
                return layer
        for layer in reversed(layers):
            if is_raw_layer(layer):
                return layer
        return None

    def _on_renamed(self, event: Any = None) -> None:
        """A layer was renamed (the composer names its preview after the pipeline): the list and
        the source line show the new name, and a source chosen by name stays chosen."""
        try:
            renamed = getattr(getattr(event, "source", None), "name", None)  # napari's name event carries the layer, not the name
            renamed_source = self._source is not None and renamed is not None and self._source.name == renamed
            explicit = self.source_combo.currentText() != AUTO
            self._refresh_sources(keep=self._source.name if renamed_source and explicit else None)
            if renamed_source:
                self._show_source(self._source)
        except RuntimeError:  # widget deleted: stop listening
            source = getattr(event, "source", None)
            if source is not None:
                source.events.name.disconnect(self._on_renamed)

    def _show_source(self, layer: Any) -> None:
        kind = "RGB view" if _is_rgb_layer(layer) else "raw mosaic (processed with the checkpoint's pipeline)"
        self.source_label.setText(f"source: {layer.name} — {kind}")

    def _on_source_choice(self) -> None:
        layer = self._resolve()
        if layer is self._source:
            return
        if self._source is not None:
            with contextlib.suppress(Exception):
                self._source.events.data.disconnect(self._on_data)
        self._source = layer
        if layer is not None:
            layer.events.data.connect(self._on_data)
            self._show_source(layer)
            self.schedule()
        else:
            self.source_label.setText("source: none (open a raw layer, or dock the composer for a preview)")

    def _on_data(self, *_: Any) -> None:
        with contextlib.suppress(RuntimeError):
            self.schedule()

    def _on_step(self, *_: Any) -> None:
        """The viewer moved: a stack source is predicted again when its shown frame changed."""
        try:
            if self._source is not None and frame_axes(self._source) and current_frame(self.viewer, self._source) != self._frame:
                self.schedule()
        except RuntimeError:  # widget deleted: stop listening
            with contextlib.suppress(Exception):
                self.viewer.dims.events.current_step.disconnect(self._on_step)

    # -- running ----------------------------------------------------------------------------

    def _start(self) -> None:
        if self.model is None or self._source is None:
            return
        if self._busy:
            self._pending = True
            return
        layer, model, generation = self._source, self.model, self._generation
        try:
            import numpy as np

            self._frame = current_frame(self.viewer, layer)
            shown = layer.data[self._frame] if self._frame else layer.data  # lazy for a stack: read in the worker
            if not hasattr(shown, "compute"):
                shown = np.array(shown, copy=True)  # the layer's data may be replaced while the worker runs
            if _is_rgb_layer(layer):
                work = lambda: model.predict_view(np.asarray(shown))  # noqa: E731
            else:
                camera = camera_from_metadata(layer.metadata)
                work = lambda: model.predict_mosaic(np.asarray(shown, dtype=np.float64), camera)  # noqa: E731
        except Exception as exc:
            notify_error(f"Classifier: {type(exc).__name__}: {exc}")
            return
        self._busy = True
        worker = thread_worker(work, start_thread=False)()
        worker.returned.connect(lambda prediction: self._show(generation, layer, prediction))
        worker.errored.connect(lambda exc: notify_error(f"Prediction failed: {type(exc).__name__}: {exc}"))
        worker.finished.connect(self._on_finished)
        self._worker = worker
        worker.start()

    def _on_finished(self) -> None:
        self._busy = False
        self._worker = None
        if self._pending:
            self._pending = False
            self._start()

    def _clear_result(self) -> None:
        self.prediction = None
        self.prediction_label.setText("—")
        self.table.setRowCount(0)

    @guarded
    def _show(self, generation: int, layer: Any, prediction: Any) -> None:
        if generation != self._generation:
            if not self._timer.isActive():
                self._pending = True
            return
        self.prediction = prediction
        if prediction.task == "classification":
            rows = prediction.table()
            self.prediction_label.setText(f"{prediction.label}  ({rows[0][1]:.0%})")
            self.table.setRowCount(len(rows))
            for i, (name, p) in enumerate(rows):
                self.table.setItem(i, 0, QTableWidgetItem(name))
                self.table.setItem(i, 1, QTableWidgetItem(f"{p:.3f}"))
                bar = QProgressBar()
                bar.setRange(0, 1000)
                bar.setValue(round(p * 1000))
                bar.setTextVisible(False)
                self.table.setCellWidget(i, 2, bar)
        else:
            name = MASK_PREFIX + layer.name
            mask = prediction.mask
            if self.mask_layer is not None and self.mask_layer in self.viewer.layers:
                self.mask_layer.data = mask
                self.mask_layer.name = name
            else:
                self.mask_layer = self.viewer.add_labels(mask, name=name, opacity=0.5, **image_geometry(layer))
            self.prediction_label.setText(f"mask: {float((mask > 0).mean()):.1%} foreground")
            self.table.setRowCount(0)
        self.predicted.emit(prediction)

    # -- slots ------------------------------------------------------------------------------

    @guarded
    def _on_load(self, *_: Any) -> None:
        path, _filter = QFileDialog.getOpenFileName(self, "Load ispkit task-model checkpoint", "", "Checkpoints (*.pt *.pth);;All files (*)")
        if path:
            self.load(path)

    @guarded
    def _on_bundled(self, *_: Any) -> None:
        self.load_bundled()
