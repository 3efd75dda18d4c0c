"""One study at a time per run folder: an exclusive lock held while a study runs.

Two processes driving the same run folder would both train the same units and write
the same files and tracking store. :func:`holding_run_folder` wraps the ``run_*``
functions of the three drift controls: before anything is written, the process takes
an exclusive ``flock`` on ``<run_dir>/.ispkit.lock`` and writes who holds it (PID, host,
start time, command line). A second process asking for the same folder is refused with
a :class:`~ispkit.errors.RunFolderError` naming the first. The kernel releases the lock
when its holder exits, however it exits (``SIGKILL`` included), so a lock left by a dead
process is *stale*: the next run takes it over and says whose it was. Dask workers of a
study do not take the lock; the process that drives the study holds it for them.

A run folder that cannot be written (read-only file system, no permission) is refused
here too, with a :class:`~ispkit.errors.RunFolderError` naming the folder, before any
work starts.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import inspect
import json
import os
import socket
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from ..errors import RunFolderError

__all__ = ["LOCK_NAME", "RunLock", "holding_run_folder", "run_folder_lock"]

LOCK_NAME = ".ispkit.lock"

F = TypeVar("F", bound=Callable[..., Any])


class RunLock:
    """The exclusive lock of one run folder (see the module docstring).

    ``acquire()`` returns the description of a stale lock it took over (or ``None``);
    ``release()`` gives the folder back. The lock file itself stays (deleting it would
    let two processes lock two different files of the same name).
    """

    def __init__(self, run_dir: str | os.PathLike[str]) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> dict[str, Any] | None:
        try:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise RunFolderError(_unwritable(self.run_dir, exc)) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read(fd)
            os.close(fd)
            raise RunFolderError(
                f"the run folder {self.run_dir} is in use by another ispkit run ({describe(holder)}); "
                "wait for it to finish or stop it, or choose another output folder"
            ) from None
        stale = _read(fd) or None
        holder = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%d %H:%M:%S %z"), "command": " ".join(sys.argv)[:500]}
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(holder).encode(), 0)
        except OSError as exc:
            os.close(fd)
            raise RunFolderError(_unwritable(self.run_dir, exc)) from None
        self._fd = fd
        return stale

    def release(self) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(OSError):  # a full disk must not stop the release
            os.ftruncate(self._fd, 0)
        os.close(self._fd)  # closing releases the flock
        self._fd = None


def describe(holder: dict[str, Any] | None) -> str:
    """``"PID 123 on host node1, started 2026-11-30 10:00:00 +0000: ispkit synthesis run ..."``.

    >>> describe({"pid": 7, "host": "h", "started": "2026-11-30 10:00:00 +0000", "command": "ispkit adjust run a.yaml"})
    'PID 7 on host h, started 2026-11-30 10:00:00 +0000: ispkit adjust run a.yaml'
    >>> describe(None)
    'holder unknown'
    """
    if not holder:
        return "holder unknown"
    return f"PID {holder.get('pid')} on host {holder.get('host')}, started {holder.get('started')}: {holder.get('command')}"


@contextlib.contextmanager
def run_folder_lock(run_dir: str | os.PathLike[str], progress: Callable[[str], None] | None = None) -> Iterator[RunLock]:
    """Hold the lock of ``run_dir`` for the body (saying so when a stale lock is taken over)."""
    lock = RunLock(run_dir)
    stale = lock.acquire()
    if stale and progress is not None:
        progress(f"took over the lock of {lock.run_dir} left by a run that is gone ({describe(stale)})")
    try:
        yield lock
    finally:
        lock.release()


def holding_run_folder(func: F) -> F:
    """Decorate ``run_*(config, run_dir, *, progress=None, ...)`` to run under :func:`run_folder_lock`."""
    signature = inspect.signature(func)

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        bound = signature.bind(*args, **kwargs)
        with run_folder_lock(bound.arguments["run_dir"], bound.arguments.get("progress")):
            return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def _read(fd: int) -> dict[str, Any]:
    try:
        data = json.loads(os.pread(fd, 4096, 0).decode() or "{}")
    except (ValueError, OSError):
        return {}
    return data if isinstance(data, dict) else {}


def _unwritable(run_dir: Path, exc: OSError) -> str:
    reason = {errno.EROFS: "read-only file system", errno.EACCES: "permission denied", errno.EPERM: "permission denied",
              errno.ENOSPC: "no space left on device", errno.EDQUOT: "disk quota exceeded"}.get(exc.errno or 0, exc.strerror or str(exc))  # fmt: skip
    return (
        f"cannot write in the run folder {run_dir} ({reason}): a study writes its checkpoints, resume states and results "
        "there, also when it resumes or reads a finished run back; choose a writable output folder"
    )
