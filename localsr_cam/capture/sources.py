"""Frame sources and the capture thread.

A :class:`Source` yields ``uint8 H×W×3 BGR`` frames. :class:`CaptureThread` reads one
source as fast as it delivers (or paced at its fps) and hands each frame to a
:class:`LatestSlot`, which keeps only the newest: a slow consumer sees the freshest frame,
never a backlog.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

import numpy as np

from localsr_cam.errors import SourceError
from localsr_cam.frames import CapturedFrame
from localsr_cam.imaging import fit_inside, fit_size

log = logging.getLogger(__name__)

T = TypeVar("T")
DEFAULT_SIZE = (640, 360)


class SourceLostError(SourceError):
    """A live source stopped delivering (unplugged, taken by another app); may come back."""


class LatestSlot(Generic[T]):
    """A one-item mailbox between two threads: ``put`` replaces, ``get`` takes the newest.

    Nothing queues: an item not taken before the next ``put`` is dropped and counted in
    ``dropped``. ``close()`` wakes every waiting ``get``.
    """

    def __init__(self) -> None:
        self._item: T | None = None
        self._cond = threading.Condition()
        self._closed = False
        self.dropped = 0

    def put(self, item: T) -> None:
        with self._cond:
            if self._item is not None:
                self.dropped += 1
            self._item = item
            self._cond.notify_all()

    def get(self, timeout: float | None = None) -> T | None:
        """Take the newest item, waiting up to ``timeout`` s; ``None`` on timeout or close."""
        with self._cond:
            if self._item is None and not self._closed:
                self._cond.wait_for(lambda: self._item is not None or self._closed, timeout)
            item, self._item = self._item, None
            if item is not None:
                self._cond.notify_all()  # wakes a wait_taken
            return item

    def wait_taken(self, timeout: float | None = None) -> bool:
        """Wait until the waiting item (if any) is taken or the slot closes."""
        with self._cond:
            return self._cond.wait_for(lambda: self._item is None or self._closed, timeout)

    @property
    def has_item(self) -> bool:
        """Whether an item is waiting to be taken."""
        return self._item is not None

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed


def wait_until_taken(slot: LatestSlot[Any], stop: threading.Event) -> bool:
    """Block until ``slot`` is empty (True) or ``stop`` is set / the slot closes (False)."""
    while not stop.is_set():
        if slot.wait_taken(0.1):
            return not slot.closed
    return False


class Source(Protocol):
    """Something that yields frames. ``open`` acquires it, ``close`` (safe twice) frees it.

    After ``open``: ``size`` is the (width, height) of every frame ``read`` returns,
    ``fps`` the nominal rate, ``live`` True for a camera (never paced by us).
    ``read`` returns ``uint8 H×W×3 BGR`` owned by the caller, or ``None`` at the end of
    the stream; a camera that stops delivering raises :class:`SourceLostError`.
    """

    name: str
    size: tuple[int, int]
    fps: float
    live: bool

    def open(self) -> None: ...

    def read(self) -> np.ndarray | None: ...

    def close(self) -> None: ...


class HeldFrame:
    """The frame a source reads in ``open()`` to learn its size, handed out again by the
    first ``read()`` so no frame is lost. ``image``: uint8 H×W×3 BGR or ``None``."""

    def __init__(self) -> None:
        self.image: np.ndarray | None = None

    def hold(self, image: np.ndarray) -> tuple[int, int]:
        """Keep ``image``; returns its (width, height)."""
        self.image = image
        return image.shape[1], image.shape[0]

    def take(self) -> np.ndarray | None:
        """The held frame once, then ``None``."""
        image, self.image = self.image, None
        return image


def to_bgr8(image: np.ndarray, where: str) -> np.ndarray:
    """Convert grayscale, alpha, 16-bit and float frames to ``uint8 H×W×3 BGR``.

    The same rules as still images (:func:`localsr_cam.capture.images.to_bgr_uint8`: 16-bit
    rounded, alpha composited on black); anything else is a :class:`SourceError`
    naming ``where``.
    """
    from localsr_cam.capture.images import to_bgr_uint8

    return to_bgr_uint8(image, where)


class SyntheticSource:
    """A deterministic moving portrait clip, built from real photographs.

    The person is scikit-image's *astronaut* photo (a real portrait), softly cut out and
    moved with a gentle pan, zoom and head-like sway over a backdrop made from its
    *camera* photo. Frame ``i`` depends only on ``i`` and the size, so runs repeat.
    ``length`` frames make one clip; it starts again at its end when ``loop``, else the
    stream ends there.
    """

    live = False

    def __init__(self, size: tuple[int, int] = DEFAULT_SIZE, fps: float = 30.0,
                 length: int = 300, loop: bool = True) -> None:
        self.name = "synthetic"
        self.size = size
        self.fps = fps
        self.length = length
        self.loop = loop
        self._index = 0
        self._backdrop: np.ndarray | None = None
        self._person: np.ndarray | None = None
        self._alpha: np.ndarray | None = None

    def open(self) -> None:
        import cv2
        from skimage import data

        width, height = self.size
        # the right part of *camera* (field, buildings, sky): the cameraman stays out,
        # so the clip holds one person
        backdrop = cv2.cvtColor(data.camera()[60:400, 300:512], cv2.COLOR_GRAY2BGR)
        backdrop = cv2.resize(backdrop, (width, height), interpolation=cv2.INTER_AREA)
        # a warm tint and a little blur so the backdrop reads as a room, not a person
        tint = np.array([0.85, 0.95, 1.05], dtype=np.float32)
        backdrop = np.clip(backdrop.astype(np.float32) * tint, 0, 255).astype(np.uint8)
        self._backdrop = cv2.GaussianBlur(backdrop, (0, 0), max(1.0, height / 240))
        side = max(2, round(height * 0.95))
        person = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
        self._person = cv2.resize(person, (side, side), interpolation=cv2.INTER_AREA)
        yy, xx = np.mgrid[0:side, 0:side].astype(np.float32) / side
        # an ellipse around head and shoulders, feathered
        ellipse = ((xx - 0.5) / 0.42) ** 2 + ((yy - 0.62) / 0.55) ** 2
        self._alpha = np.clip((1.15 - ellipse) / 0.3, 0.0, 1.0).astype(np.float32)
        self._index = 0

    def frame(self, index: int) -> np.ndarray:
        """Frame ``index`` of the clip: uint8 H×W×3 BGR, new array."""
        return self.composite(self.placement(index))

    def placement(self, index: int) -> np.ndarray:
        """2×3 float64 affine map from the person square to the frame for frame
        ``index``: the gentle pan, zoom and sway."""
        import cv2

        assert self._person is not None
        width, height = self.size
        phase = 2 * math.pi * (index % self.length) / self.length
        side = self._person.shape[0]
        scale = 1.0 + 0.04 * math.sin(phase)
        angle = 3.0 * math.sin(2 * phase)
        centre_x = width * (0.5 + 0.08 * math.sin(phase))
        centre_y = height * (0.5 + 0.02 * math.sin(3 * phase)) + side * 0.05
        matrix = cv2.getRotationMatrix2D((side / 2, side / 2), angle, scale)
        matrix[0, 2] += centre_x - side / 2
        matrix[1, 2] += centre_y - side / 2
        return matrix

    def composite(self, placement: np.ndarray) -> np.ndarray:
        """The person put over the backdrop by the 2×3 affine ``placement``: uint8
        H×W×3 BGR, new array."""
        import cv2

        assert self._backdrop is not None and self._person is not None
        assert self._alpha is not None
        width, height = self.size
        side = self._person.shape[0]
        matrix = placement.copy()
        # warp and blend only where the person lands (about half the frame): the clip
        # is a camera stand-in and should cost the pipeline little CPU
        corners = matrix @ np.array([[0, side, 0, side], [0, 0, side, side], [1, 1, 1, 1]],
                                    dtype=np.float64)
        x0 = max(0, int(np.floor(corners[0].min())) - 1)
        y0 = max(0, int(np.floor(corners[1].min())) - 1)
        x1 = min(width, int(np.ceil(corners[0].max())) + 2)
        y1 = min(height, int(np.ceil(corners[1].max())) + 2)
        image = self._backdrop.copy()
        if x1 <= x0 or y1 <= y0:
            return image
        matrix[0, 2] -= x0
        matrix[1, 2] -= y0
        roi = (x1 - x0, y1 - y0)
        person = cv2.warpAffine(self._person, matrix, roi, flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_CONSTANT)
        alpha = cv2.warpAffine(self._alpha, matrix, roi, flags=cv2.INTER_LINEAR,
                               borderValue=0.0)
        image[y0:y1, x0:x1] = cv2.blendLinear(image[y0:y1, x0:x1], person, 1.0 - alpha, alpha)
        return image

    def read(self) -> np.ndarray | None:
        if self._index >= self.length and not self.loop:
            return None
        image = self.frame(self._index)
        self._index += 1
        return image

    def close(self) -> None:
        self._backdrop = self._person = self._alpha = None


class VideoSource:
    """A video file read with OpenCV. Ends at the last frame unless ``loop``.

    A file that ends early or is truncated mid-stream simply ends the stream.
    """

    live = False

    def __init__(self, path: Path, size: tuple[int, int] | None = None,
                 loop: bool = False) -> None:
        self.name = str(path)
        self.path = path
        self.loop = loop
        self._requested = size
        self.size: tuple[int, int] = size or (0, 0)
        self.fps = 30.0
        self._capture: object | None = None
        self._first = HeldFrame()

    def open(self) -> None:
        import cv2

        if not self.path.is_file():
            raise SourceError(f"video file not found: {self.path}")
        capture = cv2.VideoCapture(str(self.path))
        ok, first = capture.read() if capture.isOpened() else (False, None)
        if not ok or first is None:
            capture.release()
            raise SourceError(f"{self.path} is not a readable video")
        try:
            self.size = self._first.hold(fit_size(to_bgr8(first, self.name), self._requested))
        except BaseException:
            capture.release()
            raise
        self._capture = capture
        fps = capture.get(cv2.CAP_PROP_FPS)
        self.fps = fps if 0 < fps < 1000 else 30.0

    def read(self) -> np.ndarray | None:
        import cv2

        held = self._first.take()
        if held is not None:
            return held
        capture = self._capture
        if capture is None:
            return None
        assert isinstance(capture, cv2.VideoCapture)
        ok, image = capture.read()
        if not ok and self.loop:
            capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, image = capture.read()
        if not ok or image is None:
            return None
        return fit_size(to_bgr8(image, self.name), self.size)

    def close(self) -> None:
        capture, self._capture = self._capture, None
        if capture is not None:
            capture.release()  # type: ignore[attr-defined]


class ImageFolderSource:
    """The images of a folder, in name order, each one frame (optionally looping); or
    one image file, read as a folder of one (``single``).

    Each image is its own scene (``scenes``): it keeps its own size and aspect ratio
    (with ``size``, it is scaled to fit inside that size, never stretched), and the
    processor forgets the previous photo's mask before it. ``size`` is the first
    image's; ``current_name`` the file name of the frame ``read`` returned last.

    A file that cannot be read as an image (not an image, broken, smaller than 16×16)
    is skipped with a warning naming it, and listed in ``skipped`` (one line each): one
    stray file does not cost the rest of the folder. Only a folder where no image can be
    read is an error.
    """

    live = False
    scenes = True

    def __init__(self, folder: Path, size: tuple[int, int] | None = None,
                 fps: float = 30.0, loop: bool = False) -> None:
        self.name = str(folder)
        self.folder = folder
        self.fps = fps
        self.loop = loop
        self._requested = size
        self.size: tuple[int, int] = size or (0, 0)
        self.current_name = ""
        self.skipped: list[str] = []
        self._paths: list[Path] = []
        self._next = 0
        self._first = HeldFrame()

    @property
    def count(self) -> int:
        """How many images the folder holds (after ``open``)."""
        return len(self._paths)

    @property
    def single(self) -> bool:
        """Whether the source is one image file rather than a folder."""
        from localsr_cam.capture.images import is_image_file

        return is_image_file(self.folder)

    def open(self) -> None:
        from localsr_cam.capture.images import image_files

        self._paths = image_files(self.folder)
        listed = len(self._paths)
        self.skipped = []
        self._next = 0
        first = self._next_image()
        if first is None:
            raise SourceError(f"none of the {listed} images in {self.folder} can be read "
                              f"({self.skipped[0]})")
        self.size = self._first.hold(first)
        self.current_name = ""

    def _next_image(self) -> np.ndarray | None:
        """The image at ``_next`` or the first readable one after it (advancing
        ``_next`` past it); unreadable files are dropped from the list on the way.
        ``None`` at the end of the list."""
        from localsr_cam.capture.images import load_image

        while self._next < len(self._paths):
            path = self._paths[self._next]
            try:
                image = fit_inside(load_image(path), self._requested)
            except SourceError as exc:
                log.warning("%s; skipped", exc)
                self.skipped.append(str(exc))
                del self._paths[self._next]
                continue
            self._next += 1
            return image
        return None

    def read(self) -> np.ndarray | None:
        held = self._first.take()
        if held is not None:
            self.current_name = self._paths[0].name
            return held
        image = self._next_image()
        if image is None and self.loop and self._paths:
            self._next = 0
            image = self._next_image()
        if image is not None:
            self.current_name = self._paths[self._next - 1].name
        return image

    def close(self) -> None:
        self._paths = []



class CaptureThread(threading.Thread):
    """Reads a source and puts every frame into ``slot``, newest wins.

    Non-live sources are paced at ``fps`` when ``paced`` (as a camera would deliver),
    otherwise read as fast as the consumer takes them: the next frame is read while the
    last is processed, and none is dropped (benchmarks, file conversion). ``finished``
    is set when the stream ends;
    ``error`` holds the exception that stopped it, if any. ``lost`` is set while a live
    source is unavailable and being reconnected.
    """

    def __init__(self, source: Source, slot: LatestSlot[CapturedFrame],
                 stop: threading.Event, paced: bool = True) -> None:
        super().__init__(name="capture", daemon=True)
        self.source = source
        self.slot = slot
        self.stop_event = stop
        self.paced = paced and not source.live
        self.lossless = not paced and not source.live
        self.finished = threading.Event()
        self.lost = threading.Event()
        self.error: BaseException | None = None
        self.frames = 0

    def run(self) -> None:
        period = 1.0 / self.source.fps
        next_due = time.perf_counter()
        try:
            while not self.stop_event.is_set():
                if self.paced:
                    delay = next_due - time.perf_counter()
                    if delay > 0 and self.stop_event.wait(delay):
                        break
                    next_due = max(next_due + period, time.perf_counter() - period)
                elif self.lossless and not wait_until_taken(self.slot, self.stop_event):
                    break  # read on demand: the next frame once the last one was taken
                started = time.perf_counter()
                image = self._read()
                if image is None:
                    break
                now = time.perf_counter()
                self.slot.put(CapturedFrame(
                    image, self.frames, now, (now - started) * 1e3,
                    name=getattr(self.source, "current_name", ""),
                    new_scene=bool(getattr(self.source, "scenes", False))))
                self.frames += 1
        except BaseException as exc:  # handed to the main thread, which reports it
            self.error = exc
        finally:
            self.finished.set()

    def _read(self) -> np.ndarray | None:
        """One frame, reconnecting a lost live source until it returns or we stop."""
        while not self.stop_event.is_set():
            try:
                image = self.source.read()
            except SourceLostError as exc:
                if not self.lost.is_set():
                    log.warning("%s", exc)
                    self.lost.set()
                reconnect = getattr(self.source, "reconnect", None)
                if reconnect is None:
                    raise
                reconnect(self.stop_event)
                continue
            if self.lost.is_set():
                log.info("%s is back", self.source.name)
                self.lost.clear()
            return image
        return None
