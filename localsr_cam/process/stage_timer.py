"""Per-stage wall (CPU) or device (CUDA) times of one frame, in milliseconds."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

import torch


class StageTimer:
    """Context-manager factory timing stages into a dict of milliseconds.

    On the CPU a stage's time is the wall time of its block. On CUDA the block only
    queues kernels, so its wall time would be the launch cost: the timer records a pair
    of CUDA timing events around it on the current stream instead, and :meth:`resolve`
    (called once the frame's work is known to be done, after its download) adds their
    elapsed device time. Events are made per stage and frame, owned by the timer.
    """

    def __init__(self, into: dict[str, float], device: torch.device) -> None:
        self.into = into
        self.cuda = device.type == "cuda"
        self._pending: list[tuple[str, Any, Any]] = []

    @contextlib.contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        if self.cuda:
            start, end = (torch.cuda.Event(enable_timing=True) for _ in range(2))
            start.record()
            try:
                yield
            finally:
                end.record()
                self._pending.append((stage, start, end))
            return
        began = time.perf_counter()
        try:
            yield
        finally:
            self.add(stage, (time.perf_counter() - began) * 1000.0)

    @contextlib.contextmanager
    def cpu(self, stage: str) -> Iterator[None]:
        """Time a host block in this thread's CPU time (not wall time) into ``stage``:
        for work that runs beside other threads, where wall time would also count the
        time they had the core."""
        began = time.thread_time()
        try:
            yield
        finally:
            self.add(stage, (time.thread_time() - began) * 1000.0)

    def resolve(self) -> None:
        """Add the device times of the CUDA stages (waits for their end events, which
        have passed once the frame was downloaded)."""
        pending, self._pending = self._pending, []
        for stage, start, end in pending:
            end.synchronize()
            self.add(stage, float(start.elapsed_time(end)))

    def add(self, stage: str, ms: float) -> None:
        """Add ``ms`` to ``stage`` (a time measured elsewhere, e.g. on a worker thread)."""
        self.into[stage] = self.into.get(stage, 0.0) + ms
