"""What a new user hits (issue 14): data loss, endless runs, noisy or misleading errors,
signals, and the small CLI conveniences (--version, -v/-q after the command)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from localsr_cam.cli.main import main
from localsr_cam.runtime.base import resolve_backend

ROOT = Path(__file__).resolve().parents[2]
ENV = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONPATH=str(ROOT))


def one_error_line(err: str, needle: str) -> str:
    """The single line on stderr; fails unless stderr holds exactly one line with needle."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{err}"
    assert lines[0].startswith("localsr-cam") and needle in lines[0], lines[0]
    return lines[0]


def write_video(path: Path, frames: int = 12, size: tuple[int, int] = (64, 48)) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 30.0, size)
    for i in range(frames):
        writer.write(np.full((size[1], size[0], 3), 10 * i, np.uint8))
    writer.release()


# --- defect 1: an output over the input -------------------------------------------------


def test_a_sink_over_the_source_is_refused_and_the_source_kept(tmp_path, capsys):
    video = tmp_path / "self.avi"
    write_video(video)
    before = video.read_bytes()
    code = main(["run", "--source", str(video), "--model", "bicubic",
                 "--sink", f"file:{video}"])
    assert code == 2
    one_error_line(capsys.readouterr().err, "self.avi")
    assert video.read_bytes() == before


def test_a_sink_over_the_source_through_another_spelling_is_refused(tmp_path, capsys,
                                                                   monkeypatch):
    video = tmp_path / "self.avi"
    write_video(video)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub").mkdir()
    code = main(["run", "--source", "self.avi", "--model", "bicubic",
                 "--sink", "file:sub/../self.avi"])
    assert code == 2
    one_error_line(capsys.readouterr().err, "self.avi")


def test_two_sinks_on_one_path_are_refused(tmp_path, capsys):
    out = tmp_path / "out.mp4"
    code = main(["run", "--source", "synthetic", "--model", "bicubic", "--frames", "2",
                 "--sink", f"file:{out}", "--sink", f"file:{out}"])
    assert code == 2
    one_error_line(capsys.readouterr().err, "out.mp4")
    assert not out.exists()


def test_an_image_dir_sink_on_the_source_folder_is_refused(tmp_path, capsys):
    folder = tmp_path / "photos"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.png"), np.full((32, 32, 3), 50, np.uint8))
    before = (folder / "a.png").read_bytes()
    code = main(["run", "--source", str(folder), "--model", "bicubic", "--sink",
                 f"dir:{folder}"])
    assert code == 2
    one_error_line(capsys.readouterr().err, "photos")
    assert (folder / "a.png").read_bytes() == before


# --- defect 5: one line on stderr, and the right advice ---------------------------------


@pytest.mark.parametrize("source", ["7", "/dev/video7"])
def test_a_missing_camera_is_one_line_without_opencv_noise(capfd, source):
    code = main(["run", "--source", source, "--model", "bicubic", "--sink", "null"])
    assert code == 2
    one_error_line(capfd.readouterr().err, "camera")


def test_an_output_too_large_for_a_video_is_refused_before_work_with_what_works(
        tmp_path, capfd):
    out = tmp_path / "huge.mp4"
    code = main(["run", "--source", "synthetic", "--input", "4200x2400", "--model",
                 "bicubic", "--frames", "1", "--sink", f"file:{out}"])
    assert code == 2
    line = one_error_line(capfd.readouterr().err, "8400x4800")
    assert "--output" in line and "dir:" in line


@pytest.mark.parametrize(("corrupt", "flags"), [("fast_unet.int8.onnx", []),
                                              ("fast_unet.onnx", ["--precision", "fp32"])])
def test_a_corrupt_shipped_model_says_restore_not_retrain(tmp_path, capsys, monkeypatch,
                                                          corrupt, flags):
    """The file the run loads (int8 on the CPU by default, float32 when asked) is
    corrupt: one line that says to restore it."""
    engines = tmp_path / "engines"
    engines.mkdir()
    for item in (ROOT / "engines").iterdir():
        (engines / item.name).symlink_to(item)
    (engines / corrupt).unlink()
    (engines / corrupt).write_bytes(b"not an onnx model")
    monkeypatch.setenv("LOCALSR_ENGINES", str(engines))
    resolve_backend.cache_clear()  # so that `auto` says again which backend it picks
    code = main(["run", "--source", "synthetic", "--frames", "1", "--segmenter", "selfie",
                 "--sink", "null", *flags])
    assert code == 2
    line = one_error_line(capsys.readouterr().err, corrupt)
    assert "git checkout" in line and f"engines/{corrupt}" in line
    assert "localsr-cam train" not in line


def test_a_missing_loopback_device_gets_a_command_that_creates_that_device(capsys):
    code = main(["run", "--source", "synthetic", "--model", "bicubic", "--frames", "1",
                 "--sink", "virtualcam:/dev/video10"])
    assert code == 2
    line = one_error_line(capsys.readouterr().err, "video_nr=10")
    assert "apt install v4l2loopback-dkms" in line


def test_a_preview_without_a_display_is_one_line_before_models_load(capsys, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    code = main(["run", "--source", "synthetic", "--frames", "1", "--sink", "preview"])
    assert code == 2
    one_error_line(capsys.readouterr().err, "no display")


# --- defect 6: runs that never end -------------------------------------------------------


def test_the_default_sample_run_stops_at_the_end_of_the_sample(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "localsr_cam", "run", "--model", "bicubic", "--input",
         "32x18", "--source", "synthetic"], cwd=tmp_path, env=ENV, capture_output=True,
        text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("frames=300 "), result.stdout
    assert "Ctrl-C" not in result.stderr


def start_endless_run(tmp_path: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "localsr_cam", "run", "--source", "synthetic", "--loop",
         "--model", "bicubic", "--input", "160x90", *extra], cwd=tmp_path, env=ENV,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


def wait_for_line(process: subprocess.Popen[str], needle: str,
                  timeout: float = 60) -> list[str]:
    """Wait until a line of the process's stderr holds ``needle``; returns the list the
    stderr lines keep arriving in.

    A reader thread collects the lines, so a process that never writes one cannot hang
    the test past ``timeout``.
    """
    assert process.stderr is not None
    stream = process.stderr
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(stream.readline, "")),
                              daemon=True)
    reader.start()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(needle in line for line in list(lines)):
            return lines
        if process.poll() is not None and not reader.is_alive():
            break
        time.sleep(0.05)
    raise AssertionError(f"no {needle!r} on stderr; got:\n{''.join(lines)}")


def test_a_run_without_end_says_how_to_stop_it(tmp_path):
    process = start_endless_run(tmp_path, "--sink", "null")
    try:
        wait_for_line(process, "Ctrl-C to stop")
        process.send_signal(signal.SIGINT)
        process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130


def test_ctrl_c_that_an_import_wrapped_still_exits_130(monkeypatch, capsys):
    """Python 3.11 turns a KeyboardInterrupt inside ``__set_name__`` (an import) into a
    RuntimeError: that is still Ctrl-C, not a crash with a traceback and status 1."""
    import localsr_cam.pipeline.run as run_module

    def wrapped(config, controls=None):
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as exc:
            raise RuntimeError("Error calling __set_name__") from exc

    monkeypatch.setattr(run_module, "run", wrapped)
    args = ["run", "--source", "synthetic", "--model", "bicubic", "--sink", "null"]
    assert main(args) == 130
    assert "interrupted" in capsys.readouterr().err

    def plain_error(config, controls=None):
        raise RuntimeError("a real bug")

    monkeypatch.setattr(run_module, "run", plain_error)
    with pytest.raises(RuntimeError, match="a real bug"):
        main(args)


# --- defect 7: SIGTERM ------------------------------------------------------------------


def test_sigterm_exits_143_after_finalizing_the_file(tmp_path):
    out = tmp_path / "term.mp4"
    process = start_endless_run(tmp_path, "--sink", f"file:{out}")
    try:
        stderr_lines = wait_for_line(process, "Ctrl-C to stop")
        deadline = time.monotonic() + 60
        while not (out.exists() and out.stat().st_size > 4000):
            assert time.monotonic() < deadline and process.poll() is None
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)
        assert process.stdout is not None
        stdout = process.stdout.read()
        time.sleep(0.2)  # the reader takes the last lines
        stderr = "".join(stderr_lines)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 143, stderr
    assert stdout.startswith("frames=") and "Traceback" not in stderr
    capture = cv2.VideoCapture(str(out))
    assert capture.isOpened() and capture.read()[0]
    capture.release()


# --- small conveniences -----------------------------------------------------------------


def test_every_new_feature_is_in_the_help(capsys):
    assert main(["--help"]) == 0
    top = capsys.readouterr().out
    assert "devices" in top and "--version" in top
    assert main(["run", "--help"]) == 0
    run_help = " ".join(capsys.readouterr().out.split())
    for needle in ("--output WxH", "--mirror", "image:PATH", "dir:FOLDER", ".mkv",
                   "z 1:1 face magnifier", "-q, --quiet"):
        assert needle in run_help, needle
    assert main(["devices", "--help"]) == 0
    assert "loopback" in capsys.readouterr().out


def test_opencv_is_silenced_only_while_a_camera_opens():
    from localsr_cam.capture.camera import quiet_opencv

    levels = cv2.utils.logging
    before = levels.getLogLevel()
    with quiet_opencv():
        assert levels.getLogLevel() == levels.LOG_LEVEL_SILENT
    assert levels.getLogLevel() == before


def test_version(capsys):
    from localsr_cam import __version__

    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"localsr-cam {__version__}"


@pytest.mark.parametrize("flag, level", [("-q", "WARNING"), ("-v", "DEBUG"),
                                         ("--quiet", "WARNING")])
def test_verbosity_after_the_command(tmp_path, flag, level):
    import logging

    out = tmp_path / "o.avi"
    assert main(["run", flag, "--source", "synthetic", "--input", "32x18", "--model",
                 "bicubic", "--frames", "1", "--sink", f"file:{out}"]) == 0
    assert logging.getLevelName(logging.getLogger().level) == level


def test_verbosity_after_a_passthrough_command(tmp_path, capsys):
    import logging

    code = main(["eval", "-q", "--images", str(tmp_path / "none")])
    assert code == 2
    assert logging.getLevelName(logging.getLogger().level) == "WARNING"


# --- defect 4: --backend torch ----------------------------------------------------------


def test_the_torch_backend_runs_and_stops_cleanly(tmp_path):
    """It ran at 0.75 fps (OpenMP workers spinning against the pipeline's threads) and
    every run ended with a processing thread still busy and a processor left open."""
    result = subprocess.run(
        [sys.executable, "-m", "localsr_cam", "bench", "--mode", "local", "--frames", "20",
         "--warmup", "5", "--backend", "torch", "--input", "320x180", "--json",
         str(tmp_path / "b.json")], cwd=tmp_path, env=ENV, capture_output=True, text=True,
        timeout=600)
    assert result.returncode == 0, result.stderr
    assert "did not stop" not in result.stderr and "not closing" not in result.stderr
