"""Background drift experiments (forensics, adjustment) with progress lines and cancellation.

:class:`JobRunner` runs ``ispkit.drift.forensics.run_forensics`` or
``ispkit.drift.adjustment.run_adjustment`` in a helper thread; :meth:`JobRunner.lines`
is a generator of its progress lines (handed over through a queue), meant to be driven
by a napari generator ``thread_worker``. :meth:`JobRunner.cancel` sets an event that the
progress callback checks: the next time ispkit reports progress, the callback raises
:class:`JobCancelled`, which unwinds the run. ispkit writes each finished unit before
reporting it, so a cancelled run folder resumes where it stopped (run the same
experiment into the same folder again). The helper thread is always joined.
"""

from __future__ import annotations

import math
import os
import queue
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from ispkit import InputError

__all__ = [
    "JOB_KINDS",
    "JobCancelled",
    "JobRunner",
    "Progress",
    "detect_kind",
    "figures",
    "forensics_pipelines",
    "adjustment_pipelines",
    "parse_progress",
]

JOB_KINDS = ("forensics", "adjustment")
_UNIT = re.compile(r"^\s*\[(\d+)/(\d+)\]")
_EPOCH = re.compile(r"epoch\s+(\d+)/(\d+)")


class JobCancelled(Exception):
    """Raised from the progress callback of a cancelled job; stops the run at its next progress point."""


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
    path = Path(config)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise InputError(f"{path}: not a readable YAML file ({type(exc).__name__}: {exc})") from None
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


_WARM = False


def warm_up() -> None:
    """Do torch's lazy imports in the calling (main) thread, once per process.

    The first ``torch.optim`` optimiser imports ``torch._dynamo`` (and with it triton);
    doing that import first inside a helper thread while Qt runs crashes the process
    (segmentation fault in triton's extension loading), so the runner does it up front.
    """
    global _WARM
    if not _WARM:
        import torch

        torch.optim.Adam([torch.zeros(1, requires_grad=True)])
        _WARM = True


class JobRunner:
    """One forensics/adjustment run in ``run_dir`` (resumed if it exists).

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
        self._run_function = self._function()  # imported here, in the caller's thread
        warm_up()
        self.run_dir = Path(run_dir)
        self.tracking, self.tracking_uri = tracking, tracking_uri
        self.result: Any = None
        self.cancelled = False
        self.finished = False
        self.progress = Progress(0.0, 0)
        self._cancel = threading.Event()
        self._thread: threading.Thread | None = None

    def cancel(self) -> None:
        """Ask the run to stop at its next progress point (returns at once)."""
        self._cancel.set()

    @property
    def cancel_requested(self) -> bool:
        return self._cancel.is_set()

    def _function(self) -> Any:
        if self.kind == "forensics":
            from ispkit.drift.forensics import run_forensics

            return run_forensics
        from ispkit.drift.adjustment import run_adjustment

        return run_adjustment

    def lines(self) -> Iterator[str]:
        """Run the job, yielding its progress lines; returns when it ends, raises its error.

        A cancelled job ends normally with ``self.cancelled = True``. Closing the
        generator early cancels the job and waits for its thread.
        """
        if self._thread is not None:
            raise InputError("this job has already been started; make a new JobRunner to run again")
        inbox: queue.Queue[tuple[str, Any]] = queue.Queue()
        function = self._run_function

        def report(line: str) -> None:
            if self._cancel.is_set():
                raise JobCancelled("cancelled")
            inbox.put(("line", str(line)))

        def target() -> None:
            try:
                result = function(self.config, self.run_dir, tracking=self.tracking, tracking_uri=self.tracking_uri, progress=report)
                inbox.put(("done", result))
            except JobCancelled:
                inbox.put(("cancelled", None))
            except BaseException as exc:  # noqa: BLE001 - handed to the consumer
                inbox.put(("error", exc))

        self._thread = threading.Thread(target=target, name=f"ispkit-{self.kind}", daemon=True)
        self._thread.start()
        try:
            while True:
                what, value = inbox.get()
                if what == "line":
                    progress = parse_progress(value)
                    if progress is not None:
                        self.progress = progress
                    yield value
                elif what == "done":
                    self.result, self.finished = value, True
                    if self.progress.total:
                        self.progress = Progress(float(self.progress.total), self.progress.total)
                    return
                elif what == "cancelled":
                    self.cancelled = True
                    yield f"cancelled; {self.run_dir} keeps the finished units: run again into it to resume"
                    return
                else:
                    raise value
        finally:
            self._cancel.set()  # no-op after a normal end; stops the run if the consumer went away
            self._thread.join()

    def run(self) -> list[str]:
        """Run to the end in the calling thread; the list of progress lines."""
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
