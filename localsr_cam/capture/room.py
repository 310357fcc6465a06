"""``--source synthetic:room``: a meeting room with five small people, from real photos.

Built like the portrait sample (:class:`~localsr_cam.capture.SyntheticSource`) from
photographs that ship with scikit-image: four people are cut-outs of its *astronaut*
portrait (mirrored and tinted differently, at different sizes) and one of its
*camera* photo's cameraman; the wall is the blurred, tinted right part of *camera*,
and a table drawn in front hides everyone's lower body. People sit at meeting-room
scale (faces 20–40 px tall at 640×360), sway a little, and one shifts along the
table over the clip, so finding and tracking are exercised. Frame ``i`` depends only
on ``i`` and the size; :meth:`RoomSource.faces` gives each frame's true face boxes.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from localsr_cam.capture.sources import DEFAULT_SIZE

ASTRONAUT_FACE = (171.0, 64.0, 280.0, 173.0)
"""The astronaut's face box in scikit-image's 512×512 photo (x0, y0, x1, y1), as the
full-range face detector finds it (score 0.93)."""
CAMERAMAN_FACE = (202.0, 122.0, 274.0, 193.0)
"""The cameraman's face box in scikit-image's 512×512 *camera* photo (score 0.90)."""

TABLE_TOP = 0.74
"""The table's far edge, as a fraction of the frame height."""


@dataclasses.dataclass(frozen=True)
class Seat:
    """Where one person sits: face centre (fractions of width, height), face height
    (fraction of the frame height), which photo, mirrored or not, a BGR tint, and how
    they move (sway amplitude as a fraction of the width, phase, sideways drift over
    the clip as a fraction of the width)."""

    x: float
    y: float
    face: float
    photo: str
    mirror: bool
    tint: tuple[float, float, float]
    sway: float
    phase: float
    drift: float = 0.0


SEATS = (
    Seat(0.10, 0.50, 0.070, "astronaut", False, (1.0, 1.0, 1.0), 0.006, 0.0),
    Seat(0.30, 0.45, 0.090, "camera", True, (0.9, 0.95, 1.1), 0.005, 1.3),
    Seat(0.50, 0.40, 0.110, "astronaut", True, (1.1, 0.95, 0.85), 0.008, 2.1, 0.07),
    Seat(0.71, 0.44, 0.090, "astronaut", False, (0.8, 0.9, 1.0), 0.006, 3.7),
    Seat(0.90, 0.51, 0.060, "astronaut", True, (1.05, 1.05, 0.9), 0.005, 5.0),
)


@dataclasses.dataclass
class CutOut:
    """A person cut-out: ``image`` uint8 h×w×3 BGR, ``alpha`` float32 h×w, and the face
    box inside it (cut-out pixels). Also used by ``tools/coverage.py``'s group scenes."""

    image: np.ndarray
    alpha: np.ndarray
    face: tuple[float, float, float, float]


def _cut_out(photo: np.ndarray, face: tuple[float, float, float, float]) -> CutOut:
    """Head and upper body: four face heights wide, 5.6 tall from just above the hair,
    with a soft alpha shaped like a bust (round over the head, full width at the
    bottom, which the table hides); the photo's edge repeats where the cut reaches past
    it."""
    import cv2

    x0, y0, x1, y1 = face
    height = y1 - y0
    side_w, side_h = round(4.0 * height), round(5.6 * height)
    left = round((x0 + x1) / 2 - side_w / 2)
    top = round(y0 - 0.9 * height)
    matrix = np.array([[1.0, 0.0, -left], [0.0, 1.0, -top]], np.float32)
    image = cv2.warpAffine(photo, matrix, (side_w, side_h), borderMode=cv2.BORDER_REPLICATE)
    yy, xx = np.mgrid[0:side_h, 0:side_w].astype(np.float32)
    yy, xx = yy / side_h, xx / side_w
    ellipse = ((xx - 0.5) / 0.44) ** 2 + ((yy - 0.78) / 0.78) ** 2
    alpha = np.clip((1.0 - ellipse) / 0.15, 0.0, 1.0).astype(np.float32)
    return CutOut(image, alpha, (x0 - left, y0 - top, x1 - left, y1 - top))


def scaled(sprite: CutOut, face_height: float) -> CutOut:
    """The cut-out scaled (anti-aliased) so its face is ``face_height`` pixels tall (in
    the room, the per-frame warp then only sways it a little, without aliasing)."""
    import cv2

    scale = face_height / (sprite.face[3] - sprite.face[1])
    height, width = sprite.alpha.shape
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    sx, sy = size[0] / width, size[1] / height
    x0, y0, x1, y1 = sprite.face
    return CutOut(cv2.resize(sprite.image, size, interpolation=cv2.INTER_AREA),
                   cv2.resize(sprite.alpha, size, interpolation=cv2.INTER_AREA),
                   (x0 * sx, y0 * sy, x1 * sx, y1 * sy))


class RoomSource:
    """A deterministic meeting-room clip of ``length`` frames (it loops)."""

    live = False

    def __init__(self, size: tuple[int, int] = DEFAULT_SIZE, fps: float = 30.0,
                 length: int = 300, seats: tuple[Seat, ...] = SEATS) -> None:
        self.name = "synthetic:room"
        self.size = size
        self.fps = fps
        self.length = length
        self.seats = seats
        self._index = 0
        self._backdrop: np.ndarray | None = None
        self._table: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        """The table in front: (weight, 1 − weight) float32 and its colour uint8 BGR,
        for the rows from its top edge down."""
        self._sprites: list[CutOut] = []

    def open(self) -> None:
        import cv2
        from skimage import data

        width, height = self.size
        wall = cv2.cvtColor(data.camera()[0:300, 280:512], cv2.COLOR_GRAY2BGR)
        wall = cv2.resize(wall, (width, height), interpolation=cv2.INTER_AREA)
        tint = np.array([0.75, 0.85, 0.95], dtype=np.float32)
        wall = np.clip(wall.astype(np.float32) * tint + 30, 0, 255).astype(np.uint8)
        self._backdrop = cv2.GaussianBlur(wall, (0, 0), max(1.0, height / 120))
        table = np.zeros((height, width), np.uint8)
        top = round(TABLE_TOP * height)
        corners = np.array([[round(0.04 * width), top], [round(0.96 * width), top],
                            [width, height], [0, height]], np.int32)
        cv2.fillPoly(table, [corners], 255, cv2.LINE_AA)
        weight = table[top - 1:].astype(np.float32) / 255.0
        wood = np.empty((*weight.shape, 3), np.uint8)
        wood[:] = (38, 62, 96)  # a brown table top, BGR
        self._table = (weight, 1.0 - weight, wood)
        photos = {"astronaut": cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR),
                  "camera": cv2.cvtColor(data.camera(), cv2.COLOR_GRAY2BGR)}
        faces = {"astronaut": ASTRONAUT_FACE, "camera": CAMERAMAN_FACE}
        self._sprites = []
        for seat in self.seats:
            sprite = scaled(_cut_out(photos[seat.photo], faces[seat.photo]),
                             seat.face * height)
            image = np.clip(sprite.image.astype(np.float32) * np.array(seat.tint, np.float32),
                            0, 255).astype(np.uint8)
            if seat.mirror:
                side = image.shape[1]
                fx0, fy0, fx1, fy1 = sprite.face
                sprite = CutOut(image[:, ::-1].copy(), sprite.alpha[:, ::-1].copy(),
                                 (side - fx1, fy0, side - fx0, fy1))
            else:
                sprite = CutOut(image, sprite.alpha, sprite.face)
            self._sprites.append(sprite)
        self._index = 0

    def _placement(self, seat: Seat, sprite: CutOut, index: int) -> np.ndarray:
        """The 2×3 affine map from sprite pixels to frame pixels at frame ``index``."""
        width, height = self.size
        phase = 2 * math.pi * (index % self.length) / self.length
        scale = seat.face * height / (sprite.face[3] - sprite.face[1])
        scale *= 1.0 + 0.02 * math.sin(2 * phase + seat.phase)
        angle = math.radians(2.0 * math.sin(3 * phase + seat.phase))
        cx = width * (seat.x + seat.sway * math.sin(4 * phase + seat.phase)
                      + seat.drift * math.sin(phase))
        cy = height * (seat.y + 0.004 * math.sin(5 * phase + seat.phase))
        fx = (sprite.face[0] + sprite.face[2]) / 2
        fy = (sprite.face[1] + sprite.face[3]) / 2
        cos, sin = scale * math.cos(angle), scale * math.sin(angle)
        return np.array([[cos, -sin, cx - cos * fx + sin * fy],
                         [sin, cos, cy - sin * fx - cos * fy]], np.float32)

    def faces(self, index: int) -> list[tuple[float, float, float, float]]:
        """The true face boxes (frame pixels, x0, y0, x1, y1) in frame ``index``: the
        sprite's face box mapped into the frame (its bounding box under the sway)."""
        boxes = []
        for seat, sprite in zip(self.seats, self._sprites, strict=True):
            matrix = self._placement(seat, sprite, index)
            x0, y0, x1, y1 = sprite.face
            corners = np.array([[x0, y0, 1], [x1, y0, 1], [x0, y1, 1], [x1, y1, 1]],
                               np.float32) @ matrix.T
            boxes.append((float(corners[:, 0].min()), float(corners[:, 1].min()),
                          float(corners[:, 0].max()), float(corners[:, 1].max())))
        return boxes

    def frame(self, index: int) -> np.ndarray:
        """Frame ``index`` of the clip: uint8 H×W×3 BGR, a new array."""
        import cv2

        assert self._backdrop is not None and self._table is not None
        width, height = self.size
        frame = self._backdrop.copy()
        for seat, sprite in zip(self.seats, self._sprites, strict=True):
            matrix = self._placement(seat, sprite, index)
            side_h, side_w = sprite.image.shape[:2]
            corners = np.array([[0, 0, 1], [side_w, 0, 1], [0, side_h, 1],
                                [side_w, side_h, 1]], np.float32) @ matrix.T
            x0 = max(0, int(corners[:, 0].min()))
            y0 = max(0, int(corners[:, 1].min()))
            x1 = min(width, math.ceil(corners[:, 0].max()))
            y1 = min(height, math.ceil(corners[:, 1].max()))
            if x1 <= x0 or y1 <= y0:
                continue
            local = matrix.copy()
            local[:, 2] -= (x0, y0)
            size = (x1 - x0, y1 - y0)
            person = cv2.warpAffine(sprite.image, local, size, flags=cv2.INTER_LINEAR)
            alpha = cv2.warpAffine(sprite.alpha, local, size, flags=cv2.INTER_LINEAR,
                                   borderValue=0.0)
            roi = frame[y0:y1, x0:x1]
            roi[...] = cv2.blendLinear(roi, person, 1.0 - alpha, alpha)
        top = round(TABLE_TOP * height) - 1
        rows = frame[top:]
        weight, keep, wood = self._table
        rows[...] = cv2.blendLinear(rows, wood, keep, weight)
        return frame

    def read(self) -> np.ndarray | None:
        image = self.frame(self._index)
        self._index += 1
        return image

    def close(self) -> None:
        self._backdrop = self._table = None
        self._sprites = []
