"""Command line: argv → config → one of run, bench, eval, train, models, devices.

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
from localsr_cam.cli.common import (
    PROG,
    Parser,
    add_model_flags,
    background,
    frame_rate,
    output_size,
    positive_int,
    size,
    verbosity_parent,
)
from localsr_cam.config import (
    DENOISE_CHOICES,
    MAX_FPS,
    MAX_INPUT_SIDE,
    MAX_OUTPUT_SIDE,
    MIRRORS,
    QUALITY_CHOICES,
    PipelineConfig,
    load_config,
    with_overrides,
)
from localsr_cam.errors import EXIT_USAGE, ConfigError, LocalSRError
from localsr_cam.zoo.registry import int8_models, model_spec, sr_choices

log = logging.getLogger("localsr_cam")
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143
"""128 + SIGTERM, as shells and other tools report a run stopped by ``kill``."""

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
  localsr-cam models fetch && localsr-cam models list
  localsr-cam devices        # cameras, virtual cameras, and which ones run uses"""


def add_pipeline_flags(parser: argparse.ArgumentParser, default_source: str) -> None:
    """The ``run`` flags for source, size, models, backend, blending and config."""
    group = parser.add_argument_group("input and models")
    group.add_argument("--source", help="camera index (0), device path (/dev/video0), video "
                       "file, folder of images, one image file, or a built-in clip: 'synthetic' "
                       "(a portrait, "
                       "panning), 'synthetic:call' (the same person nearly still, talking), "
                       f"'synthetic:room' (five people at a table) [default: {default_source}]")
    group.add_argument("--input", type=size, metavar="WxH",
                       help="input frame size, e.g. 640x360, at most "
                       f"{MAX_INPUT_SIDE} a side (8K video); the output is twice that. A "
                       "video or camera of another shape is scaled to cover it and "
                       "centre-cropped, never stretched [default: the source's size; "
                       "640x360 for cameras and synthetic]")
    group.add_argument("--fps", type=frame_rate,
                       help="capture rate asked of a camera / pace of files, at most "
                       f"{MAX_FPS:g} [default: 30]")
    group.add_argument("--loop", action="store_true", default=None,
                       help="restart a video file or image folder at its end")
    add_model_flags(group, sr_choices(), explicit_defaults=False)
    group.add_argument("--quality", choices=QUALITY_CHOICES,
                       help="auto: when frames would be late, step down to SR on the head "
                       "and shoulders, on the face, on the face every other frame, then "
                       "the plain upscale, and back up when there is room; or one fixed "
                       "level [default: auto]")
    group.add_argument("--denoise", choices=DENOISE_CHOICES,
                       help="auto: where a video's frames carry sensor noise (a dim room), "
                       "average each still part over about 7 frames before anything else "
                       "(moving parts are taken as they come); off: never [default: auto]")
    group.add_argument("--weights", help="Mask R-CNN weights file (.pth) for "
                       "--segmenter maskrcnn [default: torchvision's cache]")
    group.add_argument("--full-frame", action="store_true", default=None,
                       help="super-resolve the whole frame, not only the person "
                       "(the comparison mode)")
    group.add_argument("--background", type=background, metavar="keep|blur|image:PATH",
                       help="keep the upscaled background, blur it, or replace it with a "
                       "picture (scaled to cover the frame, not stretched) "
                       "[default: keep]")
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
                  "threads": args.threads, "weights": args.weights,
                  "quality": args.quality, "precision": args.precision,
                  "denoise": args.denoise},
        "blend": {"full_frame": args.full_frame, "background": args.background,
                  "feather_px": args.feather},
        "output": {"sinks": tuple(args.sink) if getattr(args, "sink", None) else None,
                   "frames": getattr(args, "frames", None),
                   "size": getattr(args, "output", None),
                   "mirror": getattr(args, "mirror", None)},
    })


def _add_run(commands: Any) -> None:
    parser = commands.add_parser(
        "run", parents=[verbosity_parent()],
        help="run the filter (camera -> virtual camera, or files)",
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
                       "preview (before/after; keys: q quit, b bypass, m mask, s layout, "
                       "z 1:1 face magnifier), preview:split, file:PATH (.mp4/.mkv: H.264, "
                       "playable even after a crash; .avi: Motion JPEG), dir:FOLDER (one "
                       "PNG per frame, "
                       "named after the input image), null [default: virtualcam for a "
                       "camera, dir:localsr_<folder> for a folder of images, else "
                       "file:localsr_<source>.mp4]")
    group.add_argument("--output", type=output_size, metavar="WxH",
                       help="size of the frames sent out, e.g. 1280x720 from a 480p camera: "
                       "super-resolved 2x, then resized (aspect kept, black bars); the "
                       f"virtual camera advertises this size; at most {MAX_OUTPUT_SIDE} a "
                       "side [default: 2x the input]")
    group.add_argument("--mirror", nargs="?", const="both", choices=MIRRORS,
                       help="flip left-right: 'preview' (your self view), 'call' (virtual "
                       "camera and files), 'both' (what --mirror alone means) or 'none' "
                       "[default: none]")
    group.add_argument("--frames", type=positive_int, metavar="N",
                       help="stop after N processed frames")
    group.add_argument("--output-fps", type=frame_rate, metavar="N",
                       help="output frame rate of a live run (a camera, or a preview or "
                       "virtualcam output); a file conversion keeps every frame at the "
                       "input's rate and refuses it [default: the source's]")
    parser.set_defaults(handler=_cmd_run)


def _cmd_run(args: argparse.Namespace) -> int:
    from localsr_cam.pipeline.run import run

    config = _config_from_args(args)
    if args.output_fps is not None:
        config = with_overrides(config, {"output": {"fps": args.output_fps}})
    result = run(config)
    print(result.summary())
    for line in result.written:
        print(line)
    if result.terminated:
        return EXIT_TERMINATED
    if result.interrupted:
        return EXIT_INTERRUPTED
    if result.skipped:
        print(f"localsr-cam: error: {len(result.skipped)} unreadable input file(s) "
              f"skipped (each named above); the rest were written", file=sys.stderr)
        return EXIT_USAGE
    return 0


def _add_models(commands: Any) -> None:
    parser = commands.add_parser(
        "models", parents=[verbosity_parent()], help="prepare and list model files",
        description="Prepare the models the filter needs and show what is ready. "
        "'fetch' downloads MediaPipe's wheel from the package index once, converts its "
        "selfie segmenters and full-range face detector to PyTorch and ONNX and verifies "
        "them; the U-Nets ship in engines/.")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION",
                                    parser_class=Parser)
    fetch = actions.add_parser("fetch", parents=[verbosity_parent()],
                               help="download and convert the selfie segmenter and the "
                               "face detector")
    fetch.add_argument("--wheel", type=Path, help="use this mediapipe-0.10.14 wheel instead "
                       "of downloading it")
    fetch.set_defaults(handler=_cmd_models_fetch)
    listing = actions.add_parser("list", parents=[verbosity_parent()],
                                 help="show prepared and missing models")
    listing.set_defaults(handler=_cmd_models_list)
    build = actions.add_parser("build-engines", parents=[verbosity_parent()],
                               help="build TensorRT engines from the ONNX "
                               "models (needs an NVIDIA GPU and TensorRT)")
    build.add_argument("--precision", choices=("fp16", "fp32"), default="fp16",
                       help="the plans' arithmetic: fp16 lets TensorRT use "
                       "half-precision kernels where they are faster; fp32 does not "
                       "(slower, closest to the ONNX model) [default: %(default)s]")
    build.add_argument("--models", nargs="*", help="which models [default: all]")
    build.add_argument("--input", type=size, metavar="WxH",
                       help="the largest input frame the SR plans must take; a smaller "
                       "profile builds faster [default: up to 1920x1080]")
    build.set_defaults(handler=_cmd_models_build)
    quantize = actions.add_parser(
        "quantize", parents=[verbosity_parent()],
        help="make the int8 ONNX of a shipped SR model (what the cpu backend runs)",
        description="Quantize the half-resolution convolutions and the tail of a shipped "
        "SR model to int8 for ONNX Runtime, calibrated on training images degraded by the camera "
        "model, and record it in engines/manifest.json. `train` does this itself when it "
        "ships a model; run this after changing the ONNX by hand.")
    quantize.add_argument("models", nargs="*", metavar="MODEL",
                          help="which models [default: those of "
                          f"{', '.join(int8_models())} trained here]")
    quantize.add_argument("--data", type=Path, action="append",
                          help="folder of training images to calibrate on; repeatable "
                          "[default: the folders the manifest says the model was trained "
                          "on]")
    quantize.add_argument("--seed", type=int, default=0,
                          help="calibration sample seed [default: 0]")
    quantize.set_defaults(handler=_cmd_models_quantize)


def _cmd_models_fetch(args: argparse.Namespace) -> int:
    from localsr_cam.zoo.face_fetch import fetch_face
    from localsr_cam.zoo.selfie_fetch import fetch_models

    built = fetch_models(wheel=args.wheel) + fetch_face(wheel=args.wheel)
    print("built: " + ", ".join(built) if built else "selfie and face models already prepared")
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

    for line in build_engines(args.models or None, args.precision, frame_size=args.input):
        print(line)
    return 0


def _cmd_models_quantize(args: argparse.Namespace) -> int:
    from localsr_cam.train.quantize import quantize_shipped, training_data
    from localsr_cam.zoo.artifacts import missing_files

    for name in args.models:
        if name not in int8_models():
            raise ConfigError(f"model {name!r} has no int8 form; choose from: "
                              f"{', '.join(int8_models())}")
    names = list(args.models)
    if not names:
        names = [name for name in int8_models() if not missing_files(name)]
        for name in int8_models():
            if name not in names:
                print(f"{name}: not trained here yet (`{model_spec(name).build_command}`); "
                      "skipped")
    for name in names:
        record = quantize_shipped(name, args.data or training_data(name), args.seed)
        print(f"{name}: wrote engines/{model_spec(name).onnx_int8}, {len(record['nodes'])} "
              f"convs in int8, {record['psnr_vs_fp32_db']:.1f} dB PSNR against float32")
    return 0


def _add_devices(commands: Any) -> None:
    parser = commands.add_parser(
        "devices", parents=[verbosity_parent()],
        help="list cameras and virtual (loopback) cameras, and which ones run uses",
        description="List the cameras (index, device, name, pixel formats and frame "
        "sizes) and the v4l2loopback devices a virtual camera can use, and say which "
        "camera `run` reads by default and which device `--sink virtualcam` writes to.")
    parser.set_defaults(handler=_cmd_devices)


def _cmd_devices(args: argparse.Namespace) -> int:
    from localsr_cam.capture.devices import describe_devices, list_devices

    for line in describe_devices(list_devices()):
        print(line)
    return 0


def _version() -> str:
    """The installed distribution's version (``pip install -e .`` counts)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("localsr-cam")
    except PackageNotFoundError:
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog=PROG, description=DESCRIPTION, epilog=EPILOG,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="log debug details (also accepted after the command)")
    parser.add_argument("-q", "--quiet", action="store_true",
                        help="log warnings only (also accepted after the command)")
    parser.add_argument("--version", action="version", version=f"{PROG} {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                     parser_class=Parser)
    _add_run(commands)
    bench.add_parser(commands)
    evaluate.add_parser(commands)
    train.add_parser(commands)
    _add_models(commands)
    _add_devices(commands)
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
    except (KeyboardInterrupt, Exception) as exc:  # Ctrl-C, or it wrapped in another
        if not _caused_by_ctrl_c(exc):
            raise
        print(f"{PROG}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _caused_by_ctrl_c(exc: BaseException) -> bool:
    """Whether a KeyboardInterrupt is in ``exc``'s chain: Ctrl-C during an import can
    come out wrapped (Python 3.11 turns it into a RuntimeError inside ``__set_name__``)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, KeyboardInterrupt):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def entry_point() -> None:
    """The ``localsr-cam`` console script.

    Every resource is closed and every file finalized before ``main`` returns, so the
    process leaves with ``os._exit`` after flushing: tearing down torch, ONNX Runtime and
    OpenCV at interpreter exit took about a second, and Ctrl-C must stop within one.
    """
    # Before torch loads: idle OpenMP workers sleep instead of spinning. Spinning pools
    # starved the pipeline's other threads on 2 cores (--backend torch: 0.75 fps).
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    code = main()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
