"""``localsr-cam bench``: its flags, turned into a :class:`BenchOptions` for measure."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from localsr_cam.cli.common import (
    add_model_flags,
    positive_float,
    positive_int,
    size,
    verbosity_parent,
)
from localsr_cam.config import DENOISE_CHOICES, QUALITY_CHOICES, parse_size
from localsr_cam.zoo.registry import sr_models

DEFAULT_INPUT = "640x360"
MODES = ("local", "full", "bicubic")
DESCRIPTION = """\
The offline benchmark of the real pipeline. Each mode runs the whole pipeline (capture
thread, processor, output thread, a null sink unless --sink is given) on the same source
for --warmup + --frames frames; figures come from the frames after the warm-up. --mode
all runs local, full-frame and bicubic one after another in one process and reports
their ratios, so a comparison holds on a noisy machine. Unpaced (the default), frames
are read as fast as the processor takes them (throughput); --paced delivers them at the
source's fps like a camera, and latency is then what a user feels."""


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "bench", parents=[verbosity_parent()],
        help="offline benchmark of the real pipeline (fps, latency, per-stage time)",
        description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example:\n  localsr-cam bench --mode all --frames 300 "
        "--json bench.json --md bench.md --plot bench.png\n"
        "  localsr-cam bench --mode local --frames 20000   # a soak run")
    parser.add_argument("--source", default="synthetic",
                        help="what to read (as for run) [default: synthetic]")
    parser.add_argument("--input", type=size, default=parse_size(DEFAULT_INPUT),
                        metavar="WxH", help=f"input size [default: {DEFAULT_INPUT}]")
    parser.add_argument("--frames", type=positive_int, default=300, metavar="N",
                        help="measured frames per mode [default: 300]")
    parser.add_argument("--warmup", type=int, default=30, metavar="N",
                        help="frames run before measuring, per mode [default: 30]")
    add_model_flags(parser, sr_models(), explicit_defaults=True)  # of local and full
    parser.add_argument("--fps", type=positive_float, default=30.0,
                        help="source fps, used with --paced [default: 30]")
    parser.add_argument("--mode", choices=(*MODES, "all"), default="all",
                        help="local = SR on the person only, full = SR on the whole "
                        "frame, bicubic = plain upscale, all = the three [default: all]")
    parser.add_argument("--paced", action="store_true",
                        help="deliver frames at --fps like a camera (latency as felt)")
    parser.add_argument("--sink", action="append", default=[], metavar="SINK",
                        help="sinks as for run [default: null]; with several modes a "
                        "file or folder sink gets the mode in its name (file:out.mp4 "
                        "→ out_local.mp4, out_full.mp4, out_bicubic.mp4); no output may "
                        "be the source or another output")
    parser.add_argument("--buffering", choices=("auto", "single", "double"), default="auto",
                        help="GPU only: double overlaps frame N+1's upload and "
                        "segmentation with frame N's SR, blend and download; auto = "
                        "double unless --paced [default: auto]")
    parser.add_argument("--quality", choices=QUALITY_CHOICES, default="auto",
                        help="auto = paced runs adapt the quality level to the frame "
                        "budget; or one fixed level [default: auto]")
    parser.add_argument("--denoise", choices=DENOISE_CHOICES, default="auto",
                        help="the temporal denoiser of video frames, as for run "
                        "[default: auto]")
    parser.add_argument("--load", type=int, default=0, metavar="N",
                        help="run N busy processes beside the pipeline (a meeting app "
                        "encoding video on the same laptop); stopped at the end "
                        "[default: 0]")
    parser.add_argument("--json", type=Path, metavar="FILE", help="write the report as JSON")
    parser.add_argument("--md", type=Path, metavar="FILE", help="write a markdown table")
    parser.add_argument("--plot", type=Path, metavar="FILE",
                        help="draw latency over time and its histogram; the extension "
                        "picks the format (.png, .pdf, .svg, .jpg, ...)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.add_argument("--flicker", type=int, nargs="?", const=40, default=0, metavar="N",
                        help="also measure flicker: N frames (at least 8; 40 when N is "
                             "left out) of a static scene with independent sensor noise; "
                             "temporal std inside the person, ours / bicubic; 0 = off "
                             "[default: 0]")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from localsr_cam.measure.bench import BenchOptions, bench, markdown

    options = BenchOptions(
        source=args.source, input=args.input, frames=args.frames, warmup=args.warmup,
        model=args.model, segmenter=args.segmenter, backend=args.backend,
        threads=args.threads, precision=args.precision, fps=args.fps, mode=args.mode,
        paced=args.paced,
        sink=tuple(args.sink), buffering=args.buffering, json=args.json, md=args.md,
        plot=args.plot, no_progress=args.no_progress, quality=args.quality, load=args.load,
        flicker=args.flicker, denoise=args.denoise)
    report = bench(options)
    print(markdown(report), end="")
    return 0
