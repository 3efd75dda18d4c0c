"""Acquisition design ("machine-optimal data"): the cheapest acquisition whose task accuracy stays within ε of the reference.

A task model is trained (or loaded) on one pipeline's views of the **reference
acquisition** -- the dataset's raws as they are -- and frozen, as a forensic sweep does
(:class:`~ispkit.drift.forensics.FrozenModelStudy`). The held-out raws are then acquired
again, more cheaply, one control variable at a time, through the sensor and optics
models, processed by the same pipeline and scored by the frozen model:

``exposure`` (factor ``f`` ≤ 1; cost ``f``: light, i.e. exposure time × illumination)
    The raw ``low_light`` corruption (:mod:`ispkit.raw_corruptions.exposure`, the model of
    :func:`ispkit.sensor.scale_exposure`): the photo-electrons thinned binomially to ``f``
    times the light, re-quantised, with fresh read noise of ``σ √(1 − f²)``, so that the
    input's own read noise, which survives thinning scaled by ``f``, and the fresh one add
    up to the sensor's ``σ`` at every ``f`` (and ``f = 1`` is the reference itself); then
    the gain is raised by ``1 / f`` (a higher ISO: the signal above black multiplied, and
    re-quantised), as a lab shortening its exposure would do, so that the frozen model
    sees the reference's brightness and the cost measured is that of the photon noise,
    not of a darker image (which a model trained at full light fails at once: see the
    docs). The photo-electrons per pixel are reported with it. Random: ``draws`` seeded
    draws per setting, averaged per image.
``bit_depth`` (``b`` ≥ 6 bits; cost ``b / b_ref``: bits per pixel)
    The raw re-quantised to ``b`` bits: ``DN' = clip(round(DN / J') J', 0, (2^b − 1) J')``,
    ``J' = 2^(container_bits − b)``, the ADC of :mod:`ispkit.sensor` at ``b`` bits
    (round half to even); exact on raws on the camera's grid, the identity at the camera's
    own bit depth. Deterministic.
``numerical_aperture`` (NA' ≤ NA; cost ``NA' / NA``: the objective)
    Needs ``ispkit-plugin-optics``. The raws already carry the camera objective's PSF;
    a smaller NA widens it. In the Gaussian approximation of the Airy core (the plugin's
    :func:`~ispkit_plugin_optics.psf.gaussian_psf`, ``σ = 0.21 λ / NA``), widths add in
    quadrature, so the extra blur is the plugin's Gaussian PSF of NA' at the wavelength
    ``λ √(1 − (NA'/NA)²)``, whose ``σ² = σ(NA')² − σ(NA)²``, per colour, applied per CFA
    colour by ispkit's normalised convolution (:func:`~ispkit.raw_corruptions.blur.cfa_blur`,
    in float32, the pipeline's precision: within 1 DN of float64 after re-quantisation)
    and re-quantised. The light collected is held fixed (a smaller NA gathers less light;
    combine with ``exposure`` to see both), and the input's noise is blurred with it
    (a real acquisition at NA' has unblurred noise): the model is optimistic for small NA'.
    Deterministic.
``pixel_pitch`` (binning factor ``k``; cost ``1 / k²``: pixels per field of view)
    Each colour's ``k × k`` samples of a ``2k × 2k`` block averaged (CFA-aware binning:
    the mosaic of a sensor with ``k`` times the pitch and the same CFA), re-quantised, and
    replicated back onto the original grid, so the frozen model sees the same field of view
    at the size it was trained on. The bin's shot noise is that of the larger pixel
    (exact); its read noise is that of ``k²`` reads instead of one (pessimistic).
    Deterministic.

For every setting of a variable's grid (the **sweep**) the result is the metric on the
held-out images with its interval and the paired drop from the reference
(:mod:`ispkit.drift.acquisition_results`). For the continuous variables (exposure, NA) a
**threshold search** (:func:`threshold_search`) brackets the cheapest setting within ε
between the cheapest grid value and the reference, in log coordinates: the true metric
decides which end of the bracket a probe replaces; a differentiable surrogate (the mean
probability of the true class, or the soft IoU for segmentation) and its pathwise
gradient in the log-setting propose the next probe by a Newton step towards the
surrogate's level at the floor, interpolated between the bracket's ends; a proposal outside
the bracket, a flat surrogate or a bracket that did not halve in two probes falls back to
bisection. Gradients flow through the sensor noise by the reparametrisation of
:func:`~ispkit.raw_corruptions.base.pathwise` (the dependence of the fresh read noise's
``σ √(1 − f²)`` on ``f`` is left out), the ADC's rounding passes them straight through.

An experiment file::

    name: acquisition-microscopy-small
    dataset: {kind: microscopy, root: ../out/data/synthetic, synthetic: {n: 360}}
    pipeline: "bi,s,ga"                       # the reference data model
    model: {name: small_cnn, downsample: 4}   # or {checkpoint: ...}, as in forensics
    training: {epochs: 12, batch_size: 32, lr: 0.003}
    split: {folds: 3, fold: 0}                # the held-out images: this fold's
    samples: 120                              # at most this many of them
    sensor: {gain: 2.2, read_noise: 1.5}      # default: the camera's (or the synthetic data's)
    epsilon: 0.05                             # the accuracy a lab will give up
    draws: 3                                  # noise draws per exposure setting
    batch_size: 32
    variables:
      exposure: [1, 0.3, 0.1, 0.03, 0.01, 0.003, 0.001]
      bit_depth: [16, 12, 10, 8, 7, 6]
      numerical_aperture: [0.95, 0.7, 0.5, 0.3, 0.2]   # needs ispkit-plugin-optics
      pixel_pitch: [1, 2, 3, 4]
    search: {steps: 12, tolerance: 0.05, draws: 1}   # probes, the bracket's relative width to stop at, noise draws per probe

The run folder holds ``config.yaml``, ``model.pt`` (when trained here),
``units/reference/result.json``, ``units/<variable>/<value>/result.json`` and
``units/<variable>/search/result.json``, ``results.json``, ``figures/`` and
``report.html``; a rerun skips finished units.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from importlib import import_module
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..atomic import atomic_write_text
from ..camera import Camera
from ..cfa import pack_bayer, unpack_bayer
from ..raw_corruptions import raw_corruption
from ..raw_corruptions.base import Sensor
from ..raw_corruptions.blur import cfa_blur
from ..tasks.base import TaskNetwork
from ..tasks.metrics import PRIMARY_METRIC, task_metrics
from .acquisition_results import VARIABLE_TEXT, AcquisitionPoint, AcquisitionResults, AcquisitionSearch, SearchStep, value_text
from .adjustment import _sensor_noise
from .config import AcquisitionConfig, optics_of
from .execution import execute
from .forensics import FrozenModelStudy
from .run_lock import holding_run_folder
from .tracking import make_tracker
from .units import Clock, Metrics, Progress, Unit, epoch_metrics, total_work, unit_seed

__all__ = [
    "CONTINUOUS", "RANDOM", "Acquisition", "expose", "requantise", "narrow_aperture", "bin_pixels", "surrogate_scores", "evaluate", "probe",
    "threshold_search", "AcquisitionStudy", "run_acquisition",
]  # fmt: skip

CONTINUOUS = ("exposure", "numerical_aperture")
"""The control variables searched by gradient as well as swept."""
RANDOM = ("exposure",)
"""The control variables whose acquisition draws noise (``draws`` seeded draws per setting)."""

Acquire = Callable[[torch.Tensor, torch.Generator], torch.Tensor]
"""``acquire(raws (N, H, W) float64, generator) -> raws``: one way of acquiring the held-out raws."""


# -- the physics of each control variable ---------------------------------------------------------


def expose(raws: torch.Tensor, exposure: float | torch.Tensor, camera: Camera, generator: torch.Generator) -> torch.Tensor:
    """``raws`` ``(N, H, W)`` acquired with ``exposure`` times the light and the gain raised by its inverse (module docstring).

    Differentiable in ``exposure``. The fresh read noise is ``σ √(1 − f²)`` so that the
    total read noise stays the camera's ``σ`` (in electrons); ``camera`` must have a gain
    and a read noise. The signal above black is then multiplied by ``1 / f`` and
    re-quantised: the mean is the reference's, the variance in DN is ``(g / f)² (f S + σ²)``
    for ``S`` electrons at full light, plus ``(1 + 1/f²) / 12`` of rounding (the thinned
    frame is quantised before the gain as well). ``f = 1`` returns ``raws`` itself (no
    gradient reaches ``exposure`` there).
    """
    f = float(exposure.detach()) if isinstance(exposure, torch.Tensor) else float(exposure)
    if f >= 1.0:
        return raws
    assert camera.read_noise is not None, "the study gives the camera its read noise"
    fresh = replace(camera, read_noise=camera.read_noise * math.sqrt(max(1.0 - f * f, 0.0)))
    dim = raw_corruption("low_light").apply_torch(raws, camera=fresh, generator=generator, exposure=exposure)
    sensor = Sensor.of(camera)
    black = sensor.black_level_torch(raws)
    return sensor.digitise_torch(((dim - black) / torch.as_tensor(exposure, dtype=raws.dtype, device=raws.device) + black) * sensor.white)


def requantise(raws: torch.Tensor, bits: int, camera: Camera) -> torch.Tensor:
    """``raws`` ``(N, H, W)`` re-quantised by the camera's ADC at ``bits`` bits (left-justified in its container).

    >>> cam = Camera(name="c", bit_depth=12, container_bits=16)
    >>> x = torch.tensor([[[0.0, 17 / 65535], [4096 / 65535, 1.0]]], dtype=torch.float64)
    >>> (requantise(x, 8, cam) * 65535).round().tolist()      # steps of 2**(16 - 8) = 256 DN, top code 255 · 256
    [[[0.0, 0.0], [4096.0, 65280.0]]]
    """
    sensor = Sensor.of(replace(camera, bit_depth=int(bits)))
    return sensor.digitise_torch(raws * sensor.white)


def narrow_aperture(raws: torch.Tensor, na: float | torch.Tensor, camera: Camera, optics: Any) -> torch.Tensor:
    """``raws`` ``(N, H, W)`` as seen through an objective of numerical aperture ``na`` ≤ ``optics.na`` (module docstring); differentiable in ``na``."""
    psf = import_module("ispkit_plugin_optics.psf")
    value = torch.as_tensor(na, dtype=torch.float64)
    ratio = value / optics.na
    if float(ratio.detach()) >= 1.0:
        return raws
    wavelengths = torch.tensor(optics.wavelengths_nm, dtype=torch.float64) * torch.sqrt(1.0 - ratio**2)
    sigma_um = psf.ZHANG_SIGMA * float(wavelengths.detach().max()) * 1e-3 / float(value.detach())
    radius = max(1, math.ceil(3.5 * sigma_um / optics.pixel_um))
    kernels = psf.gaussian_psf(value, 1.0, optics.pixel_um, wavelengths, radius=radius)
    blurred = cfa_blur(raws.float(), kernels.to(raws.device), camera.pattern).to(raws.dtype)  # float32: the pipeline's precision, ~30× faster
    sensor = Sensor.of(camera)
    return sensor.digitise_torch(blurred * sensor.white)


def bin_pixels(raws: torch.Tensor, factor: int, camera: Camera) -> torch.Tensor:
    """``raws`` ``(N, H, W)`` binned CFA-aware by ``factor`` and replicated back to ``(N, H, W)`` (module docstring).

    Blocks at the right and bottom edges that ``factor`` does not divide average the samples they have.

    >>> x = torch.arange(16.0, dtype=torch.float64).reshape(1, 4, 4) / 65535
    >>> (bin_pixels(x, 2, Camera(name="c")) * 65535).round()[0].tolist()   # each colour's four samples → their mean
    [[5.0, 6.0, 5.0, 6.0], [9.0, 10.0, 9.0, 10.0], [5.0, 6.0, 5.0, 6.0], [9.0, 10.0, 9.0, 10.0]]
    """
    if factor == 1:
        return raws
    planes = pack_bayer(raws)
    h, w = planes.shape[-2:]
    means = torch.nn.functional.avg_pool2d(planes, factor, factor, ceil_mode=True)
    spread = means.repeat_interleave(factor, -2).repeat_interleave(factor, -1)[..., :h, :w]
    sensor = Sensor.of(camera)
    return sensor.digitise_torch(unpack_bayer(spread)[:, 0] * sensor.white)


@dataclass(frozen=True)
class Acquisition:
    """The reference acquisition's camera (with gain and read noise) and optics, and how to acquire otherwise.

    ``optics`` is the optics plugin's ``Optics`` of the camera, ``None`` when the study has
    no ``numerical_aperture``.
    """

    camera: Camera
    optics: Any | None = None

    def reference(self, variable: str) -> float:
        """The reference acquisition's value of ``variable``."""
        if variable == "bit_depth":
            return float(self.camera.bit_depth)
        if variable == "numerical_aperture":
            return float(self._optics().na)
        return 1.0

    def cost(self, variable: str, value: float) -> float:
        """The cost of ``value`` relative to the reference's (1), see :data:`~ispkit.drift.acquisition_results.VARIABLE_TEXT`."""
        if variable == "pixel_pitch":
            return 1.0 / value**2
        return value / self.reference(variable)

    def extra(self, variable: str, value: float, raws: torch.Tensor) -> dict[str, float]:
        """``value`` in other units: photo-electrons per pixel (exposure), grey levels (bit depth),
        the Rayleigh resolution at green (NA) and the pitch in µm (pitch, when the camera has a pixel size)."""
        if variable == "exposure":
            sensor = Sensor.of(self.camera)
            electrons = sensor.signal_torch(raws[:, 0].double()).clamp_min(0.0).mean() / sensor.gain
            return {"photons_per_pixel": value * float(electrons)}
        if variable == "bit_depth":
            return {"levels": float(2**value)}
        if variable == "numerical_aperture":
            return {"resolution_um": 0.61 * self._optics().wavelengths_nm[1] * 1e-3 / value}
        return {"pitch_um": value * self.camera.pixel_size} if self.camera.pixel_size is not None else {}

    def apply(self, variable: str, raws: torch.Tensor, value: float | torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """``raws`` ``(N, H, W)`` float64 acquired with ``variable`` at ``value`` (a float64 tensor keeps its gradient);
        the reference value returns ``raws`` itself."""
        if float(value.detach() if isinstance(value, torch.Tensor) else value) == self.reference(variable):
            return raws
        if variable == "exposure":
            return expose(raws, value, self.camera, generator)
        if variable == "numerical_aperture":
            return narrow_aperture(raws, value, self.camera, self._optics())
        if variable == "bit_depth":
            return requantise(raws, int(value), self.camera)
        return bin_pixels(raws, int(value), self.camera)

    def _optics(self) -> Any:
        if self.optics is None:
            raise ValueError("this acquisition has no optics: numerical_aperture is not among its variables")
        return self.optics


# -- scoring the frozen model ----------------------------------------------------------------------


def surrogate_scores(task: str, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """A differentiable per-image stand-in for the metric: the true class's softmax probability, or the soft IoU of a mask.

    >>> surrogate_scores("classification", torch.tensor([[0.0, 0.0], [2.0, 0.0]]), torch.tensor([0, 1])).double().round(decimals=4).tolist()
    [0.5, 0.1192]
    """
    if task == "classification":
        return torch.softmax(logits, dim=1).gather(1, targets[:, None])[:, 0]
    p = torch.sigmoid(logits).flatten(1)
    t = targets.flatten(1)
    inter = (p * t).sum(1)
    return (inter + 1.0) / (p.sum(1) + t.sum(1) - inter + 1.0)


def _logits(network: TaskNetwork, module: torch.nn.Module, acquired: torch.Tensor) -> torch.Tensor:
    return network(network.prepare(module(acquired.float()[:, None])))


def evaluate(
    network: TaskNetwork,
    module: torch.nn.Module,
    raws: torch.Tensor,
    targets: torch.Tensor,
    acquire: Acquire,
    *,
    seeds: list[int],
    batch_size: int,
    device: torch.device,
) -> np.ndarray:
    """Each image's metric under ``acquire``, averaged over one draw per seed (a CPU generator each); float64 ``(N,)``.

    ``raws`` ``(N, 1, H, W)``; ``module`` is the pipeline, ``network`` the frozen model.
    """
    metric = PRIMARY_METRIC[network.task]
    draws = []
    with torch.no_grad():
        for seed in seeds:
            generator = torch.Generator().manual_seed(seed)
            scores = []
            for b in torch.arange(len(raws)).split(batch_size):
                logits = _logits(network, module, acquire(raws[b, 0].to(device, torch.float64), generator))
                scores.append(task_metrics(network.task, logits, targets[b].to(device))[metric].double().cpu())
            draws.append(torch.cat(scores))
    return torch.stack(draws).mean(0).numpy()


def probe(
    network: TaskNetwork,
    module: torch.nn.Module,
    raws: torch.Tensor,
    targets: torch.Tensor,
    acquire: Callable[[torch.Tensor, torch.Tensor, torch.Generator], torch.Tensor],
    u: float,
    *,
    seeds: list[int],
    batch_size: int,
    device: torch.device,
) -> tuple[float, float, float]:
    """The metric, the mean surrogate (:func:`surrogate_scores`) and its derivative in ``u`` at the setting ``exp(u)``.

    ``acquire(raws, value, generator)`` takes the setting as a float64 tensor and must be
    differentiable in it; each seed's draw is made with the same generator state whatever
    ``u`` is (common random numbers), so that probes differ by the setting alone.
    """
    metric = PRIMARY_METRIC[network.task]
    log_value = torch.tensor(u, dtype=torch.float64, requires_grad=True)
    total, scores = 0.0, []
    n = len(raws) * len(seeds)
    for seed in seeds:
        generator = torch.Generator().manual_seed(seed)
        for b in torch.arange(len(raws)).split(batch_size):
            logits = _logits(network, module, acquire(raws[b, 0].to(device, torch.float64), torch.exp(log_value), generator))
            target = targets[b].to(device)
            surrogate = surrogate_scores(network.task, logits, target).double().sum() / n
            if surrogate.requires_grad:
                surrogate.backward()
            total += float(surrogate.detach())
            scores.append(task_metrics(network.task, logits.detach(), target)[metric].double().cpu())
    slope = 0.0 if log_value.grad is None else float(log_value.grad)
    return float(torch.cat(scores).mean()), total, slope


def threshold_search(
    probe: Callable[[float], tuple[float, float, float]], low: float, high: float, floor: float, *, steps: int, tolerance: float
) -> tuple[float, float | None, bool, list[SearchStep]]:
    """The cheapest ``u`` in ``[low, high]`` whose metric is at least ``floor``, by a safeguarded Newton bracketing (module docstring).

    ``probe(u) -> (metric, surrogate, d surrogate / du)``; cost rises with ``u`` and ``high``
    (the reference) is taken as within ε. Returns ``(u, u_fail, converged, steps)``: the
    feasible end of the final bracket, its infeasible end (``None`` when ``low`` itself is
    within ε), whether the bracket's relative width ``exp(u − u_fail) − 1`` fell to
    ``tolerance`` within ``steps`` probes after the two ends, and every probe
    (values as ``exp(u)``).
    """
    trace: list[SearchStep] = []

    def measure(u: float, move: str) -> tuple[float, float, float]:
        metric, surrogate, slope = probe(u)
        trace.append(SearchStep(len(trace) + 1, math.exp(u), metric, surrogate, slope, move, metric >= floor))
        return metric, surrogate, slope

    b = (high, *measure(high, "end"))
    if low >= high:
        return high, None, True, trace
    a = (low, *measure(low, "end"))
    if a[1] >= floor:
        return low, None, True, trace
    last, widths = a, [high - low]
    for _ in range(steps):
        if math.expm1(b[0] - a[0]) <= tolerance:
            break
        u, move = _next_probe(a, b, last, floor, widths)
        last = (u, *measure(u, move))
        if last[1] >= floor:
            b = last
        else:
            a = last
        widths.append(b[0] - a[0])
    return b[0], a[0], math.expm1(b[0] - a[0]) <= tolerance, trace


def _next_probe(a: tuple[float, ...], b: tuple[float, ...], last: tuple[float, ...], floor: float, widths: list[float]) -> tuple[float, str]:
    """The Newton proposal from the last probe towards the surrogate's level at the floor, else the bracket's midpoint."""
    (ua, ma, sa, _), (ub, mb, sb, _), (ux, _, sx, gx) = a, b, last
    level = sa + (floor - ma) * (sb - sa) / (mb - ma) if mb != ma else sa
    margin = 0.01 * (ub - ua)
    stalled = len(widths) >= 3 and widths[-1] > 0.5 * widths[-3]
    if gx != 0.0 and math.isfinite(gx) and not stalled:
        u = ux + (level - sx) / gx
        if ua + margin < u < ub - margin:
            return u, "newton"
    return 0.5 * (ua + ub), "bisect"


# -- the study ------------------------------------------------------------------------------------


def _value_key(value: float) -> str:
    """A setting as a folder name: ``0.03``, ``8``."""
    return f"{value:g}"


class AcquisitionStudy(FrozenModelStudy[AcquisitionConfig]):
    """The units of an acquisition-design study and how to run one.

    After the task model's unit (as in forensics): the reference acquisition's scores, one
    unit per (variable, setting) of the sweep, and one threshold search per continuous
    variable, each on the held-out images.
    """

    setup: Acquisition

    @classmethod
    def open(cls, config: AcquisitionConfig, run_dir: str | os.PathLike[str], *, progress: Progress | None = None, create: bool = True) -> AcquisitionStudy:
        study = super().open(config, run_dir, progress=progress, create=create)
        gain, read_noise = _sensor_noise(config, study.data)
        camera = replace(study.data.camera, gain=gain, read_noise=read_noise)
        study.setup = Acquisition(camera, optics_of(camera) if "numerical_aperture" in config.variables else None)
        return study

    def units(self) -> list[Unit]:
        config = self.config
        keys: list[tuple] = [("reference",)]
        keys += [(v, value) for v, grid in config.variables.items() for value in grid]
        keys += [(v, "search") for v in config.variables if v in CONTINUOUS]
        return [Unit(self._name(key), key, self._folder(key), self._params(key), {_kind(key): 1}, (i, len(keys))) for i, key in enumerate(keys, 1)]

    def _name(self, key: tuple) -> str:
        return "reference" if len(key) == 1 else f"{key[0]}/{key[1] if key[1] == 'search' else _value_key(key[1])}"

    def _folder(self, key: tuple) -> Path:
        return self.run_dir / "units" / Path(self._name(key))

    def _params(self, key: tuple) -> dict[str, Any]:
        if len(key) == 1:
            return {"variable": "reference"}
        variable, value = key
        if value == "search":
            return {"variable": variable, "search": True, "seeds": self._seeds(variable, 10**6, self.config.search_draws)}
        return {"variable": variable, "value": value, "seeds": self._seeds(variable, self.config.variables[variable].index(value), self.config.draws)}

    def _seeds(self, variable: str, index: int, draws: int) -> list[int]:
        """The noise seeds of a setting (``index`` in its grid, or 10⁶ for the search): ``draws`` of them for a random variable, else one."""
        return [unit_seed(self.config.seed, list(self.config.variables).index(variable), index, d) for d in range(draws if variable in RANDOM else 1)]

    def run(self, unit: Unit, clock: Clock) -> dict[str, Any]:
        if unit.key == ("model",):
            return self._train(clock)
        if unit.key == ("reference",):
            scores = self._scores(lambda raws, generator: raws, [0])
            result: dict[str, Any] = {"metric": float(scores.mean()), "per_image": scores.tolist()}
            clock.step(f"{unit.tag} reference acquisition  {PRIMARY_METRIC[self.data.task]} {result['metric']:.3f}", kind="sweep")
        elif unit.key[1] == "search":
            result = self._search(unit, clock).to_dict()
        else:
            result = self._point(unit, clock).to_dict()
        atomic_write_text(unit.folder / "result.json", json.dumps(result))
        return result

    def _scores(self, acquire: Acquire, seeds: list[int]) -> np.ndarray:
        module = self.bank.module(self.config.pipeline_label)
        return evaluate(_frozen(self.network), module, self.raws, self.targets, acquire, seeds=seeds, batch_size=self.config.batch_size, device=self.device)

    def _point(self, unit: Unit, clock: Clock) -> AcquisitionPoint:
        variable, value = unit.key
        setup = self.setup
        scores = self._scores(lambda raws, generator: setup.apply(variable, raws, value, generator), unit.params["seeds"])
        point = AcquisitionPoint(variable, value, setup.cost(variable, value), float(scores.mean()), scores.tolist(), len(unit.params["seeds"]),
                                 setup.extra(variable, value, self.raws))  # fmt: skip
        clock.step(
            f"{unit.tag} {variable:18s} {value_text(variable, value):>10s}  cost {point.cost:<8.3g} {PRIMARY_METRIC[self.data.task]} {point.metric:.3f}",
            kind="sweep",
        )
        return point

    def _search(self, unit: Unit, clock: Clock) -> AcquisitionSearch:
        config, setup, variable = self.config, self.setup, unit.key[0]
        module, network = self.bank.module(config.pipeline_label), _frozen(self.network)
        reference = float(self._scores(lambda raws, generator: raws, [0]).mean())
        floor = reference - config.epsilon

        def measure(u: float) -> tuple[float, float, float]:
            found = probe(network, module, self.raws, self.targets, lambda raws, value, generator: setup.apply(variable, raws, value, generator), u,
                          seeds=unit.params["seeds"], batch_size=config.batch_size, device=self.device)  # fmt: skip
            clock.say(f"  {variable} search: {value_text(variable, math.exp(u))}  {PRIMARY_METRIC[self.data.task]} {found[0]:.3f}  surrogate {found[1]:.4f}")
            return found

        low, high = math.log(min(config.variables[variable])), math.log(setup.reference(variable))
        u, fail, converged, steps = threshold_search(measure, low, high, floor, steps=config.search_steps, tolerance=config.search_tolerance)
        value = math.exp(u) if u != high else setup.reference(variable)
        metric = next(s.metric for s in reversed(steps) if s.value == math.exp(u))
        search = AcquisitionSearch(variable, value, setup.cost(variable, value), metric, None if fail is None else math.exp(fail), value, converged, steps)
        clock.step(
            f"{unit.tag} {variable:18s} search: {value_text(variable, value)} in {len(steps)} probes ({'converged' if converged else 'step budget spent'})",
            kind="search",
        )
        return search

    def metrics(self, unit: Unit, result: dict[str, Any]) -> Metrics:
        metric = PRIMARY_METRIC[self.data.task]
        if unit.key == ("model",):
            return epoch_metrics(result["history"]) if result else []
        if len(unit.key) == 2 and unit.key[1] == "search":
            trace = [({"value": s["value"], metric: s["metric"], "surrogate": s["surrogate"], "slope": s["slope"]}, s["step"]) for s in result["steps"]]
            return [*trace, ({"found": result["value"], f"found_{metric}": result["metric"]}, None)]
        return [({metric: result["metric"], **({"cost": result["cost"]} if "cost" in result else {})}, None)]


def _kind(key: tuple) -> str:
    """The kind of work a unit is, for the clock's estimate of the time left: a search (many probes with gradients) or a sweep's setting."""
    return "search" if key[-1] == "search" else "sweep"


def _frozen(network: TaskNetwork) -> TaskNetwork:
    """``network`` in eval mode with its parameters out of the graph (gradients reach the acquisition only)."""
    network.eval()
    for p in network.parameters():
        p.requires_grad_(False)
    return network


@holding_run_folder
def run_acquisition(
    config: AcquisitionConfig,
    run_dir: str | os.PathLike[str],
    *,
    tracking: bool = True,
    tracking_uri: str | None = None,
    progress: Progress | None = None,
    scheduler: Any = "local",
    workers: int = 1,
) -> AcquisitionResults:
    """Run (or resume) the acquisition-design study of ``config`` in ``run_dir``; write results, figures and report.

    MLflow (:mod:`ispkit.drift.tracking`): one run for the study, a nested run for the
    task model's training, the reference, each setting of each sweep (its metric and
    cost) and each search (every probe as a step); the study run gets the reference
    metric and each variable's cheapest setting within ε. ``scheduler``/``workers`` say
    where the units run (:func:`ispkit.drift.execution.execute`).
    """
    from .acquisition_report import write_acquisition_report

    study = AcquisitionStudy.open(config, run_dir, progress=progress)
    run_dir, model_units, units = study.run_dir, study.model_units(), study.units()
    clock = Clock(progress, total_work([*model_units, *units]))
    camera = study.setup.camera
    params = {"name": config.name, "dataset": config.dataset.__dict__, "pipeline": config.pipeline_label, "epsilon": config.epsilon, "draws": config.draws,
              "samples": len(study.raws), "variables": {v: list(g) for v, g in config.variables.items()}, "search_steps": config.search_steps,
              "search_tolerance": config.search_tolerance, "search_draws": config.search_draws, "gain": camera.gain, "read_noise": camera.read_noise, "seed": config.seed}  # fmt: skip
    tracker = make_tracker(run_dir, config.name, params, tracking_uri=tracking_uri, enabled=tracking)
    if model_units:
        execute(study, model_units, clock=clock, tracker=tracker, scheduler=scheduler, workers=workers)
    found = execute(study, units, clock=clock, tracker=tracker, scheduler=scheduler, workers=workers)
    reference = found[("reference",)]
    results = AcquisitionResults(
        task=study.data.task, metric=PRIMARY_METRIC[study.data.task], pipeline=config.pipeline_label, epsilon=config.epsilon, reference=reference["metric"],
        reference_per_image=reference["per_image"], variables=list(config.variables), references={v: study.setup.reference(v) for v in config.variables},
        points=[AcquisitionPoint.from_dict(found[u.key]) for u in units if len(u.key) == 2 and u.key[1] != "search"],
        searches={u.key[0]: AcquisitionSearch.from_dict(found[u.key]) for u in units if len(u.key) == 2 and u.key[1] == "search"},
        classes=study.data.classes, synthetic=study.data.synthetic,
    )  # fmt: skip
    results.save(run_dir / "results.json")
    report = write_acquisition_report(run_dir, results, config_text=config.text)
    cheapest = {v: results.cheapest(v) for v in results.variables}
    tracker.log_metrics({f"reference_{results.metric}": results.reference, **{f"cheapest_{v}": p.value for v, p in cheapest.items() if p is not None}})
    for path in (run_dir / "results.json", report, *sorted((run_dir / "figures").glob("*.png"))):
        tracker.log_artifact(path)
    tracker.end_study()
    clock.say(f"done: reference {results.metric} {results.reference:.3f}; report at {report}")
    for variable in results.variables:
        clock.say(f"  {VARIABLE_TEXT[variable][0]}: {results.variable_statement(variable)}")
    return results
