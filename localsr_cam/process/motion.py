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
profiles that the motion does not explain (:data:`RESIDUAL_RATIO`: a light's flicker
bands rolling down the frame) is not motion. The shift each way is where the sum of
squared differences of the two profiles (means removed and the second scaled to the
first's power, so a change of exposure does not count) is least over whole shifts up to
:data:`MAX_SHIFT_PX`, refined to a fraction of a pixel by a parabola through the three
around it. On 20 photos at 640×360 with noise of σ 4 it reads shifts of 0.25, 0.5 and
1 px to ±0.05 px (up to 3 px to ±0.1) and still frames as 0.00–0.02 px (flat, smooth
frames as up to 0.2 px, where a smear costs nothing). A person moving before a still
background moves the profiles far less than their own motion: the still background
dominates them, and the blocks the readings take lie there.

A camera's auto framing (a digital zoom that follows the people) moves no part of the
frame alike: its middle stays, its edges move by up to 3 px a frame at 1 % a frame. The
best whole shift is then about none, and the zoom had read as more noise (on noisy
photos 1 % a frame scored under the frame alone: BENCHMARKS.md, Quality, "Session 23"). So the
shift is refined, with a zoom about the profile's middle, by a few Gauss–Newton steps
(:func:`fit_zoom`). On 14 photos of 150–384 px a side with noise of σ 4 it reads zooms of
0.3, 1 and 2 % a frame to a median error of 0.02, 0.04 and 0.09 % (each way) and still
frames as still; where a zoom explains too little more than a shift
(:data:`ZOOM_BETTER`: a smooth or short profile, a small zoom), that way reads as a
shift or as still (9 of 28 ways at 0.3 %, 3 at 1 % and at 2 %). A smooth bright disc in
the middle of a dark frame (a retina photo) widens under a zoom much as it brightens
under a gain: before the profiles' power was evened out, an auto exposure ramp of 3 % a
frame read there as a zoom of −0.35 % every frame, and as the denoiser reads nothing off
a moved frame it never started (−1.9 dB); now such a zoom goes unseen instead. About
0.3 ms a 640×360 frame (profiles 0.05; each way the shift 0.02, the fit 0.05, two
residuals 0.04).
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
ZOOM_FIT_STEPS = 4
"""Gauss–Newton steps, at most, that refine a profile's shift into a shift and a zoom."""
ZOOM_BETTER = 0.6
"""A zoom counts only where the shift and zoom fitted leave at most this share of the
profiles' difference that the shift alone leaves. A person swaying in the middle of a
portrait moves the profiles too, which a shift explains in part, and a zoom fitted as
well explained 0.43–1.0 of what the shift left (all but 2 of 63 ways over 0.6); a true
zoom of 1 % a frame 0.10–0.92 (66 of 74 under 0.6), on 14 photos in low light. A zoom
read into a sway warped the still background with it."""
CONVERGED_PX = 0.01
"""The fit stops once a step moves no part of the profile by more than this, px."""
MAX_ZOOM = 0.05
"""The most zoom a frame (a share of the size) the fit may find; past it, or with the
shift past :data:`MAX_SHIFT_PX`, the fit has strayed and the shift stands alone."""


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


def fit_zoom(before: np.ndarray, after: np.ndarray, shift: float,
             steps: int = ZOOM_FIT_STEPS, margin: int = MAX_SHIFT_PX) -> tuple[float, float]:
    """``(shift, zoom)`` for which ``after[x] ≈ before[x − shift − zoom·(x − c)]``, ``c``
    the profiles' middle, refined from a whole-frame ``shift`` (:func:`profile_shift`) by
    Gauss–Newton steps on 1-D float32 profiles (means removed, ``margin`` values off each
    end); ``(shift, 0.0)`` where the fit fails or strays past :data:`MAX_ZOOM`."""
    before, after = _centred(before, after)
    length = before.size
    if length <= 4 * margin:
        return shift, 0.0
    places = np.arange(length, dtype=np.float64)
    offsets = places[margin:length - margin] - 0.5 * (length - 1)
    inner = places[margin:length - margin]
    slope = np.gradient(before.astype(np.float64))
    target = after[margin:length - margin].astype(np.float64)
    fitted, zoom = shift, 0.0
    for _ in range(steps):
        sources = inner - fitted - zoom * offsets
        left = target - np.interp(sources, places, before)
        # left ≈ −slope·(Δshift + Δzoom·offset): least squares in (Δshift, Δzoom)
        gradient = np.interp(sources, places, slope)
        weighted = gradient * offsets
        g_g, g_w, w_w = gradient @ gradient, gradient @ weighted, weighted @ weighted
        g_left, w_left = gradient @ left, weighted @ left
        determinant = g_g * w_w - g_w * g_w
        if not determinant > 1e-9 * g_g * w_w:  # a flat profile (NaN too)
            return shift, 0.0
        step_shift = (w_w * g_left - g_w * w_left) / determinant
        step_zoom = (g_g * w_left - g_w * g_left) / determinant
        fitted, zoom = fitted - step_shift, zoom - step_zoom
        if not (abs(fitted) <= MAX_SHIFT_PX and abs(zoom) <= MAX_ZOOM):
            return shift, 0.0
        if abs(step_shift) + abs(step_zoom) * offsets[-1] < CONVERGED_PX:
            break
    return float(fitted), float(zoom)


def residual_ratio(before: np.ndarray, after: np.ndarray, shift: float, zoom: float = 0.0,
                   margin: int = MAX_SHIFT_PX) -> float:
    """How much of the difference of two 1-D float32 profiles (means removed, ``margin``
    values off each end) is left once ``before`` is moved by ``shift`` and zoomed by
    ``zoom`` about its middle (:func:`fit_zoom`; linear interpolation): the squared
    difference moved over unmoved, 0 … about 1 (1.0 for equal profiles)."""
    before, after = _centred(before, after)
    length = before.size
    if length <= 2 * margin:
        return 1.0
    places = np.arange(length, dtype=np.float32)
    sources = places - shift - zoom * (places - 0.5 * (length - 1))
    moved = np.interp(sources, places, before)
    left = (after - moved)[margin:length - margin]
    unmoved = (after - before)[margin:length - margin]
    total = float(np.dot(unmoved, unmoved))
    return float(np.dot(left, left)) / total if total > 0.0 else 1.0


def _centred(before: np.ndarray, after: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two 1-D profiles cut to the shorter's length, each less its mean, and ``after``
    scaled to ``before``'s root mean square: a change of exposure (an offset, a gain)
    does not count. New arrays."""
    length = min(before.size, after.size)
    if length == 0:
        return before[:0], after[:0]
    before = before[:length] - before[:length].mean()
    after = after[:length] - after[:length].mean()
    power = float(np.dot(after, after))
    if power > 0.0:
        after *= np.float32(np.sqrt(float(np.dot(before, before)) / power))
    return before, after


@dataclasses.dataclass(frozen=True)
class FrameMotion:
    """How a frame of ``width`` × ``height`` px moved as a whole from the one before:
    ``after(x, y) ≈ before(x − dx − zoom_x·(x − cx), y − dy − zoom_y·(y − cy))``, with
    ``(cx, cy)`` the frame's middle; a shift (px) and a zoom (a share: +0.01 is 1 % a
    frame larger) each way."""

    dx: float
    dy: float
    zoom_x: float
    zoom_y: float
    width: int
    height: int

    @property
    def largest_px(self) -> float:
        """The farthest any pixel moved either way, px (at the frame's edge for a zoom)."""
        return max(_reach(self.dx, self.zoom_x, self.width),
                   _reach(self.dy, self.zoom_y, self.height))

    def inverse_map(self) -> np.ndarray:
        """float32 2×3: where each pixel of the new frame was in the old, for
        ``cv2.warpAffine(..., flags=... | cv2.WARP_INVERSE_MAP)``."""
        centre_x, centre_y = 0.5 * (self.width - 1), 0.5 * (self.height - 1)
        return np.array([[1.0 - self.zoom_x, 0.0, self.zoom_x * centre_x - self.dx],
                         [0.0, 1.0 - self.zoom_y, self.zoom_y * centre_y - self.dy]],
                        np.float32)


def _reach(shift: float, zoom: float, length: int) -> float:
    """How far the farthest of ``length`` pixels moves under ``shift`` and ``zoom``
    about their middle, px."""
    return abs(shift) + abs(zoom) * 0.5 * (length - 1)


def axis_motion(before: np.ndarray, after: np.ndarray) -> tuple[float, float]:
    """``(shift, zoom)`` of 1-D float32 profiles: :func:`profile_shift`'s shift, or
    :func:`fit_zoom`'s shift and zoom where they leave at most :data:`ZOOM_BETTER` of
    what the shift alone leaves (at the end of the shift range no zoom is fitted);
    ``(0.0, 0.0)`` where a motion of :data:`MOVED_PX` or more does not explain the
    profiles' change (:data:`RESIDUAL_RATIO`)."""
    shift, zoom = profile_shift(before, after), 0.0
    left = residual_ratio(before, after, shift)
    if abs(shift) < MAX_SHIFT_PX:
        fitted, fitted_zoom = fit_zoom(before, after, shift)
        fitted_left = residual_ratio(before, after, fitted, fitted_zoom)
        if fitted_left <= ZOOM_BETTER * left:
            shift, zoom, left = fitted, fitted_zoom, fitted_left
    if _reach(shift, zoom, min(before.size, after.size)) < MOVED_PX \
            or left <= RESIDUAL_RATIO:
        return shift, zoom  # (still either way when small)
    return 0.0, 0.0


def frame_motion(before: Profiles, after: Profiles) -> FrameMotion:
    """How the frame of ``after`` moved from that of ``before`` (:func:`axis_motion`
    each way)."""
    dx, zoom_x = axis_motion(before.columns, after.columns)
    dy, zoom_y = axis_motion(before.rows, after.rows)
    return FrameMotion(dx, dy, zoom_x, zoom_y, width=after.columns.size,
                       height=after.rows.size)


class MotionTest:
    """Whether each frame of a video moved as a whole from the one before it, and how:
    call it on every frame (uint8 H×W×3), :meth:`reset` on a cut."""

    def __init__(self) -> None:
        self._last: Profiles | None = None
        self.motion: FrameMotion | None = None
        """The answer for the last frame given when some pixel moved by
        :data:`MOVED_PX` or more (:attr:`FrameMotion.largest_px`), else ``None`` (a
        first frame too)."""

    @property
    def moved(self) -> bool:
        """Whether the last frame given moved."""
        return self.motion is not None

    def __call__(self, image: np.ndarray) -> FrameMotion | None:
        """:attr:`motion` of ``image`` from the frame before it."""
        now = profiles(image)
        last, self._last, self.motion = self._last, now, None
        if last is not None and last.rows.shape == now.rows.shape \
                and last.columns.shape == now.columns.shape:
            motion = frame_motion(last, now)
            self.motion = motion if motion.largest_px >= MOVED_PX else None
        return self.motion

    def reset(self) -> None:
        """Forget the frames seen so far."""
        self._last, self.motion = None, None
