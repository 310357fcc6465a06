"""Picture geometry shared by the sources and the background: cover, crop, fit.

A bottom layer (beside ``frames`` and ``paths``), so that capture (video and camera
frames of another shape) and process (the ``--background image:`` picture) make a
picture one size the same way. Images are uint8 H×W×C numpy arrays; sizes are
(width, height).
"""

from __future__ import annotations

import numpy as np


def fit_size(image: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    """``image`` made exactly ``size`` = (width, height) without stretching it: scaled
    to cover the size and centre-cropped (``None``, or the size it has: ``image``
    itself, else a new C-contiguous array). A 640×360 video asked for 320×320 loses its
    sides, not its shape."""
    if size is None or (image.shape[1], image.shape[0]) == size:
        return image
    x, y, width, height = cover_crop((image.shape[1], image.shape[0]), size)
    return np.ascontiguousarray(resize(image[y:y + height, x:x + width], size))


def fit_inside(image: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    """``image`` scaled to fit inside ``size`` = (width, height), aspect ratio kept
    (``None``: unchanged). Returns a new array, or ``image`` when it already fits
    exactly on one side."""
    if size is None:
        return image
    height, width = image.shape[:2]
    scale = min(size[0] / width, size[1] / height)
    target = (max(1, round(width * scale)), max(1, round(height * scale)))
    return resize(image, target)


def cover_crop(size: tuple[int, int], into: tuple[int, int]) -> tuple[int, int, int, int]:
    """The centred part ``(x, y, width, height)`` of a ``size`` = (w, h) picture that
    has the aspect ratio of ``into`` = (W, H): what is left when the picture is scaled
    to cover ``into`` and the overhang cut off. At least 1×1. ``x`` and ``y`` are
    multiples of :data:`GRID` (off centre by at most 7 px): a camera's MJPEG frame cut
    to another aspect at its own width or height keeps its 8×8 blocks at the top-left,
    where the degradation estimator reads the JPEG level."""
    width, height = size
    crop_w = max(1, min(width, round(height * into[0] / into[1])))
    crop_h = max(1, min(height, round(width * into[1] / into[0])))
    return _on_grid((width - crop_w) // 2), _on_grid((height - crop_h) // 2), crop_w, crop_h


GRID = 8
"""The JPEG block size: crops start on it."""


def _on_grid(offset: int) -> int:
    return offset - offset % GRID


def resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``image`` resized to exactly ``size`` (area when shrinking, bilinear when
    enlarging; ``image`` itself when it has that size already); the caller keeps the
    aspect ratio."""
    if (image.shape[1], image.shape[0]) == size:
        return image
    import cv2

    shrinking = size[0] * size[1] < image.shape[0] * image.shape[1]
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    return cv2.resize(image, size, interpolation=interpolation)
