"""The video-call sample: deterministic, the body nearly still, the mouth talking, noisy."""

from __future__ import annotations

import numpy as np
import pytest

from localsr_cam.capture.call import LEAN_PERIOD_S, MOUTH, CallSource
from localsr_cam.capture.factory import make_source
from localsr_cam.capture.sources import SyntheticSource
from localsr_cam.config import CaptureConfig
from localsr_cam.process.reuse import changed_cells, thumbnail


@pytest.fixture(scope="module")
def call():
    source = CallSource((640, 360))
    source.open()
    yield source
    source.close()


def test_call_is_deterministic_loops_and_is_named(call):
    again = make_source(CaptureConfig(source="synthetic:call"))
    assert isinstance(again, CallSource)
    again.open()
    assert np.array_equal(call.frame(7), again.frame(7))
    assert call.frame(7).shape == (360, 640, 3) and call.frame(7).dtype == np.uint8
    assert np.array_equal(call.frame(3), call.frame(3 + call.length))


def test_where_the_lean_turns_only_the_mouth_changes_and_noise_is_fresh(call):
    """Frames 36 and 37 (speech, the lean at its turning point): cells change around the
    mouth only — a few, near the face's middle — while every pixel carries new noise."""
    first = int(LEAN_PERIOD_S / 4 * call.fps) - 1
    assert call.mouth_opening(first) != call.mouth_opening(first + 1) > 0
    a, b = call.frame(first), call.frame(first + 1)
    assert np.abs(a.astype(int) - b.astype(int)).mean() > 1.0  # fresh sensor noise
    cells = changed_cells(thumbnail(a), thumbnail(b))
    assert cells is not None and 0 < cells.sum() <= 8
    rows, cols = np.nonzero(cells)
    scale = call._person.shape[0] / 512.0  # the person square: the 512-px photo scaled
    mouth_x, mouth_y = call.placement(first) @ np.array([MOUTH[0] * scale, MOUTH[1] * scale, 1.0])
    assert np.all(np.abs(cols * 8 + 4 - mouth_x) < 24)
    assert np.all(np.abs(rows * 8 + 4 - mouth_y) < 16)


def test_the_body_leans_slowly_and_the_pause_keeps_the_mouth_shut(call):
    pause = int(3.5 * call.fps)
    assert call.mouth_opening(pause) == 0.0
    sample = SyntheticSource((640, 360))
    sample.open()

    # the sample moves its person by a pixel or so a frame, the call by under half of one
    def moved(source, index: int) -> float:
        corner = np.array([0.0, 0.0, 1.0])
        return float(np.abs(source.placement(index + 1) @ corner
                            - source.placement(index) @ corner).max())
    assert max(moved(call, i) for i in range(0, 300, 10)) < 0.5
    assert max(moved(sample, i) for i in range(0, 300, 10)) > 1.0
