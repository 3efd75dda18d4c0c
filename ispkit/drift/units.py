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
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["Progress", "Metrics", "Unit", "Study", "Clock", "slug", "unit_seed", "epoch_metrics", "duration"]

Progress = Callable[[str], None]
Metrics = list[tuple[dict[str, float], "int | None"]]


@dataclass(frozen=True)
class Unit:
    """One independent piece of a study.

    ``name`` names it in progress lines and MLflow (e.g. ``"bi,s,me/fold0"``); ``key``
    is the study's own index of it; ``folder`` receives its outputs; ``params`` are
    tracked with it; ``work`` is its share of the progress estimate (epochs, or 1);
    ``number`` is its place among the study's counted units, ``(i, n)``, or ``None`` for
    a preparatory unit (the task model a forensic sweep attacks).
    """

    name: str
    key: tuple
    folder: Path
    params: dict[str, Any] = field(default_factory=dict)
    work: int = 1
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
    """Progress lines with elapsed time and an estimate of the time left.

    Work is counted in steps (epochs, or whole units): :meth:`step` after each,
    :meth:`skip` for steps done earlier. Thread-safe, so that progress arriving from
    Dask workers and from the driving thread can share one clock.
    """

    def __init__(self, progress: Progress | None, total: int) -> None:
        self.progress, self.total, self.done = progress, total, 0
        self.start = time.perf_counter()
        self.timed = 0
        self._lock = threading.Lock()

    def step(self, message: str) -> None:
        """One step done: say ``message`` with elapsed time and the time left."""
        with self._lock:
            self.done += 1
            self.timed += 1
            elapsed = time.perf_counter() - self.start
            left = elapsed / self.timed * max(self.total - self.done, 0)
        self.say(f"{message}  elapsed {duration(elapsed)}  left ~{duration(left)}")

    def skip(self, steps: int) -> None:
        """``steps`` were done earlier (resume): they count as done but not as timed."""
        with self._lock:
            self.done += steps

    def say(self, message: str) -> None:
        if self.progress is not None:
            self.progress(message)


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


def duration(seconds: float) -> str:
    """``"12m05s"``.

    >>> duration(725.4)
    '12m05s'
    """
    minutes, seconds = divmod(int(seconds), 60)
    return f"{minutes}m{seconds:02d}s"
