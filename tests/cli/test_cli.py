"""The command line, called through main(argv): help, run, and bad input."""

from __future__ import annotations

import dataclasses
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
from localsr_cam.config import max_threads
from localsr_cam.pipeline.threads import RunResult

ROOT = Path(__file__).resolve().parents[2]


def leftover_threads() -> list[str]:
    return [t.name for t in threading.enumerate()
            if t.name in ("capture", "process", "output")]


def test_help_explains_every_subcommand(capsys):
    assert main(["--help"]) == 0
    text = capsys.readouterr().out
    for command in ("run", "bench", "eval", "train", "models"):
        assert command in text
    assert main(["run", "--help"]) == 0
    run_help = capsys.readouterr().out
    for flag in ("--source", "--sink", "--input", "--fps", "--frames", "--model",
                 "--segmenter", "--backend", "--config"):
        assert flag in run_help


def test_run_bicubic_on_the_sample_writes_a_2x_video(tmp_path, capsys):
    out = tmp_path / "out.avi"
    code = main(["-q", "run", "--source", "synthetic", "--input", "96x64", "--model",
                 "bicubic", "--frames", "8", "--fps", "60", "--sink", f"file:{out}"])
    assert code == 0
    summary = capsys.readouterr().out.strip().splitlines()[-1]
    assert summary.startswith("frames=8 ") and "latency_p95=" in summary
    capture = cv2.VideoCapture(str(out))
    ok, frame = capture.read()
    capture.release()
    assert ok and frame.shape == (128, 192, 3)
    assert not leftover_threads()


def test_default_sink_is_a_file_named_after_the_source(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("localsr_cam.capture.factory.camera_present", lambda index=0: False)
    assert main(["-q", "run", "--model", "bicubic", "--frames", "3", "--input",
                 "32x18"]) == 0
    assert (tmp_path / "localsr_synthetic.mp4").stat().st_size > 0


def make_text_video(tmp_path: Path) -> Path:
    path = tmp_path / "talk.mp4"
    path.write_text("this is not a video")
    return path


def make_empty_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "empty"
    folder.mkdir()
    return folder


def make_bad_toml(tmp_path: Path) -> Path:
    path = tmp_path / "bad.toml"
    path.write_text("[capture]\nfsp = 30\n")
    return path


def make_wrong_type_toml(tmp_path: Path) -> Path:
    path = tmp_path / "type.toml"
    path.write_text("[capture]\nfps = 'thirty'\n")
    return path


def make_corrupt_image_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "corrupt"
    folder.mkdir()
    (folder / "a.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    return folder


BAD_INPUTS = [
    ("missing file", lambda p: ["run", "--source", str(p / "nope.mp4")], "not found"),
    ("text file as video", lambda p: ["run", "--source", str(make_text_video(p))],
     "not a readable video"),
    ("empty folder", lambda p: ["run", "--source", str(make_empty_folder(p))], "image"),
    ("corrupt image", lambda p: ["run", "--source", str(make_corrupt_image_folder(p))],
     "a.png"),
    ("unknown sink", lambda p: ["run", "--source", "synthetic", "--sink", "tv"], "tv"),
    ("zero size", lambda p: ["run", "--input", "0x0"], "at least 1x1"),
    ("negative fps", lambda p: ["run", "--fps", "-5"], "greater than 0"),
    ("zero fps", lambda p: ["run", "--fps", "0"], "greater than 0"),
    ("unknown backend", lambda p: ["run", "--backend", "quantum"], "quantum"),
    ("unknown model", lambda p: ["run", "--model", "huge"], "huge"),
    ("unknown segmenter", lambda p: ["run", "--segmenter", "magic"], "magic"),
    ("unknown denoise", lambda p: ["run", "--denoise", "strong"], "strong"),
    ("unreadable config", lambda p: ["run", "--config", str(p / "none.toml")],
     "cannot read config"),
    ("unknown config key", lambda p: ["run", "--config", str(make_bad_toml(p))], "fsp"),
    ("wrong config type", lambda p: ["run", "--config", str(make_wrong_type_toml(p))],
     "must be float"),
    ("unknown command", lambda p: ["explode"], "explode"),
    ("too many threads", lambda p: ["run", "--threads", "100000", "--source", "synthetic",
                                    "--frames", "2", "--sink", "null"], "at most"),
    ("infinite fps", lambda p: ["run", "--fps", "inf"], "finite number"),
    ("nan fps", lambda p: ["run", "--fps", "nan"], "finite number"),
    ("absurd fps", lambda p: ["run", "--fps", "1e12"], "at most 1000"),
    ("infinite output fps", lambda p: ["run", "--output-fps", "inf"], "finite number"),
    ("huge output", lambda p: ["run", "--source", "synthetic", "--output", "100000x100000",
                               "--frames", "3", "--sink", "null"], "too large"),
    ("huge input", lambda p: ["run", "--source", "synthetic", "--input", "20000x20000",
                              "--sink", f"file:{p / 'big.mp4'}"], "too large"),
    ("empty source", lambda p: ["run", "--source", ""], "source is empty"),
    ("output fps in a conversion", lambda p: [
        "run", "--source", "synthetic", "--output-fps", "10", "--sink",
        f"file:{p / 'ofps.mp4'}"], "live runs only"),
]


@pytest.mark.parametrize("what, argv, needle", BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, what, argv, needle):
    code = main(argv(tmp_path))
    err = capsys.readouterr().err
    assert code == 2
    lines = err.strip().splitlines()
    assert lines[-1].startswith("localsr-cam: error:") and needle in lines[-1]
    assert "Traceback" not in err
    assert not leftover_threads()


def test_output_fps_is_refused_before_a_conversion_writes_anything(tmp_path, capsys):
    out = tmp_path / "ofps.mp4"
    assert main(["run", "--source", "synthetic", "--input", "32x18", "--model", "bicubic",
                 "--output-fps", "10", "--frames", "3", "--sink", f"file:{out}"]) == 2
    assert "live runs only" in capsys.readouterr().err and not out.exists()


def test_an_output_too_large_for_the_file_is_refused_before_the_source_opens(tmp_path,
                                                                              capsys):
    """--input fixes the output size, so the H.264 limit is checked before the source
    is opened (an 8K sample clip took seconds to build; a broken video is not read)."""
    video = make_text_video(tmp_path)
    assert main(["run", "--source", str(video), "--input", "8192x4320", "--sink",
                 f"file:{tmp_path / 'big.mp4'}"]) == 2
    err = capsys.readouterr().err
    assert "larger than an H.264 video holds" in err and "not a readable video" not in err


def test_threads_help_names_the_bound(capsys):
    assert main(["run", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert f"at most this machine's CPU count ({max_threads()} here)" in text
    assert main(["run", "--threads", str(max_threads() + 1)]) == 2
    assert f"at most {max_threads()}" in capsys.readouterr().err


def test_a_summary_with_nothing_measured_says_n_a():
    nothing = RunResult(0, 0.0, [], 0, 0, 0, True, "cpu")  # Ctrl-C before a frame
    line = nothing.summary()
    assert "nan" not in line
    assert "latency_p50=n/a latency_p95=n/a" in line and "cpu=n/a" in line
    measured = dataclasses.replace(nothing, cpu_percent=57.2).summary()
    assert "cpu=57%" in measured and "latency_p50=n/a" in measured


def test_tensorrt_backend_without_tensorrt_is_one_line(capsys):
    code = main(["run", "--source", "synthetic", "--backend", "tensorrt", "--frames", "1"])
    err = capsys.readouterr().err
    assert code == 2 and "TensorRT is not installed" in err and "Traceback" not in err


def test_8k_frame_runs(tmp_path):
    folder = tmp_path / "big"
    folder.mkdir()
    cv2.imwrite(str(folder / "big.png"), np.full((4320, 7680, 3), 90, np.uint8))
    out = tmp_path / "big.avi"
    assert main(["-q", "run", "--source", str(folder), "--model", "bicubic", "--frames",
                 "1", "--sink", f"file:{out}"]) == 0


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_stops_a_real_process_within_a_second(tmp_path, sig):
    out = tmp_path / "sig.avi"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    process = subprocess.Popen(
        [sys.executable, "-m", "localsr_cam", "run", "--source", "synthetic", "--model",
         "bicubic", "--input", "160x90", "--sink", f"file:{out}"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not (out.exists() and out.stat().st_size > 2000):
            assert time.monotonic() < deadline and process.poll() is None
            time.sleep(0.05)
        sent = time.monotonic()
        process.send_signal(sig)
        stdout, stderr = process.communicate(timeout=10)
        elapsed = time.monotonic() - sent
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == (130 if sig == signal.SIGINT else 143), stderr
    assert elapsed < 1.0, f"took {elapsed:.2f} s"
    assert "Traceback" not in stderr and stdout.startswith("frames=")
    capture = cv2.VideoCapture(str(out))
    assert capture.isOpened() and capture.read()[0]  # the file was finalized
    capture.release()
    ps = subprocess.run(["pgrep", "-s", str(process.pid)], capture_output=True, text=True)
    assert ps.stdout.strip() == ""  # nothing of its session left running
