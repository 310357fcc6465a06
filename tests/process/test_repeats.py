"""The repeat test: a frame equal to the one before it, bit for bit, and nothing else."""

from __future__ import annotations

import numpy as np

from localsr_cam.process.repeats import SAMPLE_ROW_STEP, RepeatTest


def frame(seed: int, height: int = 72, width: int = 96) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def test_a_frame_sent_again_is_a_repeat_and_a_new_one_is_not() -> None:
    test = RepeatTest()
    first, second = frame(0), frame(1)
    assert not test(first) and not test.repeated  # nothing before it
    assert test(first.copy()) and test.repeated
    assert test(first.copy())  # and again
    assert not test(second)
    assert test(second.copy())


def test_one_pixel_off_the_sampled_rows_makes_a_new_frame() -> None:
    test = RepeatTest()
    first = frame(2)
    test(first)
    changed = first.copy()
    row = SAMPLE_ROW_STEP + 3  # a row the first comparison does not look at
    changed[row, 40, 1] ^= 1
    assert not test(changed)
    assert test(changed.copy())


def test_a_source_that_writes_each_picture_into_one_buffer_is_read_right() -> None:
    """The test keeps its own copy: a capture that reuses its array for the next
    picture is not taken for a repeat of itself."""
    test = RepeatTest()
    buffer = frame(3)
    test(buffer)
    buffer[:] = frame(4)
    assert not test(buffer)
    assert test(buffer)  # the same picture in it again


def test_another_size_or_a_reset_is_no_repeat() -> None:
    test = RepeatTest()
    test(frame(5))
    assert not test(frame(5, 48, 64))
    assert test(frame(5, 48, 64))
    test.reset()
    assert not test.repeated
    assert not test(frame(5, 48, 64))
