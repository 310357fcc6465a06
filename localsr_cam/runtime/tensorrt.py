"""TensorRT backend: a serialized engine built from the shipped ONNX, run on torch's stream.

torch owns the CUDA context, memory, streams and events; TensorRT only sees raw device
pointers (``set_tensor_address``) and the handle of torch's current stream
(``execute_async_v3``). No pycuda, one CUDA context.

Tensors: inputs are float32 CUDA tensors as the Engine contract says; where the engine
declares another I/O type (``get_tensor_dtype``, e.g. float16) they are converted on the
way in, and outputs are converted back to float32 on the way out. Each call returns
new output tensors (from torch's caching allocator, so no ``cudaMalloc`` in the steady
state) that the caller owns. The inputs must stay unchanged until the work queued on
the current stream has run, as with any asynchronous CUDA call.

``import localsr_cam.runtime.tensorrt`` works without TensorRT; :meth:`TensorRTEngine.open`
then raises :class:`~localsr_cam.errors.BackendUnavailableError` with one line.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from localsr_cam.errors import ModelError
from localsr_cam.runtime import trt_build

if TYPE_CHECKING:
    import tensorrt as trt

log = logging.getLogger(__name__)

BUILD_COMMAND = "localsr-cam models build-engines"


@dataclasses.dataclass(frozen=True)
class _Tensor:
    """One I/O tensor of the engine: name, direction and the torch dtype it binds as."""

    name: str
    is_input: bool
    dtype: torch.dtype


def torch_dtype(dtype: trt.DataType) -> torch.dtype:
    """The torch dtype with the same memory layout as a TensorRT ``DataType``."""
    import tensorrt as trt

    table = {trt.DataType.FLOAT: torch.float32, trt.DataType.HALF: torch.float16,
             trt.DataType.BF16: torch.bfloat16, trt.DataType.INT32: torch.int32,
             trt.DataType.INT64: torch.int64, trt.DataType.INT8: torch.int8,
             trt.DataType.UINT8: torch.uint8, trt.DataType.BOOL: torch.bool}
    try:
        return table[dtype]
    except KeyError:
        raise ModelError(f"TensorRT I/O type {dtype} has no torch equivalent") from None


class TensorRTEngine:
    """Model ``name``'s ONNX (``onnx_path``) as a TensorRT engine on the current GPU.

    ``open()`` loads a plan that ``localsr-cam models build-engines`` stored in
    ``cache`` for this TensorRT version, GPU and ONNX file (see
    :func:`~localsr_cam.runtime.trt_build.find_plan`); it never builds one, which takes
    minutes. ``precision``: ``"fp16"`` or ``"fp32"`` to insist on one; ``None`` takes
    what was built (fp16 first). The profile is the plan's own. The execution context
    takes its scratch memory from torch's allocator (one block, held while open), so
    TensorRT allocates no device memory of its own. The context is used from one
    thread; calls from different streams are ordered with an event, since its scratch
    memory is shared between calls.
    """

    backend = "tensorrt"

    def __init__(self, name: str, onnx_path: Path, precision: str | None = None, *,
                 cache: trt_build.PlanCache) -> None:
        self.name = name
        self.onnx_path = Path(onnx_path)
        self.precision = precision
        self.cache = cache
        self.device = torch.device("cuda")
        self.profile: trt_build.Profile | None = None
        self.key: trt_build.EngineKey | None = None
        self._runtime: trt.Runtime | None = None
        self._engine: trt.ICudaEngine | None = None
        self._context: trt.IExecutionContext | None = None
        self._scratch: torch.Tensor | None = None
        self._tensors: list[_Tensor] = []
        self._shapes: dict[str, tuple[int, ...]] = {}
        self._done: torch.cuda.Event | None = None
        self._stream: int | None = None  # 0 is the default stream, a real one

    # -- life cycle -------------------------------------------------------------------
    def open(self) -> TensorRTEngine:
        trt_build.require_tensorrt()
        import tensorrt as trt

        precisions = trt_build.PRECISIONS if self.precision is None else (self.precision,)
        found = trt_build.find_plan(self.name, self.onnx_path, self.cache, precisions)
        if found is None:
            wanted = f"{self.precision} " if self.precision else ""
            raise ModelError(f"no {wanted}TensorRT plan for {self.name} on this GPU and "
                             f"TensorRT version ({self.onnx_path}); build it with "
                             f"`{BUILD_COMMAND}`")
        key, plan = found
        self._runtime = trt.Runtime(trt_build.trt_logger())
        engine = self._runtime.deserialize_cuda_engine(plan)
        if engine is None:
            self.cache.discard(key)  # so the next build makes it again
            raise ModelError(f"the TensorRT plan for {self.name} does not load (damaged?); "
                             f"it was removed: rebuild it with `{BUILD_COMMAND}`")
        context = engine.create_execution_context(
            trt.ExecutionContextAllocationStrategy.USER_MANAGED)
        size = int(engine.device_memory_size_v2)  # the most any profile needs
        if size > 0:
            self._scratch = torch.empty(size, dtype=torch.uint8, device=self.device)
            context.set_device_memory(self._scratch.data_ptr(), size)
        self.key, self.profile, self.precision = key, key.profile, key.precision
        self._engine = engine
        self._context = context
        self._tensors = [self._describe(engine, engine.get_tensor_name(i))
                         for i in range(engine.num_io_tensors)]
        self._shapes = {}
        self._done = torch.cuda.Event()
        log.info("%s: TensorRT %s engine loaded (%s)", self.name, key.precision,
                 self.cache.plan_path(key).name)
        return self

    @staticmethod
    def _describe(engine: trt.ICudaEngine, name: str) -> _Tensor:
        import tensorrt as trt

        is_input = engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT
        return _Tensor(name, is_input, torch_dtype(engine.get_tensor_dtype(name)))

    def close(self) -> None:
        """Wait for queued work, then release context, engine and runtime; safe twice."""
        if self._done is not None and self._stream is not None:
            self._done.synchronize()
        self._context = None  # the context before the engine, the engine before the runtime
        self._scratch = None  # its scratch memory only once the context is gone
        self._engine = None
        self._runtime = None
        self._done = None
        self._stream = None

    def __enter__(self) -> TensorRTEngine:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- inference --------------------------------------------------------------------
    def __call__(self, inputs: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Named CUDA tensors in, new float32 CUDA tensors out, queued on the current
        stream (see the module docstring for dtypes and ownership)."""
        context, done = self._context, self._done
        if context is None or done is None:
            raise RuntimeError(f"TensorRTEngine {self.name!r} is not open")
        stream = torch.cuda.current_stream(self.device)
        if self._stream is not None and self._stream != stream.cuda_stream:
            stream.wait_event(done)  # the context's scratch memory was last used elsewhere
        keep_alive = []
        for tensor in self._tensors:
            if tensor.is_input:
                given = inputs.get(tensor.name)
                if given is None and tensor.name == "levels":  # SR told nothing: clean
                    given = torch.zeros((inputs["image"].shape[0], self._levels_k(context)),
                                        device=self.device)
                if given is None:
                    raise ModelError(f"{self.name}: input {tensor.name!r} is missing")
                value = given.to(tensor.dtype).contiguous()
                self._set_shape(context, tensor.name, tuple(value.shape))
                keep_alive.append(value)
                context.set_tensor_address(tensor.name, value.data_ptr())
        outputs: dict[str, torch.Tensor] = {}
        for tensor in self._tensors:
            if not tensor.is_input:
                dims = context.get_tensor_shape(tensor.name)
                shape = tuple(dims[i] for i in range(len(dims)))
                value = torch.empty(shape, dtype=tensor.dtype, device=self.device)
                context.set_tensor_address(tensor.name, value.data_ptr())
                outputs[tensor.name] = value
        if not context.execute_async_v3(stream.cuda_stream):
            raise RuntimeError(f"TensorRT failed to enqueue {self.name}")
        result = {name: value.float() for name, value in outputs.items()}
        done.record(stream)
        self._stream = stream.cuda_stream
        return result

    @staticmethod
    def _levels_k(context: trt.IExecutionContext) -> int:
        dims = context.engine.get_tensor_shape("levels")
        return int(dims[len(dims) - 1])

    def _set_shape(self, context: trt.IExecutionContext, name: str,
                   shape: tuple[int, ...]) -> None:
        if self._shapes.get(name) == shape:
            return
        if name == "image" and self.profile is not None and not self.profile.covers(shape):
            raise ModelError(f"{self.name}: input {shape} is outside the TensorRT profile "
                             f"{self.profile.min}..{self.profile.max}")
        if not context.set_input_shape(name, shape):
            raise ModelError(f"{self.name}: TensorRT rejected input shape {shape}")
        self._shapes[name] = shape
