"""Connecting to where Dask work runs: this process, a local cluster, or a scheduler.

One switch for every scale-out entry point (``ispkit bulk``, the ``run`` commands of
the drift studies): ``scheduler="local"`` with one worker means in this process;
``"local"`` with ``workers=N`` starts a ``LocalCluster`` of ``N`` worker processes on
this machine (one task at a time each) for the duration of the call; an address such
as ``"tcp://host:8786"`` connects to a running scheduler (see ``docs/scale.md`` for
starting one and its workers); a :class:`dask.distributed.Client` is used as it is.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

from ..errors import InputError

__all__ = ["connect", "in_process", "need", "cores"]


def need(module: str) -> Any:
    """Import an optional scale-out dependency, or say how to install it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as error:  # pragma: no cover - the test extras install them
        raise ImportError(f"{module} is needed for ispkit.scale; install it with pip install 'ispkit[scale]'") from error


def cores() -> int:
    """CPU cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def in_process(scheduler: Any, workers: int) -> bool:
    """Whether ``scheduler``/``workers`` mean "in this process" (no Dask cluster).

    >>> in_process("local", 1), in_process(None, 1), in_process("local", 2), in_process("tcp://host:8786", 1)
    (True, True, False, False)
    """
    return scheduler in (None, "local") and workers == 1


@contextlib.contextmanager
def connect(scheduler: Any, workers: int = 1) -> Iterator[Any]:
    """A :class:`dask.distributed.Client` for ``scheduler``/``workers``, or ``None`` for "in this process".

    Clusters and clients made here are closed on exit; a client passed in is left open.
    """
    if workers < 1:
        raise InputError(f"workers: expected at least 1, got {workers}")
    if in_process(scheduler, workers):
        yield None
        return
    if scheduler in (None, "local"):
        distributed = need("distributed")
        with (
            distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster,
            distributed.Client(cluster) as client,
        ):
            yield client
        return
    if workers != 1:
        raise InputError(f"workers={workers} applies to scheduler 'local' only; a cluster at {scheduler} has the workers started there")
    if isinstance(scheduler, str) and "://" in scheduler:
        distributed = need("distributed")
        with distributed.Client(scheduler) as client:
            yield client
        return
    if hasattr(scheduler, "submit") and hasattr(scheduler, "gather"):
        yield scheduler
        return
    raise InputError(f"scheduler: expected 'local', an address like tcp://host:8786 or a dask.distributed.Client, got {scheduler!r}")
