"""Motion-adaptive temporal noise reduction of video frames, before anything else sees them.

A webcam in a dim room delivers frames with sensor noise of σ 3–10 grey levels. Where the
scene holds still the same pixels are seen again every frame, and an average over frames
removes noise that no single-frame SR can tell from texture; the SR net is then told the
lower noise level (the estimate reads the denoised frame's noise; the JPEG level it reads
off the frame as it came, since an average of MJPEG frames is off the codec's lattice)
and keeps more detail. Where something moves, the new frame is taken as it is, so
nothing is smeared behind it.

Each frame ``x`` (uint8 H×W×3) updates a float32 state ``s``. The difference ``d = x − s``
is split into its local mean (a 5×5 box) and the rest, the detail: the state takes the
local mean whole, so a change of exposure or light is followed at once, and ``k`` of the
detail. A change of exposure scales the detail too (an edge of 100 levels grows by 3 a
frame while auto exposure brightens 3 % a frame, under what the motion test tells from
noise), and an average of the last frames held it behind: so when the frame is brighter
or darker than the state by :data:`GAIN_STEP` or more (:func:`exposure_gain`, 0.12 ms),
the state is scaled to it first (on noisy photos a 30 % ramp over 8 frames had cost up
to 2.5 dB: BENCHMARKS.md, Quality, "Session 23"). ``k`` is :data:`STILL_WEIGHT` where
the local mean of the detail's square (5×5 pixels, over the colours) is what noise alone
gives, ramping to 1 at twice :data:`MOTION_RATIO` times that: a still part is an average
over about ``(2 − k)/k`` = 7 frames (the detail's noise σ ÷ 2.6), a moving one is the new
frame. The test is on a window, not a pixel: a single pixel's difference cannot tell a
texture moved by a pixel from noise, and a per-pixel test smeared a panning photo (−1 …
−3 dB where the window test gains; BENCHMARKS.md, Quality, "Session 13").

The noise's variance is read off the differences themselves: the 10th percentile of the
8×8-block means of the squared detail (the still blocks; blocks near black or white left
out), every :data:`CLEAN_READ_EVERY`-th frame, smoothed over frames, so no other
estimate is needed and the denoised frames do not feed back into it. While it reads
under :data:`MIN_SIGMA` (a clean camera, a clean synthetic clip) frames pass unchanged.
No block is still when the camera pans, shakes or zooms. A frame that moved as a whole
from the one before it (``motion``, :mod:`~localsr_cam.process.motion`'s test) gives no
reading (read there, a panned noisy photo of σ 4 read σ 6–12, the motion test took
moving texture for noise and averaged it into a smear, and the SR of a panned frame fell
up to 2 dB below the same frame's alone; a clean pan over fine texture read σ 3–5 and
was filtered; read off the overlap of the two frames moved back by whole pixels, clean
photos panned by half a pixel read σ 2.6–5.4: "Session 23"). Before the filter starts,
a camera that moves from the first frame would never be read: so a moving frame is read
against one of the last few that it moved from by whole pixels, give or take 0.1
(:class:`AlignedPast`; a pan of 0.5 or 1 px a frame gets one every 2nd frame, a shake
now and then). Once filtering, the state is moved with the frame first (the strip
that comes into view at the edge is taken as it comes, by the motion test), so a pan
keeps the average of a still scene: in low light +0.5–0.8 dB on the SR of panned frames
over not moving it (BENCHMARKS.md, Quality, "Session 20"). A zoom (a camera's auto
framing) is followed the same way. The move is cubic
(:func:`shifted_cubic`, 0.84 ms; a zoom by ``cv2.warpAffine``, 3.9 ms): the state is
moved on every frame of a pan, and bilinear's blur (0.37 ms) added up — on noisy photos
still for 8 frames, then panning 0.6–1 px a frame, cubic scored +0.07–0.18 dB more, the
worst image up to +0.26 ("Session 23").
"""

from __future__ import annotations

import logging
import math

import cv2
import numpy as np

from localsr_cam.process.motion import FrameMotion

log = logging.getLogger(__name__)

STILL_WEIGHT = 0.25
"""The share of a new frame taken where only noise differs from the state."""
MOTION_RATIO = 1.5
"""Local mean of the detail's square over what noise gives, from which the new frame
starts to count more; at twice this ratio it is taken whole."""
WINDOW = 5
"""Side of the square over which the detail's square is averaged for the motion test,
and of the local mean that is not averaged over frames, in pixels."""
DETAIL_SHARE = 1.0 - 1.0 / WINDOW ** 2
"""The share of white noise's variance left after its local mean is taken away."""
BLOCK = 8
"""Side of the blocks whose mean squared detail gives the noise's variance."""
NOISE_PERCENTILE = 10.0
"""Percentile of the block means read as noise alone (the stillest blocks)."""
CLEAN_READ_EVERY = 4
"""The noise is read on every this-many-th frame (it is smoothed over frames anyway)."""
CLIP_MARGIN = 24.0
"""Blocks whose mean colour is within this many grey levels of black or white do not
give the noise's variance."""
NOISE_EMA = 0.1
"""Weight of a frame's reading in the smoothed noise variance."""
MIN_SIGMA = 2.0
"""Noise σ (grey levels) under which frames pass unchanged (a clean camera; a clean
scene that moves everywhere reads 1–2)."""
STOP_SIGMA = 1.5
"""Once filtering, the noise σ under which it stops (below :data:`MIN_SIGMA`, so a
camera near the threshold does not switch it on and off)."""
GAIN_STEP = 0.005
"""A change of the frame's brightness over the state's (a share of it) from which the
state is first scaled to the frame's: the camera's auto exposure ramping."""
GAIN_BLOCK = 16
"""Side of the blocks whose mean values, frame over state, give the brightness ratio."""
GAIN_ROW_STEP = 4
"""Of each block's rows every this-many-th is read."""
ALIGNED_PX = 0.1
"""A frame is read against a past one it moved from by whole pixels give or take this
(on each axis): the texture moved by the rest reads as noise (by half a pixel, clean
photos read σ up to 5.4; by 0.1 px about a fifth of that)."""
ALIGNED_HISTORY = 5
"""Past frames kept while the camera moves, to find one a whole-pixel move away."""
CUBIC_A = -0.75
"""The cubic convolution's parameter (OpenCV's ``INTER_CUBIC``)."""
MAX_SIGMA = 12.0
"""The most noise σ the test assumes: a scene that moves everywhere (a camera pan) reads
as noise, and a cap keeps its motion test strict."""


class TemporalDenoiser:
    """The filter's state for one video: call it on each frame, :meth:`reset` on a cut
    (another photo, another size, a reopened camera)."""

    def __init__(self) -> None:
        self._state: np.ndarray | None = None  # float32 H×W×3 while filtering
        self._last: np.ndarray | None = None  # uint8 H×W×3, the last frame, while not
        self._noise_var: float | None = None
        self._frames = 0
        self._scratch: dict[str, np.ndarray] = {}
        self._past = AlignedPast()

    @property
    def sigma(self) -> float:
        """The smoothed noise σ in grey levels (0 before two frames were seen)."""
        return float(np.sqrt(self._noise_var)) if self._noise_var is not None else 0.0

    @property
    def active(self) -> bool:
        """Whether frames are being filtered (the noise read over :data:`MIN_SIGMA`)."""
        return self._state is not None

    def reset(self) -> None:
        """Forget the frames seen so far."""
        self._state = self._last = self._noise_var = None
        self._frames = 0
        self._past.clear()

    def __call__(self, image: np.ndarray, motion: FrameMotion | None = None,
                 repeated: bool = False) -> np.ndarray:
        """uint8 H×W×3 frame → the denoised frame, uint8 H×W×3 (a new array), or
        ``image`` itself when it passes unchanged (the first frame after a reset, a
        clean camera). ``motion``: how the frame moved as a whole from the last one (a
        pan, a shake, a zoom; ``None`` when it did not): no noise is read off a moved
        frame, and the state is moved with it first. ``repeated``: the frame
        is the last one sent again, bit for bit (:mod:`~localsr_cam.process.repeats`):
        it is not averaged in again, nor read (its difference to the last is no noise),
        and the last output is given again (a new array).

        While the noise reads under :data:`MIN_SIGMA`, the frame before every
        :data:`CLEAN_READ_EVERY`-th one is copied and that one compared with it; filtering
        costs about 1.7 ms a 640×360 frame, passing 0.36 ms on average (session 13's
        machine; BENCHMARKS.md)."""
        if repeated and (self._state is None or self._state.shape == image.shape):
            return image if self._state is None else self._rounded()
        self._frames += 1
        if self._state is not None and self._state.shape != image.shape:
            self.reset()
        if self._state is None:
            return self._pass(image, motion)
        buffers = self._buffers(self._state.shape)
        if motion is not None:
            self._align(motion, buffers)
        state = self._state
        gain = exposure_gain(image, state)
        if abs(gain - 1.0) >= GAIN_STEP:
            state *= gain
            np.minimum(state, 255.0, out=state)  # a part that clips does not brighten
        detail = np.subtract(image, state, out=buffers["detail"], dtype=np.float32)
        local_mean = _split(detail, buffers["shift"])
        squared = _mean_square(detail, buffers["squared"], buffers["product"])
        if self._frames % CLEAN_READ_EVERY == 0 and motion is None:
            self._update_noise(squared, state, two_frames=False)
        if self.sigma < STOP_SIGMA:  # the camera turned clean (more light)
            log.info("temporal denoiser off: the frames' noise reads σ %.1f", self.sigma)
            self._state, self._last = None, image.copy()
            return image
        assert self._noise_var is not None
        # at the steady state a still pixel's detail difference holds the noise and the
        # state's own error: variance σ²·2/(2 − k)
        still = self._noise_var * DETAIL_SHARE * 2.0 / (2.0 - STILL_WEIGHT)
        weight = buffers["weight"]
        cv2.blur(squared, (WINDOW, WINDOW), dst=weight, borderType=cv2.BORDER_REFLECT)
        # k = STILL + (1 − STILL)·clip((ratio − R)/R, 0, 1), ratio = local d² / still
        weight *= 1.0 / (MOTION_RATIO * still)
        weight -= 1.0
        np.clip(weight, 0.0, 1.0, out=weight)
        weight *= 1.0 - STILL_WEIGHT
        weight += STILL_WEIGHT
        state += local_mean
        # (OpenCV's per-channel ops: numpy's broadcast multiply took 3× as long)
        cv2.multiply(detail, cv2.merge([weight] * 3, dst=buffers["weight3"]), dst=detail)
        state += detail
        return self._rounded()

    def _rounded(self) -> np.ndarray:
        """The state as a uint8 frame (a new array)."""
        state = self._state
        assert state is not None
        # a one-channel view: a 3-channel convertScaleAbs took 8× as long
        height = state.shape[0]
        return cv2.convertScaleAbs(state.reshape(height, -1)).reshape(state.shape)

    def _align(self, motion: FrameMotion, buffers: dict[str, np.ndarray]) -> None:
        """Move the state as the frame moved (shifted, zoomed; cubic: the state is moved
        on every moved frame, and bilinear's blur added up over a pan), into the spare
        buffer, which it then swaps with."""
        assert self._state is not None
        if motion.zoom_x == 0.0 and motion.zoom_y == 0.0:
            moved = shifted_cubic(self._state, motion.dx, motion.dy,
                                  scratch=buffers["detail"], out=buffers["spare"])
        else:
            height, width = self._state.shape[:2]
            moved = cv2.warpAffine(self._state, motion.inverse_map(), (width, height),
                                   dst=buffers["spare"],
                                   flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP,
                                   borderMode=cv2.BORDER_REPLICATE)
        buffers["spare"], self._state = self._state, moved

    def _buffers(self, shape: tuple[int, ...]) -> dict[str, np.ndarray]:
        """Scratch arrays for frames of ``shape`` (H×W×3), kept between frames: fresh
        ones each frame cost more in page faults than the arithmetic."""
        if self._scratch.get("detail") is None or self._scratch["detail"].shape != shape:
            planes = shape[:2]
            self._scratch = {"detail": np.empty(shape, np.float32),
                             "shift": np.empty(shape, np.float32),
                             "product": np.empty(shape, np.float32),
                             "weight3": np.empty(shape, np.float32),
                             "spare": np.empty(shape, np.float32),
                             "squared": np.empty(planes, np.float32),
                             "weight": np.empty(planes, np.float32)}
        return self._scratch

    def _pass(self, image: np.ndarray, motion: FrameMotion | None) -> np.ndarray:
        """Not filtering: read the noise off this frame and the last one now and then
        — or, while the camera moves, off this frame and one of the last few that it
        moved from by whole pixels (:class:`AlignedPast`) — and start filtering (from
        this frame) once it reads :data:`MIN_SIGMA` or more."""
        last = self._last
        if (self._frames + 1) % CLEAN_READ_EVERY == 0:  # the next frame reads against it
            self._last = image.copy()
        pair: tuple[np.ndarray, np.ndarray] | None = None
        if motion is None:
            self._past.clear()
            if last is not None and last.shape == image.shape:
                pair = image, last
        else:
            pair = self._past.push(image, motion)
        if pair is None or self._frames % CLEAN_READ_EVERY:
            return image
        now, before = pair
        detail = now.astype(np.float32) - before
        _split(detail)
        self._update_noise(_mean_square(detail), before.astype(np.float32), two_frames=True)
        if self.sigma >= MIN_SIGMA:
            log.info("temporal denoiser on: the frames' noise reads σ %.1f (grey levels)",
                     self.sigma)
            self._state, self._last = image.astype(np.float32), None
            self._past.clear()
        return image

    def _update_noise(self, squared: np.ndarray, state: np.ndarray, two_frames: bool
                      ) -> None:
        """Smooth in this frame's reading of the noise variance (``squared``: H×W
        float32 mean of d² over the colours; ``state`` H×W×3 float32 it was taken
        against: the filter's state, or with ``two_frames`` the last frame as it came).
        Blocks near black or white are left out: there the noise is clipped, and dark
        backgrounds read a third of it."""
        height, width = squared.shape
        rows, cols = height // BLOCK, width // BLOCK
        if rows == 0 or cols == 0:
            reading = float(squared.mean())
        else:
            def block_means(plane: np.ndarray) -> np.ndarray:  # area resize: exact means
                return cv2.resize(plane[:rows * BLOCK, :cols * BLOCK], (cols, rows),
                                  interpolation=cv2.INTER_AREA)

            noise = block_means(squared)
            colour = block_means(state)
            unclipped = ((colour > CLIP_MARGIN) & (colour < 255 - CLIP_MARGIN)).all(axis=2)
            reading = float(np.percentile(noise[unclipped] if unclipped.any() else noise,
                                          NOISE_PERCENTILE))
        # the detail of a still pixel's d holds two frames' noise, or one and the
        # state's error (see __call__)
        reading /= DETAIL_SHARE
        reading = min(reading / 2.0 if two_frames else reading * (2.0 - STILL_WEIGHT) / 2.0,
                      MAX_SIGMA ** 2)
        if self._noise_var is None:
            self._noise_var = reading
        else:
            self._noise_var += NOISE_EMA * (reading - self._noise_var)


class AlignedPast:
    """The last few frames of a camera that keeps moving, and how far each has moved to
    reach the newest, for a noise reading without interpolation while the camera pans or
    shakes from the start (a moved frame's difference to the one before reads the
    motion as noise, and a reading off their overlap, moved back by the shift rounded to
    whole pixels, read the half pixel left over as noise: clean photos panned by half a
    pixel read σ 2.6–5.4 and turned the filter on, BENCHMARKS.md, Quality, "Session
    23"). Over a few frames the camera's path comes back near whole pixels (a pan of
    0.5 px a frame every second frame, of 1.25 every fourth); a frame that moved from a
    past one by whole pixels give or take :data:`ALIGNED_PX` is read against it."""

    def __init__(self) -> None:
        self._frames: list[tuple[np.ndarray, float, float]] = []  # uint8 H×W×3, dx, dy

    def clear(self) -> None:
        """Forget the frames kept (the camera held still, zoomed, or a cut)."""
        self._frames.clear()

    def push(self, image: np.ndarray, motion: FrameMotion
             ) -> tuple[np.ndarray, np.ndarray] | None:
        """Add ``image`` (uint8 H×W×3, copied), which moved by ``motion`` from the last
        frame pushed; ``(now, before)``: the overlap of ``image`` and the newest past
        frame it moved from by whole pixels (:data:`ALIGNED_PX`), views, or ``None``.
        A zoom clears the frames kept (a zoom is no whole-pixel move)."""
        if motion.zoom_x or motion.zoom_y or (self._frames and
                                               self._frames[-1][0].shape != image.shape):
            self._frames.clear()
            self._frames.append((image.copy(), 0.0, 0.0))
            return None
        self._frames = [(past, dx + motion.dx, dy + motion.dy)
                        for past, dx, dy in self._frames][-(ALIGNED_HISTORY - 1):]
        pair = None
        for past, dx, dy in reversed(self._frames):
            if max(abs(dx - round(dx)), abs(dy - round(dy))) <= ALIGNED_PX:
                pair = whole_pixel_overlap(image, past, round(dx), round(dy))
                break
        self._frames.append((image.copy(), 0.0, 0.0))
        return pair


def whole_pixel_overlap(image: np.ndarray, past: np.ndarray, dx: int, dy: int
                        ) -> tuple[np.ndarray, np.ndarray] | None:
    """``(now, before)``: the parts of ``image`` and ``past`` (uint8 H×W×3 each) that
    show the same place when ``image`` moved by (``dx``, ``dy``) whole pixels from
    ``past`` (``image[y, x] ≈ past[y − dy, x − dx]``), views; ``None`` when they do not
    overlap."""
    height, width = image.shape[:2]
    if abs(dx) >= width or abs(dy) >= height:
        return None
    return _staying_part(image, -dx, -dy), _staying_part(past, dx, dy)


def _staying_part(image: np.ndarray, dx: int, dy: int) -> np.ndarray:
    """The part of ``image`` (H×W×…) that stays in view when its content moves by
    (``dx``, ``dy``) whole pixels (|dx| < W, |dy| < H), a view."""
    height, width = image.shape[:2]
    return image[max(0, -dy):height + min(0, -dy), max(0, -dx):width + min(0, -dx)]


def shifted_cubic(image: np.ndarray, dx: float, dy: float, scratch: np.ndarray,
                  out: np.ndarray) -> np.ndarray:
    """``image`` (float32 H×W×C) moved by (``dx``, ``dy``) px, ``out[y, x] =
    image[y − dy, x − dx]``, its edges replicated, by OpenCV's cubic (a = −0.75): the
    whole pixels by a copy into ``scratch``, the fraction by a separable 4-tap filter
    into ``out`` (both of ``image``'s shape and dtype); ``out``. 0.84 ms a 640×360
    frame, where ``cv2.warpAffine``'s cubic took 3.9 (its bilinear 0.37)."""
    whole_x, whole_y = math.floor(-dx), math.floor(-dy)  # out[x] = image[x + whole + part]
    part_x, part_y = -dx - whole_x, -dy - whole_y
    inner = _staying_part(image, -whole_x, -whole_y)
    cv2.copyMakeBorder(inner, max(0, -whole_y), max(0, whole_y), max(0, -whole_x),
                       max(0, whole_x), cv2.BORDER_REPLICATE, dst=scratch)
    return cv2.sepFilter2D(scratch, -1, _cubic_taps(part_x), _cubic_taps(part_y), dst=out,
                           anchor=(1, 1), borderType=cv2.BORDER_REPLICATE)


def _cubic_taps(part: float) -> np.ndarray:
    """float32 (4,): the cubic convolution weights (a = −0.75, OpenCV's) of the pixels
    at −1, 0, 1, 2 from a point ``part`` (0 … 1) past the middle one."""
    def weight(distance: float) -> float:
        distance = abs(distance)
        if distance <= 1.0:
            return (CUBIC_A + 2.0) * distance ** 3 - (CUBIC_A + 3.0) * distance ** 2 + 1.0
        return CUBIC_A * (distance ** 3 - 5.0 * distance ** 2 + 8.0 * distance - 4.0)

    return np.array([weight(1.0 + part), weight(part), weight(1.0 - part),
                     weight(2.0 - part)], np.float32)


def exposure_gain(image: np.ndarray, state: np.ndarray) -> float:
    """How much brighter ``image`` (uint8 H×W×3) is than ``state`` (float32 H×W×3): the
    median over :data:`GAIN_BLOCK`-px blocks and colours of the ratio of their means
    (over every :data:`GAIN_ROW_STEP`-th row), leaving out blocks within
    :data:`CLIP_MARGIN` of black or white in either (a part that clips does not
    brighten; a ratio of two dark means is mostly noise); 1.0 when no block is left. A
    camera's exposure (gain, shutter) scales the values it sends by about one factor,
    gamma or not (a power of a product is the product of the powers); the median leaves
    out a person moving."""
    sampled_rows = GAIN_BLOCK // GAIN_ROW_STEP  # a block's rows that are read
    height = state[::GAIN_ROW_STEP].shape[0] // sampled_rows * sampled_rows
    width = state.shape[1] // GAIN_BLOCK * GAIN_BLOCK
    if not height or not width:
        return 1.0
    size = (width // GAIN_BLOCK, height // sampled_rows)
    # whole-number ratios: OpenCV's fast area path (a general one took 4× as long)
    before = cv2.resize(state[::GAIN_ROW_STEP][:height, :width], size,
                        interpolation=cv2.INTER_AREA)
    after = cv2.resize(image[::GAIN_ROW_STEP][:height, :width], size,
                       interpolation=cv2.INTER_AREA).astype(np.float32)
    usable = (np.minimum(before, after) > CLIP_MARGIN) \
        & (np.maximum(before, after) < 255.0 - CLIP_MARGIN)
    if not usable.any():
        return 1.0
    return float(np.median(after[usable] / before[usable]))


def _split(diff: np.ndarray, shift: np.ndarray | None = None) -> np.ndarray:
    """A frame difference (float32 H×W×3) → its local mean (the :data:`WINDOW` px box;
    into ``shift`` when given); ``diff`` itself becomes the rest, the detail."""
    shift = cv2.blur(diff, (WINDOW, WINDOW), dst=shift, borderType=cv2.BORDER_REFLECT)
    np.subtract(diff, shift, out=diff)
    return shift


def _mean_square(detail: np.ndarray, out: np.ndarray | None = None,
                 scratch: np.ndarray | None = None) -> np.ndarray:
    """float32 H×W×3 → H×W float32, the mean of the squares over the colours (into
    ``out``, through ``scratch`` H×W×3, when given)."""
    product = np.multiply(detail, detail, out=scratch)
    return cv2.transform(product, np.full((1, 3), 1.0 / 3.0, np.float32), dst=out)
