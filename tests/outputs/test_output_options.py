"""``--output WxH`` (SR 2×, then a cheap resize; the virtual camera advertises it) and
``--mirror`` (separately for the call and the preview)."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import cv2
import numpy as np
import pytest

from localsr_cam.cli.main import main
from localsr_cam.frames import CapturedFrame, ProcessedFrame
from localsr_cam.outputs.fitting import FrameFitter, fit_rect
from localsr_cam.outputs.mirror import MirroredSink, wants_mirror


def pngs(folder: Path) -> list[np.ndarray]:
    return [cv2.imread(str(p)) for p in sorted(folder.glob("*.png"))]


def run_sample(*extra: str) -> int:
    return main(["-q", "run", "--source", "synthetic", "--input", "64x36", "--model",
                 "bicubic", "--frames", "3", "--fps", "60", *extra])


def test_the_virtual_camera_advertises_and_gets_the_output_size(fake_camera):
    assert run_sample("--output", "96x54", "--sink", "virtualcam") == 0
    camera = fake_camera.instances[0]
    assert (camera.width, camera.height) == (96, 54)
    assert camera.frames and all(f.shape == (54, 96, 3) for f in camera.frames)


def test_output_size_is_the_2x_frame_resized_not_a_different_picture(tmp_path):
    plain, resized = tmp_path / "plain", tmp_path / "resized"
    assert run_sample("--sink", f"dir:{plain}") == 0
    assert run_sample("--output", "64x36", "--sink", f"file:{resized}.mkv") == 0
    import av

    with av.open(f"{resized}.mkv") as container:
        frames = [f.to_ndarray(format="bgr24") for f in container.decode(video=0)]
    assert frames[0].shape == (36, 64, 3)
    expected = cv2.resize(pngs(plain)[0], (64, 36), interpolation=cv2.INTER_AREA)
    error = np.abs(frames[0].astype(int) - expected.astype(int)).mean()
    mirrored = np.abs(frames[0].astype(int) - expected[:, ::-1].astype(int)).mean()
    assert error < 6 and mirrored > 3 * error  # the same picture, up to H.264's loss


def test_another_aspect_gets_black_bars_not_a_stretch(fake_camera):
    assert run_sample("--output", "64x64", "--sink", "virtualcam") == 0
    frame = fake_camera.instances[0].frames[0]
    assert frame.shape == (64, 64, 3)
    assert frame[:12].max() == 0 and frame[-12:].max() == 0  # 64x36 centred: rows 14-50
    assert frame[20:44].mean() > 20


@pytest.mark.parametrize("value", ["0x10", "65x36", "big"])
def test_a_bad_output_size_is_one_line(value, capsys):
    assert main(["run", "--source", "synthetic", "--output", value]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("localsr-cam: error:")


def test_fit_rect_keeps_the_aspect_ratio():
    assert fit_rect((128, 72), (64, 64)) == (0, 14, 64, 36)
    assert fit_rect((32, 48), (128, 96)) == (32, 0, 64, 96)
    assert fit_rect((100, 50), (100, 50)) == (0, 0, 100, 50)


def test_the_fitter_returns_the_same_frame_when_it_fits_and_reuses_its_buffer():
    fitter = FrameFitter((64, 64))
    small = ProcessedFrame(np.full((32, 64, 3), 200, np.uint8),
                           CapturedFrame(np.zeros((16, 32, 3), np.uint8), 0, 0.0))
    first = fitter.fit(small)
    second = fitter.fit(small)
    assert first.image is second.image and first.image.shape == (64, 64, 3)
    exact = ProcessedFrame(np.zeros((64, 64, 3), np.uint8), small.source)
    assert fitter.fit(exact) is exact


def test_the_fitter_allocates_its_canvas_only_for_a_frame_that_needs_it():
    """A run whose outputs keep each frame's size (dir:) never fits one: a large
    --output must cost it no canvas (4096x4096 would be 48 MiB)."""
    tracemalloc.start()
    try:
        fitter = FrameFitter((4096, 4096))
        exact = ProcessedFrame(np.zeros((8, 8, 3), np.uint8),
                               CapturedFrame(np.zeros((4, 4, 3), np.uint8), 0, 0.0))
        small = FrameFitter((8, 8))
        assert small.fit(exact) is exact
        assert tracemalloc.get_traced_memory()[1] < 2**20
    finally:
        tracemalloc.stop()
    fitted = fitter.fit(exact)
    assert fitted.image.shape == (4096, 4096, 3) and fitted.image[0, 0].max() == 0


def test_dir_outputs_ignore_a_large_output_size(tmp_path):
    out = tmp_path / "big"
    assert run_sample("--output", "16384x16384", "--sink", f"dir:{out}") == 0
    assert all(image.shape == (72, 128, 3) for image in pngs(out))


# --- mirror -------------------------------------------------------------------------------


@pytest.mark.parametrize("mirror, preview, call", [
    ("none", False, False), ("preview", True, False), ("call", False, True),
    ("both", True, True)])
def test_mirror_choices(mirror, preview, call):
    assert wants_mirror(mirror, "preview") is preview
    assert wants_mirror(mirror, "preview:split") is preview
    assert wants_mirror(mirror, "virtualcam:/dev/video4") is call
    assert wants_mirror(mirror, "file:x.mp4") is call


@pytest.mark.parametrize("flags, flipped", [(["--mirror"], True), (["--mirror", "call"], True),
                                            (["--mirror", "preview"], False)])
def test_mirror_flips_the_call_output_only_when_asked(tmp_path, flags, flipped):
    plain, mirrored = tmp_path / "plain", tmp_path / "mirrored"
    assert run_sample("--sink", f"dir:{plain}") == 0
    assert run_sample(*flags, "--sink", f"dir:{mirrored}") == 0
    for a, b in zip(pngs(plain), pngs(mirrored), strict=True):
        assert np.array_equal(b, a[:, ::-1] if flipped else a)
        assert not np.array_equal(a, a[:, ::-1])  # the sample is not symmetric


class KeepingSink:
    name = "preview"

    def __init__(self) -> None:
        self.frames: list[ProcessedFrame] = []

    def write(self, frame, hud) -> None:
        self.frames.append(frame)


def test_a_mirrored_preview_gets_input_mask_and_box_flipped_too():
    inner = KeepingSink()
    sink = MirroredSink(inner)
    source = np.arange(4 * 10 * 3, dtype=np.uint8).reshape(4, 10, 3)
    mask = np.zeros((4, 10), np.float32)
    mask[:, :3] = 1.0
    image = np.arange(8 * 20 * 3, dtype=np.uint8).reshape(8, 20, 3)
    sink.write(ProcessedFrame(image, CapturedFrame(source, 0, 0.0), mask=mask,
                              box=(0, 1, 3, 4)), None)
    got = inner.frames[0]
    assert np.array_equal(got.image, image[:, ::-1])
    assert np.array_equal(got.source.image, source[:, ::-1])
    assert np.array_equal(got.mask, mask[:, ::-1])
    assert got.box == (7, 1, 10, 4)
    assert sink.name == "preview"  # the wrapped sink's attributes show through
