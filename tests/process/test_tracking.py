"""Box tracking: no jitter on a still subject, no blink on a missed detection."""

from __future__ import annotations

import numpy as np

from localsr_cam.process.regions import contains
from localsr_cam.process.tracking import BoxTracker, sticky_region

FRAME = (640, 360)


def noisy(box, rng, sigma=1.0):
    return tuple(v + rng.normal(0, sigma) for v in box)


def test_still_subject_with_noisy_detections_gives_a_box_that_does_not_move():
    rng = np.random.default_rng(0)
    tracker = BoxTracker(FRAME)
    face = (200.0, 100.0, 240.0, 150.0)  # 50 px tall: dead band 4 px
    shown = []
    for _ in range(300):
        visible = tracker.update([(noisy(face, rng), 0.9)])
        if visible:
            shown.append(visible[0].shown)
    assert len(shown) == 299  # shown from the second detection on
    assert len(set(shown)) == 1
    assert all(v % 2 == 0 for v in shown[0])


def test_without_dead_band_the_same_noise_would_jitter():
    """The test above can fail: the same detections do move a band-less box."""
    rng = np.random.default_rng(0)
    tracker = BoxTracker(FRAME, deadband=0.0, min_deadband_px=0.0)
    face = (200.0, 100.0, 240.0, 150.0)
    shown = set()
    for _ in range(50):
        for track in tracker.update([(noisy(face, rng), 0.9)]):
            shown.add(track.shown)
    assert len(shown) > 3


def test_moving_subject_is_followed():
    tracker = BoxTracker(FRAME)
    for step in range(60):
        x = 100.0 + 3 * step
        visible = tracker.update([((x, 100.0, x + 40, 150.0), 0.9)])
    (track,) = visible
    assert abs(track.shown[0] - x) <= 10  # within the smoothing lag plus the dead band


def test_one_missed_detection_does_not_blink():
    tracker = BoxTracker(FRAME)
    face = ((300.0, 100.0, 340.0, 150.0), 0.9)
    counts = []
    for frame in range(40):
        detections = [] if frame in (10, 20, 21) else [face]  # one miss, then two
        counts.append(len(tracker.update(detections)))
    assert counts[1:] == [1] * 39


def test_a_person_who_left_is_dropped_after_the_misses():
    tracker = BoxTracker(FRAME, max_misses=2)
    face = ((300.0, 100.0, 340.0, 150.0), 0.9)
    for _ in range(5):
        tracker.update([face])
    counts = [len(tracker.update([])) for _ in range(4)]
    assert counts == [1, 1, 0, 0]


def test_a_one_off_false_detection_never_shows():
    tracker = BoxTracker(FRAME)
    assert tracker.update([((10.0, 10.0, 30.0, 30.0), 0.7)]) == []
    assert tracker.update([]) == []


def test_only_scanned_tiles_count_misses():
    tracker = BoxTracker(FRAME, max_misses=1)
    face = ((300.0, 100.0, 340.0, 150.0), 0.9)
    tracker.update([face])
    tracker.update([face])
    elsewhere = [((0, 0, 256, 256), 10.0), ((0, 0, 640, 640), 60.0)]  # too coarse there
    for _ in range(30):  # scans that never looked at the face: it stays
        assert len(tracker.update([], scanned=elsewhere)) == 1
    here = [((192, 0, 448, 256), 10.0)]
    tracker.update([], scanned=here)
    tracker.update([], scanned=here)
    assert tracker.update([], scanned=here) == []


def test_unseen_tracks_age_out():
    tracker = BoxTracker(FRAME, max_age=10)
    face = ((300.0, 100.0, 340.0, 150.0), 0.9)
    tracker.update([face])
    tracker.update([face])
    alive = [len(tracker.update([], scanned=[])) for _ in range(12)]
    assert alive[:10] == [1] * 10 and alive[-1] == 0


def test_two_people_keep_their_identities():
    tracker = BoxTracker(FRAME)
    a = ((100.0, 100.0, 140.0, 150.0), 0.9)
    b = ((400.0, 120.0, 440.0, 170.0), 0.8)
    tracker.update([a, b])
    first = {t.id: t.shown for t in tracker.update([b, a])}
    for _ in range(10):
        now = {t.id: t.shown for t in tracker.update([b, a])}
    assert now == first and len(now) == 2


def test_sticky_region_holds_until_the_person_leaves_it():
    region = (96, 32, 224, 192)
    assert sticky_region(region, (110, 40, 200, 180), (100, 40, 228, 200)) == region
    moved = (150, 40, 260, 180)
    wanted = (140, 32, 268, 192)
    assert sticky_region(region, moved, wanted) == wanted
    huge = (0, 0, 640, 360)  # still holds it, but far larger than needed
    assert sticky_region(huge, (110, 40, 200, 180), region) == region
    assert sticky_region(None, (110, 40, 200, 180), region) == region
    assert contains(region, (110, 40, 200, 180))
