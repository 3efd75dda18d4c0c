"""The plugin module named by the entry point ``[project.entry-points.ispkit] optics = "ispkit_plugin_optics.plugin"``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import ispkit

from .lens import AiryLens, GaussianLens

if TYPE_CHECKING:
    from ispkit.raw_corruptions import RawCorruption


@ispkit.hookimpl
def ispkit_stages() -> list[type[ispkit.Stage]]:
    """The ``lens`` stage kind: methods ``airy`` and ``gaussian``."""
    return [AiryLens, GaussianLens]


@ispkit.hookimpl
def ispkit_raw_corruptions() -> list[RawCorruption]:
    """The raw-domain corruption ``defocus`` (imported when asked for, so that loading the plugin stays light)."""
    from .defocus import DEFOCUS

    return [DEFOCUS]
