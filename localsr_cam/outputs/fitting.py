"""Fitting output frames into a fixed size without stretching them.

A virtual camera or a video file has one frame size for the whole run, but the frames
may differ from it: ``--output WxH`` asks for another size than 2× the input, and the
images of a photo folder each have their own. :class:`FrameFitter` scales a frame to
fit inside the size, keeping its aspect ratio, and pads the rest black (letterbox or
pillarbox): nothing is stretched. The resize is a cheap one (area when shrinking,
bilinear when enlarging), after the 2× super-resolution.
"""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np

from localsr_cam.frames import ProcessedFrame


def fit_rect(size: tuple[int, int], into: tuple[int, int]) -> tuple[int, int, int, int]:
    """Where a ``size`` = (w, h) picture goes inside ``into`` = (W, H), aspect kept:
    ``(x, y, width, height)``, centred, at least 1×1."""
    width, height = size
    box_w, box_h = into
    scale = min(box_w / width, box_h / height)
    fit_w = min(box_w, max(1, round(width * scale)))
    fit_h = min(box_h, max(1, round(height * scale)))
    return (box_w - fit_w) // 2, (box_h - fit_h) // 2, fit_w, fit_h


class FrameFitter:
    """Makes every frame exactly ``size`` = (W, H), keeping its aspect ratio.

    :meth:`fit` returns the frame itself when it already has that size; otherwise a
    copy of the record whose ``image`` is a uint8 H×W×3 BGR buffer owned by the fitter
    and overwritten by the next call (sinks read it at once and never keep it). That
    buffer is allocated by the first frame that needs it (and again when the frame size
    changes): a run whose outputs keep each frame's own size (``dir:``) never fits one,
    and costs no canvas.
    """

    def __init__(self, size: tuple[int, int]) -> None:
        self.size = size
        self._canvas: np.ndarray | None = None
        self._rect: tuple[int, int, int, int] | None = None
        self._from: tuple[int, int] | None = None

    def fit(self, frame: ProcessedFrame) -> ProcessedFrame:
        """``frame`` itself when it has the fitter's size, else a copy of the record
        with the frame scaled into the canvas (aspect kept, black bars)."""
        image = frame.image
        frame_size = (image.shape[1], image.shape[0])
        if frame_size == self.size:
            return frame
        if frame_size != self._from:  # the first frame to fit, or a new size: black bars
            self._canvas = np.zeros((self.size[1], self.size[0], 3), np.uint8)
            self._from = frame_size
            self._rect = fit_rect(frame_size, self.size)
        assert self._rect is not None and self._canvas is not None
        x, y, width, height = self._rect
        shrinking = width * height < frame_size[0] * frame_size[1]
        interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
        target = self._canvas[y:y + height, x:x + width]
        if (width, height) == frame_size:
            target[:] = image
        else:
            target[:] = cv2.resize(image, (width, height), interpolation=interpolation)
        return dataclasses.replace(frame, image=self._canvas)
