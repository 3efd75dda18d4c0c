"""The three drift controls of Oala et al. (TMLR 2023, §5) on ispkit's data models.

- :mod:`ispkit.drift.synthesis`: train on one data model, test on all and on the corruptions;
- :mod:`ispkit.drift.forensics`: find the processing settings under which a model fails;
- :mod:`ispkit.drift.adjustment`: train the pipeline's parameters with the task model.

Experiments are YAML files (:mod:`ispkit.drift.config`), tracked in MLflow
(:mod:`ispkit.drift.tracking`) and reported as HTML with figures.

Importing this package registers the view-distance hook kind
(:data:`~ispkit.drift.hookspecs.DISTANCES`) and ispkit's own distances with the plugin registry.
"""

from ..registry import register_kind
from .hookspecs import DISTANCES

register_kind(DISTANCES)
