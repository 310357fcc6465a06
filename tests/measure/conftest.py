"""What the measure tests share: a tripwire on the processor opening its models (the
commands must refuse bad outputs before that)."""

from __future__ import annotations

import pytest


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """A tripwire on the processor's ``open`` (where models load): the test fails if the
    run gets that far; lists the processors that tried."""
    from localsr_cam.process.processor import FrameProcessor

    tried: list[object] = []

    def tripwire(self: FrameProcessor, *args: object, **kwargs: object) -> FrameProcessor:
        tried.append(self)
        raise AssertionError("a processor opened (models loaded) before the refusal")

    monkeypatch.setattr(FrameProcessor, "open", tripwire)
    return tried
