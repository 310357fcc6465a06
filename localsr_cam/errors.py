"""Errors a user can act on.

Every problem caused by input the user gave (a path, a flag, a config file, a model
file) is raised as a :class:`LocalSRError` subclass carrying one human sentence. The CLI
prints that sentence on one line of stderr and exits with status 2; it never shows a
traceback for these.
"""

from __future__ import annotations

EXIT_USAGE = 2


class LocalSRError(Exception):
    """Base class: a problem the user can fix. ``str(err)`` is the one line shown."""


class ConfigError(LocalSRError):
    """A bad flag value, config key or config type."""


class SourceError(LocalSRError):
    """A camera, video, folder or image that cannot be opened or read."""


class SinkError(LocalSRError):
    """An output (virtual camera, window, file) that cannot be opened or written."""


class ModelError(LocalSRError):
    """A model file that is missing, corrupt, mismatched or unsafe to load.

    The message names the file and the command that (re)builds it.
    """


class BackendUnavailableError(LocalSRError):
    """An inference backend (TensorRT, CUDA) that is not installed or has no device."""
