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
from localsr_cam.measure.precision import fp16_drift
from localsr_cam.runtime.torch import TorchEngine

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]

PARITY_GOAL_DB = 0.05
MODELS_KIND = {"fast": "sr", "selfie": "segment"}


def random_fast_unet(seed: int = 0, scale: float = 0.3, levels: int = 0) -> torch.nn.Module:
    """A FastUNet with small random weights: a bilinear upscale plus a visible residual
    (``levels`` K > 0: degradation-aware, FiLM weights random too)."""
    from localsr_cam.models.unet import FastUNet

    model = FastUNet(levels=levels)
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


def test_cuda_graphs_read_the_levels_given_to_each_replay():
    """A degradation-aware SR module: the graphs (prepared up front, sharing one levels
    buffer) see each call's levels, and zeros when told none, as the CPU module does."""
    module = random_fast_unet(levels=3, scale=1.0)
    shapes = [(1, 3, 48, 64), (1, 3, 64, 96)]
    images = [torch.rand(shape) for shape in shapes]
    told = [torch.tensor([[0.8, 0.5, 0.3]]), torch.tensor([[0.1, 0.0, 1.2]]), None]
    with TorchEngine("fast", "cuda", kind="sr", module=random_fast_unet(levels=3, scale=1.0)
                     ) as engine:
        engine.prepare_shapes(shapes)
        assert engine.graph_shapes == shapes
        for image in images:
            outputs = []
            for levels in told:
                inputs = {"image": image.cuda()}
                if levels is not None:
                    inputs["levels"] = levels.cuda()
                outputs.append(engine(inputs)["sr"].cpu())
            for got, levels in zip(outputs, told, strict=True):
                with torch.inference_mode():
                    want = module(image, torch.zeros(1, 3) if levels is None else levels)
                assert float((got - want).abs().max()) < 2e-2
            assert float((outputs[0] - outputs[1]).abs().max()) > 0.05  # levels matter
        assert engine.graph_shapes == shapes  # no capture on the per-frame path


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


def shipped_or_random(name: str) -> torch.nn.Module:
    """The shipped trained module when its files are here, else random weights."""
    from localsr_cam.errors import ModelError
    from localsr_cam.zoo.loading import load_model
    from tests.fakes import random_module

    try:
        return load_model(name)
    except ModelError:
        return random_module(name)


@pytest.mark.parametrize("name", ["fast", "paper"])
def test_fp16_psnr_drift_is_within_goal(name):
    figures = fp16_drift(shipped_or_random(name), smooth_images(), name)
    assert figures["drift_db"] <= PARITY_GOAL_DB, figures


@pytest.mark.parametrize("name", ["selfie", "selfie-landscape"])
def test_fp16_segmenter_masks_match_float32(name):
    """The segmenters run in float16 on CUDA too: the probabilities stay close to the
    float32 module's and the 0.5-thresholded mask barely changes."""
    from localsr_cam.zoo.registry import model_spec

    module = shipped_or_random(name)
    height, width = model_spec(name).input_size or (256, 256)
    images = torch.cat([torch.nn.functional.interpolate(image, size=(height, width))
                        for image in smooth_images()])
    with torch.inference_mode():
        expected = module(images)
    with TorchEngine(name, "cuda", kind="segment", module=module) as engine:
        got = engine({"image": images.cuda()})["mask"].cpu()
    assert float((got - expected).abs().max()) < 2e-2
    agree = ((got > 0.5) == (expected > 0.5)).float().mean()
    assert float(agree) >= 0.99


# -- the scheduler on CUDA --------------------------------------------------------------------
def gpu_processor(blend: dict | None = None):
    from localsr_cam.process.processor import FrameProcessor

    modules = {"fast": random_fast_unet(), "selfie": random_selfie()}

    def factory(name: str, backend: str, threads: int, weights: str | None,
                precision: str = "auto"):
        return TorchEngine(name, "cuda", kind=MODELS_KIND[name], module=modules[name]).open()

    config = PipelineConfig(model=ModelConfig(model="fast", backend="cuda",
                                              segmenter="selfie"),
                            blend=BlendConfig(ema=0.5, **(blend or {})))
    processor = FrameProcessor(config, engine_factory=factory).open()
    processor.prepare((640, 360))  # the size of frames()
    return processor


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


def test_steady_state_syncs_once_a_frame_with_a_moving_subject():
    """torch's sync debug mode reports every hidden device synchronization. With the
    graphs captured in prepare(), a moving subject (new box shapes every frame) may cost
    exactly one: the person box's four integers. A capture, a pageable copy, an item()
    or a nonzero() on the per-frame path would show up here."""
    import warnings

    from localsr_cam.pipeline.gpu import for_processor

    scheduler = for_processor(gpu_processor(), "double")  # prepare() captured the graphs
    clip = frames(16)  # rolled 3 px a frame: the box moves and changes shape
    per_frame = []
    torch.cuda.set_sync_debug_mode("warn")
    try:
        for frame in clip:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                scheduler.process(frame)
            per_frame.append(sum("synchroniz" in str(w.message) for w in caught))
    finally:
        torch.cuda.set_sync_debug_mode(0)
    scheduler.flush()
    assert max(per_frame) <= 1, per_frame


def test_prepare_captures_every_bucket_shape_once(monkeypatch):
    from localsr_cam.pipeline.gpu import for_processor

    processor = gpu_processor()
    sr = processor.sr_engine
    assert isinstance(sr, TorchEngine)
    expected = set(processor.sr_input_shapes((640, 360)))
    assert set(sr.graph_shapes) == expected and len(expected) > 8
    scheduler = for_processor(processor, "double")
    for frame in frames(8):
        scheduler.process(frame)
    scheduler.flush()
    assert set(sr.graph_shapes) == expected  # nothing captured on the per-frame path
    syncs = []
    real = torch.cuda.synchronize
    monkeypatch.setattr(torch.cuda, "synchronize", lambda *a: syncs.append(a) or real(*a))
    processor.prepare((640, 360))  # the same size again (eval does this per image)
    assert set(sr.graph_shapes) == expected and syncs == []  # nothing recaptured


# -- TensorRT, where installed ----------------------------------------------------------------
def _tensorrt_or_skip() -> None:
    from localsr_cam.runtime.trt_build import tensorrt_problem

    problem = tensorrt_problem()
    if problem is not None:
        pytest.skip(problem)


def test_tensorrt_engine_matches_torch_and_reuses_its_plan(tmp_path, monkeypatch):
    _tensorrt_or_skip()
    from localsr_cam.runtime.tensorrt import TensorRTEngine
    from localsr_cam.runtime.trt_build import SR_PROFILE, PlanCache, load_or_build
    from localsr_cam.zoo.export import export_sr_onnx

    module = random_fast_unet()
    onnx = tmp_path / "fast_unet.onnx"
    export_sr_onnx(module, onnx)
    cache = PlanCache(tmp_path / "trt")
    image = torch.rand(1, 3, 96, 128)
    with torch.inference_mode():
        expected = module(image)
    load_or_build("fast", onnx, "fp16", SR_PROFILE, cache)  # only a build makes plans
    with TensorRTEngine("fast", onnx, cache=cache) as engine:
        got = engine({"image": image.cuda()})["sr"]
        for shape in ((1, 3, 32, 32), (1, 3, 352, 320)):
            assert engine({"image": torch.rand(shape, device="cuda")})["sr"].shape == (
                1, 3, 2 * shape[2], 2 * shape[3])
        assert engine.key is not None
        plan = cache.plan_path(engine.key)
    assert float((got.cpu() - expected).abs().max()) < 2e-2
    assert plan.is_file() and cache.timing_cache_path.is_file()
    built_at = plan.stat().st_mtime_ns
    with TensorRTEngine("fast", onnx, cache=cache) as engine:  # loaded, not rebuilt
        engine({"image": image.cuda()})
    assert plan.stat().st_mtime_ns == built_at


def test_tensorrt_selfie_fixed_shape(tmp_path):
    _tensorrt_or_skip()
    from localsr_cam.runtime.tensorrt import TensorRTEngine
    from localsr_cam.runtime.trt_build import PlanCache, load_or_build
    from localsr_cam.zoo.selfie_fetch import export_onnx

    module = random_selfie()
    onnx = tmp_path / "selfie.onnx"
    onnx.write_bytes(export_onnx(module, (256, 256)))
    image = torch.rand(1, 3, 256, 256)
    with torch.inference_mode():
        expected = module(image)
    cache = PlanCache(Path(tmp_path) / "trt")
    load_or_build("selfie", onnx, "fp16", None, cache)
    with TensorRTEngine("selfie", onnx, cache=cache) as engine:
        got = engine({"image": image.cuda()})["mask"]
    assert float((got.cpu() - expected).abs().max()) < 2e-2
