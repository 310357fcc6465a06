"""The preview window for real: OpenCV's Qt GUI on a private Xvfb display.

Each ``scenario_*`` function runs in a child Python on that display (see
``xvfb.run_in_display``: Qt keeps one X connection per process and ends the process when
it breaks), drives a :class:`PreviewSink` like the pipeline's output thread does, and
returns plain data; the tests check it and the screenshots in this process.

Set ``LOCALSR_PREVIEW_SCREENSHOT`` / ``LOCALSR_PREVIEW_SCENE_SCREENSHOT`` to PNG paths to
keep the screenshots (flat colours / a synthetic person with the mask tint) for a look.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from PIL import Image, ImageGrab, features

from localsr_cam.frames import CapturedFrame, Controls, HudStats, ProcessedFrame
from localsr_cam.outputs.sinks import PREVIEW_WINDOW, PreviewSink
from tests.xvfb import (
    XDOTOOL,
    XVFB,
    XvfbServer,
    find_window,
    press_key,
    remap_window,
    request_close,
    run_in_display,
)

pytestmark = pytest.mark.skipif(
    XVFB is None, reason="Xvfb is not installed (apt-get install xvfb; `make test` installs it)"
)
needs_xdotool = pytest.mark.skipif(
    XDOTOOL is None,
    reason="xdotool is not installed (apt-get install xdotool; `make test` installs it)",
)

needs_screenshots = pytest.mark.skipif(
    not features.check("xcb"), reason="this Pillow has no XCB support for ImageGrab"
)

HUD = HudStats(fps=29.7, latency_ms=41.5, backend="ort-cpu")
RED, GREEN = (0, 0, 255), (0, 255, 0)  # BGR
OUT_SIZE = (800, 600)  # side by side that is 1600 px: the window must scale it to 1280


@pytest.fixture(scope="module")
def display():
    with XvfbServer(screen="1600x900x24") as server:
        yield server.display


# --- what the child processes run ------------------------------------------------------


def bands_frame(out_size: tuple[int, int]) -> ProcessedFrame:
    """A red input and a green output: easy to find in a screenshot."""
    width, height = out_size
    source = np.empty((height // 2, width // 2, 3), np.uint8)
    source[:] = RED
    image = np.empty((height, width, 3), np.uint8)
    image[:] = GREEN
    return ProcessedFrame(image=image, source=CapturedFrame(source, 0, time.perf_counter()))


def scene_frame(out_size: tuple[int, int]) -> ProcessedFrame:
    """A synthetic webcam picture: a textured room, a head-and-shoulders person, its mask."""
    width, height = out_size
    w, h = width // 2, height // 2
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    room = np.stack([80 + 60 * xx / w, 90 + 40 * yy / h, 120 + 0 * xx], axis=-1)
    room += 25 * ((xx // 12 + yy // 12) % 2)[..., None]  # a tiled wall
    mask = np.zeros((h, w), np.float32)
    cv2.ellipse(mask, (w // 2, int(h * 0.42)), (w // 9, h // 6), 0, 0, 360, 1.0, -1)
    cv2.ellipse(mask, (w // 2, h), (w // 4, h // 3), 0, 180, 360, 1.0, -1)
    soft = cv2.GaussianBlur(mask, (0, 0), 2.0)
    skin = np.array([120, 150, 205], np.float32)
    source = (room * (1 - soft[..., None]) + skin * soft[..., None]).astype(np.uint8)
    image = cv2.resize(source, out_size, interpolation=cv2.INTER_CUBIC)
    box = (w // 4, h // 4, 3 * w // 4, h)
    return ProcessedFrame(
        image=image, source=CapturedFrame(source, 0, time.perf_counter()), mask=soft, box=box
    )


def scenario_show(layout: str, pattern: str, show_mask: bool, shot_path: str) -> dict[str, Any]:
    """Show frames from a worker thread (as the output thread does) and take a screenshot."""
    result: dict[str, Any] = {}
    errors: list[BaseException] = []

    def drive() -> None:
        try:
            controls = Controls()
            sink = PreviewSink(layout=layout)
            sink.show_mask = show_mask
            frame = bands_frame(OUT_SIZE) if pattern == "bands" else scene_frame(OUT_SIZE)
            sink.open(OUT_SIZE, 30.0, controls)
            _grab_when_drawn(sink, frame).save(shot_path)
            result["window"] = list(cv2.getWindowImageRect(sink.window))
            result["stop"] = controls.stop.is_set()
            sink.close()
            sink.close()
        except BaseException as exc:
            errors.append(exc)

    worker = threading.Thread(target=drive)
    worker.start()
    worker.join(timeout=30)
    if errors:
        raise errors[0]
    return result


def _grab_when_drawn(sink: PreviewSink, frame: ProcessedFrame, timeout_s: float = 10.0) -> Any:
    """Write frames until two screenshots in a row agree and the window is not black.

    A window Qt never drew (see ``xvfb.remap_window``) is mapped again after 1.5 s.
    """
    display = os.environ["DISPLAY"]
    previous = None
    start = time.monotonic()
    remapped = False
    while True:
        for _ in range(3):
            sink.write(frame, HUD)
            cv2.waitKey(10)
        shot = ImageGrab.grab(xdisplay=display)
        x, y, w, h = cv2.getWindowImageRect(sink.window)
        pixels = np.asarray(shot)[y : y + h, x : x + w]
        drawn = pixels.size > 0 and pixels.mean() > 20
        if drawn and previous is not None and np.array_equal(previous, pixels):
            return shot
        elapsed = time.monotonic() - start
        if not drawn and not remapped and elapsed > 1.5:
            remap_window(display, find_window(display, sink.window))
            remapped = True
        if elapsed > timeout_s:
            return shot
        previous = pixels


def _pump_until(sink: PreviewSink, frame: ProcessedFrame, done: Any, timeout_s: float = 3.0):
    deadline = time.monotonic() + timeout_s
    while not done() and time.monotonic() < deadline:
        sink.write(frame, HUD)
        time.sleep(0.01)


def scenario_keys(keys: list[str]) -> list[dict[str, Any]]:
    """Type each key into the window with xdotool and record the state it leads to."""
    controls = Controls()
    sink = PreviewSink()
    frame = bands_frame(OUT_SIZE)
    sink.open(OUT_SIZE, 30.0, controls)
    _pump_until(sink, frame, lambda: sink.frames_written >= 5)
    window = find_window(os.environ["DISPLAY"], PREVIEW_WINDOW)
    states = []
    for key in keys:
        before = (sink.show_mask, sink.layout, controls.bypass, controls.stop.is_set())
        # Type from another thread while this one keeps the GUI's events flowing.
        typist = threading.Thread(target=press_key, args=(os.environ["DISPLAY"], window, key))
        typist.start()
        _pump_until(
            sink,
            frame,
            lambda b=before: (
                (sink.show_mask, sink.layout, controls.bypass, controls.stop.is_set()) != b
            ),
        )
        typist.join()
        states.append(
            {
                "mask": sink.show_mask,
                "layout": sink.layout,
                "bypass": controls.bypass,
                "stop": controls.stop.is_set(),
            }
        )
    sink.close()
    return states


def scenario_window_gone(how: str) -> dict[str, Any]:
    """Make the window go away (``destroy``: OpenCV call; ``user``: WM_DELETE_WINDOW), write."""
    controls = Controls()
    sink = PreviewSink()
    frame = bands_frame(OUT_SIZE)
    sink.open(OUT_SIZE, 30.0, controls)
    _pump_until(sink, frame, lambda: sink.frames_written >= 5)
    shown = sink.frames_written
    if how == "destroy":
        cv2.destroyWindow(sink.window)
        cv2.waitKey(1)
    else:
        request_close(os.environ["DISPLAY"], find_window(os.environ["DISPLAY"], PREVIEW_WINDOW))
    _pump_until(sink, frame, controls.stop.is_set)
    stopped = controls.stop.is_set()
    extra_frames_shown = sink.frames_written - shown
    for _ in range(3):  # the pipeline may write again before it sees the stop
        sink.write(frame, HUD)
    try:
        visible = cv2.getWindowProperty(sink.window, cv2.WND_PROP_VISIBLE)
    except cv2.error:
        visible = -1.0  # no window at all
    sink.close()
    sink.close()
    return {"stop": stopped, "extra": extra_frames_shown, "visible": visible}


# --- the tests -------------------------------------------------------------------------


def colour_mask(shot: np.ndarray, rgb: tuple[int, int, int], tol: int = 6) -> np.ndarray:
    """bool H×W: where the RGB screenshot is within ``tol`` of ``rgb`` in every channel."""
    return np.asarray((np.abs(shot.astype(np.int16) - np.array(rgb)) <= tol).all(axis=-1))


@needs_screenshots
def test_preview_window_shows_input_and_output_side_by_side(display, tmp_path):
    shot_path = tmp_path / "side.png"
    result = run_in_display(
        display, __name__, "scenario_show", "side", "bands", False, str(shot_path)
    )
    assert not result["stop"]
    assert result["window"][2:] == [1280, 480]  # 1600×600 scaled to fit 1280 px

    shot = np.asarray(Image.open(shot_path).convert("RGB"))
    red = colour_mask(shot, (255, 0, 0))
    green = colour_mask(shot, (0, 255, 0))
    panel = 640 * 480
    assert red.sum() > 0.85 * panel, "the input panel is missing"
    assert green.sum() > 0.9 * panel, "the output panel is missing"
    red_x, green_x = np.nonzero(red)[1], np.nonzero(green)[1]
    assert red_x.max() < green_x.min(), "input must be left of output"
    assert green_x.max() - red_x.min() < 1280
    # HUD: white text on black bands over the top left of the window.
    x, y = result["window"][:2]
    top_left = shot[y : y + 40, x : x + 320]
    assert colour_mask(top_left, (255, 255, 255), tol=40).sum() > 100
    assert colour_mask(top_left, (0, 0, 0), tol=10).sum() > 2000

    keep = os.environ.get("LOCALSR_PREVIEW_SCREENSHOT")
    if keep:
        shutil.copyfile(shot_path, keep)


@needs_screenshots
def test_preview_scene_with_mask_overlay_renders(display, tmp_path):
    shot_path = tmp_path / "scene.png"
    result = run_in_display(
        display, __name__, "scenario_show", "side", "scene", True, str(shot_path)
    )
    x, y, w, h = result["window"]
    shot = np.asarray(Image.open(shot_path).convert("RGB"))[y : y + h, x : x + w]
    assert shot.shape[:2] == (480, 1280)
    # The person's tint (magenta over skin) appears on the right panel only.
    tinted = (shot[..., 0] > 150) & (shot[..., 2] > 150) & (shot[..., 1] < 120)
    assert tinted[:, 640:].sum() > 5000
    assert tinted[:, :640].sum() < 100
    keep = os.environ.get("LOCALSR_PREVIEW_SCENE_SCREENSHOT")
    if keep:
        shutil.copyfile(shot_path, keep)


@needs_xdotool
def test_hotkeys_typed_into_the_window(display):
    states = run_in_display(display, __name__, "scenario_keys", ["m", "s", "b", "q"])
    assert states == [
        {"mask": True, "layout": "side", "bypass": False, "stop": False},
        {"mask": True, "layout": "split", "bypass": False, "stop": False},
        {"mask": True, "layout": "split", "bypass": True, "stop": False},
        {"mask": True, "layout": "split", "bypass": True, "stop": True},
    ]


def test_writing_after_the_window_was_destroyed_stops_the_pipeline(display):
    result = run_in_display(display, __name__, "scenario_window_gone", "destroy")
    assert result["stop"]
    assert result["extra"] == 0  # nothing was shown, so the window was not re-created
    assert result["visible"] < 1


def test_closing_the_window_like_a_window_manager_stops_the_pipeline(display):
    result = run_in_display(display, __name__, "scenario_window_gone", "user")
    assert result["stop"]
    # The close is handled while the GUI runs its events, just after a frame was shown;
    # that write already sees it, and no later write shows a frame (re-creating the window).
    assert result["extra"] <= 1
    assert result["visible"] < 1


def test_xvfb_server_stops_and_frees_its_display(tmp_path):
    with XvfbServer(screen="320x240x24") as server:
        number = server.display.lstrip(":")
        assert Path(f"/tmp/.X11-unix/X{number}").exists()
    deadline = time.monotonic() + 5
    while Path(f"/tmp/.X11-unix/X{number}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not Path(f"/tmp/.X11-unix/X{number}").exists()


def test_run_with_a_preview_sink_end_to_end(display, tmp_path):
    """The whole pipeline with a real preview window: the output thread opens, draws and
    closes the window itself (a window opened by another thread deadlocked imshow)."""
    import subprocess
    import sys

    env = dict(os.environ, DISPLAY=display, PYTHONUNBUFFERED="1")
    out = tmp_path / "also.avi"
    done = subprocess.run(
        [sys.executable, "-m", "localsr_cam", "-q", "run", "--source", "synthetic",
         "--input", "160x90", "--model", "bicubic", "--frames", "20", "--fps", "60",
         "--sink", "preview", "--sink", f"file:{out}"],
        env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("frames=20 "), done.stdout
    assert out.stat().st_size > 0


# --- the 1:1 face magnifier ------------------------------------------------------------


def checker_frame(out_size: tuple[int, int]) -> ProcessedFrame:
    """A person box whose output holds a 1-pixel checkerboard (detail only a 1:1 view
    shows: the scaled-down panels blur it to grey); the input is flat grey."""
    width, height = out_size
    image = np.full((height, width, 3), 128, np.uint8)
    yy, xx = np.mgrid[0:height, 0:width]
    checker = ((xx + yy) % 2 * 255).astype(np.uint8)
    image[100:500, 200:600] = checker[100:500, 200:600, None]
    source = np.full((height // 2, width // 2, 3), 128, np.uint8)
    box = (width // 8, height // 8, 3 * width // 8, height // 2)  # face ≈ output (400, 262)
    return ProcessedFrame(image=image, source=CapturedFrame(source, 0, time.perf_counter()),
                          box=box)


def scenario_magnifier(shot_off: str, shot_on: str) -> dict[str, Any]:
    """Screenshot, press z in the window (xdotool), screenshot again."""
    controls = Controls()
    sink = PreviewSink()
    frame = checker_frame(OUT_SIZE)
    sink.open(OUT_SIZE, 30.0, controls)
    _grab_when_drawn(sink, frame).save(shot_off)
    window = find_window(os.environ["DISPLAY"], PREVIEW_WINDOW)
    typist = threading.Thread(target=press_key, args=(os.environ["DISPLAY"], window, "z"))
    typist.start()
    _pump_until(sink, frame, lambda: sink.magnify)
    typist.join()
    _grab_when_drawn(sink, frame).save(shot_on)
    result = {"magnify": sink.magnify, "window": list(cv2.getWindowImageRect(sink.window))}
    sink.close()
    return result


def one_pixel_detail(shot: np.ndarray) -> np.ndarray:
    """bool: pixels differing from their right neighbour by more than 200 in green."""
    green = shot[..., 1].astype(np.int16)
    return np.abs(np.diff(green, axis=1)) > 200


@needs_xdotool
@needs_screenshots
def test_the_magnifier_key_shows_the_output_at_1_to_1(display, tmp_path):
    off, on = tmp_path / "off.png", tmp_path / "on.png"
    result = run_in_display(display, __name__, "scenario_magnifier", str(off), str(on))
    assert result["magnify"]
    x, y, w, h = result["window"]
    before = np.asarray(Image.open(off).convert("RGB"))[y:y + h, x:x + w]
    after = np.asarray(Image.open(on).convert("RGB"))[y:y + h, x:x + w]
    picture = slice(45, 450)  # below the HUD text, above the panel labels
    assert one_pixel_detail(before)[picture].sum() < 500  # scaled to 0.8: checker lost
    detail = one_pixel_detail(after)
    assert detail[:, 640:].sum() > 0.8 * 240 * 240  # the inset in the output panel
    assert detail[picture, :640].sum() < 500  # the input panel's inset has no such detail
    # the inset (256 px, 8 px from the panel's bottom-right corner) holds the output's
    # own pixels: a 1-pixel alternation of 0 and 255
    top, left = 480 - 8 - 256, 1280 - 8 - 256
    patch = after[top + 100:top + 110, left + 100:left + 110, 1]
    assert set(np.unique(patch)) <= {0, 255} and patch.std() > 100
