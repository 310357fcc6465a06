"""The processor's steps 1–3 when people are looked for (``--segmenter auto|people``).

Each frame: the face finder looks at this frame's tiles (``find`` stage); then either
the close-up path (the whole-frame selfie mask and one person box, the processor's
own) or the many-people path (:class:`~localsr_cam.process.people.PeopleFinder`) makes
the mask and the SR regions (``segment`` stage). With ``auto``,
:class:`~localsr_cam.process.auto.PathChooser` picks the path from what was found;
with ``people`` the many-people path always runs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from contextlib import AbstractContextManager

import torch

from localsr_cam.process.auto import CLOSE_UP, PEOPLE, PathChooser
from localsr_cam.process.people import PeopleFinder
from localsr_cam.process.regions import Box

FINDER_EVERY = {CLOSE_UP: 4, PEOPLE: 2}
"""The face finder runs one tile every this many frames on each path: on the close-up
path it only watches for people arriving (a full scan of 11 tiles at 640×360 then
takes 44 frames, 1.5 s, and costs about 1.4 ms a frame on the 2-core CPU); on the
people path it follows everyone (22 frames a scan, about 2.7 ms a frame)."""

CloseUp = Callable[[torch.Tensor, bool], tuple[torch.Tensor, Box | None]]
"""(frame uint8 H×W×3, fresh) → (soft mask float32 1×1×H×W, SR box or None): the
close-up path; ``fresh``: forget temporal state first (the path was just switched to)."""
Timer = Callable[[str], AbstractContextManager[None]]


@dataclasses.dataclass
class PeopleOutcome:
    """One frame's mask (float32 1×1×H×W or ``None``), SR regions, people enhanced,
    and the path that made them."""

    mask: torch.Tensor | None
    regions: list[Box]
    people: int
    path: str


class PeopleStep:
    """Finder, path choice and both paths for one stream; ``mode`` is ``auto`` or
    ``people``. Owns ``people`` (closes it)."""

    def __init__(self, mode: str, people: PeopleFinder,
                 chooser_options: dict[str, float] | None = None) -> None:
        if mode not in ("auto", PEOPLE):
            raise ValueError(f"mode must be auto or people, got {mode!r}")
        self.mode = mode
        self.people = people
        self._chooser_options = chooser_options or {}
        self.chooser: PathChooser | None = None
        self._last_path: str | None = None

    @property
    def path(self) -> str:
        if self.mode == PEOPLE:
            return PEOPLE
        return self.chooser.path if self.chooser is not None else CLOSE_UP

    def reset(self) -> None:
        self.people.reset()
        self.chooser = None
        self._last_path = None

    def __call__(self, frame: torch.Tensor, close_up: CloseUp, feather_radius: int,
                 timer: Timer, crops_per_frame: int | None = None,
                 skip_still: bool = False) -> PeopleOutcome:
        """This frame's people: the finder, then the people path (at most
        ``crops_per_frame`` crops segmented anew; ``None``: the finder's own limit;
        ``skip_still``: not those whose crop held still, a CPU frame) or ``close_up``
        for one person near the camera."""
        if self.chooser is None or self.chooser.frame_height != frame.shape[0]:
            self.chooser = PathChooser(frame.shape[0], **self._chooser_options)  # type: ignore[arg-type]
        with timer("find"):
            tracks = self.people.look(frame)
        if self.mode == "auto" and not self.chooser.settled:
            self.chooser.settle(tracks)
        path = self.path
        self.people.set_every(FINDER_EVERY[path])  # from the next frame on
        fresh, self._last_path = path != self._last_path, path
        if path == PEOPLE:
            with timer("segment"):
                if fresh:
                    self.people.smoother.reset()
                result = self.people.process(frame, feather_radius, crops_per_frame,
                                             skip_still)
            outcome = PeopleOutcome(result.mask, result.regions, result.people, path)
            foreground = None
        else:
            with timer("segment"):
                mask, box = close_up(frame, fresh)
            outcome = PeopleOutcome(mask, [] if box is None else [box], int(box is not None),
                                    path)
            foreground = None if tracks else float(mask.mean())
        if self.mode == "auto":
            self.chooser.update(tracks, foreground)
        return outcome

    def close(self) -> None:
        self.people.close()
