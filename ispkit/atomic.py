"""Atomic, non-clobbering file writes.

Everything ispkit writes (images, reports, checkpoints, run records) goes through
:func:`atomic_write`: the content is written to a hidden temporary file in the
destination folder and then moved into place in one step, so that a reader sees either
the old file or the complete new one, never a half-written file.

This module is a leaf: it imports nothing from ispkit but :mod:`ispkit.errors`, so the
pipeline, the drift controls and the dataset tools can write files without importing
the raw-file layer (:mod:`ispkit.io`).
"""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from .errors import storage_oserror

__all__ = ["atomic_write", "atomic_write_text"]

# link(2) fails with these where the file system has no hard links (FAT, some FUSE and SMB mounts).
_NO_HARD_LINKS = frozenset({errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS, errno.EXDEV, errno.EMLINK})


def atomic_write(path: str | os.PathLike[str], write: Callable[[Path], object], *, overwrite: bool = True) -> Path:
    """Call ``write(tmp_path)`` and move the complete result to ``path`` in one step.

    Parameters
    ----------
    path
        Destination; its folder is created if missing.
    write
        Writes the complete file to the temporary path it is given (in ``path``'s folder,
        named ``.<name>.<random>.tmp``).
    overwrite
        If false, an existing ``path`` raises :class:`FileExistsError` and stays untouched.

    Returns
    -------
    Path
        ``path``.

    Notes
    -----
    Guarantees:

    - **Atomic.** ``path`` holds either its old content (or does not exist) or the
      complete new file; the file gets the permissions a plain ``open(path, "w")`` would
      give it (mkstemp's private 0600 is widened by the umask).
    - **Race-free without overwrite.** With ``overwrite=False`` the file is published by
      ``link(2)``, which fails if the name exists, so of two concurrent writers of the
      same new ``path`` exactly one succeeds and the other gets :class:`FileExistsError`
      (on file systems without hard links an ``O_EXCL`` create reserves the name first,
      which is just as exclusive but shows an empty file for an instant).
    - **No litter.** The temporary file is removed on any failure, including
      :class:`KeyboardInterrupt` and other :class:`BaseException` s raised by ``write``.
      (A process killed by SIGKILL cannot clean up; its ``.*.tmp`` file stays.)
    - **Named storage errors.** A full disk, a quota, a read-only file system or a
      missing permission raises :class:`OSError` naming ``path`` (see
      :func:`ispkit.errors.storage_oserror`), even where ``write`` raised a library
      error that merely wraps it.
    """
    path = Path(path)
    if not overwrite and path.exists():  # fail before doing the work; the publication below re-checks atomically
        raise FileExistsError(f"{path} exists; refusing to overwrite it")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(name)
    try:
        os.close(fd)
        os.chmod(tmp, 0o666 & ~_umask())
        write(tmp)
        if overwrite:
            os.replace(tmp, path)
        else:
            _publish_exclusively(tmp, path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        cause = None if isinstance(exc, FileExistsError) else storage_oserror(exc)
        if cause is not None and cause.filename is None:  # name the file the full disk (etc.) stopped
            raise OSError(cause.errno, cause.strerror, str(path)) from exc
        raise
    return path


def atomic_write_text(path: str | os.PathLike[str], text: str, *, overwrite: bool = True) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically, with the guarantees of :func:`atomic_write`."""
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"), overwrite=overwrite)


def _publish_exclusively(tmp: Path, path: Path) -> None:
    """Give the complete file ``tmp`` the name ``path`` unless that name exists (then FileExistsError)."""
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise FileExistsError(f"{path} exists; refusing to overwrite it") from None
    except OSError as exc:
        if exc.errno not in _NO_HARD_LINKS:
            raise
        linked = False
    else:
        linked = True
    if linked:
        tmp.unlink()
    else:  # outside the except block, so that a refusal does not carry the link error as its context
        _reserve(path)
        os.replace(tmp, path)


def _reserve(path: Path) -> None:
    """Create ``path`` empty with ``O_EXCL``: FileExistsError if another writer got there first."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    except FileExistsError:
        raise FileExistsError(f"{path} exists; refusing to overwrite it") from None


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
