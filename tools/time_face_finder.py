"""Time the face finder: one tile, a batch of tiles, and a whole frame's tile plan.

For each backend and thread count: the ``face`` engine on one 192×192 tile and on the
whole plan's tiles in one call (per tile), and ``FaceFinder.detect`` on a synthetic
group frame (tile resizing, the engine, decoding, NMS); the part outside the engine is
reported too. Prints wall-clock medians and p95 and the median process CPU time in ms
as a Markdown table: on a shared machine, CPU time with one thread is the cost an idle
core would see.

    PYTHONPATH=$PWD .venv/bin/python tools/time_face_finder.py --backends cpu --threads 1 2
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import cv2
import numpy as np
import skimage.data
import torch

from localsr_cam.config import parse_size
from localsr_cam.process import faces
from localsr_cam.zoo.backends import open_engine

ASTRONAUT_HEAD = (120, 10, 330, 330)  # x0, y0, x1, y1; her face is about 106 px tall


def group_frame(size: tuple[int, int], heights: tuple[int, ...] = (25, 32, 40, 50, 60)
                ) -> np.ndarray:
    """A uint8 BGR frame with scaled copies of the astronaut's head, one per face height."""
    width, height = size
    frame = np.full((height, width, 3), 96, dtype=np.uint8)
    x0, y0, x1, y1 = ASTRONAUT_HEAD
    head = cv2.cvtColor(skimage.data.astronaut()[y0:y1, x0:x1], cv2.COLOR_RGB2BGR)
    x = 8
    for index, face in enumerate(heights):
        small = cv2.resize(head, None, fx=face / 106, fy=face / 106, interpolation=cv2.INTER_AREA)
        h, w = min(small.shape[0], height), min(small.shape[1], width - x)
        if w <= 0:
            break
        y = (index * 67) % max(height - h, 1)
        frame[y:y + h, x:x + w] = small[:h, :w]
        x += w + 10
    return frame


Samples = tuple[list[float], list[float]]
"""Wall-clock and process CPU milliseconds of each run."""


def timed(run: Callable[[], object], repeats: int, warmup: int = 3) -> Samples:
    for _ in range(warmup):
        run()
    wall, cpu = [], []
    for _ in range(repeats):
        started, used = time.perf_counter(), time.process_time()
        run()
        wall.append((time.perf_counter() - started) * 1000.0)
        cpu.append((time.process_time() - used) * 1000.0)
    return wall, cpu


def stats(samples: Samples, per: int = 1) -> str:
    """``median wall | p95 wall | median CPU`` in ms, divided by ``per``."""
    wall, cpu = (np.asarray(s) / per for s in samples)
    return f"{np.median(wall):.2f} | {np.percentile(wall, 95):.2f} | {np.median(cpu):.2f}"


def time_backend(backend: str, threads: int, frame: np.ndarray, plan: faces.TilePlan,
                 min_face: float, repeats: int) -> list[tuple[str, str]]:
    """Rows ``(what, "median | p95")`` for one backend and thread count."""
    torch.set_num_threads(threads)
    engine = open_engine("face", backend, threads=threads)
    try:
        finder = faces.FaceFinder(engine, min_face_px=min_face)
        one = torch.rand(1, 3, 192, 192) * 2 - 1
        batch = torch.rand(len(plan), 3, 192, 192) * 2 - 1
        buffer = np.zeros((len(plan), 192, 192, 3), dtype=np.uint8)

        def prepare() -> torch.Tensor:
            faces.fill_inputs(frame, plan.tiles, buffer)
            return faces.to_input_tensor(buffer)

        batched = timed(lambda: engine({"image": batch}), repeats)
        rows = [
            ("engine, 1 tile", stats(timed(lambda: engine({"image": one}), repeats))),
            (f"engine, {len(plan)} tiles in one call, per tile", stats(batched, len(plan))),
            (f"engine, {len(plan)} tiles in one call", stats(batched)),
            (f"detect(), whole frame ({len(plan)} tiles)",
             stats(timed(lambda: finder.detect(frame), repeats))),
            ("tiles resized + tensor (no engine)", stats(timed(prepare, repeats))),
            ("faces found", f"{len(finder.detect(frame))} | |"),
        ]
    finally:
        engine.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="+", default=["cpu"])
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--size", default="640x360")
    parser.add_argument("--min-face", type=float, default=24.0)
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    size = parse_size(args.size)
    frame = group_frame(size)
    plan = faces.plan_tiles(size, args.min_face)
    print(f"frame {args.size}, faces from {args.min_face:g} px: {len(plan)} tiles "
          f"({', '.join(str(t.size) for t in plan.tiles)} px)")
    print("| backend | threads | what | median ms | p95 ms | median CPU ms |")
    print("|---|---:|---|---:|---:|---:|")
    for backend in args.backends:
        for threads in args.threads:
            for what, figures in time_backend(backend, threads, frame, plan, args.min_face,
                                              args.repeats):
                print(f"| {backend} | {threads} | {what} | {figures} |")


if __name__ == "__main__":
    main()
