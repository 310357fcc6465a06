"""Following people's boxes across frames: smoothed, with hysteresis, snapped.

Two pieces, both cheap bookkeeping on a few boxes a frame:

- :class:`BoxTracker` follows detections (face boxes from the finder, which may run
  only every few frames and only on some tiles of the frame). A detection matched to
  a track moves it by an exponential moving average; the box it reports (``shown``)
  moves only when the smoothed box has drifted past a dead band, so detector noise on
  a still subject gives a box that does not move at all. A new track is shown after
  ``confirm_hits`` detections (a one-off false detection never shows), and a track
  is dropped only after ``max_misses`` scans of its place in a row missed it, or it
  went unseen for ``max_age`` frames (one missed detection never makes it blink).
- :func:`sticky_region` keeps last frame's SR region while it still holds what must
  be super-resolved and is not much larger than needed, so the SR crop grid stays put
  from frame to frame (no flicker from a crop that shifts by a pixel).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from localsr_cam.process.regions import Box, area, contains, iou, snap_even

FloatBox = tuple[float, float, float, float]
Scan = tuple[Box, float]
"""A part of the frame the finder looked at: (box in frame pixels, the smallest face
height in frame pixels it can find there)."""


@dataclasses.dataclass
class Track:
    """One person followed across frames.

    ``box``: the smoothed detection box (float pixels). ``shown``: the box reported to
    the rest of the pipeline (integer, even corners); it changes only when ``box``
    drifts past the dead band. ``hits``: detections matched so far. ``misses``: scans
    in a row that looked at its place and missed it. ``age``: frames since its last
    detection. ``score``: the last detection's score.
    """

    id: int
    box: FloatBox
    shown: Box
    score: float
    hits: int = 1
    misses: int = 0
    age: int = 0
    confirmed: bool = False
    anchor: FloatBox | None = None
    """The smoothed box when ``shown`` was last set: drift is measured from it."""

    @property
    def centre(self) -> tuple[float, float]:
        return (self.box[0] + self.box[2]) / 2, (self.box[1] + self.box[3]) / 2

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]


class BoxTracker:
    """Tracks boxes across frames; call :meth:`update` once a frame.

    ``smoothing``: weight of the old box in the moving average (0 = follow each
    detection). ``deadband``: how far (fraction of the box's height, at least
    ``min_deadband_px``) any edge of the smoothed box must move before ``shown`` follows.
    ``match_iou``: least IoU for a detection to continue a track. ``confirm_hits``,
    ``max_misses``, ``max_age``: the show/drop hysteresis in the module notes.
    """

    def __init__(self, frame_size: tuple[int, int], *, smoothing: float = 0.5,
                 deadband: float = 0.08, min_deadband_px: float = 2.0,
                 match_iou: float = 0.2, confirm_hits: int = 2, max_misses: int = 2,
                 max_age: int = 90) -> None:
        self.frame_size = frame_size
        self.smoothing = smoothing
        self.deadband = deadband
        self.min_deadband_px = min_deadband_px
        self.match_iou = match_iou
        self.confirm_hits = confirm_hits
        self.max_misses = max_misses
        self.max_age = max_age
        self.tracks: list[Track] = []
        self._next_id = 0

    def reset(self) -> None:
        self.tracks = []

    @property
    def visible(self) -> list[Track]:
        """Confirmed tracks, oldest first (a stable order from frame to frame)."""
        return [track for track in self.tracks if track.confirmed]

    def update(self, detections: Sequence[tuple[FloatBox, float]],
               scanned: Sequence[Scan] | None = None) -> list[Track]:
        """Fold one frame's detections in; returns :attr:`visible`.

        ``detections``: ``(box, score)`` pairs in frame pixels. ``scanned``: the parts
        of the frame the finder looked at this frame, each with the smallest face it
        finds there (``None``: all of it, every size; empty: the finder did not run, so
        nobody can be missed).
        """
        for track in self.tracks:
            track.age += 1
        unmatched = self._match(detections)
        for track in self.tracks:
            if track.age > 0 and self._was_looked_at(track, scanned):
                track.misses += 1
        self.tracks = [t for t in self.tracks
                       if t.misses <= self.max_misses and t.age <= self.max_age]
        for box, score in unmatched:
            self._start(box, score)
        self._drop_duplicates()
        return self.visible

    def confirm_all(self) -> list[Track]:
        """Show every track now (a still image has no second frame to confirm them);
        returns :attr:`visible`."""
        for track in self.tracks:
            if not track.confirmed:
                track.confirmed = True
                self._show(track)
        return self.visible

    def _match(self, detections: Sequence[tuple[FloatBox, float]]
               ) -> list[tuple[FloatBox, float]]:
        """Greedy matching by IoU, best pairs first; returns the unmatched detections."""
        pairs = sorted(((iou(track.box, box), t, d)
                        for t, track in enumerate(self.tracks)
                        for d, (box, _) in enumerate(detections)), reverse=True)
        used_tracks: set[int] = set()
        used_detections: set[int] = set()
        for overlap, t, d in pairs:
            if overlap < self.match_iou:
                break
            if t in used_tracks or d in used_detections:
                continue
            used_tracks.add(t)
            used_detections.add(d)
            self._follow(self.tracks[t], *detections[d])
        return [det for d, det in enumerate(detections) if d not in used_detections]

    def _follow(self, track: Track, box: FloatBox, score: float) -> None:
        keep = self.smoothing
        track.box = tuple(keep * old + (1 - keep) * new  # type: ignore[assignment]
                          for old, new in zip(track.box, box, strict=True))
        track.score = score
        track.hits += 1
        track.misses = 0
        track.age = 0
        if not track.confirmed and track.hits >= self.confirm_hits:
            track.confirmed = True
            self._show(track)
        elif self._drifted(track):
            self._show(track)

    def _show(self, track: Track) -> None:
        track.shown = self._snap(track.box)
        track.anchor = track.box

    def _start(self, box: FloatBox, score: float) -> None:
        track = Track(self._next_id, box, self._snap(box), score, anchor=box)
        track.confirmed = self.confirm_hits <= 1
        self._next_id += 1
        self.tracks.append(track)

    def _drifted(self, track: Track) -> bool:
        band = max(self.min_deadband_px, self.deadband * track.height)
        anchor = track.anchor or track.box
        return any(abs(a - b) > band for a, b in zip(track.box, anchor, strict=True))

    def _snap(self, box: FloatBox) -> Box:
        rounded = (int(box[0] // 1), int(box[1] // 1), -int(-box[2] // 1), -int(-box[3] // 1))
        return snap_even(rounded, self.frame_size)

    @staticmethod
    def _was_looked_at(track: Track, scanned: Sequence[Scan] | None) -> bool:
        """Whether a scan this frame covered the whole of the track's box at a scale
        that finds a face of its size."""
        if scanned is None:
            return True
        box = track.shown
        return any(contains(tile, box) and track.height >= smallest
                   for tile, smallest in scanned)

    def _drop_duplicates(self, overlap: float = 0.5) -> None:
        """Two tracks on one person (e.g. started from two tiles): keep the older."""
        kept: list[Track] = []
        for track in self.tracks:
            if all(iou(track.box, other.box) < overlap for other in kept):
                kept.append(track)
        self.tracks = kept


def sticky_region(previous: Box | None, needed: Box, wanted: Box,
                  max_growth: float = 1.6) -> Box:
    """Last frame's SR region if it still holds ``needed`` and is at most
    ``max_growth`` × the area of ``wanted``; otherwise ``wanted``.

    ``needed``: what must be covered (the tight person box plus context, clipped to the
    frame). ``wanted``: the region one would choose afresh (bucketed, snapped).
    """
    if previous is not None and contains(previous, needed) \
            and area(previous) <= max_growth * area(wanted):
        return previous
    return wanted
