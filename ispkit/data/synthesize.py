"""Write synthetic Raw-Microscopy and Raw-Drone datasets in the published layout.

The scenes come from :mod:`~ispkit.data.synthetic_microscopy` and
:mod:`~ispkit.data.synthetic_drone` in linear display colours; the camera's colour
processing is inverted (:meth:`ispkit.Camera.to_sensor`) so that the paper's pipelines
render them in those colours, and the raw data come from the sensor model:
:func:`ispkit.sensor.acquire` exposes the full-intensity raw, and
:func:`ispkit.sensor.scale_exposure` derives the lower intensities from it, as the
published intensity variants were made. The files follow the layout that
:mod:`ispkit.data.published` reads, so the same loaders read real and synthetic data.
A ``SYNTHETIC.txt`` file at the dataset's top records the generator and its settings.

Assumed sensor values, where the dataset does not publish them:

* microscopy: conversion gain 2.2 DN/e⁻ and read noise 1.5 e⁻, typical of a 16-bit
  sCMOS of the PCO edge 5.5 class (about 0.45 e⁻ per count, 30 000 e⁻ full well);
* drone: read noise 2.5 e⁻ (the published gain, 0.528 DN/e⁻ at 12 bit, is used).

Writing is resumable: the plan (names, classes, seeds) is fixed by the seed, files
that already exist are kept and skipped, and every file is written atomically, so an
interrupted run continues where it stopped. Nothing that exists is overwritten.
"""

from __future__ import annotations

import dataclasses
import functools
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..atomic import atomic_write, atomic_write_text
from ..camera import Camera
from ..errors import InputError
from ..io import write_raw
from ..sensor import acquire, scale_exposure
from .published import INTENSITIES, intensity_folder
from .synthetic_drone import render_frame
from .synthetic_microscopy import CLASS_PROPORTIONS, CLASSES, render_scene

__all__ = ["MICROSCOPY_NOISE", "DRONE_READ_NOISE", "synthesize_microscopy", "synthesize_drone"]

MICROSCOPY_NOISE: dict[str, Any] = {"gain": 2.2, "read_noise": 1.5}
"""Assumed conversion gain (DN/e⁻) and read noise (e⁻) of the microscopy sensor."""
DRONE_READ_NOISE = 2.5
"""Assumed read noise (e⁻) of the drone sensor."""

Progress = Callable[[int, int], None]


def _marker(path: Path, lines: list[str]) -> None:
    text = "\n".join(["Synthetic data written by ispkit (not the published measurements).", *lines]) + "\n"
    if path.exists() and path.read_text(encoding="utf-8") != text:
        raise InputError(f"{path.parent} already holds a dataset written with other settings ({path}); choose another --out")
    atomic_write_text(path, text)


def _check_request(count: int, name: str, intensities: tuple[float, ...]) -> None:
    if count < 1:
        raise InputError(f"{name} must be at least 1, got {count}")
    for intensity in intensities:
        intensity_folder(intensity)  # raises for an unpublished intensity


def _sensor_scene(scene: np.ndarray, camera: Camera) -> np.ndarray:
    """A scene in linear display colours as this camera's sensor records it, clipped to [0, 1]."""
    return np.clip(camera.to_sensor(scene), 0.0, 1.0)


def _slide(stem: str) -> str:
    return stem.split("_zone")[0]


def _slide_stains(plan: list[tuple[str, str]], seed: int) -> dict[str, np.ndarray]:
    """A staining strength per slide (about ±20 % per channel), fixed by the seed."""
    slides = sorted({_slide(stem) for stem, _ in plan})
    rng = np.random.default_rng([seed, 1])
    return {slide: rng.uniform(0.8, 1.2, 3) for slide in slides}


def _plan_microscopy(n: int, rng: np.random.Generator) -> list[tuple[str, str]]:
    """Stems and classes: slides of zones of 1–12 crops, classes in the published proportions."""
    labels = rng.choice(len(CLASSES), size=n, p=np.asarray(CLASS_PROPORTIONS) / sum(CLASS_PROPORTIONS))
    plan, slide, zone, left = [], 1, 0, 0
    for i in range(n):
        if left == 0:
            zone, left = zone + 1, int(rng.integers(1, 13))
            if zone > 20:
                slide, zone = slide + 1, 1
            crop = 0
        crop += 1
        left -= 1
        plan.append((f"Synth_lame{slide}_zone{zone}_composite_Mcropped_{crop}", CLASSES[labels[i]]))
    return plan


def synthesize_microscopy(
    out: str | os.PathLike[str],
    n: int = 100,
    seed: int = 0,
    *,
    size: int = 256,
    intensities: tuple[float, ...] = INTENSITIES,
    progress: Progress | None = None,
    workers: int | None = None,
) -> Path:
    """Write ``n`` synthetic leukocyte crops at every intensity under ``out/microscopy``.

    Crops are independent (each has its own seed), so ``workers`` processes (default:
    one per core) write them in parallel with the same result. Returns the dataset root
    ``out`` (to hand to :class:`~ispkit.data.RawMicroscopy`).
    """
    _check_request(n, "n", intensities)
    root = Path(out)
    base = root / "microscopy"
    camera = dataclasses.replace(Camera.builtin("microscopy"), **MICROSCOPY_NOISE)
    _marker(
        base / "SYNTHETIC.txt",
        ["kind: microscopy", f"n: {n}", f"seed: {seed}", f"size: {size}", f"gain: {camera.gain} DN/e-", f"read_noise: {camera.read_noise} e-"],
    )
    rng = np.random.default_rng(seed)
    plan = _plan_microscopy(n, rng)
    seeds = np.random.SeedSequence(seed).spawn(n)
    atomic_write_text(base / "labels" / "Ma190c_annotations.dat", "".join(f"{stem} {label}\n" for stem, label in plan))
    stains = _slide_stains(plan, seed)
    jobs = [(base, stem, label, image_seed, size, intensities, camera, stains[_slide(stem)]) for (stem, label), image_seed in zip(plan, seeds, strict=True)]
    _run(_write_crop, jobs, workers, progress)
    return root


def _write_crop(job: tuple) -> None:
    """Render, expose and write one crop at every intensity; files that exist are kept."""
    base, stem, label, image_seed, size, intensities, camera, stain = job
    paths = [base / "images" / intensity_folder(s) / f"{stem}.tiff" for s in intensities]
    if all(p.exists() for p in paths):
        return
    scene_seed, exposure_seed = image_seed.spawn(2)
    _expose(render_scene(label, size, np.random.default_rng(scene_seed), stain), camera, paths, intensities, exposure_seed)


def _expose(scene: np.ndarray, camera: Camera, paths: list[Path], intensities: tuple[float, ...], seed: np.random.SeedSequence, **noise: float) -> None:
    """Expose a display-colour scene at full intensity and write every missing intensity variant."""
    acquire_seed, *scale_seeds = seed.spawn(1 + len(intensities))
    full = acquire(_sensor_scene(scene, camera), camera, seed=acquire_seed, **noise)
    for intensity, path, scale_seed in zip(intensities, paths, scale_seeds, strict=True):
        if not path.exists():
            raw = full if intensity == 1.0 else scale_exposure(full, intensity, camera, seed=scale_seed, **noise)
            write_raw(path, raw, camera)


def _run(work: Callable[[tuple], None], jobs: list[tuple], workers: int | None, progress: Progress | None) -> None:
    """Run independent jobs, in worker processes when ``workers`` > 1; report progress as they finish.

    Inside a daemonic process (a multiprocessing or Dask worker), which may not start
    processes of its own, the jobs run in this process.
    """
    workers = min(workers or os.cpu_count() or 1, len(jobs))
    if multiprocessing.current_process().daemon:
        workers = 1
    if workers <= 1:
        for done, job in enumerate(jobs, 1):
            work(job)
            if progress is not None:
                progress(done, len(jobs))
        return
    with ProcessPoolExecutor(workers) as pool:
        futures = [pool.submit(work, job) for job in jobs]
        for done, future in enumerate(as_completed(futures), 1):
            future.result()
            if progress is not None:
                progress(done, len(jobs))


def synthesize_drone(
    out: str | os.PathLike[str],
    n_frames: int = 12,
    seed: int = 0,
    *,
    height: int = 1024,
    width: int = 1536,
    cars_per_frame: int = 14,
    intensities: tuple[float, ...] = INTENSITIES,
    progress: Progress | None = None,
) -> Path:
    """Write ``n_frames`` synthetic aerial frames, masks and intensity variants under ``out/drone``.

    The real frames are 3648 × 5472; the default here is smaller to stay quick. Returns
    the dataset root ``out``.
    """
    _check_request(n_frames, "n_frames", intensities)
    root = Path(out)
    base = root / "drone"
    camera = Camera.builtin("drone")
    lines = ["kind: drone", f"frames: {n_frames}", f"seed: {seed}", f"size: {height}x{width}", f"read_noise: {DRONE_READ_NOISE} e-"]
    _marker(base / "SYNTHETIC.txt", lines)
    seeds = np.random.SeedSequence(seed).spawn(n_frames)
    for i, frame_seed in enumerate(seeds):
        stem = f"synth_frame_{i + 1:02d}"
        mask_path = base / "masks_full" / f"{stem}.png"
        paths = [base / "images_full" / intensity_folder(s) / f"{stem}.tiff" for s in intensities]
        if not (mask_path.exists() and all(p.exists() for p in paths)):
            scene_seed, exposure_seed = frame_seed.spawn(2)
            scene, mask = render_frame(height, width, cars_per_frame, np.random.default_rng(scene_seed))
            _expose(scene, camera, paths, intensities, exposure_seed, read_noise=DRONE_READ_NOISE)
            if not mask_path.exists():
                png = Image.fromarray(mask.astype(np.uint8) * 255)
                atomic_write(mask_path, functools.partial(png.save, format="PNG"))
        if progress is not None:
            progress(i + 1, n_frames)
    return root
