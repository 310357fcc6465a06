"""``localsr-cam models list``: one row per registered model with its file status."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from localsr_cam.paths import sha256_file
from localsr_cam.zoo import face_fetch
from localsr_cam.zoo.artifacts import (
    engines_dir,
    missing_files,
    read_manifest,
    recorded_sha256,
)
from localsr_cam.zoo.registry import MODELS, QUANTIZE_COMMAND
from localsr_cam.zoo.selfie_fetch import SOURCES, entry_problem


def _status(name: str, directory: Path, entry: dict[str, Any] | None) -> str:
    spec = MODELS[name]
    if missing_files(name, directory):
        return "missing"
    if entry is None:
        return "unverified"
    for role, filename in (("weights", spec.weights), ("onnx", spec.onnx),
                           ("onnx_int8", spec.onnx_int8)):
        expected = recorded_sha256(entry, role)
        if filename and expected and (directory / filename).is_file() \
                and sha256_file(directory / filename) != expected:
            return "modified"
    if name in SOURCES and entry_problem(name, directory) is not None:
        return "outdated"
    if name == face_fetch.NAME and face_fetch.entry_problem(directory) is not None:
        return "outdated"
    return "ready"


def _int8_details(name: str, directory: Path) -> str:
    """Whether the int8 file the cpu backend prefers is there (it falls back to float32
    without it)."""
    int8 = MODELS[name].onnx_int8
    if int8 is None:
        return ""
    if (directory / int8).is_file():
        return f"; int8 for the cpu backend: {int8}"
    return f"; no int8 file for the cpu backend (runs float32): `{QUANTIZE_COMMAND} {name}`"


def _details(name: str, entry: dict[str, Any] | None) -> str:
    details = MODELS[name].description
    verification = (entry or {}).get("verification")
    if isinstance(verification, dict) and "max_abs_diff_onnx" in verification:
        details += (f"; max |Δ| vs reference: torch {verification['max_abs_diff_torch']:.1e},"
                    f" onnx {verification['max_abs_diff_onnx']:.1e}")
    return details


def list_models(folder: Path | None = None) -> list[tuple[str, str, str, str]]:
    """Rows ``(name, status, file, details)`` for every model in ``MODELS``.

    ``status`` is ``ready``, ``missing`` (a file is absent), ``unverified`` (no manifest
    entry), ``modified`` (a file's sha256 differs from the manifest) or ``outdated``
    (a converted MediaPipe model from another converter or source); for Mask R-CNN ``ready`` or
    ``no weights`` (looked up in torchvision's cache, never downloaded).
    """
    directory = folder or engines_dir()
    manifest = read_manifest(directory)
    rows = []
    for name, spec in MODELS.items():
        entry = manifest.get(name)
        entry = entry if isinstance(entry, dict) else None
        if spec.onnx is None and spec.weights is None:
            rows.append(_external_row(name))
            continue
        filename = spec.onnx or spec.weights
        assert filename is not None
        rows.append((name, _status(name, directory, entry), str(directory / filename),
                     _details(name, entry) + _int8_details(name, directory)))
    return rows


def _external_row(name: str) -> tuple[str, str, str, str]:
    """A row for a model whose weights live outside ``engines/`` (Mask R-CNN)."""
    spec = MODELS[name]
    if name != "maskrcnn":
        return name, "external", "-", spec.description
    from localsr_cam.runtime import maskrcnn

    path = maskrcnn.cached_weights_path()
    status = "ready" if path.is_file() else "no weights"
    return name, status, str(path), f"{spec.description}; {spec.build_command}"

