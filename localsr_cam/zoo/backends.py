"""Open a registered model on a backend: the one place that joins the zoo and the runtimes.

Backends live in :mod:`localsr_cam.runtime` and are imported only when chosen.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable

from localsr_cam.errors import ConfigError, ModelError
from localsr_cam.runtime.base import Engine, resolve_backend
from localsr_cam.zoo.artifacts import artifact_path, plan_dir
from localsr_cam.zoo.loading import load_model
from localsr_cam.zoo.registry import model_spec, repair_hint

log = logging.getLogger(__name__)

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

        return OrtEngine(name, artifact_path(name, "onnx"), threads, repair_hint(name)).open()
    if backend in ("torch", "cuda"):
        from localsr_cam.runtime.torch import TorchEngine

        return TorchEngine(name, "cuda" if backend == "cuda" else "cpu", threads,
                           kind=spec.kind, loader=functools.partial(load_model, name)).open()
    if backend == "tensorrt":
        from localsr_cam.runtime import trt_build
        from localsr_cam.runtime.tensorrt import TensorRTEngine

        return TensorRTEngine(name, artifact_path(name, "onnx"),
                              cache=trt_build.PlanCache(plan_dir())).open()
    raise ConfigError(f"unknown backend {backend!r}; resolve it first "
                      f"(resolve_backend) to one of: {', '.join(OPENED_BACKENDS)}")


def has_plan(name: str) -> bool:
    """Whether model ``name`` can run on TensorRT here without building anything: it
    has no ONNX (it runs in PyTorch, like Mask R-CNN), or a plan for this GPU, TensorRT
    version and ONNX file is stored."""
    from localsr_cam.runtime import trt_build

    spec = model_spec(name)
    if spec.onnx is None or spec.open is not None:
        return True
    try:
        onnx = artifact_path(name, "onnx")
    except ModelError:
        return False
    return trt_build.find_plan(name, onnx, trt_build.PlanCache(plan_dir())) is not None


def choose_backend(requested: str, models: Iterable[str]) -> str:
    """The backend to open ``models`` on: :func:`resolve_backend`'s choice, except that
    ``auto`` takes TensorRT only when every one of them has a plan (plans are built by
    ``localsr-cam models build-engines``, never while opening); else CUDA, logged."""
    backend = resolve_backend(requested)
    if requested != "auto" or backend != "tensorrt":
        return backend
    missing = [name for name in models if not has_plan(name)]
    if missing:
        log.info("backend auto: no TensorRT plan for %s here (`localsr-cam models "
                 "build-engines` builds them); using cuda", ", ".join(missing))
        return "cuda"
    return backend
