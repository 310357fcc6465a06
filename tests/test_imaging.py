"""Picture geometry: cover, crop and fit without stretching (video frames, backgrounds)."""

from __future__ import annotations

import numpy as np
import pytest

from localsr_cam.imaging import cover_crop, fit_inside, fit_size
from tests.scenes import astronaut_bgr, banded


def test_fit_size_covers_and_crops_never_stretches():
    wide = banded(64, 32)
    square = fit_size(wide, (16, 16))  # the middle 32x32 of the picture, shrunk
    assert square.shape == (16, 16, 3) and square.min() == 255
    assert square.flags["C_CONTIGUOUS"]
    same_shape = fit_size(wide, (32, 16))  # same aspect: the whole picture, shrunk
    assert same_shape.shape == (16, 32, 3) and same_shape[:, 0].max() == 0
    tall = fit_size(banded(32, 64), (32, 18))  # rows cut top and bottom, not squashed
    assert tall.shape == (18, 32, 3) and tall[:, 0].max() == 0 and tall[:, 16].min() == 255
    assert fit_size(wide, (64, 32)) is wide and fit_size(wide, None) is wide


def test_cover_crop_is_the_centred_part_of_the_wanted_aspect_on_the_8px_grid():
    assert cover_crop((640, 360), (320, 320)) == (136, 0, 360, 360)  # centred: 140
    assert cover_crop((360, 640), (640, 360)) == (0, 216, 360, 202)  # centred: 219
    assert cover_crop((640, 360), (1280, 720)) == (0, 0, 640, 360)
    assert cover_crop((1, 1000), (1000, 1)) == (0, 496, 1, 1)


def test_an_mjpeg_frame_cut_to_another_aspect_keeps_its_jpeg_level():
    """640×480 from the camera, 640×360 asked for: cut, not scaled, and the cut starts
    on the JPEG grid, so the estimator still reads the quantizer (it reads blocks from
    the top-left pixel; 60 rows off, the grid was 4 rows off and the level read 0)."""
    from localsr_cam.measure.degrade import jpeg
    from localsr_cam.process.estimate import jpeg_scale

    frame = jpeg(astronaut_bgr()[16:496, :], 75, "420", bgr=True)  # 512×480
    frame = np.ascontiguousarray(np.concatenate([frame, frame[:, :128]], axis=1))  # 640×480
    assert jpeg_scale(frame, bgr=True) == pytest.approx(0.5, abs=0.1)
    cut = fit_size(frame, (640, 360))
    assert cut.shape == (360, 640, 3)
    assert jpeg_scale(cut, bgr=True) == pytest.approx(0.5, abs=0.1)


def test_fit_inside_still_keeps_the_whole_image():
    assert fit_inside(banded(64, 32), (16, 16)).shape == (8, 16, 3)


def test_fit_size_fills_the_frame_without_stretching():
    picture = np.zeros((100, 100, 3), np.uint8)
    picture[:, 50:] = 255  # left half black, right half white
    covered = fit_size(picture, (64, 32))
    assert covered.shape == (32, 64, 3)
    assert covered[:, :30].max() == 0 and covered[:, 34:].min() == 255  # not squashed
    tall = fit_size(picture, (20, 60))
    assert tall.shape == (60, 20, 3)
    assert tall[:, :9].max() == 0 and tall[:, 11:].min() == 255  # centre crop
