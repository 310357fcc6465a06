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


def same_path(a: Path, b: Path) -> bool:
    """Whether two paths name one file or folder (after ``..``, symlinks, hard links)."""
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return a.resolve() == b.resolve()


def refuse_overwrites(source: Path | None, outputs: list[tuple[str, Path]]) -> None:
    """Raise :class:`SinkError` when an output would overwrite the input or another output.

    ``source``: the video file or image folder read, or ``None`` (camera, sample).
    ``outputs``: ``(spec, path)`` for every sink that writes a file or folder.
    """
    for position, (spec, path) in enumerate(outputs):
        if source is not None and same_path(path, source):
            raise SinkError(f"output {spec!r} is the input {source}: writing it would destroy "
                            "the input; choose another path")
        for other_spec, other in outputs[:position]:
            if same_path(path, other):
                raise SinkError(f"outputs {other_spec!r} and {spec!r} are the same path; "
                                "give each output its own")
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
