"""TensorRT backend without TensorRT: the plan cache, the build flow against a fake
``tensorrt`` module, and the one-line refusal where TensorRT is missing.

The fake records what the build asks of TensorRT (flags, profile, timing cache); the
real API is checked statically (mypy with tensorrt-stubs) and on a GPU by test_gpu.py.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import types
from pathlib import Path

import pytest

from localsr_cam.errors import BackendUnavailableError, ModelError
from localsr_cam.process.localize import bucket_box
from localsr_cam.runtime import trt_build
from localsr_cam.runtime.base import tensorrt_problem
from localsr_cam.runtime.trt_build import (
    SR_PROFILE,
    EngineKey,
    PlanCache,
    ensure_plan,
    profile_for,
)
from localsr_cam.zoo.build import build_engines

KEY = EngineKey(model="fast", tensorrt="10.13.0.35", gpu="NVIDIA H100 80GB HBM3",
                compute_capability="9.0", onnx_sha256="ab" * 32, precision="fp16",
                profile=SR_PROFILE)


class FakeBuilder:
    """Stands in for building a plan: counts builds, returns distinct bytes each time."""

    def __init__(self) -> None:
        self.builds = 0

    def __call__(self) -> bytes:
        self.builds += 1
        return f"plan #{self.builds}".encode()


# -- the plan cache -----------------------------------------------------------------------
CHANGES = {
    "tensorrt": "10.14.1.48",
    "gpu": "NVIDIA GeForce RTX 4090",
    "compute_capability": "8.9",
    "onnx_sha256": "cd" * 32,
    "precision": "fp32",
    "profile": trt_build.Profile((1, 3, 32, 32), (1, 3, 352, 320), (1, 3, 2176, 3840)),
}


@pytest.mark.parametrize("field", sorted(CHANGES))
def test_each_key_part_makes_a_stale_plan_that_is_rebuilt_not_loaded(field, tmp_path):
    cache, build = PlanCache(tmp_path), FakeBuilder()
    old_plan, built = ensure_plan(KEY, cache, build)
    assert built and build.builds == 1
    changed = dataclasses.replace(KEY, **{field: CHANGES[field]})
    assert changed.digest() != KEY.digest()
    plan, built = ensure_plan(changed, cache, build)
    assert built and build.builds == 2 and plan != old_plan
    # both stay cached under their own key; asking again builds nothing
    assert ensure_plan(KEY, cache, build) == (old_plan, False)
    assert ensure_plan(changed, cache, build) == (plan, False)
    assert build.builds == 2


def test_profile_none_is_its_own_key():
    assert dataclasses.replace(KEY, profile=None).digest() != KEY.digest()


def test_digest_is_stable_and_the_sidecar_records_the_key(tmp_path):
    same = EngineKey(**{f.name: getattr(KEY, f.name) for f in dataclasses.fields(KEY)})
    assert same.digest() == KEY.digest()
    cache = PlanCache(tmp_path)
    path = cache.store(KEY, b"plan")
    assert path.name == f"fast-{KEY.digest()}.plan" and path.read_bytes() == b"plan"
    sidecar = json.loads(cache.sidecar_path(KEY).read_text())
    assert sidecar == KEY.as_json()
    assert sidecar["profile"] == {"min": [1, 3, 32, 32], "opt": [1, 3, 352, 320],
                                  "max": [1, 3, 1088, 1920]}


@pytest.mark.parametrize("damage", ["no sidecar", "other key in sidecar", "garbled sidecar",
                                    "no plan"])
def test_a_plan_whose_sidecar_does_not_match_is_rebuilt(damage, tmp_path):
    cache, build = PlanCache(tmp_path), FakeBuilder()
    ensure_plan(KEY, cache, build)
    sidecar, plan = cache.sidecar_path(KEY), cache.plan_path(KEY)
    if damage == "no sidecar":
        sidecar.unlink()
    elif damage == "other key in sidecar":
        other = dataclasses.replace(KEY, tensorrt="10.0.0")
        sidecar.write_text(json.dumps(other.as_json()))
    elif damage == "garbled sidecar":
        sidecar.write_text("{not json")
    else:
        plan.unlink()
    got, built = ensure_plan(KEY, cache, build)
    assert built and got == b"plan #2" and build.builds == 2
    assert json.loads(sidecar.read_text()) == KEY.as_json()


def test_discard_forgets_a_plan(tmp_path):
    cache, build = PlanCache(tmp_path), FakeBuilder()
    ensure_plan(KEY, cache, build)
    cache.discard(KEY)
    assert cache.load(KEY) is None
    cache.discard(KEY)  # twice is fine


# -- the optimization profile ---------------------------------------------------------------
def test_sr_models_get_the_profile_and_segmenters_none():
    from localsr_cam.zoo.registry import model_spec

    assert profile_for(model_spec("fast").kind) == profile_for(model_spec("paper").kind)
    assert profile_for("sr") == SR_PROFILE
    assert profile_for(model_spec("selfie").kind) is None
    assert profile_for(model_spec("selfie-landscape").kind) is None


@pytest.mark.parametrize("frame", [(640, 360), (960, 540), (1280, 720), (1920, 1080)])
def test_profile_covers_every_bucketed_person_box(frame):
    width, height = frame
    own = trt_build.sr_profile(frame)
    for w in range(1, width + 1, 37):
        for h in range(1, height + 1, 29):
            x0, y0 = (width - w) // 2, (height - h) // 2
            bx0, by0, bx1, by1 = bucket_box((x0, y0, x0 + w, y0 + h), frame, 16, 32)
            for profile in (SR_PROFILE, own):
                assert profile.covers((1, 3, by1 - by0, bx1 - bx0)), (w, h, profile)
    for profile in (SR_PROFILE, own):
        assert not profile.covers((1, 3, 16, 64)) and not profile.covers((2, 3, 64, 64))
    assert not own.covers((1, 3, own.max[2] + 32, 32))  # no bigger than the frame needs


# -- building against a fake TensorRT ---------------------------------------------------------
@dataclasses.dataclass
class Recorder:
    flags: list[str] = dataclasses.field(default_factory=list)
    profiles: list[tuple] = dataclasses.field(default_factory=list)
    timing_in: list[bytes] = dataclasses.field(default_factory=list)
    pool: list[int] = dataclasses.field(default_factory=list)
    extra_profiles: list[tuple] = dataclasses.field(default_factory=list)
    builds: int = 0


def fake_tensorrt(rec: Recorder, input_shape=(-1, 3, -1, -1), parse_ok=True,
                  build_ok=True, timing_matches=True, levels_shape=None) -> types.ModuleType:
    """A module with the slice of the TensorRT 10 API that trt_build uses."""
    trt = types.ModuleType("tensorrt")
    trt.__version__ = "10.99.0"  # type: ignore[attr-defined]

    class Logger:
        WARNING = "warning"

        def __init__(self, severity=None):
            self.severity = severity

    class Dims(tuple):
        def __new__(cls, shape):
            return super().__new__(cls, shape)

    class TimingCache:
        def __init__(self, data):
            self.data = data

        def serialize(self):
            return memoryview(self.data + b"+timed")

    class Config:
        def set_memory_pool_limit(self, pool, size):
            rec.pool.append(size)

        def set_flag(self, flag):
            rec.flags.append(flag)

        def add_optimization_profile(self, profile):
            rec.profiles.append(profile.shapes)

        def create_timing_cache(self, data):
            rec.timing_in.append(bytes(data))
            return TimingCache(bytes(data))

        def set_timing_cache(self, cache, ignore_mismatch):
            return timing_matches or cache.data == b""

    class Profile:
        def set_shape(self, name, lo, opt, hi):
            if name == "image":
                self.shapes = (name, tuple(lo), tuple(opt), tuple(hi))
            else:
                rec.extra_profiles.append((name, tuple(lo), tuple(opt), tuple(hi)))

    class Network:
        inputs = [("image", input_shape)] + ([("levels", levels_shape)] if levels_shape
                                             else [])
        num_inputs = len(inputs)

        def get_input(self, index):
            name, shape = self.inputs[index]
            return types.SimpleNamespace(name=name, shape=Dims(shape))

    class Builder:
        def __init__(self, logger):
            self.logger = logger

        def create_network(self, flags):
            return Network()

        def create_builder_config(self):
            return Config()

        def create_optimization_profile(self):
            return Profile()

        def build_serialized_network(self, network, config):
            rec.builds += 1
            return memoryview(f"plan {rec.builds}".encode()) if build_ok else None

    class OnnxParser:
        def __init__(self, network, logger):
            self.num_errors = 0 if parse_ok else 1

        def parse(self, data, path=None):
            return parse_ok

        def get_error(self, index):
            return "In node 3 (Resize): unsupported mode"

    trt.Logger = Logger  # type: ignore[attr-defined]
    trt.Builder = Builder  # type: ignore[attr-defined]
    trt.OnnxParser = OnnxParser  # type: ignore[attr-defined]
    trt.Dims = Dims  # type: ignore[attr-defined]
    trt.BuilderFlag = types.SimpleNamespace(FP16="FP16")  # type: ignore[attr-defined]
    trt.MemoryPoolType = types.SimpleNamespace(WORKSPACE="workspace")  # type: ignore[attr-defined]
    return trt


@pytest.fixture
def use_fake_trt(monkeypatch):
    def install(**options) -> Recorder:
        rec = Recorder()
        monkeypatch.setitem(sys.modules, "tensorrt", fake_tensorrt(rec, **options))
        monkeypatch.setattr(trt_build, "_LOGGER", [])
        monkeypatch.setattr(trt_build, "cuda_missing", lambda: None)
        monkeypatch.setattr(trt_build, "platform_identity",
                            lambda: ("10.99.0", "Fake GPU", "9.0"))
        return rec
    return install


def test_the_profile_covers_a_levels_input_with_the_image_batch(use_fake_trt, tmp_path):
    rec = use_fake_trt(levels_shape=(-1, 3))
    onnx = tmp_path / "m.onnx"
    onnx.write_bytes(b"onnx")
    trt_build.build_plan(onnx, "fp16", SR_PROFILE)
    assert rec.profiles == [("image", SR_PROFILE.min, SR_PROFILE.opt, SR_PROFILE.max)]
    batch = SR_PROFILE.min[0], SR_PROFILE.opt[0], SR_PROFILE.max[0]
    assert rec.extra_profiles == [("levels", (batch[0], 3), (batch[1], 3), (batch[2], 3))]


def test_build_plan_sets_fp16_profile_and_keeps_the_timing_cache(use_fake_trt, tmp_path):
    rec = use_fake_trt()
    onnx, timing = tmp_path / "m.onnx", tmp_path / "trt" / "timing.cache"
    onnx.write_bytes(b"onnx")
    plan = trt_build.build_plan(onnx, "fp16", SR_PROFILE, timing)
    assert plan == b"plan 1"
    assert rec.flags == ["FP16"] and rec.pool == [trt_build.WORKSPACE_BYTES]
    assert rec.profiles == [("image", SR_PROFILE.min, SR_PROFILE.opt, SR_PROFILE.max)]
    assert rec.timing_in == [b""] and timing.read_bytes() == b"+timed"
    trt_build.build_plan(onnx, "fp32", SR_PROFILE, timing)
    assert rec.flags == ["FP16"]  # no FP16 flag for fp32
    assert rec.timing_in[-1] == b"+timed"  # the second build starts from the saved cache


def test_a_timing_cache_from_another_gpu_is_replaced(use_fake_trt, tmp_path):
    rec = use_fake_trt(timing_matches=False)
    onnx, timing = tmp_path / "m.onnx", tmp_path / "timing.cache"
    onnx.write_bytes(b"onnx")
    timing.write_bytes(b"from another gpu")
    assert trt_build.build_plan(onnx, "fp16", SR_PROFILE, timing) == b"plan 1"
    assert rec.timing_in == [b"from another gpu", b""]
    assert timing.read_bytes() == b"+timed"


def test_fixed_shape_segmenter_needs_no_profile(use_fake_trt, tmp_path):
    rec = use_fake_trt(input_shape=(1, 3, 256, 256))
    onnx = tmp_path / "selfie.onnx"
    onnx.write_bytes(b"onnx")
    trt_build.build_plan(onnx, "fp16", None)
    assert rec.profiles == []


def test_dynamic_input_without_a_profile_is_refused(use_fake_trt, tmp_path):
    use_fake_trt()
    onnx = tmp_path / "m.onnx"
    onnx.write_bytes(b"onnx")
    with pytest.raises(ModelError, match="no optimization profile"):
        trt_build.build_plan(onnx, "fp16", None)


@pytest.mark.parametrize("failure, message", [("parse_ok", "cannot parse.*Resize"),
                                              ("build_ok", "failed to build")])
def test_parse_and_build_failures_are_one_line_model_errors(failure, message, use_fake_trt,
                                                            tmp_path):
    use_fake_trt(**{failure: False})
    onnx = tmp_path / "m.onnx"
    onnx.write_bytes(b"onnx")
    with pytest.raises(ModelError, match=message) as info:
        trt_build.build_plan(onnx, "fp16", SR_PROFILE)
    assert "\n" not in str(info.value)


def only_line(models: list[str], precision: str) -> str:
    [line] = build_engines(models, precision)
    return line


def test_build_engines_builds_once_then_reports_up_to_date(use_fake_trt, tmp_path,
                                                           monkeypatch):
    rec = use_fake_trt()
    monkeypatch.setenv("LOCALSR_ENGINES", str(tmp_path))
    (tmp_path / "fast_unet.onnx").write_bytes(b"onnx v1")
    lines = list(build_engines(None, "fp16"))
    assert any(line.startswith("fast: built") for line in lines)
    assert any(line.startswith("selfie: skipped") and "models fetch" in line
               for line in lines)
    assert rec.builds == 1
    assert only_line(["fast"], "fp16").startswith("fast: up to date")
    assert rec.builds == 1
    (tmp_path / "fast_unet.onnx").write_bytes(b"onnx v2")  # retrained: new sha256
    assert only_line(["fast"], "fp16").startswith("fast: built")
    assert only_line(["fast"], "fp32").startswith("fast: built")
    assert rec.builds == 3
    plans = sorted(p.name for p in (tmp_path / "trt").glob("fast-*.plan"))
    assert len(plans) == 3 and (tmp_path / "trt" / "timing.cache").is_file()


def test_build_engines_refuses_an_explicit_missing_model(use_fake_trt, tmp_path,
                                                         monkeypatch):
    use_fake_trt()
    monkeypatch.setenv("LOCALSR_ENGINES", str(tmp_path))
    with pytest.raises(ModelError, match=r"paper_unet\.onnx"):
        list(build_engines(["paper"], "fp16"))


@pytest.fixture
def fake_runtime(use_fake_trt):
    """The fake TensorRT plus a runtime: plans ``b"damaged"`` do not deserialize; engines
    record the allocation strategy of their context."""
    rec = use_fake_trt()
    fake = sys.modules["tensorrt"]
    seen: dict[str, list] = {"loaded": [], "strategies": []}

    class Engine:
        num_io_tensors = 0
        device_memory_size_v2 = 0  # nothing to allocate: these tests run without CUDA

        def create_execution_context(self, strategy):
            seen["strategies"].append(strategy)
            return object()

    class Runtime:
        def __init__(self, logger):
            pass

        def deserialize_cuda_engine(self, plan):
            seen["loaded"].append(bytes(plan))
            return None if bytes(plan) == b"damaged" else Engine()

    fake.Runtime = Runtime  # type: ignore[attr-defined]
    fake.ExecutionContextAllocationStrategy = types.SimpleNamespace(  # type: ignore[attr-defined]
        USER_MANAGED="user-managed")
    seen["rec"] = [rec]
    return seen


def fast_onnx(folder: Path, content: bytes = b"onnx") -> Path:
    onnx = folder / "fast_unet.onnx"
    onnx.write_bytes(content)
    return onnx


def test_engine_open_never_builds_a_plan(fake_runtime, tmp_path):
    from localsr_cam.runtime.tensorrt import TensorRTEngine

    engine = TensorRTEngine("fast", fast_onnx(tmp_path), cache=PlanCache(tmp_path / "trt"))
    with pytest.raises(ModelError, match="models build-engines") as info:
        engine.open()
    assert "\n" not in str(info.value)
    assert fake_runtime["rec"][0].builds == 0 and fake_runtime["loaded"] == []
    engine.close()


def test_engine_open_loads_the_plan_that_was_built_fp32_too(fake_runtime, tmp_path,
                                                            monkeypatch):
    from localsr_cam.runtime.tensorrt import TensorRTEngine

    monkeypatch.setenv("LOCALSR_ENGINES", str(tmp_path))
    onnx = fast_onnx(tmp_path)
    assert only_line(["fast"], "fp32").startswith("fast: built")
    engine = TensorRTEngine("fast", onnx, cache=PlanCache(tmp_path / "trt")).open()
    assert engine.precision == "fp32" and engine.profile == SR_PROFILE
    assert fake_runtime["loaded"] == [b"plan 1"]
    assert fake_runtime["strategies"] == ["user-managed"]  # memory from torch's allocator
    engine.close()
    engine.close()
    with pytest.raises(ModelError, match="no fp16 TensorRT plan"):
        TensorRTEngine("fast", onnx, "fp16", cache=PlanCache(tmp_path / "trt")).open()


def test_a_plan_that_does_not_load_is_removed_not_rebuilt(fake_runtime, tmp_path):
    from localsr_cam.runtime.tensorrt import TensorRTEngine

    onnx = fast_onnx(tmp_path)
    cache = PlanCache(tmp_path / "trt")
    key = trt_build.engine_key("fast", onnx, "fp16", SR_PROFILE)
    cache.store(key, b"damaged")
    with pytest.raises(ModelError, match=r"does not load.*build-engines"):
        TensorRTEngine("fast", onnx, cache=cache).open()
    assert cache.load(key) is None and fake_runtime["rec"][0].builds == 0


def test_find_plan_prefers_fp16_then_the_larger_profile_and_ignores_other_onnx(
        use_fake_trt, tmp_path):
    use_fake_trt()
    onnx = fast_onnx(tmp_path)
    cache = PlanCache(tmp_path / "trt")
    small = trt_build.sr_profile((640, 360))
    for precision, profile in (("fp32", SR_PROFILE), ("fp16", small), ("fp16", SR_PROFILE)):
        key = trt_build.engine_key("fast", onnx, precision, profile)
        cache.store(key, f"{precision} {profile.max}".encode())
    found = trt_build.find_plan("fast", onnx, cache)
    assert found is not None and found[1] == f"fp16 {SR_PROFILE.max}".encode()
    found = trt_build.find_plan("fast", onnx, cache, ("fp32",))
    assert found is not None and found[0].precision == "fp32"
    assert trt_build.find_plan("fast", fast_onnx(tmp_path, b"retrained"), cache) is None


def test_auto_takes_tensorrt_only_with_every_plan(use_fake_trt, tmp_path, monkeypatch, caplog):
    from localsr_cam.zoo import backends

    use_fake_trt()
    monkeypatch.setenv("LOCALSR_ENGINES", str(tmp_path))
    monkeypatch.setattr(backends, "resolve_backend", lambda requested: "tensorrt")
    fast_onnx(tmp_path)
    with caplog.at_level("INFO"):
        assert backends.choose_backend("auto", ["fast", "maskrcnn"]) == "cuda"
    assert "no TensorRT plan for fast" in caplog.text
    assert backends.choose_backend("tensorrt", ["fast"]) == "tensorrt"  # asked for: as is
    list(build_engines(["fast"], "fp16"))
    assert backends.choose_backend("auto", ["fast", "maskrcnn"]) == "tensorrt"


def test_build_engines_sizes_the_sr_profile_from_the_input(use_fake_trt, tmp_path,
                                                           monkeypatch):
    rec = use_fake_trt()
    monkeypatch.setenv("LOCALSR_ENGINES", str(tmp_path))
    fast_onnx(tmp_path)
    [line] = build_engines(["fast"], "fp16", frame_size=(640, 360))
    assert line.startswith("fast: built")
    assert rec.profiles == [("image", (1, 3, 32, 32), (1, 3, 352, 320), (1, 3, 384, 640))]


# -- without TensorRT -----------------------------------------------------------------------
def test_stub_only_tensorrt_is_reported_as_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", types.ModuleType("tensorrt"))
    problem = tensorrt_problem()
    assert problem is not None and "type stubs" in problem


@pytest.mark.skipif(tensorrt_problem() is None, reason="TensorRT is installed")
def test_engine_open_without_tensorrt_is_one_line(tmp_path):
    import localsr_cam.runtime.tensorrt as module

    engine = module.TensorRTEngine("fast", tmp_path / "fast_unet.onnx",
                                   cache=PlanCache(tmp_path / "trt"))
    with pytest.raises(BackendUnavailableError, match="TensorRT") as info:
        engine.open()
    assert "\n" not in str(info.value) and "pip install tensorrt" in str(info.value)
    engine.close()


def _no_tensorrt_here() -> bool:
    from localsr_cam.runtime.base import cuda_missing

    return tensorrt_problem() is not None or cuda_missing() is not None


@pytest.mark.skipif(not _no_tensorrt_here(), reason="TensorRT and a GPU are present")
@pytest.mark.parametrize("argv", [
    ["run", "--backend", "tensorrt", "--source", "synthetic", "--frames", "1",
     "--sink", "null"],
    ["models", "build-engines"],
    ["models", "build-engines", "--input", "640x360"],
    ["models", "build-engines", "--models", "fast", "--precision", "fp32"],
])
def test_cli_tensorrt_without_it_exits_2_with_one_line(argv, capsys):
    from localsr_cam.cli.main import main

    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("localsr-cam: error: ") and "tensorrt" in err[0]


def test_tools_build_engines_is_the_cli(monkeypatch):
    import runpy

    seen: list[list[str]] = []
    monkeypatch.setattr("localsr_cam.cli.main.main", lambda argv: seen.append(argv) or 0)
    monkeypatch.setattr(sys, "argv", ["build_engines.py", "--models", "fast"])
    with pytest.raises(SystemExit) as info:
        runpy.run_path(str(Path(__file__).parents[2] / "tools" / "build_engines.py"),
                       run_name="__main__")
    assert info.value.code == 0
    assert seen == [["models", "build-engines", "--models", "fast"]]
