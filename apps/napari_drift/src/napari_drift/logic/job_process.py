"""The job process: one forensics/adjustment run in its own interpreter, driven over pipes.

Started by :class:`napari_drift.logic.jobs.JobRunner` as
``python -m napari_drift.logic.job_process KIND CONFIG RUN_DIR [--scheduler S] [--workers N]
[--tracking] [--tracking-uri URI]``.
Why a separate interpreter: ispkit's runs build ``torch.optim`` optimisers, and the first
one imports ``torch._dynamo``, which imports triton; triton's ``libtriton.so`` carries its
own copy of LLVM with exported symbols. In napari's process, Mesa's OpenGL driver
(llvmpipe under Xvfb or on machines without a GPU driver) has already loaded the system
``libLLVM`` into the global symbol scope (``RTLD_GLOBAL``), so the dynamic linker binds
libtriton's LLVM calls to that other LLVM version and libtriton's static initialisers
crash (segmentation fault in ``llvm::DebugCounter``, reached from ``triton/knobs.py``).
Here, without a GL context, triton loads cleanly, and napari's process never imports it.

Protocol (one JSON object per line):

* stdout: ``{"event": "line", "text": ...}`` per progress line, ``{"event": "steps",
  "count": k}`` for ``k`` more optimisation steps since the last line (at most ten a
  second; steps taken in this process: with a Dask cluster the units' steps happen on its
  workers and only their lines come back), then exactly one of ``{"event": "done"}``,
  ``{"event": "cancelled", "message": ...}`` or
  ``{"event": "error", "type": ..., "message": ..., "traceback": ...}``. Anything else
  the run prints goes to stderr (file descriptor 1 is pointed at 2 before the run).
* ``SIGINT`` (or a line ``cancel`` on stdin, or end of input: the parent went away)
  interrupts the run as Ctrl-C does: ispkit raises ``StudyInterrupted``, marks the study
  ``KILLED`` and keeps what finished, and this process reports ``cancelled``. Once every
  unit has finished an interrupt is deferred: the report is written and the job ends
  ``done``; after the run has returned it is ignored.

Exit code 0 after ``done`` or ``cancelled``, 1 after ``error``.
"""

from __future__ import annotations

import _thread
import argparse
import contextlib
import json
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from typing import IO, Any

from .jobs import CANCEL, JOB_KINDS, JobProgress, check_scheduler, load_config, run_function

__all__ = ["main"]

STEP_INTERVAL_S = 0.1  # at most ten step events a second


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m napari_drift.logic.job_process", description="Run one drift job, reporting over stdout.")
    parser.add_argument("kind", choices=JOB_KINDS)
    parser.add_argument("config", help="experiment YAML")
    parser.add_argument("run_dir", help="run folder (an existing one resumes)")
    parser.add_argument("--scheduler", default="local", help="'local' or a Dask scheduler address (tcp://host:8786)")
    parser.add_argument("--workers", type=int, default=1, help="with --scheduler local: worker processes of a local Dask cluster")
    parser.add_argument("--tracking", action="store_true", help="MLflow tracking")
    parser.add_argument("--tracking-uri", default=None)
    return parser.parse_args(argv)


def _protocol_stream() -> IO[str]:
    """A private copy of stdout for the protocol; fd 1 (and ``sys.stdout``) then write to stderr."""
    sys.stdout.flush()
    stream = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    os.dup2(2, 1)
    return stream


class _Interrupts:
    """The ``SIGINT`` handler: a ``KeyboardInterrupt`` while the run may stop, else nothing.

    ``deferred`` once every unit has finished (the report is being written: the job ends
    as finished), ``closed`` once the run has returned (its outcome is being sent). While
    :meth:`holding` (a protocol line is being written) an interrupt waits for the line's end.
    """

    def __init__(self) -> None:
        self.deferred = False
        self.closed = False
        self._held = 0
        self._pending = False

    def __call__(self, signum: int, frame: Any) -> None:
        if self.deferred or self.closed:
            return
        if self._held:
            self._pending = True
            return
        raise KeyboardInterrupt

    @contextlib.contextmanager
    def holding(self) -> Iterator[None]:
        self._held += 1
        try:
            yield
        finally:
            self._held -= 1
            if self._pending and not self._held:
                self._pending = False
                self(signal.SIGINT, None)


def _sender(stream: IO[str], interrupts: _Interrupts) -> Callable[..., None]:
    lock = threading.Lock()

    def send(event: str, **fields: Any) -> None:
        with interrupts.holding(), lock:  # never half a line: the parent reads whole JSON lines
            stream.write(json.dumps({"event": event, **fields}) + "\n")
            stream.flush()

    return send


def _watch_stdin(interrupts: _Interrupts) -> None:
    """Interrupt the run on a ``cancel`` line or at end of input (the parent closed the pipe or died)."""
    for line in sys.stdin:
        if line.strip() == CANCEL:
            break
    if not interrupts.closed:
        _thread.interrupt_main(signal.SIGINT)


class _StepCounter:
    """Counts optimisation steps (a global ``torch.optim`` hook) and sends them, throttled."""

    def __init__(self, send: Callable[..., None]) -> None:
        self.send, self.pending, self.last = send, 0, 0.0

    def install(self) -> None:
        from torch.optim.optimizer import register_optimizer_step_post_hook

        register_optimizer_step_post_hook(self.hook)

    def hook(self, *_: Any) -> None:
        self.pending += 1
        now = time.monotonic()
        if now - self.last >= STEP_INTERVAL_S:
            self.flush(now)

    def flush(self, now: float | None = None) -> None:
        """Send the steps counted since the last event (before each progress line, so they stay in order)."""
        if self.pending:
            self.send("steps", count=self.pending)
            self.pending = 0
        self.last = time.monotonic() if now is None else now


def main(argv: Sequence[str] | None = None) -> int:
    """Run the job given on the command line; see the module docstring for the protocol."""
    args = _arguments(argv)
    interrupts = _Interrupts()
    send = _sender(_protocol_stream(), interrupts)
    signal.signal(signal.SIGINT, interrupts)  # also when the parent started this process with SIGINT ignored
    threading.Thread(target=_watch_stdin, args=(interrupts,), name="cancel-watcher", daemon=True).start()
    steps = _StepCounter(send)
    try:
        scheduler, workers = check_scheduler(args.scheduler, args.workers)
        config = load_config(args.kind, args.config)
        progress = JobProgress.for_config(args.kind, config)

        def report(line: str) -> None:
            steps.flush()
            progress.line(str(line))
            interrupts.deferred = progress.all_finished
            send("line", text=str(line))

        steps.install()
        run = run_function(args.kind)
        run(config, args.run_dir, tracking=args.tracking, tracking_uri=args.tracking_uri, progress=report, scheduler=scheduler, workers=workers)
        interrupts.closed = True
    except KeyboardInterrupt as exc:  # ispkit's StudyInterrupted, or an interrupt outside its units
        interrupts.closed = True
        send("cancelled", message=str(exc))
    except BaseException as exc:  # reported to the parent, which raises it
        interrupts.closed = True
        send("error", type=type(exc).__name__, message=str(exc), traceback=traceback.format_exc())
        return 1
    else:
        send("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
