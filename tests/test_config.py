"""Config dataclasses, TOML loading and CLI overrides."""

from __future__ import annotations

import os

import pytest

from localsr_cam.config import (
    MAX_INPUT_SIDE,
    MAX_OUTPUT_SIDE,
    BlendConfig,
    CaptureConfig,
    ModelConfig,
    OutputConfig,
    PipelineConfig,
    load_config,
    max_threads,
    parse_size,
    with_overrides,
)
from localsr_cam.errors import ConfigError


def test_toml_sets_fields_and_keeps_defaults(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[capture]\nsource = "synthetic"\nsize = "320x180"\nfps = 25\n'
                    '[model]\nmodel = "bicubic"\n[blend]\nfeather_px = 6\n'
                    '[output]\nsinks = ["null", "preview"]\n')
    config = load_config(path)
    assert config.capture == CaptureConfig(source="synthetic", size=(320, 180), fps=25.0)
    assert config.model.model == "bicubic" and config.model.backend == "auto"
    assert config.blend.feather_px == 6 and config.blend.ema == BlendConfig().ema
    assert config.output.sinks == ("null", "preview")


@pytest.mark.parametrize("text, message", [
    ("[capture]\nsorce = 'x'\n", "unknown key 'sorce'"),
    ("[captur]\n", "unknown table"),
    ("[capture]\nfps = 'fast'\n", "must be float"),
    ("[blend]\nfull_frame = 1\n", "must be bool"),
    ("[capture]\nfps = -3\n", "greater than 0"),
    ("[capture]\nsize = [0, 0]\n", "at least 1x1"),
    ("[model]\nbackend = 'quantum'\n", "unknown backend"),
    ("[model]\ndenoise = 'strong'\n", "unknown denoise"),
    ("[capture]\nfps = inf\n", "finite number"),
    ("[capture]\nfps = nan\n", "finite number"),
    ("[capture]\nfps = 1e12\n", "at most 1000"),
    ("[output]\nfps = inf\n", "finite number"),
    ("[model]\nthreads = 100000\n", "at most"),
    ("[model]\nthreads = 0\n", "at least 1"),
    ("[capture]\nsize = '20000x20000'\n", "input size 20000x20000 is too large"),
    ("[capture]\nsize = [8193, 100]\n", "at most 8192 pixels a side"),
    ("[output]\nsize = [100000, 100000]\n", "output size 100000x100000 is too large"),
    ("[capture]\nsource = ''\n", "source is empty"),
    ("[capture\n", "not valid TOML"),
])
def test_bad_config_is_one_clear_error(tmp_path, text, message):
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(path)


def test_unreadable_config(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(tmp_path / "missing.toml")


def test_overrides_replace_only_given_values():
    base = PipelineConfig(model=ModelConfig(model="paper", threads=1))
    config = with_overrides(base, {"model": {"model": "fast", "threads": None},
                                   "output": {"frames": 5}})
    assert config.model == ModelConfig(model="fast", threads=1)
    assert config.output == OutputConfig(frames=5)


@pytest.mark.parametrize("text, size", [("640x360", (640, 360)), ("3X2", (3, 2)),
                                        ("1280×720", (1280, 720))])
def test_parse_size(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["0x0", "640", "axb", "-1x5"])
def test_parse_size_rejects(text):
    with pytest.raises(ConfigError):
        parse_size(text)


def test_sizes_have_an_upper_bound_that_covers_8k_video():
    assert parse_size("7680x4320", max_side=MAX_INPUT_SIDE) == (7680, 4320)
    assert CaptureConfig(size=(8192, 4320)).size == (8192, 4320)
    assert CaptureConfig(size=(4320, 8192)).size == (4320, 8192)  # portrait 8K
    assert OutputConfig(size=(16384, 8640)).size == (16384, 8640)  # 2x of DCI 8K
    with pytest.raises(ConfigError, match="at most 8192 pixels a side"):
        parse_size("8193x4320", max_side=MAX_INPUT_SIDE)
    with pytest.raises(ConfigError, match="at most 16384 pixels a side"):
        parse_size("100000x100000")
    assert MAX_OUTPUT_SIDE == 2 * MAX_INPUT_SIDE


def test_threads_up_to_the_cpu_count_are_accepted_more_are_refused():
    assert max_threads() == (os.cpu_count() or max_threads())
    assert ModelConfig(threads=max_threads()).threads == max_threads()
    with pytest.raises(ConfigError, match=f"at most {max_threads()}"):
        ModelConfig(threads=max_threads() + 1)


def test_a_finite_fps_up_to_1000_is_accepted():
    assert CaptureConfig(fps=1000.0).fps == 1000.0
    assert OutputConfig(fps=0.5).fps == 0.5
    with pytest.raises(ConfigError, match="finite"):
        OutputConfig(fps=float("inf"))


@pytest.mark.parametrize("source", ["", "   "])
def test_an_empty_source_is_refused(source):
    with pytest.raises(ConfigError, match="source is empty"):
        CaptureConfig(source=source)


def test_thresholds_must_be_ordered():
    with pytest.raises(ConfigError, match="threshold_low"):
        BlendConfig(threshold_low=0.8, threshold_high=0.5)


def test_importing_the_package_is_cheap_and_exposes_the_api():
    import subprocess
    import sys

    code = ("import sys, localsr_cam; heavy = {'torch', 'cv2', 'onnxruntime'} & "
            "set(sys.modules); print(sorted(heavy)); "
            "from localsr_cam import FrameProcessor, PipelineConfig, Pipeline, main; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["[]", "ok"]
