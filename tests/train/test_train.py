"""`localsr-cam train`: data handling, a short run that learns, resume, bad input → 2."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from localsr_cam.capture.images import crop_even, list_images
from localsr_cam.cli import train as train_cli
from localsr_cam.cli.main import build_parser
from localsr_cam.cli.main import main as cli_main
from localsr_cam.errors import ConfigError, SourceError
from localsr_cam.measure.degradation import degrade
from localsr_cam.train.trainer import TrainOptions, train
from localsr_cam.zoo.export import parity
from localsr_cam.zoo.loading import load_model


def main(argv: list[str]) -> int:
    return cli_main(["train", *argv])


def parse_args(argv: list[str]) -> TrainOptions:
    args = build_parser().parse_args(["train", *argv])
    args.argv = list(argv)
    return train_cli.options_from(args)


def _image(seed: int, h: int = 72, w: int = 88) -> np.ndarray:
    """A smooth random uint8 BGR image (blurred noise plus a gradient)."""
    rng = np.random.default_rng(seed)
    noise = (rng.random((h, w, 3)) * 255).astype(np.uint8)
    img = cv2.GaussianBlur(noise, (7, 7), 2.0)
    ramp = np.linspace(0, 60, w, dtype=np.float32)[None, :, None]
    return np.clip(img.astype(np.float32) + ramp, 0, 255).astype(np.uint8)


@pytest.fixture
def data(tmp_path: Path) -> tuple[Path, Path]:
    train_dir, val_dir = tmp_path / "train", tmp_path / "val"
    train_dir.mkdir()
    val_dir.mkdir()
    for i in range(3):
        cv2.imwrite(str(train_dir / f"{i}.png"), _image(i))
    cv2.imwrite(str(val_dir / "v.png"), _image(9, 41, 57))
    return train_dir, val_dir


def _args(data: tuple[Path, Path], tmp_path: Path, *extra: str) -> list[str]:
    return ["--train-dir", str(data[0]), "--val-dir", str(data[1]), "--patch", "32",
            "--batch", "4", "--iters", "6", "--work-dir", str(tmp_path / "work"),
            "--out-dir", str(tmp_path / "engines"), "--quiet", "--threads", "1", *extra]


def test_degrade_crops_to_even_and_halves() -> None:
    hr = _image(0, 31, 45)
    for method in ("area", "bicubic"):
        lr = degrade(hr, method)
        assert lr.shape == (15, 22, 3) and lr.dtype == np.uint8
    assert crop_even(hr).shape == (30, 44, 3)
    flat = np.full((4, 4, 3), 7, np.uint8)
    assert (degrade(flat, "area") == 7).all()
    with pytest.raises(ConfigError):
        degrade(hr, "nearest")


def test_list_images_accepts_div2k_layout(tmp_path: Path) -> None:
    (tmp_path / "DIV2K_train_HR").mkdir()
    (tmp_path / "DIV2K_train_LR_bicubic").mkdir()
    cv2.imwrite(str(tmp_path / "DIV2K_train_HR" / "0001.png"), _image(0))
    cv2.imwrite(str(tmp_path / "DIV2K_train_LR_bicubic" / "0001x2.png"), _image(1))
    assert [p.name for p in list_images(tmp_path)] == ["0001.png"]
    with pytest.raises(SourceError):
        list_images(tmp_path / "DIV2K_train_LR_bicubic" / "missing")


def test_short_training_lowers_the_loss(data: tuple[Path, Path], tmp_path: Path) -> None:
    argv = _args(data, tmp_path, "--model", "paper", "--epochs", "4", "--no-export")
    summary = train(parse_args(argv))
    losses = [row["loss"] for row in summary["history"]]
    assert losses[-1] < losses[0]
    assert (tmp_path / "work" / "paper" / "last.pt").exists()


def test_training_ships_weights_onnx_and_manifest(data: tuple[Path, Path], tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    argv = _args(data, tmp_path, "--model", "fast", "--epochs", "1", "--depth", "1")
    assert main(argv) == 0
    out = tmp_path / "engines"
    entry = json.loads((out / "manifest.json").read_text())["fast"]
    assert entry["config"] == {"width": 16, "depth": 1}
    assert entry["training"]["command"].startswith("localsr-cam train ")
    assert set(entry["validation"]["mean"]) >= {"psnr", "ssim", "bicubic_psnr", "bicubic_ssim"}
    monkeypatch.setenv("LOCALSR_ENGINES", str(out))
    model = load_model("fast")
    assert parity(model, out / "fast_unet.onnx", sizes=[(3, 5), (17, 33)]) <= 1e-4


def test_resume_continues_from_a_checkpoint(data: tuple[Path, Path], tmp_path: Path) -> None:
    first = _args(data, tmp_path, "--model", "fast", "--epochs", "1", "--no-export")
    assert main(first) == 0
    ckpt = tmp_path / "work" / "fast" / "last.pt"
    again = _args(data, tmp_path, "--model", "fast", "--epochs", "2", "--no-export",
                  "--resume", str(ckpt))
    summary = train(parse_args(again))
    assert [row["epoch"] for row in summary["history"]] == [2]


class _Exploit:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, ("echo pwned > /dev/null",))


@pytest.mark.parametrize("content", ["code", "state_dict", "garbage"])
def test_resume_from_a_bad_checkpoint_returns_2(content: str, data: tuple[Path, Path],
                                                tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.pt"
    if content == "code":
        bad.write_bytes(pickle.dumps({"model": _Exploit()}))
    elif content == "state_dict":
        torch.save({"head.weight": torch.zeros(1)}, bad)
    else:
        bad.write_bytes(b"nonsense")
    argv = _args(data, tmp_path, "--model", "fast", "--epochs", "1", "--resume", str(bad))
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "bad.pt" in err and len(err.splitlines()) == 1


@pytest.mark.parametrize("problem", ["empty", "unreadable", "patch", "model", "missing",
                                     "small"])
def test_bad_input_returns_2(problem: str, data: tuple[Path, Path], tmp_path: Path,
                             capsys: pytest.CaptureFixture[str]) -> None:
    train_dir, _ = data
    extra: list[str] = ["--epochs", "1"]
    if problem == "empty":
        empty = tmp_path / "empty"
        empty.mkdir()
        argv = _args((empty, data[1]), tmp_path, *extra)
    elif problem == "unreadable":
        (train_dir / "broken.png").write_bytes(b"not a png")
        argv = _args(data, tmp_path, *extra)
    elif problem == "patch":
        argv = _args(data, tmp_path, *extra, "--patch", "30")
    elif problem == "model":
        argv = _args(data, tmp_path, *extra, "--model", "huge")
    elif problem == "missing":
        argv = ["--val-dir", str(data[1])]
    else:
        argv = _args(data, tmp_path, *extra, "--patch", "128")
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("localsr-cam: error:") and len(err.splitlines()) == 1


def test_init_fine_tunes_from_weights_and_refuses_a_mismatch(
        data: tuple[Path, Path], tmp_path: Path) -> None:
    from localsr_cam.models.unet import FastUNet

    weights = tmp_path / "start.pt"
    torch.save(FastUNet(width=16, depth=1).state_dict(), weights)
    argv = _args(data, tmp_path, "--model", "fast", "--depth", "1", "--epochs", "1",
                 "--no-export", "--init", str(weights))
    summary = train(parse_args(argv))
    assert summary["init"]["sha256"] and len(summary["history"]) == 1
    wrong = _args(data, tmp_path, "--model", "fast", "--depth", "3", "--epochs", "1",
                  "--no-export", "--init", str(weights))
    assert main(wrong) == 2


@pytest.mark.parametrize("flag", ["--lr", "--batch", "--patch", "--width"])
def test_an_explicit_zero_is_refused_not_replaced_by_the_default(
        flag: str, data: tuple[Path, Path], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(_args(data, tmp_path, "--epochs", "1", flag, "0")) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("localsr-cam: error:") and len(err.splitlines()) == 1
