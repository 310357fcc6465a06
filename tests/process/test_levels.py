"""Quality levels in the processor, and work skipped when nothing changed (fake engines)."""

from __future__ import annotations

import numpy as np
import pytest

from localsr_cam.config import BlendConfig, ModelConfig, PipelineConfig
from localsr_cam.frames import CapturedFrame
from localsr_cam.process.processor import FrameProcessor
from tests.fakes import BicubicSR, DiscSegmenter, EngineBox
from tests.scenes import random_picture


def config(quality: str = "full", bucket: int | None = None) -> PipelineConfig:
    return PipelineConfig(model=ModelConfig(backend="cpu", quality=quality),
                          blend=BlendConfig(ema=0.0, bucket=bucket))


def noise(seed: int, size=(180, 320)) -> np.ndarray:
    return random_picture(seed, *size)


def run(processor: FrameProcessor, images: list[np.ndarray]):
    if processor.smoother is None:  # not prepared yet
        processor.prepare((images[0].shape[1], images[0].shape[0]))
    return [processor.process(CapturedFrame(image, i, 0.0)) for i, image in enumerate(images)]


def engines() -> EngineBox:
    return EngineBox(DiscSegmenter((0.5, 0.5), 0.25), BicubicSR(offset=0.2))


def test_full_quality_runs_everything_on_every_changing_frame():
    box = engines()
    with FrameProcessor(config("full"), engine_factory=box) as processor:
        out = run(processor, [noise(i) for i in range(4)])
    assert box.segmenter.calls == 4 and len(box.sr.shapes) == 4
    assert [o.level for o in out] == ["full"] * 4 and {o.sr for o in out} == {"fresh"}


def test_a_still_frame_reuses_the_mask_and_the_sr_result_with_the_same_output():
    box = engines()
    image = noise(0)
    with FrameProcessor(config("full"), engine_factory=box) as processor:
        first, second = run(processor, [image, image.copy()])
    assert box.segmenter.calls == 1 and len(box.sr.shapes) == 1
    assert (first.sr, second.sr) == ("fresh", "reused")
    assert np.array_equal(first.image, second.image)


def test_small_noise_counts_as_still_but_a_moved_person_does_not():
    """A still scene with fresh sensor noise of σ 2 each frame (a camera's noise, which
    the levels read and the SR is told): its SR is reused; moved by 3 px, recomputed."""
    box = engines()
    image = noise(0)
    rng = np.random.default_rng(1)
    frames = [np.clip(image + rng.normal(0, 2.0, image.shape), 0, 255).astype(np.uint8)
              for _ in range(3)]
    with FrameProcessor(config("full"), engine_factory=box) as processor:
        out = run(processor, [*frames, np.roll(frames[-1], 3, axis=1)])
    assert [o.sr for o in out] == ["fresh", "reused", "reused", "fresh"]
    assert box.segmenter.calls == 2


def _mouth(image: np.ndarray, rows=slice(86, 92), cols=slice(154, 166)) -> np.ndarray:
    """``image`` with a small dark patch (a mouth opening) at the disc person's centre."""
    changed = image.copy()
    changed[rows, cols] = 0
    return changed


def test_a_moving_mouth_is_recomputed_around_it_and_not_frozen():
    """A still person whose mouth moves: only the part around the mouth is super-
    resolved again, the output equals a fresh run on that frame, and the mask (the
    silhouette did not move) is reused."""
    box = engines()
    image = noise(0)
    talking = _mouth(image)
    # a 160-px box (32-px buckets): the part around the mouth is a quarter of it at most
    with FrameProcessor(config("full", bucket=32), engine_factory=box) as processor:
        first, second = run(processor, [image, talking])
    assert (first.sr, second.sr) == ("fresh", "partial")
    assert box.segmenter.calls == 1
    (_, _, h0, w0), (_, _, h1, w1) = box.sr.shapes
    assert h1 * w1 <= 0.25 * h0 * w0
    fresh_box = engines()
    with FrameProcessor(config("full", bucket=32), engine_factory=fresh_box) as processor:
        (expected,) = run(processor, [talking])
    assert np.array_equal(second.image, expected.image)
    assert not np.array_equal(second.image[172:184, 308:332], first.image[172:184, 308:332])


def test_a_change_at_the_edge_of_the_person_segments_again():
    box = engines()
    image = noise(0)
    at_edge = _mouth(image, rows=slice(86, 92), cols=slice(116, 124))  # the disc's left rim
    with FrameProcessor(config("full"), engine_factory=box) as processor:
        run(processor, [image, at_edge])
    assert box.segmenter.calls == 2


def test_head_level_super_resolves_the_top_of_the_box_and_fades_out():
    box = engines()
    with FrameProcessor(config("head"), engine_factory=box) as processor:
        (out,) = run(processor, [noise(0)])
        full_box = processor._sr_box(processor.upload(noise(0)), processor.segment(
            processor.upload(noise(0))))
    x0, y0, x1, y1 = out.box
    assert out.level == "head" and out.sr == "fresh"
    assert (x0, y0, x1) == full_box[:3] and y1 < full_box[3]
    assert (y1 - y0) % processor.bucket == 0 and box.sr.shapes == [(1, 3, y1 - y0, x1 - x0)]
    # the SR fades out at the bottom of the part: the last output row is the background
    plain = processor_plain(noise(0))
    assert np.array_equal(out.image[2 * y1 - 1, 2 * x0:2 * x1], plain[2 * y1 - 1, 2 * x0:2 * x1])
    above_fade = 2 * (y1 - 12)
    assert not np.array_equal(out.image[above_fade], plain[above_fade])


def processor_plain(image: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.resize(image, (2 * image.shape[1], 2 * image.shape[0]),
                      interpolation=cv2.INTER_CUBIC)


def test_alternate_level_reuses_sr_where_the_crop_did_not_change_and_segments_half():
    """SR on every other frame (of the top of the box, where the face is); on the others
    the last result stands in where the crop's cells did not change, the plain upscale
    where they did (eyes that blink)."""
    box = engines()
    image = noise(0)
    blinking = _mouth(image, rows=slice(66, 72), cols=slice(178, 186))  # in the SR part
    with FrameProcessor(config("alternate"), engine_factory=box) as processor:
        out = run(processor, [image, image, blinking, noise(3), image, image])
    # the first frame is an off frame with nothing to reuse yet; then SR, reuse, ...
    assert [o.sr for o in out] == ["none", "fresh", "reused", "fresh", "none", "fresh"]
    assert len(box.sr.shapes) == 3
    eyes = (slice(132, 144), slice(356, 372))
    assert np.array_equal(out[2].image[eyes], processor_plain(blinking)[eyes])
    assert not np.array_equal(out[1].image[eyes], processor_plain(image)[eyes])
    away = (slice(136, 144), slice(256, 272))  # in the person and the part, far from it
    assert np.array_equal(out[2].image[away], out[1].image[away])
    assert not np.array_equal(out[2].image[away], processor_plain(image)[away])


def test_alternate_level_shows_no_stale_sr_of_a_crop_that_changed_everywhere():
    box = engines()
    with FrameProcessor(config("alternate"), engine_factory=box) as processor:
        out = run(processor, [noise(i) for i in range(6)])
    # the old code showed frame 2's SR on frame 3, a different picture
    assert [o.sr for o in out] == ["none", "fresh", "none", "fresh", "none", "fresh"]
    assert np.array_equal(out[2].image, processor_plain(noise(2)))


def test_alternate_level_moves_the_last_sr_along_with_a_person_who_moved():
    """A person swaying 0.4 px right and 0.2 down a frame changes every cell of their
    crop: on the frames the level skips, the last SR stood nowhere and the person showed
    plain, SR and plain in turn at 15 Hz. Now the last SR, moved along, stands in: half
    of it over the plain upscale (the fake SR is the upscale plus 0.2, so half of that)."""
    import cv2

    box = engines()
    image = noise(0)

    def moved(step: int) -> np.ndarray:
        matrix = np.array([[1.0, 0.0, 0.4 * step], [0.0, 1.0, 0.2 * step]], np.float32)
        return cv2.warpAffine(image, matrix, (image.shape[1], image.shape[0]),
                              flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)

    with FrameProcessor(config("alternate"), engine_factory=box) as processor:
        out = run(processor, [moved(step) for step in range(5)])
    assert [o.sr for o in out] == ["none", "fresh", "reused", "fresh", "reused"]
    # where the SR shows in full on the frame before (in the mask, in the SR part)
    shown = (out[3].image.astype(float) - processor_plain(moved(3))).min(axis=2) > 48
    assert shown.sum() > 1000
    lift = out[4].image.astype(float) - processor_plain(moved(4))
    assert abs(float(np.median(lift[shown])) - 0.5 * 0.2 * 255) < 4.0


def test_alternate_level_without_a_stored_result_for_the_box_has_no_sr_that_frame():
    box = engines()
    with FrameProcessor(config("alternate"), engine_factory=box) as processor:
        first = run(processor, [noise(0)])[0]  # frame 1: SR is skipped, nothing to reuse
    assert first.sr == "none" and first.box is None
    assert np.array_equal(first.image, processor_plain(noise(0)))


def test_plain_level_runs_no_network():
    box = engines()
    with FrameProcessor(config("plain"), engine_factory=box) as processor:
        (out,) = run(processor, [noise(0)])
    assert box.segmenter.calls == 0 and box.sr.shapes == []
    assert out.level == "plain" and out.sr == "none" and out.mask is None
    assert np.array_equal(out.image, processor_plain(noise(0)))


def test_reset_forgets_what_could_be_reused():
    box = engines()
    image = noise(0)
    with FrameProcessor(config("full"), engine_factory=box) as processor:
        run(processor, [image])
        processor.reset()
        run(processor, [image])
    assert box.segmenter.calls == 2 and len(box.sr.shapes) == 2


@pytest.mark.parametrize("quality", ["bogus", ""])
def test_an_unknown_quality_is_a_config_error(quality):
    from localsr_cam.errors import ConfigError

    with pytest.raises(ConfigError, match="quality"):
        ModelConfig(quality=quality)


def test_hud_shows_cpu_use_and_the_level():
    from localsr_cam.frames import HudStats
    from localsr_cam.outputs.hud import hud_lines

    first = hud_lines(HudStats(fps=30.0, latency_ms=25.0, backend="cpu", cpu_percent=57.4,
                               level="head"), show_mask=False, bypass=False)[0]
    assert "cpu  57%" in first and first.endswith("head")
    assert "cpu" not in hud_lines(HudStats(), show_mask=False, bypass=False)[0]


def test_a_level_on_a_tiled_box_gives_the_untiled_picture(monkeypatch):
    """Big boxes are super-resolved in tiles; a partial level cuts the box first, and
    the fade at its bottom lands on the bottom tiles exactly as on the whole part."""
    import functools

    from localsr_cam.process import processor as processor_module
    from localsr_cam.process import tiling

    image = noise(3)
    box = engines()
    with FrameProcessor(config("head"), engine_factory=box) as processor:
        (whole,) = run(processor, [image])
        monkeypatch.setattr(processor_module, "split", functools.partial(
            tiling.split, tile=48, margin=16, max_pixels=48 * 48))
        processor.reset()
        box.sr.shapes.clear()
        (tiled,) = run(processor, [image])
    assert len(box.sr.shapes) > 1 and tiled.sr == "fresh" and tiled.box == whole.box
    assert np.array_equal(tiled.image, whole.image)


@pytest.mark.parametrize("quality", ["head", "face"])
def test_a_partial_level_still_tells_sr_the_whole_frame_levels(quality):
    from localsr_cam.process.estimate import estimate_levels

    box = engines()
    image = noise(3)
    with FrameProcessor(config(quality), engine_factory=box) as processor:
        (out,) = run(processor, [image])
    assert out.level == quality and out.sr == "fresh" and "estimate" in out.stages_ms
    (told,) = box.sr.levels
    assert told is not None and told.shape == (1, 3)
    assert np.allclose(told[0].numpy(), estimate_levels(image))


def test_plain_level_estimates_no_levels():
    box = engines()
    with FrameProcessor(config("plain"), engine_factory=box) as processor:
        (out,) = run(processor, [noise(0)])
    assert "estimate" not in out.stages_ms and box.sr.levels == []
