"""The degradation model: how a low-resolution input is made from an HR image.

Shared by ``eval`` (the LR input of each test image) and ``train`` (the LR side of each
training pair), so a model is scored on the degradation it was trained for.
"""

from __future__ import annotations

import cv2
import numpy as np

from localsr_cam.capture.images import crop_even
from localsr_cam.errors import ConfigError, SourceError

DEGRADE_METHODS = {"area": cv2.INTER_AREA, "bicubic": cv2.INTER_CUBIC}
"""``area``: the exact 2×2 mean (cv2.INTER_AREA); ``bicubic``: cv2.INTER_CUBIC."""


def degrade(hr_uint8_bgr: np.ndarray, method: str = "area") -> np.ndarray:
    """The LR input for an HR image: crop to even size, then 2× downscale with OpenCV.

    ``hr_uint8_bgr`` is H×W×3 uint8 (BGR or RGB, the channels are treated alike);
    returns (H//2)×(W//2)×3 uint8, a new array. ``method`` is a key of
    :data:`DEGRADE_METHODS`. Pair the result with ``crop_even(hr)`` as ground truth.
    """
    if method not in DEGRADE_METHODS:
        raise ConfigError(f"unknown degradation {method!r}; choose one of: "
                          f"{', '.join(DEGRADE_METHODS)}")
    hr = crop_even(hr_uint8_bgr)
    if hr.shape[0] < 2 or hr.shape[1] < 2:
        raise SourceError(f"image of size {hr_uint8_bgr.shape[1]}x{hr_uint8_bgr.shape[0]} "
                          "is too small to downscale 2x")
    return cv2.resize(hr, (hr.shape[1] // 2, hr.shape[0] // 2),
                      interpolation=DEGRADE_METHODS[method])
