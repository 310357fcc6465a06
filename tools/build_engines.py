"""Build the TensorRT engines: the same as ``localsr-cam models build-engines [ARGS]``.

Usage: ``python tools/build_engines.py [--models fast paper ...] [--precision fp16|fp32]``
(needs an NVIDIA GPU and TensorRT; plans go to engines/trt/).
"""

from __future__ import annotations

import sys

from localsr_cam.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["models", "build-engines", *sys.argv[1:]]))
