"""``dir:FOLDER``: one PNG per frame; a write that fails leaves no half-written file."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from localsr_cam.errors import SinkError
from localsr_cam.frames import CapturedFrame, Controls, HudStats, ProcessedFrame
from localsr_cam.outputs.imagedir import ImageDirSink


def frame(index: int, value: int = 128) -> ProcessedFrame:
    """A 32×24 grey output frame with no input image name (so ``frame_<index>.png``)."""
    image = np.full((24, 32, 3), value, np.uint8)
    return ProcessedFrame(image=image, source=CapturedFrame(image[::2, ::2], index, 0.0))


def test_frames_are_written_as_pngs_named_by_index(tmp_path: Path) -> None:
    sink = ImageDirSink(tmp_path / "out")
    sink.open((32, 24), 30.0, Controls())
    for index in range(2):
        sink.write(frame(index, 40 * index), HudStats())
    sink.close()
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "frame_000000.png", "frame_000001.png"]
    written = cv2.imread(str(tmp_path / "out" / "frame_000001.png"))
    assert written is not None and int(written.mean()) == 40


def named(name: str, index: int) -> ProcessedFrame:
    """An output frame of the input image ``name`` (the ``index``-th frame read)."""
    image = np.full((24, 32, 3), 90, np.uint8)
    return ProcessedFrame(image=image,
                          source=CapturedFrame(image[::2, ::2], index, 0.0, name=name))


def test_same_stem_inputs_get_their_suffix_and_a_second_pass_its_names_again(
        tmp_path: Path) -> None:
    sink = ImageDirSink(tmp_path / "out")
    sink.open((32, 24), 30.0, Controls())
    order = ["a.jpg", "a.png", "a_png.jpg"]
    for index, name in enumerate(order * 2):  # two passes, as --loop makes
        sink.write(named(name, index), HudStats())
    sink.close()
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "a.png", "a_png.png", "a_png_jpg.png"]
    assert (sink.frames_written, sink.files_written) == (6, 3)


def test_a_failed_write_removes_its_partial_file(tmp_path: Path) -> None:
    """The rename onto a name that is taken by a folder fails (as a full disk fails the
    write): the error is one line and the ``.partial`` file is gone, the images written
    before stay."""
    folder = tmp_path / "out"
    sink = ImageDirSink(folder)
    sink.open((32, 24), 30.0, Controls())
    sink.write(frame(0), HudStats())
    (folder / "frame_000001.png" / "in_the_way").mkdir(parents=True)
    with pytest.raises(SinkError, match="after 1 images") as err:
        sink.write(frame(1), HudStats())
    assert "\n" not in str(err.value)
    sink.close()
    assert sorted(p.name for p in folder.iterdir()) == ["frame_000000.png",
                                                        "frame_000001.png"]
    assert not list(folder.glob(".*.partial"))
