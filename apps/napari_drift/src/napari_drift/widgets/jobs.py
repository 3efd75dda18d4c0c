"""Jobs: run a drift-forensics or drift-adjustment experiment in the background.

Choose the experiment YAML (the kind is detected from its keys, or set explicitly), a run
folder (an existing one resumes) and where the units run (*local*, or a Dask scheduler
address such as ``tcp://host:8786``; *workers* > 1 starts a local Dask cluster), *Run*.
The job runs in a separate Python process (so torch's compiler stack, which cannot load
next to napari's OpenGL, never enters napari's process); a napari generator
``thread_worker`` drives :meth:`napari_drift.logic.jobs.JobRunner.lines`: each progress
line goes to the log, and the progress bar follows :class:`~napari_drift.logic.jobs.JobProgress`
(finished units, and the running unit's epochs and optimisation steps). *Cancel*
interrupts the job within the running step or epoch (the run folder keeps the finished
units and resumes). The status line says how the job ended: *finished*, *cancelled* or
*failed*. When a run finishes, its figures (``figures/*.png``) open as image layers and
the found pipelines are listed: forensic units (subset, λ) or the learned pipelines of an
adjustment (intensity, fold); *Load into composer* loads the chosen one into the docked
composer (one is docked if there is none).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
from napari.qt.threading import thread_worker
from qtpy.QtCore import QTimer, Signal
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ..logic.jobs import JobError, JobRunner, adjustment_pipelines, figures, forensics_pipelines
from ._common import DockedWidget, guarded, notify_error, viewer_units

__all__ = ["JobsWidget", "FIGURE_PREFIX", "PROGRESS_INTERVAL_MS"]

FIGURE_PREFIX = "figure: "
PROGRESS_INTERVAL_MS = 200  # how often the progress bar reads the running job's progress
_AUTO = "auto"
_STATUS = {"running": "running…", "finished": "finished", "cancelled": "cancelled (the run folder resumes)", "error": "failed"}


class JobsWidget(DockedWidget):
    """Dock widget: experiment, run folder, Run/Cancel, progress, log, figures and pipelines."""

    job_finished = Signal(str)  # "finished", "cancelled" or "error"

    def __init__(self, napari_viewer: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.viewer = napari_viewer
        self.runner: JobRunner | None = None
        self.state = "idle"
        self.figure_layers: list[Any] = []
        self._worker: Any = None
        self._pipelines: dict[str, Path] = {}

        layout = QVBoxLayout(self)
        row = QHBoxLayout()
        row.addWidget(QLabel("Experiment"))
        self.config_edit = QLineEdit()
        self.config_edit.setPlaceholderText("forensics or adjustment YAML (experiments/…)")
        row.addWidget(self.config_edit, 1)
        self.config_button = QPushButton("…")
        row.addWidget(self.config_button)
        self.kind_combo = QComboBox()
        self.kind_combo.addItems([_AUTO, "forensics", "adjustment"])
        row.addWidget(self.kind_combo)
        layout.addLayout(row)
        row = QHBoxLayout()
        row.addWidget(QLabel("Run folder"))
        self.run_edit = QLineEdit()
        self.run_edit.setPlaceholderText("output folder (an existing run resumes)")
        row.addWidget(self.run_edit, 1)
        self.run_dir_button = QPushButton("…")
        row.addWidget(self.run_dir_button)
        layout.addLayout(row)
        row = QHBoxLayout()
        row.addWidget(QLabel("Scheduler"))
        self.scheduler_edit = QLineEdit()
        self.scheduler_edit.setPlaceholderText("local, or a Dask scheduler address (tcp://host:8786)")
        self.scheduler_edit.setToolTip("Where the units run: 'local' (this machine) or a Dask scheduler address; the cluster's workers must see the run folder")
        row.addWidget(self.scheduler_edit, 1)
        row.addWidget(QLabel("Workers"))
        self.workers_spin = QSpinBox()
        self.workers_spin.setRange(1, 256)
        self.workers_spin.setToolTip("With a local scheduler: worker processes of a local Dask cluster (1: in the job process)")
        row.addWidget(self.workers_spin)
        layout.addLayout(row)
        row = QHBoxLayout()
        self.tracking_box = QCheckBox("MLflow tracking")
        row.addWidget(self.tracking_box)
        self.start_button = QPushButton("Run")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        row.addWidget(self.start_button)
        row.addWidget(self.cancel_button)
        layout.addLayout(row)
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 1000)
        self.progress_bar.setValue(0)
        layout.addWidget(self.progress_bar)
        self.status_label = QLabel("")
        layout.addWidget(self.status_label)
        self._progress_timer = QTimer(self)
        self._progress_timer.setInterval(PROGRESS_INTERVAL_MS)
        self._progress_timer.timeout.connect(self._show_progress)
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(5000)
        layout.addWidget(self.log, 1)
        row = QHBoxLayout()
        row.addWidget(QLabel("Pipeline"))
        self.pipeline_combo = QComboBox()
        row.addWidget(self.pipeline_combo, 1)
        self.load_pipeline_button = QPushButton("Load into composer")
        self.load_pipeline_button.setEnabled(False)
        row.addWidget(self.load_pipeline_button)
        layout.addLayout(row)

        self.config_button.clicked.connect(self._on_choose_config)
        self.run_dir_button.clicked.connect(self._on_choose_run_dir)
        self.start_button.clicked.connect(self._on_start)
        self.cancel_button.clicked.connect(self._on_cancel)
        self.load_pipeline_button.clicked.connect(self._on_load_pipeline)

    # -- public API ---------------------------------------------------------------------

    def is_running(self) -> bool:
        return self._worker is not None

    def start(self, config: Any = None, run_dir: Any = None, kind: str | None = None) -> bool:
        """Start a job (arguments default to the fields); False and a notification if it cannot start."""
        if self._worker is not None:
            notify_error("A job is already running: cancel it or wait for it to finish.")
            return False
        config = str(config if config is not None else self.config_edit.text()).strip()
        run_dir = str(run_dir if run_dir is not None else self.run_edit.text()).strip()
        kind = kind or (None if self.kind_combo.currentText() == _AUTO else self.kind_combo.currentText())
        if not config:
            notify_error("Choose an experiment YAML first.")
            return False
        if not run_dir:
            notify_error("Choose a run folder first.")
            return False
        self.config_edit.setText(config)
        self.run_edit.setText(run_dir)
        try:
            runner = JobRunner(
                kind, config, run_dir, tracking=self.tracking_box.isChecked(), scheduler=self.scheduler_edit.text(), workers=self.workers_spin.value()
            )
        except Exception as exc:
            notify_error(f"Cannot start the job: {type(exc).__name__}: {exc}")
            return False
        self.runner = runner
        self.state = "running"
        self.log.clear()
        self.log.appendPlainText(f"{runner.kind}: {config} → {run_dir} (scheduler {runner.scheduler}, {runner.workers} worker(s))")
        self.progress_bar.setValue(0)
        self.progress_bar.setFormat("%p%")
        self.status_label.setText(_STATUS["running"])
        self.pipeline_combo.clear()
        self._pipelines = {}
        self.load_pipeline_button.setEnabled(False)
        # errors are shown by _on_error; without ignore_errors napari would also re-raise them in the main thread
        worker = thread_worker(runner.lines, start_thread=False, ignore_errors=True)()
        worker.yielded.connect(self._on_line)
        worker.returned.connect(lambda _value: self._on_done(runner))
        worker.errored.connect(lambda exc: self._on_error(runner, exc))
        worker.finished.connect(self._on_finished)
        self._worker = worker
        self.start_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self._progress_timer.start()
        worker.start()
        return True

    def cancel(self) -> None:
        """Interrupt the running job (it stops within its running optimisation step or epoch)."""
        if self.runner is not None and self._worker is not None:
            self.runner.cancel()
            self.log.appendPlainText("cancelling: the job stops within its running step…")
            self.status_label.setText("cancelling…")
            self.cancel_button.setEnabled(False)

    def pipelines(self) -> dict[str, Path]:
        """The listed pipelines: combo text → pipeline.yaml."""
        return dict(self._pipelines)

    def load_pipeline(self, label: str | None = None) -> bool:
        """Load the chosen pipeline into the composer (docking one if none is)."""
        label = label or self.pipeline_combo.currentText()
        path = self._pipelines.get(label)
        if path is None:
            notify_error("No pipeline chosen: run a job (or wait for it to finish) first.")
            return False
        from .composer import ComposerWidget, find_composer

        composer = find_composer(self.viewer)
        if composer is None:
            composer = ComposerWidget(self.viewer)
            self.viewer.window.add_dock_widget(composer, name="ISP pipeline composer")
        composer.model.load_yaml(path)
        self.log.appendPlainText(f"loaded {path} into the composer")
        return True

    # -- worker callbacks ---------------------------------------------------------------

    @guarded
    def _on_line(self, line: str) -> None:
        self.log.appendPlainText(line)
        self._show_progress()

    def _show_progress(self) -> None:
        """The running job's progress on the bar: share of the work, and its units and steps as text."""
        if self.runner is None:
            return
        progress = self.runner.progress
        self.progress_bar.setValue(round(progress.fraction * 1000))
        self.progress_bar.setFormat(f"{progress.fraction:.0%} · {progress.describe()}")

    @guarded
    def _on_done(self, runner: JobRunner) -> None:
        self.state = "cancelled" if runner.cancelled else "finished"
        self._show_progress()
        if self.state == "finished":
            self.progress_bar.setValue(1000)
        self._show_outputs(runner)

    def _on_error(self, runner: JobRunner, exc: BaseException) -> None:
        self.state = "error"
        what = str(exc) if isinstance(exc, JobError) else f"{type(exc).__name__}: {exc}"
        if isinstance(exc, JobError) and exc.details:
            self.log.appendPlainText(exc.details.rstrip())
        self.log.appendPlainText(f"failed: {what}")
        notify_error(f"{runner.kind} job failed: {what}")

    def _on_finished(self) -> None:
        self._progress_timer.stop()
        self.status_label.setText(_STATUS.get(self.state, self.state))
        self._worker = None
        self.start_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        self.job_finished.emit(self.state)

    def _show_outputs(self, runner: JobRunner) -> None:
        if runner.kind == "forensics":
            found = forensics_pipelines(runner.run_dir)
            self._pipelines = {f"{subset}  λ={_lam(lam)}": path for (subset, lam), path in found.items()}
        else:
            found = adjustment_pipelines(runner.run_dir)
            self._pipelines = {f"intensity {i}  fold {k} (learned)": path for (i, k), path in found.items()}
        self.pipeline_combo.clear()
        self.pipeline_combo.addItems(list(self._pipelines))
        self.load_pipeline_button.setEnabled(bool(self._pipelines))
        if runner.finished:
            self._show_figures(runner.run_dir)

    def _show_figures(self, run_dir: Path) -> None:
        from PIL import Image

        for layer in self.figure_layers:
            if layer in self.viewer.layers:
                self.viewer.layers.remove(layer)
        self.figure_layers = []
        for path in figures(run_dir):
            try:
                data = np.asarray(Image.open(path).convert("RGB"))
            except Exception as exc:
                notify_error(f"Cannot read figure {path}: {exc}")
                continue
            layer = self.viewer.add_image(data, name=FIGURE_PREFIX + path.stem, rgb=True, metadata={"ispkit_figure": str(path)}, **viewer_units(self.viewer))
            self.figure_layers.append(layer)
        for layer in self.figure_layers[:-1]:
            layer.visible = False

    # -- slots ----------------------------------------------------------------------------

    @guarded
    def _on_choose_config(self, *_: Any) -> None:
        path, _filter = QFileDialog.getOpenFileName(self, "Experiment YAML", "", "Experiment YAML (*.yaml *.yml)")
        if path:
            self.config_edit.setText(path)

    @guarded
    def _on_choose_run_dir(self, *_: Any) -> None:
        path = QFileDialog.getExistingDirectory(self, "Run folder")
        if path:
            self.run_edit.setText(path)

    @guarded
    def _on_start(self, *_: Any) -> None:
        self.start()

    @guarded
    def _on_cancel(self, *_: Any) -> None:
        self.cancel()

    @guarded
    def _on_load_pipeline(self, *_: Any) -> None:
        self.load_pipeline()


def _lam(lam: float) -> str:
    return "∞" if math.isinf(lam) else f"{lam:g}"
