"""Video files that survive a crash: H.264 in fragmented MP4 or Matroska, through PyAV.

A recording is written as it goes, so whatever stopped the writer (SIGKILL, a power
cut, a full disk) leaves a file that plays up to about the last second:

- ``.mp4``: fragmented MP4 (an empty ``moov`` up front, then one ``moof``+``mdat``
  fragment per keyframe interval). A plain MP4 keeps its index (``moov``) to the end
  and is unplayable without it.
- ``.mkv``: Matroska, written in clusters as it goes.
- ``.avi``: Motion JPEG in AVI (each frame a JPEG; big files, kept for old tools). Its
  index is written at the end, so a killed AVI needs a player that rebuilds it.

The codec is H.264 (``libx264``, which PyAV's wheels carry) for MP4 and Matroska, at a
constant quality (CRF) instead of a fixed bit rate; where a PyAV build lacks libx264,
MPEG-4 part 2 at a high bit rate is used, and said once in the log. Frame sizes are
checked against what the codec and decoders take before anything is written.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from localsr_cam.errors import ConfigError, SinkError
from localsr_cam.frames import Controls, HudStats, ProcessedFrame
from localsr_cam.paths import check_writable_file

log = logging.getLogger(__name__)

CONTAINERS = {".mp4": "mp4", ".mkv": "matroska", ".avi": "avi"}
"""File suffix → FFmpeg muxer."""
MUXER_OPTIONS = {
    # an empty moov first, a fragment at each keyframe; each packet reaches the file at once
    "mp4": {"movflags": "frag_keyframe+empty_moov+default_base_moof"},
    "matroska": {},
    "avi": {},
}
FORMAT_OPTIONS = {"flush_packets": "1"}
H264_OPTIONS = {"preset": "veryfast", "crf": "18"}
"""Constant quality: 720p talking heads come out at a few Mbit/s, sharp where SR worked."""
H264_MAX_PIXELS = 139_264 * 256
"""The largest frame of H.264's highest level (6.2): 139,264 macroblocks, 8192×4352."""
MPEG4_MAX_SIDE = 8191
"""MPEG-4 part 2 stores each side in 13 bits."""
MPEG4_BIT_RATE = 12_000_000


def choose_codec(suffix: str, available: frozenset[str] | set[str]) -> str:
    """The encoder for a file with this suffix: ``mjpeg`` for ``.avi``; ``libx264`` for
    ``.mp4``/``.mkv`` when the PyAV build has it, else ``mpeg4``."""
    if suffix == ".avi":
        return "mjpeg"
    return "libx264" if "libx264" in available else "mpeg4"


def size_problem(codec: str, size: tuple[int, int]) -> str:
    """Why frames of ``size`` = (width, height) cannot go into a ``codec`` video, or ``""``."""
    width, height = size
    if codec in ("libx264", "mpeg4") and (width % 2 or height % 2):
        return f"{width}x{height} has an odd side; these videos need even widths and heights"
    if codec == "libx264" and width * height > H264_MAX_PIXELS:
        return (f"{width}x{height} is larger than an H.264 video holds (at most "
                f"{H264_MAX_PIXELS / 1e6:.1f} megapixels, e.g. 8192x4320)")
    if codec == "mpeg4" and max(width, height) > MPEG4_MAX_SIDE:
        return (f"{width}x{height} is larger than an MPEG-4 video holds (at most "
                f"{MPEG4_MAX_SIDE} pixels a side)")
    return ""


class VideoFileSink:
    """Writes the output frames to a video file as they come (see the module notes).

    ``open`` checks the size against the codec (a :class:`SinkError` saying what works:
    ``--output WxH`` or a ``dir:`` output), the folder, and opens the container; each
    ``write`` encodes one uint8 H×W×3 BGR frame (read only) and hands its packets to
    the file; ``close`` flushes the encoder and finishes the file, and is safe twice.
    The free space on the file's disk is checked at ``open`` and every
    :attr:`SPACE_CHECK_EVERY` frames. A recording stopped by a failure keeps the file
    when frames are in it (it plays up to there) and removes it when none are.
    """

    SPACE_CHECK_EVERY = 30
    MIN_FREE_BYTES = 16 * 2**20

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.name = f"file:{self.path}"
        self.suffix = self.path.suffix.lower()
        if self.suffix not in CONTAINERS:
            raise ConfigError(f"cannot write video {str(self.path)!r}: the file name must "
                              "end in .mp4, .mkv or .avi")
        self.frames_written = 0
        self.codec = ""
        self._container: Any = None
        self._stream: Any = None
        self._size = (0, 0)

    def check(self, size: tuple[int, int]) -> None:
        """Raise :class:`SinkError` when frames of ``size`` cannot be written here (before
        a run loads its models); the message says what works instead."""
        import av

        self.codec = choose_codec(self.suffix, av.codecs_available)
        problem = size_problem(self.codec, size)
        if problem:
            raise SinkError(f"cannot write video {self.path}: {problem}; shrink it with "
                            "--output WxH, or write images with a dir:FOLDER output")
        check_writable_file(self.path, "video")

    def open(self, size: tuple[int, int], fps: float, controls: Controls) -> None:
        import av

        self.check(size)
        if self.codec == "mpeg4":
            log.warning("%s: this PyAV has no H.264 encoder; writing MPEG-4 part 2",
                        self.name)
        container_format = CONTAINERS[self.suffix]
        try:
            container = av.open(str(self.path), "w", format=container_format,
                                container_options={**MUXER_OPTIONS[container_format],
                                                   **FORMAT_OPTIONS})
        except (OSError, av.FFmpegError) as exc:
            raise SinkError(f"cannot write video {self.path}: {_reason(exc)}") from None
        try:
            self._stream = self._add_stream(container, size, fps)
        except BaseException:
            container.close()
            raise
        self._container, self._size, self.frames_written = container, size, 0
        self._check_free_space()

    def _add_stream(self, container: Any, size: tuple[int, int], fps: float) -> Any:
        from fractions import Fraction

        rate = Fraction(fps).limit_denominator(1001)
        stream = container.add_stream(self.codec, rate=rate)
        stream.width, stream.height = size
        if self.codec == "mjpeg":
            stream.pix_fmt = "yuvj420p"
            stream.options = {"q:v": "3"}
        else:
            stream.pix_fmt = "yuv420p"
            stream.gop_size = max(1, round(fps))  # a keyframe (a fragment) a second
            if self.codec == "libx264":
                stream.options = dict(H264_OPTIONS)
            else:
                stream.bit_rate = MPEG4_BIT_RATE
        return stream

    def write(self, frame: ProcessedFrame, hud: HudStats) -> None:
        import av

        if self._container is None:
            raise RuntimeError(f"{self.name}: write() before open() or after close()")
        image = frame.image
        if self.frames_written == 0:
            _check_frame(image, self._size, self.name)
        elif self.frames_written % self.SPACE_CHECK_EVERY == 0:
            self._check_free_space()
        try:
            video_frame = av.VideoFrame.from_ndarray(image, format="bgr24")
            for packet in self._stream.encode(video_frame):
                self._container.mux(packet)
        except (OSError, av.FFmpegError) as exc:
            raise self._stop(_reason(exc)) from None
        self.frames_written += 1

    def close(self) -> None:
        container, self._container = self._container, None
        if container is None:
            return
        try:
            for packet in self._stream.encode():  # the frames the encoder still holds
                container.mux(packet)
        except Exception as exc:  # finishing must not hide the file that exists
            log.warning("%s: flushing the encoder failed: %s", self.name, _reason(exc))
        finally:
            container.close()
            self._stream = None
        log.info("%s: %d frames written", self.name, self.frames_written)

    def _check_free_space(self) -> None:
        """Stop (:meth:`_stop`) when the file's disk has under :attr:`MIN_FREE_BYTES` free."""
        free = shutil.disk_usage(self.path.parent).free
        if free < self.MIN_FREE_BYTES:
            raise self._stop(f"only {free / 2**20:.1f} MiB free on its disk (at least "
                             f"{self.MIN_FREE_BYTES / 2**20:.0f} MiB needed)")

    def _stop(self, reason: str) -> SinkError:
        """Close the file after a failure and return the error to raise: a file without
        frames is removed (nothing of it would play), one with frames is kept."""
        self.close()
        if self.frames_written == 0:
            with contextlib.suppress(OSError):
                self.path.unlink(missing_ok=True)
        return SinkError(stop_message(self.path, self.frames_written, reason,
                                      self.path.is_file()))


def stop_message(path: Path, frames: int, reason: str, kept: bool) -> str:
    """The one line said when a recording stops early for ``reason``: with ``frames``
    written and the file ``kept``, that it plays up to there; with none, that nothing
    was written (there is no file)."""
    if frames == 0:
        return f"cannot write video {path}: {reason}; nothing was written"
    if not kept:
        return f"stopped writing {path} after {frames} frames: {reason}; no file is left"
    return (f"stopped writing {path} after {frames} frames: {reason}; the file up to "
            "here is playable")


def _check_frame(image: np.ndarray, size: tuple[int, int], sink: str) -> None:
    width, height = size
    if image.dtype != np.uint8 or image.shape != (height, width, 3):
        raise ValueError(f"{sink}: expected uint8 {height}×{width}×3 BGR frames, "
                         f"got {image.dtype} {'×'.join(map(str, image.shape))}")


def _reason(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    return " ".join(str(text).split()) or type(exc).__name__
