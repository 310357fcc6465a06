"""The meeting-room sample: deterministic, five small people where it says they are."""

from __future__ import annotations

import json

import numpy as np
import pytest

from localsr_cam.capture.factory import make_source
from localsr_cam.capture.room import RoomSource
from localsr_cam.config import CaptureConfig


@pytest.fixture(scope="module")
def room():
    source = RoomSource((640, 360))
    source.open()
    yield source
    source.close()


def test_room_is_deterministic_and_moves(room):
    again = RoomSource((640, 360))
    again.open()
    assert np.array_equal(room.frame(7), again.frame(7))
    assert room.frame(7).shape == (360, 640, 3) and room.frame(7).dtype == np.uint8
    assert not np.array_equal(room.frame(0), room.frame(40))
    assert room.faces(0) != room.faces(40)
    assert np.array_equal(room.frame(3), room.frame(3 + room.length))  # it loops


def test_five_small_people_inside_the_frame(room):
    for index in (0, 75, 150, 225):
        faces = room.faces(index)
        assert len(faces) == 5
        for x0, y0, x1, y1 in faces:
            assert 0 <= x0 < x1 <= 640 and 0 <= y0 < y1 <= 360
            assert 18 <= y1 - y0 <= 45  # meeting-room scale at 640x360


def test_people_are_drawn_where_their_faces_are_said_to_be(room):
    empty = RoomSource((640, 360), seats=())
    empty.open()
    frame, backdrop = room.frame(30).astype(int), empty.frame(30).astype(int)
    for x0, y0, x1, y1 in room.faces(30):
        box = np.s_[round(y0):round(y1), round(x0):round(x1)]
        assert np.abs(frame[box] - backdrop[box]).mean() > 20
    top = np.s_[0:60, :]  # the wall above everyone's head is untouched
    assert np.array_equal(frame[top], backdrop[top])


def test_room_source_by_name_and_at_another_size():
    source = make_source(CaptureConfig(source="synthetic:room", size=(320, 180)))
    assert isinstance(source, RoomSource)
    source.open()
    try:
        image = source.read()
        assert image is not None and image.shape == (180, 320, 3)
        assert len(source.faces(0)) == 5
    finally:
        source.close()


def test_bench_runs_the_room(tmp_path):
    from localsr_cam.cli.main import main

    path = tmp_path / "bench.json"
    code = main(["bench", "--source", "synthetic:room", "--mode", "bicubic", "--frames", "5",
                 "--warmup", "1", "--no-progress", "--json", str(path)])
    assert code == 0
    report = json.loads(path.read_text())
    assert report["source"] == "synthetic:room" and report["input"] == [640, 360]
