"""The whole-frame motion test: shifts read off the frames' profiles to a fraction of a
pixel, still noisy frames read as still, a change of light is not motion."""

from __future__ import annotations

import itertools

import cv2
import numpy as np
import pytest

from localsr_cam.process.motion import (
    MAX_SHIFT_PX,
    MOVED_PX,
    RESIDUAL_RATIO,
    MotionTest,
    frame_motion,
    profile_shift,
    profiles,
    residual_ratio,
)
from tests.scenes import panned, stained_tissue


def moved_between(before: np.ndarray, after: np.ndarray) -> bool:
    """What a :class:`MotionTest` says of ``after`` following ``before``."""
    test = MotionTest()
    assert test(before) is None and not test.moved  # a first frame
    test(after)
    return test.moved


@pytest.mark.parametrize("dx, dy", [(0.25, 0.0), (0.5, -0.3), (1.0, 0.6), (-2.6, 1.5)])
def test_a_shift_is_read_to_a_tenth_of_a_pixel(dx: float, dy: float) -> None:
    picture = stained_tissue()
    first = panned(picture, 0.0, 0.0, sigma=4.0, seed=1)
    second = panned(picture, dx, dy, sigma=4.0, seed=2)
    read = frame_motion(profiles(first), profiles(second))
    assert (read.dx, read.dy) == pytest.approx((dx, dy), abs=0.1)
    assert moved_between(first, second)


@pytest.mark.parametrize("zoom, dx", [(0.003, 0.0), (0.01, 0.0), (0.02, 0.0), (0.01, 1.5),
                                      (-0.01, 0.0)])
def test_a_zoom_is_read_to_a_tenth_of_itself(zoom: float, dx: float) -> None:
    """A camera's auto framing: the frame made larger about its middle (with a pan);
    the edges of a 640 px frame move by 1–6 px, its middle not at all."""
    picture = stained_tissue()
    first = panned(picture, 0.0, 0.0, sigma=4.0, seed=1)
    second = panned(picture, dx, 0.0, sigma=4.0, seed=2, zoom=zoom)
    read = frame_motion(profiles(first), profiles(second))
    # the model's zoom z is about the frame's middle: 1 − z = 1 / (1 + zoom)
    assert (read.zoom_x, read.zoom_y) == pytest.approx((zoom, zoom), rel=0.1)
    assert read.dx == pytest.approx(dx, abs=0.15) and read.dy == pytest.approx(0.0, abs=0.15)
    assert moved_between(first, second)


def test_the_inverse_map_of_a_motion_puts_the_old_frame_over_the_new() -> None:
    picture = stained_tissue()
    first, second = panned(picture, 0.0, 0.0), panned(picture, 1.0, -0.5, zoom=0.01)
    motion = frame_motion(profiles(first), profiles(second))
    moved = cv2.warpAffine(first.astype(np.float32), motion.inverse_map(), (640, 360),
                           flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
    inner = (slice(20, -20), slice(20, -20))
    unmoved_error = np.abs(first[inner].astype(np.float32) - second[inner]).mean()
    assert np.abs(moved[inner] - second[inner]).mean() < 0.3 * unmoved_error
    assert motion.largest_px == pytest.approx(1.0 + 0.01 * 319.5, abs=0.3)


@pytest.mark.parametrize("sigma", [4.0, 10.0])
def test_still_noisy_frames_have_not_moved(sigma: float) -> None:
    picture = stained_tissue()
    first = panned(picture, 0.0, 0.0, sigma=sigma, seed=0)
    for seed in range(1, 6):
        now = panned(picture, 0.0, 0.0, sigma=sigma, seed=seed)
        read = frame_motion(profiles(first), profiles(now))
        assert read.largest_px < MOVED_PX / 2
        assert not moved_between(first, now)


def test_a_large_motion_reads_as_the_end_of_the_range() -> None:
    picture = stained_tissue()
    before, after = panned(picture, 0.0, 0.0), panned(picture, -7.0, 0.0)
    assert frame_motion(profiles(before), profiles(after)).dx == -MAX_SHIFT_PX
    assert moved_between(before, after)


def test_a_change_of_exposure_is_not_motion() -> None:
    frame = panned(stained_tissue(), 0.0, 0.0, sigma=3.0)
    brighter = np.clip(frame * 1.15 + 8.0, 0, 255).astype(np.uint8)
    assert not moved_between(frame, brighter)


def test_a_brightening_disc_in_a_dark_frame_is_not_a_zoom() -> None:
    """A bright disc in the middle of a dark frame, cut by its top and bottom (a retina
    photo), brightened 3 % a frame by auto exposure: its profiles grow much as a zoom
    widens them. Read as a zoom (before the profiles' power was evened out), every
    frame moved, and the denoiser never read the noise to start."""
    rows, cols = np.mgrid[0:360, 0:640].astype(np.float32)
    radius = np.hypot((cols - 320.0) / 240.0, (rows - 180.0) / 200.0)
    disc = np.clip((1.0 - radius) / 0.05, 0.0, 1.0) * 150.0 + 5.0
    picture = np.repeat(disc[..., None], 3, axis=2)
    frames = [panned(picture * 1.03 ** t, 0.0, 0.0, sigma=4.0, seed=t) for t in range(6)]
    for before, after in itertools.pairwise(frames):
        assert not moved_between(before, after)


def _banded(frame: np.ndarray, phase_rows: float, amplitude: float = 0.08,
            period_rows: float = 54.0) -> np.ndarray:
    """``frame`` under a light's flicker bands (brightness × 1 ± ``amplitude`` along the
    rows), rolled down by ``phase_rows``."""
    rows = np.arange(frame.shape[0], dtype=np.float32)[:, None, None]
    gain = 1.0 + amplitude * np.sin(2 * np.pi * (rows + phase_rows) / period_rows)
    return np.clip(frame * gain, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("amplitude", [0.03, 0.08])
def test_flicker_bands_rolling_down_a_still_scene_are_not_motion(amplitude: float) -> None:
    """A 50 Hz light on a camera set for 60: bands roll 18 rows a frame down a still
    scene. They change the row profile without moving it (read as a shift of 0.25–4
    rows before, which turned the denoiser's averaging off); a pan under them is still
    a pan (across; down, the bands' change may hide it)."""
    picture = stained_tissue()
    frames = [_banded(panned(picture, 0.0, 0.0, sigma=4.0, seed=seed), 18.0 * seed,
                      amplitude) for seed in range(6)]
    for before, after in itertools.pairwise(frames):
        assert not moved_between(before, after)
    pan = _banded(panned(picture, 1.0, 0.5, sigma=4.0, seed=9), 18.0 * 6, amplitude)
    assert frame_motion(profiles(frames[-1]), profiles(pan)).dx == pytest.approx(1.0,
                                                                                abs=0.15)
    assert moved_between(frames[-1], pan)


def test_the_residual_of_a_true_shift_is_small_and_of_no_shift_whole() -> None:
    picture = stained_tissue()
    before = profiles(panned(picture, 0.0, 0.0, sigma=4.0, seed=1)).columns
    after = profiles(panned(picture, 0.5, 0.0, sigma=4.0, seed=2)).columns
    assert residual_ratio(before, after, profile_shift(before, after)) < RESIDUAL_RATIO / 2
    assert residual_ratio(before, after, 0.0) == pytest.approx(1.0)
    assert residual_ratio(before, before, 0.0) == 1.0  # nothing to explain
    assert residual_ratio(before[:8], after[:8], 0.5) == 1.0  # too short to tell


def test_profiles_of_colour_grey_and_float_frames() -> None:
    frame = panned(stained_tissue(), 0.0, 0.0)
    colour, as_float = profiles(frame), profiles(frame.astype(np.float32))
    assert colour.columns.shape == (640,) and colour.rows.shape == (360,)
    assert colour.columns.dtype == np.float32 and colour.rows.dtype == np.float32
    np.testing.assert_allclose(colour.columns, frame.mean(axis=(0, 2)), atol=1e-3)
    np.testing.assert_allclose(colour.rows, frame.mean(axis=(1, 2)), atol=1e-3)
    np.testing.assert_allclose(as_float.rows, colour.rows, atol=1e-3)
    grey = profiles(frame[:, :, 1])
    np.testing.assert_allclose(grey.columns, frame[:, :, 1].mean(axis=0), atol=1e-3)


def test_profiles_too_short_to_tell_read_no_shift() -> None:
    short = np.arange(4 * MAX_SHIFT_PX, dtype=np.float32)
    assert profile_shift(short, np.roll(short, 3)) == 0.0
