"""Sinks: spec parsing, real video files, the virtual camera through a fake pyvirtualcam
camera, and the preview's drawing and key handling without a display.

The real preview window is tested under Xvfb in test_preview_xvfb.py.
"""

from __future__ import annotations

import shutil
from collections import namedtuple
from pathlib import Path

import cv2
import numpy as np
import pytest
import pyvirtualcam

from localsr_cam.errors import ConfigError, SinkError
from localsr_cam.frames import CapturedFrame, Controls, HudStats, ProcessedFrame
from localsr_cam.outputs import sinks as outputs
from localsr_cam.outputs.hud import MASK_TINT_BGR, PreviewCanvas, fit_width
from localsr_cam.outputs.sinks import (
    NullSink,
    PreviewSink,
    VideoFileSink,
    VirtualCamSink,
    display_problem,
    make_sink,
    virtualcam_unavailable_message,
)

HUD = HudStats(fps=29.7, latency_ms=41.5, backend="ort-cpu")


def make_frame(
    out_size: tuple[int, int],
    out_bgr: tuple[int, int, int] = (0, 255, 0),
    in_bgr: tuple[int, int, int] = (0, 0, 255),
    mask: np.ndarray | None = None,
    box: tuple[int, int, int, int] | None = None,
) -> ProcessedFrame:
    """Output ``out_size`` (W, H) filled with ``out_bgr``; input half that size, ``in_bgr``."""
    width, height = out_size
    source = np.empty((height // 2, width // 2, 3), np.uint8)
    source[:] = in_bgr
    image = np.empty((height, width, 3), np.uint8)
    image[:] = out_bgr
    return ProcessedFrame(image=image, source=CapturedFrame(source, 0, 0.0), mask=mask, box=box)


# --- make_sink -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "kind", "name"),
    [
        ("virtualcam", VirtualCamSink, "virtualcam"),
        ("virtualcam:/dev/video7", VirtualCamSink, "virtualcam:/dev/video7"),
        ("preview", PreviewSink, "preview"),
        ("preview:split", PreviewSink, "preview:split"),
        ("file:out.mp4", VideoFileSink, "file:out.mp4"),
        ("file:clips/out.AVI", VideoFileSink, "file:clips/out.AVI"),
        ("null", NullSink, "null"),
    ],
)
def test_make_sink_builds_each_kind_without_opening_anything(spec, kind, name):
    sink = make_sink(spec)
    assert type(sink) is kind
    assert sink.name == name
    sink.close()  # closing a never-opened sink is fine


def test_make_sink_passes_the_device_and_layout():
    assert make_sink("virtualcam:/dev/video7").device == "/dev/video7"  # type: ignore[attr-defined]
    assert make_sink("virtualcam").device is None  # type: ignore[attr-defined]
    assert make_sink("preview:split").layout == "split"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "spec", ["", "window", "virtualcam:", "file:", "null:x", "preview:top", "Preview", "v4l2"]
)
def test_make_sink_rejects_unknown_specs_in_one_line_listing_the_choices(spec):
    with pytest.raises(ConfigError) as err:
        make_sink(spec)
    message = str(err.value)
    assert "\n" not in message
    assert repr(spec) in message
    for choice in ("virtualcam", "preview", "file:PATH", "null"):
        assert choice in message


@pytest.mark.parametrize("spec", ["file:out.webm", "file:out", "file:out.mp4.txt"])
def test_make_sink_rejects_video_files_other_than_mp4_mkv_and_avi(spec):
    with pytest.raises(ConfigError, match=r"\.mp4, \.mkv or \.avi"):
        make_sink(spec)


# --- NullSink --------------------------------------------------------------------------


def test_null_sink_counts_frames():
    sink = NullSink()
    sink.open((64, 48), 30.0, Controls())
    for _ in range(3):
        sink.write(make_frame((64, 48)), HUD)
    assert sink.frames_written == 3
    sink.close()
    sink.close()


# --- VideoFileSink ---------------------------------------------------------------------


def write_video(path: Path, n_frames: int = 10, size: tuple[int, int] = (64, 48)) -> VideoFileSink:
    """Frames whose colour changes with the index: see :func:`frame_colour`."""
    sink = VideoFileSink(path)
    sink.open(size, 10.0, Controls())
    for i in range(n_frames):
        sink.write(make_frame(size, out_bgr=frame_colour(i)), HUD)
    return sink


def frame_colour(index: int) -> tuple[int, int, int]:
    step = index % 10
    return (20 + 15 * step, 200 - 15 * step, 128)


def read_video(path: Path) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, image = capture.read()
        if not ok:
            break
        frames.append(image)
    capture.release()
    return frames


@pytest.mark.parametrize("suffix", [".mp4", ".mkv", ".avi"])
def test_video_file_sink_writes_a_playable_file_with_every_frame(tmp_path, suffix):
    path = tmp_path / f"out{suffix}"
    sink = write_video(path)
    assert sink.frames_written == 10
    sink.close()
    sink.close()  # twice is fine

    frames = read_video(path)
    assert len(frames) == 10
    assert all(f.shape == (48, 64, 3) for f in frames)
    for i, image in enumerate(frames):
        mean = image.reshape(-1, 3).mean(axis=0)
        np.testing.assert_allclose(mean, frame_colour(i), atol=8)


def test_video_file_sink_names_a_missing_folder(tmp_path):
    sink = VideoFileSink(tmp_path / "no" / "such" / "out.mp4")
    with pytest.raises(SinkError, match="does not exist") as err:
        sink.open((64, 48), 10.0, Controls())
    assert str(tmp_path / "no" / "such") in str(err.value)
    sink.close()


def test_video_file_sink_names_a_path_it_cannot_create(tmp_path):
    # Under a regular file: unwritable even for root, unlike a chmod-ed folder.
    (tmp_path / "plain_file").write_text("x")
    target = tmp_path / "plain_file" / "out.avi"
    sink = VideoFileSink(target)
    with pytest.raises(SinkError) as err:
        sink.open((64, 48), 10.0, Controls())
    assert str(target.parent) in str(err.value)


def test_video_file_sink_reports_an_unopenable_file_by_path(tmp_path):
    target = tmp_path / "is_a_folder.mp4"
    target.mkdir()  # a folder where the file should go: the writer cannot open it
    sink = VideoFileSink(target)
    with pytest.raises(SinkError, match="is a folder") as err:
        sink.open((64, 48), 10.0, Controls())
    assert str(target) in str(err.value)


def test_video_file_sink_checks_the_first_frame_size(tmp_path):
    sink = VideoFileSink(tmp_path / "out.mp4")
    sink.open((64, 48), 10.0, Controls())
    with pytest.raises(ValueError, match=r"48×64×3"):
        sink.write(make_frame((32, 24)), HUD)
    sink.close()


def test_video_file_sink_stops_on_a_full_disk_leaving_a_playable_file(tmp_path, monkeypatch):
    path = tmp_path / "out.avi"
    sink = write_video(path, n_frames=VideoFileSink.SPACE_CHECK_EVERY)
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda _path: usage(2**30, 2**30 - 2**20, 2**20))
    with pytest.raises(SinkError, match="MiB free") as err:
        sink.write(make_frame((64, 48)), HUD)
    assert "\n" not in str(err.value)
    assert str(path) in str(err.value)
    assert len(read_video(path)) == VideoFileSink.SPACE_CHECK_EVERY
    sink.close()


def test_video_file_sink_refuses_writes_when_not_open(tmp_path):
    sink = VideoFileSink(tmp_path / "out.mp4")
    with pytest.raises(RuntimeError):
        sink.write(make_frame((64, 48)), HUD)


# --- VirtualCamSink with a fake pyvirtualcam camera --------------------------------------


def test_virtualcam_sends_rgb_frames_of_the_output_size(fake_camera):
    sink = VirtualCamSink("/dev/video4")
    sink.open((64, 48), 25.0, Controls())
    (camera,) = fake_camera.instances
    assert (camera.width, camera.height, camera.fps) == (64, 48, 25.0)
    assert camera.device == "/dev/video4"
    assert camera.fmt == pyvirtualcam.PixelFormat.RGB

    frame = make_frame((64, 48), out_bgr=(10, 20, 200))
    sink.write(frame, HUD)
    sink.write(frame, HUD)
    assert len(camera.frames) == 2
    assert camera.frames[0].shape == (48, 64, 3)
    assert tuple(camera.frames[0][5, 5]) == (200, 20, 10)  # R, G, B
    assert tuple(frame.image[5, 5]) == (10, 20, 200)  # the caller's frame is untouched
    assert sink.frames_written == 2

    sink.close()
    sink.close()
    assert camera.closed == 1


def test_virtualcam_without_a_loopback_device_says_how_to_get_one(fake_camera, monkeypatch):
    monkeypatch.setattr(outputs.sys, "platform", "linux")
    fake_camera.fail_opens = 1
    sink = VirtualCamSink()
    with pytest.raises(SinkError) as err:
        sink.open((64, 48), 30.0, Controls())
    message = str(err.value)
    assert "\n" not in message
    assert "sudo modprobe v4l2loopback devices=1 exclusive_caps=1 card_label=localsr" in message
    assert "sudo apt install v4l2loopback-dkms" in message
    assert "No v4l2 loopback device found" in message
    sink.close()


@pytest.mark.skipif(not outputs.sys.platform.startswith("linux"), reason="v4l2loopback is Linux")
def test_virtualcam_on_a_missing_device_with_the_real_pyvirtualcam():
    sink = VirtualCamSink("/dev/video_localsr_test_missing")
    with pytest.raises(SinkError, match="modprobe v4l2loopback") as err:
        sink.open((64, 48), 30.0, Controls())
    assert "/dev/video_localsr_test_missing" in str(err.value)


@pytest.mark.parametrize("platform", ["win32", "darwin"])
def test_virtualcam_hint_elsewhere_is_obs(platform):
    message = virtualcam_unavailable_message(None, RuntimeError("no backend"), platform)
    assert "install OBS and start its virtual camera once" in message
    assert "modprobe" not in message


def test_virtualcam_without_pyvirtualcam_says_what_to_install(monkeypatch):
    monkeypatch.setitem(outputs.sys.modules, "pyvirtualcam", None)  # import fails
    with pytest.raises(SinkError, match="pip install pyvirtualcam"):
        VirtualCamSink().open((64, 48), 30.0, Controls())


def test_virtualcam_reopens_the_camera_after_a_send_error(fake_camera):
    sink = VirtualCamSink()
    sink.open((64, 48), 30.0, Controls())
    sink.write(make_frame((64, 48), out_bgr=(0, 0, 1)), HUD)
    fake_camera.fail_sends = 1
    sink.write(make_frame((64, 48), out_bgr=(0, 0, 2)), HUD)
    sink.write(make_frame((64, 48), out_bgr=(0, 0, 3)), HUD)

    first, second = fake_camera.instances
    assert first.asked_for is None
    assert second.asked_for == "/dev/video9"  # reopens the device it found, not any free one
    assert first.closed == 1
    assert [f[0, 0, 0] for f in first.frames] == [1]
    assert [f[0, 0, 0] for f in second.frames] == [2, 3]  # the failed frame was resent
    assert sink.reopens == 1
    assert sink.frames_written == 3
    sink.close()


def test_virtualcam_raises_when_the_camera_cannot_be_reopened(fake_camera):
    sink = VirtualCamSink()
    sink.open((64, 48), 30.0, Controls())
    fake_camera.fail_sends = 1
    fake_camera.fail_opens = 1
    with pytest.raises(SinkError, match="modprobe"):
        sink.write(make_frame((64, 48)), HUD)
    assert fake_camera.instances[0].closed == 1
    sink.close()


def test_virtualcam_raises_when_the_reopened_camera_still_fails(fake_camera):
    sink = VirtualCamSink()
    sink.open((64, 48), 30.0, Controls())
    fake_camera.fail_sends = 2
    with pytest.raises(SinkError, match="even after reopening"):
        sink.write(make_frame((64, 48)), HUD)
    assert [c.closed for c in fake_camera.instances] == [1, 1]
    sink.close()


def test_virtualcam_checks_the_first_frame(fake_camera):
    sink = VirtualCamSink()
    sink.open((64, 48), 30.0, Controls())
    bad = make_frame((64, 48))
    bad = ProcessedFrame(image=bad.image.astype(np.float32), source=bad.source)
    with pytest.raises(ValueError, match="uint8"):
        sink.write(bad, HUD)
    sink.close()


# --- the preview: display checks, drawing, keys (no window system) ----------------------


def test_display_problem_without_display_on_linux():
    assert "DISPLAY" in display_problem({}, "linux")


def test_display_problem_when_the_x_server_does_not_answer():
    # Nothing listens on display 987 (nor on a malformed name): probing must say so
    # instead of letting Qt abort the process.
    assert "does not answer" in display_problem({"DISPLAY": ":987"}, "linux")
    assert "does not answer" in display_problem({"DISPLAY": "nonsense"}, "linux")


def test_display_problem_is_not_checked_off_linux():
    assert display_problem({}, "win32") == ""
    assert display_problem({}, "darwin") == ""


def test_preview_open_without_display_raises_one_line(monkeypatch):
    monkeypatch.setattr(outputs.sys, "platform", "linux")
    monkeypatch.delenv("DISPLAY", raising=False)
    with pytest.raises(SinkError, match=r"\$DISPLAY is not set") as err:
        PreviewSink().open((64, 48), 30.0, Controls())
    assert "\n" not in str(err.value)


def test_preview_rejects_an_unknown_layout():
    with pytest.raises(ConfigError, match="side, split"):
        PreviewSink(layout="top")


class FakeWindows:
    """Stands in for OpenCV's window system: one window that the "user" can close."""

    def __init__(self) -> None:
        self.exists = False
        self.shown: list[np.ndarray] = []
        self.keys: list[int] = []
        self.mouse = None

    def named_window(self, name, flags=0):
        self.exists = True

    def set_mouse_callback(self, name, callback):
        self.mouse = callback

    def imshow(self, name, image):
        self.exists = True  # like OpenCV: showing re-creates a closed window
        self.shown.append(image.copy())

    def wait_key(self, delay=0):
        return self.keys.pop(0) if self.keys else -1

    def visible(self, name, prop):
        return 1.0 if self.exists else 0.0

    def destroy(self, name):
        self.exists = False


@pytest.fixture
def fake_windows(monkeypatch):
    windows = FakeWindows()
    monkeypatch.setattr(outputs, "display_problem", lambda: "")
    monkeypatch.setattr(cv2, "namedWindow", windows.named_window)
    monkeypatch.setattr(cv2, "setMouseCallback", windows.set_mouse_callback)
    monkeypatch.setattr(cv2, "imshow", windows.imshow)
    monkeypatch.setattr(cv2, "waitKey", windows.wait_key)
    monkeypatch.setattr(cv2, "getWindowProperty", windows.visible)
    monkeypatch.setattr(cv2, "destroyWindow", windows.destroy)
    return windows


def test_preview_hotkeys(fake_windows):
    controls = Controls()
    sink = PreviewSink()
    sink.open((128, 96), 30.0, controls)
    sink.handle_key(-1)
    sink.handle_key(ord("m"))
    assert sink.show_mask
    sink.handle_key(ord("s"))
    assert sink.layout == "split"
    sink.handle_key(ord("S"))
    assert sink.layout == "side"
    sink.handle_key(ord("b"))
    assert controls.bypass
    sink.handle_key(ord("x"))
    assert not controls.stop.is_set()
    sink.handle_key(0x100000 | ord("b"))  # modifier bits above the low byte are ignored
    assert not controls.bypass
    sink.handle_key(27)
    assert controls.stop.is_set()
    sink.close()


@pytest.mark.parametrize("key", [ord("q"), ord("Q"), 27])
def test_preview_quit_keys_pressed_while_writing_stop_the_pipeline(fake_windows, key):
    controls = Controls()
    sink = PreviewSink()
    sink.open((128, 96), 30.0, controls)
    sink.write(make_frame((128, 96)), HUD)
    assert not controls.stop.is_set()
    fake_windows.keys.append(key)
    sink.write(make_frame((128, 96)), HUD)
    assert controls.stop.is_set()
    sink.close()


def test_preview_window_closed_by_the_user_stops_and_is_not_reopened(fake_windows):
    controls = Controls()
    sink = PreviewSink()
    sink.open((128, 96), 30.0, controls)
    sink.write(make_frame((128, 96)), HUD)
    fake_windows.destroy(sink.window)  # the user clicks ×
    sink.write(make_frame((128, 96)), HUD)
    assert controls.stop.is_set()
    assert not fake_windows.exists
    assert len(fake_windows.shown) == 1
    sink.close()
    sink.close()


def test_preview_split_follows_the_mouse(fake_windows):
    sink = PreviewSink(layout="split")
    sink.open((200, 100), 30.0, Controls())
    fake_windows.mouse(cv2.EVENT_MOUSEMOVE, 50, 10, 0, None)
    assert sink.split == pytest.approx(0.25)
    sink.write(make_frame((200, 100)), HUD)
    shown = fake_windows.shown[-1]
    assert tuple(shown[50, 40]) == (0, 0, 255)  # input (red) left of the divider
    assert tuple(shown[50, 60]) == (0, 255, 0)  # output (green) right of it
    sink.close()


# --- PreviewCanvas ---------------------------------------------------------------------


def test_fit_width_only_scales_down():
    assert fit_width(640, 480, 1280) == (640, 480)
    assert fit_width(2560, 720, 1280) == (1280, 360)


def test_side_by_side_shows_input_left_output_right_within_the_width_limit():
    canvas = PreviewCanvas((1280, 720))
    picture = canvas.compose(make_frame((1280, 720)), HUD)
    assert picture.shape == (360, 1280, 3)
    assert canvas.canvas_size("side") == (1280, 360)
    # Away from the text bands: red input on the left half, green output on the right.
    assert tuple(picture[180, 320]) == (0, 0, 255)
    assert tuple(picture[180, 960]) == (0, 255, 0)
    # The HUD is drawn: white text on a black band at the top left.
    band = picture[:40, :300]
    assert (band == 0).all(axis=-1).sum() > 1000
    assert (band == 255).all(axis=-1).sum() > 50


def test_split_layout_keeps_the_output_size_and_moves_the_divider():
    canvas = PreviewCanvas((320, 240))
    frame = make_frame((320, 240))
    picture = canvas.compose(frame, HUD, layout="split", split=0.75)
    assert picture.shape == (240, 320, 3)
    assert tuple(picture[120, 200]) == (0, 0, 255)
    assert tuple(picture[120, 260]) == (0, 255, 0)


def test_mask_overlay_tints_only_the_person_on_the_output():
    mask = np.zeros((60, 80), np.float32)
    mask[:, 40:] = 1.0  # the person fills the right half of the input
    frame = make_frame((160, 120), out_bgr=(0, 0, 0), mask=mask, box=(40, 0, 80, 60))
    canvas = PreviewCanvas((160, 120))
    plain = canvas.compose(frame, HUD).copy()
    tinted = canvas.compose(frame, HUD, show_mask=True)
    after = tinted[:, 160:]
    expected = np.array(MASK_TINT_BGR) * 0.45
    np.testing.assert_allclose(after[80, 140], expected, atol=2)  # person: tinted
    assert tuple(after[80, 20]) == (0, 0, 0)  # background: untouched
    assert (plain[:, 160:][80, 140] == 0).all()


def test_canvas_reuses_its_buffers():
    canvas = PreviewCanvas((160, 120))
    frame = make_frame((160, 120))
    first = canvas.compose(frame, HUD)
    second = canvas.compose(frame, HUD, show_mask=True)
    assert first is second
    assert canvas.compose(frame, HUD, layout="split") is canvas.compose(frame, HUD, layout="split")
