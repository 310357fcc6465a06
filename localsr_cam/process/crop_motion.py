"""How far the person in a crop moved since an earlier frame of the same crop.

A stored SR result stands in for a frame whose SR is not computed (a level that skips
the frame, an SR that is late; :meth:`localsr_cam.process.reuse.SRReuse.stand_in`). It
used to hold only over the cells that did not change, and a person who sways by a pixel
or less a frame — everyone on a call — changes most of the cells they cover: they showed
as the plain upscale on those frames, SR and plain in turn at 15 Hz at the
``alternate`` level (the meeting room held there: someone shown plain 753 times a
minute). Moved back by how far the person moved, the stored SR holds again.

The move is one translation of the part of the crop that changed (a person before a
still background), found by Lucas–Kanade: the least-squares shift that carries the
earlier grey crop onto the new one, over the pixels of the changed cells' interior
(their cells eroded by one: the cells at the edge of the moving part hold background
too, which does not move, and pulled a sway of 0.5 px to a read of 0.3), a few
Gauss–Newton steps from none. On photos swaying 0.25–1 px a frame
(``localsr-cam eval``'s ``--sway`` motion) it reads the shift to about 0.03 px; where
the part is flat or its edges all run one way (a move that does not show in the
picture) no shift is read. About 0.2 ms for a 96×128 crop, 3 ms for 352×360 on the
2-core CPU.

Images are grey ``uint8`` h×w (the crops' :class:`~localsr_cam.process.reuse.Signature`
pictures); shifts are (dx, dy) in those pixels, the earlier picture moved by them
matching the later one.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

MAX_SHIFT_PX = 2.0
"""The largest move read (each way, crop pixels): a person moving further between two
frames blurs, and the stored SR is then no picture of them anyway."""
STEPS = 3
"""Gauss–Newton steps: after 3 a move under a pixel is read to about ±0.01 px, one of
1–2 px to about ±0.05 (the later picture's gradient stands in for the moved earlier
one's, which holds less well the further it moved)."""
MIN_PIXELS = 256
"""Fewer pixels in the moving part's interior than this (four cells) read no move."""
MIN_STRUCTURE = 0.5
"""The least eigenvalue of the moving part's structure tensor (mean squared gradient,
grey levels² a pixel) for a move to be read: below it the part is flat or its edges all
run one way, and a shift along them does not show."""


CUBIC_A = -0.75
"""The cubic convolution kernel's parameter (OpenCV's, so :func:`shifted` draws what
``cv2.warpAffine`` with ``INTER_CUBIC`` draws, but for rounding)."""


def warped(image: np.ndarray, shift: tuple[float, float]) -> np.ndarray:
    """``image`` (h×w or h×w×C, uint8 or float32) moved by ``shift`` = (dx, dy) px,
    bilinear, its edges repeated; a new array of the same shape and dtype. (OpenCV's
    bilinear warp of uint8 is about 20 times faster than its bicubic one: 0.17 vs 4 ms
    for a 704×720 SR result on the 2-core CPU.)"""
    height, width = image.shape[:2]
    matrix = np.array([[1.0, 0.0, shift[0]], [0.0, 1.0, shift[1]]], np.float32)
    return cv2.warpAffine(image, matrix, (width, height), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)


def shifted(image: np.ndarray, shift: tuple[float, float]) -> np.ndarray:
    """``image`` (h×w or h×w×C, uint8 or float32) moved by ``shift`` = (dx, dy) px,
    bicubic (a separable 4-tap filter for the fraction, then whole pixels), its edges
    repeated; a new array of the same shape and dtype. A bilinear move softens what it
    moves, by as much as half a pixel's blur, and a shift read through it came out
    0.04 px off (0.34 for 0.3)."""
    whole_x, whole_y = math.floor(shift[0]), math.floor(shift[1])
    fraction_x, fraction_y = shift[0] - whole_x, shift[1] - whole_y
    moved = cv2.sepFilter2D(image, -1, _cubic_taps(fraction_x), _cubic_taps(fraction_y),
                            anchor=(2, 2), borderType=cv2.BORDER_REPLICATE)
    height, width = image.shape[:2]
    core = moved[max(-whole_y, 0):height - max(whole_y, 0),
                 max(-whole_x, 0):width - max(whole_x, 0)]
    return cv2.copyMakeBorder(core, max(whole_y, 0), max(-whole_y, 0), max(whole_x, 0),
                              max(-whole_x, 0), cv2.BORDER_REPLICATE)


def _cubic_taps(fraction: float) -> np.ndarray:
    """float32 taps over source offsets −2 … +1 that move a signal by ``fraction``
    (0 ≤ it < 1) of a pixel: out(x) = in(x − fraction)."""
    t = 1.0 - fraction
    return np.array([_cubic(1.0 + t), _cubic(t), _cubic(1.0 - t), _cubic(2.0 - t)],
                    np.float32)


def _cubic(x: float) -> float:
    """The cubic convolution kernel (:data:`CUBIC_A`) at ``x``."""
    x, a = abs(x), CUBIC_A
    if x <= 1.0:
        return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
    if x < 2.0:
        return ((a * x - 5.0 * a) * x + 8.0 * a) * x - 4.0 * a
    return 0.0


def moving_part(changed: np.ndarray, size: tuple[int, int], cell: int) -> np.ndarray:
    """bool ⌈h/cell⌉×⌈w/cell⌉ changed cells → bool h×w (``size`` = (w, h)): the pixels
    of their interior (the changed cells whose eight neighbours changed too)."""
    interior = cv2.erode(changed.astype(np.uint8), np.ones((3, 3), np.uint8),
                         borderType=cv2.BORDER_CONSTANT, borderValue=0)
    full = np.repeat(np.repeat(interior, cell, axis=0), cell, axis=1)
    return full[:size[1], :size[0]].astype(bool)


def crop_shift(before: np.ndarray, after: np.ndarray, changed: np.ndarray,
               cell: int) -> tuple[float, float] | None:
    """The move (dx, dy) px of the part of ``before`` (grey uint8 h×w) whose cells
    changed (``changed``: bool cell map) onto ``after`` (the same size), or ``None``
    when there is no such part to read it from (too small, flat, one-directional) or it
    moved further than :data:`MAX_SHIFT_PX`."""
    height, width = after.shape
    part = moving_part(changed, (width, height), cell)
    if int(part.sum()) < MIN_PIXELS:
        return None
    rows, cols = np.flatnonzero(part.any(axis=1)), np.flatnonzero(part.any(axis=0))
    # the moving part's bounding box grown by the largest move: all a step reads
    margin = int(np.ceil(MAX_SHIFT_PX)) + 2
    y0, y1 = max(0, int(rows[0]) - margin), min(height, int(rows[-1]) + 1 + margin)
    x0, x1 = max(0, int(cols[0]) - margin), min(width, int(cols[-1]) + 1 + margin)
    source = before[y0:y1, x0:x1].astype(np.float32)
    target = after[y0:y1, x0:x1].astype(np.float32)
    weight = part[y0:y1, x0:x1].astype(np.float32)
    # the gradient of the later picture stands for the moved earlier one's (a move of
    # a pixel or less): computed once, the steps only re-warp
    gx = (cv2.Sobel(target, cv2.CV_32F, 1, 0, ksize=3) * weight).ravel()
    gy = (cv2.Sobel(target, cv2.CV_32F, 0, 1, ksize=3) * weight).ravel()
    sxx, sxy, syy = float(gx @ gx), float(gx @ gy), float(gy @ gy)  # Sobel's 8× in all
    count = 64.0 * float(weight.sum())
    trace, det = sxx + syy, sxx * syy - sxy * sxy
    least = 0.5 * (trace - math.sqrt(max(trace * trace - 4.0 * det, 0.0))) / count
    if least < MIN_STRUCTURE:
        return None
    shift = np.zeros(2)
    for _ in range(STEPS):
        residual = cv2.subtract(shifted(source, (shift[0], shift[1])), target).ravel()
        bx, by = float(gx @ residual), float(gy @ residual)
        # moving by d changes the moved picture by −∇·d: solve ∇·δ = residual (with
        # Sobel's gradient 8× the true one, δ comes out as it should: 8·8 / 8·8)
        shift += np.array([syy * bx - sxy * by, sxx * by - sxy * bx]) * (8.0 / det)
        if np.abs(shift).max() > MAX_SHIFT_PX:
            return None
    return float(shift[0]), float(shift[1])
