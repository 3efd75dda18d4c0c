"""Qt widgets, one module per widget; each is contributed by one command in ``napari.yaml``.

Shared helpers for widgets live in :mod:`napari_drift.widgets._common` (guarded slots
that turn exceptions into napari notifications, the raw-layer picker).
"""

from .composer import ComposerWidget

__all__ = ["ComposerWidget"]
