"""The units of a study: what each drift control is made of, and the clock that times them.

Every study (drift synthesis, forensics, adjustment) is a list of independent **units**
(:class:`Unit`) -- train pipeline × fold; subset × λ; intensity × arm × fold -- each
seeded on its own (:func:`unit_seed`) and writing its outputs into its own folder of the
run directory, its result file last and atomically. A :class:`Study` says which units
there are, how to run one and which metrics to track; :mod:`ispkit.drift.execution` runs
them, here or as Dask tasks (:mod:`ispkit.drift.grid`).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .progress_display import DEFAULT_KIND, EtaEstimator, ProgressDisplay, duration

__all__ = ["Progress", "Metrics", "Unit", "Study", "Clock", "total_work", "slug", "unit_seed", "epoch_metrics", "duration"]

Progress = Callable[[str], None]
Metrics = list[tuple[dict[str, float], "int | None"]]


@dataclass(frozen=True)
class Unit:
    """One independent piece of a study.

    ``name`` names it in progress lines and MLflow (e.g. ``"bi,s,me/fold0"``); ``key``
    is the study's own index of it; ``folder`` receives its outputs; ``params`` are
    tracked with it; ``work`` is its share of the progress estimate: steps of the default kind
    (epochs, or 1), or a mapping kind → steps (``{"work": epochs, "evaluation": 1}``);
    ``number`` is its place among the study's counted units, ``(i, n)``, or ``None`` for
    a preparatory unit (the task model a forensic sweep attacks).
    """

    name: str
    key: tuple
    folder: Path
    params: dict[str, Any] = field(default_factory=dict)
    work: int | Mapping[str, int] = 1
    number: tuple[int, int] | None = None

    @property
    def tag(self) -> str:
        """``"[i/n]"``, the prefix of its progress lines (empty for a preparatory unit)."""
        return f"[{self.number[0]}/{self.number[1]}]" if self.number else ""


class Study:
    """What a study provides to :func:`~ispkit.drift.execution.execute` (subclasses in synthesis, forensics, adjustment).

    A study is opened from its config and run folder (:meth:`open`): by the process
    that drives it (``create=True``: the run folder is made or checked, the folds
    written) and by each Dask worker that runs units of it (``create=False``: the
    folder must already be there, on a file system the worker sees).
    """

    config: Any
    run_dir: Path

    @classmethod
    def open(cls, config: Any, run_dir: str | os.PathLike[str], *, progress: Progress | None = None, create: bool = True) -> Study:
        raise NotImplementedError

    @property
    def device_name(self) -> str:
        """The device the experiment asks for (``"auto"``, ``"cpu"``, ``"cuda[:N]"``)."""
        return self.config.device

    def done(self, unit: Unit) -> dict[str, Any] | None:
        """The result of a finished unit (read back from ``result.json``), else ``None``."""
        file = unit.folder / "result.json"
        return json.loads(file.read_text(encoding="utf-8")) if file.exists() else None

    def run(self, unit: Unit, clock: Clock) -> dict[str, Any]:
        """Compute ``unit``, write its outputs (the result file last) and return its result."""
        raise NotImplementedError

    def metrics(self, unit: Unit, result: dict[str, Any]) -> Metrics:
        """What to track of a finished unit: ``[(metrics, step or None), ...]``."""
        return []


class Clock:
    """Progress of a study: a line per step with elapsed time and an estimate of the time left.

    Work is counted in steps of kinds (:data:`~ispkit.drift.progress_display.DEFAULT_KIND`:
    epochs, or whole units; ``"evaluation"``: a unit's tests after training; ...): ``total``
    is their number, or a mapping kind → number (:func:`total_work` of the units). Call
    :meth:`step` after each, :meth:`skip` for steps done earlier (resume) and :meth:`say`
    for a message. The time left is estimated per kind from its own finished steps
    (:class:`~ispkit.drift.progress_display.EtaEstimator`), so alternating fast and slow
    phases do not swing it.

    ``progress`` receives ``"<message>  elapsed 1m05s  left ~4m10s"`` for a step and the
    message itself from :meth:`say`; a :class:`~ispkit.drift.progress_display.ProgressDisplay`
    gets each step through its ``update`` method instead (a bar on a terminal). Thread-safe,
    so that progress arriving from Dask workers and from the driving thread can share one clock.
    """

    def __init__(self, progress: Progress | None, total: int | Mapping[str, int], *, now: Callable[[], float] | None = None) -> None:
        self.progress = progress
        self.eta = EtaEstimator(total if isinstance(total, Mapping) else {DEFAULT_KIND: total}, now=now)
        self.timed = 0
        self._lock = threading.Lock()

    @property
    def total(self) -> int:
        """Steps of every kind."""
        return self.eta.total_steps

    @property
    def done(self) -> int:
        """Steps done (timed or skipped)."""
        return self.eta.done_steps

    def step(self, message: str, kind: str = DEFAULT_KIND) -> None:
        """One step of ``kind`` done: say ``message`` with elapsed time and the time left."""
        with self._lock:
            self.eta.record(kind)
            self.timed += 1
            done, total, elapsed, left = self.done, self.total, self.eta.elapsed(), self.eta.left()
        if isinstance(self.progress, ProgressDisplay):
            self.progress.update(done, total, elapsed, left, message)
        else:
            self.say(f"{message}  elapsed {duration(elapsed)}  left ~{duration(left or 0.0)}")

    def skip(self, steps: int | Mapping[str, int], kind: str = DEFAULT_KIND) -> None:
        """``steps`` of ``kind`` (or a mapping kind → steps, a :attr:`Unit.work`) were done earlier
        (resume): they count as done but not as timed."""
        with self._lock:
            for name, count in steps.items() if isinstance(steps, Mapping) else [(kind, steps)]:
                self.eta.skip(name, count)

    def say(self, message: str) -> None:
        """Pass ``message`` on to ``progress``."""
        if self.progress is not None:
            self.progress(message)


def total_work(units: Iterable[Unit]) -> dict[str, int]:
    """The steps of each kind in ``units`` (their :attr:`Unit.work` added up), as a :class:`Clock` counts them.

    >>> total_work([Unit("a", (0,), Path("a"), work=3), Unit("b", (1,), Path("b"), work={"work": 3, "evaluation": 1})])
    {'work': 6, 'evaluation': 1}
    """
    totals: dict[str, int] = {}
    for unit in units:
        for kind, steps in unit.work.items() if isinstance(unit.work, Mapping) else [(DEFAULT_KIND, unit.work)]:
            totals[kind] = totals.get(kind, 0) + steps
    return totals


def slug(label: str) -> str:
    """A unit folder name for ``label``: letters, digits and ``,._-`` kept, anything else ``_``.

    >>> slug("bi,s,me"), slug("black_level/fold 0")
    ('bi,s,me', 'black_level_fold_0')
    """
    return "".join(c if c.isalnum() or c in ",._-" else "_" for c in label)


def unit_seed(seed: int, *parts: int) -> int:
    """The seed of one unit (or one random stream of it): the study's ``seed`` and the unit's indices
    mixed by :class:`numpy.random.SeedSequence`, so units are independent of each other and of their order.

    >>> unit_seed(0, 1, 2) == unit_seed(0, 1, 2) != unit_seed(0, 2, 1)
    True
    """
    return int(np.random.SeedSequence([seed, *parts]).generate_state(1)[0])


def epoch_metrics(history: dict[str, list]) -> Metrics:
    """A training history as tracked metrics, one group per epoch.

    >>> epoch_metrics({"loss": [0.9, 0.5], "validation": [{"accuracy": 0.6}, {"accuracy": 0.7}]})
    [({'loss': 0.9, 'val_accuracy': 0.6}, 1), ({'loss': 0.5, 'val_accuracy': 0.7}, 2)]
    >>> epoch_metrics({"loss": [0.9], "validation": []})
    [({'loss': 0.9}, 1)]
    """
    validation = history.get("validation") or [{}] * len(history["loss"])
    return [
        ({"loss": loss, **{f"val_{k}": v for k, v in scores.items()}}, e) for e, (loss, scores) in enumerate(zip(history["loss"], validation, strict=True), 1)
    ]
