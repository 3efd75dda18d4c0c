"""The units of a drift study as Dask tasks: experiment grids on a cluster.

:func:`ispkit.drift.execution.execute` hands the unfinished units of a study (train
pipeline × fold, subset × λ, intensity × arm × fold) to :func:`run_units` when it is
given a scheduler. Each unit becomes one task which, on a worker, opens the study (once
per worker process: the dataset is read and views are cached there), runs the unit in
the run folder and returns the unit's result. The process that drives the study tracks
each result as it arrives (MLflow) and, once all are in, gathers them into the same
results object, files and report as a run in one process.

**Requirements.** The run folder and the dataset on a file system every worker sees
under the same path (one machine, or a shared file system such as NFS); ispkit and any
pipeline plugins installed on every worker.

**GPUs.** When some workers declare a ``GPU`` resource (``dask worker ...
--resources GPU=1``) and the study's device is not ``cpu``, every unit asks for one,
so units run on GPU workers only, one at a time per GPU.

**Threads and memory.** Torch on a worker uses the experiment's ``threads``, or else the
host's cores divided by the worker processes on that host (Dask's nanny starts workers
with one OpenMP thread). The same seed gives the same results bit for bit when the
device and the number of torch threads are the same: a different thread count sums in
another order, which can flip a borderline prediction, so set ``threads`` in the
experiment to make the results independent of where its units run. A worker keeps freed
memory for reuse as the ``ispkit`` command does (:func:`ispkit.memory.keep_freed_memory`;
the nanny asks glibc to trim aggressively, which made training units twice as slow).

**Faults.** A unit writes its outputs atomically, its result file last, and saves its
training state after every epoch. If a worker dies, the scheduler runs its unit again on
another worker, which continues from the last saved epoch; a task run again whose unit
had finished reads the result back instead of recomputing it, and a rerun of the study
picks up whatever a crashed driver left.

**Progress.** Workers send their progress lines to the driving process as Dask events,
so the usual per-epoch lines (with time left) appear there.
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..scale.cluster import connect, cores, need
from .progress_display import DEFAULT_KIND
from .units import Clock, Study, Unit

__all__ = ["run_units", "gpu_resources"]

TOPIC = "ispkit-progress"
"""Prefix of the Dask event topic that carries a study's progress lines."""

_OPEN: dict[tuple, Study] = {}
_ONE_AT_A_TIME = threading.Lock()  # a worker with several threads still runs one unit at a time: units use torch's threads


def gpu_resources(device: str, workers: Iterable[dict[str, Any]]) -> dict[str, float] | None:
    """``{"GPU": 1}`` when some of ``workers`` (the scheduler's worker info) declare GPUs and ``device`` may use one, else ``None``.

    >>> gpu_resources("auto", [{"resources": {}}, {"resources": {"GPU": 1}}]), gpu_resources("cpu", [{"resources": {"GPU": 1}}])
    ({'GPU': 1}, None)
    """
    if device == "cpu":
        return None
    return {"GPU": 1} if any(w.get("resources", {}).get("GPU") for w in workers) else None


def run_units(study: Study, units: Sequence[Unit], finished: Callable[[Unit, dict[str, Any]], None], *, clock: Clock, scheduler: Any, workers: int) -> None:
    """Run ``units`` of ``study`` as tasks on ``scheduler`` (see :func:`ispkit.scale.cluster.connect`);
    call ``finished(unit, result)`` in this process as each one completes."""
    distributed = need("distributed")
    run_dir = Path(study.run_dir).absolute()
    topic = f"{TOPIC}:{run_dir}"
    with connect(scheduler, workers) as client:
        info = list(client.scheduler_info(n_workers=-1)["workers"].values())
        per_host = Counter(worker["host"] for worker in info)
        resources = gpu_resources(study.device_name, info)
        client.subscribe_topic(topic, lambda event: _relay(clock, event[1]))
        reference = (type(study), study.config, run_dir)
        token = uuid.uuid4().hex[:8]
        futures = {
            client.submit(_run_unit, reference, unit, topic, per_host, key=f"ispkit-unit-{token}-{unit.name}", pure=False, resources=resources): unit
            for unit in units
        }
        try:
            for future in distributed.as_completed(futures):
                unit, result = futures.pop(future), future.result()
                future.release()  # else the scheduler would recompute it, were its worker lost
                finished(unit, result)
        except BaseException:
            client.cancel(list(futures))
            raise
        finally:
            client.unsubscribe_topic(topic)


def _relay(clock: Clock, message: list) -> None:
    """A worker's progress event → the driving process's clock."""
    method, *args = message
    getattr(clock, method)(*args)


class _EventClock(Clock):
    """A worker's clock: each call is sent to the driving process as a Dask event."""

    def __init__(self, worker: Any, topic: str) -> None:
        super().__init__(None, 0)
        self.worker, self.topic = worker, topic

    def step(self, message: str, kind: str = DEFAULT_KIND) -> None:
        self.worker.log_event(self.topic, ["step", message, kind])

    def skip(self, steps: int | Mapping[str, int], kind: str = DEFAULT_KIND) -> None:
        self.worker.log_event(self.topic, ["skip", steps, kind])

    def say(self, message: str) -> None:
        self.worker.log_event(self.topic, ["say", message])


def _run_unit(reference: tuple[type[Study], Any, Path], unit: Unit, topic: str, per_host: dict[str, int]) -> dict[str, Any]:
    """The task: open the study on this worker (once), run ``unit``, return its result."""
    import torch

    from ..memory import keep_freed_memory

    distributed = need("distributed")
    worker = distributed.get_worker()
    host = distributed.comm.get_address_host(worker.address)
    kind, config, run_dir = reference
    key = (kind.__qualname__, str(run_dir), config.text)
    with _ONE_AT_A_TIME:
        torch.set_num_threads(getattr(config, "threads", None) or max(1, cores() // per_host.get(host, 1)))
        keep_freed_memory()
        if key not in _OPEN:
            _OPEN.clear()  # one study per worker process at a time
            _OPEN[key] = kind.open(config, run_dir, create=False)
        study = _OPEN[key]
        done = study.done(unit)  # a task run again after its worker was lost may find its unit finished
        return done if done is not None else study.run(unit, _EventClock(worker, topic))
