"""Mask R-CNN person segmenter. No COCO weights can be had here, so the network runs
with RANDOM weights: these tests check the contract (shapes, dtype, range, merging,
weight loading and refusal), never the quality of the masks."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import torch

from localsr_cam.errors import ConfigError, ModelError
from localsr_cam.runtime import maskrcnn

pytest.importorskip("torchvision")

# Small internal resize, few proposals and instances (random weights score ~0.99 on
# every box, so each proposal and instance costs a head pass): seconds, not minutes.
SMALL: dict[str, Any] = {"min_size": 96, "max_size": 128, "proposals": 16,
                         "max_detections": 3}


@pytest.fixture(scope="module")
def random_segmenter() -> maskrcnn.MaskRCNNSegmenter:
    torch.manual_seed(0)
    segmenter = maskrcnn.MaskRCNNSegmenter(random_weights=True, **SMALL)
    return segmenter.open()


def detection(labels: list[int], scores: list[float], masks: torch.Tensor
              ) -> dict[str, torch.Tensor]:
    return {"labels": torch.tensor(labels), "scores": torch.tensor(scores), "masks": masks}


def test_random_weights_output_contract(random_segmenter: maskrcnn.MaskRCNNSegmenter
                                        ) -> None:
    """With random weights: N×1×H×W float32 in [0,1] for an N×3×H×W batch."""
    image = torch.rand(2, 3, 72, 96)
    mask = random_segmenter(image)
    assert mask.shape == (2, 1, 72, 96)
    assert mask.dtype == torch.float32
    assert float(mask.min()) >= 0.0 and float(mask.max()) <= 1.0


def test_random_weights_engine_interface() -> None:
    """The Engine adapter (random weights): ``image`` in, ``mask`` out; close twice."""
    engine = maskrcnn.MaskRCNNEngine(random_weights=True, threads=2, **SMALL).open()
    try:
        out = engine({"image": torch.rand(1, 3, 64, 80)})
        assert set(out) == {"mask"}
        assert out["mask"].shape == (1, 1, 64, 80)
        assert engine.name == "maskrcnn" and engine.backend == "torch"
    finally:
        engine.close()
        engine.close()


def test_merge_keeps_confident_people_only() -> None:
    masks = torch.zeros(4, 1, 4, 5)
    masks[0, 0, 0, 0] = 0.9   # person, confident
    masks[1, 0, 1, 1] = 0.7   # person, confident
    masks[1, 0, 0, 0] = 0.4   # overlaps the first: the maximum wins
    masks[2, 0, 2, 2] = 1.0   # person, below the threshold
    masks[3, 0, 3, 3] = 1.0   # a dog (COCO 18), confident
    merged = maskrcnn.merge_person_masks(
        detection([1, 1, 1, 18], [0.9, 0.6, 0.3, 0.99], masks), 0.5, 4, 5)
    expected = torch.zeros(1, 4, 5)
    expected[0, 0, 0] = 0.9
    expected[0, 1, 1] = 0.7
    assert merged.dtype == torch.float32
    torch.testing.assert_close(merged, expected)


def test_merge_without_people_is_empty() -> None:
    merged = maskrcnn.merge_person_masks(
        detection([], [], torch.zeros(0, 1, 6, 7)), 0.5, 6, 7)
    assert merged.shape == (1, 6, 7) and not merged.any()


def test_missing_weights_file_is_a_model_error(tmp_path: Path) -> None:
    segmenter = maskrcnn.MaskRCNNSegmenter(weights=tmp_path / "absent.pth")
    with pytest.raises(ModelError, match="--weights PATH") as info:
        segmenter.open()
    assert "\n" not in str(info.value)


def test_empty_torch_cache_is_a_model_error_and_nothing_is_downloaded(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    with pytest.raises(ModelError, match=maskrcnn.WEIGHTS_FILE):
        maskrcnn.MaskRCNNSegmenter().open()
    assert not (tmp_path / "hub").exists()


def test_pickle_carrying_code_is_refused(tmp_path: Path) -> None:
    """A weights file whose unpickling would call ``os.mkdir`` is refused unrun."""
    marker = tmp_path / "payload-ran"

    class Payload:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return os.mkdir, (str(marker),)

    path = tmp_path / "evil.pth"
    torch.save({"backbone.body.conv1.weight": Payload()}, path)
    with pytest.raises(ModelError, match="refusing to load") as info:
        maskrcnn.MaskRCNNSegmenter(weights=path).open()
    assert "\n" not in str(info.value)
    assert not marker.exists()


def test_state_dict_that_does_not_fit_is_a_model_error(tmp_path: Path) -> None:
    path = tmp_path / "other.pth"
    torch.save({"model": {"fc.weight": torch.zeros(2, 2)}}, path)
    with pytest.raises(ModelError, match="does not fit"):
        maskrcnn.MaskRCNNSegmenter(weights=path, **SMALL).open()


def test_corrupt_weights_file_is_a_model_error(tmp_path: Path) -> None:
    path = tmp_path / "truncated.pth"
    torch.save({"w": torch.zeros(64)}, path)
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(ModelError, match="cannot read"):
        maskrcnn.MaskRCNNSegmenter(weights=path).open()


def test_weights_file_name_is_torchvisions() -> None:
    from torchvision.models.detection import MaskRCNN_ResNet50_FPN_V2_Weights

    url = MaskRCNN_ResNet50_FPN_V2_Weights.COCO_V1.url
    assert url.rsplit("/", 1)[-1] == maskrcnn.WEIGHTS_FILE


def test_settings_are_checked_and_call_needs_open() -> None:
    with pytest.raises(ConfigError):
        maskrcnn.MaskRCNNSegmenter(score_threshold=1.5)
    with pytest.raises(ConfigError):
        maskrcnn.MaskRCNNSegmenter(weights=Path("w.pth"), random_weights=True)
    segmenter = maskrcnn.MaskRCNNSegmenter(random_weights=True)
    with pytest.raises(RuntimeError, match="open"):
        segmenter(torch.rand(1, 3, 8, 8))
    segmenter.close()
    segmenter.close()
