"""Memory for fast batched processing: keep freed memory, build constant tensors once.

**Freed memory.** PyTorch allocates CPU tensors with ``malloc``. glibc hands blocks above its mmap
threshold (at most 32 MiB by default, and tensors of a 256×256 batch are about that
size) back to the operating system when they are freed, so the next allocation of
the same size page-faults every page in again and the kernel zero-fills it. A
pipeline that makes a few dozen full-batch temporaries per call then spends about half
of its time in the kernel: on the 2-core reference machine ``ma,s,ga`` on 32 images
took 101 ms with glibc's defaults and 43 ms with freed memory kept (system time 50 %
→ 1 %), see ``docs/benchmarks.md``.

:func:`keep_freed_memory` raises the mmap and trim thresholds so freed blocks are
reused. The price is that the process keeps its peak heap instead of returning it to
the system. It is an explicit opt-in for library users; the ``ispkit`` command line
and the benchmarks turn it on. The same effect without code:
``MALLOC_MMAP_THRESHOLD_=1073741824 MALLOC_TRIM_THRESHOLD_=4294967296``.

**Constant tensors.** A torch backend that rebuilt its constants (CFA masks, filter
kernels, border indices) on every call would allocate, fill and, on a GPU, copy them
from the host each time. :func:`cached` keeps them, keyed by everything they depend on
(shape, dtype, device), in a small least-recently-used table. While a module is being
traced (``torch.compile``, ``torch.export``) the table is neither read nor written: the
constants are built inside the traced program, whose tensors must not leak into eager
calls, nor eager tensors into it. Cached tensors are shared: never modify one in place.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections import OrderedDict
from collections.abc import Callable, Hashable
from threading import Lock
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    import torch
else:
    from ._torch import torch


__all__ = ["keep_freed_memory", "cached", "clear_cache", "MAX_CACHED"]

_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3  # glibc's mallopt parameters


def keep_freed_memory(mmap_threshold: int = 1 << 30) -> bool:
    """Ask glibc to keep freed blocks below ``mmap_threshold`` bytes in the heap.

    Returns ``True`` when applied, ``False`` where the C library has no ``mallopt``
    (not glibc: macOS, Windows, musl), in which case nothing changes.

    >>> keep_freed_memory() in (True, False)
    True
    """
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        mallopt = libc.mallopt if libc is not None else None
    except (OSError, AttributeError):
        return False
    if mallopt is None:
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, mmap_threshold) and mallopt(_M_TRIM_THRESHOLD, 4 * mmap_threshold) and mallopt(_M_TOP_PAD, 64 << 20))


T = TypeVar("T")

#: How many constants the table keeps; the least recently used one goes first.
MAX_CACHED = 256

_TABLE: OrderedDict[Hashable, object] = OrderedDict()
_LOCK = Lock()


def cached(key: Hashable, build: Callable[[], T]) -> T:
    """``build()``, computed once per ``key`` in eager mode and rebuilt every time while tracing.

    ``key`` must name everything the value depends on (shape, dtype, device, …).

    >>> first = cached(("doc-example", 3), lambda: torch.arange(3))
    >>> cached(("doc-example", 3), lambda: torch.zeros(3)) is first
    True
    """
    if torch.compiler.is_compiling():
        return build()
    with _LOCK:
        if key in _TABLE:
            _TABLE.move_to_end(key)
            return _TABLE[key]  # type: ignore[return-value]
    with torch.inference_mode(False), torch.no_grad():  # ordinary tensors, usable with and without autograd
        value = build()
    with _LOCK:
        _TABLE[key] = value
        while len(_TABLE) > MAX_CACHED:
            _TABLE.popitem(last=False)
    return value


def clear_cache() -> None:
    """Forget every cached constant."""
    with _LOCK:
        _TABLE.clear()
