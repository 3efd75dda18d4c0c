"""Exceptions raised by ispkit.

Every error names the thing at fault and what was expected, so that a user can fix
the input without reading ispkit's source.
"""

from __future__ import annotations

import difflib
import errno
from collections.abc import Iterable

__all__ = [
    "ISPKitError",
    "InputError",
    "ConfigError",
    "UnknownStageError",
    "ParameterError",
    "PluginError",
    "RawFormatError",
    "DownloadError",
    "RunFolderError",
    "STORAGE_ERRNOS",
    "storage_oserror",
    "close_matches",
]


class ISPKitError(Exception):
    """Base class of all ispkit errors."""


class InputError(ISPKitError, ValueError):
    """An array handed to a stage or pipeline has the wrong shape, dtype or values."""


class ConfigError(ISPKitError, ValueError):
    """A pipeline or camera description (YAML or dict) is malformed.

    Parameters
    ----------
    message
        What is wrong and what was expected.
    source
        File name (or ``"<string>"``) the configuration came from.
    line, column
        1-based position in ``source``, when known.
    """

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        line: int | None = None,
        column: int | None = None,
    ) -> None:
        self.message = message
        self.source = source
        self.line = line
        self.column = column
        super().__init__(self._format())

    def _format(self) -> str:
        if self.source is None:
            return self.message
        where = self.source
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        return f"{where}: {self.message}"


class UnknownStageError(ConfigError, KeyError):
    """A stage kind or method is not registered; the message lists close matches."""

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return self._format()


class ParameterError(ISPKitError, ValueError):
    """A stage parameter has the wrong shape, is not finite or leaves its bounds."""


class PluginError(ISPKitError):
    """A plugin failed to load or two plugins claim the same stage."""


class RawFormatError(ISPKitError, ValueError):
    """A raw file is corrupt, truncated or not what its metadata says."""


class DownloadError(ISPKitError):
    """A dataset download failed: no network, a checksum mismatch, an unsafe archive or a changed record."""


class RunFolderError(ISPKitError):
    """A run folder cannot be used: another process is running a study in it, or it cannot be written."""


STORAGE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EPERM})
"""What a full disk, a quota, a read-only file system or a missing permission raise."""


def storage_oserror(exc: BaseException | None) -> OSError | None:
    """The :class:`OSError` of :data:`STORAGE_ERRNOS` that ``exc`` is or was raised from, if any.

    Libraries that write through their own streams (torch, SQLite) often raise an error
    of their own while the cause, a full disk say, sits in ``__cause__``/``__context__``.

    >>> try:
    ...     try:
    ...         raise OSError(errno.ENOSPC, "No space left on device")
    ...     except OSError:
    ...         raise RuntimeError("stream error")
    ... except RuntimeError as exc:
    ...     storage_oserror(exc).strerror
    'No space left on device'
    """
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in STORAGE_ERRNOS:
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


def close_matches(word: str, candidates: Iterable[str]) -> str:
    """Return a ``"did you mean ...?"`` hint followed by the list of valid names.

    >>> close_matches("bilnear", ["bilinear", "malvar2004", "menon2007"])
    "did you mean 'bilinear'? Available: 'bilinear', 'malvar2004', 'menon2007'"
    """
    candidates = sorted(candidates)
    hint = difflib.get_close_matches(word, candidates, n=3, cutoff=0.5)
    available = ", ".join(repr(c) for c in candidates) or "none"
    if hint:
        return f"did you mean {' or '.join(repr(h) for h in hint)}? Available: {available}"
    return f"available: {available}"
