"""MJPEG frames go to the MJPEG variant of the SR net, the rest to the plain one."""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from skimage.data import astronaut

from localsr_cam.config import PipelineConfig
from localsr_cam.frames import CapturedFrame
from localsr_cam.process.processor import FrameProcessor
from localsr_cam.runtime.base import HOST_LEVELS_NAME, LEVELS_NAME, Engine
from localsr_cam.runtime.ort import OrtEngine
from localsr_cam.runtime.routed import ROUTE_FROM, MjpegRoutedEngine
from localsr_cam.zoo.artifacts import engines_dir
from localsr_cam.zoo.backends import open_engine
from localsr_cam.zoo.registry import mjpeg_variant, model_spec


class _Recorder:
    """An SR engine that answers with its own constant and counts its calls."""

    backend = "cpu"
    device = torch.device("cpu")

    def __init__(self, name: str, value: float, fail_close: bool = False) -> None:
        self.name, self.value, self.fail_close = name, value, fail_close
        self.calls, self.closed = 0, False
        self.precision = "int8"

    def __call__(self, inputs: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        self.calls += 1
        n, _, h, w = inputs["image"].shape
        return {"sr": torch.full((n, 3, 2 * h, 2 * w), self.value)}

    def close(self) -> None:
        self.closed = True
        if self.fail_close:
            raise RuntimeError("close failed")


def _levels(jpeg: float) -> torch.Tensor:
    return torch.tensor([[0.02, jpeg, 0.6]], dtype=torch.float32)


def test_calls_are_routed_by_their_jpeg_level() -> None:
    plain, mjpeg = _Recorder("fast", 0.0), _Recorder("fast-jpeg", 1.0)
    engine = MjpegRoutedEngine(plain, mjpeg)
    image = torch.zeros(1, 3, 4, 6)
    assert engine.name == "fast" and engine.precision == "int8"
    for jpeg, want in ((0.0, 0.0), (ROUTE_FROM - 0.01, 0.0), (ROUTE_FROM, 1.0), (0.5, 1.0)):
        out = engine({"image": image, "levels": _levels(jpeg)})["sr"]
        assert out.shape == (1, 3, 8, 12) and float(out.max()) == want, jpeg
    assert float(engine({"image": image})["sr"].max()) == 0.0  # no levels: a clean frame
    blind = engine({"image": image, "levels": torch.zeros(1, 1)})["sr"]  # noise level only
    assert float(blind.max()) == 0.0
    assert (plain.calls, mjpeg.calls) == (4, 2)


def test_the_host_copy_of_the_levels_chooses_where_given() -> None:
    """On CUDA ``levels`` lives on the device; the router reads ``levels_host`` instead."""
    plain, mjpeg = _Recorder("fast", 0.0), _Recorder("fast-jpeg", 1.0)
    engine = MjpegRoutedEngine(plain, mjpeg)
    image = torch.zeros(1, 3, 4, 6)
    to_mjpeg = engine({"image": image, "levels": _levels(0.0), "levels_host": _levels(0.5)})
    to_plain = engine({"image": image, "levels": _levels(0.5), "levels_host": _levels(0.0)})
    assert float(to_mjpeg["sr"].max()) == 1.0 and float(to_plain["sr"].max()) == 0.0


def test_close_closes_both_even_when_the_first_fails() -> None:
    plain, mjpeg = _Recorder("fast", 0.0, fail_close=True), _Recorder("fast-jpeg", 1.0)
    with pytest.raises(RuntimeError):
        MjpegRoutedEngine(plain, mjpeg).close()
    assert plain.closed and mjpeg.closed


def test_fast_opens_with_its_mjpeg_variant_when_its_files_are_there(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The registry pairs fast with fast-jpeg; open_engine routes when the variant's files
    are in the engines folder and runs fast alone when they are not."""
    assert mjpeg_variant("fast") == "fast-jpeg" and mjpeg_variant("paper") is None
    assert model_spec("fast-jpeg").mjpeg_variant_of == "fast"
    shipped = engines_dir()
    for name in ("fast_unet.onnx", "fast_unet.pt"):
        shutil.copy(shipped / name, tmp_path / name)
    manifest = json.loads((shipped / "manifest.json").read_text())
    (tmp_path / "manifest.json").write_text(json.dumps({"fast": manifest["fast"]}))
    monkeypatch.setenv("LOCALSR_ENGINES", str(tmp_path))
    alone = open_engine("fast", "cpu", threads=1, precision="fp32")
    try:
        assert isinstance(alone, OrtEngine)
    finally:
        alone.close()
    shutil.copy(shipped / "fast_unet.onnx", tmp_path / "fast_jpeg_unet.onnx")
    routed = open_engine("fast", "cpu", threads=1, precision="fp32")
    try:
        assert isinstance(routed, MjpegRoutedEngine)
        assert isinstance(routed.mjpeg, OrtEngine)
        assert Path(routed.mjpeg.path).name == "fast_jpeg_unet.onnx"
        assert routed.engine_for(_levels(0.5)) is routed.mjpeg
        assert routed.engine_for(_levels(0.0)) is routed.plain
        image = torch.rand(1, 3, 8, 10)
        sr = routed({"image": image, "levels": _levels(0.5)})
        assert next(iter(sr.values())).shape[0] == 1
    finally:
        routed.close()


class _KeysSeen:
    """Forwards SR calls to ``engine``; checks each carries the levels' host copy."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def __call__(self, inputs: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        host = inputs[HOST_LEVELS_NAME]
        assert host.device.type == "cpu" and host.shape == (1, inputs[LEVELS_NAME].shape[1])
        assert torch.equal(host.expand_as(inputs[LEVELS_NAME]), inputs[LEVELS_NAME].cpu())
        return self.engine(inputs)

    def close(self) -> None:
        self.engine.close()


def _served_by(frames: list[np.ndarray]) -> list[str]:
    """Which of fast's two nets served each SR call of a live-like run over ``frames``
    (the shipped engines, temporal smoothing on); every call carries the levels on the
    host too."""
    processor = FrameProcessor(PipelineConfig())
    processor.open()
    served: list[str] = []
    try:
        engine = processor._sr
        assert isinstance(engine, MjpegRoutedEngine)
        choose = engine.engine_for

        def spy(levels: torch.Tensor | None) -> Engine:
            chosen = choose(levels)
            served.append("mjpeg" if chosen is engine.mjpeg else "plain")
            return chosen

        engine.engine_for = spy  # type: ignore[method-assign]
        engine.plain, engine.mjpeg = _KeysSeen(engine.plain), _KeysSeen(engine.mjpeg)
        processor.prepare((frames[0].shape[1], frames[0].shape[0]))
        for i, image in enumerate(frames):
            processor.process(CapturedFrame(image=image, index=i, timestamp=float(i) / 30))
    finally:
        processor.close()
    return served


def test_a_live_run_hands_mjpeg_frames_to_the_variant() -> None:
    """The pipeline's smoothed levels reach the router: an MJPEG q 75 camera is served by
    fast-jpeg from its first frame, a clean camera by the plain net."""
    scene = cv2.resize(cv2.cvtColor(astronaut(), cv2.COLOR_RGB2BGR), (352, 180),
                       interpolation=cv2.INTER_AREA)
    clean = [np.ascontiguousarray(scene[:, 2 * i: 2 * i + 320]) for i in range(4)]
    mjpeg = [cv2.imdecode(cv2.imencode(".jpg", f, [cv2.IMWRITE_JPEG_QUALITY, 75])[1],
                          cv2.IMREAD_COLOR) for f in clean]
    on_mjpeg, on_clean = _served_by(mjpeg), _served_by(clean)
    assert on_mjpeg and set(on_mjpeg) == {"mjpeg"}
    assert on_clean and set(on_clean) == {"plain"}
