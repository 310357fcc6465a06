"""Open a registered model on a backend: the one place that joins the zoo and the runtimes.

Backends live in :mod:`localsr_cam.runtime` and are imported only when chosen.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable

from localsr_cam.errors import ConfigError, ModelError
from localsr_cam.runtime.base import Engine, resolve_backend
from localsr_cam.zoo.artifacts import artifact_path, engines_dir, plan_dir
from localsr_cam.zoo.loading import load_model
from localsr_cam.zoo.registry import (
    PRECISIONS,
    int8_models,
    mjpeg_variant,
    model_spec,
    repair_hint,
)

log = logging.getLogger(__name__)

OPENED_BACKENDS = ("cpu", "torch", "cuda", "tensorrt")
"""Resolved backends (``auto`` resolves to one of these first)."""


def open_engine(name: str, backend: str, threads: int = 2, weights: str | None = None,
                precision: str = "auto") -> Engine:
    """Load model ``name`` on a resolved ``backend`` and return the opened engine.

    ``threads``: CPU threads for ONNX Runtime / PyTorch on the CPU. ``weights``: the Mask
    R-CNN weights file. ``precision``: see :data:`PRECISIONS`; ``auto`` on the ``cpu``
    backend takes the model's int8 file when it is there, else the float32 one (logged:
    a model retrained by hand may ship without one). Missing or corrupt artifacts raise
    :class:`ModelError` naming the file and the command that rebuilds it.

    A model with an MJPEG variant (``fast``: ``fast-jpeg``) opens both and hands the
    MJPEG frames to the variant (:class:`~localsr_cam.runtime.routed.MjpegRoutedEngine`);
    where the variant's files are missing or do not open, the model runs alone (logged).
    """
    engine = _open_one(name, backend, threads, weights, precision)
    variant = mjpeg_variant(name)
    if variant is None:
        return engine
    try:
        mjpeg = _open_one(variant, backend, threads, weights, precision)
    except ModelError as exc:
        log.info("%s runs on MJPEG frames too: its MJPEG variant %s is not here (%s)", name,
                 variant, exc)
        return engine
    from localsr_cam.runtime.routed import MjpegRoutedEngine

    return MjpegRoutedEngine(engine, mjpeg)


def _open_one(name: str, backend: str, threads: int, weights: str | None,
              precision: str) -> Engine:
    """:func:`open_engine` for model ``name`` alone."""
    spec = model_spec(name)
    if precision not in PRECISIONS:
        raise ConfigError(f"unknown precision {precision!r}; choose one of: "
                          f"{', '.join(PRECISIONS)}")
    if precision == "int8" and (backend != "cpu" or spec.onnx_int8 is None):
        raise ConfigError(f"--precision int8 runs on the cpu backend only, with a model "
                          f"that has an int8 file ({', '.join(int8_models())}); not "
                          f"{name!r} on {backend!r}")
    if spec.open is not None:
        return spec.open(name, backend, threads, weights)
    if backend == "cpu":
        from localsr_cam.runtime.ort import OrtEngine

        int8 = spec.onnx_int8 if precision != "fp32" else None
        if int8 is not None and precision == "auto" and not (engines_dir() / int8).is_file():
            log.info("%s: no int8 file (%s); running it in float32", name, int8)
            int8 = None
        which = "onnx" if int8 is None else "onnx_int8"
        return OrtEngine(name, artifact_path(name, which), threads, repair_hint(name),
                         precision="fp32" if int8 is None else "int8").open()
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
