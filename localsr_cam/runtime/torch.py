"""PyTorch backend: the models' own ``nn.Module`` on the CPU or a CUDA GPU.

- CPU (backend ``torch``): float32, ``torch.inference_mode()``.
- CUDA (backend ``cuda``): float16 weights and activations in channels_last layout;
  inputs are cast in and outputs cast back to float32. One CUDA graph is captured per
  input shape (N, C, H, W): person boxes are rounded up to a few bucket sizes, so few
  shapes occur, and a bounded LRU cache holds their graphs. Everything runs on torch's
  *current* stream, so a caller picks the stream (the double-buffered scheduler runs the
  segmenter on one stream and the SR model on another).

Buffer ownership: each graph's input and float16 output are static buffers private to
the engine. The float32 tensors returned are new tensors, owned by the caller. On the
CPU the outputs are inference tensors (made under ``inference_mode``): use them freely,
but copy one before modifying it in place.
"""

from __future__ import annotations

import collections
import copy
import dataclasses
import logging
import math
from collections.abc import Callable, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from localsr_cam.errors import BackendUnavailableError, ConfigError
from localsr_cam.runtime.base import INPUT_NAME, LEVELS_NAME, OUTPUT_NAMES

log = logging.getLogger(__name__)

WARMUP_RUNS = 3
"""Eager runs on a side stream before a capture (cuDNN picks its algorithms there)."""
MAX_GRAPHS = 8
"""Captured CUDA graphs kept per engine; the least recently used one is dropped."""


@dataclasses.dataclass
class _Graph:
    """One captured CUDA graph and its static buffers (all on the GPU, engine-owned).

    ``static_in``: float16 N×C×H×W channels_last, copied into before each replay.
    ``static_out``: float16 output, overwritten by each replay. ``done``: recorded on
    the caller's stream after the last replay and the read of ``static_out``;
    ``stream``: the handle of that stream (``None`` before the first replay; 0 is the
    default stream's handle, a real stream).
    """

    graph: torch.cuda.CUDAGraph
    static_in: torch.Tensor
    static_out: torch.Tensor
    done: torch.cuda.Event
    stream: int | None = None
    static_levels: torch.Tensor | None = None  # float16 N×K for a degradation-aware SR


class TorchEngine:
    """A model as a PyTorch module; see the module docstring for precision and graphs.

    ``device``: ``"cpu"`` or ``"cuda"``. ``threads``: on the CPU, the most intra-op
    threads torch may use; torch's pool is process-wide, so it is only ever lowered
    (never raised), which keeps engines in one process from fighting over it.
    ``kind``: ``"segment"`` or ``"sr"`` (names the output). ``loader``: called by
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
        self._output = OUTPUT_NAMES[kind]
        self._graphs: collections.OrderedDict[tuple[int, ...], _Graph] = (
            collections.OrderedDict())
        self._graphs_failed = False
        self._levels = 0  # K: degradation levels the module takes (0: image only)

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
            torch.backends.cudnn.benchmark = True  # few shapes: autotune each once
            module = module.to(self.device, dtype=torch.float16)
            module = module.to(memory_format=torch.channels_last)
        elif torch.get_num_threads() > self.threads:
            torch.set_num_threads(self.threads)
        self._module = module
        return self

    def close(self) -> None:
        """Release the module and every graph; safe to call twice."""
        for entry in self._graphs.values():
            _wait_idle(entry)
        self._graphs.clear()
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
        ``{"mask"|"sr": float32}``."""
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
                return {self._output: out}
        return {self._output: self._run_cuda(module, image, levels)}

    def _run_cuda(self, module: nn.Module, image: torch.Tensor,
                  levels: torch.Tensor | None = None) -> torch.Tensor:
        entry = self._graph_for(module, tuple(image.shape)) if self.cuda_graphs else None
        if entry is None:
            with torch.inference_mode():
                half = image.to(dtype=torch.float16, memory_format=torch.channels_last)
                if levels is None:
                    return module(half).float()
                return module(half, levels.to(torch.float16)).float()
        stream = torch.cuda.current_stream(self.device)
        if entry.stream is not None and entry.stream != stream.cuda_stream:
            stream.wait_event(entry.done)  # the static buffers were last used elsewhere
        entry.static_in.copy_(image)
        if entry.static_levels is not None and levels is not None:
            entry.static_levels.copy_(levels)
        entry.graph.replay()
        result = entry.static_out.float()
        entry.done.record(stream)
        entry.stream = stream.cuda_stream
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
            _, oldest = self._graphs.popitem(last=False)
            _wait_idle(oldest)  # its memory pool is freed with it
        return entry

    def _capture(self, module: nn.Module, shape: tuple[int, ...]) -> _Graph:
        """Warm up on a side stream, then capture one forward pass for ``shape``.

        ``torch.cuda.graph`` synchronizes the device when a capture begins: this happens
        once per new shape, never in the steady state.
        """
        current = torch.cuda.current_stream(self.device)
        static_in = torch.zeros(shape, device=self.device, dtype=torch.float16)
        static_in = static_in.contiguous(memory_format=torch.channels_last)
        static_levels = None
        args: tuple[torch.Tensor, ...] = (static_in,)
        if self._levels:
            static_levels = torch.zeros((shape[0], self._levels), device=self.device,
                                        dtype=torch.float16)
            args = (static_in, static_levels)
        side = torch.cuda.Stream(self.device)
        side.wait_stream(current)
        with torch.inference_mode(), torch.cuda.stream(side):
            for _ in range(WARMUP_RUNS):
                module(*args)
        current.wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.inference_mode(), torch.cuda.graph(graph, capture_error_mode="thread_local"):
            static_out = module(*args)
        log.debug("%s: captured a CUDA graph for input %s", self.name, shape)
        return _Graph(graph, static_in, static_out, torch.cuda.Event(),
                      static_levels=static_levels)


def _wait_idle(entry: _Graph) -> None:
    """Block until the last replay of ``entry`` finished, so freeing it is safe."""
    if entry.stream is not None:
        entry.done.synchronize()


def fp16_drift(module: nn.Module, hr_images: list[torch.Tensor], name: str = "fast"
               ) -> dict[str, float]:
    """How much the CUDA float16 path costs in quality, for an SR ``module``.

    ``hr_images``: float32 1×3×H×W RGB in [0,1] with even H and W (any device). Each is
    downscaled 2× (bicubic, antialiased), super-resolved by the module in float32 on
    the GPU (TF32 off: the exact reference) and by a CUDA :class:`TorchEngine`
    (float16, graphs), and both are scored by PSNR against the original. Returns the
    mean PSNRs (dB), ``drift_db`` = |fp32 − fp16|, and the largest pixel difference.
    """
    device = torch.device("cuda")
    reference = copy.deepcopy(module).float().to(device).eval()
    engine = TorchEngine(name, "cuda", kind="sr", module=copy.deepcopy(module)).open()
    tf32 = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    psnr32, psnr16, worst = [], [], 0.0
    try:
        for hr in hr_images:
            hr = hr.to(device, torch.float32)
            lr = F.interpolate(hr, scale_factor=0.5, mode="bicubic", antialias=True,
                               align_corners=False).clamp_(0, 1)
            with torch.inference_mode():
                full = reference(lr).clamp(0, 1)
            half = engine({"image": lr})[OUTPUT_NAMES["sr"]].clamp(0, 1)
            psnr32.append(_psnr(full, hr))
            psnr16.append(_psnr(half, hr))
            worst = max(worst, float((full - half).abs().max()))
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = tf32
        engine.close()
    mean32, mean16 = sum(psnr32) / len(psnr32), sum(psnr16) / len(psnr16)
    return {"psnr_fp32_db": mean32, "psnr_fp16_db": mean16,
            "drift_db": abs(mean32 - mean16), "max_abs_diff": worst,
            "images": float(len(hr_images))}


def _psnr(image: torch.Tensor, reference: torch.Tensor) -> float:
    mse = float(torch.mean((image.float() - reference.float()) ** 2))
    return float("inf") if mse == 0 else 10.0 * math.log10(1.0 / mse)
