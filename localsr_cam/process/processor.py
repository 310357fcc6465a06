"""FrameProcessor: one captured frame in, one 2× output frame out.

Steps (see DESIGN.md, "The flow of one frame"):

1. segment: person probability at the segmenter's resolution;
2. mask: temporal EMA, hysteresis, despeckle, feather (:class:`MaskSmoother`), then
   upsampled to the frame;
3. person box: padded with context, aligned, rounded up to a bucket size;
4. SR on the box crop only (the U-Net engine);
5. background: plain 2× upscale of the whole frame (optionally blurred);
6. blend the SR crop over the background with the soft mask.

Written once on torch tensors; the device is the engines' device. Baseline models
(``bicubic``, ``bilinear``) skip 1–4 and 6; ``full_frame`` runs SR on the whole frame.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from localsr_cam.config import PipelineConfig
from localsr_cam.errors import LocalSRError
from localsr_cam.frames import CapturedFrame, Controls, ProcessedFrame
from localsr_cam.process import ops
from localsr_cam.process.auto import NobodyNotice
from localsr_cam.process.localize import Box, MaskSmoother, bucket_box, person_box
from localsr_cam.process.regions import align_even, intersection
from localsr_cam.process.segment import Segmenter, choose_segmenter
from localsr_cam.process.tracking import sticky_region
from localsr_cam.runtime.base import Engine, resolve_backend
from localsr_cam.zoo.backends import open_engine
from localsr_cam.zoo.registry import SR_BASELINES

if TYPE_CHECKING:
    from localsr_cam.process.people_step import PeopleStep

log = logging.getLogger(__name__)

EngineFactory = Callable[[str, str, int, "str | None"], Engine]
"""``(model name, backend, threads, weights) -> opened Engine``: how engines are loaded."""
FinderFactory = Callable[[str, int], Any]
"""``(backend, threads) -> opened face finder`` (see :class:`localsr_cam.process.people.Finder`)."""
PEOPLE_MODES = ("auto", "people")
FINDER_SCORE = 0.6
"""Face detection threshold for finding people: at 0.6 the calibration run found 28 of
30 faces in a group photo (shared/notes/people-finder-calibration.md); at 0.5 badges on
the sample clip's space suit scored as faces."""
"""Segmenter settings that look for people with the face finder."""

BLUR_RADIUS_FRACTION = 1 / 60
"""Background blur box radius as a fraction of the frame height."""


class FrameProcessor:
    """Steps 1–6 on one frame at a time; not thread-safe (one processing thread).

    ``open()`` loads the engines the config needs; ``process()`` returns a new
    :class:`ProcessedFrame` whose ``image`` the caller owns. An engine that fails on a
    frame makes that frame the plain upscale; the failure is logged once and counted in
    ``fallbacks``. ``engine_factory`` loads engines (tests pass fakes).
    """

    def __init__(self, config: PipelineConfig, controls: Controls | None = None,
                 engine_factory: EngineFactory = open_engine,
                 finder_factory: FinderFactory | None = None) -> None:
        self.config = config
        self.controls = controls
        self._open_engine = engine_factory
        self._open_finder = finder_factory
        self._people: PeopleStep | None = None
        self._notice = NobodyNotice()
        self._region: Box | None = None
        self.backend = ""
        self.device = torch.device("cpu")
        self.fallbacks = 0
        self.segmenter_name: str | None = None
        self.last_path: str | None = None
        """The path (close-up or people) of the last frame where people were looked
        for; kept after :meth:`close` for reports."""
        self._sr: Engine | None = None
        self._segmenters: dict[str, Segmenter] = {}
        self._smoother = MaskSmoother(
            ema=config.blend.ema, low=config.blend.threshold_low,
            high=config.blend.threshold_high, despeckle=config.blend.despeckle,
            feather_radius=1)
        self._torch_threads: int | None = None

    # -- life cycle -------------------------------------------------------------------
    @property
    def uses_sr(self) -> bool:
        return self.config.model.model not in SR_BASELINES

    @property
    def upscale_mode(self) -> str:
        """How the background is upscaled: the baseline model itself, or the blend setting."""
        model = self.config.model.model
        return model if model in SR_BASELINES else self.config.blend.upscale

    @property
    def uses_mask(self) -> bool:
        local_sr = self.uses_sr and not self.config.blend.full_frame
        return local_sr or self.config.blend.background == "blur"

    def open(self) -> FrameProcessor:
        model = self.config.model
        self.backend = resolve_backend(model.backend)
        if self.backend in ("cuda", "tensorrt"):
            self.device = torch.device("cuda")
        elif self.backend == "cpu":
            # ONNX Runtime owns the cores for the networks; torch only does small glue
            # ops here, and a second pool of spinning threads on a 2-core laptop made
            # every stage several times slower (462 ms vs 99 ms a frame, measured).
            # Restored by close().
            self._torch_threads = torch.get_num_threads()
            torch.set_num_threads(1)
        try:
            if self.uses_sr:
                self._sr = self._open_engine(model.model, self.backend, model.threads, None)
            if self.uses_mask and model.segmenter not in PEOPLE_MODES:
                self._segmenter_for(model.segmenter)
            if self.uses_mask and not self.config.blend.full_frame \
                    and model.segmenter in PEOPLE_MODES:
                self._people = self._open_people(model.segmenter)
        except BaseException:
            self.close()
            raise
        return self

    def _open_people(self, mode: str) -> PeopleStep | None:
        """The people step, or ``None`` (logged) when ``auto`` finds no face finder."""
        from localsr_cam.process.people import CropSegmenter, PeopleFinder
        from localsr_cam.process.people_step import PeopleStep

        model, blend = self.config.model, self.config.blend
        try:
            finder = (self._open_finder or self._open_face_finder)(self.backend, model.threads)
        except LocalSRError as exc:
            if mode == "people":
                raise
            log.warning("no face finder (%s); --segmenter auto keeps to the close-up path",
                        exc)
            return None
        engine = self._open_engine("selfie", self.backend, model.threads, model.weights)
        smoother = MaskSmoother(ema=blend.ema, low=blend.threshold_low,
                                high=blend.threshold_high, despeckle=blend.despeckle,
                                feather_radius=1)
        # people far away are small: half the close-up's context and bucket keep their
        # boxes from being mostly padding (5 people in the room sample: 35 % of the
        # frame instead of 53 %)
        people = PeopleFinder(finder, CropSegmenter(engine), smoother,
                              context=max(4, blend.context_px // 2),
                              bucket=max(8, blend.bucket // 2), whole=self._whole_frame)
        return PeopleStep(mode, people)

    def _whole_frame(self, lr: torch.Tensor) -> torch.Tensor:
        """The close-up segmenter's raw probability for the whole frame (float32
        1×1×h×w at its resolution): the people path adds it to catch people the face
        finder missed."""
        if self.segmenter_name is None:
            self.prepare((lr.shape[1], lr.shape[0]))
        assert self.segmenter_name is not None
        return self._segmenters[self.segmenter_name](lr)

    def _open_face_finder(self, backend: str, threads: int) -> Any:
        """The face finder (:mod:`localsr_cam.process.faces`) on an engine from the
        engine factory; :class:`~localsr_cam.errors.ModelError` when there is none."""
        from localsr_cam.errors import ModelError

        try:
            from localsr_cam.process import faces
        except ImportError as exc:
            raise ModelError(f"the face finder is not part of this build ({exc})") from None
        return faces.FaceFinder(self._open_engine("face", backend, threads, None),
                                score=FINDER_SCORE)

    @property
    def path(self) -> str | None:
        """``close-up`` or ``people`` when people are looked for, else ``None``."""
        return None if self._people is None else self._people.path

    def _segmenter_for(self, name: str) -> Segmenter:
        segmenter = self._segmenters.get(name)
        if segmenter is None:
            model = self.config.model
            engine = self._open_engine(name, self.backend, model.threads, model.weights)
            segmenter = self._segmenters[name] = Segmenter(name, engine)
        return segmenter

    def prepare(self, frame_size: tuple[int, int]) -> None:
        """Open the segmenter ``auto`` picks for frames of this (width, height)."""
        if self.uses_mask:
            requested = self.config.model.segmenter
            self.segmenter_name = choose_segmenter(
                "auto" if requested == "people" else requested, frame_size)
            self._segmenter_for(self.segmenter_name)  # the people path uses it too

    def reset(self) -> None:
        """Forget temporal state (call between unrelated images)."""
        self._smoother.reset()
        self._region = None
        if self._people is not None:
            self._people.reset()

    def close(self) -> None:
        engines: list[Any] = [self._sr, *self._segmenters.values(), self._people]
        self._sr, self._segmenters, self._people = None, {}, None
        for engine in engines:
            if engine is not None:
                engine.close()
        if self._torch_threads is not None:
            torch.set_num_threads(self._torch_threads)
            self._torch_threads = None

    def __enter__(self) -> FrameProcessor:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- per frame --------------------------------------------------------------------
    def process(self, frame: CapturedFrame) -> ProcessedFrame:
        """``frame.image`` uint8 H×W×3 BGR → :class:`ProcessedFrame` with a 2H×2W×3 image.

        The same as ``back(front(frame))``; a double-buffered GPU scheduler calls the two
        halves itself, on two CUDA streams.
        """
        return self.back(self.front(frame))

    def upload(self, image: np.ndarray) -> torch.Tensor:
        """uint8 H×W×3 host frame → the same on the device (a view of it on the CPU)."""
        lr = torch.from_numpy(image)
        if self.device.type != "cpu":
            lr = lr.pin_memory().to(self.device, non_blocking=True)
        return lr

    def front(self, frame: CapturedFrame, lr: torch.Tensor | None = None) -> FrontState:
        """Front half, steps 1–3: upload, segment, smooth the mask, find the person box.

        ``lr``: ``frame.image`` already on the device (uint8 H×W×3), for a caller that
        uploads into its own buffers; uploaded here when ``None``. An engine failure is
        kept in the state and turned into the plain upscale by :meth:`render`.
        """
        if lr is None:
            lr = self.upload(frame.image)
        bypass = self.controls is not None and self.controls.bypass
        state = FrontState(frame=frame, lr=lr, bypass=bypass, stages_ms={})
        timer = _StageTimer(state.stages_ms)
        try:
            if self._people is not None and not bypass:
                outcome = self._people(lr, self._close_up, self._feather_radius(1.0), timer)
                self.last_path = outcome.path
                state.mask, state.boxes, state.people = (outcome.mask, outcome.regions,
                                                         outcome.people)
            else:
                if self.uses_mask and not bypass:
                    with timer("segment"):
                        state.mask = self.segment(lr)
                if (self.uses_sr or state.mask is not None) and not bypass:
                    box = self._sr_box(lr, state.mask)
                    state.boxes = [] if box is None else [box]
                    if self.uses_mask:
                        state.people = len(state.boxes)
        except Exception as exc:  # an engine failed on this frame: render passes it through
            state.error = exc
        if state.people is not None:
            self._notice.update(state.people, frame.timestamp)
        return state

    def _close_up(self, lr: torch.Tensor, fresh: bool) -> tuple[torch.Tensor, Box | None]:
        """The close-up path for the people step: whole-frame mask and one box."""
        if fresh:
            self._smoother.reset()
            self._region = None
        mask = self.segment(lr)
        return mask, self._sr_box(lr, mask)

    def _feather_radius(self, scale: float) -> int:
        """Feather radius at a mask resolution ``scale`` × the frame's (0: a hard edge)."""
        feather_px = self.config.blend.feather_px
        return feather_px and max(1, round(feather_px * scale / 2))

    def back(self, state: FrontState) -> ProcessedFrame:
        """Back half, steps 4–6 and the download: ``finish(render(state))``."""
        return self.finish(self.render(state))

    def render(self, state: FrontState) -> Rendered:
        """Steps 4–6 on the device: background, SR of the box crop, blend; no download."""
        if state.error is not None:
            return self._fallback(state, state.error)
        timer = _StageTimer(state.stages_ms)
        try:
            with timer("background"):
                output = self._background(state.lr, state.bypass)
            if state.boxes:
                self._super_resolve(state.lr, state.mask, state.boxes, output, timer)
        except Exception as exc:  # an engine failed on this frame: pass it through
            return self._fallback(state, exc)
        return Rendered(state=state, output=output, boxes=list(state.boxes), fallback=False)

    def finish(self, rendered: Rendered, image: np.ndarray | None = None,
               mask: np.ndarray | None = None) -> ProcessedFrame:
        """The :class:`ProcessedFrame` for a rendered frame.

        ``image`` (uint8 2H×2W×3) and ``mask`` (float32 H×W): host copies of
        ``rendered.output`` and the state's mask that the caller already downloaded; the
        record owns them from now on. When ``None`` they are downloaded here (waits for
        the device).
        """
        state = rendered.state
        if image is None:
            output = rendered.output
            image = output.cpu().numpy() if output.device.type != "cpu" else output.numpy()
        if mask is None and state.mask is not None:
            mask = state.mask[0, 0].float().cpu().numpy()
        return ProcessedFrame(image=image, source=state.frame, mask=mask, box=rendered.box,
                              stages_ms=state.stages_ms, fallback=rendered.fallback,
                              boxes=tuple(rendered.boxes),
                              people=None if rendered.fallback else state.people)

    def _fallback(self, state: FrontState, exc: Exception) -> Rendered:
        self._count_fallback(exc)
        return Rendered(state=state, output=ops.upscale2x(state.lr, self.upscale_mode),
                        boxes=[], fallback=True)

    def _count_fallback(self, exc: Exception) -> None:
        if self.fallbacks == 0:
            log.error("inference failed (%s: %s); passing frames through as the plain "
                      "upscale", type(exc).__name__, exc)
        self.fallbacks += 1

    def segment(self, lr: torch.Tensor) -> torch.Tensor:
        """Soft person mask, float32 1×1×H×W in [0,1], at the frame's resolution."""
        height, width = lr.shape[:2]
        if self.segmenter_name is None:
            self.prepare((width, height))
        assert self.segmenter_name is not None
        segmenter = self._segmenters[self.segmenter_name]
        probability = segmenter(lr)
        self._smoother.feather_radius = self._feather_radius(segmenter.scale)
        soft = self._smoother(probability.float())
        if soft.shape[2:] == (height, width):
            return soft
        return ops.resize_plane(soft, (width, height))

    def _background(self, lr: torch.Tensor, bypass: bool) -> torch.Tensor:
        """The plain 2× upscale (uint8 2H×2W×3, a new tensor), blurred if configured;
        ``bypass`` is the switch as read when the frame arrived."""
        if self.config.blend.background == "blur" and not bypass:
            radius = max(1, round(lr.shape[0] * BLUR_RADIUS_FRACTION))
            return ops.upscale2x(ops.blur(lr, radius), self.upscale_mode)
        return ops.upscale2x(lr, self.upscale_mode)

    def _sr_box(self, lr: torch.Tensor, mask: torch.Tensor | None) -> Box | None:
        """Step 3: the region to super-resolve (bucketed person box, or the whole frame
        in full-frame mode); ``None`` when nobody is in the frame."""
        height, width = lr.shape[:2]
        blend = self.config.blend
        if blend.full_frame and self.uses_sr:
            return (0, 0, width, height)
        assert mask is not None
        tight = person_box(mask)
        if tight is None:
            self._region = None
            return None
        frame_size = (width, height)
        context = blend.context_px
        wanted = align_even(bucket_box(tight, frame_size, context, blend.bucket), frame_size)
        needed = (max(0, tight[0] - context), max(0, tight[1] - context),
                  min(width, tight[2] + context), min(height, tight[3] + context))
        self._region = sticky_region(self._region, needed, wanted)
        return self._region

    def _super_resolve(self, lr: torch.Tensor, mask: torch.Tensor | None,
                       boxes: Sequence[Box], output: torch.Tensor, timer: _StageTimer) -> None:
        """Steps 4 and 6: put the people (or the whole frame) into ``output`` in place.

        The foreground is the SR of each box crop for a U-Net model (boxes of one size
        share one engine call), or the sharp plain upscale when only the background is
        blurred. Where boxes overlap, the first one in ``boxes`` blends the pixels.
        """
        full = self.config.blend.full_frame and self.uses_sr
        for indices in _same_size(boxes):
            group = [boxes[i] for i in indices]
            with timer("upscale"):
                crops = [lr[y0:y1, x0:x1] for x0, y0, x1, y1 in group]
                if self._sr is not None:
                    batch = torch.cat([ops.bgr8_to_rgb_float(crop) for crop in crops])
                    sr = self._sr({"image": batch})["sr"]
                    foregrounds = [ops.rgb_float_to_bgr8(sr[i:i + 1]) for i in range(len(group))]
                else:
                    foregrounds = [ops.upscale2x(crop.contiguous(), self.upscale_mode)
                                   for crop in crops]
            with timer("blend"):
                for index, foreground in zip(indices, foregrounds, strict=True):
                    x0, y0, x1, y1 = boxes[index]
                    target = output[2 * y0:2 * y1, 2 * x0:2 * x1]
                    if full:
                        target.copy_(foreground)
                    else:
                        assert mask is not None
                        alpha = ops.resize_plane(mask[:, :, y0:y1, x0:x1],
                                                 (2 * (x1 - x0), 2 * (y1 - y0)))[0, 0]
                        for earlier in boxes[:index]:  # already blended there
                            shared = intersection(earlier, boxes[index])
                            if shared is not None:
                                alpha[2 * (shared[1] - y0):2 * (shared[3] - y0),
                                      2 * (shared[0] - x0):2 * (shared[2] - x0)] = 0.0
                        ops.blend_into(target, foreground, alpha)


def _same_size(boxes: Sequence[Box]) -> list[list[int]]:
    """Indices of ``boxes`` grouped by (width, height), in first-seen order: one SR
    call per group."""
    groups: dict[tuple[int, int], list[int]] = {}
    for index, box in enumerate(boxes):
        groups.setdefault((box[2] - box[0], box[3] - box[1]), []).append(index)
    return list(groups.values())


@dataclasses.dataclass
class FrontState:
    """One frame between the two halves of :meth:`FrameProcessor.process`.

    ``lr``: the frame on the processor's device, uint8 H×W×3 BGR; the back half reads
    it, so whoever owns that memory keeps it unchanged until :meth:`~FrameProcessor.render`
    has run (on a GPU: until the back half's work has run on the device). ``mask``:
    float32 1×1×H×W soft mask on the device, or ``None``. ``boxes``: the regions to
    super-resolve in input pixels (none when nobody is there). ``people``: how many
    people those regions enhance (``None`` where no mask is made). ``bypass``: the
    bypass switch as read when the frame arrived. ``error``: an engine failure in the
    front half (the back half turns it into the plain upscale). ``stages_ms``: filled
    by both halves.
    """

    frame: CapturedFrame
    lr: torch.Tensor
    bypass: bool
    stages_ms: dict[str, float]
    mask: torch.Tensor | None = None
    boxes: list[Box] = dataclasses.field(default_factory=list)
    people: int | None = None
    error: Exception | None = None

    @property
    def box(self) -> Box | None:
        """The bounding box of :attr:`boxes`, or ``None``."""
        return _bounds(self.boxes)


@dataclasses.dataclass
class Rendered:
    """A frame after the back half's device work, before the download.

    ``output``: uint8 2H×2W×3 BGR on the device, a new tensor owned by this record.
    ``boxes``: the boxes actually super-resolved; ``fallback``: the output is the plain
    upscale because an engine failed.
    """

    state: FrontState
    output: torch.Tensor
    boxes: list[Box]
    fallback: bool

    @property
    def box(self) -> Box | None:
        """The bounding box of :attr:`boxes`, or ``None``."""
        return _bounds(self.boxes)


def _bounds(boxes: Sequence[Box]) -> Box | None:
    if not boxes:
        return None
    return (min(b[0] for b in boxes), min(b[1] for b in boxes),
            max(b[2] for b in boxes), max(b[3] for b in boxes))


class _StageTimer:
    """Context-manager factory recording wall milliseconds per stage into a dict."""

    def __init__(self, into: dict[str, float]) -> None:
        self.into = into

    def __call__(self, stage: str) -> _Stage:
        return _Stage(self.into, stage)


class _Stage:
    def __init__(self, into: dict[str, float], stage: str) -> None:
        self.into, self.stage, self.start = into, stage, 0.0

    def __enter__(self) -> None:
        self.start = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        elapsed = (time.perf_counter() - self.start) * 1000.0
        self.into[self.stage] = self.into.get(self.stage, 0.0) + elapsed


def process_image(processor: FrameProcessor, image: np.ndarray) -> ProcessedFrame:
    """Process one still image (no temporal state carried over): a convenience."""
    processor.reset()
    return processor.process(CapturedFrame(image, 0, time.perf_counter()))

