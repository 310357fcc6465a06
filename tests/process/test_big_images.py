"""Big images (issue 14, defect 8): SR in tiles and metrics in strips give the same
figures in bounded memory, and each image shows its own progress bar."""

from __future__ import annotations

import functools
import tracemalloc

import cv2
import numpy as np
import pytest

from localsr_cam.config import BlendConfig, ModelConfig, PipelineConfig
from localsr_cam.measure.evaluate import ImageProgress, evaluate_images, score_output
from localsr_cam.measure.strip_metrics import score_in_strips
from localsr_cam.process import processor as processor_module
from localsr_cam.process import tiling
from localsr_cam.process.processor import FrameProcessor
from tests.fakes import BicubicSR, DiscSegmenter, EngineBox, process_image


def noisy_pair(height: int, width: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    hr = cv2.GaussianBlur(rng.integers(0, 256, (height, width, 3), np.uint8), (5, 5), 0)
    sr = np.clip(hr.astype(int) + rng.integers(-12, 13, hr.shape), 0, 255).astype(np.uint8)
    return hr, sr


def ellipse_mask(height: int, width: int) -> np.ndarray:
    mask = np.zeros((height, width), np.uint8)
    cv2.ellipse(mask, (width // 2, height // 2), (width // 4, height // 3), 0, 0, 360, 1, -1)
    return mask.astype(bool)


@pytest.mark.parametrize("rows", [5, 16, 97, 1000])
def test_strips_give_the_whole_image_figures(rows):
    hr, sr = noisy_pair(203, 150)
    fg = ellipse_mask(203, 150)
    whole = score_output(hr, sr, fg)
    striped = score_in_strips(hr, sr, fg, rows=rows)
    assert striped.keys() == whole.keys()
    for key, value in whole.items():
        assert striped[key] == pytest.approx(value, rel=1e-12, abs=1e-12), key


def test_an_empty_mask_gives_no_foreground_figures_in_strips():
    hr, sr = noisy_pair(64, 64)
    scores = score_in_strips(hr, sr, np.zeros((64, 64), bool), rows=16)
    assert scores["psnr_fg"] is None and scores["ssim_fg"] is None
    assert scores["psnr_boundary"] is None and scores["psnr"] is not None


def test_scoring_a_big_image_stays_within_a_bounded_memory():
    """A 2400×2400 pair was scored with a dozen float64 copies of the whole image."""
    hr, sr = noisy_pair(2400, 2400)
    fg = ellipse_mask(2400, 2400)
    whole_image_float64 = hr.size * 8  # 138 MB
    tracemalloc.start()
    try:
        score_output(hr, sr, fg)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < whole_image_float64, f"peak {peak / 2**20:.0f} MiB"


def test_sr_in_tiles_equals_sr_in_one_piece_and_bounds_the_engine_input(monkeypatch):
    image = np.random.default_rng(1).integers(0, 256, (150, 200, 3), np.uint8)
    config = PipelineConfig(model=ModelConfig(model="fast", segmenter="selfie",
                                              backend="cpu"),
                            blend=BlendConfig(ema=0.0, full_frame=True))
    sr = BicubicSR()
    with FrameProcessor(config, engine_factory=EngineBox(DiscSegmenter(), sr)) as proc:
        whole = process_image(proc, image).image
        monkeypatch.setattr(processor_module, "split", functools.partial(
            tiling.split, tile=64, margin=16, max_pixels=64 * 64))
        seen: list[tuple[int, int]] = []
        proc.progress = lambda done, total: seen.append((done, total))
        sr.shapes.clear()
        tiled = process_image(proc, image).image
    assert np.array_equal(tiled, whole)
    assert max(h for _, _, h, _ in sr.shapes) <= 64 + 2 * 16
    assert max(w for _, _, _, w in sr.shapes) <= 64 + 2 * 16
    assert seen[-1] == (12, 12) and len(seen) == 12  # 4 × 3 tiles, each reported


def test_every_tile_is_told_the_same_frame_levels(monkeypatch):
    from localsr_cam.process.estimate import estimate_levels

    image = np.random.default_rng(2).integers(0, 256, (150, 200, 3), np.uint8)
    config = PipelineConfig(model=ModelConfig(model="fast", segmenter="selfie",
                                              backend="cpu"),
                            blend=BlendConfig(ema=0.0, full_frame=True))
    sr = BicubicSR()
    monkeypatch.setattr(processor_module, "split", functools.partial(
        tiling.split, tile=64, margin=16, max_pixels=64 * 64))
    with FrameProcessor(config, engine_factory=EngineBox(DiscSegmenter(), sr)) as proc:
        process_image(proc, image)
    assert len(sr.levels) == 12
    expected = estimate_levels(image)
    for told in sr.levels:
        assert told is not None and told.shape == (1, 3)
        assert np.allclose(told[0].numpy(), expected)


def test_tiles_cover_the_box_once():
    box = (10, 20, 210, 170)
    tiles = tiling.split(box, tile=64, margin=16, max_pixels=0)
    covered = np.zeros((200, 250), int)
    for tile in tiles:
        x0, y0, x1, y1 = tile.region
        covered[y0:y1, x0:x1] += 1
        px0, py0, px1, py1 = tile.padded
        assert px0 <= x0 and py0 <= y0 and px1 >= x1 and py1 >= y1
        assert px0 >= 10 and py0 >= 20 and px1 <= 210 and py1 <= 170
    assert (covered[20:170, 10:210] == 1).all() and covered.sum() == 200 * 150
    assert tiling.split(box) == [tiling.Tile(box, box)]  # small: one piece


def test_each_image_gets_its_own_progress_bar(tmp_path, capsys):
    paths = []
    for name in ("first.png", "second.png"):
        path = tmp_path / name
        cv2.imwrite(str(path), noisy_pair(64, 96)[0])
        paths.append(path)

    def outputs_for(lr):
        up = cv2.resize(lr, (2 * lr.shape[1], 2 * lr.shape[0]), interpolation=cv2.INTER_CUBIC)
        return {"full": (up, None), "local": (up, None)}

    def halve(hr):
        return cv2.resize(hr, (hr.shape[1] // 2, hr.shape[0] // 2),
                          interpolation=cv2.INTER_AREA)

    evaluate_images(paths, outputs_for, halve, progress=True)
    err = capsys.readouterr().err
    assert "first.png" in err and "second.png" in err and "5/5" in err


def test_image_progress_counts_strips_for_big_images():
    progress = ImageProgress(enabled=False)
    progress.start("big.png", (6000, 8000, 3))
    assert progress._bar.total == 2 + 3 * len(range(0, 6000, 128))
    progress.close()
