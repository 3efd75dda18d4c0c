"""Drift view: the selected raw layer through the twelve presets (or a subset), as a stack.

Two layers, replaced on every *Compute*: ``drift: <layer>`` (N, H, W, 3) with one slice per
preset and ``drift |Δ <reference>|: <layer>``, the per-pixel absolute difference to the
reference preset's view. Both carry the preset names in ``metadata["ispkit_presets"]`` and
each preset's pipeline YAML in ``metadata["ispkit_pipelines"]`` (the writer records them);
their first axis is labelled ``preset`` and a text overlay names the preset of the
current slice (``viewer.canvas.overlays.text``, top left). A single mosaic is computed in a
napari ``thread_worker``; a stack of frames (``(*frames, H, W)``) gets lazy layers
``(N, *frames, H, W, 3)``, a view computed when napari shows it (see
:mod:`napari_drift.logic.drift_view`). The layers lie on the raw layer (same scale and
units) and are shown with :func:`~napari_drift.logic.composer.view_contrast_limits`, so the
views of a very dark raw are not black.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from napari.qt.threading import thread_worker
from qtpy.QtCore import Qt, Signal
from qtpy.QtWidgets import QComboBox, QHBoxLayout, QLabel, QListWidget, QListWidgetItem, QPushButton, QVBoxLayout, QWidget

from ..logic.composer import ComposerModel, view_contrast_limits
from ..logic.drift_view import METADATA_PIPELINES, METADATA_PRESETS, METADATA_REFERENCE, drift_stack, lazy_drift_stack, preset_pipelines
from ..logic.raw_layer import camera_from_metadata, mosaic_from_layer
from ._common import DockedWidget, RawLayerCombo, current_frame, derived_geometry, frame_axes, guarded, notify_error, put_layer

__all__ = ["DriftViewWidget", "STACK_PREFIX", "DIFF_PREFIX"]

STACK_PREFIX = "drift: "
DIFF_PREFIX = "drift |Δ ref|: "


class DriftViewWidget(DockedWidget):
    """Dock widget: raw layer, preset checklist, reference preset, Compute."""

    computed = Signal(object, object)  # (stack layer, difference layer)

    def __init__(self, napari_viewer: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.viewer = napari_viewer
        self.stack_layer: Any = None
        self.diff_layer: Any = None
        self._worker: Any = None
        self._names: tuple[str, ...] = ()

        layout = QVBoxLayout(self)
        row = QHBoxLayout()
        row.addWidget(QLabel("Raw layer"))
        self.layer_combo = RawLayerCombo(napari_viewer, self)
        row.addWidget(self.layer_combo, 1)
        layout.addLayout(row)

        layout.addWidget(QLabel("Presets (demosaic,sharpen,denoise)"))
        self.preset_list = QListWidget(self)
        for name in ComposerModel.presets():
            item = QListWidgetItem(name)
            item.setFlags(item.flags() | Qt.ItemIsUserCheckable)
            item.setCheckState(Qt.Checked)
            self.preset_list.addItem(item)
        layout.addWidget(self.preset_list, 1)
        buttons = QHBoxLayout()
        self.all_button = QPushButton("All")
        self.none_button = QPushButton("None")
        buttons.addWidget(self.all_button)
        buttons.addWidget(self.none_button)
        layout.addLayout(buttons)

        row = QHBoxLayout()
        row.addWidget(QLabel("Reference"))
        self.reference_combo = QComboBox(self)
        self.reference_combo.addItems(ComposerModel.presets())
        self.reference_combo.setToolTip("The difference stack shows |view − this preset's view|")
        row.addWidget(self.reference_combo, 1)
        row.addWidget(QLabel("Backend"))
        self.backend_combo = QComboBox(self)
        self.backend_combo.addItems(["numpy", "torch"])
        row.addWidget(self.backend_combo)
        layout.addLayout(row)

        self.compute_button = QPushButton("Compute drift stack")
        layout.addWidget(self.compute_button)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        layout.addWidget(self.status)

        self.all_button.clicked.connect(lambda *_: self.set_presets(ComposerModel.presets()))
        self.none_button.clicked.connect(lambda *_: self.set_presets([]))
        self.compute_button.clicked.connect(self._on_compute)
        self.viewer.dims.events.current_step.connect(self._update_overlay)

    # -- public API ---------------------------------------------------------------------

    def set_presets(self, names: Any) -> None:
        wanted = set(names)
        for i in range(self.preset_list.count()):
            item = self.preset_list.item(i)
            item.setCheckState(Qt.Checked if item.text() in wanted else Qt.Unchecked)

    def presets(self) -> list[str]:
        return [self.preset_list.item(i).text() for i in range(self.preset_list.count()) if self.preset_list.item(i).checkState() == Qt.Checked]

    def is_idle(self) -> bool:
        return self._worker is None

    def compute(self) -> bool:
        """Start the computation for the current choices; False (and a notification) if it cannot start."""
        if self._worker is not None:
            notify_error("A drift stack is already being computed; wait for it to finish.")
            return False
        layer = self.layer_combo.layer()
        if layer is None:
            notify_error("No raw layer: open a raw TIFF/DNG with napari-drift or load a napari-drift sample.")
            return False
        names = self.presets()
        if not names:
            notify_error("Tick at least one preset.")
            return False
        reference = self.reference_combo.currentText()
        if reference not in names:
            names = [reference, *names]  # the reference must be computed too
        work = self._work(layer, names, reference)
        worker = thread_worker(work, start_thread=False)()
        worker.returned.connect(lambda result: self._show(layer, reference, *result))
        worker.errored.connect(lambda exc: notify_error(f"Drift stack failed: {type(exc).__name__}: {exc}"))
        worker.finished.connect(self._on_finished)
        self._worker = worker
        self.compute_button.setEnabled(False)
        self.status.setText(f"computing {len(names)} views of {layer.name}…")
        worker.start()
        return True

    def _work(self, layer: Any, names: list[str], reference: str) -> Any:
        """The computation for a worker: ``(stack, difference, view limits, difference limits)``.

        A single mosaic's views are computed there; a stack's stay lazy, and only the views
        of the frame shown are computed, for their contrast limits.
        """
        if frame_axes(layer):
            frames, camera, frame = layer.data, camera_from_metadata(layer.metadata), current_frame(self.viewer, layer)
            lazy, backend = True, "numpy"
        else:
            (mosaic, camera), lazy, backend = mosaic_from_layer(layer), False, self.backend_combo.currentText()

        def work() -> tuple:
            stack = lazy_drift_stack(frames, camera, names) if lazy else drift_stack(mosaic, camera, names, backend=backend)
            difference = stack.difference(reference)
            shown = (slice(None), *frame) if lazy else (slice(None),)
            return stack, difference, view_contrast_limits(np.asarray(stack.data[shown])), view_contrast_limits(np.asarray(difference[shown]))

        return work

    # -- slots --------------------------------------------------------------------------

    @guarded
    def _on_compute(self, *_: Any) -> None:
        self.compute()

    def _on_finished(self) -> None:
        self._worker = None
        self.compute_button.setEnabled(True)

    @guarded
    def _show(self, source: Any, reference: str, stack: Any, difference: Any, limits: tuple, diff_limits: tuple) -> None:
        self._names = stack.names
        metadata = {
            METADATA_PRESETS: list(stack.names),
            METADATA_REFERENCE: reference,
            METADATA_PIPELINES: preset_pipelines(stack.names, camera_from_metadata(source.metadata)),
            "ispkit_drift_of": source.name,
        }
        geometry = derived_geometry(source, ("preset",))
        self.stack_layer = put_layer(
            self.viewer, self.stack_layer, stack.data, {"name": STACK_PREFIX + source.name, "metadata": metadata, "contrast_limits": limits, **geometry}
        )
        diff_kwargs = {"name": DIFF_PREFIX.replace("ref", reference) + source.name, "metadata": dict(metadata), "contrast_limits": diff_limits, **geometry}
        if self.diff_layer is None or self.diff_layer not in self.viewer.layers:
            diff_kwargs["visible"] = False
        self.diff_layer = put_layer(self.viewer, self.diff_layer, difference, diff_kwargs)
        self.status.setText(f"{len(stack.names)} presets; reference {reference}. Move the 'preset' slider to flip through them.")
        self._update_overlay()
        self.computed.emit(self.stack_layer, self.diff_layer)

    def current_preset(self) -> str | None:
        """The preset of the slice the viewer shows (None before a stack exists)."""
        if not self._names or self.stack_layer is None or self.stack_layer not in self.viewer.layers:
            return None
        try:
            index = current_frame(self.viewer, self.stack_layer)[0]  # the drift layer's first axis: the preset
        except Exception:
            return None
        return self._names[min(max(index, 0), len(self._names) - 1)]

    def _update_overlay(self, *_: Any) -> None:
        """Name the current slice's preset in the canvas's text overlay, top left: napari's
        notifications open at the bottom right and would cover it there."""
        try:
            name = self.current_preset()
            if name is None:
                return
            overlay = self.viewer.canvas.overlays.text
            overlay.position = "top_left"
            overlay.text = f"preset: {name}"
            overlay.visible = True
        except Exception:  # cosmetic, never raise into Qt
            pass
