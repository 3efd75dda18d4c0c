"""Results of an acquisition-design study: the accuracy-versus-cost frontier of each control variable.

:func:`ispkit.drift.acquisition.run_acquisition` makes an :class:`AcquisitionResults`,
saves it as ``results.json`` and draws it (:mod:`ispkit.drift.acquisition_report`);
both import this module and neither imports the other.

For each control variable (exposure, bit depth, numerical aperture, pixel pitch) the
sweep is one :class:`AcquisitionPoint` per grid value: its cost (relative to the
reference acquisition, which costs 1), the frozen model's metric on the held-out images
acquired that way (per image, averaged over the noise draws) and two intervals over those
images (:func:`~ispkit.drift.statistics.image_interval`): the metric's own, and the paired
drop from the reference acquisition on the same images. The continuous variables also
carry an :class:`AcquisitionSearch`, the gradient-guided bracketing of the threshold.

**Within ε.** A setting is *within ε* when its metric is at least ``reference − ε``
(the *floor*), and *surely within ε* when the upper end of its drop's 95 % interval is at
most ε. The **cheapest setting within ε** of a sweep (:meth:`AcquisitionResults.cheapest`)
is found by walking the grid from the reference towards lower cost and stopping before the
first setting that falls below the floor: a cheaper setting that scores above the floor
again after one that fell (noise, or a non-monotone model) is not taken, since the
answer is meant to be a setting a lab can move to along the variable without crossing a
failure it has seen.

Examples
--------
>>> points = [AcquisitionPoint("exposure", v, v, m, [m] * 4) for v, m in [(1.0, 0.9), (0.1, 0.88), (0.01, 0.5), (0.001, 0.86)]]
>>> r = AcquisitionResults(task="classification", metric="accuracy", pipeline="bi,s,ga", epsilon=0.05, reference=0.9,
...     reference_per_image=[0.9] * 4, variables=["exposure"], references={"exposure": 1.0}, points=points)
>>> r.cheapest("exposure").value      # 0.001 scores above the floor again, but 0.01 fell before it
0.1
>>> [p.value for p in r.frontier("exposure")]
[0.001, 0.01, 0.1, 1.0]
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import InputError
from .results import JsonResults
from .statistics import CONFIDENCE, Interval, image_interval, signed

__all__ = ["VARIABLE_TEXT", "AcquisitionPoint", "SearchStep", "AcquisitionSearch", "AcquisitionResults", "value_text"]

VARIABLE_TEXT = {
    "exposure": ("exposure", "×", "light collected relative to the reference (exposure time × illumination)"),
    "bit_depth": ("bit depth", "bit", "bits per pixel, relative to the camera's"),
    "numerical_aperture": ("numerical aperture", "", "numerical aperture relative to the camera's objective"),
    "pixel_pitch": ("pixel pitch", "× pitch", "pixels per field of view relative to the camera's (1 / binning²)"),
}
"""Per control variable: its name in words, the unit of its values and what its cost measures."""


def value_text(variable: str, value: float) -> str:
    """A setting in words: ``"0.03×"``, ``"8 bit"``, ``"NA 0.3"``, ``"2× pitch"``.

    >>> value_text("exposure", 0.03), value_text("bit_depth", 8.0), value_text("numerical_aperture", 0.30340), value_text("pixel_pitch", 2.0)
    ('0.03×', '8 bit', 'NA 0.303', '2× pitch')
    """
    if variable == "exposure":
        return f"{value:.3g}×"
    if variable == "bit_depth":
        return f"{value:g} bit"
    if variable == "numerical_aperture":
        return f"NA {value:.3g}"
    return f"{value:g}× pitch"


@dataclass
class AcquisitionPoint:
    """One setting of one control variable and the frozen model's score on the held-out images acquired with it.

    ``per_image``: each image's metric averaged over the ``draws`` noise draws (one for a
    deterministic variable); ``metric`` is their mean. ``extra``: the setting in other
    units (photo-electrons per pixel for the exposure, µm for the pitch).
    """

    variable: str
    value: float
    cost: float
    metric: float
    per_image: list[float]
    draws: int = 1
    extra: dict[str, float] = field(default_factory=dict)

    def interval(self) -> Interval:
        """The metric's t interval over the images."""
        return image_interval(self.per_image)

    def drop(self, reference_per_image: list[float]) -> Interval:
        """The paired drop ``reference − this`` over the same images, with its t interval."""
        if len(reference_per_image) != len(self.per_image):
            raise InputError(f"{self.variable} = {self.value:g}: {len(self.per_image)} per-image scores against {len(reference_per_image)} of the reference")
        return image_interval(np.asarray(reference_per_image) - np.asarray(self.per_image))

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AcquisitionPoint:
        return cls(**data)


@dataclass
class SearchStep:
    """One probe of the threshold search: the setting, the measured metric, the surrogate and its slope
    (d surrogate / d log value), how the setting was chosen (``"end"``, ``"newton"``, ``"bisect"``) and whether it was within ε."""

    step: int
    value: float
    metric: float
    surrogate: float
    slope: float
    move: str
    feasible: bool


@dataclass
class AcquisitionSearch:
    """The gradient-guided search of a continuous variable: the cheapest setting it confirmed within ε.

    ``value`` is the feasible end of the final bracket ``[low, high]`` (``low`` the
    cheapest setting probed that fell below the floor, ``None`` when even the cheapest
    end of the range was within ε); ``converged``: the bracket is narrower than the
    relative tolerance (else the step budget ran out).
    """

    variable: str
    value: float
    cost: float
    metric: float
    low: float | None
    high: float
    converged: bool
    steps: list[SearchStep]

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "steps": [dict(s.__dict__) for s in self.steps]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AcquisitionSearch:
        return cls(**{**data, "steps": [SearchStep(**s) for s in data["steps"]]})


@dataclass
class AcquisitionResults(JsonResults):
    """The frontier of every control variable (see the module docstring).

    ``reference``/``reference_per_image``: the metric of the reference acquisition on the
    held-out images; ``references``: each variable's reference value; ``points``: the
    sweeps; ``searches``: the searches of the continuous variables, by variable.
    """

    task: str
    metric: str
    pipeline: str
    epsilon: float
    reference: float
    reference_per_image: list[float]
    variables: list[str]
    references: dict[str, float]
    points: list[AcquisitionPoint]
    searches: dict[str, AcquisitionSearch] = field(default_factory=dict)
    classes: list[str] | None = None
    synthetic: bool = False

    @property
    def floor(self) -> float:
        """``reference − ε``: the lowest metric within ε."""
        return self.reference - self.epsilon

    def frontier(self, variable: str) -> list[AcquisitionPoint]:
        """The sweep of ``variable``, cheapest setting first."""
        points = [p for p in self.points if p.variable == variable]
        if not points:
            raise InputError(f"no sweep of {variable!r}; swept: {', '.join(self.variables)}")
        return sorted(points, key=lambda p: p.cost)

    def within(self, point: AcquisitionPoint, *, surely: bool = False) -> bool:
        """Whether ``point``'s metric is at least the floor; ``surely``: whether its drop's upper 95 % bound is at most ε."""
        if not surely:
            return point.metric >= self.floor
        high = point.drop(self.reference_per_image).high
        return math.isfinite(high) and high <= self.epsilon

    def cheapest(self, variable: str, *, surely: bool = False) -> AcquisitionPoint | None:
        """The cheapest setting reached from the reference without crossing one below the floor (module docstring); ``None`` when none is within ε."""
        found = None
        for point in reversed(self.frontier(variable)):  # the costliest (the reference) first
            if not self.within(point, surely=surely):
                break
            found = point
        return found

    # -- JSON ------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, with the derived ``frontier`` (per variable: points with intervals, cheapest from sweep and search) and ``findings``."""
        data = {k: v for k, v in self.__dict__.items() if k not in ("points", "searches")}
        data["points"] = [p.to_dict() for p in self.points]
        data["searches"] = {v: s.to_dict() for v, s in self.searches.items()}
        data["frontier"] = {v: self._frontier_dict(v) for v in self.variables}
        data["findings"] = self.findings()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AcquisitionResults:
        """Inverts :meth:`to_dict` (the derived keys are recomputed, not read)."""
        fields = {k: v for k, v in data.items() if k not in ("frontier", "findings")}
        fields["points"] = [AcquisitionPoint.from_dict(p) for p in data["points"]]
        fields["searches"] = {v: AcquisitionSearch.from_dict(s) for v, s in data["searches"].items()}
        return cls(**fields)

    def _frontier_dict(self, variable: str) -> dict[str, Any]:
        points = []
        for p in self.frontier(variable):
            points.append({"value": p.value, "cost": p.cost, self.metric: p.metric, "interval": p.interval().to_dict(),
                           "drop": p.drop(self.reference_per_image).to_dict(), "within": self.within(p), "surely_within": self.within(p, surely=True),
                           "draws": p.draws, **p.extra})  # fmt: skip
        cheapest, surely = self.cheapest(variable), self.cheapest(variable, surely=True)
        search = self.searches.get(variable)
        return {
            "reference": self.references[variable],
            "unit": VARIABLE_TEXT[variable][1],
            "cost": VARIABLE_TEXT[variable][2],
            "points": points,
            "cheapest_sweep": None if cheapest is None else {"value": cheapest.value, "cost": cheapest.cost, self.metric: cheapest.metric},
            "cheapest_sweep_surely": None if surely is None else {"value": surely.value, "cost": surely.cost, self.metric: surely.metric},
            "cheapest_search": None
            if search is None
            else {"value": search.value, "cost": search.cost, self.metric: search.metric, "converged": search.converged},
        }

    # -- findings --------------------------------------------------------------------------

    def findings(self) -> dict[str, Any]:
        """What the study found, in sentences (``statements``) with the numbers they state."""
        statements = [
            f"Reference acquisition: {self.metric} {signed(self.reference)} on {len(self.reference_per_image)} held-out images; "
            f"ε = {signed(self.epsilon)}, so a setting is within ε at {self.metric} ≥ {signed(self.floor)}."
        ]
        statements += [self.variable_statement(v) for v in self.variables]
        statements.append(
            f"Intervals are {CONFIDENCE:.0%} t intervals over the held-out images of one trained model (noise draws averaged per image); "
            "the search ran on the same images."
        )
        return {"metric": self.metric, "confidence": CONFIDENCE, "synthetic": self.synthetic, "reference": self.reference, "epsilon": self.epsilon,
                "statements": statements}  # fmt: skip

    def variable_statement(self, variable: str) -> str:
        """The cheapest setting of ``variable`` within ε in words: from the sweep, the next cheaper setting's fall, and the search."""
        name = VARIABLE_TEXT[variable][0].capitalize()
        cheapest = self.cheapest(variable)
        if cheapest is None:
            return f"{name}: no swept setting is within ε (the reference scored below its own floor)."
        frontier = self.frontier(variable)
        drop = cheapest.drop(self.reference_per_image)
        text = (
            f"{name}: the cheapest swept setting within ε is {value_text(variable, cheapest.value)} (cost {cheapest.cost:.3g} of the reference's), "
            f"{self.metric} {signed(cheapest.metric)}, a drop of {signed(drop.estimate)} ({drop.bounds_text()})"
        )
        cheaper = [p for p in frontier if p.cost < cheapest.cost]
        if cheaper:
            fall = cheaper[-1]
            text += f"; the next cheaper, {value_text(variable, fall.value)}, falls to {signed(fall.metric)}"
        else:
            text += "; it is the cheapest setting swept"
        surely = self.cheapest(variable, surely=True)
        if surely is not None and surely is not cheapest:
            text += f"; the cheapest whose drop is within ε at the upper {CONFIDENCE:.0%} bound is {value_text(variable, surely.value)}"
        search = self.searches.get(variable)
        if search is not None:
            how = "converged" if search.converged else "step budget spent"
            text += f". The gradient search puts the cheapest setting within ε at {value_text(variable, search.value)} ({self.metric} {signed(search.metric)}, {len(search.steps)} probes, {how})"
        return text + "."
