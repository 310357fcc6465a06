"""JPEG chroma smoothing: the colour of an MJPEG frame, re-fitted to its own luma.

A webcam's MJPEG stream halves the chroma planes (4:2:0) and then quantizes them in 8×8
blocks, so a decoded frame's colour is blocky and bleeds across edges the luma still
shows. On the validation images, area 2× + JPEG q 75 4:2:0 loses 3.2 dB of RGB PSNR at
HR against the clean downscale, and the true HR chroma alone would win back 1.2 dB of it
(BENCHMARKS.md, "Session 5"); the U-Net left that chroma error as it was (+0.03 dB of
its +0.30 dB came from colour).

This step, at LR resolution before the network, replaces each chroma plane (BT.601 Cb,
Cr) by a guided filter of it with the luma as the guide (He et al. 2010, in its fast
form: the fits made on a 2×2-averaged image, then upscaled): in every window the chroma
is fitted as ``a·Y + b``, and the averaged fits are evaluated at each pixel's own luma.
Colour edges then follow the luma's edges, and block steps that the luma does not share
are smoothed away; the luma is left exactly as it was.

It helps only where the chroma is quantized: measured on the 7 validation images with a
bicubic upscale after it (mean PSNR change; an OpenCV prototype, 5×5 windows at full
resolution): JPEG 4:2:0 q 50
+0.24 dB, q 75 +0.23, q 85 +0.19, q 90 +0.12 (worst −0.12), q 95 −0.02 (worst −0.24);
chroma subsampled but not compressed (YUYV 4:2:2, NV12 4:2:0) −0.34 / −0.24; clean 4:4:4
up to −1.6. So its strength follows the frame's estimated JPEG level (the IJG scale /
100: q 90 → 0.2, q 75 → 0.5; 0 without a JPEG lattice): none up to
:data:`GATE_FROM`, full from :data:`GATE_FULL`, linear in between. The network is told
the same level, and is trained with the step in place.

The box means are average pools (ONNX AveragePool), so the step is part of the network's
graph in every backend; it adds 8 % (one thread) to 14 % (two) to FastUNet's time in
ONNX Runtime on the CPU, whatever the level (BENCHMARKS.md).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

JPEG_LEVEL = 1
"""Index of the JPEG level in the network's ``levels`` input
(``localsr_cam.process.estimate.LEVEL_NAMES``)."""
SCALE = 2
"""The fits are computed on the image averaged over 2×2 pixels (the chroma of a 4:2:0
JPEG has no finer detail) and bilinearly upscaled: cheaper, and better than full
resolution at q 75 (+0.28 vs +0.24 dB)."""
RADIUS = 1
"""Window half-size at that scale: 3×3 windows, 6×6 LR pixels."""
EPS = 4.0 / 255.0**2
"""Guided-filter regularization (luma variance below it counts as flat): 4 in 8-bit
units², the best of 4, 16 and 64 at q 75."""
GATE_FROM = 0.1
"""JPEG level (IJG scale / 100) below which the step is off: q 95 and lighter."""
GATE_FULL = 0.3
"""JPEG level from which it is fully on: q 85 and heavier."""

# BT.601 (full range), as OpenCV's YCrCb and the JPEG codec use
_Y = (0.299, 0.587, 0.114)
_CB, _CR = 0.564, 0.713  # Cb = 0.564 (B − Y), Cr = 0.713 (R − Y)


class JpegChromaSmoothing(nn.Module):
    """``image`` N×3×h×w float32 RGB in [0,1], ``jpeg`` N float32 (the JPEG level) →
    N×3×h×w float32: the image with its chroma guided-filtered by its luma, blended in
    by the JPEG level's gate (module docstring). Parameter-free; any ``h, w >= 1``. A
    float16 image (the CUDA backend) is computed in float32 and returned as float16."""

    def __init__(self, radius: int = RADIUS, eps: float = EPS, scale: int = SCALE) -> None:
        super().__init__()
        self.radius, self.eps, self.scale = radius, eps, scale

    def _box(self, planes: torch.Tensor) -> torch.Tensor:
        """The mean over each pixel's (2r+1)² window, per channel; near the edges, over
        the part of the window inside the image (ONNX AveragePool without the padding
        counted: 5× cheaper in ONNX Runtime than separable convolutions)."""
        side = 2 * self.radius + 1
        return F.avg_pool2d(planes, side, stride=1, padding=self.radius,
                            count_include_pad=False)

    def forward(self, image: torch.Tensor, jpeg: torch.Tensor) -> torch.Tensor:
        # the window statistics (E[y²] − E[y]²) cancel: float32 even in a float16 net
        dtype, image, jpeg = image.dtype, image.float(), jpeg.float()
        gate = ((jpeg - GATE_FROM) / (GATE_FULL - GATE_FROM)).clamp(0.0, 1.0)
        # elementwise, not 1×1 convolutions: ONNX Runtime's convs of 3 channels cost more
        r, g, b = image[:, 0:1], image[:, 1:2], image[:, 2:3]
        luma = _Y[0] * r + _Y[1] * g + _Y[2] * b
        ycc = torch.cat([luma, _CB * (b - luma), _CR * (r - luma)], dim=1)
        stats = ycc if self.scale == 1 else F.avg_pool2d(ycc, self.scale, ceil_mode=True)
        y, c = stats[:, 0:1], stats[:, 1:3]
        means = self._box(torch.cat([stats, y * c, y * y], dim=1))
        mean_y, mean_c = means[:, 0:1], means[:, 1:3]
        slope = (means[:, 3:5] - mean_y * mean_c) / (means[:, 5:6] - mean_y * mean_y + self.eps)
        fits = self._box(torch.cat([slope, mean_c - slope * mean_y], dim=1))
        if self.scale != 1:
            fits = F.interpolate(fits, size=image.shape[-2:], mode="bilinear",
                                 align_corners=False)
        # the chroma's change (luma unchanged), scaled by the gate, back to RGB
        change = gate.reshape(-1, 1, 1, 1) * (fits[:, 0:2] * luma + fits[:, 2:4] - ycc[:, 1:3])
        d_b, d_r = change[:, 0:1] / _CB, change[:, 1:2] / _CR
        d_g = -(_Y[0] * d_r + _Y[2] * d_b) / _Y[1]
        return (image + torch.cat([d_r, d_g, d_b], dim=1)).to(dtype)
