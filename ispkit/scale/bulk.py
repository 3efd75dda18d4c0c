"""Bulk drift synthesis: a raw archive through a set of pipelines, lazily, into Zarr.

A :class:`RawArchive` is a sorted list of raw files (TIFF or DNG, read with
:func:`ispkit.io.read_raw`) of one shape and one camera; :meth:`RawArchive.to_dask`
is a lazy ``(N, H, W)`` dask array with one chunk per file. :func:`bulk_views` maps a
pipeline over it (``(N, 3, H, W)``, one chunk per image), and :func:`synthesize_bulk`
writes the views of several pipelines to a Zarr group, one array per pipeline::

    store.zarr/
      zarr.json                 group
      ma,s,me/                  float32 (N, 3, H, W), chunks (1, 3, H, W)
                                attrs: label, pipeline (YAML), camera (YAML), sources,
                                digests (sha256 of every source file)
      bi,u,ga/                  ...
      _done/ma,s,me             bool (N,), chunks (1,): image i is written
      _done/bi,u,ga             ...

**Resumable.** Every image is one task that computes its views, writes its chunk and
only then sets its ``_done`` flag (a chunk of its own, so concurrent workers never
rewrite each other's flags). Zarr's local store writes each chunk to a temporary file
and renames it, so a worker killed mid-write leaves the old chunk (or none), never a
half-written one marked done. A rerun computes only the images whose flag is unset.

**Safety.** A store that already holds an array of the same label made by another
pipeline (any parameter value differing, e.g. another gamma), from other source files
(other names, or a file of the same name whose bytes changed: every source file's
SHA-256 is recorded and checked on every run, which reads each file once more), from
raw files of another camera, or of another shape raises
:class:`~ispkit.errors.InputError` naming what differs; pass ``overwrite=True`` to
replace it. An array without these records (an older ispkit, or damaged attributes)
cannot be checked and is refused the same way. Unless a camera override is given, an
archive never mixes cameras: :func:`raw_archive` refuses a folder whose files differ in
camera (CFA pattern, black level, ...) or shape, and every chunk is checked again when
it is read.

**Schedulers.** By default dask's local threaded scheduler runs the tasks in this
process; ``workers=N`` starts a local cluster of ``N`` processes, and a
:class:`dask.distributed.Client` or a scheduler address (``"tcp://..."``) runs them on
that cluster (:mod:`ispkit.scale.cluster`; the store must then be reachable from
every worker, e.g. a shared file system path).

:func:`open_bulk` reopens the result as lazy dask arrays (napari displays them lazily).

Needs the optional dependencies ``dask[distributed]`` and ``zarr`` (version 3).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..camera import Camera
from ..errors import InputError
from ..io import read_raw
from ..pipeline import Pipeline
from .cluster import connect, need

if TYPE_CHECKING:  # pragma: no cover
    import dask.array
    import zarr

__all__ = ["RawArchive", "raw_archive", "bulk_views", "synthesize_bulk", "open_bulk", "DONE_GROUP", "RAW_SUFFIXES"]

RAW_SUFFIXES: tuple[str, ...] = (".tif", ".tiff", ".dng")
"""File suffixes (any case) that :func:`raw_archive` picks up from a folder."""

DONE_GROUP = "_done"
"""Name of the Zarr group holding the per-image completion flags."""

_BACKENDS = ("numpy", "torch")


# -- the archive ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RawArchive:
    """Raw files of one shape and one camera, in a fixed (sorted) order.

    Parameters
    ----------
    paths
        The files, sorted.
    shape
        ``(H, W)`` of every mosaic.
    camera
        The camera of every file (or the override given to :func:`raw_archive`).
    override
        Whether ``camera`` was given explicitly (then it is passed on to
        :func:`~ispkit.io.read_raw` for every file).
    """

    paths: tuple[Path, ...]
    shape: tuple[int, int]
    camera: Camera
    override: bool = False

    def __len__(self) -> int:
        return len(self.paths)

    def read(self, index: int) -> np.ndarray:
        """The mosaic of file ``index`` as float64 ``(H, W)``, checked against the archive."""
        path = self.paths[index]
        raw = read_raw(path, self.camera if self.override else None)
        _check_member(path, raw.mosaic.shape, raw.camera, self.shape, self.camera)
        return raw.mosaic

    def to_dask(self, dtype: Any = np.float32) -> dask.array.Array:
        """A lazy ``(N, H, W)`` array, one chunk per file, each chunk reading its file.

        Parameters
        ----------
        dtype
            Element type of the chunks (default float32; the values are the
            :func:`~ispkit.io.read_raw` mosaics, in [0, 1]).
        """
        da = need("dask.array")
        h, w = self.shape
        dtype = np.dtype(dtype)
        return da.map_blocks(
            _read_block,
            archive=self,
            out_dtype=dtype,
            chunks=((1,) * len(self), (h,), (w,)),
            dtype=dtype,
            meta=np.empty((0, 0, 0), dtype),
            name=f"raw-archive-{dtype.name}-{_token(self)}",
        )


def _read_block(archive: RawArchive, out_dtype: np.dtype, block_id: tuple[int, ...]) -> np.ndarray:
    """Chunk ``block_id`` (which dask passes to a function taking it): image ``block_id[0]``, ``(1, H, W)``."""
    return archive.read(block_id[0])[None].astype(out_dtype, copy=False)


def _token(archive: RawArchive) -> str:
    tokenize = need("dask.base").tokenize
    return tokenize([str(p) for p in archive.paths], archive.shape, archive.camera.to_yaml(), archive.override)


def _check_member(path: Path, shape: tuple[int, ...], camera: Camera, want_shape: tuple[int, ...], want_camera: Camera) -> None:
    if tuple(shape) != tuple(want_shape):
        raise InputError(f"raw archive: {path} has shape {tuple(shape)}, but the archive's images are {tuple(want_shape)}")
    if camera != want_camera:
        raise InputError(
            f"raw archive: {path} has another camera than the archive (this file's vs the archive's): "
            f"{'; '.join(camera.differences(want_camera))}; pass camera= to override"
        )


def _digest(path: str | os.PathLike[str]) -> str:
    """``"sha256:<hex>"`` of the bytes of ``path`` (read in blocks, any size)."""
    with open(path, "rb") as f:
        return "sha256:" + hashlib.file_digest(f, "sha256").hexdigest()


def raw_archive(
    paths_or_folder: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    camera: Camera | str | Mapping[str, Any] | None = None,
    *,
    check: bool = True,
) -> RawArchive:
    """Collect raw files into a :class:`RawArchive`.

    Parameters
    ----------
    paths_or_folder
        A folder (its ``*.tif``, ``*.tiff`` and ``*.dng`` files, not recursive), one
        file, or an iterable of files. The files are sorted by path.
    camera
        Camera override for every file (as in :func:`~ispkit.io.read_raw`); without it
        each file's own camera is used and all must be equal.
    check
        Read every file now to check that shapes and cameras agree (default). If
        false only the first file is read; the others are checked when their chunk
        is read.

    Returns
    -------
    RawArchive

    Raises
    ------
    InputError
        No raw files, or a file whose shape or camera differs from the first one's
        (the message names the file and what differs).
    FileNotFoundError
        A path does not exist.
    """
    if isinstance(paths_or_folder, (str, os.PathLike)):
        root = Path(paths_or_folder)
        if root.is_dir():
            files = [p for p in root.iterdir() if p.is_file() and p.suffix.lower() in RAW_SUFFIXES]
            if not files:
                raise InputError(f"raw archive: no {', '.join(RAW_SUFFIXES)} files in {root}")
        else:
            files = [root]
    else:
        files = [Path(p) for p in paths_or_folder]
    if not files:
        raise InputError("raw archive: no files given")
    paths = tuple(sorted(files))
    if len(set(paths)) != len(paths):
        raise InputError("raw archive: a file is listed twice")
    explicit = None if camera is None else Camera.get(camera)
    first = read_raw(paths[0], explicit)
    archive = RawArchive(paths, tuple(first.mosaic.shape), first.camera, explicit is not None)
    if check:
        for path in paths[1:]:
            raw = read_raw(path, explicit)
            _check_member(path, raw.mosaic.shape, raw.camera, archive.shape, archive.camera)
    return archive


# -- pipelines over the archive -----------------------------------------------------------------


def _process_block(block: np.ndarray, pipeline: Pipeline, backend: str) -> np.ndarray:
    """Views ``(n, 3, H, W)`` float32 of a raw block ``(n, H, W)`` (float64) through ``pipeline``."""
    if backend == "torch":
        import torch

        with torch.no_grad():
            out = pipeline.to_torch(dtype=torch.float64)(torch.as_tensor(np.asarray(block, dtype=np.float64))).numpy()
    else:
        out = pipeline(np.asarray(block, dtype=np.float64))
    return out.astype(np.float32)


def bulk_views(archive: RawArchive, pipeline: Pipeline, *, backend: str = "numpy") -> dask.array.Array:
    """The views of ``archive`` through ``pipeline``, lazily: ``(N, 3, H, W)`` float32, chunks ``(1, 3, H, W)``.

    The raw chunks are read as float64, so each image equals
    ``pipeline(read_raw(path).mosaic).astype(np.float32)`` (numpy backend).
    """
    _check_backend(backend)
    h, w = archive.shape
    raw = archive.to_dask(np.float64)
    da = need("dask.array")
    return da.map_blocks(
        _call_process,
        raw,
        pipeline=pipeline,
        backend=backend,
        new_axis=1,
        chunks=((1,) * len(archive), (3,), (h,), (w,)),
        dtype=np.float32,
        meta=np.empty((0, 0, 0, 0), np.float32),
    )


def _call_process(block: np.ndarray, pipeline: Pipeline, backend: str) -> np.ndarray:
    # looked up at call time, so that tests can count the per-image work
    return _process_block(block, pipeline, backend)


def _check_backend(backend: str) -> None:
    if backend not in _BACKENDS:
        raise InputError(f"backend: expected one of {', '.join(_BACKENDS)}, got {backend!r}")


def _pipelines(pipelines: Mapping[str, Pipeline | str] | Sequence[Pipeline | str], camera: Camera) -> dict[str, Pipeline]:
    def build(p: Pipeline | str) -> Pipeline:
        if isinstance(p, Pipeline):
            return p
        if isinstance(p, str):
            return Pipeline.preset(p, camera=camera)
        raise InputError(f"pipelines: expected Pipeline objects or preset names, got {type(p).__name__}")

    if isinstance(pipelines, Mapping):
        out = {str(label): build(p) for label, p in pipelines.items()}
    elif isinstance(pipelines, (str, Pipeline)):
        raise InputError("pipelines: expected a list or a {label: pipeline} mapping, not a single pipeline; wrap it in a list")
    else:
        out = {}
        for p in pipelines:
            q = build(p)
            if not q.name:
                raise InputError("pipelines: an unnamed Pipeline in a list has no label; pass a {label: pipeline} mapping")
            if q.name in out:
                raise InputError(f"pipelines: label {q.name!r} appears twice")
            out[q.name] = q
    if not out:
        raise InputError("pipelines: none given")
    for label, p in out.items():
        if not label or "/" in label or label.startswith("__") or set(label) == {"."} or label == DONE_GROUP:
            raise InputError(f"pipelines: label {label!r} cannot name a Zarr array (no '/', not empty, not '.', not starting '__', not {DONE_GROUP!r})")
        if p.camera.pattern != camera.pattern:
            raise InputError(
                f"pipeline {label!r} is for CFA pattern {p.camera.pattern}, the archive's camera {camera.name!r} has {camera.pattern}; "
                f"use pipeline.with_camera(archive.camera)"
            )
    return out


# -- writing --------------------------------------------------------------------------------


def _prepare(root: zarr.Group, label: str, pipeline: Pipeline, archive: RawArchive, digests: list[str], overwrite: bool, store: str) -> None:
    """Create (or check) the views array and done flags of ``label``."""
    n, (h, w) = len(archive), archive.shape
    attrs: dict[str, Any] = {
        "label": label,
        "pipeline": pipeline.to_yaml(),
        "camera": archive.camera.to_yaml(),
        "sources": [str(p) for p in archive.paths],
        "digests": digests,
        "ispkit": "bulk views (N, 3, H, W) float32; see ispkit.scale.bulk",
    }
    done_group = root.require_group(DONE_GROUP)
    exists = label in root.array_keys()
    if exists and not overwrite:
        old = root[label]
        problem = _mismatch(old, attrs, pipeline, (n, 3, h, w))
        if problem is None and label not in done_group.array_keys():
            problem = f"its completion flags {DONE_GROUP}/{label} are missing"
        if problem is not None:
            raise InputError(f"bulk store {store}: array {label!r} exists and {problem}; pass overwrite=True to replace it")
        return
    root.create_array(label, shape=(n, 3, h, w), chunks=(1, 3, h, w), dtype="float32", fill_value=0.0, overwrite=True, attributes=attrs)
    done_group.create_array(label, shape=(n,), chunks=(1,), dtype="bool", fill_value=False, overwrite=True)


def _mismatch(old: Any, attrs: dict[str, Any], pipeline: Pipeline, shape: tuple[int, ...]) -> str | None:
    """Why the existing array ``old`` cannot be continued by this run, or ``None`` if it can."""
    if not hasattr(old, "shape") or not hasattr(old, "attrs") or hasattr(old, "array_keys"):
        return "is not a bulk views array"
    if tuple(old.shape) != shape:
        return f"has shape {tuple(old.shape)}, this run needs {shape}"
    return (
        _sources_mismatch(old.attrs.get("sources"), attrs["sources"])
        or _camera_mismatch(old.attrs.get("camera"), attrs["camera"])
        or _digests_mismatch(old.attrs.get("digests"), attrs["digests"], attrs["sources"])
        or _pipeline_mismatch(old.attrs.get("pipeline"), pipeline)
    )


def _sources_mismatch(stored: Any, sources: list[str]) -> str | None:
    names = [Path(p).name for p in sources]
    if not isinstance(stored, list) or [Path(str(p)).name for p in stored] != names:
        return "was made from other source files (attrs['sources'] differs)"
    return None


def _camera_mismatch(stored: Any, camera_yaml: str) -> str | None:
    if not isinstance(stored, str):
        return "has no record of its raw files' camera (attrs['camera'])"
    try:
        old = Camera.from_yaml(stored)
    except Exception:  # an unreadable record is a mismatch
        return "has an unreadable camera record (attrs['camera'])"
    new = Camera.from_yaml(camera_yaml)
    if old != new:
        diffs = [f for f in Camera.__dataclass_fields__ if getattr(old, f) != getattr(new, f)]
        return f"was made from raw files of another camera (attrs['camera'] differs in {', '.join(diffs)})"
    return None


def _digests_mismatch(stored: Any, digests: list[str], sources: list[str]) -> str | None:
    if not isinstance(stored, list) or len(stored) != len(digests):
        return "has no record of its source files' contents (attrs['digests']; made by an older ispkit?)"
    for path, old, new in zip(sources, stored, digests, strict=True):
        if old != new:
            return f"was made from other file contents: {Path(path).name} has changed since (stored {str(old)[:19]}..., now {new[:19]}...)"
    return None


def _pipeline_mismatch(stored: Any, pipeline: Pipeline) -> str | None:
    try:
        same = isinstance(stored, str) and Pipeline.from_yaml(stored) == pipeline
    except Exception:  # an unreadable record is a mismatch
        same = False
    return None if same else "was made by another pipeline (attrs['pipeline'] differs)"


def _write_block(block: np.ndarray, store: str, label: str, index: int) -> int:
    """Write image ``index`` of ``label`` and then, only then, flag it done."""
    zarr = need("zarr")
    zarr.open_array(store, path=label, mode="r+")[index] = block[0]
    zarr.open_array(store, path=f"{DONE_GROUP}/{label}", mode="r+")[index] = True
    return index


def synthesize_bulk(
    archive: RawArchive,
    pipelines: Mapping[str, Pipeline | str] | Sequence[Pipeline | str],
    store: str | os.PathLike[str],
    *,
    scheduler: Any = "local",
    workers: int = 1,
    backend: str = "numpy",
    overwrite: bool = False,
) -> dict[str, zarr.Array]:
    """Process every image of ``archive`` through every pipeline into the Zarr group ``store``.

    Parameters
    ----------
    archive
        The raw files (:func:`raw_archive`).
    pipelines
        ``{label: Pipeline}`` (a value may also be a preset name), or a list of preset
        names / named pipelines (label = name). Preset names are built for
        ``archive.camera``.
    store
        Path (or URL zarr understands) of the Zarr group; created if missing.
    scheduler, workers
        ``"local"`` (or ``None``) with one worker: dask's threaded scheduler, in this
        process; with ``workers > 1``, a local cluster of that many processes for this
        call. A :class:`dask.distributed.Client`, or a scheduler address
        (``"tcp://host:8786"``, connected to for this call and closed after), runs the
        tasks on that cluster. A dask scheduler name (``"threads"``, ``"processes"``,
        ``"sync"``) is passed to :func:`dask.compute`.
    backend
        ``"numpy"`` (``pipeline(raw)``) or ``"torch"`` (``pipeline.to_torch(dtype=torch.float64)``, float64
        on the CPU; agrees to float rounding).
    overwrite
        Replace arrays of the same label that another pipeline, other source files
        (names or contents), another camera or another shape made (otherwise
        :class:`~ispkit.errors.InputError`), and recompute everything for the given labels.

    Returns
    -------
    dict[str, zarr.Array]
        The views array of every label, ``(N, 3, H, W)`` float32.

    Notes
    -----
    Only images not yet flagged done are computed; a rerun after an interruption
    finishes the job. The raw file of an image is read once for all pipelines that
    still need it.
    """
    zarr = need("zarr")
    dask = need("dask")
    if not isinstance(archive, RawArchive):
        raise InputError(f"archive: expected a RawArchive (see raw_archive), got {type(archive).__name__}")
    _check_backend(backend)
    chosen = _pipelines(pipelines, archive.camera)
    store = os.fspath(store)
    root = zarr.open_group(store, mode="a")
    digests = [_digest(p) for p in archive.paths]
    for label, pipeline in chosen.items():
        _prepare(root, label, pipeline, archive, digests, overwrite, store)

    tasks = []
    for label, pipeline in chosen.items():
        done = np.asarray(root[DONE_GROUP][label][:], dtype=bool)
        missing = np.flatnonzero(~done)
        if not len(missing):
            continue
        blocks = bulk_views(archive, pipeline, backend=backend).to_delayed().ravel()
        write = dask.delayed(_write_block, pure=False)
        tasks += [write(blocks[i], store, label, int(i), dask_key_name=f"bulk-write-{label}-{i}-{_token(archive)}") for i in missing]
    if tasks:
        _compute(tasks, scheduler, workers)
    return {label: zarr.open_array(store, path=label, mode="r") for label in chosen}


def _compute(tasks: list[Any], scheduler: Any, workers: int) -> list[Any]:
    dask = need("dask")
    if scheduler in ("threads", "processes", "sync", "single-threaded"):
        return list(dask.compute(*tasks, scheduler=scheduler))
    with connect(scheduler, workers) as client:
        if client is None:
            return list(dask.compute(*tasks, scheduler="threads"))
        return list(client.gather(client.compute(tasks)))


def open_bulk(store: str | os.PathLike[str]) -> dict[str, dask.array.Array]:
    """The views arrays of a bulk store as lazy dask arrays, ``{label: (N, 3, H, W)}``.

    Images not yet written read as zeros; ``zarr.open_group(store)["_done"][label]``
    says which are done, and each array's ``attrs`` hold its pipeline and camera YAML
    and its source files.
    """
    zarr = need("zarr")
    da = need("dask.array")
    store = os.fspath(store)
    if not Path(store).exists() and "://" not in store:
        raise FileNotFoundError(f"no bulk store at {store}")
    root = zarr.open_group(store, mode="r")
    return {name: da.from_zarr(store, component=name) for name in sorted(root.array_keys())}
