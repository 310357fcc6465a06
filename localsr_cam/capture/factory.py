"""Which source a ``--source`` value names: built here, opened by the capture thread."""

from __future__ import annotations

import sys
from pathlib import Path

from localsr_cam.capture.call import CallSource
from localsr_cam.capture.camera import CameraSource
from localsr_cam.capture.devices import default_camera
from localsr_cam.capture.room import RoomSource
from localsr_cam.capture.sources import (
    DEFAULT_SIZE,
    ImageFolderSource,
    Source,
    SyntheticSource,
    VideoSource,
)
from localsr_cam.config import CaptureConfig
from localsr_cam.errors import SourceError


def camera_present(index: int | str = 0) -> bool:
    """Whether a camera with this index or device path plausibly exists (cheap; opens
    nothing on Linux)."""
    if sys.platform.startswith("linux"):
        return Path(index if isinstance(index, str) else f"/dev/video{index}").exists()
    return True


def make_source(config: CaptureConfig) -> Source:
    """Build (not open) the source a ``--source`` value names."""
    spec = config.source
    size = config.size
    if spec == "auto":
        spec = default_camera() or "synthetic"
    if spec == "synthetic":
        return SyntheticSource(size or DEFAULT_SIZE, config.fps)
    if spec == "synthetic:room":
        return RoomSource(size or DEFAULT_SIZE, config.fps)
    if spec == "synthetic:call":
        return CallSource(size or DEFAULT_SIZE, config.fps)
    if spec.isdigit() or spec.startswith("/dev/video"):
        device: int | str = int(spec) if spec.isdigit() else spec
        if not camera_present(device):
            device_path = spec if isinstance(device, str) else f"/dev/video{device}"
            raise SourceError(f"no camera {spec} here ({device_path} does not exist); "
                              "`localsr-cam devices` lists the cameras")
        return CameraSource(device, size, config.fps)
    from localsr_cam.capture.images import is_image_file

    path = Path(spec)
    if path.is_dir() or is_image_file(path):
        return ImageFolderSource(path, size, config.fps, config.loop)
    if path.is_file():
        return VideoSource(path, size, config.loop)
    raise SourceError(f"source {spec!r} is not a camera index, /dev/video path, video file, "
                      "image folder, 'synthetic', 'synthetic:room' or 'synthetic:call' "
                      "(file not found)")
