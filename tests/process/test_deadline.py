"""The deadline controller: steps down when frames are late, back up when there is room,
never twice within its hold time. Driven by an injected clock: no real sleeping."""

from __future__ import annotations

import itertools
import math
import random

import numpy as np
import pytest

from localsr_cam.config import BlendConfig, ModelConfig, PipelineConfig
from localsr_cam.frames import CapturedFrame
from localsr_cam.process.deadline import LADDER, OUTPUT_MARGIN_S, DeadlineController
from localsr_cam.process.processor import FrameProcessor
from tests.fakes import BicubicSR, DiscSegmenter, EngineBox

PERIOD = 1 / 30


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class SlowSR(BicubicSR):
    """The fake SR engine, taking ``ms_per_kpx`` fake milliseconds per 1000 input pixels."""

    def __init__(self, clock: FakeClock, ms_per_kpx: float) -> None:
        super().__init__(offset=0.1)
        self.clock, self.ms_per_kpx = clock, ms_per_kpx

    def __call__(self, inputs):
        _, _, height, width = inputs["image"].shape
        self.clock.now += self.ms_per_kpx * height * width / 1000 / 1000
        return super().__call__(inputs)


class SlowSegmenter(DiscSegmenter):
    def __init__(self, clock: FakeClock, ms: float) -> None:
        super().__init__((0.5, 0.5), 0.25)
        self.clock, self.ms = clock, ms

    def __call__(self, inputs):
        self.clock.now += self.ms / 1000
        return super().__call__(inputs)


def moving_frame(index: int) -> np.ndarray:
    """320×180 noise, different every frame (no work is skipped as unchanged)."""
    return np.random.default_rng(index).integers(0, 256, (180, 320, 3), dtype=np.uint8)


def run_paced(processor: FrameProcessor, controller: DeadlineController, clock: FakeClock,
              seconds: float, drops: list[int]) -> list[str]:
    """Frames arrive every PERIOD; the processor takes the newest (older ones are
    dropped), processing advances the fake clock; each result is 'delivered' 1 ms later.
    Returns the level of every processed frame."""
    levels = []
    end = clock.now + seconds
    last_index = math.floor(clock.now / PERIOD)
    while clock.now < end:
        newest = math.floor(clock.now / PERIOD + 1e-9)
        if newest <= last_index:  # wait for the next frame
            clock.now = (last_index + 1) * PERIOD
            newest = last_index + 1
        drops[0] += newest - last_index - 1
        last_index = newest
        arrived = newest * PERIOD
        captured = CapturedFrame(moving_frame(newest), newest, arrived)
        result = processor.process(captured)
        clock.now += 0.001
        controller.delivered(clock.now - arrived, result.level)
        levels.append(result.level)
    return levels


def make_processor(clock: FakeClock, sr_ms_per_kpx: float, fixed_ms: float = 3.0
                   ) -> tuple[FrameProcessor, DeadlineController, SlowSR, list[int]]:
    sr = SlowSR(clock, sr_ms_per_kpx)
    engines = EngineBox(SlowSegmenter(clock, 3.0), sr)
    # boxes in 32-px buckets: the shapes and costs below are multiples of it
    config = PipelineConfig(model=ModelConfig(backend="cpu"),
                            blend=BlendConfig(ema=0.0, bucket=32))
    processor = FrameProcessor(config, engine_factory=engines).open()
    processor.prepare((320, 180))
    background = processor._background

    def slow_background(*args):  # the upscale, blend and glue: a fixed cost
        clock.now += fixed_ms / 1000
        return background(*args)

    processor._background = slow_background  # type: ignore[method-assign]
    drops = [0]
    controller = DeadlineController(30.0, clock=clock, drops=lambda: drops[0])
    processor.deadline = controller  # as a paced Pipeline arms it
    return processor, controller, sr, drops


def test_a_slow_engine_steps_down_then_back_up_never_twice_within_the_hold():
    clock = FakeClock()
    # the person box is 160×160 px (25.6 kpx): full takes 3 + 15 + 3 ms unloaded; a
    # load makes SR 2.5× slower: full 44 ms, head (160×96) 29 ms of a 33 ms budget
    processor, controller, sr, drops = make_processor(clock, sr_ms_per_kpx=0.6)
    try:
        quiet = run_paced(processor, controller, clock, 3.0, drops)
        assert set(quiet) == {"full"} and controller.changes == []
        assert controller.nominal_cost(LADDER[2]) == LADDER[2].cost  # the close-up path
        assert sr.shapes[-1] == (1, 3, 160, 160)

        sr.ms_per_kpx = 1.5  # a CPU load starts
        loaded_from = clock.now
        loaded = run_paced(processor, controller, clock, 10.0, drops)
        first = controller.changes[0]
        assert first.old == "full" and first.at - loaded_from <= 2.0
        # it settles on the best level that fits, and stays there: the last 5 s of load
        # at one level
        assert set(loaded[-150:]) == {"head"} and sr.shapes[-1] == (1, 3, 96, 160)
        assert all(c.at < clock.now - 5.0 for c in controller.changes)

        sr.ms_per_kpx = 0.6  # the load ends
        back = run_paced(processor, controller, clock, 12.0, drops)
        assert back[-1] == "full" and set(back[-60:]) == {"full"}
        assert controller.changes[-1].new == "full"
    finally:
        processor.close()
    times = [c.at for c in controller.changes]
    assert all(b - a >= controller.hold_s for a, b in itertools.pairwise(times))
    assert len(controller.changes) <= 4  # down (maybe twice), up: no oscillation
    assert sum(controller.frames_at.values()) == len(quiet) + len(loaded) + len(back)


def test_never_two_changes_within_the_hold_even_when_costs_jump_every_frame():
    clock = FakeClock()
    controller = DeadlineController(30.0, clock=clock, up_hold_s=1.0, probation_s=0.0)
    rng = random.Random(0)
    for _ in range(3000):  # 100 s of frames, each either far too slow or very fast
        level = controller.begin()
        cost = rng.choice([0.004, 0.120]) * level.cost
        clock.now += cost
        controller.end()
        controller.delivered(cost + 0.001, level.name)
        clock.now += max(0.0, PERIOD - cost)
    times = [c.at for c in controller.changes]
    assert len(times) >= 5  # it did react
    assert min(b - a for a, b in itertools.pairwise(times)) >= controller.hold_s


def test_late_delivery_alone_steps_down_even_when_processing_looks_cheap():
    """Under CPU contention the output can be late although the processor's own time
    fits: the delivered latency counts."""
    clock = FakeClock()
    controller = DeadlineController(30.0, clock=clock)
    for _ in range(90):
        level = controller.begin()
        clock.now += 0.010
        controller.end()
        controller.delivered(0.080, level.name)  # waited 70 ms for a core somewhere
        clock.now += PERIOD - 0.010
    assert controller.level.name != "full"
    assert "later than 45 ms" in controller.changes[0].reason


def test_dropped_frames_step_down():
    clock = FakeClock()
    drops = [0]
    controller = DeadlineController(30.0, clock=clock, drops=lambda: drops[0])
    for frame in range(90):
        level = controller.begin()
        clock.now += 0.010
        controller.end()
        controller.delivered(0.011, level.name)
        drops[0] += frame % 10 == 0
        clock.now += PERIOD - 0.010
    assert controller.changes[0].new == "head" and "dropped" in controller.changes[0].reason


def test_stepping_up_waits_for_the_up_hold_and_a_predicted_fit():
    clock = FakeClock()
    controller = DeadlineController(30.0, clock=clock)
    cost = {"full": 0.058, "head": 0.022, "face": 0.015, "alternate": 0.010, "plain": 0.004}
    ups = []
    for _ in range(30 * 30):
        level = controller.begin()
        clock.now += cost[level.name]
        controller.end()
        controller.delivered(cost[level.name] + 0.001, level.name)
        clock.now += max(0.0, PERIOD - cost[level.name])
        ups = [c for c in controller.changes if c.new == "full"]
    # full (58 ms of 33) is left at once for the first level predicted to fit in the
    # period (nominally: face, 32 ms; head would be 41 ms), head is tried after the up
    # hold and kept; full (predicted from head at 31 ms) never again
    changes = controller.changes
    assert [c.new for c in changes] == ["face", "head"]
    assert changes[1].at - changes[0].at >= controller.up_hold_s
    assert controller.level.name == "head" and ups == []
    assert controller.shares()["head"] > 0.85


@pytest.mark.parametrize(("people_path", "first_step"), [(True, "alternate"),
                                                        (False, "head")])
def test_the_first_step_down_is_predicted_with_the_costs_of_the_frames_path(
        people_path, first_step):
    """On the people path the finder and a mask per person, which the levels cut less
    than the SR, are most of a frame: a room at 45 ms a frame at `full` needs
    `alternate` (30 ms there), and gets there in one step when the controller is told
    the path. With the close-up path's costs it predicts `head` at 32 ms, which takes
    41 ms on these frames, and must step down again."""
    clock = FakeClock()
    controller = DeadlineController(30.0, clock=clock)
    controller.on_people_path(people_path)
    assert controller.nominal_cost(LADDER[2]) == (LADDER[2].people_cost if people_path
                                                 else LADDER[2].cost)
    for _ in range(3 * 30):
        level = controller.begin()
        spent = 0.045 * level.people_cost
        clock.now += spent
        controller.end()
        controller.delivered(spent + 0.001, level.name)
        clock.now += max(0.0, PERIOD - spent)
    steps = [change.new for change in controller.changes]
    assert steps[0] == first_step
    assert (steps == ["alternate"]) is people_path


def test_a_step_up_that_clearly_does_not_fit_is_left_before_the_hold():
    """A level stepped up to whose first frames all run late (here its SR, late on every
    frame: each such frame showed the people plain) is left after ``first_frames``
    frames, not after a whole hold of them."""
    clock = FakeClock()
    controller = DeadlineController(30.0, clock=clock)
    cost = {"full": 0.058, "head": 0.020, "face": 0.015}
    for frame in range(8 * 30):
        level = controller.begin()
        clock.now += cost[level.name]
        late_sr = level.name == "head" and frame % 40 != 0  # one in time now and then
        controller.end(over_budget=late_sr, shown_plain=late_sr)
        controller.delivered(cost[level.name] + 0.001, level.name)
        clock.now += max(0.0, PERIOD - cost[level.name])
    steps = [(change.new, change.at) for change in controller.changes]
    assert [name for name, _ in steps[:3]] == ["face", "head", "face"]
    tried_for = steps[2][1] - steps[1][1]
    assert tried_for <= controller.first_frames * PERIOD + 0.05 < controller.hold_s
    assert "since stepping up" in controller.changes[2].reason


@pytest.mark.parametrize(("plain_every", "early"), [(2, True), (4, False)])
def test_people_shown_plain_on_most_frames_after_a_change_step_down_before_the_hold(
        plain_every, early):
    """After a change (here `full` → `head`, far over budget at start-up), a level whose
    late SRs show the people plain on half of its first frames or more is left then,
    not after a whole hold of them; on a quarter of them it is judged over the hold."""
    clock = FakeClock()
    controller = DeadlineController(30.0, clock=clock)
    cost = {"full": 0.045, "head": 0.022, "face": 0.015}  # head predicted at 32 ms
    at_head = 0
    for _ in range(4 * 30):
        level = controller.begin()
        clock.now += cost[level.name]
        plain = level.name == "head" and at_head % plain_every == 0
        at_head += level.name == "head"
        controller.end(over_budget=plain, shown_plain=plain)
        controller.delivered(cost[level.name] + 0.001, level.name)
        clock.now += max(0.0, PERIOD - cost[level.name])
    steps = [(change.new, change.at) for change in controller.changes]
    assert [name for name, _ in steps[:2]] == ["head", "face"]
    assert "people shown plain" in controller.changes[1].reason
    tried_for = steps[1][1] - steps[0][1]
    if early:
        assert tried_for <= controller.first_frames * PERIOD + 0.05
    else:
        assert tried_for >= controller.hold_s


def test_the_ladder_is_ordered_best_first_by_cost_and_named_as_in_config():
    from localsr_cam.config import QUALITY_LEVELS

    assert tuple(level.name for level in LADDER) == QUALITY_LEVELS
    for costs in ([level.cost for level in LADDER], [level.people_cost for level in LADDER]):
        assert costs == sorted(costs, reverse=True) and costs[0] == 1.0
    assert LADDER[-1].uses_sr is False


@pytest.mark.parametrize("bad", [0.0, -1.0])
def test_bad_fps_is_refused(bad):
    with pytest.raises(ValueError):
        DeadlineController(bad)


def test_a_paced_pipeline_arms_the_controller_and_reports_levels_and_cpu():
    from localsr_cam.capture.sources import SyntheticSource
    from localsr_cam.outputs.sinks import NullSink
    from localsr_cam.pipeline.threads import Pipeline

    config = PipelineConfig(model=ModelConfig(backend="cpu"))
    paced = Pipeline(SyntheticSource((64, 36), fps=30), FrameProcessor(
        config, engine_factory=EngineBox()), [NullSink()], limit=20)
    result = paced.run()
    assert paced.deadline is not None and paced.processor.deadline is paced.deadline
    assert sum(paced.deadline.frames_at.values()) >= 20
    assert result.level_shares and sum(result.level_shares.values()) == pytest.approx(1.0)
    assert {r.level for r in result.records} <= {level.name for level in LADDER}
    assert result.cpu_percent >= 0.0
    assert " cpu=" in result.summary() and " levels=" in result.summary()

    unpaced = Pipeline(SyntheticSource((64, 36), fps=30), FrameProcessor(
        config, engine_factory=EngineBox()), [NullSink()], limit=5, paced_capture=False,
        paced_output=False)
    result = unpaced.run()
    assert unpaced.deadline is None and result.level_shares == {"full": 1.0}


@pytest.mark.parametrize(("paced", "quality", "threads", "expected"), [
    (True, "auto", None, 1),    # live and adapting: the SR runs beside segmentation
    (False, "auto", None, 2),   # frames one after another: each engine gets both cores
    (True, "full", None, 2),    # a fixed level has no controller, no SR beside
    (True, "auto", 2, 2),       # --threads wins (over the live run's 1)
    (False, "auto", 1, 1),
])
def test_engines_get_one_thread_each_in_a_live_adapting_run(paced, quality, threads,
                                                            expected):
    from localsr_cam.capture.sources import SyntheticSource
    from localsr_cam.outputs.sinks import NullSink
    from localsr_cam.pipeline.threads import Pipeline

    engines = EngineBox()
    config = PipelineConfig(model=ModelConfig(backend="cpu", quality=quality,
                                              threads=threads))
    pipeline = Pipeline(SyntheticSource((64, 36), fps=30),
                        FrameProcessor(config, engine_factory=engines), [NullSink()],
                        limit=3, paced_capture=paced, paced_output=paced)
    pipeline.run()
    assert engines.threads and set(engines.threads) == {expected}
    assert pipeline.processor.threads == expected
    assert (pipeline.deadline is not None) == (paced and quality == "auto")


def test_start_up_stalls_and_single_late_frames_do_not_step_down():
    """The engines' first runs are slow (and drop frames); later, a hiccup of two late
    frames every two seconds is not lateness."""
    clock = FakeClock()
    drops = [0]
    controller = DeadlineController(30.0, clock=clock, drops=lambda: drops[0])
    for frame in range(300):  # 10 s
        level = controller.begin()
        cost = 0.150 if frame < 5 else 0.020
        clock.now += cost
        controller.end()
        drops[0] += frame < 5  # frames lost behind the slow first ones
        hiccup = frame % 60 in (0, 1)
        controller.delivered(0.080 if hiccup else cost + 0.001, level.name)
        clock.now += max(0.0, PERIOD - cost)
    assert controller.changes == [] and controller.level.name == "full"


def test_a_level_seen_too_slow_is_not_tried_again_until_that_fades():
    """Under contention the plain upscale stays cheap while SR gets far dearer: the
    ratio from plain predicts too little, so the last cost seen sets a fading floor."""
    clock = FakeClock()
    controller = DeadlineController(30.0, clock=clock, up_hold_s=1.0, max_backoff=1)
    contended = {"plain": 0.002}
    tries: list[float] = []
    for frame in range(30 * 60):  # 60 s; the contention ends after 40 s
        level = controller.begin()
        if frame == 30 * 40:
            contended = {}
        cost = contended.get(level.name, 0.080 if contended else 0.021 * level.cost)
        clock.now += cost
        controller.end()
        controller.delivered(cost + 0.001, level.name)
        clock.now += max(0.0, PERIOD - cost)
        if controller.changes and controller.changes[-1].new == "alternate" \
                and (not tries or tries[-1] != controller.changes[-1].at):
            tries.append(controller.changes[-1].at)
    during = [t for t in tries if t < 40.0]
    # 80 ms halves to the 27 ms an up step needs in ~7.8 s: tries at least that far apart
    assert all(b - a >= 7.5 for a, b in itertools.pairwise(during))
    assert controller.level.name == "full"  # and once it is cheap again, all the way up


@pytest.mark.parametrize("late_every", [None, 75, 10])
def test_processing_near_the_budget_steps_down_only_when_frames_are_late(late_every):
    """31 ms of a 33 ms period is on time on an idle machine (no reason to lose
    quality), and so is one late frame now and then (a stall); the same cost while
    frames arrive late three a second is a reason to step down."""
    clock = FakeClock()
    controller = DeadlineController(30.0, clock=clock)
    for frame in range(30 * 6):
        level = controller.begin()
        cost = 0.031 if level.name == "full" else 0.020
        clock.now += cost
        controller.end()
        late = late_every is not None and frame % late_every == 0
        controller.delivered(0.080 if late else cost + 0.002, level.name)
        clock.now += max(0.0, PERIOD - cost)
    if late_every in (None, 75):
        assert controller.changes == [] and controller.level.name == "full"
    else:
        assert controller.changes and controller.changes[0].old == "full"
        assert "already late" in controller.changes[0].reason


@pytest.mark.parametrize("late", [False, True])
def test_frames_whose_sr_ran_late_count_as_over_budget(late):
    """A frame that stopped waiting for its SR took little time itself, but the SR still
    ran: the controller counts it as over budget and steps down."""
    clock = FakeClock()
    controller = DeadlineController(30.0, clock=clock)
    for _ in range(90):  # 3 s of frames of 5 ms each
        controller.begin()
        clock.now += 0.005
        controller.end(over_budget=late)
        clock.now += PERIOD - 0.005
    assert bool(controller.changes) == late
    if late:
        assert controller.changes[0].old == "full"


def test_the_sr_wait_ends_before_the_next_frame_or_lateness():
    clock = FakeClock()
    controller = DeadlineController(30.0, clock=clock)  # late: 45 ms after capture
    assert controller.sr_wait_s(0.0) == 0.0  # no frame begun
    clock.now = 1.0
    controller.begin()
    clock.now += 0.010
    # begun at once after its capture: one period from the start, less the reserve
    assert controller.sr_wait_s(1.0) == pytest.approx(0.9 * PERIOD - 0.010)
    # captured 30 ms before it began: 45 ms from the capture comes first
    assert controller.sr_wait_s(0.970) == pytest.approx(0.970 + 0.045 - 0.1 * PERIOD - 1.010)
    clock.now += PERIOD
    assert controller.sr_wait_s(1.0) == 0.0


def _steady(controller: DeadlineController, clock: FakeClock, frames: int, spent: float,
            after_sr: float | None = None) -> None:
    """``frames`` frames, one a period, each processed in ``spent`` s."""
    for _ in range(frames):
        controller.begin()
        clock.now += spent
        controller.end(after_sr_s=after_sr)
        clock.now += PERIOD - spent


def test_with_room_to_spare_the_sr_wait_runs_to_the_latency_bound():
    """Frames that keep pace with time to spare and nothing late or dropped for a while:
    a frame may wait for its SR a quarter period past its period, never past 45 ms after
    capture; two late deliveries or drops within ``calm_s`` end that until ``calm_s``
    passes with fewer (one is a stall, not a load)."""
    clock = FakeClock()
    drops = [0]
    controller = DeadlineController(30.0, clock=clock, calm_s=3.0, drops=lambda: drops[0])
    _steady(controller, clock, 60, 0.020)  # 2 s at 20 ms of 33
    begun = clock.now
    controller.begin()
    clock.now += 0.010
    # a period and a quarter after it began (before 45 ms after its capture), less 3.3 ms
    relaxed = begun + 1.25 * PERIOD - 0.1 * PERIOD - clock.now
    assert controller.sr_wait_s(begun - 0.002) == pytest.approx(relaxed)
    # captured 20 ms before it began: 45 ms after capture comes first
    assert controller.sr_wait_s(begun - 0.020) == pytest.approx(
        begun - 0.020 + 0.045 - 0.1 * PERIOD - clock.now)
    assert controller.keeping_pace()
    controller.end()
    clock.now += PERIOD - 0.010
    controller.delivered(0.050, "full")  # one frame over 45 ms: a stall, still calm
    assert controller.keeping_pace()
    controller.delivered(0.050, "full")  # a second one within 3 s: no room to spare
    controller.begin()
    clock.now += 0.010
    assert not controller.keeping_pace()
    assert controller.sr_wait_s(clock.now - 0.012) == pytest.approx(0.9 * PERIOD - 0.010)
    controller.end()
    _steady(controller, clock, 95, 0.020)  # 3 s later: calm again
    assert controller.keeping_pace()
    drops[0] += 1  # a frame dropped
    assert controller.keeping_pace()
    _steady(controller, clock, 30, 0.020)
    drops[0] += 1  # and another one a second later
    assert not controller.keeping_pace()


def test_start_up_stalls_do_not_end_the_calm():
    """Late frames and drops in the warm-up (engines' first runs) are no sign of a
    loaded machine: two seconds later frames have room to spare."""
    clock = FakeClock()
    drops = [0]
    controller = DeadlineController(30.0, clock=clock, calm_s=3.0, warmup_s=0.5,
                                    drops=lambda: drops[0])
    for _ in range(10):  # 0.33 s of slow first frames, each delivered late
        controller.begin()
        clock.now += PERIOD
        controller.end()
        controller.delivered(0.080, "full")
        drops[0] += 1
    _steady(controller, clock, 60, 0.020)
    assert controller.keeping_pace()


def test_frames_near_their_budget_never_wait_past_their_period():
    clock = FakeClock()
    controller = DeadlineController(30.0, clock=clock)
    _steady(controller, clock, 60, 0.034)  # over the budget: no room to spare
    controller.begin()
    clock.now += 0.010
    assert not controller.keeping_pace()
    assert controller.sr_wait_s(clock.now - 0.012) == pytest.approx(0.9 * PERIOD - 0.010)


def test_the_sr_wait_keeps_back_the_measured_work_after_it():
    """The reserve for what follows the SR wait is its smoothed time plus the output
    margin, once that exceeds a tenth of a period."""
    clock = FakeClock()
    controller = DeadlineController(30.0, clock=clock)
    _steady(controller, clock, 60, 0.030, after_sr=0.008)
    controller.begin()
    clock.now += 0.005
    assert controller.sr_wait_s(clock.now - 0.025) == pytest.approx(
        0.045 - (0.008 + OUTPUT_MARGIN_S) - 0.025)


def test_the_sr_wait_keeps_back_the_work_after_a_late_sr_and_then_forgets_it():
    """A frame whose SR is late composes a stand-in after the wait: that dearer work
    (its recent peak) is kept back from the wait too, whatever the smoothed time of
    frames whose SR came in time; it fades by ``late_after_decay`` a frame."""
    clock = FakeClock()
    controller = DeadlineController(30.0, clock=clock, late_after_decay=0.5)
    _steady(controller, clock, 60, 0.030, after_sr=0.002)

    def wait() -> float:
        controller.begin()
        clock.now += 0.005
        left = controller.sr_wait_s(clock.now - 0.025)
        controller.end(after_sr_s=0.002)
        clock.now += PERIOD - 0.005
        return left

    def left(after: float) -> float:  # the wait left with this much work kept back
        return 0.045 - (after + OUTPUT_MARGIN_S) - 0.025

    assert wait() == pytest.approx(left(0.002))
    controller.begin()
    clock.now += 0.030
    controller.end(over_budget=True, after_sr_s=0.012)  # a late SR, 12 ms after its wait
    clock.now += PERIOD - 0.030
    assert wait() == pytest.approx(left(0.012))
    assert wait() == pytest.approx(left(0.006))  # halved a frame
    assert wait() == pytest.approx(left(0.003))
    assert wait() == pytest.approx(left(0.002))  # back to the in-time frames' own time


def test_an_occasional_late_sr_does_not_step_down():
    """Full quality that fits (28 ms of 33), with the SR late on one frame in ten: the last
    result stood in for those, nothing was late, so the controller stays."""
    clock = FakeClock()
    controller = DeadlineController(30.0, clock=clock)
    for index in range(300):  # 10 s
        controller.begin()
        clock.now += 0.028
        controller.end(over_budget=index % 10 == 0)
        controller.delivered(0.029, "full")
        clock.now += PERIOD - 0.028
    assert controller.changes == [] and controller.level.name == "full"


@pytest.mark.parametrize(("cost", "early"), [(0.050, True), (0.038, False)])
def test_a_run_started_far_over_budget_steps_down_before_the_hold(cost, early):
    """Started on a loaded machine (50 ms a frame of a 33 ms budget), the first change
    comes once ten frames after the warm-up show it, not after a whole hold; near the
    budget (38 ms) it still waits the hold out; and the next change keeps the hold."""
    clock = FakeClock()
    controller = DeadlineController(30.0, clock=clock)
    for _ in range(150):
        level = controller.begin()
        spent = cost * level.cost / LADDER[0].cost
        clock.now += spent
        controller.end()
        controller.delivered(spent + 0.001, level.name)
        clock.now += max(0.0, PERIOD - spent)
    first = controller.changes[0]
    after_warmup = first.at - controller.warmup_s
    assert first.old == "full"
    if early:
        assert after_warmup < 0.7 * controller.hold_s
    else:
        assert after_warmup >= controller.hold_s
    times = [c.at for c in controller.changes]
    assert all(b - a >= controller.hold_s for a, b in itertools.pairwise(times))


def test_a_little_over_the_budget_steps_down_only_once_frames_are_late_or_dropped():
    """Full quality at 34.5 ms of a 33.3 ms budget (a burst of another process on an
    idle machine) with every frame on time and none dropped: no change, for seconds;
    once frames drop it steps down at the next judgement."""
    clock = FakeClock()
    drops = [0]
    controller = DeadlineController(30.0, clock=clock, drops=lambda: drops[0])
    _steady(controller, clock, 30, 0.028)
    for _ in range(120):  # 4 s a little over the budget, delivered in time
        controller.begin()
        clock.now += 0.0345
        controller.end()
        controller.delivered(0.040, "full")
    assert controller.changes == []
    drops[0] += 3
    for _ in range(40):
        controller.begin()
        clock.now += 0.0345
        controller.end()
    assert [change.new for change in controller.changes] == ["head"]
    assert "processing 34.5 ms" in controller.changes[0].reason


def test_a_run_whose_sr_is_late_on_every_frame_from_the_start_steps_down_early():
    """Live, the SR wait caps a frame's own time near the budget (36 ms here): a late
    SR on every frame after the warm-up is the overload, not the frame's time."""
    clock = FakeClock()
    controller = DeadlineController(30.0, clock=clock)
    for _ in range(90):
        level = controller.begin()
        clock.now += 0.036
        controller.end(over_budget=level.name == "full")
        controller.delivered(0.037, level.name)
    first = controller.changes[0]
    assert first.old == "full" and first.at - controller.warmup_s < 0.7 * controller.hold_s


@pytest.mark.parametrize(("plain_every", "ladder_from", "steps_down"),
                         [(5, "full", True), (15, "full", False), (5, "face", False),
                          (5, "alternate", False)])
def test_people_shown_plain_for_a_late_sr_step_down_while_the_level_below_has_sr(
        plain_every, ladder_from, steps_down):
    """Frames on time (28 ms of 33), but the SR late with nothing to stand in on one in
    five — the person flashes unsharp — steps down, though a late SR on a fifth of the
    frames alone is no reason to (the last result stands in); one in fifteen (a stall
    now and then) is not; nor at `face`, whose level below has SR on every other frame
    only, nor at `alternate`, whose level below has none."""
    clock = FakeClock()
    ladder = LADDER[[level.name for level in LADDER].index(ladder_from):]
    controller = DeadlineController(30.0, ladder, clock=clock)
    for index in range(150):  # 5 s
        level = controller.begin()
        clock.now += 0.028
        plain = index % plain_every == 0
        controller.end(over_budget=plain, shown_plain=plain)
        controller.delivered(0.029, level.name)
        clock.now += PERIOD - 0.028
    if steps_down:
        assert [change.new for change in controller.changes][:1] == ["head"]
        assert "shown plain" in controller.changes[0].reason
    else:
        assert controller.changes == []


def test_a_ratio_measured_in_a_start_up_burst_fades_and_the_level_climbs_back():
    """The first 2.5 s every SR is late (the engines' caches cold, another program
    starting): the levels step down and the costs around each change say the dearer
    level costs three times the cheaper one. Then each level costs what it does (full
    26 ms of 33): the ratios fade back to the nominal ones and the level climbs back
    to `full` (it stayed at `face`, done in 14 ms, for the rest of a run)."""
    clock = FakeClock()
    controller = DeadlineController(30.0, clock=clock)
    steady = {"full": 0.026, "head": 0.018, "face": 0.014, "alternate": 0.009,
              "plain": 0.003}
    for _ in range(30 * 30):  # 30 s
        level = controller.begin()
        burst = clock.now < 2.5 and level.uses_sr
        spent = 0.030 if burst else steady[level.name]
        clock.now += spent
        controller.end(over_budget=burst)
        controller.delivered(spent + 0.001, level.name)
        clock.now += max(0.0, PERIOD - spent)
    assert controller.changes[0].new != "full" and controller.level.name == "full"


def test_people_shown_plain_are_judged_over_a_whole_hold():
    """A run's first frames after the warm-up have no SR result yet to stand in for a
    late one: ten of them shown plain are no reason for the early first change that a
    clearly overloaded start gets (its SR late on all of them is not either)."""
    clock = FakeClock()
    controller = DeadlineController(30.0, clock=clock)
    started = clock.now
    for index in range(int((controller.warmup_s + 0.9 * controller.hold_s) * 30)):
        level = controller.begin()
        clock.now += 0.028
        plain = index >= 15 and index < 25  # the first frames after the warm-up
        controller.end(over_budget=plain, shown_plain=plain)
        controller.delivered(0.029, level.name)
        clock.now += PERIOD - 0.028
    assert clock.now - started < controller.warmup_s + controller.hold_s
    assert controller.changes == []
