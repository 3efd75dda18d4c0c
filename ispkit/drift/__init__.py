"""The three drift controls of Oala et al. (TMLR 2023, §5) on ispkit's data models.

- :mod:`ispkit.drift.synthesis`: train on one data model, test on all and on the corruptions;
- :mod:`ispkit.drift.forensics`: find the processing settings under which a model fails;
- :mod:`ispkit.drift.adjustment`: train the pipeline's parameters with the task model;

and, beyond the paper, :mod:`ispkit.drift.acquisition`: the cheapest acquisition (light,
bit depth, numerical aperture, pixel pitch) whose accuracy stays within ε of the reference.

Experiments are YAML files (:mod:`ispkit.drift.config`), tracked in MLflow
(:mod:`ispkit.drift.tracking`) and reported as HTML with figures.

The modules read top-down: each imports only modules listed before it.

- :mod:`~ispkit.drift.distances` with its hook kind (:mod:`~ispkit.drift.builtins`,
  :mod:`~ispkit.drift.hookspecs`), :mod:`~ispkit.drift.config`, :mod:`~ispkit.drift.tracking`,
  :mod:`~ispkit.drift.ui` (the MLflow UI on a run folder's store), :mod:`~ispkit.drift.progress_display`
  (the time-left estimate; a bar, plain lines or nothing), :mod:`~ispkit.drift.units` (a study's units,
  the clock, seeds), :mod:`~ispkit.drift.run_lock`;
- :mod:`~ispkit.drift.grid` (the units as Dask tasks), :mod:`~ispkit.drift.execution` (run, resume);
- :mod:`~ispkit.drift.runs` (run folder, data, device, folds, views, seeded networks);
- :mod:`~ispkit.drift.augmentation` (raw-domain augmentation, the adjustment study's augmented arm);
- :mod:`~ispkit.drift.statistics` (confidence intervals over folds and images);
- :mod:`~ispkit.drift.results` (every results class), :mod:`~ispkit.drift.acquisition_results`;
- :mod:`~ispkit.drift.html_report` (report scaffolding), then :mod:`~ispkit.drift.report`,
  :mod:`~ispkit.drift.forensics_report`, :mod:`~ispkit.drift.adjustment_report`, :mod:`~ispkit.drift.acquisition_report`;
- the controls: :mod:`~ispkit.drift.synthesis`, :mod:`~ispkit.drift.forensics`, :mod:`~ispkit.drift.adjustment`,
  :mod:`~ispkit.drift.acquisition`.

Importing this package registers the view-distance hook kind
(:data:`~ispkit.drift.hookspecs.DISTANCES`) and ispkit's own distances with the plugin registry.
"""

from ..registry import register_kind
from .hookspecs import DISTANCES

register_kind(DISTANCES)
