"""The evaluation's metrics on big images, a band of rows at a time, in bounded memory.

:func:`localsr_cam.evaluate.score_output` on an 8000×6000 image held a dozen float64
copies of it (SSIM's filtered maps, UQI's integral images): gigabytes. Here every metric
is accumulated over horizontal strips of :data:`STRIP_ROWS` rows, each read with just
the rows around it that the metric looks at (SSIM ±3 for its 7×7 window, UQI +7 for its
8×8 windows, the border band ±8 for its disc), so the result is the whole-image one (to
float rounding) while memory follows the strip. Conventions are those of
:mod:`localsr_cam.metrics`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import cv2
import numpy as np
from skimage.metrics import structural_similarity

from localsr_cam.measure import metrics

STRIP_ROWS = 128
STRIPS_ABOVE_PIXELS = 2048 * 2048
"""Images larger than this (HR pixels) are scored in strips."""


def strips(height: int, rows: int = STRIP_ROWS) -> Iterator[tuple[int, int]]:
    """``(start, end)`` row ranges covering ``0..height`` once."""
    for start in range(0, height, rows):
        yield start, min(start + rows, height)


def _psnr_from(squared_error: int, count: int) -> float | None:
    if count == 0:
        return None
    if squared_error == 0:
        return metrics.PSNR_CAP_DB
    mse = squared_error / count
    return min(10.0 * math.log10(metrics.DATA_RANGE**2 / mse), metrics.PSNR_CAP_DB)


class _Sum:
    """A running sum and count."""

    def __init__(self) -> None:
        self.total = 0.0
        self.count = 0

    def add(self, values: np.ndarray) -> None:
        self.total += float(values.sum(dtype=np.float64))
        self.count += values.size

    def mean(self) -> float | None:
        return self.total / self.count if self.count else None


def score_in_strips(hr: np.ndarray, sr: np.ndarray, fg: np.ndarray,
                    rows: int = STRIP_ROWS,
                    on_strip: Callable[[], None] | None = None) -> dict[str, float | None]:
    """The same figures as :func:`localsr_cam.evaluate.score_output` (``hr``, ``sr``:
    uint8 H×W×3; ``fg``: bool H×W), computed strip by strip. ``on_strip`` is called
    after each strip (progress)."""
    metrics._check_pair(hr, sr)
    height, width = hr.shape[:2]
    pad = (metrics.SSIM_WINDOW - 1) // 2
    radius = metrics.BOUNDARY_RADIUS_PX
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    squared, fg_squared, band_squared = 0, 0, 0
    fg_count, band_count = 0, 0
    ssim_all, ssim_fg, uqi_all = _Sum(), _Sum(), _Sum()
    for start, end in strips(height, rows):
        ref, test = hr[start:end], sr[start:end]
        error = (ref.astype(np.int32) - test.astype(np.int32)) ** 2
        squared += int(error.sum(dtype=np.int64))
        keep = fg[start:end]
        fg_squared += int(error[keep].sum(dtype=np.int64))
        fg_count += int(keep.sum()) * error.shape[2]
        band = _band_rows(fg, start, end, radius, disc)
        band_squared += int(error[band].sum(dtype=np.int64))
        band_count += int(band.sum()) * error.shape[2]
        del error
        ssim_map = _ssim_rows(hr, sr, start, end, pad)
        inner = np.zeros(keep.shape, bool)
        lo, hi = max(start, pad), min(end, height - pad)
        if hi > lo:
            inner[lo - start:hi - start, pad:width - pad] = True
            ssim_all.add(ssim_map[inner])
            ssim_fg.add(ssim_map[inner & keep])
        uqi_rows = _uqi_rows(hr, sr, start, end)
        if uqi_rows is not None:
            uqi_all.add(uqi_rows)
        if on_strip is not None:
            on_strip()
    count = height * width * hr.shape[2]
    return {
        "psnr": _psnr_from(squared, count),
        "ssim": ssim_all.mean(),
        "uqi": uqi_all.mean(),
        "psnr_fg": _psnr_from(fg_squared, fg_count),
        "ssim_fg": ssim_fg.mean(),
        "psnr_boundary": _psnr_from(band_squared, band_count),
    }


def _band_rows(fg: np.ndarray, start: int, end: int, radius: int,
               disc: np.ndarray) -> np.ndarray:
    """Rows ``start:end`` of :func:`metrics.boundary_band` of ``fg``."""
    lo, hi = max(0, start - radius), min(fg.shape[0], end + radius)
    keep = fg[lo:hi].astype(np.uint8)
    grown = cv2.dilate(keep, disc, borderType=cv2.BORDER_REPLICATE)
    shrunk = cv2.erode(keep, disc, borderType=cv2.BORDER_REPLICATE)
    return np.asarray(grown > shrunk)[start - lo:end - lo]


def _ssim_rows(hr: np.ndarray, sr: np.ndarray, start: int, end: int,
               pad: int) -> np.ndarray:
    """Rows ``start:end`` of scikit-image's full SSIM map (H×W×C), from the strip and
    ``pad`` rows around it (the filter's reach; the image's own edges are kept)."""
    hi = min(hr.shape[0], end + pad)
    lo = max(0, min(start - pad, hi - metrics.SSIM_WINDOW))  # the window needs 7 rows
    _, ssim_map = structural_similarity(hr[lo:hi], sr[lo:hi],
                                        data_range=metrics.DATA_RANGE, channel_axis=2,
                                        win_size=metrics.SSIM_WINDOW, full=True)
    return np.asarray(ssim_map)[start - lo:end - lo]


def _uqi_rows(hr: np.ndarray, sr: np.ndarray, start: int, end: int) -> np.ndarray | None:
    """UQI of the valid windows whose top row is in ``start:end`` (None if there are
    none: the last ``window - 1`` rows start no window)."""
    window = metrics.UQI_WINDOW
    last_top = hr.shape[0] - window  # the last row a window can start on
    end = min(end, last_top + 1)
    if end <= start:
        return None
    return metrics.uqi_map(hr[start:end + window - 1], sr[start:end + window - 1], window)
