"""Your own raw files as a dataset: class sub-folders or a CSV manifest, and masks for segmentation.

Any file :func:`ispkit.io.read_raw` reads (TIFF, DNG) can be a sample. Two layouts:

.. code-block:: text

    root/<class>/*.tif|*.tiff|*.dng        classification: one folder per class, each file its own source
    root/<class>/<group>/...                files in a sub-folder share the group <group> (a patient, a slide, a scene)

    root/*.tif|*.tiff|*.dng                 segmentation: the raw files,
    root/masks/<stem>.png|.tif|.tiff        and one mask per raw file, of the same stem

or a CSV manifest (UTF-8, a header row, one row per sample; paths relative to the CSV)::

    path,label,group                        classification (group optional: each file its own source)
    slide1/a.tif,lymphocyte,slide1
    path,mask,group                         segmentation (mask optional: <CSV folder>/masks/<stem>.png|.tif|.tiff)

Other columns are ignored. ``group`` says which samples come from one source:
:func:`ispkit.data.grouped_stratified_kfold` never puts one group in two folds.

Guarantees
----------
- The layout and the manifest are checked when the dataset is made, before any pixel is
  read (:func:`scan_raw_folder`): a missing folder, manifest, raw file or mask, a class
  folder without raw files, fewer than two classes, an empty field, a row with too many or
  too few fields and a file listed twice are errors naming the folder or file; manifest
  errors are :class:`~ispkit.errors.ConfigError` at the CSV's line.
- Every raw file has the size and the camera of the first one (in sorted order): a file
  of another size, or whose camera differs (pattern, levels, colour, ...), is a
  :class:`~ispkit.errors.RawFormatError` naming both files and what differs, when it is
  read. With ``camera=`` given, that camera is used for every file (as in
  :func:`~ispkit.io.read_raw`), so only sizes are compared.
- Masks are one-channel (or grey RGB) images of the raw file's size holding 0/1 or 0/255;
  anything else is a :class:`~ispkit.errors.RawFormatError` naming the mask.

Items are ``(raw, target)`` as for the published datasets (:mod:`ispkit.data.published`):
``raw`` a float32 tensor ``(1, H, W)`` in [0, 1], the target a class index or a float32
mask ``(1, H, W)`` of 0 and 1.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tifffile
import torch
from PIL import Image
from torch.utils.data import Dataset

from ..camera import Camera
from ..errors import ConfigError, InputError, RawFormatError
from ..io import RawImage, read_raw

__all__ = ["RAW_SUFFIXES", "MASK_SUFFIXES", "FolderEntry", "scan_raw_folder", "RawFolder", "RawFolderSegmentation"]

RAW_SUFFIXES = (".tif", ".tiff", ".dng")
"""Suffixes (any case) of the raw files a folder layout picks up."""

MASK_SUFFIXES = (".png", ".tif", ".tiff")
"""Suffixes of mask files found by stem (``masks/<stem><suffix>``)."""

MASKS = "masks"
"""The folder of the masks, next to the raw files (or the manifest)."""

_TASKS = ("classification", "segmentation")
_MAX_MANIFEST = 100_000_000
"""Largest manifest read, in bytes (about a million rows)."""


@dataclass(frozen=True)
class FolderEntry:
    """One sample: its raw file, class (classification), source group and mask (segmentation)."""

    path: Path
    label: str | None
    group: str
    mask: Path | None = None


def scan_raw_folder(source: str | os.PathLike[str], task: str) -> list[FolderEntry]:
    """The samples of a folder layout or a CSV manifest, checked but not read (see the module docstring).

    Parameters
    ----------
    source
        A folder (class sub-folders, or raw files and ``masks/``), or a ``.csv`` manifest.
    task
        ``"classification"`` or ``"segmentation"``.

    Returns
    -------
    list of FolderEntry
        Sorted by path (folder) or in the manifest's order.

    Raises
    ------
    FileNotFoundError
        ``source`` does not exist.
    InputError
        The folder does not have the layout of ``task``.
    ConfigError
        A problem in the manifest, at its line.
    """
    if task not in _TASKS:
        raise InputError(f"raw folder: task must be one of {_TASKS}, got {task!r}")
    source = Path(source)
    if not source.exists():
        raise FileNotFoundError(f"raw folder or manifest {source} not found")
    folder_layout = _class_folders if task == "classification" else _segmentation_folder
    entries = folder_layout(source) if source.is_dir() else _manifest(source, task)
    if task == "classification":
        classes = sorted({e.label for e in entries if e.label is not None})
        if len(classes) < 2:
            raise InputError(f"raw folder {source}: a classification dataset needs at least two classes, found {classes}")
    return entries


def _visible(path: Path) -> bool:
    return not path.name.startswith(".")


def _raw_files(folder: Path, recursive: bool) -> list[Path]:
    """The raw files under ``folder`` (hidden files and folders, names starting with ".", skipped), sorted."""
    found = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(
        p for p in found if p.is_file() and p.suffix.lower() in RAW_SUFFIXES and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )


def _class_folders(root: Path) -> list[FolderEntry]:
    """``root/<class>/[<group>/]*.tif``: the class is the folder, the group the sub-folder (or the file itself)."""
    loose = _raw_files(root, recursive=False)
    if loose:
        raise InputError(f"raw folder {root}: {loose[0].name} is not in a class folder; put each raw file in root/<class>/ (the folder names the class)")
    classes = sorted(p for p in root.iterdir() if p.is_dir() and _visible(p))
    if not classes:
        raise InputError(f"raw folder {root} has no class folders: expected root/<class>/*.tif (or .tiff, .dng), one folder per class")
    entries = []
    for folder in classes:
        files = _raw_files(folder, recursive=True)
        if not files:
            raise InputError(f"class folder {folder} holds no raw files ({', '.join(RAW_SUFFIXES)})")
        for path in files:
            inside = path.relative_to(folder)
            group = inside.parts[0] if len(inside.parts) > 1 else f"{folder.name}/{path.name}"
            entries.append(FolderEntry(path, folder.name, group))
    return entries


def _segmentation_folder(root: Path) -> list[FolderEntry]:
    """``root/*.tif`` with ``root/masks/<stem>.png|.tif|.tiff``; each file its own group."""
    files = _raw_files(root, recursive=False)
    if not files:
        raise InputError(f"raw folder {root} holds no raw files ({', '.join(RAW_SUFFIXES)}); a segmentation folder holds them directly, masks in {MASKS}/")
    _unique_stems(files, root)
    return [FolderEntry(path, None, path.name, _find_mask(root / MASKS, path)) for path in files]


def _unique_stems(files: list[Path], where: Path) -> None:
    stems: dict[str, Path] = {}
    for path in files:
        if path.stem in stems:
            raise InputError(
                f"{where}: {stems[path.stem].name} and {path.name} share the stem {path.stem!r}, so their masks ({MASKS}/{path.stem}.png) would be one"
            )
        stems[path.stem] = path


def _find_mask(folder: Path, raw: Path) -> Path:
    """The one mask ``folder/<stem of raw><suffix>``."""
    found = [folder / f"{raw.stem}{suffix}" for suffix in MASK_SUFFIXES if (folder / f"{raw.stem}{suffix}").is_file()]
    if not found:
        raise InputError(f"no mask for {raw}: expected one of {', '.join(raw.stem + s for s in MASK_SUFFIXES)} in {folder}")
    if len(found) > 1:
        raise InputError(f"two masks for {raw} in {folder}: {found[0].name} and {found[1].name}; keep one")
    return found[0]


# -- the manifest ------------------------------------------------------------------------


def _manifest_text(path: Path) -> str:
    if path.stat().st_size > _MAX_MANIFEST:
        raise ConfigError(f"manifest is larger than {_MAX_MANIFEST // 1_000_000} MB", source=str(path))
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigError("a manifest is UTF-8 CSV text; this is not (a spreadsheet file? export it as CSV)", source=str(path), line=line) from None


def _rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    """``(line, fields)`` of every non-blank row of the CSV ``path``, fields stripped."""
    reader = csv.reader(io.StringIO(_manifest_text(path), newline=""), strict=True)
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise ConfigError(f"not readable as CSV: {exc}", source=str(path), line=reader.line_num) from None
        fields = [field.strip() for field in row]
        if any(fields):
            yield reader.line_num, fields


_COLUMNS = {"classification": (("path", "label"), ("group",)), "segmentation": (("path",), ("mask", "group"))}
"""The columns a manifest of each task needs, and those it may have."""


def _header(path: Path, rows: Iterator[tuple[int, list[str]]], task: str) -> dict[str, int]:
    """Column name → index, with the columns ``task`` needs."""
    needed, optional = _COLUMNS[task]
    first = next(rows, None)
    if first is None:
        raise ConfigError(f"the manifest is empty; expected a header row with the columns {', '.join(needed + optional)}", source=str(path), line=1)
    line, names = first
    columns: dict[str, int] = {}
    for i, name in enumerate(names):
        if name in columns:
            raise ConfigError(f"column {name!r} appears twice in the header", source=str(path), line=line)
        columns[name] = i
    missing = [name for name in needed if name not in columns]
    if missing:
        raise ConfigError(
            f"the header lacks the column(s) {', '.join(missing)}: a {task} manifest has the columns {', '.join(needed)} "
            f"(and optionally {', '.join(optional)}); found {', '.join(map(repr, names))}",
            source=str(path),
            line=line,
        )
    return columns


def _manifest(path: Path, task: str) -> list[FolderEntry]:
    rows = _rows(path)
    columns = _header(path, rows, task)
    base = path.parent
    entries: list[FolderEntry] = []
    seen: dict[Path, int] = {}
    for line, fields in rows:

        def fail(message: str, line: int = line) -> ConfigError:
            return ConfigError(message, source=str(path), line=line)

        if len(fields) != len(columns):
            raise fail(f"the row has {len(fields)} field(s), the header {len(columns)}")
        value = {name: fields[i] for name, i in columns.items() if name in _COLUMNS[task][0] + _COLUMNS[task][1]}
        for name, text in value.items():
            if not text:
                raise fail(f"empty {name}")
        raw = base / value["path"]
        if not raw.is_file():
            raise fail(f"raw file {value['path']!r} not found (looked for {raw})")
        if raw.resolve() in seen:
            raise fail(f"raw file {value['path']!r} is listed twice (first at line {seen[raw.resolve()]})")
        seen[raw.resolve()] = line
        mask = None
        if task == "segmentation":
            mask = base / value["mask"] if "mask" in value else None
            if mask is not None and not mask.is_file():
                raise fail(f"mask {value['mask']!r} not found (looked for {mask})")
            if mask is None:
                try:
                    mask = _find_mask(base / MASKS, raw)
                except InputError as exc:
                    raise fail(str(exc)) from None
        entries.append(FolderEntry(raw, value.get("label"), value.get("group", value["path"]), mask))
    if not entries:
        raise ConfigError("the manifest has a header but no rows", source=str(path))
    if task == "segmentation" and "mask" not in columns:
        _unique_stems([e.path for e in entries], path)
    return entries


# -- reading -----------------------------------------------------------------------------


def check_same_raw(image: RawImage, path: Path, reference: Path, shape: tuple[int, int], camera: Camera) -> None:
    """Raise :class:`~ispkit.errors.RawFormatError` unless ``image`` (read from ``path``) has the ``shape`` and
    ``camera`` of ``reference``, naming both files and what differs."""
    if image.mosaic.shape != shape:
        h, w = image.mosaic.shape
        raise RawFormatError(
            f"{path}: mosaic {h}×{w}, but {reference} (the dataset's first file) is {shape[0]}×{shape[1]}; "
            "all raw files of a dataset have one size: crop or bin them to one size first"
        )
    if image.camera != camera:
        raise RawFormatError(
            f"{path} and {reference} carry different cameras: {'; '.join(image.camera.differences(camera))}; the files of one dataset share one camera: "
            "fix the files, or give one camera for all (dataset.camera in an experiment, camera= in Python)"
        )


def _mask_pixels(path: Path, shape: tuple[int, int]) -> np.ndarray:
    """The pixels of the mask ``path``, decoded only if it is ``shape`` (else a :class:`RawFormatError`)."""
    if path.suffix.lower() == ".png":
        with Image.open(path) as image:
            size = (image.height, image.width)
            pixels = np.asarray(image) if size == shape else None
    else:
        with tifffile.TiffFile(path) as tif:
            page = tif.pages[0]
            height, width = page.shape[:2]
            size = (height, width)
            pixels = page.asarray() if size == shape else None
    if pixels is None:
        raise RawFormatError(f"mask {path} is {size[0]}×{size[1]}, but its raw file is {shape[0]}×{shape[1]}; a mask has its raw file's size")
    return pixels


def read_mask(path: Path, shape: tuple[int, int]) -> np.ndarray:
    """The mask ``path`` as booleans ``(H, W)``, checked to be ``shape`` and to hold 0/1 or 0/255."""
    try:
        pixels = _mask_pixels(path, shape)
    except RawFormatError:
        raise
    except Exception as exc:  # any reader's complaint about a malformed file
        raise RawFormatError(f"mask {path} is not a readable {path.suffix.lstrip('.').upper()} image ({type(exc).__name__}: {exc})") from None
    if pixels.ndim == 3:
        colour = pixels[..., :3] if pixels.shape[-1] >= 3 else pixels[..., :1]  # RGB(A), or grey with alpha
        if not (colour == colour[..., :1]).all():
            raise RawFormatError(f"mask {path} has colour; a mask is one channel (grey) of 0/1 or 0/255")
        pixels = colour[..., 0]
    values = np.unique(pixels)
    if not (set(values.tolist()) <= {0, 1} or set(values.tolist()) <= {0, 255}):
        shown = ", ".join(str(v) for v in values[:8].tolist()) + (", ..." if len(values) > 8 else "")
        raise RawFormatError(f"mask {path} holds the values {shown}; expected 0/1 or 0/255 (background/foreground)")
    return pixels > 0


class _RawFiles(Dataset):
    """Raw files of one size and one camera, read when an item is asked for."""

    task: str

    def __init__(self, source: str | os.PathLike[str], camera: Camera | str | None = None) -> None:
        self.source = Path(source)
        self.entries = scan_raw_folder(self.source, self.task)
        self._camera = None if camera is None else Camera.get(camera)
        first = read_raw(self.entries[0].path, self._camera)
        self.camera = first.camera
        height, width = first.mosaic.shape
        self.shape = (height, width)
        self.groups = [e.group for e in self.entries]
        self.paths = [e.path for e in self.entries]
        folder = self.source if self.source.is_dir() else self.source.parent
        self.synthetic = (folder / "SYNTHETIC.txt").exists()

    def __len__(self) -> int:
        return len(self.entries)

    def _raw(self, index: int) -> torch.Tensor:
        path = self.entries[index].path
        image = read_raw(path, self._camera)
        check_same_raw(image, path, self.entries[0].path, self.shape, self.camera)
        return torch.from_numpy(image.mosaic.astype(np.float32))[None]


class RawFolder(_RawFiles):
    """Classification on your own raw files: class sub-folders or a manifest with ``path,label[,group]``.

    Parameters
    ----------
    source
        The folder ``root`` (``root/<class>/*.tif``) or a ``.csv`` manifest.
    camera
        One camera for every file (a :class:`~ispkit.camera.Camera`, a registered name or
        a YAML path); default: the files' own, which must agree.

    Attributes
    ----------
    classes
        Class names, sorted; ``labels`` indexes them.
    groups
        The source of each item, for :func:`ispkit.data.grouped_stratified_kfold`.

    Examples
    --------
    >>> import tempfile
    >>> from ispkit.io import write_raw
    >>> root = Path(tempfile.mkdtemp())
    >>> for i, label in enumerate(["cat", "cat", "dog"]):
    ...     _ = write_raw(root / label / f"{i}.tiff", np.full((4, 6), 0.25 * i), "microscopy")
    >>> data = RawFolder(root)
    >>> data.classes, data.labels.tolist(), data.groups
    (['cat', 'dog'], [0, 0, 1], ['cat/0.tiff', 'cat/1.tiff', 'dog/2.tiff'])
    >>> raw, label = data[2]
    >>> raw.shape, label, data.camera.name
    (torch.Size([1, 4, 6]), 1, 'microscopy')
    """

    task = "classification"

    def __init__(self, source: str | os.PathLike[str], camera: Camera | str | None = None) -> None:
        super().__init__(source, camera)
        self.classes = sorted({str(e.label) for e in self.entries})
        self.labels = np.array([self.classes.index(str(e.label)) for e in self.entries])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self._raw(index), int(self.labels[index])


class RawFolderSegmentation(_RawFiles):
    """Segmentation on your own raw files: ``root/*.tif`` with ``root/masks/<stem>.png``, or a manifest ``path[,mask][,group]``.

    Items are ``(raw (1, H, W), mask (1, H, W))``, float32 tensors, the mask 0 or 1.
    ``camera`` as for :class:`RawFolder`.
    """

    task = "segmentation"

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        raw = self._raw(index)
        mask = read_mask(self.entries[index].mask, self.shape)  # type: ignore[arg-type]  # segmentation entries have masks
        return raw, torch.from_numpy(mask.astype(np.float32))[None]
