"""The PyTorch port of MediaPipe's full-range face detector, and its fetch/convert step.

The reference is LiteRT (``ai_edge_litert``) running the original ``.tflite`` from the
``mediapipe==0.10.14`` wheel, on real photos and on a batch of tiles from a group
frame; only those comparisons are skipped without LiteRT (the values recorded from it,
:data:`face_fetch.GOLDEN`, are checked always). The converted files come from the
project's ``engines/`` when ``models fetch`` prepared it, else a fetch into a temporary
folder.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from localsr_cam.errors import ModelError
from localsr_cam.models import face_detector, tflite_graph
from localsr_cam.process import faces
from localsr_cam.zoo import artifacts, face_fetch, registry, selfie_fetch
from tests.scenes import make_group

pytest.importorskip("skimage.data")
needs_litert = pytest.mark.skipif(importlib.util.find_spec("ai_edge_litert") is None,
                                  reason="LiteRT (ai-edge-litert) is the reference runtime")
MAX_ABS_DIFF = 5e-4


@pytest.fixture(scope="module")
def wheel() -> Path:
    return selfie_fetch.ensure_wheel()


@pytest.fixture(scope="module")
def tflite(wheel: Path) -> bytes:
    return selfie_fetch.read_tflite_from_wheel(wheel, "face", face_fetch.SOURCE)


def tile_batch() -> torch.Tensor:
    """Nine 192×192 tiles of a synthetic 640×360 group (faces 25–60 px), as the finder
    feeds them: N×3×192×192 in [-1, 1]."""
    frame, _ = make_group((25, 32, 40, 50, 60), seed=0)
    plan = faces.plan_tiles((640, 360), 24)
    out = np.zeros((len(plan), 192, 192, 3), dtype=np.uint8)
    faces.fill_inputs(frame, plan.tiles, out)
    return faces.to_input_tensor(out)


def run_all(engines_dir: Path, images: torch.Tensor) -> dict[str, dict[str, torch.Tensor]]:
    spec = registry.MODELS["face"]
    assert spec.weights is not None and spec.onnx is not None
    model = face_detector.load_state_dict(engines_dir / spec.weights)
    with torch.inference_mode():
        torch_out = dict(zip(face_fetch.OUTPUTS, model(images), strict=True))
    onnx_out = face_fetch.run_onnx((engines_dir / spec.onnx).read_bytes(), images)
    return {"torch": torch_out, "onnx": onnx_out}


# --------------------------------------------------------------------------- parity


@needs_litert
@pytest.mark.parametrize("inputs", ["photos", "tiles"])
def test_raw_outputs_match_litert(face_engines: Path, tflite: bytes, inputs: str) -> None:
    images = face_fetch.verification_batch() if inputs == "photos" else tile_batch()
    reference = face_fetch.run_litert(tflite, images)
    assert reference is not None
    for runtime, outputs in run_all(face_engines, images).items():
        for role in face_fetch.OUTPUTS:
            assert outputs[role].shape == reference[role].shape
            difference = float((outputs[role] - reference[role]).abs().max())
            assert difference <= MAX_ABS_DIFF, f"{runtime} {role}: max |Δ| {difference:.2e}"
    # a face is there: the tiles' best score is confidently positive
    assert float(reference["scores"].max()) > 2.0


def test_matches_values_recorded_from_litert(face_engines: Path) -> None:
    images = face_fetch.verification_batch()
    for runtime, outputs in run_all(face_engines, images).items():
        difference = face_fetch.golden_diff(outputs)
        assert difference <= MAX_ABS_DIFF, f"{runtime}: max |Δ| {difference:.2e}"


def test_manifest_records_the_verification(face_engines: Path) -> None:
    entry = artifacts.read_manifest(face_engines)["face"]
    assert entry["kind"] == "detect" and entry["source"]["license"] == "Apache-2.0"
    record = entry["verification"]
    assert record["max_abs_diff_torch"] <= MAX_ABS_DIFF
    assert record["max_abs_diff_onnx"] <= MAX_ABS_DIFF
    assert entry["sha256"]["tflite"] == face_fetch.SOURCE.sha256


def test_onnx_graph_has_a_dynamic_batch_and_named_outputs(face_engines: Path) -> None:
    import onnx

    spec = registry.MODELS["face"]
    assert spec.onnx is not None
    model = onnx.load(str(face_engines / spec.onnx))
    onnx.checker.check_model(model)
    assert {o.version for o in model.opset_import if o.domain in ("", "ai.onnx")} == {17}
    (image,) = model.graph.input
    assert image.name == "image"
    dims = image.type.tensor_type.shape.dim
    assert dims[0].dim_param and [d.dim_value for d in dims[1:]] == [3, 192, 192]
    assert [o.name for o in model.graph.output] == ["regressors", "scores"]


# --------------------------------------------------------------------------- reading


def test_densify_expands_csr_rows() -> None:
    # 2×1×1×4 kernel, rows dense, last axis CSR: row 0 has (1 → 5.0, 3 → 6.0), row 1 (0 → 7.0)
    dims = [tflite_graph.SparseDim(2), tflite_graph.SparseDim(1), tflite_graph.SparseDim(1),
            tflite_graph.SparseDim(0, np.array([0, 2, 3]), np.array([1, 3, 0]))]
    dense = tflite_graph.densify(np.array([5.0, 6.0, 7.0], np.float32), (2, 1, 1, 4),
                                 (0, 1, 2, 3), dims)
    np.testing.assert_array_equal(dense.reshape(2, 4), [[0, 5, 0, 6], [7, 0, 0, 0]])
    with pytest.raises(ValueError):
        tflite_graph.densify(np.array([5.0], np.float32), (2, 1, 1, 4), (0, 1, 2, 3), dims)


def test_densify_follows_the_traversal_order() -> None:
    # a 2×3 matrix stored column-major (traversal 1, 0), columns dense, rows CSR
    dims = [tflite_graph.SparseDim(3),
            tflite_graph.SparseDim(0, np.array([0, 1, 1, 3]), np.array([1, 0, 1]))]
    dense = tflite_graph.densify(np.array([1.0, 2.0, 3.0], np.float32), (2, 3), (1, 0), dims)
    np.testing.assert_array_equal(dense, [[0, 0, 2], [1, 0, 3]])


def test_every_convolution_is_read_and_checked(tflite: bytes) -> None:
    graph = face_detector.read_tflite(tflite)
    model = face_detector.FaceDetector()
    assert len(graph.convs) == len(list(model.conv_plan())) == 91
    sparse_read = [c for c in graph.convs if c.op == "CONV_2D" and c.kernel.shape[1] == 1]
    assert all(np.count_nonzero(c.kernel) > 0 for c in sparse_read)


@pytest.mark.parametrize("keep", [0.5, 0.02])
def test_truncated_tflite_is_a_model_error(tflite: bytes, keep: float) -> None:
    with pytest.raises(ModelError, match="face detector") as info:
        face_detector.load_tflite(tflite[:int(len(tflite) * keep)])
    assert "\n" not in str(info.value)


def test_another_model_is_refused(wheel: Path) -> None:
    selfie = selfie_fetch.read_tflite_from_wheel(wheel, "selfie")
    with pytest.raises(ModelError, match="not a usable full-range face detector"):
        face_detector.load_tflite(selfie)
    with pytest.raises(ModelError, match="cannot read"):
        face_detector.load_tflite(Path("/nonexistent/face.tflite"))


def test_state_dict_errors_name_the_fix(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="models fetch"):
        face_detector.load_state_dict(tmp_path / "absent.pt")
    (tmp_path / "bad.pt").write_bytes(b"not a state dict")
    with pytest.raises(ModelError, match="models fetch"):
        face_detector.load_state_dict(tmp_path / "bad.pt")


# --------------------------------------------------------------------------- fetching


@pytest.fixture
def copied(face_engines: Path, tmp_path: Path) -> Path:
    """A private engines folder holding the prepared face detector and its entry."""
    target = tmp_path / "engines"
    target.mkdir()
    spec = registry.MODELS["face"]
    for name in (spec.weights, spec.onnx):
        assert name is not None
        shutil.copy(face_engines / name, target / name)
    artifacts.write_manifest_entry("face", artifacts.read_manifest(face_engines)["face"], target)
    return target


def test_fetch_is_idempotent_and_rebuilds_a_modified_file(copied: Path, wheel: Path,
                                                          tmp_path: Path) -> None:
    assert face_fetch.fetch_face(copied, cache_dir=tmp_path / "no-cache") == []
    onnx = copied / "face_full_range.onnx"
    before = onnx.read_bytes()
    onnx.write_bytes(before[:-10])
    assert face_fetch.entry_problem(copied) == "face_full_range.onnx does not match the manifest"
    assert face_fetch.fetch_face(copied, wheel=wheel) == ["face"]
    assert onnx.read_bytes() == before     # the export is deterministic


def test_fetch_without_litert_checks_the_recorded_values(
        tmp_path: Path, wheel: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(face_fetch, "run_litert", lambda tflite, images: None)
    assert face_fetch.fetch_face(tmp_path, wheel=wheel) == ["face"]
    record = json.loads((tmp_path / "manifest.json").read_text())["face"]["verification"]
    assert record["reference"].startswith("best-anchor outputs recorded")
    assert record["max_abs_diff_torch"] <= MAX_ABS_DIFF


def test_a_broken_conversion_is_refused_and_nothing_written(
        tmp_path: Path, wheel: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = face_detector.load_tflite

    def off_by_one_pixel(data: bytes) -> face_detector.FaceDetector:
        model = real(data)
        with torch.no_grad():
            model.box_head.reduce.bias += 1.0   # every regressor one pixel off
        return model

    monkeypatch.setattr(face_detector, "load_tflite", off_by_one_pixel)
    with pytest.raises(ModelError, match="conversion is broken"):
        face_fetch.fetch_face(tmp_path, wheel=wheel)
    assert list(tmp_path.iterdir()) == []


def test_cli_models_list_shows_the_face_detector(copied: Path,
                                                 monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    from localsr_cam.cli.main import main

    monkeypatch.setenv("LOCALSR_ENGINES", str(copied))
    assert main(["models", "list"]) == 0
    line = next(row for row in capsys.readouterr().out.splitlines() if row.startswith("face"))
    assert "ready" in line and "face_full_range.onnx" in line
