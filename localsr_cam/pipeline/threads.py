"""Threads of one run: capture → process → output, joined by one-frame slots.

``Pipeline.run()`` opens everything, runs until the frame limit, the end of the source,
a sink's stop request, Ctrl-C or SIGTERM, then stops every thread (one stop event,
joins with a timeout) and closes sinks, processor and source — in that order, so an
output file is finalized even when a stage failed.
"""

from __future__ import annotations

import collections
import dataclasses
import gc
import logging
import math
import signal
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from localsr_cam.capture.sources import CaptureThread, LatestSlot, Source, wait_until_taken
from localsr_cam.frames import CapturedFrame, Controls, HudStats, ProcessedFrame
from localsr_cam.outputs.fitting import FrameFitter
from localsr_cam.outputs.sinks import Sink
from localsr_cam.pipeline.cpu import CpuMeter, RollingCpu
from localsr_cam.pipeline.gpu import DoubleBufferedProcessor, for_processor
from localsr_cam.process.deadline import DeadlineController
from localsr_cam.process.processor import FrameProcessor

log = logging.getLogger(__name__)

JOIN_TIMEOUT_S = 1.0
ROLLING_WINDOW = 300
LIVE_RECORDS = 100_000
REPEAT_AFTER = 1.5
"""Paced output: periods without a new frame before the last one is repeated."""
LOST_DIM = 0.45
"""Brightness of the last good frame while the camera is unavailable."""


@dataclasses.dataclass(frozen=True)
class FrameRecord:
    """What happened to one frame that reached the sinks (benchmarks keep every one).

    ``latency_ms``: capture timestamp → all sinks written. ``written_at``:
    ``perf_counter()`` after the write. ``foreground``: mean of its mask (0 without one).
    ``level``/``sr``: its quality level and whether SR ran (see
    :class:`~localsr_cam.frames.ProcessedFrame`).
    ``people``: people enhanced in it (``None`` where no mask was made).
    """

    index: int
    latency_ms: float
    written_at: float
    stages_ms: dict[str, float]
    foreground: float
    level: str = "full"
    sr: str = "none"
    people: int | None = None


class RollingStats:
    """The last ``window`` latencies (the HUD's median) and the latest frame records.

    ``records`` keeps the last ``keep`` frames (a benchmark asks for all of them; a live
    run keeps enough for its summary without growing for hours).
    """

    def __init__(self, window: int = ROLLING_WINDOW, keep: int | None = LIVE_RECORDS) -> None:
        self._latencies: collections.deque[float] = collections.deque(maxlen=window)
        self._lock = threading.Lock()
        self.records: collections.deque[FrameRecord] = collections.deque(maxlen=keep)

    def add_record(self, record: FrameRecord) -> None:
        with self._lock:
            self._latencies.append(record.latency_ms)
            self.records.append(record)

    def latency_percentile(self, q: float) -> float:
        """The ``q``-th percentile of the recent latencies (ms); NaN before any frame."""
        with self._lock:
            values = list(self._latencies)
        return float(np.percentile(values, q)) if values else float("nan")


@dataclasses.dataclass
class RunResult:
    """What a run did: counts, wall time, latency samples, why it stopped."""

    frames: int
    seconds: float
    records: list[FrameRecord]
    dropped: int
    """Captured frames never written: replaced in a slot between threads, or (paced,
    at an output fps not below the source's) replaced while waiting for their output
    slot."""
    repeated: int
    fallbacks: int
    interrupted: bool
    backend: str
    terminated: bool = False
    """True when SIGTERM stopped the run (the CLI exits 143)."""
    written: list[str] = dataclasses.field(default_factory=list)
    """Lines saying where outputs went and how many (image folders), for the user."""
    skipped: list[str] = dataclasses.field(default_factory=list)
    """Input files passed over as unreadable, one line each naming the file and why
    (an image folder's; the CLI then exits 2 after writing the rest)."""
    cpu_percent: float = float("nan")
    level_changes: int = 0
    precision: str = ""
    """The SR net's arithmetic where its engine says (``int8`` on the CPU by default)."""
    threads: int = 0
    """CPU threads per network, as the processor chose them (0: not known)."""

    @property
    def level_shares(self) -> dict[str, float]:
        """Share (0–1) of the written frames per quality level, most frequent first."""
        counts = collections.Counter(record.level for record in self.records)
        total = sum(counts.values())
        return {level: n / total for level, n in counts.most_common()} if total else {}

    @property
    def fps(self) -> float:
        """New frames a second, over the span of their writes (as the benchmark counts)."""
        if len(self.records) >= 2:
            span = self.records[-1].written_at - self.records[0].written_at
            if span > 0:
                return (len(self.records) - 1) / span
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    @property
    def latencies_ms(self) -> list[float]:
        return [record.latency_ms for record in self.records]

    def latency_percentile(self, q: float) -> float:
        latencies = self.latencies_ms
        return float(np.percentile(latencies, q)) if latencies else float("nan")

    @property
    def people(self) -> tuple[float, int] | None:
        """(median, most) people enhanced a frame, or ``None`` where no mask was made."""
        counts = [r.people for r in self.records if r.people is not None]
        if not counts:
            return None
        return float(np.median(counts)), max(counts)

    def summary(self) -> str:
        """The one line printed at the end of a run."""
        people = self.people
        enhanced = "" if people is None else f"people={people[0]:g} (max {people[1]}) "
        return (f"frames={self.frames} fps={self.fps:.1f} "
                f"latency_p50={_measured(self.latency_percentile(50), '.1f', 'ms')} "
                f"latency_p95={_measured(self.latency_percentile(95), '.1f', 'ms')} "
                f"{enhanced}dropped={self.dropped} "
                f"cpu={_measured(self.cpu_percent, '.0f', '%')} "
                f"levels={format_shares(self.level_shares)} backend={self.backend}"
                + (f" precision={self.precision}" if self.precision else ""))


def _measured(value: float, spec: str, unit: str) -> str:
    """``value`` formatted with its unit, or ``n/a`` where nothing was measured (NaN: a
    run stopped before its first frame)."""
    return "n/a" if math.isnan(value) else f"{value:{spec}}{unit}"


def check_sinks(sinks: Sequence[Sink], size: tuple[int, int]) -> None:
    """Let each sink refuse frames of ``size`` = (width, height) before any is written:
    a sink's optional ``check(size)`` raises :class:`~localsr_cam.errors.SinkError`."""
    for sink in sinks:
        check = getattr(sink, "check", None)
        if check is not None:
            check(size)


def format_shares(shares: dict[str, float]) -> str:
    """``{"full": 0.8, "head": 0.2}`` → ``full:80%,head:20%`` (``-`` when empty)."""
    return ",".join(f"{name}:{share:.0%}" for name, share in shares.items()) or "-"


class ProcessThread(threading.Thread):
    """Takes the newest captured frame, processes it, offers the result downstream.

    In lossless mode (an unpaced file source) it waits for the output to take each
    result, so no processed frame is dropped. ``scheduler``: a double-buffered GPU
    scheduler wrapping the processor (its results come one frame late; the last one is
    flushed when the source ends), or ``None`` to call the processor directly.
    """

    def __init__(self, processor: FrameProcessor, inbox: LatestSlot[CapturedFrame],
                 outbox: LatestSlot[ProcessedFrame], capture: CaptureThread,
                 controls: Controls,
                 scheduler: DoubleBufferedProcessor | None = None) -> None:
        super().__init__(name="process", daemon=True)
        self.processor = processor
        self.controls = controls
        self.scheduler = scheduler
        self.inbox, self.outbox = inbox, outbox
        self.capture = capture
        self.stop_event = controls.stop
        self.done = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while not self.stop_event.is_set():
                frame = self.inbox.get(timeout=0.05)
                if frame is None:
                    if self.capture.finished.is_set() and not self.inbox.has_item:
                        if self.scheduler is not None:
                            self._hand_on(self.scheduler.flush())
                        break
                    continue
                bypass = self.controls.bypass  # read once, as the frame arrives
                if self.scheduler is not None:
                    self._hand_on(self.scheduler.process(frame, bypass=bypass))
                else:
                    self._hand_on(self.processor.process(frame, bypass=bypass))
        except BaseException as exc:
            self.error = exc
        finally:
            if self.scheduler is not None:
                try:
                    self.scheduler.close()  # frees its pinned and device buffers
                except Exception as exc:  # already failing or stopping: log only
                    log.warning("closing the GPU scheduler failed: %s", exc)
            self.done.set()

    def _hand_on(self, result: ProcessedFrame | None) -> None:
        if result is None:
            return
        lossless = self.capture.lossless  # hand every frame on, as the capture does
        if lossless and not wait_until_taken(self.outbox, self.stop_event):
            return
        self.outbox.put(result)


class OutputThread(threading.Thread):
    """Writes processed frames to every sink.

    Paced: about ``fps`` writes a second; a new frame is written as soon as it arrives
    (see :meth:`_paced_loop`); when none has arrived for a while the last one is written
    again, dimmed with a note while the camera is lost, so a meeting app never sees the
    device stall. Unpaced: each new frame is
    written as soon as it arrives. Stops the run after ``limit`` new frames, or when
    processing is done and drained.

    The sinks are opened, written and closed in this thread only: GUI toolkits (OpenCV's
    Qt windows) must be driven from the thread that created the window, and a window
    opened elsewhere deadlocked the first ``imshow``. ``ready`` is set once every sink
    is open (or opening failed: ``error``).
    """

    def __init__(self, sinks: Sequence[Sink], inbox: LatestSlot[ProcessedFrame],
                 size: tuple[int, int], fps: float, paced: bool, limit: int | None,
                 controls: Controls,
                 producer_done: threading.Event, capture: CaptureThread,
                 stats: RollingStats, hud: HudStats,
                 progress: Callable[[int], None] | None = None,
                 deadline: DeadlineController | None = None) -> None:
        super().__init__(name="output", daemon=True)
        self.progress = progress
        self.deadline = deadline
        self._cpu = RollingCpu()
        self.sinks = sinks
        self.inbox = inbox
        self.size = size
        self.fps = fps
        self.period = 1.0 / fps
        self.ready = threading.Event()
        self.paced = paced
        self.limit = limit
        self.controls = controls
        self.producer_done = producer_done
        self.capture = capture
        self.stats = stats
        self.hud = hud
        self.frames = 0
        self.repeated = 0
        self.replaced = 0  # paced: processed frames a newer one replaced before their slot
        self.error: BaseException | None = None
        self._fitter = FrameFitter(size)
        self._last: ProcessedFrame | None = None
        self._dimmed: ProcessedFrame | None = None
        self._recent: collections.deque[float] = collections.deque(maxlen=30)

    def run(self) -> None:
        opened: list[Sink] = []
        try:
            for sink in self.sinks:
                sink.open(self.size, self.fps, self.controls)
                opened.append(sink)
            self.ready.set()
            self._loop()
        except BaseException as exc:
            self.error = exc
        finally:
            for sink in reversed(opened):
                _close_quietly(sink)
            self.ready.set()
            self.controls.stop.set()

    def _loop(self) -> None:
        if not self.paced:
            while not self.controls.stop.is_set():
                frame = self.inbox.get(timeout=0.05)
                if frame is not None:
                    if self._write_fresh(frame):
                        return
                elif self.producer_done.is_set() and not self.inbox.has_item:
                    return
            return
        self._paced_loop()

    def _paced_loop(self) -> None:
        """About ``fps`` writes a second. Writes take slots one period apart: a new
        frame goes out at once when its slot has come (waiting for a tick would add
        latency), else it waits for it and a newer one replaces it (``replaced``). The
        slots never fall more than a period behind, so a frame that follows a late one
        closely goes out at once (it catches up; holding it back a period from the late
        one's write let the next frame replace it: 2 % of the frames of the call
        sample, whose processing time swings, were lost that way) — and the rate stays
        at ``fps``, so a file written at the output fps keeps real time, and an output
        fps below the source's keeps one frame per slot. The last frame is repeated only
        when nothing new came for ``REPEAT_AFTER`` periods, so arrival jitter does not
        add repeats."""
        stop = self.controls.stop
        pending: ProcessedFrame | None = None
        last_write = time.perf_counter()
        slot = last_write
        next_repeat = last_write + REPEAT_AFTER * self.period
        while not stop.is_set():
            now = time.perf_counter()
            due = slot if pending is not None else next_repeat
            frame = self.inbox.get(timeout=max(0.0, due - now))
            if frame is not None and pending is not None:
                self.replaced += 1
            pending = frame or pending
            now = time.perf_counter()
            if pending is not None:
                if self.frames and now < slot:
                    continue
                if self._write_fresh(pending):
                    return
                pending = None
                last_write = time.perf_counter()
                slot = max(slot + self.period, last_write - self.period)
                next_repeat = last_write + REPEAT_AFTER * self.period
            elif self.producer_done.is_set() and not self.inbox.has_item:
                return
            elif now >= next_repeat:
                if self._last is not None:  # a stand-in: it takes no fresh frame's slot
                    self._write(self._stale_frame(self._last), fresh=False)
                last_write = time.perf_counter()
                next_repeat = last_write + self.period

    def _write_fresh(self, frame: ProcessedFrame) -> bool:
        """Write a new frame; True when the frame limit is reached."""
        self._write(frame, fresh=True)
        return self.limit is not None and self.frames >= self.limit

    def _stale_frame(self, last: ProcessedFrame) -> ProcessedFrame:
        if not self.capture.lost.is_set():
            return last
        if self._dimmed is None or self._dimmed.source is not last.source:
            self._dimmed = dataclasses.replace(
                last, image=dim_with_note(last.image, "camera unavailable"))
        return self._dimmed

    def _write(self, frame: ProcessedFrame, fresh: bool) -> None:
        started = time.perf_counter()
        fitted: ProcessedFrame | None = None
        for sink in self.sinks:
            if getattr(sink, "any_size", False):  # e.g. an image folder: each its own size
                sink.write(frame, self.hud)
                continue
            fitted = fitted or self._fitter.fit(frame)
            sink.write(fitted, self.hud)
        now = time.perf_counter()
        if not fresh:
            self.repeated += 1
            return
        self._last = frame
        self.frames += 1
        self._recent.append(now)
        latency = (now - frame.source.timestamp) * 1000.0
        if self.deadline is not None:
            self.deadline.delivered(latency / 1000.0, frame.level)
        foreground = float(frame.mask.mean()) if frame.mask is not None else 0.0
        stages = {"capture": frame.source.read_ms, **frame.stages_ms,
                  "output": (now - started) * 1000.0}
        self.stats.add_record(FrameRecord(frame.source.index, latency, now, stages, foreground,
                                          frame.level, frame.sr, frame.people))
        self.hud.people = frame.people
        if self.progress is not None:
            self.progress(self.frames)
        if len(self._recent) > 1:
            self.hud.fps = (len(self._recent) - 1) / (self._recent[-1] - self._recent[0])
        self.hud.latency_ms = self.stats.latency_percentile(50)
        self.hud.cpu_percent = self._cpu.update()
        self.hud.level = frame.level


def dim_with_note(image: np.ndarray, note: str) -> np.ndarray:
    """A dimmed copy of a uint8 H×W×3 frame with a small note in its top-left corner."""
    import cv2

    dimmed = cv2.convertScaleAbs(image, alpha=LOST_DIM)
    scale = max(0.4, image.shape[0] / 720)
    cv2.putText(dimmed, note, (int(16 * scale), int(36 * scale)), cv2.FONT_HERSHEY_SIMPLEX,
                0.8 * scale, (255, 255, 255), max(1, int(2 * scale)), cv2.LINE_AA)
    return dimmed


class Pipeline:
    """One run of source → processor → sinks. Construct, then call :meth:`run` once.

    ``paced``: output at ``fps`` with repeats (what a camera consumer sees) or unpaced
    (each processed frame written once, for files and benchmarks). ``limit``: stop after
    this many processed frames. ``keep_records``: how many frame records to keep
    (``None`` = all, for benchmarks). ``buffering``: ``auto``, ``single`` or ``double``
    on a GPU (see :meth:`_scheduler`). ``progress`` is called with the count after each new
    frame is written (from the output thread).
    """

    def __init__(self, source: Source, processor: FrameProcessor, sinks: Sequence[Sink],
                 *, fps: float | None = None, paced_capture: bool = True,
                 paced_output: bool = True, limit: int | None = None,
                 controls: Controls | None = None,
                 progress: Callable[[int], None] | None = None,
                 keep_records: int | None = LIVE_RECORDS, buffering: str = "auto",
                 output_size: tuple[int, int] | None = None) -> None:
        self.source = source
        self.output_size = output_size
        self.buffering = buffering
        self.processor = processor
        self.sinks = list(sinks)
        self.fps = fps
        self.paced_capture = paced_capture
        self.paced_output = paced_output
        self.limit = limit
        self.controls = controls or Controls()
        self.progress = progress
        self.stats = RollingStats(keep=keep_records)
        self.hud = HudStats()
        self._threads: list[Any] = []
        self._slots: tuple[LatestSlot[Any], ...] = ()
        self._output: OutputThread | None = None
        self._started = time.perf_counter()
        self._cpu = CpuMeter()
        self._cpu_percent = float("nan")
        self.deadline: DeadlineController | None = None
        self.terminated = threading.Event()
        self.interrupted = threading.Event()

    def run(self) -> RunResult:
        """Run to the end; always releases everything. Returns what happened.

        Ctrl-C and SIGTERM only set events here (main thread): a KeyboardInterrupt raised
        inside a library's import can be wrapped and swallowed (seen: skimage's tifffile
        import turned it into a RuntimeError), and the run then went on for good. Each
        start-up step is followed by a look at the stop event instead.
        """
        interrupted = False
        opened: list[Any] = []
        previous = _install_stop_signals(self.controls.stop, self.interrupted, self.terminated)
        started = time.perf_counter()
        try:
            if self._start_up(opened):
                self.hud.backend = self.processor.backend
                fps = self.fps or self.source.fps
                # Everything loaded so far (torch, models, ...) lives as long as the
                # process: move it out of the collector's sight, or a full collection
                # during the run walks ~1M objects and stalls a frame by ~80 ms (measured).
                gc.collect()
                gc.freeze()
                interrupted = self._run_threads(fps)
                started = self._started
        except KeyboardInterrupt:
            interrupted = True
        finally:
            gc.unfreeze()
            self._stop_threads()
            users = {id(self.source): "capture", id(self.processor): "process"}
            for resource in reversed(opened):
                if self._still_running(users.get(id(resource), "")):
                    log.warning("not closing %s: its thread is still running",
                                type(resource).__name__)
                    continue
                _close_quietly(resource)
            _restore_signals(previous)
        for thread in self._threads:
            if thread.error is not None:
                raise thread.error
        interrupted = interrupted or self.interrupted.is_set()
        return self._result(time.perf_counter() - started, interrupted)

    def _start_up(self, opened: list[Any]) -> bool:
        """Open the source, let the sinks check the size, load and size the models;
        appends what it opened to ``opened``. False when a stop came on the way."""
        stop = self.controls.stop
        self.source.open()
        opened.append(self.source)
        if stop.is_set():
            return False
        self._check_sinks()
        # a video's SR shares the cores with segmentation, paced or not (no deadline:
        # each frame still waits for its own SR)
        self.processor.overlap_sr = True
        self.processor.open(live=self._adapts())
        opened.append(self.processor)
        if stop.is_set():
            return False
        self.processor.prepare(self.source.size)
        return not stop.is_set()

    def _run_threads(self, fps: float) -> bool:
        stop = self.controls.stop
        raw: LatestSlot[CapturedFrame] = LatestSlot()
        done: LatestSlot[ProcessedFrame] = LatestSlot()
        self._slots = (raw, done)
        capture = CaptureThread(self.source, raw, stop, paced=self.paced_capture)
        scheduler = self._scheduler()
        self._arm_deadline(fps, raw, scheduler)
        process = ProcessThread(self.processor, raw, done, capture, self.controls, scheduler)
        out_size = self._out_size()
        output = OutputThread(self.sinks, done, out_size, fps, self.paced_output, self.limit,
                              self.controls, process.done, capture, self.stats, self.hud,
                              self.progress, self.deadline)
        self._threads = [output]
        self._output = output
        try:
            output.start()  # opens the sinks first: frames flow only once they are open
            while not output.ready.wait(0.1):
                pass
            if output.error is not None:
                return False
            self._threads = [capture, process, output]
            self._started = time.perf_counter()
            self._cpu.start()
            capture.start()
            process.start()
            # A capture error ends the stream like its end would: the frames already
            # read are still processed and written (the output thread stops the run once
            # drained), so an error after an hour of a conversion loses nothing done.
            while not stop.wait(0.1):
                if process.error:
                    stop.set()
        except KeyboardInterrupt:
            stop.set()
            return True
        return False

    def _arm_deadline(self, fps: float, inbox: LatestSlot[CapturedFrame],
                      scheduler: DoubleBufferedProcessor | None) -> None:
        """Give the processor a deadline controller for a paced run at ``quality`` auto
        (one frame period per frame; frames dropped from ``inbox`` count as late).
        Unpaced runs (files, throughput benchmarks) and the GPU scheduler keep the
        configured level."""
        if self._adapts() and scheduler is None:
            self.deadline = DeadlineController(fps, drops=lambda: inbox.dropped)
            self.processor.deadline = self.deadline

    def _adapts(self) -> bool:
        """Whether this run adapts its quality to the frame budget: paced, at quality
        ``auto`` (the GPU's double-buffering scheduler aside, :meth:`_arm_deadline`)."""
        return self.paced_output and self.processor.config.model.quality == "auto"

    def _out_size(self) -> tuple[int, int]:
        """The sinks' frame size: ``output_size``, else twice the source's."""
        return self.output_size or (2 * self.source.size[0], 2 * self.source.size[1])

    def _check_sinks(self) -> None:
        """Let each sink refuse the output size before any model loads."""
        check_sinks(self.sinks, self._out_size())

    def _scheduler(self) -> DoubleBufferedProcessor | None:
        """The GPU scheduler for this run, or None on the CPU.

        ``auto``: double buffering for unpaced runs (throughput: benchmarks, files), single
        for paced ones, where a camera's frame period already hides the GPU work and
        double buffering would add one frame of latency.
        """
        if self.processor.device.type != "cuda":
            if self.buffering in ("single", "double"):
                log.info("buffering %s applies to the GPU path only; ignored on the CPU",
                         self.buffering)
            return None
        buffering = self.buffering
        if buffering == "auto":
            buffering = "single" if self.paced_capture else "double"
        return for_processor(self.processor, buffering)

    def _stop_threads(self) -> None:
        """Stop every thread: the output thread first (it finalizes the files), each
        joined within what is left of one shared second."""
        self.controls.stop.set()
        if self._threads:
            self._cpu_percent = self._cpu.percent()
        for slot in self._slots:
            slot.close()
        deadline = time.perf_counter() + JOIN_TIMEOUT_S
        for thread in sorted(self._threads, key=lambda t: t is not self._output):
            if thread.ident is None:  # Ctrl-C came before it was started
                continue
            thread.join(max(0.0, deadline - time.perf_counter()))
            if thread.is_alive():
                log.warning("thread %s did not stop within %.1f s", thread.name,
                            JOIN_TIMEOUT_S)

    def _still_running(self, name: str) -> bool:
        return any(t.name == name and t.is_alive() for t in self._threads)

    def dropped(self) -> int:
        """Captured frames never written so far (:attr:`RunResult.dropped`); safe to
        call from the threads' callbacks while the run goes on."""
        output = self._output
        dropped = sum(slot.dropped for slot in self._slots)
        if output is not None and output.fps >= self.source.fps:  # not thinning on purpose
            dropped += output.replaced
        return dropped

    def _result(self, seconds: float, interrupted: bool) -> RunResult:
        output = self._output
        return RunResult(
            frames=output.frames if output else 0, seconds=seconds,
            records=list(self.stats.records), dropped=self.dropped(),
            repeated=output.repeated if output else 0, fallbacks=self.processor.fallbacks,
            interrupted=interrupted, backend=self.processor.backend,
            precision=self.processor.precision, threads=self.processor.threads,
            terminated=self.terminated.is_set(), cpu_percent=self._cpu_percent,
            level_changes=len(self.deadline.changes) if self.deadline else 0)


def _close_quietly(resource: Any) -> None:
    try:
        resource.close()
    except Exception as exc:  # closing must go on for the others
        log.warning("closing %s failed: %s", type(resource).__name__, exc)


def _install_stop_signals(stop: threading.Event, interrupted: threading.Event,
                          terminated: threading.Event) -> dict[int, Any] | None:
    """Make Ctrl-C (SIGINT) set ``interrupted`` and ``stop``, and SIGTERM ``terminated``
    and ``stop``, without raising (main thread only). A second Ctrl-C raises
    KeyboardInterrupt, for a stop that hangs. Returns the previous handlers."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def on_sigint(*_: object) -> None:
        if interrupted.is_set():
            raise KeyboardInterrupt
        interrupted.set()
        stop.set()

    def on_sigterm(*_: object) -> None:
        terminated.set()
        stop.set()

    return {signal.SIGINT: signal.signal(signal.SIGINT, on_sigint),
            signal.SIGTERM: signal.signal(signal.SIGTERM, on_sigterm)}


def _restore_signals(previous: dict[int, Any] | None) -> None:
    for number, handler in (previous or {}).items():
        signal.signal(number, handler)
