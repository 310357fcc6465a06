"""A webcam read with OpenCV, which survives being unplugged.

When reads fail (unplugged, taken by another app, a driver hiccup) ``read`` raises
:class:`~localsr_cam.capture.sources.SourceLostError`; the capture thread then calls
``reconnect``, which reopens the device with capped exponential backoff until it
delivers again or the run stops.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np

from localsr_cam.capture.sources import HeldFrame, SourceLostError, to_bgr8
from localsr_cam.errors import SourceError
from localsr_cam.imaging import fit_size

log = logging.getLogger(__name__)

FAILED_READS_BEFORE_LOST = 3
BACKOFF_FIRST_S = 0.1
BACKOFF_MAX_S = 1.0


@contextlib.contextmanager
def quiet_opencv() -> Iterator[None]:
    """Silence OpenCV's own logging inside the block: a camera that is missing or busy
    makes it print several lines of its internals on stderr, before our one line."""
    import cv2

    logging_api = getattr(getattr(cv2, "utils", None), "logging", None)
    if logging_api is None:
        yield
        return
    previous = logging_api.getLogLevel()
    logging_api.setLogLevel(logging_api.LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        logging_api.setLogLevel(previous)


class CameraSource:
    """An OpenCV camera by index (``0``) or device path (``/dev/video0``).

    Asks for ``size`` and ``fps`` and for MJPG (most USB cameras only reach 30 fps at
    720p compressed). Frames that come back at another size are resized to ``size``.
    """

    live = True

    def __init__(self, device: int | str, size: tuple[int, int] | None = None,
                 fps: float = 30.0, request: tuple[int, int] = (640, 360)) -> None:
        self.device = device
        self.name = f"camera {device}"
        self._explicit = size
        self._request = size or request
        self.size = self._request
        self.fps = fps
        self._capture: Any = None
        self._first = HeldFrame()
        self._failures = 0
        self._delay = BACKOFF_FIRST_S
        self.reconnects = 0

    def _open_capture(self) -> Any:
        import cv2

        with quiet_opencv():
            if sys.platform.startswith("linux"):  # only V4L2: no FFmpeg/obsensor fallbacks
                capture = cv2.VideoCapture(self.device, cv2.CAP_V4L2)
            else:
                capture = cv2.VideoCapture(self.device)
            opened = capture.isOpened()
        if not opened:
            capture.release()
            return None
        capture.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter.fourcc(*"MJPG"))
        capture.set(cv2.CAP_PROP_FRAME_WIDTH, self._request[0])
        capture.set(cv2.CAP_PROP_FRAME_HEIGHT, self._request[1])
        capture.set(cv2.CAP_PROP_FPS, self.fps)
        return capture

    def open(self) -> None:
        """Open the device. Without an explicit ``size`` the camera's own frame size is
        kept (a 4:3 camera that ignores the 640×360 request is not squashed)."""
        self._capture = self._open_capture()
        if self._capture is None:
            raise SourceError(f"cannot open {self.name}: no such camera, or it is in use "
                              "by another program")
        self._failures = 0
        if self._explicit is None:
            ok, first = self._capture.read()
            if ok and first is not None:
                self.size = self._first.hold(to_bgr8(first, self.name))

    def read(self) -> np.ndarray | None:
        held = self._first.take()
        if held is not None:
            return held
        capture = self._capture
        ok, image = capture.read() if capture is not None else (False, None)
        if not ok or image is None:
            self._failures += 1
            if self._failures >= FAILED_READS_BEFORE_LOST or capture is None:
                raise SourceLostError(f"{self.name} stopped delivering frames; reconnecting")
            return self.read()
        self._failures = 0
        self._delay = BACKOFF_FIRST_S  # delivering again: the next loss backs off afresh
        return fit_size(to_bgr8(image, self.name), self.size)

    def reconnect(self, stop: threading.Event) -> None:
        """Reopen the device until it opens or ``stop`` is set, waiting 0.1 s → 1 s
        (doubling) before each attempt. The back-off carries over to the next call until
        a frame is read again, so a camera that opens but delivers nothing (held by
        another program) is not reopened in a tight loop."""
        self._release()
        while not stop.wait(self._delay):
            self._delay = min(self._delay * 2, BACKOFF_MAX_S)
            capture = self._open_capture()
            if capture is not None:
                self._capture = capture
                self._failures = 0
                self.reconnects += 1
                return

    def _release(self) -> None:
        capture, self._capture = self._capture, None
        if capture is not None:
            capture.release()

    def close(self) -> None:
        self._release()
