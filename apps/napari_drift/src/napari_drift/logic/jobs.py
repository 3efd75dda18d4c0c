"""Background drift experiments (forensics, adjustment) with progress lines and cancellation.

:class:`JobRunner` runs ``ispkit.drift.forensics.run_forensics`` or
``ispkit.drift.adjustment.run_adjustment`` in a separate Python process
(:mod:`napari_drift.logic.job_process`), in that process or on a Dask scheduler
(``scheduler=``/``workers=``, as ``ispkit forensics run --scheduler``). :meth:`JobRunner.lines`
is a generator of its progress lines (read from the process's stdout), meant to be driven
by a napari generator ``thread_worker``; :attr:`JobRunner.progress` (:class:`JobProgress`)
counts the finished units and the running unit's epochs and optimisation steps.

:meth:`JobRunner.cancel` interrupts the process (``SIGINT``, as Ctrl-C in a terminal): the
run stops within the running optimisation step or epoch, ispkit marks the study
``KILLED`` and keeps what finished (each finished unit, and the last finished epoch of a
training), so the same experiment run into the same folder again resumes. A cancel that
arrives once every unit has finished lets the job write its report and end as finished.
The process is always waited for.

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
from pathlib import Path
from typing import Any

from ispkit import InputError

__all__ = [
    "CANCEL",
    "JOB_KINDS",
    "JobError",
    "JobProgress",
    "JobRunner",
    "detect_kind",
    "figures",
    "forensics_pipelines",
    "adjustment_pipelines",
    "check_scheduler",
    "run_function",
]

JOB_KINDS = ("forensics", "adjustment")
CANCEL = "cancel"  # the line that asks the job process to stop
_UNIT = re.compile(r"^\s*\[(\d+)/(\d+)\]")
_EPOCH = re.compile(r"epoch\s+(\d+)/(\d+)")
_MODEL_EPOCH = re.compile(r"^\s*model epoch\s+(\d+)/(\d+)")
_TRAINING = re.compile(r"^\s*training \S+ on ")  # a forensic sweep starts training its task model
_RUNNING_MAX = 0.99  # a running unit (or epoch) never shows as finished before its line says so


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


class JobProgress:
    """How far a job is: finished units, and the running unit's epochs and optimisation steps.

    Fed with the job's progress lines (:meth:`line`) and the optimisation steps the job
    process counts (:meth:`steps`). ispkit tags each unit's lines ``[k/n]``: a forensic unit
    reports once, when it has finished; an adjustment unit after each epoch
    (``epoch e/E``), and ``done earlier, read back`` marks a unit finished in an earlier run.
    A forensic sweep first trains its task model (``training <model> on …``, then
    ``model epoch e/E`` lines), which counts as one more unit of work (done from the start
    when the model exists or comes as a checkpoint).

    :attr:`fraction` is the share of the work done, in [0, 1], moving within a unit: by
    epochs, and between two lines by optimisation steps (a forensic unit's ``steps`` are
    known from the experiment; an epoch's from the epochs before it). It only grows.

    Parameters
    ----------
    kind
        ``"forensics"`` or ``"adjustment"``.
    units
        The experiment's counted units (``n`` of the ``[k/n]`` tags); 0 if unknown (the tags then tell).
    epochs
        Epochs per adjustment unit, or of a forensic sweep's task model.
    steps
        Optimisation steps per forensic unit (0 for adjustment).
    """

    def __init__(self, kind: str, *, units: int = 0, epochs: int = 0, steps: int = 0) -> None:
        self.kind, self.total, self.epochs, self.unit_steps = kind, units, epochs, steps
        self.finished: set[int] = set()
        self.model_done = True  # False while a forensic sweep trains its task model
        self.model_epoch = 0
        self.epoch = 0  # of the running adjustment unit
        self.step_count = 0  # optimisation steps since the last line
        self.steps_per_epoch = 0  # learned from the last finished epoch
        self._fraction = 0.0

    @classmethod
    def for_config(cls, kind: str, config: Any) -> JobProgress:
        """The progress of ``config``'s run (a ``ForensicsConfig`` or ``AdjustmentConfig``)."""
        if kind == "forensics":
            return cls(kind, units=len(config.subsets) * len(config.lambdas), epochs=config.training.epochs, steps=config.steps)
        return cls(kind, units=len(config.intensities) * len(config.arms) * config.folds, epochs=config.training.epochs)

    # -- feeding -----------------------------------------------------------------------

    def line(self, text: str) -> None:
        """Account for one progress line."""
        steps, self.step_count = self.step_count, 0
        if self.kind == "forensics" and _TRAINING.match(text):
            self.model_done, self.model_epoch = False, 0
        elif (model := _MODEL_EPOCH.search(text)) and not _UNIT.match(text):
            self.model_epoch, self.epochs = int(model.group(1)), int(model.group(2))
            self.steps_per_epoch = steps or self.steps_per_epoch
            self.model_done = self.model_epoch >= self.epochs
        elif unit := _UNIT.match(text):
            k, n = int(unit.group(1)), int(unit.group(2))
            self.total, self.model_done = n, True
            epoch = _EPOCH.search(text)
            if epoch and "done earlier" not in text:
                self.epoch, self.epochs = int(epoch.group(1)), int(epoch.group(2))
                self.steps_per_epoch = steps or self.steps_per_epoch
                if self.epoch >= self.epochs:
                    self.finished.add(k)
                    self.epoch = 0
            else:
                self.finished.add(k)
                self.epoch = 0
        self._update()

    def steps(self, count: int) -> None:
        """``count`` more optimisation steps since the last line."""
        self.step_count += max(int(count), 0)
        self._update()

    # -- reading -----------------------------------------------------------------------

    @property
    def all_finished(self) -> bool:
        """Every counted unit has finished (what remains is the report)."""
        return bool(self.total) and len(self.finished) >= self.total

    @property
    def fraction(self) -> float:
        """Share of the work done, in [0, 1]; never decreases."""
        return self._fraction

    def describe(self) -> str:
        """One line for the progress bar: ``"2 of 4 units · unit 3: step 37/60"``."""
        if not self.model_done:
            return f"task model: epoch {self.model_epoch}/{self.epochs}" + self._step_text(self.steps_per_epoch)
        head = f"{len(self.finished)} of {self.total or '?'} units"
        if self.all_finished:
            return head
        if self.kind == "forensics":
            return head + (f" · step {self.step_count}/{self.unit_steps}" if self.step_count else "")
        return head + (f" · epoch {self.epoch}/{self.epochs}" if self.epochs else "") + self._step_text(self.steps_per_epoch)

    def _step_text(self, per_epoch: int) -> str:
        if not self.step_count:
            return ""
        return f" · step {self.step_count}" + (f"/{per_epoch}" if per_epoch else "")

    def _update(self) -> None:
        done, total = self._work()
        if total:
            self._fraction = max(self._fraction, min(done / total, 1.0))

    def _work(self) -> tuple[float, int]:
        """(work done, total work) in units, the task model counting as one for forensics."""
        if self.kind == "forensics":
            total = self.total + 1
            if not self.model_done:
                return self._epoch_share(self.model_epoch, self.epochs), total
            running = min(self.step_count / self.unit_steps, _RUNNING_MAX) if self.unit_steps and not self.all_finished else 0.0
            return 1 + len(self.finished) + running, total
        running = 0.0 if self.all_finished or not self.epochs else self._epoch_share(self.epoch, self.epochs)
        return len(self.finished) + running, self.total

    def _epoch_share(self, epoch: int, epochs: int) -> float:
        """Epochs done plus the running epoch's share by steps (once an epoch's step count is known)."""
        if not epochs:
            return 0.0
        within = min(self.step_count / self.steps_per_epoch, _RUNNING_MAX) if self.steps_per_epoch else 0.0
        return min((epoch + within) / epochs, 1.0)


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


def check_scheduler(scheduler: str | None, workers: int) -> tuple[str, int]:
    """``(scheduler, workers)`` as ispkit takes them; ``InputError`` naming what is wrong.

    ``scheduler``: ``"local"`` (also for ``None`` or blank) or a Dask scheduler address
    ``"<protocol>://host:port"`` (e.g. ``"tcp://10.0.0.5:8786"``); ``workers``: a whole
    number >= 1, and 1 with an address (that cluster's workers were started there).
    """
    text = (scheduler or "").strip() or "local"
    if text != "local" and not re.fullmatch(r"[a-z][a-z0-9+.-]*://\S+", text):
        raise InputError(f"scheduler: expected 'local' or a Dask scheduler address such as tcp://host:8786, got {text!r}")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise InputError(f"workers: expected a whole number of at least 1, got {workers!r}")
    if text != "local" and workers != 1:
        raise InputError(f"workers={workers} applies to the local scheduler only; the cluster at {text} has its own workers")
    return text, workers


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
    scheduler, workers
        Where the units run, as ispkit's ``--scheduler``/``--workers``: ``"local"`` with one
        worker in the job process, one after the other; ``"local"`` with ``workers > 1`` a
        Dask ``LocalCluster`` of that many processes; a scheduler address
        (``"tcp://host:8786"``) that cluster (its workers must see the run folder).
    """

    def __init__(
        self,
        kind: str | None,
        config: str | os.PathLike[str],
        run_dir: str | os.PathLike[str],
        *,
        tracking: bool = False,
        tracking_uri: str | None = None,
        scheduler: str = "local",
        workers: int = 1,
    ) -> None:
        self.config_path = Path(config)
        self.kind = kind or detect_kind(self.config_path)
        self.config = load_config(self.kind, self.config_path)
        self.run_dir = Path(run_dir)
        self.tracking, self.tracking_uri = tracking, tracking_uri
        self.scheduler, self.workers = check_scheduler(scheduler, workers)
        self.cancelled = False
        self.finished = False
        self.progress = JobProgress.for_config(self.kind, self.config)
        self.returncode: int | None = None
        self._cancel = threading.Event()
        self._lock = threading.Lock()  # guards the process's stdin (cancel() comes from another thread)
        self._process: subprocess.Popen[str] | None = None
        self._started = False
        self._interrupted = False

    def cancel(self) -> None:
        """Interrupt the run (returns at once): it stops within the running optimisation step or epoch.

        Finished units (and a training's last finished epoch) stay in the run folder; a job
        whose units have all finished writes its report and ends as finished.
        """
        with self._lock:
            self._cancel.set()
            self._interrupt()

    @property
    def cancel_requested(self) -> bool:
        return self._cancel.is_set()

    @property
    def pid(self) -> int | None:
        """The job process's id once :meth:`lines` has started it (``None`` before)."""
        return self._process.pid if self._process is not None else None

    def command(self) -> list[str]:
        """The job process's command line (absolute paths: it does not depend on the working directory)."""
        command = [
            sys.executable,
            "-X",
            "faulthandler",
            "-m",
            "napari_drift.logic.job_process",
            self.kind,
            str(self.config_path.resolve()),
            str(self.run_dir.resolve()),
        ]
        command += ["--scheduler", self.scheduler, "--workers", str(self.workers)]
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
                self._interrupt()
        try:
            yield from self._follow(self._process)
        finally:
            with self._lock:  # end of input: a job process still running stops (interrupted)
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
                self.progress.line(text)
                yield text
            elif event["event"] == "steps":
                self.progress.steps(int(event.get("count", 0)))
            elif event["event"] == "done":
                self.finished = True
                return
            elif event["event"] == "cancelled":
                self.cancelled = True
                yield self._cancelled_line(str(event.get("message", "")))
                return
            elif event["event"] == "error":
                raise JobError(str(event.get("type", "Error")), str(event.get("message", "")), str(event.get("traceback", "")))
        returncode = process.wait()
        if self._interrupted:  # interrupted before it could report (e.g. while starting up)
            self.cancelled = True
            yield self._cancelled_line(f"stopped while starting ({exit_status(returncode)})")
            return
        raise JobError("JobProcessDied", f"the {self.kind} job process ended without a result ({exit_status(returncode)}); its error output is above on stderr")

    def _interrupt(self) -> None:
        """Interrupt the running process (the caller holds the lock); a no-op before it starts or once it has ended.

        ``SIGINT`` where there are signals (the run sees a ``KeyboardInterrupt``, as after
        Ctrl-C, even inside a blocking wait), else the line :data:`CANCEL` on its stdin.
        """
        process = self._process
        if process is None or self._interrupted or process.poll() is not None:
            return
        self._interrupted = True
        if os.name == "posix":
            process.send_signal(signal.SIGINT)
            return
        try:
            process.stdin.write(CANCEL + "\n")
            process.stdin.flush()
        except (BrokenPipeError, ValueError, OSError):  # the process has ended: nothing to cancel
            pass

    def _cancelled_line(self, detail: str = "") -> str:
        detail = f" ({detail})" if detail else ""
        return f"cancelled{detail}; {self.run_dir} keeps the finished units: run again into it to resume"

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
