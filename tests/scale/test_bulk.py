"""Bulk drift synthesis into Zarr (ispkit.scale.bulk)."""

from __future__ import annotations

import dataclasses
import hashlib
import shutil

import numpy as np
import pytest

pytest.importorskip("dask")
pytest.importorskip("zarr")

import zarr

from ispkit.camera import Camera
from ispkit.data.synthesize import synthesize_microscopy
from ispkit.errors import InputError
from ispkit.io import read_raw, write_raw
from ispkit.pipeline import Pipeline
from ispkit.scale import bulk
from ispkit.scale.bulk import open_bulk, raw_archive, synthesize_bulk

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
    with pytest.raises(InputError, match=r"no .* files"):
        raw_archive(tmp_path)


def _count_work(monkeypatch) -> list[str]:
    """Record the pipeline name of every image computed from now on."""
    calls: list[str] = []
    real = bulk._process_block
    monkeypatch.setattr(bulk, "_process_block", lambda block, p, backend: calls.append(p.name) or real(block, p, backend))
    return calls


def _copy(folder, to, n=4):
    to.mkdir(parents=True, exist_ok=True)
    for p in sorted(folder.glob("*.tiff"))[:n]:
        shutil.copy(p, to / p.name)
    return to


def _store_state(store, label):
    return zarr.open_array(store, path=label)[:], zarr.open_array(store, path=f"_done/{label}")[:]


def test_same_label_with_another_gamma_refused(archive, tmp_path, monkeypatch):
    store = tmp_path / "s.zarr"
    base = Pipeline.preset("ma,s,me", camera=archive.camera)
    synthesize_bulk(archive, {"drift": base}, store)
    views, done = _store_state(store, "drift")
    calls = _count_work(monkeypatch)
    synthesize_bulk(archive, {"drift": Pipeline.preset("ma,s,me", camera=archive.camera)}, store)  # an equal pipeline resumes
    assert calls == []
    steeper = base.with_params({"gamma.gamma": 2.4})
    with pytest.raises(InputError, match=r"array 'drift' exists and was made by another pipeline.*overwrite=True"):
        synthesize_bulk(archive, {"drift": steeper}, store)
    assert calls == []
    assert all(np.array_equal(a, b) for a, b in zip(_store_state(store, "drift"), (views, done), strict=True))
    out = synthesize_bulk(archive, {"drift": steeper}, store, overwrite=True)
    expected = np.stack([steeper(read_raw(f).mosaic) for f in archive.paths]).astype(np.float32)
    assert np.array_equal(out["drift"][:], expected) and not np.array_equal(expected, views)
    assert Pipeline.from_yaml(out["drift"].attrs["pipeline"])["gamma"].values["gamma"] == 2.4


def test_source_file_with_changed_content_refused(folder, tmp_path, monkeypatch):
    src = _copy(folder, tmp_path / "raws")
    store = tmp_path / "s.zarr"
    synthesize_bulk(raw_archive(src), ["ma,s,me"], store)
    views, done = _store_state(store, "ma,s,me")
    moved = shutil.copytree(src, tmp_path / "moved")  # same names and bytes elsewhere: resumes, nothing recomputed
    calls = _count_work(monkeypatch)
    synthesize_bulk(raw_archive(moved), ["ma,s,me"], store)
    assert calls == []
    victim = sorted(src.glob("*.tiff"))[2]
    raw = read_raw(victim)
    numbers = np.round(raw.mosaic * raw.camera.white_level)
    numbers[10, 11] += 1 if numbers[10, 11] < raw.camera.white_level else -1  # one stored number, one DN
    write_raw(victim, numbers / raw.camera.white_level, raw.camera, overwrite=True)
    archive = raw_archive(src)  # same names, shape and camera: only the bytes tell
    with pytest.raises(InputError, match=rf"other file contents: {victim.name} has changed since \(stored sha256:"):
        synthesize_bulk(archive, ["ma,s,me"], store)
    assert calls == [] and all(np.array_equal(a, b) for a, b in zip(_store_state(store, "ma,s,me"), (views, done), strict=True))
    out = synthesize_bulk(archive, ["ma,s,me"], store, overwrite=True)
    assert np.array_equal(out["ma,s,me"][:], reference(archive, "ma,s,me"))
    assert out["ma,s,me"].attrs["digests"][2] == "sha256:" + hashlib.sha256(victim.read_bytes()).hexdigest()


def _other_camera(camera: Camera) -> Camera:
    return dataclasses.replace(camera, name="scope-b", pattern="GRBG", black_level=(0.01, 0.01, 0.01, 0.01))


def test_folder_mixing_two_cameras_refused(folder, tmp_path):
    src = _copy(folder, tmp_path / "raws", n=3)
    first = read_raw(sorted(src.glob("*.tiff"))[0])
    write_raw(src / "zz_other.tiff", first.mosaic, _other_camera(first.camera))
    with pytest.raises(
        InputError, match=r"zz_other\.tiff has another camera than the archive \(this file's vs the archive's\): .*pattern \('GRBG' vs 'RGGB'\).*black_level"
    ):
        raw_archive(src)
    lazy = raw_archive(src, check=False)  # only the first file read now; the odd one is refused when its chunk is read
    with pytest.raises(InputError, match=r"zz_other\.tiff has another camera"):
        synthesize_bulk(lazy, ["bi,s,ga"], tmp_path / "s.zarr")
    assert not zarr.open_array(tmp_path / "s.zarr", path="_done/bi,s,ga")[3]


def test_resume_over_raws_of_another_camera_refused(folder, tmp_path):
    src = _copy(folder, tmp_path / "raws", n=3)
    store = tmp_path / "s.zarr"
    synthesize_bulk(raw_archive(src), ["bi,s,ga"], store)
    for path in sorted(src.glob("*.tiff")):  # same names, same numbers, another camera
        raw = read_raw(path)
        write_raw(path, raw.mosaic, _other_camera(raw.camera), overwrite=True)
    with pytest.raises(InputError, match=r"raw files of another camera \(attrs\['camera'\] differs in name, pattern, black_level\)"):
        synthesize_bulk(raw_archive(src), ["bi,s,ga"], store)


@pytest.mark.parametrize(
    ("attr", "value", "message"),
    [
        ("digests", None, r"has no record of its source files' contents"),
        ("digests", "sha256:0", r"has no record of its source files' contents"),
        ("camera", None, r"has no record of its raw files' camera"),
        ("camera", "pattern: [", r"has an unreadable camera record"),
        ("sources", 5, r"was made from other source files"),
        ("pipeline", "stages: 7", r"was made by another pipeline"),
    ],
)
def test_store_whose_records_are_missing_or_damaged_refused(archive, tmp_path, attr, value, message):
    store = tmp_path / "s.zarr"
    synthesize_bulk(archive, ["bi,s,ga"], store)
    views = zarr.open_array(store, path="bi,s,ga", mode="r+")
    attrs = dict(views.attrs)
    if value is None:
        del attrs[attr]
    else:
        attrs[attr] = value
    views.attrs.clear()
    views.attrs.update(attrs)
    with pytest.raises(InputError, match=rf"array 'bi,s,ga' exists and {message}"):
        synthesize_bulk(archive, ["bi,s,ga"], store)


@pytest.mark.slow  # ~10 s: starts two worker processes
def test_local_cluster_matches_threads(archive, tmp_path):
    distributed = pytest.importorskip("dask.distributed")
    threaded = synthesize_bulk(archive, PRESETS, tmp_path / "threads.zarr")
    with (
        distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster,
        distributed.Client(cluster) as client,
    ):
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
    with (
        distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster,
        distributed.Client(cluster) as client,
    ):
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
