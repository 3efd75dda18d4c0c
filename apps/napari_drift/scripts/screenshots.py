"""Screenshots of the napari-drift widgets for docs/napari.md.

Run from the repository root (napari needs a display and OpenGL: Xvfb + Mesa):

    xvfb-run -a python apps/napari_drift/scripts/screenshots.py --out docs/images/napari

One fresh ``napari.Viewer`` per screenshot (window shown, 1400×900; the docked layout
1920×1080), the plugin's synthetic microscopy sample loaded, the widgets docked from the
npe2 manifest (``add_plugin_dock_widget``, as the Plugins menu docks them) and driven to a
meaningful state; background workers are waited for by processing Qt events until the
expected layer/label appears. Writes ``reader.png``, ``composer.png``, ``drift_view.png``,
``classifier.png``, ``jobs.png``, ``docked.png`` (every widget docked together),
``stack.png`` (an OME-TIFF time series with its scale bar, previewed frame by frame) and
``export.png`` (a folder through the Batch widget, a preview saved as a 16-bit TIFF).
Each PNG is kept under 300 kB. Exits non-zero with a message if a widget does not reach
its state within its timeout or an error notification is shown.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import numpy as np

PLUGIN = "napari-drift"
WINDOW_SIZE = (1400, 900)
SCREEN_SIZE = (1920, 1080)
MAX_BYTES = 300_000


class ShotFailed(RuntimeError):
    """A widget did not reach its state (or reported an error)."""


ERRORS: list[str] = []


def _record_notification(notification) -> None:
    from napari.utils.notifications import NotificationSeverity

    if notification.severity >= NotificationSeverity.ERROR:
        ERRORS.append(str(notification.message))


def _pump() -> None:
    """One round of Qt events, deferred deletes included (processEvents alone skips them
    outside a running event loop, which would leave deleted widgets on screen)."""
    from qtpy.QtCore import QEvent
    from qtpy.QtWidgets import QApplication

    QApplication.processEvents()
    QApplication.sendPostedEvents(None, QEvent.DeferredDelete)


def process_events(seconds: float = 0.0) -> None:
    end = time.monotonic() + seconds
    while True:
        _pump()
        if time.monotonic() >= end:
            return
        time.sleep(0.02)


def wait_until(condition: Callable[[], bool], timeout: float, what: str, state: Callable[[], str] | None = None) -> None:
    """Process Qt events until ``condition()`` holds; ShotFailed after ``timeout`` seconds."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        _pump()
        if ERRORS:
            raise ShotFailed(f"{what}: error notification: {ERRORS[-1]}")
        try:
            if condition():
                return
        except Exception:  # not there yet
            pass
        time.sleep(0.02)
    detail = ""
    if state is not None:
        try:
            detail = f" (state: {state()})"
        except Exception as exc:
            detail = f" (state unavailable: {exc})"
    raise ShotFailed(f"{what}: not reached within {timeout:.0f} s{detail}")


def new_viewer(title: str, size: tuple[int, int] = WINDOW_SIZE):
    import napari

    viewer = napari.Viewer(title=title, show=True)
    viewer.window._qt_window.resize(*size)
    process_events(0.2)
    return viewer


def open_sample(viewer):
    viewer.open_sample(PLUGIN, "microscopy")
    raw = [layer for layer in viewer.layers if "ispkit_camera" in layer.metadata]
    if not raw:
        raise ShotFailed("sample: no raw layer after open_sample('napari-drift', 'microscopy')")
    return raw[0]


def dock(viewer, name: str):
    widget = dock_with_frame(viewer, name)[1]
    return widget


def dock_with_frame(viewer, name: str):
    frame, widget = viewer.window.add_plugin_dock_widget(PLUGIN, name)
    process_events(0.2)
    return frame, widget


def _close_toasts(viewer) -> None:
    """Close notification pop-ups (none is expected: an error fails the shot) so they do not cover the canvas."""
    from napari._qt.dialogs.qt_notification import NapariQtNotification

    for toast in viewer.window._qt_window.findChildren(NapariQtNotification):
        toast.close()
    process_events(0.5)


def save(viewer, path: Path) -> None:
    """Screenshot of the whole window, made to fit in MAX_BYTES (PIL: optimise, then downscale)."""
    from PIL import Image

    process_events(0.5)
    _close_toasts(viewer)
    image = viewer.screenshot(None, canvas_only=False, flash=False)  # (H, W, 4) uint8
    img = Image.fromarray(np.asarray(image)).convert("RGB")
    scale = 1.0
    while True:
        out = img if scale == 1.0 else img.resize((round(img.width * scale), round(img.height * scale)), Image.LANCZOS)
        buffer = io.BytesIO()
        out.save(buffer, format="PNG", optimize=True)
        if buffer.tell() <= MAX_BYTES:
            break
        palette = out.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
        buffer = io.BytesIO()
        palette.save(buffer, format="PNG", optimize=True)
        if buffer.tell() <= MAX_BYTES:
            break
        scale *= 0.85
    path.write_bytes(buffer.getvalue())
    print(f"wrote {path} ({out.width}x{out.height}, {buffer.tell() / 1000:.0f} kB)", flush=True)


# -- the shots -----------------------------------------------------------------------------


def shot_reader(out: Path, tmp: Path) -> None:
    """A raw TIFF (written with ispkit.io.write_raw) opened with the plugin's reader; CFA view shown, zoomed in."""
    from ispkit.io import write_raw

    viewer = new_viewer("napari-drift: reader")
    try:
        sample = open_sample(viewer)
        path = write_raw(tmp / "cells.tiff", np.asarray(sample.data, dtype=np.float64), "microscopy")
        viewer.layers.clear()
        layers = viewer.open(str(path), plugin=PLUGIN)
        names = [layer.name for layer in layers]
        if names != ["cells", "cells [CFA]"]:
            raise ShotFailed(f"reader: expected layers ['cells', 'cells [CFA]'], got {names}")
        cfa = viewer.layers["cells [CFA]"]
        cfa.visible = True
        viewer.layers.selection.active = cfa
        h, w = viewer.layers["cells"].data.shape
        viewer.reset_view()
        process_events(0.2)
        viewer.scene.camera.center = (h / 2, w / 2)
        viewer.scene.camera.zoom = viewer.scene.camera.zoom * 3  # close enough to see the 2×2 Bayer layout
        save(viewer, out / "reader.png")
    finally:
        viewer.close()


def shot_composer(out: Path) -> None:
    """Composer: preset ma,s,me chosen, gamma changed to 1.6; preview layer shown."""
    viewer = new_viewer("napari-drift: composer")
    try:
        open_sample(viewer)
        widget = dock(viewer, "ISP pipeline composer")
        wait_until(lambda: widget.is_idle() and widget.preview_layer is not None, 30, "composer: first preview")
        widget.preset_combo.setCurrentIndex(widget.preset_combo.findText("ma,s,me"))
        widget.preset_combo.activated.emit(widget.preset_combo.findText("ma,s,me"))
        widget.editor("gamma.gamma").setValue(1.6)
        wait_until(
            lambda: (
                widget.is_idle()
                and "malvar2004" in widget.preview_layer.metadata.get("ispkit_pipeline", "")
                and "gamma: 1.6" in widget.preview_layer.metadata.get("ispkit_pipeline", "")
            ),
            30,
            "composer: preview of ma,s,me with gamma 1.6",
        )
        wait_until(widget.is_idle, 30, "composer: idle")
        save(viewer, out / "composer.png")
    finally:
        viewer.close()


def shot_drift_view(out: Path) -> None:
    """Drift view: all twelve presets computed; slider on one slice, overlay names it."""
    viewer = new_viewer("napari-drift: drift view")
    try:
        open_sample(viewer)
        widget = dock(viewer, "Drift view")
        if len(widget.presets()) != 12:
            raise ShotFailed(f"drift view: expected 12 ticked presets, got {len(widget.presets())}")
        widget.compute_button.click()
        wait_until(
            lambda: widget.is_idle() and widget.stack_layer is not None and widget.stack_layer.data.shape[0] == 12,
            120,
            "drift view: twelve-preset stack",
        )
        viewer.layers.selection.active = viewer.layers[widget.stack_layer.name]
        viewer.dims.set_current_step(0, 5)
        wait_until(lambda: widget.current_preset() is not None, 10, "drift view: current preset")
        save(viewer, out / "drift_view.png")
    finally:
        viewer.close()


def shot_classifier(out: Path) -> None:
    """Classifier: bundled model, prediction for the composer's preview."""
    viewer = new_viewer("napari-drift: classifier")
    try:
        open_sample(viewer)
        composer_frame, composer = dock_with_frame(viewer, "ISP pipeline composer")
        wait_until(lambda: composer.is_idle() and composer.preview_layer is not None, 30, "classifier: composer preview")
        classifier_frame, widget = dock_with_frame(viewer, "Classifier")
        from qtpy.QtCore import Qt

        # give the classifier (probability table) most of the dock column
        viewer.window._qt_window.resizeDocks([composer_frame, classifier_frame], [220, 600], Qt.Vertical)
        if not widget.load_bundled():
            raise ShotFailed("classifier: the bundled model did not load")
        wait_until(
            lambda: (
                widget.is_idle() and widget.prediction is not None and widget.source_layer.name == composer.preview_layer.name and widget.table.rowCount() > 0
            ),
            60,
            "classifier: prediction for the preview",
            lambda: (
                f"idle={widget.is_idle()} prediction={widget.prediction is not None} source={getattr(widget.source_layer, 'name', None)!r} "
                f"preview={getattr(composer.preview_layer, 'name', None)!r} rows={widget.table.rowCount()} label={widget.prediction_label.text()!r}"
            ),
        )
        save(viewer, out / "classifier.png")
    finally:
        viewer.close()


def shot_jobs(out: Path, tmp: Path) -> None:
    """Jobs: a tiny forensics experiment (3 units) run to completion; its figures as layers."""
    from ispkit.data import synthesize_microscopy

    root = synthesize_microscopy(tmp / "micro", n=30, seed=0, size=64, intensities=(1.0,), workers=1)
    config = tmp / "tiny_forensics.yaml"
    config.write_text(
        f"""name: tiny-forensics
dataset: {{kind: microscopy, root: {root}}}
pipeline: "bi,s,ga"
model: {{name: small_cnn, downsample: 2}}
training: {{epochs: 1, batch_size: 8}}
split: {{folds: 2, fold: 1}}
samples: 4
subsets: [gamma]
lambdas: [0, 100, .inf]
optimisation: {{steps: 2, batch_size: 4}}
""",
        encoding="utf-8",
    )
    viewer = new_viewer("napari-drift: jobs")
    try:
        open_sample(viewer)
        widget = dock(viewer, "Drift jobs")
        widget.config_edit.setText(str(config))
        widget.run_edit.setText(str(tmp / "run"))
        widget.start_button.click()
        wait_until(lambda: not widget.is_running() and widget.state != "running", 180, "jobs: forensics run")
        if widget.state != "finished":
            raise ShotFailed(f"jobs: run ended as {widget.state!r}:\n{widget.log.toPlainText()[-2000:]}")
        if not widget.figure_layers:
            raise ShotFailed("jobs: no figure layers after the run")
        if widget.pipeline_combo.count() == 0:
            raise ShotFailed("jobs: no pipelines listed after the run")
        # the widget got a proxied viewer (add_plugin_dock_widget): compare layers by name
        shown = viewer.layers[widget.figure_layers[-1].name]
        for layer in viewer.layers:
            layer.visible = layer.name == shown.name
        viewer.layers.selection.active = shown
        viewer.canvas.overlays.scale_bar.visible = False  # a figure is a plot: the sample's scale bar does not measure it
        viewer.reset_view()
        save(viewer, out / "jobs.png")
    finally:
        viewer.close()


def dock_all(viewer) -> dict:
    """Dock every widget of the manifest, as the Plugins menu does: display name → widget."""
    import npe2

    widgets = {}
    for contribution in npe2.PluginManager.instance().get_manifest(PLUGIN).contributions.widgets:
        widgets[contribution.display_name] = dock_with_frame(viewer, contribution.display_name)
    process_events(0.5)
    return widgets


def shot_docked(out: Path) -> None:
    """Every widget docked together in a 1920×1080 window: one tab group, the composer shown, the classifier's prediction made."""
    viewer = new_viewer("napari-drift: every widget docked", SCREEN_SIZE)
    try:
        open_sample(viewer)
        docked = dock_all(viewer)
        composer_frame, composer = docked["ISP pipeline composer"]
        wait_until(lambda: composer.is_idle() and composer.preview_layer is not None, 30, "docked: composer preview")
        _classifier_frame, classifier = docked["Classifier"]
        if not classifier.load_bundled():
            raise ShotFailed("docked: the bundled model did not load")
        wait_until(lambda: classifier.is_idle() and classifier.prediction is not None, 60, "docked: classifier prediction")
        tabs = viewer.window._qt_window.tabifiedDockWidgets(composer_frame)
        if len(tabs) != len(docked) - 1:
            raise ShotFailed(f"docked: expected one tab group of {len(docked)} widgets, the composer shares it with {len(tabs)}")
        composer_frame.raise_()
        save(viewer, out / "docked.png")
    finally:
        viewer.close()


def _time_series(tmp: Path, sample) -> Path:
    """An OME-TIFF time series of raw frames: the sample drifting by 2 pixels a frame, dimming, at 0.1625 µm."""
    import tifffile

    from ispkit.io import write_sidecar

    mosaic = np.asarray(sample.data, dtype=np.float64)
    frames = [np.roll(mosaic, (2 * t, 2 * t), axis=(0, 1)) * (1.0 - 0.12 * t) for t in range(6)]
    stored = np.round(np.clip(np.stack(frames), 0, 1) * 65535).astype(np.uint16)
    path = tmp / "timelapse.ome.tif"
    tifffile.imwrite(path, stored, ome=True, metadata={"axes": "TYX", "PhysicalSizeX": 0.1625, "PhysicalSizeY": 0.1625})
    write_sidecar(path, "microscopy")
    return path


def shot_stack(out: Path, tmp: Path) -> None:
    """A six-frame OME-TIFF time series: one lazy stack layer at 0.1625 µm with the scale bar, the composer's preview stack on frame 3."""
    viewer = new_viewer("napari-drift: a stack with a scale bar")
    try:
        path = _time_series(tmp, open_sample(viewer))
        viewer.layers.clear()
        viewer.open(str(path), plugin=PLUGIN)
        raw = viewer.layers["timelapse.ome"]
        if raw.data.shape[0] != 6 or not viewer.canvas.overlays.scale_bar.visible:
            raise ShotFailed(f"stack: expected 6 frames and the scale bar, got {raw.data.shape} (scale bar {viewer.canvas.overlays.scale_bar.visible})")
        composer = dock(viewer, "ISP pipeline composer")
        wait_until(lambda: composer.is_idle() and composer.preview_layer is not None, 30, "stack: preview stack")
        viewer.dims.set_current_step(0, 3)
        viewer.layers.selection.active = viewer.layers[composer.preview_layer.name]
        viewer.reset_view()
        save(viewer, out / "stack.png")
    finally:
        viewer.close()


def shot_export(out: Path, tmp: Path) -> None:
    """A folder of raws through the Batch widget (two presets, results opened), and the composer's preview saved as a 16-bit TIFF."""
    import tifffile

    from ispkit.io import write_raw

    viewer = new_viewer("napari-drift: export")
    try:
        sample = open_sample(viewer)
        folder = tmp / "plate"
        folder.mkdir()
        mosaic = np.asarray(sample.data, dtype=np.float64)
        for i in range(8):
            write_raw(folder / f"well_{i}.tiff", np.roll(mosaic, (16 * i, 8 * i), axis=(0, 1)), "microscopy")
        composer = dock(viewer, "ISP pipeline composer")
        wait_until(lambda: composer.is_idle() and composer.preview_layer is not None, 30, "export: preview")
        saved = composer.preview_layer.save(str(tmp / "preview.tif"), plugin=PLUGIN)
        if not saved or tifffile.imread(saved[0]).dtype != np.uint16:
            raise ShotFailed(f"export: the writer did not write a 16-bit TIFF ({saved})")
        batch = dock(viewer, "Batch")
        batch.source_edit.setText(str(folder))
        batch.store_edit.setText(str(tmp / "plate.zarr"))
        batch.set_presets(["bi,s,me", "ma,s,ga"])
        batch.start_button.click()
        wait_until(lambda: not batch.is_running() and batch.state != "running", 180, "export: batch run")
        if batch.state != "finished":
            raise ShotFailed(f"export: the batch ended as {batch.state!r}:\n{batch.log.toPlainText()[-2000:]}")
        batch.open_button.click()
        shown = viewer.layers[batch.result_layers[-1].name]
        for layer in viewer.layers:
            layer.visible = layer.name == shown.name
        viewer.layers.selection.active = shown
        viewer.dims.set_current_step(0, 5)
        viewer.reset_view()
        save(viewer, out / "export.png")
    finally:
        viewer.close()


SHOTS = ["reader", "composer", "drift_view", "classifier", "jobs", "docked", "stack", "export"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("docs/images/napari"), help="output folder for the PNGs")
    parser.add_argument("--only", nargs="*", choices=SHOTS, help="make only these screenshots")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    from napari.utils.notifications import notification_manager

    notification_manager.notification_ready.connect(_record_notification)

    with tempfile.TemporaryDirectory(prefix="napari-drift-shots-") as tmpdir:
        tmp = Path(tmpdir)
        runs = {
            "reader": lambda: shot_reader(args.out, tmp),
            "composer": lambda: shot_composer(args.out),
            "drift_view": lambda: shot_drift_view(args.out),
            "classifier": lambda: shot_classifier(args.out),
            "jobs": lambda: shot_jobs(args.out, tmp),
            "docked": lambda: shot_docked(args.out),
            "stack": lambda: shot_stack(args.out, tmp),
            "export": lambda: shot_export(args.out, tmp),
        }
        for name in args.only or SHOTS:
            start = time.monotonic()
            try:
                runs[name]()
            except ShotFailed as exc:
                print(f"screenshots: FAILED {name}: {exc}", file=sys.stderr, flush=True)
                return 1
            except Exception:
                print(f"screenshots: FAILED {name}:\n{traceback.format_exc()}", file=sys.stderr, flush=True)
                return 1
            print(f"  {name}: {time.monotonic() - start:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # os._exit: never hang at interpreter exit on a worker thread that did not finish
    os._exit(code)
