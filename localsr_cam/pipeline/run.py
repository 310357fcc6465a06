"""The ``run`` job: build source, processor and sinks from a config and run them."""

from __future__ import annotations

import logging
import re
from pathlib import Path

from localsr_cam.capture.camera import CameraSource
from localsr_cam.capture.factory import make_source
from localsr_cam.capture.sources import ImageFolderSource, Source, SyntheticSource, VideoSource
from localsr_cam.config import PipelineConfig
from localsr_cam.errors import ConfigError
from localsr_cam.frames import Controls
from localsr_cam.outputs.imagedir import ImageDirSink
from localsr_cam.outputs.mirror import MirroredSink, wants_mirror
from localsr_cam.outputs.sinks import Sink, make_sink
from localsr_cam.paths import refuse_clobbers
from localsr_cam.pipeline.threads import Pipeline, RunResult, check_sinks
from localsr_cam.process.processor import FrameProcessor

log = logging.getLogger(__name__)


def default_sinks(source: Source, workdir: Path | None = None) -> tuple[str, ...]:
    """``virtualcam`` for a camera; a folder of PNGs for a folder of images or one image
    file; otherwise an mp4; files and folders go in the working directory, named after
    the source (a file by its stem)."""
    if isinstance(source, CameraSource):
        return ("virtualcam",)
    folder = isinstance(source, ImageFolderSource) and not source.single
    name = Path(source.name).name if folder else Path(source.name).stem
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", name) or "output"
    if isinstance(source, ImageFolderSource):
        return (f"dir:{(workdir or Path.cwd()) / f'localsr_{stem}'}",)
    path = (workdir or Path.cwd()) / f"localsr_{stem}.mp4"
    return (f"file:{path}",)


def build_sinks(specs: tuple[str, ...], mirror: str = "none") -> list[Sink]:
    """Parse every sink spec before anything opens, so a typo fails fast; wrap those
    that ``mirror`` names in a :class:`MirroredSink`."""
    sinks = [make_sink(spec) for spec in specs]
    return [MirroredSink(sink) if wants_mirror(mirror, sink.name) else sink
            for sink in sinks]


def run(config: PipelineConfig, controls: Controls | None = None) -> RunResult:
    """Run the filter with ``config`` until it ends; returns the run's figures."""
    source = make_source(config.capture)
    specs = config.output.sinks or default_sinks(source)
    sinks = build_sinks(specs, config.output.mirror)
    read = source_path(source)
    refuse_clobbers([("--sink", Path(sink.path)) for sink in sinks if hasattr(sink, "path")],
                    inputs=[] if read is None else [read])
    offline = is_offline(source, specs)
    if offline:
        refuse_output_fps(config)
    # a size the config fixes is refused before the source opens (building a large
    # sample clip or reading a video's first frame can take seconds)
    early_size = known_output_size(config, source)
    if early_size is not None:
        check_sinks(sinks, early_size)
    for spec in specs:
        if spec.startswith(("file:", "dir:")) and not config.output.sinks:
            log.info("writing %s", spec.partition(":")[2])
    processor = FrameProcessor(config)
    if offline:
        log.debug("file in, files out: converting every frame (no pacing, none dropped)")
    if isinstance(source, SyntheticSource):
        source.loop = config.capture.loop or not offline  # a conversion ends with the clip
    paced = config.capture.paced and not offline
    pipeline = Pipeline(source, processor, sinks, fps=config.output.fps,
                        paced_capture=paced, paced_output=paced,
                        limit=config.output.frames, controls=controls,
                        output_size=config.output.size)
    if config.output.frames is None and runs_until_stopped(source):
        log.info("running until stopped: Ctrl-C to stop")
    result = pipeline.run()
    folders = [inner for inner in (getattr(sink, "sink", sink) for sink in sinks)
               if isinstance(inner, ImageDirSink)]
    result.written = [folder.written() for folder in folders]
    result.skipped = list(getattr(source, "skipped", []))
    return result


def refuse_output_fps(config: PipelineConfig) -> None:
    """Refuse an output fps in a file conversion (:func:`is_offline`): it sets the pace
    of live runs, and a conversion writes every input frame once at the input's rate,
    so a file written at another rate would only play slower or faster (60 frames of a
    2 s clip at 10 fps made a 6 s file)."""
    if config.output.fps is not None:
        raise ConfigError(f"--output-fps (or [output] fps) {config.output.fps:g} applies "
                          "to live runs only (a camera, or a preview or virtualcam output); "
                          "this run converts a file, every input frame once at the input's "
                          "rate: leave it out")


def known_output_size(config: PipelineConfig, source: Source) -> tuple[int, int] | None:
    """The sinks' frame size when the config fixes it before the source opens:
    ``--output``, else twice ``--input`` for a source that delivers exactly that size
    (an image folder fits each image inside it instead). ``None``: known only once the
    source is open."""
    if config.output.size is not None:
        return config.output.size
    size = config.capture.size
    if size is None or isinstance(source, ImageFolderSource):
        return None
    return 2 * size[0], 2 * size[1]


def source_path(source: Source) -> Path | None:
    """The file or folder a source reads, or ``None`` (a camera, the sample)."""
    if isinstance(source, VideoSource):
        return source.path
    if isinstance(source, ImageFolderSource):
        return source.folder
    return None


def runs_until_stopped(source: Source) -> bool:
    """Whether ``source`` has no end: a camera, or anything set to loop."""
    return source.live or bool(getattr(source, "loop", False))


def is_offline(source: Source, sink_specs: tuple[str, ...]) -> bool:
    """A file-to-file run: a non-live source and only file, image-folder or null sinks. Then every
    input frame is processed and written exactly once, so an output video has the
    input's frames at its rate, however fast the machine is."""
    return not source.live and all(spec.startswith(("file:", "dir:")) or spec == "null"
                                   for spec in sink_specs)


