"""FrameProcessor with fake engines: shapes, localized blending, fallbacks."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from localsr_cam.config import BlendConfig, ModelConfig, PipelineConfig
from localsr_cam.frames import CapturedFrame
from localsr_cam.process.processor import FrameProcessor, box_bucket
from tests.fakes import BicubicSR, DiscSegmenter, EngineBox, process_image


def config(model="fast", **blend) -> PipelineConfig:
    return PipelineConfig(model=ModelConfig(model=model, backend="cpu"),
                          blend=BlendConfig(ema=0.0, **blend))


def frame(width=160, height=90, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (height, width, 3), dtype=np.uint8)


def plain(image: np.ndarray, mode=cv2.INTER_CUBIC) -> np.ndarray:
    return cv2.resize(image, (2 * image.shape[1], 2 * image.shape[0]), interpolation=mode)


@pytest.mark.parametrize("model, mode", [("bicubic", cv2.INTER_CUBIC),
                                         ("bilinear", cv2.INTER_LINEAR)])
def test_baselines_are_the_plain_upscale(model, mode):
    engines = EngineBox()
    with FrameProcessor(config(model), engine_factory=engines) as processor:
        image = frame()
        out = process_image(processor, image)
    assert out.image.shape == (180, 320, 3) and out.image.dtype == np.uint8
    assert np.array_equal(out.image, plain(image, mode))
    assert engines.opened == [] and out.mask is None


def test_local_sr_changes_only_the_person_and_keeps_the_rest_exact():
    engines = EngineBox(DiscSegmenter((0.5, 0.5), 0.25), BicubicSR(offset=0.2))
    image = frame()
    with FrameProcessor(config(), engine_factory=engines) as processor:
        out = process_image(processor, image)
        bucket = processor.bucket
    base = plain(image)
    assert out.mask is not None and out.mask.shape == (90, 160)
    alpha = cv2.resize(out.mask, (320, 180), interpolation=cv2.INTER_LINEAR)
    outside = alpha == 0
    assert outside.mean() > 0.5
    assert np.array_equal(out.image[outside], base[outside])
    centre = out.image[80:100, 150:170].astype(int) - base[80:100, 150:170].astype(int)
    assert centre.mean() > 30  # the +0.2 offset of the fake SR, on the 0-255 scale
    x0, y0, x1, y1 = out.box
    assert ((x1 - x0) % bucket == 0 or x1 - x0 == 160) and \
        ((y1 - y0) % bucket == 0 or y1 - y0 == 90)
    assert engines.sr.shapes == [(1, 3, y1 - y0, x1 - x0)]
    assert set(out.stages_ms) >= {"segment", "background", "upscale", "blend"}


def test_sr_box_covers_every_blended_pixel_with_context():
    engines = EngineBox(DiscSegmenter((0.3, 0.5), 0.2), BicubicSR(offset=0.2))
    with FrameProcessor(config(context_px=16), engine_factory=engines) as processor:
        out = process_image(processor, frame(320, 180))
    ys, xs = np.nonzero(out.mask > 0)
    x0, y0, x1, y1 = out.box
    assert x0 <= xs.min() - 16 or x0 == 0
    assert x1 >= xs.max() + 1 + 16 or x1 == 320
    assert y0 <= ys.min() - 16 or y0 == 0
    assert y1 >= ys.max() + 1 + 16 or y1 == 180


@pytest.mark.parametrize("configured, backend, bucket", [(None, "cpu", 8), (None, "torch", 8),
                                                        (None, "cuda", 32),
                                                        (None, "tensorrt", 32),
                                                        (16, "cpu", 16), (16, "cuda", 16)])
def test_boxes_round_to_a_bucket_by_backend_unless_configured(configured, backend, bucket):
    assert box_bucket(configured, backend) == bucket


@pytest.mark.parametrize("configured, multiple", [(None, 8), (32, 32)])
def test_the_cpu_sr_box_is_bucketed_finely_unless_configured(configured, multiple):
    engines = EngineBox(DiscSegmenter((0.5, 0.5), 0.23), BicubicSR(offset=0.2))
    blend = {} if configured is None else {"bucket": configured}
    with FrameProcessor(config(context_px=16, **blend), engine_factory=engines) as processor:
        assert processor.bucket == multiple
        out = process_image(processor, frame(640, 360))
    x0, y0, x1, y1 = out.box
    assert (x1 - x0) % multiple == 0 and (y1 - y0) % multiple == 0
    ys, xs = np.nonzero(out.mask > 0)
    # no more padding than the context and the bucket's rounding
    assert (x1 - x0) < xs.max() + 1 - xs.min() + 2 * 16 + multiple
    assert (y1 - y0) < ys.max() + 1 - ys.min() + 2 * 16 + multiple


def test_nobody_in_frame_is_the_plain_upscale_without_sr():
    engines = EngineBox(DiscSegmenter(None), BicubicSR(offset=0.2))
    image = frame()
    with FrameProcessor(config(), engine_factory=engines) as processor:
        out = process_image(processor, image)
    assert np.array_equal(out.image, plain(image)) and out.box is None
    assert engines.sr.shapes == []


def test_full_frame_runs_sr_on_the_whole_frame():
    engines = EngineBox(DiscSegmenter(None), BicubicSR())
    image = frame(100, 60)
    with FrameProcessor(config(full_frame=True), engine_factory=engines) as processor:
        out = process_image(processor, image)
    assert engines.sr.shapes == [(1, 3, 60, 100)] and engines.segmenter.calls == 0
    assert out.box == (0, 0, 100, 60) and out.image.shape == (120, 200, 3)


@pytest.mark.parametrize("width, height, centre", [
    (1, 1, (0.5, 0.5)),        # a 1×1 frame
    (37, 23, (0.5, 0.5)),      # not a multiple of the bucket
    (200, 100, (0.02, 0.5)),   # person touching the left border
    (200, 100, (0.98, 0.98)),  # and the bottom-right corner
    (31, 200, (0.5, 0.5)),     # portrait, narrower than one bucket
])
def test_odd_sizes_and_borders(width, height, centre):
    engines = EngineBox(DiscSegmenter(centre, 0.3), BicubicSR(offset=0.1))
    with FrameProcessor(config(), engine_factory=engines) as processor:
        out = process_image(processor, frame(width, height))
    assert out.image.shape == (2 * height, 2 * width, 3)
    assert out.box is not None  # every case has a person in it
    x0, y0, x1, y1 = out.box
    assert 0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height


def test_engine_failure_passes_the_frame_through_and_counts_it(caplog):
    engines = EngineBox(DiscSegmenter(), BicubicSR(fail=True))
    image = frame()
    with FrameProcessor(config(), engine_factory=engines) as processor:
        processor.prepare((image.shape[1], image.shape[0]))
        outs = [processor.process(CapturedFrame(image, i, 0.0)) for i in range(3)]
        assert processor.fallbacks == 3
    assert all(o.fallback and np.array_equal(o.image, plain(image)) for o in outs)
    assert sum("inference failed" in r.message for r in caplog.records) == 1


def test_bypass_outputs_the_plain_upscale_for_that_frame_only():
    engines = EngineBox(DiscSegmenter(), BicubicSR(offset=0.3))
    image = frame()
    with FrameProcessor(config(), engine_factory=engines) as processor:
        processor.prepare((image.shape[1], image.shape[0]))
        bypassed = processor.process(CapturedFrame(image, 0, 0.0), bypass=True)
        processed = processor.process(CapturedFrame(image, 1, 0.0))
    assert np.array_equal(bypassed.image, plain(image)) and bypassed.box is None
    assert processed.box is not None and not np.array_equal(processed.image, plain(image))


def test_a_frame_of_an_unprepared_size_is_refused():
    with FrameProcessor(config(), engine_factory=EngineBox()) as processor:
        with pytest.raises(ValueError, match="prepare"):
            processor.process(CapturedFrame(frame(160, 90), 0, 0.0))
        processor.prepare((160, 90))
        with pytest.raises(ValueError, match="320x180 frame"):
            processor.process(CapturedFrame(frame(320, 180), 0, 0.0))
        assert processor.process(CapturedFrame(frame(160, 90), 0, 0.0)).image.shape == (
            180, 320, 3)


def test_prepare_opens_the_segmenter_and_sizes_the_feather():
    engines = EngineBox()
    cfg = PipelineConfig(model=ModelConfig(backend="cpu"), blend=BlendConfig(feather_px=8))
    with FrameProcessor(cfg, engine_factory=engines) as processor:
        assert processor.segmenter_name is None
        processor.prepare((512, 288))  # landscape: 144×256 letterbox, scale 0.5
        assert processor.segmenter_name == "selfie-landscape"
        assert processor.smoother is not None and processor.smoother.feather_radius == 2
        processor.prepare((256, 256))
        assert processor.segmenter_name == "selfie"
        assert processor.smoother is not None and processor.smoother.feather_radius == 4


def test_blurred_background_keeps_the_person_sharp():
    engines = EngineBox(DiscSegmenter((0.5, 0.5), 0.3), BicubicSR())
    image = frame(200, 120)
    with FrameProcessor(config(background="blur"), engine_factory=engines) as processor:
        out = process_image(processor, image)
    base = plain(image).astype(int)
    corner = np.abs(out.image[:40, :40].astype(int) - base[:40, :40]).mean()
    centre = np.abs(out.image[110:130, 190:210].astype(int) - base[110:130, 190:210]).mean()
    assert corner > 20 and centre < 3


def test_close_releases_every_engine_once_even_twice_called():
    engines = EngineBox()
    processor = FrameProcessor(config(), engine_factory=engines).open()
    process_image(processor, frame())
    processor.close()
    processor.close()
    assert engines.sr.closed == 1 and engines.segmenter.closed == 1


@pytest.mark.parametrize("live, threads, opencv", [(True, None, 1), (False, None, 4),
                                                   (False, 1, 1)])
def test_one_thread_a_network_keeps_opencv_in_the_calling_thread(live, threads, opencv):
    cv2.setNumThreads(4)
    cfg = PipelineConfig(model=ModelConfig(model="fast", backend="cpu", threads=threads))
    processor = FrameProcessor(cfg, engine_factory=EngineBox()).open(live=live)
    assert cv2.getNumThreads() == opencv
    processor.close()
    assert cv2.getNumThreads() == 4


def test_temporal_smoothing_carries_over_frames_until_reset():
    segmenter = DiscSegmenter((0.5, 0.5), 0.3)
    engines = EngineBox(segmenter, BicubicSR())
    cfg = PipelineConfig(model=ModelConfig(backend="cpu"), blend=BlendConfig(ema=0.9))
    with FrameProcessor(cfg, engine_factory=engines) as processor:
        image = frame()
        processor.prepare((image.shape[1], image.shape[0]))
        first = processor.process(CapturedFrame(image, 0, 0.0))
        segmenter.centre = None  # the person leaves
        second = processor.process(CapturedFrame(image, 1, 0.0))
        assert second.mask is not None and second.mask.max() > 0  # still held by the EMA
        processor.reset()
        third = processor.process(CapturedFrame(image, 2, 0.0))
    assert first.mask is not None and third.mask is not None and third.mask.max() == 0


def test_maskrcnn_segmenter_runs_through_the_processor_with_random_weights():
    """The paper's segmenter wired into the processor (random weights: no COCO weights
    can be had here, so this checks the plumbing and shapes, not the masks)."""
    from localsr_cam.runtime.maskrcnn import MaskRCNNEngine

    def factory(name, backend, threads, weights, precision="auto"):
        if name == "maskrcnn":
            return MaskRCNNEngine(None, threads=threads, random_weights=True, min_size=160,
                                  max_size=320, score_threshold=0.0).open()
        return BicubicSR(offset=0.1)

    cfg = PipelineConfig(model=ModelConfig(segmenter="maskrcnn", backend="cpu"),
                         blend=BlendConfig(ema=0.0))
    image = frame(160, 90)
    with FrameProcessor(cfg, engine_factory=factory) as processor:
        out = process_image(processor, image)
        assert processor.segmenter_name == "maskrcnn"
    assert out.image.shape == (180, 320, 3) and out.mask is not None
    assert out.mask.shape == (90, 160) and 0.0 <= out.mask.min() <= out.mask.max() <= 1.0
    if out.box is None:
        assert np.array_equal(out.image, plain(image))


def test_sr_is_told_the_frame_levels_estimated_once_and_smoothed_over_time():
    from localsr_cam.process.estimate import estimate_levels
    from localsr_cam.process.processor import LEVELS_EMA

    engines = EngineBox()
    rng = np.random.default_rng(1)
    base = cv2.GaussianBlur(frame(160, 96), (0, 0), 3.0)
    clean = base.copy()
    noisy = np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)
    with FrameProcessor(config(), engine_factory=engines) as processor:
        processor.prepare((160, 96))

        def process(image: np.ndarray, index: int):
            # front/back at no level: every frame computed (a still scene's SR would be
            # reused by process(), and the engine not called)
            return processor.back(processor.front(CapturedFrame(image, index, 0.0)))

        first = process(clean, 0)
        process(noisy, 1)
        assert "estimate" in first.stages_ms
        processor.reset()
        process(noisy, 2)
    got = [lv for lv in engines.sr.levels]
    assert len(got) == 3 and all(lv is not None and lv.shape == (1, 3) for lv in got)
    clean_lv, noisy_lv = estimate_levels(clean), estimate_levels(noisy)
    assert np.allclose(got[0][0].numpy(), clean_lv)  # the first frame as it is
    # then an EMA, the second frame's noise also read off its difference to the first
    paired = estimate_levels(noisy, previous=clean[:, :, 1])
    expected = clean_lv + LEVELS_EMA * (paired - clean_lv)
    assert np.allclose(got[1][0].numpy(), expected, atol=1e-6)
    assert np.allclose(got[2][0].numpy(), noisy_lv)  # reset forgets the history
    assert noisy_lv[0] > clean_lv[0] + 0.3


def test_stage_timer_uses_wall_time_on_the_cpu():
    import time

    from localsr_cam.process.stage_timer import StageTimer

    stages: dict[str, float] = {}
    timer = StageTimer(stages, torch.device("cpu"))
    with timer("segment"):
        time.sleep(0.02)
    with timer("segment"):
        pass
    assert 15.0 <= stages["segment"] < 500.0
    timer.resolve()  # nothing pending on the CPU
    assert list(stages) == ["segment"]


def test_stage_timer_cpu_counts_this_thread_s_cpu_time_not_waits():
    import time

    from localsr_cam.process.stage_timer import StageTimer

    stages: dict[str, float] = {}
    timer = StageTimer(stages, torch.device("cpu"))
    with timer("wall"), timer.cpu("cpu"):
        time.sleep(0.05)  # waiting: no CPU time
        busy_until = time.thread_time() + 0.02
        while time.thread_time() < busy_until:
            pass
    assert stages["wall"] >= 65.0
    assert 15.0 <= stages["cpu"] < 45.0


def test_stage_timer_uses_device_time_on_cuda(monkeypatch):
    """On CUDA a block only queues kernels: the stage's time must come from timing
    events around it, read after the frame is done (the CUDA edge is faked)."""
    from localsr_cam.process.stage_timer import StageTimer

    clock = iter(range(100))
    made: list[dict] = []

    class Event:
        def __init__(self, **options):
            made.append(options)
            self.at: float | None = None
            self.synced = False

        def record(self, stream=None):
            self.at = 10.0 * next(clock)

        def synchronize(self):
            self.synced = True

        def elapsed_time(self, end):
            assert end.synced, "read before the end event was waited for"
            return end.at - self.at

    monkeypatch.setattr(torch.cuda, "Event", Event)
    stages: dict[str, float] = {}
    timer = StageTimer(stages, torch.device("cuda"))
    with timer("upscale"):
        pass
    with timer("blend"):
        pass
    assert stages == {}  # nothing is known until the frame's work has run
    timer.resolve()
    assert stages == {"upscale": 10.0, "blend": 10.0}
    assert made == [{"enable_timing": True}] * 4


class ShapeRecordingSR(BicubicSR):
    """A fake SR engine that, like the CUDA engine, wants its input shapes up front."""

    def __init__(self) -> None:
        super().__init__()
        self.prepared: list[list[tuple[int, ...]]] = []

    def prepare_shapes(self, shapes):
        self.prepared.append(list(shapes))


@pytest.mark.parametrize("full_frame", [False, True])
def test_prepare_hands_the_sr_engine_every_input_shape_it_will_see(full_frame):
    sr = ShapeRecordingSR()
    engines = EngineBox(DiscSegmenter(), sr)
    with FrameProcessor(config(full_frame=full_frame), engine_factory=engines) as processor:
        processor.prepare((160, 90))
        assert sr.prepared == [processor.sr_input_shapes((160, 90))]
        for centre in ((0.5, 0.5), (0.1, 0.2), (0.9, 0.8)):
            engines.segmenter.centre = centre
            out = processor.process(CapturedFrame(frame(), 0, 0.0))
            if out.box is not None:
                x0, y0, x1, y1 = out.box
                assert (1, 3, y1 - y0, x1 - x0) in sr.prepared[0]
    if full_frame:
        assert sr.prepared == [[(1, 3, 90, 160)]]


def _noisy_still_video(frames: int, sigma: float) -> tuple[np.ndarray, list[np.ndarray]]:
    """A smooth still picture (uint8 90×160×3) and ``frames`` noisy captures of it."""
    rng = np.random.default_rng(11)
    clean = cv2.GaussianBlur(rng.uniform(40, 215, (90, 160, 3)), (0, 0), 3)
    captures = [np.clip(np.rint(clean + rng.normal(0, sigma, clean.shape)), 0, 255)
                .astype(np.uint8) for _ in range(frames)]
    return clean.astype(np.uint8), captures


@pytest.mark.parametrize("denoise", ["auto", "off"])
def test_a_noisy_still_video_is_denoised_before_everything_unless_off(denoise):
    clean, captures = _noisy_still_video(25, 6.0)
    cfg = PipelineConfig(model=ModelConfig(model="bicubic", backend="cpu", denoise=denoise))
    with FrameProcessor(cfg, engine_factory=EngineBox()) as processor:
        processor.prepare((160, 90))
        outs = [processor.process(CapturedFrame(image, i, 0.0))
                for i, image in enumerate(captures)]
    assert all(out.source.image is image for out, image in zip(outs, captures, strict=True))
    error = float(np.sqrt(np.mean((outs[-1].image.astype(float) - plain(clean)) ** 2)))
    if denoise == "off":
        assert np.array_equal(outs[-1].image, plain(captures[-1]))
        assert error > 5.0
    else:
        assert error < 3.5  # still noise averaged over frames
        assert "denoise" in outs[-1].stages_ms


def test_photos_are_not_denoised_across_each_other():
    _, captures = _noisy_still_video(6, 6.0)
    with FrameProcessor(config("bicubic"), engine_factory=EngineBox()) as processor:
        processor.prepare((160, 90))
        for i, image in enumerate(captures):
            out = processor.process(CapturedFrame(image, i, 0.0, new_scene=True))
            assert np.array_equal(out.image, plain(image))
