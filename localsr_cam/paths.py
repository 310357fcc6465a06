"""Checks on output paths, made before long work starts."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from localsr_cam.errors import SinkError


def check_writable_file(path: Path, flag: str) -> None:
    """Raise :class:`SinkError` unless a file can be written at ``path`` (nothing is left
    behind: the probe is a temporary file in the same folder, removed at once)."""
    if path.is_dir():
        raise SinkError(f"{flag} {path} is a folder, not a file")
    folder = path.parent
    if not folder.is_dir():
        raise SinkError(f"cannot write {flag} {path}: folder {folder} does not exist")
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".probe")
    except OSError as exc:
        raise SinkError(f"cannot write {flag} {path}: {exc.strerror or exc}") from None
    os.close(fd)
    os.unlink(probe)
