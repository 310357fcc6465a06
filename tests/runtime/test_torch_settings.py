"""Process-wide torch and OpenCV settings: changed in one module only, restored where
temporary."""

from __future__ import annotations

import ast
from pathlib import Path

import cv2
import torch

from localsr_cam.runtime import settings

PACKAGE = Path(__file__).resolve().parents[2] / "localsr_cam"
GLOBAL_SWITCHES = {"set_num_threads", "set_num_interop_threads", "benchmark", "allow_tf32",
                   "deterministic", "setNumThreads"}


def test_only_the_settings_module_changes_torch_globals():
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == PACKAGE / "runtime" / "settings.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            called = isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and node.func.attr in GLOBAL_SWITCHES
            assigned = isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Attribute) and t.attr in GLOBAL_SWITCHES
                for t in node.targets)
            if called or assigned:
                offenders.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    assert not offenders, offenders


def test_set_threads_returns_the_previous_count_for_restoring():
    start = torch.get_num_threads()
    try:
        assert settings.set_threads(1) == start
        assert torch.get_num_threads() == 1
        assert settings.set_threads(start) == 1
        assert torch.get_num_threads() == start
    finally:
        torch.set_num_threads(start)


def test_set_opencv_threads_returns_the_previous_count_for_restoring():
    start = cv2.getNumThreads()
    try:
        assert settings.set_opencv_threads(1) == start
        assert cv2.getNumThreads() == 1
        assert settings.set_opencv_threads(2) == 1
        assert cv2.getNumThreads() == 2
    finally:
        cv2.setNumThreads(start)


def test_cap_threads_lowers_but_never_raises():
    start = torch.get_num_threads()
    try:
        settings.set_threads(2)
        settings.cap_threads(5)
        assert torch.get_num_threads() == 2
        settings.cap_threads(1)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(start)


def test_threads_block_restores_even_on_error():
    start = torch.get_num_threads()
    try:
        with settings.threads(1):
            assert torch.get_num_threads() == 1
            raise KeyError("boom")
    except KeyError:
        pass
    assert torch.get_num_threads() == start


def test_exact_float32_turns_tf32_off_inside_only():
    before = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = True
    try:
        with settings.exact_float32():
            assert not torch.backends.cudnn.allow_tf32
            assert not torch.backends.cuda.matmul.allow_tf32
        assert torch.backends.cudnn.allow_tf32
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = before
