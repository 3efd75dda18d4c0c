"""napari-drift: a napari plugin for ispkit.

Layout (so that further widgets slot in without touching the existing ones):

* ``napari_drift.logic``: Qt-free logic (raw layers, the composer model), importable and
  testable without a display.
* ``napari_drift.widgets``: Qt widgets, one module per widget (``composer``,
  ``drift_view``, ``classifier``, ``jobs``); each contributes one command in ``napari.yaml``.
* ``_reader`` / ``_sample_data``: thin npe2 entry points around ``logic.raw_layer``.
"""

__version__ = "0.2.0"

__all__ = ["__version__"]
