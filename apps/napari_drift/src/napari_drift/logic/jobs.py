"""Background drift experiments (forensics, adjustment) with progress lines and cancellation.

:class:`JobRunner` runs ``ispkit.drift.forensics.run_forensics`` or
``ispkit.drift.adjustment.run_adjustment`` in a separate Python process
(:mod:`napari_drift.logic.job_process`); :meth:`JobRunner.lines` is a generator of its
progress lines (read from the process's stdout), meant to be driven by a napari generator
``thread_worker``. :meth:`JobRunner.cancel` tells the process to stop: the next time
ispkit reports progress there, the callback raises :class:`JobCancelled`, which unwinds
the run. ispkit writes each finished unit before reporting it, so a cancelled run folder
resumes where it stopped (run the same experiment into the same folder again). The
process is always waited for.

Why a process and not a thread: the training builds ``torch.optim`` optimisers, whose
first use imports ``torch._dynamo`` and with it triton, and triton cannot be loaded into a
process in which Mesa's OpenGL driver has loaded the system LLVM (every napari process
rendering with llvmpipe): see :mod:`napari_drift.logic.job_process`. Nothing here imports
torch's compiler stack into the caller's process, whatever ran before.
"""

from __future__ import annotations

import json
import math
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ispkit import InputError

__all__ = [
    "CANCEL",
    "JOB_KINDS",
    "JobCancelled",
    "JobError",
    "JobRunner",
    "Progress",
    "detect_kind",
    "figures",
    "forensics_pipelines",
    "adjustment_pipelines",
    "parse_progress",
    "run_function",
]

JOB_KINDS = ("forensics", "adjustment")
CANCEL = "cancel"  # the line that asks the job process to stop
_UNIT = re.compile(r"^\s*\[(\d+)/(\d+)\]")
_EPOCH = re.compile(r"epoch\s+(\d+)/(\d+)")


class JobCancelled(Exception):
    """Raised from the progress callback of a cancelled job; stops the run at its next progress point."""


class JobError(Exception):
    """The job process failed: the original exception's type name and message, and its traceback.

    ``str(error)`` is ``"<type name>: <message>"``; ``details`` holds the job process's
    traceback (empty when the process died without reporting, e.g. killed by a signal).
    Not a ``RuntimeError``: napari's (superqt's) generator workers take a ``RuntimeError``
    for "the worker was deleted" and end without emitting ``errored`` or ``finished``.
    """

    def __init__(self, type_name: str, message: str, details: str = "") -> None:
        super().__init__(f"{type_name}: {message}")
        self.type_name, self.message, self.details = type_name, message, details


@dataclass(frozen=True)
class Progress:
    """Units done (possibly fractional: epochs of the running unit) out of ``total``."""

    done: float
    total: int

    @property
    def fraction(self) -> float:
        return min(max(self.done / self.total, 0.0), 1.0) if self.total else 0.0


def parse_progress(line: str) -> Progress | None:
    """``"[3/40] …"`` → 3 of 40 units; a training line ``"[3/40] … epoch 5/12 …"`` → 2 + 5/12 of 40."""
    match = _UNIT.match(line)
    if not match:
        return None
    k, n = int(match.group(1)), int(match.group(2))
    epoch = _EPOCH.search(line)
    if epoch and int(epoch.group(2)) > 0:
        return Progress(k - 1 + int(epoch.group(1)) / int(epoch.group(2)), n)
    return Progress(float(k), n)


def detect_kind(config: str | os.PathLike[str]) -> str:
    """``"forensics"`` or ``"adjustment"`` from an experiment YAML's keys (subsets/lambdas vs arms/intensities)."""
    from ispkit.config import load_yaml

    path = Path(config)
    if not path.is_file():
        raise FileNotFoundError(f"experiment file {str(path)!r} not found")
    data, _ = load_yaml(path)  # the hardened loader: a hostile file is a ConfigError, never a bomb
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected an experiment mapping, got {type(data).__name__}")
    if {"subsets", "lambdas"} & set(data) or "checkpoint" in data:
        return "forensics"
    if {"arms", "intensities", "pipeline_lr"} & set(data):
        return "adjustment"
    if "pipelines" in data:
        raise InputError(f"{path} is a drift-synthesis experiment; run it with `ispkit synthesis run` (the jobs widget runs forensics and adjustment)")
    raise InputError(f"{path}: cannot tell whether this is a forensics (subsets, lambdas) or an adjustment (arms, intensities) experiment")


def load_config(kind: str, config: str | os.PathLike[str]) -> Any:
    """The parsed ``ForensicsConfig`` / ``AdjustmentConfig`` (ispkit's ``ConfigError`` for invalid files)."""
    from ispkit.drift.config import AdjustmentConfig, ForensicsConfig

    if kind not in JOB_KINDS:
        raise InputError(f"job kind must be one of {JOB_KINDS}, got {kind!r}")
    path = Path(config)
    if not path.is_file():
        raise FileNotFoundError(f"experiment file {path} not found")
    return (ForensicsConfig if kind == "forensics" else AdjustmentConfig).from_yaml(path)


def run_function(kind: str) -> Callable[..., Any]:
    """ispkit's ``run_forensics`` or ``run_adjustment`` (imports ispkit's training code)."""
    if kind == "forensics":
        from ispkit.drift.forensics import run_forensics

        return run_forensics
    from ispkit.drift.adjustment import run_adjustment

    return run_adjustment


def exit_status(returncode: int) -> str:
    """``"exit code 3"`` or, for a negative code, the signal: ``"killed by SIGSEGV"``."""
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit code {returncode}"


def _child_environment() -> dict[str, str]:
    """This process's environment, with ``PYTHONPATH`` set to its ``sys.path``.

    The job process then imports the same ``napari_drift`` and ``ispkit`` as this one, even
    when they were put on ``sys.path`` at run time (as ``multiprocessing`` does for its children).
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if isinstance(p, str) and p)
    return env


def _decode(raw: str) -> dict[str, Any] | None:
    """A protocol event from a line of the job process's stdout, or ``None`` for any other text."""
    try:
        event = json.loads(raw)
    except ValueError:
        return None
    return event if isinstance(event, dict) and isinstance(event.get("event"), str) else None


class JobRunner:
    """One forensics/adjustment run in ``run_dir`` (resumed if it exists), in a job process.

    The experiment is read and checked here (errors raise before any process starts);
    the run itself happens in ``python -m napari_drift.logic.job_process`` (see the module
    docstring for why), started by :meth:`lines`. Its stderr is this process's stderr.

    Parameters
    ----------
    kind
        ``"forensics"``, ``"adjustment"`` or ``None`` (detected from the YAML).
    config
        Experiment YAML file (relative paths in it resolve against the file).
    run_dir
        Run folder.
    tracking, tracking_uri
        Passed to ispkit (MLflow); off by default in the plugin.
    """

    def __init__(self, kind: str | None, config: str | os.PathLike[str], run_dir: str | os.PathLike[str], *, tracking: bool = False, tracking_uri: str | None = None) -> None:
        self.config_path = Path(config)
        self.kind = kind or detect_kind(self.config_path)
        self.config = load_config(self.kind, self.config_path)
        self.run_dir = Path(run_dir)
        self.tracking, self.tracking_uri = tracking, tracking_uri
        self.cancelled = False
        self.finished = False
        self.progress = Progress(0.0, 0)
        self.returncode: int | None = None
        self._cancel = threading.Event()
        self._lock = threading.Lock()  # guards the process's stdin (cancel() comes from another thread)
        self._process: subprocess.Popen[str] | None = None
        self._started = False

    def cancel(self) -> None:
        """Ask the run to stop at its next progress point (returns at once)."""
        with self._lock:
            self._cancel.set()
            self._send_cancel()

    @property
    def cancel_requested(self) -> bool:
        return self._cancel.is_set()

    @property
    def pid(self) -> int | None:
        """The job process's id once :meth:`lines` has started it (``None`` before)."""
        return self._process.pid if self._process is not None else None

    def command(self) -> list[str]:
        """The job process's command line (absolute paths: it does not depend on the working directory)."""
        command = [sys.executable, "-X", "faulthandler", "-m", "napari_drift.logic.job_process", self.kind, str(self.config_path.resolve()), str(self.run_dir.resolve())]
        if self.tracking:
            command.append("--tracking")
        if self.tracking_uri is not None:
            command += ["--tracking-uri", self.tracking_uri]
        return command

    def lines(self) -> Iterator[str]:
        """Run the job, yielding its progress lines; returns when it ends, raises :class:`JobError` if it fails.

        A cancelled job ends normally with ``self.cancelled = True``; a job cancelled
        before it starts never starts a process. Closing the generator early cancels the
        job and waits for its process to stop.
        """
        if self._started:
            raise InputError("this job has already been started; make a new JobRunner to run again")
        self._started = True
        if self._cancel.is_set():
            self.cancelled = True
            yield self._cancelled_line()
            return
        with self._lock:
            self._process = subprocess.Popen(
                self.command(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, encoding="utf-8", errors="replace", bufsize=1, env=_child_environment()
            )  # fmt: skip
            if self._cancel.is_set():
                self._send_cancel()
        try:
            yield from self._follow(self._process)
        finally:
            with self._lock:  # end of input: the job process stops at its next progress point, if still running
                self._process.stdin.close()
            self.returncode = self._process.wait()
            self._process.stdout.close()

    def _follow(self, process: subprocess.Popen[str]) -> Iterator[str]:
        """The progress lines of ``process`` until its outcome; sets the outcome's attributes."""
        for raw in process.stdout:
            event = _decode(raw)
            if event is None:  # not the protocol (should not happen: the job process keeps stdout for it)
                yield raw.rstrip("\n")
            elif event["event"] == "line":
                text = str(event.get("text", ""))
                progress = parse_progress(text)
                if progress is not None:
                    self.progress = progress
                yield text
            elif event["event"] == "done":
                self.finished = True
                if self.progress.total:
                    self.progress = Progress(float(self.progress.total), self.progress.total)
                return
            elif event["event"] == "cancelled":
                self.cancelled = True
                yield self._cancelled_line()
                return
            elif event["event"] == "error":
                raise JobError(str(event.get("type", "Error")), str(event.get("message", "")), str(event.get("traceback", "")))
        returncode = process.wait()
        raise JobError("JobProcessDied", f"the {self.kind} job process ended without a result ({exit_status(returncode)}); its error output is above on stderr")

    def _send_cancel(self) -> None:
        """Write ``cancel`` to the running process (the caller holds the lock); a no-op once it has ended."""
        stdin = self._process.stdin if self._process is not None else None
        if stdin is None or stdin.closed:
            return
        try:
            stdin.write(CANCEL + "\n")
            stdin.flush()
        except (BrokenPipeError, ValueError):  # the process has ended: nothing to cancel
            pass

    def _cancelled_line(self) -> str:
        return f"cancelled; {self.run_dir} keeps the finished units: run again into it to resume"

    def run(self) -> list[str]:
        """Run to the end (blocking the calling thread); the list of progress lines."""
        return list(self.lines())


def figures(run_dir: str | os.PathLike[str]) -> list[Path]:
    """The run's figures, ``run_dir/figures/*.png``, sorted."""
    return sorted((Path(run_dir) / "figures").glob("*.png"))


def _lambda_value(folder: str) -> float:
    text = folder.removeprefix("lambda_")
    try:
        return float(text)
    except ValueError:
        return math.nan


def forensics_pipelines(run_dir: str | os.PathLike[str]) -> dict[tuple[str, float], Path]:
    """``{(subset, λ): pipeline.yaml}`` of the finished forensic units (``units/<subset>/lambda_<λ>/``).

    The subset is its folder name (ispkit's slug of the subset).
    """
    out = {}
    for path in sorted((Path(run_dir) / "units").glob("*/lambda_*/pipeline.yaml")):
        out[(path.parent.parent.name, _lambda_value(path.parent.name))] = path
    return dict(sorted(out.items(), key=lambda kv: (kv[0][0], kv[0][1])))


def adjustment_pipelines(run_dir: str | os.PathLike[str], arm: str = "learned") -> dict[tuple[str, int], Path]:
    """``{(intensity, fold): pipeline.yaml}`` of the finished units of ``arm`` (``units/<intensity>/<arm>/fold<k>/``)."""
    out = {}
    for path in sorted((Path(run_dir) / "units").glob(f"*/{arm}/fold*/pipeline.yaml")):
        fold = path.parent.name.removeprefix("fold")
        if fold.isdigit():
            out[(path.parent.parent.parent.name, int(fold))] = path
    return out
