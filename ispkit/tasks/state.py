"""Loading saved model state without running code from the file.

``torch.save`` files are pickles, and unpickling an arbitrary pickle runs arbitrary
code. Every load of model state in ispkit -- task-model checkpoints, ``weights:``
files and URLs, per-epoch resume states, the napari classifier -- goes through
:func:`load_state`, which unpickles with ``weights_only=True``: only tensors, plain
containers (dict, list, tuple), numbers, strings and the few torch types needed for
optimiser and generator states are rebuilt; anything else (a class whose
``__reduce__`` would call ``os.system``, say) is refused before it is called, with an
:class:`~ispkit.errors.InputError` naming the file.

A URL is downloaded into torch's hub cache (``torch.hub.get_dir()/checkpoints``) and
then loaded the same way.
"""

from __future__ import annotations

import itertools
import os
import pickle
from pathlib import Path
from typing import Any

import torch

from ..atomic import atomic_write
from ..errors import InputError

__all__ = ["load_state", "save_state", "is_url"]


def is_url(source: str | os.PathLike[str]) -> bool:
    """Whether ``source`` is an ``http(s)://`` URL.

    >>> is_url("https://example.org/w.pth"), is_url("weights/w.pth")
    (True, False)
    """
    return os.fspath(source).startswith(("http://", "https://"))


def save_state(state: Any, path: str | os.PathLike[str], *, overwrite: bool = True) -> Path:
    """``torch.save`` ``state`` to ``path`` atomically (:func:`ispkit.atomic.atomic_write`).

    The file is written through a Python file object, so that a failing write (a full
    disk, say) surfaces as the :class:`OSError` it is -- as the context of torch's own
    ``RuntimeError`` -- rather than as an anonymous stream error.
    """

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as file:
            torch.save(state, file)

    return atomic_write(path, write, overwrite=overwrite)


def load_state(source: str | os.PathLike[str], *, what: str, map_location: str | torch.device = "cpu") -> Any:
    """Load a ``torch.save`` file (or URL) of tensors and plain values; refuse anything else.

    Parameters
    ----------
    source
        A local file, or an ``http(s)://`` URL (downloaded into torch's hub cache first).
    what
        Names the thing being loaded in error messages (``"resnet18 weights"``,
        ``"ispkit task-model checkpoint"``, ...).
    map_location
        Where tensors are placed.

    Raises
    ------
    FileNotFoundError
        ``source`` is a path that does not exist.
    InputError
        The file holds Python objects other than tensors and plain values (a pickle that
        could run code), or is not a readable torch file.
    """
    text = os.fspath(source)
    try:
        if is_url(text):
            return torch.hub.load_state_dict_from_url(text, map_location=map_location, progress=False, weights_only=True)
        if not os.path.isfile(text):
            raise FileNotFoundError(f"{what} {text!r} not found")
        return torch.load(text, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        refused, detail = _unpickler_reason(exc)
        if refused:
            raise InputError(
                f"refusing to load {what} {text!r}: it holds Python objects other than tensors and plain values, "
                f"which could run code when loaded ({detail}); ispkit only loads files of tensors and plain values"
            ) from None
        raise InputError(f"{text!r} is not a readable {what} (a torch.save file): {detail}") from None
    except (FileNotFoundError, InputError):
        raise
    except Exception as exc:  # truncated, not a torch file, network failure, ...
        raise InputError(f"{text!r} is not a readable {what} (a torch.save file): {type(exc).__name__}: {exc}") from None


def _unpickler_reason(exc: Exception) -> tuple[bool, str]:
    """``(refused, detail)`` from torch's weights-only error: whether it refused a Python object
    (a ``GLOBAL``), and the line that says what it met. (Its advice to load with
    ``weights_only=False`` is exactly what must not be done, so it is not repeated.)"""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    refused = [line for line in lines if "GLOBAL" in line]
    if refused:
        return True, refused[0]
    after = [b for a, b in itertools.pairwise(lines) if a.endswith("WeightsUnpickler error:")]
    return False, (after or [f"{type(exc).__name__}: corrupt pickle data"])[0]
