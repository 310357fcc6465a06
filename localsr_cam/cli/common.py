"""What every subcommand's parser shares: a parser that raises, and argument types."""

from __future__ import annotations

import argparse
from typing import Any

from localsr_cam.config import parse_size
from localsr_cam.errors import ConfigError

PROG = "localsr-cam"


class Parser(argparse.ArgumentParser):
    """argparse that raises :class:`ConfigError` instead of exiting, so ``main`` owns the
    exit status and the one-line message."""

    def error(self, message: str) -> Any:
        raise ConfigError(message)


def size(text: str) -> tuple[int, int]:
    """``WxH`` → ``(width, height)``."""
    try:
        return parse_size(text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0, got {text}")
    return value


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return value
