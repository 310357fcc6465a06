"""The three threads together: limits, pacing, repeats, camera loss, clean stop."""

from __future__ import annotations

import itertools
import os
import signal
import threading
import time

import numpy as np
import pytest

from localsr_cam.capture.sources import SyntheticSource
from localsr_cam.config import BlendConfig, ModelConfig, PipelineConfig
from localsr_cam.errors import SourceError
from localsr_cam.frames import Controls
from localsr_cam.pipeline.threads import Pipeline
from localsr_cam.process.processor import FrameProcessor
from tests.fakes import EngineBox, RecordingSink


def processor(model="bicubic") -> FrameProcessor:
    cfg = PipelineConfig(model=ModelConfig(model=model, backend="cpu"))
    return FrameProcessor(cfg, engine_factory=EngineBox())


def live_threads() -> set[str]:
    return {t.name for t in threading.enumerate()} & {"capture", "process", "output"}


def test_frame_limit_sizes_and_clean_shutdown():
    sink = RecordingSink()
    pipeline = Pipeline(SyntheticSource((64, 36), fps=200), processor("fast"), [sink],
                        paced_output=False, limit=12)
    result = pipeline.run()
    assert result.frames == 12 and len(sink.writes) == 12
    assert sink.size == (128, 72) and sink.closed == 1
    assert len(result.latencies_ms) == 12 and all(v > 0 for v in result.latencies_ms)
    stages = set().union(*(record.stages_ms for record in result.records))
    assert {"segment", "upscale", "blend", "background", "capture"} <= stages
    assert "frames=12" in result.summary() and not live_threads()


def test_an_unpaced_run_s_sr_runs_beside_the_frame_thread_and_every_frame_gets_its_own():
    """No deadline (a throughput benchmark, a conversion): the SR runs on the
    background worker, begun before segmentation, and no frame goes without it."""
    from tests.fakes import BicubicSR

    class ThreadNamingSR(BicubicSR):
        def __init__(self) -> None:
            super().__init__()
            self.threads: list[str] = []

        def __call__(self, inputs):
            self.threads.append(threading.current_thread().name)
            return super().__call__(inputs)

    sr = ThreadNamingSR()
    frames = FrameProcessor(PipelineConfig(model=ModelConfig(model="fast", backend="cpu")),
                            engine_factory=EngineBox(sr=sr))
    sink = RecordingSink()
    result = Pipeline(SyntheticSource((160, 90), fps=200), frames, [sink],
                      paced_capture=False, paced_output=False, limit=10).run()
    assert result.frames == 10 and frames.deadline is None
    assert sr.threads and all(name.startswith("sr") for name in sr.threads)
    assert {record.sr for record in result.records} <= {"fresh", "partial", "reused"}


def test_finite_source_ends_the_run(tmp_path):
    class ThreeFrames(SyntheticSource):
        def read(self):
            return None if self._index >= 3 else super().read()

    sink = RecordingSink()
    result = Pipeline(ThreeFrames((32, 18), fps=100), processor(), [sink],
                      paced_capture=False, paced_output=False).run()
    assert result.frames == 3 and [w[1] for w in sink.writes] == [0, 1, 2]


def test_a_read_error_still_writes_every_frame_read_before_it():
    """A conversion whose source fails after three frames: those three are processed
    and written (a slow sink still holds them when the error comes), then the error
    is raised to the caller."""

    class FailsAtFour(SyntheticSource):
        def read(self):
            if self._index >= 3:
                raise SourceError("disk gone")
            return super().read()

    class SlowSink(RecordingSink):
        def write(self, frame, hud) -> None:
            time.sleep(0.3)
            super().write(frame, hud)

    sink = SlowSink()
    pipeline = Pipeline(FailsAtFour((32, 18), fps=100), processor(), [sink],
                        paced_capture=False, paced_output=False)
    with pytest.raises(SourceError, match="disk gone"):
        pipeline.run()
    assert [w[1] for w in sink.writes] == [0, 1, 2] and sink.closed == 1
    assert not live_threads()


class StopAfterSink(RecordingSink):
    """Records, and sets the run's stop event ``seconds`` after its first write (so a
    slow start-up on a loaded machine does not eat the test's window)."""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds
        self.stop_sent_at = 0.0

    def open(self, size, fps, controls) -> None:
        super().open(size, fps, controls)
        self._controls = controls

    def write(self, frame, hud) -> None:
        if not self.writes:
            threading.Timer(self.seconds, self._stop).start()
        super().write(frame, hud)

    def _stop(self) -> None:
        self.stop_sent_at = time.perf_counter()
        self._controls.stop.set()


def test_paced_output_repeats_the_last_frame_when_none_is_new():
    sink = StopAfterSink(0.6)
    pipeline = Pipeline(SyntheticSource((32, 18), fps=5), processor(), [sink], fps=50)
    result = pipeline.run()
    # output at 50 fps from a 5 fps source: ~27 repeats in 0.6 s (first after 1.5 periods)
    assert result.repeated >= 10
    assert result.frames <= 5


def test_sink_failure_stops_the_run_and_is_reported():
    sink = RecordingSink(fail_after=3)
    with pytest.raises(OSError, match="device gone"):
        Pipeline(SyntheticSource((32, 18), fps=100), processor(), [sink],
                 paced_output=False, limit=50).run()
    assert sink.closed == 1 and not live_threads()


def test_stop_event_from_another_thread_stops_within_a_second():
    sink = StopAfterSink(0.3)
    Pipeline(SyntheticSource((64, 36), fps=30), processor(), [sink]).run()
    returned_at = time.perf_counter()
    assert sink.stop_sent_at > 0 and returned_at - sink.stop_sent_at < 1.0
    assert not live_threads() and sink.closed == 1


def test_open_failure_closes_what_was_opened():
    class BrokenProcessor(FrameProcessor):
        def open(self, *, live=False):
            raise RuntimeError("engine broke")

    class CountingSource(SyntheticSource):
        opened = closed = 0

        def open(self):
            CountingSource.opened += 1
            return super().open()

        def close(self):
            CountingSource.closed += 1
            super().close()

    source = CountingSource((32, 18))
    cfg = PipelineConfig(model=ModelConfig(model="bicubic"), blend=BlendConfig())
    with pytest.raises(RuntimeError):
        Pipeline(source, BrokenProcessor(cfg), [RecordingSink()]).run()
    assert CountingSource.opened == 1 and CountingSource.closed == 1


def test_output_images_are_distinct_arrays():
    frames: list[np.ndarray] = []

    class KeepingSink(RecordingSink):
        def write(self, frame, hud):
            frames.append(frame.image)

    Pipeline(SyntheticSource((32, 18), fps=100), processor(), [KeepingSink()],
             paced_output=False, limit=4).run()
    assert len({id(f) for f in frames}) == 4 and not np.array_equal(frames[0], frames[-1])


@pytest.mark.parametrize("buffering", ["single", "double"])
def test_gpu_scheduler_in_the_pipeline_delivers_every_frame_in_order(monkeypatch, buffering):
    """The double-buffered scheduler returns frames one late; the pipeline flushes the
    last one at the end of the source (streams faked on the CPU)."""
    from localsr_cam.pipeline.gpu import DoubleBufferedProcessor
    from tests.fakes import ImmediateCpuOps

    class FiveFrames(SyntheticSource):
        def read(self):
            return None if self._index >= 5 else super().read()

    monkeypatch.setattr(Pipeline, "_scheduler", lambda self: DoubleBufferedProcessor(
        self.processor, ImmediateCpuOps(), buffering))
    sink = RecordingSink()
    result = Pipeline(FiveFrames((48, 27), fps=100), processor("fast"), [sink],
                      paced_capture=False, paced_output=False).run()
    assert [w[1] for w in sink.writes] == [0, 1, 2, 3, 4] and result.frames == 5


def test_bypass_switch_of_the_run_reaches_the_processor():
    """The preview's b key toggles the pipeline's Controls; the processor must see it."""
    import cv2

    from tests.fakes import BicubicSR, DiscSegmenter

    images: list[tuple[np.ndarray, np.ndarray]] = []

    class KeepingSink(RecordingSink):
        def write(self, frame, hud):
            images.append((frame.source.image, frame.image))

    controls = Controls()
    controls.toggle_bypass()
    cfg = PipelineConfig(model=ModelConfig(model="fast", backend="cpu"))
    proc = FrameProcessor(cfg, engine_factory=EngineBox(DiscSegmenter(), BicubicSR(0.3)))
    Pipeline(SyntheticSource((48, 27), fps=100), proc, [KeepingSink()], controls=controls,
             paced_capture=False, paced_output=False, limit=3).run()
    assert len(images) == 3
    for source, output in images:
        plain = cv2.resize(source, (96, 54), interpolation=cv2.INTER_CUBIC)
        assert np.array_equal(output, plain)


def test_paced_output_is_capped_at_the_output_fps():
    """A 60 fps source into a 15 fps output (a file keeps real time): ~15 writes/s."""
    sink = RecordingSink()
    controls = Controls()
    pipeline = Pipeline(SyntheticSource((32, 18), fps=60), processor(), [sink], fps=15,
                        controls=controls)
    threading.Timer(1.5, controls.stop.set).start()
    pipeline.run()
    times = [w[0] for w in sink.writes]
    span = times[-1] - times[0]
    assert span > 0.8
    rate = (len(times) - 1) / span
    assert 10 <= rate <= 17, f"{rate:.1f} writes/s"
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert min(gaps) >= 0.85 / 15  # never two writes closer than ~0.9 periods


def _output_thread(fps: float, sink: RecordingSink):
    """A paced OutputThread on its own inbox, and the objects it needs."""
    from localsr_cam.capture.sources import LatestSlot
    from localsr_cam.frames import HudStats
    from localsr_cam.pipeline.threads import OutputThread, RollingStats

    inbox: LatestSlot = LatestSlot()
    done, controls = threading.Event(), Controls()

    class Capture:  # the output thread only asks whether the camera is lost
        lost = threading.Event()

    thread = OutputThread([sink], inbox, (64, 36), fps, True, None, controls, done,
                          Capture(), RollingStats(), HudStats())
    return thread, inbox, done


def _processed(index: int):
    from localsr_cam.frames import CapturedFrame, ProcessedFrame

    source = CapturedFrame(np.zeros((18, 32, 3), np.uint8), index, time.perf_counter())
    return ProcessedFrame(np.full((36, 64, 3), index, np.uint8), source)


@pytest.mark.parametrize("output_fps", [20.0, 10.0])
def test_paced_output_writes_a_catching_up_frame_and_thins_only_below_the_source_rate(
        output_fps):
    """Frames at 20 fps: one in four comes 1.2 periods late, the next (processed fast)
    a quarter period after it, the one after on time. At 20 fps out every frame is
    written — the one after the late one used to wait 0.9 periods from the late one's
    write, and the on-time one replaced it; at 10 fps out about one in two is replaced,
    on purpose."""
    period = 1 / 20
    offsets = {1: 1.2 * period, 2: 0.25 * period}
    sink = RecordingSink()
    thread, inbox, done = _output_thread(output_fps, sink)
    thread.start()
    start = time.perf_counter()
    for index in range(16):
        due = start + index * period + offsets.get(index % 4, 0.0)
        time.sleep(max(0.0, due - time.perf_counter()))
        inbox.put(_processed(index))
    time.sleep(2 * period)
    done.set()
    thread.join(2.0)
    written = sorted({index for _, index, _ in sink.writes})  # repeats of the last aside
    assert thread.frames == len(written) and thread.replaced == 16 - len(written)
    if output_fps == 20.0:
        assert written == list(range(16))
    else:
        assert 6 <= len(written) <= 10


def test_ctrl_c_while_the_threads_start_stops_those_started(monkeypatch):
    """Ctrl-C can land between one thread's start and the next's: the run ends as
    interrupted, the started threads stopped — joining the thread that never started
    raised RuntimeError and the run failed instead (seen once as a wrong exit status)."""
    from localsr_cam.pipeline import threads as threads_module

    def interrupted_start(self):
        raise KeyboardInterrupt

    monkeypatch.setattr(threads_module.ProcessThread, "start", interrupted_start)
    sink = RecordingSink()
    result = Pipeline(SyntheticSource((64, 36), fps=30), processor(), [sink],
                      limit=50).run()
    assert result.interrupted and sink.closed == 1 and not live_threads()


class SwallowsCtrlC(SyntheticSource):
    """Ctrl-C lands while the source opens, inside code that swallows what it raised (as
    a library's import did: Python 3.11 wrapped the KeyboardInterrupt in a RuntimeError
    that an ``except Exception`` took)."""

    closed = 0

    def open(self) -> None:
        super().open()
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.2)  # the handler runs in here
        except BaseException:
            pass

    def close(self) -> None:
        self.closed += 1


def test_ctrl_c_during_start_up_is_not_lost():
    """The run must end as interrupted before its first frame, with the source closed:
    with Ctrl-C raised as KeyboardInterrupt it was swallowed and the run went on to its
    limit (a run without one never ended: the new-user test's timeout in CI)."""
    source = SwallowsCtrlC((64, 36), fps=200)
    sink = RecordingSink()
    previous = signal.getsignal(signal.SIGINT)
    result = Pipeline(source, processor(), [sink], paced_output=False, limit=40).run()
    assert result.interrupted and result.frames == 0 and not sink.writes
    assert source.closed == 1 and not live_threads()
    assert signal.getsignal(signal.SIGINT) is previous  # the handler is put back


def test_ctrl_c_twice_raises_for_a_stop_that_hangs():
    """The first Ctrl-C asks the threads to stop; a second one raises at once."""
    from localsr_cam.pipeline.threads import _install_stop_signals, _restore_signals

    stop, interrupted, terminated = threading.Event(), threading.Event(), threading.Event()
    previous = _install_stop_signals(stop, interrupted, terminated)
    try:
        signal.raise_signal(signal.SIGINT)
        assert stop.is_set() and interrupted.is_set() and not terminated.is_set()
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)
    finally:
        _restore_signals(previous)
