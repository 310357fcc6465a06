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
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np
import torch
import torch.nn.functional as F

from localsr_cam import ops
from localsr_cam.engines import Engine
from localsr_cam.localize import MaskSmoother, bucket_box, person_box
from localsr_cam.process.regions import (
    Box,
    area,
    cap_total_area,
    intersection,
    merge_overlapping,
    snap_even,
)
from localsr_cam.process.tracking import BoxTracker, Track, sticky_region

log = logging.getLogger(__name__)

SEGMENTER_INPUT = 256
"""Side of the general selfie segmenter's square input: each person's crop is scaled
to it (the model's native size, where it was trained)."""

CROP_SIDE_FACES = 4.0
"""A person's crop is a square this many face heights on a side ..."""
CROP_TOP_FACES = 0.9
"""... whose top is this many face heights above the top of the face (hair, a raised
hand), centred on the face across."""

MAX_AREA_FRACTION = 0.6
"""The SR regions together cover at most this share of the frame (the most confident,
largest people first); the cost of SR grows with the area."""


class Detection(Protocol):
    """A face the finder saw: ``box`` (x0, y0, x1, y1) in frame pixels, ``score`` 0–1."""

    box: Sequence[float]
    score: float


class Tile(Protocol):
    """A square window the finder looks at: top-left ``x0``, ``y0`` and ``size`` in
    frame pixels (it may reach past the frame)."""

    x0: int
    y0: int
    size: int


class Plan(Protocol):
    tiles: Sequence[Tile]


class Finder(Protocol):
    """What :class:`PeopleFinder` needs from a face finder
    (:class:`localsr_cam.process.faces.FaceFinder`).

    ``plan(frame_size)``: the tiles a full scan looks at. ``detect(frame, tiles)``:
    faces found in those tiles (indices into the plan's) of a uint8 H×W×3 BGR frame
    (numpy), duplicates across tiles already merged. ``engine``: the engine it runs,
    closed by :meth:`PeopleFinder.close`.
    """

    engine: Engine

    def plan(self, frame_size: tuple[int, int]) -> Plan: ...

    def detect(self, frame: np.ndarray, tiles: Sequence[int] | None = None
               ) -> Sequence[Detection]: ...


FINDER_MIN_FACE = 20.0
"""Smallest face (pixels of the finder's 192 px input) it finds: a tile of ``size``
frame pixels finds faces from ``FINDER_MIN_FACE × size / 192`` frame pixels."""
FINDER_INPUT = 192


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


class CropSegmenter:
    """Runs a fixed-input selfie segmenter on square crops of a frame.

    ``__call__(frame, crops)``: frame uint8 H×W×3 BGR tensor, crops square boxes in
    frame pixels (may reach beyond the frame) → probability float32 1×1×H×W, the
    pixel-wise maximum of every crop's mask pasted back (0 outside every crop). The
    result is a buffer owned by this object, overwritten by the next call: copy it or
    use it before then. One engine call for all crops where the engine takes a batch,
    else one per crop.
    """

    def __init__(self, engine: Engine, size: int = SEGMENTER_INPUT) -> None:
        self.engine = engine
        self.size = size
        self.batches: bool | None = None  # None: not tried yet
        self._plane: torch.Tensor | None = None

    def __call__(self, frame: torch.Tensor, crops: Sequence[Box]) -> torch.Tensor:
        height, width = frame.shape[:2]
        plane = self._plane
        if plane is None or plane.shape[2:] != (height, width) or plane.device != frame.device:
            plane = self._plane = torch.zeros((1, 1, height, width), device=frame.device)
        plane.zero_()
        if not crops:
            return plane
        inputs = torch.cat([self._input(frame, crop) for crop in crops])
        masks = self._run(inputs)
        for crop, mask in zip(crops, masks, strict=True):
            self._paste(plane, mask[None], crop)
        return plane

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
                 finder_every: int = 2,
                 max_area_fraction: float = MAX_AREA_FRACTION,
                 tracker_options: Mapping[str, Any] | None = None) -> None:
        self.finder = finder
        self.segmenter = segmenter
        self.smoother = smoother
        self.context = context
        self.bucket = bucket
        self.tiles_per_frame = tiles_per_frame
        self.finder_every = finder_every
        self._scans: list[tuple[Box, float]] = []
        self.max_area_fraction = max_area_fraction
        self._tracker_options = dict(tracker_options or {})
        self._frame_size: tuple[int, int] | None = None
        self._schedule: FinderSchedule | None = None
        self.tracker: BoxTracker | None = None
        self._regions: dict[int, Box] = {}

    def reset(self) -> None:
        self.smoother.reset()
        self._regions = {}
        if self.tracker is not None:
            self.tracker.reset()

    def _prepare(self, frame_size: tuple[int, int]) -> None:
        self._frame_size = frame_size
        tiles = self.finder.plan(frame_size).tiles
        self._scans = [((t.x0, t.y0, t.x0 + t.size, t.y0 + t.size),
                        FINDER_MIN_FACE * t.size / FINDER_INPUT) for t in tiles]
        self._schedule = FinderSchedule(len(tiles), self.tiles_per_frame, self.finder_every)
        # a track unseen for three full scans is gone, whatever the tiles said
        options = {"max_age": 3 * self._schedule.frames_per_scan + 2, **self._tracker_options}
        self.tracker = BoxTracker(frame_size, **options)
        self._regions = {}
        self.smoother.reset()

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
        if not tiles:
            return self.tracker.update([], [])
        host = frame.numpy() if frame.device.type == "cpu" else frame.cpu().numpy()
        found = self.finder.detect(host, tiles)
        detections = [(tuple(float(v) for v in d.box), float(d.score)) for d in found]
        scans = [self._scans[i] for i in tiles]
        return self.tracker.update(detections, scans)  # type: ignore[arg-type]

    def process(self, frame: torch.Tensor, feather_radius: int) -> PeopleResult:
        """The mask and SR regions for the tracks as they are after :meth:`look`."""
        height, width = frame.shape[:2]
        tracks = self.tracks
        self._regions = {k: v for k, v in self._regions.items()
                         if k in {t.id for t in tracks}}
        if not tracks:
            self.smoother.reset()
            return PeopleResult(None, [], 0)
        crops = [crop_for_face(track.shown) for track in tracks]
        probability = self.segmenter(frame, crops)
        self.smoother.feather_radius = feather_radius
        mask = self.smoother(probability.clone())
        regions, people = self._sr_regions(mask, tracks, crops, (width, height))
        return PeopleResult(mask, regions, people)

    def _sr_regions(self, mask: torch.Tensor, tracks: Sequence[Track], crops: Sequence[Box],
                    frame_size: tuple[int, int]) -> tuple[list[Box], int]:
        """One steady region per person whose mask is not empty, merged and capped."""
        width, height = frame_size
        wanted: list[tuple[Box, int]] = []
        for track, crop in zip(tracks, crops, strict=True):
            inside = intersection(crop, (0, 0, width, height))
            if inside is None:
                continue
            x0, y0, x1, y1 = inside
            tight = person_box(mask[:, :, y0:y1, x0:x1])
            if tight is None:
                continue
            tight = (tight[0] + x0, tight[1] + y0, tight[2] + x0, tight[3] + y0)
            needed = (max(0, tight[0] - self.context), max(0, tight[1] - self.context),
                      min(width, tight[2] + self.context), min(height, tight[3] + self.context))
            fresh = snap_even(bucket_box(tight, frame_size, self.context, self.bucket),
                              frame_size)
            region = sticky_region(self._regions.get(track.id), snap_even(needed, frame_size),
                                   fresh)
            self._regions[track.id] = region
            wanted.append((region, track.id))
        if not wanted:
            return [], 0
        capped = cap_total_area([box for box, _ in wanted],
                                int(self.max_area_fraction * width * height))
        people = len(capped)
        merged = [snap_even(box, frame_size) for box in merge_overlapping(capped)]
        merged.sort(key=area, reverse=True)
        return merged, people

    def close(self) -> None:
        self.segmenter.close()
        self.finder.engine.close()
