"""The PyTorch backend on the CPU: same pixels as ONNX Runtime, the Engine contract.

Models are built with random weights into a temporary engines folder (so these tests
run before any model is trained or fetched); the shipped models are compared too when
their files are present.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
import pytest
import torch

from localsr_cam.config import BlendConfig, ModelConfig, PipelineConfig
from localsr_cam.errors import ConfigError, ModelError
from localsr_cam.frames import CapturedFrame
from localsr_cam.process import ops
from localsr_cam.runtime.torch import TorchEngine
from localsr_cam.zoo.artifacts import engines_dir
from localsr_cam.zoo.backends import open_engine
from localsr_cam.zoo.registry import MODELS
from tests.fakes import write_random_model

SR_INPUT = (1, 3, 40, 56)
# ONNX Runtime and PyTorch run the same fp32 graph with different kernels
# (the face detector's regressors are in input pixels, up to about ±200)
ATOL = {"sr": 2e-4, "segment": 2e-4, "detect": 1e-3}
OUTPUTS = {"sr": ("sr",), "segment": ("mask",), "detect": ("regressors", "scores")}


@pytest.fixture(scope="module")
def random_engines(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("engines")
    for name in ("fast", "paper", "selfie"):
        write_random_model(name, directory, seed=len(name))
    return directory


@pytest.fixture
def use_random_engines(random_engines, monkeypatch) -> Path:
    monkeypatch.setenv("LOCALSR_ENGINES", str(random_engines))
    return random_engines


def _input_for(name: str, seed: int = 1) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    if MODELS[name].kind == "sr":
        return torch.rand(SR_INPUT, generator=gen)
    if MODELS[name].kind == "detect":  # three tiles in one call
        return torch.rand((3, 3, 192, 192), generator=gen) * 2 - 1
    from localsr_cam.models.selfie import VARIANTS

    return torch.rand((1, 3, *VARIANTS[name]), generator=gen)


def _compare_with_ort(name: str) -> float:
    """Largest |torch − ORT| for ``name`` from the current engines folder."""
    spec = MODELS[name]
    image = _input_for(name)
    feeds = [{"image": image}]
    if spec.kind == "sr":  # told nothing (zeros), and told a degraded frame
        feeds.append({"image": image, "levels": torch.tensor([[0.8, 0.5, 0.3]])})
    worst = 0.0
    for inputs in feeds:
        with contextlib.closing(open_engine(name, "torch", threads=2)) as engine:
            got = engine(inputs)
        # as the app opens it (fast with its MJPEG variant where that is shipped)
        ort = open_engine(name, "cpu", threads=2, precision="fp32")
        try:
            expected = ort(inputs)
        finally:
            ort.close()
        if spec.kind == "sr":  # ORT's: before the last shuffle, for a graph ending in one
            expected = {"sr": ops.sr_rgb_float(expected)}
        assert set(got) == set(expected) == set(OUTPUTS[spec.kind])
        for output in OUTPUTS[spec.kind]:
            assert got[output].shape == expected[output].shape
            assert got[output].dtype == torch.float32
            worst = max(worst, float((got[output] - expected[output]).abs().max()))
    return worst


@pytest.mark.parametrize("name", ["fast", "paper", "selfie"])
def test_torch_cpu_matches_onnx_runtime(name, use_random_engines):
    diff = _compare_with_ort(name)
    assert diff < ATOL[MODELS[name].kind], f"{name}: max |torch − ORT| = {diff:g}"


SHIPPED = [name for name, spec in MODELS.items() if spec.onnx and spec.weights]


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_model_torch_matches_onnx_runtime(name):
    spec = MODELS[name]
    missing = [f for f in (spec.onnx, spec.weights) if f and not (engines_dir() / f).is_file()]
    if missing:
        pytest.skip(f"{name}: {', '.join(missing)} not in {engines_dir()} yet "
                    f"(`{spec.build_command}` makes them)")
    diff = _compare_with_ort(name)
    assert diff < ATOL[spec.kind], f"{name}: max |torch − ORT| = {diff:g}"


def test_random_models_really_differ_from_plain_upscale(use_random_engines):
    """Guards the parity test: with zero residual the two backends would agree trivially."""
    image = _input_for("fast")
    with contextlib.closing(open_engine("fast", "torch")) as engine:
        sr = engine({"image": image})["sr"]
    bilinear = torch.nn.functional.interpolate(image, scale_factor=2, mode="bilinear")
    assert float((sr - bilinear).abs().mean()) > 0.01


def test_engine_contract(use_random_engines):
    engine = open_engine("fast", "torch", threads=2)
    assert isinstance(engine, TorchEngine)
    assert (engine.name, engine.backend, engine.device) == ("fast", "torch",
                                                            torch.device("cpu"))
    out = engine({"image": torch.rand(1, 3, 32, 40)})
    assert set(out) == {"sr"} and out["sr"].shape == (1, 3, 64, 80)
    engine.close()
    engine.close()  # safe twice
    with pytest.raises(RuntimeError, match="not open"):
        engine({"image": torch.rand(1, 3, 32, 40)})


def test_segmenter_output_name_and_range(use_random_engines):
    with contextlib.closing(open_engine("selfie", "torch")) as engine:
        mask = engine({"image": torch.rand(1, 3, 256, 256)})["mask"]
    assert mask.shape == (1, 1, 256, 256)
    assert float(mask.min()) >= 0.0 and float(mask.max()) <= 1.0


def test_missing_weights_name_the_file_and_command(tmp_path, monkeypatch):
    monkeypatch.setenv("LOCALSR_ENGINES", str(tmp_path))
    with pytest.raises(ModelError, match=r"fast_unet\.pt.*localsr-cam train"):
        open_engine("fast", "torch")
    with pytest.raises(ModelError, match=r"selfie\.pt.*models fetch"):
        open_engine("selfie", "torch")


def test_bad_device_kind_module_and_unknown_model_are_config_errors():
    with pytest.raises(ConfigError, match="device"):
        TorchEngine("fast", "tpu", kind="sr", module=torch.nn.Identity())
    with pytest.raises(ConfigError, match="kind"):
        TorchEngine("fast", "cpu", kind="depth", module=torch.nn.Identity())
    with pytest.raises(ConfigError, match="module or a loader"):
        TorchEngine("fast", "cpu", kind="sr")
    with pytest.raises(ConfigError, match="unknown model"):
        open_engine("nope", "torch")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message without CUDA")
def test_cuda_without_a_gpu_is_one_line():
    from localsr_cam.errors import BackendUnavailableError

    with pytest.raises(BackendUnavailableError, match="no CUDA GPU") as info:
        TorchEngine("fast", "cuda", kind="sr", module=torch.nn.Identity()).open()
    assert "\n" not in str(info.value)


def test_processor_with_torch_backend_matches_onnx_runtime(use_random_engines):
    """The whole frame through FrameProcessor: backend torch vs cpu (ONNX Runtime)."""
    from localsr_cam.process.processor import FrameProcessor

    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, (90, 160, 3), dtype=np.uint8)
    outputs = {}
    for backend in ("torch", "cpu"):
        config = PipelineConfig(model=ModelConfig(model="fast", backend=backend,
                                                  segmenter="selfie"),
                                blend=BlendConfig(full_frame=True))
        with FrameProcessor(config) as processor:
            processor.prepare((160, 90))
            outputs[backend] = processor.process(CapturedFrame(image, 0, 0.0))
    a, b = outputs["torch"], outputs["cpu"]
    assert not a.fallback and not b.fallback
    assert a.box == b.box == (0, 0, 160, 90)
    assert int(np.abs(a.image.astype(int) - b.image.astype(int)).max()) <= 1


def test_prepare_shapes_is_a_no_op_on_the_cpu_and_needs_an_open_engine():
    engine = TorchEngine("fast", "cpu", kind="sr", module=torch.nn.Upsample(scale_factor=2))
    with pytest.raises(RuntimeError, match="not open"):
        engine.prepare_shapes([(1, 3, 32, 32)])
    engine.open()
    engine.prepare_shapes([(1, 3, 32, 32), (1, 3, 64, 32)])
    assert engine.graph_shapes == []  # graphs are CUDA's
    assert engine({"image": torch.rand(1, 3, 8, 8)})["sr"].shape == (1, 3, 16, 16)
    engine.close()
