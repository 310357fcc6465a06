"""Mask smoothing, feathering, person box, bucketing and blending."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from localsr_cam.process.localize import (
    MaskSmoother,
    bucket_box,
    feather,
    open_binary,
    person_box,
)
from localsr_cam.process.ops import blend_into


def disc(h=48, w=64, r=12.0, cx=32.0, cy=24.0) -> torch.Tensor:
    yy, xx = torch.meshgrid(torch.arange(h) + 0.5, torch.arange(w) + 0.5, indexing="ij")
    return (((xx - cx) ** 2 + (yy - cy) ** 2) <= r * r).float()[None, None]


def test_ema_converges_to_a_steady_input():
    """s_n = 0.7·s_(n−1) + 0.3·p, seen through the thresholds: from 0 towards 0.9 the
    mask turns on at the 4th frame (0.684 ≥ high = 0.6; the 3rd gives 0.591); from the
    converged 0.9 towards 0 hysteresis holds it until s drops below low = 0.3, at the
    4th zero frame (0.216; the 3rd gives 0.309; from 0.85 it would already be 0.292)."""
    smoother = MaskSmoother(ema=0.7, low=0.3, high=0.6, despeckle=0, feather_radius=0)
    smoother(torch.zeros(1, 1, 8, 8))
    rising = [bool(smoother(torch.full((1, 1, 8, 8), 0.9)).min() == 1.0) for _ in range(40)]
    assert rising[:4] == [False, False, False, True] and all(rising[3:])
    falling = [bool(smoother(torch.zeros(1, 1, 8, 8)).max() == 0.0) for _ in range(5)]
    assert falling == [False, False, False, True, True]


def test_hysteresis_stops_flicker_around_a_threshold():
    probability = [0.7, 0.55, 0.62, 0.5, 0.58, 0.52, 0.61]  # around high=0.6
    plain = [p >= 0.6 for p in probability]
    smoother = MaskSmoother(ema=0.0, low=0.35, high=0.6, despeckle=0, feather_radius=0)
    held = [bool(smoother(torch.full((1, 1, 4, 4), p))[0, 0, 0, 0] > 0.5) for p in probability]
    assert plain.count(True) < len(plain)  # the plain threshold flickers
    assert all(held)  # hysteresis keeps it on
    off = smoother(torch.full((1, 1, 4, 4), 0.2))
    assert off.max() == 0.0  # and turns off below the low threshold


def test_feather_is_monotone_across_the_edge_and_zero_far_outside():
    mask = torch.zeros(1, 1, 1, 40)
    mask[..., :20] = 1
    soft = feather(mask, 3)[0, 0, 0]
    assert torch.all(soft[1:] <= soft[:-1] + 1e-7)
    assert soft[0] == 1.0 and soft[20 + 2 * 3 + 1:].max() == 0.0
    assert 0 < soft[19] < 1


def test_opening_removes_specks_and_keeps_the_person():
    mask = disc()
    mask[0, 0, 2, 2] = 1.0  # a one-pixel speck
    opened = open_binary(mask, 1)
    assert opened[0, 0, 2, 2] == 0
    assert opened[0, 0, 24, 32] == 1


@pytest.mark.parametrize("value", [0.0, 1.0])
def test_empty_and_full_masks_pass_through(value):
    smoother = MaskSmoother(ema=0.5, low=0.3, high=0.6, despeckle=1, feather_radius=2)
    out = smoother(torch.full((1, 1, 16, 16), value))
    assert torch.all(out == value)
    assert (person_box(out) is None) == (value == 0.0)


@pytest.mark.parametrize("seed", range(12))
def test_person_box_matches_the_extent_of_the_mask(seed):
    gen = torch.Generator().manual_seed(seed)
    h, w = 1 + seed * 7 % 40, 1 + seed * 11 % 50
    mask = (torch.rand(1, 1, h, w, generator=gen) > 0.97 + 0.003 * seed).float()
    ys, xs = torch.nonzero(mask[0, 0] > 0, as_tuple=True)
    expected = None if ys.numel() == 0 else (
        int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
    assert person_box(mask) == expected
    assert person_box(torch.ones(1, 1, h, w)) == (0, 0, w, h)


def test_person_box_is_tight():
    # pixel centres 15.5 .. 25.5 lie within 5 of 20.5: columns 15..25, rows 5..15
    assert person_box(disc(r=5, cx=20.5, cy=10.5)) == (15, 5, 26, 16)


def test_bucket_box_pads_aligns_and_centres():
    box = bucket_box((100, 50, 140, 110), (640, 360), context=16, bucket=32)
    x0, y0, x1, y1 = box
    assert (x1 - x0) % 32 == 0 and (y1 - y0) % 32 == 0
    assert x0 <= 100 - 16 and x1 >= 140 + 16 and y0 <= 50 - 16 and y1 >= 110 + 16


@given(x0=st.integers(0, 99), y0=st.integers(0, 59), w=st.integers(1, 100),
       h=st.integers(1, 60), width=st.integers(1, 100), height=st.integers(1, 60),
       context=st.integers(0, 20), bucket=st.sampled_from([1, 8, 32]))
def test_bucket_box_always_inside_and_covering(x0, y0, w, h, width, height, context, bucket):
    x0, y0 = min(x0, width - 1), min(y0, height - 1)
    x1, y1 = min(x0 + w, width), min(y0 + h, height)
    bx0, by0, bx1, by1 = bucket_box((x0, y0, x1, y1), (width, height), context, bucket)
    assert 0 <= bx0 <= x0 and x1 <= bx1 <= width
    assert 0 <= by0 <= y0 and y1 <= by1 <= height
    assert (bx1 - bx0) % bucket == 0 or bx1 - bx0 == width
    assert (by1 - by0) % bucket == 0 or by1 - by0 == height


def test_blend_leaves_pixels_outside_the_mask_exactly_unchanged():
    background = torch.randint(0, 256, (20, 30, 3), dtype=torch.uint8)
    original = background.clone()
    foreground = torch.randint(0, 256, (20, 30, 3), dtype=torch.uint8)
    alpha = torch.zeros(20, 30)
    alpha[5:10, 5:10] = 1.0
    alpha[12, 12] = 0.5
    alpha[14, 3] = 0.25
    blend_into(background, foreground, alpha)
    outside = alpha == 0
    assert torch.equal(background[outside], original[outside])
    assert torch.equal(background[5:10, 5:10], foreground[5:10, 5:10])
    for y, x in ((12, 12), (14, 3)):
        a = float(alpha[y, x])
        expected = original[y, x].float() * (1 - a) + foreground[y, x].float() * a
        assert torch.all((background[y, x].float() - expected).abs() <= 0.5 + 1e-4)


@pytest.mark.parametrize("radius", [1, 2, 4])
def test_cpu_fast_paths_match_the_torch_kernels(radius, monkeypatch):
    """OpenCV on the CPU and torch's pooling (the GPU path) agree, borders included."""
    from localsr_cam.process import localize

    mask = disc(r=10.0, cx=6.0, cy=20.0)  # touches the left border
    mask[0, 0, 0, 40] = 1.0  # a speck on the top border
    fast_open, fast_feather = open_binary(mask, radius), feather(mask, radius)

    class NotCpu:
        type = "cuda"

    class Wrapped(torch.Tensor):
        @property
        def device(self):  # route to the torch kernels while staying on the CPU
            return NotCpu()

    slow_open = localize.open_binary(mask.as_subclass(Wrapped), radius).as_subclass(
        torch.Tensor)
    slow_feather = localize.feather(mask.as_subclass(Wrapped), radius).as_subclass(
        torch.Tensor)
    assert torch.equal(fast_open, slow_open)
    assert torch.allclose(fast_feather, slow_feather, atol=1e-6)


@pytest.mark.parametrize("frame, context, bucket", [((640, 360), 16, 32), ((96, 54), 4, 16),
                                                    ((100, 37), 0, 32)])
def test_bucket_sizes_are_exactly_the_sizes_bucket_box_returns(frame, context, bucket):
    from localsr_cam.process.localize import bucket_sizes

    width, height = frame
    seen = set()
    for w in range(1, width + 1):
        for h in (1, height // 3, height):
            seen.add(bucket_box((0, 0, w, max(1, h)), frame, context, bucket)[2:])
    for h in range(1, height + 1):
        x1, y1 = bucket_box((0, 0, 1, h), frame, context, bucket)[2:]
        seen.add((x1, y1))
    sizes = bucket_sizes(frame, context, bucket)
    widths, heights = {w for w, _ in sizes}, {h for _, h in sizes}
    assert {w for w, _ in seen} == widths and {h for _, h in seen} == heights
    assert len(sizes) == len(widths) * len(heights)  # every pairing can occur
    assert max(widths) == width and max(heights) == height
