"""Test pictures: faces where we know them, built from ``skimage.data.astronaut()``, a
random picture a camera could have taken, and a banded one that shows any stretching.

Shared by the face finder's tests and its parity tests (no test module imports
another). Frames are uint8 H×W×3 BGR; boxes float32 (x0, y0, x1, y1) in frame pixels.
"""

from __future__ import annotations

import cv2
import numpy as np
import skimage.data

#: The astronaut's face in skimage's 512×512 image (x0, y0, x1, y1): brow to chin, ear
#: to ear, as the detector frames faces.
ASTRONAUT_FACE = np.array([172.0, 66.0, 278.0, 172.0], dtype=np.float32)
HEAD_CROP = (120, 10, 330, 330)  # x0, y0, x1, y1 of the head-and-shoulders cut-out


def astronaut_bgr() -> np.ndarray:
    """The 512×512 astronaut photo, BGR."""
    return cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR)


def make_group(heights: tuple[int, ...], seed: int, size: tuple[int, int] = (640, 360),
               at_edge: bool = False) -> tuple[np.ndarray, list[np.ndarray]]:
    """A frame with one scaled head-and-shoulders copy of the astronaut per face
    height, left to right with random vertical positions, on a textured background;
    the true face boxes. ``at_edge``: the last copy is cut by the right frame edge."""
    rng = np.random.default_rng(seed)
    width, height = size
    yy, xx = np.mgrid[0:height, 0:width]
    frame = np.stack([60 + 30 * np.sin(xx / 17.0), 80 + 20 * np.cos(yy / 11.0),
                      100 + 25 * np.sin((xx + yy) / 23.0)], axis=-1).astype(np.uint8)
    x0, y0, x1, y1 = HEAD_CROP
    head = astronaut_bgr()[y0:y1, x0:x1]
    face = ASTRONAUT_FACE - np.array([x0, y0, x0, y0], dtype=np.float32)
    boxes = []
    x = int(rng.integers(0, 10))
    for k, face_height in enumerate(heights):
        scale = face_height / float(face[3] - face[1])
        small = cv2.resize(head, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        h, w = small.shape[:2]
        if at_edge and k == len(heights) - 1:
            x = width - int(w * 0.7)   # the face's right part reaches the edge
        y = int(rng.integers(0, max(height - h, 0) + 1))
        visible_w, visible_h = min(w, width - x), min(h, height - y)
        frame[y:y + visible_h, x:x + visible_w] = small[:visible_h, :visible_w]
        boxes.append(face * scale + np.array([x, y, x, y], dtype=np.float32))
        x += w + int(rng.integers(0, 25))
    return frame, boxes


def random_picture(seed: int, height: int, width: int) -> np.ndarray:
    """A random uint8 H×W×3 picture with detail at every scale but little at the finest,
    as a camera frame has: the degradation levels read it alike alone and against a copy
    of itself. (Pure noise reads σ 40–80 alone and 0 against a copy, and the processor
    drops SR results told other levels, so a still frame of it was never "still".)"""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (height // 4, width // 4, 3)).astype(np.float32)
    picture = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    return np.clip(picture, 0, 255).astype(np.uint8)


def banded(width: int, height: int) -> np.ndarray:
    """Black left and right quarters, a white middle half: a stretch shows black."""
    image = np.zeros((height, width, 3), np.uint8)
    image[:, width // 4:width - width // 4] = 255
    return image


def stained_tissue(width: int = 720, height: int = 400) -> np.ndarray:
    """skimage's stained tissue slide (fine texture everywhere: the photo whose frame
    differences read the most noise when it moves), float32 H×W×3 BGR, enlarged to
    cover ``width``×``height``."""
    side = max(width, height)
    tissue = cv2.resize(skimage.data.immunohistochemistry()[:, :, ::-1], (side, side),
                        interpolation=cv2.INTER_AREA)
    top = (side - height) // 2
    return np.ascontiguousarray(tissue[top:top + height, :width]).astype(np.float32)


def panned(picture: np.ndarray, dx: float, dy: float, size: tuple[int, int] = (640, 360),
           sigma: float = 0.0, seed: int = 0, zoom: float = 0.0) -> np.ndarray:
    """uint8 frame of ``size`` (W, H) cut from float32 ``picture`` moved by (``dx``,
    ``dy``) px (fractions too: cubic interpolation) and made ``zoom`` larger about the
    frame's middle (0.01: 1 %), with Gaussian noise of ``sigma``."""
    scale = 1.0 + zoom
    centre_x, centre_y = 0.5 * (size[0] - 1), 0.5 * (size[1] - 1)
    shift = np.float32([[scale, 0, dx - zoom * centre_x], [0, scale, dy - zoom * centre_y]])
    moved = cv2.warpAffine(picture, shift, (picture.shape[1], picture.shape[0]),
                           flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
    frame = moved[:size[1], :size[0]]
    if sigma:
        frame = frame + np.random.default_rng(seed).normal(0.0, sigma, frame.shape)
    return np.clip(np.rint(frame), 0, 255).astype(np.uint8)
