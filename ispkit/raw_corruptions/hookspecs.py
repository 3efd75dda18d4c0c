"""Hook specification of the raw-domain corruptions (pluggy project ``"ispkit"``, one plugin manager).

:data:`RAW_CORRUPTIONS` describes the hook's items for the registry; :mod:`ispkit.raw_corruptions`
registers it (:func:`ispkit.registry.register_kind`) when it is imported, with ispkit's own
corruptions (:mod:`ispkit.raw_corruptions.builtins`). A plugin implements the hook with
``@ispkit.hookimpl`` like the core's hooks (:mod:`ispkit.hookspecs`); the optics plugin
provides ``defocus`` this way. A plugin's faults (an import or hook that raises, an item
that is not a :class:`~ispkit.raw_corruptions.base.RawCorruption`, a name ispkit already
provides) are recorded and skipped like those of any other kind.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable

from ..hookspecs import hookspec
from ..registry import named_kind
from . import builtins
from .base import RawCorruption

__all__ = ["RAW_CORRUPTIONS", "ispkit_raw_corruptions"]


@hookspec
def ispkit_raw_corruptions() -> Iterable[RawCorruption]:
    """Return the :class:`ispkit.raw_corruptions.RawCorruption` objects a plugin provides, registered by name."""


RAW_CORRUPTIONS = named_kind("ispkit_raw_corruptions", "raw corruption", RawCorruption, specs=sys.modules[__name__], builtins=builtins)
"""Raw-domain corruptions, keyed by name: what :func:`ispkit.raw_corruptions.corrupt_raw` applies."""
