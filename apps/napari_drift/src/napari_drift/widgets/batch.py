"""Batch: a folder of raw files through presets into a Zarr store, with ``ispkit bulk``.

Choose the raw folder, the store (``*.zarr``; an existing one resumes), the presets and
where to compute (*local*,
*workers* > 1 for a local Dask cluster, or a Dask scheduler address), then *Run*. The
command runs in a child process (:class:`napari_drift.logic.batch.BatchRunner`) driven by a
napari generator ``thread_worker``; the progress bar counts the views written (images ×
presets, read from the store's completion flags), the log shows ispkit's output, and
*Cancel* interrupts it (the written images stay; *Run* again finishes the rest). *Open
results* adds each preset's views as a lazy layer ``bulk <preset>: <folder>``, at the
raw files' pixel size, with its pipeline in the metadata (the plugin's writer saves it).
"""

from __future__ import annotations

from typing import Any

from napari.qt.threading import thread_worker
from qtpy.QtCore import Qt, QTimer, Signal
from qtpy.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ..logic.batch import BACKENDS, BatchError, BatchRunner, open_results
from ..logic.composer import ComposerModel, view_contrast_limits
from ..logic.raw_layer import physical_scale
from ..logic.stacks import pixel_size_of
from ._common import DockedWidget, guarded, notify_error

__all__ = ["BatchWidget", "RESULT_PREFIX"]

RESULT_PREFIX = "bulk "
PROGRESS_INTERVAL_MS = 250
_STATUS = {"running": "running…", "finished": "finished", "cancelled": "cancelled (Run again to finish)", "error": "failed"}


class BatchWidget(DockedWidget):
    """Dock widget: raw folder, store, presets, scheduler, Run/Cancel, progress, log, Open results."""

    batch_finished = Signal(str)  # "finished", "cancelled" or "error"

    def __init__(self, napari_viewer: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.viewer = napari_viewer
        self.runner: BatchRunner | None = None
        self.state = "idle"
        self.result_layers: list[Any] = []
        self._worker: Any = None

        layout = QVBoxLayout(self)
        form = QFormLayout()
        self.source_edit, self.source_button = QLineEdit(), QPushButton("…")
        self.source_edit.setPlaceholderText("folder of raw TIFF/DNG files (one shape, one camera)")
        form.addRow("Raw folder", _with_button(self.source_edit, self.source_button))
        self.store_edit, self.store_button = QLineEdit(), QPushButton("…")
        self.store_edit.setPlaceholderText("output Zarr store, e.g. views.zarr (an existing one resumes)")
        form.addRow("Store", _with_button(self.store_edit, self.store_button))
        self.backend_combo = QComboBox()
        self.backend_combo.addItems(list(BACKENDS))
        self.scheduler_edit = QLineEdit()
        self.scheduler_edit.setPlaceholderText("local, or a Dask scheduler address (tcp://host:8786)")
        self.scheduler_edit.setToolTip("Where the images are processed; a cluster's workers must see the folder and the store")
        self.workers_spin = QSpinBox()
        self.workers_spin.setRange(1, 256)
        self.workers_spin.setToolTip("With a local scheduler: processes of a local Dask cluster (1: threads in one process)")
        row = QHBoxLayout()
        row.addWidget(self.scheduler_edit, 1)
        row.addWidget(QLabel("Workers"))
        row.addWidget(self.workers_spin)
        row.addWidget(self.backend_combo)
        form.addRow("Scheduler", row)
        layout.addLayout(form)

        layout.addWidget(QLabel("Presets (demosaic,sharpen,denoise)"))
        self.preset_list = QListWidget()
        for name in ComposerModel.presets():
            item = QListWidgetItem(name)
            item.setFlags(item.flags() | Qt.ItemIsUserCheckable)
            item.setCheckState(Qt.Checked if name == "bi,s,me" else Qt.Unchecked)
            self.preset_list.addItem(item)
        self.preset_list.setMinimumHeight(60)
        layout.addWidget(self.preset_list, 1)

        row = QHBoxLayout()
        self.start_button, self.cancel_button, self.open_button = QPushButton("Run"), QPushButton("Cancel"), QPushButton("Open results")
        self.cancel_button.setEnabled(False)
        self.open_button.setEnabled(False)
        for button in (self.start_button, self.cancel_button, self.open_button):
            row.addWidget(button)
        layout.addLayout(row)
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 1000)
        layout.addWidget(self.progress_bar)
        self.status_label = QLabel("")
        layout.addWidget(self.status_label)
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(2000)
        self.log.setMinimumHeight(40)
        layout.addWidget(self.log, 1)

        self._timer = QTimer(self)
        self._timer.setInterval(PROGRESS_INTERVAL_MS)
        self._timer.timeout.connect(self._show_progress)
        self.source_button.clicked.connect(self._on_choose_source)
        self.store_button.clicked.connect(self._on_choose_store)
        self.start_button.clicked.connect(self._on_start)
        self.cancel_button.clicked.connect(self._on_cancel)
        self.open_button.clicked.connect(self._on_open)

    # -- public API ---------------------------------------------------------------------

    def presets(self) -> list[str]:
        return [self.preset_list.item(i).text() for i in range(self.preset_list.count()) if self.preset_list.item(i).checkState() == Qt.Checked]

    def set_presets(self, names: Any) -> None:
        wanted = set(names)
        for i in range(self.preset_list.count()):
            item = self.preset_list.item(i)
            item.setCheckState(Qt.Checked if item.text() in wanted else Qt.Unchecked)

    def is_running(self) -> bool:
        return self._worker is not None

    def start(self) -> bool:
        """Start ``ispkit bulk`` with the fields; False and a notification if it cannot start."""
        if self._worker is not None:
            notify_error("A batch is already running: cancel it or wait for it to finish.")
            return False
        source, store = self.source_edit.text().strip(), self.store_edit.text().strip()
        if not source or not store:
            notify_error("Choose a raw folder and a store first.")
            return False
        try:
            runner = BatchRunner(
                source, store, self.presets(), backend=self.backend_combo.currentText(), scheduler=self.scheduler_edit.text(), workers=self.workers_spin.value()
            )
        except Exception as exc:
            notify_error(f"Cannot start the batch: {type(exc).__name__}: {exc}")
            return False
        self.runner, self.state = runner, "running"
        self.log.clear()
        self.log.appendPlainText(" ".join(runner.command()[1:]))
        self.status_label.setText(_STATUS["running"])
        self.progress_bar.setValue(0)
        worker = thread_worker(runner.lines, start_thread=False, ignore_errors=True)()
        worker.yielded.connect(self._on_line)
        worker.returned.connect(lambda _value: self._on_done(runner))
        worker.errored.connect(self._on_error)
        worker.finished.connect(self._on_finished)
        self._worker = worker
        self.start_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.open_button.setEnabled(False)
        self._timer.start()
        worker.start()
        return True

    def cancel(self) -> None:
        if self.runner is not None and self._worker is not None:
            self.runner.cancel()
            self.status_label.setText("cancelling…")
            self.cancel_button.setEnabled(False)

    def open_results(self) -> list[Any]:
        """Add the store's views (the presets of the last run) as lazy layers; the layers added."""
        if self.runner is None:
            notify_error("Run a batch first.")
            return []
        runner = self.runner
        pixel = physical_scale(1, pixel_size_of(runner.first_file, runner.files_camera))
        added = []
        for label, (views, pipeline_yaml) in open_results(runner.store, runner.pipelines).items():
            name = f"{RESULT_PREFIX}{label}: {runner.source.name}"
            if name in self.viewer.layers:
                self.viewer.layers.remove(name)
            metadata = {"ispkit_pipeline": pipeline_yaml, "ispkit_bulk_store": str(runner.store), "ispkit_preview_of": runner.source.name}
            limits = view_contrast_limits(views[0].compute())
            added.append(self.viewer.add_image(views, name=name, rgb=True, metadata=metadata, contrast_limits=limits, **pixel))
        self.result_layers = added
        return added

    # -- worker callbacks ---------------------------------------------------------------

    def _on_line(self, line: str) -> None:
        self.log.appendPlainText(line)
        self._show_progress()

    def _show_progress(self) -> None:
        if self.runner is not None:
            progress = self.runner.progress
            self.progress_bar.setValue(round(progress.fraction * 1000))
            self.progress_bar.setFormat(f"{progress.fraction:.0%} · {progress.describe()}")

    def _on_done(self, runner: BatchRunner) -> None:
        self.state = "cancelled" if runner.cancelled else "finished"
        self._show_progress()

    def _on_error(self, exc: BaseException) -> None:
        self.state = "error"
        what = str(exc) if isinstance(exc, BatchError) else f"{type(exc).__name__}: {exc}"
        self.log.appendPlainText(f"failed: {what}")
        notify_error(f"Batch failed: {what.splitlines()[0]}")

    def _on_finished(self) -> None:
        self._timer.stop()
        self._worker = None
        self.status_label.setText(_STATUS.get(self.state, self.state))
        self.start_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        self.open_button.setEnabled(self.state in ("finished", "cancelled"))
        self.batch_finished.emit(self.state)

    # -- slots ----------------------------------------------------------------------------

    @guarded
    def _on_choose_source(self, *_: Any) -> None:
        path = QFileDialog.getExistingDirectory(self, "Folder of raw files")
        if path:
            self.source_edit.setText(path)

    @guarded
    def _on_choose_store(self, *_: Any) -> None:
        path, _filter = QFileDialog.getSaveFileName(self, "Zarr store", "views.zarr", "Zarr store (*.zarr)")
        if path:
            self.store_edit.setText(path)

    @guarded
    def _on_start(self, *_: Any) -> None:
        self.start()

    @guarded
    def _on_cancel(self, *_: Any) -> None:
        self.cancel()

    @guarded
    def _on_open(self, *_: Any) -> None:
        self.open_results()


def _with_button(edit: QLineEdit, button: QPushButton) -> QHBoxLayout:
    row = QHBoxLayout()
    row.addWidget(edit, 1)
    row.addWidget(button)
    return row
