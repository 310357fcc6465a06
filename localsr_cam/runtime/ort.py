"""ONNX Runtime backend: the CPU default (and CUDA where the GPU provider is installed).

Inputs are torch tensors; on the CPU they are handed to ONNX Runtime as numpy views of
the same memory (no copy), and the outputs come back as torch views of ONNX Runtime's
arrays, owned by the caller.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from localsr_cam.errors import ModelError
from localsr_cam.models.chroma import GATE_FROM, JPEG_LEVEL
from localsr_cam.runtime.base import INPUT_NAME, LEVELS_NAME
from localsr_cam.runtime.graph_edits import (
    with_subpixel_output,
    without_chroma_step,
    without_odd_size_crop,
)

log = logging.getLogger(__name__)


def cpu_session(model: Path | bytes, threads: int = 2) -> Any:
    """An ``onnxruntime.InferenceSession`` on the CPU, set up the one way the project runs
    ONNX: ``threads`` intra-op threads, one inter-op thread, every graph optimization,
    warnings and errors only, and idle pool threads that sleep instead of spinning (a
    spinning pool starves the capture and output threads, and would make tools time
    something the app does not do). ``model``: a file or the ONNX bytes. onnxruntime's
    own errors pass through."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    source = str(model) if isinstance(model, Path) else model
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])


class OrtEngine:
    """An ONNX model in an ``onnxruntime.InferenceSession``.

    ``threads`` sets intra-op threads (the pipeline's other threads need the rest of a
    small CPU). ``repair`` is the clause that says how to fix a corrupt file.
    ``precision``: what the file computes in (``fp32``, or ``int8`` for a quantized SR
    net), for reports.

    An SR file that ends in a pixel shuffle is loaded without it
    (:func:`~localsr_cam.runtime.graph_edits.with_subpixel_output`): the engine gives
    ``sr_planes`` instead of ``sr``. An SR file with the JPEG chroma step also gets a
    session without it (:func:`~localsr_cam.runtime.graph_edits.without_chroma_step`),
    which serves calls whose JPEG levels are all under the step's gate
    (:data:`~localsr_cam.models.chroma.GATE_FROM`): a clean, raw (YUYV, NV12) or
    near-lossless camera, where the step leaves the image as it is. And an SR file
    whose ``up`` step is followed by an odd-size crop serves inputs of even height and
    width (all the pipeline's crops) without it
    (:func:`~localsr_cam.runtime.graph_edits.without_odd_size_crop`); sessions of the
    graph as it is are made at the first odd-sized input.
    """

    backend = "cpu"

    def __init__(self, name: str, path: Path, threads: int = 2, repair: str = "",
                 precision: str = "fp32") -> None:
        self.name = name
        self.precision = precision
        self.path = path
        self.threads = threads
        self.repair = repair
        self.device = torch.device("cpu")
        self._session: Any = None
        self._outputs: list[str] = []
        self._inputs: set[str] = set()
        self._levels = 0  # K of a degradation-aware SR model's ``levels`` input
        self._unsmoothed: Any = None  # the session without the JPEG chroma step
        self._cropping: bytes | None = None  # the graph with its odd-size crop, if cut
        self._odd_sizes: tuple[Any, Any] | None = None  # its sessions, once needed

    def open(self) -> OrtEngine:
        try:
            data = Path(self.path).read_bytes()  # once: the session and the bypass read it
            data = with_subpixel_output(data) or data
            even = without_odd_size_crop(data)
            self._cropping = data if even is not None else None
            self._odd_sizes = None
            data = even or data
            self._session = cpu_session(data, self.threads)
        except Exception as exc:  # onnxruntime raises its own untyped errors
            hint = f"; {self.repair}" if self.repair else ""
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc)
            raise ModelError(f"{self.path} is not a loadable ONNX model ({first_line}){hint}"
                             ) from None
        self._outputs = [o.name for o in self._session.get_outputs()]
        self._inputs = {i.name for i in self._session.get_inputs()}
        self._levels = 0
        for node in self._session.get_inputs():
            if node.name == LEVELS_NAME:
                self._levels = int(node.shape[-1])
        self._unsmoothed = self._without_chroma_step(data)
        return self

    def _without_chroma_step(self, data: bytes) -> Any:
        """A session of ``data`` with the chroma step bypassed, or None (no such step)."""
        bypassed = without_chroma_step(data) if self._levels > JPEG_LEVEL else None
        return None if bypassed is None else cpu_session(bypassed, self.threads)

    def _odd_size_sessions(self) -> tuple[Any, Any]:
        """The (session, chroma-step bypass) pair of the graph with its odd-size crop,
        made at the first call that needs it."""
        assert self._cropping is not None
        if self._odd_sizes is None:
            self._odd_sizes = (cpu_session(self._cropping, self.threads),
                               self._without_chroma_step(self._cropping))
        return self._odd_sizes

    def __call__(self, inputs: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Inputs the model does not take are left out: ``levels`` reaches only a
        degradation-aware SR model (an older, blind export has ``image`` alone); such a
        model given no ``levels`` reads zeros (a clean frame), as the torch backend does."""
        feeds = {name: tensor.detach().contiguous().numpy() for name, tensor in inputs.items()
                 if name in self._inputs}
        if self._levels and LEVELS_NAME not in feeds:
            batch = inputs[INPUT_NAME].shape[0]
            feeds[LEVELS_NAME] = np.zeros((batch, self._levels), np.float32)
        session, unsmoothed = self._session, self._unsmoothed
        if self._cropping is not None and any(side % 2 for side in feeds[INPUT_NAME].shape[-2:]):
            session, unsmoothed = self._odd_size_sessions()
        if unsmoothed is not None \
                and float(feeds[LEVELS_NAME][:, JPEG_LEVEL].max()) < GATE_FROM:
            session = unsmoothed  # the chroma step would change nothing
        results = session.run(self._outputs, feeds)
        return {name: torch.from_numpy(value) for name, value in zip(self._outputs, results,
                                                                    strict=True)}

    def close(self) -> None:
        self._session = self._unsmoothed = self._odd_sizes = None
