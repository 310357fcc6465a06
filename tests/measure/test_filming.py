"""What a camera films of a photo over frames: a pan, a person's sway, a zoom, an exposure
ramp."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from localsr_cam.measure import evaluate, filming
from tests.measure.test_evaluate import scene


def test_a_pan_films_windows_further_on_and_scores_the_last() -> None:
    """``--pan 1``: each window 2 HR px right of the last and 1 lower, exactly; the
    target is the last window's, the LR frames its size halved."""
    hr = scene(64, 48, 2)
    views = filming.panned_views(hr, 3, 1.0)
    assert [view.shape for view in views] == [(46, 60, 3)] * 3
    assert np.array_equal(views[0], hr[:46, :60])
    assert np.array_equal(views[2], hr[2:48, 4:64])
    half = filming.panned_views(hr, 2, 0.25)[1]  # half an HR pixel: in between
    assert not np.array_equal(half, hr[:46, :62]) and np.abs(
        half.astype(int) - hr[:46, :62]).mean() < np.abs(hr[:46, 1:63].astype(int)
                                                         - hr[:46, :62]).mean()
    target, frames = evaluate._degrade_for("area", 3, 1.0)(hr)
    assert target.shape == (46, 60, 3) and frames.shape == (3, 23, 30, 3)
    assert np.array_equal(target, views[2])
    assert not np.array_equal(frames[2], frames[0])


def test_a_sway_moves_the_middle_of_the_photo_and_leaves_the_room_still() -> None:
    """``--sway 1``: frame 0 is the photo; later frames move the ellipse in the middle
    by up to 2 HR px across (a fraction of a pixel between frames) and keep the corners
    (the room) exactly as they were; the target is the last frame's view."""
    hr = scene(96, 64, 3)
    views = filming.swayed_views(hr, 4, 1.0)
    assert [view.shape for view in views] == [hr.shape] * 4
    assert np.array_equal(views[0], hr)
    corner = (slice(0, 6), slice(0, 10))
    middle = (slice(24, 40), slice(36, 60))
    for before, after in itertools.pairwise(views):
        assert np.array_equal(after[corner], hr[corner])
        assert not np.array_equal(after[middle], before[middle])
    steps = [np.subtract(filming.sway_offset(i + 1, 1.0), filming.sway_offset(i, 1.0))
             for i in range(filming.SWAY_PERIOD)]
    assert max(abs(dx) for dx, _ in steps) < 1.1  # HR px a frame: half an LR px
    assert max(abs(filming.sway_offset(i, 1.0)[0]) for i in range(24)) == pytest.approx(
        2.0, abs=0.01)
    target, frames = evaluate._degrade_for("area", 4, sway=1.0)(hr)
    assert np.array_equal(target, views[3]) and frames.shape == (4, 32, 48, 3)


def blob(width: int, height: int, at: tuple[float, float]) -> np.ndarray:
    """A grey photo with a bright Gaussian spot (σ 3 px) at ``at`` (x, y)."""
    yy, xx = np.mgrid[:height, :width]
    spot = np.exp(-((xx - at[0]) ** 2 + (yy - at[1]) ** 2) / (2 * 3.0 ** 2))
    grey = 40 + 200 * spot
    return np.rint(np.dstack([grey] * 3)).astype(np.uint8)


def spot_centre(view: np.ndarray) -> tuple[float, float]:
    """(x, y) of the spot: the centroid of the brightness above the grey."""
    weight = np.clip(view[..., 0].astype(float) - 40, 0, None)
    yy, xx = np.mgrid[: view.shape[0], : view.shape[1]]
    return float((weight * xx).sum() / weight.sum()), float((weight * yy).sum() / weight.sum())


def test_a_zoom_closes_in_on_the_middle_and_ends_on_the_photo() -> None:
    """``--zoom 3`` over 4 frames: the last frame is the photo, bit for bit; frame 0 is
    it shrunk 1.03³ times about the centre, so a spot 40 px right of and 20 px below the
    centre sits that much nearer it, and each frame after has it 1.03 times further out."""
    width, height = 160, 120
    centre = ((width - 1) / 2, (height - 1) / 2)
    hr = blob(width, height, (centre[0] + 40, centre[1] + 20))
    views = filming.zoomed_views(hr, 4, 3.0)
    assert [(view.shape, view.dtype) for view in views] == [(hr.shape, np.uint8)] * 4
    assert np.array_equal(views[3], hr)
    x, y = spot_centre(views[0])
    assert (x - centre[0], y - centre[1]) == pytest.approx((40 / 1.03 ** 3, 20 / 1.03 ** 3),
                                                           abs=0.1)
    reach = [spot_centre(view)[0] - centre[0] for view in views]
    assert reach == pytest.approx([40 / 1.03 ** 3, 40 / 1.03 ** 2, 40 / 1.03, 40], abs=0.1)
    assert filming.filmed_views(hr, 4, zoom=3.0)[0].tobytes() == views[0].tobytes()
    plain, _ = evaluate._degrade_for("area")(hr)
    target, frames = evaluate._degrade_for("area", 4, zoom=1.0)(hr)
    assert np.array_equal(target, plain) and np.array_equal(target, hr)
    assert frames.shape == (4, 60, 80, 3) and not np.array_equal(frames[0], frames[3])


def test_an_exposure_ramp_scales_the_earlier_frames_and_keeps_the_last() -> None:
    """``--exposure 5`` over 4 frames: frame 0 is the photo ÷ 1.05³, rounded; the last is
    the photo. Below 0 the earlier frames are brighter and clip at 255."""
    hr = scene(64, 48, 4)
    views = filming.exposed_views([hr] * 4, 5.0)
    assert np.array_equal(views[3], hr) and views[0].dtype == np.uint8
    assert np.abs(views[0] - hr / 1.05 ** 3).max() <= 0.5
    assert views[0].mean() < views[1].mean() < views[2].mean() < hr.mean()
    bright = filming.exposed_views([np.full((4, 4, 3), 250, np.uint8)] * 3, -10.0)
    assert [int(view[0, 0, 0]) for view in bright] == [255, 255, 250]
    black = filming.exposed_views([np.zeros((4, 4, 3), np.uint8)] * 1000, -10.0)
    assert not black[0].any()  # 0.9^-999 overflows float32: 0 × inf would be NaN
    moved = filming.filmed_views(hr, 4, sway=1.0, exposure=5.0)
    assert np.array_equal(moved[3], filming.swayed_views(hr, 4, 1.0)[3])
    target, frames = evaluate._degrade_for("area", 4, exposure=5.0)(hr)
    assert np.array_equal(target, hr) and frames[0].mean() < frames[3].mean() - 5


def test_one_motion_at_a_time() -> None:
    hr = scene(64, 48, 2)
    assert all(view is hr for view in filming.filmed_views(hr, 3))
    for motions in ({"pan": 1.0, "sway": 1.0}, {"pan": 1.0, "zoom": 1.0},
                    {"sway": 1.0, "zoom": 1.0}):
        with pytest.raises(ValueError):
            filming.filmed_views(hr, 3, **motions)
