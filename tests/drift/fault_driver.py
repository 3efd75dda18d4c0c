"""Run ``ispkit`` and die at a chosen point: the driver of the fault-injection tests.

``ISPKIT_TEST_FAULT=<point>:<n>[:<action>]`` sends ``SIGKILL`` (default), or ``SIGINT``
with action ``INT``, to this process the ``n``-th time it reaches ``point``; action
``PAUSE`` instead writes its PID to ``$ISPKIT_TEST_PAUSE_FILE`` and sleeps there (a run
that holds its folder).
The points:

``store``                a statement of MLflow's schema migrations (``_alembic_tmp_*``), while the SQLite store is created
``tracking_json``        just before ``tracking.json`` is written (the study run exists, nothing remembers it)
``result_not_logged``    a unit's ``result.json`` is written, its MLflow run not yet created
``mid_logging``          a unit's MLflow run is created and its metrics logged, not yet marked finished
``mid_epoch``            an optimiser step (steps are counted over the whole process)

Usage: ``python fault_driver.py synthesis run CONFIG --out DIR`` (arguments as for ``ispkit``).
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable


def _trigger() -> tuple[str, Callable[[], None]]:
    """The fault point named by ``ISPKIT_TEST_FAULT`` and the function to call each time it is reached."""
    spec = os.environ.get("ISPKIT_TEST_FAULT", "")
    if not spec:
        return "", lambda: None
    name, count, *sig = spec.split(":")
    calls = {"n": 0}

    def hit() -> None:
        calls["n"] += 1
        if calls["n"] != int(count):
            return
        if sig and sig[0] == "PAUSE":
            with open(os.environ["ISPKIT_TEST_PAUSE_FILE"], "w") as f:
                f.write(str(os.getpid()))
            time.sleep(3600)
        os.kill(os.getpid(), signal.SIGINT if sig and sig[0] == "INT" else signal.SIGKILL)
        if sig and sig[0] == "INT":
            time.sleep(0.1)  # let the handler raise KeyboardInterrupt here

    return name, hit


def install() -> None:
    name, hit = _trigger()
    if name == "store":
        import sqlalchemy.engine
        import sqlalchemy.event

        @sqlalchemy.event.listens_for(sqlalchemy.engine.Engine, "before_cursor_execute")
        def _statement(conn, cursor, statement, *args):  # SQLAlchemy's listener signature
            if "_alembic_tmp" in statement:
                hit()

    elif name == "tracking_json":
        import ispkit.drift.tracking as tracking

        write = tracking.atomic_write_text

        def atomic_write_text(path, text, **kwargs):
            if str(path).endswith("tracking.json"):
                hit()
            return write(path, text, **kwargs)

        tracking.atomic_write_text = atomic_write_text
    elif name == "result_not_logged":
        import ispkit.drift.tracking as tracking

        log_unit = tracking.MlflowTracker.log_unit

        def guarded(self, unit_name, *args):
            if unit_name not in self.logged:
                hit()
            return log_unit(self, unit_name, *args)

        tracking.MlflowTracker.log_unit = guarded
    elif name == "mid_logging":
        import mlflow.tracking

        set_terminated = mlflow.tracking.MlflowClient.set_terminated

        def terminate(self, run_id, *args, **kwargs):
            if self.get_run(run_id).data.tags.get("ispkit.unit"):
                hit()
            return set_terminated(self, run_id, *args, **kwargs)

        mlflow.tracking.MlflowClient.set_terminated = terminate
    elif name == "mid_epoch":
        import torch

        step = torch.optim.Adam.step

        def counted(self, *args, **kwargs):
            hit()
            return step(self, *args, **kwargs)

        torch.optim.Adam.step = counted
    elif name:
        raise SystemExit(f"unknown fault point {name!r}")


if __name__ == "__main__":
    install()
    from ispkit.cli import main

    sys.exit(main(sys.argv[1:]))
