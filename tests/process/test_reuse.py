"""The change test and the per-box SR results it guards."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from localsr_cam.process.reuse import (
    SRReuse,
    changed_cells,
    changed_detail,
    signature,
    stale_tile,
    thumbnail,
)


def _crop(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (64, 48, 3), dtype=np.uint8)


def test_each_person_s_box_keeps_its_own_sr_result() -> None:
    """Two people: storing the second's result must not lose the first's (a single slot
    made every frame with two people recompute both)."""
    store = SRReuse()
    a, b = (0, 0, 48, 64), (100, 0, 148, 64)
    result_a, result_b = torch.zeros(128, 96, 3, dtype=torch.uint8), torch.ones(
        128, 96, 3, dtype=torch.uint8)
    store.store(a, result_a, signature(_crop(1), 0.0))
    store.store(b, result_b, signature(_crop(2), 0.0))
    assert store.reusable(a, signature(_crop(1), 0.0)) is result_a
    assert store.reusable(b, signature(_crop(2), 0.0)) is result_b
    # a changed crop, or another box, is not reused
    assert store.reusable(a, signature(_crop(3), 0.0)) is None
    assert store.reusable((1, 0, 49, 64), signature(_crop(1), 0.0)) is None


def test_results_told_other_levels_are_not_reused_but_may_stand_in() -> None:
    """An SR result is of its crop and of the levels the net was told: a drift within
    the tolerance keeps it reusable; a larger move means the SR runs again (no reuse,
    no patching), while the old result may still stand in for a late SR."""
    store = SRReuse()
    box, thumb = (0, 0, 48, 64), signature(_crop(1), 0.0)
    result = torch.zeros(128, 96, 3, dtype=torch.uint8)
    store.follow_levels(np.array([[0.30, 0.0, 0.4]], np.float32))
    store.store(box, result, thumb)
    store.follow_levels(np.array([[0.27, 0.0, 0.42]], np.float32))  # within 0.05
    assert store.reusable(box, thumb) is result
    store.follow_levels(np.array([[0.24, 0.0, 0.42]], np.float32))  # 0.06 from the results'
    assert store.reusable(box, thumb) is None and store.stale_part(box, thumb) is None
    stand_in = store.stand_in(box, thumb)
    assert stand_in is not None and stand_in.share == 1.0
    store.store(box, result, thumb)  # computed again, told the new levels
    store.follow_levels(np.array([[0.24, 0.0, 0.42]], np.float32))
    assert store.reusable(box, thumb) is result


def test_a_still_noisy_scene_gets_the_sr_of_its_denoised_frames() -> None:
    """Sensor noise of σ 6 on a still scene: the temporal denoiser lowers it frame after
    frame, no cell's mean moves by the change threshold, and the noise level the SR is
    told falls; the SR is computed again as it falls (it ran once, on the first noisy
    frame, and that result stood for all 40)."""
    from localsr_cam.config import BlendConfig, ModelConfig, PipelineConfig
    from localsr_cam.frames import CapturedFrame
    from localsr_cam.process.processor import FrameProcessor
    from tests.fakes import BicubicSR, EngineBox

    rng = np.random.default_rng(5)
    scene = np.repeat(np.repeat(rng.integers(40, 216, (18, 32, 3)), 8, 0), 8, 1)
    sr = BicubicSR()
    config = PipelineConfig(model=ModelConfig(model="fast", backend="cpu"),
                            blend=BlendConfig(full_frame=True))
    with FrameProcessor(config, engine_factory=EngineBox(sr=sr)) as processor:
        processor.prepare((256, 144))
        for index in range(40):
            noisy = np.clip(scene + rng.normal(0, 6, scene.shape), 0, 255).astype(np.uint8)
            processor.process(CapturedFrame(noisy, index, float(index)))
    told = [float(levels[0, 0]) for levels in sr.levels]
    assert len(told) >= 2 and told[-1] < told[0] - 0.05


def test_at_most_capacity_boxes_the_oldest_dropped_first() -> None:
    store = SRReuse(capacity=2)
    results = [torch.full((2, 2, 3), i, dtype=torch.uint8) for i in range(3)]
    boxes = [(i, 0, i + 2, 2) for i in range(3)]
    thumb = signature(np.zeros((2, 2, 3), np.uint8), 0.0)
    for box, result in zip(boxes, results, strict=True):
        store.store(box, result, thumb)
    assert store.reusable(boxes[0], thumb) is None
    assert store.reusable(boxes[1], thumb) is results[1]
    assert store.reusable(boxes[2], thumb) is results[2]
    store.reset()
    assert store.reusable(boxes[2], thumb) is None


def test_a_stand_in_keeps_the_stored_sr_only_where_the_crop_did_not_change() -> None:
    """The last SR standing in for a crop it was not computed on (a skipped or late
    frame): where cells changed — and within the nets' reach of them — the crop's plain
    upscale shows instead; a crop changed everywhere gets no stand-in at all."""
    import cv2

    crop = _still_frame()  # 96×128
    stored = torch.full((192, 256, 3), 200, dtype=torch.uint8)  # "the SR", recognisable
    store = SRReuse()
    store.store((0, 0, 128, 96), stored, signature(crop, 0.0))
    moved = crop.copy()
    moved[0:16, 0:16] = 0  # the top-left 2×2 cells change
    stand_in = store.stand_in((0, 0, 128, 96), signature(moved, 0.0))
    assert stand_in is not None and 0.5 < stand_in.share < 1.0
    out = stand_in.compose(torch.from_numpy(moved), "bicubic").numpy()
    plain = cv2.resize(moved, (256, 192), interpolation=cv2.INTER_CUBIC)
    assert np.array_equal(out[:32, :32], plain[:32, :32])  # the changed cells: plain
    # within the reach of a changed pixel's effect on the SR (16 input px): plain too
    assert np.array_equal(out[:64, 32:64], plain[:64, 32:64])
    assert (out[120:, 150:] == 200).all()  # far from the change: the stored SR
    # nothing changed: the stored result as it is (then plain reuse serves it anyway)
    unchanged = store.stand_in((0, 0, 128, 96), signature(crop, 0.0))
    assert unchanged is not None and unchanged.share == 1.0
    assert unchanged.compose(torch.from_numpy(crop), "bicubic") is stored
    # most of it changed (SR would stay on a quarter of the cells), everything
    # changed, or another box: nothing stands in
    half = crop.copy()
    half[:56] = 0
    assert store.stand_in((0, 0, 128, 96), signature(half, 0.0)) is None
    assert store.stand_in((0, 0, 128, 96), signature(crop // 2, 0.0)) is None
    assert store.stand_in((1, 0, 129, 96), signature(crop, 0.0)) is None


def test_a_person_who_moved_a_fraction_of_a_pixel_gets_their_sr_moved_along() -> None:
    """A crop whose person moved 0.4 px right and 0.2 down since its SR (a perfect one
    here: the HR picture): every cell changed, so the stored SR held nowhere as it was
    and the plain upscale showed. Moved along, half of it over the plain upscale, it is
    much nearer the new frame's true HR picture than the plain upscale is."""
    import cv2

    hr, moved_hr = _swaying_pair(11, blur=1.5)
    lr = _downscaled
    box = (0, 0, 128, 96)
    store = SRReuse()
    store.store(box, torch.from_numpy(hr), signature(lr(hr), 0.0))
    stand_in = store.stand_in(box, signature(lr(moved_hr), 0.0))
    assert stand_in is not None and stand_in.moved is not None
    assert stand_in.valid.mean() < 0.2 and stand_in.share > 0.8
    assert abs(stand_in.shift[0] - 0.4) < 0.05 and abs(stand_in.shift[1] - 0.2) < 0.05
    # told not to follow the person (a late SR's frame, already at its deadline): none
    assert store.stand_in(box, signature(lr(moved_hr), 0.0), follow=False) is None
    out = stand_in.compose(torch.from_numpy(lr(moved_hr)), "bicubic").numpy()
    plain = cv2.resize(lr(moved_hr), (256, 192), interpolation=cv2.INTER_CUBIC)
    inner = (slice(8, -8), slice(8, -8))
    assert cv2.PSNR(out[inner], moved_hr[inner]) > cv2.PSNR(plain[inner], moved_hr[inner]) + 1.5


def test_a_moved_sr_does_not_stand_where_something_new_appeared() -> None:
    """The person moved, and a hand came into the crop's lower right: the moved SR
    stands over the person, the plain upscale over the hand."""
    import cv2

    hr, moved_hr = _swaying_pair(12, blur=2.0)
    moved_hr[96:, 128:] = _smooth_noise(13, (96, 128), 2.0)  # the hand
    box = (0, 0, 128, 96)
    store = SRReuse()
    store.store(box, torch.from_numpy(hr), signature(_downscaled(hr), 0.0))
    new = _downscaled(moved_hr)
    stand_in = store.stand_in(box, signature(new, 0.0))
    assert stand_in is not None and stand_in.moved is not None
    assert stand_in.moved[7:, 9:].max() == 0  # the hand's cells (and a cell's margin)
    assert stand_in.moved[:5, :7].min() == 1  # the person's
    out = stand_in.compose(torch.from_numpy(new), "bicubic").numpy()
    plain = cv2.resize(new, (256, 192), interpolation=cv2.INTER_CUBIC)
    assert np.array_equal(out[120:, 160:], plain[120:, 160:])
    assert not np.array_equal(out[:64, :96], plain[:64, :96])


def _smooth_noise(seed: int, size: tuple[int, int], blur: float) -> np.ndarray:
    """uint8 h×w×3 random texture blurred by ``blur`` px."""
    import cv2

    rng = np.random.default_rng(seed)
    return cv2.GaussianBlur(rng.integers(0, 256, (*size, 3), dtype=np.uint8), (0, 0), blur)


def _swaying_pair(seed: int, blur: float) -> tuple[np.ndarray, np.ndarray]:
    """A 192×256 HR texture (a perfect SR of its downscale) and it moved 0.8 px right
    and 0.4 down (0.4 and 0.2 input px)."""
    hr = _smooth_noise(seed, (192, 256), blur)
    return hr, _shifted(hr, 0.8, 0.4)


def _downscaled(image: np.ndarray) -> np.ndarray:
    """A 192×256 HR picture → its 96×128 input (area)."""
    import cv2

    return cv2.resize(image, (128, 96), interpolation=cv2.INTER_AREA)


def _still_frame() -> np.ndarray:
    """A smooth 96×128 'portrait' (changes of a few pixels matter on it)."""
    import cv2

    rng = np.random.default_rng(5)
    return cv2.GaussianBlur(rng.integers(0, 256, (96, 128, 3), dtype=np.uint8), (0, 0), 3)


def _noisy(image: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(image + rng.normal(0, sigma, image.shape), 0, 255).astype(np.uint8)


def test_an_opening_mouth_changes_the_crop_but_sensor_noise_does_not() -> None:
    """A 12×6-pixel dark patch (a mouth opening) in a still crop: the average over the
    whole crop moves by about 0.1 grey level, the earlier test's 'unchanged', which
    kept the SR of the closed mouth on screen."""
    image = _still_frame()
    mouth = image.copy()
    mouth[40:46, 60:72] = 20
    before = thumbnail(_noisy(image, 3.0, 0))
    assert not _any(changed_cells(before, thumbnail(_noisy(image, 3.0, 1))))
    assert _any(changed_cells(before, thumbnail(_noisy(mouth, 3.0, 1))))
    assert float(np.abs(thumbnail(mouth) - thumbnail(image)).mean()) < 1.0
    cells = changed_cells(before, thumbnail(_noisy(mouth, 3.0, 1)))
    assert cells is not None and set(zip(*np.nonzero(cells), strict=True)) <= {
        (5, 7), (5, 8), (4, 7), (4, 8)}
    assert changed_cells(None, before) is None
    assert changed_cells(before[1:], before) is None


def test_the_stale_tile_is_the_changed_cells_grown_by_the_context_twice() -> None:
    cells = np.zeros((12, 16), dtype=bool)
    cells[5, 7] = cells[6, 9] = True
    tile = stale_tile(cells, (128, 96), context=16)
    assert tile.region == (56 - 16, 40 - 16, 80 + 16, 56 + 16)
    assert tile.padded == (56 - 32, 40 - 32, 80 + 32, 56 + 32)
    cells[:] = False
    cells[0, 15] = True  # a corner cell: clipped to the crop, which may end mid-cell
    tile = stale_tile(cells, (125, 96), context=16)
    assert tile.region == (120 - 16, 0, 125, 8 + 16)
    assert tile.padded == (120 - 32, 0, 125, 8 + 32)


def test_a_stale_part_is_patched_into_the_stored_result_and_its_cells_thumbnail() -> None:
    image = _still_frame()
    box = (0, 0, 128, 96)
    old = signature(image, 0.0)
    base = torch.zeros(192, 256, 3, dtype=torch.uint8)
    store = SRReuse()
    assert store.stale_part(box, old) is None  # nothing stored for the box
    store.store(box, base, old)
    assert store.stale_part(box, old) is None  # nothing changed
    mouth = image.copy()
    mouth[40:46, 60:72] = 20
    new = signature(mouth, 0.0)
    part = store.stale_part(box, new)
    assert part is not None and part.base is base
    x0, y0, x1, y1 = part.tile.region
    assert (x0, y0) == (56 - 16, 40 - 16) and x1 >= 72 + 16 and y1 >= 46 + 16
    inside = (slice(y0, y1), slice(x0, x1))
    assert np.array_equal(part.signature.grey[inside], new.grey[inside])
    outside = np.ones(old.grey.shape, dtype=bool)
    outside[inside] = False
    assert np.array_equal(part.signature.grey[outside], old.grey[outside])
    px0, py0, px1, py1 = part.tile.padded
    sr = torch.full((2 * (py1 - py0), 2 * (px1 - px0), 3), 200, dtype=torch.uint8)
    patched = part.patch(sr)
    assert base.max() == 0  # not written into
    assert (patched[2 * y0:2 * y1, 2 * x0:2 * x1] == 200).all()
    assert int(patched.sum()) == 200 * 3 * 4 * (x1 - x0) * (y1 - y0)
    # most of the crop changed: recomputed whole
    assert store.stale_part(box, signature(_noisy(image, 40.0, 2), 0.0)) is None


@pytest.mark.parametrize("net", ["fast", "fast-backproject", "paper"])
def test_the_context_lets_a_part_be_recomputed_exactly(net: str) -> None:
    """SR of the stale part's padded input, patched in, equals the SR of the whole new
    crop (both U-Nets with their JPEG chroma step, FastUNet also with its back-projection
    step, random weights): the context covers their receptive fields and keeps the
    stride-2 layers in phase."""
    from localsr_cam.models.unet import FastUNet, PaperUNet

    torch.manual_seed(0)
    model = (FastUNet(width=8, depth=2, levels=3, chroma=True,
                      backproject=net == "fast-backproject") if net.startswith("fast")
             else PaperUNet(width=8, dropout=0.0, levels=3, chroma=True)).eval()
    with torch.no_grad():
        for parameter in model.parameters():  # the tail starts at zero: wake it up
            parameter.add_(0.05 * torch.randn_like(parameter))
    levels = torch.tensor([[0.2, 0.9, 0.3]])

    def sr(crop: np.ndarray) -> torch.Tensor:
        rgb = torch.from_numpy(crop[..., ::-1].copy()).permute(2, 0, 1)[None].float() / 255
        with torch.no_grad():
            return model(rgb, levels)[0].permute(1, 2, 0)

    image = _still_frame()
    mouth = image.copy()
    mouth[40:46, 60:72] = 20
    store = SRReuse()
    box = (0, 0, 128, 96)
    store.store(box, torch.zeros(192, 256, 3, dtype=torch.uint8),
                signature(image, 0.0))
    part = store.stale_part(box, signature(mouth, 0.0))
    assert part is not None
    px0, py0, px1, py1 = part.tile.padded
    x0, y0, x1, y1 = part.tile.region
    whole = sr(mouth)[2 * y0:2 * y1, 2 * x0:2 * x1]
    piece = sr(mouth[py0:py1, px0:px1])[part.tile.inner()]
    assert float((whole - piece).abs().max()) < 1e-5
    assert float((whole - sr(image)[2 * y0:2 * y1, 2 * x0:2 * x1]).abs().max()) > 0.01


def _any(cells: np.ndarray | None) -> bool:
    """Whether a change test's cell map says anything changed (``None``: everything)."""
    return cells is None or bool(cells.any())


def _textured_frame(seed: int = 7, size: tuple[int, int] = (96, 128)) -> np.ndarray:
    """Fine texture (hair, fabric): a detail a fraction of a pixel's move shifts."""
    import cv2

    rng = np.random.default_rng(seed)
    noise = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
    return cv2.GaussianBlur(noise, (0, 0), 1.0)


def _shifted(image: np.ndarray, dx: float, dy: float = 0.0) -> np.ndarray:
    import cv2

    matrix = np.array([[1.0, 0.0, dx], [0.0, 1.0, dy]], np.float32)
    return cv2.warpAffine(image, matrix, (image.shape[1], image.shape[0]),
                          flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)


def test_a_sway_of_a_fraction_of_a_pixel_changes_the_crop_for_the_sr() -> None:
    """A person swaying by 0.3 px between frames moves the detail the SR draws while no
    cell's mean moves by the mask's threshold: the SR's test sees it (the SR of the last
    frame, reused, stood misplaced over the person, up to 8 dB under the plain upscale)."""
    image = _textured_frame()
    swayed = _shifted(image, 0.3, 0.15)
    assert not _any(changed_cells(thumbnail(image), thumbnail(swayed)))
    cells = changed_detail(signature(image, 0.0), signature(swayed, 0.0))
    assert cells is not None and cells.mean() > 0.9


def test_sensor_noise_does_not_change_the_crop_for_the_sr_at_its_told_level() -> None:
    """Two frames of a still crop with fresh noise of σ 3 (and of σ 8, a dim room): no
    cell changed, told the noise σ; told no noise, most cells did (the noise level is
    what keeps a still noisy scene's SR reused)."""
    image = _textured_frame()
    for sigma in (3.0, 8.0):
        first, second = _noisy(image, sigma, 0), _noisy(image, sigma, 1)
        assert not _any(changed_detail(signature(first, sigma), signature(second, sigma)))
        told_clean = changed_detail(signature(first, 0.0), signature(second, 0.0))
        assert told_clean is not None and told_clean.mean() > 0.5
    # the same noise, a sway of a pixel: changed (the noise does not hide a move)
    moved = changed_detail(signature(_noisy(image, 3.0, 0), 3.0),
                           signature(_noisy(_shifted(image, 1.0), 3.0, 1), 3.0))
    assert moved is not None and moved.mean() > 0.5
    assert changed_detail(None, signature(image, 0.0)) is None
    assert changed_detail(signature(image[1:], 0.0), signature(image, 0.0)) is None


def test_a_steady_brightening_changes_the_crop_for_the_sr_through_the_noise() -> None:
    """A camera's auto exposure brightening a still crop 4 % between two frames, noise of
    σ 4 (told): bright cells move by 7–9 levels, under what the mean squared difference
    allows for that noise (the SR of the darker frame stood in); their means show it.
    Fresh noise alone still changes nothing."""
    base = np.full((96, 128, 3), 200.0) + _textured_frame().astype(np.float64) * 0.1 - 12.8
    first, brighter = _noisy(base, 4.0, 0), _noisy(base * 1.04, 4.0, 1)
    cells = changed_detail(signature(first, 4.0), signature(brighter, 4.0))
    assert cells is not None and cells.mean() > 0.95
    assert not _any(changed_detail(signature(first, 4.0), signature(_noisy(base, 4.0, 2), 4.0)))


def test_a_crop_that_ends_mid_cell_is_tested_to_its_last_pixel() -> None:
    image = _textured_frame(size=(92, 125))
    changed = image.copy()
    changed[88:, 120:] = 255 - changed[88:, 120:]  # the last, partial, corner cell
    cells = changed_detail(signature(image, 0.0), signature(changed, 0.0))
    assert cells is not None and cells.shape == (12, 16)
    assert cells[11, 15] and cells.sum() == 1


def test_a_swaying_person_gets_the_sr_of_each_frame_a_still_one_reuses_it() -> None:
    """Through the processor (full frame, change tests on): a clean textured scene that
    sways by 0.3 px a frame has its SR computed every frame; held still, it runs once
    (twice: the levels the SR is told settle after the first frame) and is reused."""
    from localsr_cam.config import BlendConfig, ModelConfig, PipelineConfig
    from localsr_cam.frames import CapturedFrame
    from localsr_cam.process.processor import FrameProcessor
    from tests.fakes import BicubicSR, EngineBox

    scene = _textured_frame(size=(144, 256))
    config = PipelineConfig(model=ModelConfig(model="fast", backend="cpu", denoise="off"),
                            blend=BlendConfig(full_frame=True))
    for sway, most in ((0.3, 8), (0.0, 2)):
        sr = BicubicSR()
        with FrameProcessor(config, engine_factory=EngineBox(sr=sr)) as processor:
            processor.prepare((256, 144))
            for index in range(8):
                frame = _shifted(scene, sway * index, sway * index / 2)
                processor.process(CapturedFrame(frame, index, float(index)))
        assert len(sr.shapes) == most if sway else 1 <= len(sr.shapes) <= most
        assert all(shape[2:] == (144, 256) for shape in sr.shapes)  # whole, not a part


def test_a_bright_crop_allows_for_the_shot_noise_a_sensor_adds_there() -> None:
    """Noise read at mid-grey as σ 4; on a near-white crop the sensor's shot noise makes it
    √1.8 that (the camera model at white): a still pair there passes as unchanged only
    with the allowance for brightness (a quarter of its cells changed without it). At
    mid-grey nothing is allowed beyond the told noise: a sway of a pixel is found."""
    import localsr_cam.process.reuse as reuse

    rng = np.random.default_rng(3)

    def noisy(frame: np.ndarray, sigma: float) -> np.ndarray:  # luma noise, mostly
        luma = rng.normal(0, sigma, (*frame.shape[:2], 1))
        return np.clip(np.rint(frame + luma), 0, 255).astype(np.uint8)

    bright = _textured_frame().astype(np.float32) * 0.25 + 200  # grey ≈ 230
    white_sigma = 4.0 * np.sqrt(1.8)

    def still_share() -> float:
        cells = [changed_detail(signature(noisy(bright, white_sigma), 4.0),
                                signature(noisy(bright, white_sigma), 4.0))
                 for _ in range(5)]
        return float(np.mean([c.mean() for c in cells if c is not None]))

    assert still_share() < 0.002
    without = reuse.NOISE_GREY
    try:
        reuse.NOISE_GREY = 1e9  # no allowance
        assert still_share() > 0.1
    finally:
        reuse.NOISE_GREY = without
    mid = _textured_frame().astype(np.float32)
    swayed = changed_detail(signature(noisy(mid, 4.0), 4.0),
                            signature(noisy(_shifted(mid, 1.0), 4.0), 4.0))
    assert swayed is not None and swayed.mean() > 0.5
