"""Train a super-resolution U-Net (``localsr-cam train``) and ship it to ``engines/``.

HR photos come from a folder (plain, or DIV2K layout with ``*_HR`` subfolders). Each
step samples random HR patches (flips, 90° rotations), makes their LR input with
:func:`degrade` (the same 2× downscale the evaluation uses) and fits the network with
MSE or L1 and Adam. After each epoch the model is scored on the validation folder
(PSNR/SSIM on RGB uint8, against bicubic upscaling), the training state is saved as a
checkpoint (``--resume`` continues from it) and the best epoch's weights are kept. At
the end the best weights are written to ``engines/<model>.pt`` (a plain state dict),
exported to ``engines/<model>.onnx``, and the manifest entry records config, size,
cost, sha256, validation figures and the exact command.
"""

from __future__ import annotations

import logging
import math
import os
import shlex
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from localsr_cam.capture.images import crop_even, list_images, load_image
from localsr_cam.errors import ConfigError, ModelError, SourceError
from localsr_cam.measure import metrics
from localsr_cam.measure.degradation import degrade
from localsr_cam.paths import sha256_file, write_atomically
from localsr_cam.runtime import settings as torch_settings
from localsr_cam.zoo.artifacts import engines_dir, read_manifest, write_manifest_entry
from localsr_cam.zoo.loading import build_model
from localsr_cam.zoo.recipes import read_state_dict, safe_torch_load
from localsr_cam.zoo.registry import DEFAULT_SR_MODEL, model_spec

log = logging.getLogger(__name__)

RECIPE_DEFAULTS: dict[str, Any] = {"loss": "mse", "scheduler": "plateau", "patch": 64,
                                   "batch": 8, "lr": 1e-3, "width": 32}
"""The paper's recipe; a registry entry's ``train_defaults`` override it per model."""


# --------------------------------------------------------------------------- data


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


class PatchSampler:
    """Random (LR, HR) training pairs from HR images held in memory.

    ``batch(n)`` returns ``lr`` n×3×(p/2)×(p/2) and ``hr`` n×3×p×p float32 in [0,1]
    (RGB), p = ``patch``. Patches start on even pixels, get a random flip and 90°
    rotation, and the LR side comes from :func:`degrade`. Randomness comes from a torch
    generator whose state is saved in checkpoints.
    """

    def __init__(self, images: list[np.ndarray], patch: int, method: str,
                 generator: torch.Generator) -> None:
        self.images = images
        self.patch = patch
        self.method = method
        self.gen = generator

    def _randint(self, high: int) -> int:
        return int(torch.randint(high, (1,), generator=self.gen))

    def batch(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        p = self.patch
        lrs, hrs = [], []
        for _ in range(n):
            img = self.images[self._randint(len(self.images))]
            y = 2 * self._randint((img.shape[0] - p) // 2 + 1)
            x = 2 * self._randint((img.shape[1] - p) // 2 + 1)
            hr = img[y: y + p, x: x + p]
            if self._randint(2):
                hr = hr[:, ::-1]
            hr = np.ascontiguousarray(np.rot90(hr, self._randint(4)))
            lrs.append(degrade(hr, self.method))
            hrs.append(hr)
        lr_t = torch.from_numpy(np.stack(lrs)).permute(0, 3, 1, 2).float() / 255.0
        hr_t = torch.from_numpy(np.stack(hrs)).permute(0, 3, 1, 2).float() / 255.0
        return lr_t, hr_t


# --------------------------------------------------------------------------- evaluation


def center_crop(image: np.ndarray, size: int) -> np.ndarray:
    """The central size×size (even-aligned) part of an image; the image if smaller."""
    if size <= 0:
        return image
    h, w = image.shape[:2]
    y = max(0, (h - size) // 4 * 2)
    x = max(0, (w - size) // 4 * 2)
    return image[y: y + size, x: x + size]


def score(sr: np.ndarray, hr: np.ndarray) -> tuple[float, float]:
    """PSNR (dB) and SSIM of two H×W×3 uint8 images, as ``eval`` computes them."""
    return metrics.psnr(hr, sr), metrics.ssim(hr, sr)


def evaluate(model: nn.Module, images: list[tuple[str, np.ndarray]], method: str,
             crop: int = 0) -> dict[str, Any]:
    """Validation figures of ``model`` vs bicubic (cv2.INTER_CUBIC) on RGB uint8 images.

    Each HR image is centre-cropped to ``crop`` (0: whole image) and to even size,
    degraded with ``method`` and super-resolved. Returns ``{"per_image": [...], "mean":
    {...}}`` with keys psnr, ssim, bicubic_psnr, bicubic_ssim, gain_db.
    """
    model.eval()
    rows = []
    for name, full in images:
        hr = np.ascontiguousarray(crop_even(center_crop(full, crop)))
        lr = degrade(hr, method)
        with torch.no_grad():
            sr = to_uint8(model(to_tensor(lr)))
        bic = cv2.resize(lr, (hr.shape[1], hr.shape[0]), interpolation=cv2.INTER_CUBIC)
        psnr, ssim = score(sr, hr)
        bpsnr, bssim = score(bic, hr)
        rows.append({"image": name, "psnr": round(psnr, 3), "ssim": round(ssim, 4),
                     "bicubic_psnr": round(bpsnr, 3), "bicubic_ssim": round(bssim, 4),
                     "gain_db": round(psnr - bpsnr, 3)})
    mean = {key: round(float(np.mean([r[key] for r in rows])), 4)
            for key in ("psnr", "ssim", "bicubic_psnr", "bicubic_ssim", "gain_db")}
    return {"per_image": rows, "mean": mean}


# --------------------------------------------------------------------------- options


@dataclass(frozen=True)
class TrainOptions:
    """What ``localsr-cam train`` was asked to do (see :mod:`localsr_cam.cli.train`).

    ``None`` for ``width``, ``loss``, ``scheduler``, ``lr``, ``patch``, ``batch`` means
    the model's registry default. ``command``: the argument list, recorded in the
    manifest entry so a shipped model says how it was made.
    """

    train_dir: Path
    val_dir: Path
    model: str = DEFAULT_SR_MODEL
    width: int | None = None
    depth: int = 2
    dropout: float = 0.1
    no_residual: bool = False
    degrade: str = "area"
    loss: str | None = None
    scheduler: str | None = None
    lr: float | None = None
    patch: int | None = None
    batch: int | None = None
    epochs: int = 20
    iters: int = 200
    time_budget: float | None = None
    val_crop: int = 0
    seed: int = 0
    threads: int = 0
    resume: Path | None = None
    init: Path | None = None
    work_dir: Path = Path(".cache/train")
    out_dir: Path | None = None
    no_export: bool = False
    quiet: bool = False
    command: tuple[str, ...] = ()


@dataclass
class Settings:
    """Validated options, with per-model defaults filled in."""

    args: TrainOptions
    config: dict[str, Any]
    loss: str
    scheduler: str
    lr: float
    patch: int
    batch: int


def resolve(options: TrainOptions) -> Settings:
    """Fill in the model's defaults and check the values; a bad one is a ConfigError."""
    args = options
    spec = model_spec(args.model)
    if not spec.trainable:
        raise ConfigError(f"model {args.model!r} is not trained here; run "
                          f"`{spec.build_command}`")
    d = {**RECIPE_DEFAULTS, **spec.train_defaults}
    # `is None`, not `or`: an explicit 0 must reach the checks below, not become a default
    patch = d["patch"] if args.patch is None else args.patch
    batch = d["batch"] if args.batch is None else args.batch
    lr = d["lr"] if args.lr is None else args.lr
    width = d["width"] if args.width is None else args.width
    if width < 1:
        raise ConfigError(f"--width must be at least 1 (got {width})")
    if patch < 8 or patch % 4:
        raise ConfigError(f"--patch must be a multiple of 4 and >= 8 (got {patch})")
    if batch < 1 or args.epochs < 1 or args.iters < 1 or lr <= 0:
        raise ConfigError("--batch, --epochs, --iters and --lr must be positive")
    if args.time_budget is not None and args.time_budget <= 0:
        raise ConfigError("--time-budget must be positive minutes")
    flags = {"width": width, "depth": args.depth, "dropout": args.dropout,
             "residual": not args.no_residual}
    config = spec.train_config(**flags) if spec.train_config else {"width": width}
    return Settings(args, config, args.loss or d["loss"], args.scheduler or d["scheduler"],
                    lr, patch, batch)


def _make_scheduler(name: str, optimizer: torch.optim.Optimizer, total_epochs: int) -> Any:
    if name == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_epochs,
                                                          eta_min=1e-5)
    return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="max", factor=0.5,
                                                      patience=2)


def _load_checkpoint(path: Path, rebuild: str) -> dict[str, Any]:
    ckpt = safe_torch_load(path, rebuild)
    keys = {"model", "optimizer", "scheduler", "epoch", "best", "best_state", "config", "rng"}
    if not isinstance(ckpt, dict) or not keys <= set(ckpt):
        raise ModelError(f"{path} is not a training checkpoint of `localsr-cam train`; "
                         f"start again without --resume (`{rebuild}`)")
    return ckpt


def train(options: TrainOptions) -> dict[str, Any]:
    """Train as ``options`` say; returns a summary. Writes checkpoints and (unless
    ``no_export``) the engines files and manifest entry. ``threads`` applies to this
    run only: torch's thread count is restored after it."""
    resolved = resolve(options)
    count = options.threads if options.threads > 0 else torch.get_num_threads()
    with torch_settings.threads(count):
        return _train(resolved, options.command)


def _train(settings: Settings, argv: Sequence[str]) -> dict[str, Any]:
    from tqdm import tqdm

    from localsr_cam.models.unet import count_params, macs_per_lr_pixel

    args = settings.args
    spec = model_spec(args.model)
    torch.manual_seed(args.seed)
    train_imgs = [read_rgb(p, settings.patch) for p in list_images(args.train_dir)]
    val_imgs = [(p.name, read_rgb(p)) for p in list_images(args.val_dir)]
    gen = torch.Generator().manual_seed(args.seed)
    sampler = PatchSampler(train_imgs, settings.patch, args.degrade, gen)

    model = build_model(args.model, **settings.config)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr)
    scheduler = _make_scheduler(settings.scheduler, optimizer, args.epochs)
    loss_fn = F.mse_loss if settings.loss == "mse" else F.l1_loss
    start_epoch, best, best_epoch = 0, -math.inf, -1
    best_state = {k: v.clone() for k, v in model.state_dict().items()}
    elapsed_before = 0.0
    init_info: dict[str, Any] | None = None
    if args.init is not None:
        init_info = _init_from(model, args.init, spec.build_command,
                               args.out_dir or engines_dir(), args.model)
        best_state = {k: v.clone() for k, v in model.state_dict().items()}
    if args.resume is not None:
        ckpt = _load_checkpoint(args.resume, spec.build_command)
        if ckpt["config"] != settings.config:
            raise ConfigError(f"{args.resume} was trained with config {ckpt['config']}, "
                              f"not {settings.config}; pass the same model flags")
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        gen.set_state(ckpt["rng"])
        start_epoch, best = int(ckpt["epoch"]), float(ckpt["best"])
        best_epoch = int(ckpt.get("best_epoch", -1))
        best_state = ckpt["best_state"]
        elapsed_before = float(ckpt.get("elapsed_s", 0.0))
        log.info("resumed from %s at epoch %d (best val PSNR %.3f)", args.resume,
                 start_epoch, best)

    work = args.work_dir / args.model
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic() - elapsed_before
    epoch_times: list[float] = []
    history = []
    for epoch in range(start_epoch, args.epochs):
        t_epoch = time.monotonic()
        model.train()
        running = 0.0
        bar = tqdm(range(args.iters), desc=f"{args.model} epoch {epoch + 1}/{args.epochs}",
                   disable=args.quiet, leave=False, file=sys.stderr)
        for _ in bar:
            lr_t, hr_t = sampler.batch(settings.batch)
            loss = loss_fn(model(lr_t), hr_t)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            running += loss.item()
            bar.set_postfix(loss=f"{running / (bar.n + 1):.5f}")
        bar.close()
        val = evaluate(model, val_imgs, args.degrade, args.val_crop)["mean"]
        if settings.scheduler == "cosine":
            scheduler.step()
        else:
            scheduler.step(val["psnr"])
        if val["psnr"] > best:
            best, best_epoch = val["psnr"], epoch + 1
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        epoch_times.append(time.monotonic() - t_epoch)
        elapsed = time.monotonic() - t0
        history.append({"epoch": epoch + 1, "loss": round(running / args.iters, 6),
                        "val_psnr": val["psnr"], "val_gain_db": val["gain_db"],
                        "lr": optimizer.param_groups[0]["lr"]})
        log.info("epoch %d: loss %.5f, val PSNR %.3f (bicubic %.3f, %+.3f dB), SSIM %.4f, "
                 "%.0fs", epoch + 1, running / args.iters, val["psnr"], val["bicubic_psnr"],
                 val["gain_db"], val["ssim"], elapsed)
        ckpt = {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "epoch": epoch + 1, "best": best,
                "best_epoch": best_epoch, "best_state": best_state,
                "config": settings.config, "rng": gen.get_state(), "elapsed_s": elapsed}
        _save(ckpt, work / "last.pt")
        if args.time_budget is not None and \
                elapsed + max(epoch_times) > args.time_budget * 60 and epoch + 1 < args.epochs:
            log.info("time budget of %.1f min reached after epoch %d", args.time_budget,
                     epoch + 1)
            break
    duration = time.monotonic() - t0
    model.load_state_dict(best_state)
    model.eval()
    summary: dict[str, Any] = {"best_epoch": best_epoch, "best_val_psnr": best,
                               "duration_s": round(duration, 1), "history": history,
                               "init": init_info}
    _save(best_state, work / "best.pt")
    if not args.no_export:
        out = args.out_dir or engines_dir()
        summary["entry"] = ship(model, args.model, out, val_imgs, settings, argv, summary,
                                count_params(model), macs_per_lr_pixel(model))
    return summary


def _init_from(model: nn.Module, path: Path, rebuild: str, out: Path,
               name: str) -> dict[str, Any]:
    """Load ``path`` (a plain state dict) into ``model``; describe where it came from.

    When the engines manifest's entry for ``name`` has these very weights (same sha256),
    its training record is kept, so the shipped entry tells the whole history.
    """
    state = read_state_dict(path, rebuild)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise ModelError(f"{path} does not fit this model's config "
                         f"({str(exc).strip().splitlines()[0]}); check the model flags") from None
    digest = sha256_file(path)
    info: dict[str, Any] = {"weights": str(path), "sha256": digest}
    entry = read_manifest(out).get(name, {})
    if entry.get("files", {}).get("weights", {}).get("sha256") == digest:
        info["training"] = entry.get("training")
        info["validation_mean"] = entry.get("validation", {}).get("mean")
    return info


def _save(obj: Any, path: Path) -> None:
    import io

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    write_atomically(path, buffer.getvalue())


PARITY_LIMIT = 1e-4
"""Largest |ONNX Runtime − PyTorch| on [0,1] images a shipped export may have."""


def ship(model: nn.Module, name: str, out: Path, val_imgs: list[tuple[str, np.ndarray]],
         settings: Settings, argv: Sequence[str], summary: dict[str, Any], params: int,
         macs: float) -> dict[str, Any]:
    """Write ``<out>/<model>.pt`` and ``.onnx`` and the manifest entry; returns the entry.

    The slow or fallible steps (export, parity, validation) run before any shipped file
    is touched; then the weights, the ONNX and the manifest entry are written in that
    order, so an interruption never leaves new weights beside an old manifest config.
    An export whose ONNX Runtime output differs from PyTorch by more than
    ``PARITY_LIMIT`` is refused. The validation figures are on whole val images.
    """
    from localsr_cam.zoo.export import export_sr_onnx, parity

    spec = model_spec(name)
    assert spec.weights is not None and spec.onnx is not None
    weights, onnx_path = out / spec.weights, out / spec.onnx
    staged = out / f".{spec.onnx}.new"
    try:
        export_sr_onnx(model, staged)
        worst = parity(model, staged)
        if worst > PARITY_LIMIT:
            raise ModelError(f"the exported {spec.onnx} differs from PyTorch by {worst:.2g} "
                             f"(limit {PARITY_LIMIT:g}); nothing was shipped")
        val = evaluate(model, val_imgs, settings.args.degrade, crop=0)
        _save({k: v.contiguous() for k, v in model.state_dict().items()}, weights)
        os.replace(staged, onnx_path)
    finally:
        staged.unlink(missing_ok=True)
    entry = {
        "kind": "sr", "scale": 2, "architecture": type(model).__name__,
        "config": dict(settings.config), "params": params,
        "macs_per_lr_pixel": round(macs),
        "files": {"weights": {"file": spec.weights, "sha256": sha256_file(weights)},
                  "onnx": {"file": spec.onnx, "sha256": sha256_file(onnx_path)}},
        "onnx": {"input": "image", "output": "sr", "opset": 17,
                 "dynamic_axes": ["batch", "height", "width"],
                 "ort_vs_torch_max_abs": float(f"{worst:.3g}")},
        "validation": {"data": str(settings.args.val_dir), "degrade": settings.args.degrade,
                       "metric_space": "RGB uint8, whole image, data_range 255",
                       "baseline": "bicubic (cv2.INTER_CUBIC)", **val},
        "training": {"command": "localsr-cam train " + shlex.join(argv),
                     "data": str(settings.args.train_dir), "loss": settings.loss,
                     "optimizer": f"Adam lr={settings.lr}", "scheduler": settings.scheduler,
                     "patch": settings.patch, "batch": settings.batch,
                     "steps": summary["history"][-1]["epoch"] * settings.args.iters
                     if summary["history"] else 0,
                     "best_epoch": summary["best_epoch"], "seed": settings.args.seed,
                     "duration_s": summary["duration_s"],
                     **({"init": summary["init"]} if summary.get("init") else {})},
    }
    write_manifest_entry(name, entry, out)
    log.info("shipped %s: val PSNR %.3f dB (bicubic %.3f, %+.3f dB), SSIM %.4f; parity %.2g",
             name, val["mean"]["psnr"], val["mean"]["bicubic_psnr"], val["mean"]["gain_db"],
             val["mean"]["ssim"], worst)
    return entry
