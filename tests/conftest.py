"""Test-wide settings."""

from __future__ import annotations

import math
import random
import re
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from ispkit.data import synthesize_drone, synthesize_microscopy
from ispkit.drift.config import AdjustmentConfig, ExperimentConfig, ForensicsConfig, SynthesisConfig


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """Test tensors are tiny: intra-op threads only add synchronisation, which stalls
    for milliseconds per operation when the cores are shared with other processes."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def _seeded_global_generators(request):
    """Each test starts torch's, NumPy's legacy and Python's global random generators from a
    seed of its own (the CRC-32 of its node id): a test that draws without a seed of its own
    (``torch.rand``, ``np.random.rand``) then sees the same numbers on every run and in any
    order, so it passes always or fails always -- never one run in fifty."""
    seed = zlib.crc32(request.node.nodeid.encode())
    torch.manual_seed(seed)
    np.random.seed(seed)  # noqa: NPY002 -- the legacy global generator is the one an unseeded np.random.rand draws from
    random.seed(seed)


@pytest.fixture(scope="session")
def microscopy_root(tmp_path_factory):
    """A tiny synthetic Raw-Microscopy dataset (40 images of 64 × 64), written once per session."""
    return synthesize_microscopy(tmp_path_factory.mktemp("micro"), n=40, seed=0, size=64, intensities=(1.0,), workers=1)


@pytest.fixture(scope="session")
def drone_root(tmp_path_factory):
    """A tiny synthetic Raw-Drone dataset (2 frames of 256 × 512), written once per session."""
    return synthesize_drone(tmp_path_factory.mktemp("drone"), n_frames=2, seed=0, height=256, width=512, cars_per_frame=6, intensities=(1.0,))


ROOT = object()
"""Stands for the tiny microscopy dataset's folder in :data:`TINY_EXPERIMENTS` (filled in when used)."""

TINY_EXPERIMENTS: dict[str, dict[str, Any]] = {
    "synthesis": {
        "name": "tiny",
        "dataset": {"kind": "microscopy", "root": ROOT},
        "pipelines": {"train": ["bi,s,me", "me,u,ga"], "test": ["bi,s,me", "me,u,ga"]},
        "model": {"name": "small_cnn", "downsample": 2},
        "training": {"epochs": 1, "batch_size": 8, "lr": 0.003},
        "folds": 2,
        "corruptions": {"names": ["gaussian_noise", "contrast"], "severities": [1, 5]},
    },
    "forensics": {
        "name": "tiny-forensics",
        "dataset": {"kind": "microscopy", "root": ROOT},
        "pipeline": "bi,s,ga",
        "model": {"name": "small_cnn", "downsample": 2},
        "training": {"epochs": 2, "batch_size": 8},
        "split": {"folds": 2, "fold": 1},
        "samples": 8,
        "subsets": ["all", "gamma"],
        "lambdas": [0, 100, math.inf],
        "optimisation": {"steps": 3, "batch_size": 8},
    },
    "adjustment": {
        "name": "tiny-adjust",
        "dataset": {"kind": "microscopy", "root": ROOT},
        "pipeline": "bi,s,me",
        "intensities": [0.01, 1.0],
        "arms": ["learned", "frozen", "raw"],
        "model": {"name": "small_cnn", "downsample": 2},
        "training": {"epochs": 2, "batch_size": 8},
        "pipeline_lr": 0.05,
        "folds": 2,
    },
}
"""The tiny experiment of each drift control (seconds on a CPU), top-level key by key."""

_CONFIGS = {"synthesis": SynthesisConfig, "forensics": ForensicsConfig, "adjustment": AdjustmentConfig}
_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
_YAML_WORDS = {"true", "false", "yes", "no", "on", "off", "null", "y", "n"}


def flow_yaml(value: Any) -> str:
    """``value`` as a one-line YAML flow node: ``{kind: microscopy, root: "/d"}``, ``[0, 100, .inf]``."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key}: {flow_yaml(item)}" for key, item in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(flow_yaml(item) for item in value) + "]"
    if isinstance(value, bool) or value is None:
        return {True: "true", False: "false", None: "null"}[value]
    if isinstance(value, float) and math.isinf(value):
        return ".inf" if value > 0 else "-.inf"
    if isinstance(value, (int, float)):
        return repr(value)
    text = str(value)
    plain = _PLAIN.fullmatch(text) and text.lower() not in _YAML_WORDS
    return text if plain else '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


class TinyExperiments:
    """The tiny experiments of :data:`TINY_EXPERIMENTS`, with changes, as YAML text, files or parsed configs.

    ``changes`` are top-level keys: a mapping value updates the template's mapping key by key
    (``training={"epochs": 2}`` keeps its batch size; a key set to ``None`` is removed), ``None``
    removes the top-level key, anything else replaces it or is added. The dataset is the session's tiny microscopy dataset unless
    ``dataset`` changes it.
    """

    def __init__(self, microscopy_root: Callable[[], Path]) -> None:
        self._root = microscopy_root

    def text(self, control: str, **changes: Any) -> str:
        experiment = {key: dict(value) if isinstance(value, dict) else value for key, value in TINY_EXPERIMENTS[control].items()}
        for key, value in changes.items():
            if value is None:
                experiment.pop(key, None)
            elif isinstance(value, dict) and isinstance(experiment.get(key), dict):
                experiment[key] = {k: v for k, v in {**experiment[key], **value}.items() if v is not None}
            else:
                experiment[key] = value
        dataset = experiment.get("dataset")
        if isinstance(dataset, dict) and dataset.get("root") is ROOT:
            dataset["root"] = self._root()
        return "".join(f"{key}: {flow_yaml(value)}\n" for key, value in experiment.items())

    def config(self, control: str, **changes: Any) -> ExperimentConfig:
        """The parsed experiment (:class:`~ispkit.drift.config.SynthesisConfig`, ...)."""
        return _CONFIGS[control].from_yaml(self.text(control, **changes))

    def write(self, control: str, path: Path, **changes: Any) -> Path:
        """The experiment written to ``path`` (a YAML file, as the command line and the app read it)."""
        path.write_text(self.text(control, **changes), encoding="utf-8")
        return path


@pytest.fixture(scope="session")
def tiny(request) -> TinyExperiments:
    """The tiny experiments of the drift controls (:class:`TinyExperiments`), shared by every test that runs one."""
    return TinyExperiments(lambda: request.getfixturevalue("microscopy_root"))
