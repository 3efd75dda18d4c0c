"""``ispkit ui RUN_DIR``: the MLflow UI on a run folder's store, served and answering; folders that are not run folders refused."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from ispkit.cli import main
from ispkit.drift.synthesis import run_synthesis
from ispkit.drift.tracking import local_store
from ispkit.drift.ui import ui_missing


@pytest.fixture(scope="module")
def tracked_run(tmp_path_factory, tiny):
    """A tiny synthesis run tracked in its local store, then moved to another folder."""
    first = tmp_path_factory.mktemp("ui") / "run"
    run_synthesis(tiny.config("synthesis", training={"epochs": 1}, pipelines={"train": ["bi,s,me"]}), first)
    moved = first.parent / "moved"
    shutil.move(first, moved)
    return first, moved


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _get(url: str, data: dict | None = None) -> tuple[int, bytes]:
    body = json.dumps(data).encode() if data is not None else None
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"} if body else {})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, response.read()


def _stop(process: subprocess.Popen) -> None:
    """Stop ``ispkit ui`` as a terminal's kill would; it stops its server. Kill it if it does not go."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_the_ui_serves_the_page_and_the_runs_of_a_moved_run_folder(tracked_run):
    assert ui_missing() is None, "the MLflow UI must be installed for the tests (pip install -e '.[test]' brings it)"
    before, run = tracked_run
    port = _free_port()
    process = subprocess.Popen([sys.executable, "-m", "ispkit", "ui", str(run), "--port", str(port)], stdout=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline()  # printed once the server answers (or nothing when it failed)
        assert line.strip() == f"MLflow UI of {run.resolve()} at http://127.0.0.1:{port} (Ctrl-C stops it)"
        assert process.stdout.readline().startswith(f"note: this run folder was moved from {before.resolve()}")
        status, page = _get(f"http://127.0.0.1:{port}/")
        assert status == 200 and b"<!doctype html>" in page.lower() and b"static-files" in page
        _, found = _get(f"http://127.0.0.1:{port}/api/2.0/mlflow/experiments/search", {"max_results": 10})
        experiments = {e["name"]: e["experiment_id"] for e in json.loads(found)["experiments"]}
        _, found = _get(f"http://127.0.0.1:{port}/api/2.0/mlflow/runs/search", {"experiment_ids": [experiments["tiny"]], "max_results": 100})
        runs = json.loads(found)["runs"]
        units = sorted(tag["value"] for r in runs for tag in r["data"].get("tags", []) if tag["key"] == "ispkit.unit")
        assert units == ["bi,s,me/fold0", "bi,s,me/fold1"] and len(runs) == 3  # the study run and one per unit
    finally:
        _stop(process)
    assert process.returncode == 0
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # the server went with it: the port is free again
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) != 0:
                break
        time.sleep(0.5)
    else:
        pytest.fail(f"the MLflow server still answers on port {port} after ispkit ui stopped")


def test_folders_that_are_not_run_folders_are_refused(tmp_path, capsys, tracked_run):
    (tmp_path / "empty").mkdir()
    (tmp_path / "untracked").mkdir()
    (tmp_path / "untracked" / "config.yaml").write_text("name: x\n")
    (tmp_path / "server").mkdir()
    (tmp_path / "server" / "tracking.json").write_text(json.dumps({"uri": "http://tracking.example:5000"}))
    (tmp_path / "garbage").mkdir()
    (tmp_path / "garbage" / "mlflow.db").write_bytes(b"not a database at all")
    (tmp_path / "garbage" / "tracking.json").write_text("{not json")
    (tmp_path / "a file").write_text("x")
    expected = {
        "missing": "is not a folder: expected a run folder",
        "a file": "is not a folder: expected a run folder",
        "empty": "is not a run folder: it has no mlflow.db",
        "untracked": "is a run folder without a tracking store (run with --no-tracking",
        "server": "was tracked on the server http://tracking.example:5000: open that server's UI instead",
        "garbage": "mlflow.db is not an SQLite database",
    }
    for name, message in expected.items():
        assert main(["ui", str(tmp_path / name), "--port", str(_free_port())]) == 2
        assert message in capsys.readouterr().err, name
    store = local_store(tracked_run[1])
    assert store.uri == f"sqlite:///{tracked_run[1].resolve() / 'mlflow.db'}" and store.moved_from == tracked_run[0].resolve()


def test_the_ui_says_how_to_install_it_when_only_mlflow_skinny_is_there(tracked_run, monkeypatch, capsys):
    real = os.path.isfile
    monkeypatch.setattr("ispkit.drift.ui.Path.is_file", lambda self: False if self.name == "index.html" else real(self))
    assert main(["ui", str(tracked_run[1]), "--port", str(_free_port())]) == 2
    assert "the MLflow web UI is not installed (mlflow-skinny, which tracking needs, has none): pip install 'ispkit[ui]'" in capsys.readouterr().err
