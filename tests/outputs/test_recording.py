"""Recordings: H.264 in fragmented MP4 / Matroska through PyAV, size checks, and files
that stay playable when the writer is killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from localsr_cam.errors import SinkError
from localsr_cam.frames import CapturedFrame, Controls, HudStats, ProcessedFrame
from localsr_cam.outputs import recording
from localsr_cam.outputs.recording import VideoFileSink, choose_codec, size_problem

ROOT = Path(__file__).resolve().parents[2]
HUD = HudStats()


def frame(size: tuple[int, int], value: int) -> ProcessedFrame:
    width, height = size
    image = np.full((height, width, 3), value, np.uint8)
    source = np.zeros((height // 2, width // 2, 3), np.uint8)
    return ProcessedFrame(image=image, source=CapturedFrame(source, 0, 0.0))


def decode_all(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="bgr24") for f in container.decode(video=0)]


@pytest.mark.parametrize("suffix, codec", [(".mp4", "h264"), (".mkv", "h264"),
                                           (".avi", "mjpeg")])
def test_recordings_hold_every_frame_in_the_expected_codec(tmp_path, suffix, codec):
    path = tmp_path / f"out{suffix}"
    sink = VideoFileSink(path)
    sink.open((64, 48), 30.0, Controls())
    for i in range(12):
        sink.write(frame((64, 48), 20 * i), HUD)
    sink.close()
    sink.close()
    with av.open(str(path)) as container:
        assert container.streams.video[0].codec_context.name == codec
    frames = decode_all(path)
    assert len(frames) == 12
    assert [round(f.mean() / 20) for f in frames] == list(range(12))


def test_without_libx264_mpeg4_is_written_and_said(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(recording, "choose_codec",
                        lambda suffix, available: choose_codec(suffix, {"mpeg4"}))
    path = tmp_path / "out.mkv"
    sink = VideoFileSink(path)
    sink.open((64, 48), 30.0, Controls())
    sink.write(frame((64, 48), 100), HUD)
    sink.close()
    assert "no H.264 encoder" in caplog.text
    with av.open(str(path)) as container:
        assert container.streams.video[0].codec_context.name == "mpeg4"


def test_codec_choice():
    assert choose_codec(".mp4", {"libx264", "mpeg4"}) == "libx264"
    assert choose_codec(".mkv", {"mpeg4"}) == "mpeg4"
    assert choose_codec(".avi", {"libx264"}) == "mjpeg"


@pytest.mark.parametrize("codec, size, ok", [
    ("libx264", (8192, 4320), True), ("libx264", (8400, 4800), False),
    ("libx264", (16000, 12000), False), ("libx264", (1281, 720), False),
    ("mpeg4", (8190, 100), True), ("mpeg4", (8192, 100), False),
    ("mjpeg", (16000, 12000), True)])
def test_size_limits(codec, size, ok):
    assert (size_problem(codec, size) == "") is ok


def test_a_too_large_recording_is_refused_at_open_with_what_works(tmp_path):
    sink = VideoFileSink(tmp_path / "big.mp4")
    with pytest.raises(SinkError) as err:
        sink.open((16000, 12000), 30.0, Controls())
    message = str(err.value)
    assert "16000x12000" in message and "--output" in message and "dir:" in message
    assert not (tmp_path / "big.mp4").exists()


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_a_recording_survives_sigkill(tmp_path, suffix):
    """A writer killed mid-run (no close, no flush) leaves a file that decodes."""
    out = tmp_path / f"killed{suffix}"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    process = subprocess.Popen(
        [sys.executable, "-m", "localsr_cam", "-q", "run", "--source", "synthetic",
         "--loop", "--model", "bicubic", "--input", "160x90", "--fps", "30",
         "--sink", f"file:{out}"], cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not (out.exists() and out.stat().st_size > 40_000):
            assert time.monotonic() < deadline and process.poll() is None
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == -signal.SIGKILL
    frames = decode_all(out)
    assert len(frames) >= 30  # at least the first second's fragment
    assert frames[0].shape == (180, 320, 3)
    capture = cv2.VideoCapture(str(out))  # and OpenCV (players' FFmpeg) reads it too
    assert capture.isOpened() and capture.read()[0]
    capture.release()


@pytest.mark.parametrize("suffix", [".mp4", ".mkv", ".avi"])
def test_a_recording_stopped_before_its_first_frame_leaves_no_file_and_says_so(
        tmp_path, suffix):
    """Too little free space at open (the disk's real figure, under a floor set above
    any disk): one line saying nothing was written, not that a file plays; no file."""
    path = tmp_path / f"full{suffix}"
    sink = VideoFileSink(path)
    sink.MIN_FREE_BYTES = 2**62
    with pytest.raises(SinkError) as err:
        sink.open((64, 48), 10.0, Controls())
    message = str(err.value)
    assert "nothing was written" in message and "playable" not in message
    assert str(path) in message and "MiB free" in message and "\n" not in message
    assert not path.exists()
    sink.close()


def test_a_recording_stopped_after_frames_keeps_a_playable_file(tmp_path):
    path = tmp_path / "full.mp4"
    sink = VideoFileSink(path)
    sink.open((64, 48), 10.0, Controls())
    for index in range(sink.SPACE_CHECK_EVERY):
        sink.write(frame((64, 48), index * 8), HUD)
    sink.MIN_FREE_BYTES = 2**62
    with pytest.raises(SinkError) as err:
        sink.write(frame((64, 48), 255), HUD)
    assert f"after {sink.SPACE_CHECK_EVERY} frames" in str(err.value)
    assert "the file up to here is playable" in str(err.value)
    assert len(decode_all(path)) == sink.SPACE_CHECK_EVERY


@pytest.mark.parametrize("frames, kept, says", [
    (0, False, "nothing was written"), (0, True, "nothing was written"),
    (5, True, "after 5 frames: full; the file up to here is playable"),
    (5, False, "after 5 frames: full; no file is left")])
def test_the_stop_message_claims_a_playable_file_only_when_there_is_one(frames, kept, says):
    message = recording.stop_message(Path("out.mp4"), frames, "full", kept)
    assert says in message and "out.mp4" in message
    assert ("playable" in message) == (frames > 0 and kept)
