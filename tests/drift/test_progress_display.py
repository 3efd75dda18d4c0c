"""The time-left estimate (EtaEstimator, Clock) and where progress goes (ProgressDisplay, counter)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from ispkit.drift.progress_display import EtaEstimator, ProgressDisplay, counter
from ispkit.drift.units import Clock, Unit, total_work


class Script:
    """A clock that reads the scripted time: ``advance(seconds)`` moves it on."""

    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


def _study(units: int, epochs: int, epoch_s: float, evaluation_s: float):
    """Run a synthesis-like study on the scripted clock: per unit, ``epochs`` steps then one evaluation;
    yields (estimated seconds left, true seconds left) after every step."""
    script = Script()
    eta = EtaEstimator({"work": units * epochs, "evaluation": units}, now=script)
    total = units * (epochs * epoch_s + evaluation_s)
    for _ in range(units):
        for kind, seconds in [("work", epoch_s)] * epochs + [("evaluation", evaluation_s)]:
            script.advance(seconds)
            eta.record(kind)
            yield eta.left(), total - script.t


def test_the_estimate_holds_still_over_alternating_fast_training_and_slow_evaluation():
    # 12 units of 5 one-minute epochs and an 8-minute evaluation: the phases alternate fast/slow
    estimates = list(_study(12, 5, 60.0, 480.0))
    left, truth = zip(*estimates, strict=True)
    first_unit = 6
    # before the first evaluation is measured it is assumed to cost an epoch: the only jump
    assert left[4] == pytest.approx(11 * 5 * 60 + 12 * 60)
    # from the first evaluation on, the estimate is exact and never rises
    assert left[first_unit - 1 :] == pytest.approx(truth[first_unit - 1 :])
    assert all(b <= a for a, b in zip(left[first_unit - 1 :], left[first_unit:], strict=False))


def test_a_fast_slow_alternation_within_one_kind_averages_out():
    script = Script()
    eta = EtaEstimator({"work": 60}, now=script)
    ratios = []
    for i in range(60):
        script.advance(20.0 if i % 2 else 100.0)  # mean 60 s per step
        eta.record()
        if i >= 9:
            ratios.append(eta.left() / (60.0 * (60 - i - 1)) if i < 59 else 1.0)
    # a last-step estimate would swing between 1/3 and 5/3 of the truth; the windowed mean stays within 10 %
    assert min(ratios) > 0.9 and max(ratios) < 1.1


def test_the_window_forgets_old_steps():
    script = Script()
    eta = EtaEstimator({"work": 100}, window=4, now=script)
    for seconds in [100.0] * 10 + [10.0] * 4:
        script.advance(seconds)
        eta.record()
    assert eta.cost("work") == pytest.approx(10.0) and eta.left() == pytest.approx(86 * 10.0)


def test_skipped_steps_are_done_but_not_timed_and_the_time_spent_skipping_is_not_credited():
    script = Script()
    eta = EtaEstimator({"work": 10}, now=script)
    script.advance(500.0)  # reading back earlier results
    eta.skip("work", 8)
    script.advance(30.0)
    assert eta.record() == pytest.approx(30.0)
    assert eta.done_steps == 9 and eta.left() == pytest.approx(30.0)


def test_nothing_measured_means_no_estimate_and_an_unknown_kind_grows_the_total():
    script = Script()
    eta = EtaEstimator({"work": 2}, now=script)
    assert eta.left() is None and eta.cost("work") is None
    script.advance(5.0)
    eta.record("attack", 3)
    assert eta.totals == {"work": 2, "attack": 3} and eta.cost("attack") == pytest.approx(5.0 / 3)
    assert eta.cost("work") == pytest.approx(5.0 / 3)  # not measured: the mean of every measured step
    with pytest.raises(ValueError, match="window must be at least 1"):
        EtaEstimator({}, window=0)


def test_clock_counts_work_of_kinds_and_skips_a_units_work():
    script, lines = Script(), []
    units = [Unit(f"u{i}", (i,), Path(f"u{i}"), work={"work": 2, "evaluation": 1}) for i in range(3)]
    clock = Clock(lines.append, total_work(units), now=script)
    assert clock.total == 9
    clock.skip(units[0].work)  # a unit read back on a resume
    for kind, seconds in [("work", 60), ("work", 60), ("evaluation", 600)]:
        script.advance(seconds)
        clock.step(f"{kind} done", kind)
    assert clock.done == 6 and clock.timed == 3
    assert lines[-1] == "evaluation done  elapsed 12m00s  left ~12m00s"  # one unit left: 2 × 1 min + 10 min


def test_clock_hands_steps_to_a_display_and_plain_lines_are_throttled():
    script, out = Script(), io.StringIO()
    display = ProgressDisplay(terminal=False, lines=out, every=0.25, interval=1e9, now=script)
    clock = Clock(display, 8, now=script)
    clock.say("starting")
    for i in range(8):
        script.advance(10.0)
        clock.step(f"epoch {i + 1}")
    shown = out.getvalue().splitlines()
    assert shown == [
        "starting",
        "epoch 1  elapsed 0m10s  left ~1m10s",
        "epoch 3  elapsed 0m30s  left ~0m50s",
        "epoch 5  elapsed 0m50s  left ~0m30s",
        "epoch 7  elapsed 1m10s  left ~0m10s",
        "epoch 8  elapsed 1m20s  left ~0m00s",
    ]


def test_plain_lines_are_also_printed_after_interval_seconds():
    script, out = Script(), io.StringIO()
    display = ProgressDisplay(terminal=False, lines=out, every=1.0, interval=60.0, now=script)
    for done in range(1, 5):
        script.advance(40.0)
        display.update(done, 100, script.t, 10.0, f"step {done}")
    assert [line.split()[1] for line in out.getvalue().splitlines()] == ["1", "3"]  # 80 s after step 1; step 2 came 40 s after


def test_quiet_shows_nothing():
    out, err = io.StringIO(), io.StringIO()
    display = ProgressDisplay(quiet=True, lines=out, stream=err, terminal=True)
    display("a message")
    display.update(1, 2, 1.0, 1.0, "a step")
    display.close()
    assert out.getvalue() == err.getvalue() == ""


def test_a_terminal_gets_a_bar_with_the_estimate_and_the_step_lines_above_it():
    err, out = io.StringIO(), io.StringIO()
    with ProgressDisplay(terminal=True, stream=err, lines=out) as display:
        display("starting")
        display.update(3, 12, 30.0, 270.0, "[1/4] epoch 3/3")
        display("a message under way")
    screen = err.getvalue()
    assert out.getvalue() == ""
    assert "starting" in screen and "[1/4] epoch 3/3" in screen and "a message under way" in screen
    assert " 25%|" in screen and "3/12" in screen and "left ~4m" in screen


def test_counter_reports_items_with_their_estimate():
    script, out = Script(), io.StringIO()
    display = ProgressDisplay(terminal=False, lines=out, every=0.5, interval=1e9, now=script)
    progress = counter(display, "microscopy", now=script)
    for done in range(1, 5):
        script.advance(2.0)
        progress(done, 4)
    assert out.getvalue().splitlines() == ["microscopy: 1/4  elapsed 0m02s  left ~0m06s", "microscopy: 3/4  elapsed 0m06s  left ~0m02s",
                                           "microscopy: 4/4  elapsed 0m08s  left ~0m00s"]  # fmt: skip
