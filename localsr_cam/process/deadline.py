"""The deadline controller: each frame's quality level, so that frames are never late.

A live run has one frame period of budget per frame (``1 / output fps``). The controller
watches what actually delays output — the processing time of each frame (wall time, so
waiting for a core under CPU contention counts), the capture→output latency the output
thread reports, and frames dropped because the processor was busy — and walks a ladder
of quality levels (:data:`LADDER`): down when frames are late, back up when a cheaper
level leaves room for the next dearer one.

Hysteresis, so it never oscillates:

- no two changes within ``hold_s`` (1 s): each level is judged on at least a second of
  frames processed at that level (their latency after the first ``settle_s``) — but the
  first change of a run may come sooner, once ``first_frames`` frames after the warm-up
  have come and all but a fifth of them took over ``overload_fraction`` of the budget,
  a late SR counting as ``late_cost`` budgets (a run started on a loaded machine: the
  room under two busy processes had its SR late on every frame at full and dropped
  9–15 frames before the first judgement, 1.5 s in);
- down when over the budget (smoothed processing time above ``down_fraction`` of it, or
  above ``near_fraction`` of it while ``min_late`` frames of the window were late or
  dropped, or more than ``late_share`` — and at least ``min_late`` — of frames delivered
  later than ``latency_s``, or ``max_drops`` frames dropped, or the SR late — not done
  when the frame stopped waiting for it — on more than ``sr_late_share`` of them, or
  late with nothing to stand in, so that the person went out as the plain upscale, on
  more than ``plain_share`` of them while the level below still has SR on every
  frame: over a hold, or over ``first_frames`` after a change when at least
  ``plain_early_share`` of them were) —
  straight to the first level predicted to fit (under ``fit_fraction`` of the budget);
  nothing is judged in the first ``warmup_s`` (engines' first runs). ``down_fraction``
  is 1.1: a little over the budget with nothing late or dropped is a burst of another
  process on a shared machine more often than a load — the full level runs at 90 % of
  the budget with nothing beside it, and such bursts took it to 100.5–101 % for a second
  and down a level for the rest of a run (BENCHMARKS.md, "Session 9") — while a load
  that lasts soon makes frames late or dropped;
- up only after ``up_hold_s`` at the level, with no late or dropped frame, and when the
  level above is *predicted* to fit well under the budget (``up_fraction``): its cost is
  the current level's smoothed cost times the ratio of the two levels' costs (measured
  when both ran, the ladder's nominal ratio otherwise), and no less than the level's own
  cost when it was last left, halved every ``memory_half_life_s``;
- a level left for lateness within ``probation_s`` of stepping up to it waits twice as
  long before the next try (``up_hold_s`` doubling, up to ``max_backoff`` times it);
  one whose first ``first_frames`` frames after the step up nearly all took over
  ``overload_fraction`` of the budget (late SRs counted) is left then, not after the
  hold.

It also bounds each frame's wait for its SR (:meth:`DeadlineController.sr_wait_s`):
45 ms after capture, and one period after the frame began unless frames have room to
spare (:meth:`DeadlineController.keeping_pace`), less the measured work after the wait.

The controller is pure logic on an injected clock (tests drive it without sleeping).
:meth:`begin`/:meth:`end` are called by the processing thread around each frame,
:meth:`delivered` by the output thread; a lock keeps the two consistent.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Sequence

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Level:
    """One rung of the quality ladder.

    ``sr_part``: the fraction of the person box, from its top, that is super-resolved
    (1: the whole box; 0.5: head and shoulders; 0: no SR, the plain upscale).
    ``sr_every``: SR runs on one frame in this many; on the others the previous SR
    result of the box stands in over the cells of its crop that did not change, and
    moved along with the person where they moved (else that frame has no SR;
    :meth:`localsr_cam.process.reuse.SRReuse.stand_in`).
    ``segment_every``: the segmenter runs on one frame in this many, the mask is reused
    in between (0: no mask at all). ``cost``: nominal processing cost relative to
    ``full`` on the close-up path (one person, the whole-frame mask), ``people_cost``
    the same on the people path (a face finder, then a mask per person's crop);
    measured (BENCHMARKS.md, "Session 27"); used until both levels were seen.
    ``crops_per_frame``: with several people, at most this many are segmented anew on a
    frame that segments (the others keep their last mask).
    """

    name: str
    sr_part: float
    sr_every: int
    segment_every: int
    cost: float
    people_cost: float
    crops_per_frame: int = 2

    @property
    def uses_sr(self) -> bool:
        return self.sr_part > 0


LADDER: tuple[Level, ...] = (
    Level("full", sr_part=1.0, sr_every=1, segment_every=1, cost=1.0, people_cost=1.0),
    Level("head", sr_part=0.5, sr_every=1, segment_every=1, cost=0.70, people_cost=0.92),
    Level("face", sr_part=0.3, sr_every=1, segment_every=1, cost=0.55, people_cost=0.78,
          crops_per_frame=1),
    Level("alternate", sr_part=0.3, sr_every=2, segment_every=2, cost=0.47,
          people_cost=0.67, crops_per_frame=1),
    Level("plain", sr_part=0.0, sr_every=1, segment_every=0, cost=0.09, people_cost=0.10),
)
"""Best first. ``head``: the top half of the person box (head and shoulders in a webcam
framing); ``face``: its top 30 %. Nominal costs: the mean processing time of paced runs
held at each level (the sample and the meeting room, with nothing and with two or four
busy processes beside them; BENCHMARKS.md, "Session 27"); the controller replaces them
by the ratios it measures. On the people path the finder and a mask per person, which
the levels cut less than the SR, are most of a frame: `face` there costs four fifths
of `full`, against a half on the close-up path."""

OUTPUT_MARGIN_S = 0.003
"""Beside the smoothed work after the SR wait, this much of the latency bound is kept
for handing the frame to the output thread and writing it."""

MIN_COST_S = 1e-4
"""The least processing time counted for a frame (ratios of costs stay finite)."""

LEVELS: dict[str, Level] = {level.name: level for level in LADDER}


@dataclasses.dataclass(frozen=True)
class LevelChange:
    """One change of level: when (controller clock, s), from, to, and why."""

    at: float
    old: str
    new: str
    reason: str


class DeadlineController:
    """Chooses each frame's :class:`Level` from measured lateness (module docstring).

    ``fps``: the output rate; the budget is one period. ``latency_s``: the capture→output
    latency above which a delivered frame counts as late (default 45 ms, where lip-sync
    errors are noticed, or 1.35 periods at other rates). ``drops``: returns the count of
    frames dropped so far (the pipeline's input slot); ``None`` = not watched.
    ``clock``: seconds, monotonic (the frames' capture timestamps are on it).
    ``sr_reserve_fraction``: the least share of a period a frame keeps for the work after
    its SR; ``relax_fraction``, ``calm_s``, ``calm_breakers``, ``overrun_fraction``: when
    and by how much the SR wait may run past a period (:meth:`sr_wait_s`,
    :meth:`keeping_pace`);
    ``late_cost``, ``sr_late_share``, ``plain_share``, ``plain_early_share``: how frames
    whose SR was late count (:meth:`end`, :meth:`_mostly_plain_after_change`);
    ``overload_fraction``, ``first_frames``: when the first change may come before the
    hold (module docstring); ``late_after_decay``: how fast the reserve for the work
    after a late SR fades (:meth:`sr_wait_s`).
    """

    def __init__(self, fps: float, ladder: Sequence[Level] = LADDER, *,
                 latency_s: float | None = None, hold_s: float = 1.0,
                 up_hold_s: float = 3.0, probation_s: float = 5.0, max_backoff: int = 8,
                 settle_s: float = 0.4, warmup_s: float = 0.5, min_late: int = 3,
                 memory_half_life_s: float = 5.0,
                 down_fraction: float = 1.1, near_fraction: float = 0.9,
                 fit_fraction: float = 1.0,
                 up_fraction: float = 0.92,
                 late_share: float = 0.07, max_drops: int = 3, smoothing: float = 0.15,
                 sr_reserve_fraction: float = 0.1, late_cost: float = 1.25,
                 sr_late_share: float = 0.5, plain_share: float = 0.1,
                 plain_early_share: float = 0.5,
                 relax_fraction: float = 1.0,
                 calm_s: float = 3.0, calm_breakers: int = 2,
                 overrun_fraction: float = 0.25,
                 overload_fraction: float = 1.2, first_frames: int = 10,
                 late_after_decay: float = 0.97,
                 drops: Callable[[], int] | None = None,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        if fps <= 0 or not ladder:
            raise ValueError("fps must be positive and the ladder not empty")
        self.ladder = tuple(ladder)
        self.budget_s = 1.0 / fps
        self.latency_s = latency_s if latency_s is not None else max(0.045,
                                                                     1.35 * self.budget_s)
        self.hold_s, self.up_hold_s, self.probation_s = hold_s, up_hold_s, probation_s
        self.settle_s, self.warmup_s, self.min_late = settle_s, warmup_s, min_late
        self.memory_half_life_s = memory_half_life_s
        self.max_backoff = max_backoff
        self.down_fraction, self.up_fraction = down_fraction, up_fraction
        self.fit_fraction = fit_fraction
        self.near_fraction = near_fraction
        self.late_share, self.max_drops, self.smoothing = late_share, max_drops, smoothing
        self.sr_reserve_fraction, self.late_cost = sr_reserve_fraction, late_cost
        self.sr_late_share, self.plain_share = sr_late_share, plain_share
        self.plain_early_share = plain_early_share
        self.relax_fraction, self.calm_s = relax_fraction, calm_s
        self.calm_breakers = calm_breakers
        self.overrun_fraction = overrun_fraction
        self.overload_fraction, self.first_frames = overload_fraction, first_frames
        self.late_after_decay = late_after_decay
        # when late deliveries and drops were seen (the last ``calm_s`` of them count)
        self._trouble: collections.deque[float] = collections.deque()
        self._drops_seen = 0
        self._drops = drops or (lambda: 0)
        self._clock = clock
        self._lock = threading.Lock()
        self.index = 0
        self.changes: list[LevelChange] = []
        self.frames_at: collections.Counter[str] = collections.Counter()
        self._people_path = False  # which of a level's nominal costs apply
        self._cost: dict[str, float] = {}  # smoothed cost s per level (late SR counted)
        self._processing: dict[str, float] = {}  # smoothed processing s per level
        # (a, b): cost a / cost b, and when it was measured
        self._ratio: dict[tuple[str, str], tuple[float, float]] = {}
        self._left: tuple[str, float] | None = None  # the level left last and its cost
        self._seen: dict[str, tuple[float, float]] = {}  # level: (left at, its cost then)
        self._backoff = [1] * len(self.ladder)
        self._entered_up_at: float | None = None  # when the current level was stepped up to
        self._started: float | None = None
        self._begun_at: float | None = None
        self._warm_at: float | None = 0.0  # until then nothing is judged; None: warm
        self._window_from = 0.0
        self._last_change = 0.0
        self._delivered = 0
        self._late = 0
        self._ended = 0  # frames processed in the window
        self._overloaded = 0  # of which over overload_fraction of the budget
        self._late_sr = 0  # of which with a late SR
        self._shown_plain = 0  # of which shown plain for it (nothing stood in)
        self._drops_at_window = 0
        self._after_sr: float | None = None  # smoothed s from the SR wait's end to end()
        # the same after a late SR (the stand-in is made then): its recent peak, fading
        self._after_late = 0.0

    @property
    def level(self) -> Level:
        return self.ladder[self.index]

    def on_people_path(self, people: bool) -> None:
        """Whether the frames are on the people path (each level's nominal cost is then
        ``Level.people_cost``) or the close-up one (``Level.cost``)."""
        with self._lock:
            self._people_path = people

    def nominal_cost(self, level: Level) -> float:
        """``level``'s nominal cost relative to ``full`` on the frames' path."""
        return level.people_cost if self._people_path else level.cost

    # -- called by the processing thread ----------------------------------------------
    def begin(self) -> Level:
        """The level to process the next frame at; starts that frame's clock."""
        with self._lock:
            now = self._clock()
            if self._started is None:
                self._started = self._window_from = self._last_change = now
                self._warm_at = now + self.warmup_s
                self._drops_at_window = self._drops()
            self._begun_at = now
            level = self.level
            self.frames_at[level.name] += 1
            return level

    def sr_wait_s(self, captured_at: float) -> float:
        """How much longer the frame begun last, captured at ``captured_at`` (this
        controller's clock), may wait for its SR: no later than ``latency_s`` after its
        capture, so that it is not delivered late, nor than one period after it began,
        so that the next frame is not kept waiting — ``1 + overrun_fraction`` periods
        while frames have room to spare (:meth:`keeping_pace`); each less a reserve for
        the work after the wait (its smoothed time plus :data:`OUTPUT_MARGIN_S`, at
        least ``sr_reserve_fraction`` of a period). The work after a wait that ended
        with the SR late is dearer (the stand-in is composed then: under two busy
        processes 1.9 ms at the median but 6.2 at the 90th percentile, against 1.4 for
        a frame whose SR came in time), and it is the wait that ends at the bound that
        goes that way: so the reserve covers the recent peak of that work too, which
        fades by ``late_after_decay`` a frame. 0.0 when that is past or no frame is
        begun.

        With room to spare, a frame whose SR runs a little over its period (a person
        box at its largest) keeps it instead of showing the last result, and the next
        frame starts a few ms late; the latency bound still holds."""
        with self._lock:
            if self._begun_at is None:
                return 0.0
            after = max(self._after_sr or 0.0, self._after_late)
            reserve = max(self.sr_reserve_fraction * self.budget_s, after + OUTPUT_MARGIN_S)
            periods = 1.0 + self.overrun_fraction if self._keeping_pace() else 1.0
            until = min(captured_at + self.latency_s, self._begun_at + periods * self.budget_s)
            return max(0.0, until - reserve - self._clock())

    def keeping_pace(self) -> bool:
        """Whether frames have room to spare: the current level's smoothed processing
        time is under ``relax_fraction`` of the budget and fewer than ``calm_breakers``
        frames were delivered late or dropped in the last ``calm_s`` (then a frame may
        wait for its SR past its period). One stall of a shared machine is no load: at
        full quality with nothing beside it, the strict wait that a single late frame
        used to bring left the SR of the largest box late on every frame for seconds,
        and the level stepped down."""
        with self._lock:
            return self._keeping_pace()

    def _keeping_pace(self) -> bool:
        now = self._clock()
        drops = self._drops()
        if drops > self._drops_seen:
            self._trouble.extend([now] * (drops - self._drops_seen))
        self._drops_seen = drops
        self._forget_trouble(now)
        busy = self._processing.get(self.level.name)
        calm = len(self._trouble) < self.calm_breakers
        return busy is not None and busy < self.relax_fraction * self.budget_s and calm

    def _forget_trouble(self, now: float) -> None:
        while self._trouble and now - self._trouble[0] >= self.calm_s:
            self._trouble.popleft()

    def end(self, over_budget: bool = False, after_sr_s: float | None = None,
            shown_plain: bool = False) -> None:
        """The frame begun last is done (handed on); updates costs and maybe the level.

        ``over_budget``: part of its work (a late SR) still runs. The frame's own time
        is what judges whether frames keep pace; for predicting levels' costs it counts
        as ``late_cost`` budgets at least; and more than ``sr_late_share`` (at least
        ``min_late``) of a window's frames like it is a reason to step down — an
        occasional late SR is not (the last result stands in for it).

        ``shown_plain``: with ``over_budget``, nothing stood in for a person's late SR
        (the person moved), so the frame showed them as the plain upscale. More than
        ``plain_share`` (at least ``min_late``) of a window's frames like it, over a
        hold at least, is a reason to step down while the level below still has SR on
        every frame (not to `alternate`, whose every other frame is a stand-in: from
        `face` that was a step to more flashes, not fewer): at `full` on the sample clip
        the box's SR (26 ms on one thread) was late on a sixth of the frames, a fifth
        of the people flashed unsharp two frames at a time, and the level stayed, while
        `head` had SR on 99 % of the frames (BENCHMARKS.md, "Session 25")."""
        with self._lock:
            if self._begun_at is None:
                return
            now = self._clock()
            self._after_late *= self.late_after_decay
            if after_sr_s is not None and over_budget:
                self._after_late = max(self._after_late, after_sr_s)
            elif after_sr_s is not None:
                self._after_sr = self._smooth(self._after_sr, after_sr_s)
            spent, self._begun_at = max(now - self._begun_at, MIN_COST_S), None
            name = self.level.name
            self._processing[name] = self._smooth(self._processing.get(name), spent)
            self._ended += 1
            if over_budget:
                self._late_sr += 1
                self._shown_plain += shown_plain
                spent = max(spent, self.late_cost * self.budget_s)
            self._overloaded += spent > self.overload_fraction * self.budget_s
            self._cost[name] = self._smooth(self._cost.get(name), spent)
            self._decide(now)

    def _smooth(self, previous: float | None, value: float) -> float:
        return value if previous is None else previous + self.smoothing * (value - previous)

    # -- called by the output thread --------------------------------------------------
    def delivered(self, latency_s: float, level: str) -> None:
        """A frame processed at ``level`` reached the sinks ``latency_s`` after capture.

        Frames processed at an earlier level (still in flight at a change), and those of
        the first ``settle_s`` after a change (still catching up with frames that waited
        behind a slow one), are not counted — except that any late one after the
        warm-up counts against the calm that lets SR waits run past a period
        (:meth:`keeping_pace`).
        """
        with self._lock:
            now = self._clock()
            if latency_s > self.latency_s and self._warm_at is None:
                self._trouble.append(now)  # whatever its level
                self._forget_trouble(now)
            if (level != self.level.name or now - self._last_change < self.settle_s
                    or self._warm_at is not None):
                return
            self._delivered += 1
            if latency_s > self.latency_s:
                self._late += 1

    # -- the decision -----------------------------------------------------------------
    def predicted_s(self, target: int) -> float | None:
        """Predicted processing time per frame at ladder index ``target``, from the
        current level's smoothed cost; ``None`` before any frame was timed.

        The ratio between two neighbouring levels is the one measured around the last
        change between them (the cost just before and just after, under the same load),
        fading back to the nominal ratio (its excess halved, in log terms, every
        ``memory_half_life_s``) and bounded to half to twice it; the nominal one before
        that. A ratio measured once is the load of that moment: a step down in the
        first second, while the engines' caches warmed, left the sample at `face` for
        the rest of a 30 s run with frames done in 15 ms of 33 (BENCHMARKS.md,
        "Session 25").

        A cheap level says little about a dear one's cost under contention (the plain
        upscale hardly slows down while SR takes three times longer), so the target's
        own cost when it last ran, halved every ``memory_half_life_s``, is a floor:
        a level just seen too slow is not predicted to fit until that has faded.
        """
        cost = self._cost.get(self.level.name)
        if cost is None:
            return None
        now = self._clock()
        step = -1 if target < self.index else 1
        for index in range(self.index, target, step):
            here, there = self.ladder[index], self.ladder[index + step]
            nominal = self.nominal_cost(there) / self.nominal_cost(here)
            measured, at = self._ratio.get((there.name, here.name), (nominal, now))
            fade = 0.5 ** ((now - at) / self.memory_half_life_s)
            ratio = nominal * (measured / nominal) ** fade
            cost *= min(max(ratio, 0.5 * nominal), 2.0 * nominal)
        seen = self._seen.get(self.ladder[target].name)
        if seen is not None:
            left_at, seen_cost = seen
            age = now - left_at
            cost = max(cost, seen_cost * 0.5 ** (age / self.memory_half_life_s))
        return cost

    def _decide(self, now: float) -> None:
        if self._warm_at is not None:
            if now < self._warm_at:
                self._restart_window(now)  # start-up stalls (first runs) do not count
                return
            # judge the first full hold after the warm-up, on costs measured after it
            self._warm_at = None
            self._drops_seen = self._drops()  # start-up drops are no sign of contention
            self._last_change = now
            self._cost.pop(self.level.name, None)
            self._processing.pop(self.level.name, None)
            self._restart_window(now)
            return
        since_change = now - self._last_change
        failing_up = self._failing_step_up(now)
        plain_early = self._mostly_plain_after_change()
        if since_change < self.hold_s and not (failing_up or plain_early
                                               or self._overloaded_at_start()):
            return
        cost = self._cost[self.level.name]
        if self._left is not None:  # the first judgement at this level: learn the ratio
            left, left_cost = self._left
            self._ratio[(left, self.level.name)] = (left_cost / cost, now)
            self._ratio[(self.level.name, left)] = (cost / left_cost, now)
            self._left = None
        drops = self._drops() - self._drops_at_window
        late_share = self._late / self._delivered if self._delivered else 0.0
        busy = self._processing[self.level.name]
        reasons = []
        if busy > self.down_fraction * self.budget_s:
            reasons.append(f"processing {busy * 1e3:.1f} ms of a {self.budget_s * 1e3:.1f} "
                           "ms budget")
        elif busy > self.near_fraction * self.budget_s and self._late + drops >= self.min_late:
            # near the budget with frames already late: a trend, not one hiccup (an idle
            # machine's full quality runs at 90 % of the budget; one stall makes a late
            # frame there without anything changing)
            reasons.append(f"processing {busy * 1e3:.1f} ms of a {self.budget_s * 1e3:.1f} "
                           "ms budget with frames already late or dropped")
        # judged against a second's frames at least: three of the first nine is no trend
        window = max(self._ended, self.hold_s / self.budget_s)
        if self._late_sr >= self.min_late and self._late_sr > self.sr_late_share * window:
            reasons.append(f"SR late on {self._late_sr} of {self._ended} frames")
        below = self.ladder[min(self.index + 1, len(self.ladder) - 1)]
        # over a whole hold at least: a run's first frames have no SR result to stand in
        # for a late one yet (the meeting room left full for that in its first 10 frames)
        # — unless most frames since a change showed people plain
        if (self._shown_plain >= self.min_late and below.uses_sr and below.sr_every == 1
                and (since_change >= self.hold_s or plain_early)
                and self._shown_plain > self.plain_share * window):
            reasons.append(f"people shown plain for a late SR on {self._shown_plain} of "
                           f"{self._ended} frames")
        if self._late >= self.min_late and late_share > self.late_share:
            reasons.append(f"{late_share:.0%} of frames later than "
                           f"{self.latency_s * 1e3:.0f} ms")
        if drops >= self.max_drops:
            reasons.append(f"{drops} frames dropped")
        if failing_up:
            reasons.append(f"{self._overloaded} of {self._ended} frames over "
                           f"{self.overload_fraction:.0%} of the budget since stepping up")
        if reasons and self.index < len(self.ladder) - 1:
            self._step_down(now, "; ".join(reasons))
        elif not reasons and self.index > 0 and self._may_step_up(now, drops, since_change):
            predicted = self.predicted_s(self.index - 1) or 0.0
            self._change(now, self.index - 1,
                         f"room: {self.ladder[self.index - 1].name} predicted at "
                         f"{predicted * 1e3:.1f} ms of {self.budget_s * 1e3:.1f} ms")
            self._entered_up_at = now
        elif now - self._window_from >= self.hold_s:
            self._restart_window(now)  # judge on the last second or so, not all history

    def _overloaded_at_start(self) -> bool:
        """No change yet, and the frames since the warm-up were :meth:`_mostly_overloaded`:
        clearly too slow — not a hiccup near the budget, nor a stall — so the first step
        down need not wait out the hold."""
        return not self.changes and self._mostly_overloaded()

    def _failing_step_up(self, now: float) -> bool:
        """On probation after a step up (:meth:`_on_probation`), the frames since were
        :meth:`_mostly_overloaded`: the level does not fit, and it is left without
        waiting out the hold. (The meeting room, once its still people kept their
        masks, tried `full` under two busy processes: its SR was late on 26 of the 32
        frames of the hold, each showing the people plain.)"""
        return self._on_probation(now) and self._mostly_overloaded()

    def _mostly_overloaded(self) -> bool:
        """Of the window's frames (``first_frames`` at least), all but a fifth took over
        ``overload_fraction`` of the budget (a late SR counting as ``late_cost``
        budgets)."""
        return self._ended >= self.first_frames and self._overloaded >= 0.8 * self._ended

    def _on_probation(self, now: float) -> bool:
        """Whether the current level was stepped up to within ``probation_s``."""
        return (self._entered_up_at is not None
                and now - self._entered_up_at < self.probation_s)

    def _mostly_plain_after_change(self) -> bool:
        """After a change (not at a run's first level, whose first frames have no SR
        result to stand in yet), of the ``first_frames`` (at least) since, at least
        ``plain_early_share`` showed people plain for a late SR: they are judged then,
        not after the hold. (The sample under two busy processes stepped from `full` to
        `head`, where the SR was late with nothing to stand in on 16 of the hold's 29
        frames, a flash to plain every other frame.)"""
        return (bool(self.changes) and self._ended >= self.first_frames
                and self._shown_plain >= self.plain_early_share * self._ended)

    def _may_step_up(self, now: float, drops: int, since_change: float) -> bool:
        if (self._late or drops or self._late_sr > self.sr_late_share / 2 * self._ended
                or self._shown_plain > self.plain_share / 2 * self._ended):
            return False
        if since_change < self.up_hold_s * self._backoff[self.index - 1]:
            return False
        predicted = self.predicted_s(self.index - 1)
        return predicted is not None and predicted <= self.up_fraction * self.budget_s

    def _step_down(self, now: float, reason: str) -> None:
        if self._on_probation(now):
            # the step up to this level failed: wait longer before trying it again
            self._backoff[self.index] = min(self.max_backoff, 2 * self._backoff[self.index])
        target = self.index + 1
        while target < len(self.ladder) - 1:
            predicted = self.predicted_s(target)
            if predicted is None or predicted <= self.fit_fraction * self.budget_s:
                break
            target += 1
        self._entered_up_at = None
        self._change(now, target, reason)

    def _change(self, now: float, target: int, reason: str) -> None:
        started = self._started if self._started is not None else now
        change = LevelChange(now - started, self.level.name,
                             self.ladder[target].name, reason)
        self.changes.append(change)
        self._left = (self.level.name, self._cost[self.level.name])
        self._seen[self.level.name] = (now, self._cost[self.level.name])
        # measured afresh at the new level
        self._cost.pop(self.ladder[target].name, None)
        self._processing.pop(self.ladder[target].name, None)
        log.debug("quality %s -> %s at %.1f s: %s", change.old, change.new, change.at,
                  reason)
        self.index = target
        self._last_change = now
        self._restart_window(now)

    def _restart_window(self, now: float) -> None:
        self._window_from = now
        self._delivered = self._late = 0
        self._ended = self._late_sr = self._shown_plain = self._overloaded = 0
        self._drops_at_window = self._drops()

    # -- reporting --------------------------------------------------------------------
    def shares(self) -> dict[str, float]:
        """Share of the frames begun at each level (0–1), ladder order."""
        with self._lock:
            total = sum(self.frames_at.values())
            return {level.name: self.frames_at[level.name] / total
                    for level in self.ladder if total and self.frames_at[level.name]}
