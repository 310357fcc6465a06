"""ops: the OpenCV fast paths on the CPU give what the torch (GPU) paths give."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from localsr_cam.process import ops


class _NotCpu:
    type = "cuda"


class TorchPath(torch.Tensor):
    """A CPU tensor that reports another device, so ops take their torch code path."""

    @property
    def device(self):
        return _NotCpu()


def via_torch(fn, *tensors, **kwargs):
    out = fn(*(t.as_subclass(TorchPath) for t in tensors), **kwargs)
    return out.as_subclass(torch.Tensor) if isinstance(out, torch.Tensor) else out


@pytest.fixture
def frame() -> torch.Tensor:
    rng = np.random.default_rng(1)
    return torch.from_numpy(rng.integers(0, 256, (37, 64, 3), dtype=np.uint8))


def test_colour_conversions_round_trip_and_match(frame):
    planar = ops.bgr8_to_rgb_float(frame)
    assert planar.shape == (1, 3, 37, 64) and planar.dtype == torch.float32
    assert torch.allclose(planar, via_torch(ops.bgr8_to_rgb_float, frame), atol=1e-7)
    assert torch.allclose(planar[0, 0], frame[..., 2].float() / 255, atol=1e-7)  # R first
    assert torch.equal(ops.rgb_float_to_bgr8(planar), frame)
    assert torch.equal(via_torch(ops.rgb_float_to_bgr8, planar), frame)


def test_float_to_uint8_rounds_and_clamps_like_torch():
    values = torch.tensor([-0.2, 0.0, 0.49 / 255, 0.51 / 255, 0.5, 1.0, 1.7])
    image = values.view(1, 1, 1, -1).expand(1, 3, 1, 7).contiguous()
    fast = ops.rgb_float_to_bgr8(image)[0, :, 0].tolist()
    assert fast == via_torch(ops.rgb_float_to_bgr8, image)[0, :, 0].tolist()
    assert fast[0] == 0 and fast[2] == 0 and fast[3] == 1 and fast[5] == 255 and fast[6] == 255


@pytest.mark.parametrize("mode", ["bicubic", "bilinear"])
def test_upscale_matches_within_a_grey_level(frame, mode):
    fast = ops.upscale2x(frame, mode)
    slow = via_torch(ops.upscale2x, frame, mode=mode)
    assert fast.shape == (74, 128, 3)
    assert (fast.int() - slow.int()).abs().max() <= 1  # OpenCV rounds in fixed point


def test_shrink_is_close_to_an_area_filter(frame):
    import cv2

    big = torch.from_numpy(cv2.resize(frame.numpy(), (640, 360)))
    fast = ops.shrink(big, (256, 144))
    area = cv2.resize(big.numpy(), (256, 144), interpolation=cv2.INTER_AREA)
    assert fast.shape == (144, 256, 3)
    assert np.abs(fast.numpy().astype(int) - area).mean() < 1.0
    slow = via_torch(ops.shrink, big, size=(256, 144))
    assert (fast.float() - slow.float()).abs().mean() < 2.0


def test_resize_plane_matches_bilinear_interpolate():
    plane = torch.rand(1, 1, 9, 16)
    fast = ops.resize_plane(plane, (32, 18))
    slow = F.interpolate(plane, size=(18, 32), mode="bilinear", align_corners=False)
    assert torch.allclose(fast, slow, atol=1e-5)


def test_blend_paths_agree(frame):
    foreground = torch.flip(frame, dims=[0]).contiguous()
    alpha = torch.rand(37, 64)
    alpha[:5] = 0.0
    fast, slow = frame.clone(), frame.clone()
    ops.blend_into(fast, foreground, alpha)
    via_torch(ops.blend_into, slow, foreground, alpha)
    assert (fast.int() - slow.int()).abs().max() <= 1
    assert torch.equal(fast[:5], frame[:5])


def test_blur_paths_agree_and_blur(frame):
    fast = ops.blur(frame, 3)
    slow = via_torch(ops.blur, frame, radius=3)
    assert fast.float().std() < frame.float().std() / 2
    assert (fast.float() - slow.float()).abs()[8:-8, 8:-8].mean() < 1.5
