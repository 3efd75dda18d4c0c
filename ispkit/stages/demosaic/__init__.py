"""Demosaicing (``kind = "demosaic"``): a raw Bayer mosaic ``(H, W)`` → RGB ``(3, H, W)``.

Three methods, one per module, each with a NumPy reference equal to colour-demosaicing's
function bit for bit (channel-last there, channel-first here; written out with SciPy, so
that the NumPy backend does not import colour, which imports matplotlib and pandas) and a
batched, differentiable PyTorch twin ``(N, H, W)`` → ``(N, 3, H, W)``:

==============  ===================================  ================================
method          algorithm                            torch backend differentiable in
==============  ===================================  ================================
``bilinear``    Losson et al. (2010)                 mosaic and ``kernels``
``malvar2004``  Malvar, He, Cutler (2004)            mosaic
``menon2007``   Menon, Andriani, Calvagno (2007)     mosaic, almost everywhere
==============  ===================================  ================================

The CFA layout is the camera's: every function takes it as the keyword ``pattern``.
"""

from __future__ import annotations

from .bilinear import BILINEAR_KERNELS, Bilinear, demosaic_bilinear, demosaic_bilinear_numpy
from .malvar2004 import Malvar2004, demosaic_malvar2004, demosaic_malvar2004_numpy
from .menon2007 import Menon2007, demosaic_menon2007, demosaic_menon2007_numpy

__all__ = [
    "BILINEAR_KERNELS",
    "Bilinear",
    "Malvar2004",
    "Menon2007",
    "demosaic_bilinear",
    "demosaic_bilinear_numpy",
    "demosaic_malvar2004",
    "demosaic_malvar2004_numpy",
    "demosaic_menon2007",
    "demosaic_menon2007_numpy",
]
