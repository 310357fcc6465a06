"""The ``run`` job's checks before anything opens (pipeline/run.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from localsr_cam.capture.sources import ImageFolderSource, SyntheticSource, VideoSource
from localsr_cam.config import CaptureConfig, OutputConfig, PipelineConfig
from localsr_cam.errors import ConfigError
from localsr_cam.pipeline.run import known_output_size, refuse_output_fps


def config(input_size=None, output_size=None, fps=None) -> PipelineConfig:
    return PipelineConfig(capture=CaptureConfig(size=input_size),
                          output=OutputConfig(size=output_size, fps=fps))


def test_the_output_size_is_known_early_when_the_config_fixes_it(tmp_path):
    sample = SyntheticSource((64, 36))
    assert known_output_size(config(output_size=(100, 50)), sample) == (100, 50)
    assert known_output_size(config(input_size=(64, 36)), sample) == (128, 72)
    video = VideoSource(Path(tmp_path / "clip.mp4"), size=(64, 36))
    assert known_output_size(config(input_size=(64, 36)), video) == (128, 72)
    assert known_output_size(config(), video) is None  # the file's own size, once open
    folder = ImageFolderSource(tmp_path, size=(64, 36))  # each image fits inside it
    assert known_output_size(config(input_size=(64, 36)), folder) is None


def test_an_output_fps_is_refused_in_a_conversion_only_when_set():
    refuse_output_fps(config())
    with pytest.raises(ConfigError, match="live runs only"):
        refuse_output_fps(config(fps=10.0))
