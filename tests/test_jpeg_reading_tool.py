"""tools/jpeg_reading.py: MJPEG reads as MJPEG, clean frames as clean, on real photos."""

from __future__ import annotations

import cv2
import pytest

from tests.tool_import import imported_tool


@pytest.fixture(scope="module")
def tool():
    with imported_tool("jpeg_reading.py", "jpeg_reading_tool") as module:
        yield module


def test_shares_per_kind_of_input(tool):
    from skimage import data

    photos = [cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR),
              cv2.cvtColor(data.coffee(), cv2.COLOR_RGB2BGR)]
    shares = tool.read_shares(photos)
    assert shares["clean", "eval"] == shares["clean", "live"] == 0.0
    for quality in (60, 75, 85, 90):
        assert shares[f"q{quality}", "eval"] == 1.0 and shares[f"q{quality}", "live"] >= 0.75
    assert shares["q95", "eval"] == 0.0  # too light to read; the plain net serves it
    assert "| live | 0.0 % | " in tool.table(shares)


def test_a_bad_folder_is_one_line_and_exit_2(tool, tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        tool.main([str(tmp_path / "none")])
    assert stop.value.code == 2 and "does not exist" in capsys.readouterr().err
