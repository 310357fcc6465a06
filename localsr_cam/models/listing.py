"""``localsr-cam models list``: which model files are prepared, which are missing."""

from __future__ import annotations

from localsr_cam.engines import MODELS, engines_dir, read_manifest, sha256_file


def model_rows() -> list[tuple[str, str, str, str]]:
    """Rows of (model, status, file, details); the first row is the header.

    Status is ``ready`` (files present and, where the manifest records one, the sha256
    matches), ``stale`` (hash differs: rebuild), ``missing``, or ``external`` (Mask R-CNN,
    whose weights come from torchvision's cache or ``--weights``).
    """
    manifest = read_manifest()
    rows = [("MODEL", "STATUS", "FILE", "DETAILS")]
    for name, spec in MODELS.items():
        if spec.onnx is None:
            rows.append((name, "external", "-", spec.description))
            continue
        path = engines_dir() / spec.onnx
        entry = manifest.get(name, {})
        if not path.is_file():
            status, details = "missing", f"run `{spec.build_command}`"
        else:
            recorded = entry.get("onnx_sha256")
            stale = recorded is not None and recorded != sha256_file(path)
            status = "stale" if stale else "ready"
            details = (f"rebuild with `{spec.build_command}`" if stale
                       else _figures(entry) or spec.description)
        rows.append((name, status, str(path), details))
    return rows


def _figures(entry: dict[str, object]) -> str:
    """A short summary of the manifest's recorded figures for one model."""
    parts = []
    for key in ("params", "val_psnr", "val_psnr_gain_db", "max_abs_diff"):
        if key in entry:
            parts.append(f"{key}={entry[key]}")
    return " ".join(parts)
