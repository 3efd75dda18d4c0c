"""ispkit's own view distances, registered as the plugin ``ispkit.drift`` (provider ``ispkit``) with their hook kind."""

from __future__ import annotations

from ..hookspecs import hookimpl
from .distances import L2, SSIM, Distance

__all__ = ["ispkit_distances"]


@hookimpl
def ispkit_distances() -> list[Distance]:
    """``l2`` and ``ssim`` (1 − SSIM) for drift forensics."""
    return [L2, SSIM]
