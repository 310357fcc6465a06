"""File helpers shared by every part: output checks before long work, atomic writes, hashes.

Imports nothing of ours but :mod:`localsr_cam.errors`.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Collection, Sequence
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


def prepare_output_folder(folder: Path, flag: str, probe: str) -> None:
    """Create ``folder`` (and its parents) and check that a file named ``probe`` can be
    written in it; a :class:`SinkError` naming ``flag`` and the folder otherwise (it is
    a file, it cannot be created, or it is not writable)."""
    if folder.exists() and not folder.is_dir():
        raise SinkError(f"{flag}: {folder} is a file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SinkError(f"cannot create the {flag} folder {folder}: "
                        f"{exc.strerror or exc}") from None
    check_writable_file(folder / probe, flag)


def same_path(a: Path, b: Path) -> bool:
    """Whether two paths name one file or folder (after ``..``, symlinks, hard links)."""
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return a.resolve() == b.resolve()


def refuse_clobbers(files: Sequence[tuple[str, Path]], folders: Sequence[tuple[str, Path]] = (),
                    *, inputs: Sequence[Path] = (), read_folders: Sequence[Path] = (),
                    read_suffixes: Collection[str] = ()) -> None:
    """Raise :class:`SinkError` when an output would land on what a command reads, or on
    another output; call it before any output is created.

    ``files``: ``(flag, path)`` of outputs that are one file; ``folders``: ``(flag,
    path)`` of folders that outputs are written into. ``inputs``: the files read (a
    video, every image of a folder); ``read_folders``: folders whose files ending in one
    of ``read_suffixes`` (lower case, with the dot; any case matches) are read, so that a
    file written there would be read as input the next time. Refused: an output that is
    an input or a read folder; a file output directly inside a read folder with a read
    suffix; two outputs on one path. A subfolder of a read folder is fine.
    """
    outputs = [*files, *folders]
    for flag, path in outputs:
        _refuse_input(flag, path, inputs, read_folders)
    for flag, path in files:
        _refuse_read_name(flag, path, read_folders, read_suffixes)
    for position, (flag, path) in enumerate(outputs):
        for other_flag, other in outputs[:position]:
            if same_path(path, other):
                raise SinkError(f"{other_flag} {other} and {flag} {path} are the same path; "
                                "give each output its own")


def _refuse_input(flag: str, path: Path, inputs: Sequence[Path],
                  read_folders: Sequence[Path]) -> None:
    """:func:`refuse_clobbers`: ``path`` is an input file or a read folder."""
    for source in inputs:
        if same_path(path, source):
            raise SinkError(f"{flag} {path} is the input{_also(path, source)}: writing it "
                            "would destroy the input; choose another path")
    for folder in read_folders:
        if same_path(path, folder):
            raise SinkError(f"{flag} {path} is the input folder{_also(path, folder)}: what "
                            "is written there would mix with the input (and be read as "
                            "input next time); choose another folder, a subfolder is fine")


def _also(path: Path, other: Path) -> str:
    """`` other`` when it is written differently from ``path`` (``a/../b``, a link)."""
    return "" if str(path) == str(other) else f" {other}"


def _refuse_read_name(flag: str, path: Path, read_folders: Sequence[Path],
                      read_suffixes: Collection[str]) -> None:
    """:func:`refuse_clobbers`: ``path`` is a file that would be read as input."""
    if path.suffix.lower() not in read_suffixes:
        return
    for folder in read_folders:
        if same_path(path.parent, folder):
            raise SinkError(f"{flag} {path} would be read as an input image: it is in the "
                            f"input folder {folder} and ends in {path.suffix}; choose "
                            "another name or folder")


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
