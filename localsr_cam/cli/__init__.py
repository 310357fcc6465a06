"""The command line: argv → options → one subcommand (run, bench, eval, train, models).

Owns every parser (one module per subcommand; :mod:`.main` joins them) and turns a
user's mistake into one line on stderr and exit status 2. It may import every other
part of the package; nothing imports it. Heavy parts are imported inside the handlers,
so ``localsr-cam --help`` stays quick.
"""

from __future__ import annotations

import importlib
from typing import Any


def __getattr__(name: str) -> Any:
    """``entry_point`` for console scripts installed before the
    command line became a package (they import ``localsr_cam.cli:entry_point``)."""
    if name == "entry_point":
        return getattr(importlib.import_module("localsr_cam.cli.main"), name)
    raise AttributeError(f"module 'localsr_cam.cli' has no attribute {name!r}")
