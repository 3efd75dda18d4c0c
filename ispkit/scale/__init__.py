"""Scale-out: processing raw archives through pipelines lazily with Dask, into Zarr.

Needs the optional dependencies ``dask[distributed]`` and ``zarr`` (``pip install
ispkit[scale]``); they are imported when a function is first called, so that
``import ispkit.scale`` works without them.
"""

from __future__ import annotations

from .bulk import RawArchive, bulk_views, open_bulk, raw_archive, synthesize_bulk

__all__ = ["RawArchive", "raw_archive", "bulk_views", "synthesize_bulk", "open_bulk"]
