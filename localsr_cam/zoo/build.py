"""``localsr-cam models build-engines``: TensorRT plans for the registered ONNX models.

Building is separate from running: :mod:`localsr_cam.runtime.trt_build` builds and
caches one plan; this module picks the models and where their plans go.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from localsr_cam.errors import ConfigError, ModelError
from localsr_cam.runtime import trt_build
from localsr_cam.zoo.artifacts import artifact_path, plan_dir
from localsr_cam.zoo.registry import MODELS, model_spec


def build_engines(models: list[str] | None = None, precision: str = "fp16",
                  cache: trt_build.PlanCache | None = None,
                  frame_size: tuple[int, int] | None = None) -> Iterator[str]:
    """Build (or confirm up to date) the plans of ``models`` (default: every model with
    an ONNX file); yields one log line per model. ``frame_size``: the largest input
    frame (width, height) the SR plans must serve (default: up to 1920×1080).

    Named models must be prepared; with the default list, models whose ONNX is not
    there yet are reported and skipped.
    """
    if precision not in trt_build.PRECISIONS:
        raise ConfigError(f"unknown precision {precision!r}; choose one of: "
                          f"{', '.join(trt_build.PRECISIONS)}")
    names = list(models) if models else [n for n, spec in MODELS.items() if spec.onnx]
    for name in names:
        if model_spec(name).onnx is None:
            raise ConfigError(f"model {name!r} has no ONNX file to build an engine from")
    trt_build.require_tensorrt()
    cache = cache or trt_build.PlanCache(plan_dir())
    for name in names:
        try:
            onnx_path = artifact_path(name, "onnx")
        except ModelError as exc:
            if models:
                raise
            yield f"{name}: skipped, {exc}"
            continue
        started = time.perf_counter()
        profile = trt_build.profile_for(model_spec(name).kind, frame_size)
        key, _, built = trt_build.load_or_build(name, onnx_path, precision, profile, cache)
        where = cache.plan_path(key)
        if built:
            yield f"{name}: built {where} ({precision}) in {time.perf_counter() - started:.1f} s"
        else:
            yield f"{name}: up to date ({where})"
