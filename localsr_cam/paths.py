"""File helpers shared by every part: output checks before long work, atomic writes, hashes.

Imports nothing of ours but :mod:`localsr_cam.errors`.
"""

from __future__ import annotations

import hashlib
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


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


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
