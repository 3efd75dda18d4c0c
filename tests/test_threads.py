"""ispkit.threads: chunks in order, one intra-op thread per worker, the caller's setting untouched, errors propagate."""

from __future__ import annotations

import threading

import pytest
import torch

from ispkit import threads


def test_chunk_size_depends_on_the_image_size_only():
    assert threads.chunk_size(256, 256) == threads.CHUNK_PIXELS // 65536 == 4
    assert threads.chunk_size(1080, 1920) == 1 and threads.chunk_size(1, 1) == threads.CHUNK_PIXELS


@pytest.mark.parametrize("parallel", [True, False])
def test_chunks_come_back_in_order(parallel, monkeypatch):
    monkeypatch.setenv("ISPKIT_NUM_THREADS", "3")
    batch = torch.arange(10.0)
    parts = threads.map_chunks(lambda c: c * 2, batch, 3, parallel=parallel)
    assert [p.tolist() for p in parts] == [[0.0, 2.0, 4.0], [6.0, 8.0, 10.0], [12.0, 14.0, 16.0], [18.0]]


def test_workers_run_one_intra_op_thread_and_leave_the_caller_alone(monkeypatch):
    monkeypatch.setenv("ISPKIT_NUM_THREADS", "2")
    before = torch.get_num_threads()
    seen = threads.map_chunks(lambda c: (threading.current_thread().name, torch.get_num_threads()), torch.zeros(4), 1)
    assert {n for _, n in seen} == {1} and all(name.startswith("ispkit") for name, _ in seen)
    assert torch.get_num_threads() == before
    serial = threads.map_chunks(lambda c: threading.current_thread().name, torch.zeros(4), 1, parallel=False)
    assert set(serial) == {threading.current_thread().name}


def test_offsets_name_each_chunks_first_image(monkeypatch):
    monkeypatch.setenv("ISPKIT_NUM_THREADS", "2")
    assert threads.map_chunks(lambda c, start: (start, len(c)), torch.zeros(7), 3, offsets=True) == [(0, 3), (3, 3), (6, 1)]


def test_an_error_in_a_chunk_reaches_the_caller(monkeypatch):
    monkeypatch.setenv("ISPKIT_NUM_THREADS", "2")

    def fail(chunk: torch.Tensor) -> torch.Tensor:
        raise ValueError(f"bad chunk {chunk.tolist()}")

    with pytest.raises(ValueError, match="bad chunk"):
        threads.map_chunks(fail, torch.zeros(4), 2)


def test_workers_default_to_the_cores_this_process_may_use(monkeypatch):
    monkeypatch.delenv("ISPKIT_NUM_THREADS", raising=False)
    assert threads.workers() >= 1
    monkeypatch.setenv("ISPKIT_NUM_THREADS", "1")
    assert threads.workers() == 1
