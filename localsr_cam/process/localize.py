"""Where to super-resolve and how to blend it back.

All functions run on torch tensors on any device. Masks are ``float32`` in [0, 1] with
shape ``1×1×H×W``; frames are ``uint8 H×W×3`` (BGR, the edge layout).

The paper pasted a hard-thresholded SR foreground onto the upscale and got jagged white
seams at the mask border. Here the mask is smoothed in time, thresholded with
hysteresis, cleaned of specks, then feathered into a soft edge; the network runs on a
padded box so it sees context beyond that edge; and the blend
(:func:`localsr_cam.process.ops.blend_into`) is a convex mix, so pixels where the mask is 0 are
exactly the plain upscale.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

Box = tuple[int, int, int, int]
"""``(x0, y0, x1, y1)`` in pixels, half-open: columns x0..x1-1, rows y0..y1-1."""


def _box_blur(mask: torch.Tensor, radius: int) -> torch.Tensor:
    """Box blur of a 1×1×H×W map; pixels beyond the border repeat the edge pixel."""
    if radius <= 0:
        return mask
    size = 2 * radius + 1
    if mask.device.type == "cpu":  # OpenCV: ~30× faster than torch's pooling here
        import cv2

        plane = cv2.blur(mask[0, 0].contiguous().numpy(), (size, size),
                         borderType=cv2.BORDER_REPLICATE)
        return torch.from_numpy(plane)[None, None]
    padded = F.pad(mask, (radius, radius, radius, radius), mode="replicate")
    return F.avg_pool2d(padded, size, stride=1)


def open_binary(mask: torch.Tensor, radius: int) -> torch.Tensor:
    """Morphological opening of a {0,1} float map: removes blobs thinner than 2·radius+1.

    Pixels beyond the border are ignored (neither erode nor dilate across it).
    """
    if radius <= 0:
        return mask
    size = 2 * radius + 1
    if mask.device.type == "cpu":
        import cv2

        kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (size, size))
        plane = cv2.morphologyEx(mask[0, 0].contiguous().numpy(), cv2.MORPH_OPEN, kernel)
        return torch.from_numpy(plane)[None, None]
    eroded = -F.max_pool2d(-mask, size, stride=1, padding=radius)
    return F.max_pool2d(eroded, size, stride=1, padding=radius)


def feather(mask: torch.Tensor, radius: int) -> torch.Tensor:
    """Soften a {0,1} map's edge over about ``2·radius`` pixels.

    Two box blurs (a tent profile): the result rises monotonically across an edge and
    stays exactly 0 more than ``2·radius`` pixels outside the shape.
    """
    return _box_blur(_box_blur(mask, radius), radius)


class MaskSmoother:
    """Turns per-frame person probabilities into a stable, soft mask.

    1. temporal exponential moving average: ``s = ema·s_prev + (1−ema)·p``;
    2. hysteresis: a pixel turns on above ``high``, off below ``low``, else keeps its
       state, so a probability oscillating around one threshold does not flicker;
    3. opening with radius ``despeckle`` removes small blobs;
    4. feathering with radius ``feather_radius``.

    Works at whatever resolution it is called with (the segmenter's, to stay cheap);
    holds per-stream state: call :meth:`reset` between unrelated images.
    """

    def __init__(self, ema: float, low: float, high: float, despeckle: int,
                 feather_radius: int) -> None:
        self.ema = ema
        self.low = low
        self.high = high
        self.despeckle = despeckle
        self.feather_radius = feather_radius
        self._smoothed: torch.Tensor | None = None
        self._state: torch.Tensor | None = None

    def reset(self) -> None:
        self._smoothed = None
        self._state = None

    def __call__(self, probability: torch.Tensor) -> torch.Tensor:
        """``probability``: 1×1×h×w float32 in [0,1] → soft mask of the same shape."""
        previous = self._smoothed
        if previous is None or previous.shape != probability.shape:
            smoothed = probability.clone()
            state = smoothed >= self.high
        else:
            smoothed = previous.mul_(self.ema).add_(probability, alpha=1.0 - self.ema)
            assert self._state is not None
            state = (smoothed >= self.high) | (self._state & (smoothed > self.low))
        self._smoothed, self._state = smoothed, state
        binary = open_binary(state.to(probability.dtype), self.despeckle)
        return feather(binary, self.feather_radius)


def person_box(mask: torch.Tensor, threshold: float = 0.0) -> Box | None:
    """Tight box around the pixels of a 1×1×H×W mask above ``threshold``, or None.

    With the default ``threshold=0`` the box covers every pixel a blend will touch.
    The four edges are reduced on the mask's device and copied to the host at once:
    one blocking copy of four integers a frame on a GPU (``nonzero`` and each ``int()``
    of a device tensor would wait for the device once more).
    """
    hit = mask[0, 0] > threshold
    rows, cols = hit.any(dim=1), hit.any(dim=0)
    height, width = rows.numel(), cols.numel()
    y = torch.arange(height, device=mask.device)
    x = torch.arange(width, device=mask.device)
    edges = torch.stack([torch.where(cols, x, width).min(), torch.where(rows, y, height).min(),
                         torch.where(cols, x, -1).max(), torch.where(rows, y, -1).max()])
    x0, y0, x_last, y_last = edges.tolist()
    if y_last < 0:
        return None
    return x0, y0, x_last + 1, y_last + 1


def _round_up(value: int, step: int) -> int:
    return -(-value // step) * step


def _place(start: int, length: int, want: int, limit: int) -> tuple[int, int]:
    """An interval of length ``want`` centred on [start, start+length), inside [0, limit)."""
    if want >= limit:
        return 0, limit
    begin = start - (want - length) // 2
    begin = min(max(begin, 0), limit - want)
    return begin, begin + want


def bucket_box(box: Box, frame_size: tuple[int, int], context: int, bucket: int) -> Box:
    """Pad ``box`` by ``context`` px, round its sides up to multiples of ``bucket``.

    The result is centred on the person, shifted to lie inside the frame
    (``frame_size`` = (width, height)), and clipped to the frame where a side would be
    larger than the frame. Engines and CUDA graphs thus see few distinct shapes.
    """
    x0, y0, x1, y1 = box
    width, height = frame_size
    want_w = _round_up(x1 - x0 + 2 * context, bucket)
    want_h = _round_up(y1 - y0 + 2 * context, bucket)
    bx0, bx1 = _place(x0, x1 - x0, want_w, width)
    by0, by1 = _place(y0, y1 - y0, want_h, height)
    return bx0, by0, bx1, by1


def bucket_sizes(frame_size: tuple[int, int], context: int, bucket: int
                 ) -> list[tuple[int, int]]:
    """Every (width, height) :func:`bucket_box` can return for ``frame_size`` frames:
    the shapes the SR engine will see, known before the first frame."""
    width, height = frame_size

    def sides(limit: int) -> list[int]:
        return sorted({min(_round_up(length + 2 * context, bucket), limit)
                       for length in range(1, limit + 1)})

    return [(w, h) for h in sides(height) for w in sides(width)]
