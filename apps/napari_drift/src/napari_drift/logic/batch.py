"""Batch processing: a folder of raw files through presets into a Zarr store, with ``ispkit bulk``.

:class:`BatchRunner` runs ispkit's own command line, ``python -m ispkit bulk SRC STORE
--pipelines … [--scheduler S] [--workers N]`` (``ispkit.scale.raw_archive`` and
``ispkit.scale.synthesize_bulk``), in a child process: locally (dask's threads, or a local
cluster of ``workers`` processes) or on a Dask scheduler address. :meth:`BatchRunner.lines`
is a generator of its output lines for a napari ``thread_worker``; while it runs it reads
the store's completion flags (``_done/<preset>``: ispkit sets an image's flag only after
its views are written) every :data:`POLL_S` seconds, so :attr:`BatchRunner.progress`
counts the finished images per preset as they come.

:meth:`BatchRunner.cancel` interrupts the command (``SIGINT``, as Ctrl-C): it stops and
exits 130, the written images keep their flags, and the same batch run again computes
only the missing ones (``ispkit bulk`` resumes).
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ispkit import InputError, presets

from .jobs import _child_environment, check_scheduler, exit_status

__all__ = ["BACKENDS", "BatchError", "BatchProgress", "BatchRunner", "POLL_S", "done_count", "open_results"]

POLL_S = 0.5
BACKENDS = ("numpy", "torch")
INTERRUPTED = 130  # ispkit's exit code after Ctrl-C
_TAIL = 20  # output lines kept for an error message


class BatchError(Exception):
    """``ispkit bulk`` failed: its exit status and the end of its output (not a ``RuntimeError``:
    napari's generator workers take those for "the worker was deleted")."""


@dataclass(frozen=True)
class BatchProgress:
    """Views written: ``done`` of ``total`` = images × presets."""

    done: int
    total: int
    images: int

    @property
    def fraction(self) -> float:
        return min(self.done / self.total, 1.0) if self.total else 0.0

    def describe(self) -> str:
        presets = self.total // self.images if self.images else 0
        return f"{self.done} of {self.total} views ({self.images} images × {presets} preset{'s' if presets != 1 else ''})"


def done_count(store: str | os.PathLike[str], labels: Sequence[str]) -> int:
    """How many images of ``labels`` a bulk store flags done (0 for a store not created yet, or an unreadable flag)."""
    import zarr

    total = 0
    try:
        done = zarr.open_group(os.fspath(store), mode="r")["_done"]
    except Exception:  # not there yet: ispkit creates it first
        return 0
    for label in labels:
        try:
            total += int(np.count_nonzero(done[label][:]))
        except Exception:  # created a moment later, or being written
            continue
    return total


def open_results(store: str | os.PathLike[str], labels: Sequence[str] | None = None) -> dict[str, tuple[Any, str]]:
    """``{label: (views, pipeline YAML)}`` of a bulk store: lazy ``(N, H, W, 3)`` dask arrays (ispkit
    stores ``(N, 3, H, W)``), images not written yet read as zeros."""
    import zarr

    from ispkit.scale import open_bulk

    arrays = open_bulk(store)
    root = zarr.open_group(os.fspath(store), mode="r")
    chosen = list(arrays) if labels is None else [label for label in labels if label in arrays]
    return {label: (arrays[label].transpose(0, 2, 3, 1), str(root[label].attrs.get("pipeline", ""))) for label in chosen}


class BatchRunner:
    """One ``ispkit bulk`` run of ``source`` through ``pipelines`` into ``store`` (resumed if it exists).

    The arguments are checked here, before any process starts (``ispkit.InputError``,
    ``FileNotFoundError``): the folder must hold raw files (the first one is read for the
    image count and shape), the pipelines must be preset names, the scheduler as in
    :func:`napari_drift.logic.jobs.check_scheduler`.

    Parameters
    ----------
    source
        Folder of raw files (``*.tif``, ``*.tiff``, ``*.dng``) of one shape and camera.
    store
        Zarr store to write (one array per preset; an existing one resumes).
    pipelines
        Preset names (``ispkit.presets()``).
    camera
        Camera name for every file (default: the files' own).
    backend
        ``"numpy"`` or ``"torch"``.
    scheduler, workers
        ``"local"`` (``workers`` > 1: a local Dask cluster) or a Dask scheduler address.
    overwrite
        Replace arrays of the same preset made from other files, camera or settings.
    """

    def __init__(
        self,
        source: str | os.PathLike[str],
        store: str | os.PathLike[str],
        pipelines: Sequence[str],
        *,
        camera: str | None = None,
        backend: str = "numpy",
        scheduler: str = "local",
        workers: int = 1,
        overwrite: bool = False,
    ) -> None:
        from ispkit.scale import raw_archive

        self.source, self.store = Path(source), Path(store)
        if not self.source.is_dir():
            raise FileNotFoundError(f"raw folder {str(self.source)!r} not found (choose a folder of raw TIFF/DNG files)")
        self.pipelines = tuple(pipelines)
        unknown = [p for p in self.pipelines if p not in presets()]
        if not self.pipelines or unknown:
            raise InputError(f"choose presets from {', '.join(presets())}" + (f"; unknown: {', '.join(map(repr, unknown))}" if unknown else ""))
        if backend not in BACKENDS:
            raise InputError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
        if self.store.resolve() == self.source.resolve() or self.source.resolve() in self.store.resolve().parents:
            raise InputError(f"the store {self.store} must not be inside the raw folder {self.source} (it would be read as raw files next time)")
        self.camera, self.backend, self.overwrite = camera, backend, overwrite
        self.scheduler, self.workers = check_scheduler(scheduler, workers)
        archive = raw_archive(self.source, camera, check=False)
        self.images, self.shape = len(archive), archive.shape
        self.files_camera, self.first_file = archive.camera, archive.paths[0]
        self.progress = BatchProgress(0, self.images * len(self.pipelines), self.images)
        self.cancelled = self.finished = False
        self.returncode: int | None = None
        self._process: subprocess.Popen[str] | None = None
        self._lock = threading.Lock()
        self._cancel = threading.Event()
        self._started = False

    def command(self) -> list[str]:
        """``python -m ispkit bulk …`` with absolute paths."""
        command = [sys.executable, "-m", "ispkit", "bulk", str(self.source.resolve()), str(self.store.resolve()), "--pipelines", *self.pipelines]
        command += ["--backend", self.backend, "--scheduler", self.scheduler, "--workers", str(self.workers)]
        if self.camera:
            command += ["--camera", self.camera]
        if self.overwrite:
            command.append("--overwrite")
        return command

    def cancel(self) -> None:
        """Interrupt the run (returns at once); written images stay and a rerun computes the rest."""
        with self._lock:
            self._cancel.set()
            process = self._process
            if process is not None and process.poll() is None:
                if os.name == "posix":
                    process.send_signal(signal.SIGINT)
                else:
                    process.terminate()

    def lines(self) -> Iterator[str]:
        """Run the batch, yielding its output lines and updating :attr:`progress`; raises :class:`BatchError` if it fails."""
        if self._started:
            raise InputError("this batch has already been started; make a new BatchRunner to run again")
        self._started = True
        if self._cancel.is_set():
            self.cancelled = True
            yield self._cancelled_line()
            return
        output: queue.Queue[str | None] = queue.Queue()
        with self._lock:
            self._process = subprocess.Popen(
                self.command(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True, encoding="utf-8", errors="replace", bufsize=1, env=_child_environment()
            )  # fmt: skip
        threading.Thread(target=_pump, args=(self._process.stdout, output), name="bulk-output", daemon=True).start()
        tail: list[str] = []
        try:
            while True:
                try:
                    line = output.get(timeout=POLL_S)
                except queue.Empty:
                    self._poll()
                    continue
                if line is None:
                    break
                tail = ([*tail, line])[-_TAIL:]
                self._poll()
                yield line
            self.returncode = self._process.wait()
            self._poll()
        finally:
            if self._process.poll() is None:  # the generator was closed early: stop the command
                self.cancel()
                self._process.wait()
            self._process.stdout.close()
        interrupted = self._cancel.is_set() and self.returncode in (INTERRUPTED, -signal.SIGINT, -signal.SIGTERM)
        if self.returncode == 0 or (interrupted and self.progress.done == self.progress.total):  # a late cancel: all written
            self.finished = True
            return
        if interrupted:
            self.cancelled = True
            yield self._cancelled_line()
            return
        raise BatchError(f"ispkit bulk ended with {exit_status(self.returncode)}:\n" + "\n".join(tail))

    def run(self) -> list[str]:
        """Run to the end (blocking); the output lines."""
        return list(self.lines())

    def _poll(self) -> None:
        self.progress = BatchProgress(done_count(self.store, self.pipelines), self.progress.total, self.images)

    def _cancelled_line(self) -> str:
        return f"cancelled after {self.progress.describe()}; {self.store} keeps them: run the same batch again to finish it"


def _pump(stream: Any, output: queue.Queue) -> None:
    """Copy ``stream``'s lines into ``output``, then ``None``."""
    for line in stream:
        output.put(line.rstrip("\n"))
    output.put(None)
