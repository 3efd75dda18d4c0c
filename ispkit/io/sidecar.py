"""Camera metadata stored with a raw file: embedded in its ImageDescription, or in a sidecar YAML beside it.

Both hold :meth:`Camera.to_yaml <ispkit.camera.Camera.to_yaml>` text and both are read
with the hardened YAML loader (:func:`ispkit.config.parse_yaml`: no aliases, bounded
size, nodes and depth), so a crafted file cannot make the reader spend unbounded time
or memory.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..atomic import atomic_write_text
from ..camera import Camera
from ..config import parse_yaml
from ..errors import ConfigError, RawFormatError

__all__ = ["CAMERA_MARKER", "sidecar_paths", "write_sidecar", "find_sidecar", "embed_camera", "embedded_camera"]

CAMERA_MARKER = "ispkit-camera"
"""First key of the ImageDescription that :func:`~ispkit.io.write_raw` writes: ``ispkit-camera: 1``."""

FORMAT_VERSION = 1
"""Version of the embedded camera format this ispkit writes and reads."""

_SIDECAR = ".camera.yaml"


def sidecar_paths(path: str | os.PathLike[str]) -> tuple[Path, Path]:
    """The two sidecar names :func:`~ispkit.io.read_raw` looks for, in the order it tries them.

    Examples
    --------
    >>> [p.name for p in sidecar_paths("data/img.tiff")]
    ['img.tiff.camera.yaml', 'img.camera.yaml']
    """
    path = Path(path)
    return path.with_name(path.name + _SIDECAR), path.with_name(path.stem + _SIDECAR)


def find_sidecar(path: Path) -> Path | None:
    """The first of :func:`sidecar_paths` that is a file, or ``None``."""
    return next((p for p in sidecar_paths(path) if p.is_file()), None)


def write_sidecar(
    path: str | os.PathLike[str],
    camera: Camera | str | Mapping[str, Any],
    *,
    overwrite: bool = False,
) -> Path:
    """Describe a raw file that has no camera metadata with a sidecar ``<path>.camera.yaml``.

    Published raw TIFFs (Raw-Microscopy, Raw-Drone) carry no camera; after
    ``write_sidecar("img.tiff", "microscopy")``, ``read_raw("img.tiff")`` picks up
    ``img.tiff.camera.yaml`` (a camera passed to :func:`~ispkit.io.read_raw` and one
    embedded by :func:`~ispkit.io.write_raw` still take precedence). The write is atomic.

    Parameters
    ----------
    path
        The raw file; it must exist.
    camera
        A :class:`~ispkit.camera.Camera`, a registered name, a YAML path or a mapping.
    overwrite
        If false (the default), an existing sidecar raises :class:`FileExistsError`.

    Returns
    -------
    Path
        The sidecar's path.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(errno.ENOENT, "no raw file to write a sidecar for", str(path))
    camera = Camera.get(camera)
    target = sidecar_paths(path)[0]
    if not overwrite and target.exists():
        raise FileExistsError(f"{target} exists; refusing to overwrite it (pass overwrite=True to replace it)")
    text = f"# Camera of {path.name}; ispkit.io.read_raw reads it when the file carries no camera.\n" + camera.to_yaml()
    return atomic_write_text(target, text, overwrite=overwrite)


def embed_camera(camera: Camera) -> str:
    """The ImageDescription text that describes ``camera``: ``ispkit-camera: 1`` then its YAML (ASCII)."""
    text = f"{CAMERA_MARKER}: {FORMAT_VERSION}\n{camera.to_yaml()}"
    text.encode("ascii")  # yaml.safe_dump escapes non-ASCII; TIFF strings must be ASCII
    return text


def embedded_camera(description: str, path: Path) -> Camera | None:
    """The camera :func:`embed_camera` wrote into ``description``, or ``None`` if it holds none.

    Raises :class:`~ispkit.errors.RawFormatError` naming ``path`` and the line for
    malformed or hostile YAML, an unknown format version or an invalid camera.
    """
    if not description.startswith(f"{CAMERA_MARKER}:"):
        return None
    where = f"{path}: the camera embedded in its ImageDescription"
    try:
        data, locator = parse_yaml(description, f"{path} (ImageDescription)")
    except ConfigError as exc:
        raise RawFormatError(f"{where} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict) or CAMERA_MARKER not in data:
        raise RawFormatError(f"{where} is not a mapping starting with '{CAMERA_MARKER}: {FORMAT_VERSION}'")
    version = data.pop(CAMERA_MARKER)
    if isinstance(version, bool) or version != FORMAT_VERSION:  # YAML `true` is not version 1
        raise RawFormatError(f"{where} has format version {version!r}; this ispkit reads version {FORMAT_VERSION}")
    try:
        return Camera.from_dict(data, locator=locator)
    except ConfigError as exc:
        raise RawFormatError(f"{where} is invalid: {exc}") from exc
