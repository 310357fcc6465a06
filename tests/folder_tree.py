"""A snapshot of a folder tree, to show that a refused command left it as it was."""

from __future__ import annotations

from pathlib import Path


def tree(root: Path) -> dict[str, bytes | None]:
    """Every path under ``root`` (relative) → its bytes, ``None`` for a folder."""
    return {str(p.relative_to(root)): None if p.is_dir() else p.read_bytes()
            for p in sorted(root.rglob("*"))}
