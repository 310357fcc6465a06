"""Temporal stability: does SR make a still scene shimmer? (``bench --flicker``)

A static scene (frame 0 of the synthetic portrait clip, at the bench's input size) is
shown ``frames`` times, each time with independent sensor noise from the camera model
(:func:`localsr_cam.measure.degrade.sensor_noise`: Poisson-Gaussian, mostly luma, σ at
mid-grey). Every frame goes through the real :class:`FrameProcessor` (localized SR,
temporal mask and level smoothing as in the app, but SR computed on every frame: the
app's reuse of the last SR result on a still scene would hide the net's own flicker)
and through plain bicubic upscaling.
The figure is the temporal standard deviation of each output pixel, averaged over the
person (the processor's last mask ≥ 0.5, at output size), for ours and for bicubic, and
their ratio: ≤ 1.0 means SR does not add flicker to what the camera's noise already
causes (a denoising SR lowers it).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from localsr_cam.config import PipelineConfig
from localsr_cam.errors import LocalSRError, ModelError

if TYPE_CHECKING:
    from localsr_cam.process.processor import EngineFactory

log = logging.getLogger(__name__)


def noisy_frames(clean: np.ndarray, frames: int, sigma: float, seed: int = 0
                 ) -> list[np.ndarray]:
    """``frames`` copies of the uint8 BGR frame ``clean`` with independent sensor noise
    of std ``sigma``/255 at mid-grey (new arrays)."""
    from localsr_cam.measure.degrade import DegradeParams, sensor_noise, to_uint8

    base = clean.astype(np.float32)
    out = []
    for i in range(frames):
        params = DegradeParams(noise_sigma=sigma, noise_read_share=0.5, noise_chroma=0.3,
                               noise_seed=seed + i)
        out.append(to_uint8(sensor_noise(base, params, bgr=True)))
    return out


def temporal_std(outputs: list[np.ndarray], region: np.ndarray) -> float:
    """Mean over ``region`` (bool H×W) of the per-pixel, per-channel temporal std of
    ``outputs`` (uint8 H×W×3 each)."""
    stack = np.stack([o.astype(np.float32) for o in outputs])
    std = stack.std(axis=0).mean(axis=2)
    return float(std[region].mean())


def measure_flicker(config: PipelineConfig, size: tuple[int, int], frames: int = 40,
                    sigma: float = 3.0, engine_factory: EngineFactory | None = None,
                    denoise: bool = False) -> dict[str, Any]:
    """Run the static noisy scene through ``config``'s processor (local SR) and bicubic.

    Returns ``{"frames", "sigma", "ours_std", "bicubic_std", "ratio", "region_fraction"}``;
    the first quarter of the frames warm the temporal smoothing up and are not scored.
    ``engine_factory``: opens the processor's engines (``train`` gives one that serves
    the net it trained); ``None``: the shipped models. The figure is the net's own: the
    temporal denoiser (:mod:`localsr_cam.process.temporal`), which averages the still
    scene's noise away before the net sees it, is off unless ``denoise``.
    """
    from localsr_cam.capture.sources import SyntheticSource
    from localsr_cam.frames import CapturedFrame
    from localsr_cam.process.processor import FrameProcessor
    from localsr_cam.zoo.backends import open_engine

    config = dataclasses.replace(config, model=dataclasses.replace(
        config.model, denoise="auto" if denoise else "off"))

    if frames < 8:
        raise LocalSRError("the flicker figure needs at least 8 frames")
    source = SyntheticSource(size)
    source.open()
    clean = source.frame(0)
    inputs = noisy_frames(clean, frames, sigma)
    ours, bicubic = [], []
    mask = None
    with FrameProcessor(config, engine_factory=engine_factory or open_engine) as processor:
        processor.prepare(size)
        for i, frame in enumerate(inputs):
            # front/back at no quality level: SR runs on every frame. process() would
            # see a still scene and reuse the last SR result (process/reuse.py), which
            # hides the net's own flicker; this figure is the net's.
            out = processor.back(processor.front(CapturedFrame(frame, i,
                                                               time.perf_counter())))
            if out.fallback:  # the plain upscale would score 1.0 in the net's name
                raise ModelError("the flicker scene's SR failed and fell back to plain "
                                 "upscaling (see the log above); no flicker figure")
            ours.append(out.image)
            bicubic.append(cv2.resize(frame, (2 * size[0], 2 * size[1]),
                                      interpolation=cv2.INTER_CUBIC))
            mask = out.mask
    if mask is None:
        raise LocalSRError("the flicker scene gave no person mask (no SR ran)")
    region = cv2.resize(mask.astype(np.float32), (2 * size[0], 2 * size[1]),
                        interpolation=cv2.INTER_LINEAR) >= 0.5
    if not region.any():
        raise LocalSRError("the flicker scene's person mask is empty")
    skip = frames // 4
    ours_std = temporal_std(ours[skip:], region)
    bicubic_std = temporal_std(bicubic[skip:], region)
    result = {"frames": frames - skip, "sigma": sigma, "ours_std": round(ours_std, 4),
              "bicubic_std": round(bicubic_std, 4),
              "ratio": round(ours_std / bicubic_std, 4) if bicubic_std > 0 else None,
              "region_fraction": round(float(region.mean()), 4)}
    log.info("flicker: temporal std in the person %.3f (ours) vs %.3f (bicubic), ratio %s",
             ours_std, bicubic_std, result["ratio"])
    return result
