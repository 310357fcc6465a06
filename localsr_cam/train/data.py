"""Training data: HR photos read as RGB, the random patch sampler (camera-model
degradation, estimated levels), tensors to and from uint8, and the hold-out split.

Shared by the training loop (:mod:`localsr_cam.train.trainer`) and the int8 calibration
(:mod:`localsr_cam.train.quantize`), which samples exactly as training does.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from localsr_cam.capture.images import list_images, load_image
from localsr_cam.errors import ConfigError, SourceError


def read_rgb(path: Path, min_side: int = 2) -> np.ndarray:
    """An image file (read as eval reads it) as H×W×3 uint8 RGB; unreadable or smaller
    than ``min_side`` (the patch) → SourceError."""
    bgr = load_image(path)
    if min(bgr.shape[:2]) < min_side:
        raise SourceError(f"image {path} is {bgr.shape[1]}x{bgr.shape[0]}, "
                          f"smaller than the {min_side}px patch")
    return np.ascontiguousarray(bgr[:, :, ::-1])


def to_tensor(rgb: np.ndarray) -> torch.Tensor:
    """H×W×3 uint8 → 1×3×H×W float32 in [0,1] (a new tensor)."""
    return torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None].float() / 255.0


def to_uint8(tensor: torch.Tensor) -> np.ndarray:
    """1×3×H×W float → H×W×3 uint8 (clamped and rounded)."""
    return (tensor[0].clamp(0, 1) * 255.0).round().byte().permute(1, 2, 0).numpy()


ZOOM_SHARE = 0.5
"""With ``zoom_out`` < 1, the share of training samples whose HR region is shrunk."""


class PatchSampler:
    """Random (LR, levels, HR) training triples from HR images held in memory.

    ``batch(n)`` returns ``lr`` n×3×(p/2)×(p/2), ``levels`` n×K and ``hr`` n×3×p×p
    float32 (RGB in [0,1]), p = ``patch``. Each sample: an HR region of ``region`` px
    (≥ p) starting on even pixels, a random flip and 90° rotation, degraded as a whole
    (``degrade``: ``webcam`` = the random camera model, ``clean_share`` of its samples
    clean, ``sharpen_share`` of those sharpened by the camera's ISP,
    ``single_share`` of the others one fault alone, and ``jpeg_share`` of every sample
    that drew no MJPEG given it, ``light_jpeg_share`` of the MJPEG draws at a light
    quality; or a clean
    ``area``/``bicubic`` downscale), its levels estimated on the whole
    LR region (as on a frame), then a p×p HR / (p/2)² LR patch cut at the same place.
    ``zoom_out`` < 1: a ``zoom_share`` of the regions is cut larger and shrunk (area) by
    a random factor in [``zoom_out``, 1] first, so the net also sees the detail density
    of smaller pictures than the training photos (a person filling a 640×360 webcam
    frame is a 1536-px photo shrunk several times).
    Randomness comes from a numpy generator whose state :meth:`state` /
    :meth:`set_state` save and restore (for checkpoints).
    """

    def __init__(self, images: list[np.ndarray], patch: int, degrade: str, seed: int,
                 region: int | None = None, clean_share: float | None = None,
                 zoom_out: float = 1.0, zoom_share: float = ZOOM_SHARE,
                 single_share: float = 0.0, sharpen_share: float = 0.0,
                 jpeg_share: float = 0.0, light_jpeg_share: float = 0.0) -> None:
        from localsr_cam.measure.degrade import CLEAN_SHARE

        self.images = images
        self.zoom_out = zoom_out
        self.zoom_share = zoom_share
        self.clean_share = CLEAN_SHARE if clean_share is None else clean_share
        self.single_share = single_share
        self.sharpen_share = sharpen_share
        self.jpeg_share = jpeg_share
        self.light_jpeg_share = light_jpeg_share
        self.patch = patch
        self.degrade = degrade
        self.region = max(patch, region or patch)
        self.rng = np.random.default_rng(seed)

    def state(self) -> str:
        import json

        return json.dumps(self.rng.bit_generator.state)

    def set_state(self, state: str) -> None:
        import json

        self.rng.bit_generator.state = json.loads(state)

    def _one(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        from localsr_cam.measure import degrade as camera
        from localsr_cam.process.estimate import estimate_levels

        rng, p = self.rng, self.patch
        img = self.images[int(rng.integers(len(self.images)))]
        zoom = self.zoom_out < 1.0 and rng.random() < self.zoom_share
        scale = float(rng.uniform(self.zoom_out, 1.0)) if zoom else 1.0
        r = min(round(self.region / scale) // 2 * 2,
                img.shape[0] // 2 * 2, img.shape[1] // 2 * 2)
        y = 2 * int(rng.integers((img.shape[0] - r) // 2 + 1))
        x = 2 * int(rng.integers((img.shape[1] - r) // 2 + 1))
        hr = img[y: y + r, x: x + r]
        if scale < 1.0:
            import cv2

            r = max(p, round(r * scale) // 2 * 2)
            hr = cv2.resize(hr, (r, r), interpolation=cv2.INTER_AREA)
        if rng.integers(2):
            hr = hr[:, ::-1]
        hr = np.ascontiguousarray(np.rot90(hr, int(rng.integers(4))))
        if self.degrade == "webcam":
            sample = camera.degrade(hr, rng, clean_share=self.clean_share,
                                    single_share=self.single_share,
                                    sharpen_share=self.sharpen_share,
                                    jpeg_share=self.jpeg_share,
                                    light_jpeg_share=self.light_jpeg_share)
        else:
            sample = camera.apply(hr, camera.DegradeParams(resize=(self.degrade,), clean=True))
        levels = estimate_levels(sample.lr)
        py = 2 * int(rng.integers((r - p) // 2 + 1))
        px = 2 * int(rng.integers((r - p) // 2 + 1))
        return (sample.lr[py // 2: (py + p) // 2, px // 2: (px + p) // 2], levels,
                sample.hr[py: py + p, px: px + p])

    def batch(self, n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        lrs, levels, hrs = zip(*(self._one() for _ in range(n)), strict=True)
        lr_t = torch.from_numpy(np.stack(lrs)).permute(0, 3, 1, 2).float() / 255.0
        hr_t = torch.from_numpy(np.stack(hrs)).permute(0, 3, 1, 2).float() / 255.0
        return lr_t, torch.from_numpy(np.stack(levels)), hr_t



def split_holdout(train_dirs: Sequence[Path], val_dirs: Sequence[Path],
                  holdout: str) -> tuple[list[Path], list[Path]]:
    """(training files, validation files): every image of ``train_dirs`` except the
    comma-separated ``holdout`` names, which join the images of ``val_dirs``. A holdout
    name found in no train folder is a ConfigError (a typo would train on it)."""
    names = {n.strip() for n in holdout.split(",") if n.strip()}
    train = [p for d in train_dirs for p in list_images(d)]
    missing = names - {p.name for p in train}
    if missing:
        raise ConfigError(f"--holdout names not in the train folders: {', '.join(sorted(missing))}")
    val = [p for d in val_dirs for p in list_images(d)] + [p for p in train if p.name in names]
    return [p for p in train if p.name not in names], val
