"""Train a super-resolution U-Net (``localsr-cam train``) and ship it to ``engines/``.

HR photos come from folders (plain, or DIV2K layout with ``*_HR`` subfolders);
``--holdout`` moves named photos from them to validation. Each step samples random HR
regions (flips, 90° rotations), degrades them with the camera model of
:mod:`localsr_cam.measure.degrade` (the one ``eval`` uses; ``--degrade area|bicubic``
keeps the old clean downscale), estimates the degradation levels of each LR region with
:func:`localsr_cam.process.estimate.estimate_levels` (as the app does per frame: the net
learns from estimates, not true values), crops a training patch and fits the network
with MSE or L1 and Adam. After each epoch the model is scored on the validation images
under every evaluation suite (PSNR/SSIM on RGB uint8, against bicubic upscaling), the
training state is saved as a checkpoint (``--resume`` continues from it) and the best
epoch's weights are kept. At
the end the best weights are written to ``engines/<model>.pt`` (a plain state dict),
exported to ``engines/<model>.onnx``, and the manifest entry records config, size,
cost, sha256, validation figures and the exact command.
"""

from __future__ import annotations

import logging
import math
import os
import shlex
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from localsr_cam.capture.images import crop_even
from localsr_cam.errors import ConfigError, LocalSRError, ModelError
from localsr_cam.measure import metrics
from localsr_cam.measure.degrade import CLEAN_SHARE
from localsr_cam.models.chroma import JPEG_LEVEL
from localsr_cam.paths import prepare_output_folder, sha256_file, write_atomically
from localsr_cam.runtime import settings as torch_settings
from localsr_cam.train.data import (
    ZOOM_SHARE,
    PatchSampler,
    read_rgb,
    split_holdout,
    to_tensor,
    to_uint8,
)
from localsr_cam.zoo.artifacts import engines_dir, read_manifest, write_manifest_entry
from localsr_cam.zoo.loading import build_model
from localsr_cam.zoo.recipes import read_state_dict, safe_torch_load
from localsr_cam.zoo.registry import DEFAULT_SR_MODEL, model_spec

log = logging.getLogger(__name__)

TRAIN_DEGRADES = ("webcam", "area", "bicubic")
"""``webcam``: the random camera model of :mod:`localsr_cam.measure.degrade`; ``area`` /
``bicubic``: a clean 2× downscale (the old recipe)."""
RECIPE_DEFAULTS: dict[str, Any] = {"loss": "mse", "scheduler": "plateau", "patch": 64,
                                   "batch": 8, "lr": 1e-3, "width": 32, "jpeg_share": 0.0,
                                   "val_suites": "all"}
"""The paper's recipe; a registry entry's ``train_defaults`` override it per model."""


# --------------------------------------------------------------------------- the loss


def below_bicubic_db(sr: torch.Tensor, lr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
    """Per sample, how many dB of PSNR the SR falls below the bicubic upscale of its LR
    input (0 where it is better): float32 (N,), differentiable in ``sr``.

    ``sr``, ``hr`` N×3×2h×2w and ``lr`` N×3×h×w float32 in [0,1]. The mean L1 or MSE lets
    the net lose to bicubic on a few patches (fine texture it takes for noise) for a
    better average; ``train --bicubic-hinge W`` adds W times this, aimed at the goal that
    no image falls below bicubic.
    """
    with torch.no_grad():
        bicubic = F.interpolate(lr, scale_factor=2, mode="bicubic", align_corners=False)
        mse_bicubic = ((bicubic - hr) ** 2).mean(dim=(1, 2, 3))
    mse = ((sr - hr) ** 2).mean(dim=(1, 2, 3))
    return F.relu(10.0 * torch.log10((mse + 1e-8) / (mse_bicubic + 1e-8)))


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


def evaluate_suite(model: nn.Module, images: list[tuple[str, np.ndarray]], suite: str,
                   crop: int = 0) -> dict[str, Any]:
    """Validation figures of ``model`` vs bicubic (cv2.INTER_CUBIC) under one suite.

    Each RGB uint8 HR image is centre-cropped to ``crop`` (0: whole image) and to even
    size, degraded by ``suite`` (seed :func:`~localsr_cam.measure.degrade.image_seed`),
    its levels estimated on the LR
    image, and super-resolved. Returns ``{"per_image": [...], "mean": {...}, "worst":
    {...}}`` with keys psnr, ssim, bicubic_psnr, bicubic_ssim, gain_db.
    """
    from localsr_cam.measure.degrade import degrade_suite, image_seed
    from localsr_cam.process.estimate import estimate_levels

    model.eval()
    rows: list[dict[str, Any]] = []
    for name, full in images:
        hr_in = np.ascontiguousarray(crop_even(center_crop(full, crop)))
        sample = degrade_suite(hr_in, suite, image_seed(suite, hr_in))
        hr, lr = sample.hr, sample.lr
        levels = torch.from_numpy(estimate_levels(lr))[None]
        with torch.no_grad():
            sr = to_uint8(model(to_tensor(lr), levels))
        bic = cv2.resize(lr, (hr.shape[1], hr.shape[0]), interpolation=cv2.INTER_CUBIC)
        psnr, ssim = score(sr, hr)
        bpsnr, bssim = score(bic, hr)
        rows.append({"image": name, "psnr": round(psnr, 3), "ssim": round(ssim, 4),
                     "bicubic_psnr": round(bpsnr, 3), "bicubic_ssim": round(bssim, 4),
                     "gain_db": round(psnr - bpsnr, 3)})
    mean = {key: round(float(np.mean([r[key] for r in rows])), 4)
            for key in ("psnr", "ssim", "bicubic_psnr", "bicubic_ssim", "gain_db")}
    worst = min(rows, key=lambda r: r["gain_db"])
    return {"per_image": rows, "mean": mean,
            "worst": {"image": worst["image"], "gain_db": worst["gain_db"]}}


def evaluate(model: nn.Module, images: list[tuple[str, np.ndarray]], suites: Sequence[str],
             crop: int = 0) -> dict[str, Any]:
    """:func:`evaluate_suite` for each suite, plus the selection ``score``: the mean gain
    over suites, plus the worst image's shortfall below −0.1 dB (any suite), so that a
    model that helps on average but loses somewhere ranks lower."""
    by_suite = {suite: evaluate_suite(model, images, suite, crop) for suite in suites}
    mean_gain = float(np.mean([r["mean"]["gain_db"] for r in by_suite.values()]))
    worst = min(r["worst"]["gain_db"] for r in by_suite.values())
    return {"suites": by_suite, "mean_gain_db": round(mean_gain, 4),
            "worst_gain_db": worst, "score": round(mean_gain + min(0.0, worst + 0.1), 4)}


def _log_to(path: Path) -> None:
    """Also append this module's log records to ``path`` (once per path)."""
    for handler in log.handlers:
        if isinstance(handler, logging.FileHandler) and Path(handler.baseFilename) == path:
            return
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    log.addHandler(handler)


# --------------------------------------------------------------------------- options


@dataclass(frozen=True)
class TrainOptions:
    """What ``localsr-cam train`` was asked to do (see :mod:`localsr_cam.cli.train`).

    ``None`` for ``width``, ``loss``, ``scheduler``, ``lr``, ``patch``, ``batch`` means
    the model's registry default. ``train_dir``/``val_dir``: one folder or several;
    ``holdout``: comma-separated file names in the train folders used for validation
    instead. ``levels``: degradation levels fed to the net (0: blind). ``region``: the
    HR region degraded and estimated per training sample (0: 1.5× the patch).
    ``clean_share``: the share of ``webcam`` samples that are a clean downscale only
    (``None``: the camera model's :data:`~localsr_cam.measure.degrade.CLEAN_SHARE`).
    ``single_share``: the share of the other ``webcam`` samples that have one camera fault
    alone (:func:`~localsr_cam.measure.degrade.sample_params`). ``sharpen_share``: the
    share of the clean ones that the camera's ISP sharpens (unsharp mask).
    ``jpeg_share``: the share of the samples without MJPEG that get it (``None``: the
    model's default, 1 for the MJPEG variant ``fast-jpeg``, else 0).
    ``light_jpeg_share``: the share of the MJPEG draws whose quality is light
    (:data:`~localsr_cam.measure.degrade.LIGHT_JPEG_QUALITY`).
    ``jpeg_chroma``: the net smooths JPEG chroma first (needs ``levels`` ≥ 2).
    ``zoom_out``: the least factor training regions are shrunk by (1: never; see
    :class:`~localsr_cam.train.data.PatchSampler`). ``base``: the upscale FastUNet adds
    its residual to (``bilinear`` or ``bicubic``). ``backproject``: FastUNet ends in a
    back-projection step whose strength the levels set (needs ``levels`` > 0).
    ``val_suites``: comma-separated evaluation suites (or ``all``; ``None``: the model's
    default, the MJPEG suites for ``fast-jpeg``, else ``all``). ``force``: ship even
    a model that does not beat bicubic and the shipped one. ``no_progress``: no progress
    bar (logging is set apart, by the CLI's ``-q``/``-v``). ``command``: the argument
    list, recorded in the manifest entry so a shipped model says how it was made.
    """

    train_dir: Path | tuple[Path, ...]
    val_dir: Path | tuple[Path, ...]
    model: str = DEFAULT_SR_MODEL
    width: int | None = None
    depth: int = 2
    dropout: float = 0.1
    no_residual: bool = False
    base: str = "bilinear"
    backproject: bool = False
    degrade: str = "webcam"
    clean_share: float | None = None
    single_share: float = 0.0
    sharpen_share: float = 0.0
    jpeg_share: float | None = None
    light_jpeg_share: float = 0.0
    zoom_out: float = 1.0
    bicubic_hinge: float = 0.0
    levels: int = 3
    jpeg_chroma: bool = True
    region: int = 0
    holdout: str = ""
    val_suites: str | None = None
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
    force: bool = False
    no_progress: bool = False
    command: tuple[str, ...] = ()


def _folders(value: Path | Sequence[Path]) -> tuple[Path, ...]:
    return (Path(value),) if isinstance(value, str | Path) else tuple(Path(v) for v in value)


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
    region: int = 0
    train_dirs: tuple[Path, ...] = ()
    val_dirs: tuple[Path, ...] = ()
    val_suites: tuple[str, ...] = field(default_factory=tuple)
    jpeg_share: float = 0.0


def resolve(options: TrainOptions) -> Settings:
    """Fill in the model's defaults and check the values; a bad one is a ConfigError."""
    from localsr_cam.measure.degrade import suite_names

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
    if args.levels < 0:
        raise ConfigError(f"--levels must be 0 or more (got {args.levels})")
    if args.clean_share is not None and not 0.0 <= args.clean_share <= 1.0:
        raise ConfigError(f"--clean-share must be within 0..1 (got {args.clean_share})")
    if not 0.0 <= args.single_share <= 1.0:
        raise ConfigError(f"--single-share must be within 0..1 (got {args.single_share})")
    if not 0.0 <= args.sharpen_share <= 1.0:
        raise ConfigError(f"--sharpen-share must be within 0..1 (got {args.sharpen_share})")
    jpeg_share = d["jpeg_share"] if args.jpeg_share is None else args.jpeg_share
    if not 0.0 <= jpeg_share <= 1.0:
        raise ConfigError(f"--jpeg-share must be within 0..1 (got {jpeg_share})")
    if not 0.0 <= args.light_jpeg_share <= 1.0:
        raise ConfigError("--light-jpeg-share must be within 0..1 "
                          f"(got {args.light_jpeg_share})")
    if args.bicubic_hinge < 0:
        raise ConfigError(f"--bicubic-hinge must be 0 or more (got {args.bicubic_hinge})")
    if not 0.1 <= args.zoom_out <= 1.0:
        raise ConfigError(f"--zoom-out must be within 0.1..1 (got {args.zoom_out})")
    if args.degrade not in TRAIN_DEGRADES:
        raise ConfigError(f"--degrade must be one of {', '.join(TRAIN_DEGRADES)} "
                          f"(got {args.degrade!r})")
    region = args.region or patch * 3 // 2 // 2 * 2
    if region < patch or region % 2:
        raise ConfigError(f"--region must be even and at least --patch (got {region})")
    val_suites = d["val_suites"] if args.val_suites is None else args.val_suites
    suites = tuple(n for part in val_suites.split(",") if part.strip()
                   for n in suite_names(part.strip()))
    flags = {"width": width, "depth": args.depth, "dropout": args.dropout,
             "residual": not args.no_residual, "levels": args.levels, "base": args.base,
             "backproject": args.backproject,
             "chroma": args.jpeg_chroma and args.levels > JPEG_LEVEL}
    config = spec.train_config(**flags) if spec.train_config else {"width": width}
    if args.backproject and not config.get("backproject"):
        raise ConfigError(f"--backproject is FastUNet's (--model fast), not {args.model!r}'s")
    return Settings(args, config, args.loss or d["loss"], args.scheduler or d["scheduler"],
                    lr, patch, batch, region, _folders(args.train_dir),
                    _folders(args.val_dir), suites, jpeg_share)


def _make_scheduler(name: str, optimizer: torch.optim.Optimizer, total_epochs: int) -> Any:
    if name == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_epochs,
                                                          eta_min=1e-5)
    return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="max", factor=0.5,
                                                      patience=2)


def _load_checkpoint(path: Path, rebuild: str) -> dict[str, Any]:
    ckpt = safe_torch_load(path, rebuild)
    keys = {"model", "optimizer", "scheduler", "epoch", "best", "best_state", "config",
            "sampler_rng"}
    if not isinstance(ckpt, dict) or not keys <= set(ckpt):
        raise ModelError(f"{path} is not a training checkpoint of `localsr-cam train`; "
                         f"start again without --resume (`{rebuild}`)")
    return ckpt


def train(options: TrainOptions) -> dict[str, Any]:
    """Train as ``options`` say; returns a summary. Writes checkpoints and (unless
    ``no_export``) the engines files and manifest entry, or the work dir's copy when the
    model is not better than what ships. ``threads`` applies to this run only: torch's
    thread count is restored after it."""
    resolved = resolve(options)
    prepare_output_folders(options)
    count = options.threads if options.threads > 0 else torch.get_num_threads()
    with torch_settings.threads(count):
        return _train(resolved, options.command)


def prepare_output_folders(options: TrainOptions) -> None:
    """Create the work folder (``WORK_DIR/<model>``) and, unless ``no_export``, the
    engines folder, and check that files can be written into both, before any data is
    read: a bad ``--work-dir`` or ``--out-dir`` is a :class:`SinkError` now, not a
    traceback at the first checkpoint or after the last epoch."""
    prepare_output_folder(options.work_dir / options.model, "--work-dir", "train.log")
    if not options.no_export:
        out, flag = ((options.out_dir, "--out-dir") if options.out_dir is not None
                     else (engines_dir(), "the engines folder"))
        prepare_output_folder(out, flag, "manifest.json")


def _train(settings: Settings, argv: Sequence[str]) -> dict[str, Any]:
    from tqdm import tqdm

    from localsr_cam.models.unet import count_params, macs_per_lr_pixel

    args = settings.args
    spec = model_spec(args.model)
    torch.manual_seed(args.seed)
    train_paths, val_paths = split_holdout(settings.train_dirs, settings.val_dirs,
                                           args.holdout)
    train_imgs = [read_rgb(p, settings.patch) for p in train_paths]
    val_imgs = [(p.name, read_rgb(p)) for p in val_paths]
    sampler = PatchSampler(train_imgs, settings.patch, args.degrade, args.seed,
                           settings.region, args.clean_share, args.zoom_out,
                           single_share=args.single_share,
                           sharpen_share=args.sharpen_share,
                           jpeg_share=settings.jpeg_share,
                           light_jpeg_share=args.light_jpeg_share)

    model = build_model(args.model, **settings.config)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr)
    scheduler = _make_scheduler(settings.scheduler, optimizer, args.epochs)
    loss_fn = F.mse_loss if settings.loss == "mse" else F.l1_loss
    start_epoch, best, best_epoch = 0, -math.inf, -1
    best_state = {k: v.clone() for k, v in model.state_dict().items()}
    elapsed_before = 0.0
    history: list[dict[str, Any]] = []
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
        sampler.set_state(ckpt["sampler_rng"])
        start_epoch, best = int(ckpt["epoch"]), float(ckpt["best"])
        best_epoch = int(ckpt.get("best_epoch", -1))
        best_state = ckpt["best_state"]
        elapsed_before = float(ckpt.get("elapsed_s", 0.0))
        history = list(ckpt.get("history", []))
        log.info("resumed from %s at epoch %d (best val PSNR %.3f)", args.resume,
                 start_epoch, best)

    work = args.work_dir / args.model
    work.mkdir(parents=True, exist_ok=True)
    _log_to(work / "train.log")
    log.info("training on %d images, validating on %d (%s) under %s", len(train_imgs),
             len(val_imgs), ", ".join(n for n, _ in val_imgs), ", ".join(settings.val_suites))

    t0 = time.monotonic() - elapsed_before
    epoch_times: list[float] = []
    for epoch in range(start_epoch, args.epochs):
        t_epoch = time.monotonic()
        model.train()
        running = 0.0
        bar = tqdm(range(args.iters), desc=f"{args.model} epoch {epoch + 1}/{args.epochs}",
                   disable=args.no_progress, leave=False, file=sys.stderr)
        for _ in bar:
            lr_t, levels_t, hr_t = sampler.batch(settings.batch)
            sr_t = model(lr_t, levels_t)
            loss = loss_fn(sr_t, hr_t)
            if args.bicubic_hinge > 0:
                loss = loss + args.bicubic_hinge * below_bicubic_db(sr_t, lr_t, hr_t).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            running += loss.item()
            bar.set_postfix(loss=f"{running / (bar.n + 1):.5f}")
        bar.close()
        report = evaluate(model, val_imgs, settings.val_suites, args.val_crop)
        if settings.scheduler == "cosine":
            scheduler.step()
        else:
            scheduler.step(report["score"])
        if report["score"] > best:
            best, best_epoch = report["score"], epoch + 1
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        epoch_times.append(time.monotonic() - t_epoch)
        elapsed = time.monotonic() - t0
        gains = {k: v["mean"]["gain_db"] for k, v in report["suites"].items()}
        worsts = {k: v["worst"]["gain_db"] for k, v in report["suites"].items()}
        history.append({"epoch": epoch + 1, "loss": round(running / args.iters, 6),
                        "val_score": report["score"], "val_gain_db": gains,
                        "val_worst_db": worsts, "lr": optimizer.param_groups[0]["lr"]})
        log.info("epoch %d: loss %.5f, val score %.3f; gain/worst dB %s; %.0fs", epoch + 1,
                 running / args.iters, report["score"],
                 ", ".join(f"{k} {gains[k]:+.2f}/{worsts[k]:+.2f}" for k in gains), elapsed)
        ckpt = {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "epoch": epoch + 1, "best": best,
                "best_epoch": best_epoch, "best_state": best_state,
                "config": settings.config, "sampler_rng": sampler.state(),
                "elapsed_s": elapsed, "history": history}
        _save(ckpt, work / "last.pt")
        if args.time_budget is not None and \
                elapsed + max(epoch_times) > args.time_budget * 60 and epoch + 1 < args.epochs:
            log.info("time budget of %.1f min reached after epoch %d", args.time_budget,
                     epoch + 1)
            break
    duration = time.monotonic() - t0
    model.load_state_dict(best_state)
    model.eval()
    summary: dict[str, Any] = {"best_epoch": best_epoch, "best_val_score": best,
                               "duration_s": round(duration, 1), "history": history,
                               "init": init_info,
                               "epochs_done": epoch_done(start_epoch, history)}
    _save(best_state, work / "best.pt")
    if not args.no_export:
        out = args.out_dir or engines_dir()
        summary["entry"] = ship(model, args.model, out, val_imgs, settings, argv, summary,
                                count_params(model), macs_per_lr_pixel(model), work,
                                train_imgs)
    return summary


def epoch_done(start_epoch: int, history: Sequence[dict[str, Any]]) -> int:
    """Epochs trained so far (a resumed run that trained none still has its past)."""
    return max([start_epoch, *(int(h["epoch"]) for h in history)])


IDENTITY_AT_START = ("film.", "backproject.")
"""Layers that start as the identity: weights without them still start a net that has
them (``--init``)."""


def _init_from(model: nn.Module, path: Path, rebuild: str, out: Path,
               name: str) -> dict[str, Any]:
    """Load ``path`` (a plain state dict) into ``model``; describe where it came from.

    When the engines manifest's entry for ``name`` has these very weights (same sha256),
    its training record is kept, so the shipped entry tells the whole history.
    """
    state = read_state_dict(path, rebuild)
    try:
        # a net trained without levels (or back-projection) may start one that has
        # them: those layers are missing and stay at their identity start
        result = model.load_state_dict(state, strict=False)
        unexpected = result.unexpected_keys
        if unexpected and all(k.startswith("backproject.") for k in unexpected):
            raise ModelError(f"{path} ends in a back-projection step (the shipped "
                             "FastUNet does): add --backproject")
        if unexpected or any(not k.startswith(IDENTITY_AT_START)
                             for k in result.missing_keys):
            raise RuntimeError(f"missing {result.missing_keys}, unexpected "
                               f"{result.unexpected_keys}")
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

BACKUP_DIR = ".replaced"
"""Folder inside the engines folder where replaced weights, ONNX and manifest entries
are kept (``<model>-<UTC time>.{pt,onnx,json}``); git-ignored."""


def _shipped_model(name: str, out: Path) -> nn.Module | None:
    """The model now shipped in ``out`` (None when there is none or it does not load)."""
    spec = model_spec(name)
    assert spec.weights is not None
    path = out / spec.weights
    if not path.exists():
        return None
    entry = read_manifest(out).get(name, {})
    try:
        model = build_model(name, **(entry.get("config", {}) if isinstance(entry, dict)
                                     else {}))
        model.load_state_dict(read_state_dict(path, spec.build_command))
    except (LocalSRError, RuntimeError) as exc:
        log.warning("the shipped %s does not load (%s); comparing with bicubic only", path,
                    exc)
        return None
    return model.eval()


def _incumbent(name: str, out: Path) -> tuple[str, nn.Module | None]:
    """The model a newly trained ``name`` is compared with, by name: the one shipped in
    ``out`` as ``name``; for an MJPEG variant with no files of its own yet, the model
    that serves the MJPEG frames meanwhile (``fast-jpeg``: ``fast``)."""
    model = _shipped_model(name, out)
    fallback = model_spec(name).mjpeg_variant_of
    if model is None and fallback is not None:
        return fallback, _shipped_model(fallback, out)
    return name, model


def flicker_ratio(model: nn.Module, name: str, int8: Path | None = None) -> float | None:
    """The flicker figure of SR net ``model`` (served as model ``name``: its ``int8``
    ONNX file in ONNX Runtime when given — what the CPU backend runs —, else float32
    PyTorch) on ``bench``'s still noisy scene, with the shipped segmenters; ``None`` when
    it cannot be measured here (the segmenters are not fetched), which is logged."""
    from localsr_cam.config import ModelConfig, PipelineConfig
    from localsr_cam.measure.flicker import measure_flicker
    from localsr_cam.runtime.ort import OrtEngine
    from localsr_cam.runtime.torch import TorchEngine
    from localsr_cam.zoo.backends import open_engine

    def engines(engine: str, backend: str, threads: int, weights: str | None,
                precision: str) -> Any:
        if engine != name:
            return open_engine(engine, backend, threads, weights, precision)
        if int8 is not None:
            return OrtEngine(name, int8, threads, precision="int8").open()
        return TorchEngine(name, "cpu", threads, kind="sr", module=model).open()

    config = PipelineConfig(model=ModelConfig(model=name, backend="cpu"))
    try:
        return measure_flicker(config, FLICKER_SIZE, engine_factory=engines)["ratio"]
    except LocalSRError as exc:
        log.warning("flicker not measured (%s); shipping is decided without it", exc)
        return None


def _stage_int8(model: nn.Module, fp32_onnx: Path, out: Path, train_imgs: Sequence[np.ndarray],
                val_imgs: list[tuple[str, np.ndarray]], settings: Settings) -> dict[str, Any]:
    """Quantize ``fp32_onnx`` to ``out`` and validate it like the model: its manifest
    record, with the int8 file's mean gain per suite (what the CPU backend delivers).
    A model whose int8 form drifts too far ships without one (a warning says so; the CPU
    backend then runs it in float32): the record says why."""
    from localsr_cam.train.quantize import OrtSR, quantize_sr

    try:
        record = quantize_sr(model, fp32_onnx, out, train_imgs, seed=settings.args.seed)
    except ModelError as exc:
        log.warning("no int8 form: %s", exc)
        return {"refused": str(exc)}
    report = evaluate(OrtSR(out), val_imgs, settings.val_suites, crop=settings.args.val_crop)
    record["validation_mean_gain_db"] = {suite: r["mean"]["gain_db"]
                                         for suite, r in report["suites"].items()}
    return record


def _existing(path: Path | None) -> Path | None:
    """``path`` when it names a file that exists, else ``None``."""
    return path if path is not None and path.is_file() else None


FLICKER_LIMIT = 1.0
"""A trained net may not make a still, noisy scene shimmer more than bicubic upscaling
does (temporal std in the person, ours ÷ bicubic; :mod:`localsr_cam.measure.flicker`)
— unless the shipped one already did, and then no more than it."""
FLICKER_SIZE = (640, 360)
"""The flicker scene's input size when ``train`` measures it (``bench``'s default)."""


def ship_decision(new: dict[str, Any], shipped: dict[str, Any] | None,
                  flicker: tuple[float | None, float | None] = (None, None)
                  ) -> tuple[bool, str]:
    """Whether a trained model may replace the shipped one, and why (one line).

    ``new`` / ``shipped``: :func:`evaluate` reports on the same images and suites. The
    new model must beat bicubic (mean gain > 0 under every suite) and the shipped model
    (a higher selection score), if there is one. ``flicker``: the flicker ratios of the
    new and the shipped model (``None``: not measured); the new one must stay within
    :data:`FLICKER_LIMIT`, or the shipped one's ratio when that is higher.
    """
    losing = [s for s, r in new["suites"].items() if r["mean"]["gain_db"] <= 0]
    if losing:
        gains = ", ".join(f"{new['suites'][s]['mean']['gain_db']:+.3f}" for s in losing)
        return False, (f"it does not beat bicubic under {', '.join(losing)} "
                       f"(mean gain {gains} dB)")
    if shipped is not None and new["score"] <= shipped["score"]:
        return False, (f"its validation score {new['score']:+.3f} does not beat the shipped "
                       f"model's {shipped['score']:+.3f}")
    ratio, shipped_ratio = flicker
    allowed = max(FLICKER_LIMIT, shipped_ratio or 0.0)
    if ratio is not None and ratio > allowed:
        than = "bicubic" if allowed == FLICKER_LIMIT else "the shipped model"
        return False, (f"it flickers more than {than} on a still noisy scene (ratio "
                       f"{ratio:.3f} > {allowed:.3f})")
    what = "bicubic" if shipped is None else \
        f"bicubic and the shipped model (score {shipped['score']:+.3f})"
    return True, f"it beats {what} with score {new['score']:+.3f}"


def _backup(paths: Sequence[Path], entry: Any, out: Path, name: str) -> Path:
    """Copy the files about to be replaced (and their manifest entry) to BACKUP_DIR."""
    import json

    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    folder = out / BACKUP_DIR
    folder.mkdir(parents=True, exist_ok=True)
    for path in paths:
        if path.exists():
            shutil.copy2(path, folder / f"{name}-{stamp}-{path.name}")
    if entry:
        (folder / f"{name}-{stamp}.json").write_text(json.dumps(entry, indent=2) + "\n")
    return folder


def ship(model: nn.Module, name: str, out: Path, val_imgs: list[tuple[str, np.ndarray]],
         settings: Settings, argv: Sequence[str], summary: dict[str, Any], params: int,
         macs: float, work: Path | None = None,
         train_imgs: Sequence[np.ndarray] = ()) -> dict[str, Any]:
    """Write ``<out>/<model>.pt``, ``.onnx`` (and the int8 ONNX, where the model has one,
    calibrated on ``train_imgs``: :mod:`localsr_cam.train.quantize`) and the manifest
    entry — only when the model is better; returns the entry (with ``"shipped"``: true
    or false).

    The slow or fallible steps (export, parity, quantization, validation of the new and the shipped
    model on the val images — whole, or ``--val-crop`` centre crops as in the epochs —
    under every ``--val-suites`` suite) run before any
    shipped file is touched. Unless :func:`ship_decision` allows it (or ``--force``),
    the files go to ``work`` instead and a warning says why. Otherwise the old files and
    entry are copied to ``<out>/.replaced/`` and the weights, the ONNX and the manifest
    entry are written in that order, so an interruption never leaves new weights beside
    an old manifest config. An export whose ONNX Runtime output differs from PyTorch by
    more than ``PARITY_LIMIT`` is refused.
    """
    from localsr_cam.process.estimate import LEVEL_NAMES
    from localsr_cam.zoo.export import export_sr_onnx, parity

    args = settings.args
    spec = model_spec(name)
    assert spec.weights is not None and spec.onnx is not None
    staged = out / f".{spec.onnx}.new"
    staged_int8 = out / f".{spec.onnx_int8}.new" if spec.onnx_int8 and train_imgs else None
    int8: dict[str, Any] | None = None
    try:
        export_sr_onnx(model, staged)
        worst = parity(model, staged)
        if worst > PARITY_LIMIT:
            raise ModelError(f"the exported {spec.onnx} differs from PyTorch by {worst:.2g} "
                             f"(limit {PARITY_LIMIT:g}); nothing was shipped")
        if staged_int8 is not None:
            int8 = _stage_int8(model, staged, staged_int8, train_imgs, val_imgs, settings)
        val = evaluate(model, val_imgs, settings.val_suites, crop=args.val_crop)
        old_name, old_model = _incumbent(name, out)
        old = None if old_model is None else evaluate(old_model, val_imgs,
                                                      settings.val_suites, args.val_crop)
        ok, why = ship_decision(val, old)
        flicker: tuple[float | None, float | None] = (None, None)
        if ok:  # the flicker scene takes seconds: only for a model good enough otherwise
            old_spec = model_spec(old_name)
            old_int8 = out / old_spec.onnx_int8 if old_spec.onnx_int8 else None
            flicker = (flicker_ratio(model, name, _existing(staged_int8)),
                       None if old_model is None
                       else flicker_ratio(old_model, name, _existing(old_int8)))
            ok, why = ship_decision(val, old, flicker)
        if args.force and not ok:
            ok, why = True, f"--force, although {why}"
        target = out if ok else (work or args.work_dir / name)
        target.mkdir(parents=True, exist_ok=True)
        weights, onnx_path = target / spec.weights, target / spec.onnx
        int8_path = target / spec.onnx_int8 if spec.onnx_int8 else None
        # quantize_sr writes its file only when the int8 form was accepted
        has_int8 = _existing(staged_int8) is not None
        if ok:
            _backup([weights, onnx_path, *([int8_path] if int8_path else [])],
                    read_manifest(out).get(name), out, name)
            if int8_path is not None and not has_int8:
                int8_path.unlink(missing_ok=True)  # the old model's int8 form is not this one
        _save({k: v.contiguous() for k, v in model.state_dict().items()}, weights)
        # a rename is atomic within the engines folder; the work dir may be elsewhere
        move = os.replace if ok else shutil.move
        move(staged, onnx_path)
        if has_int8:
            assert staged_int8 is not None and int8_path is not None
            move(staged_int8, int8_path)
    finally:
        staged.unlink(missing_ok=True)
        if staged_int8 is not None:
            staged_int8.unlink(missing_ok=True)
    k = int(settings.config.get("levels", 0))
    entry = {
        "kind": "sr", "scale": 2, "architecture": type(model).__name__,
        "config": dict(settings.config), "params": params,
        "macs_per_lr_pixel": round(macs),
        "files": {"weights": {"file": spec.weights, "sha256": sha256_file(weights)},
                  "onnx": {"file": spec.onnx, "sha256": sha256_file(onnx_path)},
                  **({"onnx_int8": {"file": int8_path.name,
                                    "sha256": sha256_file(int8_path)}}
                     if int8_path is not None and has_int8 else {})},
        **({"int8": int8} if int8 is not None else {}),
        "onnx": {"input": "image", "output": "sr", "opset": 17,
                 **({"levels_input": "levels", "levels": list(LEVEL_NAMES[:k])} if k else {}),
                 "dynamic_axes": ["batch", "height", "width"],
                 "ort_vs_torch_max_abs": float(f"{worst:.3g}")},
        "validation": {"data": [str(d) for d in settings.val_dirs],
                       "holdout": sorted(n.strip() for n in args.holdout.split(",")
                                         if n.strip()),
                       "images": [n for n, _ in val_imgs],
                       "suites": {s: {"mean": r["mean"], "worst": r["worst"],
                                      "per_image": r["per_image"]}
                                  for s, r in val["suites"].items()},
                       "mean_gain_db": val["mean_gain_db"],
                       "worst_gain_db": val["worst_gain_db"], "score": val["score"],
                       "shipped_before": None if old is None else {
                           "model": old_name, "score": old["score"],
                           "mean_gain_db": {s: r["mean"]["gain_db"]
                                            for s, r in old["suites"].items()},
                           "flicker_ratio": flicker[1]},
                       "flicker_ratio": flicker[0],
                       "metric_space": "RGB uint8, data_range 255, "
                                       + (f"centre {args.val_crop} px crops"
                                          if args.val_crop else "whole images"),
                       "baseline": "bicubic (cv2.INTER_CUBIC)",
                       "levels": "estimated per image (localsr_cam.process.estimate)"},
        "training": {"command": "localsr-cam train " + shlex.join(argv),
                     "data": [str(d) for d in settings.train_dirs],
                     "recipe": {"degradation": args.degrade
                                + (" (localsr_cam.measure.degrade.sample_params)"
                                   if args.degrade == "webcam" else " clean downscale"),
                                **({"clean_share": CLEAN_SHARE if args.clean_share is None
                                                  else args.clean_share,
                                    **({"single_share": args.single_share}
                                       if args.single_share else {}),
                                    **({"sharpen_share": args.sharpen_share}
                                       if args.sharpen_share else {}),
                                    **({"jpeg_share": settings.jpeg_share}
                                       if settings.jpeg_share else {}),
                                    **({"light_jpeg_share": args.light_jpeg_share}
                                       if args.light_jpeg_share else {})}
                                   if args.degrade == "webcam" else {}),
                                "levels": "estimated on each degraded LR region "
                                          f"({settings.region} px HR) by estimate_levels",
                                "region": settings.region,
                                **({"zoom_out": args.zoom_out, "zoom_share": ZOOM_SHARE}
                                   if args.zoom_out < 1.0 else {})},
                     "loss": settings.loss
                     + (f" + {args.bicubic_hinge} × dB below bicubic (per sample)"
                        if args.bicubic_hinge else ""),
                     "optimizer": f"Adam lr={settings.lr}", "scheduler": settings.scheduler,
                     "patch": settings.patch, "batch": settings.batch,
                     "steps": summary["epochs_done"] * args.iters,
                     "best_epoch": summary["best_epoch"], "seed": args.seed,
                     "duration_s": summary["duration_s"],
                     **({"init": summary["init"]} if summary.get("init") else {})},
        "shipped": ok, "ship_decision": why,
    }
    if ok:
        write_manifest_entry(name, entry, out)
        log.info("shipped %s to %s: %s; parity %.2g", name, out, why, worst)
    else:
        import json

        write_atomically(target / f"{name}.manifest-entry.json",
                         (json.dumps(entry, indent=2, sort_keys=True) + "\n").encode())
        log.warning("NOT shipped %s: %s; the model is in %s (pass --force to ship it "
                    "anyway)", name, why, target)
    return entry
