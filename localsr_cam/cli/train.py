"""``localsr-cam train``: its flags, turned into a :class:`TrainOptions` for train."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from localsr_cam.cli.common import verbosity_parent
from localsr_cam.zoo.registry import DEFAULT_SR_MODEL, model_spec, trainable_models

if TYPE_CHECKING:
    from localsr_cam.train.trainer import TrainOptions

RECIPE_DEFAULTS: dict[str, Any] = {"loss": "mse", "scheduler": "plateau", "patch": 64,
                                   "batch": 8, "lr": 1e-3, "width": 32}
"""The recipe defaults of :data:`localsr_cam.train.trainer.RECIPE_DEFAULTS` that the help
shows (that module imports torch, too slow for ``--help``); a test keeps them equal."""
DEFAULT_WORK_DIR = Path(".cache/train")
"""``--work-dir``'s default, relative to the current folder."""


def recipe_default(key: str) -> str:
    """``[default: ...]`` for a flag whose default is the model's training recipe: each
    value with the trainable models it is the default of, e.g.
    ``[default: the model's recipe: l1 for fast and fast-jpeg, mse for paper]``."""
    models: dict[str, list[str]] = {}
    for name in trainable_models():
        value = {**RECIPE_DEFAULTS, **model_spec(name).train_defaults}.get(key)
        if value is not None:
            text = f"{value:g}" if isinstance(value, float) else str(value)
            models.setdefault(text, []).append(name)
    shown = ", ".join(f"{value} for {' and '.join(names)}" for value, names in models.items())
    return f"[default: the model's recipe: {shown}]"


def add_parser(commands: Any) -> None:
    """Declare ``localsr-cam train`` and its flags; every flag's help names its default."""
    parser = commands.add_parser(
        "train", parents=[verbosity_parent()],
        help="train a U-Net on a folder of HR images",
        description="Train a registered super-resolution model (2x) and ship it to engines/.")
    parser.add_argument("--model", choices=trainable_models(), default=DEFAULT_SR_MODEL,
                        help="the model to train [default: %(default)s]")
    parser.add_argument("--train-dir", type=Path, required=True, action="append",
                        help="HR images (plain folder or DIV2K *_HR subfolders); repeat "
                             "for more folders")
    parser.add_argument("--val-dir", type=Path, required=True, action="append",
                        help="HR validation images (model selection and reported figures); "
                             "repeatable")
    parser.add_argument("--holdout", default="",
                        help="comma-separated file names (e.g. donna.png) in the train "
                             "folders to validate on instead of training [default: none]")
    parser.add_argument("--width", type=int,
                        help=f"channels {recipe_default('width')}")
    parser.add_argument("--depth", type=int, default=2,
                        help="FastUNet half-res conv blocks [default: %(default)s]")
    parser.add_argument("--dropout", type=float, default=0.1,
                        help="PaperUNet dropout [default: %(default)s]")
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
    parser.add_argument("--light-jpeg-share", type=float, default=0.0, metavar="P",
                        help="share of the MJPEG draws whose quality is light, 85-95 "
                             "(what webcams send most), instead of 50-95 "
                             "[default: %(default)s]")
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
                        help="HR region degraded and estimated per sample (0: 1.5x patch) "
                             "[default: 0]")
    parser.add_argument("--val-suites",
                        help="evaluation suites to validate on (comma-separated, or all) "
                             "[default: all; for fast-jpeg the MJPEG ones, lossy,mjpeg,lowlight]")
    parser.add_argument("--loss", choices=("mse", "l1"),
                        help=f"training loss {recipe_default('loss')}")
    parser.add_argument("--scheduler", choices=("plateau", "cosine"),
                        help="learning-rate schedule: plateau halves it when the validation "
                             "score stalls, cosine anneals it over --epochs "
                             f"{recipe_default('scheduler')}")
    parser.add_argument("--lr", type=float,
                        help=f"Adam learning rate {recipe_default('lr')}")
    parser.add_argument("--patch", type=int,
                        help="HR patch side (a multiple of 4, at least 8) "
                             f"{recipe_default('patch')}")
    parser.add_argument("--batch", type=int,
                        help=f"patches per step {recipe_default('batch')}")
    parser.add_argument("--epochs", type=int, default=20,
                        help="epochs to train; the best one's weights are kept "
                             "[default: %(default)s]")
    parser.add_argument("--iters", type=int, default=200,
                        help="steps per epoch [default: %(default)s]")
    parser.add_argument("--time-budget", type=float, metavar="MIN",
                        help="stop after the epoch that would overrun MIN minutes "
                             "[default: none, train every epoch]")
    parser.add_argument("--val-crop", type=int, default=0,
                        help="validate on centre crops of this HR side (0: whole images) "
                             "[default: 0]")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the initial weights and the training samples "
                             "[default: %(default)s]")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch threads (0: torch's own choice) [default: 0]")
    parser.add_argument("--resume", type=Path,
                        help="checkpoint to continue from, e.g. WORK_DIR/<model>/last.pt "
                             "[default: none, start afresh]")
    parser.add_argument("--init", type=Path, metavar="WEIGHTS",
                        help="start from these weights (a plain state dict, e.g. a shipped "
                             ".pt) with a fresh optimizer and schedule: fine-tuning "
                             "[default: none, random weights]")
    parser.add_argument("--work-dir", type=Path, default=DEFAULT_WORK_DIR,
                        help="checkpoints, train.log and a model that is not shipped go "
                             "to WORK_DIR/<model>/ [default: %(default)s, in the current "
                             "folder]")
    parser.add_argument("--out-dir", type=Path,
                        help="engines folder the model ships to [default: the project's "
                             "engines/, or $LOCALSR_ENGINES when set]")
    parser.add_argument("--no-export", action="store_true",
                        help="keep the checkpoints only (no engines files, no manifest)")
    parser.add_argument("--force", action="store_true",
                        help="ship to the engines folder even when the model does not beat "
                             "bicubic and the shipped model on validation")
    parser.add_argument("--no-progress", action="store_true",
                        help="no progress bar (the log stays; -q/--quiet: warnings only)")
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
        light_jpeg_share=args.light_jpeg_share,
        zoom_out=args.zoom_out, bicubic_hinge=args.bicubic_hinge, levels=args.levels,
        jpeg_chroma=args.jpeg_chroma,
        region=args.region, holdout=args.holdout, val_suites=args.val_suites,
        loss=args.loss, scheduler=args.scheduler, lr=args.lr,
        patch=args.patch, batch=args.batch, epochs=args.epochs, iters=args.iters,
        time_budget=args.time_budget, val_crop=args.val_crop, seed=args.seed,
        threads=args.threads, resume=args.resume, init=args.init, work_dir=args.work_dir,
        out_dir=args.out_dir, no_export=args.no_export, force=args.force,
        no_progress=args.no_progress,
        command=tuple(args.argv))


def run(args: argparse.Namespace) -> int:
    from localsr_cam.train.trainer import train

    train(options_from(args))
    return 0
