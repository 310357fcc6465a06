"""``python -m localsr_cam``: the same as the ``localsr-cam`` command."""

from localsr_cam.cli.main import entry_point

entry_point()
