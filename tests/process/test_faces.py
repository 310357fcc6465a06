"""Finding faces: anchors, decoding, NMS, the tile plan, and whole frames with real faces.

The unit tests use hand-made anchors, regressors and detections. The end-to-end tests
run the converted detector (ONNX Runtime and PyTorch, from the engines folder that
``models fetch`` prepared, else a fetch into a temporary folder) on
``skimage.data.astronaut()`` and on synthetic groups made from it: scaled copies of
her head pasted into one 640×360 frame, faces 25–60 px tall.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from localsr_cam.process import faces
from localsr_cam.process.faces import Detection, FaceFinder, Tile
from localsr_cam.zoo.backends import open_engine
from tests.fakes import ScriptedFaceEngine
from tests.scenes import ASTRONAUT_FACE, astronaut_bgr, make_group


def _det(box: tuple[float, float, float, float], score: float, shift: float = 0.0
         ) -> Detection:
    keypoints = np.full((6, 2), shift, dtype=np.float32)
    return Detection(np.array(box, dtype=np.float32), score, keypoints)


# --------------------------------------------------------------------------- decoding


def test_anchors_are_cell_centres_row_major() -> None:
    anchors = faces.anchor_centers()
    assert anchors.shape == (2304, 2) and anchors.dtype == np.float32
    np.testing.assert_allclose(anchors[0], [2.0, 2.0])        # cell (0, 0), stride 4
    np.testing.assert_allclose(anchors[1], [6.0, 2.0])        # next column
    np.testing.assert_allclose(anchors[48], [2.0, 6.0])       # next row
    np.testing.assert_allclose(anchors[-1], [190.0, 190.0])


def test_decode_box_and_keypoints_relative_to_anchor() -> None:
    anchors = np.array([[10.0, 20.0], [100.0, 50.0]], dtype=np.float32)
    regressors = np.zeros((2, 16), dtype=np.float32)
    regressors[0, :4] = [1.0, -2.0, 8.0, 4.0]                  # centre shift, w, h
    regressors[0, 4:16] = np.arange(12)                        # six keypoints
    regressors[1, :4] = [0.0, 0.0, 30.0, 40.0]
    boxes, keypoints = faces.decode(regressors, anchors)
    np.testing.assert_allclose(boxes[0], [7.0, 16.0, 15.0, 20.0])
    np.testing.assert_allclose(boxes[1], [85.0, 30.0, 115.0, 70.0])
    assert keypoints.shape == (2, 6, 2)
    np.testing.assert_allclose(keypoints[0, 0], [10.0, 21.0])  # (0, 1) + anchor
    np.testing.assert_allclose(keypoints[0, 5], [20.0, 31.0])  # (10, 11) + anchor
    np.testing.assert_allclose(keypoints[1], np.tile(anchors[1], (6, 1)))


def test_decode_keeps_leading_batch_axes() -> None:
    anchors = faces.anchor_centers()
    regressors = np.random.default_rng(0).normal(size=(3, 2304, 16)).astype(np.float32)
    boxes, keypoints = faces.decode(regressors, anchors)
    assert boxes.shape == (3, 2304, 4) and keypoints.shape == (3, 2304, 6, 2)
    np.testing.assert_allclose(boxes[2, 100], faces.decode(regressors[2, 100:101],
                                                           anchors[100:101])[0][0])


def test_sigmoid_scores_clip_and_map() -> None:
    scores = faces.sigmoid_scores(np.array([0.0, 1e6, -1e6, np.log(3.0)]))
    np.testing.assert_allclose(scores, [0.5, 1.0, 0.0, 0.75], atol=1e-6)
    assert scores.dtype == np.float32


# --------------------------------------------------------------------------- NMS


def test_box_iou() -> None:
    boxes = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]], dtype=np.float32)
    np.testing.assert_allclose(faces.box_iou(boxes[0], boxes), [1.0, 50 / 150, 0.0],
                               rtol=1e-6)


def test_weighted_nms_averages_a_cluster_by_score() -> None:
    found = [_det((0, 0, 10, 10), 0.9, 0.0), _det((2, 0, 12, 10), 0.3, 4.0),
             _det((50, 50, 60, 60), 0.6, 1.0)]
    merged = faces.non_max_suppression(found, iou=0.3, weighted=True)
    assert [round(d.score, 3) for d in merged] == [0.9, 0.6]
    np.testing.assert_allclose(merged[0].box, [0.5, 0.0, 10.5, 10.0], rtol=1e-6)
    np.testing.assert_allclose(merged[0].keypoints, np.full((6, 2), 1.0), rtol=1e-6)
    np.testing.assert_allclose(merged[1].box, [50, 50, 60, 60])


def test_plain_nms_keeps_the_best_and_respects_the_threshold() -> None:
    found = [_det((0, 0, 10, 10), 0.5), _det((2, 0, 12, 10), 0.8),   # IoU 0.67
             _det((7, 0, 17, 10), 0.7)]                                # IoU 0.18 with #1
    merged = faces.non_max_suppression(found, iou=0.3, weighted=False)
    # (7..17) overlaps the winner (2..12) by 50/150 = 0.33 > 0.3: suppressed too
    assert [d.score for d in merged] == [0.8]
    np.testing.assert_array_equal(merged[0].box, [2, 0, 12, 10])   # not averaged
    assert [d.score for d in faces.non_max_suppression(found, iou=0.5, weighted=False)
            ] == [0.8, 0.7]
    assert faces.non_max_suppression([], iou=0.3) == []


# --------------------------------------------------------------------------- tiles


@pytest.mark.parametrize("size", [(640, 360), (1280, 720), (360, 640), (320, 240)])
@pytest.mark.parametrize("min_face", [16, 24, 48])
def test_plan_covers_the_frame_with_enough_overlap(size: tuple[int, int],
                                                   min_face: float) -> None:
    plan = faces.plan_tiles(size, min_face)
    width, height = size
    last = plan.tiles[-1]
    assert last.size == max(width, height) and last.level == max(t.level for t in plan.tiles)
    finest = [t for t in plan.tiles if t.level == 0]
    # the finest windows make the smallest face DETECTOR_MIN_FACE input pixels tall
    if len(plan) > 1:
        assert finest[0].size == round(min_face * 192 / faces.DETECTOR_MIN_FACE)
    for level in range(last.level):
        tiles = [t for t in plan.tiles if t.level == level]
        covered = np.zeros((height, width), dtype=bool)
        for t in tiles:
            covered[max(t.y0, 0):t.y0 + t.size, max(t.x0, 0):t.x0 + t.size] = True
        assert covered.all(), f"level {level} leaves pixels uncovered"
        # any square of the next level's smallest face lies whole inside one window
        side = tiles[0].size
        bigger = next(t for t in plan.tiles if t.level == level + 1).size
        face = int(faces.DETECTOR_MIN_FACE * bigger / 192)
        for y in range(0, height - face + 1, 7):
            for x in range(0, width - face + 1, 7):
                assert any(t.x0 <= x and x + face <= t.x0 + side and t.y0 <= y
                           and y + face <= t.y0 + side for t in tiles), (x, y, face)


def test_plan_for_640x360_and_small_or_huge_faces() -> None:
    plan = faces.plan_tiles((640, 360), 24)
    assert len(plan) == 9 and [t.size for t in plan.tiles].count(230) == 8
    assert faces.plan_tiles((640, 360), 300).tiles == (Tile(0, -140, 640, 0),)
    with pytest.raises(ValueError):
        faces.plan_tiles((0, 360), 24)


def test_rounds_partition_the_tiles() -> None:
    plan = faces.plan_tiles((640, 360), 24)
    for count in (1, 2, 3, 4, 20):
        rounds = plan.rounds(count)
        assert sorted(i for r in rounds for i in r) == list(range(len(plan)))
        assert len(rounds) == min(count, len(plan))
        assert max(map(len, rounds)) - min(map(len, rounds)) <= 1


def test_fill_inputs_resizes_windows_and_blacks_out_the_outside() -> None:
    frame = np.zeros((100, 200, 3), dtype=np.uint8)
    frame[:, :100] = (255, 0, 0)       # left half blue (BGR)
    frame[:, 100:] = (0, 0, 255)       # right half red
    tiles = [Tile(0, 0, 100, 0), Tile(100, 0, 100, 0), Tile(0, -50, 200, 1),
             Tile(500, 500, 50, 0)]
    out = np.full((4, 192, 192, 3), 7, dtype=np.uint8)
    placements = faces.fill_inputs(frame, tiles, out)
    assert (out[0] == (255, 0, 0)).all() and (out[1] == (0, 0, 255)).all()
    assert (out[2, :48] == 0).all() and (out[2, 144:] == 0).all()      # letterbox bars
    assert (out[2, 48:144, :96] == (255, 0, 0)).all()
    assert placements[3] is None and (out[3] == 0).all()
    # input pixels map back to frame pixels
    placement = placements[2]
    assert placement is not None
    np.testing.assert_allclose(placement.to_frame(np.array([[0.0, 48.0], [192.0, 144.0]])),
                               [[0.0, 0.0], [200.0, 100.0]])
    tensor = faces.to_input_tensor(out[:2])
    assert tensor.shape == (2, 3, 192, 192) and tensor.dtype == torch.float32
    assert float(tensor[0, 2].max()) == 1.0 and float(tensor[0, 0].min()) == -1.0  # RGB


def test_detections_are_mapped_to_frame_pixels_and_filtered() -> None:
    frame = np.zeros((360, 640, 3), dtype=np.uint8)
    centre = 24 * 48 + 24                      # anchor at input pixel (98, 98)
    engine = ScriptedFaceEngine([
        (1, centre, 40.0, 40.0, 3.0),           # tile 1 (x0 137, 230 px): a 48 px face
        (2, 5, 8.0, 8.0, 3.0),                  # a 10 px "face": under 0.6 × 24, dropped
        (3, 47, 40.0, 40.0, 3.0),               # tile 3's top-right corner: past the
                                                # frame's top and right edges, kept
        (4, centre, 40.0, 40.0, 0.1),           # below the 0.6 threshold
        (5, 48 * 47, 40.0, 40.0, 3.0),          # tile 5 (x0 137, y0 130) bottom-left
                                                # corner: cut by its inner left edge
    ])
    finder = FaceFinder(engine, min_face_px=24)  # type: ignore[arg-type]
    plan = finder.plan((640, 360))
    assert plan.tiles[1] == Tile(137, 0, 230, 0) and plan.tiles[5] == Tile(137, 130, 230, 0)
    found = finder.detect(frame)
    scale = 230 / 192
    by_x = sorted(found, key=lambda d: d.box[0])
    assert len(by_x) == 2
    np.testing.assert_allclose(by_x[0].box, [137 + 78 * scale, 78 * scale, 137 + 118 * scale,
                                             118 * scale], atol=1e-3)
    np.testing.assert_allclose(by_x[0].keypoints[0], [137 + 93 * scale, 95 * scale],
                               atol=1e-3)
    assert by_x[0].score == pytest.approx(1 / (1 + np.exp(-3.0)))
    np.testing.assert_allclose(by_x[1].box[[1, 3]], [-18 * scale, 22 * scale], atol=1e-3)
    assert engine.batches == [(9, 3, 192, 192)]      # one call for the whole plan
    engine.batches.clear()
    FaceFinder(engine, max_batch=4).detect(frame)  # type: ignore[arg-type]
    assert [b[0] for b in engine.batches] == [4, 4, 1]
    engine.batches.clear()
    big = FaceFinder(engine)  # type: ignore[arg-type]
    big.detect(np.zeros((720, 1280, 3), dtype=np.uint8))
    assert len(big.plan((1280, 720))) == 41
    assert [b[0] for b in engine.batches] == [32, 9]   # the TensorRT profile's maximum


# --------------------------------------------------------------------------- real faces


@pytest.fixture(scope="module", params=["cpu", "torch"])
def finder(request: pytest.FixtureRequest, face_engines: Path):
    monkey = pytest.MonkeyPatch()
    monkey.setenv("LOCALSR_ENGINES", str(face_engines))
    engine = open_engine("face", request.param, threads=2)
    try:
        yield FaceFinder(engine, min_face_px=24)
    finally:
        engine.close()
        monkey.undo()


def match(found: list[Detection], truth: list[np.ndarray], min_iou: float = 0.5
          ) -> list[float]:
    """IoU of each true face with its best detection; also checks that every detection
    matches a distinct face (no duplicates, no false positives)."""
    assert len(found) == len(truth), (f"{len(found)} detections for {len(truth)} faces: "
                                      f"{[d.box.round() for d in found]}")
    boxes = np.stack([d.box for d in found])
    ious = [float(faces.box_iou(t, boxes).max()) for t in truth]
    best = {int(faces.box_iou(t, boxes).argmax()) for t in truth}
    assert len(best) == len(truth), "two faces matched the same detection"
    assert min(ious) >= min_iou, ious
    return ious


def test_finds_the_astronaut(finder: FaceFinder) -> None:
    found = finder.detect(astronaut_bgr())
    match(found, [ASTRONAUT_FACE], min_iou=0.7)
    eyes = found[0].keypoints[:2]
    assert (eyes[:, 1] < found[0].center[1]).all()      # eyes above the box centre
    assert eyes[0, 0] < eyes[1, 0]                      # her right eye on image left


@pytest.mark.parametrize("face_height", [120, 250])
def test_a_close_up_face_is_found_once(finder: FaceFinder, face_height: int) -> None:
    """A face larger than the finest windows: they see parts of it, cut by their inner
    edges and dropped; the whole-frame window finds it."""
    scale = face_height / float(ASTRONAUT_FACE[3] - ASTRONAUT_FACE[1])
    centre = (ASTRONAUT_FACE[:2] + ASTRONAUT_FACE[2:]) / 2 * scale
    shift = np.array([320.0, 180.0]) - centre
    move = np.array([[scale, 0, shift[0]], [0, scale, shift[1]]], dtype=np.float32)
    frame = cv2.warpAffine(astronaut_bgr(), move, (640, 360), borderValue=(100, 100, 100))
    truth = ASTRONAUT_FACE * scale + np.tile(shift, 2).astype(np.float32)
    match(finder.detect(frame), [truth], min_iou=0.7)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_finds_every_face_of_a_group(finder: FaceFinder, seed: int) -> None:
    frame, truth = make_group((25, 32, 40, 50, 60), seed)
    match(finder.detect(frame), truth)


def test_finds_small_faces_the_whole_frame_misses(finder: FaceFinder) -> None:
    frame, truth = make_group((24, 26, 28, 30), seed=5)
    whole = [len(finder.plan((640, 360))) - 1]     # the letterboxed frame alone
    assert len(finder.detect(frame, tiles=whole)) <= 1
    match(finder.detect(frame), truth)


def test_a_face_cut_by_the_frame_edge_is_found_once(finder: FaceFinder) -> None:
    frame, truth = make_group((30, 45, 55), seed=3, at_edge=True)
    found = finder.detect(frame)
    match(found, truth)
    edge_face = found[int(np.argmax([d.center[0] for d in found]))]
    assert edge_face.box[2] > 600


def test_round_robin_subsets_find_the_same_faces(finder: FaceFinder) -> None:
    frame, truth = make_group((25, 35, 45, 60), seed=7)
    plan = finder.plan((640, 360))
    collected = []
    for subset in plan.rounds(3):
        collected.extend(finder.detect_raw(frame, tiles=subset))
    merged = faces.non_max_suppression(collected, finder.iou)
    ious_rounds = match(merged, truth)
    ious_once = match(finder.detect(frame), truth)
    np.testing.assert_allclose(ious_rounds, ious_once, atol=1e-4)


def test_batches_split_by_max_batch_give_the_same_result(face_engines: Path,
                                                         monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    monkeypatch.setenv("LOCALSR_ENGINES", str(face_engines))
    frame, truth = make_group((28, 40, 56), seed=11)
    engine = open_engine("face", "cpu", threads=2)
    try:
        one_call = FaceFinder(engine).detect(frame)
        in_fours = FaceFinder(engine, max_batch=4).detect(frame)
    finally:
        engine.close()
    match(one_call, truth)
    assert len(one_call) == len(in_fours)
    for a, b in zip(one_call, in_fours, strict=True):
        np.testing.assert_allclose(a.box, b.box, atol=1e-3)


def test_empty_scene_gives_nothing(finder: FaceFinder) -> None:
    frame = np.full((360, 640, 3), 128, dtype=np.uint8)
    assert finder.detect(frame) == []
    assert finder.detect(frame, tiles=[]) == []


def test_bad_score_threshold_and_bad_frames_are_refused() -> None:
    with pytest.raises(ValueError):
        FaceFinder(object(), score=1.5)  # type: ignore[arg-type]
    finder = FaceFinder(ScriptedFaceEngine([]))  # type: ignore[arg-type]
    for frame in (np.zeros((36, 64), np.uint8), np.zeros((36, 64, 3), np.float32),
                  np.zeros((36, 64, 4), np.uint8)):
        with pytest.raises(ValueError, match="uint8 H×W×3"):
            finder.detect(frame)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("backend", ["cuda", "tensorrt"])
def test_gpu_backends_find_the_same_faces(backend: str, face_engines: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """float16 on the GPU (PyTorch with CUDA graphs, or TensorRT with the batch profile):
    the same faces as ONNX Runtime on the CPU, boxes within a pixel."""
    from localsr_cam.runtime.base import tensorrt_missing

    if backend == "tensorrt" and tensorrt_missing():
        pytest.skip(str(tensorrt_missing()))
    monkeypatch.setenv("LOCALSR_ENGINES", str(face_engines))
    frame, truth = make_group((25, 32, 40, 50, 60), seed=0)
    results = {}
    for name in ("cpu", backend):
        engine = open_engine("face", name, threads=2)
        try:
            finder = FaceFinder(engine)
            results[name] = finder.detect(frame)
            rounds = [finder.detect_raw(frame, subset) for subset in
                      finder.plan((640, 360)).rounds(3)]  # other batch shapes
        finally:
            engine.close()
        match(results[name], truth)
        match(faces.non_max_suppression([d for r in rounds for d in r]), truth)
    cpu = sorted(results["cpu"], key=lambda d: d.box[0])
    gpu = sorted(results[backend], key=lambda d: d.box[0])
    for a, b in zip(cpu, gpu, strict=True):
        np.testing.assert_allclose(a.box, b.box, atol=1.0)
        assert abs(a.score - b.score) < 0.02
