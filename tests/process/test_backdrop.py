"""``--background image:PATH``: the picture replaces the room, covered, not stretched."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from localsr_cam.cli.main import main
from localsr_cam.config import BlendConfig, ModelConfig, PipelineConfig
from localsr_cam.frames import CapturedFrame
from localsr_cam.process.processor import FrameProcessor
from tests.fakes import BicubicSR, DiscSegmenter, EngineBox

BLUE = (200, 30, 10)


def test_the_picture_replaces_the_background_and_the_person_stays(tmp_path):
    picture = tmp_path / "beach.png"
    cv2.imwrite(str(picture), np.full((50, 80, 3), BLUE, np.uint8))
    config = PipelineConfig(
        model=ModelConfig(model="bicubic", segmenter="selfie", backend="cpu"),
        blend=BlendConfig(ema=0.0, feather_px=0, background=f"image:{picture}"))
    image = np.random.default_rng(0).integers(0, 256, (64, 96, 3), np.uint8)
    engines = EngineBox(DiscSegmenter((0.5, 0.5), 0.25), BicubicSR())
    with FrameProcessor(config, engine_factory=engines) as processor:
        processor.prepare((96, 64))
        out = processor.process(CapturedFrame(image, 0, 0.0))
    assert out.image.shape == (128, 192, 3)
    assert (out.image[:10] == BLUE).all() and (out.image[:, :30] == BLUE).all()
    plain = cv2.resize(image, (192, 128), interpolation=cv2.INTER_CUBIC)
    assert np.array_equal(out.image[56:72, 88:104], plain[56:72, 88:104])  # the person


def test_a_background_picture_through_the_cli(tmp_path):
    picture = tmp_path / "wall.png"
    cv2.imwrite(str(picture), np.full((36, 64, 3), BLUE, np.uint8))
    out = tmp_path / "out"
    assert main(["-q", "run", "--source", "synthetic", "--input", "128x72", "--frames", "1",
                 "--backend", "cpu", "--background", f"image:{picture}",
                 "--sink", f"dir:{out}"]) == 0
    frame = cv2.imread(str(out / "frame_000000.png"))
    assert (np.abs(frame[:8, :8].astype(int) - BLUE) <= 1).all()  # a corner is the wall


@pytest.mark.parametrize("value, needle", [("image:", "image:PATH"), ("sky", "sky"),
                                           ("image:/no/such.png", "/no/such.png"),
                                           ("image:" + __file__, "OpenCV can decode")])
def test_a_bad_background_is_one_line(value, needle, capsys):
    code = main(["run", "--source", "synthetic", "--model", "bicubic", "--frames", "1",
                 "--sink", "null", "--background", value])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0]
