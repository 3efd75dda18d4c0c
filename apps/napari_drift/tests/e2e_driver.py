"""End-to-end driver: one napari session as a user runs it, scripted through the widgets.

Run by ``test_e2e.py`` in a fresh interpreter under the current X display::

    python -X faulthandler e2e_driver.py SPEC.json

``SPEC.json`` holds ``raw`` (a raw file), ``experiment`` (a small forensics YAML),
``run_dir`` (the job's run folder), ``preview`` (where to save the composer's preview as
``.npy``) and ``report`` (where to write what was seen, as JSON). The driver creates a
viewer, docks every widget of the plugin's manifest, opens the raw file, edits the
composer's gamma, runs the bundled classifier, starts the job, cancels it after its first
unit, resumes it, closes the viewer and leaves napari's event loop. Exit code 0 when every
step completed; 1 with the failure in the report when a step failed or timed out; a crash
(e.g. a segmentation fault) shows as a negative exit code.
"""

from __future__ import annotations

import json
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

GAMMA = 1.3
WAIT_S = 60.0


def wait_until(predicate: Callable[[], bool], what: str, timeout: float = WAIT_S) -> None:
    """Process Qt events until ``predicate()`` holds; ``TimeoutError`` naming ``what`` after ``timeout`` s."""
    from qtpy.QtWidgets import QApplication

    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        QApplication.processEvents()
        time.sleep(0.01)


def dock_manifest_widgets(viewer: Any) -> dict[str, Any]:
    """Dock every widget the plugin's manifest contributes: display name → widget."""
    import npe2

    manifest = npe2.PluginManager.instance().get_manifest("napari-drift")
    docked = {}
    for contribution in manifest.contributions.widgets or []:
        _dock, widget = viewer.window.add_plugin_dock_widget("napari-drift", contribution.display_name)
        docked[contribution.display_name] = widget
    return docked


def edit_composer(composer: Any, spec: dict[str, Any], report: dict[str, Any]) -> None:
    """Wait for the first preview, set gamma through its editor, wait for the new preview."""
    import numpy as np

    wait_until(lambda: composer.is_idle() and composer.preview_layer is not None, "the composer's first preview")
    first = np.array(composer.preview_layer.data)
    composer.editor("gamma.gamma").setValue(GAMMA)
    wait_until(lambda: composer.is_idle() and not np.array_equal(composer.preview_layer.data, first), "the preview after the gamma edit")
    np.save(spec["preview"], np.asarray(composer.preview_layer.data))
    report["composer"] = {
        "source": composer.source_layer.name,
        "pipeline_yaml": composer.model.pipeline.to_yaml(),
        "preview_layer": composer.preview_layer.name,
    }


def run_classifier(classifier: Any, composer: Any, report: dict[str, Any]) -> None:
    """Load the bundled model with its button and wait for a prediction on the composer's preview."""
    classifier.bundled_button.click()
    wait_until(lambda: classifier.prediction is not None and classifier.is_idle(), "the classifier's prediction")
    report["classifier"] = {
        "source": classifier.source_layer.name,  # names: docked widgets see layers through napari's proxies
        "probabilities": [float(p) for p in classifier.prediction.probabilities],
        "label": classifier.prediction.label,
        "shown": classifier.prediction_label.text(),
        "rows": classifier.table.rowCount(),
    }


def run_job(jobs: Any, spec: dict[str, Any], report: dict[str, Any]) -> None:
    """Start the job with Run, Cancel it after its first unit, Run it again into the same folder."""
    finished: list[str] = []
    jobs.job_finished.connect(finished.append)
    jobs.config_edit.setText(spec["experiment"])
    jobs.run_edit.setText(spec["run_dir"])
    jobs.start_button.click()
    wait_until(lambda: "[1/" in jobs.log.toPlainText() or finished, "the job's first unit")
    clicked = time.monotonic()
    jobs.cancel_button.click()
    wait_until(lambda: len(finished) == 1, "the cancelled job to stop")
    cancel_seconds = time.monotonic() - clicked
    first_log = jobs.log.toPlainText()
    jobs.start_button.click()
    wait_until(lambda: len(finished) == 2, "the resumed job to finish")
    report["jobs"] = {
        "states": finished,
        "cancel_seconds": round(cancel_seconds, 2),
        "status": jobs.status_label.text(),
        "cancelled_log": first_log,
        "resumed_log": jobs.log.toPlainText(),
        "pipelines": sorted(jobs.pipelines()),
        "figure_layers": [layer.name for layer in jobs.figure_layers],
    }


def script(viewer: Any, spec: dict[str, Any], report: dict[str, Any]) -> None:
    """The user's session, step by step; each step adds what it saw to ``report`` (and its duration to ``report["seconds"]``)."""
    seconds = report.setdefault("seconds", {})
    clock = time.monotonic()

    def lap(step: str) -> None:
        nonlocal clock
        seconds[step] = round(time.monotonic() - clock, 2)
        clock = time.monotonic()

    docked = dock_manifest_widgets(viewer)
    report["docked"] = {name: type(widget).__name__ for name, widget in docked.items()}
    layers = viewer.open(spec["raw"], plugin="napari-drift")
    report["opened"] = [layer.name for layer in layers]
    lap("dock and open")
    composer, classifier, jobs = docked["ISP pipeline composer"], docked["Classifier"], docked["Drift jobs"]
    edit_composer(composer, spec, report)
    lap("composer")
    run_classifier(classifier, composer, report)
    lap("classifier")
    run_job(jobs, spec, report)
    lap("jobs")
    # torch's compiler stack (torch._dynamo, and triton with it) must stay out of the GUI process
    report["gui_modules"] = {name: name in sys.modules for name in ("torch._dynamo", "triton")}


def main(argv: list[str]) -> int:
    import warnings

    # a deprecated napari API reached by the plugin is an error (a notification, through the widgets' guards)
    for category in (DeprecationWarning, FutureWarning):
        warnings.filterwarnings("error", category=category, module="napari_drift")

    import napari
    import qtpy
    from napari.utils.notifications import notification_manager
    from qtpy.QtCore import QTimer

    spec = json.loads(Path(argv[1]).read_text(encoding="utf-8"))
    report: dict[str, Any] = {"notifications": [], "qt_api": qtpy.API_NAME}
    notification_manager.notification_ready.connect(lambda notification: report["notifications"].append(f"{notification.severity}: {notification.message}"))
    viewer = napari.Viewer()

    def session() -> None:
        try:
            script(viewer, spec, report)
        except BaseException:  # recorded, the viewer still closes
            report["failure"] = traceback.format_exc()
        finally:
            Path(spec["report"]).write_text(json.dumps(report, indent=1), encoding="utf-8")
            viewer.close()

    QTimer.singleShot(0, session)
    napari.run()
    return 1 if "failure" in report else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
