"""Qt-free tests of the batch logic (napari_drift/logic/batch.py): ``ispkit bulk`` in a child process."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import zarr
from napari_drift.logic.batch import BatchRunner, done_count, open_results

from ispkit import InputError, Pipeline
from ispkit.io import read_raw, write_raw


def _raw_folder(folder, n, size, seed=0):
    folder.mkdir()
    rng = np.random.default_rng(seed)
    for i in range(n):
        write_raw(folder / f"img_{i:02d}.tiff", rng.random((size, size)) * 0.8 + 0.1, "microscopy")
    return folder


def _expected(path, preset):
    return Pipeline.preset(preset, camera="microscopy")(read_raw(path).mosaic).astype(np.float32)


def test_a_batch_runs_ispkit_bulk_and_counts_every_image(tmp_path):
    folder = _raw_folder(tmp_path / "raws", 5, 32)
    runner = BatchRunner(folder, tmp_path / "views.zarr", ["bi,s,me", "ma,s,ga"])
    assert runner.command()[1:5] == ["-m", "ispkit", "bulk", str(folder.resolve())]
    assert runner.progress.total == 10 and runner.progress.done == 0
    seen = []
    for _line in runner.lines():
        seen.append(runner.progress.done)
    assert runner.finished and runner.returncode == 0 and runner.progress.done == 10
    assert seen == sorted(seen)  # it only grows
    assert runner.progress.describe() == "10 of 10 views (5 images × 2 presets)"
    results = open_results(tmp_path / "views.zarr")
    views, pipeline_yaml = results["ma,s,ga"]
    assert views.shape == (5, 32, 32, 3) and Pipeline.from_yaml(pipeline_yaml) == Pipeline.preset("ma,s,ga", camera="microscopy")
    np.testing.assert_array_equal(np.asarray(views[3]), np.moveaxis(_expected(folder / "img_03.tiff", "ma,s,ga"), 0, -1))


def test_a_cancelled_batch_keeps_what_it_wrote_and_a_rerun_finishes_it(tmp_path):
    folder = _raw_folder(tmp_path / "raws", 40, 512)  # menon2007 on 512² images: ~0.2 s each, 10 s of work on 2 cores
    store = tmp_path / "views.zarr"
    runner = BatchRunner(folder, store, ["me,s,me"])
    lines: list[str] = []
    thread = threading.Thread(target=lambda: lines.extend(runner.lines()), daemon=True)
    thread.start()
    deadline = time.monotonic() + 120
    while runner.progress.done < 2:
        assert thread.is_alive() and time.monotonic() < deadline, lines
        time.sleep(0.02)
    start = time.monotonic()
    runner.cancel()
    thread.join(60)
    assert not thread.is_alive() and time.monotonic() - start < 5
    assert runner.cancelled and not runner.finished and runner.returncode == 130
    assert "ispkit: interrupted" in "\n".join(lines) and lines[-1].startswith("cancelled after")
    written = done_count(store, ["me,s,me"])
    assert 2 <= written < 40 and runner.progress.done == written

    again = BatchRunner(folder, store, ["me,s,me"])
    again.run()
    assert again.finished and done_count(store, ["me,s,me"]) == 40
    flags = zarr.open_group(str(store), mode="r")["_done"]["me,s,me"][:]
    assert flags.all()
    np.testing.assert_array_equal(zarr.open_array(str(store), path="me,s,me", mode="r")[39], _expected(folder / "img_39.tiff", "me,s,me"))


def test_a_batch_runs_on_a_dask_scheduler_address(tmp_path, dask_cluster):
    address, finished_keys = dask_cluster
    folder = _raw_folder(tmp_path / "raws", 3, 32, seed=1)
    runner = BatchRunner(folder, tmp_path / "views.zarr", ["bi,u,ga"], scheduler=address)
    runner.run()
    assert runner.finished and runner.progress.done == 3
    assert len([k for k in finished_keys if k.startswith("bulk-write-bi,u,ga-")]) == 3  # one task per image, on the cluster
    np.testing.assert_array_equal(zarr.open_array(str(tmp_path / "views.zarr"), path="bi,u,ga", mode="r")[1], _expected(folder / "img_01.tiff", "bi,u,ga"))


def test_a_batch_is_checked_before_it_starts(tmp_path):
    folder = _raw_folder(tmp_path / "raws", 1, 8)
    with pytest.raises(FileNotFoundError, match=r"raw folder .* not found"):
        BatchRunner(tmp_path / "missing", tmp_path / "v.zarr", ["bi,s,me"])
    with pytest.raises(InputError, match="unknown: 'nope'"):
        BatchRunner(folder, tmp_path / "v.zarr", ["bi,s,me", "nope"])
    with pytest.raises(InputError, match="choose presets from"):
        BatchRunner(folder, tmp_path / "v.zarr", [])
    with pytest.raises(InputError, match="must not be inside the raw folder"):
        BatchRunner(folder, folder / "v.zarr", ["bi,s,me"])
    with pytest.raises(InputError, match="backend must be one of numpy, torch"):
        BatchRunner(folder, tmp_path / "v.zarr", ["bi,s,me"], backend="cuda")
    with pytest.raises(InputError, match="scheduler: expected 'local' or a Dask scheduler address"):
        BatchRunner(folder, tmp_path / "v.zarr", ["bi,s,me"], scheduler="host:8786")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match=r"no \.tif, \.tiff, \.dng files"):
        BatchRunner(empty, tmp_path / "v.zarr", ["bi,s,me"])
    assert not (tmp_path / "v.zarr").exists()


def test_a_failing_batch_reports_ispkits_error(tmp_path):
    folder = _raw_folder(tmp_path / "raws", 2, 16)
    write_raw(folder / "img_99.tiff", np.zeros((8, 8)), "microscopy")  # another shape: ispkit bulk refuses the folder
    runner = BatchRunner(folder, tmp_path / "views.zarr", ["bi,s,me"])
    from napari_drift.logic.batch import BatchError

    with pytest.raises(BatchError, match=r"(?s)ispkit bulk ended with exit code \d+:.*img_99\.tiff has shape \(8, 8\)"):
        runner.run()
    assert not runner.finished and not runner.cancelled
