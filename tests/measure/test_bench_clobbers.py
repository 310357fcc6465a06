"""localsr-cam bench checks its flags and outputs before it measures anything: no output
on the source or on another output, a --plot format matplotlib writes, --flicker 0 (off)
or at least 8. Refusals are exit 2, one line, before any model loads, nothing written."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from localsr_cam.cli.main import main as cli_main
from localsr_cam.errors import LocalSRError
from localsr_cam.measure.bench import FLICKER_MIN_FRAMES, mode_sinks, plot_formats
from tests.folder_tree import tree


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The working directory, holding a 3-frame video ``in.mp4`` and ``evimg/astro.png``."""
    monkeypatch.chdir(tmp_path)
    image = (np.random.default_rng(0).random((48, 64, 3)) * 255).astype(np.uint8)
    writer = cv2.VideoWriter("in.mp4", cv2.VideoWriter.fourcc(*"mp4v"), 10.0, (64, 48))
    for _ in range(3):
        writer.write(image)
    writer.release()
    assert (tmp_path / "in.mp4").stat().st_size > 0
    (tmp_path / "evimg").mkdir()
    assert cv2.imwrite("evimg/astro.png", image)
    return tmp_path


SHORT = ["--frames", "3", "--warmup", "1", "--input", "64x48", "--no-progress"]
REFUSED = [
    (["--source", "in.mp4", "--sink", "file:in.mp4", "--mode", "local"],
     "--sink in.mp4 is the input"),
    (["--source", "in.mp4", "--sink", "file:./in.mp4", "--mode", "bicubic"], "is the input"),
    (["--source", "in.mp4", "--json", "in.mp4", "--mode", "bicubic"],
     "--json in.mp4 is the input"),
    (["--source", "in.mp4", "--md", "in.mp4", "--mode", "bicubic"], "is the input"),
    (["--mode", "bicubic", "--json", "bb.json", "--md", "bb.json"],
     "--json bb.json and --md bb.json are the same path"),
    (["--mode", "bicubic", "--sink", "file:o.mp4", "--sink", "file:o.mp4"], "same path"),
    (["--mode", "all", "--sink", "file:o.mp4", "--json", "o_full.mp4"],  # a mode's own name
     "--json o_full.mp4 and --sink o_full.mp4 are the same path"),
    (["--source", "evimg", "--mode", "bicubic", "--sink", "dir:evimg"],
     "--sink evimg is the input folder"),
    (["--source", "evimg", "--mode", "bicubic", "--plot", "evimg/p.png"],
     "would be read as an input image"),
    (["--mode", "bicubic", "--sink", "file:o.txt"], "o.txt"),
    (["--mode", "all", "--sink", "file:o.txt"], "'o.txt'"),  # named as given
    (["--mode", "bicubic", "--plot", "b.txt"], "--plot b.txt: cannot draw the plot as a .txt"),
    (["--mode", "bicubic", "--plot", "b.json"], "as a .json file; end the name in .png"),
    (["--mode", "bicubic", "--plot", "bench"], "a file without an extension"),
    (["--mode", "bicubic", "--plot", "b.pgf"], "as a .pgf file"),  # needs LaTeX
    (["--mode", "bicubic", "--flicker", "1"], "--flicker 1: the flicker figure needs at least 8"),
    (["--mode", "bicubic", "--flicker", "-3"], "(0 = off)"),
]


@pytest.mark.parametrize(("argv", "needle"), REFUSED)
def test_bad_outputs_and_flags_are_refused_before_measuring(
        workdir: Path, opened: list[object], capsys: pytest.CaptureFixture[str],
        argv: list[str], needle: str) -> None:
    before = tree(workdir)
    assert cli_main(["bench", *SHORT, *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("localsr-cam: error:"), err
    assert needle in err and "Traceback" not in err
    assert tree(workdir) == before  # the video and photo as they were, no output made
    assert opened == []


def test_each_mode_gets_its_own_file_or_folder_sink() -> None:
    sinks = ("file:out/bo.mp4", "dir:frames/", "null", "preview")
    assert mode_sinks(sinks, "local", ["local"]) == sinks
    assert mode_sinks(sinks, "full", ["local", "full", "bicubic"]) == (
        "file:out/bo_full.mp4", "dir:frames_full", "null", "preview")
    named = {mode: mode_sinks(("dir:.",), mode, ["local", "bicubic"])[0]
             for mode in ("local", "bicubic")}
    assert named == {mode: f"dir:{Path.cwd().parent / f'{Path.cwd().name}_{mode}'}"
                     for mode in ("local", "bicubic")}


def test_the_flicker_minimum_is_measure_flickers_own() -> None:
    from localsr_cam.config import PipelineConfig
    from localsr_cam.measure.flicker import measure_flicker

    with pytest.raises(LocalSRError, match=f"at least {FLICKER_MIN_FRAMES} frames"):
        measure_flicker(PipelineConfig(), (64, 48), frames=FLICKER_MIN_FRAMES - 1)


def test_help_says_flicker_0_is_off(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["bench", "--help"]) == 0
    assert "0 = off" in " ".join(capsys.readouterr().out.split())


def test_every_plot_format_offered_can_be_written(tmp_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    formats = plot_formats()
    assert {"png", "pdf", "svg", "jpg"} <= formats and "pgf" not in formats
    figure, axes = plt.subplots(figsize=(2, 1.5))
    axes.plot([0, 1], [1, 0], label="x")
    axes.legend()
    try:
        for fmt in sorted(formats):
            figure.savefig(tmp_path / f"plot.{fmt.upper()}", dpi=30)
            assert (tmp_path / f"plot.{fmt.upper()}").stat().st_size > 0, fmt
    finally:
        plt.close(figure)
