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
