"""The plugin object named by the ``ispkit`` entry point ``denoise_extra``.

>>> [s.method for s in ispkit_stages()]
['bilateral', 'tv_chambolle', 'nl_means']
"""

from __future__ import annotations

import ispkit

from . import STAGES


@ispkit.hookimpl
def ispkit_stages() -> list[type[ispkit.Stage]]:
    """The denoisers of this distribution: ``bilateral``, ``tv_chambolle`` and ``nl_means``."""
    return list(STAGES)
