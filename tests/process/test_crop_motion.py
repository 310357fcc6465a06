"""Reading how far the person in a crop moved, and moving a picture by a fraction of a
pixel."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from localsr_cam.process.crop_motion import MAX_SHIFT_PX, crop_shift, shifted, warped
from localsr_cam.process.reuse import THUMB_CELL, changed_detail, signature


def _texture(seed: int, size: tuple[int, int] = (120, 160)) -> np.ndarray:
    """grey uint8 h×w with detail at 2–4 px (skin pores, hair, fabric)."""
    rng = np.random.default_rng(seed)
    noise = rng.integers(0, 256, size, dtype=np.uint8)
    return cv2.GaussianBlur(noise, (0, 0), 1.5)


def _cubic_warp(image: np.ndarray, shift: tuple[float, float]) -> np.ndarray:
    matrix = np.array([[1.0, 0.0, shift[0]], [0.0, 1.0, shift[1]]], np.float32)
    return cv2.warpAffine(image, matrix, (image.shape[1], image.shape[0]),
                          flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)


def _changed(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    cells = changed_detail(signature(cv2.cvtColor(before, cv2.COLOR_GRAY2BGR), 0.0),
                           signature(cv2.cvtColor(after, cv2.COLOR_GRAY2BGR), 0.0))
    assert cells is not None
    return cells


@pytest.mark.parametrize("shift", [(0.3, 0.15), (-0.7, 0.4), (1.5, -1.25), (0.0, 2.0)])
def test_shifted_draws_what_a_bicubic_warp_draws(shift: tuple[float, float]) -> None:
    """The separable move is OpenCV's bicubic warp (but for rounding), uint8 and float."""
    image = _texture(0)
    inner = (slice(4, -4), slice(4, -4))
    difference = shifted(image, shift).astype(int) - _cubic_warp(image, shift).astype(int)
    assert np.abs(difference[inner]).max() <= 1
    as_float = image.astype(np.float32)
    assert np.abs(shifted(as_float, shift) - _cubic_warp(as_float, shift))[inner].max() < 1e-3
    colour = np.dstack([image, image, image])
    assert shifted(colour, shift).shape == colour.shape
    assert np.array_equal(shifted(image, (0.0, 0.0)), image)


def test_warped_moves_a_picture_by_whole_pixels_exactly() -> None:
    """A move of (3, 2) px puts each pixel 3 to the right and 2 down."""
    image = _texture(1)
    moved = warped(image, (3.0, 2.0))
    assert np.array_equal(moved[2:, 3:], image[:-2, :-3])


@pytest.mark.parametrize("shift", [(0.3, 0.15), (-0.5, -0.1), (1.2, -0.8)])
def test_a_whole_crop_s_move_is_read_to_a_few_hundredths_of_a_pixel(
        shift: tuple[float, float]) -> None:
    before = _texture(2)
    after = _cubic_warp(before, shift)
    read = crop_shift(before, after, _changed(before, after), THUMB_CELL)
    assert read is not None
    assert abs(read[0] - shift[0]) < 0.03 and abs(read[1] - shift[1]) < 0.03


def test_a_person_s_move_is_read_off_them_not_the_still_room_around() -> None:
    """A textured disc (the person) moves 0.5 px right and 0.1 down before a textured
    room that holds still: the move read is the disc's. (Read over every changed cell,
    the disc's edge cells — half room — among them, it came out 0.06 px short here, and
    0.3 for a sway of 0.5 on photos.)"""
    room, person = _texture(3, (160, 160)), _texture(4, (160, 160))
    rows, cols = np.mgrid[0:160, 0:160]
    disc = (((cols - 80) ** 2 + (rows - 80) ** 2) < 55 ** 2).astype(np.float32)

    def frame(dx: float, dy: float) -> np.ndarray:
        moved_person, moved_disc = _cubic_warp(person, (dx, dy)), _cubic_warp(disc, (dx, dy))
        mixed = moved_disc * moved_person + (1.0 - moved_disc) * room
        return np.clip(np.rint(mixed), 0, 255).astype(np.uint8)

    before, after = frame(0.0, 0.0), frame(0.5, 0.1)
    read = crop_shift(before, after, _changed(before, after), THUMB_CELL)
    assert read is not None
    assert abs(read[0] - 0.5) < 0.05 and abs(read[1] - 0.1) < 0.05


def test_no_move_is_read_where_the_picture_cannot_show_one() -> None:
    flat = np.full((120, 160), 128, np.uint8)
    everything = np.ones((15, 20), bool)
    assert crop_shift(flat, flat, everything, THUMB_CELL) is None  # nothing to see
    stripes = np.tile(_texture(5)[:1], (120, 1))  # vertical stripes: a move up is unseen
    assert crop_shift(stripes, _cubic_warp(stripes, (0.4, 0.0)), everything,
                      THUMB_CELL) is None
    before = _texture(6)
    after = _cubic_warp(before, (0.4, 0.2))
    small = np.zeros((15, 20), bool)
    small[5:8, 5:8] = True  # one interior cell: too few pixels
    assert crop_shift(before, after, small, THUMB_CELL) is None
    assert crop_shift(before, _cubic_warp(before, (MAX_SHIFT_PX + 1.5, 0.0)),
                      everything, THUMB_CELL) is None
