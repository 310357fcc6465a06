"""The CPU engine runs FastUNet without the crop after its ``up`` step on even-sized
inputs, where that crop cuts nothing, and with it on odd-sized ones."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
import torch.nn.functional as F

from localsr_cam.models.unet import FastUNet, PaperUNet
from localsr_cam.runtime.base import SR_NAME, SUBPIXEL_NAME
from localsr_cam.runtime.graph_edits import with_subpixel_output, without_odd_size_crop
from localsr_cam.runtime.ort import OrtEngine, cpu_session
from localsr_cam.zoo.export import export_sr_onnx


def _random_net(net: torch.nn.Module) -> torch.nn.Module:
    torch.manual_seed(0)
    for parameter in net.parameters():
        torch.nn.init.normal_(parameter, std=0.1)
    return net.eval()


def _feed(h: int, w: int, jpeg: float = 0.5) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(h * 100 + w)
    return {"image": rng.random((1, 3, h, w), dtype=np.float32),
            "levels": np.array([[0.1, jpeg, 0.2]], np.float32)}


def _slices(model: bytes) -> int:
    return sum(node.op_type == "Slice" for node in onnx.load_from_string(model).graph.node)


def test_without_the_crop_even_sizes_give_the_same_numbers(tmp_path: Path) -> None:
    path = tmp_path / "fast.onnx"
    export_sr_onnx(_random_net(FastUNet(16, 2, levels=3, chroma=True, backproject=True)),
                   path)
    data = with_subpixel_output(path.read_bytes())
    assert data is not None
    even = without_odd_size_crop(data)
    assert even is not None
    assert _slices(even) == _slices(data) - 2  # the height's crop and the width's
    full, cut = cpu_session(data, 1), cpu_session(even, 1)
    for h, w in ((2, 2), (18, 34), (40, 24)):
        feed = _feed(h, w)
        assert np.array_equal(cut.run([SUBPIXEL_NAME], feed)[0],
                              full.run([SUBPIXEL_NAME], feed)[0])
    # a graph for even sizes only: on an odd side the skip and the doubled features
    # differ in size
    with pytest.raises(Exception, match="Add"):
        cut.run([SUBPIXEL_NAME], _feed(17, 33))


def test_the_engine_gives_the_graphs_numbers_for_even_and_odd_sizes(tmp_path: Path
                                                                     ) -> None:
    path = tmp_path / "fast.onnx"
    export_sr_onnx(_random_net(FastUNet(16, 2, levels=3, chroma=True)), path)
    full = cpu_session(path, 1)
    engine = OrtEngine("fast", path, threads=1).open()
    try:
        # JPEG level 0: the engine bypasses the chroma step (which would change nothing),
        # 0.5: it runs it
        for (h, w), jpeg in itertools.product(
                ((18, 34), (17, 33), (18, 33), (1, 1), (40, 24)), (0.0, 0.5)):
            feed = _feed(h, w, jpeg)
            got = engine({name: torch.from_numpy(value) for name, value in feed.items()})
            shuffled = F.pixel_shuffle(got[SUBPIXEL_NAME], 2).numpy()
            assert np.array_equal(shuffled, full.run([SR_NAME], feed)[0])
    finally:
        engine.close()


def test_a_net_that_halves_twice_keeps_its_crops(tmp_path: Path) -> None:
    path = tmp_path / "paper.onnx"
    export_sr_onnx(_random_net(PaperUNet(8, levels=3)), path)
    assert without_odd_size_crop(path.read_bytes()) is None
    engine = OrtEngine("paper", path, threads=1).open()
    try:
        feed = _feed(6, 10)  # its quarter-resolution crop cuts here though 6 is even
        got = engine({name: torch.from_numpy(value) for name, value in feed.items()})
        assert np.array_equal(got[SR_NAME].numpy(),
                              cpu_session(path, 1).run([SR_NAME], feed)[0])
    finally:
        engine.close()
