"""The CPU engine leaves the SR graph's last pixel shuffle to the uint8 conversion."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
import torch.nn.functional as F

from localsr_cam.models.unet import FastUNet, PaperUNet, pixel_shuffle_weight
from localsr_cam.process import ops
from localsr_cam.runtime.base import SR_NAME, SUBPIXEL_NAME
from localsr_cam.runtime.graph_edits import with_subpixel_output
from localsr_cam.runtime.ort import OrtEngine, cpu_session
from localsr_cam.zoo.export import export_sr_onnx


def _random_net(net: torch.nn.Module) -> torch.nn.Module:
    torch.manual_seed(0)
    for parameter in net.parameters():
        torch.nn.init.normal_(parameter, std=0.1)
    return net.eval()


class _EndsInTransposedConv(torch.nn.Module):
    """A graph that ends like FastUNet's export form, but with another weight."""

    def __init__(self, weight: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("weight", weight)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        planes = torch.cat([image] * 4, dim=1)
        return F.conv_transpose2d(planes, self.weight, stride=2)


def test_the_planes_are_the_graphs_own_numbers_before_its_shuffle(tmp_path: Path) -> None:
    path = tmp_path / "fast.onnx"
    export_sr_onnx(_random_net(FastUNet(16, 2, levels=3, chroma=True)), path)
    edited = with_subpixel_output(path.read_bytes())
    assert edited is not None
    graph = onnx.load_from_string(edited).graph
    assert [output.name for output in graph.output] == [SUBPIXEL_NAME]
    assert len(graph.node) == len(onnx.load(str(path)).graph.node) - 1
    full, cut = cpu_session(path, 1), cpu_session(edited, 1)
    for h, w in ((1, 1), (7, 12), (33, 20)):
        feed = {"image": np.random.default_rng(h).random((2, 3, h, w), dtype=np.float32),
                "levels": np.array([[0.1, 0.5, 0.2], [0.0, 0.0, 0.9]], np.float32)}
        planes = cut.run([SUBPIXEL_NAME], feed)[0]
        assert planes.shape == (2, 12, h, w)
        shuffled = F.pixel_shuffle(torch.from_numpy(planes), 2).numpy()
        assert np.array_equal(shuffled, full.run([SR_NAME], feed)[0])


@pytest.mark.parametrize("weight", [torch.rand(12, 3, 2, 2),
                                    2 * pixel_shuffle_weight()])
def test_a_graph_ending_in_another_transposed_conv_is_left_alone(weight, tmp_path: Path
                                                                  ) -> None:
    path = tmp_path / "other.onnx"
    export_sr_onnx(_EndsInTransposedConv(weight), path)
    assert with_subpixel_output(path.read_bytes()) is None
    engine = OrtEngine("other", path, threads=1).open()
    assert set(engine({"image": torch.rand(1, 3, 4, 5)})) == {SR_NAME}
    engine.close()


def test_the_shuffle_weight_is_torchs_pixel_shuffle() -> None:
    planes = torch.rand(1, 12, 5, 6)
    by_weight = F.conv_transpose2d(planes, pixel_shuffle_weight(),
                                   stride=2)
    assert torch.equal(by_weight, F.pixel_shuffle(planes, 2))


def test_paper_unet_has_no_final_shuffle_and_keeps_its_output(tmp_path: Path) -> None:
    path = tmp_path / "paper.onnx"
    export_sr_onnx(_random_net(PaperUNet(8, levels=3)), path)
    assert with_subpixel_output(path.read_bytes()) is None


def test_the_engine_gives_planes_and_they_convert_like_the_image(tmp_path: Path) -> None:
    path = tmp_path / "fast.onnx"
    net = _random_net(FastUNet(16, 2, levels=3))
    export_sr_onnx(net, path)
    engine = OrtEngine("fast", path, threads=1).open()
    image, levels = torch.rand(2, 3, 9, 14), torch.tensor([[0.1, 0.0, 0.3]] * 2)
    outputs = engine({"image": image, "levels": levels})
    engine.close()
    assert set(outputs) == {SUBPIXEL_NAME}
    with torch.no_grad():
        expected = net(image, levels)
    assert float((ops.sr_rgb_float(outputs) - expected).abs().max()) < 1e-4
    for index in range(2):
        assert torch.equal(ops.sr_to_bgr8(outputs, index),
                           ops.rgb_float_to_bgr8(ops.sr_rgb_float(outputs)[index:index + 1]))


@pytest.mark.parametrize("h, w", [(1, 1), (5, 8), (31, 17)])
def test_planes_to_bgr8_rounds_clamps_and_interleaves_like_the_image(h, w) -> None:
    planes = torch.rand(3, 12, h, w) * 1.6 - 0.3  # under 0 and over 1 too
    for index in range(3):
        got = ops.sr_to_bgr8({SUBPIXEL_NAME: planes}, index)
        assert got.dtype == torch.uint8 and got.shape == (2 * h, 2 * w, 3)
        image = F.pixel_shuffle(planes[index:index + 1], 2)
        assert torch.equal(got, ops.rgb_float_to_bgr8(image))
        assert torch.equal(ops.sr_to_bgr8({SR_NAME: image}), got)
