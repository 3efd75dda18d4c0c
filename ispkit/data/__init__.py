"""Raw datasets: the published Raw-Microscopy and Raw-Drone layouts, synthetic twins, splits.

- :class:`RawMicroscopy`, :class:`RawDroneSegmentation`, :class:`RawDroneClassification`
  read the layout of Zenodo record 5235536 (real or synthetic data);
- :class:`RawFolder`, :class:`RawFolderSegmentation` read your own raw files (class
  sub-folders or a CSV manifest, masks for segmentation; :mod:`ispkit.data.folder`);
- :func:`synthesize_microscopy`, :func:`synthesize_drone` write synthetic data in that
  layout (``ispkit data synth``);
- :func:`grouped_stratified_kfold` splits by source frame or slide zone;
- :func:`sample` gives a tiny cached synthetic dataset for demos and tests.
"""

from .folder import RawFolder, RawFolderSegmentation
from .published import INTENSITIES, RawDroneClassification, RawDroneSegmentation, RawMicroscopy
from .samples import sample
from .splits import grouped_stratified_kfold
from .synthesize import synthesize_drone, synthesize_microscopy

__all__ = [
    "INTENSITIES",
    "RawDroneClassification",
    "RawDroneSegmentation",
    "RawFolder",
    "RawFolderSegmentation",
    "RawMicroscopy",
    "grouped_stratified_kfold",
    "sample",
    "synthesize_drone",
    "synthesize_microscopy",
]
