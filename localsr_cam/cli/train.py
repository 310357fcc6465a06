"""``localsr-cam train``: its flags, turned into a :class:`TrainOptions` for train."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from localsr_cam.cli.common import verbosity_parent
from localsr_cam.zoo.registry import DEFAULT_SR_MODEL, trainable_models

if TYPE_CHECKING:
    from localsr_cam.train.trainer import TrainOptions


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "train", parents=[verbosity_parent(long_quiet=False)],
        help="train a U-Net on a folder of HR images",
        description="Train a registered super-resolution model (2x) and ship it to engines/.")
    parser.add_argument("--model", choices=trainable_models(), default=DEFAULT_SR_MODEL)
    parser.add_argument("--train-dir", type=Path, required=True, action="append",
                        help="HR images (plain folder or DIV2K *_HR subfolders); repeat "
                             "for more folders")
    parser.add_argument("--val-dir", type=Path, required=True, action="append",
                        help="HR validation images (model selection and reported figures); "
                             "repeatable")
    parser.add_argument("--holdout", default="",
                        help="comma-separated file names (e.g. donna.png) in the train "
                             "folders to validate on instead of training")
    parser.add_argument("--width", type=int, help="channels [default: the model's]")
    parser.add_argument("--depth", type=int, default=2, help="FastUNet half-res conv blocks")
    parser.add_argument("--dropout", type=float, default=0.1, help="PaperUNet dropout")
    parser.add_argument("--no-residual", action="store_true",
                        help="PaperUNet outputs the image directly, as in the paper")
    parser.add_argument("--base", choices=("bilinear", "bicubic"), default="bilinear",
                        help="FastUNet adds its residual to this 2x upscale; bicubic is "
                             "what the gain is measured against [default: %(default)s]")
    parser.add_argument("--backproject", action="store_true",
                        help="FastUNet ends in a back-projection step (the SR's own 2x "
                             "area downscale made to match its input, as strongly as the "
                             "degradation levels say; starts as the identity)")
    parser.add_argument("--degrade", choices=("webcam", "area", "bicubic"), default="webcam",
                        help="training LR: the random camera model (webcam) or a clean "
                             "area/bicubic downscale [default: %(default)s]")
    parser.add_argument("--clean-share", type=float, metavar="P",
                        help="share of the webcam samples that are a clean downscale only "
                             "[default: the camera model's own, 0.2]")
    parser.add_argument("--single-share", type=float, default=0.0, metavar="P",
                        help="share of the other webcam samples that have one camera fault "
                             "alone (MJPEG, sensor noise or lens blur), so the net learns "
                             "each apart from the others it comes with [default: 0]")
    parser.add_argument("--sharpen-share", type=float, default=0.0, metavar="P",
                        help="share of the clean webcam samples that the camera's ISP "
                             "sharpens (unsharp mask, amount 0.2-0.8), so the net learns "
                             "not to sharpen an already sharpened frame [default: 0]")
    parser.add_argument("--jpeg-share", type=float, metavar="P",
                        help="share of the webcam samples without MJPEG that get it "
                             "(quality 50-95) [default: 1 for fast-jpeg, the MJPEG variant "
                             "that fast switches to on MJPEG input; else 0]")
    parser.add_argument("--bicubic-hinge", type=float, default=0.0, metavar="W",
                        help="add W times the mean over the batch of the dB by which a "
                             "sample's SR falls below the bicubic upscale of its input "
                             "(0 where it is better), aimed at the goal that no image "
                             "loses to bicubic [default: 0, off]")
    parser.add_argument("--zoom-out", type=float, default=1.0, metavar="F",
                        help="shrink half of the training regions by a random factor "
                             "between F and 1 first, so the net also learns the detail "
                             "density of small pictures (webcam frames) [default: 1, "
                             "never; the shipped FastUNet: 0.4]")
    parser.add_argument("--levels", type=int, default=3,
                        help="estimated degradation levels fed to the net (0: a blind net) "
                             "[default: %(default)s]")
    parser.add_argument("--no-jpeg-chroma", dest="jpeg_chroma", action="store_false",
                        help="no JPEG chroma smoothing in front of the net (it is on by "
                             "default when the net takes levels; see BENCHMARKS.md)")
    parser.add_argument("--region", type=int, default=0,
                        help="HR region degraded and estimated per sample (0: 1.5x patch)")
    parser.add_argument("--val-suites",
                        help="evaluation suites to validate on (comma-separated, or all) "
                             "[default: all; for fast-jpeg the MJPEG ones, lossy,lowlight]")
    parser.add_argument("--loss", choices=("mse", "l1"))
    parser.add_argument("--scheduler", choices=("plateau", "cosine"))
    parser.add_argument("--lr", type=float, help="Adam learning rate")
    parser.add_argument("--patch", type=int, help="HR patch side (even)")
    parser.add_argument("--batch", type=int)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--iters", type=int, default=200, help="steps per epoch")
    parser.add_argument("--time-budget", type=float, metavar="MIN",
                        help="stop after the epoch that would overrun MIN minutes")
    parser.add_argument("--val-crop", type=int, default=0,
                        help="validate on centre crops of this HR side (0: whole images)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--resume", type=Path, help="checkpoint to continue from")
    parser.add_argument("--init", type=Path, metavar="WEIGHTS",
                        help="start from these weights (a plain state dict, e.g. a shipped "
                             ".pt) with a fresh optimizer and schedule: fine-tuning")
    parser.add_argument("--work-dir", type=Path, default=Path(".cache/train"),
                        help="checkpoints go to WORK_DIR/<model>/")
    parser.add_argument("--out-dir", type=Path, help="engines folder (default: the project's)")
    parser.add_argument("--no-export", action="store_true",
                        help="keep the checkpoints only (no engines files, no manifest)")
    parser.add_argument("--force", action="store_true",
                        help="ship to the engines folder even when the model does not beat "
                             "bicubic and the shipped model on validation")
    parser.add_argument("--no-progress", "--quiet", dest="no_progress", action="store_true",
                        help="no progress bar")
    parser.set_defaults(handler=run)


def options_from(args: argparse.Namespace) -> TrainOptions:
    """The parsed ``train`` flags as the trainer's options (``args.argv``: the flags as
    given, recorded in the shipped manifest entry)."""
    from localsr_cam.train.trainer import TrainOptions

    return TrainOptions(
        train_dir=tuple(args.train_dir), val_dir=tuple(args.val_dir), model=args.model,
        width=args.width, depth=args.depth, dropout=args.dropout,
        no_residual=args.no_residual, base=args.base, backproject=args.backproject,
        degrade=args.degrade,
        clean_share=args.clean_share, single_share=args.single_share,
        sharpen_share=args.sharpen_share, jpeg_share=args.jpeg_share,
        zoom_out=args.zoom_out, bicubic_hinge=args.bicubic_hinge, levels=args.levels,
        jpeg_chroma=args.jpeg_chroma,
        region=args.region, holdout=args.holdout, val_suites=args.val_suites,
        loss=args.loss, scheduler=args.scheduler, lr=args.lr,
        patch=args.patch, batch=args.batch, epochs=args.epochs, iters=args.iters,
        time_budget=args.time_budget, val_crop=args.val_crop, seed=args.seed,
        threads=args.threads, resume=args.resume, init=args.init, work_dir=args.work_dir,
        out_dir=args.out_dir, no_export=args.no_export, force=args.force,
        quiet=args.no_progress,
        command=tuple(args.argv))


def run(args: argparse.Namespace) -> int:
    from localsr_cam.train.trainer import train

    train(options_from(args))
    return 0
