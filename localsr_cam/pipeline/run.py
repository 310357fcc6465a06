"""The ``run`` job: build source, processor and sinks from a config and run them."""

from __future__ import annotations

import logging
import re
from pathlib import Path

from localsr_cam.capture.camera import CameraSource
from localsr_cam.capture.factory import make_source
from localsr_cam.capture.sources import Source
from localsr_cam.config import PipelineConfig
from localsr_cam.frames import Controls
from localsr_cam.outputs.sinks import Sink, make_sink
from localsr_cam.pipeline.threads import Pipeline, RunResult
from localsr_cam.process.processor import FrameProcessor

log = logging.getLogger(__name__)


def default_sinks(source: Source, workdir: Path | None = None) -> tuple[str, ...]:
    """``virtualcam`` for a camera; otherwise an mp4 in the working directory."""
    if isinstance(source, CameraSource):
        return ("virtualcam",)
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(source.name).stem) or "output"
    path = (workdir or Path.cwd()) / f"localsr_{stem}.mp4"
    return (f"file:{path}",)


def build_sinks(specs: tuple[str, ...]) -> list[Sink]:
    """Parse every sink spec before anything opens, so a typo fails fast."""
    return [make_sink(spec) for spec in specs]


def run(config: PipelineConfig, controls: Controls | None = None) -> RunResult:
    """Run the filter with ``config`` until it ends; returns the run's figures."""
    source = make_source(config.capture)
    specs = config.output.sinks or default_sinks(source)
    sinks = build_sinks(specs)
    for spec in specs:
        if spec.startswith("file:") and not config.output.sinks:
            log.info("writing %s", spec[len("file:"):])
    processor = FrameProcessor(config, controls)
    offline = is_offline(source, specs)
    if offline:
        log.debug("file in, files out: converting every frame (no pacing, none dropped)")
    paced = config.capture.paced and not offline
    pipeline = Pipeline(source, processor, sinks, fps=config.output.fps,
                        paced_capture=paced, paced_output=paced,
                        limit=config.output.frames, controls=controls)
    return pipeline.run()


def is_offline(source: Source, sink_specs: tuple[str, ...]) -> bool:
    """A file-to-file run: a non-live source and only file or null sinks. Then every
    input frame is processed and written exactly once, so an output video has the
    input's frames at its rate, however fast the machine is."""
    return not source.live and all(spec.startswith("file:") or spec == "null"
                                   for spec in sink_specs)


