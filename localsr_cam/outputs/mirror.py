"""Mirrored output: a sink wrapper that flips every frame left-right.

Meeting apps show the user's own picture mirrored (like a mirror, so raising the right
hand moves the picture's right side) while the others see it unmirrored. ``--mirror``
chooses per destination: the preview window (the self view), the call (virtual camera
and files), or both.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import cv2
import numpy as np

from localsr_cam.frames import Controls, HudStats, ProcessedFrame


def wants_mirror(mirror: str, sink_name: str) -> bool:
    """Whether the sink called ``sink_name`` gets mirrored frames under ``mirror``
    (``none``, ``preview``, ``call`` or ``both``)."""
    is_preview = sink_name.startswith("preview")
    return mirror == "both" or (mirror == "preview" and is_preview) or (
        mirror == "call" and not is_preview)


class MirroredSink:
    """Passes every frame to ``sink`` flipped left-right: the output image, the input
    image, the mask and the person box (so a preview's overlay still fits).

    The flipped arrays are buffers owned by this wrapper, reused while the frame size
    stays the same; the wrapped sink only reads them during ``write``. Other attributes
    (``name``, ``path``, ``check``, ``any_size``, ...) are the wrapped sink's.
    """

    def __init__(self, sink: Any) -> None:
        self.sink = sink
        self._buffers: dict[str, np.ndarray] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sink, name)

    def open(self, size: tuple[int, int], fps: float, controls: Controls) -> None:
        self.sink.open(size, fps, controls)

    def write(self, frame: ProcessedFrame, hud: HudStats) -> None:
        self.sink.write(self.flip(frame), hud)

    def close(self) -> None:
        self.sink.close()

    def flip(self, frame: ProcessedFrame) -> ProcessedFrame:
        """``frame`` mirrored; the arrays are this wrapper's buffers."""
        source = frame.source
        width = source.image.shape[1]
        box = frame.box
        if box is not None:
            x0, y0, x1, y1 = box
            box = (width - x1, y0, width - x0, y1)
        mask = None if frame.mask is None else self._flipped("mask", frame.mask)
        return dataclasses.replace(
            frame, image=self._flipped("image", frame.image), mask=mask, box=box,
            source=dataclasses.replace(source, image=self._flipped("source", source.image)))

    def _flipped(self, key: str, array: np.ndarray) -> np.ndarray:
        buffer = self._buffers.get(key)
        if buffer is None or buffer.shape != array.shape or buffer.dtype != array.dtype:
            buffer = self._buffers[key] = np.empty_like(array)
        cv2.flip(array, 1, dst=buffer)
        return buffer
