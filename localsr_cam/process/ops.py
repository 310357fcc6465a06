"""Per-frame image operations, each with a CPU fast path.

Frames are ``uint8 H×W×3`` tensors (BGR); model tensors are ``float32 1×3×H×W`` (RGB in
[0, 1]). On the CPU these run in OpenCV on numpy views of the same memory — several
times faster than torch's generic kernels there (e.g. SR output → uint8 BGR: 0.4 ms
with OpenCV, 7.6 ms with torch on one core, 720×704). On a GPU torch does the work.
Either way inputs and results are torch tensors on the input's device; results are new
tensors unless ``out`` is given.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
import torch.nn.functional as F

from localsr_cam.runtime.base import SR_NAME, SUBPIXEL_NAME


def _on_cpu(tensor: torch.Tensor) -> bool:
    return tensor.device.type == "cpu"


def upscale2x(frame: torch.Tensor, mode: str, out: torch.Tensor | None = None) -> torch.Tensor:
    """``frame`` uint8 H×W×3 → uint8 2H×2W×3, bicubic or bilinear (half-pixel centres).

    ``out`` (uint8 2H×2W×3, same device) is filled and returned when given.
    """
    height, width = frame.shape[:2]
    if _on_cpu(frame):
        import cv2

        flag = cv2.INTER_CUBIC if mode == "bicubic" else cv2.INTER_LINEAR
        target = out if out is not None else torch.empty((2 * height, 2 * width, 3),
                                                         dtype=torch.uint8)
        cv2.resize(frame.numpy(), (2 * width, 2 * height), dst=target.numpy(),
                   interpolation=flag)
        return target
    planar = frame.permute(2, 0, 1).unsqueeze(0).float()
    scaled = F.interpolate(planar, scale_factor=2, mode=mode, align_corners=False)
    result = scaled.round_().clamp_(0, 255).to(torch.uint8)[0].permute(1, 2, 0)
    if out is None:
        return result.contiguous()
    return out.copy_(result)


def shrink(frame: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize a uint8 H×W×3 frame down to ``size`` = (width, height), anti-aliased.

    On the CPU, OpenCV's area filter is slow for non-integer factors (0.74 ms for
    640×360 → 256×144); a bilinear step to twice the target and an exact 2× area step
    give nearly the same pixels (mean |Δ| 0.3 grey levels) in 0.17 ms.
    """
    if _on_cpu(frame):
        import cv2

        image = frame.numpy()
        double = (2 * size[0], 2 * size[1])
        if double[0] < image.shape[1] and double[1] < image.shape[0]:
            image = cv2.resize(image, double, interpolation=cv2.INTER_LINEAR)
        return torch.from_numpy(cv2.resize(image, size, interpolation=cv2.INTER_AREA))
    planar = frame.permute(2, 0, 1).unsqueeze(0).float()
    scaled = F.interpolate(planar, size=(size[1], size[0]), mode="bilinear", antialias=True,
                           align_corners=False)
    return scaled.round_().clamp_(0, 255).to(torch.uint8)[0].permute(1, 2, 0)


def resize_plane(plane: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize (half-pixel centres) of a float32 1×1×h×w map to ``size`` =
    (width, height); a new 1×1×H×W tensor."""
    if _on_cpu(plane):
        import cv2

        resized = cv2.resize(plane[0, 0].contiguous().numpy(), size,
                             interpolation=cv2.INTER_LINEAR)
        return torch.from_numpy(resized)[None, None]
    return F.interpolate(plane, size=(size[1], size[0]), mode="bilinear",
                         align_corners=False)


def blur(frame: torch.Tensor, radius: int) -> torch.Tensor:
    """Strong box blur (three passes ≈ Gaussian) of a uint8 H×W×3 frame."""
    if radius <= 0:
        return frame.clone()
    size = 2 * radius + 1
    if _on_cpu(frame):
        import cv2

        image = frame.numpy()
        for _ in range(3):
            image = cv2.blur(image, (size, size))
        return torch.from_numpy(np.ascontiguousarray(image))
    planar = frame.permute(2, 0, 1).unsqueeze(0).float()
    for _ in range(3):
        planar = F.avg_pool2d(planar, size, stride=1, padding=radius, count_include_pad=False)
    return planar.round_().clamp_(0, 255).to(torch.uint8)[0].permute(1, 2, 0).contiguous()


def bgr8_to_rgb_float(frame: torch.Tensor) -> torch.Tensor:
    """uint8 H×W×3 BGR (a crop view is fine) → float32 1×3×H×W RGB in [0, 1], contiguous."""
    if _on_cpu(frame):
        import cv2

        blob = cv2.dnn.blobFromImage(frame.numpy(), 1.0 / 255.0, swapRB=True)
        return torch.from_numpy(blob)
    return frame.flip(-1).permute(2, 0, 1).unsqueeze(0).float().div_(255.0).contiguous()


def rgb_float_to_bgr8(image: torch.Tensor) -> torch.Tensor:
    """float 1×3×H×W RGB (0–1 scale, any range) → uint8 H×W×3 BGR, rounded and clamped."""
    if _on_cpu(image):
        import cv2

        planes = image[0].detach().float().contiguous().numpy()
        # clamp below at 0 first: convertScaleAbs rounds and saturates, but takes |x|
        channels = [cv2.convertScaleAbs(np.maximum(planes[c], 0.0), alpha=255.0)
                    for c in (2, 1, 0)]
        return torch.from_numpy(cv2.merge(channels))
    scaled = image[0].float().mul(255.0).round_().clamp_(0, 255).to(torch.uint8)
    return scaled.flip(0).permute(1, 2, 0).contiguous()


def sr_rgb_float(outputs: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """An SR engine's result as N×3×2h×2w float RGB, from ``sr`` or ``sr_planes`` (see
    :func:`sr_to_bgr8`); for measurements, not the per-frame path."""
    if SUBPIXEL_NAME in outputs:
        return F.pixel_shuffle(outputs[SUBPIXEL_NAME], 2)
    return outputs[SR_NAME]


def sr_to_bgr8(outputs: Mapping[str, torch.Tensor], index: int = 0) -> torch.Tensor:
    """An SR engine's result for batch item ``index`` → uint8 2h×2w×3 BGR, rounded and
    clamped. ``outputs`` holds ``sr`` (N×3×2h×2w float RGB, any device) or the CPU
    engine's ``sr_planes`` (N×12×h×w float: channel ``c·4 + 2a + b`` is colour ``c`` of
    output pixel ``(2i+a, 2j+b)``, see :data:`localsr_cam.runtime.base.SUBPIXEL_NAME`).

    The planes are rounded to uint8 first and then interleaved by two 6-plane merges
    (one per output row parity): 0.4 ms at 720×704 on one core, where the graph's own
    shuffle took 1.4 ms in float32.
    """
    if SUBPIXEL_NAME not in outputs:
        return rgb_float_to_bgr8(outputs[SR_NAME][index:index + 1])
    import cv2

    planes = outputs[SUBPIXEL_NAME][index].detach().float().contiguous().numpy()
    _, height, width = planes.shape
    rows = np.empty((height, 2, 2 * width * 3), np.uint8)
    for a in range(2):  # output rows 2i + a: pixels (2j, 2j+1) × BGR, interleaved
        picked = [planes[c * 4 + 2 * a + b] for b in range(2) for c in (2, 1, 0)]
        # clamp below at 0 first: convertScaleAbs rounds and saturates, but takes |x|
        rounded = [cv2.convertScaleAbs(np.maximum(plane, 0.0), alpha=255.0)
                   for plane in picked]
        rows[:, a] = cv2.merge(rounded).reshape(height, -1)
    return torch.from_numpy(rows.reshape(2 * height, 2 * width, 3))


def blend_into(background: torch.Tensor, foreground: torch.Tensor, alpha: torch.Tensor
               ) -> None:
    """Mix ``foreground`` over ``background`` in place: ``bg + α·(fg − bg)``, rounded.

    ``background``: uint8 h×w×3 (a view into the output frame, overwritten).
    ``foreground``: uint8 h×w×3. ``alpha``: float32 h×w in [0,1]. Where α is 0 the
    background is left exactly as it was, where α is 1 it becomes the foreground.
    """
    if _on_cpu(background):
        import cv2

        weights = alpha.contiguous().numpy()
        target = background.numpy()
        target[...] = cv2.blendLinear(target, foreground.numpy(), 1.0 - weights, weights)
        return
    base = background.to(torch.float32)
    mixed = base.add_(alpha.unsqueeze(-1) * (foreground.to(torch.float32) - base))
    background.copy_(mixed.round_().clamp_(0, 255).to(torch.uint8))
