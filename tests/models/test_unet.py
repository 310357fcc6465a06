"""The SR U-Nets: engine contract shapes, ONNX parity, safe loading."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from localsr_cam.errors import ConfigError, ModelError
from localsr_cam.models.unet import FastUNet, PaperUNet, count_params, macs_per_lr_pixel
from localsr_cam.zoo.artifacts import engines_dir, write_manifest_entry
from localsr_cam.zoo.export import export_sr_onnx, ort_session, parity
from localsr_cam.zoo.loading import build_model, load_model

ODD_SIZES = [(1, 1), (3, 5), (17, 33), (2, 7)]


def _randomized(name: str) -> nn.Module:
    """A model with every weight random (FastUNet's tail starts at zero otherwise)."""
    torch.manual_seed(0)
    model = build_model(name)
    for p in model.parameters():
        nn.init.normal_(p, std=0.1)
    return model.eval()


@pytest.mark.parametrize("name", ["fast", "paper"])
@pytest.mark.parametrize(("h", "w"), ODD_SIZES)
def test_output_is_twice_the_input(name: str, h: int, w: int) -> None:
    model = _randomized(name)
    with torch.no_grad():
        sr = model(torch.rand(2, 3, h, w))
    assert sr.shape == (2, 3, 2 * h, 2 * w)
    assert sr.dtype == torch.float32
    assert torch.isfinite(sr).all()


def test_fresh_fast_unet_is_bilinear_upscaling() -> None:
    image = torch.rand(1, 3, 9, 11)
    with torch.no_grad():
        sr = FastUNet()(image)
    expected = F.interpolate(image, scale_factor=2, mode="bilinear", align_corners=False)
    assert torch.allclose(sr, expected, atol=1e-6)


@pytest.mark.parametrize("size", [(1, 1), (2, 3), (9, 11)])
def test_fresh_bicubic_based_fast_unet_is_opencvs_bicubic(size: tuple[int, int]) -> None:
    """The residual's zero is exactly the upscale the gain is measured against, edges and
    tiny crops included, in the ONNX form (its 5×5 sub-pixel kernels) as in forward."""
    import cv2

    h, w = size
    image = torch.rand(1, 3, h, w)
    net = FastUNet(base="bicubic").eval()
    expected = cv2.resize(image[0].permute(1, 2, 0).numpy(), (2 * w, 2 * h),
                          interpolation=cv2.INTER_CUBIC).reshape(2 * h, 2 * w, 3)
    with torch.no_grad():
        for form in (net, net.export_module()):
            sr = form(image)[0].permute(1, 2, 0).numpy()
            assert np.abs(sr - expected).max() < 1e-5
    assert net.config()["base"] == "bicubic" and "base" not in FastUNet().config()
    with pytest.raises(ConfigError, match="base"):
        FastUNet(base="lanczos")


def test_bicubic_based_fast_unet_exports_and_matches(tmp_path: Path) -> None:
    torch.manual_seed(1)
    model = FastUNet(base="bicubic")
    for p in model.parameters():
        nn.init.normal_(p, std=0.1)
    path = tmp_path / "fast_bicubic.onnx"
    export_sr_onnx(model.eval(), path)
    assert parity(model, path, sizes=[(1, 1), (3, 5), (17, 33)]) <= 1e-4


@pytest.mark.parametrize("name", ["fast", "paper"])
def test_onnx_matches_pytorch_on_odd_sizes(name: str, tmp_path: Path) -> None:
    model = _randomized(name)
    path = tmp_path / f"{name}.onnx"
    export_sr_onnx(model, path)
    assert parity(model, path, sizes=[(1, 1), (3, 5), (17, 33), (40, 24)]) <= 1e-4
    session = ort_session(path, threads=1)
    assert [i.name for i in session.get_inputs()] == ["image"]
    assert [o.name for o in session.get_outputs()] == ["sr"]
    out = session.run(["sr"], {"image": np.zeros((2, 3, 5, 7), np.float32)})[0]
    assert out.shape == (2, 3, 10, 14)


def test_onnx_bicubic_resize_matches_torch(tmp_path: Path) -> None:
    class Bicubic(nn.Module):
        def forward(self, image: torch.Tensor) -> torch.Tensor:
            return F.interpolate(image, scale_factor=2, mode="bicubic", align_corners=False)

    path = tmp_path / "bicubic.onnx"
    export_sr_onnx(Bicubic(), path)
    assert parity(Bicubic(), path, sizes=[(1, 1), (2, 3), (17, 33), (64, 48)]) <= 1e-4


@pytest.mark.parametrize("name", ["fast", "paper"])
def test_shipped_engines_match_their_weights(name: str) -> None:
    directory = engines_dir()
    files = {"fast": "fast_unet", "paper": "paper_unet"}[name]
    if not (directory / f"{files}.pt").exists() or not (directory / f"{files}.onnx").exists():
        pytest.skip(f"{name} is not trained yet")
    model = load_model(name)
    assert parity(model, directory / f"{files}.onnx", sizes=[(3, 5), (17, 33)]) <= 1e-4


def test_build_model_rejects_unknown_names_and_arguments() -> None:
    with pytest.raises(ConfigError):
        build_model("huge")
    with pytest.raises(ConfigError):
        build_model("fast", colour=3)
    with pytest.raises(ConfigError):
        FastUNet(width=0)


def test_size_figures() -> None:
    fast, paper = FastUNet(width=16, depth=2), PaperUNet(width=32)
    assert 10_000 < count_params(fast) < 50_000
    assert macs_per_lr_pixel(fast) < 10_000
    assert macs_per_lr_pixel(paper) > 10 * macs_per_lr_pixel(fast)


@pytest.fixture
def engines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LOCALSR_ENGINES", str(tmp_path))
    return tmp_path


def test_load_model_rebuilds_config_from_manifest(engines: Path) -> None:
    model = FastUNet(width=16, depth=1)
    torch.save(model.state_dict(), engines / "fast_unet.pt")
    write_manifest_entry("fast", {"config": model.config()})
    loaded = load_model("fast")
    assert isinstance(loaded, FastUNet) and loaded.depth == 1 and not loaded.training


def test_load_model_missing_file_names_the_command(engines: Path) -> None:
    with pytest.raises(ModelError, match="localsr-cam train --model paper"):
        load_model("paper")


def test_load_model_mismatched_config(engines: Path) -> None:
    torch.save(FastUNet(width=16, depth=3).state_dict(), engines / "fast_unet.pt")
    with pytest.raises(ModelError, match="does not match"):
        load_model("fast")


class _Exploit:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, ("echo pwned > /dev/null",))


@pytest.mark.parametrize("content", ["list", "mixed", "code", "garbage", "empty"])
def test_unsafe_or_wrong_weights_are_refused(content: str, engines: Path) -> None:
    path = engines / "bad.pt"
    if content == "list":
        torch.save([torch.zeros(1)], path)
    elif content == "mixed":
        torch.save({"head.weight": torch.zeros(1), "note": "hello"}, path)
    elif content == "code":
        path.write_bytes(pickle.dumps({"head.weight": _Exploit()}))
    elif content == "garbage":
        path.write_bytes(b"\x00not a torch file")
    else:
        path.write_bytes(b"")
    with pytest.raises(ModelError) as info:
        load_model("fast", weights=path)
    message = str(info.value)
    assert "bad.pt" in message and "localsr-cam train --model fast" in message
    assert "\n" not in message


def test_film_starts_as_the_identity_and_levels_then_steer_the_output():
    import torch

    from localsr_cam.models.unet import FastUNet, PaperUNet

    torch.manual_seed(0)
    for blind, aware in ((FastUNet(16, 1), FastUNet(16, 1, levels=3)),
                         (PaperUNet(8, dropout=0.0), PaperUNet(8, dropout=0.0, levels=3))):
        for p in blind.parameters():
            torch.nn.init.normal_(p, std=0.1)
        missing = aware.load_state_dict(blind.state_dict(), strict=False).missing_keys
        assert missing and all(k.startswith("film.") for k in missing)
        image, levels = torch.rand(2, 3, 12, 14), torch.rand(2, 3)
        with torch.no_grad():
            assert torch.allclose(aware.eval()(image, levels), blind.eval()(image), atol=1e-6)
            torch.nn.init.normal_(aware.film.out.weight, std=0.5)
            a = aware(image, levels)
            b = aware(image, levels.flip(0))
        assert float((a - b).abs().max()) > 1e-3  # each sample reads its own levels
        assert aware.config()["levels"] == 3 and "levels" not in blind.config()


def _random_fast(**config: object) -> FastUNet:
    torch.manual_seed(3)
    net = FastUNet(16, 1, **config)  # type: ignore[arg-type]
    for p in net.parameters():
        nn.init.normal_(p, std=0.1)
    return net.eval()


def test_back_projection_starts_as_the_identity_and_then_follows_the_levels() -> None:
    plain = _random_fast(levels=3)
    stepped = FastUNet(16, 1, levels=3, backproject=True).eval()
    missing = stepped.load_state_dict(plain.state_dict(), strict=False).missing_keys
    assert missing and all(k.startswith("backproject.") for k in missing)
    image, levels = torch.rand(2, 3, 13, 10), torch.rand(2, 3)
    with torch.no_grad():
        assert torch.equal(stepped(image, levels), plain(image, levels))
        for net in (plain, stepped):  # FiLM off: the SR before the step ignores the levels
            nn.init.zeros_(net.film.out.weight)
            nn.init.zeros_(net.film.out.bias)
        stepped.backproject.strength.weight.copy_(torch.tensor([[2.0, 0.0, 0.0]]))
        image = image[:1].expand(2, -1, -1, -1)  # one picture, two noise levels
        changed = stepped(image, levels) - plain(image, levels)
    # λ per sample from its own levels (here 2 × the noise level)
    assert float(changed.abs().max()) > 1e-3
    ratio = changed[0].abs().sum() / changed[1].abs().sum()
    assert float(ratio) == pytest.approx(float(levels[0, 0] / levels[1, 0]), rel=1e-4)
    assert stepped.config()["backproject"] is True and "backproject" not in plain.config()
    with pytest.raises(ConfigError, match="levels"):
        FastUNet(backproject=True)


@pytest.mark.parametrize(("base", "flag"), [("bilinear", "INTER_LINEAR"),
                                            ("bicubic", "INTER_CUBIC")])
def test_back_projection_adds_the_upscaled_miss_of_the_area_downscale(
        base: str, flag: str) -> None:
    """λ = 1: the SR plus the base upscale of (input − the SR's 2× area downscale), as
    OpenCV computes it, for both forms of the net; the step brings the downscale closer
    to the input."""
    import cv2

    plain = _random_fast(levels=3, base=base)
    stepped = FastUNet(16, 1, levels=3, base=base, backproject=True)
    stepped.load_state_dict(plain.state_dict(), strict=False)
    with torch.no_grad():
        stepped.backproject.strength.bias.fill_(1.0)
    image, levels = torch.rand(1, 3, 9, 14), torch.rand(1, 3)

    def hwc(t: torch.Tensor) -> np.ndarray:
        return np.ascontiguousarray(t[0].permute(1, 2, 0).numpy())

    with torch.no_grad():
        sr = hwc(plain(image, levels))
        forms = [hwc(stepped.eval()(image, levels)), hwc(stepped.export_module()(image, levels))]
    miss = hwc(image) - cv2.resize(sr, (14, 9), interpolation=cv2.INTER_AREA)
    expected = sr + cv2.resize(miss, (28, 18), interpolation=getattr(cv2, flag))
    for ours in forms:
        assert np.abs(ours - expected).max() < 1e-5
    after = np.abs(cv2.resize(forms[0], (14, 9), interpolation=cv2.INTER_AREA) - hwc(image))
    assert after.mean() < np.abs(miss).mean()


def test_back_projecting_fast_unet_exports_and_matches(tmp_path: Path) -> None:
    import onnx

    model = _random_fast(levels=3, chroma=True, backproject=True)
    path = tmp_path / "fast_bp.onnx"
    export_sr_onnx(model, path)
    assert parity(model, path, sizes=[(1, 1), (3, 5), (17, 33)]) <= 1e-4
    # folded by linearity: one conv more than without the step (the image's 3×3 area
    # filter; the tail's mean channels and the correction ride on the tail and base)
    plain = tmp_path / "fast.onnx"
    export_sr_onnx(_random_fast(levels=3, chroma=True), plain)

    def convs(onnx_path: Path) -> int:
        return sum(n.op_type == "Conv" for n in onnx.load(str(onnx_path)).graph.node)

    assert convs(path) == convs(plain) + 1
