"""The running filter: threads, one-frame slots, pacing, stop, GPU double buffering,
and :func:`~localsr_cam.pipeline.run.run`, which wires a source, the processor and the
sinks from a config.

May import capture, process, outputs, config, frames and errors; not cli, measure or
train.
"""
