"""Sources, the one-frame slot and the capture thread."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from localsr_cam.capture import camera as camera_module
from localsr_cam.capture.camera import CameraSource
from localsr_cam.capture.factory import make_source
from localsr_cam.capture.sources import (
    CaptureThread,
    ImageFolderSource,
    LatestSlot,
    SourceLostError,
    SyntheticSource,
    VideoSource,
    to_bgr8,
)
from localsr_cam.config import CaptureConfig
from localsr_cam.errors import SourceError
from localsr_cam.frames import CapturedFrame
from tests.fakes import FakeVideoCapture
from tests.scenes import banded


def write_video(path: Path, frames: int, size=(64, 48), fps=20.0) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), fps, size)
    for i in range(frames):
        writer.write(np.full((size[1], size[0], 3), (i * 20) % 256, dtype=np.uint8))
    writer.release()


def test_slot_keeps_only_the_newest_and_counts_drops():
    slot: LatestSlot[int] = LatestSlot()
    for i in range(5):
        slot.put(i)
    assert slot.get(timeout=0) == 4
    assert slot.dropped == 4
    assert slot.get(timeout=0.01) is None


def test_slot_close_wakes_a_waiting_reader():
    slot: LatestSlot[int] = LatestSlot()
    got = []
    reader = threading.Thread(target=lambda: got.append(slot.get(timeout=5)))
    reader.start()
    time.sleep(0.05)
    slot.close()
    reader.join(1)
    assert not reader.is_alive() and got == [None]


def test_slow_consumer_sees_newest_frame_never_a_backlog():
    source = SyntheticSource((64, 36), fps=1000)
    source.open()
    slot: LatestSlot[CapturedFrame] = LatestSlot()
    stop = threading.Event()
    thread = CaptureThread(source, slot, stop, paced=True)  # delivers like a 1000 fps camera
    thread.start()
    seen = []
    try:
        for _ in range(5):
            time.sleep(0.03)  # a consumer much slower than the source
            delivered_before = thread.frames
            frame = slot.get(timeout=1)
            assert frame is not None
            seen.append(frame.index)
            assert frame.index >= delivered_before - 1  # the newest, never an old one
    finally:
        stop.set()
        thread.join(1)
    assert not thread.is_alive()
    assert seen == sorted(seen) and seen[-1] - seen[0] > 4  # frames were skipped
    assert slot.dropped > 0


def test_unpaced_file_source_is_read_on_demand_without_drops():
    source = SyntheticSource((32, 18), fps=30)
    source.open()
    slot: LatestSlot[CapturedFrame] = LatestSlot()
    stop = threading.Event()
    thread = CaptureThread(source, slot, stop, paced=False)
    thread.start()
    try:
        seen = []
        for _ in range(6):
            frame = slot.get(timeout=1)
            assert frame is not None
            seen.append(frame.index)
            time.sleep(0.01)
    finally:
        stop.set()
        thread.join(1)
    assert seen == list(range(6)) and slot.dropped == 0


def test_synthetic_clip_is_deterministic_and_moves():
    a, b = SyntheticSource((160, 90)), SyntheticSource((160, 90))
    a.open()
    b.open()
    first = a.read()
    assert first is not None and first.shape == (90, 160, 3) and first.dtype == np.uint8
    assert np.array_equal(first, b.frame(0))
    later = a.frame(40)
    assert np.abs(later.astype(int) - first.astype(int)).mean() > 1.0
    a.close()
    a.close()


def test_video_source_reads_all_frames_then_ends(tmp_path):
    path = tmp_path / "clip.avi"
    write_video(path, 7)
    source = VideoSource(path)
    source.open()
    assert source.size == (64, 48) and source.fps == pytest.approx(20.0)
    frames = []
    while (frame := source.read()) is not None:
        frames.append(frame)
    source.close()
    source.close()
    assert len(frames) == 7
    assert abs(int(frames[3].mean()) - 60) <= 3


def test_video_source_loops_and_resizes(tmp_path):
    path = tmp_path / "clip.avi"
    write_video(path, 3)
    source = VideoSource(path, size=(32, 24), loop=True)
    source.open()
    frames = [source.read() for _ in range(8)]
    assert all(f is not None and f.shape == (24, 32, 3) for f in frames)


def test_video_source_of_another_aspect_is_cropped_not_squashed(tmp_path):
    path = tmp_path / "wide.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 20.0, (128, 64))
    for _ in range(3):
        writer.write(banded(128, 64))
    writer.release()
    source = VideoSource(path, size=(32, 32))
    source.open()
    frames = [source.read() for _ in range(3)]
    source.close()
    assert source.size == (32, 32)
    for frame in frames:  # only the white middle half is left; squashed, black edges
        assert frame is not None and frame.shape == (32, 32, 3)
        assert frame[:, :4].mean() > 230 and frame[:, -4:].mean() > 230


def test_video_source_refuses_text_file_and_missing_file(tmp_path):
    text = tmp_path / "notes.mp4"
    text.write_text("not a video")
    with pytest.raises(SourceError, match="not a readable video"):
        VideoSource(text).open()
    with pytest.raises(SourceError, match="not found"):
        VideoSource(tmp_path / "missing.mp4").open()


def test_truncated_video_ends_cleanly(tmp_path):
    path = tmp_path / "clip.avi"
    write_video(path, 20)
    data = path.read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: len(data) * 2 // 3])
    source = VideoSource(cut)
    source.open()
    count = 0
    while source.read() is not None:
        count += 1
        assert count < 100
    assert 1 <= count < 20


def test_image_folder_source_in_name_order(tmp_path):
    for i, value in enumerate((10, 200, 90)):
        cv2.imwrite(str(tmp_path / f"img{i}.png"), np.full((20, 30, 3), value, np.uint8))
    source = ImageFolderSource(tmp_path)
    source.open()
    values = []
    while (frame := source.read()) is not None:
        values.append(int(frame.mean()))
    assert values == [10, 200, 90]


def test_empty_folder_is_a_source_error(tmp_path):
    with pytest.raises(SourceError):
        ImageFolderSource(tmp_path).open()


@pytest.mark.parametrize("image", [
    np.zeros((4, 5), np.uint8),
    np.zeros((4, 5, 1), np.uint8),
    np.zeros((4, 5, 4), np.uint8),
    np.full((4, 5, 3), 65535, np.uint16),
])
def test_to_bgr8_converts_common_layouts(image):
    out = to_bgr8(image, "test")
    assert out.shape == (4, 5, 3) and out.dtype == np.uint8


def test_to_bgr8_refuses_unknown_layouts():
    with pytest.raises(SourceError, match="int32 samples"):
        to_bgr8(np.zeros((4, 5, 3), np.int32), "test")
    with pytest.raises(SourceError, match="5 channels"):
        to_bgr8(np.zeros((4, 5, 5), np.uint8), "test")


def test_make_source_choices(tmp_path, monkeypatch):
    monkeypatch.setattr("localsr_cam.capture.factory.camera_present", lambda index=0: index == 2)
    monkeypatch.setattr("localsr_cam.capture.factory.default_camera", lambda: None)
    assert isinstance(make_source(CaptureConfig(source="auto")), SyntheticSource)
    assert isinstance(make_source(CaptureConfig(source="2")), CameraSource)
    with pytest.raises(SourceError, match="no camera 3 here"):
        make_source(CaptureConfig(source="3"))
    assert isinstance(make_source(CaptureConfig(source=str(tmp_path))), ImageFolderSource)
    with pytest.raises(SourceError, match="not a camera index"):
        make_source(CaptureConfig(source=str(tmp_path / "nothing.mp4")))


@pytest.fixture
def fake_camera(monkeypatch):
    FakeVideoCapture.instances = []
    FakeVideoCapture.fail_until = None
    FakeVideoCapture.opens = 0
    monkeypatch.setattr(cv2, "VideoCapture", FakeVideoCapture)
    monkeypatch.setattr(camera_module, "BACKOFF_FIRST_S", 0.01)
    monkeypatch.setattr(camera_module, "BACKOFF_MAX_S", 0.05)
    return FakeVideoCapture


def test_camera_asks_for_mjpg_size_and_fps_and_resizes(fake_camera):
    camera = CameraSource(0, size=(32, 24), fps=25)
    camera.open()
    frame = camera.read()
    assert frame is not None and frame.shape == (24, 32, 3)
    props = fake_camera.instances[0].props
    assert props[cv2.CAP_PROP_FRAME_WIDTH] == 32 and props[cv2.CAP_PROP_FPS] == 25
    assert props[cv2.CAP_PROP_FOURCC] == cv2.VideoWriter.fourcc(*"MJPG")
    camera.close()
    camera.close()
    assert fake_camera.instances[0].released


def test_camera_that_cannot_open_is_a_source_error(fake_camera):
    fake_camera.fail_until = time.perf_counter() + 60
    with pytest.raises(SourceError, match="cannot open camera 3"):
        CameraSource(3).open()


def test_lost_camera_reconnects_in_the_capture_thread(fake_camera):
    camera = CameraSource(0, size=(16, 12))
    camera.open()
    slot: LatestSlot[CapturedFrame] = LatestSlot()
    stop = threading.Event()
    thread = CaptureThread(camera, slot, stop)
    thread.start()
    try:
        assert slot.get(timeout=1) is not None
        fake_camera.fail_until = time.perf_counter() + 0.3  # unplugged for 0.3 s
        deadline = time.perf_counter() + 2
        while not thread.lost.is_set() and time.perf_counter() < deadline:
            time.sleep(0.01)
        assert thread.lost.is_set()
        back_at = fake_camera.fail_until
        slot.get(timeout=0)  # drain
        frame = slot.get(timeout=3)
        assert frame is not None and frame.timestamp >= back_at
        assert camera.reconnects >= 1 and not thread.lost.is_set()
    finally:
        stop.set()
        thread.join(2)
    assert not thread.is_alive() and thread.error is None


def test_camera_keeps_its_own_size_unless_one_is_asked_for(fake_camera):
    native = CameraSource(0)  # the fake delivers 64×48 (4:3) whatever is requested
    native.open()
    assert native.size == (64, 48) and native.read().shape == (48, 64, 3)
    asked = CameraSource(0, size=(32, 18))
    asked.open()
    assert asked.size == (32, 18) and asked.read().shape == (18, 32, 3)


def test_camera_that_opens_but_delivers_nothing_is_not_reopened_in_a_loop(
        fake_camera, monkeypatch):
    """Held by another program: it opens, every read fails. Back-off must still apply."""
    monkeypatch.setattr(camera_module, "BACKOFF_FIRST_S", 0.05)
    monkeypatch.setattr(camera_module, "BACKOFF_MAX_S", 0.2)

    class OpensButFails(FakeVideoCapture):
        def read(self):
            return False, None

    monkeypatch.setattr(cv2, "VideoCapture", OpensButFails)
    camera = CameraSource(0, size=(16, 12))
    camera.open()
    stop = threading.Event()
    started = time.perf_counter()
    while time.perf_counter() - started < 0.8:
        with pytest.raises(SourceLostError):
            camera.read()
        camera.reconnect(stop)
    # 0.05 + 0.1 + 0.2 + 0.2 + ... : a handful of reopens, not thousands
    assert 2 <= camera.reconnects <= 6


def test_camera_read_raises_lost_after_repeated_failures(fake_camera):
    camera = CameraSource(0)
    camera.open()
    assert camera.read() is not None
    fake_camera.fail_until = time.perf_counter() + 60
    with pytest.raises(SourceLostError):
        camera.read()
