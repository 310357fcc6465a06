"""tools/sharpness_probe.py: its two classes differ by the camera's sharpening alone, and
its routing score takes each image from the net the reading chose."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.tool_import import imported_tool


@pytest.fixture(scope="module")
def probe_tool():
    with imported_tool("sharpness_probe.py", "sharpness_probe_tool") as module:
        yield module


def test_only_the_positive_class_is_sharpened_after_the_downscale(probe_tool) -> None:
    rng = np.random.default_rng(3)
    positives = [probe_tool.draw(rng, True) for _ in range(50)]
    negatives = [probe_tool.draw(rng, False) for _ in range(50)]
    assert all(0.2 <= p.sharpen_amount <= 0.8 for p in positives)
    assert all(p.sharpen_amount == 0.0 for p in negatives)
    for drawn in (positives, negatives):  # the nuisances are shared
        assert {p.resize[0] for p in drawn} == {"area", "bilinear", "bicubic"}
        assert any(p.noise_sigma > 0 for p in drawn) and any(p.noise_sigma == 0 for p in drawn)
        assert any(p.jpeg_quality > 0 for p in drawn)


def test_batches_are_lr_luma_crops_with_both_labels(probe_tool) -> None:
    rng = np.random.default_rng(0)
    photo = (np.random.default_rng(1).random((300, 280, 3)) * 255).astype(np.uint8)
    crops, labels = probe_tool.batch(rng, [photo], 12, 64)
    assert crops.shape == (12, 1, 32, 32) and crops.dtype == torch.float32
    assert float(crops.min()) >= 0.0 and float(crops.max()) <= 1.0
    assert set(labels.tolist()) == {0.0, 1.0}
    logits = probe_tool.SharpnessProbe()(crops)
    assert logits.shape == (12,)


def test_routing_takes_the_variant_where_the_reading_reaches_the_threshold(
        probe_tool, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def report(path: Path, gains: dict[str, float]) -> Path:
        images = [{"name": f"/x/{name}", "methods": {"bicubic": {"psnr": 30.0},
                                                      "full": {"psnr": 30.0 + gain}}}
                  for name, gain in gains.items()]
        path.write_text(json.dumps({"suites": {"sharpened": {"images": images}}}))
        return path

    plain = report(tmp_path / "plain.json", {"a.png": 0.2, "b.png": 0.4})
    variant = report(tmp_path / "variant.json", {"a.png": 1.0, "b.png": -0.6})
    readings = tmp_path / "readings.json"
    readings.write_text(json.dumps({"a.png": {"sharpened": 3.0}, "b.png": {"sharpened": 0.5}}))
    probe_tool.main(["route", "--readings", str(readings), "--plain", str(plain),
                     "--variant", str(variant), "--threshold", "1.5"])
    routed = [line for line in capsys.readouterr().out.splitlines()
              if line.startswith("| routed")]
    assert routed == ["| routed | +0.700 / +0.400 | +0.700 |"]  # a from the variant, b plain
