"""``dir:FOLDER``: one lossless PNG per frame, for photos in, photos out.

Each frame is written at its own size (2× the image it came from, nothing stretched or
padded), named after the input image (``<stem>.png``) when it came from one, else
``frame_000123.png`` by its index. Each PNG is written to a temporary name and renamed,
so an interrupted run never leaves half a file under a real name; a write that fails
(a full disk) removes its temporary file.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path

import cv2
import numpy as np

from localsr_cam.errors import SinkError
from localsr_cam.frames import Controls, HudStats, ProcessedFrame

log = logging.getLogger(__name__)

PNG_COMPRESSION = 3
"""zlib level: 3 writes a 1280×720 frame in a few ms at nearly level 9's size."""


def output_name(frame: ProcessedFrame, taken: Mapping[str, str]) -> str:
    """The PNG name for ``frame``: its input image's stem, else its index. ``taken``
    maps the names used so far to the input they were written for: the same input
    (a looping folder's next pass) gets its name again, another input with the same
    stem (``a.jpg`` and ``a.png``) gets its suffix added."""
    source_name = frame.source.name
    if not source_name:
        return f"frame_{frame.source.index:06d}.png"
    stem, suffix = Path(source_name).stem, Path(source_name).suffix.lstrip(".")
    for name in (f"{stem}.png", f"{stem}_{suffix}.png" if suffix else ""):
        if name and taken.get(name, source_name) == source_name:
            return name
    return f"{stem}_{suffix}_{frame.source.index}.png"


def _discard(path: Path) -> None:
    """Remove the half-written ``path`` of a failed write, if it is there (a failure to
    remove it is only logged: the write's own error is the one to report)."""
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:
        log.warning("could not remove the partial file %s: %s", path, exc.strerror or exc)


class ImageDirSink:
    """Writes every frame as a PNG into ``folder`` (created when missing).

    ``any_size``: frames keep their own size (the pipeline does not fit them into one).
    ``frames_written`` counts the writes, :attr:`files_written` the files (fewer when a
    looping folder writes an image again); ``path`` is the folder (checked against the
    input and other outputs before a run).
    """

    any_size = True

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.path = Path(folder)
        self.name = f"dir:{self.path}"
        self.frames_written = 0
        self._taken: dict[str, str] = {}
        self._open = False

    @property
    def files_written(self) -> int:
        """The PNG files this run wrote (each counted once)."""
        return len(self._taken)

    def written(self) -> str:
        """What was written, for the run's summary: "1 image written to out", "3 images …"."""
        count = self.files_written
        return f"{count} image{'' if count == 1 else 's'} written to {self.path}"

    def check(self, size: tuple[int, int]) -> None:
        """Create the folder, or raise :class:`SinkError` saying why it cannot be."""
        if self.path.exists() and not self.path.is_dir():
            raise SinkError(f"output {self.name}: {self.path} exists and is not a folder")
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SinkError(f"cannot create output folder {self.path}: "
                            f"{exc.strerror or exc}") from None
        if not os.access(self.path, os.W_OK):
            raise SinkError(f"cannot write into output folder {self.path}")

    def open(self, size: tuple[int, int], fps: float, controls: Controls) -> None:
        self.check(size)
        self.frames_written = 0
        self._taken = {}
        self._open = True

    def write(self, frame: ProcessedFrame, hud: HudStats) -> None:
        if not self._open:
            raise RuntimeError(f"{self.name}: write() before open() or after close()")
        image = frame.image
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"{self.name}: expected uint8 H×W×3 BGR frames, got "
                             f"{image.dtype} {image.shape}")
        name = output_name(frame, self._taken)
        ok, data = cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, PNG_COMPRESSION])
        if not ok:
            raise SinkError(f"{self.name}: could not encode {name} as PNG")
        target = self.path / name
        partial = self.path / f".{name}.partial"
        try:
            partial.write_bytes(data.tobytes())
            os.replace(partial, target)
        except OSError as exc:
            _discard(partial)
            raise SinkError(f"stopped writing into {self.path} after {self.frames_written} "
                            f"images: {exc.strerror or exc}") from None
        self._taken[name] = frame.source.name
        self.frames_written += 1

    def close(self) -> None:
        if self._open:
            self._open = False
            log.info("%s: %s", self.name, self.written())
