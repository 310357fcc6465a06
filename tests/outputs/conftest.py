"""Fixtures shared by the output tests."""

from __future__ import annotations

import pytest
import pyvirtualcam

from tests.fakes import FakeCamera


@pytest.fixture
def fake_camera(monkeypatch):
    """pyvirtualcam's ``Camera`` replaced by :class:`FakeCamera` (the hardware edge),
    its class-level records and failure counters reset."""
    monkeypatch.setattr(FakeCamera, "instances", [])
    monkeypatch.setattr(FakeCamera, "fail_opens", 0)
    monkeypatch.setattr(FakeCamera, "fail_sends", 0)
    monkeypatch.setattr(pyvirtualcam, "Camera", FakeCamera)
    return FakeCamera
