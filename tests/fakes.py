"""Fakes for the hardware and model edges: engines, a camera, a sink, GPU copies.

They run the real code paths around them; only the edge (a network, a device) is fake.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from localsr_cam.frames import HudStats, ProcessedFrame


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
        self.threads: list[int] = []  # each opened engine's CPU threads

    def __call__(self, name: str, backend: str, threads: int, weights: str | None,
                 precision: str = "auto"):
        if name == "face":  # no finder here: --segmenter auto keeps to the close-up path
            from localsr_cam.errors import ModelError

            raise ModelError("the fakes have no face model")
        self.opened.append((name, backend))
        self.threads.append(threads)
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

    def __init__(self, device: object, api: int | None = None,
                 size: tuple[int, int] = (64, 48)) -> None:
        import time

        FakeVideoCapture.opens += 1
        self.device = device
        self.api = api
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


class RecordingSink:
    """A sink that keeps what it was given (copies of the images' means) and when."""

    def __init__(self, fail_after: int | None = None) -> None:
        self.name = "recording"
        self.writes: list[tuple[float, int, float]] = []
        self.size: tuple[int, int] | None = None
        self.closed = 0
        self.fail_after = fail_after

    def open(self, size, fps, controls) -> None:
        self.size = size

    def write(self, frame: ProcessedFrame, hud: HudStats) -> None:
        if self.fail_after is not None and len(self.writes) >= self.fail_after:
            raise OSError("device gone")
        assert frame.image.shape == (self.size[1], self.size[0], 3)
        self.writes.append((time.perf_counter(), frame.source.index, float(frame.image.mean())))

    def close(self) -> None:
        self.closed += 1


class ImmediateCpuOps:
    """DeviceOps on the CPU that run every copy at once (streams and events are no-ops):
    exercises the scheduler's plumbing with the real FrameProcessor."""

    def new_stream(self) -> object:
        return object()

    def new_event(self, label: str = "") -> object:
        return object()

    @contextlib.contextmanager
    def use_stream(self, stream: object) -> Iterator[object]:
        yield stream

    def record(self, event: object, stream: object) -> None:
        pass

    def wait_event(self, stream: object, event: object) -> None:
        pass

    def host_wait(self, event: object) -> None:
        pass

    def alloc_host(self, shape: tuple[int, ...], dtype: str) -> torch.Tensor:
        return torch.full(shape, 77, dtype=getattr(torch, dtype))

    alloc_device = alloc_host

    def upload(self, image: np.ndarray, host: torch.Tensor, device: torch.Tensor,
               stream: object) -> None:
        host.copy_(torch.from_numpy(image))
        device.copy_(host)

    def download(self, source: torch.Tensor, host: torch.Tensor, stream: object) -> None:
        host.copy_(source)

    def host_array(self, host: torch.Tensor) -> np.ndarray:
        return host.numpy().copy()

    def keep_alive(self, tensor: torch.Tensor, stream: object) -> None:
        pass


# -- models with random weights ---------------------------------------------------------------
def randomize(module: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Random weights everywhere (FastUNet's tail starts at zero, hiding the network),
    scaled by 1/sqrt(fan-in) so activations stay near 1 through every layer."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in module.parameters():
            fan_in = parameter[0].numel() if parameter.dim() > 1 else 400
            noise = torch.randn(parameter.shape, generator=gen)
            parameter.copy_(noise / fan_in ** 0.5)
    return module.eval()


def random_module(name: str, seed: int = 0) -> torch.nn.Module:
    """Registered model ``name``'s network with random weights (float32, eval mode)."""
    from localsr_cam.zoo.registry import model_spec

    spec = model_spec(name)
    if spec.build is not None:
        return randomize(spec.build(), seed)
    if spec.kind == "detect":
        from localsr_cam.models.face_detector import FaceDetector

        return randomize(FaceDetector(), seed)
    from localsr_cam.models.selfie import VARIANTS, SelfieSegmenter

    return randomize(SelfieSegmenter(VARIANTS[name]), seed)


def write_random_model(name: str, directory: Path, seed: int = 0) -> None:
    """Write ``name``'s weights and ONNX, with random weights, where engines_dir() looks."""
    from localsr_cam.zoo.registry import model_spec

    spec = model_spec(name)
    assert spec.weights is not None and spec.onnx is not None
    model = random_module(name, seed)
    torch.save(model.state_dict(), directory / spec.weights)
    if spec.export is not None:
        spec.export(model, directory / spec.onnx)
    elif spec.kind == "detect":
        from localsr_cam.zoo.face_fetch import export_onnx as export_face

        (directory / spec.onnx).write_bytes(export_face(model))
    else:
        from localsr_cam.zoo.selfie_fetch import export_onnx

        assert spec.input_size is not None
        (directory / spec.onnx).write_bytes(export_onnx(model, spec.input_size))


class ScriptedFaceEngine:
    """A ``face`` engine returning hand-made raw outputs: one face per listed (tile,
    anchor, width, height, logit) — tiles numbered across calls — with its first
    keypoint at (-5, -3) from the anchor, every other anchor at logit -10. ``batches``
    records the input shapes it was called with."""

    name = "face"
    backend = "fake"
    device = torch.device("cpu")

    def __init__(self, faces_at: list[tuple[int, int, float, float, float]]) -> None:
        self.faces_at = faces_at
        self.batches: list[tuple[int, ...]] = []

    def __call__(self, inputs: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        count = inputs["image"].shape[0]
        offset = sum(shape[0] for shape in self.batches)
        self.batches.append(tuple(inputs["image"].shape))
        regressors = torch.zeros(count, 2304, 16)
        scores = torch.full((count, 2304, 1), -10.0)
        for tile, anchor, width, height, logit in self.faces_at:
            if offset <= tile < offset + count:
                regressors[tile - offset, anchor, 2:4] = torch.tensor([width, height])
                regressors[tile - offset, anchor, 4:6] = torch.tensor([-5.0, -3.0])
                scores[tile - offset, anchor, 0] = logit
        return {"regressors": regressors, "scores": scores}

    def close(self) -> None:
        pass


class FakeCamera:
    """Stands in for ``pyvirtualcam.Camera``: records what it is given.

    ``fail_opens``: how many of the next constructions raise like pyvirtualcam does when no
    device exists. ``fail_sends``: how many of the next sends raise like a broken device.
    """

    instances: ClassVar[list[FakeCamera]] = []
    fail_opens: ClassVar[int] = 0
    fail_sends: ClassVar[int] = 0

    def __init__(self, width, height, fps, *, fmt=None, device=None):
        import pyvirtualcam

        fmt = pyvirtualcam.PixelFormat.RGB if fmt is None else fmt
        if FakeCamera.fail_opens:
            FakeCamera.fail_opens -= 1
            raise RuntimeError(
                "'v4l2loopback' backend: No v4l2 loopback device found at /dev/video[0-99].\n"
                "Did you run 'modprobe v4l2loopback'?"
            )
        self.width, self.height, self.fps, self.fmt = width, height, fps, fmt
        self.device = device or "/dev/video9"
        self.asked_for = device
        self.backend = "fake"
        self.frames: list[np.ndarray] = []
        self.closed = 0
        FakeCamera.instances.append(self)

    def send(self, frame):
        if FakeCamera.fail_sends:
            FakeCamera.fail_sends -= 1
            raise RuntimeError("write failed: No such device")
        assert frame.shape == (self.height, self.width, 3)
        self.frames.append(frame.copy())

    def close(self):
        self.closed += 1


def process_image(processor: Any, image: np.ndarray) -> ProcessedFrame:
    """One still image through ``processor`` (prepared for its size, no state kept)."""
    processor.prepare((image.shape[1], image.shape[0]))
    from localsr_cam.frames import CapturedFrame

    return processor.process(CapturedFrame(image, 0, 0.0))
