"""Shared test hygiene."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _restore_torch_threads():
    """Library code may set torch's process-wide thread count (engines, training); a
    test must not leave it changed for the next (exports depend on it bit for bit)."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)
