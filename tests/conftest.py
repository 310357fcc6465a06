"""Shared test hygiene and session fixtures."""

from __future__ import annotations

from pathlib import Path

import cv2
import pytest
import torch


@pytest.fixture(autouse=True)
def _restore_threads():
    """Library code may set torch's and OpenCV's process-wide thread counts (engines,
    training, a live processor); a test must not leave them changed for the next
    (exports depend on torch's bit for bit)."""
    threads, opencv_threads = torch.get_num_threads(), cv2.getNumThreads()
    yield
    torch.set_num_threads(threads)
    cv2.setNumThreads(opencv_threads)


@pytest.fixture(scope="session")
def selfie_engines(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An engines folder holding current selfie models: the project's ``engines/`` when
    ``localsr-cam models fetch`` prepared it, else a fetch into a temporary folder
    (reusing the wheel in the project's ``.cache/``, downloading it with pip otherwise)."""
    from localsr_cam.models.selfie import VARIANTS
    from localsr_cam.zoo import artifacts, selfie_fetch

    project = artifacts.engines_dir()
    if all(selfie_fetch.entry_problem(name, project) is None for name in VARIANTS):
        return project
    target = tmp_path_factory.mktemp("engines")
    selfie_fetch.fetch_models(engines_dir=target)
    return target


@pytest.fixture(scope="session")
def face_engines(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An engines folder holding the current face detector: the project's ``engines/``
    when ``localsr-cam models fetch`` prepared it, else a fetch into a temporary folder."""
    from localsr_cam.zoo import artifacts, face_fetch

    project = artifacts.engines_dir()
    if face_fetch.entry_problem(project) is None:
        return project
    target = tmp_path_factory.mktemp("engines")
    face_fetch.fetch_face(engines_dir=target)
    return target
