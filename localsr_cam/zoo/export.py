"""Export networks to ONNX (the one exporter of the project) and check them.

Every exported graph follows the engine contract: input ``image`` (N×3×H×W float32 RGB
in [0,1]) and, for a degradation-aware SR net, ``levels`` (N×K float32, see
:mod:`localsr_cam.process.estimate`), output ``mask`` or ``sr``; opset 17, TorchScript
exporter, one self-contained file (no external data). Super-resolution graphs have dynamic
batch, height and width; segmenters a fixed input. onnxruntime is imported only inside the
functions that need it.
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


def onnx_bytes(model: nn.Module, input_hw: tuple[int, int], output: str,
               dynamic: bool, levels: int = 0) -> bytes:
    """``model`` (put in eval mode) as ONNX bytes for a 1×3×H×W ``image`` input (and,
    when ``levels`` K > 0, a second input ``levels``, 1×K, dynamic batch).

    TorchScript exporter (``dynamo=False``): at opset 17 it gives a plain graph, where the
    dynamo exporter emits opset 18 and cannot convert it down. ``dynamic``: batch,
    height and width are dynamic axes (the network's size arithmetic, crops and
    ceil-mode pooling, is traced as shape ops, so one graph serves every size; then
    ``input_hw`` is only the tracing example's size); else the input is fixed at it.
    """
    model = model.eval()
    axes = None
    if dynamic:
        axes = {INPUT_NAME: {0: "batch", 2: "height", 3: "width"},
                output: {0: "batch", 2: "height2", 3: "width2"}}
    sample = torch.rand(1, 3, *input_hw) if dynamic else torch.zeros(1, 3, *input_hw)
    args: tuple[torch.Tensor, ...] = (sample,)
    names = [INPUT_NAME]
    if levels:
        args += (torch.rand(1, levels),)
        names.append(LEVELS_NAME)
        if axes is not None:
            axes[LEVELS_NAME] = {0: "batch"}
    with tempfile.TemporaryDirectory(prefix="localsr-onnx-") as tmp, \
            warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notices
        scratch = Path(tmp) / "model.onnx"
        torch.onnx.export(model, args, str(scratch), input_names=names,
                          output_names=[output], dynamic_axes=axes, opset_version=OPSET,
                          dynamo=False, do_constant_folding=True)
        return scratch.read_bytes()


def export_sr_onnx(model: nn.Module, path: Path, sample_hw: tuple[int, int] = (48, 64)) -> None:
    """Write super-resolution ``model`` as ONNX to ``path`` (atomically), with dynamic
    batch, height and width; ``sample_hw`` is only the tracing example's size. A model
    with an ``export_module()`` is exported as that equivalent graph (faster in ORT). A
    degradation-aware model (``model.levels`` K > 0) gets the ``levels`` input too."""
    model = model.eval()
    k = num_levels(model)
    export_module = getattr(model, "export_module", None)
    if export_module is not None:
        model = export_module()
    write_atomically(Path(path), onnx_bytes(model, sample_hw, OUTPUT_NAME, dynamic=True,
                                            levels=k))
    log.info("exported %s to %s", type(model).__name__, path)


def ort_session(path: Path | bytes, threads: int = 2) -> Any:
    """The product's ONNX Runtime CPU session (:func:`localsr_cam.runtime.ort.cpu_session`)."""
    from localsr_cam.runtime.ort import cpu_session

    return cpu_session(path, threads)


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
