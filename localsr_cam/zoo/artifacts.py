"""Model artifacts: the ``engines/`` folder, ``engines/manifest.json``, checked file paths.

The manifest records for each model its files, sha256, shapes and measured figures.
Imports the registry (for file names and the command that makes them) and nothing heavy.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from localsr_cam.errors import ModelError
from localsr_cam.paths import write_atomically
from localsr_cam.zoo.registry import FETCH_COMMAND, QUANTIZE_COMMAND, model_spec

MANIFEST_NAME = "manifest.json"
PLAN_DIR = "trt"
"""Sub-folder of the engines folder holding TensorRT plans (git-ignored)."""


def engines_dir() -> Path:
    """The folder holding model artifacts: ``$LOCALSR_ENGINES`` or ``<project>/engines``."""
    override = os.environ.get("LOCALSR_ENGINES")
    if override:
        return Path(override)
    return Path(__file__).resolve().parents[2] / "engines"


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
    """The sha256 a manifest entry records for its ``"onnx"``, ``"onnx_int8"`` or
    ``"weights"`` file.

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


def model_config(name: str, directory: Path | None = None) -> dict[str, Any]:
    """The constructor arguments the manifest records for model ``name`` (``{}``: none)."""
    entry = read_manifest(directory).get(name, {})
    config = entry.get("config", {}) if isinstance(entry, dict) else {}
    return dict(config) if isinstance(config, dict) else {}


def artifact_path(name: str, which: str) -> Path:
    """Path of a model's ``"onnx"``, ``"onnx_int8"`` or ``"weights"`` file, checked to
    exist.

    Raises :class:`ModelError` naming the file and the command that builds it.
    """
    spec = model_spec(name)
    filename = {"onnx": spec.onnx, "onnx_int8": spec.onnx_int8,
                "weights": spec.weights}[which]
    if filename is None:
        raise ModelError(f"model {name!r} has no {which} file")
    path = engines_dir() / filename
    if not path.is_file():
        command = (f"{QUANTIZE_COMMAND} {name}" if which == "onnx_int8"
                   else spec.build_command)
        raise ModelError(f"model {name!r} is not prepared yet: {path} is missing; "
                         f"run `{command}`")
    return path


def missing_files(name: str, directory: Path | None = None) -> list[str]:
    """The names of model ``name``'s weights and ONNX files (those it has) that are not
    in ``directory`` (default: the engines folder)."""
    spec = model_spec(name)
    folder = directory or engines_dir()
    return [f for f in (spec.weights, spec.onnx) if f is not None and not (folder / f).is_file()]


def plan_dir() -> Path:
    """Where TensorRT plans of this project's models are cached."""
    return engines_dir() / PLAN_DIR
