"""Photos in, photos out (issue 14, defects 2 and 3): every image of a folder is its own
scene at its own size, and ``dir:`` writes one lossless PNG per image, named after it."""

from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from localsr_cam.cli.main import main
from localsr_cam.config import BlendConfig, ModelConfig, PipelineConfig
from localsr_cam.frames import CapturedFrame
from localsr_cam.process.processor import FrameProcessor
from tests.fakes import BicubicSR, DiscSegmenter, EngineBox


def noise(width: int, height: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), np.uint8)


def photo_folder(tmp_path: Path) -> tuple[Path, dict[str, np.ndarray]]:
    """A landscape PNG and a portrait JPEG-named PNG payload of different sizes."""
    folder = tmp_path / "photos"
    folder.mkdir()
    images = {"a_wide.png": noise(40, 30, 1), "b_tall.png": noise(24, 32, 2)}
    for name, image in images.items():
        cv2.imwrite(str(folder / name), image)
    return folder, images


def bicubic2x(image: np.ndarray) -> np.ndarray:
    return cv2.resize(image, (2 * image.shape[1], 2 * image.shape[0]),
                      interpolation=cv2.INTER_CUBIC)


def test_a_folder_to_dir_run_writes_each_image_at_2x_its_own_size(tmp_path, capsys):
    folder, images = photo_folder(tmp_path)
    out = tmp_path / "out"
    code = main(["-q", "run", "--source", str(folder), "--model", "bicubic",
                 "--sink", f"dir:{out}"])
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == ["a_wide.png", "b_tall.png"]
    for name, image in images.items():
        written = cv2.imread(str(out / name))
        assert written.shape == (2 * image.shape[0], 2 * image.shape[1], 3)
        assert np.array_equal(written, bicubic2x(image))  # lossless, nothing stretched
    stdout = capsys.readouterr().out
    assert f"2 images written to {out}" in stdout


def test_a_looping_folder_writes_each_image_once_under_its_own_name(tmp_path, capsys):
    """--loop passes over the folder again and again: each pass writes the same names
    (not a_wide_png.png on the second), and the summary counts files, not writes."""
    folder, _ = photo_folder(tmp_path)
    out = tmp_path / "out"
    code = main(["-q", "run", "--source", str(folder), "--model", "bicubic", "--loop",
                 "--frames", "7", "--sink", f"dir:{out}"])
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == ["a_wide.png", "b_tall.png"]
    assert f"2 images written to {out}" in capsys.readouterr().out


def test_one_photo_as_the_source_writes_one_png_named_after_it(tmp_path, capsys,
                                                               monkeypatch):
    """A single image file is a folder of one: a lossless 2× PNG in ``localsr_<stem>/``
    (it was read as a one-frame video and written as a one-frame MP4)."""
    image = noise(40, 30, 3)
    photo = tmp_path / "me.jpg"
    cv2.imwrite(str(photo), image, [cv2.IMWRITE_JPEG_QUALITY, 100])
    decoded = cv2.imread(str(photo))
    monkeypatch.chdir(tmp_path)
    assert main(["-q", "run", "--source", str(photo), "--model", "bicubic"]) == 0
    out = tmp_path / "localsr_me"
    assert [p.name for p in out.iterdir()] == ["me.png"]
    assert np.array_equal(cv2.imread(str(out / "me.png")), bicubic2x(decoded))
    assert f"1 image written to {out}" in capsys.readouterr().out
    assert not list(tmp_path.glob("*.mp4"))


def test_a_photo_folder_run_without_sink_writes_pngs_and_says_where(tmp_path, capsys,
                                                                    monkeypatch):
    folder, _ = photo_folder(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert main(["-q", "run", "--source", str(folder), "--model", "bicubic"]) == 0
    out = tmp_path / "localsr_photos"
    assert sorted(p.name for p in out.iterdir()) == ["a_wide.png", "b_tall.png"]
    assert f"2 images written to {out}" in capsys.readouterr().out


def test_unreadable_files_are_skipped_by_name_and_the_rest_written(tmp_path, capsys):
    folder, images = photo_folder(tmp_path)
    (folder / "a_broken.png").write_bytes(b"not a png")
    cv2.imwrite(str(folder / "a_tiny.png"), noise(9, 7, 3))
    out = tmp_path / "out"
    code = main(["-q", "run", "--source", str(folder), "--model", "bicubic",
                 "--sink", f"dir:{out}"])
    assert code == 2
    assert sorted(p.name for p in out.iterdir()) == sorted(images)
    captured = capsys.readouterr()
    assert "2 images written" in captured.out
    assert "a_broken.png is not an image" in captured.err and "a_tiny.png is 9×7" in captured.err
    assert "2 unreadable input file(s) skipped" in captured.err


def test_a_folder_with_no_readable_image_is_one_line(tmp_path, capsys):
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "x.jpg").write_bytes(b"\xff\xd8 truncated")
    assert main(["-q", "run", "--source", str(folder), "--model", "bicubic",
                 "--sink", f"dir:{tmp_path / 'out'}"]) == 2
    err = capsys.readouterr().err
    assert "none of the 1 images" in err and "x.jpg" in err and "Traceback" not in err


def test_full_frame_works_into_an_image_folder(tmp_path):
    folder, images = photo_folder(tmp_path)
    out = tmp_path / "out"
    assert main(["-q", "run", "--source", str(folder), "--model", "fast", "--backend",
                 "cpu", "--full-frame", "--sink", f"dir:{out}"]) == 0
    for name, image in images.items():
        written = cv2.imread(str(out / name))
        assert written.shape == (2 * image.shape[0], 2 * image.shape[1], 3)
        assert not np.array_equal(written, bicubic2x(image))  # the U-Net ran


def test_video_frames_into_a_folder_are_named_by_index(tmp_path):
    out = tmp_path / "frames"
    assert main(["-q", "run", "--source", "synthetic", "--input", "32x18", "--model",
                 "bicubic", "--frames", "3", "--sink", f"dir:{out}"]) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "frame_000000.png", "frame_000001.png", "frame_000002.png"]
    assert cv2.imread(str(out / "frame_000001.png")).shape == (36, 64, 3)


def test_folder_images_in_one_video_keep_their_aspect_ratio(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    cv2.imwrite(str(folder / "1_wide.png"), np.full((48, 64, 3), 90, np.uint8))
    cv2.imwrite(str(folder / "2_tall.png"), np.full((48, 32, 3), 250, np.uint8))
    out = tmp_path / "both.mkv"
    assert main(["-q", "run", "--source", str(folder), "--model", "bicubic",
                 "--sink", f"file:{out}"]) == 0
    with av.open(str(out)) as container:
        frames = [f.to_ndarray(format="bgr24") for f in container.decode(video=0)]
    assert len(frames) == 2 and frames[1].shape == (96, 128, 3)
    tall = frames[1].astype(int)
    assert tall[:, :28].mean() < 20 and tall[:, -28:].mean() < 20  # black bars
    assert tall[:, 36:92].mean() > 235  # the photo, 64 px wide, not stretched to 128


def test_input_size_fits_each_image_inside_it_without_stretching(tmp_path):
    folder, _ = photo_folder(tmp_path)
    out = tmp_path / "out"
    assert main(["-q", "run", "--source", str(folder), "--input", "20x20", "--model",
                 "bicubic", "--sink", f"dir:{out}"]) == 0
    assert cv2.imread(str(out / "a_wide.png")).shape == (30, 40, 3)  # 20x15, doubled
    assert cv2.imread(str(out / "b_tall.png")).shape == (40, 30, 3)  # 15x20, doubled


def test_each_image_starts_with_a_fresh_mask():
    """The second photo's mask is its own, not blended with the first one's."""
    segmenter = DiscSegmenter((0.25, 0.5), 0.2)
    config = PipelineConfig(model=ModelConfig(model="fast", segmenter="selfie",
                                              backend="cpu"), blend=BlendConfig(ema=0.6))
    first, second = noise(96, 64, 3), noise(96, 64, 4)
    with FrameProcessor(config, engine_factory=EngineBox(segmenter, BicubicSR())) as proc:
        proc.process(CapturedFrame(first, 0, 0.0, name="messi.png", new_scene=True))
        segmenter.centre = (0.75, 0.5)
        carried = proc.process(CapturedFrame(second, 1, 0.0, name="hopper.png",
                                             new_scene=True))
    fresh_segmenter = DiscSegmenter((0.75, 0.5), 0.2)
    with FrameProcessor(config, engine_factory=EngineBox(fresh_segmenter, BicubicSR())
                        ) as proc:
        fresh = proc.process(CapturedFrame(second, 0, 0.0, new_scene=True))
    assert carried.mask is not None and fresh.mask is not None
    assert np.array_equal(carried.mask, fresh.mask)
    assert np.array_equal(carried.image, fresh.image)


def test_a_video_keeps_its_temporal_smoothing():
    """Frames of one scene are still smoothed over time (the reset is per photo only)."""
    segmenter = DiscSegmenter((0.25, 0.5), 0.2)
    config = PipelineConfig(model=ModelConfig(model="fast", segmenter="selfie",
                                              backend="cpu"), blend=BlendConfig(ema=0.6))
    image = noise(96, 64, 5)
    with FrameProcessor(config, engine_factory=EngineBox(segmenter, BicubicSR())) as proc:
        proc.prepare((96, 64))
        proc.process(CapturedFrame(image, 0, 0.0))
        segmenter.centre = (0.75, 0.5)
        smoothed = proc.process(CapturedFrame(image, 1, 0.0))
    assert smoothed.mask is not None
    assert smoothed.mask[:, :24].max() > 0  # the first frame's disc still shows


@pytest.mark.parametrize("spec", ["dir:", "dir"])
def test_a_dir_sink_needs_a_folder(spec, capsys):
    assert main(["run", "--source", "synthetic", "--sink", spec]) == 2
    assert "dir:FOLDER" in capsys.readouterr().err


def test_a_dir_sink_on_a_file_is_one_line(tmp_path, capsys):
    (tmp_path / "plain").write_text("x")
    assert main(["run", "--source", "synthetic", "--model", "bicubic", "--frames", "1",
                 "--sink", f"dir:{tmp_path / 'plain'}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a folder" in err[0]
