from __future__ import annotations

import os
import sys

import numpy as np
import pytest
import tifffile
from ispkit import Camera
from ispkit.io import write_raw


@pytest.fixture
def mosaic() -> np.ndarray:
    return np.random.default_rng(0).random((64, 48)) * 0.8 + 0.1


@pytest.fixture
def raw_tiff(tmp_path, mosaic):
    return write_raw(tmp_path / "cells.tiff", mosaic, "microscopy")


def write_dng(path, data: np.ndarray, pattern=(0, 1, 1, 2), white_level=4095):
    """A minimal Bayer DNG (ispkit has no DNG writer): one CFA page with DNG version and CFA tags."""
    tags = [
        (50706, "B", 4, (1, 4, 0, 0)),  # DNGVersion
        (33421, "H", 2, (2, 2)),  # CFARepeatPatternDim
        (33422, "B", 4, pattern),  # CFAPattern: 0 R, 1 G, 2 B
        (50717, "I", 1, (white_level,)),  # WhiteLevel
    ]
    tifffile.imwrite(path, data, photometric="cfa", extratags=tags, metadata=None)
    return path


@pytest.fixture
def raw_dng(tmp_path):
    data = np.random.default_rng(1).integers(0, 4096, (32, 40), dtype=np.uint16)
    return write_dng(tmp_path / "shot.dng", data), data


@pytest.fixture
def plain_tiff(tmp_path):
    path = tmp_path / "published.tiff"
    tifffile.imwrite(path, np.zeros((8, 8), np.uint16), metadata=None)
    return path


__all__ = ["Camera"]


@pytest.fixture(scope="session")
def tiny_microscopy_root(tmp_path_factory):
    from ispkit.data import synthesize_microscopy

    return synthesize_microscopy(tmp_path_factory.mktemp("micro"), n=30, seed=0, size=64, intensities=(1.0,), workers=1)


@pytest.fixture
def tiny_forensics(tmp_path, tiny_microscopy_root):
    """A forensics experiment of three units (gamma at λ = 0, 100, ∞) that runs in a few seconds."""
    path = tmp_path / "tiny_forensics.yaml"
    path.write_text(
        f"""name: tiny-forensics
dataset: {{kind: microscopy, root: {tiny_microscopy_root}}}
pipeline: "bi,s,ga"
model: {{name: small_cnn, downsample: 2}}
training: {{epochs: 1, batch_size: 8}}
split: {{folds: 2, fold: 1}}
samples: 4
subsets: [gamma]
lambdas: [0, 100, .inf]
optimisation: {{steps: 2, batch_size: 4}}
""",
        encoding="utf-8",
    )
    return path


def _qt_unavailable() -> str | None:
    """Why the Qt tests cannot run here, or ``None``."""
    try:
        import napari.qt  # noqa: F401
        import pytestqt  # noqa: F401
        import qtpy  # noqa: F401
    except Exception as exc:  # noqa: BLE001 - any import failure means no Qt
        return f"no Qt binding / pytest-qt / napari.qt: {exc}"
    if sys.platform.startswith("linux") and not os.environ.get("DISPLAY") and os.environ.get("QT_QPA_PLATFORM") != "offscreen":
        return "no display (run under xvfb-run -a)"
    return None


def pytest_collection_modifyitems(config, items):
    reason = _qt_unavailable()
    if reason is not None:
        for item in items:
            if item.get_closest_marker("qt"):
                item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture
def viewer(make_napari_viewer):
    """A napari viewer (Qt tests only)."""
    return make_napari_viewer()


@pytest.fixture
def errors(monkeypatch):
    """The messages of the error notifications shown during a test."""
    seen: list[str] = []
    from napari_drift.widgets import _common

    monkeypatch.setattr(_common.notifications, "show_error", lambda msg: seen.append(msg))
    return seen
