"""Metrics: UQI against its definition and sewar, PSNR's cap, masked and border variants,
Algorithm 1."""

from __future__ import annotations

import json
import math

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from localsr_cam.measure import metrics


def ssim_masked(reference: np.ndarray, test: np.ndarray, mask: np.ndarray) -> float | None:
    """The foreground SSIM the evaluation reports (the second value of the one pass)."""
    return metrics.ssim_with_masked(reference, test, mask)[1]


def rand_image(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return rng.integers(0, 256, shape, dtype=np.uint8)


def noisy(rng: np.random.Generator, image: np.ndarray, sigma: float = 12.0) -> np.ndarray:
    return np.clip(image + rng.normal(0, sigma, image.shape), 0, 255).astype(np.uint8)


def uqi_by_hand(x: np.ndarray, y: np.ndarray, window: int = 8) -> float:
    """Wang & Bovik's Q, written out: every window position, every channel, then the mean."""
    x3 = x.reshape(*x.shape[:2], -1).astype(float)
    y3 = y.reshape(*y.shape[:2], -1).astype(float)
    values = []
    for c in range(x3.shape[2]):
        for i in range(x3.shape[0] - window + 1):
            for j in range(x3.shape[1] - window + 1):
                a = x3[i:i + window, j:j + window, c].ravel()
                b = y3[i:i + window, j:j + window, c].ravel()
                mean_a, mean_b = a.mean(), b.mean()
                var_a, var_b = a.var(ddof=1), b.var(ddof=1)
                cov = ((a - mean_a) * (b - mean_b)).sum() / (a.size - 1)
                values.append(4 * cov * mean_a * mean_b
                              / ((var_a + var_b) * (mean_a ** 2 + mean_b ** 2)))
    return float(np.mean(values))


# -- UQI ------------------------------------------------------------------------------


def test_uqi_single_8x8_window_matches_definition() -> None:
    rng = np.random.default_rng(1)
    x = rand_image(rng, (8, 8))
    y = noisy(rng, x, 30)
    assert metrics.uqi_map(x, y).shape == (1, 1, 1)
    assert metrics.uqi(x, y) == pytest.approx(uqi_by_hand(x, y), abs=1e-12)


def test_uqi_9x9_colour_averages_four_windows_and_three_channels() -> None:
    rng = np.random.default_rng(2)
    x = rand_image(rng, (9, 9, 3))
    y = noisy(rng, x, 25)
    assert metrics.uqi_map(x, y).shape == (2, 2, 3)
    assert metrics.uqi(x, y) == pytest.approx(uqi_by_hand(x, y), abs=1e-12)


def test_uqi_larger_image_matches_definition() -> None:
    rng = np.random.default_rng(3)
    x = rand_image(rng, (13, 17, 3))
    y = noisy(rng, x, 40)
    assert metrics.uqi(x, y) == pytest.approx(uqi_by_hand(x, y), abs=1e-12)


def test_uqi_flat_window_conventions() -> None:
    flat_a = np.full((8, 8), 100, np.uint8)
    flat_b = np.full((8, 8), 50, np.uint8)
    textured = np.tile(np.array([90, 110], np.uint8), (8, 4))
    assert metrics.uqi(flat_a, flat_a) == 1.0  # 0/0 in both factors of a flat pair
    assert metrics.uqi(flat_a, flat_b) == pytest.approx(2 * 100 * 50 / (100**2 + 50**2))
    assert metrics.uqi(flat_a, textured) == 0.0  # no covariance with a flat window
    zeros = np.zeros((8, 8), np.uint8)
    assert metrics.uqi(zeros, zeros) == 1.0


def test_uqi_rejects_images_smaller_than_the_window() -> None:
    small = np.zeros((7, 20), np.uint8)
    with pytest.raises(ValueError, match="at least 8"):
        metrics.uqi(small, small)


def test_uqi_matches_sewar_once_its_box_filter_sums(monkeypatch: pytest.MonkeyPatch) -> None:
    """sewar 0.4.10 puts window means where its formula expects sums (see metrics' notes).

    Turned back into sums, its map is Wang–Bovik's; it pads by reflection and crops 4 px,
    which keeps the windows with top-left (0..H-9, 0..W-9): ours minus the last row and
    column. If sewar ever fixes its scaling this test fails: then drop the patch.
    """
    sewar_full_ref = pytest.importorskip("sewar.full_ref")
    from scipy.ndimage import uniform_filter

    monkeypatch.setattr(sewar_full_ref, "uniform_filter",
                        lambda a, size: uniform_filter(a, size) * size * size)
    rng = np.random.default_rng(4)
    x = rand_image(rng, (24, 30, 3))
    y = noisy(rng, x, 20)
    ours = metrics.uqi_map(x, y)[:-1, :-1].mean()
    assert sewar_full_ref.uqi(x, y, ws=8) == pytest.approx(ours, abs=1e-9)


def test_sewar_as_shipped_agrees_only_on_identical_images() -> None:
    sewar_full_ref = pytest.importorskip("sewar.full_ref")
    rng = np.random.default_rng(5)
    x = rand_image(rng, (20, 20, 3))
    assert sewar_full_ref.uqi(x, x) == pytest.approx(1.0)
    assert metrics.uqi(x, x) == 1.0
    y = noisy(rng, x, 20)
    # The documented difference: sewar scores this pair higher than the definition.
    assert sewar_full_ref.uqi(x, y) > metrics.uqi(x, y) + 0.005


@settings(max_examples=30, deadline=None)
@given(arrays(np.uint8, (10, 11)), arrays(np.uint8, (10, 11)))
def test_uqi_symmetric_and_bounded(x: np.ndarray, y: np.ndarray) -> None:
    q = metrics.uqi(x, y)
    assert q == pytest.approx(metrics.uqi(y, x), abs=1e-12)
    assert -1.0 - 1e-12 <= q <= 1.0 + 1e-12


# -- PSNR / SSIM ------------------------------------------------------------------------


def test_psnr_of_identical_images_is_the_documented_cap() -> None:
    rng = np.random.default_rng(6)
    x = rand_image(rng, (32, 40, 3))
    assert metrics.psnr(x, x) == metrics.PSNR_CAP_DB == 100.0
    json.dumps({"psnr": metrics.psnr(x, x)}, allow_nan=False)  # strict JSON holds it


def test_psnr_above_the_cap_is_clamped_and_below_it_is_exact() -> None:
    x = np.full((400, 400, 3), 128, np.uint8)
    y = x.copy()
    y[0, 0, 0] += 1  # MSE = 1 / 480000 → about 104.9 dB
    assert metrics.psnr(x, y) == 100.0
    y[0, 0, 1:] += 1  # MSE = 3 / 480000 → about 100.1 dB
    assert metrics.psnr(x, y) == 100.0
    y[0, 1] += 1  # MSE = 6 / 480000 → about 97.1 dB
    assert metrics.psnr(x, y) == pytest.approx(10 * math.log10(255**2 * 480000 / 6))
    rng = np.random.default_rng(7)
    a = rand_image(rng, (32, 32, 3))
    b = noisy(rng, a)
    mse = np.mean((a.astype(float) - b.astype(float)) ** 2)
    assert metrics.psnr(a, b) == pytest.approx(10 * math.log10(255**2 / mse))


def test_ssim_and_uqi_are_one_on_identical_images() -> None:
    rng = np.random.default_rng(8)
    for x in (rand_image(rng, (32, 32, 3)), np.full((32, 32, 3), 77, np.uint8)):
        assert metrics.ssim(x, x) == pytest.approx(1.0)
        assert metrics.uqi(x, x) == 1.0


def test_ssim_drops_with_noise() -> None:
    rng = np.random.default_rng(9)
    x = cv2.GaussianBlur(rand_image(rng, (48, 48, 3)), (0, 0), 2)
    assert metrics.ssim(x, noisy(rng, x, 5)) > metrics.ssim(x, noisy(rng, x, 25))


def test_metrics_reject_mismatched_or_non_uint8_pairs() -> None:
    x = np.zeros((16, 16, 3), np.uint8)
    with pytest.raises(ValueError, match="shapes differ"):
        metrics.psnr(x, x[:-2])
    with pytest.raises(ValueError, match="uint8"):
        metrics.ssim(x, x.astype(np.float32))


# -- masked and border variants --------------------------------------------------------


@pytest.fixture
def pair_and_mask() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(10)
    hr = cv2.GaussianBlur(rand_image(rng, (64, 64, 3)), (0, 0), 1.5)
    sr = noisy(rng, hr, 10)
    mask = np.zeros((64, 64), np.float32)
    mask[20:44, 16:40] = 0.9
    return hr, sr, mask


def test_full_mask_gives_the_whole_image_value(pair_and_mask) -> None:
    hr, sr, _ = pair_and_mask
    full = np.ones(hr.shape[:2], bool)
    assert metrics.psnr_masked(hr, sr, full) == pytest.approx(metrics.psnr(hr, sr))
    assert ssim_masked(hr, sr, full) == pytest.approx(metrics.ssim(hr, sr))


def test_one_pass_ssim_gives_both_values(pair_and_mask) -> None:
    hr, sr, mask = pair_and_mask
    whole, masked = metrics.ssim_with_masked(hr, sr, mask)
    assert whole == pytest.approx(metrics.ssim(hr, sr))
    assert masked is not None and masked != pytest.approx(whole)


def test_empty_mask_gives_none(pair_and_mask) -> None:
    hr, sr, mask = pair_and_mask
    empty = np.zeros_like(mask)
    assert metrics.psnr_masked(hr, sr, empty) is None
    assert ssim_masked(hr, sr, empty) is None
    assert metrics.psnr_boundary(hr, sr, empty) is None


def test_masked_psnr_ignores_every_pixel_outside_the_mask(pair_and_mask) -> None:
    hr, sr, mask = pair_and_mask
    before = metrics.psnr_masked(hr, sr, mask)
    changed = sr.copy()
    changed[mask < 0.5] = 255 - changed[mask < 0.5]
    assert metrics.psnr_masked(hr, changed, mask) == before
    assert metrics.psnr(hr, changed) != metrics.psnr(hr, sr)
    inside = sr.copy()
    inside[30, 30] = 255 - inside[30, 30]
    assert metrics.psnr_masked(hr, inside, mask) != before


def test_masked_ssim_ignores_pixels_beyond_the_window_radius(pair_and_mask) -> None:
    hr, sr, mask = pair_and_mask
    far = cv2.dilate((mask >= 0.5).astype(np.uint8), np.ones((19, 19), np.uint8)) == 0
    changed = sr.copy()
    changed[far] = 0
    # scipy's running-sum filter lets far pixels move SSIM by rounding only (1e-16)
    assert ssim_masked(hr, changed, mask) == pytest.approx(
        ssim_masked(hr, sr, mask), rel=1e-12)
    assert metrics.ssim(hr, changed) < metrics.ssim(hr, sr)
    inside = sr.copy()
    inside[25:35, 25:35] = 0
    worse, before = ssim_masked(hr, inside, mask), ssim_masked(hr, sr, mask)
    assert worse is not None and before is not None and worse < before


def test_masked_ssim_scores_the_windows_centred_on_the_mask(pair_and_mask) -> None:
    from skimage.metrics import structural_similarity

    hr, sr, _ = pair_and_mask
    one = np.zeros(hr.shape[:2], bool)
    one[30, 21] = True
    _, ssim_map = structural_similarity(hr, sr, data_range=255, channel_axis=2, full=True)
    assert ssim_masked(hr, sr, one) == pytest.approx(ssim_map[30, 21].mean())
    edge = np.zeros(hr.shape[:2], bool)
    edge[:, :3] = True  # only the border skimage leaves out of its mean
    assert ssim_masked(hr, sr, edge) is None


def test_float_mask_is_thresholded_at_one_half() -> None:
    soft = np.array([[0.49, 0.5], [0.51, 1.0]], np.float32)
    assert metrics.binary_mask(soft).tolist() == [[False, True], [True, True]]


def test_boundary_band_of_a_disc_is_the_ring_of_plus_minus_8_px() -> None:
    size, centre, radius = 160, 80, 40
    disc = np.zeros((size, size), np.uint8)
    cv2.circle(disc, (centre, centre), radius, 1, thickness=-1)
    band = metrics.boundary_band(disc.astype(np.float32))
    yy, xx = np.mgrid[:size, :size]
    distance = np.hypot(yy - centre, xx - centre)
    assert band[np.abs(distance - radius) <= 6].all()
    assert not band[np.abs(distance - radius) >= 10].any()
    ring_area = math.pi * ((radius + 8) ** 2 - (radius - 8) ** 2)
    assert band.sum() == pytest.approx(ring_area, rel=0.06)


def test_boundary_band_ignores_the_image_border() -> None:
    half = np.zeros((40, 60), bool)
    half[:, :30] = True
    band = metrics.boundary_band(half)
    columns = np.flatnonzero(band.any(axis=0))
    assert columns.min() == 30 - 8 and columns.max() == 30 + 8 - 1
    assert band[:, 22:38].all()  # whole height, top and bottom rows included
    assert not metrics.boundary_band(np.ones((40, 60), bool)).any()


def test_boundary_psnr_sees_only_the_band(pair_and_mask) -> None:
    hr, sr, mask = pair_and_mask
    band = metrics.boundary_band(mask)
    before = metrics.psnr_boundary(hr, sr, mask)
    outside = sr.copy()
    outside[~band] = 0
    assert metrics.psnr_boundary(hr, outside, mask) == before
    seam = sr.copy()
    seam[band] = 255
    after = metrics.psnr_boundary(hr, seam, mask)
    assert after is not None and before is not None and after < before


# -- Algorithm 1 -------------------------------------------------------------------------


def test_percent_increase_is_the_mean_of_per_image_percentages() -> None:
    assert metrics.percent_increase([30.0, 40.0], [20.0, 50.0]) == pytest.approx(15.0)
    # not the percentage of the means: (35 - 35) / 35 = 0
    assert metrics.percent_increase([110.0, 90.0], [100.0, 100.0]) == pytest.approx(0.0)
    assert metrics.percent_increase([0.5], [0.4]) == pytest.approx(25.0)


@pytest.mark.parametrize(("scores", "baseline", "match"), [
    ([1.0], [0.0], "baseline"),
    ([1.0], [math.inf], "baseline"),
    ([1.0, 2.0], [1.0], "scores but"),
    ([], [], "no scores"),
])
def test_percent_increase_rejects_undefined_input(scores, baseline, match) -> None:
    with pytest.raises(ValueError, match=match):
        metrics.percent_increase(scores, baseline)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.floats(1, 100), st.floats(1, 100)), min_size=1, max_size=8))
def test_percent_increase_of_the_baseline_itself_is_zero(pairs) -> None:
    baseline = [b for _, b in pairs]
    assert metrics.percent_increase(baseline, baseline) == 0.0
