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
        self.closed = 0

    def __call__(self, inputs: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        image = inputs["image"]
        self.shapes.append(tuple(image.shape))
        if self.fail:
            raise RuntimeError("simulated inference failure")
        sr = F.interpolate(image, scale_factor=2, mode="bicubic", align_corners=False)
        return {"sr": sr + self.offset}

    def close(self) -> None:
        self.closed += 1


class EngineBox:
    """An engine factory for FrameProcessor handing out the given fakes.

    ``whole``: the engine for the landscape selfie model (the whole-frame mask of a
    640×360 frame) where it should differ from ``segmenter`` (which then serves the
    per-person crops)."""

    def __init__(self, segmenter: DiscSegmenter | None = None, sr: BicubicSR | None = None,
                 whole: DiscSegmenter | None = None):
        self.segmenter = segmenter or DiscSegmenter()
        self.sr = sr or BicubicSR()
        self.whole = whole
        self.opened: list[tuple[str, str]] = []

    def __call__(self, name: str, backend: str, threads: int, weights: str | None):
        if name == "face":  # no finder here: --segmenter auto keeps to the close-up path
            from localsr_cam.errors import ModelError

            raise ModelError("the fakes have no face model")
        self.opened.append((name, backend))
        if name == "selfie-landscape" and self.whole is not None:
            return self.whole
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


class FakeDetection:
    """A face the fake finder 'sees': ``box`` (x0, y0, x1, y1) frame pixels, ``score``."""

    def __init__(self, box: tuple[float, float, float, float], score: float = 0.9) -> None:
        self.box = box
        self.score = score
        self.keypoints: list[tuple[float, float]] = []


class FakeTile:
    def __init__(self, x0: int, y0: int, size: int) -> None:
        self.x0, self.y0, self.size = x0, y0, size


class FakePlan:
    def __init__(self, tiles: list[FakeTile]) -> None:
        self.tiles = tiles


class FakeFaceFinder:
    """A face finder that 'sees' the faces it was given, in the tiles asked for.

    ``faces``: face boxes in frame pixels (change the list to move people). The plan
    is square tiles of ``tile`` px every ``stride`` px, like the real finder's; a scan
    finds a face that lies wholly inside a scanned tile and is at least 20/192 of the
    tile's size, as the real detector needs. ``calls`` counts detect calls; ``miss``
    (a set of call numbers) makes those calls find nothing; ``engine`` is a stand-in
    whose ``closed`` counts closes. The people finder shows the finder the frame inside
    a black border (``FINDER_PAD``): the faces are given in frame pixels and found at
    that offset in the picture the fake is shown.
    """

    def __init__(self, faces: list[tuple[float, float, float, float]], tile: int = 256,
                 stride: int = 192) -> None:
        self.faces = faces
        self.tile = tile
        self.stride = stride
        self.calls = 0
        self.miss: set[int] = set()
        self.engine = DiscSegmenter()
        from localsr_cam.process.people import FINDER_PAD

        self.pad = FINDER_PAD

    def plan(self, frame_size: tuple[int, int]) -> FakePlan:
        width, height = frame_size

        def starts(limit: int) -> list[int]:
            if limit <= self.tile:
                return [0]
            out = list(range(0, limit - self.tile, self.stride))
            return [*out, limit - self.tile]

        return FakePlan([FakeTile(x, y, self.tile) for y in starts(height)
                         for x in starts(width)])

    def detect(self, frame: np.ndarray, tiles=None) -> list[FakeDetection]:
        self.calls += 1
        if self.calls in self.miss:
            return []
        height, width = frame.shape[:2]
        plan = self.plan((width, height)).tiles
        chosen = plan if tiles is None else [plan[i] for i in tiles]
        shown = [tuple(v + self.pad for v in face) for face in self.faces]
        return [FakeDetection(face) for face in shown  # type: ignore[arg-type]
                if any(t.x0 <= face[0] and t.y0 <= face[1] and face[2] <= t.x0 + t.size
                       and face[3] <= t.y0 + t.size
                       and face[3] - face[1] >= 20 * t.size / 192 for t in chosen)]


class BatchOfOne:
    """Wraps an engine so it takes one image a call, as a fixed-batch ONNX model does."""

    def __init__(self, engine) -> None:
        self.engine = engine
        self.name = "batch-of-one"
        self.backend = "fake"
        self.device = torch.device("cpu")
        self.calls = 0

    def __call__(self, inputs: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        self.calls += 1
        if inputs["image"].shape[0] != 1:
            raise RuntimeError("Got invalid dimensions for input: image, expected batch 1")
        return self.engine(inputs)

    def close(self) -> None:
        self.engine.close()
