"""The double-buffered scheduler's ordering, on a fake device that needs no GPU.

:class:`FakeDevice` keeps one queue per stream and runs queued work late and in
random interleavings (only what the host forces, or random bits of it as it goes).
Buffers carry labels instead of pixels, so a missing wait shows up as a frame built
from another frame's data. It also checks every access against host issue order: work
on one buffer that runs in another order than the host issued it is a race, reported
even when the labels happen to come out right.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import random
import types
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
import torch

from localsr_cam.errors import ConfigError
from localsr_cam.frames import CapturedFrame
from localsr_cam.pipeline.gpu import DoubleBufferedProcessor, for_processor


# -- the fake device ------------------------------------------------------------------------
class Buffer:
    """A host or device buffer (or tensor) holding a label; ``stream``: where it was made."""

    def __init__(self, name: str, stream: Stream | None = None) -> None:
        self.name = name
        self.stream = stream
        self.value: Any = None
        self.kept_for: set[str] = set()

    def __getitem__(self, index: Any) -> Buffer:  # mask[0, 0]: a view of the same memory
        return self

    def __repr__(self) -> str:
        return f"Buffer({self.name})"


class Event:
    def __init__(self, name: str) -> None:
        self.name = name
        self.recorded = 0  # generations recorded by the host
        self.reached = 0  # generations the device has passed


@dataclasses.dataclass
class Op:
    seq: int
    stream: Stream
    label: str
    reads: tuple[Buffer, ...] = ()
    writes: tuple[Buffer, ...] = ()
    run: Callable[[], None] = lambda: None
    wait: tuple[Event, int] | None = None
    done: bool = False


class Stream:
    def __init__(self, name: str) -> None:
        self.name = name
        self.queue: list[Op] = []

    def runnable(self) -> bool:
        if not self.queue:
            return False
        wait = self.queue[0].wait
        return wait is None or wait[0].reached >= wait[1]


class FakeDevice:
    """DeviceOps with deferred, reorderable execution and a race detector.

    ``eager``: after each call, run a random number of queued ops (else run only what
    the host forces). ``seed`` picks the interleavings.
    """

    def __init__(self, seed: int = 0, eager: bool = True) -> None:
        self.rng = random.Random(seed)
        self.eager = eager
        self.streams: list[Stream] = []
        self.current: Stream | None = None
        self.ops: list[Op] = []
        self.violations: list[str] = []
        self.host_waits: list[str] = []
        self.records: dict[tuple[int, int], Op] = {}
        self._seq = itertools.count()
        self._names = itertools.count()

    # DeviceOps ----------------------------------------------------------------------
    def new_stream(self) -> Stream:
        stream = Stream(f"stream{len(self.streams)}")
        self.streams.append(stream)
        return stream

    def new_event(self, label: str = "") -> Event:
        return Event(label or f"event{next(self._names)}")

    @contextlib.contextmanager
    def use_stream(self, stream: Stream) -> Iterator[Stream]:
        previous, self.current = self.current, stream
        try:
            yield stream
        finally:
            self.current = previous

    def record(self, event: Event, stream: Stream) -> None:
        event.recorded += 1
        generation = event.recorded

        def reach() -> None:
            event.reached = max(event.reached, generation)

        op = self.enqueue(stream, f"record {event.name}#{generation}", run=reach)
        self.records[(id(event), generation)] = op

    def wait_event(self, stream: Stream, event: Event) -> None:
        self.enqueue(stream, f"wait {event.name}#{event.recorded}",
                     wait=(event, event.recorded))

    def host_wait(self, event: Event) -> None:
        self.host_waits.append(event.name)
        target = event.recorded
        self.run_until(lambda: event.reached >= target)

    def alloc_host(self, shape: tuple[int, ...], dtype: str) -> Buffer:
        return Buffer(f"host{shape}#{next(self._names)}")

    def alloc_device(self, shape: tuple[int, ...], dtype: str) -> Buffer:
        return Buffer(f"dev{shape}#{next(self._names)}")

    def upload(self, image: np.ndarray, host: Buffer, device: Buffer, stream: Stream) -> None:
        self.host_access(host, write=True)
        host.value = frame_label(image)

        def copy() -> None:
            device.value = host.value

        self.enqueue(stream, "H2D", reads=(host,), writes=(device,), run=copy)

    def download(self, source: Buffer, host: Buffer, stream: Stream) -> None:
        def copy() -> None:
            host.value = source.value

        self.enqueue(stream, "D2H", reads=(source,), writes=(host,), run=copy)

    def host_array(self, host: Buffer) -> Any:
        self.host_access(host, write=False)
        return host.value

    def keep_alive(self, tensor: Buffer, stream: Stream) -> None:
        tensor.kept_for.add(stream.name)

    # execution ------------------------------------------------------------------------
    def enqueue(self, stream: Stream, label: str, reads: tuple[Buffer, ...] = (),
                writes: tuple[Buffer, ...] = (), run: Callable[[], None] = lambda: None,
                wait: tuple[Event, int] | None = None) -> Op:
        op = Op(next(self._seq), stream, label, reads, writes, run, wait)
        stream.queue.append(op)
        self.ops.append(op)
        if self.eager:
            for _ in range(self.rng.randint(0, 3)):
                self.step()
        return op

    def step(self) -> bool:
        ready = [s for s in self.streams if s.runnable()]
        if not ready:
            return False
        op = self.rng.choice(ready).queue.pop(0)
        self.check_race(op)
        op.run()
        op.done = True
        return True

    def run_until(self, condition: Callable[[], bool]) -> None:
        while not condition():
            if not self.step():
                raise AssertionError("deadlock: the host waits for work that cannot run")

    def sync_stream(self, stream: Stream) -> None:
        """The host reads a result of ``stream`` (like ``int(tensor)`` on a GPU)."""
        self.run_until(lambda: not stream.queue)

    # race detection --------------------------------------------------------------------
    def check_race(self, op: Op) -> None:
        """``op`` runs now: no earlier-issued op touching the same memory may still wait."""
        for earlier in self.ops:
            if earlier.seq >= op.seq:
                break
            if earlier.done:
                continue
            if set(map(id, op.writes)) & set(map(id, earlier.reads + earlier.writes)) or \
                    set(map(id, op.reads)) & set(map(id, earlier.writes)):
                self.violations.append(f"{op.label} on {op.stream.name} ran before "
                                       f"earlier {earlier.label} on {earlier.stream.name}")

    def host_access(self, buffer: Buffer, write: bool) -> None:
        for op in self.ops:
            if op.done:
                continue
            if (write and buffer in op.reads + op.writes) or (not write and buffer in op.writes):
                self.violations.append(f"host {'wrote' if write else 'read'} {buffer.name} "
                                       f"while {op.label} on {op.stream.name} is pending")


def frame_label(image: np.ndarray) -> int:
    return int(image[0, 0, 0]) + 256 * int(image[0, 0, 1])


def make_frame(index: int, size: tuple[int, int] = (6, 4)) -> CapturedFrame:
    width, height = size
    image = np.zeros((height, width, 3), np.uint8)
    image[0, 0, 0], image[0, 0, 1] = index % 256, index // 256
    return CapturedFrame(image, index, float(index))


# -- the fake processor -----------------------------------------------------------------------
@dataclasses.dataclass
class State:
    frame: CapturedFrame
    lr: Buffer
    mask: Buffer | None
    box: Any
    front_seq: int
    stages_ms: dict[str, float]


@dataclasses.dataclass
class Rendered:
    state: State
    output: Buffer


@dataclasses.dataclass
class Result:
    index: int
    image: Any
    mask: Any
    box: Any


class FakeProcessor:
    """Front/render/finish queued on the device's current stream.

    ``masked=True``: the front half computes a mask and reads the person box from it
    on the host (a stream sync, as ``person_box`` does on a GPU). ``masked=False``: the
    full-frame mode, no mask and no sync: the front half is only the upload.
    """

    def __init__(self, device: FakeDevice, masked: bool = True) -> None:
        self.device = device
        self.masked = masked
        self.order_problems: list[str] = []
        self.inputs: list[Buffer | None] = []  # the device buffer each frame was read from

    def denoised(self, frame: CapturedFrame, bypass: bool = False) -> CapturedFrame:
        return frame

    def front(self, frame: CapturedFrame, lr: Buffer | None = None, *,
              bypass: bool = False, captured: CapturedFrame | None = None) -> State:
        self.inputs.append(lr)
        device = self.device
        stream = device.current
        assert stream is not None and lr is not None
        if not self.masked:
            return State(frame, lr, None, "full", device.ops[-1].seq, {})
        mask = Buffer(f"mask{frame.index}", stream)

        def segment() -> None:
            mask.value = ("mask", lr.value)

        op = device.enqueue(stream, f"segment {frame.index}", reads=(lr,), writes=(mask,),
                            run=segment)
        device.sync_stream(stream)
        return State(frame, lr, mask, ("box", mask.value[1]), op.seq, {})

    def render(self, state: State) -> Rendered:
        device = self.device
        stream = device.current
        assert stream is not None
        self._check_ordered_after_front(state, stream)
        mask = state.mask
        if mask is not None and mask.stream is not stream and stream.name not in mask.kept_for:
            self.order_problems.append(f"mask of frame {state.frame.index} used on "
                                       f"{stream.name} without keep_alive")
        out = Buffer(f"out{state.frame.index}", stream)
        reads = (state.lr,) if mask is None else (state.lr, mask)

        def blend() -> None:
            out.value = ("out", state.lr.value, None if mask is None else mask.value)

        device.enqueue(stream, f"render {state.frame.index}", reads=reads, writes=(out,),
                       run=blend)
        return Rendered(state, out)

    def _check_ordered_after_front(self, state: State, stream: Stream) -> None:
        """The back half's stream must wait on an event recorded after the front work."""
        front_stream = next(op.stream for op in self.device.ops if op.seq == state.front_seq)
        if front_stream is stream:
            return
        for op in stream.queue + [o for o in self.device.ops if o.stream is stream and o.done]:
            if op.wait is None:
                continue
            record = self.device.records.get((id(op.wait[0]), op.wait[1]))
            if record is not None and record.stream is front_stream and \
                    record.seq > state.front_seq:
                return
        self.order_problems.append(f"back half of frame {state.frame.index} does not wait "
                                   "for its front half")

    def finish(self, rendered: Rendered, image: Any = None, mask: Any = None) -> Result:
        state = rendered.state
        return Result(state.frame.index, image, mask, state.box)


# -- helpers ---------------------------------------------------------------------------------
def run_frames(scheduler: DoubleBufferedProcessor, frames: list[CapturedFrame]
               ) -> tuple[list[Any], list[Result]]:
    returned = [scheduler.process(frame) for frame in frames]
    tail = scheduler.flush()
    results = [r for r in returned if r is not None] + ([tail] if tail is not None else [])
    return returned, results


def expected(index: int, masked: bool) -> tuple:
    if masked:
        return ("out", index, ("mask", index)), ("mask", index), ("box", index)
    return ("out", index, None), None, "full"


def check_results(results: list[Result], count: int, masked: bool) -> None:
    assert [r.index for r in results] == list(range(count))
    for result in results:
        image, mask, box = expected(result.index, masked)
        assert (result.image, result.mask, result.box) == (image, mask, box), result


SEEDS = range(12)


# -- the scheduler, correct ------------------------------------------------------------------
@pytest.mark.parametrize("masked", [True, False], ids=["masked", "full-frame"])
@pytest.mark.parametrize("eager", [True, False], ids=["eager", "lazy"])
@pytest.mark.parametrize("seed", SEEDS)
def test_double_buffering_is_race_free_and_in_order(seed, eager, masked):
    device = FakeDevice(seed, eager)
    processor = FakeProcessor(device, masked)
    scheduler = DoubleBufferedProcessor(processor, device, "double")
    returned, results = run_frames(scheduler, [make_frame(i) for i in range(9)])
    assert returned[0] is None and all(r is not None for r in returned[1:])
    assert [r.index for r in returned[1:]] == list(range(8))  # one frame of delay
    check_results(results, 9, masked)
    assert device.violations == [] and processor.order_problems == []


@pytest.mark.parametrize("masked", [True, False], ids=["masked", "full-frame"])
@pytest.mark.parametrize("seed", SEEDS[:4])
def test_single_buffering_returns_each_frame_at_once(seed, masked):
    device = FakeDevice(seed)
    processor = FakeProcessor(device, masked)
    scheduler = DoubleBufferedProcessor(processor, device, "single")
    returned, results = run_frames(scheduler, [make_frame(i) for i in range(5)])
    assert [r.index for r in returned] == list(range(5)) and scheduler.delay == 0
    check_results(results, 5, masked)
    assert device.violations == [] and processor.order_problems == []
    assert len(device.streams) == 1


def test_back_half_of_n_is_issued_before_front_half_of_n_plus_1():
    """The overlap itself: when the host blocks in frame N+1's front half (its box
    read), frame N's back half is already queued on the other stream."""
    device = FakeDevice(eager=False)
    scheduler = DoubleBufferedProcessor(FakeProcessor(device), device, "double")
    run_frames(scheduler, [make_frame(i) for i in range(4)])
    order = [op.label for op in device.ops if op.label.split()[0] in ("segment", "render")]
    assert order == ["segment 0", "render 0", "segment 1", "render 1", "segment 2",
                     "render 2", "segment 3", "render 3"]
    front = {op.stream.name for op in device.ops if op.label.startswith("segment")}
    back = {op.stream.name for op in device.ops if op.label.startswith("render")}
    assert len(front) == len(back) == 1 and front != back


def test_host_waits_only_for_uploads_and_the_download_it_hands_out():
    device = FakeDevice(seed=3)
    scheduler = DoubleBufferedProcessor(FakeProcessor(device), device, "double")
    for i in range(6):
        before = len(device.host_waits)
        scheduler.process(make_frame(i))
        waits = device.host_waits[before:]
        if i >= 2:  # set reused: its old upload, then the previous frame's download
            assert len(waits) == 2
        assert all(w.split()[0] in ("uploaded", "back_done") for w in waits), waits
        if i >= 2:  # first its set's previous upload (host_in is reused)
            assert waits[0] == f"uploaded {i % 2}"
        if i >= 1:  # then the download of the frame handed out: the previous one's set
            assert waits[-1] == f"back_done {(i - 1) % 2}"


def test_buffer_sets_alternate_and_frames_use_their_own():
    device = FakeDevice(seed=1)
    processor = FakeProcessor(device)
    scheduler = DoubleBufferedProcessor(processor, device, "double")
    for i in range(5):
        scheduler.process(make_frame(i))
    first, second = processor.inputs[:2]
    assert first is not None and second is not None and first is not second
    assert processor.inputs == [first, second, first, second, first]


@pytest.mark.parametrize("seed", SEEDS[:6])
def test_a_new_frame_size_flushes_and_reallocates(seed):
    device = FakeDevice(seed)
    scheduler = DoubleBufferedProcessor(FakeProcessor(device), device, "double")
    frames = [make_frame(i, (6, 4) if i < 3 else (8, 6)) for i in range(6)]
    returned, results = run_frames(scheduler, frames)
    check_results(results, 6, True)
    assert [None if r is None else r.index for r in returned] == [None, 0, 1, 2, 3, 4]
    assert device.violations == []


def test_flush_on_an_empty_pipeline_and_twice():
    device = FakeDevice()
    scheduler = DoubleBufferedProcessor(FakeProcessor(device), device)
    assert scheduler.flush() is None
    scheduler.process(make_frame(0))
    assert scheduler.flush().index == 0
    assert scheduler.flush() is None


def test_bad_buffering_and_cpu_processor_are_refused():
    device = FakeDevice()
    with pytest.raises(ConfigError, match="buffering"):
        DoubleBufferedProcessor(FakeProcessor(device), device, "triple")

    cpu_processor = types.SimpleNamespace(device=torch.device("cpu"))
    with pytest.raises(ConfigError, match="cuda or tensorrt"):
        for_processor(cpu_processor)  # type: ignore[arg-type]


# -- broken schedulers: the fake must catch each mistake --------------------------------------
class BrokenOps:
    """The fake device with one of the scheduler's safeguards taken away at the device
    edge (the scheduler itself is the real one):

    - ``no_front_wait``: the back half does not wait for the front half's event;
    - ``no_download_wait``: the host reads the pinned output without waiting for it;
    - ``no_keep_alive``: the front stream's mask is used on the back stream without
      telling the allocator;
    - ``one_set``: both buffer sets get the same memory (every allocation is shared);
    - ``no_reuse_wait``: a set is reused without waiting for the back half still
      reading it.
    """

    def __init__(self, device: FakeDevice, *faults: str) -> None:
        self.device = device
        self.faults = set(faults)
        self._shared: dict[tuple, Buffer] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.device, name)

    def wait_event(self, stream: Stream, event: Event) -> None:
        role = event.name.split()[0]
        if (role == "front_done" and "no_front_wait" in self.faults) or \
                (role == "back_done" and "no_reuse_wait" in self.faults):
            return
        self.device.wait_event(stream, event)

    def host_wait(self, event: Event) -> None:
        if event.name.startswith("back_done") and "no_download_wait" in self.faults:
            return
        self.device.host_wait(event)

    def keep_alive(self, tensor: Any, stream: Stream) -> None:
        if "no_keep_alive" not in self.faults:
            self.device.keep_alive(tensor, stream)

    def _alloc(self, where: str, shape: tuple[int, ...], dtype: str) -> Buffer:
        make = getattr(self.device, f"alloc_{where}")
        if "one_set" not in self.faults:
            return make(shape, dtype)
        key = (where, shape, dtype)
        if key not in self._shared:
            self._shared[key] = make(shape, dtype)
        return self._shared[key]

    def alloc_host(self, shape: tuple[int, ...], dtype: str) -> Buffer:
        return self._alloc("host", shape, dtype)

    def alloc_device(self, shape: tuple[int, ...], dtype: str) -> Buffer:
        return self._alloc("device", shape, dtype)


@pytest.mark.parametrize("masked", [False, True])
def test_one_buffer_set_reused_with_its_waits_is_race_free(masked):
    """Single buffering reuses one set for every frame: its reuse waits alone keep the
    next upload off the memory the previous frame's back half reads."""
    for seed in SEEDS[:4]:
        device = FakeDevice(seed, eager=False)
        scheduler = DoubleBufferedProcessor(FakeProcessor(device, masked), device, "single")
        _, results = run_frames(scheduler, [make_frame(i) for i in range(6)])
        check_results(results, 6, masked)
        assert device.violations == []
        assert device.host_waits.count("uploaded 0") == 5  # each reuse waited


@pytest.mark.parametrize("faults, masked", [
    (("no_front_wait",), False), (("no_front_wait",), True), (("no_download_wait",), True),
    (("no_keep_alive",), True), (("one_set", "no_reuse_wait"), False)])
def test_the_fake_device_catches_a_broken_scheduler(faults, masked):
    caught = 0
    for seed in SEEDS:
        for eager in (True, False):
            device = FakeDevice(seed, eager)
            processor = FakeProcessor(device, masked)
            scheduler = DoubleBufferedProcessor(processor, BrokenOps(device, *faults))
            try:
                _, results = run_frames(scheduler, [make_frame(i) for i in range(6)])
                check_results(results, 6, masked)
            except AssertionError:
                caught += 1
                continue
            if device.violations or processor.order_problems:
                caught += 1
    assert caught > 0, f"{faults} went unnoticed"


# -- the real processor through the scheduler ---------------------------------------------------
@pytest.mark.parametrize("buffering", ["single", "double"])
@pytest.mark.parametrize("blend", [{}, {"full_frame": True}, {"background": "blur"}])
def test_real_processor_gives_the_same_frames_through_the_scheduler(buffering, blend):
    from localsr_cam.config import BlendConfig, ModelConfig, PipelineConfig
    from localsr_cam.process.processor import FrameProcessor
    from tests.fakes import BicubicSR, DiscSegmenter, EngineBox, ImmediateCpuOps

    def processor() -> FrameProcessor:
        config = PipelineConfig(model=ModelConfig(model="fast", backend="cpu"),
                                blend=BlendConfig(ema=0.5, **blend))
        engines = EngineBox(DiscSegmenter((0.4, 0.5), 0.3), BicubicSR(offset=0.1))
        opened = FrameProcessor(config, engine_factory=engines).open()
        opened.prepare((80, 45))
        return opened

    rng = np.random.default_rng(0)
    frames = [CapturedFrame(rng.integers(0, 256, (45, 80, 3), dtype=np.uint8), i, 0.0)
              for i in range(5)]
    plain = processor()
    expected_frames = [plain.process(frame) for frame in frames]
    scheduler = DoubleBufferedProcessor(processor(), ImmediateCpuOps(), buffering)
    _, results = run_frames(scheduler, frames)
    assert len(results) == len(frames)
    for got, want in zip(results, expected_frames, strict=True):
        assert got.source is want.source and got.box == want.box
        assert np.array_equal(got.image, want.image)
        assert (got.mask is None) == (want.mask is None)
        if want.mask is not None:
            assert got.mask.shape == want.mask.shape and np.array_equal(got.mask, want.mask)
        assert "download_wait" in got.stages_ms


def test_cuda_ops_make_blocking_events_so_host_waits_sleep(monkeypatch):
    """The host waits for uploads and downloads on these events; a default CUDA event
    busy-waits in synchronize(), a blocking one sleeps (the CUDA edge is faked here)."""
    from localsr_cam.pipeline.gpu import CudaOps

    made: list[dict] = []

    class Event:
        def __init__(self, **options):
            made.append(options)

    monkeypatch.setattr(torch.cuda, "Event", Event)
    ops = CudaOps("cpu")
    ops.new_event()
    assert made == [{"blocking": True}]
