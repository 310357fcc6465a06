"""Double buffering on a CUDA GPU: frame N+1's front half overlaps frame N's back half.

:class:`~localsr_cam.process.processor.FrameProcessor` splits a frame into a front half (upload,
segment, mask, person box) and a back half (SR of the box crop, background, blend,
download). Here each half runs on its own CUDA stream with its own buffer set, so the
GPU runs the back half of frame N while the host issues, and the GPU runs, the front
half of frame N+1. The price is one frame of delay: :meth:`DoubleBufferedProcessor.process`
returns the *previous* frame's result (``None`` for the first frame), and
:meth:`~DoubleBufferedProcessor.flush` returns the last one.

Ordering, per buffer set ``k`` (frames N, N+2, … use the same set)::

    host      wait uploaded[k] ─► copy frame into pinned host_in[k]
    front     wait back_done[k] ─► H2D host_in[k]→dev_in[k] ─► record uploaded[k]
              segment, mask, box (the box read syncs the front stream only)
              record front_done[k]
    back      wait front_done[k] ─► background, SR, blend ─► D2H into pinned
              host_out[k] (+ host_mask[k]) ─► record back_done[k]
    host      wait back_done[k] ─► copy host_out[k] out ─► ProcessedFrame

No ``torch.cuda.synchronize()``: the host blocks only on the event of the download it
hands out (and, trivially, on an upload finished long ago before reusing its pinned
buffer). Tensors made on the front stream and read on the back stream are marked with
``record_stream`` so the caching allocator does not recycle them early.

Buffer ownership: the buffer sets belong to the scheduler; a returned
:class:`~localsr_cam.frames.ProcessedFrame` holds fresh copies (``image`` uint8
2H×2W×3, ``mask`` float32 H×W) owned by the caller.

The ordering is written against :class:`DeviceOps`, a handful of stream/event/copy
operations: :class:`CudaOps` implements them with torch; the tests use a fake device
that executes queued work late and in adversarial orders to catch missing waits.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from localsr_cam.errors import ConfigError
from localsr_cam.frames import CapturedFrame, ProcessedFrame

if TYPE_CHECKING:
    from localsr_cam.process.processor import FrameProcessor

BUFFERING = ("single", "double")


class DeviceOps(Protocol):
    """Streams, events, buffers and copies: the device as the scheduler sees it.

    ``record(event, stream)`` marks the point reached by the work queued on ``stream``;
    ``wait_event(stream, event)`` makes later work on ``stream`` wait for that point
    (device side, the host does not block); ``host_wait(event)`` blocks the host until
    it is reached (returns at once for an event never recorded). ``new_event(label)``:
    the label names the event's role and buffer set (``"uploaded 0"``, ``"front_done 1"``,
    ``"back_done 0"``) for whoever inspects the device; a real device may ignore it.
    """

    def new_stream(self) -> Any: ...

    def new_event(self, label: str) -> Any: ...

    def use_stream(self, stream: Any) -> contextlib.AbstractContextManager[Any]:
        """Make ``stream`` the current stream (where the processor's work is queued)."""
        ...

    def record(self, event: Any, stream: Any) -> None: ...

    def wait_event(self, stream: Any, event: Any) -> None: ...

    def host_wait(self, event: Any) -> None: ...

    def alloc_host(self, shape: tuple[int, ...], dtype: str) -> Any:
        """A pinned host buffer (``dtype``: ``"uint8"`` or ``"float32"``)."""
        ...

    def alloc_device(self, shape: tuple[int, ...], dtype: str) -> Any: ...

    def upload(self, image: np.ndarray, host: Any, device: Any, stream: Any) -> None:
        """Copy ``image`` into ``host`` now (host memcpy), then queue ``host → device``
        on ``stream``."""
        ...

    def download(self, source: Any, host: Any, stream: Any) -> None:
        """Queue ``source → host`` on ``stream``."""
        ...

    def host_array(self, host: Any) -> np.ndarray:
        """A new numpy copy of a host buffer (call after the download's event)."""
        ...

    def keep_alive(self, tensor: Any, stream: Any) -> None:
        """``tensor`` (made on another stream) is used by work queued on ``stream``."""
        ...


class SplitProcessor(Protocol):
    """What the scheduler needs of :class:`~localsr_cam.process.processor.FrameProcessor`."""

    def denoised(self, frame: CapturedFrame, bypass: bool = False) -> CapturedFrame: ...

    def front(self, frame: CapturedFrame, lr: Any = None, *, bypass: bool = False,
              captured: CapturedFrame | None = None) -> Any: ...

    def render(self, state: Any) -> Any: ...

    def finish(self, rendered: Any, image: np.ndarray | None = None,
               mask: np.ndarray | None = None) -> ProcessedFrame: ...


@dataclasses.dataclass
class BufferSet:
    """Per-frame buffers of one pipeline slot, allocated once per frame size.

    ``host_in``: pinned uint8 H×W×3; ``dev_in``: device uint8 H×W×3 (the frame the
    processor reads); ``host_out``: pinned uint8 2H×2W×3; ``host_mask``: pinned float32
    H×W. Events: ``uploaded`` (H2D done), ``front_done`` (front half done),
    ``back_done`` (back half and downloads done). ``used``: a frame has gone through.
    """

    host_in: Any
    dev_in: Any
    host_out: Any
    host_mask: Any
    uploaded: Any
    front_done: Any
    back_done: Any
    used: bool = False


@dataclasses.dataclass
class _Slot:
    """A frame in flight: its buffer set index and the processor's state for it."""

    index: int
    state: Any
    rendered: Any = None


class DoubleBufferedProcessor:
    """Runs a split processor on two CUDA streams with two buffer sets.

    ``buffering="single"``: one buffer set and one stream, and ``process`` returns the
    frame it was given (the comparison baseline: same code path, no overlap, no delay).
    Not thread-safe: one processing thread, like the processor.
    """

    def __init__(self, processor: SplitProcessor, device_ops: DeviceOps,
                 buffering: str = "double") -> None:
        if buffering not in BUFFERING:
            raise ConfigError(f"unknown buffering {buffering!r}; choose one of: "
                              f"{', '.join(BUFFERING)}")
        self.processor = processor
        self.ops = device_ops
        self.buffering = buffering
        self._front_stream = device_ops.new_stream()
        self._back_stream = (self._front_stream if buffering == "single"
                             else device_ops.new_stream())
        self._sets: list[BufferSet] = []
        self._shape: tuple[int, ...] | None = None
        self._next = 0
        self._pending: _Slot | None = None

    @property
    def delay(self) -> int:
        """Frames between a frame going in and its result coming out (0 or 1)."""
        return 0 if self.buffering == "single" else 1

    def process(self, frame: CapturedFrame, *, bypass: bool = False
                ) -> ProcessedFrame | None:
        """Queue ``frame``; return the previous frame's result (double) or this one's
        (single). ``None`` while the pipeline fills. ``bypass``: as for
        :meth:`FrameProcessor.process`, for this frame."""
        previous: ProcessedFrame | None = None
        if frame.image.shape != self._shape:
            previous = self.flush()
            self._allocate(frame.image.shape)
        elif self._pending is not None:
            # queue the previous frame's back half first: the GPU works on it while the
            # host issues (and waits in) this frame's front half
            self._launch_back(self._pending)
        finished, self._pending = self._pending, self._launch_front(frame, bypass)
        if self.buffering == "single":
            self._launch_back(self._pending)
            finished, self._pending = self._pending, None
        if finished is not None:
            previous = self._collect(finished)
        return previous

    def close(self) -> ProcessedFrame | None:
        """Finish the frame in flight (returned, or ``None``) and drop the buffer sets so
        their pinned and device memory is freed; safe to call twice."""
        last = self.flush()
        self._sets = []
        self._shape = None
        return last

    def flush(self) -> ProcessedFrame | None:
        """Finish the frame still in flight and return its result (``None`` if none)."""
        slot, self._pending = self._pending, None
        if slot is None:
            return None
        self._launch_back(slot)
        return self._collect(slot)

    # -- the three steps ---------------------------------------------------------------
    def _allocate(self, shape: tuple[int, ...]) -> None:
        height, width = shape[:2]
        ops = self.ops
        self._sets = [BufferSet(
            host_in=ops.alloc_host((height, width, 3), "uint8"),
            dev_in=ops.alloc_device((height, width, 3), "uint8"),
            host_out=ops.alloc_host((2 * height, 2 * width, 3), "uint8"),
            host_mask=ops.alloc_host((height, width), "float32"),
            uploaded=ops.new_event(f"uploaded {index}"),
            front_done=ops.new_event(f"front_done {index}"),
            back_done=ops.new_event(f"back_done {index}"),
        ) for index in range(1 if self.buffering == "single" else 2)]
        self._shape = tuple(shape)
        self._next = 0

    def _launch_front(self, frame: CapturedFrame, bypass: bool) -> _Slot:
        """Upload ``frame`` into the next buffer set and queue the front half."""
        index = self._next
        self._next = (index + 1) % len(self._sets)
        buffers, ops, stream = self._sets[index], self.ops, self._front_stream
        if buffers.used:
            ops.host_wait(buffers.uploaded)  # host_in is read by the previous upload
        with ops.use_stream(stream):
            if buffers.used:
                ops.wait_event(stream, buffers.back_done)  # dev_in read by its back half
            denoised = self.processor.denoised(frame, bypass)
            ops.upload(denoised.image, buffers.host_in, buffers.dev_in, stream)
            ops.record(buffers.uploaded, stream)
            state = self.processor.front(denoised, buffers.dev_in, bypass=bypass,
                                         captured=frame)
            ops.record(buffers.front_done, stream)
        buffers.used = True
        return _Slot(index, state)

    def _launch_back(self, slot: _Slot) -> None:
        """Queue the back half and the downloads of ``slot`` on the back stream."""
        buffers, ops, stream = self._sets[slot.index], self.ops, self._back_stream
        mask = getattr(slot.state, "mask", None)
        with ops.use_stream(stream):
            ops.wait_event(stream, buffers.front_done)
            if mask is not None and stream is not self._front_stream:
                ops.keep_alive(mask, stream)
            slot.rendered = self.processor.render(slot.state)
            ops.download(slot.rendered.output, buffers.host_out, stream)
            if mask is not None:
                ops.download(mask[0, 0], buffers.host_mask, stream)
            ops.record(buffers.back_done, stream)

    def _collect(self, slot: _Slot) -> ProcessedFrame:
        """Wait for ``slot``'s downloads and build its record from copies."""
        buffers, ops = self._sets[slot.index], self.ops
        started = time.perf_counter()
        ops.host_wait(buffers.back_done)
        image = ops.host_array(buffers.host_out)
        mask = None
        if getattr(slot.state, "mask", None) is not None:
            mask = ops.host_array(buffers.host_mask)
        stages = getattr(slot.state, "stages_ms", None)
        if isinstance(stages, dict):
            stages["download_wait"] = (time.perf_counter() - started) * 1000.0
        return self.processor.finish(slot.rendered, image, mask)


class CudaOps:
    """:class:`DeviceOps` on a CUDA device with torch streams, events and pinned memory."""

    def __init__(self, device: Any = "cuda") -> None:
        import torch

        self._torch = torch
        self.device = torch.device(device)

    def new_stream(self) -> Any:
        return self._torch.cuda.Stream(self.device)

    def new_event(self, label: str = "") -> Any:
        """A blocking-sync event: a host waiting on it (:meth:`host_wait`) sleeps until the
        device signals, instead of spinning a CPU core the capture and output threads
        need (the default event's synchronize() busy-waits)."""
        return self._torch.cuda.Event(blocking=True)

    @contextlib.contextmanager
    def use_stream(self, stream: Any) -> Iterator[Any]:
        with self._torch.cuda.stream(stream):
            yield stream

    def record(self, event: Any, stream: Any) -> None:
        event.record(stream)

    def wait_event(self, stream: Any, event: Any) -> None:
        stream.wait_event(event)

    def host_wait(self, event: Any) -> None:
        event.synchronize()

    def _dtype(self, name: str) -> Any:
        return {"uint8": self._torch.uint8, "float32": self._torch.float32}[name]

    def alloc_host(self, shape: tuple[int, ...], dtype: str) -> Any:
        return self._torch.empty(shape, dtype=self._dtype(dtype), pin_memory=True)

    def alloc_device(self, shape: tuple[int, ...], dtype: str) -> Any:
        return self._torch.empty(shape, dtype=self._dtype(dtype), device=self.device)

    def upload(self, image: np.ndarray, host: Any, device: Any, stream: Any) -> None:
        np.copyto(host.numpy(), image)
        with self._torch.cuda.stream(stream):
            device.copy_(host, non_blocking=True)

    def download(self, source: Any, host: Any, stream: Any) -> None:
        with self._torch.cuda.stream(stream):
            host.copy_(source, non_blocking=True)

    def host_array(self, host: Any) -> np.ndarray:
        return np.array(host.numpy(), copy=True)

    def keep_alive(self, tensor: Any, stream: Any) -> None:
        tensor.record_stream(stream)


def for_processor(processor: FrameProcessor, buffering: str = "double"
                  ) -> DoubleBufferedProcessor:
    """A scheduler for an opened :class:`~localsr_cam.process.processor.FrameProcessor` whose
    engines run on CUDA (``processor.device``); a CPU processor is refused."""
    device = processor.device
    if device.type != "cuda":
        raise ConfigError("double buffering needs the cuda or tensorrt backend; the CPU "
                          "path processes frames one at a time")
    return DoubleBufferedProcessor(processor, CudaOps(device), buffering)
