"""Hook specification of the drift layer: view distances for forensics (pluggy project ``"ispkit"``, one plugin manager).

:data:`DISTANCES` describes the hook's items for the registry; :mod:`ispkit.drift`
registers it (:func:`ispkit.registry.register_kind`) when it is imported, with ispkit's own
distances (:mod:`ispkit.drift.builtins`). A plugin implements the hook with
``@ispkit.hookimpl`` like the core's hooks (:mod:`ispkit.hookspecs`).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable

from ..hookspecs import hookspec
from ..registry import named_kind
from . import builtins
from .distances import HOOK, Distance

__all__ = ["DISTANCES", "ispkit_distances"]


@hookspec
def ispkit_distances() -> Iterable[Distance]:
    """Return the :class:`ispkit.drift.distances.Distance` objects a plugin provides (forensics), by name."""


DISTANCES = named_kind(HOOK, "distance", Distance, specs=sys.modules[__name__], builtins=builtins)
"""View distances, keyed by name: what a forensics experiment's ``distance:`` key uses."""
