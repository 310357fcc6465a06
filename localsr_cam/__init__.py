"""localsr_cam: localized super-resolution for webcams.

Finds the person in each frame, super-resolves only that region with a small U-Net,
blends it over a cheaply upscaled background and sends the frames to a virtual camera,
a preview window or a file. Importing the package is cheap: torch, OpenCV, ONNX Runtime
and friends are imported by the modules that need them.
"""

from __future__ import annotations

from localsr_cam.errors import (
    BackendUnavailableError,
    ConfigError,
    LocalSRError,
    ModelError,
    SinkError,
    SourceError,
)

__version__ = "0.1.0"

__all__ = [
    "BackendUnavailableError",
    "ConfigError",
    "LocalSRError",
    "ModelError",
    "SinkError",
    "SourceError",
    "__version__",
]
