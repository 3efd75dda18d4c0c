"""The plugin module named by the entry point ``[project.entry-points.ispkit] optics = "ispkit_plugin_optics.plugin"``."""

from __future__ import annotations

import ispkit

from .lens import AiryLens, GaussianLens


@ispkit.hookimpl
def ispkit_stages() -> list[type[ispkit.Stage]]:
    """The ``lens`` stage kind: methods ``airy`` and ``gaussian``."""
    return [AiryLens, GaussianLens]
