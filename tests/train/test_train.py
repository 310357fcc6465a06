"""`localsr-cam train`: data handling, a short run that learns, resume, bad input → 2."""

from __future__ import annotations

import json
import math
import os
import pickle
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from localsr_cam.capture.images import crop_even, list_images
from localsr_cam.cli import train as train_cli
from localsr_cam.cli.main import build_parser
from localsr_cam.cli.main import main as cli_main
from localsr_cam.errors import ConfigError, ModelError, SourceError
from localsr_cam.paths import sha256_file
from localsr_cam.train.data import PatchSampler, split_holdout
from localsr_cam.train.trainer import (
    TrainOptions,
    below_bicubic_db,
    resolve,
    ship_decision,
    train,
)
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
            "--out-dir", str(tmp_path / "engines"), "--no-progress", "--threads", "1",
            *extra]


def test_sampler_gives_lr_levels_hr_and_replays_from_its_state() -> None:
    images = [np.ascontiguousarray(_image(i)[:, :, ::-1]) for i in range(2)]
    sampler = PatchSampler(images, patch=32, degrade="webcam", seed=3, region=48)
    state = sampler.state()
    lr, levels, hr = sampler.batch(5)
    assert lr.shape == (5, 3, 16, 16) and hr.shape == (5, 3, 32, 32)
    assert levels.shape == (5, 3) and levels.dtype == torch.float32
    assert float(lr.min()) >= 0.0 and float(lr.max()) <= 1.0
    again = PatchSampler(images, patch=32, degrade="webcam", seed=99, region=48)
    again.set_state(state)
    lr2, levels2, hr2 = again.batch(5)
    assert torch.equal(lr, lr2) and torch.equal(levels, levels2) and torch.equal(hr, hr2)
    clean = PatchSampler(images, patch=32, degrade="area", seed=3).batch(2)
    # a clean area downscale: the LR patch is the 2x2 mean of the HR patch
    pooled = torch.nn.functional.avg_pool2d(clean[2] * 255, 2)
    assert float((clean[0] * 255 - pooled).abs().max()) <= 0.5 + 1e-3
    assert crop_even(_image(0, 31, 45)).shape == (30, 44, 3)


def test_sampler_draws_single_faults_at_its_share(monkeypatch: pytest.MonkeyPatch) -> None:
    from localsr_cam.measure import degrade as camera

    shares: list[tuple[float, float, float, float, float]] = []
    real = camera.degrade

    def spy(hr, rng, bgr=False, clean_share=camera.CLEAN_SHARE, single_share=0.0,
            sharpen_share=0.0, jpeg_share=0.0, light_jpeg_share=0.0):
        shares.append((clean_share, single_share, sharpen_share, jpeg_share,
                       light_jpeg_share))
        return real(hr, rng, bgr, clean_share, single_share, sharpen_share, jpeg_share,
                    light_jpeg_share)

    monkeypatch.setattr(camera, "degrade", spy)
    images = [np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)]
    PatchSampler(images, patch=32, degrade="webcam", seed=3, clean_share=0.1,
                 single_share=0.6, sharpen_share=0.3, jpeg_share=0.2,
                 light_jpeg_share=0.4).batch(3)
    assert shares == [(0.1, 0.6, 0.3, 0.2, 0.4)] * 3


def test_zoom_out_shrinks_the_regions_it_picks() -> None:
    """With ``zoom_out`` the HR patches of a grating show more stripes than the photo
    has in a patch's width (the region was cut larger and shrunk), by at most 1/zoom;
    without it, exactly the photo's stripes. The LR patch stays half the HR one."""
    columns = np.arange(512)
    grating = (127.5 + 100 * np.sin(2 * np.pi * columns / 32.0)).astype(np.uint8)
    photo = np.repeat(np.repeat(grating[None, :, None], 512, 0), 3, 2)

    def stripes(sampler: PatchSampler) -> list[float]:
        counts: list[float] = []
        for _ in range(12):
            _, _, hr = sampler.batch(1)
            grey = hr[0].mean(0).numpy() - 127.5 / 255
            # the patch may be turned 90°: the stripes cross one of its two axes
            counts.append(max(np.count_nonzero(np.diff(np.sign(line)) != 0) / 2
                              for line in (grey[0], grey[:, 0])))
        return counts

    plain = stripes(PatchSampler([photo], patch=64, degrade="area", seed=1))
    zoomed = PatchSampler([photo], patch=64, degrade="area", seed=1, zoom_out=0.5,
                          zoom_share=1.0)
    counts = stripes(zoomed)
    assert all(1.5 <= c <= 2.5 for c in plain)  # 64 px of a 32-px period
    assert max(counts) >= 3.0 and all(1.5 <= c <= 4.5 for c in counts)
    lr, _, hr = zoomed.batch(2)
    assert lr.shape == (2, 3, 32, 32) and hr.shape == (2, 3, 64, 64)
    with pytest.raises(ConfigError, match="zoom-out"):
        train(parse_args(["--zoom-out", "0", "--train-dir", ".", "--val-dir", "."]))


def test_holdout_moves_named_images_to_validation(data: tuple[Path, Path],
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    train_paths, val_paths = split_holdout([data[0]], [data[1]], "1.png, 2.png")
    assert [p.name for p in train_paths] == ["0.png"]
    assert [p.name for p in val_paths] == ["v.png", "1.png", "2.png"]
    with pytest.raises(ConfigError):
        split_holdout([data[0]], [data[1]], "nothere.png")


def _report(gains: dict[str, float], score: float) -> dict[str, object]:
    return {"suites": {k: {"mean": {"gain_db": g}} for k, g in gains.items()}, "score": score}


def test_ship_decision_needs_bicubic_and_the_shipped_model_beaten() -> None:
    good = _report({"area": 1.0, "lossy": 0.6}, 0.8)
    assert ship_decision(good, None)[0]
    assert ship_decision(good, _report({"area": 0.8, "lossy": 0.1}, 0.45))[0]
    ok, why = ship_decision(good, _report({"area": 1.2, "lossy": 0.7}, 0.95))
    assert not ok and "shipped" in why
    ok, why = ship_decision(_report({"area": 1.0, "lossy": -0.1}, 0.45), None)
    assert not ok and "lossy" in why


def test_ship_decision_refuses_a_net_that_flickers_more_than_bicubic() -> None:
    """A better score is not enough when the net makes a still noisy scene shimmer
    more than bicubic does — unless the shipped net already did, and more."""
    good = _report({"area": 1.0, "lossy": 0.6}, 0.8)
    old = _report({"area": 0.8, "lossy": 0.1}, 0.45)
    ok, why = ship_decision(good, old, (1.0012, 0.9866))
    assert not ok and "flickers more than bicubic" in why and "1.001" in why
    assert ship_decision(good, old, (0.99, 0.9866))[0]
    assert ship_decision(good, old, (1.03, 1.05))[0]  # less than the shipped one
    ok, why = ship_decision(good, old, (1.06, 1.05))
    assert not ok and "the shipped model" in why
    assert ship_decision(good, None, (None, None))[0]  # not measured: not judged


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
    argv = _args(data, tmp_path, "--model", "fast", "--epochs", "1", "--depth", "1",
                 "--force", "--seed", "4", "--clean-share", "0.7", "--single-share", "0.4",
                 "--sharpen-share", "0.25", "--light-jpeg-share", "0.5",
                 "--bicubic-hinge", "0.003")
    assert main(argv) == 0
    out = tmp_path / "engines"
    entry = json.loads((out / "manifest.json").read_text())["fast"]
    assert entry["config"] == {"width": 16, "depth": 1, "levels": 3, "chroma": True}
    assert entry["training"]["command"].startswith("localsr-cam train ")
    assert entry["training"]["seed"] == 4 and entry["training"]["recipe"]["degradation"]
    assert entry["training"]["recipe"]["clean_share"] == 0.7
    assert entry["training"]["recipe"]["single_share"] == 0.4
    assert entry["training"]["recipe"]["sharpen_share"] == 0.25
    assert entry["training"]["recipe"]["light_jpeg_share"] == 0.5
    assert entry["training"]["loss"].startswith("l1 + 0.003 × dB below bicubic")
    assert entry["onnx"]["levels"] == ["noise", "jpeg", "blur"]
    suites = entry["validation"]["suites"]
    assert set(suites) == {"area", "bicubic", "webcam", "lossy", "mjpeg", "lowlight", "soft",
                           "noisy", "sharpened"}
    assert set(suites["area"]["mean"]) >= {"psnr", "ssim", "bicubic_psnr", "gain_db"}
    monkeypatch.setenv("LOCALSR_ENGINES", str(out))
    model = load_model("fast")
    assert parity(model, out / "fast_unet.onnx", sizes=[(3, 5), (17, 33)]) <= 1e-4
    # its int8 form for the CPU backend, calibrated, validated and recorded beside it
    assert entry["files"]["onnx_int8"]["sha256"] == sha256_file(out / "fast_unet.int8.onnx")
    assert entry["int8"]["nodes"] == ["/down/Conv", "/body.0/Conv", "/tail/Conv"]
    assert set(entry["int8"]["validation_mean_gain_db"]) == set(suites)


def test_below_bicubic_counts_only_the_samples_that_lose_to_bicubic() -> None:
    torch.manual_seed(0)
    lr = torch.rand(3, 3, 8, 8)
    bicubic = F.interpolate(lr, scale_factor=2, mode="bicubic", align_corners=False)
    hr = bicubic + 0.05 * torch.randn_like(bicubic)
    # sample 0 is the bicubic upscale, 1 is closer to HR, 2 has twice bicubic's error
    sr = torch.stack([bicubic[0], (bicubic[1] + hr[1]) / 2, hr[2] + 2 * (bicubic[2] - hr[2])])
    sr.requires_grad_(True)
    db = below_bicubic_db(sr, lr, hr)
    assert db[0].item() == pytest.approx(0.0, abs=1e-4) and db[1].item() == 0.0
    assert db[2].item() == pytest.approx(10 * math.log10(4.0), rel=1e-3)  # 6.02 dB
    db.sum().backward()
    assert sr.grad is not None
    assert sr.grad[1].abs().max().item() == 0.0 and sr.grad[2].abs().max().item() > 0.0


def test_flicker_ratio_of_a_net_in_training() -> None:
    """The flicker figure of a net not shipped yet: a fresh FastUNet (plain bilinear
    upscaling, smoother than bicubic) stays under bicubic's shimmer, a net that adds
    noise of its own on every frame goes over it."""
    from localsr_cam.models.unet import FastUNet
    from localsr_cam.train.trainer import flicker_ratio

    class Shimmering(torch.nn.Module):
        levels = 0

        def forward(self, image: torch.Tensor) -> torch.Tensor:
            up = torch.nn.functional.interpolate(image, scale_factor=2, mode="bicubic")
            return up + 0.02 * torch.randn_like(up)

    calm = flicker_ratio(FastUNet(width=8, depth=1, levels=3, chroma=True), "fast")
    shimmering = flicker_ratio(Shimmering(), "fast")
    assert calm is not None and shimmering is not None
    assert calm < 1.0 < shimmering


def test_a_net_that_flickers_more_than_bicubic_is_not_shipped(
        data: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Once a trained net passes the score tests, its int8 form (what the CPU backend
    runs) is put through the flicker scene; one that shimmers more than bicubic goes to
    the work dir, not to engines/, and the entry says why."""
    from localsr_cam.train import trainer

    real = trainer.ship_decision
    measured: list[Path | None] = []

    def decision(new, old, flicker=(None, None)):
        if flicker == (None, None):
            return True, "better than bicubic and the shipped net"  # the scores pass
        return real({"suites": {}, "score": 1.0}, None, flicker)

    def ratio(model, name, int8=None):
        measured.append(int8)
        return 1.2

    monkeypatch.setattr(trainer, "ship_decision", decision)
    monkeypatch.setattr(trainer, "flicker_ratio", ratio)
    argv = _args(data, tmp_path, "--model", "fast", "--epochs", "1", "--depth", "1",
                 "--seed", "4")
    assert main(argv) == 0
    assert not (tmp_path / "engines" / "fast_unet.pt").exists()
    entry = json.loads((tmp_path / "work" / "fast" / "fast.manifest-entry.json").read_text())
    assert entry["shipped"] is False and "flickers more than bicubic" in entry["ship_decision"]
    assert entry["validation"]["flicker_ratio"] == 1.2
    assert len(measured) == 1 and measured[0] is not None  # no shipped net to measure
    assert measured[0].name.endswith(".int8.onnx.new")


def test_a_tiny_training_does_not_replace_a_better_shipped_model(
        data: tuple[Path, Path], tmp_path: Path) -> None:
    """A 2-iteration train must leave engines/ alone (and say where its model went);
    --force replaces it and keeps a backup."""
    from localsr_cam.models.unet import FastUNet

    out = tmp_path / "engines"
    out.mkdir()
    # "shipped": plain bilinear upscaling (FastUNet's zero-residual start) ...
    torch.save(FastUNet(width=16, depth=1).state_dict(), out / "fast_unet.pt")
    (out / "manifest.json").write_text(json.dumps(
        {"fast": {"config": {"width": 16, "depth": 1}}}))
    before = (out / "fast_unet.pt").read_bytes()
    # ... and a model of 2 steps at a huge learning rate: worse than that and bicubic
    argv = _args(data, tmp_path, "--model", "fast", "--depth", "1", "--epochs", "1",
                 "--iters", "2", "--lr", "0.05")
    assert main(argv) == 0
    assert (out / "fast_unet.pt").read_bytes() == before
    assert not (out / "fast_unet.onnx").exists()
    assert "config" in json.loads((out / "manifest.json").read_text())["fast"]
    work = tmp_path / "work" / "fast"
    assert (work / "fast_unet.pt").exists() and (work / "fast_unet.onnx").exists()
    entry = json.loads((work / "fast.manifest-entry.json").read_text())
    assert entry["shipped"] is False and "bicubic" in entry["ship_decision"]
    assert main([*argv, "--force"]) == 0
    assert (out / "fast_unet.pt").read_bytes() != before
    backups = sorted(p.name for p in (out / ".replaced").iterdir())
    assert any(n.endswith(".pt") for n in backups) and any(n.endswith(".json") for n in backups)


def test_the_mjpeg_variant_trains_on_mjpeg_and_must_beat_fast_first(
        data: tuple[Path, Path], tmp_path: Path) -> None:
    """``fast-jpeg`` draws MJPEG into every sample and validates on the MJPEG suites by
    default; with no files of its own it must beat the shipped ``fast``, which serves
    the MJPEG frames until it ships."""
    from localsr_cam.models.unet import FastUNet

    assert parse_args(_args(data, tmp_path)).jpeg_share is None
    plain = resolve(parse_args(_args(data, tmp_path, "--model", "fast")))
    variant = resolve(parse_args(_args(data, tmp_path, "--model", "fast-jpeg")))
    assert (plain.jpeg_share, plain.val_suites[-1]) == (0.0, "sharpened")
    assert (variant.jpeg_share, variant.val_suites) == (1.0, ("lossy", "mjpeg", "lowlight"))
    out = tmp_path / "engines"
    out.mkdir()
    torch.save(FastUNet(width=16, depth=1).state_dict(), out / "fast_unet.pt")
    (out / "manifest.json").write_text(json.dumps(
        {"fast": {"config": {"width": 16, "depth": 1}}}))
    argv = _args(data, tmp_path, "--model", "fast-jpeg", "--depth", "1", "--epochs", "1",
                 "--iters", "2", "--lr", "0.05")
    assert main(argv) == 0
    assert not (out / "fast_jpeg_unet.pt").exists()
    entry = json.loads((tmp_path / "work" / "fast-jpeg" / "fast-jpeg.manifest-entry.json")
                       .read_text())
    assert entry["shipped"] is False
    assert entry["validation"]["shipped_before"]["model"] == "fast"
    assert set(entry["validation"]["suites"]) == {"lossy", "mjpeg", "lowlight"}
    assert entry["training"]["recipe"]["jpeg_share"] == 1.0


def test_resume_continues_from_a_checkpoint(data: tuple[Path, Path], tmp_path: Path) -> None:
    first = _args(data, tmp_path, "--model", "fast", "--epochs", "1", "--no-export")
    assert main(first) == 0
    ckpt = tmp_path / "work" / "fast" / "last.pt"
    again = _args(data, tmp_path, "--model", "fast", "--epochs", "2", "--no-export",
                  "--resume", str(ckpt))
    summary = train(parse_args(again))
    assert [row["epoch"] for row in summary["history"]] == [1, 2]  # the past is kept


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
                                     "small", "share", "single", "sharpen",
                                     "jpeg", "light", "hinge"])
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
    elif problem == "share":
        argv = _args(data, tmp_path, *extra, "--clean-share", "1.5")
    elif problem == "single":
        argv = _args(data, tmp_path, *extra, "--single-share", "-0.1")
    elif problem == "sharpen":
        argv = _args(data, tmp_path, *extra, "--sharpen-share", "2")
    elif problem == "jpeg":
        argv = _args(data, tmp_path, *extra, "--model", "fast-jpeg", "--jpeg-share", "1.5")
    elif problem == "light":
        argv = _args(data, tmp_path, *extra, "--light-jpeg-share", "1.2")
    elif problem == "hinge":
        argv = _args(data, tmp_path, *extra, "--bicubic-hinge", "-1")
    else:
        argv = _args(data, tmp_path, *extra, "--patch", "128")
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("localsr-cam: error:") and len(err.splitlines()) == 1


@pytest.mark.parametrize("problem", ["work under a file", "out under a file",
                                     "out is a file"])
def test_a_bad_work_or_out_dir_returns_2_before_any_data_is_read(
        problem: str, data: tuple[Path, Path], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    """A folder that cannot be created (under a plain file: unwritable even for root) is
    one line and exit 2 before the data is read (the broken image would be the error
    otherwise) and before any epoch (no checkpoint), not a traceback at the first
    checkpoint or, for --out-dir, after the last epoch."""
    plain = tmp_path / "plain"
    plain.write_text("x")
    (data[0] / "broken.png").write_bytes(b"not a png")
    flag, value = {"work under a file": ("--work-dir", plain / "wd"),
                   "out under a file": ("--out-dir", plain / "engines"),
                   "out is a file": ("--out-dir", plain)}[problem]
    argv = [*_args(data, tmp_path, "--epochs", "1"), flag, str(value)]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("localsr-cam: error:") and len(err.splitlines()) == 1
    assert flag in err and str(plain) in err
    assert not list(tmp_path.rglob("last.pt"))


def test_out_dir_is_not_checked_without_export(data: tuple[Path, Path],
                                               tmp_path: Path) -> None:
    """--no-export writes nothing to the engines folder, so a bad one does not matter."""
    plain = tmp_path / "plain"
    plain.write_text("x")
    argv = [*_args(data, tmp_path, "--model", "fast", "--depth", "1", "--epochs", "1",
                   "--iters", "1", "--no-export"), "--out-dir", str(plain / "engines")]
    assert main(argv) == 0
    assert (tmp_path / "work" / "fast" / "best.pt").is_file()


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


def test_backproject_starts_from_weights_without_the_step(
        data: tuple[Path, Path], tmp_path: Path) -> None:
    from localsr_cam.models.unet import FastUNet

    weights = tmp_path / "start.pt"
    torch.save(FastUNet(width=16, depth=1, levels=3, chroma=True).state_dict(), weights)
    argv = _args(data, tmp_path, "--model", "fast", "--depth", "1", "--epochs", "1",
                 "--no-export", "--init", str(weights), "--backproject")
    summary = train(parse_args(argv))
    assert summary["init"]["sha256"] == sha256_file(weights)
    best = torch.load(tmp_path / "work" / "fast" / "best.pt", map_location="cpu")
    assert "backproject.strength.weight" in best
    with_step = tmp_path / "with_step.pt"  # and weights with the step need the flag
    torch.save(FastUNet(width=16, depth=1, levels=3, chroma=True,
                        backproject=True).state_dict(), with_step)
    with pytest.raises(ModelError, match="add --backproject"):
        train(parse_args(_args(data, tmp_path, "--model", "fast", "--depth", "1",
                               "--epochs", "1", "--no-export", "--init", str(with_step))))
    for model, levels in (("fast", "0"), ("paper", "3")):  # no levels; not FastUNet
        assert main(_args(data, tmp_path, "--model", model, "--levels", levels,
                          "--epochs", "1", "--no-export", "--backproject")) == 2


@pytest.mark.parametrize("flag", ["--lr", "--batch", "--patch", "--width"])
def test_an_explicit_zero_is_refused_not_replaced_by_the_default(
        flag: str, data: tuple[Path, Path], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(_args(data, tmp_path, "--epochs", "1", flag, "0")) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("localsr-cam: error:") and len(err.splitlines()) == 1


def test_base_flag_reaches_the_nets_config(
        data: tuple[Path, Path], tmp_path: Path) -> None:
    """``--base bicubic`` reaches the net's config (so the manifest records it); the
    default stays bilinear and unrecorded, as the shipped nets were made."""
    from localsr_cam.train.trainer import resolve

    argv = _args(data, tmp_path, "--model", "fast", "--base", "bicubic", "--epochs", "1")
    assert resolve(parse_args(argv)).config["base"] == "bicubic"
    assert "base" not in resolve(parse_args(_args(data, tmp_path, "--epochs", "1"))).config
