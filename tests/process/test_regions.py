"""Several SR regions: snapping to even pixels, merging, the total-area cap."""

from __future__ import annotations

import pytest

from localsr_cam.process.regions import (
    area,
    cap_total_area,
    contains,
    iou,
    merge_overlapping,
    snap_even,
)


def test_snap_even_grows_to_even_corners_inside_the_frame():
    assert snap_even((3, 5, 17, 20), (640, 360)) == (2, 4, 18, 20)
    assert snap_even((0, 0, 639, 359), (639, 359)) == (0, 0, 639, 359)
    x0, y0, x1, y1 = snap_even((11, 13, 101, 77), (640, 360))
    assert all(v % 2 == 0 for v in (x0, y0, x1, y1))
    assert contains((x0, y0, x1, y1), (11, 13, 101, 77))


def test_merge_joins_chains_and_keeps_separate_boxes():
    a, b, c = (0, 0, 10, 10), (8, 8, 20, 20), (18, 0, 30, 9)  # a~b, b~c, a!~c
    far = (100, 100, 110, 110)
    merged = merge_overlapping([a, far, c, b])
    assert sorted(merged) == sorted([(0, 0, 30, 20), far])
    assert merge_overlapping([a, far]) == [a, far]
    assert merge_overlapping([a, (12, 0, 20, 10)], gap=3) == [(0, 0, 20, 10)]
    assert len(merge_overlapping([a, (12, 0, 20, 10)], gap=2)) == 2
    assert merge_overlapping([]) == []


def test_merged_boxes_never_overlap():
    boxes = [(i * 7 % 50, i * 13 % 40, i * 7 % 50 + 12, i * 13 % 40 + 9) for i in range(30)]
    merged = merge_overlapping(boxes)
    for i, p in enumerate(merged):
        for q in merged[i + 1:]:
            assert iou(p, q) == 0.0
    for box in boxes:
        assert any(contains(m, box) for m in merged)


def test_area_cap_keeps_order_and_skips_what_does_not_fit():
    big, mid, small = (0, 0, 100, 100), (0, 0, 60, 60), (0, 0, 20, 20)
    assert cap_total_area([big, mid, small], 10_500) == [big, small]
    assert cap_total_area([big], 10) == [big]  # the first is always kept
    kept = cap_total_area([mid, small, big], 4_000)
    assert sum(area(b) for b in kept) <= 4_000


@pytest.mark.parametrize("a, b, want", [((0, 0, 10, 10), (0, 0, 10, 10), 1.0),
                                        ((0, 0, 10, 10), (5, 0, 15, 10), 1 / 3),
                                        ((0, 0, 10, 10), (20, 20, 30, 30), 0.0)])
def test_iou(a, b, want):
    assert iou(a, b) == pytest.approx(want)


def test_align_even_keeps_the_size_inside_the_frame():
    from localsr_cam.process.regions import align_even

    assert align_even((3, 5, 35, 37), (640, 360)) == (2, 4, 34, 36)
    assert align_even((2, 4, 34, 36), (640, 360)) == (2, 4, 34, 36)
    assert align_even((607, 0, 639, 32), (639, 360)) == (606, 0, 639, 32)


def test_grown_pads_every_side_and_clips_to_the_frame():
    from localsr_cam.process.regions import grown

    assert grown((10, 20, 30, 40), 5, (100, 50)) == (5, 15, 35, 45)
    assert grown((2, 3, 98, 48), 5, (100, 50)) == (0, 0, 100, 50)
