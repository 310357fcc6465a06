"""Building TensorRT engines from the shipped ONNX models, and the cache of built plans.

Building is separate from running (:mod:`localsr_cam.runtime.tensorrt` runs a plan).
A plan is only valid for the TensorRT version, GPU and ONNX file it was built from, so
each plan is stored under a name derived from an :class:`EngineKey` holding exactly
those facts (plus precision and optimization profile), next to a JSON sidecar of the
key. A plan is loaded only when its sidecar matches this machine (TensorRT, GPU) and
the ONNX file; anything else is never loaded. Plans are built only on request
(``localsr-cam models build-engines``): opening an engine never builds one, since a
build takes minutes.

Layout (``engines/trt/``, git-ignored)::

    timing.cache                    TensorRT's kernel timing cache, shared by builds
    fast-<digest>.plan              serialized engine
    fast-<digest>.json              its key

Super-resolution models get one optimization profile covering the person-box sizes of
the frames they will see (:func:`sr_profile`; :data:`SR_PROFILE` covers any frame up to
1920×1080), the face detector one for its batch of tiles (:data:`DETECT_PROFILE`); the
segmenters have fixed input shapes and need none.

TensorRT is imported inside the functions that need it; without it they raise
:class:`~localsr_cam.errors.BackendUnavailableError` with one line saying what is
missing and how to install it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from localsr_cam.errors import BackendUnavailableError, ConfigError, ModelError
from localsr_cam.paths import sha256_file, write_atomically
from localsr_cam.runtime.base import cuda_missing, tensorrt_problem

if TYPE_CHECKING:
    import tensorrt as trt

log = logging.getLogger(__name__)

TIMING_CACHE = "timing.cache"
PRECISIONS = ("fp16", "fp32")
INPUT_NAME = "image"
WORKSPACE_BYTES = 1 << 30


@dataclasses.dataclass(frozen=True)
class Profile:
    """An optimization profile for the ``image`` input: min/opt/max N×C×H×W shapes."""

    min: tuple[int, int, int, int]
    opt: tuple[int, int, int, int]
    max: tuple[int, int, int, int]

    def covers(self, shape: Sequence[int]) -> bool:
        return len(shape) == 4 and all(lo <= s <= hi for lo, s, hi in
                                       zip(self.min, shape, self.max, strict=True))

    def as_json(self) -> dict[str, list[int]]:
        return {"min": list(self.min), "opt": list(self.opt), "max": list(self.max)}

    @classmethod
    def from_json(cls, data: Any) -> Profile:
        def dims(name: str) -> tuple[int, int, int, int]:
            a, b, c, d = (int(v) for v in data[name])
            return a, b, c, d

        return cls(min=dims("min"), opt=dims("opt"), max=dims("max"))


BUCKET = 32
"""Person boxes are rounded up to multiples of this (``BlendConfig.bucket``'s default)."""

SR_PROFILE = Profile(min=(1, 3, 32, 32), opt=(1, 3, 352, 320), max=(1, 3, 1088, 1920))
"""Person-box crops: 32×32 (a bucket) up to a whole 1920×1080 frame (1088 = 1080
rounded up to a bucket); optimized for a head-and-shoulders box of a 640×360 frame."""


def _round_up(value: int, step: int) -> int:
    return -(-value // step) * step


def sr_profile(frame_size: tuple[int, int]) -> Profile:
    """The profile for person-box crops of ``frame_size`` (width, height) frames: from one
    bucket up to the whole frame rounded up to buckets, optimized for a head-and-shoulders
    box (nine tenths of the height, half the width). A smaller profile than needed for
    1080p builds faster and may pick faster kernels for the sizes that occur."""
    width, height = frame_size
    max_h, max_w = _round_up(height, BUCKET), _round_up(width, BUCKET)
    opt_h = min(max_h, _round_up(height * 9 // 10, BUCKET))
    opt_w = min(max_w, _round_up(width // 2, BUCKET))
    return Profile(min=(1, 3, BUCKET, BUCKET), opt=(1, 3, opt_h, opt_w),
                   max=(1, 3, max_h, max_w))


DETECT_PROFILE = Profile(min=(1, 3, 192, 192), opt=(9, 3, 192, 192), max=(32, 3, 192, 192))
"""The face detector's tiles: one to 32 per call (the finder splits larger plans);
optimized for the 9 tiles of a 640×360 frame's plan."""


def profile_for(kind: str, frame_size: tuple[int, int] | None = None) -> Profile | None:
    """The optimization profile a model of ``kind`` is built with (``None``: fixed
    shapes): for SR, :func:`sr_profile` of ``frame_size``, or :data:`SR_PROFILE`; for the
    face detector :data:`DETECT_PROFILE` (a batch of 192×192 tiles, whatever the frame)."""
    if kind == "detect":
        return DETECT_PROFILE
    if kind != "sr":
        return None
    return SR_PROFILE if frame_size is None else sr_profile(frame_size)


@dataclasses.dataclass(frozen=True)
class EngineKey:
    """Everything a built plan depends on. Equal keys ⇔ the plan may be reused."""

    model: str
    tensorrt: str
    gpu: str
    compute_capability: str
    onnx_sha256: str
    precision: str
    profile: Profile | None

    def as_json(self) -> dict[str, Any]:
        fields = dataclasses.asdict(self)
        fields["profile"] = None if self.profile is None else self.profile.as_json()
        return fields

    @classmethod
    def from_json(cls, data: Any) -> EngineKey:
        """The key a sidecar records; ``ValueError`` when it is not one."""
        try:
            profile = data["profile"]
            return cls(model=str(data["model"]), tensorrt=str(data["tensorrt"]),
                       gpu=str(data["gpu"]),
                       compute_capability=str(data["compute_capability"]),
                       onnx_sha256=str(data["onnx_sha256"]), precision=str(data["precision"]),
                       profile=None if profile is None else Profile.from_json(profile))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not an engine key: {exc}") from None

    def digest(self) -> str:
        """First 24 hex digits of the sha256 of the key's canonical JSON."""
        text = json.dumps(self.as_json(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:24]

    @property
    def stem(self) -> str:
        return f"{self.model}-{self.digest()}"


class PlanCache:
    """Built plans in one folder, each under its key's digest with a JSON sidecar."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def plan_path(self, key: EngineKey) -> Path:
        return self.directory / f"{key.stem}.plan"

    def sidecar_path(self, key: EngineKey) -> Path:
        return self.directory / f"{key.stem}.json"

    @property
    def timing_cache_path(self) -> Path:
        return self.directory / TIMING_CACHE

    def load(self, key: EngineKey) -> bytes | None:
        """The plan for ``key``; ``None`` unless the plan exists and its sidecar matches."""
        plan, sidecar = self.plan_path(key), self.sidecar_path(key)
        try:
            recorded = json.loads(sidecar.read_text())
            data = plan.read_bytes()
        except (OSError, ValueError):
            return None
        if recorded != key.as_json():
            log.info("%s: the cached plan was built for another key; rebuilding", key.model)
            return None
        return data

    def store(self, key: EngineKey, plan: bytes) -> Path:
        """Write the plan, then its sidecar (a plan without a sidecar is never loaded)."""
        path = self.plan_path(key)
        self.sidecar_path(key).unlink(missing_ok=True)
        write_atomically(path, plan)
        text = json.dumps(key.as_json(), indent=2, sort_keys=True) + "\n"
        write_atomically(self.sidecar_path(key), text.encode())
        return path

    def discard(self, key: EngineKey) -> None:
        self.sidecar_path(key).unlink(missing_ok=True)
        self.plan_path(key).unlink(missing_ok=True)

    def keys(self, model: str) -> list[EngineKey]:
        """The keys of every plan stored for ``model`` (unreadable sidecars skipped)."""
        found = []
        for sidecar in sorted(self.directory.glob(f"{model}-*.json")):
            try:
                key = EngineKey.from_json(json.loads(sidecar.read_text()))
            except (OSError, ValueError):
                continue
            if key.model == model and self.sidecar_path(key) == sidecar:
                found.append(key)
        return found


def ensure_plan(key: EngineKey, cache: PlanCache, build: Callable[[], bytes]
                ) -> tuple[bytes, bool]:
    """The cached plan for ``key``, or ``build()``'s result, stored. Returns
    ``(plan bytes, True when it was built now)``."""
    cached = cache.load(key)
    if cached is not None:
        return cached, False
    plan = build()
    cache.store(key, plan)
    return plan, True


# -- TensorRT itself --------------------------------------------------------------------
def require_tensorrt(need_gpu: bool = True) -> None:
    """Raise :class:`BackendUnavailableError` (one line) unless TensorRT (and a CUDA GPU
    for torch, when ``need_gpu``) can be used."""
    problem = tensorrt_problem()
    if problem is None and need_gpu:
        problem = cuda_missing()
    if problem is not None:
        raise BackendUnavailableError(f"backend 'tensorrt' is unavailable: {problem}")


_LOGGER: list[trt.ILogger] = []


def trt_logger() -> trt.ILogger:
    """The one TensorRT logger of the process (warnings and errors go to stderr)."""
    import tensorrt as trt

    if not _LOGGER:
        _LOGGER.append(trt.Logger(trt.Logger.WARNING))
    return _LOGGER[0]


def platform_identity() -> tuple[str, str, str]:
    """``(TensorRT version, GPU name, compute capability "major.minor")`` of this machine."""
    import tensorrt as trt
    import torch

    major, minor = torch.cuda.get_device_capability()
    return trt.__version__, torch.cuda.get_device_name(), f"{major}.{minor}"


def engine_key(name: str, onnx_path: Path, precision: str, profile: Profile | None
               ) -> EngineKey:
    """The key of model ``name``'s plan on this machine."""
    version, gpu, capability = platform_identity()
    return EngineKey(model=name, tensorrt=version, gpu=gpu, compute_capability=capability,
                     onnx_sha256=sha256_file(onnx_path), precision=precision,
                     profile=profile)


def build_plan(onnx_path: Path, precision: str, profile: Profile | None,
               timing_cache: Path | None = None, workspace: int = WORKSPACE_BYTES) -> bytes:
    """Serialize a TensorRT engine for the ONNX file; reads and updates ``timing_cache``.

    Raises :class:`ModelError` when the ONNX cannot be parsed or the build fails.
    """
    import tensorrt as trt

    logger = trt_logger()
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # explicit batch is the only mode in TensorRT 10
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_path.read_bytes(), str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ModelError(f"TensorRT cannot parse {onnx_path}: {errors or 'unknown error'}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace)
    if precision == "fp16":
        # deprecated since TensorRT 10.12 in favour of strongly typed fp16 networks, but
        # still honoured in 10.x; it keeps one fp32 ONNX file for every backend
        config.set_flag(trt.BuilderFlag.FP16)
    dynamic = any(_has_dynamic_dim(network.get_input(i).shape)
                  for i in range(network.num_inputs))
    if profile is not None:
        choice = builder.create_optimization_profile()
        choice.set_shape(INPUT_NAME, trt.Dims(list(profile.min)), trt.Dims(list(profile.opt)),
                         trt.Dims(list(profile.max)))
        for i in range(network.num_inputs):  # e.g. SR ``levels`` N×K: the image's batch
            extra = network.get_input(i)
            if extra.name != INPUT_NAME and _has_dynamic_dim(extra.shape):
                rest = [extra.shape[d] for d in range(1, len(extra.shape))]
                choice.set_shape(extra.name, trt.Dims([profile.min[0], *rest]),
                                 trt.Dims([profile.opt[0], *rest]),
                                 trt.Dims([profile.max[0], *rest]))
        config.add_optimization_profile(choice)
    elif dynamic:
        raise ModelError(f"{onnx_path} has dynamic input shapes but no optimization "
                         "profile is defined for it")
    cache = _attach_timing_cache(config, timing_cache)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise ModelError(f"TensorRT failed to build an engine from {onnx_path} (see the "
                         "TensorRT messages above)")
    if timing_cache is not None and cache is not None:
        write_atomically(timing_cache, bytes(cache.serialize()))
    return bytes(serialized)


def _has_dynamic_dim(shape: trt.Dims) -> bool:
    return any(shape[i] < 0 for i in range(len(shape)))


def _attach_timing_cache(config: trt.IBuilderConfig, path: Path | None
                         ) -> trt.ITimingCache | None:
    """Load the timing cache at ``path`` into ``config`` (a fresh one when the file is
    missing, corrupt or from another GPU/version); returns the ``ITimingCache``."""
    if path is None:
        return None
    data = path.read_bytes() if path.is_file() else b""
    try:
        cache = config.create_timing_cache(data)
        if config.set_timing_cache(cache, False):
            return cache
    except (RuntimeError, TypeError, ValueError) as exc:
        log.info("timing cache %s unusable (%s); starting a new one", path, exc)
    log.info("timing cache %s does not match this GPU/TensorRT; starting a new one", path)
    cache = config.create_timing_cache(b"")
    config.set_timing_cache(cache, False)
    return cache


def find_plan(name: str, onnx_path: Path, cache: PlanCache,
              precisions: Sequence[str] = PRECISIONS) -> tuple[EngineKey, bytes] | None:
    """A stored plan of model ``name`` usable on this machine for this ONNX file, or
    ``None``: TensorRT version, GPU and ONNX sha256 must match. Among several, the first
    precision of ``precisions`` wins, then the profile covering the largest input."""
    require_tensorrt()
    version, gpu, capability = platform_identity()
    digest = sha256_file(onnx_path)
    usable = [key for key in cache.keys(name)
              if (key.tensorrt, key.gpu, key.compute_capability, key.onnx_sha256)
              == (version, gpu, capability, digest) and key.precision in precisions]

    def rank(key: EngineKey) -> tuple[int, int]:
        area = 0 if key.profile is None else key.profile.max[2] * key.profile.max[3]
        return list(precisions).index(key.precision), -area

    for key in sorted(usable, key=rank):
        plan = cache.load(key)
        if plan is not None:
            return key, plan
    return None


def load_or_build(name: str, onnx_path: Path, precision: str, profile: Profile | None,
                  cache: PlanCache, rebuild: bool = False) -> tuple[EngineKey, bytes, bool]:
    """The plan for model ``name`` on this machine, built if no valid one is cached.

    Returns ``(key, plan bytes, built now)``. ``rebuild``: discard a cached plan first
    (used when a cached plan fails to deserialize).
    """
    require_tensorrt()
    if precision not in PRECISIONS:
        raise ConfigError(f"unknown precision {precision!r}; choose one of: "
                          f"{', '.join(PRECISIONS)}")
    key = engine_key(name, onnx_path, precision, profile)
    if rebuild:
        cache.discard(key)
    plan, built = ensure_plan(key, cache, lambda: build_plan(
        onnx_path, precision, key.profile, cache.timing_cache_path))
    return key, plan, built
