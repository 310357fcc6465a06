"""Importing a script of ``tools/`` (not a package) in a test."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

TOOLS = Path(__file__).resolve().parent.parent / "tools"


@contextmanager
def imported_tool(file_name: str, module_name: str) -> Iterator[ModuleType]:
    """``tools/<file_name>`` imported as ``module_name``, registered in ``sys.modules``
    while the block runs (dataclasses look their module up there)."""
    spec = importlib.util.spec_from_file_location(module_name, TOOLS / file_name)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules[module_name]
