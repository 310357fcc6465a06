"""paths.refuse_clobbers: outputs on an input, in a read folder under a read name, or on
each other, however the path is spelt (``..``, a symbolic or a hard link)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from localsr_cam.errors import SinkError
from localsr_cam.paths import refuse_clobbers

SUFFIXES = {".png", ".jpg"}


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "a.png").write_bytes(b"png")
    return folder


def refuse(photos: Path, files: list[tuple[str, Path]],
           folders: list[tuple[str, Path]] | None = None) -> None:
    refuse_clobbers(files, folders or [], inputs=[photos / "a.png"], read_folders=[photos],
                    read_suffixes=SUFFIXES)


def test_an_input_spelt_another_way_or_linked_is_refused(photos: Path) -> None:
    os.link(photos / "a.png", photos.parent / "hard.json")
    (photos.parent / "soft.json").symlink_to(photos / "a.png")
    for spelt in (photos / ".." / "photos" / "a.png", photos.parent / "hard.json",
                  photos.parent / "soft.json"):
        with pytest.raises(SinkError, match=r"is the input .*a.png: writing it would destroy"):
            refuse(photos, [("--json", spelt)])


def test_a_read_name_in_a_read_folder_is_refused_in_any_case(photos: Path) -> None:
    for name in ("new.png", "new.JPG"):
        with pytest.raises(SinkError, match="would be read as an input image"):
            refuse(photos, [("--md", photos / name)])
    with pytest.raises(SinkError, match=r"--figures .* is the input folder"):
        refuse(photos, [], [("--figures", photos / "sub" / "..")])


def test_other_names_subfolders_and_distinct_outputs_pass(photos: Path) -> None:
    refuse(photos, [("--json", photos / "report.json"), ("--md", photos / "report.md"),
                    ("--plot", photos.parent / "plot.png")],
           [("--figures", photos / "figs"), ("--masks", photos / "masks")])


def test_two_outputs_on_one_path_are_refused(photos: Path) -> None:
    out = photos.parent / "out"
    with pytest.raises(SinkError, match=r"--figures .*out and --masks .*out are the same path"):
        refuse(photos, [], [("--figures", out), ("--masks", out / ".")])
    with pytest.raises(SinkError, match="same path"):
        refuse_clobbers([("--json", out / "r.json"), ("--md", out / "x" / ".." / "r.json")])
