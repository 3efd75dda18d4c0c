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

With *Drift* set to "raw corruptions" the widget shows physical drift before the ISP
instead: the raw (of the frame shown, for a stack) under each ticked raw-domain corruption
and severity, all processed by the preset chosen as *Preset* -- layers ``raw drift: <layer>``
``(C, S, H, W, 3)`` with axes ``corruption`` and ``severity`` and ``raw drift |Δ clean|:
<layer>``, the difference to the clean view; the overlay names the corruption and its
physical quantities at the severity shown (:func:`napari_drift.logic.drift_view.raw_corruption_stack`).
With every corruption ticked, those the raw's camera cannot support are left out and named
in the status line.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from napari.qt.threading import thread_worker
from qtpy.QtCore import Qt, Signal
from qtpy.QtWidgets import QCheckBox, QComboBox, QHBoxLayout, QLabel, QListWidget, QListWidgetItem, QPushButton, QVBoxLayout, QWidget

from ..logic.composer import ComposerModel, view_contrast_limits
from ..logic.drift_view import (
    METADATA_PIPELINES,
    METADATA_PRESETS,
    METADATA_REFERENCE,
    RawCorruptionStack,
    drift_stack,
    lazy_drift_stack,
    preset_pipelines,
    raw_corruption_stack,
)
from ..logic.raw_layer import camera_from_metadata, mosaic_from_layer
from ._common import DockedWidget, RawLayerCombo, current_frame, derived_geometry, frame_axes, guarded, image_geometry, notify_error, put_layer

__all__ = ["DriftViewWidget", "STACK_PREFIX", "DIFF_PREFIX", "RAW_STACK_PREFIX", "RAW_DIFF_PREFIX", "MODES"]

STACK_PREFIX = "drift: "
DIFF_PREFIX = "drift |Δ ref|: "
RAW_STACK_PREFIX = "raw drift: "
RAW_DIFF_PREFIX = "raw drift |Δ clean|: "
MODES = ("ISP presets", "raw corruptions")
"""What the drift axis is: the twelve presets on one raw, or raw-domain corruptions through one preset."""


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
        self.raw_stack: RawCorruptionStack | None = None
        self.raw_stack_layer: Any = None
        self.raw_diff_layer: Any = None

        layout = QVBoxLayout(self)
        row = QHBoxLayout()
        row.addWidget(QLabel("Raw layer"))
        self.layer_combo = RawLayerCombo(napari_viewer, self)
        row.addWidget(self.layer_combo, 1)
        layout.addLayout(row)
        row = QHBoxLayout()
        row.addWidget(QLabel("Drift"))
        self.mode_combo = QComboBox(self)
        self.mode_combo.addItems(MODES)
        self.mode_combo.setToolTip("ISP presets: one raw through many pipelines; raw corruptions: a physically different acquisition through one pipeline")
        row.addWidget(self.mode_combo, 1)
        layout.addLayout(row)

        self.preset_label = QLabel("Presets (demosaic,sharpen,denoise)")
        layout.addWidget(self.preset_label)
        self.preset_list = _checklist(self, ComposerModel.presets())
        layout.addWidget(self.preset_list, 1)
        self.corruption_label = QLabel("Raw corruptions (before the ISP)")
        layout.addWidget(self.corruption_label)
        self.corruption_list = _checklist(self, _raw_corruption_names())
        layout.addWidget(self.corruption_list, 1)
        self.severity_row = QHBoxLayout()
        self.severity_label = QLabel("Severities")
        self.severity_row.addWidget(self.severity_label)
        self.severity_boxes = [QCheckBox(str(s), self) for s in (1, 2, 3, 4, 5)]
        for box in self.severity_boxes:
            box.setChecked(True)
            self.severity_row.addWidget(box)
        layout.addLayout(self.severity_row)
        buttons = QHBoxLayout()
        self.all_button = QPushButton("All")
        self.none_button = QPushButton("None")
        buttons.addWidget(self.all_button)
        buttons.addWidget(self.none_button)
        layout.addLayout(buttons)

        row = QHBoxLayout()
        self.reference_label = QLabel("Reference")
        row.addWidget(self.reference_label)
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

        self.all_button.clicked.connect(lambda *_: self._set_all(True))
        self.none_button.clicked.connect(lambda *_: self._set_all(False))
        self.compute_button.clicked.connect(self._on_compute)
        self.mode_combo.currentTextChanged.connect(self._on_mode)
        self.viewer.dims.events.current_step.connect(self._update_overlay)
        self._on_mode(self.mode_combo.currentText())

    # -- public API ---------------------------------------------------------------------

    def set_presets(self, names: Any) -> None:
        _check(self.preset_list, set(names))

    def presets(self) -> list[str]:
        return _checked(self.preset_list)

    def set_raw_corruptions(self, names: Any) -> None:
        _check(self.corruption_list, set(names))

    def raw_corruptions(self) -> list[str]:
        return _checked(self.corruption_list)

    def severities(self) -> list[int]:
        return [int(box.text()) for box in self.severity_boxes if box.isChecked()]

    def raw_mode(self) -> bool:
        """Whether the widget shows raw-domain corruptions (else ISP presets)."""
        return self.mode_combo.currentText() == MODES[1]

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
        if self.raw_mode():
            return self._start_raw(layer)
        names = self.presets()
        if not names:
            notify_error("Tick at least one preset.")
            return False
        reference = self.reference_combo.currentText()
        if reference not in names:
            names = [reference, *names]  # the reference must be computed too
        return self._start(
            self._work(layer, names, reference),
            lambda result: self._show(layer, reference, *result),
            "Drift stack",
            f"computing {len(names)} views of {layer.name}…",
        )

    def _start(self, work: Any, show: Any, what: str, status: str) -> bool:
        """Run ``work`` in a napari thread worker, then ``show`` its result (errors become notifications naming ``what``)."""
        worker = thread_worker(work, start_thread=False)()
        worker.returned.connect(show)
        worker.errored.connect(lambda exc: notify_error(f"{what} failed: {type(exc).__name__}: {exc}"))
        worker.finished.connect(self._on_finished)
        self._worker = worker
        self.compute_button.setEnabled(False)
        self.status.setText(status)
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

    def _start_raw(self, layer: Any) -> bool:
        """Start the raw-corruption stack of ``layer`` (the frame shown, for a stack)."""
        ticked, severities = self.raw_corruptions(), self.severities()
        if not ticked or not severities:
            notify_error("Tick at least one raw corruption and one severity.")
            return False
        every = len(ticked) == self.corruption_list.count()  # all ticked: leave out what the camera cannot support
        mosaic, camera = mosaic_from_layer(layer, current_frame(self.viewer, layer))
        preset = self.reference_combo.currentText()
        return self._start(
            lambda: raw_corruption_stack(mosaic, camera, preset, None if every else ticked, severities),
            lambda stack: self._show_raw(layer, stack),
            "Raw corruption stack",
            f"computing {len(ticked)} raw corruptions × {len(severities)} severities of {layer.name} through {preset}…",
        )

    # -- slots --------------------------------------------------------------------------

    def _on_mode(self, mode: str) -> None:
        raw = mode == MODES[1]
        for widget in (self.preset_label, self.preset_list):
            widget.setVisible(not raw)
        for widget in (self.corruption_label, self.corruption_list, self.severity_label, *self.severity_boxes):
            widget.setVisible(raw)
        self.reference_label.setText("Preset" if raw else "Reference")
        self.reference_combo.setToolTip("Every corrupted raw is processed by this preset" if raw else "The difference stack shows |view − this preset's view|")
        self.compute_button.setText("Compute raw corruption stack" if raw else "Compute drift stack")

    def _set_all(self, ticked: bool) -> None:
        if self.raw_mode():
            self.set_raw_corruptions(_checked(self.corruption_list, every=True) if ticked else [])
        else:
            self.set_presets(ComposerModel.presets() if ticked else [])

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

    @guarded
    def _show_raw(self, source: Any, stack: RawCorruptionStack) -> None:
        self.raw_stack = stack
        metadata = {
            "ispkit_raw_corruptions": list(stack.names),
            "ispkit_severities": list(stack.severities),
            METADATA_REFERENCE: stack.preset,
            METADATA_PIPELINES: preset_pipelines([stack.preset], camera_from_metadata(source.metadata)),
            "ispkit_drift_of": source.name,
        }
        image = image_geometry(source)
        geometry = {
            "scale": (1.0, 1.0, *image["scale"]),
            "units": ("pixel", "pixel", *image["units"]),
            "axis_labels": ("corruption", "severity", *(str(a) for a in source.axis_labels[-2:])),
        }
        self.raw_stack_layer = put_layer(
            self.viewer,
            self.raw_stack_layer,
            stack.data,
            {"name": RAW_STACK_PREFIX + source.name, "metadata": metadata, "contrast_limits": view_contrast_limits(stack.clean), **geometry},
        )
        difference = stack.difference()
        diff_kwargs = {"name": RAW_DIFF_PREFIX + source.name, "metadata": dict(metadata), "contrast_limits": view_contrast_limits(difference), **geometry}
        if self.raw_diff_layer is None or self.raw_diff_layer not in self.viewer.layers:
            diff_kwargs["visible"] = False
        self.raw_diff_layer = put_layer(self.viewer, self.raw_diff_layer, difference, diff_kwargs)
        left_out = f" Left out (the camera cannot support them): {', '.join(stack.skipped)}." if stack.skipped else ""
        self.status.setText(
            f"{len(stack.names)} raw corruptions × {len(stack.severities)} severities through {stack.preset}. "
            f"Move the 'corruption' and 'severity' sliders to flip through them.{left_out}"
        )
        self.status.setToolTip("\n".join(f"{name}: {why}" for name, why in stack.skipped.items()))
        self._update_overlay()
        self.computed.emit(self.raw_stack_layer, self.raw_diff_layer)

    def current_raw_corruption(self) -> str | None:
        """The corruption and severity of the slice the viewer shows, in words (None before a raw stack exists)."""
        if self.raw_stack is None or self.raw_stack_layer is None or self.raw_stack_layer not in self.viewer.layers:
            return None
        try:
            c, s = current_frame(self.viewer, self.raw_stack_layer)[:2]
        except Exception:
            return None
        return self.raw_stack.describe(min(max(c, 0), len(self.raw_stack.names) - 1), min(max(s, 0), len(self.raw_stack.severities) - 1))

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
            if self.raw_mode():
                described = self.current_raw_corruption()
                text = None if described is None else f"{described} (through {self.raw_stack.preset})"  # type: ignore[union-attr]
            else:
                name = self.current_preset()
                text = None if name is None else f"preset: {name}"
            if text is None:
                return
            overlay = self.viewer.canvas.overlays.text
            overlay.position = "top_left"
            overlay.text = text
            overlay.visible = True
        except Exception:  # cosmetic, never raise into Qt
            pass


def _raw_corruption_names() -> list[str]:
    from ispkit.raw_corruptions import raw_corruptions

    return list(raw_corruptions())


def _checklist(parent: QWidget, names: Any) -> QListWidget:
    """A list of checkable items ``names``, all ticked."""
    widget = QListWidget(parent)
    for name in names:
        item = QListWidgetItem(name)
        item.setFlags(item.flags() | Qt.ItemIsUserCheckable)
        item.setCheckState(Qt.Checked)
        widget.addItem(item)
    return widget


def _checked(widget: QListWidget, *, every: bool = False) -> list[str]:
    """The ticked items' texts (every item's with ``every``)."""
    items = [widget.item(i) for i in range(widget.count())]
    return [item.text() for item in items if every or item.checkState() == Qt.Checked]


def _check(widget: QListWidget, wanted: set[str]) -> None:
    """Tick exactly the items named in ``wanted``."""
    for i in range(widget.count()):
        item = widget.item(i)
        item.setCheckState(Qt.Checked if item.text() in wanted else Qt.Unchecked)
