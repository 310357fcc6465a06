"""Config dataclasses, TOML loading and CLI overrides."""

from __future__ import annotations

import pytest

from localsr_cam.config import (
    BlendConfig,
    CaptureConfig,
    ModelConfig,
    OutputConfig,
    PipelineConfig,
    load_config,
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
    base = PipelineConfig(model=ModelConfig(model="paper", threads=3))
    config = with_overrides(base, {"model": {"model": "fast", "threads": None},
                                   "output": {"frames": 5}})
    assert config.model == ModelConfig(model="fast", threads=3)
    assert config.output == OutputConfig(frames=5)


@pytest.mark.parametrize("text, size", [("640x360", (640, 360)), ("3X2", (3, 2)),
                                        ("1280×720", (1280, 720))])
def test_parse_size(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["0x0", "640", "axb", "-1x5"])
def test_parse_size_rejects(text):
    with pytest.raises(ConfigError):
        parse_size(text)


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
