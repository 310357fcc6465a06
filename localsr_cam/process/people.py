"""Everyone in the frame: faces → person crops → one selfie mask each → one frame mask.

The selfie segmenter is made for one person filling a laptop camera's view; people
further away shrink below what it can see in a whole-frame input. Here a face finder
(MediaPipe's full-range detector, run on tiles of the frame, a few tiles a frame)
gives face boxes; :class:`~localsr_cam.process.tracking.BoxTracker` follows them
between finder runs; each person gets a square crop around head and upper body,
scaled to the segmenter's native input, and the crops' probabilities are pasted back
(pixel-wise maximum) into one frame-sized map, smoothed like the close-up mask.
Each person also gets an SR region (their mask's extent plus context, bucketed,
held steady by :func:`~localsr_cam.process.tracking.sticky_region`); overlapping
regions are merged and the total area is capped.

Frames are ``uint8 H×W×3`` BGR torch tensors (a CPU view or on the device); masks are
``float32 1×1×H×W`` in [0, 1] at the frame's resolution.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import numpy as np
import torch
import torch.nn.functional as F

from localsr_cam.process import ops, reuse
from localsr_cam.process.localize import MaskSmoother, bucket_box, person_box
from localsr_cam.process.regions import (
    Box,
    align_even,
    area,
    cap_total_area,
    grown,
    intersection,
    iou,
    merge_overlapping,
    snap_even,
    union,
)
from localsr_cam.process.tracking import BoxTracker, Track, sticky_region
from localsr_cam.runtime.base import Engine

log = logging.getLogger(__name__)

SEGMENTER_INPUT = 256
"""Side of the general selfie segmenter's square input: each person's crop is scaled
to it (the model's native size, where it was trained)."""

CROP_SIDE_FACES = 4.0
"""A person's crop is a square this many face heights on a side ..."""
CROP_TOP_FACES = 0.9
"""... whose top is this many face heights above the top of the face (hair, a raised
hand), centred on the face across."""

SIDE_FADE = 0.1
"""Each crop's mask fades to 0 over this fraction of its side at its left and right
edges (see :class:`CropSegmenter`)."""

CROPS_PER_FRAME = 2
"""At most this many people are segmented anew per frame (new or moved people first,
then whoever waited longest); the others keep their last mask. People in a meeting
move little between frames, and each crop costs one segmenter call (2.6 ms on the
2-core CPU)."""

BLOB_MIN_FRACTION = 0.002
"""A part of the whole-frame mask outside every person's crop counts as someone the
finder missed when it covers at least this share of the frame (at 640×360 about
21×21 px, less than the head and shoulders of a person with a 20 px face)."""

MERGE_WASTE = 0.25
"""Overlapping SR regions are merged when their bounding box is at most this much
larger than the area they cover together; otherwise each is super-resolved on its own
and the overlap is blended once (see the processor)."""

MAX_AREA_FRACTION = 0.5
"""The SR regions together cover at most this share of the frame (the most confident,
largest people first); the cost of SR grows with the area."""


class Detection(Protocol):
    """A face the finder saw: ``box`` (x0, y0, x1, y1) in frame pixels, ``score`` 0–1."""

    @property
    def box(self) -> np.ndarray | Sequence[float]: ...

    @property
    def score(self) -> float: ...


class Tile(Protocol):
    """A square window the finder looks at: top-left ``x0``, ``y0`` and ``size`` in
    frame pixels (it may reach past the frame)."""

    @property
    def x0(self) -> int: ...

    @property
    def y0(self) -> int: ...

    @property
    def size(self) -> int: ...


class Plan(Protocol):
    @property
    def tiles(self) -> Sequence[Tile]: ...


class Finder(Protocol):
    """What :class:`PeopleFinder` needs from a face finder
    (:class:`localsr_cam.process.faces.FaceFinder`).

    ``plan(frame_size)``: the tiles a full scan looks at. ``detect(frame, tiles)``:
    faces found in those tiles (indices into the plan's) of a uint8 H×W×3 BGR frame
    (numpy), duplicates across tiles already merged. ``engine``: the engine it runs,
    closed by :meth:`PeopleFinder.close`.
    """

    @property
    def engine(self) -> Engine: ...

    def plan(self, frame_size: tuple[int, int], /) -> Plan: ...

    def detect(self, frame: np.ndarray, tiles: Sequence[int] | None = None, /
               ) -> Sequence[Detection]: ...


FINDER_MIN_FACE = 20.0
"""Smallest face (pixels of the finder's 192 px input) it finds: a tile of ``size``
frame pixels finds faces from ``FINDER_MIN_FACE × size / 192`` frame pixels."""
FINDER_INPUT = 192

FINDER_PAD = 16
"""The finder looks at the frame inside a black border this wide: faces at the frame's
edge then lie inside the tiles rather than on their edge, and in group scenes built by
tools/coverage.py it found 13 of the 29 faces it had missed (most of them at an edge)."""


def crop_for_face(face: Sequence[float]) -> Box:
    """The square segmenter crop for a face box: head, shoulders and upper body.

    Integer pixels with even corners. It is not clipped: it may reach beyond the frame
    (that part is fed to the segmenter as black, as the letterbox does), so a person
    at the edge is still seen centred and at the usual scale. At least 32 px a side.
    """
    x0, y0, x1, y1 = face
    height = max(y1 - y0, (x1 - x0), 1.0)
    side = max(32, 2 * round(CROP_SIDE_FACES * height / 2))
    left = round((x0 + x1) / 2 - side / 2)
    top = round(y0 - CROP_TOP_FACES * height)
    left, top = left - left % 2, top - top % 2
    return left, top, left + side, top + side


def crop_thumbnail(frame: torch.Tensor, crop: Box) -> np.ndarray | None:
    """The grey thumbnail (:func:`~localsr_cam.process.reuse.thumbnail`) of the part of
    ``crop`` inside ``frame`` (uint8 H×W×3 BGR on the CPU); ``None`` when none is."""
    height, width = frame.shape[:2]
    x0, y0, x1, y1 = max(0, crop[0]), max(0, crop[1]), min(width, crop[2]), min(height, crop[3])
    if x1 <= x0 or y1 <= y0:
        return None
    return reuse.thumbnail(frame[y0:y1, x0:x1])


def drop_chest_faces(detections: Sequence[tuple[Sequence[float], float]]
                     ) -> list[tuple[Sequence[float], float]]:
    """Detections without the small 'faces' on someone's chest (a badge, a print on a
    shirt): a face whose centre lies below a face at least 1.5× its height, within
    three of that face's heights under it and half a face to either side of it."""
    kept = []
    for box, score in detections:
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        height = box[3] - box[1]
        on_chest = False
        for other, _ in detections:
            tall = other[3] - other[1]
            if tall >= 1.5 * height and other[3] <= cy <= other[3] + 3 * tall \
                    and other[0] - tall / 2 <= cx <= other[2] + tall / 2:
                on_chest = True
                break
        if not on_chest:
            kept.append((box, score))
    return kept


class CropSegmenter:
    """Runs a fixed-input selfie segmenter on square crops of a frame.

    :meth:`segment`: frame uint8 H×W×3 BGR tensor, crops (square boxes in frame pixels,
    which may reach beyond the frame) → probabilities float32 N×1×S×S, one engine call
    for all crops where the engine takes a batch, else one per crop. :meth:`paste`:
    those masks back into one frame-sized probability map (pixel-wise maximum), each
    faded out towards its crop's left and right edges so a crop's share of a
    neighbour does not spread past that neighbour's own crop. ``__call__`` does both.
    """

    def __init__(self, engine: Engine, size: int = SEGMENTER_INPUT) -> None:
        self.engine = engine
        self.size = size
        self.batches: bool | None = None  # None: not tried yet
        self._plane: torch.Tensor | None = None
        ramp = (0.5 - (torch.arange(size) + 0.5).div(size).sub(0.5).abs()) / SIDE_FADE
        self._window = ramp.clamp(0.0, 1.0).view(1, 1, 1, size)

    def __call__(self, frame: torch.Tensor, crops: Sequence[Box]) -> torch.Tensor:
        """Segment and paste: float32 1×1×H×W, a buffer owned by this object and
        overwritten by the next call (0 outside every crop)."""
        masks = self.segment(frame, crops) if crops else None
        pieces = [] if masks is None else list(zip(crops, masks, strict=True))
        return self.paste((frame.shape[1], frame.shape[0]), frame.device, pieces)

    def segment(self, frame: torch.Tensor, crops: Sequence[Box]) -> torch.Tensor:
        """Probabilities float32 N×1×S×S for ``crops`` (a new tensor), faded at the sides."""
        inputs = torch.cat([self._input(frame, crop) for crop in crops])
        return self._run(inputs).float() * self._window.to(inputs.device)

    def paste(self, frame_size: tuple[int, int], device: torch.device,
              pieces: Sequence[tuple[Box, torch.Tensor]]) -> torch.Tensor:
        """``pieces``: (crop, 1×S×S mask from :meth:`segment`) → the frame map
        float32 1×1×H×W (this object's buffer, overwritten by the next call)."""
        width, height = frame_size
        plane = self._plane
        if plane is None or plane.shape[2:] != (height, width) or plane.device != device:
            plane = self._plane = torch.zeros((1, 1, height, width), device=device)
        plane.zero_()
        for crop, mask in pieces:
            self._paste(plane, mask[None], crop)
        return plane

    def own_box(self, mask: torch.Tensor, crop: Box, frame_size: tuple[int, int],
                threshold: float = 0.5) -> Box | None:
        """Where a crop's own mask (1×S×S from :meth:`segment`) is above ``threshold``,
        as a box in frame pixels clipped to the frame, or ``None``."""
        tight = person_box(mask[None], threshold)
        if tight is None:
            return None
        x0, y0, x1, _ = crop
        scale = (x1 - x0) / self.size
        width, height = frame_size
        box = (x0 + int(tight[0] * scale), y0 + int(tight[1] * scale),
               x0 + int(-(-tight[2] * scale // 1)), y0 + int(-(-tight[3] * scale // 1)))
        return intersection(box, (0, 0, width, height))

    def _run(self, inputs: torch.Tensor) -> torch.Tensor:
        """N×3×S×S → N×1×S×S, batched once the engine has shown it takes a batch."""
        if len(inputs) > 1 and self.batches is not False:
            try:
                masks = self.engine({"image": inputs})["mask"]
                self.batches = True
                return masks
            except Exception as exc:  # a fixed batch of 1 (ONNX Runtime, a plan)
                if self.batches:
                    raise
                self.batches = False
                log.debug("%s takes one crop a call (%s)", self.engine.name, exc)
        return torch.cat([self.engine({"image": one[None]})["mask"] for one in inputs])

    def _input(self, frame: torch.Tensor, crop: Box) -> torch.Tensor:
        """The crop scaled to S×S as float32 1×3×S×S RGB in [0, 1], black beyond the frame."""
        x0, y0, x1, _ = crop
        side = x1 - x0
        if frame.device.type == "cpu":
            import cv2

            scale = self.size / side
            matrix = np.array([[scale, 0, -x0 * scale], [0, scale, -y0 * scale]], np.float32)
            flags = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
            warped = cv2.warpAffine(frame.numpy(), matrix, (self.size, self.size),
                                    flags=flags, borderMode=cv2.BORDER_CONSTANT)
            return ops.bgr8_to_rgb_float(torch.from_numpy(warped))
        height, width = frame.shape[:2]
        inside = intersection(crop, (0, 0, width, height))
        canvas = torch.zeros((1, 3, side, side), device=frame.device)
        if inside is not None:
            ix0, iy0, ix1, iy1 = inside
            canvas[:, :, iy0 - y0:iy1 - y0, ix0 - x0:ix1 - x0] = ops.bgr8_to_rgb_float(
                frame[iy0:iy1, ix0:ix1])
        return F.interpolate(canvas, size=(self.size, self.size), mode="bilinear",
                             antialias=side > self.size, align_corners=False)

    @staticmethod
    def _paste(plane: torch.Tensor, mask: torch.Tensor, crop: Box) -> None:
        """Max ``mask`` (1×1×S×S) scaled to the crop into ``plane`` where they overlap."""
        height, width = plane.shape[2:]
        inside = intersection(crop, (0, 0, width, height))
        if inside is None:
            return
        x0, y0, x1, y1 = crop
        scaled = ops.resize_plane(mask.float(), (x1 - x0, y1 - y0))
        ix0, iy0, ix1, iy1 = inside
        part = scaled[:, :, iy0 - y0:iy1 - y0, ix0 - x0:ix1 - x0].to(plane.device)
        target = plane[:, :, iy0:iy1, ix0:ix1]
        torch.maximum(target, part, out=target)

    def close(self) -> None:
        self.engine.close()
        self._plane = None


@dataclasses.dataclass
class _Segmented:
    """A person's last segmentation: the crop it was made on, its 1×S×S mask, the box
    of its own mask in frame pixels (or ``None``), the frame it was made on, and the
    crop's thumbnail then (:func:`crop_thumbnail`; ``None``: not kept)."""

    crop: Box
    mask: torch.Tensor
    own: Box | None
    frame: int
    thumb: np.ndarray | None = None


class FinderSchedule:
    """Which of ``count`` tiles to scan on each frame: ``per_frame`` tiles in turn on
    every ``every``-th frame, so a full scan takes ``every × ceil(count / per_frame)``
    frames and its cost is spread over them."""

    def __init__(self, count: int, per_frame: int = 1, every: int = 1) -> None:
        self.count = count
        self.per_frame = max(1, per_frame)
        self.every = max(1, every)
        self._next = 0
        self._frame = 0

    def next(self) -> list[int]:
        """This frame's tile indices (none on the frames in between)."""
        self._frame += 1
        if self.count == 0 or (self._frame - 1) % self.every:
            return []
        chosen = [(self._next + i) % self.count for i in range(min(self.per_frame, self.count))]
        self._next = (self._next + len(chosen)) % self.count
        return chosen

    @property
    def frames_per_scan(self) -> int:
        return self.every * -(-self.count // self.per_frame)


@dataclasses.dataclass
class PeopleResult:
    """One frame of the many-people path: ``mask`` float32 1×1×H×W (a new tensor, or
    ``None`` when nobody is tracked), ``regions`` the SR boxes, ``people`` how many
    people those regions enhance."""

    mask: torch.Tensor | None
    regions: list[Box]
    people: int


class PeopleFinder:
    """Faces found on a schedule, tracked, each segmented in its own crop.

    :meth:`look` runs the finder on this frame's tiles and updates the tracks (also
    used by the close-up path, to notice people arriving); :meth:`process` turns the
    tracks into the frame mask and the SR regions. Owns its tracker, mask smoother and
    each track's sticky SR region; :meth:`reset` forgets them.
    """

    def __init__(self, finder: Finder, segmenter: CropSegmenter, smoother: MaskSmoother, *,
                 context: int = 16, bucket: int = 32, tiles_per_frame: int = 1,
                 finder_every: int = 2, crops_per_frame: int = CROPS_PER_FRAME,
                 whole: Callable[[torch.Tensor], torch.Tensor] | None = None,
                 max_area_fraction: float = MAX_AREA_FRACTION,
                 tracker_options: Mapping[str, Any] | None = None) -> None:
        self.finder = finder
        self.segmenter = segmenter
        self.smoother = smoother
        self.context = context
        self.bucket = bucket
        self.tiles_per_frame = tiles_per_frame
        self.finder_every = finder_every
        self.crops_per_frame = crops_per_frame
        self.whole = whole
        self._whole_due = True
        self._whole_full: torch.Tensor | None = None
        self._whole_reuse = reuse.MaskReuse()  # its last raw mask, on still frames
        self._blob_boxes: dict[int, Box] = {}
        self._next_blob = 0
        self._first_look = self._first_segment = True
        """After a reset the finder scans every tile at once (and shows what it finds)
        and everyone found is segmented at once: a still image gets one frame."""
        self._segmented: dict[int, _Segmented] = {}
        self._frame = 0
        self._scans: list[tuple[Box, float]] = []
        self._padded: np.ndarray | None = None
        self.max_area_fraction = max_area_fraction
        self._tracker_options = dict(tracker_options or {})
        self._frame_size: tuple[int, int] | None = None
        self._schedule: FinderSchedule | None = None
        self.tracker: BoxTracker | None = None
        self._regions: dict[int, Box] = {}

    def reset(self) -> None:
        self.smoother.reset()
        self._regions = {}
        self._segmented = {}
        self._whole_full = None
        self._whole_due = True
        self._whole_reuse.reset()
        self._blob_boxes = {}
        self._first_look = self._first_segment = True
        if self.tracker is not None:
            self.tracker.reset()

    def _prepare(self, frame_size: tuple[int, int]) -> None:
        self._frame_size = frame_size
        pad = FINDER_PAD
        width, height = frame_size
        self._padded = np.zeros((height + 2 * pad, width + 2 * pad, 3), np.uint8)
        tiles = self.finder.plan((width + 2 * pad, height + 2 * pad)).tiles
        self._scans = [((t.x0 - pad, t.y0 - pad, t.x0 + t.size - pad, t.y0 + t.size - pad),
                        FINDER_MIN_FACE * t.size / FINDER_INPUT) for t in tiles]
        self._schedule = FinderSchedule(len(tiles), self.tiles_per_frame, self.finder_every)
        # a track unseen for three full scans is gone, whatever the tiles said
        options = {"max_age": 3 * self._schedule.frames_per_scan + 2, **self._tracker_options}
        self.tracker = BoxTracker(frame_size, **options)
        self.reset()  # a new size: nothing seen yet

    def set_every(self, every: int) -> None:
        """Run the finder on every ``every``-th frame from now on (the close-up path
        only watches for people arriving and scans at half the rate); tracks age out
        after three full scans at the new rate."""
        self.finder_every = every
        if self._schedule is not None and self._schedule.every != every:
            self._schedule.every = every
            if self.tracker is not None and "max_age" not in self._tracker_options:
                self.tracker.max_age = 3 * self._schedule.frames_per_scan + 2

    @property
    def tracks(self) -> list[Track]:
        return [] if self.tracker is None else self.tracker.visible

    def look(self, frame: torch.Tensor) -> list[Track]:
        """Run the finder on this frame's tiles; returns the visible tracks."""
        size = (frame.shape[1], frame.shape[0])
        if size != self._frame_size:
            self._prepare(size)
        assert self._schedule is not None and self.tracker is not None
        tiles = self._schedule.next()
        first = self._first_look
        if first:  # a still image, or the first frame of a stream: look everywhere now
            tiles, self._first_look = list(range(self._schedule.count)), False
        if not tiles:
            self._whole_due = True  # the finder rests: the whole-frame mask's turn
            return self.tracker.update([], [])
        host = frame.numpy() if frame.device.type == "cpu" else frame.cpu().numpy()
        pad, padded = FINDER_PAD, self._padded
        assert padded is not None
        padded[pad:pad + size[1], pad:pad + size[0]] = host
        found = self.finder.detect(padded, tiles)
        shifted = [(tuple(float(v) - pad for v in d.box), float(d.score)) for d in found]
        inside = [(box, score) for box, score in shifted
                  if 0 <= (box[0] + box[2]) / 2 < size[0] and 0 <= (box[1] + box[3]) / 2 < size[1]]
        detections = drop_chest_faces(inside)
        scans = [self._scans[i] for i in tiles]
        visible = self.tracker.update(detections, scans)  # type: ignore[arg-type]
        if first:  # one full scan is all a still image gets: show what it found
            visible = self.tracker.confirm_all()
        return visible

    def process(self, frame: torch.Tensor, feather_radius: int,
                crops_per_frame: int | None = None, skip_still: bool = False
                ) -> PeopleResult:
        """The mask and SR regions for the tracks as they are after :meth:`look`;
        at most ``crops_per_frame`` people segmented anew (``None``: the constructor's).
        ``skip_still`` (a frame on the CPU): a person whose crop holds still since their
        last segmentation is not segmented again (:meth:`_refresh`)."""
        height, width = frame.shape[:2]
        self._frame += 1
        tracks = self.tracks
        self._refresh_whole(frame, skip_still)
        alive = {t.id for t in tracks}
        self._segmented = {k: v for k, v in self._segmented.items() if k in alive}
        if not tracks and self._whole_full is None:
            self._regions, self._blob_boxes = {}, {}
            self.smoother.reset()
            return PeopleResult(None, [], 0)
        if tracks:
            self._refresh(frame, tracks, crops_per_frame or self.crops_per_frame,
                          skip_still)
        done = [(t, self._segmented[t.id]) for t in tracks if t.id in self._segmented]
        probability = self.segmenter.paste((width, height), frame.device,
                                           [(seg.crop, seg.mask) for _, seg in done])
        if self._whole_full is not None:
            torch.maximum(probability, self._whole_full.to(probability.device),
                          out=probability)
        self.smoother.feather_radius = feather_radius
        mask = self.smoother(probability.clone())
        owners = {t.id: seg.own for t, seg in done}
        crops = {t.id: seg.crop for t, seg in done}
        unclaimed = self._claim(self._blobs(mask, list(crops.values())), owners, crops)
        blobs = self._name_blobs(unclaimed)
        alive |= {ident for ident, _ in blobs}
        self._regions = {k: v for k, v in self._regions.items() if k in alive}
        regions, people = self._sr_regions([*owners.items(), *blobs], (width, height))
        if not regions and not tracks:
            return PeopleResult(None, [], 0)
        return PeopleResult(mask, regions, people)

    def _refresh_whole(self, frame: torch.Tensor, skip_still: bool = False) -> None:
        """Run the whole-frame segmenter on the frames the finder rests (and the first);
        with ``skip_still`` (a CPU frame) not while the frame held still outside the
        solid inside of the people it found last (:class:`~localsr_cam.process.reuse.MaskReuse`:
        its mask would come out the same)."""
        if self.whole is None or not self._whole_due:
            return
        self._whole_due = False
        thumb = reuse.thumbnail(frame) if skip_still else None
        if self._whole_reuse.reusable(thumb, skip_by_level=False) is not None:
            return
        low = self.whole(frame).float()
        if thumb is not None:
            self._whole_reuse.store(low.clone(), thumb)  # the engine may reuse its buffer
        someone = bool((low >= 0.5).any())
        self._whole_full = ops.resize_plane(low.clone(), (frame.shape[1], frame.shape[0])) \
            if someone else None

    @staticmethod
    def _claim(blobs: Sequence[Box], owners: dict[int, Box | None],
               crops: dict[int, Box]) -> list[Box]:
        """Blobs below a person's crop (their body, which the square crop cuts off)
        join that person's box; returns the blobs nobody claims."""
        unclaimed = []
        for blob in blobs:
            best, claimant = 0, None
            for ident, (x0, _, x1, y1) in crops.items():
                below = intersection(blob, (x0, y1 - 2, x1, y1 + (x1 - x0)))
                if below is not None and area(below) > best:
                    best, claimant = area(below), ident
            if claimant is None:
                unclaimed.append(blob)
                continue
            own = owners.get(claimant)
            owners[claimant] = blob if own is None else union(own, blob)
        return unclaimed

    def _blobs(self, mask: torch.Tensor, crops: Sequence[Box]) -> list[Box]:
        """People the smoothed mask (float32 1×1×H×W) holds outside every person's
        crop: the finder missed them (a face turned away, in shadow, cut by the frame's
        edge) but the whole-frame mask did not; or the lower body of someone whose crop
        stops at the chest. Boxes in frame pixels; only while the whole-frame mask is in
        use."""
        if self._whole_full is None:
            self._blob_boxes = {}
            return []
        import cv2

        # at half resolution: a quarter of the work, and blobs are much larger than 2 px
        plane = mask[0, 0, ::2, ::2]
        binary = (plane >= 0.5).to(torch.uint8).cpu().numpy()
        for x0, y0, x1, y1 in crops:
            binary[max(0, y0 // 2):max(0, -(-y1 // 2)), max(0, x0 // 2):max(0, -(-x1 // 2))] = 0
        count, _, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
        least = BLOB_MIN_FRACTION * binary.size
        height, width = mask.shape[2:]
        boxes = []
        for index in range(1, count):
            left, top, wide, tall, pixels = (int(v) for v in stats[index])
            if pixels >= least:
                boxes.append((2 * left, 2 * top, min(width, 2 * (left + wide)),
                              min(height, 2 * (top + tall))))
        return boxes

    def _name_blobs(self, boxes: Sequence[Box]) -> list[tuple[int, Box | None]]:
        """Give each blob the id of last frame's blob it overlaps most (IoU ≥ 0.3), or
        a new one, so its SR region stays put from frame to frame."""
        named: dict[int, Box] = {}
        for box in boxes:
            best = max(((iou(box, old), ident) for ident, old in self._blob_boxes.items()
                        if ident not in named), default=(0.0, 0))
            if best[0] >= 0.3:
                ident = best[1]
            else:
                self._next_blob -= 1
                ident = self._next_blob
            named[ident] = box
        self._blob_boxes = named
        return list(named.items())

    def _refresh(self, frame: torch.Tensor, tracks: Sequence[Track], per_frame: int,
                 skip_still: bool = False) -> None:
        """Segment up to ``per_frame`` people: those never segmented, then those
        whose crop moved, then whoever waited longest. With ``skip_still``, not those
        whose crop is where it was and whose picture held still since (no cell of its
        thumbnail moved by :data:`~localsr_cam.process.reuse.CELL_THRESHOLD` grey levels):
        their mask would come out the same. A meeting room is mostly people listening,
        and a mask per person is most of its frame's work."""
        size = (frame.shape[1], frame.shape[0])
        crops = {t.id: crop_for_face(t.shown) for t in tracks}
        thumbs: dict[int, np.ndarray | None] = {}
        if skip_still:
            thumbs = {t.id: crop_thumbnail(frame, crops[t.id]) for t in tracks}
            tracks = [t for t in tracks if not self._held_still(t.id, crops[t.id],
                                                                thumbs[t.id])]

        def priority(track: Track) -> tuple[int, int]:
            seg = self._segmented.get(track.id)
            if seg is None:
                return 0, 0
            return (1 if seg.crop != crops[track.id] else 2), seg.frame

        limit = len(tracks) if self._first_segment else per_frame
        self._first_segment = False
        chosen = sorted(tracks, key=priority)[:limit]
        if not chosen:
            return
        masks = self.segmenter.segment(frame, [crops[t.id] for t in chosen])
        for track, mask in zip(chosen, masks, strict=True):
            crop = crops[track.id]
            own = self.segmenter.own_box(mask, crop, size)
            self._segmented[track.id] = _Segmented(crop, mask, own, self._frame,
                                                   thumbs.get(track.id))

    def _held_still(self, ident: int, crop: Box, thumb: np.ndarray | None) -> bool:
        """Whether track ``ident`` was segmented on ``crop`` and no cell of the crop's
        thumbnail changed since."""
        seg = self._segmented.get(ident)
        if seg is None or seg.crop != crop or thumb is None:
            return False
        cells = reuse.changed_cells(seg.thumb, thumb)
        return cells is not None and not bool(cells.any())

    def _sr_regions(self, owners: Sequence[tuple[int, Box | None]],
                    frame_size: tuple[int, int]) -> tuple[list[Box], int]:
        """One steady region per person whose own mask is not empty (that mask's box
        plus context, bucketed), capped in total area, then merged where merging
        wastes little."""
        width, height = frame_size
        wanted: list[Box] = []
        for ident, tight in owners:
            if tight is None:
                continue
            needed = grown(tight, self.context, frame_size)
            fresh = align_even(bucket_box(tight, frame_size, self.context, self.bucket),
                               frame_size)
            region = sticky_region(self._regions.get(ident), snap_even(needed, frame_size),
                                   fresh)
            self._regions[ident] = region
            wanted.append(region)
        if not wanted:
            return [], 0
        capped = cap_total_area(wanted, int(self.max_area_fraction * width * height))
        merged = merge_overlapping(capped, max_waste=MERGE_WASTE)
        merged.sort(key=area, reverse=True)
        return merged, len(capped)

    def close(self) -> None:
        self.segmenter.close()
        self.finder.engine.close()
