"""The camera degradation model: each step does what it says; seeds reproduce."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from localsr_cam.errors import ConfigError, SourceError
from localsr_cam.measure import degrade as D


def _scene(seed: int = 0, h: int = 256, w: int = 320) -> np.ndarray:
    """A photo-like RGB uint8 image: smooth blobs, a few edges and fine texture."""
    rng = np.random.default_rng(seed)
    base = cv2.resize(rng.random((8, 10, 3)).astype(np.float32), (w, h),
                      interpolation=cv2.INTER_CUBIC) * 160 + 40
    yy, xx = np.mgrid[0:h, 0:w]
    base += 40 * ((xx // 21 + yy // 21) % 2)[:, :, None]  # edges off the 8-px grid
    base += cv2.GaussianBlur(rng.standard_normal((h, w, 3)).astype(np.float32), (0, 0), 0.8) * 12
    return D.to_uint8(base)


def _flat(value: int = 128, h: int = 128, w: int = 128) -> np.ndarray:
    return np.full((h, w, 3), value, np.uint8)


def _luma(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2YCrCb)[:, :, 0].astype(np.float32)


def _chroma(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2YCrCb)[:, :, 1:].astype(np.float32)


def test_clean_area_is_the_2x2_mean() -> None:
    hr = _scene()
    sample = D.apply(hr, D.DegradeParams(resize=("area",), clean=True))
    expected = hr.reshape(128, 2, 160, 2, 3).astype(np.float32).mean(axis=(1, 3))
    assert sample.lr.shape == (128, 160, 3)
    assert np.abs(sample.lr.astype(np.float32) - expected).max() <= 0.5 + 1e-6
    assert np.array_equal(sample.hr, hr)


def test_odd_sizes_are_cropped_even_and_tiny_images_refused() -> None:
    sample = D.apply(_scene(h=101, w=77), D.DegradeParams())
    assert sample.hr.shape == (100, 76, 3) and sample.lr.shape == (50, 38, 3)
    with pytest.raises(SourceError):
        D.apply(np.zeros((1, 5, 3), np.uint8), D.DegradeParams())


def test_same_seed_same_sample_and_params_are_recorded() -> None:
    hr = _scene()
    a = D.degrade(hr, np.random.default_rng(5))
    b = D.degrade(hr, np.random.default_rng(5))
    assert a.params == b.params and np.array_equal(a.lr, b.lr) and np.array_equal(a.hr, b.hr)
    assert np.array_equal(D.apply(hr, a.params).lr, a.lr)  # the params say it all
    params = [D.sample_params(np.random.default_rng(s)) for s in range(300)]
    assert len({p for p in params}) > 250
    clean = np.mean([p.clean for p in params])
    assert 0.12 < clean < 0.28
    assert np.mean([p.jpeg_quality > 0 for p in params]) > 0.3
    assert all(p.jpeg_quality == 0 or 50 <= p.jpeg_quality <= 95 for p in params)
    assert max(p.noise_sigma for p in params) <= 15
    assert all(max(p.blur_sigma) <= 1.5 for p in params)


def test_clean_share_sets_the_share_of_clean_draws() -> None:
    def share(p: float) -> float:
        rng = np.random.default_rng(1)
        return float(np.mean([D.sample_params(rng, clean_share=p).clean for _ in range(400)]))

    assert share(0.0) == 0.0 and share(1.0) == 1.0
    assert 0.42 < share(0.5) < 0.58
    every = [D.sample_params(np.random.default_rng(s), clean_share=1.0) for s in range(60)]
    assert {p.resize[0] for p in every} == {"area", "bilinear", "bicubic"}  # kernels still drawn
    assert all(p.jpeg_quality == 0 and p.noise_sigma == 0 for p in every)


def test_single_share_draws_one_fault_alone_each_as_often() -> None:
    rng = np.random.default_rng(3)
    draws = [D.sample_params(rng, clean_share=0.0, single_share=1.0) for _ in range(600)]
    faults = []
    for p in draws:
        has = {"jpeg": p.jpeg_quality > 0, "noise": p.noise_sigma > 0,
               "blur": max(p.blur_sigma) > 0}
        assert sum(has.values()) == 1, p  # one fault, nothing else on top
        assert p.motion_len == 0 and p.sharpen_amount == 0 and p.resize_mid == 0
        assert p.exposure == 1.0 and not p.clean and len(p.resize) == 1
        faults.append(next(name for name, on in has.items() if on))
        if has["jpeg"]:
            assert 50 <= p.jpeg_quality <= 95 and p.chroma in ("420", "422")
        if has["noise"]:  # a raw camera: chroma subsampled, no JPEG
            assert 1 <= p.noise_sigma <= 15 and p.chroma in ("420", "422")
        if has["blur"]:
            assert max(p.blur_sigma) <= 1.5 and p.chroma == "444"
    shares = [faults.count(name) / len(faults) for name in D.SINGLE_FAULTS]
    assert all(0.27 < share < 0.4 for share in shares), shares
    assert {p.resize[0] for p in draws} == {"area", "bilinear", "bicubic"}
    mixed = [D.sample_params(np.random.default_rng(s), clean_share=0.0, single_share=0.3)
             for s in range(600)]
    alone = np.mean([(p.jpeg_quality > 0) + (p.noise_sigma > 0) + (max(p.blur_sigma) > 0)
                     + (p.sharpen_amount > 0) + (p.motion_len > 0) + (p.exposure != 1.0)
                     == 1 for p in mixed])
    assert 0.3 < alone < 0.55  # 0.3 single draws + the full model's own lone faults


def test_jpeg_share_gives_mjpeg_to_the_draws_without_it() -> None:
    """``jpeg_share`` 1: every draw is an MJPEG frame (step 7's ranges); the clean draws
    become MJPEG alone and the draws that had MJPEG keep theirs. A share in between gives
    it to about that share; 0 draws what was always drawn."""
    alone = [D.sample_params(np.random.default_rng(s), clean_share=1.0, jpeg_share=1.0)
             for s in range(300)]
    for p in alone:
        assert 50 <= p.jpeg_quality <= 95 and p.chroma in ("420", "422") and not p.clean
        assert p.noise_sigma == 0 and max(p.blur_sigma) == 0 and p.sharpen_amount == 0
    mixed = [D.sample_params(np.random.default_rng(s), clean_share=0.0, jpeg_share=1.0)
             for s in range(300)]
    before = [D.sample_params(np.random.default_rng(s), clean_share=0.0) for s in range(300)]
    assert all(p.jpeg_quality > 0 for p in mixed)
    assert all(m == b for m, b in zip(mixed, before, strict=True) if b.jpeg_quality > 0)
    assert sum(m.noise_sigma > 0 for m in mixed) == sum(b.noise_sigma > 0 for b in before)
    half = [D.sample_params(np.random.default_rng(s), clean_share=1.0, jpeg_share=0.5)
            for s in range(400)]
    assert 0.42 < np.mean([p.jpeg_quality > 0 for p in half]) < 0.58
    assert [D.sample_params(np.random.default_rng(s), jpeg_share=0.0) for s in range(50)] == \
        [D.sample_params(np.random.default_rng(s)) for s in range(50)]
    hr = _scene()
    blocky = D.apply(hr, alone[0]).lr.astype(np.float32)
    plain = D.apply(hr, D.DegradeParams(resize=alone[0].resize)).lr.astype(np.float32)
    assert np.abs(blocky - plain).max() > 4  # the JPEG step is applied, not only recorded


def test_sharpen_share_sharpens_clean_draws_only() -> None:
    """``sharpen_share`` gives that share of the clean draws the ISP's unsharp mask (with
    step 5's ranges) and nothing else; the degraded draws are exactly what they were."""
    clean = [D.sample_params(np.random.default_rng(s), clean_share=1.0, sharpen_share=0.4)
             for s in range(500)]
    sharpened = [p for p in clean if p.sharpen_amount > 0]
    assert 0.33 < len(sharpened) / len(clean) < 0.47
    for p in sharpened:
        assert 0.2 <= p.sharpen_amount <= 0.8 and 0.7 <= p.sharpen_sigma <= 1.5
        assert not p.clean and p.noise_sigma == 0 and p.jpeg_quality == 0
        assert max(p.blur_sigma) == 0 and p.chroma == "444" and len(p.resize) == 1
    assert all(p.clean for p in clean if p.sharpen_amount == 0)
    assert {p.resize[0] for p in sharpened} == {"area", "bilinear", "bicubic"}
    degraded = [D.sample_params(np.random.default_rng(s), clean_share=0.0, sharpen_share=1.0)
                for s in range(100)]
    assert degraded == [D.sample_params(np.random.default_rng(s), clean_share=0.0)
                        for s in range(100)]
    hr = _scene()
    one = D.apply(hr, sharpened[0]).lr.astype(np.float32)
    plain = D.apply(hr, D.DegradeParams(resize=sharpened[0].resize)).lr.astype(np.float32)
    assert np.abs(one - plain).max() > 4  # the mask is applied, not only recorded


def test_light_jpeg_share_draws_that_share_of_mjpeg_qualities_from_the_light_end() -> None:
    """``light_jpeg_share`` 1: every MJPEG draw (the full model's, a single fault's, the
    ``jpeg_share`` ones) at q 85–95; 0.5: about half; 0: exactly the old draws."""
    low, high = D.LIGHT_JPEG_QUALITY
    light = [D.sample_params(np.random.default_rng(s), single_share=0.5, jpeg_share=1.0,
                             light_jpeg_share=1.0) for s in range(300)]
    assert all(p.jpeg_quality > 0 for p in light)
    assert all(low <= p.jpeg_quality <= high for p in light)
    assert {p.jpeg_quality for p in light} == set(range(low, high + 1))
    half = [D.sample_params(np.random.default_rng(s), jpeg_share=1.0, light_jpeg_share=0.5)
            for s in range(600)]
    below = np.mean([p.jpeg_quality < low for p in half])
    assert 0.5 * 35 / 46 - 0.08 < below < 0.5 * 35 / 46 + 0.08  # half draw 50–95
    assert [D.sample_params(np.random.default_rng(s), jpeg_share=1.0, light_jpeg_share=0.0)
            for s in range(50)] == [D.sample_params(np.random.default_rng(s), jpeg_share=1.0)
                                    for s in range(50)]


def test_blur_removes_high_frequencies() -> None:
    hr = _scene()
    sharp = D.apply(hr, D.DegradeParams()).lr.astype(np.float32)
    soft = D.apply(hr, D.DegradeParams(blur_sigma=(1.2, 1.2))).lr.astype(np.float32)
    aniso = D.apply(hr, D.DegradeParams(blur_sigma=(1.5, 0.2), blur_angle=0.0)).lr
    lap = lambda x: float(np.abs(cv2.Laplacian(np.asarray(x, np.float32), cv2.CV_32F)).mean())  # noqa: E731
    assert lap(soft) < 0.7 * lap(sharp)
    # blurred along x only: horizontal detail drops much more than vertical detail
    # (squared steps: a blurred edge keeps its total variation, not its energy)
    dx = (np.diff(aniso.astype(np.float32), axis=1) ** 2).mean()
    dy = (np.diff(aniso.astype(np.float32), axis=0) ** 2).mean()
    dx0 = (np.diff(sharp, axis=1) ** 2).mean()
    dy0 = (np.diff(sharp, axis=0) ** 2).mean()
    assert dx / dx0 < 0.85 * dy / dy0
    k = D.motion_kernel(3.0, 0.0)
    assert k.sum() == pytest.approx(1.0) and np.count_nonzero(k.sum(axis=1)) == 1


def test_noise_std_matches_sigma_and_is_mostly_luma() -> None:
    flat = _flat(128, 256, 256)
    for sigma in (2.0, 6.0):
        params = D.DegradeParams(noise_sigma=sigma, noise_read_share=0.5, noise_chroma=0.3,
                                 noise_seed=1)
        lr = D.apply(flat, params).lr
        y = _luma(lr)
        assert float(y.std()) == pytest.approx(sigma, rel=0.12)
        assert float(_chroma(lr).std()) < 0.5 * float(y.std())
    # Poisson part: darker signal, less noise
    params = D.DegradeParams(noise_sigma=6.0, noise_read_share=0.2, noise_seed=2)
    dark = _luma(D.apply(_flat(30, 256, 256), params).lr).std()
    bright = _luma(D.apply(_flat(200, 256, 256), params).lr).std()
    assert dark < 0.7 * bright


def test_correlated_noise_keeps_its_std_but_loses_pixel_independence() -> None:
    flat = _flat(128, 256, 256)
    white = _luma(D.apply(flat, D.DegradeParams(noise_sigma=6, noise_seed=3)).lr) - 128
    corr = _luma(D.apply(flat, D.DegradeParams(noise_sigma=6, noise_seed=3,
                                               noise_corr=0.8)).lr) - 128
    assert float(corr.std()) == pytest.approx(float(white.std()), rel=0.15)
    rho = lambda n: float(np.corrcoef(n[:, 1:].ravel(), n[:, :-1].ravel())[0, 1])  # noqa: E731
    assert abs(rho(white)) < 0.1 and rho(corr) > 0.4


def test_sharpen_raises_edge_contrast() -> None:
    hr = _scene()
    plain = D.apply(hr, D.DegradeParams()).lr.astype(np.float32)
    sharp = D.apply(hr, D.DegradeParams(sharpen_amount=0.8, sharpen_sigma=1.0)).lr
    assert np.abs(np.diff(sharp.astype(np.float32), axis=1)).mean() > \
        1.15 * np.abs(np.diff(plain, axis=1)).mean()


@pytest.mark.parametrize("mode", ["420", "422"])
def test_chroma_subsampling_removes_chroma_detail_but_keeps_luma(mode: str) -> None:
    rng = np.random.default_rng(0)
    # colours that vary only across columns / only across rows (no clipping in RGB)
    by_col = np.repeat((rng.random((1, 64, 3)) * 96 + 80).astype(np.uint8), 64, axis=0)
    by_row = np.ascontiguousarray(by_col.transpose(1, 0, 2))
    for img in (by_col, by_row):
        out = D.subsample_chroma(img, mode, bgr=False)
        assert np.abs(_luma(out) - _luma(img)).max() <= 1.5  # rounding of the conversions
    change = lambda img: float(np.abs(_chroma(D.subsample_chroma(img, mode, False))  # noqa: E731
                                      - _chroma(img)).mean())
    detail = float(np.abs(np.diff(_chroma(by_col), axis=1)).mean())
    assert change(by_col) > 0.25 * detail  # horizontal chroma detail is lost either way
    if mode == "422":
        assert change(by_row) < 1.0  # vertical chroma resolution is kept
    else:
        assert change(by_row) > 0.25 * detail


def _block_energy_ratio(img: np.ndarray) -> float:
    """Mean squared horizontal step across 8-px block borders over that inside blocks."""
    y = _luma(img)
    d = np.diff(y, axis=1) ** 2
    on = d[:, 7::8].mean()
    mask = np.ones(d.shape[1], bool)
    mask[7::8] = False
    return float(on / d[:, mask].mean())


def test_jpeg_leaves_8x8_block_energy() -> None:
    smooth = cv2.GaussianBlur(_scene(1, 256, 256), (0, 0), 3.0)
    before = _block_energy_ratio(smooth)
    after = _block_energy_ratio(D.jpeg(smooth, 30, "420", bgr=False))
    assert before < 1.3 and after > 1.5 * before
    # quality and order: q 95 is closer to the input than q 50
    err = lambda q: float(np.abs(D.jpeg(smooth, q, "444", False).astype(int) - smooth).mean())  # noqa: E731
    assert err(95) < err(50)
    # RGB and BGR give the same image, channels swapped
    rgb = D.jpeg(smooth, 70, "420", bgr=False)
    bgr = D.jpeg(np.ascontiguousarray(smooth[:, :, ::-1]), 70, "420", bgr=True)
    assert np.array_equal(rgb, bgr[:, :, ::-1])


def test_exposure_and_white_balance_change_the_target_too() -> None:
    hr = _flat(100, 64, 64)
    sample = D.apply(hr, D.DegradeParams(exposure=1.1, white_balance=(1.05, 1.0, 0.95),
                                         clean=True))
    assert tuple(sample.hr[0, 0]) == (116, 110, 104)
    assert tuple(sample.lr[0, 0]) == (116, 110, 104)
    bgr = D.apply(hr, D.DegradeParams(exposure=1.1, white_balance=(1.05, 1.0, 0.95),
                                      clean=True), bgr=True)
    assert tuple(bgr.hr[0, 0]) == (104, 110, 116)


def test_suites() -> None:
    assert D.suite_names("all") == ("area", "bicubic", "webcam", "lossy", "mjpeg", "lowlight",
                                    "soft", "noisy", "sharpened")
    with pytest.raises(ConfigError):
        D.suite_names("gaussian")
    hr = _scene()
    assert D.suite_params("lossy", 1).jpeg_quality == 75
    # a webcam's MJPEG in good light: lighter, chroma halved across only
    light = D.degrade_suite(hr, "mjpeg", 2)
    assert (light.params.jpeg_quality, light.params.chroma) == (90, "422")
    area = D.degrade_suite(hr, "area", 2).lr.astype(np.float32)
    heavy = D.degrade_suite(hr, "lossy", 2).lr.astype(np.float32)
    assert 0 < np.abs(light.lr - area).mean() < np.abs(heavy - area).mean()
    low = D.degrade_suite(hr, "lowlight", 3)
    assert low.params.noise_sigma == 10 and low.params.jpeg_quality == 80
    assert np.array_equal(D.degrade_suite(hr, "webcam", 4).lr, D.degrade_suite(hr, "webcam", 4).lr)
    assert D.suite_params("webcam", 4) != D.suite_params("webcam", 5)
    bic = D.degrade_suite(hr, "bicubic", 0).lr
    assert np.array_equal(bic, cv2.resize(hr, (160, 128), interpolation=cv2.INTER_CUBIC))


def _detail(rgb: np.ndarray) -> float:
    """Mean squared horizontal step of the luma: the image's finest detail."""
    luma = _luma(rgb)
    return float(np.mean(np.diff(luma, axis=1) ** 2))


def test_the_single_fault_suites_do_what_their_names_say() -> None:
    hr = _scene(2)
    area = D.degrade_suite(hr, "area", 1).lr
    # soft: a lens blur (σ 1 HR px) before the area downscale, nothing else
    soft = D.degrade_suite(hr, "soft", 1).lr
    blurred = cv2.GaussianBlur(hr.astype(np.float32), (0, 0), 1.0, borderType=cv2.BORDER_REFLECT)
    assert np.array_equal(soft, D.to_uint8(cv2.resize(blurred, (160, 128),
                                                      interpolation=cv2.INTER_AREA)))
    assert _detail(soft) < 0.8 * _detail(area)
    # sharpened: the ISP's unsharp mask adds detail and overshoots a bright edge
    sharp = D.degrade_suite(hr, "sharpened", 1).lr
    assert _detail(sharp) > 1.2 * _detail(area)
    step = np.full((64, 64, 3), 60, np.uint8)
    step[:, 32:] = 180
    lr_step = D.degrade_suite(step, "sharpened", 1).lr
    assert lr_step.max() > 185 and lr_step.min() < 55
    # noisy: sensor noise of σ 4 at mid-grey (luma), chroma halved horizontally, no JPEG
    params = D.suite_params("noisy", 7)
    assert (params.noise_sigma, params.jpeg_quality, params.chroma) == (4.0, 0, "422")
    noisy = D.degrade_suite(_flat(128, 256, 256), "noisy", 7).lr
    assert np.std(_luma(noisy)) == pytest.approx(4.0, rel=0.12)
    chroma = _chroma(noisy)
    assert np.abs(np.diff(chroma, axis=1)).mean() < 0.8 * np.abs(np.diff(chroma, axis=0)).mean()
    assert not np.array_equal(noisy, D.degrade_suite(_flat(128, 256, 256), "noisy", 8).lr)
