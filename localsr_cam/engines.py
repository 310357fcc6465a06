"""Engines: one interface over every backend, and the artifact manifest.

An :class:`Engine` maps named torch tensors to named torch tensors. The names are fixed
per model kind, whatever the backend:

- segmenters: ``image`` (N×3×H×W float32 RGB in [0,1]) → ``mask`` (N×1×H×W float32 in
  [0,1], already a probability);
- super-resolvers: ``image`` (N×3×h×w float32 RGB in [0,1], the low-resolution input)
  → ``sr`` (N×3×2h×2w float32 RGB, not clamped).

Backends live in :mod:`localsr_cam.runtime` (``ort``, ``torch``, ``tensorrt``) and are
imported only when chosen. Model artifacts (ONNX, weights, engines) live in the
``engines/`` folder of the project; ``engines/manifest.json`` records for each model its
files, sha256, shapes and measured figures.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from localsr_cam.errors import BackendUnavailableError, ConfigError, ModelError

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.json"
FETCH_COMMAND = "localsr-cam models fetch"


class Engine(Protocol):
    """A loaded model on one backend. Call it with named tensors, get named tensors.

    Inputs must live on ``device``; outputs are new tensors owned by the caller unless a
    backend documents otherwise. ``close()`` releases sessions and device memory and is
    safe to call twice.
    """

    name: str
    backend: str
    device: torch.device

    def __call__(self, inputs: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]: ...

    def close(self) -> None: ...


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """What the project knows about one model, before any file is read.

    ``kind`` is ``"segment"`` or ``"sr"``; ``onnx`` and ``weights`` are file names inside
    the engines folder (``None`` where the model has no such file); ``build_command`` is
    what a user runs to (re)create the files.
    """

    name: str
    kind: str
    onnx: str | None
    weights: str | None
    build_command: str
    description: str


MODELS: dict[str, ModelSpec] = {
    "selfie": ModelSpec(
        "selfie", "segment", "selfie.onnx", "selfie.pt", FETCH_COMMAND,
        "MediaPipe selfie segmenter, general (256×256 input)",
    ),
    "selfie-landscape": ModelSpec(
        "selfie-landscape", "segment", "selfie_landscape.onnx", "selfie_landscape.pt",
        FETCH_COMMAND, "MediaPipe selfie segmenter, landscape (144×256 input)",
    ),
    "maskrcnn": ModelSpec(
        "maskrcnn", "segment", None, None,
        "localsr-cam run --segmenter maskrcnn --weights PATH",
        "torchvision Mask R-CNN (ResNet-50 FPN v2), the paper's segmenter",
    ),
    "fast": ModelSpec(
        "fast", "sr", "fast_unet.onnx", "fast_unet.pt",
        "localsr-cam train --model fast",
        "FastUNet: LR-space residual U-Net with PixelShuffle, for real time",
    ),
    "paper": ModelSpec(
        "paper", "sr", "paper_unet.onnx", "paper_unet.pt",
        "localsr-cam train --model paper",
        "PaperUNet: the paper's vanilla U-Net on the bicubic-resized input",
    ),
}

SHIPPED_MODELS = ("fast", "paper")
"""Models whose files are part of the project (trained by us, tracked in git)."""


def repair_hint(name: str) -> str:
    """What fixes a corrupt or changed file of model ``name``, as a clause.

    A shipped model is restored, not retrained (training takes minutes and data
    folders); a converted one is rebuilt by its command.
    """
    spec = model_spec(name)
    if name in SHIPPED_MODELS:
        files = " ".join(f"engines/{f}" for f in (spec.onnx, spec.weights) if f)
        return (f"restore the shipped file: `git checkout -- {files}` in the project "
                "folder, or reinstall localsr-cam")
    return f"rebuild it with `{spec.build_command}`"


SR_BASELINES = ("bicubic", "bilinear")
SR_MODELS = ("fast", "paper", *SR_BASELINES)
SEGMENTERS = ("auto", "selfie", "selfie-landscape", "maskrcnn")
BACKENDS = ("auto", "cpu", "torch", "cuda", "tensorrt")
"""``cpu``: ONNX Runtime on the CPU; ``torch``: PyTorch on the CPU; ``cuda``: PyTorch on
a CUDA GPU; ``tensorrt``: TensorRT engines on a CUDA GPU; ``auto``: the best available."""


def engines_dir() -> Path:
    """The folder holding model artifacts: ``$LOCALSR_ENGINES`` or ``<project>/engines``."""
    override = os.environ.get("LOCALSR_ENGINES")
    if override:
        return Path(override)
    return Path(__file__).resolve().parent.parent / "engines"


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_manifest(directory: Path | None = None) -> dict[str, dict[str, Any]]:
    """The manifest as ``{model name: entry}``; empty when the file does not exist."""
    path = (directory or engines_dir()) / MANIFEST_NAME
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelError(f"{path} is not valid JSON ({exc}); delete it and run "
                         f"`{FETCH_COMMAND}`") from exc
    if not isinstance(data, dict):
        raise ModelError(f"{path} does not hold a JSON object; delete it and run "
                         f"`{FETCH_COMMAND}`")
    return data


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename.

    A reader never sees a half-written file, and a failed write leaves the old file.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; artifacts are ordinary files
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_manifest_entry(name: str, entry: Mapping[str, Any],
                         directory: Path | None = None) -> None:
    """Set one model's entry in the manifest (other entries are kept).

    The file is written atomically with sorted keys, so the same figures give the same
    bytes and a committed manifest stays unchanged by a re-run.
    """
    directory = directory or engines_dir()
    manifest = read_manifest(directory)
    manifest[name] = dict(entry)
    text = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
    write_atomically(directory / MANIFEST_NAME, text.encode())


def recorded_sha256(entry: Mapping[str, Any], role: str) -> str | None:
    """The sha256 a manifest entry records for its ``"onnx"`` or ``"weights"`` file.

    Converted models record ``{"sha256": {role: hash}}``, trained ones
    ``{"files": {role: {"file": name, "sha256": hash}}}``; ``None`` when neither does.
    """
    hashes = entry.get("sha256")
    if isinstance(hashes, Mapping) and isinstance(hashes.get(role), str):
        return str(hashes[role])
    files = entry.get("files")
    record = files.get(role) if isinstance(files, Mapping) else None
    if isinstance(record, Mapping) and isinstance(record.get("sha256"), str):
        return str(record["sha256"])
    return None


def model_spec(name: str) -> ModelSpec:
    """The :class:`ModelSpec` for ``name``, or a :class:`ConfigError` listing the choices."""
    try:
        return MODELS[name]
    except KeyError:
        raise ConfigError(f"unknown model {name!r}; choose one of: "
                          f"{', '.join(sorted(MODELS))}") from None


def artifact_path(name: str, which: str) -> Path:
    """Path of a model's ``"onnx"`` or ``"weights"`` file, checked to exist.

    Raises :class:`ModelError` naming the file and the command that builds it.
    """
    spec = model_spec(name)
    filename = spec.onnx if which == "onnx" else spec.weights
    if filename is None:
        raise ModelError(f"model {name!r} has no {which} file")
    path = engines_dir() / filename
    if not path.is_file():
        raise ModelError(f"model {name!r} is not prepared yet: {path} is missing; "
                         f"run `{spec.build_command}`")
    return path


TENSORRT_INSTALL_HINT = ("install it with `pip install tensorrt` (NVIDIA's wheels, CUDA 12 "
                         "or 13) on a machine with an NVIDIA GPU and driver")


def tensorrt_problem() -> str | None:
    """Why TensorRT itself cannot be used here (one line), or ``None`` when it can.

    It imports TensorRT (only when asked: ``auto`` and ``tensorrt`` backends), so a broken
    install or the bare ``tensorrt`` folder of the type stubs counts as missing.
    """
    try:
        import tensorrt as trt
    except (ImportError, OSError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return f"TensorRT is not installed ({reason}); {TENSORRT_INSTALL_HINT}"
    if not hasattr(trt, "Builder"):
        return f"only TensorRT's type stubs are installed, not TensorRT; {TENSORRT_INSTALL_HINT}"
    return None


def tensorrt_missing() -> str | None:
    """Why the TensorRT backend cannot run here (TensorRT, then CUDA), or ``None``."""
    return tensorrt_problem() or cuda_missing()


def cuda_missing() -> str | None:
    """Why the CUDA backend cannot run here, or ``None`` when it can."""
    import torch

    if not torch.cuda.is_available():
        return "no CUDA GPU is available to PyTorch"
    return None


@functools.cache
def resolve_backend(requested: str) -> str:
    """The backend to use for ``requested``; ``auto`` tries tensorrt → cuda → cpu.

    An explicit backend that cannot run here raises :class:`BackendUnavailableError`
    with one line saying what is missing. The choice for ``auto`` is logged once.
    """
    checks = {"tensorrt": tensorrt_missing, "cuda": cuda_missing}
    if requested == "auto":
        reasons = []
        for candidate in ("tensorrt", "cuda"):
            missing = checks[candidate]()
            if missing is None:
                log.info("backend auto: using %s", candidate)
                return candidate
            reasons.append(f"{candidate}: {missing}")
        log.info("backend auto: using cpu (ONNX Runtime) because %s", "; ".join(reasons))
        return "cpu"
    if requested in checks:
        missing = checks[requested]()
        if missing is not None:
            raise BackendUnavailableError(f"backend {requested!r} is unavailable: {missing}")
    if requested not in BACKENDS:
        raise ConfigError(f"unknown backend {requested!r}; choose one of: {', '.join(BACKENDS)}")
    return requested


def open_engine(name: str, backend: str, threads: int = 2, weights: str | None = None
                ) -> Engine:
    """Load model ``name`` on a resolved ``backend`` and return the opened engine.

    ``threads``: CPU threads for ONNX Runtime / PyTorch on the CPU. ``weights``: the Mask
    R-CNN weights file. Missing or corrupt artifacts raise :class:`ModelError` naming the
    file and the command that rebuilds it.
    """
    model_spec(name)  # an unknown name is a ConfigError listing the choices
    if name == "maskrcnn":
        from localsr_cam.models.maskrcnn import MaskRCNNEngine

        device = "cuda" if backend in ("cuda", "tensorrt") else "cpu"
        return MaskRCNNEngine(weights, device=device, threads=threads).open()
    if backend == "cpu":
        from localsr_cam.runtime.ort import OrtEngine

        return OrtEngine(name, artifact_path(name, "onnx"), threads, repair_hint(name)).open()
    if backend in ("torch", "cuda"):
        from localsr_cam.runtime.torch import TorchEngine

        return TorchEngine(name, "cuda" if backend == "cuda" else "cpu", threads).open()
    if backend == "tensorrt":
        from localsr_cam.runtime.tensorrt import TensorRTEngine

        return TensorRTEngine(name, artifact_path(name, "onnx")).open()
    raise ConfigError(f"unknown backend {backend!r}; resolve it first "
                      f"(resolve_backend) to one of: cpu, torch, cuda, tensorrt")
