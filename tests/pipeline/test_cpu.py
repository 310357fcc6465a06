"""The process's CPU use: figures from injected clocks, and this process's own time."""

from __future__ import annotations

import time

import pytest

from localsr_cam.pipeline.cpu import CpuMeter, RollingCpu


class Clocks:
    def __init__(self) -> None:
        self.wall = 0.0
        self.cpu = 0.0


def test_cpu_meter_is_cpu_seconds_per_wall_second_in_percent_of_a_core():
    clocks = Clocks()
    meter = CpuMeter(wall=lambda: clocks.wall, cpu=lambda: clocks.cpu)
    clocks.wall, clocks.cpu = 2.0, 1.2  # 1.2 CPU s in 2 s
    assert meter.sample() == pytest.approx(60.0)
    clocks.wall, clocks.cpu = 3.0, 3.2  # two cores busy for the next second
    assert meter.sample() == pytest.approx(200.0)
    assert meter.percent() == pytest.approx(3.2 / 3.0 * 100)
    meter.start()
    assert meter.percent() == 0.0  # no wall time since the start


def test_rolling_cpu_refreshes_once_per_interval():
    clocks = Clocks()
    meter = CpuMeter(wall=lambda: clocks.wall, cpu=lambda: clocks.cpu)
    rolling = RollingCpu(every_s=1.0, meter=meter, wall=lambda: clocks.wall)
    clocks.wall, clocks.cpu = 0.5, 0.5
    assert rolling.update() != rolling.update()  # nan before the first interval
    clocks.wall, clocks.cpu = 1.0, 0.5
    assert rolling.update() == pytest.approx(50.0)
    clocks.wall, clocks.cpu = 1.5, 1.0  # not refreshed within the interval
    assert rolling.update() == pytest.approx(50.0)


def test_cpu_meter_counts_this_process_working_not_sleeping():
    """By default the meter reads this process's CPU time (robust on a busy machine:
    the work is counted in CPU seconds, not wall time)."""
    meter = CpuMeter()
    started_wall, started_cpu = time.perf_counter(), time.process_time()
    while time.process_time() - started_cpu < 0.1:
        pass
    wall = time.perf_counter() - started_wall
    assert meter.percent() * wall / 100 == pytest.approx(0.1, abs=0.02)
    meter.start()
    time.sleep(0.2)
    assert meter.percent() < 10.0
