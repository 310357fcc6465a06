"""Export a super-resolution network to ONNX and check it against PyTorch.

The exported graph follows the engine contract: input ``image`` (N×3×h×w float32 RGB in
[0,1], the LR image) and, for a degradation-aware net, ``levels`` (N×K float32, see
:mod:`localsr_cam.process.estimate`), output ``sr`` (N×3×2h×2w float32), batch, height and
width dynamic, opset 17, one self-contained file (no external data). onnxruntime is imported
only inside the functions that need it.
"""

from __future__ import annotations

import logging
import statistics
import tempfile
import time
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from localsr_cam.errors import ModelError
from localsr_cam.paths import write_atomically

log = logging.getLogger(__name__)

OPSET = 17
INPUT_NAME = "image"
LEVELS_NAME = "levels"
OUTPUT_NAME = "sr"


def num_levels(model: nn.Module) -> int:
    """K, the degradation levels ``model`` takes (0: image only)."""
    return int(getattr(model, "levels", 0) or 0)


def export_sr_onnx(model: nn.Module, path: Path, sample_hw: tuple[int, int] = (48, 64)) -> None:
    """Write ``model`` (in eval mode) as ONNX to ``path``, atomically.

    Uses the TorchScript exporter with dynamic batch/height/width axes; the network's
    size arithmetic (crops, ceil-mode pooling) is traced as shape ops, so one graph
    serves every input size. ``sample_hw`` is only the tracing example's size.
    """
    model = model.eval()
    k = num_levels(model)
    export_module = getattr(model, "export_module", None)
    if export_module is not None:  # an equivalent graph that runs faster in ORT
        model = export_module().eval()
    args: tuple[torch.Tensor, ...] = (torch.rand(1, 3, *sample_hw),)
    names = [INPUT_NAME]
    axes: dict[str, dict[int, str]] = {INPUT_NAME: {0: "batch", 2: "height", 3: "width"},
                                       OUTPUT_NAME: {0: "batch", 2: "height2", 3: "width2"}}
    if k:
        args += (torch.rand(1, k),)
        names.append(LEVELS_NAME)
        axes[LEVELS_NAME] = {0: "batch"}
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scratch = Path(tmp) / "model.onnx"
        torch.onnx.export(
            model, args, str(scratch),
            input_names=names, output_names=[OUTPUT_NAME], dynamic_axes=axes,
            opset_version=OPSET, dynamo=False, do_constant_folding=True,
        )
        write_atomically(Path(path), scratch.read_bytes())
    log.info("exported %s to %s", type(model).__name__, path)


def ort_session(path: Path | bytes, threads: int = 2) -> Any:
    """An onnxruntime CPU session: ``threads`` intra-op threads, 1 inter-op thread."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # as the product's OrtEngine: idle pool threads do not spin (timings match the app)
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    source = str(path) if isinstance(path, Path) else path
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])


def parity(model: nn.Module, onnx_path: Path,
           sizes: Iterable[tuple[int, int]] = ((1, 1), (3, 5), (17, 33), (48, 64)),
           seed: int = 0) -> float:
    """Largest |ONNX Runtime − PyTorch| over random [0,1] inputs (and levels) of the
    given h×w sizes."""
    session = ort_session(onnx_path, threads=1)
    gen = torch.Generator().manual_seed(seed)
    worst = 0.0
    model = model.eval()
    k = num_levels(model)
    for h, w in sizes:
        image = torch.rand(1, 3, h, w, generator=gen)
        levels = torch.rand(1, k, generator=gen) * 2
        with torch.no_grad():
            expected = (model(image, levels) if k else model(image)).numpy()
        feed = {INPUT_NAME: image.numpy()}
        if k:
            feed[LEVELS_NAME] = levels.numpy()
        got = session.run([OUTPUT_NAME], feed)[0]
        if got.shape != expected.shape:
            raise ModelError(f"{onnx_path}: ONNX output {got.shape} != PyTorch "
                             f"{expected.shape} for input {h}x{w}")
        worst = max(worst, float(np.abs(got - expected).max()))
    return worst


def time_ort(session: Any, h: int, w: int, repeats: int = 20, warmup: int = 3,
             stat: str = "median") -> float:
    """Milliseconds of ``session`` on one 1×3×h×w float32 input, after warm-ups.

    ``stat`` is ``"median"`` or ``"min"`` over ``repeats`` runs; on a shared machine the
    minimum is the cost without interference, the median what a user would see.
    """
    image = np.random.default_rng(0).random((1, 3, h, w), dtype=np.float32)
    feed = {INPUT_NAME: image}
    for node in session.get_inputs():
        if node.name == LEVELS_NAME:
            feed[LEVELS_NAME] = np.full((1, node.shape[1]), 0.5, np.float32)
    for _ in range(warmup):
        session.run([OUTPUT_NAME], feed)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        session.run([OUTPUT_NAME], feed)
        times.append((time.perf_counter() - start) * 1e3)
    return min(times) if stat == "min" else statistics.median(times)
