"""Command line: argv → config → one of run, bench, eval, train, models.

``main(argv) -> int`` never raises for a user's mistake: a :class:`LocalSRError` becomes
one line on stderr and exit status 2; Ctrl-C exits with 130.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from localsr_cam.cli import bench, evaluate, train
from localsr_cam.cli.common import PROG, Parser, positive_float, positive_int, size
from localsr_cam.config import PipelineConfig, load_config, with_overrides
from localsr_cam.errors import EXIT_USAGE, LocalSRError
from localsr_cam.runtime.base import BACKENDS
from localsr_cam.zoo.registry import segmenter_choices, sr_choices

log = logging.getLogger("localsr_cam")
EXIT_INTERRUPTED = 130

DESCRIPTION = """\
Real-time localized super-resolution for webcams: finds the person in each frame,
super-resolves only that region with a small U-Net, blends it over a cheaply upscaled
background (output is 2x the input) and sends the frames to a virtual camera, a preview
window or a video file."""

EPILOG = """\
examples:
  localsr-cam run            # camera 0 -> virtual camera (or the sample -> a file)
  localsr-cam run --source synthetic --sink preview
  localsr-cam run --source talk.mp4 --sink file:talk_2x.mp4 --model fast
  localsr-cam bench --mode all --frames 300 --json bench.json
  localsr-cam eval --images ../shared/data/val --md eval.md
  localsr-cam models fetch && localsr-cam models list"""


def add_pipeline_flags(parser: argparse.ArgumentParser, default_source: str) -> None:
    """The ``run`` flags for source, size, models, backend, blending and config."""
    group = parser.add_argument_group("input and models")
    group.add_argument("--source", help="camera index (0), device path (/dev/video0), video "
                       "file, folder of images, or 'synthetic' (the built-in portrait clip)"
                       f" [default: {default_source}]")
    group.add_argument("--input", type=size, metavar="WxH",
                       help="input frame size, e.g. 640x360; the output is twice that "
                       "[default: the source's size; 640x360 for cameras and synthetic]")
    group.add_argument("--fps", type=positive_float,
                       help="capture rate asked of a camera / pace of files [default: 30]")
    group.add_argument("--loop", action="store_true", default=None,
                       help="restart a video file or image folder at its end")
    group.add_argument("--model", choices=sr_choices(),
                       help="super-resolution model: fast (real-time U-Net), paper (the "
                       "paper's U-Net, slow), or the plain bicubic/bilinear upscale "
                       "[default: fast]")
    group.add_argument("--segmenter", choices=segmenter_choices(),
                       help="person segmenter: selfie (256x256), selfie-landscape "
                       "(144x256), maskrcnn (the paper's, slow); auto picks by aspect "
                       "[default: auto]")
    group.add_argument("--backend", choices=BACKENDS,
                       help="cpu = ONNX Runtime, torch = PyTorch on CPU, cuda = PyTorch on "
                       "an NVIDIA GPU, tensorrt; auto tries tensorrt, cuda, cpu "
                       "[default: auto]")
    group.add_argument("--threads", type=positive_int,
                       help="CPU threads per engine [default: 2]")
    group.add_argument("--weights", help="Mask R-CNN weights file (.pth) for "
                       "--segmenter maskrcnn [default: torchvision's cache]")
    group.add_argument("--full-frame", action="store_true", default=None,
                       help="super-resolve the whole frame, not only the person "
                       "(the comparison mode)")
    group.add_argument("--background", choices=("keep", "blur"),
                       help="keep the upscaled background or blur it [default: keep]")
    group.add_argument("--feather", type=int, metavar="PX",
                       help="width of the soft mask edge in input pixels [default: 4]")
    group.add_argument("--config", type=Path, metavar="FILE",
                       help="TOML file with [capture], [model], [blend], [output] tables; "
                       "flags override it")


def _config_from_args(args: argparse.Namespace) -> PipelineConfig:
    config = load_config(args.config) if args.config is not None else PipelineConfig()
    return with_overrides(config, {
        "capture": {"source": args.source, "size": args.input, "fps": args.fps,
                    "loop": args.loop},
        "model": {"model": args.model, "segmenter": args.segmenter, "backend": args.backend,
                  "threads": args.threads, "weights": args.weights},
        "blend": {"full_frame": args.full_frame, "background": args.background,
                  "feather_px": args.feather},
        "output": {"sinks": tuple(args.sink) if getattr(args, "sink", None) else None,
                   "frames": getattr(args, "frames", None)},
    })


def _add_run(commands: Any) -> None:
    parser = commands.add_parser(
        "run", help="run the filter (camera -> virtual camera, or files)",
        description="Run the filter live: frames from --source, each person "
        "super-resolved, to every --sink. Stops after --frames, at the end of a file, "
        "on q/Esc in the preview, or on Ctrl-C. Prints one summary line at the end.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  localsr-cam run\n  localsr-cam run --source 0 --sink "
        "virtualcam:/dev/video10 --sink preview\n  localsr-cam run --source synthetic "
        "--frames 90 --sink file:out.mp4")
    add_pipeline_flags(parser, "camera 0 if present, else synthetic")
    group = parser.add_argument_group("output")
    group.add_argument("--sink", action="append", metavar="SINK",
                       help="where frames go, repeatable: virtualcam, virtualcam:/dev/videoN, "
                       "preview, file:PATH (.mp4/.avi), null [default: virtualcam for a "
                       "camera, else file:localsr_<source>.mp4]")
    group.add_argument("--frames", type=positive_int, metavar="N",
                       help="stop after N processed frames")
    group.add_argument("--output-fps", type=positive_float, metavar="N",
                       help="output frame rate [default: the source's]")
    parser.set_defaults(handler=_cmd_run)


def _cmd_run(args: argparse.Namespace) -> int:
    from localsr_cam.pipeline.run import run

    config = _config_from_args(args)
    if args.output_fps is not None:
        config = with_overrides(config, {"output": {"fps": args.output_fps}})
    result = run(config)
    print(result.summary())
    return EXIT_INTERRUPTED if result.interrupted else 0


def _add_models(commands: Any) -> None:
    parser = commands.add_parser(
        "models", help="prepare and list model files",
        description="Prepare the models the filter needs and show what is ready. "
        "'fetch' downloads MediaPipe's selfie segmenter wheel from the package index once, "
        "converts it to PyTorch and ONNX and verifies it; the U-Nets ship in engines/.")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION",
                                    parser_class=Parser)
    fetch = actions.add_parser("fetch", help="download and convert the selfie segmenter")
    fetch.add_argument("--wheel", type=Path, help="use this mediapipe-0.10.14 wheel instead "
                       "of downloading it")
    fetch.set_defaults(handler=_cmd_models_fetch)
    listing = actions.add_parser("list", help="show prepared and missing models")
    listing.set_defaults(handler=_cmd_models_list)
    build = actions.add_parser("build-engines", help="build TensorRT engines from the ONNX "
                               "models (needs an NVIDIA GPU and TensorRT)")
    build.add_argument("--precision", choices=("fp16", "fp32"), default="fp16")
    build.add_argument("--models", nargs="*", help="which models [default: all]")
    build.set_defaults(handler=_cmd_models_build)


def _cmd_models_fetch(args: argparse.Namespace) -> int:
    from localsr_cam.zoo.selfie_fetch import fetch_models

    built = fetch_models(wheel=args.wheel)
    print("built: " + ", ".join(built) if built else "selfie models already prepared")
    return 0


def _cmd_models_list(args: argparse.Namespace) -> int:
    from localsr_cam.zoo.listing import list_models

    rows = [("MODEL", "STATUS", "FILE", "DETAILS"), *list_models()]
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True))
              .rstrip())
    return 0


def _cmd_models_build(args: argparse.Namespace) -> int:
    from localsr_cam.zoo.build import build_engines

    for line in build_engines(args.models or None, args.precision):
        print(line)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog=PROG, description=DESCRIPTION, epilog=EPILOG,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug details")
    parser.add_argument("-q", "--quiet", action="store_true", help="log warnings only")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                     parser_class=Parser)
    _add_run(commands)
    bench.add_parser(commands)
    evaluate.add_parser(commands)
    train.add_parser(commands)
    _add_models(commands)
    return parser


class _CurrentStderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time of each record (not the stream
    that was current when logging was configured, which a caller may have closed)."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def configure_logging(verbose: bool = False, quiet: bool = False) -> None:
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    handler = _CurrentStderrHandler()
    handler.setFormatter(logging.Formatter(f"{PROG}: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler], force=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the command; returns the exit status."""
    parser = build_parser()
    arguments = list(sys.argv[1:] if argv is None else argv)
    try:
        try:
            args = parser.parse_args(arguments)
        except SystemExit as exc:  # --help and --version print and "exit" here
            return exc.code if isinstance(exc.code, int) else EXIT_USAGE
        args.argv = arguments[arguments.index(args.command) + 1:]
        configure_logging(args.verbose, args.quiet)
        return int(args.handler(args))
    except LocalSRError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def entry_point() -> None:
    """The ``localsr-cam`` console script.

    Every resource is closed and every file finalized before ``main`` returns, so the
    process leaves with ``os._exit`` after flushing: tearing down torch, ONNX Runtime and
    OpenCV at interpreter exit took about a second, and Ctrl-C must stop within one.
    """
    code = main()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
