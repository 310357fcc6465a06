"""What a camera films of a photo over several frames, for ``eval --frames``: the photo
held still, panned across (``--pan``), with its middle — the person — swaying over the
still rest (``--sway``), or zoomed in on (``--zoom``); and with any of them, the
camera's auto exposure ramping (``--exposure``).

Views are HR (uint8 H×W×3 BGR, even sides, new arrays); the degradation suite then
makes each one's LR frame with fresh sensor noise. Moves of a fraction of a pixel are
made by cubic interpolation, whole pixels exactly.

A still scene and a pan leave out the commonest motion on a call: a person who sways
and nods by a pixel or less a frame in front of a still room. Where the video path
keeps work from earlier frames (the temporal denoiser, the SR reused where the crop
did not change) that is where it can go wrong without a still scene or a pan showing
it (BENCHMARKS.md, Quality, "Session 21"). A camera's auto framing zooms instead of
panning, and a zoom is no shift: the noise readings took it for more noise and the
temporal denoiser took the moving texture as it came (BENCHMARKS.md, Quality,
"Session 23"). An auto exposure ramp scales the detail, which the temporal denoiser's
average held behind, and the SR of a darker frame was reused ("Session 23"). Both
leave the last frame as it would be without them, so the target does not change.
"""

from __future__ import annotations

import cv2
import numpy as np

from localsr_cam.capture.images import MIN_SIDE
from localsr_cam.errors import ConfigError

SWAY_PERIOD = 12
"""Frames of one sway to the right and back (0.4 s at 30 fps); up and down runs
1.37 times slower, so the path is not a line."""
PERSON_AXES = (0.3, 0.4)
"""Half-axes of the swaying ellipse (the person), as shares of the photo's width and
height, centred; its edge blends over the outer eighth of its radius²."""


def filmed_views(hr: np.ndarray, frames: int, pan: float = 0.0, sway: float = 0.0,
                 zoom: float = 0.0, exposure: float = 0.0) -> list[np.ndarray]:
    """``frames`` views of the photo ``hr``: panned (:func:`panned_views`) when ``pan``,
    swayed (:func:`swayed_views`) when ``sway``, zoomed (:func:`zoomed_views`) when
    ``zoom``, else the photo itself each time (one motion at most); then, when
    ``exposure``, its ramp (:func:`exposed_views`)."""
    if sum(bool(motion) for motion in (pan, sway, zoom)) > 1:
        raise ValueError("one motion at a time: pan, sway or zoom")
    if pan:
        views = panned_views(hr, frames, pan)
    elif sway:
        views = swayed_views(hr, frames, sway)
    elif zoom:
        views = zoomed_views(hr, frames, zoom)
    else:
        views = [hr] * frames
    return exposed_views(views, exposure) if exposure else views


def panned_views(hr: np.ndarray, frames: int, pan: float) -> list[np.ndarray]:
    """What a camera panning over the photo ``hr`` (uint8 H×W×3, even sides) films:
    ``frames`` windows of :func:`pan_window`'s size, each ``pan`` LR px (2·``pan`` HR
    px) right of the last and half that lower; uint8, new arrays."""
    height, width = hr.shape[:2]
    view_w, view_h = pan_window((width, height), frames, pan)
    views = []
    for index in range(frames):
        moved = _shifted(hr, -2.0 * pan * index, -pan * index)
        views.append(np.ascontiguousarray(moved[:view_h, :view_w]))
    return views


def pan_window(size: tuple[int, int], frames: int, pan: float, name: str = "the photo"
               ) -> tuple[int, int]:
    """(W, H), even, of the window a pan of ``frames`` frames keeps inside a photo of
    ``size`` (W, H) HR px; raises :class:`ConfigError` when it would be under
    :data:`MIN_SIDE` px."""
    width, height = size
    travel_x, travel_y = 2.0 * pan * (frames - 1), pan * (frames - 1)
    view_w = (width - int(np.ceil(travel_x))) // 2 * 2
    view_h = (height - int(np.ceil(travel_y))) // 2 * 2
    if min(view_w, view_h) < MIN_SIDE:
        raise ConfigError(f"--pan {pan:g} over {frames} frames moves {travel_x:.0f} px "
                          f"across {name} ({width}×{height}): too far; a smaller --pan or "
                          "fewer --frames")
    return view_w, view_h


def sway_offset(index: int, sway: float) -> tuple[float, float]:
    """(dx, dy) HR px of the person at frame ``index`` for a sway of ``sway`` LR px:
    up to ``sway`` either way across, half that up and down (its own, slower period)."""
    phase = 2.0 * np.pi * index / SWAY_PERIOD
    return 2.0 * sway * float(np.sin(phase)), sway * float(np.sin(phase / 1.37))


def person_weight(size: tuple[int, int], offset: tuple[float, float] = (0.0, 0.0)
                  ) -> np.ndarray:
    """float32 H×W×1 in [0, 1]: the swaying ellipse (:data:`PERSON_AXES`) of a photo of
    ``size`` (W, H), moved by ``offset`` (dx, dy) HR px."""
    width, height = size
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float32)
    radius = (((cols - width / 2 - offset[0]) / (PERSON_AXES[0] * width)) ** 2
              + ((rows - height / 2 - offset[1]) / (PERSON_AXES[1] * height)) ** 2)
    return np.clip((1.0 - radius) * 8.0, 0.0, 1.0)[..., None]


def swayed_views(hr: np.ndarray, frames: int, sway: float) -> list[np.ndarray]:
    """What a still camera films of a person swaying: the middle of the photo ``hr``
    (uint8 H×W×3), :func:`person_weight`'s ellipse, moved by :func:`sway_offset` at
    each of ``frames`` frames and blended over the photo held still (the room); uint8,
    new arrays, the photo's size. Frame 0 is the photo itself."""
    height, width = hr.shape[:2]
    views = []
    for index in range(frames):
        offset = sway_offset(index, sway)
        weight = person_weight((width, height), offset)
        person = _shifted(hr, *offset).astype(np.float32)
        view = weight * person + (1.0 - weight) * hr
        views.append(np.clip(np.rint(view), 0, 255).astype(np.uint8))
    return views


def zoomed_views(hr: np.ndarray, frames: int, zoom: float) -> list[np.ndarray]:
    """What a camera's auto framing (a digital zoom that follows the people: Apple's
    Center Stage, Logitech's RightSight) films zooming in ``zoom`` % a frame about the
    middle of the photo ``hr`` (uint8 H×W×3): frame ``i`` of ``frames`` is the photo
    scaled by (1 + ``zoom``/100)^(i − (``frames`` − 1)) about its centre, cubic, the
    edges a smaller view leaves reflected; uint8, new arrays, the photo's size. The last
    frame is the photo itself (the scale is exactly 1)."""
    height, width = hr.shape[:2]
    centre = ((width - 1) / 2.0, (height - 1) / 2.0)
    views = []
    for index in range(frames):
        scale = (1.0 + zoom / 100.0) ** (index - (frames - 1))
        matrix = cv2.getRotationMatrix2D(centre, 0.0, scale)
        views.append(cv2.warpAffine(hr, matrix, (width, height), flags=cv2.INTER_CUBIC,
                                    borderMode=cv2.BORDER_REFLECT))
    return views


def exposed_views(views: list[np.ndarray], exposure: float) -> list[np.ndarray]:
    """``views`` (uint8) as a camera's auto exposure ramping ``exposure`` % a frame films
    them: view ``i`` of N times (1 + ``exposure``/100)^(i − (N − 1)), rounded and
    clipped to 0…255; uint8, new arrays. The last view is as it was; earlier ones are
    darker (``exposure`` > 0: the camera brightening) or brighter (< 0). In float64:
    a long ramp's factor (0.9^−999 ≈ 10^46) overflows float32, and 0 × inf is NaN."""
    count = len(views)
    return [np.clip(np.rint(view * (1.0 + exposure / 100.0) ** (index - (count - 1))),
                    0, 255).astype(np.uint8)
            for index, view in enumerate(views)]


def _shifted(image: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """``image`` moved by (dx, dy) px, cubic, its edges reflected; a new array."""
    height, width = image.shape[:2]
    matrix = np.array([[1.0, 0.0, dx], [0.0, 1.0, dy]], np.float32)
    return cv2.warpAffine(image, matrix, (width, height), flags=cv2.INTER_CUBIC,
                          borderMode=cv2.BORDER_REFLECT)
