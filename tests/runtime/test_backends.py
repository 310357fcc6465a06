"""Every registered model on every backend: same contract, same pixels.

Models with files are written with random weights into a temporary engines folder, so
this runs before anything is trained or fetched. Each (model, backend) pair opens the
model through the zoo, runs one input, and checks the output's name, shape, dtype and
range, and that it agrees with the model's own float32 module on the CPU. Backends this
machine lacks (CUDA, TensorRT) and models whose weights cannot be had here (Mask R-CNN's
COCO weights) are skipped with the reason.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from localsr_cam.errors import BackendUnavailableError, ModelError
from localsr_cam.process import ops
from localsr_cam.runtime.base import OUTPUT_NAMES, SR_OUTPUTS, resolve_backend
from localsr_cam.zoo.backends import OPENED_BACKENDS, open_engine
from localsr_cam.zoo.loading import load_model
from localsr_cam.zoo.registry import MODELS, model_spec
from tests.fakes import write_random_model

SR_INPUT = (1, 3, 24, 40)
TOLERANCE = {"cpu": 2e-4, "torch": 1e-5, "cuda": 2e-2, "tensorrt": 2e-2}
"""Largest |engine − float32 module|: ONNX Runtime runs other fp32 kernels; CUDA and
TensorRT run float16."""


@pytest.fixture(scope="module")
def random_engines(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    directory = tmp_path_factory.mktemp("engines")
    for seed, (name, spec) in enumerate(MODELS.items()):
        if spec.onnx and spec.weights:
            write_random_model(name, directory, seed)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LOCALSR_ENGINES", str(directory))
        yield directory


def model_input(name: str) -> torch.Tensor:
    spec = model_spec(name)
    batch = 2 if spec.kind == "detect" else 1  # the detector takes a batch of tiles
    shape = SR_INPUT if spec.kind == "sr" else (batch, 3, *(spec.input_size or (96, 128)))
    return torch.rand(shape, generator=torch.Generator().manual_seed(7))


def backend_or_skip(backend: str) -> None:
    try:
        resolve_backend(backend)
    except BackendUnavailableError as exc:
        pytest.skip(str(exc))


BACKEND_PARAMS = [pytest.param(b, marks=pytest.mark.gpu) if b in ("cuda", "tensorrt") else b
                  for b in OPENED_BACKENDS]
"""The GPU rows carry the ``gpu`` mark, so ``pytest -m gpu`` (tools/gpu_check.sh) runs them."""


@pytest.mark.parametrize("backend", BACKEND_PARAMS)
@pytest.mark.parametrize("name", list(MODELS))
def test_every_model_on_every_backend(name, backend, random_engines):
    backend_or_skip(backend)
    spec = model_spec(name)
    if backend == "tensorrt" and spec.onnx:
        from localsr_cam.zoo.build import build_engines

        list(build_engines([name], "fp16"))
    image = model_input(name)
    try:
        engine = open_engine(name, backend, threads=1)
    except ModelError as exc:
        if spec.onnx or spec.weights:
            raise  # its files were written above: this is a real failure
        pytest.skip(f"{name}: {exc}")
    with contextlib.closing(engine):
        assert engine.name == name and engine.device.type == (
            "cuda" if backend in ("cuda", "tensorrt") else "cpu")
        outputs = engine({"image": image.to(engine.device)})
    names = OUTPUT_NAMES[spec.kind]
    if spec.kind == "sr":  # either form (the CPU engine's: before the last shuffle)
        assert len(outputs) == 1 and set(outputs) <= set(SR_OUTPUTS)
        names = tuple(outputs)
    else:
        assert set(outputs) == set(names)
    got = {output: outputs[output].float().cpu() for output in names}
    batch, _, height, width = image.shape
    if spec.kind == "sr":
        got = {"sr": ops.sr_rgb_float(got)}
        assert got["sr"].shape == (batch, 3, 2 * height, 2 * width)
    elif spec.kind == "detect":  # 2304 anchors per 192×192 tile
        assert got["regressors"].shape == (batch, 2304, 16)
        assert got["scores"].shape == (batch, 2304, 1)
    else:
        assert got["mask"].shape == (batch, 1, height, width)
        assert 0.0 <= float(got["mask"].min()) <= float(got["mask"].max()) <= 1.0
    assert all(outputs[output].dtype == torch.float32 for output in names)
    if spec.onnx and spec.weights:  # a module of ours: the same numbers as the module
        with torch.inference_mode():
            expected = load_model(name)(image)
        expected = expected if isinstance(expected, tuple) else (expected,)
        for output, want in zip(got, expected, strict=True):
            difference = float((got[output] - want).abs().max())
            assert difference < TOLERANCE[backend] * max(1.0, float(want.abs().max())), (
                f"{name} {output} on {backend}: max |Δ| {difference:g}")


def test_the_matrix_covers_every_registered_model_and_backend():
    """Guards the parametrization: a model added to the registry is tested on its own."""
    assert {"fast", "paper", "selfie", "selfie-landscape", "face", "maskrcnn"} <= set(MODELS)
    assert set(OPENED_BACKENDS) == {"cpu", "torch", "cuda", "tensorrt"}
