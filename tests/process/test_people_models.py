"""The people path with the real models (selfie, face finder) on the shipped samples.

Skipped where the converted models are missing (``localsr-cam models fetch``). The SR
model is left out (``bicubic`` with a blurred background still makes the mask), so
these check finding and segmenting only.
"""

from __future__ import annotations

import numpy as np
import pytest

from localsr_cam.capture.room import RoomSource
from localsr_cam.capture.sources import SyntheticSource
from localsr_cam.config import BlendConfig, ModelConfig, PipelineConfig
from localsr_cam.frames import CapturedFrame
from localsr_cam.process.auto import CLOSE_UP, PEOPLE
from localsr_cam.process.processor import FrameProcessor
from localsr_cam.zoo.artifacts import engines_dir

pytestmark = pytest.mark.skipif(
    not all((engines_dir() / name).exists() for name in
            ("selfie.onnx", "selfie_landscape.onnx", "face_full_range.onnx")),
    reason="models not prepared (run `localsr-cam models fetch`)")


def mask_config(segmenter: str) -> PipelineConfig:
    return PipelineConfig(model=ModelConfig(model="bicubic", segmenter=segmenter,
                                            backend="cpu"),
                          blend=BlendConfig(background="blur"))


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max(1, (a | b).sum()))


def test_close_up_sample_keeps_todays_mask_under_auto():
    source = SyntheticSource((640, 360))
    source.open()
    with FrameProcessor(mask_config("auto")) as auto, \
            FrameProcessor(mask_config("selfie-landscape")) as today:
        auto.prepare(source.size)
        today.prepare(source.size)
        ious, paths = [], []
        for index in range(0, 120, 2):
            frame = CapturedFrame(source.frame(index), index, index / 30)
            got, want = auto.process(frame), today.process(frame)
            ious.append(iou(got.mask >= 0.5, want.mask >= 0.5))
            paths.append(auto.path)
    assert set(paths) == {CLOSE_UP}
    assert min(ious) >= 0.95, min(ious)


def test_room_everyone_is_in_the_mask():
    source = RoomSource((640, 360))
    source.open()
    inside = []
    with FrameProcessor(mask_config("people")) as processor:
        processor.prepare(source.size)
        for index in range(70):
            out = processor.process(CapturedFrame(source.frame(index), index, index / 30))
        assert processor.path == PEOPLE
    assert out.people == 5
    for x0, y0, x1, y1 in source.faces(69):
        box = out.mask[round(y0):round(y1), round(x0):round(x1)]
        inside.append(float((box >= 0.5).mean()))
    assert min(inside) >= 0.5, inside


def test_auto_takes_the_people_path_in_the_room_from_the_first_frame():
    source = RoomSource((640, 360))
    source.open()
    with FrameProcessor(mask_config("auto")) as processor:
        processor.prepare(source.size)
        paths, people = [], []
        for index in range(40):
            out = processor.process(CapturedFrame(source.frame(index), index, index / 30))
            paths.append(processor.path)
            people.append(out.people)
    assert set(paths) == {PEOPLE}  # the first frame scans every tile and decides
    assert people[0] == 5 and min(people) >= 4


def test_a_still_group_photo_is_fully_found_in_one_frame():
    """eval and process_image give the processor one frame: it must find everyone."""
    from tests.fakes import process_image

    source = RoomSource((640, 360))
    source.open()
    with FrameProcessor(mask_config("auto")) as processor:
        out = process_image(processor, source.frame(10))
        assert processor.path == PEOPLE
    assert out.people == 5 and out.mask is not None
    for x0, y0, x1, y1 in source.faces(10):
        box = out.mask[round(y0):round(y1), round(x0):round(x1)]
        assert (box >= 0.5).mean() >= 0.5
