"""ispkit-plugin-denoise: extra luma denoisers for ispkit, registered through the ``ispkit`` entry point.

Three stage methods of kind ``"denoise"`` acting on the luma plane Y (like ispkit's
built-in ``gaussian`` and ``median``), each with a NumPy reference backend that calls
scikit-image and a batched, differentiable PyTorch backend beside it:

* ``bilateral`` (:mod:`.bilateral`): Tomasi & Manduchi 1998, ``skimage.restoration.denoise_bilateral``;
* ``tv_chambolle`` (:mod:`.tv_chambolle`): Chambolle 2004, ``skimage.restoration.denoise_tv_chambolle``;
* ``nl_means`` (:mod:`.nl_means`): Buades, Coll & Morel 2005, ``skimage.restoration.denoise_nl_means``.

>>> from ispkit_plugin_denoise import STAGES
>>> sorted(s.method for s in STAGES)
['bilateral', 'nl_means', 'tv_chambolle']
"""

from __future__ import annotations

from .bilateral import BilateralDenoise
from .nl_means import NLMeansDenoise
from .tv_chambolle import TVChambolleDenoise

__all__ = ["BilateralDenoise", "TVChambolleDenoise", "NLMeansDenoise", "STAGES"]
__version__ = "0.1.0"

STAGES = (BilateralDenoise, TVChambolleDenoise, NLMeansDenoise)
