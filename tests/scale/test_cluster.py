"""The --scheduler/--workers switch (ispkit.scale.cluster)."""

from __future__ import annotations

import pytest

pytest.importorskip("distributed")

from ispkit.errors import InputError
from ispkit.scale.cluster import connect, cores, in_process


def test_connect_checks_its_arguments():
    with connect("local") as client:
        assert client is None
    with pytest.raises(InputError, match="applies to scheduler 'local' only"), connect("tcp://127.0.0.1:1", workers=2):
        pass
    with pytest.raises(InputError, match="expected 'local', an address"), connect("somewhere"):
        pass
    with pytest.raises(InputError, match="at least 1"), connect("local", workers=0):
        pass


@pytest.mark.slow  # ~5 s: starts two worker processes
def test_local_with_workers_is_a_cluster_of_that_many_processes_closed_after():
    import os

    with connect("local", workers=2) as client:
        pids = client.run(os.getpid)
        assert len(pids) == 2 and os.getpid() not in pids.values()
        assert all(w["nthreads"] == 1 for w in client.scheduler_info(n_workers=-1)["workers"].values())
        with connect(client) as same:  # a client passed in is used as it is, and left open
            assert same is client
        assert client.status == "running"
    assert client.status == "closed"


def test_in_process_means_local_with_one_worker():
    assert in_process("local", 1) and in_process(None, 1)
    assert not in_process("local", 2) and not in_process("tcp://host:8786", 1)


def test_cores_are_those_this_process_may_use():
    import os

    assert 1 <= cores() <= os.cpu_count()
