"""An SR call in two row bands: the bands cover the crop once with enough context, the
stitched result is the whole crop's (bit for bit with the shipped FastUNet), a waiting
thread runs the band no one began, and a band's error reaches the job's caller."""

from __future__ import annotations

import contextlib
import threading
import time

import numpy as np
import pytest
import torch

from localsr_cam.process import ops
from localsr_cam.process.reuse import SR_CONTEXT_PX
from localsr_cam.process.shared_sr import SHARE_MIN_ROWS, SharedJob, bands
from localsr_cam.runtime.base import HOST_LEVELS_NAME, INPUT_NAME, LEVELS_NAME
from localsr_cam.zoo.backends import open_engine


@pytest.mark.parametrize("rows", [SHARE_MIN_ROWS - 1, SHARE_MIN_ROWS, 200, 360, 361, 1080])
def test_the_bands_cover_the_crop_once_with_context_on_the_grid(rows):
    found = bands(rows)
    if rows < SHARE_MIN_ROWS:
        assert found == [(0, rows, 0, rows)]
        return
    (first_a, last_a, top_a, bottom_a), (first_b, last_b, top_b, bottom_b) = found
    assert (first_a, top_a, bottom_a, top_b, bottom_b, last_b) == (0, 0, top_b, bottom_a,
                                                                  rows, rows)
    assert last_a - bottom_a == SR_CONTEXT_PX == top_b - first_b  # context past the split
    assert first_b % 8 == 0  # the crop's 8×8 grid (JPEG blocks) stays where it was
    assert abs(bottom_a - rows / 2) <= SR_CONTEXT_PX / 2


def _local_sr(image: torch.Tensor, first: int, last: int) -> torch.Tensor:
    """A stand-in SR engine with a receptive field of 2 rows: a vertical 5-tap sum of
    rows ``first:last`` of the uint8 h×w×3 ``image``, upscaled 2× by repetition."""
    part = image[first:last].to(torch.int32)
    padded = torch.nn.functional.pad(part.permute(2, 1, 0), (2, 2), mode="replicate")
    summed = sum(padded[:, :, shift:shift + part.shape[0]] for shift in range(5))
    out = (summed // 5).permute(2, 1, 0).to(torch.uint8)
    return out.repeat_interleave(2, 0).repeat_interleave(2, 1)


def test_the_stitched_bands_are_the_whole_crop_s_sr_and_a_helper_runs_the_last():
    image = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (200, 64, 3),
                                                               dtype=np.uint8))
    ran_on: dict[int, str] = {}
    started = threading.Event()

    def run(first: int, last: int) -> torch.Tensor:
        ran_on[first] = threading.current_thread().name
        started.set()
        time.sleep(0.05)  # the helper claims the last band while the first runs
        return _local_sr(image, first, last)

    job = SharedJob(run, 200)
    worker = threading.Thread(target=lambda: results.append(job()), name="worker")
    results: list[torch.Tensor] = []
    worker.start()
    started.wait()
    assert job.help() and job.helped == 1 and job.open_bands == 0
    assert not job.help()  # nothing left to take
    worker.join()
    assert torch.equal(results[0], _local_sr(image, 0, 200))
    assert sorted(ran_on.values()) == sorted(["worker", threading.current_thread().name])
    alone = SharedJob(lambda first, last: _local_sr(image, first, last), 200)
    assert torch.equal(alone(), results[0]) and alone.helped == 0  # the worker does all


def test_a_band_s_error_reaches_the_caller_of_the_job():
    def run(first: int, last: int) -> torch.Tensor:
        if first > 0:
            raise RuntimeError("engine failed")
        return torch.zeros((2 * (last - first), 8, 3), dtype=torch.uint8)

    job = SharedJob(run, 200)
    assert job.help()  # the last band, here: its error is kept for the job's caller
    with pytest.raises(RuntimeError, match="engine failed"):
        job()


@pytest.mark.parametrize("levels", [[0.2, 0.1, 0.4], [0.5, 0.9, 0.2]])
def test_the_shipped_fast_unet_gives_the_same_pixels_in_bands(levels):
    """The nets' receptive field is within the bands' context: the int8 FastUNet of a
    352×360 crop (the sample's box) is the same, bit for bit, run whole or in bands —
    also on a lossy frame, which goes to the MJPEG variant with its chroma step."""
    engine = open_engine("fast", "cpu", threads=1)
    rng = np.random.default_rng(1)
    picture = _textured(rng.integers(0, 256, (360, 352, 3), dtype=np.uint8))
    inputs = {INPUT_NAME: ops.bgr8_to_rgb_float(torch.from_numpy(picture)),
              LEVELS_NAME: torch.tensor([levels]), HOST_LEVELS_NAME: torch.tensor([levels])}

    def run(first: int, last: int) -> torch.Tensor:
        part = {**inputs, INPUT_NAME: inputs[INPUT_NAME][:, :, first:last].contiguous()}
        return ops.sr_to_bgr8(engine(part))

    with contextlib.closing(engine):
        whole = run(0, 360)
        assert torch.equal(SharedJob(run, 360)(), whole)


def _textured(image: np.ndarray) -> np.ndarray:
    """A picture with structure at several scales (noise averaged over 1, 4 and 16 px
    blocks), uint8 h×w×3, so the net has edges and texture to work on."""
    height, width = image.shape[:2]
    out = image.astype(np.float32) / 3
    for block in (4, 16):
        coarse = image[::block, ::block].astype(np.float32)
        out += np.repeat(np.repeat(coarse, block, 0), block, 1)[:height, :width] / 3
    return out.astype(np.uint8)
