"""Skip work that would not change the output: the cheap change test and what it guards.

A frame, or a person box's crop, is "unchanged" when its thumbnail (grey, 8×8-pixel area
means) differs from the one seen when the work was last done by less than
``threshold`` grey levels on average. Averaging 64 pixels takes sensor noise (σ ≈ 2–3
levels on a webcam) down to a fraction of a level, while a person moving by one pixel
changes a textured crop by several levels. Costs about 0.1 ms for a 640×360 frame.

- :class:`MaskReuse`: the last soft mask and the thumbnail of the frame it came from;
  the segmenter is skipped on a still frame, or on the frames a quality level skips.
- :class:`SRReuse`: the last SR result of each box and its crop's thumbnail; SR is
  skipped when the same box holds an unchanged crop, or on the frames a quality level
  skips (then reused only where the box did not move).

Both hold references to tensors the processor made and no longer changes; they are
replaced, never written into.
"""

from __future__ import annotations

import numpy as np
import torch

THUMB_CELL = 8
"""Thumbnail cell side in pixels."""
STILL_THRESHOLD = 1.0
"""Mean absolute thumbnail difference (grey levels) below which nothing changed."""

Box = tuple[int, int, int, int]


def thumbnail(image: torch.Tensor | np.ndarray, cell: int = THUMB_CELL) -> np.ndarray:
    """uint8 H×W×3 BGR (CPU; a crop view is fine) → float32 grey ⌈H/cell⌉×⌈W/cell⌉."""
    import cv2

    array = image.numpy() if isinstance(image, torch.Tensor) else image
    height, width = array.shape[:2]
    size = (max(1, -(-width // cell)), max(1, -(-height // cell)))
    small = cv2.resize(array, size, interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(small, cv2.COLOR_BGR2GRAY).astype(np.float32)


def changed(before: np.ndarray | None, after: np.ndarray,
            threshold: float = STILL_THRESHOLD) -> bool:
    """Whether two thumbnails differ by ``threshold`` grey levels or more on average."""
    if before is None or before.shape != after.shape:
        return True
    return float(np.abs(after - before).mean()) >= threshold


class MaskReuse:
    """The last mask the segmenter produced, and when it may stand in for a new one."""

    def __init__(self, threshold: float = STILL_THRESHOLD) -> None:
        self.threshold = threshold
        self.mask: torch.Tensor | None = None
        self._thumb: np.ndarray | None = None
        self.skipped = 0

    def reusable(self, thumb: np.ndarray | None, skip_by_level: bool) -> torch.Tensor | None:
        """The stored mask when the frame (``thumb``; ``None`` = not tested) is still or
        the level skips this frame's segmentation; else ``None`` (segment it)."""
        if self.mask is None:
            return None
        if skip_by_level or (thumb is not None
                             and not changed(self._thumb, thumb, self.threshold)):
            self.skipped += 1
            return self.mask
        return None

    def store(self, mask: torch.Tensor, thumb: np.ndarray | None) -> None:
        self.mask, self._thumb = mask, thumb

    def reset(self) -> None:
        self.mask, self._thumb = None, None


class SRReuse:
    """The last SR result (uint8 2h×2w×3 BGR) of each box seen lately, and when it may be
    reused: one entry per box (several people each keep theirs), at most ``capacity``,
    the oldest stored dropped first."""

    def __init__(self, threshold: float = STILL_THRESHOLD, capacity: int = 8) -> None:
        self.threshold = threshold
        self.capacity = capacity
        self._entries: dict[Box, tuple[torch.Tensor, np.ndarray | None]] = {}
        self.skipped = 0

    def reusable(self, box: Box, thumb: np.ndarray | None, skip_by_level: bool
                 ) -> torch.Tensor | None:
        """The stored result for ``box`` when its crop is unchanged (``thumb``; ``None``
        = not tested), or when the level skips SR on this frame and the box did not
        move; else ``None``."""
        entry = self._entries.get(box)
        if entry is None:
            return None
        result, stored_thumb = entry
        if skip_by_level or (thumb is not None
                             and not changed(stored_thumb, thumb, self.threshold)):
            self.skipped += 1
            return result
        return None

    def store(self, box: Box, result: torch.Tensor, thumb: np.ndarray | None) -> None:
        self._entries.pop(box, None)  # re-inserted as the newest
        self._entries[box] = (result, thumb)
        while len(self._entries) > self.capacity:
            del self._entries[next(iter(self._entries))]

    def reset(self) -> None:
        self._entries.clear()
