"""Open a registered model on a backend: the one place that joins the zoo and the runtimes.

Backends live in :mod:`localsr_cam.runtime` and are imported only when chosen.
"""

from __future__ import annotations

import functools

from localsr_cam.errors import ConfigError
from localsr_cam.runtime.base import Engine
from localsr_cam.zoo.artifacts import artifact_path, plan_dir
from localsr_cam.zoo.loading import load_model
from localsr_cam.zoo.registry import model_spec

OPENED_BACKENDS = ("cpu", "torch", "cuda", "tensorrt")
"""Resolved backends (``auto`` resolves to one of these first)."""


def open_engine(name: str, backend: str, threads: int = 2, weights: str | None = None
                ) -> Engine:
    """Load model ``name`` on a resolved ``backend`` and return the opened engine.

    ``threads``: CPU threads for ONNX Runtime / PyTorch on the CPU. ``weights``: the Mask
    R-CNN weights file. Missing or corrupt artifacts raise :class:`ModelError` naming the
    file and the command that rebuilds it.
    """
    spec = model_spec(name)
    if spec.open is not None:
        return spec.open(name, backend, threads, weights)
    if backend == "cpu":
        from localsr_cam.runtime.ort import OrtEngine

        return OrtEngine(name, artifact_path(name, "onnx"), threads, spec.build_command).open()
    if backend in ("torch", "cuda"):
        from localsr_cam.runtime.torch import TorchEngine

        return TorchEngine(name, "cuda" if backend == "cuda" else "cpu", threads,
                           kind=spec.kind, loader=functools.partial(load_model, name)).open()
    if backend == "tensorrt":
        from localsr_cam.runtime import trt_build
        from localsr_cam.runtime.tensorrt import TensorRTEngine

        return TensorRTEngine(name, artifact_path(name, "onnx"),
                              cache=trt_build.PlanCache(plan_dir()),
                              profile=trt_build.profile_for(spec.kind)).open()
    raise ConfigError(f"unknown backend {backend!r}; resolve it first "
                      f"(resolve_backend) to one of: {', '.join(OPENED_BACKENDS)}")
