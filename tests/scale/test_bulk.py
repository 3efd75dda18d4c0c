"""Bulk drift synthesis into Zarr (ispkit.scale.bulk)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

pytest.importorskip("dask")
pytest.importorskip("zarr")

import zarr  # noqa: E402

from ispkit.camera import Camera  # noqa: E402
from ispkit.data.synthesize import synthesize_microscopy  # noqa: E402
from ispkit.errors import InputError  # noqa: E402
from ispkit.io import read_raw, write_raw  # noqa: E402
from ispkit.pipeline import Pipeline  # noqa: E402
from ispkit.scale import bulk  # noqa: E402
from ispkit.scale.bulk import open_bulk, raw_archive, synthesize_bulk  # noqa: E402

PRESETS = ["ma,s,me", "bi,u,ga"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = synthesize_microscopy(tmp_path_factory.mktemp("bulk"), n=6, seed=0, size=64, intensities=(1.0,), workers=1)
    return root / "microscopy" / "images" / "raw_scale100"


@pytest.fixture(scope="module")
def archive(folder):
    return raw_archive(folder)


def reference(archive, name):
    p = Pipeline.preset(name, camera=archive.camera)
    return np.stack([p(read_raw(f).mosaic) for f in archive.paths]).astype(np.float32)


def test_archive(archive, folder):
    assert len(archive.paths) == 6 and archive.paths == tuple(sorted(folder.glob("*.tiff")))
    assert archive.shape == (64, 64) and archive.camera == read_raw(archive.paths[0]).camera
    raw = archive.to_dask()
    assert raw.shape == (6, 64, 64) and raw.dtype == np.float32 and raw.chunks[0] == (1,) * 6
    assert np.array_equal(raw[3].compute(), read_raw(archive.paths[3]).mosaic.astype(np.float32))


def test_values_and_attrs_numpy_and_torch(archive, tmp_path):
    out = synthesize_bulk(archive, PRESETS, tmp_path / "s.zarr")
    assert sorted(out) == sorted(PRESETS)
    for name, views in out.items():
        assert views.shape == (6, 3, 64, 64) and views.dtype == np.float32 and views.chunks == (1, 3, 64, 64)
        assert np.array_equal(views[:], reference(archive, name))
        assert Pipeline.from_yaml(views.attrs["pipeline"]) == Pipeline.preset(name, camera=archive.camera)
        assert Camera.from_yaml(views.attrs["camera"]) == archive.camera
        assert views.attrs["sources"] == [str(p) for p in archive.paths]
    lazy = open_bulk(tmp_path / "s.zarr")
    assert sorted(lazy) == sorted(PRESETS) and np.array_equal(lazy["ma,s,me"].compute(), out["ma,s,me"][:])

    torch_out = synthesize_bulk(archive, {"t": "ma,s,me"}, tmp_path / "t.zarr", backend="torch")
    np.testing.assert_allclose(torch_out["t"][:], reference(archive, "ma,s,me"), atol=1e-5, rtol=0)


def test_resume_recomputes_only_missing(archive, tmp_path, monkeypatch):
    store = tmp_path / "s.zarr"
    synthesize_bulk(archive, PRESETS, store)
    views = zarr.open_array(store, path="ma,s,me", mode="r+")
    done = zarr.open_array(store, path="_done/ma,s,me", mode="r+")
    for i in (1, 4):
        done[i] = False
        views[i] = -7.0
    calls = []
    real = bulk._process_block
    monkeypatch.setattr(bulk, "_process_block", lambda block, p, backend: calls.append(p.name) or real(block, p, backend))
    out = synthesize_bulk(archive, PRESETS, store)
    assert calls == ["ma,s,me", "ma,s,me"]
    assert np.array_equal(out["ma,s,me"][:], reference(archive, "ma,s,me"))
    assert zarr.open_array(store, path="_done/ma,s,me")[:].all()
    calls.clear()
    synthesize_bulk(archive, PRESETS, store)
    assert calls == []


def test_interrupted_write_is_not_marked_done(archive, tmp_path, monkeypatch):
    store = tmp_path / "s.zarr"

    def crash(block, store_, label, index):
        if index == 2:
            raise RuntimeError("worker killed")
        return real(block, store_, label, index)

    real = bulk._write_block
    monkeypatch.setattr(bulk, "_write_block", crash)
    with pytest.raises(RuntimeError, match="killed"):
        synthesize_bulk(archive, ["ma,s,me"], store)
    assert not zarr.open_array(store, path="_done/ma,s,me")[2]
    monkeypatch.setattr(bulk, "_write_block", real)
    out = synthesize_bulk(archive, ["ma,s,me"], store)
    assert np.array_equal(out["ma,s,me"][:], reference(archive, "ma,s,me"))


def test_other_pipeline_same_label_refused(archive, tmp_path):
    store = tmp_path / "s.zarr"
    synthesize_bulk(archive, {"drift": "ma,s,me"}, store)
    before = zarr.open_array(store, path="drift")[:]
    with pytest.raises(InputError, match="another pipeline"):
        synthesize_bulk(archive, {"drift": "bi,u,ga"}, store)
    assert np.array_equal(zarr.open_array(store, path="drift")[:], before)
    out = synthesize_bulk(archive, {"drift": "bi,u,ga"}, store, overwrite=True)
    assert np.array_equal(out["drift"][:], reference(archive, "bi,u,ga"))


def test_shape_mismatch_names_file(folder, tmp_path):
    for p in sorted(folder.glob("*.tiff"))[:3]:
        shutil.copy(p, tmp_path / p.name)
    first = read_raw(sorted(folder.glob("*.tiff"))[0])
    write_raw(tmp_path / "zz_odd.tiff", first.mosaic[:32, :32], first.camera)
    with pytest.raises(InputError, match=r"zz_odd\.tiff.*\(32, 32\).*\(64, 64\)"):
        raw_archive(tmp_path)


def test_bad_arguments(archive, tmp_path):
    with pytest.raises(InputError, match="backend"):
        synthesize_bulk(archive, PRESETS, tmp_path / "s.zarr", backend="jax")
    with pytest.raises(InputError, match="single pipeline"):
        synthesize_bulk(archive, "ma,s,me", tmp_path / "s.zarr")
    with pytest.raises(InputError, match="no .* files"):
        raw_archive(tmp_path)


@pytest.mark.slow  # ~10 s: starts two worker processes
def test_local_cluster_matches_threads(archive, tmp_path):
    distributed = pytest.importorskip("dask.distributed")
    threaded = synthesize_bulk(archive, PRESETS, tmp_path / "threads.zarr")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster:
        with distributed.Client(cluster) as client:
            clustered = synthesize_bulk(archive, PRESETS, tmp_path / "cluster.zarr", scheduler=client)
    for name in PRESETS:
        assert np.array_equal(clustered[name][:], threaded[name][:])


@pytest.mark.slow  # ~15 s: starts two worker processes, kills one
def test_a_worker_killed_mid_run_loses_nothing(tmp_path_factory, tmp_path):
    import contextlib
    import os
    import signal
    import threading

    distributed = pytest.importorskip("dask.distributed")
    root = synthesize_microscopy(tmp_path_factory.mktemp("bulk-kill"), n=24, seed=1, size=256, intensities=(1.0,), workers=1)
    archive = raw_archive(root / "microscopy" / "images" / "raw_scale100")
    store = tmp_path / "s.zarr"
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster:
        with distributed.Client(cluster) as client:
            pids = client.run(os.getpid)
            outcome: dict[str, object] = {}
            driver = threading.Thread(target=lambda: outcome.update(written=synthesize_bulk(archive, PRESETS, store, scheduler=client)))
            driver.start()
            flags = None
            for _ in range(2000):  # wait until a few images are written, then kill a busy worker
                with contextlib.suppress(KeyError, FileNotFoundError):  # the store is still being laid out
                    flags = zarr.open_group(store, mode="r")[bulk.DONE_GROUP]
                    if sum(int(np.sum(flags[p][:])) for p in PRESETS) >= 4:
                        break
                driver.join(0.01)
            busy = [address for address, keys in client.processing().items() if keys]
            assert flags is not None and busy and driver.is_alive(), "the run ended before a worker could be killed"
            os.kill(pids[busy[0]], signal.SIGKILL)
            driver.join(300)
    assert not driver.is_alive() and "written" in outcome
    done = zarr.open_group(store, mode="r")[bulk.DONE_GROUP]
    for name in PRESETS:
        assert np.all(done[name][:])
        assert np.array_equal(outcome["written"][name][:], reference(archive, name))
