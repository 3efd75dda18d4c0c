"""Shared tiny datasets for the drift tests (written once per session)."""

from __future__ import annotations

import pytest

from ispkit.data import synthesize_drone, synthesize_microscopy


@pytest.fixture(scope="session")
def microscopy_root(tmp_path_factory):
    return synthesize_microscopy(tmp_path_factory.mktemp("micro"), n=40, seed=0, size=64, intensities=(1.0,), workers=1)


@pytest.fixture(scope="session")
def drone_root(tmp_path_factory):
    return synthesize_drone(tmp_path_factory.mktemp("drone"), n_frames=2, seed=0, height=256, width=512, cars_per_frame=6, intensities=(1.0,))
