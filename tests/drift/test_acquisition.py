"""Acquisition design: the physics of each control variable, the threshold search, the frontier, the study, resume and the CLI."""

from __future__ import annotations

import dataclasses
import json
import math
import sys

import numpy as np
import pytest
import torch

from ispkit.camera import Camera
from ispkit.cli import main
from ispkit.drift.acquisition import (
    Acquisition,
    AcquisitionResults,
    bin_pixels,
    expose,
    narrow_aperture,
    probe,
    requantise,
    run_acquisition,
    threshold_search,
)
from ispkit.drift.acquisition_results import AcquisitionPoint
from ispkit.drift.config import COMMANDS, AcquisitionConfig, optics_of
from ispkit.errors import ConfigError
from ispkit.sensor import acquire
from ispkit.tasks.base import TaskNetwork

MICROSCOPY = dataclasses.replace(Camera.get("microscopy"), gain=2.2, read_noise=1.5)


def experiment(root, **changes) -> str:
    """A tiny acquisition experiment on the session's tiny microscopy dataset, top-level keys replaced by ``changes`` (``None`` removes one)."""
    top = {
        "name": "tiny-acquisition",
        "dataset": f"{{kind: microscopy, root: {json.dumps(str(root))}}}",
        "pipeline": '"bi,s,ga"',
        "model": "{name: small_cnn, downsample: 2}",
        "training": "{epochs: 2, batch_size: 8}",
        "split": "{folds: 2, fold: 1}",
        "epsilon": "0.1",
        "draws": "2",
        "batch_size": "8",
        "variables": "{exposure: [1, 0.03, 0.001], bit_depth: [16, 8, 6], numerical_aperture: [0.95, 0.4], pixel_pitch: [1, 2, 4]}",
        "search": "{steps: 2, tolerance: 0.2}",
    }
    for key, value in changes.items():
        if value is None:
            top.pop(key, None)
        else:
            top[key] = value
    return "".join(f"{key}: {value}\n" for key, value in top.items())


# -- the configuration ----------------------------------------------------------------------------


def test_a_valid_experiment_parses_with_its_grids_in_order(microscopy_root):
    config = AcquisitionConfig.from_yaml(experiment(microscopy_root, variables="{pixel_pitch: [1, 2], exposure: [1, 0.1]}", sensor="{gain: 2.2}"))
    assert list(config.variables) == ["exposure", "pixel_pitch"] and config.variables["exposure"] == (1.0, 0.1)
    assert (config.epsilon, config.draws, config.search_steps, config.search_tolerance, config.gain, config.read_noise) == (0.1, 2, 2, 0.2, 2.2, None)
    assert COMMANDS["acquire"] is AcquisitionConfig and config.checkpoint is None and config.model.name == "small_cnn"


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ("{exposur: [1]}", r":10:\d+: variables.exposur: unknown control variable 'exposur'.*did you mean 'exposure'"),
        ("{bit_depth: [16, 5]}", r":10:\d+: variables\.bit_depth\[1\].*expected an integer in \[6, 16\], got 5"),
        ("{bit_depth: [17]}", r"variables\.bit_depth\[0\].*\[6, 16\], got 17"),
        ("{exposure: [1, 1.5]}", r"variables\.exposure\[1\].*an exposure factor in \[1e-6, 1\]"),
        ("{exposure: [0.1, 0.1]}", r"variables\.exposure\[1\].*listed twice"),
        ("{numerical_aperture: [0.99]}", r"variables\.numerical_aperture\[0\].*a numerical aperture in \(0, 0\.95\]"),
        ("{pixel_pitch: [0]}", r"variables\.pixel_pitch\[0\]"),
        ("{}", r"give at least one control variable"),
        ("{exposure: 0.1}", r"variables\.exposure.*expected a non-empty list"),
    ],
)
def test_bad_grids_are_errors_at_their_line(microscopy_root, variables, message):
    with pytest.raises(ConfigError, match=message):
        AcquisitionConfig.from_yaml(experiment(microscopy_root, variables=variables))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"epsilon": "1.5"}, r"epsilon.*an accuracy tolerance ε in \[0, 1\]"),
        ({"draws": "0"}, r"draws.*expected an integer >= 1"),
        ({"search": "{steps: 3, tol: 0.1}"}, r"unknown search key 'tol'.*did you mean 'tolerance'"),
        ({"search": "{tolerance: 0}"}, r"search\.tolerance.*a relative tolerance in \(0, 1\]"),
        ({"sensor": "{gain: -1}"}, r"sensor\.gain"),
        ({"variables": None}, r"missing required key 'variables'"),
        ({"split": "{folds: 2, fold: 2}"}, r"fold 2 does not exist with 2 folds"),
    ],
)
def test_other_settings_are_checked(microscopy_root, changes, message):
    with pytest.raises(ConfigError, match=message):
        AcquisitionConfig.from_yaml(experiment(microscopy_root, **changes))


def test_the_numerical_aperture_names_the_optics_plugin_when_it_is_missing(microscopy_root, monkeypatch):
    monkeypatch.setitem(sys.modules, "ispkit_plugin_optics.defocus", None)  # importing it now raises ImportError
    with pytest.raises(ConfigError, match=r":10:\d+: variables\.numerical_aperture.*needs? .*ispkit-plugin-optics.*not installed"):
        AcquisitionConfig.from_yaml(experiment(microscopy_root, variables="{numerical_aperture: [0.5]}"))
    assert AcquisitionConfig.from_yaml(experiment(microscopy_root, variables="{exposure: [0.5]}")).variables == {"exposure": (0.5,)}


# -- the physics ----------------------------------------------------------------------------------


def _grid_raws(camera: Camera, shape: tuple[int, ...], seed: int = 0) -> torch.Tensor:
    """Random raws on the camera's ADC grid (multiples of J / W up to D_max), float64."""
    j = camera.justification
    codes = np.random.default_rng(seed).integers(0, 2**camera.bit_depth, size=shape)
    return torch.from_numpy(codes * j / camera.white_level)


@pytest.mark.parametrize("camera", [MICROSCOPY, Camera(name="left-justified", bit_depth=12, container_bits=16)])
def test_requantisation_is_exact_on_integer_raws(camera):
    raws = _grid_raws(camera, (2, 16, 16))
    dn = np.rint(raws.numpy() * camera.white_level)
    for bits in range(6, camera.bit_depth + 1):
        step = 2 ** (camera.container_bits - bits)
        expected = np.clip(np.round(dn / step) * step, 0, (2**bits - 1) * step) / camera.white_level
        np.testing.assert_array_equal(requantise(raws, bits, camera).numpy(), expected)
    assert torch.equal(requantise(raws, camera.bit_depth, camera), raws)  # the camera's own depth: the identity


def test_exposure_one_is_the_reference_acquisition_itself():
    raws = _grid_raws(MICROSCOPY, (3, 32, 32))
    assert torch.equal(expose(raws, 1.0, MICROSCOPY, torch.Generator().manual_seed(0)), raws)
    assert torch.equal(Acquisition(MICROSCOPY).apply("exposure", raws, 1.0, torch.Generator()), raws)


def test_exposure_keeps_the_read_noise_at_the_sensors_and_lies_on_the_photon_transfer_line():
    camera = Camera(name="flat", bit_depth=16, black_level=(0.01,) * 4, gain=2.0, read_noise=5.0)
    electrons = 100.0
    flat = acquire(np.full((3, 512, 512), electrons * 2.0 / (65535 * 0.99)), camera, seed=1)  # ~100 e⁻ above black
    raws = torch.from_numpy(flat)[None]
    dn = raws.numpy() * 65535 - 0.01 * 65535
    mean_e = dn.mean() / 2.0
    for f in (0.5, 0.1):
        out = expose(raws, f, camera, torch.Generator().manual_seed(2)).numpy() * 65535 - 0.01 * 65535
        assert out.mean() / 2.0 == pytest.approx(mean_e, rel=0.01)  # the gain raised by 1/f: the reference's brightness
        # a true acquisition with f times the light and gain g/f: (g/f)² (f S + σ²), plus the rounding before and after the gain;
        # without the σ√(1 − f²) correction the read noise would add (g/f)² σ² f² more (8 % at f = 0.5, 3 % at 0.1)
        assert out.var() == pytest.approx((2.0 / f) ** 2 * (f * mean_e + 25.0) + (1 + 1 / f**2) / 12, rel=0.015)


def test_pixel_binning_averages_each_colours_samples_of_a_block():
    raws = _grid_raws(MICROSCOPY, (2, 12, 10), seed=3)  # 6 × 5 blocks of 2 × 2: 3 and 2 rows of blocks at factor 2, with a partial block
    out = bin_pixels(raws, 2, MICROSCOPY).numpy()
    x = raws.numpy()
    for i in range(12):
        for j in range(10):
            r0, c0 = (i // 4) * 4 + i % 2, (j // 4) * 4 + j % 2
            same = x[:, r0 : (i // 4) * 4 + 4 : 2, c0 : (j // 4) * 4 + 4 : 2]
            np.testing.assert_allclose(out[:, i, j], np.round(same.mean(axis=(1, 2)) * 65535) / 65535, atol=1e-12)
    assert torch.equal(bin_pixels(raws, 1, MICROSCOPY), raws)


def test_a_smaller_aperture_widens_the_psf_by_the_difference_of_the_variances():
    pytest.importorskip("ispkit_plugin_optics")
    optics = optics_of(MICROSCOPY)
    raws = torch.full((1, 64, 64), 655 / 65535, dtype=torch.float64)  # on the ADC grid: re-quantising leaves it
    assert torch.equal(narrow_aperture(raws, optics.na, MICROSCOPY, optics), raws)
    flat = narrow_aperture(raws, 0.3, MICROSCOPY, optics)
    assert torch.equal(flat, raws)  # a flat field stays flat
    point = raws.clone()
    point[0, 32, 32] = 32768 / 65535  # a red site (RGGB): the red plane is every other row and column
    red = (narrow_aperture(point, 0.3, MICROSCOPY, optics) - raws)[0, ::2, ::2].numpy()
    rows = (np.arange(32) - 16) * 2.0
    variance = (red.sum(axis=1) * rows**2).sum() / red.sum()  # along the rows, in pixels²
    sigma_um = 0.21 * 0.620 * math.sqrt(1 - (0.3 / 0.95) ** 2) / 0.3  # σ(NA')² − σ(NA)² at the red wavelength
    assert variance == pytest.approx((sigma_um / 0.1625) ** 2 + 1 / 12, rel=0.05)  # + the pixel's own width


def test_costs_rise_with_the_setting_and_the_reference_costs_one():
    pytest.importorskip("ispkit_plugin_optics")
    setup = Acquisition(MICROSCOPY, optics_of(MICROSCOPY))
    assert [setup.reference(v) for v in ("exposure", "bit_depth", "numerical_aperture", "pixel_pitch")] == [1.0, 16.0, 0.95, 1.0]
    assert [setup.cost(v, setup.reference(v)) for v in ("exposure", "bit_depth", "numerical_aperture", "pixel_pitch")] == [1.0, 1.0, 1.0, 1.0]
    assert setup.cost("bit_depth", 8) == 0.5 and setup.cost("pixel_pitch", 2) == 0.25 and setup.cost("numerical_aperture", 0.475) == 0.5


# -- the threshold search on a problem whose answer is known ------------------------------------


class _Grey(torch.nn.Module):
    """A 'pipeline': the mosaic as a grey RGB view."""

    def forward(self, raws: torch.Tensor) -> torch.Tensor:
        return raws.expand(-1, 3, -1, -1)


class _Steady(torch.nn.Module):
    """Class 1 while the view's noise stays below ``level``: logits ``[0, s (level − std)]``, the std over each image's pixels."""

    def __init__(self, level: float, sharpness: float) -> None:
        super().__init__()
        self.level, self.sharpness = level, sharpness

    def forward(self, views: torch.Tensor) -> torch.Tensor:
        score = self.sharpness * (self.level - views[:, 0].flatten(1).std(dim=1))
        return torch.stack([torch.zeros_like(score), score], dim=1)


def _noise_std(f: float, electrons: float, camera: Camera) -> float:
    """The std (normalised) of a flat field of ``electrons`` acquired with ``f`` times the light at gain g/f (:func:`expose`)."""
    g = camera.gain
    return math.sqrt((g / f) ** 2 * (f * electrons + camera.read_noise**2) + (1 + 1 / f**2) / 12) / camera.white_level


def test_the_search_finds_the_exposure_at_which_accuracy_drops():
    camera = dataclasses.replace(MICROSCOPY, black_level=(0.0,) * 4, read_noise=1.5)
    levels = np.array([0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1])  # flat images, noiseless: all noise comes from the acquisition
    raws = torch.from_numpy(np.round(levels[:, None, None, None] * np.ones((1, 1, 128, 128)) * 65535) / 65535).float()
    network = TaskNetwork(_Steady(0.02, 300.0), name="steady", task="classification", outputs=2).eval()
    targets = torch.ones(8, dtype=torch.long)
    setup = Acquisition(camera)

    def measure(u: float) -> tuple[float, float, float]:
        return probe(network, _Grey(), raws, targets, lambda r, value, g: setup.apply("exposure", r, value, g), u, seeds=[5], batch_size=8,
                     device=torch.device("cpu"))  # fmt: skip

    # image i is right while its noise std stays under 0.02: above the exposure f_i solving _noise_std(f_i) = 0.02
    electrons = np.round(levels * 65535) / camera.gain
    thresholds = sorted(_bisect(lambda f, e=e: _noise_std(f, e, camera) - 0.02, 1e-4, 1.0) for e in electrons)
    floor = 1.0 - 0.3  # six of eight images right: the sixth-lowest threshold is the answer
    known = thresholds[5]
    u, fail, converged, steps = threshold_search(measure, math.log(1e-3), 0.0, floor, steps=20, tolerance=0.01)
    assert converged and known / 1.04 < math.exp(u) < known * 1.04  # the sample std of 128² pixels is known to ±1 %: f to ±2 %
    assert math.exp(u) / math.exp(fail) <= 1.01 and steps[0].value == 1.0 and steps[1].value == pytest.approx(1e-3)
    assert all(s.feasible == (s.metric >= floor) for s in steps)
    assert [s.move for s in steps].count("newton") >= 3 and len(steps) < 2 + 10  # bisection alone needs 10 probes to 1 % from 1000×


def _bisect(fn, low: float, high: float) -> float:
    """The root of the decreasing ``fn`` in ``[low, high]`` to 1e-12 (relative), by bisection in log coordinates."""
    a, b = math.log(low), math.log(high)
    while b - a > 1e-12:
        m = 0.5 * (a + b)
        a, b = (a, m) if fn(math.exp(m)) < 0 else (m, b)
    return math.exp(b)


def test_the_search_stops_at_once_when_the_cheapest_end_is_within_epsilon():
    calls: list[float] = []

    def flat(u: float) -> tuple[float, float, float]:
        calls.append(u)
        return 0.9, 0.8, 0.0

    u, fail, converged, steps = threshold_search(flat, -3.0, 0.0, 0.85, steps=10, tolerance=0.05)
    assert (u, fail, converged) == (-3.0, None, True) and [s.move for s in steps] == ["end", "end"] and calls == [0.0, -3.0]


# -- the frontier -----------------------------------------------------------------------------------


def _results(metrics: dict[float, float], epsilon: float = 0.05) -> AcquisitionResults:
    points = [AcquisitionPoint("exposure", v, v, m, [m] * 3) for v, m in metrics.items()]
    return AcquisitionResults(task="classification", metric="accuracy", pipeline="bi,s,ga", epsilon=epsilon, reference=0.9, reference_per_image=[0.9] * 3,
                              variables=["exposure"], references={"exposure": 1.0}, points=points)  # fmt: skip


def test_the_cheapest_setting_is_reached_from_the_reference_without_crossing_a_failure():
    r = _results({1.0: 0.9, 0.3: 0.87, 0.1: 0.84, 0.03: 0.86, 0.01: 0.5})
    assert r.cheapest("exposure").value == 0.3  # 0.1 falls below 0.85; 0.03 rises again but is not taken
    assert _results({1.0: 0.9, 0.1: 0.2}).cheapest("exposure").value == 1.0
    assert _results({1.0: 0.9, 0.1: 0.88, 0.01: 0.87}).cheapest("exposure").value == 0.01
    frontier = r.to_dict()["frontier"]["exposure"]
    assert [p["value"] for p in frontier["points"]] == [0.01, 0.03, 0.1, 0.3, 1.0] and frontier["cheapest_sweep"]["value"] == 0.3
    assert [p["within"] for p in frontier["points"]] == [False, True, False, True, True]
    assert AcquisitionResults.from_dict(json.loads(json.dumps(r.to_dict()))).to_dict() == r.to_dict()


def test_surely_within_needs_the_drops_upper_bound_inside_epsilon():
    points = [AcquisitionPoint("exposure", 1.0, 1.0, 0.75, [1, 0, 1, 1]), AcquisitionPoint("exposure", 0.1, 0.1, 0.75, [1, 1, 0, 1])]
    r = AcquisitionResults(task="classification", metric="accuracy", pipeline="p", epsilon=0.05, reference=0.75, reference_per_image=[1, 0, 1, 1],
                           variables=["exposure"], references={"exposure": 1.0}, points=points)  # fmt: skip
    assert r.cheapest("exposure").value == 0.1  # same accuracy
    assert r.cheapest("exposure", surely=True).value == 1.0  # but two images swapped: the drop's interval reaches ±0.8


# -- the study ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def study_run(microscopy_root, tmp_path_factory):
    """The tiny study run once: its config, folder, results and progress lines."""
    pytest.importorskip("ispkit_plugin_optics")
    config = AcquisitionConfig.from_yaml(experiment(microscopy_root))
    run = tmp_path_factory.mktemp("acquisition") / "run"
    lines: list[str] = []
    return config, run, run_acquisition(config, run, tracking=False, progress=lines.append), lines


def test_the_sweep_at_the_reference_value_scores_as_the_reference_test_set(study_run):
    from ispkit.data.splits import grouped_stratified_kfold
    from ispkit.drift.acquisition import AcquisitionStudy

    config, run, results, _ = study_run
    study = AcquisitionStudy.open(config, run)
    network = study.network
    test = grouped_stratified_kfold(study.data.groups, study.data.labels, n_splits=config.folds, seed=config.seed)[config.fold][1]
    with torch.no_grad():  # the frozen model on the reference views of the held-out images, made as the training views are
        views = study.bank.source(config.pipeline_label)(torch.as_tensor(test))
        expected = (network(views).argmax(1) == study.data.targets[test]).double().mean().item()
    assert results.reference == pytest.approx(expected, abs=1e-12)
    for variable in results.variables:
        at_reference = next(p for p in results.frontier(variable) if p.value == results.references[variable])
        assert at_reference.per_image == results.reference_per_image and at_reference.cost == 1.0


def test_the_frontier_is_ordered_by_cost_and_cost_follows_the_setting(study_run):
    _, run, results, _ = study_run
    saved = json.loads((run / "results.json").read_text())
    for variable in results.variables:
        points = saved["frontier"][variable]["points"]
        costs = [p["cost"] for p in points]
        assert costs == sorted(costs) and len(set(costs)) == len(costs) and costs[-1] == 1.0
        values = [p["value"] for p in points]
        assert values == (sorted(values, reverse=True) if variable == "pixel_pitch" else sorted(values))
        assert all(p["interval"]["units"] == "images" and p["drop"]["n"] == len(results.reference_per_image) for p in points)
    assert saved["frontier"]["exposure"]["points"][0]["photons_per_pixel"] > 0 and saved["frontier"]["exposure"]["points"][0]["draws"] == 2
    assert set(saved["searches"]) == {"exposure", "numerical_aperture"}
    for variable, search in results.searches.items():
        assert min(results.frontier(variable)[0].value, 1.0) <= search.value <= results.references[variable]
        assert saved["frontier"][variable]["cheapest_search"]["value"] == search.value
    for name in (
        "report.html",
        "figures/frontier.png",
        "model.pt",
        "units/reference/result.json",
        "units/exposure/0.03/result.json",
        "units/exposure/search/result.json",
    ):
        assert (run / name).is_file(), name
    assert "Acquisition design report" in (run / "report.html").read_text() and "cheapest swept setting within ε" in (run / "report.html").read_text()


def test_a_rerun_reads_every_finished_unit_back_and_recomputes_a_lost_one(study_run):
    config, run, results, _ = study_run
    again: list[str] = []
    assert run_acquisition(config, run, tracking=False, progress=again.append).to_dict() == results.to_dict()
    assert "model: done earlier, read back" in again
    assert sum("done earlier, read back" in line for line in again) == 1 + 1 + 11 + 2  # model, reference, the sweeps' points, the searches
    (run / "units" / "bit_depth" / "8" / "result.json").unlink()
    lines: list[str] = []
    assert run_acquisition(config, run, tracking=False, progress=lines.append).to_dict() == results.to_dict()
    recomputed = [line for line in lines if line.startswith("[") and "read back" not in line]
    assert len(recomputed) == 1 and "bit_depth" in recomputed[0] and "8 bit" in recomputed[0]


def test_the_command_line_runs_and_resumes_a_study(microscopy_root, tmp_path, capsys):
    config = tmp_path / "acquisition.yaml"
    config.write_text(experiment(microscopy_root, name="cli-acquisition", variables="{bit_depth: [16, 6], pixel_pitch: [1, 3]}", draws="1"))
    out = tmp_path / "run"
    assert main(["acquire", "run", str(config), "--out", str(out), "--no-tracking"]) == 0
    text = capsys.readouterr().out
    assert "[2/5] bit_depth" in text and "cheapest within ε" in text and (out / "report.html").is_file()
    assert main(["acquire", "run", str(config), "--out", str(out), "--no-tracking"]) == 0
    assert capsys.readouterr().out.count("done earlier, read back") == 6
    config.write_text(experiment(microscopy_root, variables="{bit_depth: [4]}"))
    assert main(["acquire", "run", str(config), "--no-tracking"]) == 2
    assert "variables.bit_depth[0]" in capsys.readouterr().err
