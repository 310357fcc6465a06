"""``localsr-cam bench``: the offline benchmark of the real pipeline.

Each mode runs the whole pipeline (capture thread, processor, output thread, a null sink
unless ``--sink`` is given) on the same source for ``--warmup`` + ``--frames`` frames;
figures come from the frames after the warm-up (frames dropped in it — the engines' first
runs are slow — are reported apart, ``dropped_in_warmup``). ``--mode all`` runs local, full-frame
and bicubic one after another in one process and reports their ratios, so a comparison
holds on a noisy machine. Unpaced (the default), frames are read as fast as the
processor takes them (throughput; a frame's latency then includes waiting while the
one before it is processed); ``--paced`` delivers them at the source's fps like a camera,
and latency is then what a user feels.

Flags and outputs are checked before anything runs: no output (``--json``, ``--md``,
``--plot``, a file or folder sink) may be the source or another output; with several
modes, a file or folder sink gets the mode in its name (``out.mp4`` → ``out_local.mp4``,
...), so each mode's frames are kept.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import platform
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from localsr_cam.config import (
    BlendConfig,
    CaptureConfig,
    ModelConfig,
    OutputConfig,
    PipelineConfig,
    parse_size,
)
from localsr_cam.errors import ConfigError, LocalSRError
from localsr_cam.measure.load import BusyLoad
from localsr_cam.paths import check_writable_file, refuse_clobbers
from localsr_cam.pipeline.cpu import CpuMeter
from localsr_cam.pipeline.threads import FrameRecord, Pipeline, RunResult
from localsr_cam.process.processor import ESTIMATE_CPU_STAGE
from localsr_cam.zoo.registry import DEFAULT_SR_MODEL

log = logging.getLogger(__name__)

MODES = ("local", "full", "bicubic")
STAGES = ("capture", "denoise", "find", "segment", "estimate", "upscale", "sr", "background",
          "blend", "output")
"""Stage columns, ms a frame (medians over the frames that had the stage). ``upscale`` is
the SR step on the frame's own path (where the SR began early on the worker, the wait
for it after segmentation), ``sr`` the SR engine's own run time, wherever it ran."""
PER_FRAME_STAGES = ("find", "estimate")
"""Stages that run in full on some frames only (the face finder's tiles; a live run's
level readings, one frame in two): the table gives their mean over all frames, what
they cost a frame ("ms/frame"); the JSON has both (``stages_ms``, ``stages_mean_ms``)."""
SOAK_WINDOW = 1000
DEFAULT_INPUT = "640x360"


def rss_mb() -> float:
    """Resident memory of this process in MiB (Linux /proc; peak RSS elsewhere)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        import os

        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def mode_config(base: PipelineConfig, mode: str) -> PipelineConfig:
    """The config of one benchmark mode: local SR, full-frame SR, or bicubic."""
    if mode == "bicubic":
        model = dataclasses.replace(base.model, model="bicubic")
        return dataclasses.replace(base, model=model)
    blend = dataclasses.replace(base.blend, full_frame=(mode == "full"))
    return dataclasses.replace(base, blend=blend)


def _percentiles(values: Sequence[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p95": None, "p99": None}
    array = np.asarray(values)
    return {f"p{q}": round(float(np.percentile(array, q)), 3) for q in (50, 95, 99)}


def _people(counts: Sequence[int | None]) -> dict[str, float] | None:
    """Mean and most people enhanced a frame, or ``None`` where no mask was made."""
    present = [c for c in counts if c is not None]
    if not present:
        return None
    return {"mean": round(float(np.mean(present)), 2), "max": max(present)}


def _shares(values: Sequence[str]) -> dict[str, float]:
    """Share (0–1, 4 digits) of each value, most frequent first."""
    names, counts = np.unique(np.asarray(values, dtype=object).astype(str),
                              return_counts=True)
    order = np.argsort(-counts, kind="stable")
    return {str(names[i]): round(int(counts[i]) / len(values), 4) for i in order}


def _per_frame(values: Sequence[float], records: Sequence[FrameRecord]) -> float:
    """A stage's ms summed over the frames that had it, a frame on average over all of
    ``records``, rounded."""
    return round(float(np.sum(values)) / len(records), 3)


def plain_flashes(records: Sequence[FrameRecord]) -> int:
    """How many times a person who had SR went out as the plain upscale: runs of frames
    with someone in them, at a level with SR, whose ``sr`` is ``none``, each after a
    frame with SR. What a viewer sees as the person flashing unsharp (a late SR with
    nothing to stand in; at `alternate`, an off frame whose stand-in failed)."""
    flashes, had_sr = 0, False
    for record in records:
        if not record.people or record.level == "plain":
            had_sr = False
            continue
        shown_plain = record.sr == "none"
        flashes += shown_plain and had_sr
        had_sr = not shown_plain
    return flashes


def summarize(records: Sequence[FrameRecord]) -> dict[str, Any]:
    """Figures of one mode from its measured (post-warm-up) frame records."""
    if len(records) < 2:
        raise LocalSRError("too few frames were measured; raise --frames")
    span = records[-1].written_at - records[0].written_at
    stages: dict[str, float] = {}
    means: dict[str, float] = {}
    for stage in STAGES:
        values = [r.stages_ms[stage] for r in records if stage in r.stages_ms]
        if values:
            stages[stage] = round(float(np.median(values)), 3)
            # a stage that runs every few frames (the face finder) is best told by its
            # mean over all frames: what it costs a frame on average
            means[stage] = _per_frame(values, records)
    cpu = [r.stages_ms[ESTIMATE_CPU_STAGE] for r in records if ESTIMATE_CPU_STAGE in r.stages_ms]
    figures: dict[str, Any] = {
        "fps": round((len(records) - 1) / span, 2) if span > 0 else None,
        "stages_mean_ms": means,
        "latency_ms": _percentiles([r.latency_ms for r in records]),
        "stages_ms": stages,
        "foreground_fraction": round(float(np.mean([r.foreground for r in records])), 4),
        "people": _people([r.people for r in records]),
        "frames": len(records),
        "levels": _shares([r.level for r in records]),
        "sr": _shares([r.sr for r in records]),
        "plain_flashes_per_min": round(plain_flashes(records) * 60 / span, 1)
        if span > 0 else None,
    }
    if cpu:  # the estimator's own cost: CPU ms a frame, over all frames
        figures["estimate_cpu_ms"] = _per_frame(cpu, records)
    if len(records) >= 2 * SOAK_WINDOW:
        first = _percentiles([r.latency_ms for r in records[:SOAK_WINDOW]])["p95"]
        last = _percentiles([r.latency_ms for r in records[-SOAK_WINDOW:]])["p95"]
        figures["soak"] = {"p95_first_1000_ms": first, "p95_last_1000_ms": last,
                           "p95_last_over_first": round(last / first, 3)
                           if first and last else None}
    return figures


def run_mode(config: PipelineConfig, mode: str, frames: int, warmup: int,
             sinks: Sequence[str], progress: bool, buffering: str = "auto"
             ) -> tuple[dict[str, Any], RunResult, str]:
    """Run one mode; returns its figures, the raw result and the device name."""
    from tqdm import tqdm

    from localsr_cam.capture.factory import make_source
    from localsr_cam.outputs.sinks import make_sink
    from localsr_cam.process.processor import FrameProcessor

    cfg = mode_config(config, mode)
    source = make_source(cfg.capture)
    sink_objects = [make_sink(spec) for spec in (sinks or ("null",))]
    processor = FrameProcessor(cfg)
    total = warmup + frames
    bar = tqdm(total=total, desc=f"bench {mode}", unit="frame", disable=not progress,
               file=sys.stderr, leave=False)
    rss_after_warmup: list[float] = []
    cpu = CpuMeter()
    cpu_percent: list[float] = []
    dropped_in_warmup: list[int] = []

    def on_frame(count: int) -> None:
        bar.update(1)
        if count == max(warmup, 1):
            rss_after_warmup.append(rss_mb())
            cpu.start()  # CPU use over the measured frames, as the figures
            # and frames dropped after them (the engines' first runs drop some)
            dropped_in_warmup.append(pipeline.dropped() if warmup else 0)
        elif count == total:
            cpu_percent.append(cpu.percent())

    pipeline = Pipeline(source, processor, sink_objects, paced_capture=cfg.capture.paced,
                        paced_output=cfg.capture.paced, limit=total, progress=on_frame,
                        keep_records=None, buffering=buffering)
    try:
        result = pipeline.run()
    finally:
        bar.close()
    if result.interrupted:
        raise KeyboardInterrupt
    measured = list(result.records)[warmup:]
    figures = summarize(measured)
    figures["fallbacks"] = result.fallbacks
    before = dropped_in_warmup[0] if dropped_in_warmup else 0
    figures["dropped"] = result.dropped - before
    figures["dropped_in_warmup"] = before
    figures["segmenter"] = processor.segmenter_name
    if processor.last_path is not None:  # auto or people: the path the last frame took
        figures["segmenter"] = f"{cfg.model.segmenter} ({processor.last_path} path)"
    figures["cpu_percent"] = round(cpu_percent[0], 1) if cpu_percent else None
    figures["level_changes"] = result.level_changes
    end = rss_mb()
    warm = rss_after_warmup[0] if rss_after_warmup else end
    figures["rss_mb"] = {"after_warmup": round(warm, 1), "end": round(end, 1),
                         "growth_pct": round((end - warm) / warm * 100, 2)}
    device = str(processor.device)
    return figures, result, device


def ratios(modes: dict[str, dict[str, Any]]) -> dict[str, float | None]:
    """Side-by-side ratios between the modes that ran."""
    def ratio(a: float | None, b: float | None) -> float | None:
        return round(a / b, 3) if a is not None and b else None

    out: dict[str, float | None] = {}
    local, full, bicubic = (modes.get(m) for m in MODES)
    if local and full:
        out["local_over_full_upscale_ms"] = ratio(local["stages_ms"].get("upscale"),
                                                  full["stages_ms"].get("upscale"))
        out["local_over_full_sr_ms"] = ratio(local["stages_ms"].get("sr"),
                                             full["stages_ms"].get("sr"))
        out["local_over_full_fps"] = ratio(local["fps"], full["fps"])
        out["local_over_full_latency_p50"] = ratio(local["latency_ms"]["p50"],
                                                   full["latency_ms"]["p50"])
    if local and bicubic:
        out["local_over_bicubic_fps"] = ratio(local["fps"], bicubic["fps"])
        out["local_over_bicubic_latency_p50"] = ratio(local["latency_ms"]["p50"],
                                                      bicubic["latency_ms"]["p50"])
    return out


def markdown(report: dict[str, Any]) -> str:
    """The report as a markdown table, one row per mode."""
    lines = [
        f"Source `{report['source']}` {report['input'][0]}×{report['input'][1]} → "
        f"{report['output'][0]}×{report['output'][1]}, model `{report['model']}`, "
        f"segmenter `{report['segmenter']}`, backend `{report['backend']}` "
        f"({report['device']}{_precision_text(report.get('precision'))}"
        f"{_threads_text(report.get('threads'))}), "
        f"{report['frames']} frames after {report['warmup']} warm-up"
        f"{', paced' if report['paced'] else ''}"
        f"{_load_text(report.get('load', 0))}.",
        "",
        "| mode | fps | p50 ms | p95 ms | p99 ms | " + " | ".join(
            f"{s} ms/frame" if s in PER_FRAME_STAGES else f"{s} ms" for s in STAGES)
        + " | foreground | people | dropped | CPU % |",
        "|---|---:|---:|---:|---:|" + "---:|" * len(STAGES) + "---:|---:|---:|---:|",
    ]
    for mode, figures in report["modes"].items():
        latency = figures["latency_ms"]
        stage_cells = " | ".join(_cell(figures["stages_mean_ms" if s in PER_FRAME_STAGES
                                               else "stages_ms"].get(s)) for s in STAGES)
        lines.append(f"| {mode} | {_cell(figures['fps'])} | {_cell(latency['p50'])} | "
                     f"{_cell(latency['p95'])} | {_cell(latency['p99'])} | {stage_cells} | "
                     f"{figures['foreground_fraction']:.3f} | {_people_cell(figures)} | "
                     f"{_dropped_cell(figures)} | "
                     f"{_cell(figures.get('cpu_percent'), 0)} |")
    if report["ratios"]:
        lines += ["", "| ratio | value |", "|---|---:|"]
        lines += [f"| {k} | {_cell(v)} |" for k, v in report["ratios"].items()]
    for mode, figures in report["modes"].items():
        if "levels" in figures:
            flashes = figures.get("plain_flashes_per_min")
            flash_text = "" if not flashes else \
                f"a person who had SR shown plain {flashes:.0f} times a minute; "
            lines.append(f"Levels ({mode}): {_share_text(figures['levels'])}; SR: "
                         f"{_share_text(figures['sr'])}; {flash_text}"
                         f"{figures.get('level_changes', 0)} level changes.")
    for mode, figures in report["modes"].items():
        if figures.get("estimate_cpu_ms") is not None:
            lines.append(f"Estimator ({mode}): {figures['estimate_cpu_ms']:.2f} ms CPU a "
                         "frame (goal ≤ 0.5); the estimate column is its wall time, which "
                         "beside the SR also counts the SR's turns on the cores.")
    if report.get("flicker"):
        f = report["flicker"]
        lines += ["", f"Flicker (static scene, {f['frames']} frames, sensor noise σ "
                  f"{f['sigma']:g}/255): temporal std in the person {f['ours_std']:.3f} "
                  f"(ours) vs {f['bicubic_std']:.3f} (bicubic), ratio {_cell(f['ratio'])} "
                  "(goal ≤ 1.0)."]
    rss = report["rss_mb"]
    lines += ["", f"RSS {rss['start']:.0f} MiB at start (before models load), "
              f"{rss['end']:.0f} MiB at end."]
    for mode, figures in report["modes"].items():
        mode_rss = figures["rss_mb"]
        lines.append(f"RSS ({mode}): {mode_rss['after_warmup']:.0f} MiB after the warm-up, "
                     f"{mode_rss['end']:.0f} MiB at the end ({mode_rss['growth_pct']:+.1f} %).")
    for mode, figures in report["modes"].items():
        if "soak" in figures:
            soak = figures["soak"]
            lines.append(f"Soak ({mode}): p95 first 1000 = {soak['p95_first_1000_ms']} ms, "
                         f"last 1000 = {soak['p95_last_1000_ms']} ms "
                         f"(ratio {soak['p95_last_over_first']}).")
    return "\n".join(lines) + "\n"


def _people_cell(figures: dict[str, Any]) -> str:
    people = figures.get("people")
    return "–" if not people else f"{people['mean']:.1f} (max {people['max']})"


def _precision_text(precision: str | None) -> str:
    return f", SR in {precision}" if precision else ""


def _dropped_cell(figures: dict[str, Any]) -> str:
    """Frames dropped after the warm-up, with those dropped in it in brackets."""
    dropped, warmup = figures.get("dropped"), figures.get("dropped_in_warmup")
    if dropped is None:
        return "–"
    return f"{dropped} (+{warmup} warm-up)" if warmup else str(dropped)


def _threads_text(threads: int | None) -> str:
    return f", {threads} thread{'s' if threads != 1 else ''} a network" if threads else ""


def _load_text(load: int) -> str:
    if not load:
        return ""
    return f", {load} busy process{'es' if load > 1 else ''} beside it"


def _share_text(shares: dict[str, float]) -> str:
    return ", ".join(f"{name} {share:.1%}" for name, share in shares.items())


def _cell(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def plot(results: dict[str, RunResult], warmup: int, path: Path) -> None:
    """An image (its format from ``path``'s extension, see :func:`plot_formats`): latency
    over time and a latency histogram, per mode."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (timeline, histogram) = plt.subplots(1, 2, figsize=(12, 4.5))
    for mode, result in results.items():
        records = list(result.records)[warmup:]
        if not records:
            continue
        start = records[0].written_at
        times = [r.written_at - start for r in records]
        latencies = [r.latency_ms for r in records]
        timeline.plot(times, latencies, linewidth=0.8, label=mode)
        histogram.hist(latencies, bins=50, alpha=0.5, label=mode)
    timeline.set(xlabel="time (s)", ylabel="end-to-end latency (ms)",
                 title="latency over time")
    histogram.set(xlabel="end-to-end latency (ms)", ylabel="frames", title="latency histogram")
    timeline.legend()
    histogram.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


@dataclasses.dataclass(frozen=True)
class BenchOptions:
    """What ``localsr-cam bench`` was asked to do (see :mod:`localsr_cam.cli.bench`)."""

    source: str = "synthetic"
    input: tuple[int, int] = parse_size(DEFAULT_INPUT)
    frames: int = 300
    warmup: int = 30
    model: str = DEFAULT_SR_MODEL
    segmenter: str = "auto"
    backend: str = "auto"
    threads: int | None = None
    precision: str = "auto"
    fps: float = 30.0
    mode: str = "all"
    paced: bool = False
    sink: tuple[str, ...] = ()
    buffering: str = "auto"
    json: Path | None = None
    md: Path | None = None
    plot: Path | None = None
    no_progress: bool = False
    quality: str = "auto"
    load: int = 0
    flicker: int = 0
    denoise: str = "auto"


def bench(args: BenchOptions) -> dict[str, Any]:
    """Run the requested modes and return the report (see the module docstring).

    Flags and outputs are checked first (:func:`check_options`), before any model loads.
    """
    check_options(args)
    config = PipelineConfig(
        capture=CaptureConfig(source=args.source, size=args.input, fps=args.fps,
                              loop=True, paced=args.paced),
        model=ModelConfig(model=args.model, segmenter=args.segmenter, backend=args.backend,
                          threads=args.threads, quality=args.quality,
                          precision=args.precision, denoise=args.denoise),
        blend=BlendConfig(), output=OutputConfig())
    modes = bench_modes(args.mode)
    rss_start = rss_mb()
    figures: dict[str, dict[str, Any]] = {}
    results: dict[str, RunResult] = {}
    device = "cpu"
    segmenter = args.segmenter
    for mode in modes:
        sinks = mode_sinks(args.sink, mode, modes)
        for spec in [spec for spec in sinks if spec not in args.sink]:
            log.info("%s: writing %s", mode, spec.partition(":")[2])
        with BusyLoad(args.load):
            figures[mode], results[mode], device = run_mode(
                config, mode, args.frames, args.warmup, sinks, not args.no_progress,
                args.buffering)
        segmenter = figures[mode].pop("segmenter") or segmenter
        log.info("%s: %.1f fps, p50 %.1f ms", mode, figures[mode]["fps"] or 0,
                 figures[mode]["latency_ms"]["p50"] or 0)
    backend = next(iter(results.values())).backend  # what the processor chose
    width, height = args.input
    report = {
        "source": args.source, "input": [width, height], "output": [2 * width, 2 * height],
        "backend": backend, "device": device, "model": args.model, "segmenter": segmenter,
        "precision": next(iter(results.values())).precision,
        "threads": next(iter(results.values())).threads,
        "frames": args.frames, "warmup": args.warmup, "paced": args.paced,
        "load": args.load,
        "buffering": args.buffering,
        "modes": figures, "ratios": ratios(figures),
        "rss_mb": {"start": round(rss_start, 1), "end": round(rss_mb(), 1)},
        "machine": {"cpu_count": _cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version()},
    }
    if args.flicker:
        from localsr_cam.measure.flicker import measure_flicker

        report["flicker"] = measure_flicker(mode_config(config, "local"), args.input,
                                            frames=args.flicker)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    if args.md:
        args.md.write_text(markdown(report))
    if args.plot:
        plot(results, args.warmup, args.plot)
    return report


def bench_modes(mode: str) -> list[str]:
    """The modes ``--mode`` runs, in order."""
    return list(MODES) if mode == "all" else [mode]


def mode_sinks(sinks: Sequence[str], mode: str, modes: Sequence[str]) -> tuple[str, ...]:
    """The ``--sink`` specs of one mode. With several modes, a file or folder sink gets
    the mode in its name (``file:out.mp4`` → ``file:out_local.mp4``, ``dir:frames`` →
    ``dir:frames_local``), so no mode writes over another's output."""
    if len(modes) < 2:
        return tuple(sinks)
    named = []
    for spec in sinks:
        kind, sep, arg = spec.partition(":")
        if sep and arg and kind in ("file", "dir"):
            path = Path(arg)
            if path.name in ("", ".."):  # "." or "..": name the folder itself
                path = path.resolve()
            if not path.name:
                raise ConfigError(f"--sink {spec}: name a file or folder below / when "
                                  "several modes run (each gets its own)")
            spec = f"{kind}:{path.with_name(f'{path.stem}_{mode}{path.suffix}')}"
        named.append(spec)
    return tuple(named)


FLICKER_MIN_FRAMES = 8
"""The fewest frames :func:`~localsr_cam.measure.flicker.measure_flicker` takes (a test
keeps them equal)."""


def check_options(args: BenchOptions) -> None:
    """Raise :class:`LocalSRError` for a bad flag or an output that cannot or must not be
    written, before anything is measured: the numbers, ``--plot``'s format, every sink
    spec, and that no output (``--json``, ``--md``, ``--plot``, a file or folder sink of
    any mode) lands on the source or on another output."""
    if args.warmup < 0:
        raise ConfigError("--warmup must not be negative")
    if args.load < 0:
        raise ConfigError("--load must not be negative")
    if args.flicker < 0 or 0 < args.flicker < FLICKER_MIN_FRAMES:
        raise ConfigError(f"--flicker {args.flicker}: the flicker figure needs at least "
                          f"{FLICKER_MIN_FRAMES} frames (0 = off)")
    if args.plot is not None:
        check_plot_path(args.plot)
    _refuse_clobbers(args)
    for path, flag in ((args.json, "--json"), (args.md, "--md"), (args.plot, "--plot")):
        if path is not None:
            check_writable_file(path, flag)


def _refuse_clobbers(args: BenchOptions) -> None:
    """:func:`check_options`: no output on the source (a video file, or a folder of
    images and its images) or on another output."""
    from localsr_cam.capture.factory import make_source
    from localsr_cam.capture.images import list_images, refuse_photo_clobbers
    from localsr_cam.capture.sources import ImageFolderSource
    from localsr_cam.outputs.sinks import make_sink
    from localsr_cam.pipeline.run import source_path

    for spec in args.sink:
        make_sink(spec)  # a bad spec fails here, named as given, before any mode runs
    files = [(flag, path) for flag, path in (("--json", args.json), ("--md", args.md),
                                             ("--plot", args.plot)) if path is not None]
    folders: list[tuple[str, Path]] = []
    modes = bench_modes(args.mode)
    for mode in modes:
        for spec in mode_sinks(args.sink, mode, modes):
            path = getattr(make_sink(spec), "path", None)
            if path is not None:
                (folders if spec.startswith("dir:") else files).append(("--sink", Path(path)))
    source = make_source(CaptureConfig(source=args.source, size=args.input, fps=args.fps))
    if isinstance(source, ImageFolderSource) and not source.single:
        refuse_photo_clobbers(files, folders, source.folder, list_images(source.folder))
    else:  # a video file, one photo, or nothing read from disk (a camera, the sample)
        read = source_path(source)
        refuse_clobbers(files, folders, inputs=[] if read is None else [read])


def plot_formats() -> frozenset[str]:
    """The extensions (lower case, no dot) ``--plot`` can be written as: those this
    matplotlib saves, less ``pgf`` (it needs a LaTeX install) and ``avif`` where Pillow
    cannot write it."""
    from matplotlib.backend_bases import FigureCanvasBase

    formats = set(FigureCanvasBase.get_supported_filetypes()) - {"pgf"}
    if "avif" in formats:
        from PIL import features

        if not features.check("avif"):
            formats.discard("avif")
    return frozenset(formats)


def check_plot_path(path: Path) -> None:
    """Raise :class:`ConfigError` unless ``path`` ends in an extension matplotlib writes
    (:func:`plot_formats`), so a bad name fails before the benchmark, not after it."""
    suffix = path.suffix.lower().lstrip(".")
    formats = plot_formats()
    if suffix in formats:
        return
    what = f"a .{suffix} file" if suffix else "a file without an extension"
    common = [f for f in ("png", "pdf", "svg", "jpg") if f in formats]
    raise ConfigError(f"--plot {path}: cannot draw the plot as {what}; end the name in "
                      f".{', .'.join(common)} or another of: {', '.join(sorted(formats))}")


def _cpu_count() -> int:
    import os

    return os.cpu_count() or 0
