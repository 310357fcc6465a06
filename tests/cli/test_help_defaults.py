"""`train --help` and `models build-engines --help`: every option says what it does and
its default, the per-model recipe defaults shown are the ones training uses, and
`train --quiet` means what the global `--quiet` means."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from localsr_cam.cli import train as train_cli
from localsr_cam.cli.main import build_parser
from localsr_cam.train import trainer
from localsr_cam.train.trainer import TrainOptions, resolve
from localsr_cam.zoo.registry import trainable_models


def subparser(*names: str) -> argparse.ArgumentParser:
    """The parser of subcommand ``names`` (e.g. ``"models", "build-engines"``)."""
    parser = build_parser()
    for name in names:
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = sub.choices[name]
    return parser


def option_help(parser: argparse.ArgumentParser, flag: str) -> str:
    """The help text of ``flag``, with argparse's ``%(default)s`` filled in."""
    action = next(a for a in parser._actions if flag in a.option_strings)
    return (action.help or "") % {"default": action.default}


def shown_recipe(help_text: str) -> dict[str, str]:
    """``{model: value}`` from ``[default: the model's recipe: 16 for fast and
    fast-jpeg, 32 for paper]``."""
    match = re.search(r"\[default: the model's recipe: ([^\]]+)\]", " ".join(help_text.split()))
    assert match, help_text
    shown = {}
    for group in match.group(1).split(", "):
        value, _, names = group.partition(" for ")
        shown.update({name: value for name in names.split(" and ")})
    return shown


def test_every_train_option_has_a_help_text_naming_its_default() -> None:
    parser = subparser("train")
    for action in parser._actions:
        if not action.option_strings or action.dest in ("help", "verbose", "quiet"):
            continue
        flag = action.option_strings[-1]
        assert action.help, f"{flag} has no help text"
        on_off = isinstance(action, argparse._StoreTrueAction | argparse._StoreFalseAction)
        if not on_off and not action.required:
            assert "[default:" in action.help, f"{flag} does not say its default"
    assert ".cache/train" in option_help(parser, "--work-dir")
    assert "current folder" in option_help(parser, "--work-dir")
    for flag, default in (("--model", "fast"), ("--depth", "2"), ("--dropout", "0.1"),
                          ("--epochs", "20"), ("--iters", "200"), ("--seed", "0")):
        assert f"[default: {default}]" in option_help(parser, flag)


def test_the_recipe_defaults_shown_are_the_ones_training_uses(tmp_path: Path) -> None:
    parser = subparser("train")
    assert train_cli.RECIPE_DEFAULTS.items() <= trainer.RECIPE_DEFAULTS.items()
    for name in trainable_models():
        settings = resolve(TrainOptions(tmp_path, tmp_path, model=name))
        used = {"--loss": settings.loss, "--scheduler": settings.scheduler,
                "--lr": f"{settings.lr:g}", "--patch": str(settings.patch),
                "--batch": str(settings.batch), "--width": str(settings.config["width"])}
        for flag, value in used.items():
            assert shown_recipe(option_help(parser, flag))[name] == value, (name, flag)


def test_train_quiet_means_warnings_only_and_no_progress_hides_the_bar() -> None:
    parser = build_parser()
    quiet = parser.parse_args(["train", "--train-dir", "t", "--val-dir", "v", "--quiet"])
    assert quiet.quiet is True and quiet.no_progress is False
    bare = parser.parse_args(["train", "--train-dir", "t", "--val-dir", "v",
                              "--no-progress"])
    assert bare.no_progress is True and not getattr(bare, "quiet", False)
    bare.argv = []
    assert train_cli.options_from(bare).no_progress is True


@pytest.mark.parametrize("flag, default", [("--precision", "fp16")])
def test_build_engines_help_describes_its_options_and_defaults(flag: str,
                                                               default: str) -> None:
    text = option_help(subparser("models", "build-engines"), flag)
    assert f"[default: {default}]" in text and "fp32" in text
