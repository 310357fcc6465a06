"""One paced benchmark run beside N busy processes, measured the same way for any version.

For before/after tables (BENCHMARKS.md, "Never late"): run it with the old code and then
the new one on ``PYTHONPATH``, back to back, so both see the same machine. It works with
the flat layout before the "House" commit (no ``bench --load`` there) and with the
current one: it starts the busy processes itself and reads the process's CPU use over
the measured frames through the pipeline's progress callback. Prints one JSON line.

    mkdir -p /tmp/before && git archive 28852e0 localsr_cam | tar -x -C /tmp/before
    ln -s "$PWD/engines" /tmp/before/engines
    for n in 0 1 2; do
      PYTHONPATH=/tmp/before .venv/bin/python tools/paced_ab.py --load $n
      PYTHONPATH=$PWD .venv/bin/python tools/paced_ab.py --load $n
    done
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from typing import Any

SPIN = ("import os,sys\np=int(sys.argv[1])\n"
        "while os.getppid()==p:\n    for _ in range(100000): pass\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--load", type=int, default=0, help="busy processes beside it")
    parser.add_argument("--frames", type=int, default=600)
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--quality", default=None, help="a fixed level (new code only)")
    args = parser.parse_args()
    pipeline_module, run_bench = _bench_for_this_version(args)
    marks: dict[str, tuple[float, float]] = {}
    original = pipeline_module.Pipeline.__init__

    def init(self: Any, *positional: Any, progress: Any = None, **keywords: Any) -> None:
        def counted(count: int) -> None:
            if progress is not None:
                progress(count)
            if count in (args.warmup, args.warmup + args.frames):
                marks["start" if count == args.warmup else "end"] = (
                    time.perf_counter(), time.process_time())
        original(self, *positional, progress=counted, **keywords)

    pipeline_module.Pipeline.__init__ = init
    busy = [subprocess.Popen([sys.executable, "-S", "-c", SPIN, str(os.getpid())])
            for _ in range(args.load)]
    try:
        report = run_bench()
    finally:
        for process in busy:
            process.kill()
            process.wait()
    figures = report["modes"]["local"]
    (wall0, cpu0), (wall1, cpu1) = marks["start"], marks["end"]
    captured = args.frames + args.warmup + figures["dropped"]
    print(json.dumps({
        "code": os.environ.get("PYTHONPATH", "?"), "load": args.load,
        "uptime": os.getloadavg()[0], "fps": figures["fps"],
        "p50_ms": figures["latency_ms"]["p50"], "p95_ms": figures["latency_ms"]["p95"],
        "dropped": figures["dropped"], "dropped_pct": round(100 * figures["dropped"] / captured, 1),
        "cpu_pct": round(100 * (cpu1 - cpu0) / (wall1 - wall0), 1),
        "levels": figures.get("levels"), "sr": figures.get("sr"),
        "level_changes": figures.get("level_changes"), "stages_ms": figures["stages_ms"]}))


def _bench_for_this_version(args: argparse.Namespace) -> tuple[Any, Any]:
    """The pipeline module whose Pipeline the benchmark builds, and a call running it."""
    common = {"mode": "local", "paced": True, "frames": args.frames, "warmup": args.warmup,
              "backend": "cpu", "no_progress": True}
    try:
        from localsr_cam.measure.bench import BenchOptions, bench
        from localsr_cam.pipeline import threads
    except ImportError:  # the flat layout before "House:"
        import importlib

        old_bench = importlib.import_module("localsr_cam.bench")
        old_pipeline = importlib.import_module("localsr_cam.pipeline")
        argv = ["--mode", "local", "--paced", "--frames", str(args.frames), "--warmup",
                str(args.warmup), "--backend", "cpu", "--no-progress"]
        namespace = old_bench.build_parser().parse_args(argv)
        return old_pipeline, lambda: old_bench.bench(namespace)
    if args.quality:
        common["quality"] = args.quality
    options = BenchOptions(**common)
    return threads, lambda: bench(options)


if __name__ == "__main__":
    main()
