"""What a camera films of a photo over frames: a pan, a person's sway."""

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


def test_one_motion_at_a_time() -> None:
    hr = scene(64, 48, 2)
    assert all(view is hr for view in filming.filmed_views(hr, 3))
    with pytest.raises(ValueError):
        filming.filmed_views(hr, 3, pan=1.0, sway=1.0)
