"""``--background image:PATH``: a picture that replaces the room behind the person.

The picture is read once when the processor opens (a bad file is a one-line
:class:`~localsr_cam.errors.SourceError` before any frame) and scaled to cover each
output size once: scaled so that it fills the frame, aspect ratio kept, and the overflow
cropped evenly from both sides (never stretched).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from localsr_cam.errors import ConfigError
from localsr_cam.imaging import fit_size

IMAGE_PREFIX = "image:"


def image_path(background: str) -> Path | None:
    """The picture's path for an ``image:PATH`` background, else ``None``."""
    if background.startswith(IMAGE_PREFIX):
        return Path(background[len(IMAGE_PREFIX):])
    return None


class Backdrop:
    """The background picture, covered to each output size on first use.

    ``for_size`` returns a uint8 H×W×3 array owned by this object (cached; callers copy
    it before drawing on it).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._image: np.ndarray | None = None
        self._covered: dict[tuple[int, int], np.ndarray] = {}

    def load(self) -> Backdrop:
        """Read the picture (any format OpenCV decodes, as 8-bit BGR); a missing or
        undecodable file is a one-line :class:`ConfigError`."""
        try:
            data = np.fromfile(self.path, dtype=np.uint8)
        except OSError as exc:
            raise ConfigError(f"cannot read background picture {self.path}: "
                              f"{exc.strerror or exc}") from None
        image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
        if image is None:
            raise ConfigError(f"background picture {self.path} is not an image OpenCV "
                              "can decode")
        self._image = image
        return self

    def for_size(self, size: tuple[int, int]) -> np.ndarray:
        if self._image is None:
            self.load()
        assert self._image is not None
        covered = self._covered.get(size)
        if covered is None:
            covered = self._covered[size] = fit_size(self._image, size)
        return covered
