"""The int8 form of the SR net for the CPU backend: what is quantized, how close it stays
to float32, how it is refused, shipped, chosen and rebuilt."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from localsr_cam.cli.main import main
from localsr_cam.errors import ConfigError, ModelError
from localsr_cam.models.unet import FastUNet, PaperUNet
from localsr_cam.paths import sha256_file
from localsr_cam.process import ops
from localsr_cam.runtime.routed import MjpegRoutedEngine
from localsr_cam.train import quantize
from localsr_cam.zoo.backends import open_engine
from localsr_cam.zoo.export import export_sr_onnx

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "engines"


def _photos(count: int = 3, size: int = 160) -> list[np.ndarray]:
    """Smooth random RGB uint8 images with edges (enough structure to calibrate on)."""
    rng = np.random.default_rng(5)
    images = []
    for _ in range(count):
        base = rng.random((size // 8, size // 8, 3)) * 255
        image = np.kron(base, np.ones((8, 8, 1)))  # blocks: edges at every 8 px
        images.append(np.clip(image + rng.normal(0, 4, image.shape), 0, 255).astype(np.uint8))
    return images


@pytest.fixture(scope="module")
def shipped_fast(tmp_path_factory: pytest.TempPathFactory) -> tuple[FastUNet, Path]:
    """The shipped FastUNet and a fresh float32 export of it."""
    config = json.loads((SHIPPED / "manifest.json").read_text())["fast"]["config"]
    net = FastUNet(**config)
    net.load_state_dict(torch.load(SHIPPED / "fast_unet.pt", map_location="cpu"))
    path = tmp_path_factory.mktemp("fp32") / "fast_unet.onnx"
    export_sr_onnx(net.eval(), path)
    return net, path


def test_the_half_resolution_convs_and_the_padded_tail_are_chosen(shipped_fast):
    net, path = shipped_fast
    model = onnx.load(str(path))
    nodes = quantize.int8_nodes(net, model)
    assert nodes == (["/down/Conv"] + [f"/body.{i}/Conv" for i in range(net.depth)]
                     + ["/tail/Conv"])
    weights = {init.name: tuple(init.dims) for init in model.graph.initializer}
    tail = next(node for node in model.graph.node if node.name == "/tail/Conv")
    assert weights[tail.input[1]][0] % 16 == 0  # ORT's fast int8 kernel needs 16s


def test_a_model_without_int8_layers_has_no_int8_form(tmp_path):
    paper = PaperUNet(width=4)
    path = tmp_path / "paper.onnx"
    export_sr_onnx(paper, path)
    with pytest.raises(ModelError, match="no int8 form"):
        quantize.int8_nodes(paper, onnx.load(str(path)))


def test_the_int8_file_quantizes_those_convs_and_stays_close_to_float32(shipped_fast,
                                                                        tmp_path):
    net, path = shipped_fast
    out = tmp_path / "fast_unet.int8.onnx"
    record = quantize.quantize_sr(net, path, out, _photos(), seed=1)
    graph = onnx.load(str(out)).graph
    weights_quantized = {node.input[1] for node in graph.node if node.op_type == "Conv"
                         and node.name in record["nodes"]}
    dequantized = {node.output[0] for node in graph.node if node.op_type == "DequantizeLinear"}
    assert weights_quantized and weights_quantized <= dequantized  # int8 weights feed them
    head = next(node for node in graph.node if node.name == "/head/Conv")
    assert head.input[1] not in dequantized  # the LR-resolution head stays float32
    assert record["psnr_vs_fp32_db"] >= quantize.MIN_INT8_PSNR_DB
    feeds = quantize.calibration_feeds(_photos(2), net.levels, seed=9, count=4)
    assert quantize.int8_psnr(path, out, feeds) >= quantize.MIN_INT8_PSNR_DB
    assert quantize.int8_psnr(path, path, feeds) == float("inf")


def test_an_int8_form_too_far_from_float32_is_refused_and_not_written(shipped_fast,
                                                                      tmp_path, monkeypatch):
    net, path = shipped_fast
    monkeypatch.setattr(quantize, "MIN_INT8_PSNR_DB", 200.0)
    out = tmp_path / "fast_unet.int8.onnx"
    with pytest.raises(ModelError, match="PSNR"):
        quantize.quantize_sr(net, path, out, _photos(), seed=1)
    assert not out.exists()


@pytest.fixture
def engines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the shipped engines folder that the app reads."""
    folder = tmp_path / "engines"
    folder.mkdir()
    for item in SHIPPED.iterdir():
        if item.is_file():
            shutil.copy2(item, folder / item.name)
    monkeypatch.setenv("LOCALSR_ENGINES", str(folder))
    return folder


def test_the_cpu_backend_runs_int8_by_default_and_float32_when_asked(engines):
    assert open_engine("fast", "cpu").precision == "int8"
    # fast ships with its MJPEG variant: both nets in the same arithmetic
    int8 = open_engine("fast", "cpu", precision="int8")
    assert isinstance(int8, MjpegRoutedEngine)
    assert int8.plain.path.name == "fast_unet.int8.onnx"
    assert int8.mjpeg.path.name == "fast_jpeg_unet.int8.onnx"
    fp32 = open_engine("fast", "cpu", precision="fp32")
    assert isinstance(fp32, MjpegRoutedEngine) and fp32.precision == "fp32"
    assert fp32.plain.path.name == "fast_unet.onnx"
    assert fp32.mjpeg.path.name == "fast_jpeg_unet.onnx"
    assert open_engine("paper", "cpu").precision == "fp32"  # it has no int8 form
    image = torch.rand(1, 3, 40, 48)
    levels = torch.tensor([[0.05, 0.3, 0.2]])
    a = ops.sr_rgb_float(open_engine("fast", "cpu")({"image": image, "levels": levels}))
    b = ops.sr_rgb_float(fp32({"image": image, "levels": levels}))
    assert a.shape == b.shape == (1, 3, 80, 96)
    assert 0 < float((a - b).abs().max()) < 0.1  # int8 differs, a little


def test_int8_is_refused_where_it_cannot_run(engines):
    with pytest.raises(ConfigError, match="cpu backend"):
        open_engine("fast", "torch", precision="int8")
    with pytest.raises(ConfigError, match="cpu backend"):
        open_engine("paper", "cpu", precision="int8")


def test_without_its_int8_file_auto_runs_float32_and_int8_names_the_command(engines):
    (engines / "fast_unet.int8.onnx").unlink()
    assert open_engine("fast", "cpu").precision == "fp32"
    with pytest.raises(ModelError, match="localsr-cam models quantize fast"):
        open_engine("fast", "cpu", precision="int8")


def test_models_quantize_rebuilds_the_file_and_its_manifest_record(engines, tmp_path,
                                                                   capsys):
    import cv2

    photos = tmp_path / "photos"
    photos.mkdir()
    for i, image in enumerate(_photos()):
        cv2.imwrite(str(photos / f"{i}.png"), image[:, :, ::-1])
    (engines / "fast_unet.int8.onnx").unlink()
    for variant in engines.glob("fast_jpeg_unet.*"):  # a variant not trained here: skipped
        variant.unlink()
    assert main(["models", "quantize", "--data", str(photos), "--seed", "3"]) == 0
    out = capsys.readouterr().out
    assert "fast_unet.int8.onnx" in out and "fast-jpeg: not trained here yet" in out
    entry = json.loads((engines / "manifest.json").read_text())["fast"]
    assert entry["files"]["onnx_int8"]["sha256"] == sha256_file(engines / "fast_unet.int8.onnx")
    assert entry["int8"]["calibration"]["data"] == [str(photos)]
    assert entry["int8"]["calibration"]["seed"] == 3
    assert open_engine("fast", "cpu").precision == "int8"


def test_models_quantize_refuses_a_model_without_an_int8_form(engines, capsys):
    assert main(["models", "quantize", "paper"]) == 2
    assert "no int8 form" in capsys.readouterr().err


def test_the_shipped_int8_file_is_the_one_the_manifest_records():
    entry = json.loads((SHIPPED / "manifest.json").read_text())["fast"]
    assert entry["files"]["onnx_int8"]["sha256"] == sha256_file(SHIPPED / "fast_unet.int8.onnx")
    assert entry["int8"]["psnr_vs_fp32_db"] >= quantize.MIN_INT8_PSNR_DB
