"""Where processed frames go: a virtual camera, a preview window, a video file or nowhere.

Every sink follows :class:`Sink`: the constructor only stores settings, :meth:`Sink.open`
acquires the device, window or file, :meth:`Sink.write` sends one frame and
:meth:`Sink.close` releases everything and may be called twice. One thread (the
pipeline's output thread) drives a sink; sinks are not thread-safe. Frames arrive as
:class:`~localsr_cam.frames.ProcessedFrame`: ``image`` is uint8 H×W×3 BGR of the size given
to ``open``; it belongs to the caller and is only read. Its dtype and shape are checked on
the first write (a mismatch is a caller bug: ``ValueError``), not on every frame.

Problems the user can fix (no loopback device, no display, an unwritable path, a full
disk) raise :class:`~localsr_cam.errors.SinkError` with one line that says what to do.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
from collections.abc import Mapping
from typing import Any, Protocol

import cv2
import numpy as np

from localsr_cam.errors import ConfigError, SinkError
from localsr_cam.frames import Controls, HudStats, ProcessedFrame
from localsr_cam.outputs.hud import LAYOUTS, MAX_PREVIEW_WIDTH, PreviewCanvas
from localsr_cam.outputs.recording import VideoFileSink

log = logging.getLogger(__name__)

SINK_CHOICES = ("virtualcam, virtualcam:DEVICE, preview, preview:split, "
                "file:PATH.mp4|.mkv|.avi, dir:FOLDER, null")
LINUX_LOOPBACK_HINT = (
    "create one with: sudo apt install v4l2loopback-dkms && "
    "sudo modprobe v4l2loopback devices=1{number} exclusive_caps=1 card_label=localsr"
)
OTHER_LOOPBACK_HINT = "install OBS and start its virtual camera once"
PREVIEW_WINDOW = "localsr_cam preview"


class Sink(Protocol):
    """An output the pipeline's output thread writes frames to.

    ``name`` identifies it in logs and errors (``virtualcam:/dev/video2``, ``preview``,
    ``file:out.mp4``, ``null``). ``open`` gets ``size = (width, height)`` of the output
    frames and the pace ``fps``; ``close`` is safe to call twice.
    """

    name: str

    def open(self, size: tuple[int, int], fps: float, controls: Controls) -> None: ...

    def write(self, frame: ProcessedFrame, hud: HudStats) -> None: ...

    def close(self) -> None: ...


def make_sink(spec: str) -> Sink:
    """Build an unopened sink from a spec such as ``virtualcam:/dev/video2`` or ``file:a.mp4``.

    Raises :class:`ConfigError` (one line listing the choices) for anything else.
    """
    kind, sep, arg = spec.partition(":")
    if kind == "null" and not sep:
        return NullSink()
    if kind == "virtualcam" and (not sep or arg):
        return VirtualCamSink(arg or None)
    if kind == "preview" and (not sep or arg in LAYOUTS):
        return PreviewSink(layout=arg or "side")
    if kind == "file" and arg:
        return VideoFileSink(arg)
    if kind == "dir" and arg:
        from localsr_cam.outputs.imagedir import ImageDirSink

        return ImageDirSink(arg)
    raise ConfigError(f"unknown output {spec!r}; choose one of: {SINK_CHOICES}")


def check_frame(image: np.ndarray, size: tuple[int, int], sink: str) -> None:
    """Raise ``ValueError`` unless ``image`` is uint8 H×W×3 with ``size == (W, H)``."""
    width, height = size
    if image.dtype != np.uint8 or image.shape != (height, width, 3):
        raise ValueError(
            f"{sink}: expected uint8 {height}×{width}×3 BGR frames, "
            f"got {image.dtype} {'×'.join(map(str, image.shape))}"
        )


class NullSink:
    """Discards frames and counts them: for benchmarks and tests."""

    def __init__(self) -> None:
        self.name = "null"
        self.frames_written = 0

    def open(self, size: tuple[int, int], fps: float, controls: Controls) -> None:
        self.frames_written = 0

    def write(self, frame: ProcessedFrame, hud: HudStats) -> None:
        self.frames_written += 1

    def close(self) -> None:
        pass


class VirtualCamSink:
    """Sends the output frames to a virtual camera through pyvirtualcam.

    ``device``: ``/dev/videoN`` on Linux (a v4l2loopback device), a camera name elsewhere,
    or ``None`` for the first one found. Frames are converted BGR→RGB into a buffer owned by
    the sink and reused. When sending fails the camera is closed and reopened once per
    write (the same device it found at first), then the frame is sent again;
    :class:`SinkError` is raised only if that fails.
    """

    def __init__(self, device: str | None = None) -> None:
        self.device = device
        self.name = f"virtualcam:{device}" if device else "virtualcam"
        self.frames_written = 0
        self.reopens = 0
        self._camera: Any = None
        self._device_in_use = device
        self._rgb: np.ndarray | None = None
        self._size = (0, 0)
        self._fps = 30.0

    def check(self, size: tuple[int, int]) -> None:
        """Refuse a named loopback device that does not exist (Linux), before a run loads
        its models; opening finds every other problem."""
        device = self.device
        if sys.platform.startswith("linux") and device and device.startswith("/dev/"):
            if not os.path.exists(device):
                raise SinkError(virtualcam_unavailable_message(
                    device, FileNotFoundError(f"{device} does not exist")))

    def open(self, size: tuple[int, int], fps: float, controls: Controls) -> None:
        self._size, self._fps = size, float(fps)
        self._rgb = np.empty((size[1], size[0], 3), np.uint8)
        self.frames_written = 0
        self._device_in_use = self.device
        self._camera = self._open_camera()
        self._device_in_use = self._camera.device  # reopen this one, not the next free one

    def write(self, frame: ProcessedFrame, hud: HudStats) -> None:
        if self._camera is None or self._rgb is None:
            raise RuntimeError(f"{self.name}: write() before open() or after close()")
        if self.frames_written == 0:
            check_frame(frame.image, self._size, self.name)
        cv2.cvtColor(frame.image, cv2.COLOR_BGR2RGB, dst=self._rgb)
        try:
            self._camera.send(self._rgb)
        except (RuntimeError, OSError) as exc:
            log.warning("%s: sending a frame failed (%s); reopening the camera", self.name, exc)
            self._reopen(exc)
        self.frames_written += 1

    def close(self) -> None:
        camera, self._camera = self._camera, None
        if camera is not None:
            camera.close()
            log.info("%s: closed after %d frames", self.name, self.frames_written)

    def _open_camera(self) -> Any:
        try:
            import pyvirtualcam
        except ImportError as exc:
            raise SinkError(
                "the virtual camera needs pyvirtualcam: pip install pyvirtualcam"
            ) from exc
        width, height = self._size
        try:
            camera = pyvirtualcam.Camera(
                width,
                height,
                self._fps,
                fmt=pyvirtualcam.PixelFormat.RGB,
                device=self._device_in_use,
            )
        except (RuntimeError, OSError, ValueError) as exc:
            raise SinkError(virtualcam_unavailable_message(self._device_in_use, exc)) from exc
        log.info(
            "%s: sending %dx%d at %.1f fps to %s (%s backend)",
            self.name,
            width,
            height,
            self._fps,
            camera.device,
            camera.backend,
        )
        return camera

    def _reopen(self, cause: Exception) -> None:
        """Close the camera, open it again and resend the frame in ``self._rgb``."""
        self.close()
        self.reopens += 1
        self._camera = self._open_camera()
        try:
            self._camera.send(self._rgb)
        except (RuntimeError, OSError) as exc:
            self.close()
            raise SinkError(
                f"{self.name}: the virtual camera fails to take frames even after reopening "
                f"it: {_one_line(exc)} (first failure: {_one_line(cause)})"
            ) from exc


def virtualcam_unavailable_message(
    device: str | None, cause: Exception, platform: str = sys.platform
) -> str:
    """One line saying no virtual camera could be opened, why, and how to get one."""
    where = f"virtual camera {device!r}" if device else "a virtual camera"
    hint = OTHER_LOOPBACK_HINT
    if platform.startswith("linux"):
        number = device[len("/dev/video"):] if device and device.startswith("/dev/video") else ""
        hint = LINUX_LOOPBACK_HINT.format(
            number=f" video_nr={number}" if number.isdigit() else "")
    return f"cannot open {where} ({_one_line(cause)}); {hint}"


class PreviewSink:
    """An OpenCV window showing the input (bilinear upscale) and the output side by side.

    Keys: ``q``/Esc stop the pipeline, ``b`` toggles bypass, ``m`` the mask tint, ``s`` the
    layout (``side`` or ``split``; in ``split`` the divider follows the mouse), ``z`` a
    1:1 magnifier on the face (the panels are scaled down, which hides the 2× detail).
    Closing the window stops the pipeline too. The window is at most
    :data:`MAX_PREVIEW_WIDTH` pixels wide. All OpenCV GUI calls happen in the thread that
    calls ``open``/``write``/``close``.
    """

    def __init__(self, layout: str = "side", max_width: int = MAX_PREVIEW_WIDTH) -> None:
        if layout not in LAYOUTS:
            raise ConfigError(f"unknown preview layout {layout!r}; choose one of: side, split")
        self.name = "preview" if layout == "side" else f"preview:{layout}"
        self.window = PREVIEW_WINDOW
        self.layout = layout
        self.show_mask = False
        self.magnify = False
        self.split = 0.5
        self.frames_written = 0
        self._max_width = max_width
        self._controls = Controls()
        self._canvas: PreviewCanvas | None = None
        self._size = (0, 0)
        self._shown = False
        self._keys = {
            ord("q"): self._stop, ord("Q"): self._stop, 27: self._stop,
            ord("b"): self._toggle_bypass, ord("B"): self._toggle_bypass,
            ord("m"): self._toggle_mask, ord("M"): self._toggle_mask,
            ord("s"): self._toggle_layout, ord("S"): self._toggle_layout,
            ord("z"): self._toggle_magnifier, ord("Z"): self._toggle_magnifier,
        }  # fmt: skip

    def check(self, size: tuple[int, int]) -> None:
        """Refuse to run without a display, before a run loads its models."""
        problem = display_problem()
        if problem:
            raise SinkError(f"cannot open the preview window: {problem}")

    def open(self, size: tuple[int, int], fps: float, controls: Controls) -> None:
        self.check(size)
        self._controls, self._size = controls, size
        self._canvas = PreviewCanvas(size, self._max_width)
        try:
            cv2.namedWindow(self.window, cv2.WINDOW_AUTOSIZE | cv2.WINDOW_GUI_NORMAL)
            cv2.setMouseCallback(self.window, self._on_mouse)
        except cv2.error as exc:
            self._canvas = None
            raise SinkError(
                f"cannot open the preview window (is OpenCV built without GUI support?): "
                f"{_one_line(exc)}"
            ) from exc
        self._shown = False
        self.frames_written = 0

    def write(self, frame: ProcessedFrame, hud: HudStats) -> None:
        if self._canvas is None:
            raise RuntimeError(f"{self.name}: write() before open() or after close()")
        if self.frames_written == 0:
            check_frame(frame.image, self._size, self.name)
            source = frame.source.image
            check_frame(source, (source.shape[1], source.shape[0]), f"{self.name} input")
        if self._shown and self._window_closed():
            self._controls.stop.set()
            return
        picture = self._canvas.compose(
            frame,
            hud,
            layout=self.layout,
            split=self.split,
            show_mask=self.show_mask,
            bypass=self._controls.bypass,
            magnify=self.magnify,
        )
        cv2.imshow(self.window, picture)
        self._shown = True
        self.frames_written += 1
        self.handle_key(cv2.waitKey(1))  # also runs the GUI's events: keys, mouse, close
        if self._window_closed():
            self._controls.stop.set()

    def handle_key(self, key: int) -> None:
        """Act on a key code as returned by ``cv2.waitKey`` (-1: no key)."""
        action = self._keys.get(key & 0xFF) if key >= 0 else None
        if action is not None:
            action()

    def close(self) -> None:
        if self._canvas is None:
            return
        self._canvas = None
        try:
            cv2.destroyWindow(self.window)
            cv2.waitKey(1)  # let the GUI toolkit process the destroy
        except cv2.error:
            pass  # already gone, e.g. closed by the user

    def _window_closed(self) -> bool:
        try:
            return bool(cv2.getWindowProperty(self.window, cv2.WND_PROP_VISIBLE) < 1)
        except cv2.error:
            return True

    def _on_mouse(self, event: int, x: int, y: int, flags: int, param: object) -> None:
        if self._canvas is not None and self.layout == "split":
            width = self._canvas.canvas_size("split")[0]
            self.split = min(max(x / width, 0.0), 1.0)

    def _stop(self) -> None:
        self._controls.stop.set()

    def _toggle_bypass(self) -> None:
        self._controls.toggle_bypass()

    def _toggle_mask(self) -> None:
        self.show_mask = not self.show_mask

    def _toggle_magnifier(self) -> None:
        self.magnify = not self.magnify

    def _toggle_layout(self) -> None:
        self.layout = LAYOUTS[(LAYOUTS.index(self.layout) + 1) % len(LAYOUTS)]
        self.split = 0.5


def display_problem(environ: Mapping[str, str] | None = None, platform: str = sys.platform) -> str:
    """Why no window can be opened here, or ``""`` if one probably can.

    On Linux OpenCV's Qt backend aborts the whole process when it cannot reach the X
    server, so the server is probed first with a plain socket connect.
    """
    if not platform.startswith("linux"):
        return ""
    env = os.environ if environ is None else environ
    display = env.get("DISPLAY", "")
    if not display:
        return "no display ($DISPLAY is not set); use a file: or virtualcam output instead"
    if not _x_server_reachable(display):
        return f"the X display {display!r} does not answer; is $DISPLAY right?"
    return ""


def _x_server_reachable(display: str, timeout_s: float = 1.0) -> bool:
    """Whether something accepts connections where the X display ``[host]:N[.S]`` lives."""
    host, _, rest = display.rpartition(":")
    number = rest.partition(".")[0]
    if not number.isdigit():
        return False
    if host in ("", "unix"):
        path = f"/tmp/.X11-unix/X{number}"
        abstract = "\0" + path  # Linux also listens on an abstract socket of that name
        return _connects(path, timeout_s) or _connects(abstract, timeout_s)
    try:
        socket.create_connection((host, 6000 + int(number)), timeout_s).close()
    except OSError:
        return False
    return True


def _connects(unix_path: str, timeout_s: float) -> bool:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout_s)
            sock.connect(unix_path)
    except OSError:
        return False
    return True


def _one_line(exc: BaseException) -> str:
    """``str(exc)`` folded onto one line."""
    return "; ".join(part.strip() for part in str(exc).splitlines() if part.strip()) or repr(exc)
