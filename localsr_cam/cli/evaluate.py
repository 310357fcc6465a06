"""``localsr-cam eval``: its flags, turned into an :class:`EvalOptions` for measure."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from localsr_cam.cli.common import add_model_flags, positive_int, verbosity_parent
from localsr_cam.zoo.registry import sr_choices

log = logging.getLogger(__name__)

DEGRADE_CHOICES = ("area", "bicubic", "webcam", "lossy", "mjpeg", "lowlight", "soft",
                   "noisy", "sharpened", "all")
""":data:`localsr_cam.measure.degrade.SUITE_NAMES` (a test keeps them equal; importing
that module here would load OpenCV for ``--help``)."""


MAX_FRAMES = 1000
"""``--frames`` at most: ~30 s of a 30 fps camera; the denoiser and the levels settle
within ~40 frames."""


def frame_count(text: str) -> int:
    """``--frames``: 1 … :data:`MAX_FRAMES`."""
    return _count(text, MAX_FRAMES)


MAX_PAN_PX = 8.0
"""``--pan`` at most, LR px a frame: a quick pan of a 640-px-wide camera."""


SWAY_PERIOD = 12
""":data:`localsr_cam.measure.filming.SWAY_PERIOD`, for the help (a test keeps them
equal; importing that module here would load OpenCV for ``--help``)."""
MAX_SWAY_PX = 4.0
"""``--sway`` at most, LR px either way: a person leaning well to the side."""


MAX_ZOOM_PCT = 3.0
"""``--zoom`` at most, % a frame: an auto framing that closes in on a person quickly
(a third in ten frames)."""
MAX_EXPOSURE_PCT = 10.0
"""``--exposure`` at most either way, % a frame: an auto exposure catching up with a
light switched on, twice as bright in 7 frames."""


MAX_REPEAT = 4
"""``--repeat`` at most: a camera at a quarter of the stream's frame rate."""


def repeat_count(text: str) -> int:
    """``--repeat``: 1 … :data:`MAX_REPEAT`."""
    return _count(text, MAX_REPEAT)


def _count(text: str, most: int) -> int:
    value = positive_int(text)
    if value > most:
        raise argparse.ArgumentTypeError(f"at most {most}, got {text}")
    return value


def pan_speed(text: str) -> float:
    """``--pan``: 0 … :data:`MAX_PAN_PX` LR pixels a frame."""
    return _within(text, 0.0, MAX_PAN_PX, " px a frame")


def sway_reach(text: str) -> float:
    """``--sway``: 0 … :data:`MAX_SWAY_PX` LR pixels either way."""
    return _within(text, 0.0, MAX_SWAY_PX, " px")


def zoom_speed(text: str) -> float:
    """``--zoom``: 0 … :data:`MAX_ZOOM_PCT` % a frame."""
    return _within(text, 0.0, MAX_ZOOM_PCT, " % a frame")


def exposure_ramp(text: str) -> float:
    """``--exposure``: −:data:`MAX_EXPOSURE_PCT` … :data:`MAX_EXPOSURE_PCT` % a frame."""
    return _within(text, -MAX_EXPOSURE_PCT, MAX_EXPOSURE_PCT, " % a frame")


def _within(text: str, least: float, most: float, unit: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not least <= value <= most:
        raise argparse.ArgumentTypeError(f"{least:g} … {most:g}{unit}, got {text}")
    return value


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "eval", parents=[verbosity_parent()],
        help="quality evaluation on HR images (PSNR, SSIM, UQI; the paper's tables)",
        description="Reproduce the paper's evaluation on a folder of HR images: degrade "
                    "each 2×, upscale it with bicubic, full-frame SR and localized SR "
                    "(SR on the segmented person only), and score all three against the "
                    "HR image with PSNR, SSIM and UQI (whole image, foreground, mask "
                    "border) and the paper's Algorithm 1 mean percentage increase.",
        epilog="Example: localsr-cam eval --images photos/ --json eval.json --md eval.md "
               "--figures eval_figs/")
    parser.add_argument("--images", required=True, type=Path, metavar="DIR",
                        help="folder of HR images (png, jpg, bmp, tif, webp, ...; not "
                             "recursive); each must be at least 16×16")
    add_model_flags(parser, sr_choices(), explicit_defaults=True, threads=False)
    parser.add_argument("--degrade", default="area", choices=DEGRADE_CHOICES,
                        help="how the LR input is made from the HR image: area = 2×2 "
                             "mean (cv2.INTER_AREA), bicubic = cv2.INTER_CUBIC, webcam = "
                             "the random camera model (seeded per image), lossy = area + "
                             "JPEG q75, mjpeg = area + JPEG q90 4:2:2 (a webcam's MJPEG in "
                             "good light), lowlight = area + noise σ10/255 + JPEG q80, soft = "
                             "blur σ1 + area, noisy = area + noise σ4/255 + 4:2:2 chroma "
                             "(raw YUYV), sharpened = area + the ISP's unsharp mask, all = "
                             "each of them and a summary table (default: %(default)s)")
    parser.add_argument("--frames", type=frame_count, default=1, metavar="N",
                        help="film each photo N times, as a camera films a still scene: "
                             "the suite's degradation with fresh sensor noise each frame, "
                             "run through the processor as one video (the temporal "
                             "denoiser, the smoothed degradation levels), and score the "
                             "last frame; 1 = each photo alone, the paper's protocol; "
                             f"at most {MAX_FRAMES} (default: %(default)s)")
    parser.add_argument("--pan", type=pan_speed, default=0.0, metavar="PX",
                        help="with --frames: the camera pans PX pixels (of the LR frame; "
                             "fractions too) a frame to the right and half that down, so "
                             "the video moves as a whole (a camera's pan or shake), and "
                             "the last frame is scored against its own part of the photo; "
                             f"0 … {MAX_PAN_PX:g} (default: %(default)s, a still scene)")
    parser.add_argument("--sway", type=sway_reach, default=0.0, metavar="PX",
                        help="with --frames, instead of --pan: the camera holds still "
                             "and the middle of the photo (an ellipse: the person) sways "
                             f"up to PX pixels (of the LR frame) either way, over "
                             f"{SWAY_PERIOD} frames, and half that up and down, a pixel "
                             "or less a frame as people on a call do; the last frame is "
                             f"scored; 0 … {MAX_SWAY_PX:g} (default: %(default)s)")
    parser.add_argument("--zoom", type=zoom_speed, default=0.0, metavar="PCT",
                        help="with --frames, instead of --pan or --sway: the camera's auto "
                             "framing (a digital zoom that follows the people, as Apple's "
                             "Center Stage or Logitech's RightSight) zooms in PCT %% a "
                             "frame about the middle of the photo; the last frame is the "
                             "photo itself, scored as a still scene's; "
                             f"0 … {MAX_ZOOM_PCT:g} (default: %(default)s)")
    parser.add_argument("--exposure", type=exposure_ramp, default=0.0, metavar="PCT",
                        help="with --frames, and any of the above: the camera's auto "
                             "exposure ramps PCT %% a frame, so earlier frames are darker "
                             "(or brighter, when PCT is below 0) and the last is as it "
                             f"would be without it; -{MAX_EXPOSURE_PCT:g} … "
                             f"{MAX_EXPOSURE_PCT:g} (default: %(default)s, off)")
    parser.add_argument("--repeat", type=repeat_count, default=1, metavar="K",
                        help="with --frames: each frame reaches the processor K times in "
                             "a row, bit for bit, as from a camera that sends each picture "
                             "twice when dim light halves its frame rate, or a virtual "
                             "camera fed by a slower source (so the video is N×K frames); "
                             f"1 … {MAX_REPEAT} (default: %(default)s, each frame once)")
    parser.add_argument("--json", type=Path, metavar="FILE",
                        help="write the full report (per image, means, Algorithm 1) here")
    parser.add_argument("--md", type=Path, metavar="FILE",
                        help="write the report as markdown tables here")
    parser.add_argument("--masks", type=Path, metavar="DIR",
                        help="write the mask the localized method used for each image "
                             "here: an 8-bit PNG (0-255) at the image's own size, named "
                             "after the image (its stem + .png)")
    parser.add_argument("--figures", type=Path, metavar="DIR",
                        help="write one comparison PNG per image (LR | HR | mask | full "
                             "SR | localized SR), a 1:1 face crop (HR | bicubic | ours) "
                             "and a percent-increase bar chart here")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from localsr_cam.measure.evaluate import EvalOptions, report_markdown, summary_line
    from localsr_cam.measure.evaluate import run as evaluate

    options = EvalOptions(images=args.images, model=args.model, segmenter=args.segmenter,
                          backend=args.backend, precision=args.precision,
                          degrade=args.degrade, json=args.json,
                          md=args.md, figures=args.figures, masks=args.masks,
                          frames=args.frames, pan=args.pan, sway=args.sway,
                          zoom=args.zoom, exposure=args.exposure, repeat=args.repeat)
    report = evaluate(options)
    log.info("%s", summary_line(report))
    if options.json is None and options.md is None:
        sys.stdout.write(report_markdown(report))
    return 0
