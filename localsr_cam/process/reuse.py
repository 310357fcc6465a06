"""Skip work that would not change the output: the cheap change test and what it guards.

A frame, or a person box's crop, is compared with the one the work was last done on,
cell by cell (8×8 pixels). For the mask, through thumbnails (grey, 8×8-pixel area
means, about 0.1 ms for a 640×360 frame): a *cell* has changed when its mean moved by
:data:`CELL_THRESHOLD` grey levels or more.
One cell averages 64 pixels: sensor noise of σ 3 levels moves it by σ ≈ 0.5 between two
frames, while an opening mouth or a blink moves the cells it covers by 10–25 levels. (An
average over the whole crop, the earlier test, missed those: a talking person whose body
kept still got the SR of a closed mouth back, frame after frame.)

- :class:`MaskReuse`: the last soft mask and the thumbnail of the frame it came from;
  the segmenter is skipped while no cell changed outside the solid inside of the mask
  (a moving mouth does not move the silhouette), or on the frames a quality level skips.
- :class:`SRReuse`: the last SR result of each box and its crop's :class:`Signature`
  (the crop's grey picture and its noise level); SR is skipped when the same box holds a
  crop with no changed cell, recomputed only around the changed cells when they are few
  (:meth:`SRReuse.stale_part`); neither once the degradation levels the net is told have
  moved (:meth:`SRReuse.follow_levels`). Where SR is not computed for a frame whose crop
  changed (a quality level skips the frame, or its SR is late), the last result stands
  in over the cells that did not change; where the person moved, it may stand in moved
  along with them, half of it over the plain upscale (:mod:`~localsr_cam.process.crop_motion`);
  the plain upscale shows over the rest (:meth:`SRReuse.stand_in`).

  The SR's test is not the mask's. A person who sways by a fraction of a pixel a frame
  (everyone on a call) moves the detail the SR draws, while a cell's *mean* hardly
  moves: reused on the mean test, the SR of an earlier frame stood misplaced over a
  swaying person, up to 8 dB under the plain upscale there on clean input (BENCHMARKS.md,
  Quality, "Session 21"). So a cell of the crop has changed for the SR when the mean of
  its pixels' squared frame difference (grey) exceeds what the two frames' sensor noise
  gives (:data:`NOISE_MARGIN` × (σ₁² + σ₂²), the σ the SR is told) by
  :data:`DETAIL_TOLERANCE`². An SR result one frame old on a person who moved 1–2
  pixels is misplaced by as much: inside the person it was 11 dB under the plain
  upscale on the sample clip (25.4 vs 36.6 dB PSNR against the clip rendered at 2×).

Both hold references to tensors the processor made and no longer changes; they are
replaced, never written into.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from localsr_cam.process import crop_motion, ops
from localsr_cam.process.tiling import Tile

THUMB_CELL = 8
"""Thumbnail cell side in pixels."""
CELL_THRESHOLD = 4.0
"""Grey levels a cell's mean must move by to count as changed for the mask (see the
module docstring; low-light noise of σ 8 levels moves a cell by σ ≈ 1.4, so a few cells
a frame pass it there and are recomputed)."""
NOISE_MARGIN = 2.0
"""A cell's mean squared frame difference up to this many times what the two frames'
noise gives (σ₁² + σ₂²) is noise. Over a cell's 64 pixels of white noise the mean
square exceeds twice its expectation once in 3·10⁵ cells (a 352×360 crop has 2,000);
noise correlated over 2 px (a camera's demosaicing: ~16 independent values a cell) once
in 100."""
NOISE_GREY = 128.0
"""The grey level at which the told noise σ holds (it is read at mid-grey). A cell
brighter than this allows for proportionally more noise variance — a sensor's shot noise
grows with the light (at white up to 1.8× mid-grey's variance in the camera model); a
darker one keeps the told variance (its read noise does not shrink). With it, a still
scene under noise of σ 4 reused its SR on 37 of 84 frames instead of 23, and a
swaying one scored the same (BENCHMARKS.md, Quality, "Session 21")."""
MAX_NOISE_SIGMA = 15.0
"""The most noise σ (grey levels) the test allows for: a webcam in a dim room passes on
up to about 15; a frame read as noisier is fine texture misread (a frame of random
pixels reads σ 70), and allowing for that much noise would find no change at all."""
DETAIL_TOLERANCE = 1.0
"""Grey levels (rms over a cell) a cell may differ by, beyond the noise, for the SR made
on the one to stand for the other: a whole crop off by this much loses under 0.2 dB
against a typical SR error of 5 levels."""
MIN_STAND_IN_SHARE = 0.5
"""A stand-in keeping the SR on fewer of the crop's cells than this is not used (the
plain upscale shows): at the thresholds above it is no better than the plain upscale
anyway, and a frame that shows SR on a sliver of the person should not count as one
with SR (with the earlier test on the cells' means, on the panning sample it kept 16 %
of the cells on average)."""
MOVED_TOLERANCE = 3.0
"""Grey levels (rms over a cell, beyond the noise) by which the stored crop moved by the
person's move may differ from the new one for the moved SR to stand in there: looser
than :data:`DETAIL_TOLERANCE`, as a move of a fraction of a pixel is redrawn by
interpolation, which softens fine detail a little."""
MOVED_RESIDUAL = 0.5
"""A cell whose change a move explains but for this share of it (rms) takes the moved SR
(see :func:`_moved_cells`); a cell where something new appeared (a hand, an opening
mouth) is changed by the move about as much as it was."""
MOVED_WEIGHT = 0.5
"""The moved SR's share over the plain upscale of the new crop where it stands in: the
mean of the two frames (the earlier SR was drawn through that frame's own noise and
compression, and is placed to within the move's error). On photos swaying 0.5–2 px
(gain over the plain upscale inside the person, mean / worst image, 5 suites × 2 sets):
0.5 gained +0.30 … +1.04 dB and its worst image was never more than 0.2 dB under the
stand-in it replaced; 0.7 gained up to 0.15 dB more on average, 1.0 less, and both made
a clean photo's worst image 0.1–0.6 dB worse (BENCHMARKS.md, "Session 26")."""
MEAN_MARGIN = 9.0
"""A cell has also changed for the SR when its mean moved by more than 3 times what the
two frames' noise moves it (noise correlated over 2 px: 16 independent values a cell;
6 times for white noise), plus :data:`MEAN_TOLERANCE`. The test on the mean squared
difference lumps a cell's steady brightening with its noise: a camera's auto exposure
brightening a noisy scene 3 % a frame moved bright cells by 8 levels, under its
threshold there (about 10 at σ 4), and the SR of a darker frame stood in: 1.4 dB under
recomputing it (BENCHMARKS.md, Quality, "Session 23")."""
INDEPENDENT_PER_CELL = 16.0
"""Independent noise values in a cell of 64 pixels (a camera's demosaicing correlates
noise over about 2 px)."""
MEAN_TOLERANCE = 1.5
"""Grey levels a cell's mean may move by, beyond the noise, for the SR made on the one
to stand for the other (a JPEG's rounding of a block's mean moves it by up to about 1
between two frames of a still scene)."""
LEVELS_TOLERANCE = 0.05
"""How far the degradation levels the SR is told (noise σ/10, JPEG scale/100, blur) may
move before the stored SR results are no longer reused: an SR result is of its crop
*and* of the levels the net was told. A still scene whose noise a temporal denoiser
takes from σ 4 to σ 1.5 changes no cell's mean by :data:`CELL_THRESHOLD`, so the SR of
the first, noisy frames stood for ever (``eval --frames 20 --degrade noisy`` scored
exactly as without the denoiser); its noise level falls by 0.1–0.2 meanwhile. 0.05 is
σ 0.5 of noise, a few steps of JPEG quality."""
SOLID_MASK = 0.99
"""A cell whose mean mask value reaches this is inside the person (see MaskReuse)."""
SR_CONTEXT_PX = 16
"""Input pixels whose SR a changed pixel can alter, each way, and the context the net
needs to recompute a part exactly. Both U-Nets' receptive fields reach 12–15 LR pixels
(JPEG chroma step included); a multiple of the cell keeps a part's offset even, as the
stride-2 layers need."""
MAX_PARTIAL_SHARE = 0.5
"""A part whose padded input is larger than this share of the crop's area is recomputed
whole. A whole SR brings every cell's stored signature up to date, a part only its own:
on the call sample (``synthetic:call``) allowing parts up to 0.85 of the crop left the
cells around them drifting into the next frame's part, and SR cost 13 ms a frame on
average instead of 9."""
MASK_RECHECK_SHARE = 0.25
"""Past this share of changed cells the mask is not worth testing cell by cell."""

Box = tuple[int, int, int, int]


def thumbnail(image: torch.Tensor | np.ndarray, cell: int = THUMB_CELL) -> np.ndarray:
    """uint8 H×W×3 BGR (CPU; a crop view is fine) → float32 grey ⌈H/cell⌉×⌈W/cell⌉."""
    import cv2

    array = image.numpy() if isinstance(image, torch.Tensor) else image
    height, width = array.shape[:2]
    size = (max(1, -(-width // cell)), max(1, -(-height // cell)))
    small = cv2.resize(array, size, interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(small, cv2.COLOR_BGR2GRAY).astype(np.float32)


def changed_cells(before: np.ndarray | None, after: np.ndarray,
                  threshold: float = CELL_THRESHOLD) -> np.ndarray | None:
    """bool map of the thumbnail cells that changed, or ``None`` when the two cannot be
    compared (no ``before``, or another size): then everything changed."""
    if before is None or before.shape != after.shape:
        return None
    return np.abs(after - before) >= threshold


@dataclasses.dataclass(frozen=True)
class Signature:
    """What the SR's change test compares (see the module docstring).

    ``grey``: the crop's grey picture, uint8 h×w (BT.601 of BGR); ``noise_var``: the
    variance of the sensor noise on it, grey levels² (σ² of the noise level the SR is
    told for the frame).
    """

    grey: np.ndarray
    noise_var: float

    def patched(self, region: Box, new: Signature) -> Signature:
        """This signature with ``region`` (x0, y0, x1, y1 crop pixels) taken from ``new``
        (a crop of the same size), and ``new``'s noise level."""
        x0, y0, x1, y1 = region
        grey = self.grey.copy()
        grey[y0:y1, x0:x1] = new.grey[y0:y1, x0:x1]
        return Signature(grey, new.noise_var)


def signature(crop: torch.Tensor | np.ndarray, noise_sigma: float) -> Signature:
    """uint8 h×w×3 BGR crop (CPU; a view is fine) and the noise σ (grey levels) of its
    frame → its :class:`Signature` (a new grey array; σ at most
    :data:`MAX_NOISE_SIGMA`)."""
    import cv2

    array = crop.numpy() if isinstance(crop, torch.Tensor) else crop
    sigma = min(float(noise_sigma), MAX_NOISE_SIGMA)
    return Signature(cv2.cvtColor(np.ascontiguousarray(array), cv2.COLOR_BGR2GRAY),
                     sigma ** 2)


def changed_detail(before: Signature | None, after: Signature,
                   cell: int = THUMB_CELL) -> np.ndarray | None:
    """bool ⌈h/cell⌉×⌈w/cell⌉ map of the cells whose picture changed for the SR: mean
    squared difference over :data:`NOISE_MARGIN` × the two noise variances (scaled up in
    cells brighter than :data:`NOISE_GREY`) plus :data:`DETAIL_TOLERANCE`², or mean
    difference over what the noise gives (:data:`MEAN_MARGIN`) plus
    :data:`MEAN_TOLERANCE`; ``None`` when the two cannot be compared (no ``before``,
    another size): then everything changed."""

    if before is None or before.grey.shape != after.grey.shape:
        return None
    shift, squared = _difference_means(before.grey, after.grey, cell)
    return _beyond_noise(shift, squared, before.noise_var, after, cell, DETAIL_TOLERANCE)


def _beyond_noise(shift: np.ndarray, squared: np.ndarray, before_var: float,
                  after: Signature, cell: int, tolerance: float) -> np.ndarray:
    """The test of :func:`changed_detail` on a difference's cell means (``shift``) and
    mean squares (``squared``), the earlier picture's noise variance ``before_var``, and
    ``tolerance`` grey levels rms beyond the noise."""
    brightness = _cell_means(after.grey.astype(np.float32), cell) * (1.0 / NOISE_GREY)
    noise = (before_var + after.noise_var) * np.maximum(brightness, 1.0)
    detail_changed = squared > NOISE_MARGIN * noise + tolerance ** 2
    mean_changed = shift * shift > MEAN_MARGIN / INDEPENDENT_PER_CELL * noise \
        + MEAN_TOLERANCE ** 2
    return detail_changed | mean_changed


def _difference_means(before: np.ndarray, after: np.ndarray, cell: int
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Two grey pictures (uint8 h×w, the same size) → float32 cell maps of the mean
    and the mean square of ``after`` − ``before``."""
    import cv2

    difference = cv2.subtract(after, before, dtype=cv2.CV_32F)
    return (_cell_means(difference, cell),
            _cell_means(cv2.multiply(difference, difference), cell))


def _cell_means(plane: np.ndarray, cell: int) -> np.ndarray:
    """float32 h×w → float32 ⌈h/cell⌉×⌈w/cell⌉ means of its cells (a crop that ends
    mid-cell is reflected to fill the last ones)."""
    import cv2

    height, width = plane.shape
    rows, cols = -(-height // cell), -(-width // cell)
    if (rows * cell, cols * cell) != (height, width):
        plane = cv2.copyMakeBorder(plane, 0, rows * cell - height, 0, cols * cell - width,
                                   cv2.BORDER_REFLECT)
    return cv2.resize(plane, (cols, rows), interpolation=cv2.INTER_AREA)


def _held(changed: np.ndarray) -> np.ndarray:
    """bool cell map of changed cells → float32 cell map, 1 where an SR computed before
    the change still holds: neither the cell nor one within :data:`SR_CONTEXT_PX` of it
    changed."""
    import cv2

    reach = 2 * (-(-SR_CONTEXT_PX // THUMB_CELL)) + 1
    stale = cv2.dilate(changed.astype(np.uint8), np.ones((reach, reach), np.uint8))
    return (stale == 0).astype(np.float32)


def _moved_cells(stand_in: StandIn, stored: Signature, signature: Signature,
                 changed: np.ndarray) -> StandIn:
    """``stand_in`` with the cells where the stored picture, moved by the move read off
    the ``changed`` cells (:func:`~localsr_cam.process.crop_motion.crop_shift`),
    matches the new one (``signature``): to within :data:`MOVED_TOLERANCE` beyond the
    noise, or the move explains the change (what is left of it, mean square, at most
    :data:`MOVED_RESIDUAL`² of it: a move of a fraction of a pixel is not a move of the
    pixels — the camera's downscale aliases fine detail — and leaves 2–8 levels rms in
    textured cells, of 5–11 unmoved); as it was when no move is read."""

    shift = crop_motion.crop_shift(stored.grey, signature.grey, changed, THUMB_CELL)
    if shift is None:
        return stand_in
    moved_grey = crop_motion.shifted(stored.grey, shift)
    mean_left, left = _difference_means(moved_grey, signature.grey, THUMB_CELL)
    unexplained = _beyond_noise(mean_left, left, stored.noise_var, signature, THUMB_CELL,
                                MOVED_TOLERANCE)
    _, unmoved = _difference_means(stored.grey, signature.grey, THUMB_CELL)
    still_changed = unexplained & (left > MOVED_RESIDUAL ** 2 * unmoved)
    moved = (~still_changed).astype(np.float32) * (1.0 - stand_in.valid)
    if not moved.any():
        return stand_in
    return dataclasses.replace(stand_in, moved=moved, shift=shift)


def stale_tile(cells: np.ndarray, size: tuple[int, int], cell: int = THUMB_CELL,
               context: int = SR_CONTEXT_PX) -> Tile:
    """The part of a ``size`` = (width, height) crop whose SR the changed ``cells`` (bool
    ⌈h/cell⌉×⌈w/cell⌉, at least one set) make stale: ``region``, their bounding box grown
    by ``context`` (what must be recomputed), and ``padded``, that grown by ``context``
    again (what the net must see to recompute it exactly). Both clipped to the crop, in
    crop pixels."""
    width, height = size
    rows = np.flatnonzero(cells.any(axis=1))
    cols = np.flatnonzero(cells.any(axis=0))

    def grown(by: int) -> Box:
        return (max(0, int(cols[0]) * cell - by), max(0, int(rows[0]) * cell - by),
                min(width, (int(cols[-1]) + 1) * cell + by),
                min(height, (int(rows[-1]) + 1) * cell + by))

    return Tile(region=grown(context), padded=grown(2 * context))


@dataclasses.dataclass(frozen=True)
class StalePart:
    """A stored SR result of which only ``tile`` (crop pixels) is to be recomputed.

    ``base``: the stored result, uint8 2h×2w×3 BGR (not written into); ``signature``:
    what the patched result stands for (the stored one, ``tile.region`` taken from the
    new crop's).
    """

    tile: Tile
    base: torch.Tensor
    signature: Signature

    def patch(self, sr: torch.Tensor) -> torch.Tensor:
        """``sr``: uint8 SR of the crop's ``tile.padded`` part → a new whole result, the
        base with ``tile.region`` replaced."""
        x0, y0, x1, y1 = self.tile.region
        result = self.base.clone()
        result[2 * y0:2 * y1, 2 * x0:2 * x1] = sr[self.tile.inner()]
        return result


@dataclasses.dataclass(frozen=True)
class StandIn:
    """A stored SR result standing in for a crop it was not computed on.

    ``result``: uint8 2h×2w×3 BGR (not written into). ``valid``: float32 cell
    map of the crop, 1 where the stored SR still holds (neither the cell nor one within
    :data:`SR_CONTEXT_PX` of it changed), 0 elsewhere. ``moved``: float32 cell map, 1
    where it holds once moved by ``shift`` (dx, dy input px: the person moved; see
    :mod:`localsr_cam.process.crop_motion`) and not as it is, 0 elsewhere; ``None``
    when no move was read.
    """

    result: torch.Tensor
    valid: np.ndarray
    moved: np.ndarray | None = None
    shift: tuple[float, float] = (0.0, 0.0)

    @property
    def share(self) -> float:
        """The share of the crop's cells where the stored SR holds, as it is or moved
        (0–1]."""
        held = self.valid if self.moved is None else self.valid + self.moved
        return float(held.mean())

    def compose(self, crop: torch.Tensor, mode: str) -> torch.Tensor:
        """``crop``: the frame's uint8 h×w×3 BGR crop (a view is fine) → uint8 2h×2w×3
        BGR: the stored SR over the valid cells; over the moved cells the stored SR
        moved by the shift, :data:`MOVED_WEIGHT` of it over the plain upscale (by
        ``mode``: ``bicubic``, ``bilinear``) of ``crop``; that upscale over the rest. A
        weight ramps up over the first half cell of its side of a boundary."""
        if self.share == 1.0 and self.moved is None:
            return self.result
        import cv2

        plain = ops.upscale2x(crop.contiguous(), mode).numpy()
        size = (plain.shape[1], plain.shape[0])
        if self.moved is not None:
            shifted = crop_motion.warped(self.result.numpy(),
                                         (2.0 * self.shift[0], 2.0 * self.shift[1]))
            if self.moved.all():  # the whole crop moved (no cell held as it was)
                plain = cv2.addWeighted(shifted, MOVED_WEIGHT, plain, 1.0 - MOVED_WEIGHT,
                                        0.0)
            else:
                # ramps over a cell across the edge of the moved part: the moved SR may
                # reach half a cell into where it did not hold (as a weight of a
                # quarter at most), unlike the stored one, which stands there unmoved
                moved = cv2.resize(self.moved * MOVED_WEIGHT, size,
                                   interpolation=cv2.INTER_LINEAR)
                plain = cv2.blendLinear(shifted, plain, moved, 1.0 - moved)
            if not self.valid.any():
                return torch.from_numpy(plain)
        weight = _cell_weight(self.valid, size)
        mixed = cv2.blendLinear(self.result.numpy(), plain, weight, 1.0 - weight)
        return torch.from_numpy(mixed)


def _cell_weight(cells: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """float32 cell map (0/1) → float32 weights at ``size`` (W, H): 0 in the unset
    cells, 1 in the set ones but for their first half cell beside an unset one, where
    the weight ramps up from 0.5."""
    import cv2

    return (cv2.resize(cells, size, interpolation=cv2.INTER_LINEAR)
            * cv2.resize(cells, size, interpolation=cv2.INTER_NEAREST))


class MaskReuse:
    """The last mask the segmenter produced, and when it may stand in for a new one."""

    def __init__(self, threshold: float = CELL_THRESHOLD) -> None:
        self.threshold = threshold
        self.mask: torch.Tensor | None = None
        self._thumb: np.ndarray | None = None
        self._solid: np.ndarray | None = None

    def reusable(self, thumb: np.ndarray | None, skip_by_level: bool) -> torch.Tensor | None:
        """The stored mask when the frame (``thumb``; ``None`` = not tested) changed only
        inside the solid part of the person, or the level skips this frame's
        segmentation; else ``None`` (segment it)."""
        if self.mask is None:
            return None
        if skip_by_level:
            return self.mask
        if thumb is None:
            return None
        cells = changed_cells(self._thumb, thumb, self.threshold)
        if cells is None or cells.mean() > MASK_RECHECK_SHARE \
                or (cells & ~self._solid_cells(thumb.shape)).any():
            return None
        return self.mask

    def _solid_cells(self, shape: tuple[int, ...]) -> np.ndarray:
        """bool map of the thumbnail cells (``shape``) inside the stored mask (mean ≥
        :data:`SOLID_MASK`); made once per stored mask, when first asked for."""
        if self._solid is None or self._solid.shape != shape:
            import cv2

            assert self.mask is not None
            plane = self.mask[0, 0].numpy()
            means = cv2.resize(plane, (shape[1], shape[0]), interpolation=cv2.INTER_AREA)
            self._solid = means >= SOLID_MASK
        return self._solid

    def store(self, mask: torch.Tensor, thumb: np.ndarray | None) -> None:
        """``mask``: float32 1×1×H×W on the CPU; ``thumb``: the frame's thumbnail."""
        self.mask, self._thumb, self._solid = mask, thumb, None

    def reset(self) -> None:
        self.mask, self._thumb, self._solid = None, None, None


class SRReuse:
    """The last SR result (uint8 2h×2w×3 BGR) of each box seen lately, and when it may be
    reused, whole or in part: one entry per box (several people each keep theirs), at
    most ``capacity``, the oldest stored dropped first."""

    def __init__(self, capacity: int = 8, max_partial_share: float = MAX_PARTIAL_SHARE
                 ) -> None:
        self.capacity = capacity
        self.max_partial_share = max_partial_share
        self._entries: dict[Box, tuple[torch.Tensor, Signature | None]] = {}
        self._levels: np.ndarray | None = None  # what the current results are told
        self._current: set[Box] = set()  # the boxes whose result was told them
        # the last change test: (stored, new signature, its cells), so that a frame's
        # reuse test, stale part and stand-in of one box compute it once
        self._tested: tuple[Signature | None, Signature, np.ndarray | None] | None = None

    def follow_levels(self, levels: np.ndarray) -> None:
        """The SR is told these degradation levels (float32 1×K) from now on. When they
        moved by more than :data:`LEVELS_TOLERANCE` from those the stored results were
        made with, no stored result is reused or patched any more (the SR runs again);
        each may still stand in for a late SR (:meth:`stand_in`: an SR told slightly
        other levels is a better picture than the plain upscale)."""
        if self._levels is not None \
                and float(np.abs(levels - self._levels).max()) <= LEVELS_TOLERANCE:
            return
        self._current.clear()
        self._levels = np.array(levels, np.float32)

    def reusable(self, box: Box, signature: Signature) -> torch.Tensor | None:
        """The stored result for ``box`` when no cell of its crop (``signature``)
        changed, else ``None``."""
        entry = self._entries.get(box)
        if entry is None or box not in self._current:
            return None
        cells = self._changed(entry[1], signature)
        return None if cells is None or cells.any() else entry[0]

    def stand_in(self, box: Box, signature: Signature, follow: bool = True
                 ) -> StandIn | None:
        """For a frame whose SR of ``box`` is not computed: the stored result where the
        crop's cells (``signature``) did not change, and — where they changed, when
        ``follow`` — moved by how far the person moved, where that holds
        (:func:`_moved_cells`); ``None``
        when nothing is stored for ``box`` or it holds on fewer than
        :data:`MIN_STAND_IN_SHARE` of the cells (the plain upscale is then as good a
        picture)."""
        entry = self._entries.get(box)
        if entry is None:
            return None
        stored = entry[1]
        cells = self._changed(stored, signature)
        if cells is None:
            return None
        valid = _held(cells)
        stand_in = StandIn(entry[0], valid)
        if follow and cells.any():
            assert stored is not None
            stand_in = _moved_cells(stand_in, stored, signature, cells)
        return stand_in if stand_in.share >= MIN_STAND_IN_SHARE else None

    def stale_part(self, box: Box, signature: Signature) -> StalePart | None:
        """When only some cells of ``box``'s crop changed, and the part they make stale
        is at most ``max_partial_share`` of the crop: that part, to recompute and patch
        into the stored result; else ``None`` (recompute the whole crop)."""
        entry = self._entries.get(box)
        if entry is None or box not in self._current:
            return None
        result, stored = entry
        cells = self._changed(stored, signature)
        if cells is None or stored is None or not cells.any():
            return None
        size = (box[2] - box[0], box[3] - box[1])
        tile = stale_tile(cells, size)
        x0, y0, x1, y1 = tile.padded
        if (x1 - x0) * (y1 - y0) > self.max_partial_share * size[0] * size[1]:
            return None
        return StalePart(tile, result, stored.patched(tile.region, signature))

    def _changed(self, stored: Signature | None, signature: Signature
                 ) -> np.ndarray | None:
        """:func:`changed_detail` of ``stored`` and ``signature``, computed once for the
        same two (a frame asks it of one box up to three times)."""
        tested = self._tested
        if tested is not None and tested[0] is stored and tested[1] is signature:
            return tested[2]
        cells = changed_detail(stored, signature)
        self._tested = (stored, signature, cells)
        return cells

    def store(self, box: Box, result: torch.Tensor, signature: Signature | None) -> None:
        self._entries.pop(box, None)  # re-inserted as the newest
        self._entries[box] = (result, signature)
        self._current.add(box)
        while len(self._entries) > self.capacity:
            self._current.discard(oldest := next(iter(self._entries)))
            del self._entries[oldest]

    def reset(self) -> None:
        self._entries.clear()
        self._current.clear()
        self._levels = None
        self._tested = None
