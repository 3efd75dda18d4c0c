"""Study units as Dask tasks (ispkit.drift.grid): equal to one process, tracked, fault-tolerant."""

from __future__ import annotations

import json
import os
import re
import signal
import threading

import pytest

distributed = pytest.importorskip("distributed")

from ispkit.drift.adjustment import run_adjustment  # noqa: E402
from ispkit.drift.config import SynthesisConfig  # noqa: E402
from ispkit.drift.execution import torch_threads  # noqa: E402
from ispkit.drift.forensics import run_forensics  # noqa: E402
from ispkit.drift.grid import gpu_resources  # noqa: E402
from ispkit.drift.synthesis import run_synthesis  # noqa: E402
from ispkit.scale.cluster import cores  # noqa: E402
from ispkit.tasks import load_checkpoint  # noqa: E402

pytestmark = pytest.mark.slow

WORKERS = 2


GRID = {"name": "grid", "pipelines": {"test": ["bi,s,me", "me,u,ga", "ma,s,ga"]}, "corruptions": {"severities": [2]}}
"""The tiny synthesis experiment tested on a third pipeline, at one severity."""


def worker_threads():
    """Torch threads as on each of the cluster's workers: the cores shared by the worker processes."""
    return torch_threads(max(1, cores() // WORKERS))


@pytest.fixture(scope="module")
def client():
    with (
        distributed.LocalCluster(n_workers=WORKERS, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client


def test_synthesis_grid_equals_one_process_and_is_tracked(tmp_path, client, tiny):
    import mlflow.tracking

    config = tiny.config("synthesis", **GRID)
    with worker_threads():
        alone = run_synthesis(config, tmp_path / "alone", tracking=False)
    lines: list[str] = []
    with distributed.get_task_stream(client) as stream:
        spread = run_synthesis(config, tmp_path / "grid", scheduler=client, progress=lines.append)
    assert spread.to_dict() == alone.to_dict()
    # four units, spread over both workers, their epoch lines relayed from the workers
    units = [t for t in stream.data if t["key"].startswith("ispkit-unit-")]
    assert len(units) == 4 and len({t["worker"] for t in units}) == WORKERS
    assert sum("epoch 1/1" in line for line in lines) == 4 and lines[-1].startswith("done: report at")
    for unit in ("bi,s,me/fold0", "me,u,ga/fold1"):
        folder = tmp_path / "grid" / "units" / unit
        assert json.loads((folder / "result.json").read_text()) == json.loads((tmp_path / "alone" / "units" / unit / "result.json").read_text())
    # tracked by the driving process into the run folder's store, as a run in one process is
    store = mlflow.tracking.MlflowClient(f"sqlite:///{tmp_path / 'grid' / 'mlflow.db'}")
    runs = {r.info.run_name: r for r in store.search_runs([store.get_experiment_by_name("grid").experiment_id])}
    assert sorted(runs) == ["bi,s,me/fold0", "bi,s,me/fold1", "grid", "me,u,ga/fold0", "me,u,ga/fold1"]
    assert all(r.info.status == "FINISHED" for r in runs.values())
    test_accuracy = runs["me,u,ga/fold1"].data.metrics["test_accuracy/ma_s_ga"]
    assert test_accuracy == pytest.approx(spread.metrics["accuracy"][1, 2, 1])


def test_forensics_grid_equals_one_process(tmp_path, client, tiny):
    config = tiny.config("forensics", name="grid-forensics", training={"epochs": 1}, split={"fold": 0}, lambdas=[0, 10], threads=2)
    alone = run_forensics(config, tmp_path / "alone", tracking=False)  # 2 torch threads per unit here and on the workers
    with distributed.get_task_stream(client) as stream:
        spread = run_forensics(config, tmp_path / "grid", tracking=False, scheduler=client)
    assert spread.to_dict() == alone.to_dict()
    assert (tmp_path / "grid" / "units" / "gamma" / "lambda_10.0" / "pipeline.yaml").read_text() == (
        tmp_path / "alone" / "units" / "gamma" / "lambda_10.0" / "pipeline.yaml"
    ).read_text()
    assert len([t for t in stream.data if t["key"].startswith("ispkit-unit-")]) == 5  # the task model, then 2 subsets × 2 λ


def test_adjustment_grid_equals_one_process(tmp_path, client, tiny):
    config = tiny.config("adjustment", name="grid-adjustment", sensor={"gain": 2.0, "read_noise": 2.0}, arms=["learned", "raw"], pipeline_lr=None)
    with worker_threads():
        alone = run_adjustment(config, tmp_path / "alone", tracking=False)
    spread = run_adjustment(config, tmp_path / "grid", tracking=False, scheduler=client)
    assert spread.to_dict() == alone.to_dict()
    learned = "units/0.01/learned/fold1/pipeline.yaml"
    assert (tmp_path / "grid" / learned).read_text() == (tmp_path / "alone" / learned).read_text()


def test_a_worker_killed_mid_unit_loses_nothing(tmp_path, client, tiny):
    config = tiny.config("synthesis", **GRID, training={"epochs": 12})
    with worker_threads():
        alone = run_synthesis(config, tmp_path / "alone", tracking=False)
    run = tmp_path / "grid"
    pids = client.run(os.getpid)
    first_done, mid_unit = threading.Event(), threading.Event()
    lines: list[str] = []
    victim: list[str] = []

    def progress(line: str) -> None:  # called in the client's event loop: only take note, do not call the client
        lines.append(line)
        found = re.search(r"\] (\S+) fold (\d+)/\d+  epoch 3/12", line)
        if first_done.is_set() and found and not mid_unit.is_set():
            victim.append(f"{found[1]}/fold{int(found[2]) - 1}")
            mid_unit.set()

    outcome: dict[str, object] = {}

    def drive() -> None:
        try:
            outcome["results"] = run_synthesis(config, run, tracking=False, scheduler=client, progress=progress)
        except BaseException as error:  # reported by the assertion below
            outcome["error"] = error

    driver = threading.Thread(target=drive)
    driver.start()
    # wait for a finished unit, then for another unit three epochs in: kill the worker running it
    for _ in range(1200):
        if any(run.glob("units/*/*/result.json")):
            first_done.set()
            break
        driver.join(0.05)
    assert first_done.is_set(), "no unit finished"
    assert mid_unit.wait(120), "no unit reached epoch 3 after the first had finished"
    running = [address for address, keys in client.processing().items() if any(key.endswith(victim[0]) for key in keys)]
    assert running, f"no worker is running {victim[0]}"
    finished = {p: p.stat().st_mtime_ns for p in run.glob("units/*/*/result.json")}
    os.kill(pids[running[0]], signal.SIGKILL)
    driver.join(300)
    assert not driver.is_alive() and "error" not in outcome, outcome.get("error")
    # completed on the worker left (and the one the nanny restarted): same results, nothing lost or redone
    assert outcome["results"].to_dict() == alone.to_dict()
    assert all(p.stat().st_mtime_ns == stamp for p, stamp in finished.items()), "a finished unit was recomputed"
    name = victim[0].replace("/fold", " fold ")
    assert any("resuming after epoch" in line and name.split(" fold ")[0] in line for line in lines), "the killed unit did not continue from its saved epoch"
    for unit in run.glob("units/*/*"):
        json.loads((unit / "result.json").read_text())
        load_checkpoint(unit / "model.pt")
        assert not (unit / "train_state.pt").exists()


def test_a_local_cluster_from_the_command_line_on_synthetic_data(tmp_path, tiny):
    from ispkit.cli import main

    # synthetic data written by the command (the driving process) and only read by the workers
    text = tiny.text("synthesis", **GRID, dataset={"root": tmp_path / "data", "synthetic": {"n": 24, "size": 64}})
    (tmp_path / "grid.yaml").write_text(text)
    with worker_threads():
        alone = run_synthesis(SynthesisConfig.from_yaml(text), tmp_path / "alone", tracking=False)
    assert main(["synthesis", "run", str(tmp_path / "grid.yaml"), "--out", str(tmp_path / "run"), "--no-tracking", "--workers", str(WORKERS)]) == 0
    assert json.loads((tmp_path / "run" / "results.json").read_text()) == alone.to_dict()


def _workers(*resources):
    return [{"host": "127.0.0.1", "resources": r} for r in resources]


def test_gpu_units_ask_for_a_gpu_only_where_workers_declare_one():
    assert gpu_resources("auto", _workers({}, {"GPU": 1})) == {"GPU": 1}
    assert gpu_resources("cuda", _workers({"GPU": 2})) == {"GPU": 1}
    assert gpu_resources("cpu", _workers({"GPU": 1})) is None
    assert gpu_resources("auto", _workers({}, {})) is None


def test_units_go_to_the_worker_declaring_a_gpu(tmp_path, client, tiny):
    """A third worker started as the docs say (``dask worker ADDRESS --resources GPU=1``) gets every unit."""
    import subprocess
    import sys
    import time

    address = client.scheduler.address
    process = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", address, "--nthreads", "1", "--resources", "GPU=1", "--no-dashboard"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        for _ in range(300):
            gpu = [a for a, w in client.scheduler_info(n_workers=-1)["workers"].items() if w["resources"].get("GPU")]
            if gpu:
                break
            time.sleep(0.1)
        assert gpu, "the GPU worker did not join"
        with distributed.get_task_stream(client) as stream:
            run_synthesis(tiny.config("synthesis", **GRID), tmp_path / "run", tracking=False, scheduler=client)
        assert {t["worker"] for t in stream.data if t["key"].startswith("ispkit-unit-")} == set(gpu)
    finally:
        process.terminate()
        process.wait(60)
        for _ in range(300):
            if len(client.scheduler_info(n_workers=-1)["workers"]) == WORKERS:
                break
            time.sleep(0.1)
