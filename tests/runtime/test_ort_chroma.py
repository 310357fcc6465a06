"""The ONNX Runtime SR engine skips the JPEG chroma step where it would change nothing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
import torch.nn.functional as F

from localsr_cam.models.chroma import GATE_FROM
from localsr_cam.models.unet import FastUNet, PaperUNet
from localsr_cam.process import ops
from localsr_cam.runtime.base import SUBPIXEL_NAME
from localsr_cam.runtime.graph_edits import CHROMA_STEP, without_chroma_step
from localsr_cam.runtime.ort import OrtEngine
from localsr_cam.train.quantize import quantize_sr
from localsr_cam.zoo.artifacts import engines_dir
from localsr_cam.zoo.export import export_sr_onnx


def _random_net(net: torch.nn.Module) -> torch.nn.Module:
    torch.manual_seed(0)
    for parameter in net.parameters():
        torch.nn.init.normal_(parameter, std=0.1)
    if isinstance(net, FastUNet):  # a small residual, as trained (the int8 tail's range)
        with torch.no_grad():
            net.tail.weight.mul_(0.1)
    return net.eval()


def _engine_outputs(engine: OrtEngine, image: torch.Tensor, jpeg: float
                    ) -> tuple[np.ndarray, np.ndarray]:
    """The engine's output and the full graph's own, for one JPEG level."""
    levels = torch.tensor([[0.2, jpeg, 0.4]])
    ours = ops.sr_rgb_float(engine({"image": image, "levels": levels})).numpy()
    (output,) = engine._outputs  # sr, or sr_planes for a graph ending in a shuffle
    full = engine._session.run([output], {"image": image.numpy(),
                                          "levels": levels.numpy()})[0]
    if output == SUBPIXEL_NAME:
        full = F.pixel_shuffle(torch.from_numpy(full), 2).numpy()
    return ours, full


SHAPE_ARITHMETIC = {"Shape", "Gather", "Unsqueeze", "Squeeze", "Concat", "Cast", "Constant"}
"""Ops of the step that may stay after the bypass: a graph made ready for quantization
shares the step's size arithmetic with the rest of the net."""


def _photos(count: int = 3, size: int = 96) -> list[np.ndarray]:
    """Blocky random RGB uint8 images to calibrate an int8 form on."""
    rng = np.random.default_rng(7)
    blocks = [rng.random((size // 8, size // 8, 3)) * 255 for _ in range(count)]
    return [np.kron(b, np.ones((8, 8, 1))).astype(np.uint8) for b in blocks]


@pytest.mark.parametrize(("net", "form"), [(FastUNet(16, 2, levels=3, chroma=True), "fp32"),
                                           (FastUNet(16, 2, levels=3, chroma=True), "int8"),
                                           (PaperUNet(8, levels=3, chroma=True), "fp32")],
                         ids=["fast", "fast-int8", "paper"])
def test_under_the_gate_the_graph_without_the_step_gives_the_same_numbers(
        net: torch.nn.Module, form: str, tmp_path: Path) -> None:
    path = tmp_path / "sr.onnx"
    export_sr_onnx(_random_net(net), path)
    if form == "int8":  # as `train` writes it: the quantizer's clean-up merges shape ops
        quantize_sr(net, path, tmp_path / "sr.int8.onnx", _photos())
        path = tmp_path / "sr.int8.onnx"
    bypassed = without_chroma_step(path.read_bytes())
    assert bypassed is not None
    graph = onnx.load_from_string(bypassed).graph
    left = {n.op_type for n in graph.node if n.name.startswith(CHROMA_STEP)}
    assert left <= SHAPE_ARITHMETIC
    assert len(graph.node) < len(onnx.load(str(path)).graph.node)
    engine = OrtEngine("sr", path, threads=1).open()
    try:
        image = torch.rand(1, 3, 22, 34)  # even: FastUNet's session without its crop
        # a colourful image: the step would change it at a JPEG level past the gate
        for jpeg in (0.0, 0.5 * GATE_FROM, 0.999 * GATE_FROM):
            ours, full = _engine_outputs(engine, image, jpeg)
            assert np.array_equal(ours, full)
        if form == "fp32":  # and what the net computes (the levels also reach FiLM)
            with torch.no_grad():
                expected = net(image, torch.tensor([[0.2, 0.999 * GATE_FROM, 0.4]]))
            assert np.abs(ours - expected.numpy()).max() <= 1e-4
        # past the gate the step runs (its output differs from the bypassed graph's)
        ours, full = _engine_outputs(engine, image, 0.5)
        assert np.array_equal(ours, full)
        unsmoothed = engine._unsmoothed.run(
            engine._outputs, {"image": image.numpy(),
                              "levels": np.array([[0.2, 0.5, 0.4]], np.float32)})[0]
        if engine._outputs == [SUBPIXEL_NAME]:
            unsmoothed = F.pixel_shuffle(torch.from_numpy(unsmoothed), 2).numpy()
        assert np.abs(full - unsmoothed).max() > 1e-3
    finally:
        engine.close()


def test_a_graph_without_the_step_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "sr.onnx"
    export_sr_onnx(_random_net(FastUNet(16, 2, levels=3)), path)
    assert without_chroma_step(path.read_bytes()) is None
    engine = OrtEngine("sr", path, threads=1).open()
    assert engine._unsmoothed is None
    engine.close()


@pytest.mark.skipif(not (engines_dir() / "fast_unet.int8.onnx").exists(),
                    reason="models not prepared (run `make models`)")
def test_the_shipped_int8_net_skips_the_step_on_a_clean_frame_exactly() -> None:
    engine = OrtEngine("fast", engines_dir() / "fast_unet.int8.onnx", threads=1).open()
    try:
        assert engine._unsmoothed is not None
        image = torch.rand(1, 3, 40, 56)
        ours, full = _engine_outputs(engine, image, 0.0)
        assert np.array_equal(ours, full)
    finally:
        engine.close()
