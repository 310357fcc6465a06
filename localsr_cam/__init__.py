"""localsr_cam: localized super-resolution for webcams.

Finds the person in each frame, super-resolves only that region with a small U-Net,
blends it over a cheaply upscaled background and sends the frames to a virtual camera,
a preview window or a file. Importing the package is cheap: torch, OpenCV, ONNX Runtime
and friends are imported by the modules that need them, and the public names below that
live in such modules are loaded on first use.

    from localsr_cam import FrameProcessor, PipelineConfig
    with FrameProcessor(PipelineConfig()) as processor:
        processor.prepare((width, height))    # once per frame size
        out = processor.process(captured)     # uint8 H×W×3 BGR in, 2H×2W×3 out
"""

from __future__ import annotations

import importlib
from typing import Any

from localsr_cam.errors import (
    BackendUnavailableError,
    ConfigError,
    LocalSRError,
    ModelError,
    SinkError,
    SourceError,
)

__version__ = "0.1.0"

_LAZY = {
    "PipelineConfig": "localsr_cam.config",
    "CapturedFrame": "localsr_cam.frames",
    "ProcessedFrame": "localsr_cam.frames",
    "FrameProcessor": "localsr_cam.process.processor",
    "Pipeline": "localsr_cam.pipeline.threads",
    "main": "localsr_cam.cli.main",
}

__all__ = [
    "BackendUnavailableError",
    "CapturedFrame",
    "ConfigError",
    "FrameProcessor",
    "LocalSRError",
    "ModelError",
    "Pipeline",
    "PipelineConfig",
    "ProcessedFrame",
    "SinkError",
    "SourceError",
    "__version__",
    "main",
]


def __getattr__(name: str) -> Any:
    """Load the heavier public names on first use (PEP 562)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'localsr_cam' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
