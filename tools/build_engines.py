"""Build the TensorRT engines: the same as ``localsr-cam models build-engines [ARGS]``.

Usage: ``python tools/build_engines.py [--models fast paper ...] [--precision fp16|fp32]``
(needs an NVIDIA GPU and TensorRT; plans go to engines/trt/).
"""

from __future__ import annotations

import sys

from localsr_cam import cli

if __name__ == "__main__":
    sys.exit(cli.main(["models", "build-engines", *sys.argv[1:]]))
