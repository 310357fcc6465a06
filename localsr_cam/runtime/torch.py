"""PyTorch backend: the models' own ``nn.Module`` on the CPU or a CUDA GPU.

- CPU (backend ``torch``): float32, ``torch.inference_mode()``.
- CUDA (backend ``cuda``): float16 weights and activations in channels_last layout;
  inputs are cast in and outputs cast back to float32. One CUDA graph is captured per
  input shape (N, C, H, W): person boxes are rounded up to bucket sizes, so the shapes
  that can occur are known once the frame size is: :meth:`TorchEngine.prepare_shapes`
  captures them all up front (a capture synchronizes the device and empties torch's
  cache, which must not happen on the per-frame path); a shape outside that set is
  captured when first seen, and a bounded LRU cache holds the graphs. All graphs of an
  engine share one memory pool and one input and one output buffer (sized for the
  largest prepared shape; a degradation-aware SR module also one N×K levels buffer), so
  their memory is that of the largest graph, not the sum; replays are therefore
  serialized across streams with one event. Everything runs on torch's *current*
  stream, so a caller picks the stream (the double-buffered scheduler runs the
  segmenter on one stream and the SR model on another).

Buffer ownership: the graphs' input, output and intermediate memory is private to the
engine. The float32 tensors returned are new tensors, owned by the caller. On the CPU
the outputs are inference tensors (made under ``inference_mode``): use them freely, but
copy one before modifying it in place.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from localsr_cam.errors import BackendUnavailableError, ConfigError
from localsr_cam.runtime import settings
from localsr_cam.runtime.base import INPUT_NAME, LEVELS_NAME, OUTPUT_NAMES

log = logging.getLogger(__name__)

WARMUP_RUNS = 3
"""Eager runs on a side stream before a capture (cuDNN picks its algorithms there)."""
MAX_GRAPHS = 8
"""Captured CUDA graphs kept per engine; the least recently used one is dropped."""


@dataclasses.dataclass
class _Graph:
    """One captured CUDA graph and its static buffers (all on the GPU, engine-owned).

    ``static_in``: float16 N×C×H×W channels_last, copied into before each replay;
    ``static_out``: the float16 output(s), overwritten by each replay; ``static_levels``:
    float16 N×K, copied into before each replay (degradation-aware SR only). ``static_in``,
    ``static_levels`` and a single 4-D output are views of the engine's shared buffers
    when the shape fits them, else private tensors.
    """

    graph: torch.cuda.CUDAGraph
    static_in: torch.Tensor
    static_out: tuple[torch.Tensor, ...]
    static_levels: torch.Tensor | None = None  # float16 N×K for a degradation-aware SR


def _channels_last_view(flat: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """The first elements of a flat buffer as an N×C×H×W channels_last tensor."""
    n, c, h, w = shape
    return flat[: n * c * h * w].view(n, h, w, c).permute(0, 3, 1, 2)


class TorchEngine:
    """A model as a PyTorch module; see the module docstring for precision and graphs.

    ``device``: ``"cpu"`` or ``"cuda"``. ``threads``: on the CPU, the most intra-op
    threads torch may use; torch's pool is process-wide, so it is only ever lowered
    (never raised), which keeps engines in one process from fighting over it.
    ``kind``: ``"segment"``, ``"sr"`` or ``"detect"`` (names the outputs). ``loader``: called by
    :meth:`open` to get the float32 module (the zoo passes its trained-model loader);
    ``module``: use this module instead (tests, tools). One of the two is required.
    ``cuda_graphs``: capture graphs on CUDA (else run eagerly in float16).
    """

    def __init__(self, name: str, device: str = "cpu", threads: int = 2, *, kind: str,
                 loader: Callable[[], nn.Module] | None = None,
                 module: nn.Module | None = None,
                 cuda_graphs: bool = True, max_graphs: int = MAX_GRAPHS) -> None:
        if device not in ("cpu", "cuda"):
            raise ConfigError(f"TorchEngine device must be 'cpu' or 'cuda', got {device!r}")
        if kind not in OUTPUT_NAMES:
            raise ConfigError(f"TorchEngine kind must be one of {', '.join(OUTPUT_NAMES)}, "
                              f"got {kind!r}")
        if loader is None and module is None:
            raise ConfigError(f"TorchEngine {name!r} needs a module or a loader")
        self.name = name
        self.device = torch.device(device)
        self.backend = "cuda" if device == "cuda" else "torch"
        self.threads = threads
        self.cuda_graphs = cuda_graphs
        self.max_graphs = max(1, max_graphs)
        self._given = module
        self._loader = loader
        self._module: nn.Module | None = None
        self._outputs = OUTPUT_NAMES[kind]
        self._graphs: collections.OrderedDict[tuple[int, ...], _Graph] = (
            collections.OrderedDict())
        self._graphs_failed = False
        self._levels = 0  # K: degradation levels the module takes (0: image only)
        self._pool: Any = None  # one memory pool (handle) for every graph's capture
        self._shared_in: torch.Tensor | None = None  # flat float16 buffers the graphs
        self._shared_out: torch.Tensor | None = None  # read and write (views of them)
        self._shared_levels: torch.Tensor | None = None  # flat float16, N×K levels
        self._done: torch.cuda.Event | None = None  # after the last replay and its read
        self._stream: int | None = None  # that replay's stream (0: the default stream)

    # -- life cycle -------------------------------------------------------------------
    def open(self) -> TorchEngine:
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise BackendUnavailableError("backend 'cuda' is unavailable: no CUDA GPU is "
                                          "available to PyTorch")
        if self._given is not None:
            module = self._given
        else:
            assert self._loader is not None
            module = self._loader()
        module = module.eval()
        self._levels = int(getattr(module, "levels", 0) or 0)
        for parameter in module.parameters():
            parameter.requires_grad_(False)
        if self.device.type == "cuda":
            settings.autotune_convolutions()  # few shapes: autotune each once
            module = module.to(self.device, dtype=torch.float16)
            module = module.to(memory_format=torch.channels_last)
        else:
            settings.cap_threads(self.threads)
        self._module = module
        return self

    def close(self) -> None:
        """Release the module and every graph; safe to call twice."""
        self._wait_idle()
        self._graphs.clear()
        self._shared_in = self._shared_out = self._shared_levels = None
        self._pool = None
        self._module = None

    def __enter__(self) -> TorchEngine:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def graph_shapes(self) -> list[tuple[int, ...]]:
        """Input shapes with a captured graph, least recently used first."""
        return list(self._graphs)

    # -- inference --------------------------------------------------------------------
    def __call__(self, inputs: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """``{"image": N×3×H×W float32 on self.device}`` (+ ``"levels"`` N×K float32 for
        a degradation-aware SR module; zeros when missing, ignored by other modules) →
        the kind's outputs (``mask``, ``sr``, or ``regressors`` and ``scores``), float32."""
        module = self._module
        if module is None:
            raise RuntimeError(f"TorchEngine {self.name!r} is not open")
        image = inputs[INPUT_NAME]
        levels = None
        if self._levels:
            levels = inputs.get(LEVELS_NAME)
            if levels is None:
                levels = image.new_zeros((image.shape[0], self._levels))
        if self.device.type == "cpu":
            with torch.inference_mode():
                out = module(image) if levels is None else module(image, levels)
                results = _as_tuple(out)
        else:
            results = self._run_cuda(module, image, levels)
        return dict(zip(self._outputs, results, strict=True))

    def prepare_shapes(self, shapes: Sequence[tuple[int, ...]]) -> None:
        """Capture a graph for each input shape now (CUDA with graphs only; a no-op
        otherwise), into the engine's one memory pool, with shared input and output
        buffers (and, for a degradation-aware SR module, a shared N×K levels buffer)
        sized for the largest of them. Shapes already captured are kept (a second call
        for the same frame size captures nothing); the cache then holds at least these.
        Larger shapes than the shared buffers hold start the cache afresh."""
        module = self._module
        if module is None:
            raise RuntimeError(f"TorchEngine {self.name!r} is not open")
        if self.device.type != "cuda" or not self.cuda_graphs or not shapes:
            return
        largest = max(math.prod(shape) for shape in shapes)
        most_levels = max(shape[0] for shape in shapes) * self._levels
        if (self._shared_in is None or self._shared_in.numel() < largest
                or (self._shared_levels is not None
                    and self._shared_levels.numel() < most_levels)
                or (self._levels and self._shared_levels is None)):
            self._wait_idle()  # the graphs read the old buffers: drop them all
            self._graphs.clear()
            self._shared_in = torch.empty(largest, device=self.device, dtype=torch.float16)
            self._shared_out = torch.empty(4 * largest, device=self.device,
                                           dtype=torch.float16)
            self._shared_levels = (torch.empty(most_levels, device=self.device,
                                               dtype=torch.float16)
                                   if self._levels else None)
        self.max_graphs = max(self.max_graphs, len(shapes))
        before, started = len(self._graphs), time.perf_counter()
        for shape in shapes:
            if self._graph_for(module, tuple(shape)) is None:
                break  # capture failed: logged, the engine runs eagerly
        if len(self._graphs) != before:
            log.info("%s: %d CUDA graphs ready (%.1f s)", self.name, len(self._graphs),
                     time.perf_counter() - started)

    def _run_cuda(self, module: nn.Module, image: torch.Tensor,
                  levels: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
        entry = self._graph_for(module, tuple(image.shape)) if self.cuda_graphs else None
        if entry is None:
            with torch.inference_mode():
                half = image.to(dtype=torch.float16, memory_format=torch.channels_last)
                if levels is None:
                    outs = _as_tuple(module(half))
                else:
                    outs = _as_tuple(module(half, levels.to(torch.float16)))
                return tuple(out.float() for out in outs)
        stream = torch.cuda.current_stream(self.device)
        done = self._done
        assert done is not None
        if self._stream is not None and self._stream != stream.cuda_stream:
            stream.wait_event(done)  # the shared buffers were last used on another stream
        entry.static_in.copy_(image)
        if entry.static_levels is not None and levels is not None:
            entry.static_levels.copy_(levels)
        entry.graph.replay()
        result = tuple(out.float() for out in entry.static_out)
        done.record(stream)
        self._stream = stream.cuda_stream
        return result

    def _graph_for(self, module: nn.Module, shape: tuple[int, ...]) -> _Graph | None:
        entry = self._graphs.get(shape)
        if entry is not None:
            self._graphs.move_to_end(shape)
            return entry
        if self._graphs_failed:
            return None
        try:
            entry = self._capture(module, shape)
        except RuntimeError as exc:
            self._graphs_failed = True
            log.warning("%s: CUDA graph capture failed (%s); running eagerly", self.name,
                        str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            return None
        self._graphs[shape] = entry
        while len(self._graphs) > self.max_graphs:
            self._wait_idle()
            self._graphs.popitem(last=False)
        return entry

    def _capture(self, module: nn.Module, shape: tuple[int, ...]) -> _Graph:
        """Warm up on a side stream, then capture one forward pass for ``shape`` into
        the engine's memory pool.

        ``torch.cuda.graph`` synchronizes the device when a capture begins: this happens
        in :meth:`prepare_shapes`, or once for a shape outside the prepared set.
        """
        self._wait_idle()  # the shared buffers and pool may be in use by a replay
        if self._pool is None:
            self._pool = torch.cuda.graph_pool_handle()
            self._done = torch.cuda.Event()
        shared_in, shared_out = self._shared_in, self._shared_out
        fits = shared_in is not None and shared_out is not None \
            and math.prod(shape) <= shared_in.numel()
        if fits:
            assert shared_in is not None
            static_in = _channels_last_view(shared_in, shape).zero_()
        else:
            static_in = torch.zeros(shape, device=self.device, dtype=torch.float16)
            static_in = static_in.contiguous(memory_format=torch.channels_last)
        current = torch.cuda.current_stream(self.device)
        static_levels = None
        args: tuple[torch.Tensor, ...] = (static_in,)
        if self._levels:
            n = shape[0]
            shared_levels = self._shared_levels
            if shared_levels is not None and n * self._levels <= shared_levels.numel():
                static_levels = shared_levels[: n * self._levels].view(n, self._levels)
                static_levels.zero_()
            else:
                static_levels = torch.zeros((n, self._levels), device=self.device,
                                            dtype=torch.float16)
            args = (static_in, static_levels)
        side = torch.cuda.Stream(self.device)
        side.wait_stream(current)
        with torch.inference_mode(), torch.cuda.stream(side):
            for _ in range(WARMUP_RUNS):
                probe = _as_tuple(module(*args))
        current.wait_stream(side)
        out_shape = tuple(probe[0].shape)
        single = len(probe) == 1 and len(out_shape) == 4
        del probe
        fits = fits and single and shared_out is not None \
            and math.prod(out_shape) <= shared_out.numel()
        graph = torch.cuda.CUDAGraph()
        with torch.inference_mode(), torch.cuda.graph(graph, pool=self._pool,
                                                      capture_error_mode="thread_local"):
            produced = _as_tuple(module(*args))
            if fits:  # into the shared output; the graph's own is freed to the pool
                assert shared_out is not None
                shared_view = _channels_last_view(shared_out, out_shape)
                shared_view.copy_(produced[0])
                static_out: tuple[torch.Tensor, ...] = (shared_view,)
                del produced
            else:
                static_out = produced
        log.debug("%s: captured a CUDA graph for input %s", self.name, shape)
        return _Graph(graph, static_in, static_out, static_levels)

    def _wait_idle(self) -> None:
        """Block until the last replay finished, so its buffers may be reused or freed."""
        if self._done is not None and self._stream is not None:
            self._done.synchronize()


def _as_tuple(output: torch.Tensor | tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    """A module's output as a tuple of tensors (one-output models return a tensor)."""
    return output if isinstance(output, tuple) else (output,)
