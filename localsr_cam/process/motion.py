"""Whole-frame motion between two video frames, read off their row and column profiles.

The frame-difference readings of the noise (the temporal denoiser's, the estimator's
second reading) take the stillest blocks of the difference of two frames for noise
alone. When the camera pans or shakes, no block is still: they read the motion as noise
(a panned noisy photo of σ 4 read σ 6–12), the denoiser's motion test then takes moving
texture for noise and smears it over frames, and the net is told too much noise. On a
photo panned by 0.5–3 px a frame that cost up to 2 dB against the same frame taken alone
(BENCHMARKS.md, Quality, "Session 20"). With this test they read nothing on such frames.

A frame's *profiles* are its means along each column and along each row (over the
colours too): two 1-D signals that a whole-frame shift moves by the same amount, while
sensor noise averages out over 360–640 pixels (σ 4 → 0.2 levels). A change of the
profiles that the shift does not explain (:data:`RESIDUAL_RATIO`: a light's flicker
bands rolling down the frame) is not a shift. The shift each way is
where the sum of squared differences of the two profiles (means removed, so a change of
exposure does not count) is least over whole shifts up to :data:`MAX_SHIFT_PX`, refined to
a fraction of a pixel by a parabola through the three around it. On 20 photos at 640×360
with noise of σ 4 it reads shifts of 0.25, 0.5 and 1 px to ±0.05 px (up to 3 px to ±0.1)
and still frames as 0.00–0.02 px (flat, smooth frames as up to 0.2 px, where a smear
costs nothing). A person moving before a still background moves the profiles far less
than their own motion: the still background dominates them, and the blocks the readings
take lie there. About 0.1 ms a 640×360 frame (profiles 0.05, the two shifts 0.05).
"""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np

MAX_SHIFT_PX = 4
"""Whole-pixel shifts tried each way; a larger motion reads as this much (still moved)."""
RESIDUAL_RATIO = 0.6
"""A shift read off two profiles counts only when the profiles moved by it differ by at
most this share of their difference unmoved (squared, means removed). A pan's shift
explains its change (0.25 px: 0.2–0.56 of it left, 1 px: 0.01–0.1, on 14 photos with
noise of σ 4); a light's flicker bands rolling down a still scene (a 50 Hz light on a
camera set for 60) change the row profile without moving it, and read as shifts of
0.25–4 rows with 0.69–0.99 of the difference left: taken for a pan, they turned the
denoiser's averaging off and cost up to 0.8 dB (BENCHMARKS.md, Quality, "Session 21")."""
MOVED_PX = 0.25
"""A frame has moved when its profiles shifted by this many pixels or more either way.
A photo panned by 0.25 px a frame cost nothing through the readings; by 0.5 px, up to
0.5 dB (BENCHMARKS.md, Quality, "Session 20")."""


@dataclasses.dataclass(frozen=True)
class Profiles:
    """``columns``: float32 (W,) mean of each column (over rows and colours); ``rows``:
    float32 (H,) mean of each row."""

    columns: np.ndarray
    rows: np.ndarray


def profiles(image: np.ndarray) -> Profiles:
    """The profiles of an H×W or H×W×C image (uint8 or float32)."""
    height, width = image.shape[:2]
    plane = np.ascontiguousarray(image).reshape(height, -1)  # H × (W·C)
    rows = cv2.reduce(plane, 1, cv2.REDUCE_AVG, dtype=cv2.CV_32F).reshape(height)
    columns = cv2.reduce(plane, 0, cv2.REDUCE_AVG, dtype=cv2.CV_32F).reshape(width, -1)
    return Profiles(columns=columns.mean(axis=1, dtype=np.float32), rows=rows)


def profile_shift(before: np.ndarray, after: np.ndarray, max_shift: int = MAX_SHIFT_PX
                  ) -> float:
    """The shift ``s`` (pixels, to a fraction) for which ``after[x] ≈ before[x − s]``,
    1-D float32 profiles of one length; ±``max_shift`` when the best whole shift is at
    the end of the range (or beyond it), 0.0 when the profiles are too short to tell."""
    before, after = _centred(before, after)
    length = before.size
    if length <= 4 * max_shift:
        return 0.0
    target = after[max_shift:length - max_shift]
    costs = np.empty(2 * max_shift + 1, np.float64)
    for index, shift in enumerate(range(-max_shift, max_shift + 1)):
        diff = target - before[max_shift - shift:length - max_shift - shift]
        costs[index] = float(np.dot(diff, diff))
    best = int(np.argmin(costs))
    if best in (0, 2 * max_shift):
        return float(best - max_shift)
    left, centre, right = costs[best - 1], costs[best], costs[best + 1]
    curvature = left - 2.0 * centre + right
    offset = 0.5 * (left - right) / curvature if curvature > 0.0 else 0.0
    return best - max_shift + float(offset)


def residual_ratio(before: np.ndarray, after: np.ndarray, shift: float,
                   margin: int = MAX_SHIFT_PX) -> float:
    """How much of the difference of two 1-D float32 profiles (means removed, ``margin``
    values off each end) is left once ``before`` is moved by ``shift`` (linear
    interpolation): the squared difference moved over unmoved, 0 … about 1 (1.0 for
    equal profiles)."""
    before, after = _centred(before, after)
    length = before.size
    if length <= 2 * margin:
        return 1.0
    places = np.arange(length, dtype=np.float32)
    moved = np.interp(places - shift, places, before)
    left = (after - moved)[margin:length - margin]
    unmoved = (after - before)[margin:length - margin]
    total = float(np.dot(unmoved, unmoved))
    return float(np.dot(left, left)) / total if total > 0.0 else 1.0


def _centred(before: np.ndarray, after: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two 1-D profiles cut to the shorter's length, each less its mean (a change of
    exposure does not count), new arrays."""
    length = min(before.size, after.size)
    if length == 0:
        return before[:0], after[:0]
    return (before[:length] - before[:length].mean(),
            after[:length] - after[:length].mean())


def frame_shift(before: Profiles, after: Profiles) -> tuple[float, float]:
    """``(dx, dy)``: how far the frame of ``after`` moved from that of ``before``, px;
    0.0 for a way in which a shift of :data:`MOVED_PX` or more does not explain the
    profiles' change (:data:`RESIDUAL_RATIO`)."""
    shifts = []
    for old, new in ((before.columns, after.columns), (before.rows, after.rows)):
        shift = profile_shift(old, new)
        explained = abs(shift) < MOVED_PX \
            or residual_ratio(old, new, shift) <= RESIDUAL_RATIO  # (still either way)
        shifts.append(shift if explained else 0.0)
    return shifts[0], shifts[1]


class MotionTest:
    """Whether each frame of a video moved as a whole from the one before it, and by
    how much: call it on every frame (uint8 H×W×3), :meth:`reset` on a cut."""

    def __init__(self) -> None:
        self._last: Profiles | None = None
        self.shift: tuple[float, float] | None = None
        """The answer for the last frame given: ``(dx, dy)`` px when it moved by
        :data:`MOVED_PX` or more, else ``None`` (a first frame too)."""

    @property
    def moved(self) -> bool:
        """Whether the last frame given moved."""
        return self.shift is not None

    def __call__(self, image: np.ndarray) -> tuple[float, float] | None:
        """:attr:`shift` of ``image`` from the frame before it."""
        now = profiles(image)
        last, self._last, self.shift = self._last, now, None
        if last is not None and last.rows.shape == now.rows.shape \
                and last.columns.shape == now.columns.shape:
            shift = frame_shift(last, now)
            self.shift = shift if max(abs(d) for d in shift) >= MOVED_PX else None
        return self.shift

    def reset(self) -> None:
        """Forget the frames seen so far."""
        self._last, self.shift = None, None
