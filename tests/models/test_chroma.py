"""JPEG chroma smoothing: luma untouched, colour re-fitted to the luma, gated by the JPEG
level, exported with the net; old weights load into a net that has it."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from localsr_cam.errors import ConfigError
from localsr_cam.models import chroma
from localsr_cam.models.chroma import JpegChromaSmoothing
from localsr_cam.models.unet import FastUNet, PaperUNet
from localsr_cam.process.estimate import LEVEL_NAMES, estimate_levels
from localsr_cam.zoo.export import export_sr_onnx, parity


def _luma(image: torch.Tensor) -> torch.Tensor:
    return 0.299 * image[:, 0] + 0.587 * image[:, 1] + 0.114 * image[:, 2]


def _photo(name: str) -> np.ndarray:
    """uint8 RGB: a scikit-image photo at half size, cropped to whole 8×8 blocks."""
    import skimage.data

    image = getattr(skimage.data, name)()
    h, w = image.shape[0] // 16 * 8, image.shape[1] // 16 * 8
    return cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)


def _tensor(rgb: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255.0


def _chroma_error(image: torch.Tensor, truth: torch.Tensor) -> float:
    """RMS of the change of Cb and Cr against ``truth`` (0–1 units)."""
    def planes(x: torch.Tensor) -> torch.Tensor:
        y = _luma(x)
        return torch.stack([x[:, 2] - y, x[:, 0] - y])
    return float((planes(image) - planes(truth)).pow(2).mean().sqrt())


def test_the_jpeg_level_index_is_the_estimators() -> None:
    assert LEVEL_NAMES[chroma.JPEG_LEVEL] == "jpeg"


def test_luma_is_untouched_and_the_gate_follows_the_jpeg_level() -> None:
    step = JpegChromaSmoothing()
    image = torch.rand(3, 3, 20, 24)
    jpeg = torch.tensor([0.0, chroma.GATE_FROM, 1.0])
    with torch.no_grad():
        out = step(image, jpeg)
        half = step(image, torch.full((3,), (chroma.GATE_FROM + chroma.GATE_FULL) / 2))
        full = step(image, torch.full((3,), chroma.GATE_FULL))
    assert torch.allclose(_luma(out), _luma(image), atol=1e-5)
    assert torch.equal(out[:2], image[:2])  # no JPEG, or too light a one: nothing changes
    assert float((out[2] - image[2]).abs().max()) > 0.05
    assert torch.allclose(half - image, (full - image) / 2, atol=1e-5)  # linear ramp


@pytest.mark.parametrize("name", ["chelsea", "coffee"])
def test_jpeg_colour_comes_closer_to_the_original(name: str) -> None:
    clean = _photo(name)
    ok, data = cv2.imencode(".jpg", clean[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 60])
    assert ok
    decoded = cv2.imdecode(data, cv2.IMREAD_COLOR)[:, :, ::-1].copy()
    level = float(estimate_levels(decoded)[chroma.JPEG_LEVEL])
    assert level >= chroma.GATE_FULL  # the estimator reads the lattice: fully on
    truth, lossy = _tensor(clean), _tensor(decoded)
    with torch.no_grad():
        smoothed = JpegChromaSmoothing()(lossy, torch.tensor([level]))
    assert _chroma_error(smoothed, truth) < 0.96 * _chroma_error(lossy, truth)


def test_a_float16_image_is_smoothed_in_float32_and_returned_as_float16() -> None:
    torch.manual_seed(0)
    image = (torch.full((1, 3, 32, 32), 0.9) + 0.003 * torch.randn(1, 3, 32, 32)).clamp(0, 1)
    image[:, 0, :, 16:] = 0.6  # a colour edge on a bright, nearly flat field
    step = JpegChromaSmoothing()
    with torch.no_grad():
        full = step(image, torch.ones(1))
        half = step(image.half(), torch.ones(1, dtype=torch.float16))
    assert half.dtype == torch.float16
    assert float((half.float() - full).abs().max()) < 1e-3  # float16 rounding of the output


def test_a_colour_edge_the_luma_shares_is_kept() -> None:
    image = torch.full((1, 3, 16, 16), 0.5)
    image[:, 0, :, 8:] = 0.9  # a red half: its luma differs, so the edge is a luma edge
    with torch.no_grad():
        out = JpegChromaSmoothing()(image, torch.ones(1))
    change = (out - image).abs()
    # the fits are made at half resolution: the two pixels at the edge move a little
    assert float(change.max()) < 0.03 and float(change.mean()) < 0.003


def test_nets_with_the_step_load_old_weights_export_and_need_levels(tmp_path: Path) -> None:
    torch.manual_seed(0)
    plain = FastUNet(16, 2, levels=3)
    for p in plain.parameters():
        torch.nn.init.normal_(p, std=0.1)
    smoothed = FastUNet(16, 2, levels=3, chroma=True)
    smoothed.load_state_dict(plain.state_dict())  # strict: no new weights
    assert smoothed.config()["chroma"] is True and "chroma" not in plain.config()
    image = torch.rand(1, 3, 12, 14)
    with torch.no_grad():
        assert torch.equal(smoothed.eval()(image, torch.zeros(1, 3)),
                           plain.eval()(image, torch.zeros(1, 3)))
        jpeg = torch.tensor([[0.0, 0.5, 0.0]])
        assert float((smoothed(image, jpeg) - plain(image, jpeg)).abs().max()) > 1e-3
    path = tmp_path / "fast.onnx"
    export_sr_onnx(smoothed, path)
    assert parity(smoothed, path, sizes=[(1, 1), (3, 5), (17, 33), (40, 24)]) <= 1e-4
    with pytest.raises(ConfigError):
        FastUNet(16, 2, levels=0, chroma=True)
    with pytest.raises(ConfigError):
        PaperUNet(8, levels=1, chroma=True)
    assert PaperUNet(8, levels=3, chroma=True).config()["chroma"] is True
