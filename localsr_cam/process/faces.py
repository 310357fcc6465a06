"""Finding faces anywhere in a frame with the full-range face detector, tile by tile.

The detector (:mod:`localsr_cam.models.face_detector`, run through any
:class:`~localsr_cam.runtime.base.Engine` named ``"face"``) takes 192×192 inputs and only
finds faces that are at least about :data:`DETECTOR_MIN_FACE` pixels tall *in its
input*: a whole 640×360 frame shrunk to 192 px wide loses every face smaller than about
a tenth of the frame's width. So :func:`plan_tiles` covers the frame with square windows at a
few scales (a pyramid): the finest level's windows make a face of ``min_face_px`` frame
pixels :data:`DETECTOR_MIN_FACE` input pixels tall; each coarser level's windows are
:data:`LEVEL_RATIO` times larger, up to one window holding the whole frame
(letterboxed). Windows of one level overlap by more than the smallest face the next
level finds, so every face lies whole inside some window of a level that can see it.

All windows are resized to 192×192 and run in one batched engine call, or in subsets
(``detect(frame, tiles=...)``) so a caller can spread one pass over several frames.
Detections are decoded per window (anchors, sigmoid, box + six keypoints), mapped to
frame pixels, those cut by an inner window edge are dropped (another window holds that
face whole), and the rest are merged with non-maximum suppression (weighted, as
MediaPipe does, or plain).

Pure numpy/torch plus OpenCV for resizing; no knowledge of engines beyond calling one.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import cv2
import numpy as np
import torch

if TYPE_CHECKING:
    from localsr_cam.runtime.base import Engine

log = logging.getLogger(__name__)

INPUT_SIZE = 192
GRID = 48
NUM_KEYPOINTS = 6
#: Keypoint order in :attr:`Detection.keypoints` (the person's own right/left).
KEYPOINT_NAMES = ("right_eye", "left_eye", "nose_tip", "mouth_center", "right_ear_tragion",
                  "left_ear_tragion")
#: Smallest face height (input pixels) the detector finds reliably in a 192×192 input;
#: measured with ``tools/face_calibration.py`` (see BENCHMARKS.md).
DETECTOR_MIN_FACE = 20.0
#: Each pyramid level's windows are this many times larger than the previous level's.
LEVEL_RATIO = 2.0
#: Windows of a level overlap by this times the next level's smallest face.
OVERLAP_MARGIN = 1.25
#: Detections smaller than this fraction of ``min_face_px`` are dropped: on the people
#: photos such tiny boxes were lamps, pool balls and knots, not faces.
SMALLEST_FACE_FRACTION = 0.6
#: Windows shrunk by this factor or more are resized by area averaging, others bilinearly.
AREA_RESIZE_FROM = 2.0
#: A detection within this fraction of the window size of an inner window edge is cut.
EDGE_MARGIN = 0.02
SCORE_CLIP = 100.0
DEFAULT_SCORE = 0.6  # MediaPipe's own threshold for this model
DEFAULT_IOU = 0.3
#: Most tiles per engine call by default: the TensorRT engine's batch profile ends there
#: (``runtime.trt_build.DETECT_PROFILE``); on the CPU batching saves nothing anyway.
DEFAULT_MAX_BATCH = 32


# --------------------------------------------------------------------------- decoding


def anchor_centers(grid: int = GRID, input_size: int = INPUT_SIZE) -> np.ndarray:
    """Anchor centres (float32, grid²×2, x then y, input pixels), row-major: anchor
    ``i`` is cell ``divmod(i, grid)`` = (row, col), centred at ``(col + 0.5, row + 0.5)``
    times the stride. The full-range model has one fixed-size anchor per cell."""
    stride = input_size / grid
    rows, cols = np.meshgrid(np.arange(grid), np.arange(grid), indexing="ij")
    centers = np.stack([(cols + 0.5) * stride, (rows + 0.5) * stride], axis=-1)
    return centers.reshape(-1, 2).astype(np.float32)


def sigmoid_scores(logits: np.ndarray) -> np.ndarray:
    """Logits (any shape) → probabilities, clipped to ±:data:`SCORE_CLIP` first as
    MediaPipe does."""
    clipped = np.clip(logits.astype(np.float64), -SCORE_CLIP, SCORE_CLIP)
    return (1.0 / (1.0 + np.exp(-clipped))).astype(np.float32)


def decode(regressors: np.ndarray, anchors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Raw regressors (…×A×16, input pixels relative to the anchor: centre x, y, width,
    height, then six keypoints x, y) and anchors (A×2) → boxes (…×A×4: x0, y0, x1, y1)
    and keypoints (…×A×6×2), float32, in input pixels."""
    regressors = regressors.astype(np.float32)
    center = regressors[..., 0:2] + anchors
    half = regressors[..., 2:4] / 2.0
    boxes = np.concatenate([center - half, center + half], axis=-1)
    shape = (*regressors.shape[:-1], NUM_KEYPOINTS, 2)
    keypoints = regressors[..., 4:4 + 2 * NUM_KEYPOINTS].reshape(shape) + anchors[:, None, :]
    return boxes, keypoints


# --------------------------------------------------------------------------- results


@dataclasses.dataclass(frozen=True, eq=False)
class Detection:
    """One face. ``box``: float32 (4,) x0, y0, x1, y1; ``keypoints``: float32 (6, 2) x, y
    in :data:`KEYPOINT_NAMES` order; both in frame pixels (may reach past the frame's
    edge). ``score``: detector probability in (0, 1). Arrays are owned by the detection."""

    box: np.ndarray
    score: float
    keypoints: np.ndarray

    @property
    def width(self) -> float:
        return float(self.box[2] - self.box[0])

    @property
    def height(self) -> float:
        return float(self.box[3] - self.box[1])

    @property
    def center(self) -> tuple[float, float]:
        return (float(self.box[0] + self.box[2]) / 2, float(self.box[1] + self.box[3]) / 2)


def box_iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one box (4,) with each of ``boxes`` (K×4), x0, y0, x1, y1; float32 (K,)."""
    x0 = np.maximum(box[0], boxes[:, 0])
    y0 = np.maximum(box[1], boxes[:, 1])
    x1 = np.minimum(box[2], boxes[:, 2])
    y1 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = max(float((box[2] - box[0]) * (box[3] - box[1])), 0.0)
    areas = np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1],
                                                                  0, None)
    union = area + areas - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0).astype(np.float32)


def non_max_suppression(detections: Sequence[Detection], iou: float = DEFAULT_IOU,
                        weighted: bool = True) -> list[Detection]:
    """Merge detections of the same face, best score first.

    The best remaining detection takes every remaining one overlapping it by more than
    ``iou``. ``weighted`` (MediaPipe's choice): its box and keypoints become the
    score-weighted mean over that cluster, its score stays the best one; else the others
    are simply dropped. Returns new detections sorted by score, highest first.
    """
    if not detections:
        return []
    order = sorted(detections, key=lambda d: d.score, reverse=True)
    boxes = np.stack([d.box for d in order])
    alive = np.ones(len(order), dtype=bool)
    merged = []
    for i, best in enumerate(order):
        if not alive[i]:
            continue
        members = np.flatnonzero(alive & (box_iou(best.box, boxes) > iou))
        members = np.union1d(members, [i])
        alive[members] = False
        if not weighted or len(members) == 1:
            merged.append(best)
            continue
        weights = np.array([order[m].score for m in members], dtype=np.float32)
        weights /= weights.sum()
        box = np.tensordot(weights, boxes[members], axes=1).astype(np.float32)
        keypoints = np.tensordot(weights, np.stack([order[m].keypoints for m in members]),
                                 axes=1).astype(np.float32)
        merged.append(Detection(box, best.score, keypoints))
    return merged


# --------------------------------------------------------------------------- tiles


@dataclasses.dataclass(frozen=True)
class Tile:
    """A square window of the frame fed to the detector as one 192×192 input.

    ``x0``, ``y0``: top-left corner, ``size``: side, in frame pixels; the window may
    reach past the frame (that part is black). ``level``: pyramid level (0 finest).
    """

    x0: int
    y0: int
    size: int
    level: int

    @property
    def scale(self) -> float:
        """Input pixels per frame pixel."""
        return INPUT_SIZE / self.size


@dataclasses.dataclass(frozen=True)
class TilePlan:
    """Windows covering a ``frame_size`` = (width, height) frame for faces from
    ``min_face_px`` frame pixels tall; ``tiles`` from the finest level to the whole
    frame."""

    frame_size: tuple[int, int]
    min_face_px: float
    tiles: tuple[Tile, ...]

    def __len__(self) -> int:
        return len(self.tiles)

    def rounds(self, count: int) -> list[list[int]]:
        """Tile indices split into ``count`` subsets of near-equal size for round-robin
        use (tile ``i`` goes to subset ``i % count``, so each subset spreads over the
        frame and the levels). Empty subsets are left out."""
        count = max(1, min(count, len(self.tiles)))
        return [list(range(start, len(self.tiles), count)) for start in range(count)]


def _axis_starts(length: int, size: int, overlap: float) -> list[int]:
    """Window starts along one axis: windows of ``size`` covering ``[0, length)`` with at
    least ``overlap`` pixels shared by neighbours, spread evenly; one centred window when
    ``size >= length``."""
    if size >= length:
        return [(length - size) // 2]
    stride = max(size - overlap, 1.0)
    count = math.ceil((length - size) / stride) + 1
    step = (length - size) / (count - 1)
    return [round(k * step) for k in range(count)]


def plan_tiles(frame_size: tuple[int, int], min_face_px: float = 24.0) -> TilePlan:
    """The tile pyramid for a frame of ``frame_size`` = (width, height) (see the module
    docstring). Level ``k``'s windows are ``min_face_px · 192 / DETECTOR_MIN_FACE ·
    LEVEL_RATIO**k`` pixels (at least 8); the last level is one window holding the whole
    frame, and it follows directly once the next level's windows would be within
    √LEVEL_RATIO of the frame's size. Windows of a level overlap by
    :data:`OVERLAP_MARGIN` times the smallest face of the next level."""
    width, height = frame_size
    if width <= 0 or height <= 0 or min_face_px <= 0:
        raise ValueError(f"need a positive frame size and face size, got {frame_size}, "
                         f"{min_face_px}")
    full = max(width, height)
    size = max(8.0, min_face_px * INPUT_SIZE / DETECTOR_MIN_FACE)
    tiles: list[Tile] = []
    level = 0
    while size < full:
        side = round(size)
        last = size * LEVEL_RATIO * math.sqrt(LEVEL_RATIO) >= full  # next: the whole frame
        next_min_face = DETECTOR_MIN_FACE * (full if last else size * LEVEL_RATIO) / INPUT_SIZE
        overlap = min(OVERLAP_MARGIN * next_min_face, side * 0.75)
        for y0 in _axis_starts(height, side, overlap):
            for x0 in _axis_starts(width, side, overlap):
                tiles.append(Tile(x0, y0, side, level))
        level += 1
        if last:
            break
        size *= LEVEL_RATIO
    tiles.append(Tile((width - full) // 2, (height - full) // 2, full, level))
    return TilePlan((width, height), float(min_face_px), tuple(tiles))


@dataclasses.dataclass(frozen=True)
class _Placement:
    """Where a tile's visible part lands in its 192×192 input: the frame rectangle
    ``src`` (x0, y0, x1, y1) is resized onto the input rectangle ``dst``."""

    src: tuple[int, int, int, int]
    dst: tuple[int, int, int, int]

    def to_frame(self, points: np.ndarray) -> np.ndarray:
        """Input-pixel x, y (…×2) → frame pixels."""
        sx = (self.src[2] - self.src[0]) / (self.dst[2] - self.dst[0])
        sy = (self.src[3] - self.src[1]) / (self.dst[3] - self.dst[1])
        scale = np.array([sx, sy], dtype=np.float32)
        offset_in = np.array(self.dst[:2], dtype=np.float32)
        offset_out = np.array(self.src[:2], dtype=np.float32)
        return ((points - offset_in) * scale + offset_out).astype(np.float32)


def _placement(tile: Tile, frame_size: tuple[int, int]) -> _Placement | None:
    width, height = frame_size
    x0, y0 = max(tile.x0, 0), max(tile.y0, 0)
    x1, y1 = min(tile.x0 + tile.size, width), min(tile.y0 + tile.size, height)
    if x1 <= x0 or y1 <= y0:
        return None
    scale = tile.scale
    dst = (round((x0 - tile.x0) * scale), round((y0 - tile.y0) * scale),
           round((x1 - tile.x0) * scale), round((y1 - tile.y0) * scale))
    dst = (dst[0], dst[1], max(dst[2], dst[0] + 1), max(dst[3], dst[1] + 1))
    return _Placement((x0, y0, x1, y1), dst)


def fill_inputs(frame_bgr8: np.ndarray, tiles: Sequence[Tile], out: np.ndarray
                ) -> list[_Placement | None]:
    """Resize each tile's window of ``frame_bgr8`` (uint8 H×W×3 BGR) into ``out[i]``
    (uint8 T×192×192×3 BGR, caller-owned, overwritten; the part of a window outside the
    frame is black). Returns each tile's placement (``None``: window outside)."""
    height, width = frame_bgr8.shape[:2]
    placements = []
    for index, tile in enumerate(tiles):
        placement = _placement(tile, (width, height))
        placements.append(placement)
        target = out[index]
        if placement is None:
            target[:] = 0
            continue
        sx0, sy0, sx1, sy1 = placement.src
        dx0, dy0, dx1, dy1 = placement.dst
        if (dx0, dy0, dx1, dy1) != (0, 0, INPUT_SIZE, INPUT_SIZE):
            target[:] = 0
        # area averaging only where bilinear would alias; it is 15× slower at 1.2×
        strong = (sx1 - sx0) >= AREA_RESIZE_FROM * (dx1 - dx0)
        cv2.resize(frame_bgr8[sy0:sy1, sx0:sx1], (dx1 - dx0, dy1 - dy0),
                   dst=target[dy0:dy1, dx0:dx1],
                   interpolation=cv2.INTER_AREA if strong else cv2.INTER_LINEAR)
    return placements


def to_input_tensor(batch_bgr8: np.ndarray, out: torch.Tensor | None = None) -> torch.Tensor:
    """uint8 T×192×192×3 BGR → float32 T×3×192×192 RGB tensor in [-1, 1], written into
    ``out`` (caller-owned, CPU, contiguous) when given, else a new tensor."""
    if out is None:
        out = torch.empty((batch_bgr8.shape[0], 3, *batch_bgr8.shape[1:3]),
                          dtype=torch.float32)
    # numpy, one pass per channel: 10× faster than torch's flip + permute + float, and
    # single-threaded (torch's OpenMP workers next to OpenCV's threads took 200 ms here)
    target = out.numpy()
    for channel in range(3):
        np.subtract(batch_bgr8[..., 2 - channel], np.float32(127.5), out=target[:, channel],
                    dtype=np.float32)
    np.multiply(target, np.float32(1.0 / 127.5), out=target)
    return out


def _cut_by_inner_edge(box: np.ndarray, tile: Tile, frame_size: tuple[int, int]) -> bool:
    """Whether ``box`` (frame pixels) touches an edge of ``tile`` that lies inside the
    frame (so the face is probably cut, and whole in a neighbouring window)."""
    margin = EDGE_MARGIN * tile.size
    width, height = frame_size
    x1, y1 = tile.x0 + tile.size, tile.y0 + tile.size
    return bool((tile.x0 > 0 and box[0] < tile.x0 + margin)
                or (tile.y0 > 0 and box[1] < tile.y0 + margin)
                or (x1 < width and box[2] > x1 - margin)
                or (y1 < height and box[3] > y1 - margin))


# --------------------------------------------------------------------------- finder


class FaceFinder:
    """Faces in BGR frames, from a ``"face"`` engine (``image`` → ``regressors``,
    ``scores``) run on a tile plan.

    ``min_face_px``: smallest face height (frame pixels) to find (boxes under
    :data:`SMALLEST_FACE_FRACTION` of it are dropped); ``score``: detection
    threshold on the probability; ``iou``: NMS overlap; ``weighted``: weighted NMS;
    ``max_batch``: most tiles per engine call (``None``: all in one call).
    The finder holds no resources of its own; the caller owns and closes the engine.
    Not thread-safe (one input buffer, reused).
    """

    def __init__(self, engine: Engine, min_face_px: float = 24.0,
                 score: float = DEFAULT_SCORE, iou: float = DEFAULT_IOU,
                 weighted: bool = True, max_batch: int | None = DEFAULT_MAX_BATCH) -> None:
        if not 0.0 < score < 1.0:
            raise ValueError(f"score threshold must be in (0, 1), got {score}")
        self.engine = engine
        self.min_face_px = float(min_face_px)
        self.score = float(score)
        self.iou = float(iou)
        self.weighted = weighted
        self.max_batch = max_batch
        self._logit = math.log(self.score / (1.0 - self.score))
        self._anchors = anchor_centers()
        self._plans: dict[tuple[int, int], TilePlan] = {}
        self._buffer = np.zeros((0, INPUT_SIZE, INPUT_SIZE, 3), dtype=np.uint8)
        self._inputs = torch.empty((0, 3, INPUT_SIZE, INPUT_SIZE))

    def plan(self, frame_size: tuple[int, int]) -> TilePlan:
        """The (cached) tile plan for frames of ``frame_size`` = (width, height)."""
        plan = self._plans.get(frame_size)
        if plan is None:
            plan = plan_tiles(frame_size, self.min_face_px)
            self._plans[frame_size] = plan
            log.debug("face tiles for %dx%d, faces from %.0f px: %d windows (%s)",
                      *frame_size, self.min_face_px, len(plan),
                      ", ".join(f"{t.size}px" for t in plan.tiles[-2:]))
        return plan

    def detect(self, frame_bgr8: np.ndarray, tiles: Sequence[int] | None = None
               ) -> list[Detection]:
        """Faces in ``frame_bgr8`` (uint8 H×W×3 BGR, read only) found in the plan's
        tiles ``tiles`` (indices; ``None``: all), merged by NMS, best first."""
        return non_max_suppression(self.detect_raw(frame_bgr8, tiles), self.iou,
                                   self.weighted)

    def detect_raw(self, frame_bgr8: np.ndarray, tiles: Sequence[int] | None = None
                   ) -> list[Detection]:
        """Like :meth:`detect` but before NMS (to merge several rounds' detections
        with :func:`non_max_suppression` yourself); cut faces already dropped."""
        if frame_bgr8.dtype != np.uint8 or frame_bgr8.ndim != 3 or frame_bgr8.shape[2] != 3:
            raise ValueError(f"FaceFinder wants a uint8 H×W×3 BGR frame, got "
                             f"{frame_bgr8.dtype} {frame_bgr8.shape}")
        height, width = frame_bgr8.shape[:2]
        plan = self.plan((width, height))
        chosen = [plan.tiles[i] for i in (range(len(plan)) if tiles is None else tiles)]
        if not chosen:
            return []
        if self._buffer.shape[0] < len(chosen):
            self._buffer = np.zeros((len(chosen), INPUT_SIZE, INPUT_SIZE, 3), np.uint8)
            self._inputs = torch.empty((len(chosen), 3, INPUT_SIZE, INPUT_SIZE))
        batch = self._buffer[:len(chosen)]
        placements = fill_inputs(frame_bgr8, chosen, batch)
        regressors, logits = self._run(batch)
        found: list[Detection] = []
        for index, (tile, placement) in enumerate(zip(chosen, placements, strict=True)):
            if placement is not None:
                found.extend(self._tile_detections(regressors[index], logits[index], tile,
                                                   placement, (width, height)))
        return found

    def _run(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Engine outputs for ``batch`` (T×192×192×3 uint8 BGR): regressors T×2304×16 and
        logits T×2304, as numpy float32 on the CPU."""
        step = self.max_batch or batch.shape[0]
        inputs = to_input_tensor(batch, self._inputs[:batch.shape[0]])
        regressors, logits = [], []
        for start in range(0, batch.shape[0], step):
            image = inputs[start:start + step].to(self.engine.device)
            outputs = self.engine({"image": image})
            regressors.append(outputs["regressors"].detach().float().cpu().numpy())
            logits.append(outputs["scores"].detach().float().cpu().numpy()[..., 0])
        return np.concatenate(regressors), np.concatenate(logits)

    def _tile_detections(self, regressors: np.ndarray, logits: np.ndarray, tile: Tile,
                         placement: _Placement, frame_size: tuple[int, int]
                         ) -> list[Detection]:
        keep = np.flatnonzero(logits > self._logit)
        if keep.size == 0:
            return []
        boxes, keypoints = decode(regressors[keep], self._anchors[keep])
        scores = sigmoid_scores(logits[keep])
        corners = placement.to_frame(boxes.reshape(-1, 2, 2)).reshape(-1, 4)
        points = placement.to_frame(keypoints)
        smallest = SMALLEST_FACE_FRACTION * self.min_face_px
        found = []
        for k in range(keep.size):
            if corners[k, 3] - corners[k, 1] < smallest or _cut_by_inner_edge(
                    corners[k], tile, frame_size):
                continue
            found.append(Detection(corners[k].copy(), float(scores[k]), points[k].copy()))
        return found
