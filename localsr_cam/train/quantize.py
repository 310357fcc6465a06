"""int8 ONNX of a trained SR net for the CPU backend (static quantization, calibrated).

FastUNet's half-resolution convolutions (the stride-2 ``down`` conv and the ``body``
blocks, 32 channels in and out) are 60 % of its arithmetic; as int8 they run about three
times faster in ONNX Runtime on a CPU with VNNI (5.1 → 1.6 ms each on a 352×360 box).
So does the LR-resolution tail once its output channels are a multiple of 16 (the export
form pads them, :class:`~localsr_cam.models.unet.FastUNetExportForm`): with 12 or 15 its
int8 conv was slower than float32, with 16 the SR call is 2.6 ms shorter (23.5 → 20.9
ms). The head (3 channels in) and the transposed convs stay float32. Which layers: the
model's ``int8_layers`` (module names); a model without it has no int8 form.

Calibration (the activation ranges): LR regions sampled exactly as training samples
them — the random camera model of :mod:`localsr_cam.measure.degrade` on training images,
with their estimated levels — so the ranges cover clean, noisy and JPEG frames alike.
Weights: int8 per output channel; activations: uint8 per tensor over the
:data:`CALIBRATION_PERCENTILE` range (QDQ format, which ONNX Runtime fuses into
``QLinearConv``).
"""

from __future__ import annotations

import contextlib
import io
import logging
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from localsr_cam.errors import ConfigError, ModelError
from localsr_cam.paths import write_atomically
from localsr_cam.zoo.export import INPUT_NAME, LEVELS_NAME, OUTPUT_NAME, num_levels, ort_session

log = logging.getLogger(__name__)

CALIBRATION_REGIONS = 48
"""LR regions the activation ranges are measured on."""
CALIBRATION_REGION_PX = 192
"""HR side of each calibration region (a 96×96 LR input, as the training regions)."""
CALIBRATION_PERCENTILE = 99.99
"""Activation ranges span this percentile of the calibration values (both tails): the
rare extremes that min/max would cover cost the common values resolution (validation,
worst image under area: +0.39 dB over bicubic with it, +0.36 with min/max, +0.41 in
float32)."""
MIN_INT8_PSNR_DB = 45.0
"""The int8 output must match the float32 one to this PSNR (RGB in [0,1], over all
calibration regions) or it is refused; FastUNet: 60 dB, where a 0.1 dB change of the
gain over bicubic at 35 dB would need about 45."""


def int8_nodes(model: nn.Module, onnx_model: Any) -> list[str]:
    """Names of the ``Conv`` nodes of ``onnx_model`` (an ``onnx.ModelProto`` exported
    from ``model``) that belong to ``model.int8_layers``; raises :class:`ModelError` when
    the model declares none or none is found."""
    layers = tuple(getattr(model, "int8_layers", ()) or ())
    if not layers:
        raise ModelError(f"{type(model).__name__} has no int8 form (no int8_layers)")
    names = [node.name for node in onnx_model.graph.node if node.op_type == "Conv"
             and any(f"/{layer}/" in node.name or f"/{layer}." in node.name
                     for layer in layers)]
    if not names:
        raise ModelError(f"no Conv node of the exported {type(model).__name__} belongs to "
                         f"{', '.join(layers)}")
    return names


def calibration_feeds(images: Sequence[np.ndarray], levels: int, seed: int = 0,
                      count: int = CALIBRATION_REGIONS) -> list[dict[str, np.ndarray]]:
    """``count`` ONNX feeds: ``image`` 1×3×h×w float32 RGB in [0,1] (LR regions of the
    training distribution, see the module docstring) and, when ``levels`` K > 0, their
    estimated ``levels`` 1×K float32. ``images``: uint8 H×W×3 RGB HR images (regions of
    :data:`CALIBRATION_REGION_PX`, or the smallest image's side)."""
    from localsr_cam.train.data import PatchSampler

    smallest = min(min(image.shape[:2]) for image in images) // 2 * 2
    side = max(2, min(CALIBRATION_REGION_PX, smallest))  # small photos: their size
    sampler = PatchSampler(list(images), side, "webcam", seed, side)
    feeds = []
    for _ in range(count):
        lr, lv, _ = sampler.batch(1)
        feed = {INPUT_NAME: lr.numpy()}
        if levels:
            feed[LEVELS_NAME] = lv.numpy()
        feeds.append(feed)
    return feeds


class _Feeds:
    """onnxruntime's CalibrationDataReader protocol over a list of feeds."""

    def __init__(self, feeds: list[dict[str, np.ndarray]]) -> None:
        self._feeds: Iterator[dict[str, np.ndarray]] = iter(feeds)

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._feeds, None)


def quantize_sr(model: nn.Module, fp32_onnx: Path, out: Path,
                images: Sequence[np.ndarray], seed: int = 0) -> dict[str, Any]:
    """Write the int8 form of ``fp32_onnx`` (exported from ``model``) to ``out``
    (atomically) and return its manifest record (``"int8"``): quantized nodes,
    calibration, and the PSNR of the int8 output against the float32 one on the
    calibration regions (refused below :data:`MIN_INT8_PSNR_DB`). ``images``: uint8 RGB
    training images."""
    import onnx
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    nodes = int8_nodes(model, onnx.load(str(fp32_onnx)))
    feeds = calibration_feeds(images, num_levels(model), seed)
    with tempfile.TemporaryDirectory(prefix="localsr-int8-") as tmp:
        prepared, scratch = Path(tmp) / "prepared.onnx", Path(tmp) / "int8.onnx"
        # shape inference and graph clean-up first, as onnxruntime's quantizer expects
        quant_pre_process(str(fp32_onnx), str(prepared), skip_symbolic_shape=True)
        with contextlib.redirect_stdout(io.StringIO()):  # the calibrator prints progress
            quantize_static(str(prepared), str(scratch), _Feeds(feeds),
                            quant_format=QuantFormat.QDQ, per_channel=True,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                            nodes_to_quantize=nodes, calibrate_method=CalibrationMethod.Percentile,
                            extra_options={"CalibPercentile": CALIBRATION_PERCENTILE})
        data = scratch.read_bytes()
    psnr = int8_psnr(fp32_onnx, data, feeds)
    if psnr < MIN_INT8_PSNR_DB:
        raise ModelError(f"the int8 form of {fp32_onnx.name} matches float32 to only "
                         f"{psnr:.1f} dB PSNR (at least {MIN_INT8_PSNR_DB:g}); not written")
    write_atomically(out, data)
    log.debug("wrote %s: %d int8 convs, %.2f dB PSNR against float32", out, len(nodes), psnr)
    return {"nodes": nodes,
            "format": "QDQ, weights int8 per channel, activations uint8 per tensor "
                      f"(percentile {CALIBRATION_PERCENTILE} calibration)",
            "calibration": {"regions": len(feeds), "region_px": CALIBRATION_REGION_PX,
                            "degradation": "webcam (localsr_cam.measure.degrade)",
                            "seed": seed},
            "psnr_vs_fp32_db": round(psnr, 2)}


def int8_psnr(fp32_onnx: Path, int8_onnx: Path | bytes,
              feeds: Sequence[dict[str, np.ndarray]]) -> float:
    """PSNR (dB, peak 1) of the int8 ``sr`` output against the float32 one over all of
    ``feeds`` (ONNX Runtime, 1 thread); ``inf`` when they are equal."""
    reference = ort_session(fp32_onnx, threads=1)
    quantized = ort_session(int8_onnx, threads=1)
    squared, count = 0.0, 0
    for feed in feeds:
        expected = reference.run([OUTPUT_NAME], feed)[0]
        got = quantized.run([OUTPUT_NAME], feed)[0]
        squared += float(np.square(got.astype(np.float64) - expected).sum())
        count += expected.size
    mse = squared / max(count, 1)
    return float("inf") if mse == 0 else float(-10.0 * np.log10(mse))



class OrtSR(nn.Module):
    """An SR ONNX file in ONNX Runtime (1 thread) behind the torch module call the
    training code's :func:`~localsr_cam.train.trainer.evaluate` makes: ``(image N×3×h×w,
    levels N×K) → sr N×3×2h×2w``, float32 CPU tensors (no gradients)."""

    def __init__(self, path: Path | bytes) -> None:
        super().__init__()
        self.session = ort_session(path, threads=1)
        self.inputs = {node.name for node in self.session.get_inputs()}

    def forward(self, image: torch.Tensor, levels: torch.Tensor | None = None
                ) -> torch.Tensor:
        feed = {INPUT_NAME: image.detach().numpy()}
        if LEVELS_NAME in self.inputs and levels is not None:
            feed[LEVELS_NAME] = levels.detach().numpy()
        return torch.from_numpy(self.session.run([OUTPUT_NAME], feed)[0])


def quantize_shipped(name: str, data_dirs: Sequence[Path], seed: int = 0) -> dict[str, Any]:
    """(Re)make model ``name``'s int8 file in the engines folder from its shipped weights
    and float32 ONNX, calibrated on the images in ``data_dirs``; records it in the
    manifest entry (``files.onnx_int8`` and ``int8``) and returns the record."""
    from localsr_cam.paths import sha256_file
    from localsr_cam.train.data import read_rgb, split_holdout
    from localsr_cam.zoo.artifacts import (
        artifact_path,
        engines_dir,
        read_manifest,
        write_manifest_entry,
    )
    from localsr_cam.zoo.loading import load_model
    from localsr_cam.zoo.registry import model_spec

    spec = model_spec(name)
    if spec.onnx_int8 is None:
        raise ModelError(f"model {name!r} has no int8 form")
    paths, _ = split_holdout(data_dirs, [], "")
    if not paths:
        raise ConfigError(f"no images in {', '.join(map(str, data_dirs))} to calibrate on")
    images = [read_rgb(p) for p in paths]
    out = engines_dir() / spec.onnx_int8
    record = quantize_sr(load_model(name), artifact_path(name, "onnx"), out, images, seed)
    record["calibration"]["data"] = [str(d) for d in data_dirs]
    entry = dict(read_manifest().get(name, {}))
    files = dict(entry.get("files", {}))
    files["onnx_int8"] = {"file": out.name, "sha256": sha256_file(out)}
    entry["files"], entry["int8"] = files, record
    write_manifest_entry(name, entry)
    return record


def training_data(name: str) -> list[Path]:
    """The image folders model ``name``'s manifest entry says it was trained on (the
    default calibration data); a :class:`ConfigError` when none of them is here."""
    from localsr_cam.zoo.artifacts import read_manifest

    training = read_manifest().get(name, {}).get("training", {})
    recorded = training.get("data", []) if isinstance(training, dict) else []
    folders = [Path(d) for d in ([recorded] if isinstance(recorded, str) else recorded)]
    present = [d for d in folders if d.is_dir()]
    if not present:
        raise ConfigError(f"the folders {name!r} was trained on "
                          f"({', '.join(map(str, folders)) or 'none recorded'}) are not "
                          "here; pass --data FOLDER of photos to calibrate on")
    return present
