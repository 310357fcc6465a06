"""Train and ship a super-resolution U-Net: a thin wrapper over ``localsr-cam train``.

    .venv/bin/python tools/train_unet.py --model fast --train-dir ../shared/data/train \
        --val-dir ../shared/data/val --time-budget 20
"""

from __future__ import annotations

import sys

from localsr_cam.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
