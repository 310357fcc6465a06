"""An SR engine that hands MJPEG frames to the model's MJPEG variant.

One small net has to serve clean, noisy, soft and MJPEG frames alike, and what one
degradation gains another loses (BENCHMARKS.md, Quality). MJPEG is the one degradation
the estimator reads without doubt: the JPEG level is 0.00 on every non-JPEG validation
frame and 0.5 at quality 75 (``localsr_cam.process.estimate``, the DCT lattice). So
``fast`` has a variant of the same size, ``fast-jpeg``, trained on MJPEG frames only,
and :class:`MjpegRoutedEngine` runs it on the calls whose JPEG level says MJPEG: the
same arithmetic a frame, one of two nets.

The levels the pipeline passes are the estimator's, smoothed over time, so a camera's
stream stays on one net; the choice is made per call, with no state, so a call's output
depends on its inputs only. It reads the levels' host copy where the pipeline passes one
(``levels_host``), so a CUDA run makes no device round trip for it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from localsr_cam.models.chroma import GATE_FROM, JPEG_LEVEL
from localsr_cam.runtime.base import HOST_LEVELS_NAME, LEVELS_NAME, Engine, PreparesShapes

if TYPE_CHECKING:
    import torch

ROUTE_FROM = GATE_FROM
"""JPEG level (IJG scale / 100) from which a call goes to the MJPEG variant: quality 90
and heavier, where the JPEG chroma step switches on too. Lighter JPEG (q 91–95) changes
a frame too little for the estimator to read reliably; the plain net, trained with
MJPEG among its degradations, keeps it."""


class MjpegRoutedEngine:
    """Two opened SR engines of one backend behind one: ``plain`` for calls whose
    ``levels`` (N×K float32) read no MJPEG, ``mjpeg`` for those whose largest JPEG level
    is at least :data:`ROUTE_FROM`. Calls without ``levels`` are clean frames: ``plain``.
    Names, backend, device and precision are ``plain``'s; :meth:`close` closes both."""

    def __init__(self, plain: Engine, mjpeg: Engine) -> None:
        self.plain = plain
        self.mjpeg = mjpeg
        self.name = plain.name
        self.backend = plain.backend
        self.device = plain.device
        self.precision = str(getattr(plain, "precision", ""))

    def engine_for(self, levels: torch.Tensor | None) -> Engine:
        """The engine a call with these levels runs on."""
        if levels is None or levels.shape[-1] <= JPEG_LEVEL:
            return self.plain
        return self.mjpeg if float(levels[..., JPEG_LEVEL].max()) >= ROUTE_FROM else self.plain

    def __call__(self, inputs: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Chosen by the host copy of the levels where the caller gives one (reading a
        CUDA tensor would wait for the device), else by ``levels``."""
        levels = inputs.get(HOST_LEVELS_NAME)
        if levels is None:
            levels = inputs.get(LEVELS_NAME)
        return self.engine_for(levels)(inputs)

    def prepare_shapes(self, shapes: Sequence[tuple[int, ...]]) -> None:
        """Pass the shapes on to each engine that prepares them (CUDA graphs)."""
        for engine in (self.plain, self.mjpeg):
            if isinstance(engine, PreparesShapes):
                engine.prepare_shapes(shapes)

    def close(self) -> None:
        try:
            self.plain.close()
        finally:
            self.mjpeg.close()
