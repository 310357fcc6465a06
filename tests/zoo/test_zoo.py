"""The model zoo: a model registered once shows up everywhere a model is chosen or used.

A toy super-resolution model is registered for the test, its files are written into a
temporary engines folder, and then it must appear in every command's choices and in
``models list``, be trainable and exportable, and run on every CPU backend.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from torch import nn

from localsr_cam.cli.main import build_parser, main
from localsr_cam.config import ModelConfig
from localsr_cam.errors import ConfigError
from localsr_cam.paths import sha256_file
from localsr_cam.process import ops
from localsr_cam.zoo import registry
from localsr_cam.zoo.artifacts import write_manifest_entry
from localsr_cam.zoo.backends import open_engine
from localsr_cam.zoo.loading import load_model
from localsr_cam.zoo.recipes import export_sr


class ToyUpscaler(nn.Module):
    """Bilinear 2× plus a learned 3×3 correction: ``image`` N×3×h×w → N×3×2h×2w."""

    def __init__(self, width: int = 4) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.ReLU(),
                                  nn.Conv2d(width, 3, 3, padding=1))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        up = nn.functional.interpolate(image, scale_factor=2, mode="bilinear",
                                       align_corners=False)
        return up + self.body(up)


TOY = registry.ModelSpec(
    "toy", "sr", "toy.onnx", "toy.pt", "make-the-toy", "a toy upscaler for the zoo test",
    build=lambda **config: ToyUpscaler(**config), export=export_sr)


@pytest.fixture
def toy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The toy model registered, with random weights and its ONNX in a temporary
    engines folder; unregistered afterwards."""
    monkeypatch.setenv("LOCALSR_ENGINES", str(tmp_path))
    registry.register_model(TOY)
    try:
        torch.manual_seed(0)
        model = ToyUpscaler().eval()
        torch.save(model.state_dict(), tmp_path / "toy.pt")
        export_sr(model, tmp_path / "toy.onnx")
        yield tmp_path
    finally:
        registry.unregister_model("toy")


def parser_choices(command: list[str], flag: str) -> list[str]:
    """The ``choices`` of ``flag`` in the parser of ``command`` (e.g. ``["bench"]``)."""
    parser = build_parser()
    for name in command:
        sub = next(a for a in parser._actions if a.dest in ("command", "action"))
        parser = sub.choices[name]  # type: ignore[index]
    action = next(a for a in parser._actions if flag in a.option_strings)
    return list(action.choices or ())


@pytest.mark.parametrize("command", [["run"], ["bench"], ["eval"], ["train"]])
def test_a_registered_model_is_a_choice_of_every_command(toy, command):
    assert "toy" in parser_choices(command, "--model")


def test_an_unregistered_model_is_no_choice():
    for command in (["run"], ["bench"], ["eval"], ["train"]):
        assert "toy" not in parser_choices(command, "--model")
    with pytest.raises(ConfigError, match="unknown model"):
        ModelConfig(model="toy")


def test_the_config_accepts_it_and_it_is_trainable_and_exportable(toy):
    assert ModelConfig(model="toy").model == "toy"
    assert "toy" in registry.sr_choices() and "toy" in registry.trainable_models()
    assert "toy" in registry.exportable_models()
    assert "toy" not in registry.segmenter_choices()


def toy_row(capsys: pytest.CaptureFixture[str]) -> list[str]:
    assert main(["models", "list"]) == 0
    [row] = [line for line in capsys.readouterr().out.splitlines() if line.startswith("toy")]
    return row.split()


def test_models_list_follows_its_files_and_manifest_entry(toy, capsys):
    assert toy_row(capsys)[:3] == ["toy", "unverified", str(toy / "toy.onnx")]
    files = {role: {"file": name, "sha256": sha256_file(toy / name)}
             for role, name in (("weights", "toy.pt"), ("onnx", "toy.onnx"))}
    write_manifest_entry("toy", {"kind": "sr", "files": files})
    assert toy_row(capsys)[1] == "ready"
    (toy / "toy.onnx").unlink()
    assert toy_row(capsys)[1] == "missing"


def test_it_loads_with_its_weights(toy):
    loaded = load_model("toy")
    assert isinstance(loaded, ToyUpscaler) and not loaded.training
    saved = torch.load(toy / "toy.pt", weights_only=True)
    assert all(torch.equal(saved[k], v) for k, v in loaded.state_dict().items())


@pytest.mark.parametrize("backend", ["cpu", "torch"])
def test_it_runs_on_each_cpu_backend_like_its_module(toy, backend):
    image = torch.rand(1, 3, 24, 40, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        expected = load_model("toy")(image)
    with contextlib.closing(open_engine("toy", backend, threads=1)) as engine:
        assert (engine.name, engine.backend) == ("toy", backend)
        got = ops.sr_rgb_float(engine({"image": image}))
    assert got.shape == (1, 3, 48, 80)
    assert float((got - expected).abs().max()) < 1e-4


def test_a_name_cannot_be_registered_twice(toy):
    with pytest.raises(ConfigError, match="already registered"):
        registry.register_model(TOY)
    with pytest.raises(ConfigError, match="already registered"):
        registry.register_model(registry.ModelSpec("bicubic", "sr", None, None, "", ""))


def test_train_builds_its_config_from_the_registry_entry(toy, tmp_path):
    from localsr_cam.train.trainer import TrainOptions, resolve
    from localsr_cam.zoo.loading import build_model

    settings = resolve(TrainOptions(tmp_path, tmp_path, model="toy", width=6))
    assert settings.config == {"width": 6}  # no train_config: the width only
    assert isinstance(build_model("toy", **settings.config), ToyUpscaler)
    fast = resolve(TrainOptions(tmp_path, tmp_path, model="fast", depth=3))
    assert fast.config == {"width": 16, "depth": 3, "levels": 3, "chroma": True}
    assert fast.loss == "l1"
    plain = resolve(TrainOptions(tmp_path, tmp_path, model="fast", jpeg_chroma=False))
    assert plain.config == {"width": 16, "depth": 2, "levels": 3}
    blind = resolve(TrainOptions(tmp_path, tmp_path, model="fast", levels=0))
    assert blind.config == {"width": 16, "depth": 2}  # no levels: a blind net, no chroma
    paper = resolve(TrainOptions(tmp_path, tmp_path, model="paper", no_residual=True))
    assert paper.config == {"width": 32, "dropout": 0.1, "residual": False, "levels": 3,
                            "chroma": True}
    assert paper.loss == "mse"


def test_the_selfie_entries_state_the_input_their_modules_take():
    from localsr_cam.models.selfie import VARIANTS

    for name, size in VARIANTS.items():
        assert registry.model_spec(name).input_size == size
