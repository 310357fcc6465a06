"""The change test and the per-box SR results it guards."""

from __future__ import annotations

import numpy as np
import torch

from localsr_cam.process.reuse import SRReuse, thumbnail


def _crop(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (64, 48, 3), dtype=np.uint8)


def test_each_person_s_box_keeps_its_own_sr_result() -> None:
    """Two people: storing the second's result must not lose the first's (a single slot
    made every frame with two people recompute both)."""
    store = SRReuse()
    a, b = (0, 0, 48, 64), (100, 0, 148, 64)
    result_a, result_b = torch.zeros(128, 96, 3, dtype=torch.uint8), torch.ones(
        128, 96, 3, dtype=torch.uint8)
    store.store(a, result_a, thumbnail(_crop(1)))
    store.store(b, result_b, thumbnail(_crop(2)))
    assert store.reusable(a, thumbnail(_crop(1)), False) is result_a
    assert store.reusable(b, thumbnail(_crop(2)), False) is result_b
    # a changed crop, or another box, is not reused unless the level skips the frame
    assert store.reusable(a, thumbnail(_crop(3)), False) is None
    assert store.reusable(a, thumbnail(_crop(3)), True) is result_a
    assert store.reusable((1, 0, 49, 64), None, True) is None


def test_at_most_capacity_boxes_the_oldest_dropped_first() -> None:
    store = SRReuse(capacity=2)
    results = [torch.full((2, 2, 3), i, dtype=torch.uint8) for i in range(3)]
    boxes = [(i, 0, i + 2, 2) for i in range(3)]
    for box, result in zip(boxes, results, strict=True):
        store.store(box, result, None)
    assert store.reusable(boxes[0], None, True) is None
    assert store.reusable(boxes[1], None, True) is results[1]
    assert store.reusable(boxes[2], None, True) is results[2]
    store.reset()
    assert store.reusable(boxes[2], None, True) is None
