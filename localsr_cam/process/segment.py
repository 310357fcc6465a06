"""The segment step: frame → person probability at the segmenter's resolution.

Segmenters with a fixed input (the registry's ``input_size``: the selfie models take
256×256 general, 144×256 landscape) get the frame letterboxed into it (scaled to fit,
centred, zero padding) and the probability map is cropped back to the frame's area.
Mask R-CNN takes the frame as it is.
"""

from __future__ import annotations

import dataclasses

import torch

from localsr_cam.process import ops
from localsr_cam.runtime.base import Engine, PreparesShapes
from localsr_cam.zoo.registry import model_spec

LANDSCAPE_ASPECT = 1.2
AUTO_SEGMENTERS = ["selfie", "selfie-landscape"]
"""What ``auto`` may pick (see :func:`choose_segmenter`)."""


def choose_segmenter(requested: str, frame_size: tuple[int, int]) -> str:
    """Resolve ``auto``: the landscape model for frames wider than 1.2:1, else general."""
    if requested != "auto":
        return requested
    width, height = frame_size
    return "selfie-landscape" if width > LANDSCAPE_ASPECT * height else "selfie"


@dataclasses.dataclass(frozen=True)
class Letterbox:
    """Where a frame sits inside a model input: scaled size and top-left offset (px)."""

    scaled: tuple[int, int]
    offset: tuple[int, int]
    model: tuple[int, int]

    @classmethod
    def fit(cls, frame: tuple[int, int], model: tuple[int, int]) -> Letterbox:
        scale = min(model[0] / frame[0], model[1] / frame[1])
        width = max(1, min(model[0], round(frame[0] * scale)))
        height = max(1, min(model[1], round(frame[1] * scale)))
        return cls((width, height), ((model[0] - width) // 2, (model[1] - height) // 2), model)


class Segmenter:
    """Runs one segmentation engine on frames of one size.

    ``__call__(frame)``: ``frame`` uint8 H×W×3 BGR → probability float32 1×1×h×w in
    [0,1], covering the frame at the segmenter's working resolution (``h/H`` equals
    ``scale``). The frame is shrunk as uint8 before conversion (cheap); the letterbox
    input buffer is allocated once per frame size.
    """

    def __init__(self, name: str, engine: Engine) -> None:
        self.name = name
        self.engine = engine
        self._box: Letterbox | None = None
        self._frame: tuple[int, int] | None = None
        self._input: torch.Tensor | None = None

    @property
    def scale(self) -> float:
        if self._box is None or self._frame is None:
            return 1.0
        return self._box.scaled[0] / self._frame[0]

    def prepare(self, frame: tuple[int, int], device: torch.device) -> None:
        """Fit the letterbox for frames of ``frame`` (width, height) and allocate the
        model input on ``device``; :meth:`__call__` does it too when the size changes."""
        input_hw = model_spec(self.name).input_size  # the registry's fixed (H, W) or None
        model = None if input_hw is None else (input_hw[1], input_hw[0])
        if model is None:
            self._box, self._input = None, None
        else:
            self._box = Letterbox.fit(frame, model)
            self._input = torch.zeros((1, 3, model[1], model[0]), device=device)
            if isinstance(self.engine, PreparesShapes):
                self.engine.prepare_shapes([tuple(self._input.shape)])
        self._frame = frame

    def __call__(self, frame: torch.Tensor) -> torch.Tensor:
        size = (frame.shape[1], frame.shape[0])
        if size != self._frame:
            self.prepare(size, frame.device)
        if self._box is None:
            return self.engine({"image": ops.bgr8_to_rgb_float(frame)})["mask"]
        assert self._input is not None
        (width, height), (left, top) = self._box.scaled, self._box.offset
        scaled = ops.bgr8_to_rgb_float(ops.shrink(frame, (width, height)))
        self._input[:, :, top:top + height, left:left + width] = scaled
        mask = self.engine({"image": self._input})["mask"]
        return mask[:, :, top:top + height, left:left + width]

    def close(self) -> None:
        self.engine.close()
