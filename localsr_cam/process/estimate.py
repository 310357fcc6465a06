"""A cheap per-frame estimate of how degraded an LR frame is: noise, JPEG, blur.

The super-resolution net is told these levels (``levels``, N×K float32, K =
:data:`NUM_LEVELS`) so that it can denoise and deblock a lossy frame yet keep real texture
on a clean one. The same function makes the levels in training (on the degraded LR
patch) and at run time (on the whole LR frame, smoothed over time by
:class:`LevelSmoother`), so the net learns to read *estimates*, errors included.

Noise and blur look at the green channel only (the luma's largest part; no colour
conversion), as int16; the JPEG level at BT.601 luma:

- ``noise``: σ/255 of white noise, from the 3×3 Laplacian-of-Laplacian kernel
  ``[[1,-2,1],[-2,4,-2],[1,-2,1]]`` (Immerkær 1996; it cancels planes and ramps, its
  response to noise of std σ has std 6σ). Texture and edges are the large responses, so
  |response| is averaged over small blocks (7×8 pixels) and the flattest of them (the
  2nd percentile of the block means) is taken to see noise only, scaled to σ; divided
  by 10 for the net (σ 10/255 → 1.0). Blocks of 14×16 and their 10th percentile read
  clean, finely textured photos (stained tissue, two validation photos) as σ 2–4 of noise,
  and the net smoothed their texture away (BENCHMARKS.md, "Session 9"); noisy frames read
  the same with either. On a JPEG frame (a lattice found, below) the 14×16 blocks are
  still read, since the quantizer flattens whole 8×8 blocks; blocks with clipped pixels
  are left out either way.
  On video, given the previous frame (``previous``), the noise is read a second way, off
  the frame-to-frame difference: where the scene holds still, it is the noise alone
  (times √2), whatever the picture's texture and however the noise is correlated in
  space — the Laplacian reads noise blurred by 0.85 px (a camera's demosaicing and
  denoising) at a third of its σ, and stained tissue without noise as σ 2–4, and both
  cost the net up to 1 dB (BENCHMARKS.md, "Session 10"). The standard deviation of the
  difference in 8×8 blocks (its block mean removed, so a change of exposure does not
  count), the :data:`TEMPORAL_PERCENTILE`-th percentile of the unclipped blocks, scaled
  to σ: that is the noise level, unless it is too large for noise (:func:`_combined`:
  the scene moved, or the frames are unrelated). A camera's pan moves every block by a
  little and reads as too much noise within that limit: the processor gives no previous
  frame when the frame moved as a whole (:mod:`~localsr_cam.process.motion`). On a
  JPEG frame it is taken only when lower than the spatial reading (a still, clean scene
  whose JPEG error the Laplacian reads as noise): the net was trained on the spatial
  reading of JPEG frames, where the quantizer has removed part of the noise.
- ``jpeg``: the JPEG quantizer, read from the frame itself. A decoded JPEG's luma, cut
  into the 8×8 blocks of its grid and transformed by the same DCT, has its low-frequency
  AC coefficients on multiples of the quantization step (give or take the rounding to
  8-bit RGB); a clean or noisy frame's coefficients fall anywhere. For five coefficients
  the largest step ``q`` (2–40) is taken that explains the coefficients beyond ±1.5:
  ``mean cos(2π·|c|/q) > 0.3`` over them, under 15 % of them below ``q/2`` (which that
  step would have rounded to zero), and the same mean over the histogram less its
  average over one period of ``q`` above 0.2 — the true step's divisors pass as well,
  its multiples and the coefficients of a clean frame do not. (Without that third test
  a smooth frame's few coefficients past ±1.5, falling fast, more near 2 than near 3,
  passed for a step-2 lattice: a flat wall with faint sensor noise read as q 90.) A
  coefficient is decided when at least 40 of them lie beyond ±1.5 (a smooth frame under
  heavy JPEG keeps few beyond the first two: those are read alone, not taken as "no
  lattice"). Blocks with a clipped pixel (0 or 255 in a channel: saturated colours the
  decoder clipped, which shifts the luma off the lattice by more than the small steps
  of q 90–93) are read a second time without them (decided at 100), and each
  coefficient keeps the larger step. Each step is divided by the IJG quality-50 table
  entry, and the median of the decided ones (the lower of two middles; at least two
  needed) is the level: the IJG scale factor / 100 — q 50 → 1.0, q 75 → 0.5,
  q 80 → 0.4, q 90 → 0.2, 0 for no lattice (clean input, q ≥ 95, or a grid that does
  not start at the top-left pixel). It replaced a blockiness ratio that read q 75 as
  0.04–0.16 and clean photos as 0–0.15, too close for the net to tell them apart.
  Over 55 photos (``tools/jpeg_reading.py``) these changes took MJPEG q 90–93 read as
  such from 93–97 % to 96–98 % (q 60: 93 % to 99 % of live, partial reads), and smooth
  clean frames read as JPEG from 25–40 % to none, with no clean or noisy photo read as
  JPEG before or after (BENCHMARKS.md, Quality, "Session 19").
  Luma is BT.601 of the frame, so the channel order matters (``bgr``).
- ``blur``: 1 − the ratio of squared differences at distance 1 to distance 2, scaled:
  for white noise the ratio is 1, for a sharp step 0.5, for a blurred edge it falls to
  0.25; ``(0.75 − ratio)/0.5`` clipped to [0, 1] is ~0 for sharp, ~1 for soft input.

Cost: a few numpy passes over whole 16-row bands, every k-th band so that about 60k
pixels are read (not the whole frame), and the DCT of at most 600 blocks scored through a
coefficient histogram (no per-candidate pass over the coefficients): 0.42 ms for a
640×360 frame here, 0.50 with the previous frame's difference. Live video reads half of
that, another half at each reading (``phase``; 0.27 ms, 0.35 with the difference; the
levels are smoothed over ~20 frames anyway), and only on one frame in 4 (the processor's
``LIVE_ESTIMATE_EVERY``: beside the SR a reading takes about twice as long). ``bench``
reports it as the ``estimate`` stage, in ms a frame. The JPEG reading's clipped-block
pass and detrended score (Session 19) add about 0.05 ms to a live read.
"""

from __future__ import annotations

import cv2
import numpy as np

LEVEL_NAMES = ("noise", "jpeg", "blur")
NUM_LEVELS = len(LEVEL_NAMES)
NOISE_UNIT = 10.0
"""The noise σ (grey levels) a noise level of 1.0 stands for."""
NOISE_BLOCK = (7, 8)
"""Rows × columns of the blocks whose mean |response| is compared (a 16-row band's 14
response rows make two block rows)."""
NOISE_PERCENTILE = 2.0
"""The percentile of the block means taken as the noise-only ones."""
CLIPPED_SHARE = 0.25
"""Blocks with this share of their pixels at 0 or 255 (counted on one row) are not read
for noise: the sensor clipped it there, so they are flatter (σ 4 over the astronaut
photo, whose background is black, read 2.9). A dark but clean area (values near, not
at, 0) is still read: it is evidence of a clean frame."""
JPEG_NOISE_PERCENTILE = 10.0
"""The percentile of the 14×16 block means read on a JPEG frame."""
MIN_NOISE_BLOCKS = 50
"""Fewer unclipped blocks than this (a dark or blown-out frame): all blocks are read."""
_NOISE_GAIN = 6.0 * 0.7979 * 0.68
"""mean |response| per unit σ (6·sqrt(2/π)), times the :data:`NOISE_PERCENTILE`-th
percentile of 7×8 block means of pure Gaussian noise over their mean (measured on
640×368 frames at σ 3, 6 and 10: 0.680 ± 0.006)."""
_JPEG_NOISE_GAIN = 6.0 * 0.7979 * 0.95
"""The same for the :data:`JPEG_NOISE_PERCENTILE`-th percentile of 14×16 blocks (about
0.95)."""
TEMPORAL_PERCENTILE = 10.0
"""The percentile of the blocks' frame-difference std taken as still, noise-only ones."""
_TEMPORAL_GAIN = float(np.sqrt(2.0)) * 0.80
"""std of the difference of two frames per unit σ (√2), times the 10th percentile of
8×8 blocks' std over σ with the Poisson-Gaussian noise of the camera model (darker
blocks have less; 0.80 reads σ 4 at mid-grey as 3.8–4.4 on four photos)."""
TEMPORAL_MAX_PIXELS = 30_000
"""The temporal reading looks at about this many pixels of the bands the frame's
reading took (every k-th band): ~470 blocks of 8×8, plenty for a percentile, and the
whole-frame estimate stays within 0.5 ms."""
MOTION_LIMIT = (2.0, 4.0)
"""The temporal reading is used only while it is at most ``a·spatial + b`` (σ levels):
above that the scene moved (or the frames are unrelated) in more than nine blocks of
ten. Correlated noise of σ 4, read 0.8 in space, reads 3.4–4.4 in time."""
MIN_SIDE = 16


def _bands(green: np.ndarray, max_pixels: int, phase: int = 0, every: int = 1
           ) -> np.ndarray:
    """int16 bands×16×W: whole 8-aligned bands of 16 rows of ``green`` (so the 8×8 grid
    and each pixel's neighbourhood survive), every k-th band from the ``phase``-th (mod
    k) so that about ``max_pixels`` are kept, and of those every ``every``-th; rows below
    the last whole band are left out."""
    h, w = green.shape
    bands = h // 16
    keep_every = max(1, int(np.ceil(bands * 16 * w / max_pixels)))
    picked = green[: bands * 16].reshape(bands, 16, w)[phase % keep_every::keep_every]
    return picked[::every].astype(np.int16)


def estimate_levels(frame: np.ndarray, bgr: bool = False, max_pixels: int = 60_000,
                    phase: int = 0, previous: np.ndarray | None = None,
                    jpeg_frame: np.ndarray | None = None) -> np.ndarray:
    """Degradation levels of one LR frame: float32 (3,) = noise, jpeg, blur (see above).

    ``frame`` is uint8 H×W×3, RGB (``bgr`` False) or BGR, H and W at least 16; it is only
    read. The 8×8 grid is assumed to start at the frame's top-left pixel (true for camera
    frames and for the whole-image evaluation). ``max_pixels`` bounds the work for big
    frames (and the JPEG step reads ``max_pixels / 100`` blocks); ``phase`` picks which
    of the bands (and rows of blocks) that leaves are read, so that successive video
    frames given successive phases are read all over. ``previous``: the green channel
    (uint8 H×W) of the video's previous frame, for the temporal noise reading; ignored
    when ``None`` or of another size. ``jpeg_frame``: the frame to read the JPEG level
    off instead of ``frame`` (same layout): the frame as the camera sent it, where
    ``frame`` is its temporally denoised copy — an average of MJPEG frames is off the
    quantizer's lattice, and a dim MJPEG webcam read 0.00 once the denoiser engaged.
    """
    h, w = frame.shape[:2]
    if h < MIN_SIDE or w < MIN_SIDE:
        return np.zeros(NUM_LEVELS, np.float32)
    b = _bands(frame[:, :, 1], max_pixels, phase)
    d1 = b[:, :, 1:] - b[:, :, :-1]  # horizontal steps; index j: between columns j, j+1
    d2 = b[:, :, 2:] - b[:, :, :-2]
    lap = d1[:, :, 1:] - d1[:, :, :-1]  # horizontal second difference
    # the 3×3 kernel is the vertical second difference of the horizontal one
    resp = np.abs(lap[:, 2:] - 2 * lap[:, 1:-1] + lap[:, :-2])  # bands×14×(W-2)
    jpeg = jpeg_scale(frame if jpeg_frame is None else jpeg_frame, bgr,
                      max(1, max_pixels // 100), phase)
    sigma = _noise_sigma(b, resp, jpeg > 0.0)
    if previous is not None and previous.shape == frame.shape[:2]:
        every = max(1, int(np.ceil(b.size / TEMPORAL_MAX_PIXELS)))
        before = _bands(previous, max_pixels, phase, every)
        sigma = _combined(sigma, _temporal_sigma(b[::every], before), jpeg > 0.0)
    d1sq = d1.astype(np.float32) ** 2
    ratio = float(d1sq.mean()) / (float((d2.astype(np.float32) ** 2).mean()) + 1e-3)
    softness = min(1.0, max(0.0, (0.75 - ratio) / 0.5))
    return np.array([sigma / NOISE_UNIT, jpeg, softness], np.float32)


def _noise_sigma(bands: np.ndarray, resp: np.ndarray, jpeg: bool) -> float:
    """σ (8-bit levels) of the noise, from ``resp`` (int16 |Laplacian-of-Laplacian|,
    bands×14×(W-2), of the green ``bands`` int16 bands×16×W): a low percentile of the
    mean response per block, the blocks with clipped pixels left out while enough
    others remain (:data:`CLIPPED_SHARE`). Small blocks (:data:`NOISE_BLOCK`,
    the :data:`NOISE_PERCENTILE`-th percentile) — or, on a JPEG frame (``jpeg``), the
    14×16 blocks they make four by four and their :data:`JPEG_NOISE_PERCENTILE`-th:
    a quantizer flattens whole 8×8 blocks, which small blocks then take for a clean
    sensor (σ 10 under JPEG q 80 read 2.1–3.2 instead of 3.7–6.5)."""
    bh, bw = NOISE_BLOCK[0], min(NOISE_BLOCK[1], resp.shape[2])  # narrower under 10 px
    rows, nbx = 14 // bh, resp.shape[2] // bw
    # integer sums, then one division: exactly the blocks' means, and cheaper than mean();
    # the rows first (whole rows added at once: 4× faster than the columns first)
    sums = resp[:, :, : nbx * bw].reshape(-1, rows, bh, nbx * bw).sum(axis=2, dtype=np.int32) \
        .reshape(-1, rows, nbx, bw).sum(axis=3)
    # a block's clipped pixels (at 0 or 255), counted on its middle row: a seventh of them
    middle = bands[:, 1 + bh // 2::bh, 1: 1 + nbx * bw][:, :rows]
    clipped = ((middle == 0) | (middle == 255)).reshape(-1, rows, nbx, bw).sum(axis=3)
    pixels, counted, percentile, gain = bh * bw, bw, NOISE_PERCENTILE, _NOISE_GAIN
    if jpeg and nbx >= 2:
        pairs = nbx // 2 * 2
        sums = sums[:, :, :pairs].reshape(-1, rows, pairs // 2, 2).sum(axis=3).sum(axis=1)
        clipped = clipped[:, :, :pairs].reshape(-1, rows, pairs // 2, 2).sum(axis=3) \
            .sum(axis=1)
        pixels, counted = rows * 2 * pixels, rows * 2 * counted
        percentile, gain = JPEG_NOISE_PERCENTILE, _JPEG_NOISE_GAIN
    blocks = sums.ravel() / float(pixels)
    return _low_percentile(blocks, clipped.ravel() < CLIPPED_SHARE * counted,
                           percentile) / gain


def _low_percentile(blocks: np.ndarray, unclipped: np.ndarray, percentile: float) -> float:
    """The ``percentile``-th of ``blocks`` (1-D), read among the ``unclipped`` ones (a
    bool mask alike) while :data:`MIN_NOISE_BLOCKS` of them remain, else among all."""
    exposed = blocks[unclipped]
    if exposed.size >= MIN_NOISE_BLOCKS:
        blocks = exposed
    index = int(percentile / 100 * (blocks.size - 1))
    return float(np.partition(blocks, index)[index])


def _temporal_sigma(now: np.ndarray, before: np.ndarray) -> float | None:
    """σ (8-bit levels) of the noise from the green bands of two frames (int16
    bands×16×W each, the same rows): the :data:`TEMPORAL_PERCENTILE`-th percentile of
    the 8×8 blocks' std of the difference (block mean removed), blocks with a pixel at 0
    or 255 in either frame left out while :data:`MIN_NOISE_BLOCKS` remain; ``None``
    when the bands are narrower than a block."""
    nbx = now.shape[2] // 8
    if nbx == 0:
        return None
    n, width = now.shape[0], nbx * 8
    diff = now[:, :, :width] - before[:, :, :width]  # int16, |Δ| ≤ 255
    # block sums as in _noise_sigma: the 8 rows of each block row first, then columns
    sums = diff.reshape(n, 2, 8, width).sum(axis=2, dtype=np.int32) \
        .reshape(n, 2, nbx, 8).sum(axis=3)
    squared = diff.astype(np.int32)
    squared *= squared
    squares = squared.reshape(n, 2, 8, width).sum(axis=2).reshape(n, 2, nbx, 8).sum(axis=3)
    variance = (squares - sums * sums / 64.0) / 64.0
    # clipped pixels counted on each block's middle row, in either frame
    rows = (slice(None), slice(4, 16, 8), slice(0, width))
    ends = (now[rows] == 0) | (now[rows] == 255) | (before[rows] == 0) | (before[rows] == 255)
    clipped = ends.reshape(n, 2, nbx, 8).any(axis=3)
    still = _low_percentile(variance.ravel(), ~clipped.ravel(), TEMPORAL_PERCENTILE)
    return float(np.sqrt(max(still, 0.0))) / _TEMPORAL_GAIN


def _combined(spatial: float, temporal: float | None, jpeg: bool) -> float:
    """The noise σ from the spatial and the temporal readings (see the module text):
    the temporal one while it is plausible as noise (:data:`MOTION_LIMIT`), on a JPEG
    frame only when it is the lower."""
    scale, offset = MOTION_LIMIT
    if temporal is None or temporal > scale * spatial + offset:
        return spatial
    return min(spatial, temporal) if jpeg else temporal


# IJG's quality-50 luminance table at the five AC coefficients read (row, column)
_JPEG_COEFFS = ((0, 1), (1, 0), (1, 1), (0, 2), (2, 0))
_JPEG_T50 = np.array([11.0, 12.0, 12.0, 10.0, 14.0], np.float32)
_STEPS = np.arange(40, 1, -1, dtype=np.float32)  # candidate steps, largest first
_BIN = 0.25  # histogram bin of |coefficient|
_BINS = 256  # covers |c| < 64
_LATTICE_SCORE = 0.3
_DETRENDED_SCORE = 0.2
_MAX_OFF_LATTICE = 0.15
_MIN_COEFF = 1.5  # |c| below this is "zero" (rounding noise is about 0.4)
_LATTICE_MIN_COUNT = 40  # coefficients beyond "zero" a coefficient's reading needs
_MIN_UNCLIPPED_COUNT = 100  # the same on the blocks without clipped pixels
_MIN_DECIDED = 2  # coefficients with enough of them that a level needs
_MAX_BLOCKS = 600


def _dct_matrix() -> np.ndarray:
    k = np.arange(8)
    m = np.sqrt(2 / 8) * np.cos(np.pi * (2 * k[None, :] + 1) * k[:, None] / 16)
    m[0] /= np.sqrt(2)
    return m.astype(np.float32)


_DCT = _dct_matrix()
_centres = (np.arange(_BINS, dtype=np.float32) + 0.5) * _BIN
# the coefficients a lattice must explain: all but the near-zero ones (which every step
# explains); per bin × step, their phase on that step's lattice
_COUNTED = (_centres > _MIN_COEFF).astype(np.float32)
_PHASES = np.cos(2 * np.pi * _centres[:, None] / _STEPS[None, :]) * _COUNTED[:, None]
# and those a step q says must be zero: between "zero" and q/2 (else a large q "explains"
# small coefficients, cos being flat near 0)
_OFF_LATTICE = (_COUNTED[:, None] * (_centres[:, None] < 0.5 * _STEPS[None, :])).astype(np.float32)
# and a second score that a smooth spread of coefficients cannot fake: each bin's phase
# minus the average phase its neighbours within half a step see (h·(v − Bᵀv) = (h − Bh)·v:
# the histogram less its average over one period, so only what repeats with the step
# counts). A falling spread of small coefficients (a smooth frame, faint noise) puts
# more of them just past 1.5 than before 2.5 and scored step 2 as a lattice.
_DETRENDED = np.empty_like(_PHASES)
for _k, _step in enumerate(_STEPS):
    _near = (np.abs(_centres[:, None] - _centres[None, :]) <= _step / 2).astype(np.float32)
    _near /= _near.sum(axis=1, keepdims=True)
    _DETRENDED[:, _k] = _PHASES[:, _k] - _near.T @ _PHASES[:, _k]
del _k, _step, _near
_SCORING = np.concatenate([_PHASES, _DETRENDED, _OFF_LATTICE], axis=1)  # one product for all
# the five coefficients' DCT basis images, flattened: 64×5
_BASIS = np.stack([np.outer(_DCT[u], _DCT[v]).ravel() for u, v in _JPEG_COEFFS], axis=1)
del _centres


def jpeg_scale(frame: np.ndarray, bgr: bool = False, max_blocks: int = _MAX_BLOCKS,
               phase: int = 0) -> float:
    """The JPEG quantizer scale of ``frame`` (uint8 H×W×3, RGB or BGR as ``bgr`` says)
    / 100, as the module docstring explains: q 50 → 1.0, q 75 → 0.5, 0.0 without a lattice
    (or a frame under 8×8). About ``max_blocks`` blocks are read, every k-th row of
    them from the ``phase``-th (mod k)."""
    h, w = frame.shape[0] // 8, frame.shape[1] // 8
    if h == 0 or w == 0:
        return 0.0
    rows = frame[: h * 8].reshape(h, 8, frame.shape[1], 3)
    step = max(1, int(np.ceil(h * w / max_blocks)))
    rows = rows[phase % step::step][:, :, : w * 8]
    weights = np.array([0.114, 0.587, 0.299] if bgr else [0.299, 0.587, 0.114], np.float32)
    luma = rows.astype(np.float32) @ weights  # rows×8×(8w)
    blocks = luma.reshape(luma.shape[0], 8, w, 8).transpose(0, 2, 1, 3).reshape(-1, 64)
    coeffs = np.abs(blocks @ _BASIS).T  # 5×n: the five DCT coefficients read
    clipped = _clipped_blocks(rows)
    readings = [(coeffs, _LATTICE_MIN_COUNT)]
    if clipped.any():
        readings.append((coeffs[:, ~clipped], _MIN_UNCLIPPED_COUNT))
    steps_read, decided_read = _lattice_steps(readings)  # a row per reading
    steps, decided = steps_read.max(axis=0), decided_read.any(axis=0)  # the larger step
    levels = np.sort(steps[decided] / _JPEG_T50[decided])
    if len(levels) < _MIN_DECIDED:
        return 0.0
    return float(levels[(len(levels) - 1) // 2])


def _clipped_blocks(rows: np.ndarray) -> np.ndarray:
    """bool (rows·blocks,): which 8×8 blocks of ``rows`` (uint8 rows×8×(8w)×3, in the
    order :func:`jpeg_scale` cuts them) hold a 0 or a 255 in any channel."""
    count, _, width, _ = rows.shape
    inside = cv2.inRange(np.ascontiguousarray(rows).reshape(count * 8, width * 3), 1, 254)
    # a block's mean of 255s is 255 only if no pixel of it is clipped (one is 0: < 254)
    means = cv2.resize(inside, (width // 8, count), interpolation=cv2.INTER_AREA)
    return (means < 255).ravel()


def _lattice_steps(readings: list[tuple[np.ndarray, int]]) -> tuple[np.ndarray, np.ndarray]:
    """For each reading — float32 5×n |DCT coefficients| (n may differ) and the count
    of coefficients beyond "zero" it needs to decide — per coefficient: the largest step
    whose lattice explains it (float32 readings×5, 0 for none) and whether it had that
    many coefficients beyond "zero" to decide on (bool readings×5). One histogram and one
    product serve all readings."""
    rows = len(_JPEG_COEFFS) * len(readings)
    first_bins = np.arange(rows).reshape(len(readings), -1, 1) * _BINS  # each row's histogram
    bins = np.concatenate([np.minimum((coeffs / _BIN).astype(np.int64), _BINS - 1) + first
                           for (coeffs, _), first in zip(readings, first_bins, strict=True)],
                          axis=None)
    hist = np.bincount(bins, minlength=_BINS * rows).reshape(rows, _BINS).astype(np.float32)
    hist[:, -1] = 0.0  # |c| ≥ 64: off the table
    counts = hist @ _COUNTED  # coefficients beyond "zero", per row
    # rows×steps each: the lattice score, the detrended one, the share below q/2
    scores, detrended, off = np.split((hist @ _SCORING) / np.maximum(counts, 1.0)[:, None], 3,
                                      axis=1)
    decided = counts >= np.repeat([need for _, need in readings], len(_JPEG_COEFFS))
    found = (decided[:, None] & (scores > _LATTICE_SCORE) & (detrended > _DETRENDED_SCORE)
             & (off < _MAX_OFF_LATTICE))
    first = np.argmax(found, axis=1)  # the largest step that passes, per coefficient
    steps = np.where(found.any(axis=1), _STEPS[first], 0.0).astype(np.float32)
    return steps.reshape(len(readings), -1), decided.reshape(len(readings), -1)


class LevelSmoother:
    """Exponential moving average of per-frame levels for video.

    ``update(levels)`` takes the frame's float32 (K,) estimate and returns the smoothed
    float32 1×K array (a new array, owned by the caller); ``current()`` returns that
    array as the last update left it (``None`` before any); ``alpha`` is the weight of
    the new frame (the first frame is taken as is). A reading that stands for ``frames``
    frames (read on one frame in that many) weighs as they would have together,
    ``1 − (1 − alpha)^frames``, so the time constant stays in frames. ``reset()``
    forgets the history.
    """

    def __init__(self, alpha: float = 0.05) -> None:
        if not 0.0 < alpha <= 1.0:
            raise ValueError(f"alpha must be in (0, 1], got {alpha}")
        self.alpha = alpha
        self._state: np.ndarray | None = None

    def reset(self) -> None:
        self._state = None

    def current(self) -> np.ndarray | None:
        return None if self._state is None else self._state[None].copy()

    def update(self, levels: np.ndarray, frames: int = 1) -> np.ndarray:
        levels = np.asarray(levels, np.float32).reshape(-1)
        if self._state is None or self._state.shape != levels.shape:
            self._state = levels.copy()
        else:
            weight = self.alpha if frames == 1 else 1.0 - (1.0 - self.alpha) ** frames
            self._state += weight * (levels - self._state)
        return self._state[None].copy()
