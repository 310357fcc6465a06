"""What every subcommand's parser shares: a parser that raises, and argument types."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from localsr_cam.config import (
    MAX_INPUT_SIDE,
    MAX_OUTPUT_SIDE,
    check_background,
    check_fps,
    check_threads,
    max_threads,
    parse_size,
)
from localsr_cam.errors import ConfigError
from localsr_cam.runtime.base import BACKENDS
from localsr_cam.zoo.registry import DEFAULT_SR_MODEL, PRECISIONS, segmenter_choices

PROG = "localsr-cam"
T = TypeVar("T")


class Parser(argparse.ArgumentParser):
    """argparse that raises :class:`ConfigError` instead of exiting, so ``main`` owns the
    exit status and the one-line message."""

    def error(self, message: str) -> Any:
        raise ConfigError(message)


def _checked(check: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``check(*args, **kwargs)``, one of the config file's checks, for a flag: its
    :class:`ConfigError` becomes argparse's type error (which names the flag)."""
    try:
        return check(*args, **kwargs)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def size(text: str) -> tuple[int, int]:
    """``WxH`` → ``(width, height)`` of an input frame: at most
    :data:`~localsr_cam.config.MAX_INPUT_SIDE` a side."""
    return _checked(parse_size, text, max_side=MAX_INPUT_SIDE)


def output_size(text: str) -> tuple[int, int]:
    """``WxH`` → ``(width, height)`` of an output frame: at most
    :data:`~localsr_cam.config.MAX_OUTPUT_SIDE` a side (2× the largest input)."""
    return _checked(parse_size, text, max_side=MAX_OUTPUT_SIDE)


def positive_float(text: str) -> float:
    """A finite number above 0 (``inf`` and ``nan`` are refused)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a finite number greater than 0, got {text}")
    return value


def frame_rate(text: str) -> float:
    """Frames a second: a finite number above 0, at most
    :data:`~localsr_cam.config.MAX_FPS`."""
    return _checked(check_fps, positive_float(text), "the frame rate")


def positive_int(text: str) -> int:
    """A whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return value


def thread_count(text: str) -> int:
    """CPU threads per network: 1 to this machine's CPU count
    (:func:`~localsr_cam.config.max_threads`)."""
    return _checked(check_threads, positive_int(text), "the thread count")


def background(text: str) -> str:
    """``keep``, ``blur`` or ``image:PATH``."""
    return _checked(check_background, text)


def verbosity_parent() -> argparse.ArgumentParser:
    """``-v``/``-q`` for a subcommand's parser, so they may also follow the command;
    SUPPRESS keeps the ones given before the command when they are not repeated."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                        help="log debug details (also accepted before the command)")
    parent.add_argument("-q", "--quiet", dest="quiet", action="store_true",
                        default=argparse.SUPPRESS,
                        help="log warnings only (also accepted before the command)")
    return parent


def add_model_flags(group: Any, models: Sequence[str], *, explicit_defaults: bool,
                    threads: bool = True) -> None:
    """``--model``, ``--segmenter``, ``--backend`` (and ``--threads``): the same flags,
    choices and help for run, bench and eval. ``models``: the upscalers this command
    offers. ``explicit_defaults``: parse to the defaults (bench, eval); else to ``None``,
    so a config file's value stands unless the flag is given (run)."""

    def default(value: Any) -> Any:
        return value if explicit_defaults else None

    group.add_argument("--model", choices=models, default=default(DEFAULT_SR_MODEL),
                       help="super-resolution model: fast (real-time U-Net), paper (the "
                       "paper's U-Net, slow), or where offered the plain bicubic/bilinear "
                       f"upscale [default: {DEFAULT_SR_MODEL}]")
    group.add_argument("--segmenter", choices=segmenter_choices(), default=default("auto"),
                       help="person segmenter: selfie (256x256), selfie-landscape "
                       "(144x256), maskrcnn (the paper's, slow), people (a face finder, "
                       "then a selfie crop per person: groups, people far away); auto "
                       "switches between the close-up selfie and people from what the "
                       "face finder sees [default: auto]")
    group.add_argument("--backend", choices=BACKENDS, default=default("auto"),
                       help="cpu = ONNX Runtime, torch = PyTorch on CPU, cuda = PyTorch on "
                       "an NVIDIA GPU, tensorrt; auto tries tensorrt (when its plans are "
                       "built), cuda, cpu [default: auto]")
    group.add_argument("--precision", choices=PRECISIONS, default=default("auto"),
                       help="the SR net's arithmetic: auto = int8 on the cpu backend (its "
                       "half-resolution convolutions and its tail quantized: a third less "
                       "SR time, within 0.03 dB) and each GPU backend's own; fp32 = all "
                       "float32; int8 = insist on the int8 file [default: auto]")
    if threads:
        group.add_argument("--threads", type=thread_count, default=None,
                           help="CPU threads per network, at most this machine's CPU count "
                           f"({max_threads()} here): several networks run at once, so "
                           "more would only wait for each other [default: 1 in a live run "
                           "that adapts its quality (the SR then runs beside segmentation, "
                           "a core each), 2 otherwise]")
