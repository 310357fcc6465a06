"""Time the segment step alone (no capture or output thread beside it).

For each backend and frame size: the processor's mask step (shrink/letterbox, the
selfie network, temporal smoothing, despeckle, feather, mask back to frame size) on
frames of the synthetic clip; prints the median and p95 in ms.

    .venv/bin/python tools/time_segment.py --backends cpu torch --sizes 640x360 1280x720
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from localsr_cam.capture.sources import SyntheticSource
from localsr_cam.config import ModelConfig, PipelineConfig, parse_size
from localsr_cam.process.processor import FrameProcessor


def time_segment(backend: str, size: tuple[int, int], frames: int, warmup: int
                 ) -> tuple[float, float, str]:
    """Median and p95 ms of the mask step, and the segmenter that ran."""
    clip = SyntheticSource(size)
    clip.open()
    processor = FrameProcessor(PipelineConfig(model=ModelConfig(backend=backend))).open()
    try:
        processor.prepare(size)
        samples = []
        for index in range(warmup + frames):
            frame = processor.upload(clip.frame(index))  # on the engines' device
            started = time.perf_counter()
            processor.segment(frame)
            if processor.device.type == "cuda":
                torch.cuda.synchronize()  # time the work, not just its launch
            if index >= warmup:
                samples.append((time.perf_counter() - started) * 1000.0)
        name = processor.segmenter_name or "?"
    finally:
        processor.close()
        clip.close()
    return float(np.median(samples)), float(np.percentile(samples, 95)), name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="+", default=["cpu", "torch"])
    parser.add_argument("--sizes", nargs="+", default=["640x360", "1280x720"])
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    args = parser.parse_args()
    print("| backend | input | segmenter | median ms | p95 ms |")
    print("|---|---|---|---:|---:|")
    for backend in args.backends:
        for text in args.sizes:
            median, p95, name = time_segment(backend, parse_size(text), args.frames,
                                             args.warmup)
            print(f"| {backend} | {text} | {name} | {median:.2f} | {p95:.2f} |")


if __name__ == "__main__":
    main()
