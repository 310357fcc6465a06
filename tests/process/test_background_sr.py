"""SR off the frame thread: a frame stops waiting for it at its deadline, the late result
serves the next frames, and nothing is left running."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Sequence

import cv2
import numpy as np
import pytest

from localsr_cam.config import BlendConfig, ModelConfig, PipelineConfig
from localsr_cam.frames import CapturedFrame, ProcessedFrame
from localsr_cam.process.background_sr import BackgroundSR
from localsr_cam.process.deadline import LEVELS, DeadlineController
from localsr_cam.process.processor import LIVE_ESTIMATE_EVERY, FrameProcessor
from tests.fakes import BicubicSR, DiscSegmenter, EngineBox


def test_one_call_at_a_time_its_result_taken_once() -> None:
    worker: BackgroundSR[str, int] = BackgroundSR()
    gate = threading.Event()
    try:
        worker.start(lambda: gate.wait(5) and 7, key="box", tag="thumb")
        assert worker.busy and worker.holding
        assert not worker.wait(0.01) and worker.late == 1
        assert worker.take() is None  # not done: still held
        with pytest.raises(RuntimeError):
            worker.start(lambda: 1, key="other")
        gate.set()
        assert worker.wait(None)
        finished = worker.take()
        assert finished is not None and (finished.key, finished.tag, finished.result) == \
            ("box", "thumb", 7)
        assert not worker.holding and worker.take() is None
    finally:
        worker.close()


def test_the_call_s_error_is_raised_where_it_is_taken() -> None:
    worker: BackgroundSR[str, int] = BackgroundSR()

    def fail() -> int:
        raise ValueError("engine broke")

    try:
        worker.start(fail, key="box")
        assert worker.wait(5)
        with pytest.raises(ValueError, match="engine broke"):
            worker.take()
        assert not worker.holding
    finally:
        worker.close()


class SleepySR(BicubicSR):
    """The fake SR engine (bicubic + 0.2, so its pixels show), taking real time:
    ``seconds`` a call, or ``schedule[n]`` for the n-th call (its last for the rest).
    ``events``: where each call logs ``sr <h×w of its input> <thread name>``."""

    def __init__(self, seconds: float, schedule: Sequence[float] = (),
                 events: list[str] | None = None) -> None:
        super().__init__(offset=0.2)
        self.seconds = seconds
        self.schedule = list(schedule)
        self.events = events
        self.calls = 0

    def __call__(self, inputs):
        if self.events is not None:
            self.events.append(f"sr {tuple(inputs['image'].shape[2:])} "
                               f"{threading.current_thread().name}")
        if self.schedule:
            self.seconds = self.schedule[min(self.calls, len(self.schedule) - 1)]
        self.calls += 1
        time.sleep(self.seconds)
        return super().__call__(inputs)


def _paced_processor(sr: BicubicSR) -> tuple[FrameProcessor, DeadlineController]:
    config = PipelineConfig(model=ModelConfig(backend="cpu"), blend=BlendConfig(ema=0.0))
    processor = FrameProcessor(config, engine_factory=EngineBox(
        DiscSegmenter((0.5, 0.5), 0.25), sr)).open()
    processor.prepare((320, 180))
    controller = DeadlineController(30.0)
    processor.deadline = controller  # as a paced Pipeline arms it
    return processor, controller


STILL = np.full((180, 320, 3), 90, np.uint8)


class RecordingController(DeadlineController):
    """A deadline controller that keeps what :meth:`end` heard of each frame."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.over_budget: list[bool] = []
        self.shown_plain: list[bool] = []

    def end(self, over_budget: bool = False, after_sr_s: float | None = None,
            shown_plain: bool = False) -> None:
        self.over_budget.append(over_budget)
        self.shown_plain.append(shown_plain)
        super().end(over_budget, after_sr_s, shown_plain)


def _brightened(result) -> bool:
    """Whether the SR's +0.2 shows at the centre of the person (the blend put it there)."""
    return int(result.image[180, 320, 1]) > 90 + 30


def _a_person_moving(sr: SleepySR, segment_s: float, move_to: tuple[float, float],
                     *, deadline: DeadlineController | None, overlap: bool = False,
                     quality: str = "auto", frames: int = 3
                     ) -> tuple[list[ProcessedFrame], list[list[str]]]:
    """``frames`` frames of a 320×180 picture that changes every frame, the person (a
    disc) moving to ``move_to`` on frame 2; segmentation takes ``segment_s`` and logs
    ``segment start``/``segment end`` beside the SR engine's calls (``sr.events``).
    Paced by ``deadline`` (else unpaced, with ``overlap`` as a pipeline sets it).
    Returns the outputs and each frame's events."""
    events: list[str] = []
    sr.events = events

    class SlowSegmenter(DiscSegmenter):
        def __call__(self, inputs):
            events.append("segment start")
            time.sleep(segment_s)
            events.append("segment end")
            return super().__call__(inputs)

    segmenter = SlowSegmenter((0.5, 0.5), 0.25)
    config = PipelineConfig(model=ModelConfig(backend="cpu", quality=quality),
                            blend=BlendConfig(ema=0.0))
    processor = FrameProcessor(config, engine_factory=EngineBox(segmenter, sr)).open()
    processor.prepare((320, 180))
    processor.deadline = deadline  # as a paced Pipeline arms it
    processor.overlap_sr = overlap
    outputs = []
    try:
        for index in range(frames):
            if index == 2:
                segmenter.centre = move_to
            events.append(f"frame {index}")
            image = (STILL + 10 * index).astype(np.uint8)  # a changed crop every frame
            outputs.append(processor.process(CapturedFrame(image, index,
                                                           time.perf_counter())))
    finally:
        processor.close()
    per_frame = [[e for e in chunk.split("|")[1:] if e]
                 for chunk in "|".join(events).split("frame ")[1:]]
    return outputs, per_frame


def test_a_late_sr_does_not_hold_the_frame_and_serves_the_next_ones() -> None:
    sr = SleepySR(0.25)  # far past the 33 ms budget
    processor, _ = _paced_processor(sr)
    try:
        started = time.perf_counter()
        first = processor.process(CapturedFrame(STILL.copy(), 0, started))
        spent = time.perf_counter() - started
        # waited until 85 % of the budget, not the SR's 250 ms
        assert spent < 0.15
        assert first.sr == "none" and not _brightened(first)
        # the next frame, while the SR still runs: nothing to stand in yet, and no
        # second call is started
        second = processor.process(CapturedFrame(STILL.copy(), 1, time.perf_counter()))
        assert second.sr == "none" and sr.calls == 1
        time.sleep(0.3)  # the late SR finishes
        third = processor.process(CapturedFrame(STILL.copy(), 2, time.perf_counter()))
        assert third.sr == "reused" and _brightened(third)
    finally:
        processor.close()
    assert not [t for t in threading.enumerate() if t.name.startswith("sr")]


def test_frames_kept_from_their_sr_by_a_late_one_count_as_late() -> None:
    """While a late SR still runs, the next frames start none of their own: the
    controller hears of them as late too. (It heard of them as cheap frames: at the full
    level under load, a late SR every third frame was under its share of late frames,
    and the frames between showed no fresh SR — the level never stepped down.)"""

    sr = SleepySR(0.25)
    processor, _ = _paced_processor(sr)
    controller = processor.deadline = RecordingController(30.0)
    try:
        for index in range(2):  # the first SR is late; the second frame finds it running
            processor.process(CapturedFrame(STILL.copy(), index, time.perf_counter()))
        time.sleep(0.3)
        processor.process(CapturedFrame(STILL.copy(), 2, time.perf_counter()))
    finally:
        processor.close()
    assert sr.calls == 1 and controller.over_budget == [True, True, False]


def test_an_sr_in_time_is_fresh_and_unpaced_runs_always_wait() -> None:
    processor, _ = _paced_processor(SleepySR(0.005))
    try:
        frame = processor.process(CapturedFrame(STILL.copy(), 0, time.perf_counter()))
        assert frame.sr == "fresh" and _brightened(frame)
        assert frame.stages_ms["sr"] >= 5.0  # its run time on the worker
    finally:
        processor.close()
    processor, _ = _paced_processor(SleepySR(0.1))
    processor.deadline = None  # unpaced: a file, a benchmark's throughput run
    try:
        frame = processor.process(CapturedFrame(STILL.copy(), 0, time.perf_counter()))
        assert frame.sr == "fresh" and _brightened(frame)
        assert frame.stages_ms["sr"] >= 100.0 and frame.stages_ms["upscale"] >= 100.0
    finally:
        processor.close()


def test_closing_waits_for_a_running_sr() -> None:
    sr = SleepySR(0.2)
    processor, _ = _paced_processor(sr)
    processor.process(CapturedFrame(STILL.copy(), 0, time.perf_counter()))
    assert [t for t in threading.enumerate() if t.name.startswith("sr")]
    processor.close()
    assert not [t for t in threading.enumerate() if t.name.startswith("sr")]
    assert sr.closed == 1


def test_a_changed_crop_whose_sr_is_late_shows_the_last_result_as_late() -> None:
    sr = SleepySR(0.25)
    processor, _ = _paced_processor(sr)
    try:
        processor.process(CapturedFrame(STILL.copy(), 0, time.perf_counter()))
        time.sleep(0.3)  # that SR finishes
        # the same box, a patch of its crop changed: a new SR starts, is late, and the
        # last result stands in for it away from the patch; at the patch (where the old
        # SR is out of date) the plain upscale shows
        patched = STILL.copy()
        patched[80:86, 128:134] = 200
        frame = processor.process(CapturedFrame(patched, 1, time.perf_counter()))
        assert frame.sr == "late" and _brightened(frame) and sr.calls == 2
        plain = cv2.resize(patched, (640, 360), interpolation=cv2.INTER_CUBIC)
        assert np.array_equal(frame.image[160:172, 256:268], plain[160:172, 256:268])
    finally:
        processor.close()


def _moved_picture() -> tuple[np.ndarray, np.ndarray]:
    """A textured picture, and it moved 0.4 px right and 0.2 down (a swaying person)."""
    from tests.scenes import random_picture

    picture = random_picture(3, 180, 320)
    matrix = np.array([[1.0, 0.0, 0.4], [0.0, 1.0, 0.2]], np.float32)
    return picture, cv2.warpAffine(picture, matrix, (320, 180), flags=cv2.INTER_CUBIC,
                                   borderMode=cv2.BORDER_REFLECT)


@pytest.mark.parametrize("change", ["brighter", "moved"])
def test_a_late_sr_of_a_crop_changed_everywhere_shows_no_sr(change: str) -> None:
    """The last SR of a picture that has changed all over is not shown in its place:
    misplaced by the motion, it was 11 dB under the plain upscale on the sample clip.
    Nor is it moved along with a person who moved, as on a frame the level skips
    (test_levels): a late SR's frame is already at its deadline, and reading the move
    there (1–5 ms) raised the tail of the latency."""
    first, second = (STILL.copy(), STILL + 10) if change == "brighter" else _moved_picture()
    sr = SleepySR(0.25)
    processor, _ = _paced_processor(sr)
    try:
        processor.process(CapturedFrame(first, 0, time.perf_counter()))
        time.sleep(0.3)  # that SR finishes
        frame = processor.process(CapturedFrame(second, 1, time.perf_counter()))
        assert frame.sr == "none" and sr.calls == 2
        plain = cv2.resize(second, (640, 360), interpolation=cv2.INTER_CUBIC)
        assert np.array_equal(frame.image, plain)
    finally:
        processor.close()


def test_the_controller_hears_which_late_frames_showed_the_person_plain() -> None:
    """A late SR whose last result stands in over the unchanged cells is no flash; one
    with nothing to stand in (nothing stored yet, or the person changed all over) shows
    the plain upscale on them, and the controller hears of it (too many such frames
    step the level down)."""
    sr = SleepySR(0.25)
    processor, _ = _paced_processor(sr)
    controller = processor.deadline = RecordingController(30.0)
    patched = STILL.copy()
    patched[80:86, 128:134] = 200
    frames = []
    try:
        for index, image in enumerate([STILL.copy(), patched, patched + 10]):
            frames.append(processor.process(CapturedFrame(image, index, time.perf_counter())))
            time.sleep(0.3)  # that SR finishes
    finally:
        processor.close()
    assert [frame.sr for frame in frames] == ["none", "late", "none"]
    assert controller.over_budget == [True, True, True]
    assert controller.shown_plain == [True, False, True]


def test_a_live_frame_s_estimate_runs_while_its_sr_does() -> None:
    """Live, the SR starts with the levels the last frame left (they change over ~20
    frames) and the frame's own estimate is made while the SR runs, on one frame in
    LIVE_ESTIMATE_EVERY; it is done by the time the frame is."""
    events: list[tuple[str, object]] = []

    class RecordingSR(SleepySR):
        def __call__(self, inputs):
            events.append(("sr", inputs["levels"].clone()))
            result = super().__call__(inputs)
            events.append(("sr done", None))
            return result

    processor, _ = _paced_processor(RecordingSR(0.05))
    processor.deadline = DeadlineController(5.0)  # 200 ms a frame: every SR is waited for
    smoother = processor._degradation
    update = smoother.update

    def recorded_update(levels, frames=1):
        events.append(("estimate", None))
        return update(levels, frames)

    smoother.update = recorded_update  # type: ignore[method-assign]
    rng = np.random.default_rng(0)
    try:
        before = []
        every = LIVE_ESTIMATE_EVERY
        for index in range(every + 1):
            # brighter each frame (the crop changed: no reuse), noisier (the levels move)
            noisy = np.clip(STILL + 12 * index + rng.normal(0, 4 + 4 * index, STILL.shape),
                            0, 255)
            before.append(smoother.current())
            events.append(("frame", None))
            processor.process(CapturedFrame(noisy.astype(np.uint8), index,
                                            time.perf_counter()))
        frames = [[kind for kind, _ in events[start + 1:end]] for start, end in
                  itertools.pairwise([i for i, (k, _) in enumerate(events) if k == "frame"]
                                     + [len(events)])]
        assert frames[0] == ["estimate", "sr", "sr done"]  # no history yet: estimate first
        for kinds in frames[1:every]:  # then one new frame in `every` is read ...
            assert kinds == ["sr", "sr done"]
        kinds = frames[every]  # ... while its SR runs
        assert sorted(kinds[:2]) == ["estimate", "sr"] and kinds[2] == "sr done"
        given = [levels for kind, levels in events if kind == "sr"]
        for levels, last in zip(given[1:], before[1:], strict=True):
            assert np.allclose(levels.numpy(), last)  # what the last frame left
        assert not np.allclose(smoother.current(), before[every])  # this frame's is in
    finally:
        processor.close()


@pytest.mark.parametrize("quality", ["full", "head", "face"])
def test_live_the_sr_of_the_last_box_begins_before_segmentation(quality) -> None:
    """At a level with SR on every frame, with the person's box kept from the last
    frame, the frame's SR (of the box's top part at `head` and `face`) starts on the
    worker before its segmentation ends; the frame is blended with that SR (fresh);
    and when the person jumps out of that box, the new box's SR runs once that early
    one is done (here at once: it is quicker than segmentation)."""
    # 200 ms a frame: every SR is in time; the level fixed by a ladder of one SR level
    deadline = DeadlineController(5.0, ladder=(LEVELS[quality], LEVELS["plain"]))
    frames, per_frame = _a_person_moving(SleepySR(0.005), 0.03, (0.2, 0.5),
                                         deadline=deadline, quality=quality, frames=4)
    first, second, third = per_frame[:3]
    assert first[:2] == ["segment start", "segment end"] and first[2].startswith("sr")
    # submitted before segmentation, it runs during it (the worker may start a moment
    # after segmentation does)
    assert [e for e in second[:second.index("segment end")] if e.startswith("sr")]
    assert [f.level for f in frames] == [quality] * 4
    assert [f.sr for f in frames] == ["fresh"] * 4
    assert frames[1].box == frames[0].box and frames[2].box != frames[1].box
    assert sum(event.startswith("sr") for event in third) == 2  # the old box, the new
    assert third[-1].startswith("sr")
    assert int(frames[1].image[2 * 56, 2 * 160, 1]) > 90 + 10 + 30  # SR's +0.2 shows


def test_without_a_deadline_the_sr_still_begins_before_segmentation_and_is_waited_for(
) -> None:
    """A pipeline run without a deadline (an unpaced benchmark, a file conversion):
    the SR of the last frame's box begins before segmentation, as in a paced run, so
    the two share the cores (unpaced `bench --mode local` 29.3 → 35.9 fps on the 2-core
    CPU) — but every frame waits for its own SR: when the person jumps out of that box
    while its early SR still runs, the frame waits for it, then computes its own
    (fresh), instead of standing the last result in as a late paced frame would."""
    frames, per_frame = _a_person_moving(SleepySR(0.08), 0.02, (0.2, 0.5),  # SR slower
                                         deadline=None, overlap=True)
    second, third = per_frame[1:3]
    assert [e for e in second[:second.index("segment end")] if e.startswith("sr")]
    calls = [e for events in per_frame for e in events if e.startswith("sr ")]
    assert calls and all(e.split()[-1].startswith("sr") for e in calls)  # on the worker
    assert [f.sr for f in frames] == ["fresh"] * 3
    assert frames[2].box != frames[1].box
    assert sum(e.startswith("sr") for e in third) == 2  # the old box's, then its own
    x0, y0, x1, y1 = frames[2].box
    centre = frames[2].image[y0 + y1, x0 + x1, 1]  # the new box's centre, output pixels
    assert int(centre) > 90 + 20 + 30  # its own SR's +0.2 shows there


@pytest.mark.parametrize("early_s, own_s, calls", [
    (0.12, 0.12, 3),  # the early SR still runs after segmentation: no time for its own
    (0.01, 0.3, 4),  # the early SR was done: its own begins, and is late
])
def test_a_paced_frame_whose_box_moved_keeps_the_early_sr_where_the_boxes_overlap(
        early_s: float, own_s: float, calls: int) -> None:
    """The person moves out of the box whose SR began early, and the new box's own SR
    is not done in time: the early SR (of this frame) stands in where the boxes overlap
    and the plain upscale over the rest (partial), not the plain upscale everywhere."""
    sr = SleepySR(0.0, schedule=[0.12, 0.12, early_s, own_s])  # 120 ms fits, 300 not
    deadline = RecordingController(5.0, ladder=(LEVELS["full"], LEVELS["plain"]))
    frames, _ = _a_person_moving(sr, 0.03, (0.4, 0.5), deadline=deadline)  # left 32 px
    assert [f.sr for f in frames[:2]] == ["fresh", "fresh"]
    assert not deadline.shown_plain[2]  # its own late SR was covered by the early one
    (ox0, _, ox1, _), (nx0, y0, nx1, y1) = frames[1].box, frames[2].box
    assert nx0 < ox0 and nx1 < ox1  # moved left, still overlapping
    assert frames[2].sr == "partial" and sr.calls == calls
    row = frames[2].image[y0 + y1, :, 1].astype(int)  # the person's middle row, output
    inside = (2 * max(ox0, nx0 + 24), 2 * (nx1 - 24))  # shared by both boxes, inside both
    assert (row[inside[0]:inside[1]] > 110 + 30).all()  # the early SR's +0.2 shows
    person_left = int(2 * 0.4 * 320 - 2 * 0.25 * 180) + 4  # the disc's left edge, + 4 px
    assert row[person_left:2 * ox0].max() < 110 + 5  # outside the old box: plain upscale


def test_a_live_frame_s_levels_read_a_part_of_it_another_part_each_frame(monkeypatch
                                                                           ) -> None:
    from localsr_cam.process import processor as processor_module

    calls: list[tuple[int, int]] = []
    real = processor_module.estimate_levels

    def recording(image, bgr=False, max_pixels=60_000, phase=0, previous=None,
                  jpeg_frame=None):
        calls.append((max_pixels, phase))
        return real(image, bgr=bgr, max_pixels=max_pixels, phase=phase, previous=previous,
                    jpeg_frame=jpeg_frame)

    monkeypatch.setattr(processor_module, "estimate_levels", recording)
    # on one new frame in LIVE_ESTIMATE_EVERY once there is a history (the first is
    # read at once), the phases walking through the frame's parts; a camera that sends
    # each picture twice is read as often (the repeats do not count)
    for sent in (1, 2):
        calls.clear()
        processor, _ = _paced_processor(SleepySR(0.0))
        try:
            for index in range(2 * LIVE_ESTIMATE_EVERY + 1):
                frame = STILL.copy()  # a camera's frames differ (a repeat is not read)
                frame[0, index] ^= 1
                for _ in range(sent):
                    processor.process(CapturedFrame(frame.copy(), index,
                                                    time.perf_counter()))
        finally:
            processor.close()
        assert calls == [(processor_module.LIVE_ESTIMATE_PIXELS, phase)
                         for phase in range(3)]
    processor, _ = _paced_processor(SleepySR(0.0))
    processor.deadline = None  # unpaced: the whole frame's estimate, as eval's
    calls.clear()
    try:
        processor.process(CapturedFrame(STILL.copy(), 0, time.perf_counter()))
    finally:
        processor.close()
    assert calls == [(60_000, 0)]
    # a pipeline run over a folder of photos: each photo (a new scene) is read whole,
    # though its SR overlaps as a video frame's does
    processor, _ = _paced_processor(SleepySR(0.0))
    processor.deadline, processor.overlap_sr = None, True
    calls.clear()
    try:
        for index in range(2):
            processor.process(CapturedFrame(STILL.copy(), index, time.perf_counter(),
                                            new_scene=True))
    finally:
        processor.close()
    assert calls == [(60_000, 0)] * 2


@pytest.mark.parametrize("threads", [1, 2])
def test_with_one_thread_a_network_the_frame_thread_runs_a_band_of_the_sr(threads) -> None:
    """Live on the CPU with one thread a network, the frame thread, done with its own
    steps, runs the last band of the person box's SR instead of waiting idle beside
    the worker; the output is the same as the whole crop's SR. With two threads a
    network the engine already uses both cores: the SR runs whole."""
    events: list[str] = []
    sr = SleepySR(0.05, events=events)
    config = PipelineConfig(model=ModelConfig(backend="cpu", threads=threads),
                            blend=BlendConfig(ema=0.0))
    processor = FrameProcessor(config, engine_factory=EngineBox(
        DiscSegmenter((0.5, 0.5), 0.4), sr)).open(live=True)
    processor.prepare((320, 180))
    processor.deadline = DeadlineController(5.0)  # 200 ms: time for everything
    try:
        frame = processor.process(CapturedFrame(STILL.copy(), 0, time.perf_counter()))
    finally:
        processor.close()
    assert frame.sr == "fresh" and _brightened(frame)
    x0, y0, x1, y1 = frame.box
    threads_used = {event.rsplit(" ", 1)[1] for event in events}
    if threads == 1:
        assert len(events) == 2 and threading.current_thread().name in threads_used
        assert len(threads_used) == 2
    else:
        assert events == [f"sr {(y1 - y0, x1 - x0)} {events[0].rsplit(' ', 1)[1]}"]
    column = frame.image[2 * (90 - 64):2 * (90 + 64), 320, 1]  # the disc's, top to bottom
    assert (column > 90 + 30).all()  # the SR's +0.2 over both bands, the seam included
