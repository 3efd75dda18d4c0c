"""End to end: napari started in a subprocess, as a user starts it, driven through every widget.

``e2e_driver.py`` runs one session in a fresh interpreter under the current X display
(run under ``xvfb-run -a``): every widget of the manifest docked, a raw file opened, gamma
edited in the composer, the bundled classifier run, a small forensics job started,
cancelled after its first unit (it stops within seconds) and resumed, the viewer closed. A crash anywhere in that
session (the segmentation fault of issue 16 when Run imported triton next to Mesa's LLVM)
is a nonzero exit code here, whatever ran before in the test process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from napari_drift.logic.classifier import ClassifierModel
from napari_drift.logic.composer import to_view
from napari_drift.logic.jobs import exit_status, forensics_pipelines
from napari_drift.logic.raw_layer import read_raw_layers

from ispkit import Pipeline
from ispkit.io import write_raw

pytestmark = pytest.mark.qt  # skipped without Qt or a display (conftest.py)

DRIVER = Path(__file__).with_name("e2e_driver.py")
MANIFEST = Path(__file__).parents[1] / "src" / "napari_drift" / "napari.yaml"
LAMBDAS = (0.0, 1.0, 100.0, float("inf"))
SESSION_TIMEOUT_S = 240


@pytest.fixture
def e2e_forensics(forensics_experiment):
    """A forensics experiment of four units; enough optimisation steps that Cancel lands between units."""
    return forensics_experiment("e2e-forensics", "0, 1, 100, .inf", 6)


def _stderr_excerpt(stderr: str, limit: int = 4000) -> str:
    """The fatal-error report of a crashed interpreter (faulthandler's tracebacks), else the end of stderr."""
    start = stderr.find("Fatal Python error")
    excerpt = stderr[start:].split("\nExtension modules:")[0] if start >= 0 else stderr
    return excerpt[-limit:]


def _run_session(spec: dict, tmp_path: Path) -> subprocess.CompletedProcess:
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(json.dumps(spec), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "QT_QPA_PLATFORM"} if os.environ.get("DISPLAY") else dict(os.environ)
    return subprocess.run(
        [sys.executable, "-X", "faulthandler", str(DRIVER), str(spec_path)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=SESSION_TIMEOUT_S,
    )  # fmt: skip


def test_napari_session_end_to_end(tmp_path, e2e_forensics):
    mosaic = np.random.default_rng(3).random((128, 128)) * 0.8 + 0.1
    raw = write_raw(tmp_path / "cells.tiff", mosaic, "microscopy")
    spec = {
        "raw": str(raw),
        "experiment": str(e2e_forensics),
        "run_dir": str(tmp_path / "run"),
        "preview": str(tmp_path / "preview.npy"),
        "report": str(tmp_path / "report.json"),
    }
    proc = _run_session(spec, tmp_path)
    report = json.loads(Path(spec["report"]).read_text(encoding="utf-8")) if Path(spec["report"]).exists() else {}
    code = proc.returncode
    assert code == 0 and "failure" not in report, (
        f"the napari session ended with {exit_status(code)}; failure: {report.get('failure')}\nstderr:\n{_stderr_excerpt(proc.stderr)}"
    )

    # every widget of the manifest was docked, as the class the manifest names
    manifest = yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))["contributions"]
    classes = {c["id"]: c["python_name"].rsplit(":", 1)[1] for c in manifest["commands"]}
    assert report["docked"] == {w["display_name"]: classes[w["command"]] for w in manifest["widgets"]}
    assert report["opened"] == ["cells", "cells [CFA]"]

    # the composer's preview is the edited pipeline applied to the raw file
    composer = report["composer"]
    pipeline = Pipeline.from_yaml(composer["pipeline_yaml"])
    assert composer["source"] == "cells" and float(pipeline.params()["gamma.gamma"]) == pytest.approx(1.3)
    source = np.asarray(read_raw_layers(raw)[0][0], dtype=np.float64)  # the raw layer's data, as the reader gives it
    expected = to_view(Pipeline.preset("bi,s,me", camera="microscopy").with_params({"gamma.gamma": 1.3})(source))
    preview = np.load(spec["preview"])
    np.testing.assert_allclose(preview, expected, rtol=0, atol=1e-6)

    # the classifier ran the bundled model on that preview
    classifier = report["classifier"]
    probabilities = ClassifierModel.bundled().predict_view(preview).probabilities
    assert classifier["source"] == composer["preview_layer"] and classifier["rows"] == len(probabilities)
    np.testing.assert_allclose(classifier["probabilities"], probabilities, rtol=1e-4, atol=1e-6)
    assert classifier["label"] in classifier["shown"]

    # the job was cancelled after its first unit, then resumed to the end in the same folder
    jobs = report["jobs"]
    assert jobs["states"] == ["cancelled", "finished"] and jobs["status"] == "finished", jobs
    assert jobs["cancel_seconds"] < 10, jobs  # interrupted within its running step, not at the end of a unit
    assert "[1/4]" in jobs["cancelled_log"] and "[4/4]" not in jobs["cancelled_log"]
    assert "done earlier, read back" in jobs["resumed_log"]
    run_dir = Path(spec["run_dir"])
    assert set(forensics_pipelines(run_dir)) == {("gamma", lam) for lam in LAMBDAS}
    assert json.loads((run_dir / "results.json").read_text(encoding="utf-8"))
    assert len(jobs["pipelines"]) == len(LAMBDAS) and jobs["figure_layers"]
    assert sorted(p.stem for p in (run_dir / "figures").glob("*.png")) == sorted(n.removeprefix("figure: ") for n in jobs["figure_layers"])

    # the GUI process never imported torch's compiler stack, and no error was shown; nor a
    # warning: napari 0.9 warns at every start under PyQt5 ("the PyQt5 backend is deprecated")
    assert report["gui_modules"] == {"torch._dynamo": False, "triton": False}
    assert report["qt_api"] in ("PyQt6", "PySide6"), report["qt_api"]
    assert not [n for n in report["notifications"] if n.lower().startswith(("error", "warning"))], report["notifications"]
