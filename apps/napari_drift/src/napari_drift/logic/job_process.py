"""The job process: one forensics/adjustment run in its own interpreter, driven over pipes.

Started by :class:`napari_drift.logic.jobs.JobRunner` as
``python -m napari_drift.logic.job_process KIND CONFIG RUN_DIR [--tracking] [--tracking-uri URI]``.
Why a separate interpreter: ispkit's runs build ``torch.optim`` optimisers, and the first
one imports ``torch._dynamo``, which imports triton; triton's ``libtriton.so`` carries its
own copy of LLVM with exported symbols. In napari's process, Mesa's OpenGL driver
(llvmpipe under Xvfb or on machines without a GPU driver) has already loaded the system
``libLLVM`` into the global symbol scope (``RTLD_GLOBAL``), so the dynamic linker binds
libtriton's LLVM calls to that other LLVM version and libtriton's static initialisers
crash (segmentation fault in ``llvm::DebugCounter``, reached from ``triton/knobs.py``).
Here, without a GL context, triton loads cleanly, and napari's process never imports it.

Protocol (one JSON object per line):

* stdout: ``{"event": "line", "text": ...}`` per progress line, then exactly one of
  ``{"event": "done"}``, ``{"event": "cancelled"}`` or
  ``{"event": "error", "type": ..., "message": ..., "traceback": ...}``. Anything else
  the run prints goes to stderr (file descriptor 1 is pointed at 2 before the run).
* stdin: a line ``cancel``, or end of file (the parent went away), asks the run to stop
  at its next progress point; finished units stay in the run folder and resume.

Exit code 0 after ``done`` or ``cancelled``, 1 after ``error``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import traceback
from collections.abc import Callable, Sequence
from typing import IO, Any

from .jobs import CANCEL, JOB_KINDS, JobCancelled, load_config, run_function

__all__ = ["main"]


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m napari_drift.logic.job_process", description="Run one drift job, reporting over stdout.")
    parser.add_argument("kind", choices=JOB_KINDS)
    parser.add_argument("config", help="experiment YAML")
    parser.add_argument("run_dir", help="run folder (an existing one resumes)")
    parser.add_argument("--tracking", action="store_true", help="MLflow tracking")
    parser.add_argument("--tracking-uri", default=None)
    return parser.parse_args(argv)


def _protocol_stream() -> IO[str]:
    """A private copy of stdout for the protocol; fd 1 (and ``sys.stdout``) then write to stderr."""
    sys.stdout.flush()
    stream = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    os.dup2(2, 1)
    return stream


def _sender(stream: IO[str]) -> Callable[..., None]:
    lock = threading.Lock()

    def send(event: str, **fields: Any) -> None:
        with lock:
            stream.write(json.dumps({"event": event, **fields}) + "\n")
            stream.flush()

    return send


def _watch_stdin(cancel: threading.Event) -> None:
    """Set ``cancel`` on a ``cancel`` line or at end of input (the parent closed the pipe or died)."""
    for line in sys.stdin:
        if line.strip() == CANCEL:
            break
    cancel.set()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the job given on the command line; see the module docstring for the protocol."""
    args = _arguments(argv)
    send = _sender(_protocol_stream())
    cancel = threading.Event()
    threading.Thread(target=_watch_stdin, args=(cancel,), name="cancel-watcher", daemon=True).start()

    def report(line: str) -> None:
        if cancel.is_set():
            raise JobCancelled("cancelled")
        send("line", text=str(line))

    try:
        config = load_config(args.kind, args.config)
        run_function(args.kind)(config, args.run_dir, tracking=args.tracking, tracking_uri=args.tracking_uri, progress=report)
    except JobCancelled:
        send("cancelled")
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which raises it
        send("error", type=type(exc).__name__, message=str(exc), traceback=traceback.format_exc())
        return 1
    else:
        send("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
