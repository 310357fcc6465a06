"""On a CUDA GPU: the torch-cuda engine, the double-buffered scheduler, TensorRT.

Every test here is marked ``gpu`` and skipped without CUDA (``pytest -m gpu`` runs only
these; ``tools/gpu_check.sh`` runs them on a lent GPU). Models have random weights unless
the shipped files are present, so the tests run before any training.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import torch

from localsr_cam.config import BlendConfig, ModelConfig, PipelineConfig
from localsr_cam.frames import CapturedFrame
from localsr_cam.runtime.torch import TorchEngine, fp16_drift

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]

PARITY_GOAL_DB = 0.05
MODELS_KIND = {"fast": "sr", "selfie": "segment"}


def random_fast_unet(seed: int = 0, scale: float = 0.3) -> torch.nn.Module:
    """A FastUNet with small random weights: a bilinear upscale plus a visible residual."""
    from localsr_cam.models.unet import FastUNet

    model = FastUNet()
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            fan_in = parameter[0].numel() if parameter.dim() > 1 else 400
            parameter.copy_(torch.randn(parameter.shape, generator=gen) * scale / fan_in ** 0.5)
    return model.eval()


def random_selfie(seed: int = 0) -> torch.nn.Module:
    from localsr_cam.models.selfie import SelfieSegmenter

    model = SelfieSegmenter((256, 256))
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            fan_in = parameter[0].numel() if parameter.dim() > 1 else 400
            parameter.copy_(torch.randn(parameter.shape, generator=gen) / fan_in ** 0.5)
    return model.eval()


def smooth_images(count: int = 4, size: tuple[int, int] = (192, 256)) -> list[torch.Tensor]:
    """Natural-ish test images: blurred noise plus edges, float32 1×3×H×W in [0,1]."""
    gen = torch.Generator().manual_seed(7)
    images = []
    for _ in range(count):
        noise = torch.rand((1, 3, size[0] // 8, size[1] // 8), generator=gen)
        image = torch.nn.functional.interpolate(noise, size=size, mode="bicubic")
        image[:, :, size[0] // 3:, size[1] // 2:] *= 0.4  # a hard edge
        images.append(image.clamp(0, 1))
    return images


# -- the torch-cuda engine --------------------------------------------------------------------
def test_cuda_fp16_graphs_match_cpu_fp32():
    module = random_fast_unet()
    image = torch.rand(1, 3, 64, 96)
    with torch.inference_mode():
        expected = module(image)
    with TorchEngine("fast", "cuda", kind="sr", module=random_fast_unet()) as engine:
        got = engine({"image": image.cuda()})["sr"]
        assert engine.graph_shapes == [(1, 3, 64, 96)]
    assert got.dtype == torch.float32 and got.device.type == "cuda"
    assert float((got.cpu() - expected).abs().max()) < 2e-2


def test_graph_cache_is_bounded_and_least_recently_used_goes():
    shapes = [(1, 3, 32, 32), (1, 3, 64, 32), (1, 3, 32, 64)]
    with TorchEngine("fast", "cuda", kind="sr", module=random_fast_unet(), max_graphs=2) as engine:
        for shape in shapes[:2]:
            engine({"image": torch.rand(shape, device="cuda")})
        engine({"image": torch.rand(shapes[0], device="cuda")})  # shapes[0] used again
        engine({"image": torch.rand(shapes[2], device="cuda")})
        assert engine.graph_shapes == [shapes[0], shapes[2]]


def test_outputs_are_owned_by_the_caller_not_the_graph():
    with TorchEngine("fast", "cuda", kind="sr", module=random_fast_unet()) as engine:
        first_in, second_in = torch.rand(2, 1, 3, 48, 48, device="cuda")
        first = engine({"image": first_in})["sr"]
        snapshot = first.clone()
        engine({"image": second_in})
        torch.cuda.current_stream().synchronize()
        assert torch.equal(first, snapshot)


def test_graph_replays_on_two_streams_stay_ordered():
    module = random_fast_unet()
    images = torch.rand(6, 1, 3, 64, 64)
    with torch.inference_mode():
        expected = [module(image) for image in images]
    streams = [torch.cuda.Stream(), torch.cuda.Stream()]
    outputs = []
    with TorchEngine("fast", "cuda", kind="sr", module=random_fast_unet()) as engine:
        for index, image in enumerate(images):
            stream = streams[index % 2]
            stream.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(stream):
                outputs.append(engine({"image": image.cuda(non_blocking=True)})["sr"])
        torch.cuda.current_stream().wait_stream(streams[0])
        torch.cuda.current_stream().wait_stream(streams[1])
        for got, want in zip(outputs, expected, strict=True):
            assert float((got.cpu() - want).abs().max()) < 2e-2


def test_fp16_psnr_drift_is_within_goal():
    from localsr_cam.errors import ModelError
    from localsr_cam.zoo.artifacts import artifact_path

    try:
        artifact_path("fast", "weights")
        from localsr_cam.zoo.loading import load_model

        module = load_model("fast")
    except ModelError:
        module = random_fast_unet()
    figures = fp16_drift(module, smooth_images())
    assert figures["drift_db"] <= PARITY_GOAL_DB, figures


# -- the scheduler on CUDA --------------------------------------------------------------------
def gpu_processor(blend: dict | None = None):
    from localsr_cam.process.processor import FrameProcessor

    modules = {"fast": random_fast_unet(), "selfie": random_selfie()}

    def factory(name: str, backend: str, threads: int, weights: str | None):
        return TorchEngine(name, "cuda", kind=MODELS_KIND[name], module=modules[name]).open()

    config = PipelineConfig(model=ModelConfig(model="fast", backend="cuda",
                                              segmenter="selfie"),
                            blend=BlendConfig(ema=0.5, **(blend or {})))
    return FrameProcessor(config, engine_factory=factory).open()


def frames(count: int, size: tuple[int, int] = (640, 360)) -> list[CapturedFrame]:
    import cv2

    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (size[1] // 8, size[0] // 8, 3), dtype=np.uint8)
    image = cv2.resize(base, size, interpolation=cv2.INTER_CUBIC)
    return [CapturedFrame(np.roll(image, 3 * i, axis=1).copy(), i, time.perf_counter())
            for i in range(count)]


@pytest.mark.parametrize("blend", [{}, {"full_frame": True}, {"background": "blur"}])
def test_double_and_single_buffering_give_the_frames_of_process(blend):
    from localsr_cam.pipeline.gpu import for_processor

    clip = frames(6)
    reference = gpu_processor(blend)
    plain = [reference.process(frame) for frame in clip]
    for buffering in ("single", "double"):
        scheduler = for_processor(gpu_processor(blend), buffering)
        got = [r for r in (scheduler.process(f) for f in clip) if r is not None]
        tail = scheduler.flush()
        got += [tail] if tail is not None else []
        assert [r.source.index for r in got] == list(range(len(clip)))
        for a, b in zip(got, plain, strict=True):
            assert a.box == b.box and not a.fallback
            differ = np.abs(a.image.astype(int) - b.image.astype(int))
            assert differ.max() <= 1 and (differ > 0).mean() < 1e-3, buffering
            if b.mask is not None:
                assert a.mask is not None and np.allclose(a.mask, b.mask, atol=1e-3)


def test_steady_state_never_synchronizes_the_device(monkeypatch):
    from localsr_cam.pipeline.gpu import for_processor

    scheduler = for_processor(gpu_processor(), "double")
    still = frames(1)[0]  # the same picture: one person box, so no new graph later
    clip = [CapturedFrame(still.image, i, time.perf_counter()) for i in range(12)]
    for frame in clip[:4]:  # graphs are captured here (a capture synchronizes once)
        scheduler.process(frame)
    calls = []
    real = torch.cuda.synchronize
    monkeypatch.setattr(torch.cuda, "synchronize", lambda *a: calls.append(a) or real(*a))
    for frame in clip[4:]:
        assert scheduler.process(frame) is not None
    scheduler.flush()
    assert calls == []


# -- TensorRT, where installed ----------------------------------------------------------------
def _tensorrt_or_skip() -> None:
    from localsr_cam.runtime.trt_build import tensorrt_problem

    problem = tensorrt_problem()
    if problem is not None:
        pytest.skip(problem)


def test_tensorrt_engine_matches_torch_and_reuses_its_plan(tmp_path, monkeypatch):
    _tensorrt_or_skip()
    from localsr_cam.runtime.tensorrt import TensorRTEngine
    from localsr_cam.runtime.trt_build import SR_PROFILE, PlanCache
    from localsr_cam.zoo.export import export_sr_onnx

    module = random_fast_unet()
    onnx = tmp_path / "fast_unet.onnx"
    export_sr_onnx(module, onnx)
    cache = PlanCache(tmp_path / "trt")
    image = torch.rand(1, 3, 96, 128)
    with torch.inference_mode():
        expected = module(image)
    with TensorRTEngine("fast", onnx, cache=cache, profile=SR_PROFILE) as engine:
        got = engine({"image": image.cuda()})["sr"]
        for shape in ((1, 3, 32, 32), (1, 3, 352, 320)):
            assert engine({"image": torch.rand(shape, device="cuda")})["sr"].shape == (
                1, 3, 2 * shape[2], 2 * shape[3])
        assert engine.key is not None
        plan = cache.plan_path(engine.key)
    assert float((got.cpu() - expected).abs().max()) < 2e-2
    assert plan.is_file() and cache.timing_cache_path.is_file()
    built_at = plan.stat().st_mtime_ns
    with TensorRTEngine("fast", onnx, cache=cache, profile=SR_PROFILE) as engine:  # cached
        engine({"image": image.cuda()})
    assert plan.stat().st_mtime_ns == built_at


def test_tensorrt_selfie_fixed_shape(tmp_path):
    _tensorrt_or_skip()
    from localsr_cam.runtime.tensorrt import TensorRTEngine
    from localsr_cam.runtime.trt_build import PlanCache
    from localsr_cam.zoo.selfie_fetch import export_onnx

    module = random_selfie()
    onnx = tmp_path / "selfie.onnx"
    onnx.write_bytes(export_onnx(module, (256, 256)))
    image = torch.rand(1, 3, 256, 256)
    with torch.inference_mode():
        expected = module(image)
    with TensorRTEngine("selfie", onnx, cache=PlanCache(Path(tmp_path) / "trt"),
                        profile=None) as engine:
        got = engine({"image": image.cuda()})["mask"]
    assert float((got.cpu() - expected).abs().max()) < 2e-2
