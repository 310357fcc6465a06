"""localsr-cam eval refuses outputs that would land on its input photos, in the photo
folder under an image name, or on each other: exit 2, one line, before any model loads,
the photos untouched and nothing written."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from localsr_cam.cli.main import main as cli_main
from tests.folder_tree import tree


def photo(seed: int = 0) -> np.ndarray:
    """A small textured BGR photo (64×48)."""
    return (np.random.default_rng(seed).random((48, 64, 3)) * 255).astype(np.uint8)


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The working directory, holding ``evimg/astro.png`` and ``div/photos_HR/a.png``
    (the DIV2K layout: no image directly in ``div``)."""
    monkeypatch.chdir(tmp_path)
    for path in (tmp_path / "evimg" / "astro.png", tmp_path / "div" / "photos_HR" / "a.png"):
        path.parent.mkdir(parents=True)
        assert cv2.imwrite(str(path), photo())
    return tmp_path


REFUSED = [
    (["--images", "evimg", "--json", "evimg/astro.png"], "--json evimg/astro.png is the input"),
    (["--images", "evimg", "--md", "./evimg/astro.png"], "is the input"),
    (["--images", "evimg", "--masks", "evimg"], "--masks evimg is the input folder"),
    (["--images", "evimg", "--figures", "evimg"], "--figures evimg is the input folder"),
    (["--images", "evimg", "--figures", "evimg/../evimg"], "is the input folder evimg"),
    (["--images", "evimg", "--json", "evimg/report.PNG"], "would be read as an input image"),
    (["--images", "evimg", "--md", "evimg/notes.jpg"], "would be read as an input image"),
    (["--images", "evimg", "--json", "e.json", "--md", "e.json"],
     "--json e.json and --md e.json are the same path"),
    (["--images", "evimg", "--figures", "out", "--masks", "out"], "are the same path"),
    (["--images", "evimg", "--json", "out", "--figures", "out"], "are the same path"),
    (["--images", "evimg", "--degrade", "all", "--figures", "out", "--masks", "out/area"],
     "are the same path"),
    (["--images", "evimg/area", "--degrade", "all", "--figures", "evimg"],  # → evimg/area/
     "--figures evimg/area is the input folder"),
    (["--images", "div", "--figures", "div/photos_HR"], "is the input folder"),
    (["--images", "div", "--masks", "div"], "is the input folder"),
    (["--images", "div", "--json", "div/r.png"], "would be read as an input image"),
]


@pytest.mark.parametrize(("argv", "needle"), REFUSED)
def test_an_output_on_the_photos_or_another_output_is_refused_before_any_work(
        workdir: Path, opened: list[object], capsys: pytest.CaptureFixture[str],
        argv: list[str], needle: str) -> None:
    if argv[1] == "evimg/area":  # a photo folder named like a suite, inside the output
        (workdir / "evimg" / "astro.png").rename(workdir / "evimg" / "area.png")
        (workdir / "evimg" / "area").mkdir()
        assert cv2.imwrite(str(workdir / "evimg" / "area" / "b.png"), photo(1))
    before = tree(workdir)
    assert cli_main(["eval", "--model", "bicubic", *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("localsr-cam: error:"), err
    assert needle in err and "Traceback" not in err
    assert tree(workdir) == before  # the photos as they were, no output made
    assert opened == []


def test_reports_beside_the_photos_and_subfolders_are_fine(
        workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """eval does not recurse: a report or a subfolder in the photo folder is not read as
    a photo, and the next eval scores the same one photo."""
    photo_bytes = (workdir / "evimg" / "astro.png").read_bytes()
    argv = ["eval", "--model", "bicubic", "--images", "evimg", "--json", "evimg/report.json",
            "--md", "evimg/report.md", "--figures", "evimg/figs", "--masks", "evimg/masks"]
    assert cli_main(argv) == 0
    assert cli_main(argv) == 0
    assert (workdir / "evimg" / "astro.png").read_bytes() == photo_bytes
    assert sorted(p.name for p in (workdir / "evimg").iterdir()) == [
        "astro.png", "figs", "masks", "report.json", "report.md"]
    assert (workdir / "evimg" / "masks" / "astro.png").is_file()
    assert "| astro.png |" in (workdir / "evimg" / "report.md").read_text()
    capsys.readouterr()
