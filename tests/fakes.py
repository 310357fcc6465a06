"""Fakes for the hardware and model edges: engines, a camera, frames.

They run the real code paths around them; only the edge (a network, a device) is fake.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F


class DiscSegmenter:
    """A segmentation engine that 'finds' a disc: image N×3×H×W → mask N×1×H×W.

    The disc has radius ``radius`` (fraction of the input height) around ``centre``
    (fractions of width, height); ``None`` centre → nobody in the frame.
    """

    backend = "fake"
    device = torch.device("cpu")

    def __init__(self, centre: tuple[float, float] | None = (0.5, 0.5),
                 radius: float = 0.25) -> None:
        self.name = "fake-segmenter"
        self.centre = centre
        self.radius = radius
        self.calls = 0
        self.closed = 0

    def __call__(self, inputs: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        self.calls += 1
        image = inputs["image"]
        n, _, h, w = image.shape
        if self.centre is None:
            return {"mask": torch.zeros((n, 1, h, w))}
        yy, xx = torch.meshgrid(torch.arange(h) + 0.5, torch.arange(w) + 0.5, indexing="ij")
        cx, cy = self.centre[0] * w, self.centre[1] * h
        inside = ((xx - cx) ** 2 + (yy - cy) ** 2) <= (self.radius * h) ** 2
        return {"mask": inside.float().expand(n, 1, h, w).clone()}

    def close(self) -> None:
        self.closed += 1


class BicubicSR:
    """An SR engine doing a 2× bicubic upscale plus ``offset``: image → sr (N×3×2h×2w)."""

    backend = "fake"
    device = torch.device("cpu")

    def __init__(self, offset: float = 0.0, fail: bool = False) -> None:
        self.name = "fake-sr"
        self.offset = offset
        self.fail = fail
        self.shapes: list[tuple[int, ...]] = []
        self.levels: list[torch.Tensor | None] = []
        self.closed = 0

    def __call__(self, inputs: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        image = inputs["image"]
        self.shapes.append(tuple(image.shape))
        levels = inputs.get("levels")
        self.levels.append(None if levels is None else levels.clone())
        if self.fail:
            raise RuntimeError("simulated inference failure")
        sr = F.interpolate(image, scale_factor=2, mode="bicubic", align_corners=False)
        return {"sr": sr + self.offset}

    def close(self) -> None:
        self.closed += 1


class EngineBox:
    """An engine factory for FrameProcessor handing out the given fakes."""

    def __init__(self, segmenter: DiscSegmenter | None = None, sr: BicubicSR | None = None):
        self.segmenter = segmenter or DiscSegmenter()
        self.sr = sr or BicubicSR()
        self.opened: list[tuple[str, str]] = []

    def __call__(self, name: str, backend: str, threads: int, weights: str | None):
        self.opened.append((name, backend))
        return self.sr if name in ("fast", "paper") else self.segmenter


class FakeVideoCapture:
    """Stands in for ``cv2.VideoCapture`` on a camera: frames of a given size.

    ``fail_reads`` > 0: that many reads fail (a cable pulled) and, while failing, opening
    fails too until ``fail_until`` (a perf_counter time) has passed, when set.
    """

    instances: ClassVar[list[FakeVideoCapture]] = []
    fail_until: float | None = None
    opens = 0

    def __init__(self, device: object, size: tuple[int, int] = (64, 48)) -> None:
        import time

        FakeVideoCapture.opens += 1
        self.device = device
        self.size = size
        self.count = 0
        self.released = False
        self._clock = time.perf_counter
        self.props: dict[int, float] = {}
        FakeVideoCapture.instances.append(self)

    def _down(self) -> bool:
        until = FakeVideoCapture.fail_until
        return until is not None and self._clock() < until

    def isOpened(self) -> bool:
        return not self._down()

    def set(self, prop: int, value: float) -> bool:
        self.props[prop] = value
        return True

    def read(self) -> tuple[bool, np.ndarray | None]:
        if self.released or self._down():
            return False, None
        self.count += 1
        w, h = self.size
        frame = np.full((h, w, 3), self.count % 256, dtype=np.uint8)
        return True, frame

    def release(self) -> None:
        self.released = True
