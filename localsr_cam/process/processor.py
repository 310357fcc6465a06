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

import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from localsr_cam.config import PipelineConfig
from localsr_cam.errors import LocalSRError
from localsr_cam.frames import CapturedFrame, ProcessedFrame
from localsr_cam.process import motion, ops, reuse
from localsr_cam.process.auto import PEOPLE, NobodyNotice
from localsr_cam.process.backdrop import Backdrop, image_path
from localsr_cam.process.background_sr import BackgroundSR, Finished
from localsr_cam.process.deadline import LEVELS, DeadlineController, Level
from localsr_cam.process.estimate import (
    LEVEL_NAMES,
    NOISE_UNIT,
    LevelSmoother,
    estimate_levels,
)
from localsr_cam.process.frame_state import (
    EarlyGroup,
    FrontState,
    GroupKey,
    Rendered,
    SRCall,
    SRResult,
)
from localsr_cam.process.localize import (
    Box,
    MaskSmoother,
    bucket_box,
    bucket_sizes,
    person_box,
)
from localsr_cam.process.regions import align_even, contains, grown, intersection
from localsr_cam.process.repeats import RepeatTest
from localsr_cam.process.segment import AUTO_SEGMENTERS, Segmenter, choose_segmenter
from localsr_cam.process.shared_sr import SharedJob, bands
from localsr_cam.process.stage_timer import StageTimer
from localsr_cam.process.temporal import TemporalDenoiser
from localsr_cam.process.tiling import split
from localsr_cam.process.tracking import sticky_region
from localsr_cam.runtime import settings
from localsr_cam.runtime.base import (
    HOST_LEVELS_NAME,
    INPUT_NAME,
    LEVELS_NAME,
    Engine,
    PreparesShapes,
)
from localsr_cam.zoo.backends import choose_backend, open_engine
from localsr_cam.zoo.registry import SR_BASELINES

if TYPE_CHECKING:
    from localsr_cam.process.people_step import PeopleOutcome, PeopleStep

log = logging.getLogger(__name__)

EngineFactory = Callable[[str, str, int, "str | None", str], Engine]
"""``(model name, backend, threads, weights, precision) -> opened Engine``: how engines
are loaded (see :func:`localsr_cam.zoo.backends.open_engine`)."""
FinderFactory = Callable[[str, int], Any]
"""``(backend, threads) -> opened face finder`` (see :class:`localsr_cam.process.people.Finder`)."""
PEOPLE_MODES = ("auto", "people")
"""Segmenter settings that look for people with the face finder."""
FINDER_SCORE = 0.6
"""Face detection threshold for finding people: at 0.6 the calibration run found 28 of
30 faces in a group photo (shared/notes/people-finder-calibration.md); at 0.5 badges on
the sample clip's space suit scored as faces."""

BLUR_RADIUS_FRACTION = 1 / 60
"""Background blur box radius as a fraction of the frame height."""
PART_RAMP_PX = 8
"""Input rows over which SR fades out at the bottom of a partly super-resolved box."""
FULL = LEVELS["full"]

LEVELS_EMA = 0.05
"""Weight of a new frame's degradation estimate (a ~20-frame time constant): a camera's
noise, compression and focus change slowly, the estimate of one frame jitters."""
EARLY_CONTEXT_PX = 8
"""Context around the person (input pixels) that a box whose SR began before
segmentation must still hold to serve the frame (a new box gets 16): the blend's mask
is 0 beyond the tight box and rises from 0 inside it over the feather, so the few pixels
where the crop's edge still reaches the nets' outputs (their receptive fields span
12–15 px) are blended in at a small weight, for one frame."""
LIVE_ESTIMATE_PIXELS = 30_000
"""Pixels of a live frame the degradation estimate reads (half its default, another half
each frame): 0.33 instead of 0.47 ms at 640×360; on 15 photos × 3 degradations one such
read differed from the whole frame's by at most 0.05 in noise, 0.12 in blur (mean 0.007,
0.019) and not in JPEG, and the levels are smoothed over ~20 frames."""
LIVE_ESTIMATE_EVERY = 4
"""A live run reads its levels on one new frame in this many (the next part of the frame
at each reading; a repeated frame is no new exposure and does not count), and the
smoother weighs each reading as the frames it stands for: in the pipeline a reading
costs 0.66–0.78 ms CPU (0.36 ms alone: the SR beside it leaves the caches cold), so
about 0.2 ms a frame on average, within issue 10's 0.5 ms with room for a busier
machine; the levels change over ~20 frames. The frames between keep only their green
channel (0.07 ms), for the next reading's frame difference."""
ESTIMATE_CPU_STAGE = "estimate_cpu"
"""The frame's stage that holds the CPU time of its level reading (``estimate`` holds its
wall time, which beside the SR's threads also counts their turns on the core)."""
COMPUTED_FOR_THE_FRAME = ("fresh", "partial", "reused")
"""SR kinds whose result is of the frame's own pixels (``late`` and ``none`` are not)."""
ENGINE_THREADS = 2
"""CPU threads per engine where frames are processed one after another (files, unpaced
benchmarks, fixed quality): each engine has both cores of a laptop to itself."""
LIVE_ENGINE_THREADS = 1
"""CPU threads per engine in a live run that adapts its quality: there the SR runs on a
worker beside segmentation, so each has a core. Two threads each made three threads
share two cores; on the sample, paced, with other tenants' processes on the machine
(load average 1–3), frames at full quality were 77 % (8–100) over 9 runs with SR late
on 2–13 % of frames, vs 94 % (82–100) over 11 runs and 0.2–6 % with one thread, at ~9
points less CPU; under ``--load 2`` p95 and drops were alike (BENCHMARKS.md, "Session
7"). Unpaced, one thread each fell under 30 fps."""


CPU_BUCKET = 8
"""The close-up person box rounds up to multiples of this on the CPU backends: ONNX
Runtime takes any size at no cost, and a coarser bucket is SR on padding (the sample clip
at full quality, paced, ``--threads 1``, interleaved ×3, with :data:`STICKY_SLACK_PX`: SR
24.9 → 23.2 ms a frame, CPU a delivered frame −5 %, against 32)."""
GPU_BUCKET = 32
"""…and of this on a GPU, where each distinct shape is a CUDA graph captured, or must lie
in TensorRT's optimization profile (:mod:`localsr_cam.runtime.trt_build`). People's crops
(the people path) round to half of it on any backend unless configured: boxes of one size
are batched into one SR call."""
STICKY_SLACK_PX = 4
"""The SR region of the last frame is kept while it holds the person with this much less
than ``context_px`` around (so 12 px with the default 16, still the nets' receptive
field): a still person's mask jitters by a pixel or two, and a region rebuilt for that
moves the crop and loses the SR reuse of an unchanged crop. The 32-px bucket used to
give that slack by its rounding."""


def box_bucket(configured: int | None, backend: str) -> int:
    """The multiple the close-up person box rounds up to: ``configured`` (``[blend]
    bucket``) when set, else :data:`GPU_BUCKET` on ``cuda`` and ``tensorrt``,
    :data:`CPU_BUCKET` on the others."""
    if configured is not None:
        return configured
    return GPU_BUCKET if backend in ("cuda", "tensorrt") else CPU_BUCKET


def engine_threads(configured: int | None, live: bool) -> int:
    """CPU threads per engine: ``configured`` (``--threads``) when set, else
    :data:`LIVE_ENGINE_THREADS` for a ``live`` run, :data:`ENGINE_THREADS` otherwise."""
    if configured is not None:
        return configured
    return LIVE_ENGINE_THREADS if live else ENGINE_THREADS


class FrameProcessor:
    """Steps 1–6 on one frame at a time; not thread-safe (one processing thread).

    ``open()`` loads the engines the config needs; ``prepare(frame_size)`` builds the
    parts that depend on the frame size (the segmenter ``auto`` picks, its letterbox,
    the mask smoother) and must be called before the first frame of that size;
    ``process()`` returns a new :class:`ProcessedFrame` whose ``image`` the caller owns.
    An engine that fails on a frame makes that frame the plain upscale; the failure is
    logged once and counted in ``fallbacks``. ``engine_factory`` loads engines (tests
    pass fakes).
    """

    def __init__(self, config: PipelineConfig,
                 engine_factory: EngineFactory = open_engine,
                 finder_factory: FinderFactory | None = None) -> None:
        self.config = config
        self._open_engine = engine_factory
        self._open_finder = finder_factory
        self._people: PeopleStep | None = None
        self._last_people: PeopleOutcome | None = None  # the last frame's, for skipped ones
        self._notice = NobodyNotice()
        self._region: Box | None = None
        self.last_path: str | None = None
        """The path (close-up or people) of the last frame where people were looked
        for; kept after :meth:`close` for reports."""
        self.backend = ""
        self.precision = ""  # the SR engine's arithmetic where it says (``int8``, ``fp32``)
        self.device = torch.device("cpu")
        self.fallbacks = 0
        self.segmenter_name: str | None = None
        self._sr: Engine | None = None
        self._segmenters: dict[str, Segmenter] = {}
        self._smoother: MaskSmoother | None = None
        self._frame_size: tuple[int, int] | None = None
        # the frame's degradation levels (noise, JPEG, blur), smoothed over frames; not
        # to be confused with ``level``, the quality level the deadline picks
        self._degradation = LevelSmoother(LEVELS_EMA)
        self._previous_green: np.ndarray | None = None
        """The last frame's green channel (uint8 H×W), for the temporal noise reading of
        :func:`~localsr_cam.process.estimate.estimate_levels`."""
        self._motion = motion.MotionTest()
        """Whether each video frame moved as a whole (a pan, a shake, a zoom) from the last:
        then no noise is read off their difference (the denoiser's, the levels')."""
        self._denoiser = TemporalDenoiser() if config.model.denoise == "auto" else None
        """Video frames' sensor noise averaged out where they hold still, before the
        rest of the frame's work (:mod:`localsr_cam.process.temporal`)."""
        self._repeats = RepeatTest()
        """Whether each video frame repeats the last bit for bit (a 15 fps picture in a
        30 fps stream): then the readings skip it and the denoiser repeats its output."""
        self._torch_threads: int | None = None
        self._opencv_threads: int | None = None
        self._backdrop: Backdrop | None = None
        self.progress: Callable[[int, int], None] | None = None
        """Told ``(tiles done, tiles)`` while a big frame is super-resolved in tiles."""
        # quality levels and skipped work (process/deadline.py, process/reuse.py):
        # ``deadline`` (set by a paced pipeline) picks each frame's level, else ``level``
        self.level: Level = LEVELS.get(config.model.quality, FULL)
        self.deadline: DeadlineController | None = None
        self.overlap_sr = False
        """Set by a pipeline run without a deadline (an unpaced benchmark, a file
        conversion, a run at a fixed quality): its SR runs on the background worker as a
        paced run's does, begun before segmentation, so that the two share the cores,
        but every frame waits for its own SR, however long it takes (CPU only: there
        the change tests are on). Off for :mod:`~localsr_cam.measure.evaluate`, which
        keeps each frame's own full reading of the levels."""
        self._mask_reuse = reuse.MaskReuse()
        self._sr_reuse = reuse.SRReuse()
        # a paced run's SR runs here and is waited for only until the frame's deadline
        self._background_sr: BackgroundSR[Box | GroupKey, SRResult] | None = None
        self._sr_band_s: float | None = None  # a SharedJob band's last run time
        self._frame_no = 0
        self._live_readings = 0  # the phase of the next live reading's part of the frame
        self._unread_frames = 0  # new live frames since the last reading
        self.threads = engine_threads(config.model.threads, live=False)
        """CPU threads per engine, as :meth:`open` chose them."""
        self.bucket = box_bucket(config.blend.bucket, config.model.backend)
        """The multiple the close-up box rounds up to, for the backend :meth:`open` chose."""

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
        return local_sr or self.config.blend.background != "keep"

    def open(self, *, live: bool = False) -> FrameProcessor:
        """Load the models. ``live``: the frames will be paced with a deadline controller
        (the pipeline arms one), which decides the engines' threads unless configured
        (:func:`engine_threads`)."""
        self.threads = engine_threads(self.config.model.threads, live)
        picture = image_path(self.config.blend.background)
        if picture is not None:  # a bad picture stops the run before any model loads
            self._backdrop = Backdrop(picture).load()
        if self.threads == 1:
            # one thread a network: OpenCV's steps run in the calling thread too, as its
            # pool's idle workers would spin beside the networks (restored by close())
            self._opencv_threads = settings.set_opencv_threads(1)
        with _held_info_logs(*BACKEND_LOGGERS) as held:
            self._open_engines()
        held.release()  # the backend choice, said once the models are open
        return self

    def _open_engines(self) -> None:
        model = self.config.model
        self.backend = choose_backend(model.backend, self._models_needed())
        self.bucket = box_bucket(self.config.blend.bucket, self.backend)
        if self.backend in ("cuda", "tensorrt"):
            self.device = torch.device("cuda")
        elif self.backend == "cpu":
            # ONNX Runtime owns the cores for the networks; torch only does small glue
            # ops here, and a second pool of spinning threads on a 2-core laptop made
            # every stage several times slower (462 ms vs 99 ms a frame, measured).
            # Restored by close().
            self._torch_threads = settings.set_threads(1)
        try:
            if self.uses_sr:
                self._sr = self._open_engine(model.model, self.backend, self.threads, None,
                                             model.precision)
                self.precision = str(getattr(self._sr, "precision", ""))
            if self.uses_mask and model.segmenter not in PEOPLE_MODES:
                self._segmenter_for(model.segmenter)
            if self.uses_mask and not self.config.blend.full_frame \
                    and model.segmenter in PEOPLE_MODES:
                self._people = self._open_people(model.segmenter)
        except BaseException:
            self.close()
            raise

    def _models_needed(self) -> list[str]:
        """Every model :meth:`open` and :meth:`prepare` may load (``auto``: both selfie
        variants, as the frame size decides between them)."""
        needed = [self.config.model.model] if self.uses_sr else []
        if self.uses_mask:
            segmenter = self.config.model.segmenter
            needed += AUTO_SEGMENTERS if segmenter in PEOPLE_MODES else [segmenter]
        return needed

    def _open_people(self, mode: str) -> PeopleStep | None:
        """The people step, or ``None`` (logged) when ``auto`` finds no face finder."""
        from localsr_cam.process.people import CropSegmenter, PeopleFinder
        from localsr_cam.process.people_step import PeopleStep

        model, blend = self.config.model, self.config.blend
        try:
            finder = (self._open_finder or self._open_face_finder)(self.backend, self.threads)
        except LocalSRError as exc:
            if mode == "people":
                raise
            log.warning("no face finder (%s); --segmenter auto keeps to the close-up path",
                        exc)
            return None
        engine = self._open_engine("selfie", self.backend, self.threads, model.weights, "auto")
        smoother = MaskSmoother(ema=blend.ema, low=blend.threshold_low,
                                high=blend.threshold_high, despeckle=blend.despeckle,
                                feather_radius=1)
        # people far away are small: half the close-up's context and bucket keep their
        # boxes from being mostly padding (5 people in the room sample: 35 % of the
        # frame instead of 53 %)
        people = PeopleFinder(finder, CropSegmenter(engine), smoother,
                              context=max(4, blend.context_px // 2),
                              bucket=max(8, (blend.bucket or GPU_BUCKET) // 2),
                              whole=self._whole_frame)
        return PeopleStep(mode, people)

    def _whole_frame(self, lr: torch.Tensor) -> torch.Tensor:
        """The close-up segmenter's raw probability for the whole frame (float32
        1×1×h×w at its resolution): the people path adds it to catch people the face
        finder missed."""
        assert self.segmenter_name is not None, "prepare()"
        return self._segmenters[self.segmenter_name](lr)

    def _open_face_finder(self, backend: str, threads: int) -> Any:
        """The face finder (:mod:`localsr_cam.process.faces`) on an engine from the
        engine factory; :class:`~localsr_cam.errors.ModelError` when there is none."""
        from localsr_cam.errors import ModelError

        try:
            from localsr_cam.process import faces
        except ImportError as exc:
            raise ModelError(f"the face finder is not part of this build ({exc})") from None
        return faces.FaceFinder(self._open_engine("face", backend, threads, None, "auto"),
                                score=FINDER_SCORE)

    @property
    def path(self) -> str | None:
        """``close-up`` or ``people`` when people are looked for, else ``None``."""
        return None if self._people is None else self._people.path

    def _segmenter_for(self, name: str) -> Segmenter:
        segmenter = self._segmenters.get(name)
        if segmenter is None:
            model = self.config.model
            engine = self._open_engine(name, self.backend, self.threads, model.weights,
                                       "auto")
            segmenter = self._segmenters[name] = Segmenter(name, engine)
        return segmenter

    @property
    def sr_engine(self) -> Engine | None:
        """The super-resolution engine :meth:`open` loaded (``None`` for a baseline)."""
        return self._sr

    @property
    def smoother(self) -> MaskSmoother | None:
        """The mask smoother :meth:`prepare` built (``None`` before it, or with no mask)."""
        return self._smoother

    def prepare(self, frame_size: tuple[int, int]) -> None:
        """Get ready for frames of ``frame_size`` (width, height): open the segmenter
        ``auto`` picks for it, fit its letterbox, and build the mask smoother (its feather
        radius is in segmenter pixels). Temporal state starts afresh."""
        width, height = frame_size
        self._frame_size = (int(width), int(height))
        self.segmenter_name, self._smoother = None, None
        self.reset()  # a new size or a new photo: look everywhere again
        if not self.uses_mask:
            self._prepare_sr_shapes(frame_size)
            return
        requested = self.config.model.segmenter
        name = choose_segmenter("auto" if requested == "people" else requested, frame_size)
        segmenter = self._segmenter_for(name)  # the people path uses it too
        segmenter.prepare(frame_size, self.device)
        blend = self.config.blend
        feather_px = blend.feather_px  # 0: a hard edge
        self._prepare_sr_shapes(frame_size)
        self._smoother = MaskSmoother(
            ema=blend.ema, low=blend.threshold_low, high=blend.threshold_high,
            despeckle=blend.despeckle,
            feather_radius=feather_px and max(1, round(feather_px * segmenter.scale / 2)))
        self.segmenter_name = name

    def sr_input_shapes(self, frame_size: tuple[int, int]) -> list[tuple[int, int, int, int]]:
        """The N×C×H×W inputs the SR engine can get for frames of ``frame_size``: the
        whole frame in full-frame mode, else every bucketed person box."""
        width, height = frame_size
        blend = self.config.blend
        if blend.full_frame:
            return [(1, 3, height, width)]
        return [(1, 3, h, w) for w, h in bucket_sizes(frame_size, blend.context_px,
                                                       self.bucket)]

    def _prepare_sr_shapes(self, frame_size: tuple[int, int]) -> None:
        if isinstance(self._sr, PreparesShapes):
            self._sr.prepare_shapes(self.sr_input_shapes(frame_size))

    def reset(self) -> None:
        """Forget temporal state (call between unrelated images)."""
        if self._smoother is not None:
            self._smoother.reset()
        self._degradation.reset()
        self._previous_green = None
        self._unread_frames = 0
        self._motion.reset()
        self._repeats.reset()
        if self._denoiser is not None:
            self._denoiser.reset()
        self._forget_sr()
        self._mask_reuse.reset()
        self._region = None
        self._last_people = None
        if self._people is not None:
            self._people.reset()

    def _forget_sr(self) -> None:
        self._sr_reuse.reset()
        if self._background_sr is not None:
            self._background_sr.discard()

    def close(self) -> None:
        if self._background_sr is not None:  # before its engine closes
            self._background_sr.close()
            self._background_sr = None
        engines: list[Any] = [self._sr, *self._segmenters.values(), self._people]
        self._sr, self._segmenters, self._people = None, {}, None
        for engine in engines:
            if engine is not None:
                engine.close()
        if self._torch_threads is not None:
            settings.set_threads(self._torch_threads)
            self._torch_threads = None
        if self._opencv_threads is not None:
            settings.set_opencv_threads(self._opencv_threads)
            self._opencv_threads = None

    def __enter__(self) -> FrameProcessor:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- per frame --------------------------------------------------------------------
    def process(self, frame: CapturedFrame, *, bypass: bool = False) -> ProcessedFrame:
        """``frame.image`` uint8 H×W×3 BGR → :class:`ProcessedFrame` with a 2H×2W×3 image.

        ``bypass``: output the plain upscale (the preview's switch, read when the frame
        arrived). The same as ``back(front(frame, bypass=bypass, level=...))`` at the
        level the deadline controller picks (or :attr:`level`), with the change tests
        that skip unchanged work; a double-buffered GPU scheduler calls the two halves
        itself, on two CUDA streams, at full quality.

        A deadline controller also bounds the wait for SR: the SR runs off this thread
        (box by box; at the full level the people path's boxes as one call, begun
        before segmentation), and a frame whose SR is not done by ``deadline.sr_wait_s()``
        (the next frame is due, or it would be late) goes out without it (the last
        result stands in over the crop's cells that did not change), and the controller
        hears of it
        (see :mod:`localsr_cam.process.background_sr`). Without a controller but with
        :attr:`overlap_sr` the SR runs off this thread the same way and is waited for
        until it is done.
        """
        deadline = self.deadline
        level = deadline.begin() if deadline is not None else self.level
        state: FrontState | None = None
        try:
            state = self.front(frame, bypass=bypass, level=level,
                               live=deadline is not None or self.overlap_sr)
            if deadline is not None:
                deadline.on_people_path(self.last_path == PEOPLE)
                state.sr_until = time.perf_counter() + deadline.sr_wait_s(frame.timestamp)
            return self.back(state)
        finally:
            if deadline is not None:
                waited = None if state is None else state.sr_waited_at
                deadline.end(over_budget=state is not None and state.sr_late,
                             after_sr_s=None if waited is None
                             else time.perf_counter() - waited,
                             shown_plain=state is not None and state.shown_plain)

    def upload(self, image: np.ndarray) -> torch.Tensor:
        """uint8 H×W×3 host frame → the same on the device (a view of it on the CPU)."""
        lr = torch.from_numpy(image)
        if self.device.type != "cpu":
            lr = lr.pin_memory().to(self.device, non_blocking=True)
        return lr

    def front(self, frame: CapturedFrame, lr: torch.Tensor | None = None, *,
              bypass: bool = False, level: Level | None = None, live: bool = False,
              captured: CapturedFrame | None = None) -> FrontState:
        """Front half, steps 1–3: upload, segment, smooth the mask, find the person box.

        ``lr``: ``frame.image`` already on the device (uint8 H×W×3), for a caller that
        uploads into its own buffers; uploaded here when ``None``. An engine failure is
        kept in the state and turned into the plain upscale by :meth:`render`. Raises
        :class:`ValueError` for a frame of another size than :meth:`prepare` was told.
        ``level``: the quality level; given, unchanged work is skipped too (CPU only);
        ``None``: full quality, everything computed. ``captured``: with ``lr``, the frame
        as it came when ``frame`` is its :meth:`denoised` copy (``lr`` uploaded from
        that); without ``lr`` the frame is denoised here. ``live``: a video frame of a
        pipeline run (paced by a deadline controller, when ``process`` sets ``sr_until``
        after this; else :attr:`overlap_sr`): its SR runs on the background worker, and
        at the full level it begins before segmentation, on the last frame's box
        (:meth:`_begin_early_sr`).
        """
        height, width = frame.image.shape[:2]
        if frame.new_scene:  # another photo: its own size, and no mask state carried over
            self.prepare((width, height))
        if (width, height) != self._frame_size:
            raise ValueError(f"a {width}x{height} frame reached a processor prepared for "
                             f"{self._frame_size}; call prepare((width, height)) first")
        stages: dict[str, float] = {}
        timer = StageTimer(stages, self.device)
        if lr is None:
            captured = frame
            with timer("denoise"):
                frame = self.denoised(frame, bypass)
            lr = self.upload(frame.image)
        skipping = level is not None and lr.device.type == "cpu"
        state = FrontState(frame=frame, lr=lr, bypass=bypass, stages_ms=stages,
                           timer=timer, level=level or FULL,
                           skipping=skipping, live=live and skipping, captured=captured,
                           moved=self._motion.moved, repeated=self._repeats.repeated)
        self._frame_no += 1
        try:
            self._begin_early_sr(state)
            if self._people is not None and not bypass and state.level.segment_every:
                outcome = self._people_outcome(lr, state)
                self.last_path = outcome.path
                state.mask, state.boxes, state.people = (outcome.mask, outcome.regions,
                                                         outcome.people)
            else:
                if self.uses_mask and not bypass and state.level.segment_every:
                    with timer("segment"):
                        state.mask = self._mask(lr, state)
                if (self.uses_sr or state.mask is not None) and not bypass \
                        and (state.mask is not None or self.config.blend.full_frame):
                    box = self._sr_box(lr, state.mask, _early_region(state))
                    state.boxes = [] if box is None else [box]
                    if self.uses_mask:
                        state.people = len(state.boxes)
            if self._sr is not None and state.boxes and state.level.uses_sr \
                    and state.levels is None:
                self._set_levels(state)
        except Exception as exc:  # an engine failed on this frame: render passes it through
            state.error = exc
        if state.people is not None:
            self._notice.update(state.people, frame.timestamp)
        return state

    def denoised(self, frame: CapturedFrame, bypass: bool = False) -> CapturedFrame:
        """``frame`` with its image through the temporal denoiser, the first step of a
        video frame (:meth:`front` takes it for a frame it uploads itself; a caller that
        uploads into its own buffers calls it first). The same frame when it passes
        unchanged: no denoiser (``denoise`` off), a photo (``new_scene``), a clean
        camera. With ``bypass`` (the preview's plain side) the filter sees the frame
        but the plain upscale is of the frame as it came. Every video frame is put
        through the motion test here too (:mod:`~localsr_cam.process.motion`), and the
        repeat test (:mod:`~localsr_cam.process.repeats`): a repeat gets the last
        frame's output again."""
        if frame.new_scene:
            return frame
        movement = self._motion(frame.image)
        repeated = self._repeats(frame.image)
        if self._denoiser is None:
            return frame
        image = self._denoiser(frame.image, movement, repeated=repeated)
        if bypass or image is frame.image:
            return frame
        return dataclasses.replace(frame, image=image)

    def _begin_early_sr(self, state: FrontState) -> None:
        """Live, at a level with SR on every frame, one person close up: begin the SR of
        the last frame's box (its top part at `head` and `face`) now, on the background
        worker, so that it shares the cores with segmentation instead of waiting for it
        (the box seldom moves: it is sticky). The frame keeps that box while it holds
        the person (see :meth:`_sr_box`); if not, the call finishes for the frames
        after. (At `head` the SR began after segmentation, and on the frames that also
        ran the face finder's tile and read the levels it was late every time: a
        quarter of the frames showed the person plain, BENCHMARKS.md, "Session 25".)
        On the people path the same for every person (:meth:`_begin_early_group`)."""
        box, level = self._region, state.level
        if not state.live or self._sr is None or state.bypass \
                or not level.uses_sr or level.sr_every > 1:
            return
        if self.last_path == PEOPLE:
            self._begin_early_group(state)
            return
        part = None if box is None else _top_part(box, level.sr_part, self.bucket)
        if part is None or len(split(part)) != 1:
            return
        self._set_levels(state)
        x0, y0, x1, y1 = part
        state.early_sr = self._begin_sr(state.lr[y0:y1, x0:x1], part, state, True)
        state.early_box = box

    def _begin_early_group(self, state: FrontState) -> None:
        """The same on the people path: the SR of the last frame's regions (sticky,
        one per person or group; their top parts at `head` and `face`) begins now as one
        call on the background worker, the boxes one after the other, beside the finder
        and the crops' segmentation instead of after them. Each box is reused,
        recomputed in part or whole as it would be alone. Not while an earlier late call
        still runs (then the boxes stand in)."""
        last = self._last_people
        if last is None or last.path != PEOPLE or not last.regions:
            return
        parts = [_top_part(box, state.level.sr_part, self.bucket) for box in last.regions]
        tiles = [split(part) for part in parts if part is not None]
        if any(len(each) != 1 for each in tiles):
            return
        background = self._ready_worker()
        if background.holding:
            return
        self._set_levels(state)
        calls: dict[Box, SRCall] = {}
        for (tile,) in tiles:
            x0, y0, x1, y1 = key = tile.padded
            crop = state.lr[y0:y1, x0:x1]
            signature = self._signature(crop, state)
            reused = self._sr_reuse.reusable(key, signature)
            calls[key] = SRCall(key, kind="reused", result=reused) if reused is not None \
                else self._computed_call(crop, key, state, signature, store=True)
        jobs = [(call.key, call.job, call.tag) for call in calls.values() if call.job]
        if jobs:
            background.start(lambda: [job() for _, job, _ in jobs],
                             GroupKey(tuple(key for key, _, _ in jobs)),
                             [tag for _, _, tag in jobs])
        state.early_group = EarlyGroup(calls, waiting=bool(jobs))

    def _end_early_group(self, state: FrontState) -> None:
        """Wait for the early group's call until the frame's deadline, if any of the
        frame's boxes is one of its boxes or overlaps one; done in time, its results are
        stored and kept for the frame's boxes (a box that moved carries them over where
        it overlaps, :meth:`_own_sr_or_carried`), else the frame is late and they stand in
        (:meth:`_group_member`)."""
        group = state.early_group
        if group is None or not group.waiting:
            return
        group.waiting = False
        tiles = [tile.padded for box in state.boxes for tile in split(box)]
        if not any(intersection(tile, key) for tile in tiles for key in group.calls):
            return  # none of its boxes is near this frame's: it serves the next frames
        worker = self._background_sr
        group.was_running = worker is not None and worker.busy
        finished = self._wait_for_background(state)
        if finished is None:
            state.sr_late = True
            return
        group.results = self._store_finished(finished)
        group.of_the_frame = {**{key: call.result for key, call in group.calls.items()
                                 if call.result is not None}, **group.results}

    def _wait_for_background(self, state: FrontState
                             ) -> Finished[Box | GroupKey, SRResult] | None:
        """Run the frame's deferred work, then wait for the background call it started
        until ``state.sr_until`` (``sr_waited_at`` records when the wait ended): the
        finished call, taken, or ``None`` when it is late (it runs on)."""
        background = self._background_sr
        assert background is not None
        self._run_deferred(state)
        self._help_with_sr(background.held_call, state)
        done = background.wait(None if state.sr_until is None
                               else state.sr_until - time.perf_counter())
        state.sr_waited_at = time.perf_counter()
        finished = background.take() if done else None
        if finished is not None:
            state.timer.add("sr", finished.seconds * 1000.0)
        return finished

    def _group_member(self, call: SRCall, state: FrontState) -> torch.Tensor | None:
        """This frame's SR of a box of the early group (see :meth:`_end_sr`)."""
        group = state.early_group
        assert group is not None
        if call.job is None:  # reused
            state.sr = call.kind
            return call.result
        result = group.results.get(call.key)
        if result is not None:
            state.sr = call.kind
            return result
        state.sr_late = True
        return self._stand_in(call, state)

    def _ready_worker(self) -> BackgroundSR[Box | GroupKey, SRResult]:
        """The background SR worker (made on first use), an earlier frame's call that
        it finished since (a late SR, now done) stored for reuse."""
        if self._background_sr is None:
            self._background_sr = BackgroundSR()
        finished = self._background_sr.take()
        if finished is not None:
            self._store_finished(finished)
        return self._background_sr

    def _store_finished(self, finished: Finished[Box | GroupKey, SRResult]
                        ) -> dict[Box, torch.Tensor]:
        """Keep a finished background call's results for reuse (one box's, or each of
        a group's); returns them by box."""
        if isinstance(finished.key, GroupKey):
            assert isinstance(finished.result, list)
            results = dict(zip(finished.key.boxes, finished.result, strict=True))
            tags = dict(zip(finished.key.boxes, finished.tag, strict=True))
        else:
            assert isinstance(finished.result, torch.Tensor)
            results = {finished.key: finished.result}
            tags = {finished.key: finished.tag}
        for key, result in results.items():
            self._sr_reuse.store(key, result, tags[key])
        return results

    def _people_outcome(self, lr: torch.Tensor, state: FrontState) -> PeopleOutcome:
        """The people step's mask, SR regions and count for this frame — or the last
        frame's, on the frames a level that looks for people on one frame in
        ``segment_every`` skips (the finder, the crops' and the whole-frame masks all
        rest: with several people that is most of a frame's work)."""
        assert self._people is not None
        every = state.level.segment_every
        last = self._last_people
        # on the frames before the SR's turn (SR runs when frame_no % sr_every == 0):
        # the two dearest steps of a group do not land on one frame
        if state.skipping and every > 1 and (self._frame_no + 1) % every != 0 \
                and last is not None:
            return last
        outcome = self._people(lr, lambda frame, fresh: self._close_up(state, fresh),
                               self._people_feather(), state.timer,
                               state.level.crops_per_frame, skip_still=state.skipping)
        self._last_people = outcome
        return outcome

    def _close_up(self, state: FrontState, fresh: bool) -> tuple[torch.Tensor, Box | None]:
        """The close-up path for the people step: whole-frame mask and one box;
        ``fresh``: the path was just switched to (its temporal state is stale)."""
        if fresh:
            if self._smoother is not None:
                self._smoother.reset()
            self._mask_reuse.reset()
            self._region = None
        mask = self._mask(state.lr, state)
        return mask, self._sr_box(state.lr, mask, _early_region(state))

    def _people_feather(self) -> int:
        """Feather radius of the people path's mask, which is at the frame's resolution
        (0: a hard edge)."""
        feather_px = self.config.blend.feather_px
        return feather_px and max(1, round(feather_px / 2))

    def back(self, state: FrontState) -> ProcessedFrame:
        """Back half, steps 4–6 and the download: ``finish(render(state))``."""
        return self.finish(self.render(state))

    def render(self, state: FrontState) -> Rendered:
        """Steps 4–6 on the device: background, SR of the box crop, blend; no download."""
        try:
            return self._render(state)
        finally:
            self._run_deferred(state)

    def _render(self, state: FrontState) -> Rendered:
        if state.error is not None:
            return self._fallback(state, state.error)
        timer = state.timer
        try:
            with timer("background"):
                output = self._background(state.lr, state.bypass or state.mask is None)
            with timer("upscale"):
                self._end_early_group(state)
            done = []
            ready = self._batched_sr(state, timer)
            for index, box in enumerate(state.boxes):
                part = self._super_resolve(state, box, output, timer, state.boxes[:index],
                                           ready)
                if part is not None:
                    done.append(part)
        except Exception as exc:  # an engine failed on this frame: pass it through
            return self._fallback(state, exc)
        return Rendered(state=state, output=output, boxes=done, fallback=False)

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
        state.timer.resolve()
        return ProcessedFrame(image=image, source=state.captured or state.frame, mask=mask,
                              box=rendered.box,
                              stages_ms=state.stages_ms, fallback=rendered.fallback,
                              level=state.level.name, sr=state.sr,
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
        assert self.segmenter_name is not None and self._smoother is not None, "prepare()"
        probability = self._segmenters[self.segmenter_name](lr)
        soft = self._smoother(probability.float())
        if soft.shape[2:] == (height, width):
            return soft
        return ops.resize_plane(soft, (width, height))

    def _set_levels(self, state: FrontState) -> None:
        """Give the frame the levels its SR is told (:meth:`_frame_levels`), on the
        device and on the host."""
        host = self._frame_levels(state)
        self._sr_reuse.follow_levels(host)  # results told other levels are stale
        state.host_levels = torch.from_numpy(host)
        state.levels = self._on_device(host)

    def _frame_levels(self, state: FrontState) -> np.ndarray:
        """The levels the frame's SR is given, float32 1×K on the host. Live (a
        deadline controller, change tests on), once there is a history: the smoothed
        levels as the last frame left them, and this frame's estimate is made while its
        SR runs (``state.deferred``) — the levels change over ~20 frames, and the SR
        starts 0.5–1.6 ms earlier — on one new frame in :data:`LIVE_ESTIMATE_EVERY`
        (the others only keep their green channel for the next reading). Else this frame's,
        estimated now. A repeat of the last frame (:attr:`FrontState.repeated`) is not
        read at all: it is no new exposure, and read against the frame it repeats, its
        noise reads zero."""
        def estimate() -> np.ndarray:
            with state.timer("estimate"), state.timer.cpu(ESTIMATE_CPU_STAGE):
                captured = None if state.captured is None else state.captured.image
                # a photo (a new scene) is read whole: its reading is not smoothed
                # with other frames'
                live = state.live and not state.frame.new_scene
                return self.levels_of(state.frame.image, live=live, captured=captured,
                                      moved=state.moved)

        def keep_green() -> None:
            with state.timer("estimate"), state.timer.cpu(ESTIMATE_CPU_STAGE):
                self._keep_green(state.frame.image)

        history = self._degradation.current() if state.live or state.repeated else None
        if history is None:
            return estimate()
        if not state.repeated:
            self._unread_frames += 1
            reads = self._unread_frames >= LIVE_ESTIMATE_EVERY
            if reads:
                self._unread_frames = 0
            state.deferred.append(estimate if reads else keep_green)
        return history

    @staticmethod
    def _run_deferred(state: FrontState) -> None:
        """The frame's deferred work, once (while its SR runs, or before it is done)."""
        while state.deferred:
            state.deferred.pop(0)()

    def levels_of(self, image: np.ndarray, live: bool = False,
                  captured: np.ndarray | None = None, moved: bool = False) -> np.ndarray:
        """Smoothed degradation levels of a host frame (uint8 H×W×3): this frame's
        estimate put through the smoother, float32 1×K on the host, a new array. The
        noise is also read off the difference to the previous frame (the scene's still
        parts; forgotten by :meth:`prepare`, so by a new scene, and :meth:`reset`).
        ``live``: a video frame of a pipeline run, read in part
        (:data:`LIVE_ESTIMATE_PIXELS`, another part at each reading) and weighed as the
        :data:`LIVE_ESTIMATE_EVERY` frames a live reading stands for. ``captured``: the
        frame as it came when ``image`` is its :meth:`denoised` copy; the JPEG level is
        read off it (the camera's codec; averaging frames moves them off its lattice),
        the noise off ``image`` (what the SR sees). ``moved``: the frame moved as a
        whole from the last (:mod:`~localsr_cam.process.motion`): the noise is not read
        off their difference (a camera's pan reads as noise there)."""
        part: dict[str, int] = {}
        if live:
            part = {"max_pixels": LIVE_ESTIMATE_PIXELS, "phase": self._live_readings}
            self._live_readings += 1
        levels = estimate_levels(image, bgr=True,
                                 previous=None if moved else self._previous_green,
                                 jpeg_frame=captured, **part)
        self._keep_green(image)
        return self._degradation.update(levels, frames=LIVE_ESTIMATE_EVERY if live else 1)

    def _keep_green(self, image: np.ndarray) -> None:
        """Keep the frame's green channel (a copy, uint8 H×W) for the next reading's
        frame difference."""
        self._previous_green = np.array(image[:, :, 1])

    @staticmethod
    def _signature(crop: torch.Tensor, state: FrontState) -> reuse.Signature:
        """The SR change test's signature of ``crop`` (uint8 h×w×3 BGR, on the CPU),
        with the noise σ the frame's SR is told (its levels are set by then)."""
        assert state.host_levels is not None
        noise = float(state.host_levels[0, LEVEL_NAMES.index("noise")])
        return reuse.signature(crop, NOISE_UNIT * noise)

    def _on_device(self, levels: np.ndarray) -> torch.Tensor:
        """float32 1×K host levels → a tensor on the processor's device."""
        tensor = torch.from_numpy(levels)
        return tensor if self.device.type == "cpu" else tensor.to(self.device)

    def _background(self, lr: torch.Tensor, bypass: bool) -> torch.Tensor:
        """The plain 2× upscale (uint8 2H×2W×3, a new tensor), blurred if configured;
        ``bypass`` is the switch as read when the frame arrived."""
        if self.config.blend.background == "blur" and not bypass:
            radius = max(1, round(lr.shape[0] * BLUR_RADIUS_FRACTION))
            return ops.upscale2x(ops.blur(lr, radius), self.upscale_mode)
        if self._backdrop is not None and not bypass:
            height, width = lr.shape[:2]
            picture = self._backdrop.for_size((2 * width, 2 * height))
            return torch.from_numpy(picture).to(lr.device, copy=True)
        return ops.upscale2x(lr, self.upscale_mode)

    def _sr_box(self, lr: torch.Tensor, mask: torch.Tensor | None, early: Box | None = None
                ) -> Box | None:
        """Step 3: the region to super-resolve (bucketed person box, or the whole frame
        in full-frame mode); ``None`` when nobody is in the frame. ``early``: the box
        whose SR began before segmentation; it is this frame's region while it holds
        the person with :data:`EARLY_CONTEXT_PX` of context (the region kept for the
        next frame follows the person as usual)."""
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
        wanted = align_even(bucket_box(tight, frame_size, context, self.bucket), frame_size)
        needed = grown(tight, max(0, context - STICKY_SLACK_PX), frame_size)
        self._region = sticky_region(self._region, needed, wanted)
        if early is not None and contains(early, grown(tight, EARLY_CONTEXT_PX, frame_size)):
            return early
        return self._region

    def _mask(self, lr: torch.Tensor, state: FrontState) -> torch.Tensor:
        """Step 1–2's soft mask, or the last one when the frame is still or the level
        segments only one frame in ``segment_every``."""
        every = state.level.segment_every
        skip = every > 1 and self._frame_no % every != 0
        thumb = reuse.thumbnail(lr) if state.skipping else None
        mask = self._mask_reuse.reusable(thumb, skip) if state.skipping else None
        if mask is None:
            mask = self.segment(lr)
            self._mask_reuse.store(mask, thumb)
        return mask

    def _batched_sr(self, state: FrontState, timer: StageTimer) -> dict[Box, torch.Tensor]:
        """SR of several people's boxes of one size in one engine call: ``{padded input
        box: uint8 2h×2w×3 BGR}``. Only where SR runs on every frame on whole boxes (the
        full level), for boxes that are one tile each; anything else goes box by box
        (:meth:`_super_resolve`, which may also reuse the last result of a single box)."""
        boxes = state.boxes
        level = state.level
        if self._sr is None or len(boxes) < 2 or level.sr_part < 1 or level.sr_every > 1 \
                or state.live:  # live: box by box, each waited for until a deadline
            return {}
        pads = [tiles[0].padded for tiles in (split(box) for box in boxes) if len(tiles) == 1]
        groups: dict[tuple[int, int], list[Box]] = {}
        for pad in pads:
            groups.setdefault((pad[2] - pad[0], pad[3] - pad[1]), []).append(pad)
        ready: dict[Box, torch.Tensor] = {}
        for group in groups.values():
            if len(group) < 2:
                continue
            with timer("upscale"):
                batch = torch.cat([ops.bgr8_to_rgb_float(state.lr[y0:y1, x0:x1])
                                   for x0, y0, x1, y1 in group])
                with timer("sr"):
                    outputs = self._sr(self._sr_inputs(batch, state))
                for index, pad in enumerate(group):
                    ready[pad] = ops.sr_to_bgr8(outputs, index)
            state.sr = "fresh"
        return ready

    def _super_resolve(self, state: FrontState, box: Box, output: torch.Tensor,
                       timer: StageTimer, earlier: Sequence[Box] = (),
                       ready: dict[Box, torch.Tensor] | None = None) -> Box | None:
        """Steps 4 and 6: put the person (or the whole frame) into ``output`` in place.

        The foreground is the SR of the box crop for a U-Net model, or the sharp plain
        upscale when only the background is replaced. A big box is done in tiles
        (:mod:`localsr_cam.process.tiling`), so memory stays bounded; ``progress`` hears
        of each. The level decides how much of the box (from its top) is
        super-resolved and whether the last SR result stands in for this frame's
        (untiled boxes only); returns the box actually blended, or ``None`` when this
        frame gets no SR. ``earlier``: boxes already blended this frame (several
        people): where this one overlaps them it leaves the output as they made it, so
        no pixel is blended twice. ``ready``: SR results already computed in a batch,
        by padded input box.
        """
        lr, mask = state.lr, state.mask
        part = _top_part(box, state.level.sr_part, self.bucket)
        if part is None:
            return None
        # full frame over a kept background: no mask to blend with, the SR is the frame
        full = (self.config.blend.full_frame and self.uses_sr
                and self.config.blend.background == "keep" and part == box)
        tiles = split(part)
        for done, tile in enumerate(tiles, 1):
            px0, py0, px1, py1 = tile.padded
            rx0, ry0, rx1, ry1 = tile.region
            rows, cols = tile.inner()
            with timer("upscale"):
                crop = lr[py0:py1, px0:px1]
                if ready and tile.padded in ready:  # done in a batch with others
                    foreground = ready[tile.padded]
                elif self._sr is not None:
                    result = self._sr_result(crop, tile.padded, state, len(tiles) == 1)
                    if result is None:  # the person goes out plain: for a late SR?
                        state.shown_plain = state.shown_plain or state.sr_late
                        return None
                    foreground = result
                else:
                    foreground = ops.upscale2x(crop.contiguous(), self.upscale_mode)
                foreground = foreground[rows, cols]
            with timer("blend"):
                target = output[2 * ry0:2 * ry1, 2 * rx0:2 * rx1]
                if full:
                    target.copy_(foreground)
                else:
                    size = (2 * (px1 - px0), 2 * (py1 - py0))
                    alpha = (ops.resize_plane(mask[:, :, py0:py1, px0:px1], size)[0, 0]
                             if mask is not None
                             else torch.ones(size[::-1], device=target.device))
                    alpha = alpha[rows, cols].contiguous()
                    if part != box and ry1 == part[3]:
                        _fade_bottom(alpha, 2 * PART_RAMP_PX)
                    for other in earlier:  # already blended there
                        shared = intersection(other, (rx0, ry0, rx1, ry1))
                        if shared is not None:
                            alpha[2 * (shared[1] - ry0):2 * (shared[3] - ry0),
                                  2 * (shared[0] - rx0):2 * (shared[2] - rx0)] = 0.0
                    ops.blend_into(target, foreground.contiguous(), alpha)
            if self.progress is not None and len(tiles) > 1:
                self.progress(done, len(tiles))
        return part

    @staticmethod
    def _sr_inputs(images: torch.Tensor, state: FrontState) -> dict[str, torch.Tensor]:
        """The SR engine's inputs for N×3×h×w float RGB crops of one frame: the frame's
        smoothed degradation levels go with every crop and tile alike, and their 1×K
        host copy for an engine that chooses a net by them."""
        inputs = {INPUT_NAME: images}
        if state.levels is not None:
            count = images.shape[0]
            inputs[LEVELS_NAME] = state.levels if count == 1 else state.levels.repeat(count, 1)
        if state.host_levels is not None:
            inputs[HOST_LEVELS_NAME] = state.host_levels
        return inputs

    def _sr_result(self, crop: torch.Tensor, key: Box, state: FrontState, reusable: bool
                   ) -> torch.Tensor | None:
        """uint8 2h×2w×3 BGR SR of ``crop`` (the input pixels ``key``): computed, or —
        when ``reusable`` — the last one, if no cell of the crop changed, or the last one
        with the part that changed cells make stale recomputed (``sr`` partial); when
        the level skips this frame, the last one over the cells that did not change and
        the plain upscale elsewhere (:meth:`_stand_in`), ``None`` when nothing can stand
        in. An SR of ``key`` begun early in the
        frame (:meth:`_begin_early_sr`) is finished instead of begun again."""
        group = state.early_group
        if group is not None and key in group.calls:
            return self._group_member(group.calls.pop(key), state)
        early, state.early_sr = state.early_sr, None
        if early is not None and early.key != key and self.deadline is not None:
            return self._sr_after_moved_early(early, crop, key, state, reusable)
        if group is not None and group.of_the_frame and self.deadline is not None:
            # whole frames of the meeting room had shown no SR on anyone
            return self._own_sr_or_carried(group.of_the_frame, group.was_running, crop,
                                           key, state, reusable)
        call = early if early is not None and early.key == key \
            else self._begin_sr(crop, key, state, reusable)
        return self._end_sr(call, state)

    def _sr_after_moved_early(self, early: SRCall, crop: torch.Tensor, key: Box,
                              state: FrontState, reusable: bool) -> torch.Tensor | None:
        """A paced frame whose person left the box whose SR began early (``early``, on the
        last frame's box): that call is waited for until the deadline, then the new box
        ``key`` (input ``crop``) gets :meth:`_own_sr_or_carried` of it: the frame had
        shown no SR at all, the person flashing to the plain upscale for a frame each
        time the box moved (1.1–1.3 % of the paced sample's frames, BENCHMARKS.md).
        When the early call was still running here, the frame has no time left for its
        own SR (a second call, late, would keep the next frame's early SR from
        starting)."""
        worker = self._background_sr
        running = early.started and worker is not None and worker.busy
        early_result = self._end_sr(early, state)
        of_the_frame = {early.key: early_result} \
            if early_result is not None and state.sr in COMPUTED_FOR_THE_FRAME else {}
        return self._own_sr_or_carried(of_the_frame, running, crop, key, state, reusable)

    def _own_sr_or_carried(self, of_the_frame: dict[Box, torch.Tensor], no_time: bool,
                           crop: torch.Tensor, key: Box, state: FrontState,
                           reusable: bool) -> torch.Tensor | None:
        """For a paced frame's box ``key`` (input ``crop``) that is none of the boxes
        whose SR began early — the person moved, or on the people path the groups of
        people changed — given those boxes' SR of this frame (``of_the_frame``, by input
        box): its own SR if there was time to begin it (not ``no_time``) and it is done
        in time; else the SR of the box it overlaps most, where they overlap, the plain
        upscale over the rest (``sr`` partial); else (no overlap) what its own SR call
        gives, as any box's."""
        own = None
        if not no_time:
            own = self._end_sr(self._begin_sr(crop, key, state, reusable), state)
            if own is not None and state.sr in COMPUTED_FOR_THE_FRAME:
                return own
        carried = None
        if of_the_frame:
            best = max(of_the_frame, key=lambda other: _overlap_area(other, key))
            carried = self._carried(of_the_frame[best], best, crop, key)
        if carried is None:
            return self._end_sr(self._begin_sr(crop, key, state, reusable), state) \
                if no_time else own
        state.sr = "partial"
        return carried

    def _carried(self, result: torch.Tensor, result_key: Box, crop: torch.Tensor,
                 key: Box) -> torch.Tensor | None:
        """uint8 2h×2w×3 BGR for the input box ``key`` (pixels ``crop``): ``result``
        (the SR of the box ``result_key`` of the same frame) where the two overlap, the
        plain upscale elsewhere; ``None`` when they do not overlap."""
        shared = intersection(result_key, key)
        if shared is None:
            return None
        carried = ops.upscale2x(crop.contiguous(), self.upscale_mode)
        x0, y0, x1, y1 = shared
        (rx, ry), (kx, ky) = result_key[:2], key[:2]
        carried[2 * (y0 - ky):2 * (y1 - ky), 2 * (x0 - kx):2 * (x1 - kx)] = \
            result[2 * (y0 - ry):2 * (y1 - ry), 2 * (x0 - rx):2 * (x1 - rx)]
        return carried

    def _begin_sr(self, crop: torch.Tensor, key: Box, state: FrontState, reusable: bool
                  ) -> SRCall:
        """The first half of :meth:`_sr_result`: what stands in is decided, or the SR
        call is prepared — and started on the background worker when the frame's SR is
        waited for only until a deadline (live)."""
        skipping = reusable and state.skipping
        every = state.level.sr_every
        skip = skipping and every > 1 and self._frame_no % every != 0
        signature = self._signature(crop, state) if skipping else None
        background = None
        if skipping and (state.live or self._background_sr is not None):
            background = self._ready_worker()
            if background.holding and self.deadline is None:
                # no deadline: an early call this frame did not keep (its box moved)
                # is waited for, and this frame's own SR follows, rather than stood in
                background.wait(None)
                background = self._ready_worker()
        busy = background is not None and background.holding
        if skipping:
            assert signature is not None
            reused = self._sr_reuse.reusable(key, signature)
            if reused is not None:
                return SRCall(key, kind="reused", result=reused)
            if busy or skip:  # a late SR still runs, or the level skips this frame
                return SRCall(key, kind="stand-in", crop=crop, signature=signature,
                              shown_as="late" if busy else "reused")
        call = self._computed_call(crop, key, state, signature, store=reusable)
        if background is not None and state.live:
            assert call.job is not None
            background.start(call.job, key, call.tag)
            call.started = True
        return call

    def _computed_call(self, crop: torch.Tensor, key: Box, state: FrontState,
                       signature: reuse.Signature | None, store: bool) -> SRCall:
        """The SR call that computes ``crop``: whole (``fresh``), or only the part its
        changed cells make stale (``partial``) when ``signature`` is given and few
        changed."""
        stale = None if signature is None else self._sr_reuse.stale_part(key, signature)
        return SRCall(key, kind="fresh" if stale is None else "partial",
                      job=self._sr_job(crop, state, stale),
                      tag=signature if stale is None else stale.signature, store=store,
                      crop=crop, signature=signature)

    def _end_sr(self, call: SRCall, state: FrontState) -> torch.Tensor | None:
        """The second half of :meth:`_sr_result`: the result decided, or the SR call
        run here, or the started call waited for until ``state.sr_until``: its result
        (``sr`` fresh or partial); when it is late (``sr_late``; it runs on and the next
        frames take it), the last result where the crop did not change (``sr`` late,
        :meth:`_stand_in`), else ``None``."""
        if call.kind == "stand-in":
            # an earlier frame's SR still running late keeps this frame's from starting:
            # late too (else the controller sees cheap frames and no SR shown fresh)
            state.sr_late = state.sr_late or call.shown_as == "late"
            return self._stand_in(call, state)
        if call.job is None:  # reused: no cell of the crop changed
            state.sr = call.kind
            return call.result
        if not call.started:
            with state.timer("sr"):
                foreground = call.job()
            if call.store:
                self._sr_reuse.store(call.key, foreground, call.tag)
            state.sr = call.kind
            return foreground
        finished = self._wait_for_background(state)
        if finished is not None:
            result = self._store_finished(finished)[call.key]
            state.sr = call.kind
            return result
        state.sr_late = True
        call.shown_as = "late"
        return self._stand_in(call, state)

    def _sr_job(self, crop: torch.Tensor, state: FrontState,
                stale: reuse.StalePart | None) -> Callable[[], torch.Tensor]:
        """The SR call for ``crop`` (uint8 h×w×3 BGR view) → uint8 2h×2w×3 BGR: the
        engine on the whole crop, or on the stale part's padded input, patched into the
        stored result. Inputs are copied now, so it may run on another thread."""
        if stale is None:
            inputs = self._sr_inputs(ops.bgr8_to_rgb_float(crop), state)
            if self._shares_sr(state) and len(bands(crop.shape[0])) > 1:
                return SharedJob(lambda first, last: self._run_sr(_rows(inputs, first, last)),
                                 crop.shape[0])
            return lambda: self._run_sr(inputs)
        x0, y0, x1, y1 = stale.tile.padded
        part = self._sr_inputs(ops.bgr8_to_rgb_float(crop[y0:y1, x0:x1]), state)
        return lambda: stale.patch(self._run_sr(part))

    def _shares_sr(self, state: FrontState) -> bool:
        """Whether the SR of ``state``'s frame runs as a :class:`SharedJob`: a live
        frame's (its SR runs on the worker while this thread segments) with one thread a
        network on the CPU, where the frame thread is a core left idle while it waits —
        on the close-up path: on the people path the frame thread has the other
        people's crops to do, and a band of one person's SR there made the meeting
        room's SR late more often (BENCHMARKS.md, "Session 25")."""
        return (state.live and self.threads == 1 and self.device.type == "cpu"
                and self.last_path != PEOPLE)

    def _help_with_sr(self, job: object, state: FrontState) -> None:
        """While waiting for the worker's SR: run its last band no one has begun
        (:class:`SharedJob`), when it is expected to be done before the frame stops
        waiting (the last band's run time; unpaced, always)."""
        if not isinstance(job, SharedJob) or not job.open_bands:
            return
        expected = job.band_seconds or self._sr_band_s
        if (state.sr_until is None or expected is None
                or time.perf_counter() + expected <= state.sr_until):
            job.help()
            self._sr_band_s = job.band_seconds

    def _run_sr(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """The SR engine on prepared inputs → uint8 2h×2w×3 BGR."""
        assert self._sr is not None
        return ops.sr_to_bgr8(self._sr(inputs))

    def _stand_in(self, call: SRCall, state: FrontState) -> torch.Tensor | None:
        """For a frame whose SR is not computed (late, or skipped by the level): the last
        result of ``call.key`` over the cells of the crop that did not change — on a
        frame the level skips also moved along with the person where they moved — the
        plain upscale over the rest (``sr`` as ``call.shown_as`` says); ``None`` when
        nothing stands in (no result stored, or too few cells where it holds). A late
        SR's frame does not read the move: that frame is already at its deadline, and
        1–5 ms more there raised the sample's p95 under two busy processes from 40–43
        to 42–49 ms, with frames dropped (BENCHMARKS.md, "Session 26")."""
        if call.signature is None or call.crop is None:
            return None
        stand_in = self._sr_reuse.stand_in(call.key, call.signature,
                                           follow=call.shown_as != "late")
        if stand_in is None:
            return None
        state.sr = call.shown_as
        return stand_in.compose(call.crop, self.upscale_mode)


class _HeldRecords(logging.Filter):
    """A logger filter that keeps INFO (and lower) records instead of letting them out."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno <= logging.INFO:
            self.records.append(record)
            return False
        return True

    def release(self) -> None:
        """Emit the kept records (once the filter is off their loggers)."""
        records, self.records = self.records, []
        for record in records:
            logging.getLogger(record.name).handle(record)


BACKEND_LOGGERS = ("localsr_cam.runtime.base", "localsr_cam.zoo.backends")
"""The loggers that say which backend ``auto`` chose, and why."""


@contextlib.contextmanager
def _held_info_logs(*names: str) -> Iterator[_HeldRecords]:
    """Hold back the INFO records of the loggers ``names`` inside the block: when opening
    a model fails, its one error line is then all a user sees (not first a line about
    the backend picked for it). Call ``release()`` after the block to emit them."""
    held = _HeldRecords()
    loggers = [logging.getLogger(name) for name in names]
    for logger in loggers:
        logger.addFilter(held)
    try:
        yield held
    finally:
        for logger in loggers:
            logger.removeFilter(held)


def _top_part(box: Box, fraction: float, bucket: int) -> Box | None:
    """The top ``fraction`` of ``box``, its height rounded up to ``bucket`` (so engines
    see few shapes); the whole box for 1, ``None`` for 0."""
    if fraction <= 0:
        return None
    x0, y0, x1, y1 = box
    if fraction >= 1:
        return box
    height = -(-round((y1 - y0) * fraction) // bucket) * bucket
    return x0, y0, x1, min(y1, y0 + max(bucket, height))


def _rows(inputs: dict[str, torch.Tensor], first: int, last: int
          ) -> dict[str, torch.Tensor]:
    """SR engine inputs for the rows ``first:last`` of the N×3×h×w image alone (the
    levels as they are)."""
    return {**inputs, INPUT_NAME: inputs[INPUT_NAME][:, :, first:last].contiguous()}


def _overlap_area(a: Box, b: Box) -> int:
    """Pixels two boxes share (0 when they do not overlap)."""
    shared = intersection(a, b)
    return 0 if shared is None else (shared[2] - shared[0]) * (shared[3] - shared[1])


def _fade_bottom(alpha: torch.Tensor, rows: int) -> None:
    """Fade an h×w float32 blend weight to 0 over its last ``rows`` rows, in place, so
    a partly super-resolved person shows no seam where SR stops."""
    rows = min(rows, alpha.shape[0])
    ramp = torch.linspace(1.0, 0.0, rows + 1, device=alpha.device)[1:]
    alpha[-rows:] *= ramp[:, None]


def _early_region(state: FrontState) -> Box | None:
    """The person box whose SR (of its top part, at `head` and `face`) this frame began
    early, if any."""
    return None if state.early_sr is None else state.early_box
