"""Prepare the full-range face detector: MediaPipe wheel → ``.tflite`` → PyTorch → ONNX.

:func:`fetch_face` is what ``localsr-cam models fetch`` runs after the selfie models
(same wheel, same steps as :mod:`localsr_cam.zoo.selfie_fetch`, whose wheel and
manifest helpers it reuses):

1. skip when ``engines/face_full_range.pt|.onnx`` still match the manifest entry;
2. take ``face_detection_full_range_sparse.tflite`` from the pinned wheel (sha256
   checked), read it into :class:`~localsr_cam.models.face_detector.FaceDetector`;
3. export ONNX (opset 17, input ``image`` N×3×192×192, outputs ``regressors``
   N×2304×16 and ``scores`` N×2304×1, the batch dynamic so a frame's tiles run in one
   call);
4. verify PyTorch and ONNX Runtime against LiteRT on the original ``.tflite`` (raw
   outputs, max |Δ|) when ``ai_edge_litert`` is importable, else against values recorded
   from LiteRT (:data:`GOLDEN`); above :data:`PARITY_TARGET` is a warning, above
   :data:`PARITY_LIMIT` (a broken conversion) a refusal;
5. write the weights, the ONNX, then the manifest entry, each atomically.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
import warnings
from pathlib import Path
from typing import Any

from localsr_cam.errors import ModelError
from localsr_cam.zoo import artifacts, registry, selfie_fetch
from localsr_cam.zoo.litert import run_tflite

log = logging.getLogger(__name__)

NAME = "face"
SOURCE = selfie_fetch.SelfieSource(
    "mediapipe/modules/face_detection/face_detection_full_range_sparse.tflite",
    "2c3728e6da56f21e21a320433396fb06d40d9088f2247c05e5635a688d45dfe1")
#: Bump when the conversion changes what gets written; older entries are then rebuilt.
CONVERTER_VERSION = 1
ONNX_OPSET = 17
INPUT_SIZE = 192
OUTPUTS = ("regressors", "scores")
#: Design target for max |Δ| between our raw outputs and LiteRT's (regressors are in
#: input pixels, up to about ±200; scores are logits). Measured: about 1e-4.
PARITY_TARGET = 5e-4
#: Above this a conversion is refused (a real mistake gives |Δ| of pixels or more).
PARITY_LIMIT = 5e-3
VERIFY_IMAGES = ("astronaut", "camera", "chelsea")

#: Fallback reference without LiteRT: for each image of :data:`VERIFY_IMAGES` (prepared
#: by :func:`verification_batch`), LiteRT 2.3.0's best anchor, its logit and its 16
#: regressors, from the original ``.tflite``.
GOLDEN: dict[str, tuple[int, float, tuple[float, ...]]] = {
    "astronaut": (549, 2.312054, (
        -1.66927, -1.30605, 39.43955, 39.43496, -10.21175, -7.53254, 6.99368, -6.21302,
        -2.44044, 3.38518, -3.20505, 9.66080, -19.67947, -6.34602, 15.85589, -3.68810,
    )),
    "camera": (742, 2.159036, (
        -1.19283, -1.47647, 30.31785, 30.32388, -1.65198, -7.85374, 3.59170, -3.64003,
        3.96233, 4.19490, -1.50206, 7.68676, -17.67087, -13.80596, -2.40703, -4.79250,
    )),
    "chelsea": (1860, -2.752236, (
        -1.41158, -1.96312, 32.41018, 32.41368, -3.91472, -8.43113, 4.52115, -3.36097,
        -3.07034, -4.31445, -6.42239, 1.48838, -8.16085, -6.74153, 8.25902, 5.45331,
    )),
}


def verification_batch() -> Any:
    """The :data:`VERIFY_IMAGES` photos from ``skimage.data``, each stretched to 192×192:
    an N×3×192×192 float32 torch tensor, RGB in [-1, 1]."""
    import skimage.data
    import torch

    return torch.cat([selfie_fetch.resize_to_input(getattr(skimage.data, n)(),
                                                   (INPUT_SIZE, INPUT_SIZE)) * 2.0 - 1.0
                      for n in VERIFY_IMAGES])


def run_litert(tflite: bytes, images: Any) -> dict[str, Any] | None:
    """LiteRT's raw outputs ``{"regressors": N×2304×16, "scores": N×2304×1}`` (torch
    float32) for ``images`` (N×3×192×192), or ``None`` without ``ai_edge_litert``."""
    outputs = run_tflite(tflite, images)
    if outputs is None:
        return None
    return {"regressors": outputs["Identity"], "scores": outputs["Identity_1"]}


def run_onnx(onnx_model: bytes, images: Any, threads: int = 2) -> dict[str, Any]:
    """ONNX Runtime (CPU) raw outputs for the whole batch ``images`` in one call."""
    import torch

    from localsr_cam.runtime.ort import cpu_session

    results = cpu_session(onnx_model, threads).run(list(OUTPUTS), {"image": images.numpy()})
    return {role: torch.from_numpy(value) for role, value in zip(OUTPUTS, results, strict=True)}


def golden_values(outputs: dict[str, Any]) -> dict[str, tuple[int, float, tuple[float, ...]]]:
    """For each image: its best anchor, that anchor's logit and regressors (the shape of
    :data:`GOLDEN`)."""
    values = {}
    for k, image in enumerate(VERIFY_IMAGES):
        logits = outputs["scores"][k, :, 0]
        best = int(logits.argmax())
        values[image] = (best, float(logits[best]),
                         tuple(float(v) for v in outputs["regressors"][k, best]))
    return values


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _figure(value: float) -> float:
    """Three significant digits: stable manifest bytes for the same result."""
    return float(f"{value:.2e}")


def _max_diff(output: dict[str, Any], reference: dict[str, Any]) -> float:
    return max(float((output[role] - reference[role]).abs().max()) for role in OUTPUTS)


def golden_diff(output: dict[str, Any]) -> float:
    """Largest |Δ| of ``output`` (raw outputs for :func:`verification_batch`) from
    :data:`GOLDEN` at each image's recorded best anchor."""
    worst = 0.0
    for k, image in enumerate(VERIFY_IMAGES):
        best, logit, regressors = GOLDEN[image]
        worst = max(worst, abs(float(output["scores"][k, best, 0]) - logit),
                    max(abs(float(a) - b) for a, b in zip(output["regressors"][k, best],
                                                          regressors, strict=True)))
    return worst


def compare(tflite: bytes, images: Any, outputs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Compare each runtime's raw ``outputs`` with the reference; the manifest record.
    :class:`ModelError` when one is beyond :data:`PARITY_LIMIT`."""
    reference = run_litert(tflite, images)
    record: dict[str, Any] = {"images": list(VERIFY_IMAGES), "target": PARITY_TARGET,
                              "outputs": list(OUTPUTS)}
    if reference is not None:
        record["reference"] = "LiteRT (ai_edge_litert) on the original .tflite"
        for runtime, output in outputs.items():
            record[f"max_abs_diff_{runtime}"] = _figure(_max_diff(output,
                                                                               reference))
    elif GOLDEN:
        record["reference"] = "best-anchor outputs recorded from LiteRT 2.3.0"
        for runtime, output in outputs.items():
            record[f"max_abs_diff_{runtime}"] = _figure(golden_diff(output))
    else:
        raise ModelError("cannot verify the face detector: install ai-edge-litert "
                         "(`pip install ai-edge-litert`)")
    selfie_fetch.enforce_parity(NAME, record, outputs, PARITY_TARGET, PARITY_LIMIT)
    return record


def export_onnx(model: Any) -> bytes:
    """ONNX bytes of the detector: ``image`` N×3×192×192 → ``regressors``, ``scores``,
    batch dynamic, opset 17 (TorchScript exporter, as for the selfie models)."""
    import torch

    example = torch.zeros(2, 3, INPUT_SIZE, INPUT_SIZE)
    axes = {name: {0: "batch"} for name in ("image", *OUTPUTS)}
    with tempfile.TemporaryDirectory(prefix="localsr-onnx-") as scratch:
        path = Path(scratch) / "model.onnx"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(model, (example,), path, input_names=["image"],
                              output_names=list(OUTPUTS), dynamic_axes=axes,
                              opset_version=ONNX_OPSET, dynamo=False,
                              do_constant_folding=True)
        return path.read_bytes()


def build_from_tflite(tflite: bytes, source: str = "") -> selfie_fetch.BuiltModel:
    """Convert and verify the detector from its ``.tflite`` bytes; nothing is written."""
    import torch

    from localsr_cam.models import face_detector

    spec = registry.MODELS[NAME]
    log.info("%s: reading the .tflite into PyTorch", NAME)
    model = face_detector.load_tflite(tflite)
    images = verification_batch()
    with torch.inference_mode():
        torch_out = dict(zip(OUTPUTS, model(images), strict=True))
    log.info("%s: exporting ONNX (opset %d)", NAME, ONNX_OPSET)
    try:
        onnx_bytes = export_onnx(model)
        onnx_out = run_onnx(onnx_bytes, images)
    except Exception as exc:
        raise ModelError(f"{NAME}: ONNX export failed ({str(exc).splitlines()[0]})") from exc
    log.info("%s: verifying against the reference runtime", NAME)
    verification = compare(tflite, images, {"torch": torch_out, "onnx": onnx_out})
    weights = selfie_fetch.state_dict_bytes(model)
    entry = {
        "kind": spec.kind,
        "description": spec.description,
        "weights": spec.weights,
        "onnx": spec.onnx,
        "opset": ONNX_OPSET,
        "converter": CONVERTER_VERSION,
        "input": {"name": "image", "shape": ["batch", 3, INPUT_SIZE, INPUT_SIZE],
                  "dtype": "float32", "layout": "RGB in [-1,1], NCHW"},
        "output": {"regressors": {"shape": ["batch", 2304, 16], "dtype": "float32",
                                  "layout": "box cx, cy, w, h, 6 keypoints x, y; input "
                                            "pixels relative to the anchor"},
                   "scores": {"shape": ["batch", 2304, 1], "dtype": "float32",
                              "layout": "logits"}},
        "source": {"package": selfie_fetch.MEDIAPIPE_REQUIREMENT,
                   "file": source or SOURCE.member, "license": "Apache-2.0"},
        "sha256": {"tflite": _sha256(tflite),
                   "weights": _sha256(weights),
                   "onnx": _sha256(onnx_bytes)},
        "verification": verification,
    }
    log.info("%s: max |Δ| torch %.1e, onnx %.1e (%s)", NAME,
             verification["max_abs_diff_torch"], verification["max_abs_diff_onnx"],
             verification["reference"])
    return selfie_fetch.BuiltModel(NAME, weights, onnx_bytes, entry)


def entry_problem(directory: Path) -> str | None:
    """Why the detector must be (re)built in ``directory``, or ``None`` if it need not."""
    return selfie_fetch.converted_entry_problem(NAME, directory, CONVERTER_VERSION,
                                                SOURCE.sha256)


def fetch_face(engines_dir: Path | None = None, cache_dir: Path | None = None,
               wheel: Path | None = None) -> list[str]:
    """Make ``engines/face_full_range.pt|.onnx`` current; ``["face"]`` when rebuilt,
    ``[]`` when already current (then no wheel or network is needed)."""
    engines_dir = engines_dir or artifacts.engines_dir()
    if wheel is not None:
        selfie_fetch.check_wheel(wheel)
    problem = entry_problem(engines_dir)
    if problem is None:
        log.info("%s: up to date in %s", NAME, engines_dir)
        return []
    log.info("%s: needs building (%s)", NAME, problem)
    wheel = wheel if wheel is not None else selfie_fetch.ensure_wheel(cache_dir)
    tflite = selfie_fetch.read_tflite_from_wheel(wheel, NAME, SOURCE)
    built = build_from_tflite(tflite, f"{selfie_fetch.MEDIAPIPE_REQUIREMENT}:{SOURCE.member}")
    selfie_fetch.write_model(built, engines_dir)
    return [NAME]

