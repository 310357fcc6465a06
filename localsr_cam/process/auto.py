"""``--segmenter auto``: the close-up path or the many-people path, with hysteresis.

The close-up path (today's: one selfie mask of the whole frame) is right for one
person near the camera; the many-people path (a face finder, then one selfie crop per
person, :mod:`localsr_cam.process.people`) for groups and people further away. What
the finder sees decides:

- two or more people, or one whose face is small (under ``far_face`` of the frame's
  height): the many-people path;
- one person whose face is large (at least ``near_face``): close-up;
- nobody found, but the close-up mask holds a sizeable person: close-up (a face turned
  away or too close for the finder);
- anything else (a face between the two sizes, nobody at all): no change.

A switch happens only after ``patience`` frames in a row asked for it, so a flicker of
the evidence does not flip the path (and with it the mask) back and forth.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from localsr_cam.process.tracking import Track

log = logging.getLogger(__name__)

CLOSE_UP = "close-up"
PEOPLE = "people"


class PathChooser:
    """Decides the path frame by frame; :attr:`path` is the current one."""

    def __init__(self, frame_height: int, *, start: str = CLOSE_UP, near_face: float = 0.16,
                 far_face: float = 0.12, closeup_foreground: float = 0.08,
                 patience: int = 15) -> None:
        self.frame_height = frame_height
        self.path = start
        self.near_face = near_face
        self.far_face = far_face
        self.closeup_foreground = closeup_foreground
        self.patience = patience
        self.switches = 0
        self._streak = 0
        self.settled = False

    def wanted(self, tracks: Sequence[Track], foreground: float | None) -> str | None:
        """The path this frame's evidence asks for, or ``None`` for no preference.

        ``foreground``: mean of the close-up mask when it ran this frame, else ``None``.
        """
        if len(tracks) >= 2:
            return PEOPLE
        if len(tracks) == 1:
            face = tracks[0].height / self.frame_height
            if face < self.far_face:
                return PEOPLE
            if face >= self.near_face:
                return CLOSE_UP
            return None
        if foreground is not None and foreground >= self.closeup_foreground:
            return CLOSE_UP
        return None

    def settle(self, tracks: Sequence[Track]) -> str:
        """The first frame's choice, made at once (a still image has only that frame):
        the path the finder's first full scan asks for, else the starting one."""
        wanted = self.wanted(tracks, None) if not self.settled else None
        self.settled = True
        if wanted is not None and wanted != self.path:
            log.info("segmenter auto: starting on the %s path (%d people found)", wanted,
                     len(tracks))
            self.path = wanted
        return self.path

    def update(self, tracks: Sequence[Track], foreground: float | None) -> str:
        """Fold in one frame's evidence; returns the path for the next frame."""
        wanted = self.wanted(tracks, foreground)
        if wanted is None or wanted == self.path:
            self._streak = 0
            return self.path
        self._streak += 1
        if self._streak >= self.patience:
            log.info("segmenter auto: switching from the %s path to the %s path "
                     "(%d people found)", self.path, wanted, len(tracks))
            self.path = wanted
            self.switches += 1
            self._streak = 0
        return self.path


class NobodyNotice:
    """Says once, in the log, when nobody has been enhanced for ``after_s`` seconds.

    ``update(people, now)`` once a frame; the notice is logged again only after
    someone was enhanced in between.
    """

    def __init__(self, after_s: float = 3.0) -> None:
        self.after_s = after_s
        self._since: float | None = None
        self._said = False

    def update(self, people: int, now: float) -> bool:
        """Returns True on the frame the notice is logged."""
        if people > 0:
            self._since, self._said = None, False
            return False
        if self._since is None:
            self._since = now
        if not self._said and now - self._since >= self.after_s:
            self._said = True
            log.warning("nobody found for %.0f s: the output is plain upscaling",
                        self.after_s)
            return True
        return False
