"""Running a study's units: one after the other in this process, or as Dask tasks.

Every study (drift synthesis, forensics, adjustment) is a list of independent **units**
-- train pipeline × fold; subset × λ; intensity × arm × fold -- each seeded on its
own and writing its outputs into its own folder of the run directory, its result file
last and atomically. The unit is therefore the grain of

- **resume**: a unit whose result exists is read back, not recomputed (and an
  unfinished one continues from its last saved epoch);
- **scale-out**: with a Dask scheduler each unfinished unit is one task
  (:mod:`ispkit.drift.grid`), and since a unit's outcome depends only on its seed and
  data, the order and place it runs in do not change the results;
- **tracking**: each finished unit becomes one nested MLflow run, logged by the
  process that drives the study from the unit's result (its per-epoch or per-step
  curves), so workers never write to the tracking store.

A study class (:class:`~ispkit.drift.units.Study`) says which units there are, how to run
one, and which metrics to track; :func:`execute` does the rest. The units, the study and the
clock are defined in :mod:`ispkit.drift.units` (and importable from here as before); the
modules read in one direction: units ← grid ← execution.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

from ..scale.cluster import in_process
from .grid import run_units
from .tracking import Tracker
from .units import Clock, Study, Unit, duration, epoch_metrics, slug, unit_seed

__all__ = ["Unit", "Study", "Clock", "execute", "StudyInterrupted", "torch_threads", "slug", "unit_seed", "epoch_metrics", "duration"]


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Run the body with ``threads`` torch threads (unchanged when ``None``), then restore."""
    import torch

    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def execute(study: Study, units: Sequence[Unit], *, clock: Clock, tracker: Tracker, scheduler: Any = None, workers: int = 1) -> dict[tuple, dict[str, Any]]:
    """Run the unfinished ``units`` of ``study`` and return every unit's result by key.

    Finished units are read back; each finished unit is tracked (one nested run) as it
    completes, or when it is read back if it was not tracked yet (the tracker logs a unit
    once). If the run stops with an error the study run is marked ``KILLED`` and the
    error propagates; an interrupt (Ctrl-C) does the same and raises
    :class:`StudyInterrupted`. What finished is kept.

    Parameters
    ----------
    scheduler, workers
        ``"local"`` (or ``None``) with one worker: in this process, one unit after the
        other. ``"local"`` with ``workers > 1``: a Dask ``LocalCluster`` of that many
        worker processes on this machine. A scheduler address (``"tcp://host:8786"``)
        or a :class:`dask.distributed.Client`: that cluster (see :mod:`ispkit.drift.grid`).
    """
    results: dict[tuple, dict[str, Any]] = {}

    def finished(unit: Unit, result: dict[str, Any]) -> None:
        results[unit.key] = result
        tracker.log_unit(unit.name, unit.params, study.metrics(unit, result))  # once: a unit logged before is skipped

    try:
        pending = []
        for unit in units:
            result = study.done(unit)
            if result is None:
                pending.append(unit)
                continue
            finished(unit, result)  # logs it if a kill came between its result file and its logging
            clock.skip(unit.work)
            clock.say(f"{unit.tag} {unit.name}: done earlier, read back".lstrip())
        if in_process(scheduler, workers):
            with torch_threads(getattr(study.config, "threads", None)):
                for unit in pending:
                    finished(unit, study.run(unit, clock))
        elif pending:
            run_units(study, pending, finished, clock=clock, scheduler=scheduler, workers=workers)
    except KeyboardInterrupt:
        _mark_killed(tracker)
        raise StudyInterrupted(len(results), len(units)) from None
    except BaseException:
        _mark_killed(tracker)
        raise
    return results


def _mark_killed(tracker: Tracker) -> None:
    """Mark the study run ``KILLED``, best effort: when the store cannot be written either (the
    disk is full, the server is down) the error that stopped the study is the one to report."""
    with contextlib.suppress(Exception):
        tracker.end_study("KILLED")


class StudyInterrupted(KeyboardInterrupt):
    """An interrupt (Ctrl-C) stopped a study; ``finished`` of ``total`` units are saved in the run folder."""

    def __init__(self, finished: int, total: int) -> None:
        super().__init__(f"interrupted with {finished} of {total} units finished")
        self.finished, self.total = finished, total
