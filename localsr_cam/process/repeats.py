"""Whether a video frame repeats the one before it, bit for bit.

Some sources send each picture twice or more: a webcam that drops to 15 fps in dim light
but keeps a 30 fps stream, a virtual camera (OBS) that sends its last picture again when
its own source is slower. A repeat carries no new exposure, so it says nothing about
the sensor's noise: read off a repeat and the picture before it, the frame difference
is zero, the noise level the SR is told falls toward "clean", and the temporal denoiser
never starts (a still noisy scene sent in pairs scored 0.2–0.3 dB *below* one frame
alone, 0.9–1.1 dB below each picture sent once; BENCHMARKS.md, Quality, "Session 22").
The readings skip repeats, and the denoiser gives its last output again.

Bit-exact only: a camera's own frames always differ by their sensor noise, and a frame
that differs anywhere is not a repeat (so neither is a duplicate an H.264 encoder
refined: a file converted to a higher frame rate decodes its duplicates changed).
About 0.02 ms a 640×360 frame (a copy, and a comparison of a sixteenth of its rows,
which tells most new frames; 0.06 ms a repeat).
"""

from __future__ import annotations

import numpy as np

SAMPLE_ROW_STEP = 16
"""Every this-many-th row is compared first; the whole frame only when they match."""


class RepeatTest:
    """Call it on every frame of a video (uint8 H×W×C), :meth:`reset` on a cut."""

    def __init__(self) -> None:
        self._last: np.ndarray | None = None
        self.repeated = False
        """The answer for the last frame given."""

    def __call__(self, image: np.ndarray) -> bool:
        """Whether ``image`` equals the frame given before it, every pixel (False for a
        first frame or a frame of another shape); a copy of it is kept for the next."""
        last = self._last
        if last is None or last.shape != image.shape or last.dtype != image.dtype:
            self.repeated = False
            last = self._last = np.empty_like(image)
        else:
            self.repeated = _equal(last, image)
        if not self.repeated:
            np.copyto(last, image)
        return self.repeated

    def reset(self) -> None:
        """Forget the frames seen so far."""
        self._last, self.repeated = None, False


def _equal(first: np.ndarray, second: np.ndarray) -> bool:
    """Whether two arrays of one shape and dtype hold the same values."""
    rows = slice(None, None, SAMPLE_ROW_STEP)
    return bool(np.array_equal(first[rows], second[rows]) and np.array_equal(first, second))
