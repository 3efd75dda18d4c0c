"""Experiment tracking with MLflow, local by default.

A study is one MLflow run; each unit of work (a train pipeline × fold, a subset × λ, ...)
is a nested run (tag ``mlflow.parentRunId``) with its parameters and per-epoch (or
per-step) metrics, logged once the unit has finished by the process that drives the
study (:mod:`ispkit.drift.execution`), wherever the unit ran. Without a
tracking URI the store is an SQLite file inside the run directory
(``<run_dir>/mlflow.db``, artifacts in ``<run_dir>/mlruns``): nothing to start, and
``mlflow ui --backend-store-uri sqlite:///<run_dir>/mlflow.db`` shows it. With
``tracking_uri`` (e.g. ``http://host:5000``) runs go to that server. A resumed study
logs into the same study run (its id is kept in ``<run_dir>/tracking.json``).

:class:`Tracker` itself tracks nothing (``--no-tracking``); :class:`MlflowTracker`
implements the same methods.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

from ..io import atomic_write_text

__all__ = ["Tracker", "MlflowTracker", "make_tracker", "flatten"]


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
        """Record a finished unit of work: a nested run with ``params`` and ``metrics`` (``[(values, step), ...]``)."""

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        """Log metrics to the study run."""

    def log_artifact(self, path: str | os.PathLike[str]) -> None:
        """Attach a file to the study run."""

    def end_study(self, status: str = "FINISHED") -> None:
        """Close the study run."""


class MlflowTracker(Tracker):
    """MLflow tracking of one study (see the module docstring)."""

    def __init__(self, run_dir: str | os.PathLike[str], experiment: str, params: dict[str, Any], tracking_uri: str | None = None) -> None:
        import mlflow.tracking

        for name in ("mlflow", "alembic"):
            logging.getLogger(name).setLevel(logging.WARNING)
        run_dir = Path(run_dir).resolve()
        local = tracking_uri is None
        self.uri = f"sqlite:///{run_dir / 'mlflow.db'}" if local else tracking_uri
        self.client = mlflow.tracking.MlflowClient(self.uri)
        found = self.client.get_experiment_by_name(experiment)
        if found is not None:
            experiment_id = found.experiment_id
        else:
            artifacts = (run_dir / "mlruns").as_uri() if local else None
            experiment_id = self.client.create_experiment(experiment, artifact_location=artifacts)
        state_file = run_dir / "tracking.json"
        state = json.loads(state_file.read_text(encoding="utf-8")) if state_file.exists() else {}
        if state.get("uri") == self.uri and state.get("study_run_id"):
            self.study = state["study_run_id"]
            self.client.update_run(self.study, status="RUNNING")
        else:
            self.study = self.client.create_run(experiment_id, run_name=experiment).info.run_id
            self._log_batch(self.study, [], _params(params))
            atomic_write_text(state_file, json.dumps({"uri": self.uri, "experiment_id": experiment_id, "study_run_id": self.study}))
        self.experiment_id = experiment_id

    def log_unit(self, name: str, params: dict[str, Any], metrics: list[tuple[dict[str, float], int | None]]) -> None:
        tags = {"mlflow.parentRunId": self.study, "ispkit.unit": name}
        unit = self.client.create_run(self.experiment_id, run_name=name, tags=tags).info.run_id
        self._log_batch(unit, [m for values, step in metrics for m in _metrics(values, step)], _params(params))
        self.client.set_terminated(unit, status="FINISHED")

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        self._log_batch(self.study, _metrics(metrics, step))

    def _log_batch(self, run: str, metrics: list[Any], params: list[Any] = ()) -> None:
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
