"""The model zoo: one registry entry per model (kind, input size, files, how to fetch or
train, build, load and export it), the artifacts in ``engines/`` and their manifest,
fetching and converting third-party models, and opening a model on a backend.

May import runtime, models, paths and errors; nothing above (no config, process, cli).
"""
