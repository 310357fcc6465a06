"""``--source synthetic:call``: the sample's person as in a video call — seated, nearly still,
talking, under sensor noise.

The portrait sample (:class:`~localsr_cam.capture.sources.SyntheticSource`) pans, zooms
and sways the whole person on every frame, so every pixel of the person changes every
frame. A person in a call mostly keeps still: here the body stays where it is, the
upper body leans slowly from side to side about the chest (±1.5° over 5 s: the head
moves by a fraction of a pixel a frame, the shoulders hardly), the mouth opens and
closes while talking (3 s of speech, 1 s of pause, 4 syllables a second), and every
frame carries fresh webcam-like sensor noise (σ 2 grey levels). Frame ``i`` depends only
on ``i`` and the size.
"""

from __future__ import annotations

import math

import numpy as np

from localsr_cam.capture.sources import DEFAULT_SIZE, SyntheticSource

LEAN_DEG = 1.5
"""Amplitude of the slow lean, degrees."""
LEAN_PERIOD_S = 5.0
TALK_S, PAUSE_S = 3.0, 1.0
"""Speech and pause durations of the talking cycle, seconds."""
SYLLABLES_PER_S = 4.0
MOUTH = (230.0, 142.0, 15.0, 4.0)
"""Mouth centre (x, y), half-width and largest half-opening, in pixels of
scikit-image's 512×512 *astronaut* photo."""
NOISE_SIGMA = 2.0
NOISE_FIELDS = 16
"""Noise fields drawn at open and cycled through (drawing one a frame costs ~5 ms)."""


class CallSource(SyntheticSource):
    """A talking, nearly still person over the sample's backdrop (see the module
    docstring). ``length`` frames make one clip; it loops like the sample."""

    def __init__(self, size: tuple[int, int] = DEFAULT_SIZE, fps: float = 30.0,
                 length: int = 300, loop: bool = True) -> None:
        super().__init__(size, fps, length, loop)
        self.name = "synthetic:call"
        self._noise: list[np.ndarray] = []

    def open(self) -> None:
        super().open()
        width, height = self.size
        rng = np.random.default_rng(7)
        self._noise = [np.round(rng.normal(0.0, NOISE_SIGMA, (height, width, 3)))
                       .astype(np.int16) for _ in range(NOISE_FIELDS)]

    def placement(self, index: int) -> np.ndarray:
        """2×3 float64 affine map from the 512-px-scaled person square to the frame for
        frame ``index``: seated at the sample's rest pose, leaned about the chest."""
        import cv2

        assert self._person is not None
        width, height = self.size
        side = self._person.shape[0]
        t = (index % self.length) / self.fps
        angle = LEAN_DEG * math.sin(2 * math.pi * t / LEAN_PERIOD_S)
        chest = (side / 2, 0.9 * side)
        matrix = cv2.getRotationMatrix2D(chest, angle, 1.0)
        matrix[0, 2] += width * 0.5 - side / 2
        matrix[1, 2] += height * 0.5 + side * 0.05 - side / 2
        return matrix

    def mouth_opening(self, index: int) -> float:
        """How open the mouth is on frame ``index``, 0 (closed) to 1."""
        t = (index % self.length) / self.fps
        if t % (TALK_S + PAUSE_S) >= TALK_S:
            return 0.0
        return abs(math.sin(math.pi * SYLLABLES_PER_S * t))

    def frame(self, index: int) -> np.ndarray:
        """Frame ``index`` of the clip: uint8 H×W×3 BGR, new array."""
        import cv2

        assert self._person is not None and self._noise
        matrix = self.placement(index)
        image = self.composite(matrix)
        opening = self.mouth_opening(index)
        if opening > 0.05:
            scale = self._person.shape[0] / 512.0
            mx, my, half_w, half_h = MOUTH
            cx, cy = matrix @ np.array([mx * scale, my * scale, 1.0])
            shift = 4  # sub-pixel placement: coordinates in 1/16 px
            axes = (round(half_w * scale * 16), max(1, round(opening * half_h * scale * 16)))
            cv2.ellipse(image, (round(cx * 16), round(cy * 16)), axes, 0.0, 0.0, 360.0,
                        (30, 25, 70), -1, cv2.LINE_AA, shift)
        noise = self._noise[(index % self.length) % len(self._noise)]
        return cv2.add(image, noise, dtype=cv2.CV_8U)

    def close(self) -> None:
        super().close()
        self._noise = []
