"""The engine interface every backend implements, and the choice of backend.

An :class:`Engine` maps named torch tensors to named torch tensors. The names are fixed
per model kind, whatever the backend:

- segmenters (kind ``"segment"``): ``image`` (N×3×H×W float32 RGB in [0,1]) → ``mask``
  (N×1×H×W float32 in [0,1], already a probability);
- super-resolvers (kind ``"sr"``): ``image`` (N×3×h×w float32 RGB in [0,1], the
  low-resolution input) and ``levels`` (N×K float32, the frame's estimated degradation
  levels, :mod:`localsr_cam.process.estimate`) → ``sr`` (N×3×2h×2w float32 RGB, not
  clamped). A model trained without levels (an older, blind export) ignores ``levels``;
  a degradation-aware one given none reads zeros (a clean frame);
- the face detector (kind ``"detect"``): ``image`` (N×3×192×192 float32 RGB in [-1,1],
  N tiles) → ``regressors`` (N×2304×16) and ``scores`` (N×2304×1 logits), raw.

This module imports nothing heavy: torch only inside :func:`cuda_missing`, TensorRT only
inside :func:`tensorrt_problem`.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from localsr_cam.errors import BackendUnavailableError, ConfigError

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

INPUT_NAME = "image"
LEVELS_NAME = "levels"
"""The optional second input of SR engines: N×K float32 degradation levels."""
HOST_LEVELS_NAME = "levels_host"
"""The same levels as a float32 1×K CPU tensor, beside ``levels`` (which lives on the
engine's device): an engine that chooses a net by them (:mod:`localsr_cam.runtime.routed`)
reads them here, so a CUDA run does not wait for the device to read a number. Engines
that run a net ignore it."""
SR_NAME = "sr"
"""An SR engine's output: N×3×2h×2w float32 RGB (0–1 scale, not clamped)."""
SUBPIXEL_NAME = "sr_planes"
"""What the CPU engine gives instead of ``sr`` for a graph that ends in a pixel shuffle
(:func:`localsr_cam.runtime.graph_edits.with_subpixel_output`): the same numbers before
the shuffle, N×12×h×w float32, channel ``c·4 + 2a + b`` = colour ``c`` of output pixel
``(2i+a, 2j+b)``. :func:`localsr_cam.process.ops.sr_to_bgr8` reads either."""
SR_OUTPUTS = (SR_NAME, SUBPIXEL_NAME)
"""An SR engine returns one of these."""
OUTPUT_NAMES: dict[str, tuple[str, ...]] = {"segment": ("mask",), "sr": (SR_NAME,),
                                             "detect": ("regressors", "scores")}
"""The output tensors' names per model kind, in the order the module returns them (a
tensor, or a tuple for several outputs)."""

BACKENDS = ("auto", "cpu", "torch", "cuda", "tensorrt")
"""``cpu``: ONNX Runtime on the CPU; ``torch``: PyTorch on the CPU; ``cuda``: PyTorch on
a CUDA GPU; ``tensorrt``: TensorRT engines on a CUDA GPU; ``auto``: the best available."""


class Engine(Protocol):
    """A loaded model on one backend. Call it with named tensors, get named tensors.

    Inputs must live on ``device``; outputs are new tensors owned by the caller unless a
    backend documents otherwise. ``close()`` releases sessions and device memory and is
    safe to call twice.
    """

    name: str
    backend: str
    device: torch.device

    def __call__(self, inputs: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]: ...

    def close(self) -> None: ...


@runtime_checkable
class PreparesShapes(Protocol):
    """An engine that can get ready for a known set of input shapes before the first
    frame (the PyTorch CUDA engine captures its graphs then)."""

    def prepare_shapes(self, shapes: Sequence[tuple[int, ...]]) -> None: ...


TENSORRT_INSTALL_HINT = ("install it with `pip install tensorrt` (NVIDIA's wheels, CUDA 12 "
                         "or 13) on a machine with an NVIDIA GPU and driver")


def tensorrt_problem() -> str | None:
    """Why TensorRT itself cannot be used here (one line), or ``None`` when it can.

    It imports TensorRT (only when asked: ``auto`` and ``tensorrt`` backends), so a broken
    install or the bare ``tensorrt`` folder of the type stubs counts as missing.
    """
    try:
        import tensorrt as trt
    except (ImportError, OSError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return f"TensorRT is not installed ({reason}); {TENSORRT_INSTALL_HINT}"
    if not hasattr(trt, "Builder"):
        return f"only TensorRT's type stubs are installed, not TensorRT; {TENSORRT_INSTALL_HINT}"
    return None


def tensorrt_missing() -> str | None:
    """Why the TensorRT backend cannot run here (TensorRT, then CUDA), or ``None``."""
    return tensorrt_problem() or cuda_missing()


def cuda_missing() -> str | None:
    """Why the CUDA backend cannot run here, or ``None`` when it can."""
    import torch

    if not torch.cuda.is_available():
        return "no CUDA GPU is available to PyTorch"
    return None


@functools.cache
def resolve_backend(requested: str) -> str:
    """The backend to use for ``requested``; ``auto`` tries tensorrt → cuda → cpu.

    An explicit backend that cannot run here raises :class:`BackendUnavailableError`
    with one line saying what is missing. The choice for ``auto`` is logged once.
    """
    checks = {"tensorrt": tensorrt_missing, "cuda": cuda_missing}
    if requested == "auto":
        reasons = []
        for candidate in ("tensorrt", "cuda"):
            missing = checks[candidate]()
            if missing is None:
                log.info("backend auto: using %s", candidate)
                return candidate
            reasons.append(f"{candidate}: {missing}")
        log.info("backend auto: using cpu (ONNX Runtime) because %s", "; ".join(reasons))
        return "cpu"
    if requested in checks:
        missing = checks[requested]()
        if missing is not None:
            raise BackendUnavailableError(f"backend {requested!r} is unavailable: {missing}")
    if requested not in BACKENDS:
        raise ConfigError(f"unknown backend {requested!r}; choose one of: {', '.join(BACKENDS)}")
    return requested
