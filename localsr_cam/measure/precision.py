"""Precision: what running a model in float16 on CUDA costs in quality.

Measures with the same PSNR as ``eval`` (:func:`localsr_cam.measure.metrics.psnr`, on
uint8 images), so a drift reads like the evaluation's figures.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from localsr_cam.measure import metrics
from localsr_cam.runtime import settings
from localsr_cam.runtime.torch import TorchEngine


def fp16_drift(module: nn.Module, hr_images: list[torch.Tensor], name: str = "fast"
               ) -> dict[str, float]:
    """How much the CUDA float16 path costs in quality, for an SR ``module``.

    ``hr_images``: float32 1×3×H×W RGB in [0,1] with even H and W (any device). Each is
    downscaled 2× (bicubic, antialiased), super-resolved by the module in float32 on
    the GPU (TF32 off: the exact reference) and by a CUDA :class:`TorchEngine`
    (float16, graphs), and both are scored by PSNR against the original. Returns the
    mean PSNRs (dB), ``drift_db`` = |fp32 − fp16|, and the largest pixel difference.
    """
    device = torch.device("cuda")
    reference = copy.deepcopy(module).float().to(device).eval()
    engine = TorchEngine(name, "cuda", kind="sr", module=copy.deepcopy(module)).open()
    psnr32, psnr16, worst = [], [], 0.0
    try:
        for hr in hr_images:
            hr = hr.to(device, torch.float32)
            lr = F.interpolate(hr, scale_factor=0.5, mode="bicubic", antialias=True,
                               align_corners=False).clamp_(0, 1)
            with torch.inference_mode(), settings.exact_float32():
                full = reference(lr).clamp(0, 1)
            half = engine({"image": lr})["sr"].clamp(0, 1)
            truth = _uint8_hwc(hr)
            psnr32.append(metrics.psnr(truth, _uint8_hwc(full)))
            psnr16.append(metrics.psnr(truth, _uint8_hwc(half)))
            worst = max(worst, float((full - half).abs().max()))
    finally:
        engine.close()
    mean32, mean16 = sum(psnr32) / len(psnr32), sum(psnr16) / len(psnr16)
    return {"psnr_fp32_db": mean32, "psnr_fp16_db": mean16,
            "drift_db": abs(mean32 - mean16), "max_abs_diff": worst,
            "images": float(len(hr_images))}


def _uint8_hwc(image: torch.Tensor) -> np.ndarray:
    """1×3×H×W float in [0,1] (any device) → H×W×3 uint8, as a viewer would see it."""
    return (image[0].float().clamp(0, 1) * 255).round().byte().permute(1, 2, 0).cpu().numpy()
