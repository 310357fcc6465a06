"""Process-wide PyTorch and OpenCV settings, changed only here.

torch's intra-op thread pool, cuDNN's autotuner, the TF32 switches and OpenCV's thread
pool are global to the process: whatever one engine or command sets, every other part of
the process gets too.
So no other module touches them; each change below is logged at debug level, and the
temporary ones hand back (or restore) what was there before.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

import cv2
import torch

log = logging.getLogger(__name__)


def set_threads(count: int) -> int:
    """Set torch's intra-op thread count to ``count`` (≥ 1); returns the previous count,
    for the caller to restore with another call."""
    previous = torch.get_num_threads()
    if count != previous:
        torch.set_num_threads(max(1, count))
        log.debug("torch threads: %d -> %d", previous, count)
    return previous


def set_opencv_threads(count: int) -> int:
    """Let each OpenCV call use ``count`` threads (≥ 1; 1 = the calling thread alone);
    returns the previous count, for the caller to restore with another call.

    OpenCV's pool workers spin (``sched_yield``) for a while after each parallel call:
    on the paced sample with the SR on its own worker, that spinning was 10–15 % of a
    core for a few resizes a frame taking 0.3–0.6 ms less.
    """
    previous = cv2.getNumThreads()
    if count != previous:
        cv2.setNumThreads(max(1, count))
        log.debug("OpenCV threads: %d -> %d", previous, count)
    return previous


def cap_threads(count: int) -> None:
    """Lower torch's thread count to ``count`` if it is higher; never raise it, so
    engines in one process do not fight over the pool (the smallest wish wins)."""
    if torch.get_num_threads() > count:
        set_threads(count)


@contextlib.contextmanager
def threads(count: int) -> Iterator[None]:
    """``count`` torch threads inside the block, the previous count after it."""
    previous = set_threads(count)
    try:
        yield
    finally:
        set_threads(previous)


def autotune_convolutions() -> None:
    """Let cuDNN time its convolution algorithms per input shape and keep the fastest.

    Worth it when few shapes occur (person boxes are bucketed); it stays on for the
    process, like every cuDNN setting.
    """
    if not torch.backends.cudnn.benchmark:
        torch.backends.cudnn.benchmark = True
        log.debug("cuDNN autotuning on")


@contextlib.contextmanager
def exact_float32() -> Iterator[None]:
    """TF32 off for convolutions and matmuls inside the block (an exact float32
    reference on Ampere and newer GPUs); the previous switches after it."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved
