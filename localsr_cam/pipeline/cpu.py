"""CPU use of this process: user + system CPU seconds per wall second.

Given in percent of one core (200 % = both cores of a 2-core laptop busy with us). Every
thread of the process counts (capture, processing, ONNX Runtime's pool, output).
"""

from __future__ import annotations

import time
from collections.abc import Callable

Clock = Callable[[], float]


class CpuMeter:
    """Percent of one core this process used between two points in time.

    ``start()`` marks the beginning; ``percent()`` is the use since then; ``sample()``
    is the use since the previous ``sample()`` (or ``start()``) and moves the mark, for
    a rolling figure such as the preview HUD's. ``wall`` and ``cpu`` are injectable
    clocks (seconds) for tests; by default ``time.perf_counter`` and
    ``time.process_time`` (user + system time of all the process's threads).
    """

    def __init__(self, wall: Clock = time.perf_counter, cpu: Clock = time.process_time
                 ) -> None:
        self._wall, self._cpu = wall, cpu
        self._start = self._last = (wall(), cpu())

    def start(self) -> None:
        self._start = self._last = (self._wall(), self._cpu())

    def percent(self) -> float:
        """CPU use since ``start()`` in % of one core (0 when no wall time passed)."""
        return _percent(self._start, (self._wall(), self._cpu()))

    def sample(self) -> float:
        """CPU use since the last sample in % of one core; moves the mark."""
        now = (self._wall(), self._cpu())
        used, self._last = _percent(self._last, now), now
        return used


def _percent(before: tuple[float, float], after: tuple[float, float]) -> float:
    wall = after[0] - before[0]
    return 100.0 * (after[1] - before[1]) / wall if wall > 0 else 0.0


class RollingCpu:
    """A CPU-use figure refreshed at most every ``every_s`` seconds (for a HUD).

    ``update()`` is cheap to call on every frame: it only reads the clocks and returns
    the figure measured over the last completed interval (``nan`` before the first).
    """

    def __init__(self, every_s: float = 1.0, meter: CpuMeter | None = None,
                 wall: Clock = time.perf_counter) -> None:
        self.every_s = every_s
        self._meter = meter or CpuMeter()
        self._wall = wall
        self._due = wall() + every_s
        self.value = float("nan")

    def update(self) -> float:
        now = self._wall()
        if now >= self._due:
            self.value = self._meter.sample()
            self._due = now + self.every_s
        return self.value
