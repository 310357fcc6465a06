"""A cheap per-frame estimate of how degraded an LR frame is: noise, JPEG, blur.

The super-resolution net is told these levels (``levels``, N×K float32, K =
:data:`NUM_LEVELS`) so that it can denoise and deblock a lossy frame yet keep real texture
on a clean one. The same function makes the levels in training (on the degraded LR
patch) and at run time (on the whole LR frame, smoothed over time by
:class:`LevelSmoother`), so the net learns to read *estimates*, errors included.

All three look at the green channel only (the luma's largest part; no colour
conversion, and RGB and BGR frames give the same numbers), as int16:

- ``noise``: σ/255 of white noise, from the 3×3 Laplacian-of-Laplacian kernel
  ``[[1,-2,1],[-2,4,-2],[1,-2,1]]`` (Immerkær 1996; it cancels planes and ramps, its
  response to noise of std σ has std 6σ). Texture and edges are the large responses, so
  the mean of the *lower half* of |response| is used (half-normal: 0.3247·6σ), scaled to
  σ; divided by 10 for the net (σ 10/255 → 1.0).
- ``jpeg``: blockiness, the mean squared neighbour difference across the 8×8 grid lines
  (columns/rows 7|8, 15|16, ... of the frame) over that elsewhere, minus 1, clipped to
  [0, 2]: a JPEG at q 50–90 leaves steps on its grid, clean and noisy images do not.
- ``blur``: 1 − the ratio of squared differences at distance 1 to distance 2, scaled:
  for white noise the ratio is 1, for a sharp step 0.5, for a blurred edge it falls to
  0.25; ``(0.75 − ratio)/0.5`` clipped to [0, 1] is ~0 for sharp, ~1 for soft input.

Cost: a few numpy passes over whole 16-row bands, every k-th band so that about 60k
pixels are read (not the whole frame): 0.31–0.32 ms of CPU time per 640×360 frame on
this machine's CPU (0.48–0.56 ms wall while the 2 cores were shared by a load of 8);
``bench`` reports it as the ``estimate`` stage.
"""

from __future__ import annotations

import numpy as np

LEVEL_NAMES = ("noise", "jpeg", "blur")
NUM_LEVELS = len(LEVEL_NAMES)
_NOISE_GAIN = 6.0 * 0.7979 * 0.95
"""mean |response| per unit σ (6·sqrt(2/π)), times the 10th percentile of block means
of pure noise over their mean (measured: about 0.95)."""
MIN_SIDE = 16


def _bands(green: np.ndarray, max_pixels: int) -> np.ndarray:
    """int16 bands×16×W: whole 8-aligned bands of 16 rows of ``green`` (so the 8×8 grid
    and each pixel's neighbourhood survive), every k-th band so that about
    ``max_pixels`` are kept; rows below the last whole band are left out."""
    h, w = green.shape
    bands = h // 16
    keep_every = max(1, int(np.ceil(bands * 16 * w / max_pixels)))
    picked = green[: bands * 16].reshape(bands, 16, w)[::keep_every]
    return picked.astype(np.int16)


def estimate_levels(frame: np.ndarray, max_pixels: int = 60_000) -> np.ndarray:
    """Degradation levels of one LR frame: float32 (3,) = noise, jpeg, blur (see above).

    ``frame`` is uint8 H×W×3 (RGB or BGR), H and W at least 16; it is only read. The 8×8
    grid is assumed to start at the frame's top-left pixel (true for camera frames and
    for the whole-image evaluation). ``max_pixels`` bounds the work for big frames.
    """
    h, w = frame.shape[:2]
    if h < MIN_SIDE or w < MIN_SIDE:
        return np.zeros(NUM_LEVELS, np.float32)
    b = _bands(frame[:, :, 1], max_pixels)
    d1 = b[:, :, 1:] - b[:, :, :-1]  # horizontal steps; index j: between columns j, j+1
    d2 = b[:, :, 2:] - b[:, :, :-2]
    lap = d1[:, :, 1:] - d1[:, :, :-1]  # horizontal second difference
    # the 3×3 kernel is the vertical second difference of the horizontal one
    resp = np.abs(lap[:, 2:] - 2 * lap[:, 1:-1] + lap[:, :-2])  # bands×14×(W-2)
    # mean |response| per 14×16 block; the flattest blocks (10th percentile) see noise only
    bw = min(16, resp.shape[2])  # narrower for frames under 18 px wide
    nbx = resp.shape[2] // bw
    # integer sums, then one division: exactly the blocks' means, and cheaper than mean()
    sums = resp[:, :, : nbx * bw].reshape(resp.shape[0], 14, nbx, bw).sum(axis=3).sum(axis=1)
    blocks = sums / float(14 * bw)
    sigma = float(np.percentile(blocks, 10)) / _NOISE_GAIN
    d1sq = d1.astype(np.float32) ** 2
    col_energy = d1sq.mean(axis=(0, 1))  # per column step
    vd = b[:, 1:] - b[:, :-1]  # vertical steps inside each band; index i: rows i, i+1
    row_energy = (vd.astype(np.float32) ** 2).mean(axis=(0, 2))  # 15 values
    col_grid = np.zeros(col_energy.size, bool)
    col_grid[7::8] = True
    row_grid = np.zeros(row_energy.size, bool)
    row_grid[7] = True
    grid = (float(col_energy[col_grid].mean()) + float(row_energy[row_grid].mean())) / 2.0
    off = (float(col_energy[~col_grid].mean()) + float(row_energy[~row_grid].mean())) / 2.0
    blocky = min(2.0, max(0.0, grid / (off + 1.0) - 1.0))

    ratio = float(d1sq.mean()) / (float((d2.astype(np.float32) ** 2).mean()) + 1e-3)
    softness = min(1.0, max(0.0, (0.75 - ratio) / 0.5))
    return np.array([sigma / 10.0, blocky, softness], np.float32)


class LevelSmoother:
    """Exponential moving average of per-frame levels for video.

    ``update(levels)`` takes the frame's float32 (K,) estimate and returns the smoothed
    float32 1×K array (a new array, owned by the caller); ``alpha`` is the weight of the
    new frame (the first frame is taken as is). ``reset()`` forgets the history.
    """

    def __init__(self, alpha: float = 0.05) -> None:
        if not 0.0 < alpha <= 1.0:
            raise ValueError(f"alpha must be in (0, 1], got {alpha}")
        self.alpha = alpha
        self._state: np.ndarray | None = None

    def reset(self) -> None:
        self._state = None

    def update(self, levels: np.ndarray) -> np.ndarray:
        levels = np.asarray(levels, np.float32).reshape(-1)
        if self._state is None or self._state.shape != levels.shape:
            self._state = levels.copy()
        else:
            self._state += self.alpha * (levels - self._state)
        return self._state[None].copy()
