"""Progress of long runs: a time-left estimate that holds still, shown as a bar, as plain lines or not at all.

:class:`EtaEstimator` counts work in steps of named **kinds** (``"work"``: training epochs
or whole units; ``"evaluation"``: a unit's tests after training; ``"attack"``; ``"image"``)
and estimates the time left as the sum over kinds of the steps left times that kind's
mean measured duration over its last finished steps. A kind's cost is thus learnt from
its own steps only: ten fast epochs do not make the next slow evaluation look fast, and
a fast-slow alternation within one kind averages out instead of swinging the estimate.

:class:`ProgressDisplay` shows what a :class:`~ispkit.drift.units.Clock` (or
:func:`counter`) reports: a tqdm bar on standard error when it is a terminal, with the
step lines written above it; otherwise plain lines on standard output, at most one per
twentieth of the work or per ``interval`` seconds (messages always); nothing when quiet.
tqdm is imported when the first bar is drawn.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any, TextIO

__all__ = ["EtaEstimator", "ProgressDisplay", "counter", "duration", "DEFAULT_KIND"]

DEFAULT_KIND = "work"
"""The kind of a step when none is named (epochs, or whole units)."""


def duration(seconds: float) -> str:
    """``"12m05s"``; hours as minutes (``"125m00s"``).

    >>> duration(725.4)
    '12m05s'
    """
    minutes, seconds = divmod(int(seconds), 60)
    return f"{minutes}m{seconds:02d}s"


class EtaEstimator:
    """The time left of a run made of ``totals[kind]`` steps of each kind.

    Each :meth:`record` measures the time since the previous recorded or skipped step (or
    since the estimator was made) and credits it to the step's kind; :meth:`left` is the
    sum over kinds of the steps left × the mean of that kind's last ``window`` measured
    durations. A kind not measured yet is estimated at the mean duration of every measured
    step. Steps done earlier (a resume) are :meth:`skip`-ped: counted as done, never timed.
    Not thread-safe (the :class:`~ispkit.drift.units.Clock` holds a lock around it).

    >>> times = iter([0.0, 10.0, 70.0])
    >>> eta = EtaEstimator({"work": 2, "evaluation": 2}, now=lambda: next(times))
    >>> _ = eta.record("work"); eta.left()   # an epoch took 10 s; the evaluation is not known yet: 10 s too
    30.0
    >>> _ = eta.record("evaluation"); eta.left()   # the evaluation took 60 s
    70.0
    """

    def __init__(self, totals: Mapping[str, int], *, window: int = 50, now: Callable[[], float] | None = None) -> None:
        if window < 1:
            raise ValueError(f"window must be at least 1 step, got {window}")
        self.totals: dict[str, int] = {kind: int(n) for kind, n in totals.items()}
        self.done: dict[str, int] = dict.fromkeys(self.totals, 0)
        self._durations: dict[str, deque[float]] = {}
        self._window, self._now = window, now or time.perf_counter
        self.start = self._mark = self._now()

    def record(self, kind: str = DEFAULT_KIND, steps: int = 1) -> float:
        """``steps`` of ``kind`` finished now; returns the seconds they took (since the last mark)."""
        now = self._now()
        seconds, self._mark = now - self._mark, now
        self._count(kind, steps)
        per_step = seconds / max(steps, 1)
        self._durations.setdefault(kind, deque(maxlen=self._window)).extend([per_step] * max(steps, 1))
        return seconds

    def skip(self, kind: str = DEFAULT_KIND, steps: int = 1) -> None:
        """``steps`` of ``kind`` were done earlier: done, not timed (the time since the last mark is not credited)."""
        self._count(kind, steps)
        self._mark = self._now()

    def _count(self, kind: str, steps: int) -> None:
        self.totals.setdefault(kind, 0)
        self.done[kind] = self.done.get(kind, 0) + steps
        self.totals[kind] = max(self.totals[kind], self.done[kind])  # more steps than announced: the total grows

    def cost(self, kind: str) -> float | None:
        """The estimated seconds of one step of ``kind`` (``None`` before any step was measured)."""
        own = self._durations.get(kind)
        if own:
            return sum(own) / len(own)
        every = [d for durations in self._durations.values() for d in durations]
        return sum(every) / len(every) if every else None

    def left(self) -> float | None:
        """Estimated seconds left (``None`` before any step was measured)."""
        if not self._durations:
            return None
        return sum(max(total - self.done[kind], 0) * (self.cost(kind) or 0.0) for kind, total in self.totals.items())

    def elapsed(self) -> float:
        """Seconds since the estimator was made."""
        return self._now() - self.start

    @property
    def total_steps(self) -> int:
        return sum(self.totals.values())

    @property
    def done_steps(self) -> int:
        return sum(self.done.values())


class ProgressDisplay:
    """A command's progress: a bar on a terminal, plain lines in a log, nothing when ``quiet``.

    Use it as the ``progress`` callable of :func:`~ispkit.drift.synthesis.run_synthesis` (and
    the other controls): called with a line, it prints a message; a
    :class:`~ispkit.drift.units.Clock` calls :meth:`update` for each step instead.

    Parameters
    ----------
    quiet
        Show nothing (errors are not progress: the command still prints them).
    terminal
        Draw a bar on ``stream``; default: whether ``stream`` is a terminal.
    stream, lines
        Where the bar goes (default standard error) and where plain lines go (default
        standard output), each looked up when used.
    every, interval
        Without a bar a step line is printed when at least ``every`` of the work or
        ``interval`` seconds passed since the last one, and for the last step.
    """

    def __init__(
        self, *, quiet: bool = False, terminal: bool | None = None, stream: TextIO | None = None, lines: TextIO | None = None,
        every: float = 0.05, interval: float = 30.0, now: Callable[[], float] = time.monotonic,
    ) -> None:  # fmt: skip
        self.quiet, self.every, self.interval, self._now = quiet, every, interval, now
        self._stream, self._lines = stream, lines
        self.terminal = terminal if terminal is not None else _is_terminal(self.stream)
        self._bar: Any = None
        self._left: tuple[float, float] | None = None  # (seconds left, when estimated)
        self._shown: tuple[int, float] | None = None  # (steps done, when) of the last plain step line
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def stream(self) -> TextIO:
        return self._stream if self._stream is not None else sys.stderr

    @property
    def lines(self) -> TextIO:
        return self._lines if self._lines is not None else sys.stdout

    def __call__(self, message: str) -> None:
        """Print ``message`` (above the bar on a terminal)."""
        if self.quiet:
            return
        if self._bar is not None:
            self._bar.write(message, file=self.stream)
        else:
            print(message, file=self.lines if not self.terminal else self.stream, flush=True)

    def update(self, done: int, total: int, elapsed: float, left: float | None, message: str, *, keep: bool = True) -> None:
        """A step finished: ``done`` of ``total`` steps after ``elapsed`` seconds, about ``left`` to go.

        On a terminal ``message`` is written above the bar when ``keep``, else it is the bar's label.
        """
        if self.quiet:
            return
        if self.terminal:
            self._draw(done, total, left, message, keep)
        elif self._due(done, total):
            estimate = f"~{duration(left)}" if left is not None else "~?"
            print(f"{message}  elapsed {duration(elapsed)}  left {estimate}", file=self.lines, flush=True)

    def _due(self, done: int, total: int) -> bool:
        """Whether a plain step line is due (and if so, remember it as shown)."""
        now = self._now()
        due = self._shown is None or done >= total or done - self._shown[0] >= self.every * total or now - self._shown[1] >= self.interval
        if due:
            self._shown = (done, now)
        return due

    def _draw(self, done: int, total: int, left: float | None, message: str, keep: bool) -> None:
        with self._lock:
            if self._bar is None:
                self._bar = _new_bar(total, self.stream)
                self._ticker = threading.Thread(target=self._tick, name="ispkit-progress", daemon=True)
                self._ticker.start()
            if keep:
                self._bar.write(message, file=self.stream)
            else:
                self._bar.set_description_str(message, refresh=False)
            self._bar.total, self._bar.n = max(total, done), done
            self._left = (left, self._now()) if left is not None else None
            self._refresh()

    def _refresh(self) -> None:
        """Redraw the bar with the time left counted down since it was estimated."""
        left = "?" if self._left is None else duration(max(self._left[0] - (self._now() - self._left[1]), 0.0))
        self._bar.set_postfix_str(f"left ~{left}", refresh=False)
        self._bar.refresh()

    def _tick(self) -> None:
        """Redraw once a second, so that a long step (an evaluation) still shows time passing."""
        while not self._stop.wait(1.0):
            with self._lock:
                if self._bar is not None:
                    self._refresh()

    def close(self) -> None:
        """Finish the bar (a display may be used again afterwards: a new bar is drawn)."""
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join()
        with self._lock:
            if self._bar is not None:
                self._bar.close()
            self._bar, self._ticker, self._shown = None, None, None
        self._stop.clear()

    def __enter__(self) -> ProgressDisplay:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def counter(display: ProgressDisplay, what: str, *, now: Callable[[], float] | None = None) -> Callable[[int, int], None]:
    """A ``progress(done, total)`` callable (as :func:`ispkit.data.synthesize_microscopy` takes) that shows
    ``"<what>: done/total"`` on ``display`` with the time left, estimated from the items done so far."""
    eta = EtaEstimator({}, now=now)  # timed from now: the first item's time counts
    shown = {"done": 0}

    def progress(done: int, total: int) -> None:
        eta.totals["item"] = max(total, done)
        if done > shown["done"]:
            eta.record("item", done - shown["done"])
            shown["done"] = done
        display.update(done, total, eta.elapsed(), eta.left(), f"{what}: {done}/{total}", keep=False)

    return progress


def _new_bar(total: int, stream: TextIO) -> Any:
    """A tqdm bar on ``stream`` as wide as the terminal (80 columns where it reports no width, as a fresh pty does)."""
    from tqdm import tqdm

    sized = _columns(stream) > 0
    return tqdm(total=total, file=stream, dynamic_ncols=sized, ncols=None if sized else 80, leave=True,
                bar_format="{percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} [{elapsed}{postfix}]")  # fmt: skip


def _columns(stream: TextIO) -> int:
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, OSError, ValueError):
        return 0


def _is_terminal(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())
