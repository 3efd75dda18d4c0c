"""Built-in stages: one module per stage kind, each method with both backends side by side.

=================  ==============================  ===========
kind               methods                         acts on
=================  ==============================  ===========
black_level        per_site                        raw mosaic
lens_shading       gain_map, radial                raw mosaic
demosaic           bilinear, malvar2004, menon2007 raw → RGB
white_balance      gains                           RGB
color_correction   matrix                          RGB
sharpen            filter, unsharp_mask            luma Y
denoise            gaussian, median                luma Y
gamma              power                           RGB
=================  ==============================  ===========
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .base import FromCamera, Param, Stage

if TYPE_CHECKING:
    from .module import StageModule

__all__ = ["FromCamera", "Param", "Stage", "StageModule", "all_stages"]


def __getattr__(name: str) -> Any:
    """``StageModule``, from :mod:`ispkit.stages.module`, imported (with torch) when first asked for."""
    if name == "StageModule":
        from .module import StageModule

        return StageModule
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def all_stages() -> list[type[Stage]]:
    """Every built-in stage method class, in pipeline order."""
    from .black_level import BlackLevel
    from .color_correction import ColorCorrection
    from .demosaic import Bilinear, Malvar2004, Menon2007
    from .denoise import GaussianDenoise, MedianDenoise
    from .gamma import Gamma
    from .lens_shading import GainMapShading, RadialShading
    from .sharpen import SharpenFilter, UnsharpMask
    from .white_balance import WhiteBalance

    return [
        BlackLevel,
        GainMapShading,
        RadialShading,
        Bilinear,
        Malvar2004,
        Menon2007,
        WhiteBalance,
        ColorCorrection,
        SharpenFilter,
        UnsharpMask,
        GaussianDenoise,
        MedianDenoise,
        Gamma,
    ]
