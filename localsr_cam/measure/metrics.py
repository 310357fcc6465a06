"""Image quality metrics: PSNR, SSIM, UQI, their foreground / mask-border variants, and
the paper's "Algorithm 1" mean percentage increase.

All images are ``uint8`` arrays, ``H×W×3`` (BGR or RGB: the metrics treat channels alike)
or ``H×W``; a reference and a test image must have the same shape. Masks are ``H×W``:
``bool``, or ``float32`` in [0, 1] read as "foreground where ≥ 0.5".

Conventions, fixed here once:

- PSNR and SSIM are scikit-image's (``data_range=255``; SSIM with its default 7×7
  uniform window, computed per channel and averaged). PSNR is clamped at
  :data:`PSNR_CAP_DB` (100 dB): identical images would give +∞, which strict JSON cannot
  hold and which breaks means; anything above 100 dB on 8-bit data means "identical to
  within a handful of one-level errors", so all values above it read as 100.
- UQI (Wang & Bovik 2002) is ours: the SSIM formula with C1 = C2 = 0 over every 8×8
  window that fits inside the image ("valid" windows, no padding), averaged over windows
  and channels. Written as Q = C·L with C = 2σxy/(σx²+σy²) and L = 2μxμy/(μx²+μy²), each
  factor whose fraction is 0/0 counts as 1: two flat windows with equal means score 1,
  flat windows with different means score L, a flat window against a textured one 0.
- sewar 0.4.10's ``uqi`` differs from this definition: it feeds window *means*
  (``scipy.ndimage.uniform_filter``) into a formula written for window *sums*, so its
  values are not Wang–Bovik's (e.g. 0.992 where the definition gives 0.971 on a noisy
  20×20 image); it also pads by reflection and crops 4 px, which drops the last valid
  window row and column. With its filter turned back into box sums it agrees with
  :func:`uqi_map` over those windows; ``tests/measure/test_metrics.py`` checks exactly that.
- Masked SSIM averages the SSIM map over the windows whose centre lies in the mask (the
  pixel the 7×7 window is centred on, excluding the 3 px border that scikit-image also
  leaves out of its mean). So a full mask gives exactly the whole-image value, and pixels
  more than the window radius outside the mask never matter; pixels just outside it do,
  as they share windows with the foreground. Masked PSNR uses the masked pixels only.
  An empty selection gives ``None``.
- The boundary band is the binary mask dilated minus the mask eroded, both with a disc of
  radius :data:`BOUNDARY_RADIUS_PX` (8 px): the pixels within about ±8 px of the mask
  edge at the resolution evaluated. The image border is not a mask edge.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

PSNR_CAP_DB = 100.0
DATA_RANGE = 255
UQI_WINDOW = 8
SSIM_WINDOW = 7
BOUNDARY_RADIUS_PX = 8
MASK_THRESHOLD = 0.5


def _check_pair(reference: np.ndarray, test: np.ndarray) -> None:
    if reference.dtype != np.uint8 or test.dtype != np.uint8:
        raise ValueError(f"metrics need uint8 images, got {reference.dtype} and {test.dtype}")
    if reference.shape != test.shape:
        raise ValueError(f"image shapes differ: {reference.shape} and {test.shape}")
    if reference.ndim not in (2, 3):
        raise ValueError(f"images must be H×W or H×W×C, got shape {reference.shape}")


def binary_mask(mask: np.ndarray, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """``mask`` as an ``H×W`` bool array: itself if bool, else ``mask ≥ 0.5``.

    With ``shape`` (an image shape, ``(H, W, ...)``), the mask must match its ``H×W``.
    """
    if mask.ndim != 2:
        raise ValueError(f"mask must be H×W, got shape {mask.shape}")
    if shape is not None and mask.shape != tuple(shape[:2]):
        raise ValueError(f"mask shape {mask.shape} does not match image {tuple(shape[:2])}")
    if mask.dtype == np.bool_:
        return mask
    return np.asarray(mask >= MASK_THRESHOLD)


def _psnr_of(reference: np.ndarray, test: np.ndarray) -> float:
    if np.array_equal(reference, test):
        return PSNR_CAP_DB
    value = float(peak_signal_noise_ratio(reference, test, data_range=DATA_RANGE))
    return min(value, PSNR_CAP_DB)


def psnr(reference: np.ndarray, test: np.ndarray) -> float:
    """PSNR in dB over all pixels and channels, clamped at :data:`PSNR_CAP_DB`."""
    _check_pair(reference, test)
    return _psnr_of(reference, test)


def psnr_masked(reference: np.ndarray, test: np.ndarray, mask: np.ndarray) -> float | None:
    """PSNR over the pixels (all their channels) where ``mask`` holds; ``None`` if none do."""
    _check_pair(reference, test)
    keep = binary_mask(mask, reference.shape)
    if not keep.any():
        return None
    return _psnr_of(reference[keep], test[keep])


def boundary_band(mask: np.ndarray, radius: int = BOUNDARY_RADIUS_PX) -> np.ndarray:
    """The ``H×W`` bool band within ±``radius`` px of the edge of ``mask`` (≥ 0.5).

    Dilation minus erosion with a ``(2r+1)×(2r+1)`` elliptical (disc) kernel. An empty or
    full mask has no edge and gives an empty band.
    """
    keep = binary_mask(mask).astype(np.uint8)
    size = 2 * radius + 1
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
    grown = cv2.dilate(keep, disc, borderType=cv2.BORDER_REPLICATE)
    shrunk = cv2.erode(keep, disc, borderType=cv2.BORDER_REPLICATE)
    return np.asarray(grown > shrunk)


def psnr_boundary(reference: np.ndarray, test: np.ndarray, mask: np.ndarray,
                  radius: int = BOUNDARY_RADIUS_PX) -> float | None:
    """PSNR over :func:`boundary_band` of ``mask``: where pasting seams show.

    ``None`` when the band is empty (no mask edge in the image).
    """
    return psnr_masked(reference, test, boundary_band(binary_mask(mask, reference.shape),
                                                      radius))


def _ssim_full(reference: np.ndarray, test: np.ndarray) -> tuple[float, np.ndarray]:
    axis = 2 if reference.ndim == 3 else None
    value, ssim_map = structural_similarity(reference, test, data_range=DATA_RANGE,
                                            channel_axis=axis, win_size=SSIM_WINDOW,
                                            full=True)
    return float(value), np.asarray(ssim_map)


def ssim(reference: np.ndarray, test: np.ndarray) -> float:
    """Mean SSIM (scikit-image, 7×7 uniform window, per channel then averaged)."""
    _check_pair(reference, test)
    axis = 2 if reference.ndim == 3 else None
    return float(structural_similarity(reference, test, data_range=DATA_RANGE,
                                       channel_axis=axis, win_size=SSIM_WINDOW))


def _inner_mask(keep: np.ndarray) -> np.ndarray:
    """``keep`` without the border scikit-image leaves out of its SSIM mean."""
    pad = (SSIM_WINDOW - 1) // 2
    inner = np.zeros_like(keep)
    inner[pad:-pad, pad:-pad] = keep[pad:-pad, pad:-pad]
    return inner


def ssim_with_masked(reference: np.ndarray, test: np.ndarray, mask: np.ndarray
                     ) -> tuple[float, float | None]:
    """:func:`ssim`, and the mean of the SSIM map over mask pixels (3 px image border
    excluded; ``None`` if that is empty), from one SSIM pass (it is the costly metric).
    With a full mask the two are equal (scikit-image averages the same pixels)."""
    _check_pair(reference, test)
    inner = _inner_mask(binary_mask(mask, reference.shape))
    value, ssim_map = _ssim_full(reference, test)
    return value, (float(ssim_map[inner].mean()) if inner.any() else None)


def _box_sums(values: np.ndarray, window: int) -> np.ndarray:
    """Sum of every ``window×window`` block of a 2-D float64 array, via an integral image.

    Returns ``(H-w+1)×(W-w+1)``; entry ``(i, j)`` sums rows ``i..i+w-1``, cols ``j..j+w-1``.
    """
    height, width = values.shape
    integral = np.zeros((height + 1, width + 1), dtype=np.float64)
    np.cumsum(values, axis=0, out=integral[1:, 1:])
    np.cumsum(integral[1:, 1:], axis=1, out=integral[1:, 1:])
    w = window
    return integral[w:, w:] - integral[:-w, w:] - integral[w:, :-w] + integral[:-w, :-w]


def _ratio_or_one(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    out = np.ones_like(denominator)
    nonzero = denominator != 0
    np.divide(numerator, denominator, out=out, where=nonzero)
    return out


def _uqi_channel(x: np.ndarray, y: np.ndarray, window: int) -> np.ndarray:
    n = float(window * window)
    sx, sy = _box_sums(x, window), _box_sums(y, window)
    sxx, syy, sxy = _box_sums(x * x, window), _box_sums(y * y, window), _box_sums(x * y, window)
    # In sums, the N-1 (or N) normalisations of σ and μ cancel inside each fraction.
    # For uint8 data every sum is an integer below 2**53, so these are exact and a flat
    # window's variance is exactly 0 (the 0/0 test below needs no tolerance).
    contrast = _ratio_or_one(2.0 * (n * sxy - sx * sy),
                             (n * sxx - sx * sx) + (n * syy - sy * sy))
    luminance = _ratio_or_one(2.0 * sx * sy, sx * sx + sy * sy)
    return np.asarray(contrast * luminance)


def uqi_map(reference: np.ndarray, test: np.ndarray, window: int = UQI_WINDOW) -> np.ndarray:
    """UQI of every valid ``window×window`` window, per channel.

    Returns float64 ``(H-w+1)×(W-w+1)×C`` (``C`` = 1 for ``H×W`` input); entry
    ``(i, j, c)`` scores the window with top-left pixel ``(i, j)`` in channel ``c``.
    """
    _check_pair(reference, test)
    if min(reference.shape[:2]) < window:
        raise ValueError(f"UQI needs images of at least {window}×{window}, "
                         f"got {reference.shape[1]}×{reference.shape[0]}")
    ref3 = reference.reshape(*reference.shape[:2], -1)
    test3 = test.reshape(*test.shape[:2], -1)
    maps = [_uqi_channel(ref3[..., c].astype(np.float64), test3[..., c].astype(np.float64),
                         window) for c in range(ref3.shape[2])]
    return np.stack(maps, axis=-1)


def uqi(reference: np.ndarray, test: np.ndarray, window: int = UQI_WINDOW) -> float:
    """Universal Image Quality Index: mean of :func:`uqi_map` over windows and channels."""
    return float(uqi_map(reference, test, window).mean())


def percent_increase(scores: Sequence[float], baseline_scores: Sequence[float]) -> float:
    """The paper's Algorithm 1: mean over images of (score − baseline) / baseline × 100.

    ``scores[i]`` and ``baseline_scores[i]`` belong to the same image. Raises
    ``ValueError`` for empty or unequal lists and for a baseline of 0 or not finite (the
    percentage is undefined there).
    """
    if len(scores) != len(baseline_scores):
        raise ValueError(f"{len(scores)} scores but {len(baseline_scores)} baselines")
    if not scores:
        raise ValueError("no scores to compare")
    changes = []
    for score, base in zip(scores, baseline_scores, strict=True):
        if base == 0 or not math.isfinite(base):
            raise ValueError(f"baseline score {base} gives no percentage")
        changes.append((score - base) / base * 100.0)
    return float(np.mean(changes))
