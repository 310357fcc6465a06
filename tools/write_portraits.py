"""Write the portrait test images that ship with the project's dependencies.

scikit-image's *astronaut* and *camera* photographs (real people, public domain) and
one 1280×720 frame of the built-in synthetic clip, as PNGs in OUTDIR: HR ground truth
for ``localsr-cam eval`` on people, where the localized SR actually has work to do.

    .venv/bin/python tools/write_portraits.py .cache/portraits
    .venv/bin/localsr-cam eval --images .cache/portraits --md portraits.md
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
from skimage import data

from localsr_cam.capture.sources import SyntheticSource


def write_portraits(folder: Path) -> list[Path]:
    """Write the images into ``folder`` (created) and return their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    clip = SyntheticSource((1280, 720))
    clip.open()
    images = {
        "astronaut.png": cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR),
        "camera.png": data.camera(),
        "synthetic_0075.png": clip.frame(75),
    }
    clip.close()
    paths = []
    for name, image in images.items():
        path = folder / name
        if not cv2.imwrite(str(path), image):
            raise SystemExit(f"write_portraits: cannot write {path}")
        paths.append(path)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outdir", type=Path, help="folder to write the PNGs into")
    for path in write_portraits(parser.parse_args().outdir):
        print(path)


if __name__ == "__main__":
    main()
