"""The records that travel between the pipeline's threads.

Frames at the edges are ``uint8 H×W×3 BGR`` numpy arrays (OpenCV's layout); masks are
``float32 H×W`` in [0, 1]. A record is handed from one thread to the next through a
:class:`~localsr_cam.capture.sources.LatestSlot` and never changed after that: the receiver owns it.
"""

from __future__ import annotations

import dataclasses
import threading

import numpy as np


@dataclasses.dataclass(frozen=True)
class CapturedFrame:
    """One frame as a source delivered it.

    ``image``: uint8 H×W×3 BGR, C-contiguous. ``index``: 0-based count of frames the
    source has delivered. ``timestamp``: ``time.perf_counter()`` when it was read, the
    start of its end-to-end latency. ``read_ms``: how long the read took. ``name``: the
    file it came from when each frame is a file (an image of a folder), else ``""``.
    ``new_scene``: the frame is unrelated to the one before (another photo), so the
    processor forgets its temporal state (the smoothed mask) first.
    """

    image: np.ndarray
    index: int
    timestamp: float
    read_ms: float = 0.0
    name: str = ""
    new_scene: bool = False


@dataclasses.dataclass(frozen=True)
class ProcessedFrame:
    """One frame after the processor.

    ``image``: uint8 2H×2W×3 BGR, the output. ``source``: the captured frame it came from.
    ``mask``: float32 H×W soft person mask at input resolution, or ``None`` when no
    segmenter ran. ``boxes``: the boxes ``(x0, y0, x1, y1)`` in input pixels that were
    super-resolved (one per person or group of people); ``box``: their bounding box, or
    ``None``. ``stages_ms``: time per processor stage for this frame. ``fallback``: True
    when an engine failed and the frame is the plain upscale. ``people``: how many
    people were enhanced (``None`` where no mask was made).
    ``level``: the quality level it was processed at (``full``, ``head``, ...). ``sr``:
    ``fresh`` (SR ran on it), ``partial`` (SR ran on the part of the crop around its
    changed cells, the last result stood in for the rest), ``reused`` (the last SR result
    stood in: no cell of the crop changed; or the level skips SR on this frame, and it
    stood in over the cells that did not change, the plain upscale over the rest),
    ``late`` (likewise, because this frame's SR, or an earlier one still running, missed
    the deadline) or ``none`` (no SR shown: none run, or every cell changed since the
    last one).
    """

    image: np.ndarray
    source: CapturedFrame
    mask: np.ndarray | None = None
    box: tuple[int, int, int, int] | None = None
    stages_ms: dict[str, float] = dataclasses.field(default_factory=dict)
    fallback: bool = False
    level: str = "full"
    sr: str = "none"
    boxes: tuple[tuple[int, int, int, int], ...] = ()
    people: int | None = None


@dataclasses.dataclass
class HudStats:
    """Figures a preview window shows: measured output fps, p50 latency, backend name,
    the process's CPU use (% of one core, ``nan`` until measured), the quality level
    of the last frame and the people enhanced in it (``None``: no mask is made)."""

    fps: float = 0.0
    latency_ms: float = 0.0
    backend: str = ""
    cpu_percent: float = float("nan")
    level: str = ""
    people: int | None = None


class Controls:
    """Switches shared between the user-facing sinks and the pipeline.

    ``stop`` is the pipeline's single stop event: any thread may set it (a preview window's
    q/Esc, Ctrl-C, a frame limit). ``bypass`` makes the processor output the plain upscale.
    """

    def __init__(self) -> None:
        self.stop = threading.Event()
        self._bypass = threading.Event()

    @property
    def bypass(self) -> bool:
        return self._bypass.is_set()

    def toggle_bypass(self) -> None:
        if self._bypass.is_set():
            self._bypass.clear()
        else:
            self._bypass.set()
