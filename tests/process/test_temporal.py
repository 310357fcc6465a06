"""The temporal denoiser: still noise averaged out, motion and light changes followed at
once, clean video left exactly as it is."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from localsr_cam.process.motion import FrameMotion, MotionTest
from localsr_cam.process.temporal import (
    MIN_SIGMA,
    AlignedPast,
    TemporalDenoiser,
    exposure_gain,
    shifted_cubic,
)
from tests.scenes import panned, stained_tissue


def scene(height: int = 96, width: int = 128) -> np.ndarray:
    """A textured float32 RGB scene, away from black and white."""
    rng = np.random.default_rng(3)
    coarse = rng.uniform(50, 200, (height // 8, width // 8, 3))
    return np.kron(coarse, np.ones((8, 8, 1))) + rng.uniform(-20, 20, (height, width, 3))


def noisy(clean: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    noise = np.random.default_rng(seed).normal(0.0, sigma, clean.shape)
    return np.clip(np.rint(clean + noise), 0, 255).astype(np.uint8)


def filtering(clean: np.ndarray, sigma: float, frames: int) -> TemporalDenoiser:
    """A denoiser that has seen ``frames`` noisy captures of ``clean`` and filters."""
    denoiser = TemporalDenoiser()
    for t in range(frames):
        denoiser(noisy(clean, sigma, t))
    assert denoiser.active
    return denoiser


def rms(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.mean((a.astype(np.float64) - b) ** 2)))


def test_a_still_noisy_scene_loses_most_of_its_noise() -> None:
    clean = scene()
    denoiser = TemporalDenoiser()
    for t in range(30):
        out = denoiser(noisy(clean, 6.0, t))
    assert abs(denoiser.sigma - 6.0) < 1.2  # read off the frames themselves
    assert rms(out, clean) < 0.55 * 6.0  # ≈ σ·0.42 once settled


def test_a_clean_video_passes_exactly() -> None:
    """A photo panning by 1–4 px a frame, no noise. (A pan over a finely textured scene
    can read as noise σ 3–5 and be filtered: BENCHMARKS.md, "Session 13".)"""
    from skimage import data

    clean = cv2.resize(data.astronaut(), (320, 240), interpolation=cv2.INTER_AREA)
    for step in (1, 2, 4):
        denoiser = TemporalDenoiser()
        for t in range(16):
            frame = np.ascontiguousarray(np.roll(clean, step * t, axis=1))
            assert denoiser(frame) is frame
        assert denoiser.sigma < MIN_SIGMA and not denoiser.active


def test_what_moves_is_taken_as_it_comes() -> None:
    """A bright square moving 6 px a frame over a still, noisy background: the square
    and the background it leaves are this frame's, not a trail of the last ones."""
    background = scene()
    denoiser = TemporalDenoiser()
    for t in range(20):
        clean = background.copy()
        x = 10 + 6 * t
        clean[30:60, x:x + 24] = 240.0
        frame = noisy(clean, 4.0, t)
        out = denoiser(frame)
    assert denoiser.active
    square = (slice(32, 58), slice(x + 2, x + 22))
    left = (slice(32, 58), slice(x - 10, x - 2))  # where the square was a frame ago
    assert abs(float(out[square].mean()) - float(frame[square].mean())) < 3.0
    assert rms(out[left], background[left]) < rms(frame[left], background[left]) + 1.0


def test_a_change_of_exposure_is_followed_at_once() -> None:
    clean = scene()
    denoiser = filtering(clean, 5.0, 15)
    # a small step (auto exposure), well inside what the motion test takes for noise
    brighter = noisy(clean + 6.0, 5.0, 99)
    out = denoiser(brighter)
    assert abs(float(out.mean()) - float((clean + 6.0).mean())) < 0.5


@pytest.mark.parametrize("offset", [0.0, 60.0])
def test_an_exposure_ramp_is_followed_without_a_lag_in_the_detail(offset: float) -> None:
    """A still noisy scene with strong edges, then the camera's auto exposure brightens
    it 3 % a frame for 8 frames (with ``offset`` 60 a third of it clips white): the
    state is scaled with the frames, so its detail keeps up. Unscaled, the average of
    the last frames held the edges' contrast behind: the rms error was 0.62 of the
    noise's (0.71 with the clipping), where a still scene's is about 0.45."""
    still = scene(192, 256) + offset
    denoiser = filtering(still, 4.0, 12)
    for t in range(1, 9):
        clean = np.clip(still * (1.0 + 0.03 * t), 0, 255)
        frame = noisy(clean, 4.0, 100 + t)
        out = denoiser(frame)
    assert rms(out, clean) < 0.56 * rms(frame, clean)


@pytest.mark.parametrize("scale, state_mean, expected", [(1.1, 120.0, 1.1), (0.9, 120.0, 0.9),
                                                          (1.5, 4.0, 1.0)])
def test_the_exposure_gain_is_the_ratio_of_the_means(scale: float, state_mean: float,
                                                     expected: float) -> None:
    """Read on blocks away from black and white; a dark state reads no change."""
    rng = np.random.default_rng(0)
    state = np.clip(rng.normal(state_mean, 3.0, (90, 160, 3)), 0, None).astype(np.float32)
    image = np.clip(np.rint(state * scale), 0, 255).astype(np.uint8)
    assert exposure_gain(image, state) == pytest.approx(expected, abs=0.01)


def test_the_exposure_gain_leaves_out_what_clips() -> None:
    """A frame half of which clips white, brightened 8 %: the gain is read off the rest
    (the mean of the whole frame rose 4 %)."""
    rng = np.random.default_rng(1)
    state = rng.uniform(60.0, 180.0, (96, 128, 3)).astype(np.float32)
    state[:, 64:] = 250.0
    image = np.clip(np.rint(state * 1.08), 0, 255).astype(np.uint8)
    assert exposure_gain(image, state) == pytest.approx(1.08, abs=0.005)
    assert exposure_gain(image[:8, :8], state[:8, :8]) == 1.0  # too small for a block


def test_a_reset_or_another_size_starts_afresh() -> None:
    denoiser = filtering(scene(), 6.0, 10)
    smaller = noisy(scene(48, 64), 6.0, 50)
    assert denoiser(smaller) is smaller and not denoiser.active
    denoiser.reset()
    assert denoiser.sigma == 0.0


def test_it_stops_when_the_camera_turns_clean() -> None:
    clean = scene()
    denoiser = filtering(clean, 6.0, 20)
    still = np.clip(np.rint(clean), 0, 255).astype(np.uint8)
    outputs = [denoiser(still) for _ in range(120)]
    assert not denoiser.active and outputs[-1] is still


def _after_a_still_scene(picture: np.ndarray) -> tuple[TemporalDenoiser, MotionTest]:
    """A denoiser and a motion test that have seen 12 frames of ``picture`` held still,
    with noise of σ 4."""
    denoiser, moved = TemporalDenoiser(), MotionTest()
    for t in range(12):
        frame = panned(picture, 0.0, 0.0, sigma=4.0, seed=t)
        denoiser(frame, moved(frame))
    return denoiser, moved


@pytest.mark.parametrize("step", [0.6, 1.25, 3.0])
def test_a_pan_is_not_read_as_noise(step: float) -> None:
    """A noisy photo of fine texture (σ 4), still for 12 frames, then the camera pans
    ``step`` px a frame for 24 more: the noise read stays the still frames' (it climbed
    by 0.5–1.5 as the pan's differences were read as noise, and the motion test took
    more and more moving texture for noise), and the state, moved with the frames, keeps
    averaging them: the noise's rms falls by a half as on a still scene (by 1–20 %
    when the moving texture was taken as it came)."""
    picture = stained_tissue()
    denoiser, moved = _after_a_still_scene(picture)
    still_sigma = denoiser.sigma
    assert denoiser.active and 3.0 < still_sigma < 5.0
    for t in range(1, 25):
        clean = panned(picture, -step * t, -0.5 * step * t)
        frame = panned(picture, -step * t, -0.5 * step * t, sigma=4.0, seed=100 + t)
        out = denoiser(frame, moved(frame))
    assert denoiser.sigma < still_sigma + 0.2
    assert rms(out, clean) < 0.65 * rms(frame, clean)


@pytest.mark.parametrize("zoom", [0.003, 0.01])
def test_a_zoom_is_followed_like_a_pan(zoom: float) -> None:
    """A camera's auto framing zooming in ``zoom`` a frame on a still noisy photo: the
    state is zoomed with the frames and keeps averaging them (unzoomed, the texture
    moving at the edges was taken as it came, and the zoom read as more noise)."""
    picture = stained_tissue()
    denoiser, moved = _after_a_still_scene(picture)
    still_sigma = denoiser.sigma
    for t in range(1, 13):
        scale = (1.0 + zoom) ** t - 1.0
        clean = panned(picture, 0.0, 0.0, zoom=scale)
        frame = panned(picture, 0.0, 0.0, sigma=4.0, seed=100 + t, zoom=scale)
        out = denoiser(frame, moved(frame))
        assert moved.moved
    assert denoiser.sigma < still_sigma + 0.2
    assert rms(out, clean) < 0.65 * rms(frame, clean)


@pytest.mark.parametrize("step", [0.5, 1.25])
def test_a_camera_panning_from_the_start_is_filtered_only_when_noisy(step: float) -> None:
    """A camera that pans ``step`` px a frame from the first frame, so no frame is still:
    every 2nd (0.5 px) or 4th (1.25 px) frame lies a whole-pixel move from a past one
    and is read against it, so a noisy pan (σ 4) is filtered — it never was: no moved
    frame was read — while a clean pan over fine texture passes exactly as it came."""
    picture = stained_tissue()
    for sigma in (0.0, 4.0):
        denoiser, moved = TemporalDenoiser(), MotionTest()
        for t in range(16):
            clean = panned(picture, -step * t, 0.0)
            frame = panned(picture, -step * t, 0.0, sigma=sigma, seed=t)
            out = denoiser(frame, moved(frame))
            assert moved.moved or t == 0
        if sigma:
            assert denoiser.active and 3.0 < denoiser.sigma < 5.0
            assert rms(out, clean) < 0.8 * rms(frame, clean)
        else:
            assert not denoiser.active and out is frame


def test_the_aligned_past_finds_a_whole_pixel_move() -> None:
    """Half a pixel a frame: the 2nd frame after is a whole pixel away and read against
    the first, on their overlap; a zoom forgets the frames kept."""
    picture = stained_tissue()
    frames = [panned(picture, 0.5 * t, 0.0) for t in range(3)]
    half = FrameMotion(0.5, 0.0, 0.0, 0.0, 640, 360)
    past = AlignedPast()
    assert past.push(frames[0], half) is None  # nothing kept yet
    assert past.push(frames[1], half) is None  # half a pixel from the first
    pair = past.push(frames[2], half)
    assert pair is not None
    now, before = pair
    assert now.shape == before.shape == (360, 639, 3)
    assert np.abs(now.astype(np.float32) - before).mean() < 1.0
    assert past.push(frames[2], FrameMotion(0.0, 0.0, 0.01, 0.01, 640, 360)) is None
    assert past.push(frames[2], FrameMotion(1.0, 0.0, 0.0, 0.0, 640, 360)) is not None


@pytest.mark.parametrize("dx, dy", [(0.3, 0.5), (1.0, -0.5), (-2.7, 1.2), (3.9, -3.9)])
def test_the_cubic_shift_is_opencvs_cubic_warp(dx: float, dy: float) -> None:
    """Away from the edges (replicated differently), to float rounding."""
    image = (np.random.default_rng(0).random((90, 160, 3)) * 255).astype(np.float32)
    expected = cv2.warpAffine(image, np.float32([[1, 0, -dx], [0, 1, -dy]]), (160, 90),
                              flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP)
    moved = shifted_cubic(image, dx, dy, np.empty_like(image), np.empty_like(image))
    inner = (slice(8, -8), slice(8, -8))
    np.testing.assert_allclose(moved[inner], expected[inner], atol=0.01)


def test_a_repeated_frame_is_not_averaged_in_nor_read() -> None:
    """A camera that sends each picture twice (15 fps in a 30 fps stream): told, the
    denoiser gives its last output again and reads the noise of the pictures alone;
    the repeat's zero difference is not taken for a clean camera."""
    clean = scene()
    once, twice = TemporalDenoiser(), TemporalDenoiser()
    for t in range(30):
        picture = noisy(clean, 6.0, t)
        out = once(picture)
        first = twice(picture)
        again = twice(picture.copy(), repeated=True)
        assert np.array_equal(first, out)
        assert np.array_equal(again, first) and again is not first
    assert twice.sigma == once.sigma and twice.active


def test_a_repeat_before_the_filter_starts_passes_as_it_came() -> None:
    denoiser = TemporalDenoiser()
    picture = noisy(scene(), 6.0, 0)
    assert denoiser(picture) is picture
    again = picture.copy()
    assert denoiser(again, repeated=True) is again and not denoiser.active
