"""How often the degradation estimator reads MJPEG as MJPEG, and clean frames as clean.

The JPEG level (``localsr_cam.process.estimate.jpeg_scale``) picks the net a frame runs
on (``runtime/routed.py``: the MJPEG variant from level 0.1), and a misread costs up to
1.4 dB (BENCHMARKS.md, Quality, "Session 19"). For every photo in the folders, each
evaluation suite without JPEG and MJPEG at several qualities (area 2×, then JPEG), the
level is read as ``eval`` reads it (the whole frame, 600 blocks) and as a live run does
(300 blocks, four phases); the table gives the share of reads at or above the routing
level, per kind of input. Clean and noisy frames should read 0 %, MJPEG up to q 93 near
100 %.

    python tools/jpeg_reading.py ../shared/data/train ../shared/data/people
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from localsr_cam.capture.images import image_files
from localsr_cam.errors import SourceError
from localsr_cam.measure import degrade as D
from localsr_cam.process.estimate import jpeg_scale
from localsr_cam.runtime.routed import ROUTE_FROM

CLEAN_SUITES = ("area", "bicubic", "soft", "noisy", "sharpened")
QUALITIES = (60, 75, 85, 90, 93, 95)
READS = (("eval", 600, 1), ("live", 300, 4))  # name, blocks, phases


def lr_frames(hr: np.ndarray, chroma: str = "420") -> dict[str, np.ndarray]:
    """The LR frames one BGR photo is read at: ``clean`` suites by name, MJPEG as
    ``q<quality>`` (area 2× then JPEG with this chroma subsampling)."""
    frames = {suite: D.degrade_suite(hr, suite, D.image_seed(suite, hr), bgr=True).lr
              for suite in CLEAN_SUITES}
    for quality in QUALITIES:
        params = D.DegradeParams(resize=("area",), jpeg_quality=quality, chroma=chroma)
        frames[f"q{quality}"] = D.apply(hr, params, bgr=True).lr
    return frames


def read_shares(photos: Sequence[np.ndarray], chroma: str = "420"
                ) -> dict[tuple[str, str], float]:
    """(input kind, read) → share of reads at or above :data:`ROUTE_FROM`; the kind is
    ``clean`` (every suite without JPEG) or ``q<quality>``."""
    hits: dict[tuple[str, str], list[bool]] = defaultdict(list)
    for hr in photos:
        for name, lr in lr_frames(hr, chroma).items():
            kind = name if name.startswith("q") else "clean"
            for read, blocks, phases in READS:
                hits[kind, read] += [jpeg_scale(lr, True, blocks, phase) >= ROUTE_FROM
                                     for phase in range(phases)]
    return {key: float(np.mean(values)) for key, values in hits.items()}


def table(shares: dict[tuple[str, str], float]) -> str:
    kinds = ["clean"] + [f"q{q}" for q in QUALITIES]
    lines = ["| read | " + " | ".join(kinds) + " |", "| --- |" + " ---: |" * len(kinds)]
    for read, _, _ in READS:
        cells = [f"{100 * shares[kind, read]:.1f} %" for kind in kinds]
        lines.append(f"| {read} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", nargs="+", type=Path, help="folders of HR photos")
    parser.add_argument("--chroma", default="420", choices=tuple(D.JPEG_SAMPLING),
                        help="JPEG chroma subsampling (default: %(default)s)")
    args = parser.parse_args(argv)
    try:
        paths = [path for folder in args.folders for path in image_files(folder)]
    except SourceError as exc:
        parser.error(str(exc))
    photos = []
    for path in paths:
        photo = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if photo is None:
            parser.error(f"cannot read {path}")
        photos.append(photo)
    print(f"{len(photos)} photos, JPEG {args.chroma}; share read at JPEG level "
          f">= {ROUTE_FROM}:")
    print(table(read_shares(photos, args.chroma)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
