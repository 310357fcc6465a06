"""FrameProcessor: one captured frame in, one 2× output frame out.

Steps (see DESIGN.md, "The flow of one frame"):

1. segment: person probability at the segmenter's resolution;
2. mask: temporal EMA, hysteresis, despeckle, feather (:class:`MaskSmoother`), then
   upsampled to the frame;
3. person box: padded with context, aligned, rounded up to a bucket size;
   degradation levels of the whole LR frame (noise, JPEG, blur), estimated on the host
   and smoothed over time (:mod:`localsr_cam.process.estimate`);
4. SR on the box crop only (the U-Net engine, told the smoothed levels);
5. background: plain 2× upscale of the whole frame (optionally blurred);
6. blend the SR crop over the background with the soft mask.

Written once on torch tensors; the device is the engines' device. Baseline models
(``bicubic``, ``bilinear``) skip 1–4 and 6; ``full_frame`` runs SR on the whole frame.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from localsr_cam.config import PipelineConfig
from localsr_cam.frames import CapturedFrame, Controls, ProcessedFrame
from localsr_cam.process import ops
from localsr_cam.process.estimate import LevelSmoother, estimate_levels
from localsr_cam.process.localize import Box, MaskSmoother, bucket_box, person_box
from localsr_cam.process.segment import Segmenter, choose_segmenter
from localsr_cam.runtime.base import Engine, resolve_backend
from localsr_cam.zoo.backends import open_engine
from localsr_cam.zoo.registry import SR_BASELINES

log = logging.getLogger(__name__)

EngineFactory = Callable[[str, str, int, "str | None"], Engine]
"""``(model name, backend, threads, weights) -> opened Engine``: how engines are loaded."""

BLUR_RADIUS_FRACTION = 1 / 60
"""Background blur box radius as a fraction of the frame height."""

LEVELS_EMA = 0.05
"""Weight of a new frame's degradation estimate (a ~20-frame time constant): a camera's
noise, compression and focus change slowly, the estimate of one frame jitters."""


class FrameProcessor:
    """Steps 1–6 on one frame at a time; not thread-safe (one processing thread).

    ``open()`` loads the engines the config needs; ``process()`` returns a new
    :class:`ProcessedFrame` whose ``image`` the caller owns. An engine that fails on a
    frame makes that frame the plain upscale; the failure is logged once and counted in
    ``fallbacks``. ``engine_factory`` loads engines (tests pass fakes).
    """

    def __init__(self, config: PipelineConfig, controls: Controls | None = None,
                 engine_factory: EngineFactory = open_engine) -> None:
        self.config = config
        self.controls = controls
        self._open_engine = engine_factory
        self.backend = ""
        self.device = torch.device("cpu")
        self.fallbacks = 0
        self.segmenter_name: str | None = None
        self._sr: Engine | None = None
        self._segmenters: dict[str, Segmenter] = {}
        self._smoother = MaskSmoother(
            ema=config.blend.ema, low=config.blend.threshold_low,
            high=config.blend.threshold_high, despeckle=config.blend.despeckle,
            feather_radius=1)
        self._levels = LevelSmoother(LEVELS_EMA)
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
            if self.uses_mask and model.segmenter != "auto":
                self._segmenter_for(model.segmenter)
        except BaseException:
            self.close()
            raise
        return self

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
            self.segmenter_name = choose_segmenter(self.config.model.segmenter, frame_size)
            self._segmenter_for(self.segmenter_name)

    def reset(self) -> None:
        """Forget temporal state (call between unrelated images)."""
        self._smoother.reset()
        self._levels.reset()

    def close(self) -> None:
        engines: list[Any] = [self._sr, *self._segmenters.values()]
        self._sr, self._segmenters = None, {}
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
            if self.uses_mask and not bypass:
                with timer("segment"):
                    state.mask = self.segment(lr)
            if (self.uses_sr or state.mask is not None) and not bypass:
                state.box = self._sr_box(lr, state.mask)
            if self._sr is not None and state.box is not None:
                with timer("estimate"):
                    state.levels = self.levels_of(frame.image)
        except Exception as exc:  # an engine failed on this frame: render passes it through
            state.error = exc
        return state

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
            if state.box is not None:
                self._super_resolve(state.lr, state.mask, state.box, output, timer,
                                    state.levels)
        except Exception as exc:  # an engine failed on this frame: pass it through
            return self._fallback(state, exc)
        return Rendered(state=state, output=output, box=state.box, fallback=False)

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
                              stages_ms=state.stages_ms, fallback=rendered.fallback)

    def _fallback(self, state: FrontState, exc: Exception) -> Rendered:
        self._count_fallback(exc)
        return Rendered(state=state, output=ops.upscale2x(state.lr, self.upscale_mode),
                        box=None, fallback=True)

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
        scale = segmenter.scale
        feather_px = self.config.blend.feather_px  # 0: a hard edge
        self._smoother.feather_radius = feather_px and max(1, round(feather_px * scale / 2))
        soft = self._smoother(probability.float())
        if soft.shape[2:] == (height, width):
            return soft
        return ops.resize_plane(soft, (width, height))

    def levels_of(self, image: np.ndarray) -> torch.Tensor:
        """Smoothed degradation levels of a host frame (uint8 H×W×3): float32 1×K on
        the processor's device, a new tensor."""
        levels = torch.from_numpy(self._levels.update(estimate_levels(image)))
        return levels if self.device.type == "cpu" else levels.to(self.device)

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
        return None if tight is None else bucket_box(tight, (width, height),
                                                     blend.context_px, blend.bucket)

    def _super_resolve(self, lr: torch.Tensor, mask: torch.Tensor | None, box: Box,
                       output: torch.Tensor, timer: _StageTimer,
                       levels: torch.Tensor | None = None) -> None:
        """Steps 4 and 6: put the person (or the whole frame) into ``output`` in place.

        The foreground is the SR of the box crop for a U-Net model (given the frame's
        ``levels``, 1×K float32), or the sharp plain upscale when only the background
        is blurred.
        """
        full = self.config.blend.full_frame and self.uses_sr
        x0, y0, x1, y1 = box
        with timer("upscale"):
            crop = lr[y0:y1, x0:x1]
            if self._sr is not None:
                inputs = {"image": ops.bgr8_to_rgb_float(crop)}
                if levels is not None:
                    inputs["levels"] = levels
                sr = self._sr(inputs)["sr"]
                foreground = ops.rgb_float_to_bgr8(sr)
            else:
                foreground = ops.upscale2x(crop.contiguous(), self.upscale_mode)
        with timer("blend"):
            target = output[2 * y0:2 * y1, 2 * x0:2 * x1]
            if full:
                target.copy_(foreground)
            else:
                assert mask is not None
                alpha = ops.resize_plane(mask[:, :, y0:y1, x0:x1],
                                         (2 * (x1 - x0), 2 * (y1 - y0)))[0, 0]
                ops.blend_into(target, foreground, alpha)


@dataclasses.dataclass
class FrontState:
    """One frame between the two halves of :meth:`FrameProcessor.process`.

    ``lr``: the frame on the processor's device, uint8 H×W×3 BGR; the back half reads
    it, so whoever owns that memory keeps it unchanged until :meth:`~FrameProcessor.render`
    has run (on a GPU: until the back half's work has run on the device). ``mask``:
    float32 1×1×H×W soft mask on the device, or ``None``. ``box``: the region to
    super-resolve in input pixels, or ``None``. ``levels``: the frame's smoothed
    degradation levels, float32 1×K on the device (``None`` without SR). ``bypass``:
    the bypass switch as read when the frame arrived. ``error``: an engine failure in
    the front half (the back half turns it into the plain upscale). ``stages_ms``:
    filled by both halves.
    """

    frame: CapturedFrame
    lr: torch.Tensor
    bypass: bool
    stages_ms: dict[str, float]
    mask: torch.Tensor | None = None
    box: Box | None = None
    levels: torch.Tensor | None = None
    error: Exception | None = None


@dataclasses.dataclass
class Rendered:
    """A frame after the back half's device work, before the download.

    ``output``: uint8 2H×2W×3 BGR on the device, a new tensor owned by this record.
    ``box``: the box actually super-resolved; ``fallback``: the output is the plain
    upscale because an engine failed.
    """

    state: FrontState
    output: torch.Tensor
    box: Box | None
    fallback: bool


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

