"""Thread policy for batched CPU work: no oversubscription, robust to a busy machine.

PyTorch splits every operation over its intra-op threads and waits at a barrier after
each one. When another process takes one of the cores, the thread sharing that core
runs only part of the time and every barrier waits for it: on the 2-core reference
machine ``bi,s,ga`` ran at 87 images/s with two intra-op threads beside one busy
process and at 341 with one (``docs/benchmarks.md``). OpenBLAS, which NumPy uses,
keeps its own worker threads spinning for a while after a matrix product, which slows
whatever runs next on those cores.

The policy here:

* a :class:`~ispkit.pipeline.PipelineModule` on a CPU batch cuts the batch into chunks
  of about :data:`CHUNK_PIXELS` pixels (:func:`chunk_size`), whose temporaries stay in
  the cache. Without autograd it hands them to :func:`workers` threads that each run
  their chunk with *one* intra-op thread (:func:`map_chunks`): a worker that shares its
  core with another process simply takes fewer chunks, and nobody waits at a barrier.
  The caller's own ``torch.get_num_threads()`` is left as it is (the setting is per
  thread). With autograd the chunks run one after the other in the calling thread.
* ispkit's NumPy backend does its small 3×3 colour products without BLAS, so it never
  wakes BLAS threads. :func:`limit_blas_threads` caps them for code outside ispkit
  (the library chain calls ``@`` on ``(H·W, 3)`` images); the command line and the
  benchmarks call it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    import torch
else:
    from ._torch import torch


__all__ = ["CHUNK_PIXELS", "workers", "chunk_size", "map_chunks", "limit_blas_threads"]

#: Pixels per chunk: a 256×256 batch goes four images at a time, whose planes
#: (1 MiB each in float32) stay in the cache across a stage's passes.
CHUNK_PIXELS = 1 << 18

T = TypeVar("T")

_POOL: ThreadPoolExecutor | None = None
_POOL_SIZE = 0
_POOL_LOCK = threading.Lock()


def workers() -> int:
    """How many CPU threads a batch uses: the cores this process may run on (``os.sched_getaffinity``).

    ``ISPKIT_NUM_THREADS`` overrides it (``1``: no worker threads at all).
    """
    override = os.environ.get("ISPKIT_NUM_THREADS")
    if override:
        return max(1, int(override))
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def chunk_size(height: int, width: int) -> int:
    """Images per chunk for images of ``height`` × ``width``: about :data:`CHUNK_PIXELS` pixels, at least one image.

    It depends on the image size only, not on the machine, so that a batch is cut the
    same way (and rounded the same way) whatever the number of cores.

    >>> chunk_size(256, 256), chunk_size(1080, 1920), chunk_size(8, 8)
    (4, 1, 4096)
    """
    return max(1, CHUNK_PIXELS // max(1, height * width))


def _one_thread() -> None:
    torch.set_num_threads(1)


def _pool(size: int) -> ThreadPoolExecutor:
    global _POOL, _POOL_SIZE
    with _POOL_LOCK:
        if _POOL is None or _POOL_SIZE != size:
            if _POOL is not None:
                _POOL.shutdown(wait=False)
            _POOL = ThreadPoolExecutor(size, thread_name_prefix="ispkit", initializer=_one_thread)
            _POOL_SIZE = size
        return _POOL


def map_chunks(fn: Callable[..., T], batch: torch.Tensor, chunk: int, *, parallel: bool = True, offsets: bool = False) -> list[T]:
    """``[fn(c) for c in batch.split(chunk)]``, in order, on worker threads when ``parallel``.

    With ``offsets``, ``fn`` also receives the index of the chunk's first image,
    ``fn(c, start)`` (to write its result into a slice of a shared output, say, so
    that the calling thread runs no parallel operation whose idle threads would spin
    beside the workers).

    ``fn`` must treat the images of a batch independently. With ``parallel``, more than
    one chunk and more than one :func:`workers`, the chunks run on a pool of worker
    threads, each with one intra-op thread, which take the next chunk as they finish;
    otherwise one after the other in the calling thread (as autograd needs). Either
    way each chunk sees the same computation. Exceptions propagate to the caller.
    """
    pieces = batch.split(chunk)
    starts = range(0, batch.shape[0], chunk)
    size = min(workers(), len(pieces)) if parallel else 1
    args = (pieces, starts) if offsets else (pieces,)
    if size < 2:
        return list(map(fn, *args))
    return list(_pool(size).map(fn, *args))


def limit_blas_threads(limit: int = 1) -> bool:
    """Cap the threads of the BLAS libraries loaded in this process (NumPy's OpenBLAS, say) at ``limit``.

    Returns ``True`` when applied, ``False`` when ``threadpoolctl`` is not installed.
    ispkit's own code does not need it (its colour products do not call BLAS); it
    keeps other NumPy code in the same process (the library chain's ``rgb @ M.T``)
    from leaving BLAS threads spinning on the cores torch is about to use.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return False
    threadpool_limits(limit, user_api="blas")
    return True
