"""Reading the raw page of a TIFF file (single-page raw TIFFs; the page finder for DNGs is in :mod:`.dng`)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import tifffile

from ..errors import ISPKitError, RawFormatError

@contextlib.contextmanager
def _wrapped(path: Path, what: str) -> Iterator[None]:
    """Turn any error of tifffile on a bad file into a RawFormatError naming ``path``."""
    try:
        yield
    except (ISPKitError, MemoryError, FileNotFoundError, IsADirectoryError, PermissionError):
        raise
    except Exception as exc:
        raise RawFormatError(f"{path}: {what} ({type(exc).__name__}: {exc})") from exc


def _name(value: Any) -> str:
    return getattr(value, "name", str(value))


def _single_page(tif: tifffile.TiffFile, path: Path) -> tifffile.TiffPage:
    count = len(tif.pages)
    if count != 1:
        raise RawFormatError(f"{path}: expected a single-page raw TIFF, found {count} pages (an image stack?)")
    return tif.pages[0]


def _check_page(page: tifffile.TiffPage, path: Path) -> None:
    if page.samplesperpixel != 1:
        raise RawFormatError(
            f"{path}: expected a raw mosaic with one sample per pixel, found {page.samplesperpixel} "
            "(an RGB or multi-channel image?)"
        )
    if len(page.shape) != 2:
        raise RawFormatError(f"{path}: expected a 2-D raw mosaic (H, W), found a page of shape {page.shape}")
    dtype = page.dtype
    if page.sampleformat != 1 or dtype is None or dtype.kind != "u" or page.bitspersample > 32:
        raise RawFormatError(
            f"{path}: expected unsigned integers (8, 16 or 32 bit), found {page.bitspersample}-bit "
            f"{_name(page.sampleformat)} samples (dtype {dtype})"
        )


def _check_complete(page: tifffile.TiffPage, path: Path, size: int) -> None:
    segments = list(zip(page.dataoffsets, page.databytecounts))
    if not segments or any(count == 0 for _, count in segments):
        raise RawFormatError(f"{path}: the raw page has missing image data (empty strips or tiles)")
    end = max(offset + count for offset, count in segments)
    if end > size:
        raise RawFormatError(f"{path}: the file is truncated: its image data run to byte {end}, but it has {size} bytes")
    h, w = page.shape
    needed = h * ((w * page.bitspersample + 7) // 8)
    stored = sum(count for _, count in segments)
    if page.compression == 1 and stored < needed:
        raise RawFormatError(
            f"{path}: its uncompressed image data hold {stored} bytes, but a {h}×{w} image of "
            f"{page.bitspersample}-bit samples needs {needed} (corrupt header?)"
        )


def _numbers(path: Path, page: tifffile.TiffPage, code: int, *fallbacks: tifffile.TiffPage) -> list[float] | None:
    """A tag's values as floats (rationals divided out), from ``page`` or else ``fallbacks``."""
    for where in (page, *fallbacks):
        tag = where.tags.get(code)
        if tag is not None:
            break
    else:
        return None
    value = tag.value
    if isinstance(value, (bytes, bytearray)):
        values = list(value)
    else:
        values = [float(v) for v in np.ravel(np.asarray(value, dtype=float))]
    if int(tag.dtype) in (5, 10):  # (S)RATIONAL: numerator, denominator pairs
        if len(values) % 2 or 0 in values[1::2]:
            raise RawFormatError(f"{path}: tag {tag.name} holds an invalid rational {value!r}")
        values = [n / d for n, d in zip(values[::2], values[1::2])]
    return [float(v) for v in values]


