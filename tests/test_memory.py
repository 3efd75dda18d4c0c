"""ispkit.memory: the opt-in malloc tuning and the cache of constant tensors."""

from __future__ import annotations

import ctypes
import platform

import pytest
import torch

from ispkit.memory import keep_freed_memory


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="needs glibc")
def test_applies_on_glibc():
    assert keep_freed_memory() is True
    assert keep_freed_memory() is True  # idempotent


def test_without_mallopt_nothing_changes(monkeypatch):
    class NoMallopt:
        def __init__(self, name):
            pass

    monkeypatch.setattr(ctypes, "CDLL", NoMallopt)
    assert keep_freed_memory() is False


def test_without_a_c_library(monkeypatch):
    def missing(name):
        raise OSError("no libc")

    monkeypatch.setattr(ctypes, "CDLL", missing)
    assert keep_freed_memory() is False


class TestCached:
    """ispkit.memory.cached: one build per key in eager mode, ordinary tensors, nothing kept while tracing."""

    def test_one_build_per_key(self):
        from ispkit.memory import cached

        builds = []
        make = lambda: builds.append(1) or torch.ones(2)  # noqa: E731
        first = cached(("test-memory", 1), make)
        assert cached(("test-memory", 1), make) is first and len(builds) == 1
        assert cached(("test-memory", 2), make) is not first and len(builds) == 2

    def test_built_in_inference_mode_is_an_ordinary_tensor(self):
        """A constant first built under inference_mode must still serve autograd later."""
        from ispkit.memory import cached

        with torch.inference_mode():
            constant = cached(("test-memory", "inference"), lambda: torch.full((3,), 2.0))
        assert not constant.is_inference()
        x = torch.ones(3, requires_grad=True)
        (x * constant).sum().backward()
        assert x.grad.tolist() == [2.0, 2.0, 2.0]

    def test_nothing_is_read_or_kept_while_tracing(self, monkeypatch):
        from ispkit import memory

        monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)
        first = memory.cached(("test-memory", "traced"), lambda: torch.zeros(1))
        assert memory.cached(("test-memory", "traced"), lambda: torch.zeros(1)) is not first
        assert ("test-memory", "traced") not in memory._TABLE

    def test_least_recently_used_goes_first(self, monkeypatch):
        from ispkit import memory

        monkeypatch.setattr(memory, "MAX_CACHED", 2)
        memory.clear_cache()
        for k in range(3):
            memory.cached(("lru", k), lambda: torch.zeros(1))
        assert list(memory._TABLE) == [("lru", 1), ("lru", 2)]
