"""Raw-domain augmentation: the ``augmented`` arm of drift adjustment (issue 19, item 3).

A control for the drift-adjustment study (:mod:`ispkit.drift.adjustment`): the task model
is trained on the frozen pipeline's views, as in the ``frozen`` arm, but each training
sample's raw is, in each epoch, first corrupted by a randomly drawn raw-domain corruption
(:mod:`ispkit.raw_corruptions`) at a randomly drawn severity, and the pipeline's parameters
may be drawn within the operating specification a forensic sweep found
(:mod:`ispkit.drift.forensics`, ``operating_spec.yaml``). Whether this closes the gap on
corruptions and pipelines it never saw is measured by the held-out evaluation of every arm.

What a sample becomes is a :class:`Draw`, made by :class:`AugmentationSampler` from the
unit's seed, the epoch and the sample's index alone (:meth:`AugmentationSampler.draw`):

- with probability ``clean`` the sample is left as it is: its view is the frozen
  pipeline's view, the same tensor the ``frozen`` arm trains on;
- otherwise one of the configured corruptions (uniformly) at a severity drawn uniformly
  from the configured range corrupts its raw, with a random stream of its own (a seed
  drawn with it), and with an operating spec every parameter it lists is drawn uniformly,
  element by element, between its ``safe_min`` and ``safe_max``.

So a resumed training run draws exactly what the uninterrupted run drew, whatever the
order of the batches, and a sample is the same within an epoch wherever it is asked for
(the training step and the BatchNorm recalibration see the same view). The held-out
corruptions are never drawn: the sampler only knows the training list and range.

>>> from ispkit.drift.config import AugmentationConfig
>>> sampler = AugmentationSampler(AugmentationConfig(corruptions=("vignetting",), severities=(2, 3), clean=0.5), seed=7)
>>> sampler.draw(1, 0) == sampler.draw(1, 0)
True
>>> sorted({d.severity for d in sampler.draws(1, range(200)) if not d.clean})
[2, 3]
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..camera import Camera
from ..corruptions import SEED_LIMIT
from ..errors import InputError
from ..pipeline import Pipeline
from ..raw_corruptions import raw_corruption
from ..tasks.base import downsample_views
from ..tasks.training import ViewSource
from .config import AugmentationConfig

__all__ = ["Draw", "AugmentationSampler", "AugmentedSource"]


@dataclass(frozen=True)
class Draw:
    """What one training sample becomes in one epoch.

    ``corruption`` and ``severity`` are ``None`` for a clean sample; ``seed`` seeds the
    corruption's own random stream (a CPU ``torch.Generator``); ``params`` are the pipeline
    parameters drawn within the operating spec (``<stage>.<param>`` → float64 array; empty
    for a clean sample or without a spec).
    """

    corruption: str | None
    severity: int | None
    seed: int = 0
    params: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def clean(self) -> bool:
        """Whether the sample is left as the frozen pipeline's view."""
        return self.corruption is None


class AugmentationSampler:
    """The draws of the augmented arm: a pure function of ``seed``, the epoch and the sample (see the module docstring)."""

    def __init__(self, config: AugmentationConfig, seed: int) -> None:
        if not config.corruptions:
            raise InputError("AugmentationSampler: the augmentation lists no corruptions to draw from")
        self.config, self.seed = config, int(seed)

    def draw(self, epoch: int, sample: int) -> Draw:
        """The draw of ``sample`` (its index in the dataset) in ``epoch`` (1-based, or 0 and above)."""
        if epoch < 0 or sample < 0:
            raise InputError(f"AugmentationSampler.draw: epoch and sample must be >= 0, got {epoch} and {sample}")
        rng = np.random.default_rng([self.seed, int(epoch), int(sample)])
        config = self.config
        if rng.random() < config.clean:
            return Draw(None, None)
        corruption = config.corruptions[int(rng.integers(len(config.corruptions)))]
        low, high = config.severities
        severity = int(rng.integers(low, high + 1))
        seed = int(rng.integers(SEED_LIMIT))
        params = {name: rng.uniform(np.asarray(a, dtype=float), np.asarray(b, dtype=float)) for name, (a, b) in config.ranges.items()}
        return Draw(corruption, severity, seed, params)

    def draws(self, epoch: int, samples: Iterable[int]) -> list[Draw]:
        """:meth:`draw` of each of ``samples`` in ``epoch``."""
        return [self.draw(epoch, int(i)) for i in samples]


class AugmentedSource:
    """The view source of the augmented arm (:data:`ispkit.tasks.training.ViewSource`).

    ``source(index)`` gives, for each sample of ``index`` in the training split, the view of
    its draw in the current :attr:`epoch` (:meth:`set_epoch`): a clean draw is ``clean``'s
    view of it exactly (the frozen pipeline's prepared view); any other is
    ``downsample(pipeline(corrupted raw))`` with the draw's pipeline parameters. Samples outside
    the training split (validation) get ``clean``'s views. The views of the current epoch are
    kept, so the training step and the BatchNorm recalibration of an epoch see the same ones.

    Parameters
    ----------
    sampler
        The draws.
    raws
        The dataset's raws ``(N, 1, H, W)`` in [0, 1] (at the study's intensity).
    clean
        The frozen pipeline's view source over the same dataset.
    pipeline
        The frozen pipeline.
    camera
        The camera of the raws, with the gain and read noise the corruptions need.
    train_index
        The training split.
    downsample
        The views' downsampling factor.
    device
        Where the pipeline runs and the views live.
    epoch
        The epoch whose draws are made first (1, or the epoch a resumed run continues with).
    """

    def __init__(
        self,
        sampler: AugmentationSampler,
        raws: torch.Tensor,
        clean: ViewSource,
        pipeline: Pipeline,
        camera: Camera,
        train_index: Iterable[int] | np.ndarray | torch.Tensor,
        *,
        downsample: int,
        device: torch.device,
        epoch: int = 1,
    ) -> None:
        self.sampler, self.raws, self.clean, self.camera = sampler, raws, clean, camera
        self.downsample, self.device = downsample, device
        self.module = pipeline.to_torch().to(device).eval()
        self.training = torch.zeros(len(raws), dtype=torch.bool)
        self.training[torch.as_tensor(np.asarray(train_index), dtype=torch.long)] = True
        self.epoch = epoch
        self._views: dict[int, torch.Tensor | None] = {}  # None: a clean draw

    def set_epoch(self, epoch: int) -> None:
        """Draw from ``epoch`` on (the kept views of another epoch are dropped)."""
        if epoch != self.epoch:
            self.epoch = epoch
            self._views.clear()

    def __call__(self, index: Any) -> torch.Tensor:
        index = torch.as_tensor(index, dtype=torch.long).cpu()
        views = self.clean(index).clone()
        wanted = [(row, int(i)) for row, i in enumerate(index.tolist()) if self.training[i]]
        missing = [i for _, i in wanted if i not in self._views]
        if missing:
            self._views.update(self._augment(missing))
        for row, i in wanted:
            made = self._views[i]
            if made is not None:
                views[row] = made
        return views

    def _augment(self, samples: list[int]) -> dict[int, torch.Tensor | None]:
        """The views of ``samples`` as drawn in the current epoch (``None``: clean, use the clean view)."""
        draws = dict(zip(samples, self.sampler.draws(self.epoch, samples), strict=True))
        made: dict[int, torch.Tensor | None] = {i: None for i, d in draws.items() if d.clean}
        corrupted = [i for i, d in draws.items() if not d.clean]
        if not corrupted:
            return made
        raws = torch.cat([self._corrupt(self.raws[i : i + 1], draws[i]) for i in corrupted]).to(self.device)
        with torch.no_grad():
            if self.sampler.config.ranges:  # each sample through its own parameters
                views = torch.cat([self._process(raws[k : k + 1], draws[i].params) for k, i in enumerate(corrupted)])
            else:
                views = downsample_views(self.module(raws), self.downsample)
        made.update(zip(corrupted, views, strict=True))
        return made

    def _corrupt(self, raw: torch.Tensor, draw: Draw) -> torch.Tensor:
        generator = torch.Generator().manual_seed(draw.seed)
        return raw_corruption(str(draw.corruption)).apply_torch(raw, draw.severity, camera=self.camera, generator=generator)

    def _process(self, raw: torch.Tensor, params: Mapping[str, np.ndarray]) -> torch.Tensor:
        """``raw`` through the pipeline with ``params`` in place of its values."""
        for name, value in params.items():
            stage, _, param = name.partition(".")
            tensor = getattr(self.module.get_submodule(stage), param)
            tensor.copy_(torch.as_tensor(value, dtype=tensor.dtype))
        return downsample_views(self.module(raw), self.downsample)
