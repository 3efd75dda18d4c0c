"""Experiment tracking with MLflow, local by default.

A study is one MLflow run; each unit of work (a train pipeline × fold, a subset × λ, ...)
is a nested run (tag ``mlflow.parentRunId``) with its parameters and per-epoch (or
per-step) metrics, logged once the unit has finished by the process that drives the
study (:mod:`ispkit.drift.execution`), wherever the unit ran. Without a
tracking URI the store is an SQLite file inside the run directory
(``<run_dir>/mlflow.db``, artifacts in ``<run_dir>/mlruns``): nothing to start, and
``mlflow ui --backend-store-uri sqlite:///<run_dir>/mlflow.db`` shows it. With
``tracking_uri`` (e.g. ``http://host:5000``) runs go to that server. A resumed study
logs into the same study run (its id is kept in ``<run_dir>/tracking.json`` and the
run carries tags that find it again) and logs each unit once: units read back from an
earlier run that were not logged yet (the process was killed in between) are logged
then, so after any kill a rerun ends with every unit logged exactly once.

:class:`Tracker` itself tracks nothing (``--no-tracking``); :class:`MlflowTracker`
implements the same methods.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..atomic import atomic_write_text
from ..errors import RunFolderError

__all__ = ["Tracker", "MlflowTracker", "make_tracker", "flatten", "LocalStore", "local_store"]


def flatten(params: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested mapping → ``{"a.b": "value"}`` strings, as MLflow parameters.

    >>> flatten({"model": {"name": "small_cnn", "downsample": 4}, "folds": 3})
    {'model.name': 'small_cnn', 'model.downsample': '4', 'folds': '3'}
    """
    flat: dict[str, str] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = str(value)[:6000]
    return flat


class Tracker:
    """The tracking interface; this base class records nothing."""

    def log_unit(self, name: str, params: dict[str, Any], metrics: list[tuple[dict[str, float], int | None]]) -> None:
        """Record a finished unit of work: a nested run with ``params`` and ``metrics`` (``[(values, step), ...]``).

        Called for every finished unit, also for units read back on a resume; a tracker
        records each unit name once (a unit it holds already is skipped)."""

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        """Log metrics to the study run."""

    def log_artifact(self, path: str | os.PathLike[str]) -> None:
        """Attach a file to the study run."""

    def end_study(self, status: str = "FINISHED") -> None:
        """Close the study run."""


class MlflowTracker(Tracker):
    """MLflow tracking of one study (see the module docstring).

    Crash safety: whatever instant the process is killed at, rerunning the same study
    ends with a consistent store:

    - the local SQLite store is created (its schema migrated) under a temporary name and
      renamed into place, so ``mlflow.db`` is either absent or complete;
    - the study run is found again by its tags (``ispkit.role = study`` and a key of the
      run folder), not only through ``tracking.json``, so a kill before that file is
      written does not leave a second study run behind;
    - a unit is logged at most once: :meth:`log_unit` skips a unit already logged as
      ``FINISHED``, and a unit run left unfinished by a kill mid-logging is deleted and
      logged again.
    """

    def __init__(self, run_dir: str | os.PathLike[str], experiment: str, params: dict[str, Any], tracking_uri: str | None = None) -> None:
        import mlflow.tracking

        for name in ("mlflow", "alembic"):
            logging.getLogger(name).setLevel(logging.WARNING)
        # it logs every database error with a traceback before raising it; the caller reports the error
        logging.getLogger("mlflow.store.db.utils").setLevel(logging.CRITICAL)
        run_dir = Path(run_dir).resolve()
        local = tracking_uri is None
        if local:
            _create_store(run_dir / "mlflow.db")
        self.uri = f"sqlite:///{run_dir / 'mlflow.db'}" if local else tracking_uri
        self.client = mlflow.tracking.MlflowClient(self.uri)
        found = self.client.get_experiment_by_name(experiment)
        if found is not None:
            experiment_id = found.experiment_id
        else:
            artifacts = (run_dir / "mlruns").as_uri() if local else None
            experiment_id = self.client.create_experiment(experiment, artifact_location=artifacts)
        self.experiment_id = experiment_id
        self.study = self._study_run(run_dir, experiment, params)
        self.logged = self._logged_units()

    def _study_run(self, run_dir: Path, experiment: str, params: dict[str, Any]) -> str:
        """The id of this run folder's study run: remembered in ``tracking.json``, found by its tags, or created."""
        state_file = run_dir / "tracking.json"
        state = json.loads(state_file.read_text(encoding="utf-8")) if state_file.exists() else {}
        key = hashlib.sha256(str(run_dir).encode()).hexdigest()[:20]
        study = state.get("study_run_id") if self._is_study(state.get("study_run_id")) else None
        if study is None:
            found = self.client.search_runs(
                [self.experiment_id], filter_string=f"tags.`ispkit.role` = 'study' and tags.`ispkit.run_key` = '{key}'", order_by=["attributes.start_time ASC"]
            )
            if found:
                study = found[0].info.run_id
            else:
                tags = {"ispkit.role": "study", "ispkit.run_key": key, "ispkit.run_dir": str(run_dir)[:5000]}
                study = self.client.create_run(self.experiment_id, run_name=experiment, tags=tags).info.run_id
        remembered = {"uri": self.uri, "experiment_id": self.experiment_id, "study_run_id": study}
        if state != remembered:
            atomic_write_text(state_file, json.dumps(remembered))
        self.client.update_run(study, status="RUNNING")
        self._log_batch(study, [], _params(params))  # idempotent: completes a logging cut short by a kill
        return study

    def _is_study(self, run_id: Any) -> bool:
        """Whether ``run_id`` names an active run of this experiment in this store (a folder may have
        been moved, or pointed at another server since ``tracking.json`` was written)."""
        from mlflow.exceptions import MlflowException

        if not isinstance(run_id, str):
            return False
        try:
            run = self.client.get_run(run_id)
        except MlflowException:
            return False
        return run.info.experiment_id == self.experiment_id and run.info.lifecycle_stage == "active"

    def _logged_units(self) -> set[str]:
        """Names of the units logged (``FINISHED``) under the study; unfinished unit runs are deleted."""
        logged: set[str] = set()
        token = None
        while True:
            page = self.client.search_runs(
                [self.experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{self.study}'", max_results=1000, page_token=token
            )
            for run in page:
                name = run.data.tags.get("ispkit.unit", "")
                if run.info.status == "FINISHED" and name not in logged:
                    logged.add(name)
                else:  # killed while being logged, or a second copy
                    self.client.delete_run(run.info.run_id)
            token = page.token
            if not token:
                return logged

    def log_unit(self, name: str, params: dict[str, Any], metrics: list[tuple[dict[str, float], int | None]]) -> None:
        if name in self.logged:
            return
        tags = {"mlflow.parentRunId": self.study, "ispkit.unit": name, "ispkit.role": "unit"}
        unit = self.client.create_run(self.experiment_id, run_name=name, tags=tags).info.run_id
        self._log_batch(unit, [m for values, step in metrics for m in _metrics(values, step)], _params(params))
        self.client.set_terminated(unit, status="FINISHED")
        self.logged.add(name)

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        """Log to the study run; a value the run already holds as its latest is not logged twice (a resumed study)."""
        held = self.client.get_run(self.study).data.metrics
        fresh = [m for m in _metrics(metrics, step) if held.get(m.key) != m.value]
        self._log_batch(self.study, fresh)

    def _log_batch(self, run: str, metrics: list[Any], params: Sequence[Any] = ()) -> None:
        """MLflow takes at most 100 parameters and 1000 metrics per call."""
        params = list(params)
        for start in range(0, len(params), 100):
            self.client.log_batch(run, params=params[start : start + 100])
        for start in range(0, len(metrics), 1000):
            self.client.log_batch(run, metrics=metrics[start : start + 1000])

    def log_artifact(self, path: str | os.PathLike[str]) -> None:
        self.client.log_artifact(self.study, os.fspath(path))

    def end_study(self, status: str = "FINISHED") -> None:
        self.client.set_terminated(self.study, status=status)


def _create_store(db: Path) -> None:
    """Create the SQLite store ``db`` with MLflow's schema, atomically: built under a
    temporary name (``<db>.creating``) and renamed, so that a kill during the schema
    migrations never leaves a half-migrated store (``table _alembic_tmp_runs already exists``)."""
    if db.exists():
        return
    import mlflow.tracking

    tmp = db.with_name(db.name + ".creating")
    for leftover in (tmp, *(tmp.with_name(tmp.name + suffix) for suffix in ("-journal", "-wal", "-shm"))):
        leftover.unlink(missing_ok=True)
    client = mlflow.tracking.MlflowClient(f"sqlite:///{tmp}")
    store = client._tracking_client.store  # building the store runs the schema migrations
    store.engine.dispose()
    os.replace(tmp, db)


def _params(params: dict[str, Any]) -> list[Any]:
    from mlflow.entities import Param

    return [Param(k, v) for k, v in flatten(params).items()]


def _metrics(values: dict[str, float], step: int | None) -> list[Any]:
    from mlflow.entities import Metric

    stamp = int(time.time() * 1000)
    return [Metric(_metric_key(k), float(v), stamp, step or 0) for k, v in values.items()]


def _metric_key(name: str) -> str:
    """MLflow keys allow letters, digits and ``_-./ ``; pipeline names use commas."""
    return "".join(c if c.isalnum() or c in "_-./ " else "_" for c in name)


def make_tracker(run_dir: str | os.PathLike[str], experiment: str, params: dict[str, Any], *, tracking_uri: str | None = None, enabled: bool = True) -> Tracker:
    """An :class:`MlflowTracker`, or a :class:`Tracker` that records nothing when not ``enabled``."""
    return MlflowTracker(run_dir, experiment, params, tracking_uri) if enabled else Tracker()


_SQLITE_HEADER = b"SQLite format 3\x00"


@dataclass(frozen=True)
class LocalStore:
    """The local MLflow store of a run folder: its tracking ``uri`` (``sqlite:///<run_dir>/mlflow.db``
    where the folder is now) and, when the folder was moved since it was tracked, where it was
    (``moved_from``; the runs' artifacts are recorded under that path)."""

    uri: str
    run_dir: Path
    moved_from: Path | None = None


def local_store(run_dir: str | os.PathLike[str]) -> LocalStore:
    """The local MLflow store of the run folder ``run_dir`` (its ``mlflow.db``), wherever the folder is now.

    Raises
    ------
    RunFolderError
        ``run_dir`` is not a folder, holds no ``mlflow.db`` (not a run folder, a run with
        ``--no-tracking``, or one tracked on a server: its address is named), or its
        ``mlflow.db`` is not an SQLite database.
    """
    folder = Path(run_dir)
    if not folder.is_dir():
        raise RunFolderError(f"{folder} is not a folder: expected a run folder (the --out folder of `ispkit synthesis|forensics|adjust run`)")
    folder = folder.resolve()
    db, remembered = folder / "mlflow.db", _remembered_uri(folder)
    if db.is_file():
        with db.open("rb") as file:
            if file.read(len(_SQLITE_HEADER)) != _SQLITE_HEADER:
                raise RunFolderError(f"{db} is not an SQLite database, so not an MLflow store written by ispkit")
        before = Path(remembered.removeprefix("sqlite:///")).parent if remembered and remembered.startswith("sqlite:///") else None
        return LocalStore(f"sqlite:///{db}", folder, before if before is not None and before != folder else None)
    if remembered and not remembered.startswith("sqlite:"):
        raise RunFolderError(f"{folder} was tracked on the server {remembered}: open that server's UI instead")
    if (folder / "config.yaml").is_file():
        raise RunFolderError(f"{folder} is a run folder without a tracking store (run with --no-tracking, or not started yet): nothing to show")
    raise RunFolderError(
        f"{folder} is not a run folder: it has no mlflow.db (a run folder is the --out folder of `ispkit synthesis|forensics|adjust run`, by default runs/<experiment name>)"
    )


def _remembered_uri(folder: Path) -> str | None:
    """The tracking URI ``tracking.json`` remembers, if it is there and readable."""
    try:
        state = json.loads((folder / "tracking.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    uri = state.get("uri") if isinstance(state, dict) else None
    return uri if isinstance(uri, str) else None
