"""The per-frame degradation estimator ranks degraded above clean input, and is cheap."""

from __future__ import annotations

import logging
import time

import cv2
import numpy as np
import pytest

from localsr_cam.measure import degrade as D
from localsr_cam.process.estimate import NUM_LEVELS, LevelSmoother, estimate_levels, jpeg_scale

log = logging.getLogger(__name__)


def _frame(seed: int = 0, h: int = 360, w: int = 640) -> np.ndarray:
    """A photo-like LR frame: flat areas, edges and fine texture (uint8 RGB)."""
    rng = np.random.default_rng(seed)
    base = cv2.resize(rng.random((6, 10, 3)).astype(np.float32), (w, h),
                      interpolation=cv2.INTER_CUBIC) * 150 + 50
    yy, xx = np.mgrid[0:h, 0:w]
    base[(xx // 37 + yy // 37) % 3 == 0] += 30  # edges off the 8-px grid
    tex = cv2.GaussianBlur(rng.standard_normal((h, w)).astype(np.float32), (0, 0), 0.7)[..., None]
    base[: h // 2] += tex[: h // 2] * 10
    return D.to_uint8(base)


def test_noise_level_ranks_and_matches_sigma_on_flat_input() -> None:
    clean = _frame()
    rng = np.random.default_rng(1)
    levels = [estimate_levels(D.to_uint8(clean + rng.standard_normal(clean.shape) * s))[0]
              for s in (0, 2, 5, 10)]
    assert levels == sorted(levels) and levels[0] < levels[1] < levels[3]
    flat = np.full((360, 640, 3), 120, np.float32)
    for sigma in (3.0, 8.0):
        noisy = D.to_uint8(flat + rng.standard_normal(flat.shape) * sigma)
        assert estimate_levels(noisy)[0] * 10 == pytest.approx(sigma, rel=0.15)


def test_fine_texture_is_not_read_as_noise() -> None:
    """A clean photo textured all over (stained tissue: no flat area at all) reads as
    little noise, its noisy copy as much more; the estimate used to read its texture as
    σ 3.3 and the net smoothed it away."""
    from skimage import data

    hr = data.immunohistochemistry()
    clean = cv2.resize(hr, (hr.shape[1] // 2, hr.shape[0] // 2), interpolation=cv2.INTER_AREA)
    noisy = D.to_uint8(clean + np.random.default_rng(3).standard_normal(clean.shape) * 4.0)
    assert estimate_levels(clean)[0] < 0.25
    assert estimate_levels(noisy)[0] > estimate_levels(clean)[0] + 0.25


def test_clipped_areas_do_not_lower_the_noise_level() -> None:
    """Noise of σ 5 over a frame that is half black (the sensor clipped the noise there,
    so those blocks are flatter): still read as σ 5."""
    frame = np.full((360, 640, 3), 110.0, np.float32)
    frame[:, :320] = 0.0
    noisy = D.to_uint8(frame + np.random.default_rng(4).standard_normal(frame.shape) * 5.0)
    assert estimate_levels(noisy)[0] * 10 == pytest.approx(5.0, rel=0.15)


def test_noise_under_jpeg_is_read_on_blocks_the_quantizer_does_not_flatten():
    """Sensor noise of σ 10 under JPEG q 80 (a dim MJPEG webcam): the quantizer flattens
    whole 8×8 blocks, which 7×8 blocks took for a clean sensor (σ 0.8 here); read on
    14×16 blocks it stays well above the clean frame's JPEG."""
    from skimage import data

    hr = data.astronaut()
    lr = cv2.resize(hr, (hr.shape[1] // 2, hr.shape[0] // 2), interpolation=cv2.INTER_AREA)
    noisy = D.to_uint8(lr + np.random.default_rng(6).standard_normal(lr.shape) * 10.0)
    dim = estimate_levels(D.jpeg(noisy, 80, "420", bgr=False))
    clean = estimate_levels(D.jpeg(lr, 80, "420", bgr=False))
    assert dim[1] == clean[1] == pytest.approx(0.4, abs=0.1)  # the same quantizer
    assert dim[0] > 0.15 and dim[0] > clean[0] + 0.1


@pytest.mark.parametrize("quality, scale", [(50, 1.0), (75, 0.5), (80, 0.4), (90, 0.2)])
def test_jpeg_level_reads_the_quantizer_scale(quality: int, scale: float) -> None:
    """The JPEG level is the IJG scale factor / 100, read off the DCT lattice (to the
    rounding of the table's small steps), with or without sensor noise before it."""
    clean = _frame(2)
    assert estimate_levels(D.jpeg(clean, quality, "420", bgr=False))[1] == pytest.approx(
        scale, abs=0.05 + 0.1 * scale)
    noisy = D.sensor_noise(clean, D.DegradeParams(noise_sigma=6.0, noise_seed=1), bgr=False)
    assert estimate_levels(D.jpeg(D.to_uint8(noisy), quality, "420", bgr=False))[1] == \
        pytest.approx(scale, abs=0.05 + 0.1 * scale)


def test_jpeg_level_is_zero_without_a_lattice() -> None:
    clean = _frame(2)
    assert estimate_levels(clean)[1] == 0.0
    noisy = D.to_uint8(D.sensor_noise(clean, D.DegradeParams(noise_sigma=8.0, noise_seed=2),
                                      bgr=False))
    assert estimate_levels(noisy)[1] == 0.0
    # the grid must be the frame's: the same JPEG shifted by 3 px has no lattice
    shifted = np.ascontiguousarray(D.jpeg(clean, 50, "420", bgr=False)[3:, 3:])
    assert estimate_levels(shifted)[1] == 0.0


def test_blur_level_ranks_sharp_below_blurred() -> None:
    hr = cv2.resize(_frame(3), (1280, 720), interpolation=cv2.INTER_CUBIC)
    hr[::2] = np.clip(hr[::2].astype(int) + 25, 0, 255).astype(np.uint8)  # fine detail
    values = [estimate_levels(D.apply(hr, D.DegradeParams(blur_sigma=(s, s))).lr)[2]
              for s in (0.0, 0.8, 1.5)]
    assert values[0] < values[1] < values[2]


def test_rgb_and_bgr_and_small_frames() -> None:
    frame = _frame(4)
    assert np.array_equal(estimate_levels(frame),
                          estimate_levels(np.ascontiguousarray(frame[:, :, ::-1]), bgr=True))
    jpeg = D.jpeg(frame, 60, "420", bgr=False)
    assert estimate_levels(jpeg)[1] == estimate_levels(jpeg[:, :, ::-1], bgr=True)[1] > 0.5
    assert estimate_levels(frame[:10, :10]).tolist() == [0.0] * NUM_LEVELS
    small = estimate_levels(frame[:48, :48])
    assert small.shape == (NUM_LEVELS,) and np.isfinite(small).all()


def _smooth_frame(seed: int, texture: float, h: int = 360, w: int = 640) -> np.ndarray:
    """A frame with little detail (uint8 RGB): soft colour gradients and faint blurred
    texture of std ``texture`` — a plain wall, a sky."""
    rng = np.random.default_rng(seed)
    base = cv2.resize(rng.random((4, 6, 3)).astype(np.float32), (w, h),
                      interpolation=cv2.INTER_CUBIC) * 150 + 50
    tex = cv2.GaussianBlur(rng.standard_normal((h, w)).astype(np.float32), (0, 0), 1.5)
    return D.to_uint8(base + tex[..., None] * texture)


@pytest.mark.parametrize("seed", range(3))
def test_no_lattice_read_on_smooth_clean_frames(seed: int) -> None:
    """Few coefficients past ±1.5, falling fast, put more of them near 2 than near 3 —
    the shape of a step-2 lattice. A smooth frame, or a flat one with faint sensor
    noise (σ 1/255, a good webcam in daylight before a plain wall), read that way as q 90
    in a third of the live reads; only what repeats with the step counts now."""
    rng = np.random.default_rng(seed)
    flat = cv2.resize(rng.random((3, 4, 3)).astype(np.float32), (640, 360),
                      interpolation=cv2.INTER_CUBIC) * 150 + 50
    noisy_wall = D.to_uint8(flat + rng.standard_normal((360, 640, 1)).astype(np.float32))
    for frame in (_smooth_frame(seed, 4.0), noisy_wall):
        assert [jpeg_scale(frame, max_blocks=300, phase=p) for p in range(12)] == [0.0] * 12


def test_heavy_jpeg_of_a_smooth_frame_is_read() -> None:
    """Under q 60 a smooth frame keeps few coefficients past ±1.5 beyond the first two:
    those two are read alone (they were taken as "no lattice", so the level was 0)."""
    jpeg = D.jpeg(_smooth_frame(1, 4.0), 60, "420", bgr=False)
    levels = [jpeg_scale(jpeg, max_blocks=300, phase=p) for p in range(12)]
    assert min(levels) > 0.7 and max(levels) < 1.0


def test_light_jpeg_is_read_past_clipped_colours() -> None:
    """Saturated colours (the left 70 % of the frame) that the decoder clips to 0 or 255
    move those blocks' luma off q 90's fine lattice; the other blocks still show it."""
    frame = _frame(2).astype(np.float32)
    grey = frame.mean(axis=2, keepdims=True)
    frame[:, :448] = grey[:, :448] + (frame[:, :448] - grey[:, :448]) * 6.0
    jpeg = D.jpeg(D.to_uint8(frame), 90, "420", bgr=False)
    assert jpeg_scale(jpeg) == pytest.approx(0.2, abs=0.05)
    assert jpeg_scale(D.to_uint8(frame)) == 0.0


def test_smoother_is_an_ema_that_resets() -> None:
    smoother = LevelSmoother(alpha=0.5)
    assert smoother.update(np.array([1.0, 0, 0])).tolist() == [[1.0, 0, 0]]
    out = smoother.update(np.array([0.0, 1.0, 0]))
    assert out.shape == (1, 3) and out.tolist() == [[0.5, 0.5, 0]]
    out[0, 0] = 9  # the caller owns the returned array
    assert smoother.update(np.array([0.0, 1.0, 0])).tolist() == [[0.25, 0.75, 0]]
    smoother.reset()
    assert smoother.update(np.array([2.0, 2, 2])).tolist() == [[2.0, 2, 2]]
    with pytest.raises(ValueError):
        LevelSmoother(alpha=0.0)
    # a reading that stands for two frames weighs as two readings of it would
    twice, once = LevelSmoother(alpha=0.1), LevelSmoother(alpha=0.1)
    for smoother in (twice, once):
        smoother.update(np.array([0.0, 0, 0]))
    twice.update(np.array([1.0, 2, 3]))
    expected = twice.update(np.array([1.0, 2, 3]))
    assert once.update(np.array([1.0, 2, 3]), frames=2) == pytest.approx(expected)


def test_cost_at_640x360_is_logged() -> None:
    """Not a speed goal (that is in `bench`); it logs the cost and checks the frame
    is only read."""
    frame = _frame(5)
    copy = frame.copy()
    start = time.perf_counter()
    for _ in range(20):
        estimate_levels(frame)
    log.info("estimate_levels at 640x360: %.3f ms", (time.perf_counter() - start) / 20 * 1e3)
    assert np.array_equal(frame, copy)


def test_a_live_frame_read_in_part_another_part_each_frame() -> None:
    """Live video reads a part of the bands, the next part on the next frame (``phase``):
    successive phases cover every band once, each part's levels are close to the whole
    frame's, and the JPEG quantizer is read the same from any part."""
    from localsr_cam.process.estimate import _bands

    frame = D.to_uint8(D.sensor_noise(_frame(3), D.DegradeParams(noise_sigma=4.0,
                                                                 noise_seed=3), bgr=False))
    green = frame[:, :, 1]
    whole = _bands(green, 10**9)  # every band of 16 rows: 22 of 640 px
    parts = [_bands(green, 60_000, phase) for phase in range(8)]  # every 4th band
    for phase in range(4):
        assert np.array_equal(parts[phase], whole[phase::4])
        assert np.array_equal(parts[phase + 4], parts[phase])
    full = estimate_levels(frame, max_pixels=10**9)
    for phase in range(4):
        part = estimate_levels(frame, max_pixels=30_000, phase=phase)
        assert np.abs(part - full).max() < 0.1
    lossy = D.jpeg(_frame(2), 75, "420", bgr=False)
    assert {float(estimate_levels(lossy, max_pixels=30_000, phase=p)[1]) for p in range(4)} \
        == {float(estimate_levels(lossy)[1])}


def _correlated_noise(shape: tuple[int, ...], sigma: float, seed: int) -> np.ndarray:
    """Gaussian noise blurred by 0.85 px and rescaled to std ``sigma`` (float32): a
    camera's demosaiced, denoised sensor noise."""
    field = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    field = cv2.GaussianBlur(field, (0, 0), 0.85)
    return field * (sigma / float(field.std()))


def test_correlated_noise_is_read_off_two_frames_of_a_still_scene() -> None:
    """Blurred noise of σ 4 reads as about 1 in one frame (the Laplacian sees little of
    it) and as σ 4 off its difference to the previous frame."""
    clean = _frame(5).astype(np.float32)
    before, now = (D.to_uint8(clean + _correlated_noise(clean.shape, 4.0, seed))
                   for seed in (1, 2))
    alone = estimate_levels(now)[0] * 10
    paired = estimate_levels(now, previous=before[:, :, 1])[0] * 10
    assert alone < 2.0
    assert paired == pytest.approx(4.0, rel=0.2)


def test_texture_is_not_noise_off_two_frames_either() -> None:
    """Stained tissue with σ 1 of noise: one frame reads its texture as more noise, the
    pair reads the σ 1 it has."""
    from skimage import data

    hr = data.immunohistochemistry()
    clean = cv2.resize(hr, (hr.shape[1] // 2, hr.shape[0] // 2),
                       interpolation=cv2.INTER_AREA).astype(np.float32)
    rng = np.random.default_rng(6)
    before, now = (D.to_uint8(clean + rng.standard_normal(clean.shape) * 1.0)
                   for _ in range(2))
    paired = estimate_levels(now, previous=before[:, :, 1])[0] * 10
    assert paired == pytest.approx(1.0, abs=0.4)
    assert estimate_levels(now)[0] * 10 > paired + 0.5


def test_a_moving_or_unrelated_previous_frame_is_not_taken_for_noise() -> None:
    """A cut to a picture textured all over: the difference is far too large for noise
    and the one-frame reading stands. A pan of 12 px over a clean photo with flat areas
    (those blocks still show only noise) reads as little noise, not much."""
    from skimage import data

    photo = cv2.resize(data.astronaut(), (640, 360), interpolation=cv2.INTER_AREA)
    alone = estimate_levels(photo)[0]
    cut = cv2.resize(data.immunohistochemistry(), (640, 360), interpolation=cv2.INTER_AREA)
    assert estimate_levels(photo, previous=cut[:, :, 1])[0] == alone
    assert estimate_levels(photo, previous=np.roll(photo, 12, axis=1)[:, :, 1])[0] < 0.25
    small = photo[:100, :100, 1]  # another size: ignored
    assert estimate_levels(photo, previous=small)[0] == alone


def test_on_a_jpeg_frame_the_pair_only_lowers_the_noise_level() -> None:
    """A still, clean scene under JPEG q 80: its quantization error reads as some noise
    in one frame and as none off two identical frames; with noise under the JPEG the
    one-frame reading (the one the net was trained on) stays when it is the lower."""
    clean = _frame(9)
    jpeg = D.jpeg(clean, 80, "420", bgr=False)
    assert estimate_levels(jpeg)[1] > 0
    assert estimate_levels(jpeg, previous=jpeg[:, :, 1])[0] < estimate_levels(jpeg)[0]
    rng = np.random.default_rng(10)
    before, now = (D.jpeg(D.to_uint8(clean + rng.standard_normal(clean.shape) * 6.0), 80,
                          "420", bgr=False) for _ in range(2))
    assert estimate_levels(now, previous=before[:, :, 1])[0] <= estimate_levels(now)[0]


def test_a_dim_mjpeg_webcam_keeps_its_jpeg_level_through_the_denoiser() -> None:
    """A still scene, sensor noise σ 10 then MJPEG q 80, frame after frame: the temporal
    denoiser averages the frames, which moves them off the quantizer's lattice; the
    JPEG level the SR is told is read off the frames as they came and stays at q 80's
    0.4 (read off the denoised frames it fell to 0.00 after four frames, and the MJPEG
    variant handed the stream back to the plain net)."""
    from localsr_cam.config import BlendConfig, ModelConfig, PipelineConfig
    from localsr_cam.frames import CapturedFrame
    from localsr_cam.process.processor import FrameProcessor
    from tests.fakes import EngineBox

    clean = _frame(12).astype(np.float32)
    config = PipelineConfig(model=ModelConfig(model="fast", backend="cpu"),
                            blend=BlendConfig(full_frame=True))
    rng = np.random.default_rng(12)
    with FrameProcessor(config, engine_factory=EngineBox()) as processor:
        processor.prepare((640, 360))
        for index in range(30):
            noisy = D.to_uint8(clean + rng.standard_normal(clean.shape) * 10.0)
            frame = D.jpeg(noisy, 80, "420", bgr=True)
            out = processor.process(CapturedFrame(frame, index, float(index)))
        levels = processor._degradation.current()
    assert levels is not None and float(levels[0, 1]) == pytest.approx(0.4, abs=0.1)
    assert not np.array_equal(processor.denoised(CapturedFrame(frame, 30, 30.0)).image, frame)
    assert out.image.shape == (720, 1280, 3)


def test_the_processor_reads_live_noise_off_the_previous_frame() -> None:
    """Live frames of a still scene with correlated noise: the smoothed noise level the
    SR is given climbs to the noise's σ (it stayed near 1 from single frames)."""
    from localsr_cam.config import ModelConfig, PipelineConfig
    from localsr_cam.process.processor import FrameProcessor
    from tests.fakes import EngineBox

    clean = _frame(11).astype(np.float32)
    processor = FrameProcessor(PipelineConfig(model=ModelConfig(model="fast", backend="cpu")),
                               engine_factory=EngineBox())
    processor.prepare((640, 360))
    for seed in range(60):
        frame = D.to_uint8(clean + _correlated_noise(clean.shape, 4.0, seed))
        live = processor.levels_of(frame[:, :, ::-1].copy(), live=True)
    assert float(live[0, 0]) * 10 > 3.0
    processor.reset()
    once = processor.levels_of(frame[:, :, ::-1].copy(), live=True)
    assert float(once[0, 0]) * 10 < 2.0  # forgotten: one frame alone again


@pytest.mark.parametrize("step", [0.6, 1.25, 3.0])
def test_a_panning_camera_is_not_read_as_more_noise(step: float) -> None:
    """Video frames of a finely textured photo with noise of σ 4 while the camera pans
    ``step`` px a frame from the start: no frame pair is still, so no frame difference
    is read as it came, and the smoothed noise level the SR is told is at most what the
    frames read one by one — less where the denoiser engages (at 3 px a frame, and half
    that down, every 2nd frame lies a whole-pixel move from a past one and is read
    against it) and averages the frames. (Read off the pan's frame differences, the
    noise read too high: the denoiser engaged on that, smeared the moving texture, and
    the level went to 0.76–1.14 times the frames' own.)"""
    from localsr_cam.config import BlendConfig, ModelConfig, PipelineConfig
    from localsr_cam.frames import CapturedFrame
    from localsr_cam.process.processor import FrameProcessor
    from tests.fakes import EngineBox
    from tests.scenes import panned, stained_tissue

    picture = stained_tissue()
    config = PipelineConfig(model=ModelConfig(model="fast", backend="cpu"),
                            blend=BlendConfig(full_frame=True))
    alone = []
    with FrameProcessor(config, engine_factory=EngineBox()) as processor:
        processor.prepare((640, 360))
        for t in range(20):
            frame = panned(picture, -step * t, -0.5 * step * t, sigma=4.0, seed=t)
            processor.process(CapturedFrame(frame, t, float(t)))
            alone.append(float(estimate_levels(frame, bgr=True)[0]) * 10)
        levels = processor._degradation.current()
        assert processor._denoiser is not None
        engaged = processor._denoiser.active
    assert levels is not None
    told, own = float(levels[0, 0]) * 10, float(np.mean(alone))
    if engaged:
        assert told < 0.8 * own
    else:
        assert told == pytest.approx(own, rel=0.05)
    assert engaged == (step == 3.0)


@pytest.mark.parametrize("first_once", [False, True])
def test_a_picture_sent_twice_is_read_as_once(first_once: bool) -> None:
    """A still scene with noise of σ 5 from a camera that sends each picture twice, bit
    for bit (15 fps in a 30 fps stream), the pairs starting on the first frame or the
    second: the denoiser engages and reads the noise, and the level the SR is told is
    the one of each picture sent once. (Read against the picture it repeats, a repeat's
    difference is zero: the denoiser read σ 0 and never started when the pairs fell on
    its reading frames, and the level fell to 0.5–0.7 of the true one.)"""
    from localsr_cam.config import BlendConfig, ModelConfig, PipelineConfig
    from localsr_cam.frames import CapturedFrame
    from localsr_cam.process.processor import FrameProcessor
    from tests.fakes import EngineBox

    clean = _frame(13).astype(np.float32)
    rng = np.random.default_rng(13)
    pictures = [D.to_uint8(clean + rng.standard_normal(clean.shape) * 5.0)[:, :, ::-1].copy()
                for _ in range(24)]
    sent = pictures[:1] + [p for p in pictures[1:] for _ in range(2)] if first_once \
        else [p for p in pictures for _ in range(2)]
    config = PipelineConfig(model=ModelConfig(model="fast", backend="cpu"),
                            blend=BlendConfig(full_frame=True))
    readings = {}
    with FrameProcessor(config, engine_factory=EngineBox()) as processor:
        for name, frames in (("once", pictures), ("twice", sent)):
            processor.prepare((640, 360))
            for index, picture in enumerate(frames):
                out = processor.process(CapturedFrame(picture.copy(), index, float(index)))
            assert processor._denoiser is not None
            readings[name] = (processor._denoiser.sigma, processor._degradation.current(),
                              out.image)
    (sigma_once, levels_once, image_once), (sigma_twice, levels_twice, image_twice) = \
        readings["once"], readings["twice"]
    assert sigma_once == pytest.approx(5.0, rel=0.25)
    assert sigma_twice == pytest.approx(sigma_once, rel=0.05)
    assert levels_once is not None and levels_twice is not None
    assert float(levels_twice[0, 0]) == pytest.approx(float(levels_once[0, 0]), rel=0.05)
    assert np.abs(image_twice.astype(int) - image_once).mean() < 0.5
