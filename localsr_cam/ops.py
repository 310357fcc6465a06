"""Whole-frame image operations with a CPU fast path.

Frames are ``uint8 H×W×3`` tensors (BGR). On the CPU, OpenCV works on numpy views of
the same memory (several times faster than torch's generic kernels there); on other
devices torch does the work. Either way the result is a tensor on the input's device.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

UPSCALE_MODES = ("bicubic", "bilinear")


def upscale2x(frame: torch.Tensor, mode: str, out: torch.Tensor | None = None) -> torch.Tensor:
    """``frame`` uint8 H×W×3 → uint8 2H×2W×3, bicubic or bilinear (half-pixel centres).

    ``out`` (uint8 2H×2W×3, same device) is filled and returned when given.
    """
    height, width = frame.shape[:2]
    if frame.device.type == "cpu":
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


def blur(frame: torch.Tensor, radius: int) -> torch.Tensor:
    """Strong box blur (three passes ≈ Gaussian) of a uint8 H×W×3 frame; a new tensor."""
    if radius <= 0:
        return frame.clone()
    if frame.device.type == "cpu":
        import cv2

        size = 2 * radius + 1
        image = frame.numpy()
        for _ in range(3):
            image = cv2.blur(image, (size, size))
        return torch.from_numpy(np.ascontiguousarray(image))
    planar = frame.permute(2, 0, 1).unsqueeze(0).float()
    size = 2 * radius + 1
    for _ in range(3):
        planar = F.avg_pool2d(planar, size, stride=1, padding=radius, count_include_pad=False)
    return planar.round_().clamp_(0, 255).to(torch.uint8)[0].permute(1, 2, 0).contiguous()


def bgr8_to_rgb_float(frame: torch.Tensor) -> torch.Tensor:
    """uint8 H×W×3 BGR → float32 1×3×H×W RGB in [0, 1] (a new contiguous tensor)."""
    return frame.flip(-1).permute(2, 0, 1).unsqueeze(0).float().div_(255.0).contiguous()


def rgb_float_to_bgr255(image: torch.Tensor) -> torch.Tensor:
    """float 1×3×H×W RGB in [0, 1] → float32 H×W×3 BGR on the 0–255 scale (a view chain)."""
    return image[0].permute(1, 2, 0).flip(-1).float().mul(255.0)
