"""ispkit's own raw-domain corruptions, registered as the plugin ``ispkit.raw_corruptions`` (provider ``ispkit``) with their hook kind."""

from __future__ import annotations

from ..hookspecs import hookimpl
from .aberration import CHROMATIC_ABERRATION
from .base import RawCorruption
from .blur import MOTION_BLUR
from .defects import DEFECTIVE_PIXELS, FIXED_PATTERN_NOISE
from .exposure import LOW_LIGHT, OVEREXPOSURE
from .illuminant import ILLUMINANT
from .shading import LENS_SHADING, VIGNETTING
from .thermal import DARK_CURRENT

__all__ = ["BUILTIN_RAW_CORRUPTIONS", "ispkit_raw_corruptions"]

BUILTIN_RAW_CORRUPTIONS: tuple[RawCorruption, ...] = (
    LOW_LIGHT,
    OVEREXPOSURE,
    MOTION_BLUR,
    VIGNETTING,
    LENS_SHADING,
    CHROMATIC_ABERRATION,
    ILLUMINANT,
    DEFECTIVE_PIXELS,
    FIXED_PATTERN_NOISE,
    DARK_CURRENT,
)
"""The ten corruptions ispkit provides itself (``defocus`` comes from ``ispkit-plugin-optics``), in table order."""


@hookimpl
def ispkit_raw_corruptions() -> list[RawCorruption]:
    """The built-in raw corruptions (:data:`BUILTIN_RAW_CORRUPTIONS`)."""
    return list(BUILTIN_RAW_CORRUPTIONS)
