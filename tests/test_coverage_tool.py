"""tools/coverage.py: scenes hold the people it says, faces are scored as specified."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from tests.tool_import import imported_tool


@pytest.fixture(scope="module")
def coverage():
    with imported_tool("coverage.py", "coverage_tool") as module:
        yield module


@pytest.fixture(scope="module")
def astronaut(coverage):
    from skimage import data

    photo = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    return coverage.cut_out(photo, (171, 64, 280, 173))


def test_scene_faces_are_the_sizes_asked_and_visible(coverage, astronaut):
    rng = np.random.default_rng(3)
    backdrop = np.full((300, 500, 3), 90, np.uint8)
    for _ in range(5):
        scene, faces = coverage.build_scene([astronaut], [backdrop], rng, count=8)
        assert scene.shape == (360, 640, 3) and 1 <= len(faces) <= 8
        for x0, y0, x1, y1 in faces:
            assert 19.5 <= y1 - y0 <= 60.5
            outside = (max(0, -x0) + max(0, x1 - 640)) / (x1 - x0)
            assert outside <= 0.31 and y0 >= -0.01 and (max(0, y1 - 360)) / (y1 - y0) <= 0.31
            box = scene[max(0, round(y0)):round(y1), max(0, round(x0)):round(x1)]
            assert np.abs(box.astype(int) - 90).mean() > 20  # a face, not the backdrop


def test_faces_are_scored_by_their_share_in_the_mask(coverage):
    mask = np.zeros((360, 640), np.float32)
    mask[100:130, 100:130] = 1.0
    faces = [(100, 100, 130, 130), (115, 100, 145, 130), (300, 10, 320, 30),
             (630, 50, 660, 80)]
    scored = coverage.score_faces(mask, faces)
    assert [f["covered"] for f in scored] == [True, True, False, False]
    assert [f["counted"] for f in scored] == [True, True, False, True]
    assert scored[1]["inside"] == pytest.approx(0.5)
    summary = coverage.summarize([scored])
    assert summary["faces"] == 3 and summary["covered"] == 2
