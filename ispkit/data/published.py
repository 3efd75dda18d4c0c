"""Loaders for the published Raw-Microscopy and Raw-Drone datasets (and their synthetic twins).

Oala et al., TMLR 2023, released both datasets on Zenodo (record 5235536,
doi:10.5281/zenodo.5235536, CC BY 4.0). The loaders read that layout under ``root``:

.. code-block:: text

    microscopy/images/raw_scale{100,075,050,025,010,005,001}/<stem>.tiff
    microscopy/labels/Ma190c_annotations.dat          # "<stem> <CLASS>" per line
    drone/images_full/raw_scale{100,...}/<frame>.tiff
    drone/masks_full/<frame>.png                      # car masks, any non-zero pixel is a car

The folder number is the intensity × 100 on three digits. ``ispkit data synth``
writes synthetic data in the same layout, so the same loaders read both; a
``SYNTHETIC.txt`` file at the top of a dataset says which kind it is.

Items are ``(raw, target)`` with ``raw`` a float32 tensor ``(1, H, W)`` in [0, 1] (the
stored numbers divided by the camera's white level) and the target a class index
(classification) or a float32 mask ``(1, H, W)`` (segmentation). The camera travels
with the dataset (``dataset.camera``), and ``dataset.groups`` names the source of each
item (slide zone or drone frame) for :func:`ispkit.data.grouped_stratified_kfold`.
"""

from __future__ import annotations

import os
import re
from collections import Counter, OrderedDict
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from ..camera import Camera
from ..errors import InputError, RawFormatError
from ..io import read_raw

__all__ = ["INTENSITIES", "intensity_folder", "RawMicroscopy", "RawDroneSegmentation", "RawDroneClassification"]

INTENSITIES: tuple[float, ...] = (1.0, 0.75, 0.5, 0.25, 0.1, 0.05, 0.01)
"""Intensity scales published with both datasets."""

RECORD = "Zenodo record 5235536 (doi:10.5281/zenodo.5235536)"
EXCLUDED_MICROSCOPY = ("Ma190c_lame3_zone13_composite_Mcropped_2",)
"""Crops the released loader left out."""


def intensity_folder(intensity: float) -> str:
    """Folder name of an intensity scale, e.g. ``raw_scale075`` for 0.75.

    >>> intensity_folder(0.05)
    'raw_scale005'
    """
    if intensity not in INTENSITIES:
        raise InputError(
            f"intensity {intensity!r} was not published; available: {', '.join(map(str, INTENSITIES))} "
            "(other scales can be synthesised from 1.0 with ispkit.sensor.scale_exposure)"
        )
    return f"raw_scale{round(intensity * 100):03d}"


def _require(path: Path, what: str) -> Path:
    if not path.exists():
        raise FileNotFoundError(
            f"{what} not found at {path}. Download {RECORD} and unpack it so that {path} exists "
            "(or pass download=True, or run `ispkit data download --root DIR`), "
            "or write synthetic data in the same layout with `ispkit data synth`"
        )
    return path


def _fetch_missing(root: str | os.PathLike[str], needed: list[Path], download: bool) -> None:
    """With ``download``, fetch the published record into ``root`` if a needed path is missing."""
    if download and not all(p.exists() for p in needed):
        from .download import download_record

        download_record(root)


def _zone(stem: str) -> str:
    """The slide zone of a crop: ``Ma190c_lame1_zone1_composite_Mcropped_3`` → ``Ma190c_lame1_zone1``."""
    match = re.match(r"^(.*?)_composite_Mcropped_\d+$", stem)
    return match.group(1) if match else stem


class RawMicroscopy(Dataset):
    """Raw-Microscopy: 256×256 raw crops of single leukocytes in nine classes.

    Parameters
    ----------
    root
        Folder holding ``microscopy/``.
    intensity
        One of :data:`INTENSITIES`.
    camera
        Camera of the raw files (default: the built-in ``microscopy`` camera).
    min_samples
        Keep classes with at least this many crops (the released loader kept classes
        with more than 4).
    exclude
        Stems to leave out (default: the crop the released loader excluded).
    download
        If the files are missing, download the published record into ``root`` first
        (:func:`ispkit.data.download.download_record`).
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        intensity: float = 1.0,
        camera: Camera | str = "microscopy",
        min_samples: int = 5,
        exclude: tuple[str, ...] = EXCLUDED_MICROSCOPY,
        download: bool = False,
    ) -> None:
        base = Path(root) / "microscopy"
        _fetch_missing(root, [base / "images" / intensity_folder(intensity), base / "labels" / "Ma190c_annotations.dat"], download)
        self.camera = Camera.get(camera)
        self.intensity = intensity
        self.folder = _require(base / "images" / intensity_folder(intensity), "Raw-Microscopy images")
        labels_file = _require(base / "labels" / "Ma190c_annotations.dat", "Raw-Microscopy labels")
        entries = []
        for number, line in enumerate(labels_file.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            parts = line.split()
            if len(parts) != 2:
                raise RawFormatError(f"{labels_file}:{number}: expected '<stem> <CLASS>', got {line!r}")
            stem = Path(parts[0]).stem if parts[0].endswith((".tif", ".tiff")) else parts[0]
            if stem not in exclude:
                entries.append((stem, parts[1]))
        counts = Counter(label for _, label in entries)
        self.classes = sorted(c for c, n in counts.items() if n >= min_samples)
        entries = [(s, c) for s, c in entries if c in self.classes]
        missing = [s for s, _ in entries if not (self.folder / f"{s}.tiff").exists()]
        if missing:
            raise FileNotFoundError(f"{len(missing)} labelled crops are missing from {self.folder}, e.g. {missing[0]}.tiff")
        self.stems = [s for s, _ in entries]
        self.labels = np.array([self.classes.index(c) for _, c in entries])
        self.groups = [_zone(s) for s in self.stems]
        self.synthetic = (Path(root) / "microscopy" / "SYNTHETIC.txt").exists()

    def __len__(self) -> int:
        return len(self.stems)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        raw = read_raw(self.folder / f"{self.stems[index]}.tiff", camera=self.camera).mosaic
        return torch.from_numpy(raw.astype(np.float32))[None], int(self.labels[index])


def _read_mask(path: Path) -> np.ndarray:
    """A car mask PNG (grey or colour) as booleans: any non-zero pixel is a car."""
    try:
        pixels = np.asarray(Image.open(path))
    except OSError as exc:
        raise RawFormatError(f"{path}: not a readable PNG mask ({exc})") from None
    return np.asarray(pixels.reshape(*pixels.shape[:2], -1).any(axis=-1))


class _DroneTiles(Dataset):
    """Raw-Drone frames cut into tiles; the frames are read lazily and a few are cached."""

    index: list[tuple[str, int, int]]  # (frame, row, column) of each tile, set by the subclass

    def __init__(self, root: str | os.PathLike[str], intensity: float, camera: Camera | str, tile: int, cache: int, download: bool = False) -> None:
        base = Path(root) / "drone"
        _fetch_missing(root, [base / "images_full" / intensity_folder(intensity), base / "masks_full"], download)
        self.camera = Camera.get(camera)
        self.intensity = intensity
        self.tile = tile
        self.folder = _require(base / "images_full" / intensity_folder(intensity), "Raw-Drone frames")
        masks = sorted(_require(base / "masks_full", "Raw-Drone masks").glob("*.png"))
        if not masks:
            raise FileNotFoundError(f"no car masks (*.png) in {base / 'masks_full'}")
        self.frames = [m.stem for m in masks]
        self._masks = {m.stem: _read_mask(m) for m in masks}
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_size = cache
        self.synthetic = (base / "SYNTHETIC.txt").exists()

    def _tiles(self, frame: str) -> list[tuple[int, int, float]]:
        mask = self._masks[frame]
        t = self.tile
        return [(r, c, float(mask[r : r + t, c : c + t].mean())) for r in range(0, mask.shape[0] - t + 1, t) for c in range(0, mask.shape[1] - t + 1, t)]

    def _frame(self, frame: str) -> np.ndarray:
        if frame not in self._cache:
            raw = read_raw(_require(self.folder / f"{frame}.tiff", "Raw-Drone frame"), camera=self.camera).mosaic
            if raw.shape != self._masks[frame].shape:
                raise RawFormatError(f"frame {frame}: raw {raw.shape} and mask {self._masks[frame].shape} differ in size")
            self._cache[frame] = raw
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        self._cache.move_to_end(frame)
        return self._cache[frame]

    def __len__(self) -> int:
        return len(self.index)

    def _crop(self, index: int) -> tuple[torch.Tensor, np.ndarray]:
        frame, r, c = self.index[index]
        t = self.tile
        raw = self._frame(frame)[r : r + t, c : c + t]
        return torch.from_numpy(raw.astype(np.float32))[None], self._masks[frame][r : r + t, c : c + t]


class RawDroneSegmentation(_DroneTiles):
    """Raw-Drone car segmentation: the 256×256 tiles (stride 256) that contain a car.

    Items are ``(raw (1, 256, 256), mask (1, 256, 256))``, float32 tensors. With
    ``download=True`` a missing dataset is first downloaded into ``root`` (as for
    :class:`RawMicroscopy`).
    """

    def __init__(
        self, root: str | os.PathLike[str], intensity: float = 1.0, camera: Camera | str = "drone", tile: int = 256, cache: int = 2, download: bool = False
    ) -> None:
        super().__init__(root, intensity, camera, tile, cache, download)
        self.index = [(f, r, c) for f in self.frames for r, c, fraction in self._tiles(f) if fraction > 0]
        self.groups = [f for f, _, _ in self.index]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        raw, mask = self._crop(index)
        return raw, torch.from_numpy(mask.astype(np.float32))[None]


class RawDroneClassification(_DroneTiles):
    """Raw-Drone car / no-car tiles: label 1 where the mask covers more than 1 %, 0 where it is empty.

    Tiles with a car covering at most 1 % are left out (as in the released code).
    ``download=True`` downloads a missing dataset first (as for :class:`RawMicroscopy`).
    """

    def __init__(
        self, root: str | os.PathLike[str], intensity: float = 1.0, camera: Camera | str = "drone", tile: int = 256, cache: int = 2, download: bool = False
    ) -> None:
        super().__init__(root, intensity, camera, tile, cache, download)
        self.index, labels = [], []
        for f in self.frames:
            for r, c, fraction in self._tiles(f):
                if fraction > 0.01 or fraction == 0:
                    self.index.append((f, r, c))
                    labels.append(int(fraction > 0.01))
        self.labels = np.array(labels)
        self.classes = ["no car", "car"]
        self.groups = [f for f, _, _ in self.index]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        raw, _ = self._crop(index)
        return raw, int(self.labels[index])
