"""Test-wide settings."""

from __future__ import annotations

import pytest
import torch

from ispkit.data import synthesize_drone, synthesize_microscopy


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """Test tensors are tiny: intra-op threads only add synchronisation, which stalls
    for milliseconds per operation when the cores are shared with other processes."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def microscopy_root(tmp_path_factory):
    """A tiny synthetic Raw-Microscopy dataset (40 images of 64 × 64), written once per session."""
    return synthesize_microscopy(tmp_path_factory.mktemp("micro"), n=40, seed=0, size=64, intensities=(1.0,), workers=1)


@pytest.fixture(scope="session")
def drone_root(tmp_path_factory):
    """A tiny synthetic Raw-Drone dataset (2 frames of 256 × 512), written once per session."""
    return synthesize_drone(tmp_path_factory.mktemp("drone"), n_frames=2, seed=0, height=256, width=512, cars_per_frame=6, intensities=(1.0,))
