"""An SR call cut into row bands, so that the thread waiting for it can do part of it.

In a live run on the CPU each network runs on one thread: the person box's SR begins on
the background worker before segmentation, and the frame thread, once its own steps are
done, used to sit idle until the SR was — on a 2-core machine a core idle for 10–20 ms a
frame while the SR made the frame late. A :class:`SharedJob` is the SR of a crop as two
bands of rows, each with :data:`~localsr_cam.process.reuse.SR_CONTEXT_PX` rows of real
context on the inner side, so that each band's SR is exactly the whole crop's over its
rows (the nets' receptive field is smaller; a test checks it bit for bit). The worker
runs the bands from the top; a thread that waits for the result calls :meth:`help`
and runs the last band no one has begun. The sample's box (352×360, int8, one thread
each): 28 ms whole, 14 ms a band, both bands at once on two threads 17–20 ms
(BENCHMARKS.md, "Session 25").

Thread use: the worker calls the job; any one other thread may call :meth:`help`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import torch

from localsr_cam.process.reuse import SR_CONTEXT_PX

SHARE_MIN_ROWS = 128
"""Crops with fewer input rows run whole: two bands would each carry their context for
little work (the margin is 2 × :data:`~localsr_cam.process.reuse.SR_CONTEXT_PX` rows)."""

Band = tuple[int, int, int, int]
"""One band of a crop: ``(first, last, top, bottom)`` — the input rows ``first:last``
that its SR sees, and the rows ``top:bottom`` of the crop that it contributes."""


def bands(rows: int, context: int = SR_CONTEXT_PX) -> list[Band]:
    """The two bands of a crop ``rows`` high, split at a multiple of ``context`` near
    the middle (so a band's offset keeps the crop's 8×8 grid), each seeing ``context``
    rows past the split; one band (the whole crop) under :data:`SHARE_MIN_ROWS`."""
    if rows < SHARE_MIN_ROWS:
        return [(0, rows, 0, rows)]
    split = round(rows / 2 / context) * context
    return [(0, split + context, 0, split), (split - context, rows, split, rows)]


class SharedJob:
    """The SR of a crop as row bands (:func:`bands`): ``run(first, last)`` is the SR of
    input rows ``first:last`` → uint8 2(last−first)×2w×3 BGR; calling the job returns the
    whole crop's, uint8 2h×2w×3 BGR (see the module docstring)."""

    def __init__(self, run: Callable[[int, int], torch.Tensor], rows: int) -> None:
        self._run = run
        self.bands = bands(rows)
        self._results: list[torch.Tensor | None] = [None] * len(self.bands)
        self._error: BaseException | None = None
        self._claimed = [False] * len(self.bands)
        self._finished = 0
        self._changed = threading.Condition()
        self.helped = 0  # bands run by a helping thread
        self.band_seconds: float | None = None  # the last band's run time

    def __call__(self) -> torch.Tensor:
        """Run the bands no one has begun, from the top; wait for those a helper took;
        the whole result. A helper's error is raised here too."""
        while (index := self._claim(from_top=True)) is not None:
            self._run_band(index)
        with self._changed:
            self._changed.wait_for(lambda: self._finished == len(self.bands))
            if self._error is not None:
                raise self._error
        done = [result for result in self._results if result is not None]
        return torch.cat([result[2 * (top - first):2 * (bottom - first)]
                          for result, (first, _, top, bottom)
                          in zip(done, self.bands, strict=True)])

    def help(self) -> bool:
        """Run the last band no one has begun, if any (True when one was run here)."""
        index = self._claim(from_top=False)
        if index is None:
            return False
        self._run_band(index)
        self.helped += 1
        return True

    @property
    def open_bands(self) -> int:
        """Bands no thread has begun yet."""
        with self._changed:
            return self._claimed.count(False)

    def _claim(self, from_top: bool) -> int | None:
        with self._changed:
            order = range(len(self.bands)) if from_top else reversed(range(len(self.bands)))
            for index in order:
                if not self._claimed[index]:
                    self._claimed[index] = True
                    return index
        return None

    def _run_band(self, index: int) -> None:
        first, last, _, _ = self.bands[index]
        began = time.perf_counter()
        try:
            result: torch.Tensor | None = self._run(first, last)
        except BaseException as error:  # handed to the caller of the job
            result = None
            with self._changed:
                self._error = error
        seconds = time.perf_counter() - began
        with self._changed:
            self._results[index] = result
            self._finished += 1
            self.band_seconds = seconds
            self._changed.notify_all()
