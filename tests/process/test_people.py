"""The many-people path: face → crop → per-person mask → frame mask and SR regions."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from collections.abc import Iterator

import numpy as np
import pytest
import torch

from localsr_cam.config import BlendConfig, ModelConfig, PipelineConfig
from localsr_cam.frames import CapturedFrame
from localsr_cam.process.auto import CLOSE_UP, PEOPLE, NobodyNotice, PathChooser
from localsr_cam.process.deadline import LEVELS, DeadlineController
from localsr_cam.process.localize import MaskSmoother
from localsr_cam.process.people import (
    CropSegmenter,
    FinderSchedule,
    PeopleFinder,
    crop_for_face,
)
from localsr_cam.process.processor import FrameProcessor
from localsr_cam.process.regions import contains, intersection
from localsr_cam.process.tracking import Track
from tests.fakes import BatchOfOne, BicubicSR, DiscSegmenter, EngineBox, FakeFaceFinder
from tests.scenes import random_picture

WIDTH, HEIGHT = 640, 360
FACES = [(60.0, 80.0, 90.0, 112.0), (300.0, 100.0, 326.0, 128.0), (520.0, 90.0, 552.0, 124.0)]


def smoother() -> MaskSmoother:
    return MaskSmoother(ema=0.0, low=0.4, high=0.6, despeckle=0, feather_radius=1)


def frame_tensor(seed=0) -> torch.Tensor:
    return torch.from_numpy(random_picture(seed, HEIGHT, WIDTH))


def people(faces=FACES, engine=None, **options) -> tuple[PeopleFinder, FakeFaceFinder]:
    finder = FakeFaceFinder(list(faces))
    segmenter = CropSegmenter(engine or DiscSegmenter((0.5, 0.5), 0.25))
    options = {"finder_every": 1, **options}
    return PeopleFinder(finder, segmenter, smoother(), **options), finder


def run_frames(path: PeopleFinder, frames: int):
    image = frame_tensor()
    result = None
    for _ in range(frames):
        path.look(image)
        result = path.process(image, feather_radius=1)
    return result


def test_crop_is_a_square_around_head_and_shoulders():
    face = (100.0, 50.0, 130.0, 90.0)
    x0, y0, x1, y1 = crop_for_face(face)
    assert x1 - x0 == y1 - y0 == 160  # four face heights
    assert contains((x0, y0, x1, y1), (100, 50, 130, 90))
    assert y0 < 50 - 30 and y1 > 90 + 2 * 40  # hair above, shoulders and chest below
    assert abs((x0 + x1) / 2 - 115) <= 2
    assert all(v % 2 == 0 for v in (x0, y0, x1, y1))
    assert crop_for_face((-10.0, -20.0, 10.0, 0.0))[1] < 0  # not clipped to the frame


def test_crop_masks_land_where_the_people_are():
    segmenter = CropSegmenter(DiscSegmenter((0.5, 0.5), 0.25))
    crops = [crop_for_face(face) for face in FACES]
    plane = segmenter(frame_tensor(), crops)[0, 0].numpy()
    assert plane.shape == (HEIGHT, WIDTH)
    for (x0, y0, x1, y1) in crops:
        cx, cy = (x0 + x1) // 2, (y0 + y1) // 2
        assert plane[cy, cx] == pytest.approx(1.0)
    inside = np.zeros_like(plane, dtype=bool)
    for (x0, y0, x1, y1) in crops:
        inside[max(0, y0):y1, max(0, x0):x1] = True
    assert plane[~inside].max() == 0.0 and plane[inside].mean() > 0.1


def test_crop_beyond_the_frame_is_black_there_and_pasted_where_it_overlaps():
    engine = DiscSegmenter((0.5, 0.5), 0.25)
    segmenter = CropSegmenter(engine)
    crop = (-64, -64, 64, 64)  # a person in the top-left corner, half outside
    image = torch.full((HEIGHT, WIDTH, 3), 200, dtype=torch.uint8)
    fed = segmenter._input(image, crop)
    assert fed.shape == (1, 3, 256, 256)
    assert fed[0, :, :120, :120].max() == 0.0 and fed[0, :, 140:, 140:].min() > 0.7
    plane = segmenter(image, [crop])[0, 0]
    assert plane[0, 0] == 1.0 and plane[70:, :].max() == 0.0


def test_crops_share_one_call_where_the_engine_takes_a_batch():
    batched = DiscSegmenter()
    CropSegmenter(batched)(frame_tensor(), [crop_for_face(f) for f in FACES])
    assert batched.calls == 1
    single = BatchOfOne(DiscSegmenter())
    segmenter = CropSegmenter(single)
    plane = segmenter(frame_tensor(), [crop_for_face(f) for f in FACES]).clone()
    assert segmenter.batches is False
    calls = single.calls
    again = segmenter(frame_tensor(), [crop_for_face(f) for f in FACES])
    assert single.calls - calls == 3  # no second try of a batch
    assert torch.equal(plane, again)


def test_schedule_scans_every_tile_round_robin():
    schedule = FinderSchedule(6, per_frame=1)
    seen = [schedule.next() for _ in range(12)]
    assert seen == [[i % 6] for i in range(12)]
    assert schedule.frames_per_scan == 6
    assert FinderSchedule(6, per_frame=4).frames_per_scan == 2
    every_other = FinderSchedule(6, per_frame=1, every=2)
    seen = [every_other.next() for _ in range(12)]
    assert seen[1::2] == [[]] * 6 and [s[0] for s in seen[::2]] == list(range(6))
    assert every_other.frames_per_scan == 12


def test_everyone_gets_a_mask_and_a_region():
    path, finder = people()
    result = run_frames(path, 14)  # two full scans: every face confirmed
    assert result.people == 3 and len(result.regions) == 3
    mask = result.mask[0, 0].numpy()
    for face in FACES:
        x0, y0, x1, y1 = (int(v) for v in face)
        assert mask[y0:y1, x0:x1].mean() > 0.5
        assert any(contains(region, (x0, y0, x1, y1)) for region in result.regions)
    for region in result.regions:
        assert all(v % 2 == 0 for v in region[:2])
    assert finder.calls == 14  # one tile a frame (finder_every=1 here)


def test_regions_stay_put_while_people_sit_still():
    path, _ = people()
    run_frames(path, 14)
    first = run_frames(path, 1).regions
    for _ in range(30):
        assert run_frames(path, 1).regions == first


def test_people_close_together_share_one_region():
    close = [(200.0, 100.0, 230.0, 132.0), (250.0, 104.0, 280.0, 136.0)]
    result = run_frames(people(close)[0], 14)
    assert result.people == 2 and len(result.regions) == 1
    (region,) = result.regions
    assert all(contains(region, tuple(int(v) for v in f)) for f in close)


def test_area_cap_limits_what_is_super_resolved():
    path, _ = people(max_area_fraction=0.1)
    result = run_frames(path, 14)
    total = sum((x1 - x0) * (y1 - y0) for x0, y0, x1, y1 in result.regions)
    assert 1 <= result.people < 3 and total <= 0.1 * WIDTH * HEIGHT


def test_nobody_tracked_means_no_mask_and_no_region():
    result = run_frames(people([])[0], 10)
    assert result.mask is None and result.regions == [] and result.people == 0


def test_a_missed_scan_does_not_make_a_person_blink():
    path, finder = people([FACES[0]])
    finder.miss = {20, 21}  # the face's tile is scanned every 6th call: one scan misses
    counts = []
    image = frame_tensor()
    for _ in range(40):
        path.look(image)
        counts.append(path.process(image, 1).people)
    first = counts.index(1)
    assert all(c == 1 for c in counts[first:])


# -- the path switch --------------------------------------------------------------------

def track(height: float, ident: int = 0) -> Track:
    box = (100.0, 50.0, 100.0 + height, 50.0 + height)
    return Track(ident, box, (100, 50, 100 + int(height), 50 + int(height)), 0.9,
                 confirmed=True)


def test_switch_needs_sustained_evidence_and_logs_once(caplog):
    chooser = PathChooser(360, patience=5)
    many = [track(30, 0), track(30, 1)]
    with caplog.at_level(logging.INFO, logger="localsr_cam.process.auto"):
        for _ in range(4):
            assert chooser.update(many, None) == CLOSE_UP
        assert chooser.update([], None) == CLOSE_UP  # no evidence: the streak restarts
        for _ in range(4):
            assert chooser.update(many, None) == CLOSE_UP
        assert chooser.update(many, None) == PEOPLE
    assert chooser.switches == 1
    assert [r.message for r in caplog.records].count(
        "segmenter auto: switching from the close-up path to the people path "
        "(2 people found)") == 1


def test_flickering_evidence_never_switches():
    chooser = PathChooser(360, patience=5)
    for i in range(200):
        tracks = [track(30, 0), track(30, 1)] if i % 3 == 0 else [track(80)]
        chooser.update(tracks, None)
    assert chooser.path == CLOSE_UP and chooser.switches == 0


@pytest.mark.parametrize("tracks, foreground, want", [
    ([track(80)], None, CLOSE_UP),        # one big face
    ([track(20)], None, PEOPLE),          # one small face: far away
    ([track(50)], None, None),            # in between: keep the path
    ([], 0.3, CLOSE_UP),                  # a big mask but no face seen
    ([], 0.01, None),                     # nobody
])
def test_what_the_evidence_asks_for(tracks, foreground, want):
    assert PathChooser(360).wanted(tracks, foreground) == want


def test_nobody_notice_is_said_once_per_absence(caplog):
    notice = NobodyNotice(after_s=3.0)
    with caplog.at_level(logging.WARNING, logger="localsr_cam.process.auto"):
        said = [notice.update(0, t * 0.5) for t in range(20)]
        notice.update(2, 10.0)
        said += [notice.update(0, 10.0 + t * 0.5) for t in range(1, 10)]
    assert said.count(True) == 2 and said.index(True) == 6
    assert "the output is plain upscaling" in caplog.records[0].message


# -- in the processor ---------------------------------------------------------------------

def people_config(segmenter="people") -> PipelineConfig:
    return PipelineConfig(model=ModelConfig(model="fast", segmenter=segmenter, backend="cpu"),
                          blend=BlendConfig(ema=0.0))


def test_processor_enhances_everyone_with_few_sr_calls():
    engines = EngineBox(sr=BicubicSR(offset=0.2), whole=DiscSegmenter(None))
    finder = FakeFaceFinder(list(FACES))
    image = frame_tensor().numpy()
    with FrameProcessor(people_config(), engine_factory=engines,
                        finder_factory=lambda backend, threads: finder) as processor:
        processor.prepare((WIDTH, HEIGHT))
        for i in range(25):
            processor.process(CapturedFrame(image, i, float(i) / 30))
        before = len(engines.sr.shapes)
        out = processor.process(CapturedFrame(image, 25, 25 / 30))
    assert finder.engine.closed == 1  # the processor closed the finder's engine
    assert out.people == 3 and len(out.boxes) == 3
    assert set(out.stages_ms) >= {"find", "segment", "upscale", "blend"}
    sizes = [(y1 - y0, x1 - x0) for x0, y0, x1, y1 in out.boxes]
    calls = engines.sr.shapes[before:]
    shared = [size for size in set(sizes) if sizes.count(size) > 1]
    assert shared  # two people's boxes have one size here ...
    for h, w in shared:  # ... and share one call
        assert (sizes.count((h, w)), 3, h, w) in calls
    assert len(calls) <= len(set(sizes))  # a box alone may reuse its last SR (a still)
    plain = processor_plain(image)
    for x0, y0, x1, y1 in out.boxes:
        assert not np.array_equal(out.image[2 * y0:2 * y1, 2 * x0:2 * x1],
                                  plain[2 * y0:2 * y1, 2 * x0:2 * x1])
    outside = np.ones((HEIGHT * 2, WIDTH * 2), dtype=bool)
    for x0, y0, x1, y1 in out.boxes:
        outside[2 * y0:2 * y1, 2 * x0:2 * x1] = False
    assert np.array_equal(out.image[outside], plain[outside])
    assert ("selfie", "cpu") in engines.opened  # the crops' model, at its native 256×256


class CropCounter(DiscSegmenter):
    """The crops' segmenter, counting the crops it was given (calls may batch them)."""

    def __init__(self) -> None:
        super().__init__((0.5, 0.5), 0.25)
        self.crops = 0

    def __call__(self, inputs):
        self.crops += inputs["image"].shape[0]
        return super().__call__(inputs)


class SwitchableSR(BicubicSR):
    """The fake SR engine (bicubic + 0.2), taking ``seconds`` a call (change it between
    frames: a CPU getting busy); ``calls`` counts them."""

    def __init__(self, seconds: float = 0.0) -> None:
        super().__init__(offset=0.2)
        self.seconds = seconds
        self.calls = 0

    def __call__(self, inputs):
        self.calls += 1
        time.sleep(self.seconds)
        return super().__call__(inputs)


def changing_pictures(count: int) -> list[np.ndarray]:
    """The three-person scene, a little brighter each frame (every cell changes)."""
    return [(frame_tensor().numpy() // 2 + 10 * i).astype(np.uint8) for i in range(count)]


@contextlib.contextmanager
def paced_people_processor(engines: EngineBox, fps: float) -> Iterator[FrameProcessor]:
    """A people-path processor of ``engines`` at the full level over the faces of
    ``FACES``, paced at ``fps`` by a deadline controller whose ladder is full, plain."""
    finder = FakeFaceFinder(list(FACES))
    config = dataclasses.replace(people_config(), model=dataclasses.replace(
        people_config().model, quality="full"))
    with FrameProcessor(config, engine_factory=engines,
                        finder_factory=lambda backend, threads: finder) as processor:
        processor.prepare((WIDTH, HEIGHT))
        processor.deadline = DeadlineController(fps, ladder=(LEVELS["full"],
                                                             LEVELS["plain"]))
        yield processor


def run_group_at(quality: str, frames: int, pictures: list[np.ndarray] | None = None):
    """``frames`` frames of the three-person scene in people mode at a fixed ``quality``
    (``pictures``, default :func:`changing_pictures`: every cell changes each frame):
    (outputs, the engines, the finder)."""
    engines = EngineBox(CropCounter(), BicubicSR(offset=0.2), whole=DiscSegmenter(None))
    finder = FakeFaceFinder(list(FACES))
    config = dataclasses.replace(people_config(), model=dataclasses.replace(
        people_config().model, quality=quality))
    pictures = changing_pictures(frames) if pictures is None else pictures
    with FrameProcessor(config, engine_factory=engines,
                        finder_factory=lambda backend, threads: finder) as processor:
        processor.prepare((WIDTH, HEIGHT))
        outputs = [processor.process(CapturedFrame(picture, i, i / 30))
                   for i, picture in enumerate(pictures)]
    return outputs, engines, finder


def run_group_live(frames: int, events: list[str], live: bool = True,
                   quality: str = "full"):
    """``frames`` frames of the three-person scene in people mode at ``quality``, a
    changed picture each frame, the crops' segmenter slow (30 ms) and both engines
    writing to ``events``; ``live``: paced by a deadline controller (200 ms a frame,
    so every SR is in time). Returns the outputs."""

    class SlowCrops(DiscSegmenter):
        def __call__(self, inputs):
            events.append("segment")
            time.sleep(0.03)
            events.append("segmented")
            return super().__call__(inputs)

    class RecordingSR(BicubicSR):
        def __call__(self, inputs):
            events.append("sr")
            return super().__call__(inputs)

    engines = EngineBox(SlowCrops((0.5, 0.5), 0.25), RecordingSR(offset=0.2),
                        whole=DiscSegmenter(None))
    finder = FakeFaceFinder(list(FACES))
    config = dataclasses.replace(people_config(), model=dataclasses.replace(
        people_config().model, quality=quality))
    outputs = []
    with FrameProcessor(config, engine_factory=engines,
                        finder_factory=lambda backend, threads: finder) as processor:
        processor.prepare((WIDTH, HEIGHT))
        if live:
            processor.deadline = DeadlineController(5.0, ladder=(LEVELS[quality],
                                                                 LEVELS["plain"]))
        for i in range(frames):
            events.append("frame")
            image = (frame_tensor().numpy() // 2 + 10 * i).astype(np.uint8)
            outputs.append(processor.process(CapturedFrame(image, i, time.perf_counter())))
    return outputs


def test_the_deadline_controller_is_told_the_frames_are_on_the_people_path():
    """Its levels' nominal costs are then the people path's (the finder and the crops'
    masks are most of such a frame: the levels cut its cost less than a close-up's)."""
    engines = EngineBox(CropCounter(), BicubicSR(offset=0.2), whole=DiscSegmenter(None))
    face = LEVELS["face"]
    with paced_people_processor(engines, fps=5.0) as processor:
        assert processor.deadline is not None
        assert processor.deadline.nominal_cost(face) == face.cost  # close-up until told
        for i, picture in enumerate(changing_pictures(2)):
            processor.process(CapturedFrame(picture, i, time.perf_counter()))
        assert processor.last_path == PEOPLE
        assert processor.deadline.nominal_cost(face) == face.people_cost != face.cost


@pytest.mark.parametrize("quality", ["full", "head"])
def test_live_the_people_sr_begins_before_the_crops_are_segmented(quality):
    """Live on the people path, the SR of the last frame's regions (their top halves at
    `head`) starts on the worker before this frame's crops are segmented (not after
    them, on the frame thread); each box is still super-resolved fresh, and the frames
    are the ones an unpaced run makes. (At `head` it began after segmentation and was
    late on every frame of the meeting room.)"""
    events: list[str] = []
    outputs = run_group_live(5, events, quality=quality)
    per_frame = [chunk.split("|")[1:] for chunk in "|".join(events).split("frame")[1:]]
    assert per_frame[0].index("sr") > per_frame[0].index("segmented")  # no regions yet
    for frame in per_frame[2:]:  # regions known from the frame before
        assert "sr" in frame[:frame.index("segmented")]
        assert frame.count("sr") == 3  # one call per box, one after the other
    assert [out.sr for out in outputs] == ["fresh"] * 5
    assert all(out.people == 3 and len(out.boxes) == 3 for out in outputs)
    unpaced = run_group_live(5, [], live=False, quality=quality)
    for paced, plain in zip(outputs[2:], unpaced[2:], strict=True):
        assert paced.boxes == plain.boxes
        assert np.array_equal(paced.image, plain.image)


def test_a_late_people_sr_holds_no_frame_and_its_results_serve_later_ones():
    """The early SR of the people's boxes made slow (a shared CPU): the frame goes out
    at its deadline without it (late), no second call starts while it runs, and once
    it is done each box's result is kept: a later frame of the same picture reuses all
    three without an SR call."""

    sr = SwitchableSR()
    engines = EngineBox(DiscSegmenter((0.5, 0.5), 0.25), sr, whole=DiscSegmenter(None))
    pictures = changing_pictures(5)
    with paced_people_processor(engines, fps=5.0) as processor:

        def show(index: int, picture: np.ndarray):
            return processor.process(CapturedFrame(picture, index, time.perf_counter()))

        for i in range(3):
            assert show(i, pictures[i]).sr == "fresh"
        sr.seconds = 0.15  # three boxes: 450 ms, past the 200 ms budget
        before = sr.calls
        started = time.perf_counter()
        late = show(3, pictures[3])
        assert time.perf_counter() - started < 0.3
        assert late.sr == "none"  # every cell changed: nothing stands in
        assert show(4, pictures[4]).sr == "none"  # it still runs
        time.sleep(0.5)
        assert sr.calls == before + 3  # the late call's three boxes, nothing more
        sr.seconds = 0.0
        again = show(5, pictures[3])
        assert again.sr == "reused" and sr.calls == before + 3
        assert len(again.boxes) == 3


def test_a_level_that_segments_one_frame_in_two_looks_for_people_on_the_other():
    """At ``alternate`` the finder and the masks rest on every other frame (the last
    frame's mask and boxes stand in), on the frames SR rests: the two dearest steps of a
    group never land on one frame."""
    _, full_engines, full_finder = run_group_at("full", 12)
    frames, engines, finder = run_group_at("alternate", 12)
    assert engines.segmenter.calls <= full_engines.segmenter.calls // 2 + 2  # about half
    assert finder.calls <= full_finder.calls // 2 + 1  # the finder too
    assert all(out.people == 3 for out in frames[2:])  # everyone, on every frame
    fresh = [out for out in frames[2:] if out.sr == "fresh"]
    assert len(fresh) == 5 and all(len(out.boxes) == 3 for out in fresh)  # SR on all


def test_cheaper_levels_segment_one_person_a_frame():
    """``face`` refreshes one person's mask a frame (``full``: two), after everyone was
    segmented once on the first frame."""
    crops = {}
    for quality in ("full", "face"):
        outputs, engines, _ = run_group_at(quality, 10)
        assert all(out.people == 3 for out in outputs[1:])
        crops[quality] = engines.segmenter.crops
    assert crops["face"] <= 3 + 9 * 1
    assert crops["full"] >= crops["face"] + 8


def test_people_who_hold_still_are_not_segmented_again():
    """In a meeting room most people sit and listen: a person whose crop's picture held
    still (but for the camera's noise) since their mask was made keeps that mask (it
    would come out the same); one whose picture changed is segmented again, once. So is
    the whole frame's mask."""
    still = frame_tensor().numpy()
    changed = still.copy()
    x0, y0, x1, y1 = (int(v) for v in FACES[1])
    changed[y0:y1, x0:x1] //= 2  # the middle person turns away from the light
    rng = np.random.default_rng(3)

    def noisy(picture: np.ndarray) -> np.ndarray:  # sensor noise of σ 3 levels
        return np.clip(picture + rng.normal(0.0, 3.0, picture.shape), 0, 255).astype(np.uint8)

    pictures = [noisy(still) for _ in range(6)] + [noisy(changed) for _ in range(4)]
    outputs, engines, _ = run_group_at("full", 10, pictures)
    assert all(out.people == 3 for out in outputs)
    assert engines.segmenter.crops == 3 + 1  # everyone on the first frame, then one
    # the whole-frame mask (people the finder missed), due on the frames the finder
    # rests: made on the first of them, then again only once the picture changed
    assert engines.whole.calls == 2


def processor_plain(image: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.resize(image, (2 * image.shape[1], 2 * image.shape[0]),
                      interpolation=cv2.INTER_CUBIC)


def test_auto_switches_to_people_when_a_group_appears():
    engines = EngineBox(whole=DiscSegmenter(None))
    finder = FakeFaceFinder([])
    image = frame_tensor().numpy()
    with FrameProcessor(people_config("auto"), engine_factory=engines,
                        finder_factory=lambda backend, threads: finder) as processor:
        processor.prepare((WIDTH, HEIGHT))
        paths = []
        for i in range(90):
            if i == 10:
                finder.faces = list(FACES)
            out = processor.process(CapturedFrame(image, i, i / 30))
            paths.append(processor.path)
    assert paths[0] == CLOSE_UP and paths[-1] == PEOPLE
    switch = paths.index(PEOPLE)
    assert 10 + 15 <= switch <= 10 + 2 * 24 + 15  # confirmed (two scans at 1 tile in 4
    # frames on the close-up path), then the patience
    assert all(p == PEOPLE for p in paths[switch:])
    assert out.people == 3
    assert processor.last_path == PEOPLE  # kept after close, for the bench report


def test_auto_without_a_finder_is_the_close_up_path(caplog):
    with caplog.at_level(logging.WARNING, logger="localsr_cam.processor"), \
            FrameProcessor(people_config("auto"), engine_factory=EngineBox()) as processor:
        processor.prepare((WIDTH, HEIGHT))
        out = processor.process(CapturedFrame(frame_tensor().numpy(), 0, 0.0))
    assert processor.path is None and out.people == 1 and len(out.boxes) == 1
    assert "no face finder" in caplog.text


def test_people_mode_without_a_finder_is_an_error():
    from localsr_cam.errors import ModelError

    with pytest.raises(ModelError), FrameProcessor(people_config(), engine_factory=EngineBox()):
        pass


def test_regions_never_overlap():
    path, _ = people([(100.0 + 37 * i, 90.0 + (i % 3) * 40, 130.0 + 37 * i,
                       122.0 + (i % 3) * 40) for i in range(10)])
    result = run_frames(path, 14)
    for i, a in enumerate(result.regions):
        for b in result.regions[i + 1:]:
            assert intersection(a, b) is None


# -- what the user sees: HUD, preview boxes, run summary, bench ---------------------------

def test_hud_says_how_many_people_are_enhanced():
    from localsr_cam.frames import HudStats
    from localsr_cam.outputs.hud import hud_lines

    assert "3 people enhanced" in hud_lines(HudStats(people=3), show_mask=False,
                                            bypass=False)[0]
    assert "1 person enhanced" in hud_lines(HudStats(people=1), show_mask=False,
                                            bypass=False)[0]
    assert "enhanced" not in hud_lines(HudStats(), show_mask=False, bypass=False)[0]


def test_preview_outlines_every_region():
    from localsr_cam.frames import HudStats, ProcessedFrame
    from localsr_cam.outputs.hud import BOX_BGR, PreviewCanvas

    source = CapturedFrame(np.zeros((90, 160, 3), np.uint8), 0, 0.0)
    boxes = ((10, 10, 40, 50), (100, 20, 150, 80))
    frame = ProcessedFrame(np.zeros((180, 320, 3), np.uint8), source,
                           mask=np.zeros((90, 160), np.float32), box=(10, 10, 150, 80),
                           boxes=boxes, people=2)
    canvas = PreviewCanvas((320, 180)).compose(frame, HudStats(), layout="split", split=0.0,
                                               show_mask=True)
    for x0, _, _, y1 in boxes:  # split layout at 0: the output at output scale
        assert tuple(canvas[2 * y1 - 1, 2 * x0 + 4]) == BOX_BGR


def test_run_summary_and_bench_count_people():
    from localsr_cam.measure.bench import summarize
    from localsr_cam.pipeline.threads import FrameRecord, RunResult

    records = [FrameRecord(i, 10.0, 0.01 * i, {}, 0.2, people=3 + (i == 5)) for i in range(11)]
    result = RunResult(11, 1.0, records, {}, 0, 0, 0, False, "cpu")
    assert "people=3 (max 4)" in result.summary()
    assert summarize(records)["people"] == {"mean": pytest.approx(3.09, abs=0.01), "max": 4}
    none = [FrameRecord(i, 10.0, 0.01 * i, {}, 0.0) for i in range(3)]
    assert "people" not in RunResult(3, 1.0, none, {}, 0, 0, 0, False, "cpu").summary()


def test_a_badge_on_a_chest_is_not_a_person():
    from localsr_cam.process.people import drop_chest_faces

    face = ((171.0, 64.0, 280.0, 173.0), 0.93)
    badge = ((145.0, 184.0, 193.0, 232.0), 0.64)  # the astronaut's patch, as detected
    neighbour = ((300.0, 90.0, 350.0, 140.0), 0.9)  # beside her, not below her face
    behind = ((200.0, 10.0, 240.0, 50.0), 0.8)  # above her face: someone behind
    assert drop_chest_faces([face, badge, neighbour, behind]) == [face, neighbour, behind]


def test_tracks_are_where_the_faces_are():
    path, _ = people()
    run_frames(path, 14)
    shown = sorted(track.shown for track in path.tracks)
    for face, box in zip(sorted(FACES), shown, strict=True):
        assert all(abs(a - b) <= 2 for a, b in zip(face, box, strict=True)), (face, box)


def test_bench_reports_a_stage_that_runs_every_other_frame_by_its_mean():
    from localsr_cam.measure.bench import summarize
    from localsr_cam.pipeline.threads import FrameRecord

    records = [FrameRecord(i, 10.0, 0.01 * i, {"find": 4.0} if i % 2 else {}, 0.2)
               for i in range(10)]
    figures = summarize(records)
    assert figures["stages_ms"]["find"] == 4.0  # the median of the frames it ran on
    assert figures["stages_mean_ms"]["find"] == 2.0  # what it costs a frame


def test_close_up_box_holds_still_while_the_mask_jitters():
    """Issue 10's flicker: a person box that moves a pixel each frame shifts the SR
    crop grid; the close-up box stays put while it still holds the person."""
    segmenter = DiscSegmenter((0.5, 0.5), 0.25)
    engines = EngineBox(segmenter)
    config = PipelineConfig(model=ModelConfig(model="fast", segmenter="selfie",
                                              backend="cpu"), blend=BlendConfig(ema=0.0))
    boxes = set()
    with FrameProcessor(config, engine_factory=engines) as processor:
        processor.prepare((WIDTH, HEIGHT))
        for i in range(30):
            segmenter.centre = (0.5 + 0.004 * (i % 3 - 1), 0.5 + 0.004 * (i % 2))
            image = frame_tensor(seed=i).numpy()  # a new picture: the mask is made anew
            boxes.add(processor.process(CapturedFrame(image, i, i / 30)).box)
        assert len(boxes) == 1
        (box,) = boxes
        assert box[0] % 2 == 0 and box[1] % 2 == 0
        segmenter.centre = (0.7, 0.5)  # the person moved: the box follows
        moved = processor.process(CapturedFrame(frame_tensor(seed=30).numpy(), 30, 1.0)).box
    assert moved != box and moved[0] > box[0]


def test_someone_the_finder_missed_is_still_found_in_the_whole_frame_mask():
    """A person the face finder cannot see (turned away) but the whole-frame selfie
    mask holds, outside everyone's crop, gets a region of their own, held steady."""
    engines = EngineBox(sr=BicubicSR(offset=0.2), whole=DiscSegmenter((0.85, 0.6), 0.15))
    finder = FakeFaceFinder([FACES[0]])  # the person on the left is found; not the other
    image = frame_tensor().numpy()
    with FrameProcessor(people_config(), engine_factory=engines,
                        finder_factory=lambda backend, threads: finder) as processor:
        processor.prepare((WIDTH, HEIGHT))
        outs = [processor.process(CapturedFrame(image, i, i / 30)) for i in range(40)]
    out = outs[-1]
    assert out.people == 2 and len(out.boxes) == 2
    disc = (round(0.85 * WIDTH), round(0.6 * HEIGHT))
    assert out.mask[disc[1], disc[0]] > 0.9
    assert any(x0 <= disc[0] < x1 and y0 <= disc[1] < y1 for x0, y0, x1, y1 in out.boxes)
    assert len({o.boxes for o in outs[-10:]}) == 1  # steady


def test_whole_frame_mask_inside_a_crop_adds_no_person():
    engines = EngineBox(whole=DiscSegmenter((75 / WIDTH, 130 / HEIGHT), 0.05))
    finder = FakeFaceFinder([FACES[0]])  # the disc lies on this person's chest
    with FrameProcessor(people_config(), engine_factory=engines,
                        finder_factory=lambda backend, threads: finder) as processor:
        processor.prepare((WIDTH, HEIGHT))
        for i in range(30):
            out = processor.process(CapturedFrame(frame_tensor().numpy(), i, i / 30))
    assert out.people == 1 and len(out.boxes) == 1


def test_a_body_below_someones_crop_is_theirs_not_another_person():
    """The square crop stops at the chest; the whole-frame mask holds the rest of the
    body: it joins that person's box instead of counting as someone else."""
    face = FACES[1]  # crop x 257..369, down to y 187
    body = DiscSegmenter((313 / WIDTH, 215 / HEIGHT), 0.12)  # a torso below the crop
    engines = EngineBox(sr=BicubicSR(offset=0.2), whole=body)
    finder = FakeFaceFinder([face])
    with FrameProcessor(people_config(), engine_factory=engines,
                        finder_factory=lambda backend, threads: finder) as processor:
        processor.prepare((WIDTH, HEIGHT))
        for i in range(30):
            out = processor.process(CapturedFrame(frame_tensor().numpy(), i, i / 30))
    assert out.people == 1 and len(out.boxes) == 1
    ((_, y0, _, y1),) = out.boxes
    assert y1 >= 215 + 0.12 * HEIGHT - 2 and y0 <= face[1]


def test_finder_rate_follows_the_path():
    path, finder = people()  # finder_every=1 in these tests
    image = frame_tensor()
    path.look(image)
    path.set_every(4)
    calls = finder.calls
    for _ in range(12):
        path.look(image)
    assert finder.calls - calls == 3
    assert path.tracker is not None and path._schedule is not None
    assert path.tracker.max_age == 3 * 4 * path._schedule.count + 2


def test_first_frame_scans_everything_and_segments_everyone():
    path, finder = people(finder_every=2)
    result = run_frames(path, 1)
    assert finder.calls == 1 and result.people == 3  # all tiles in one call, all shown
    assert len(path._segmented) == 3  # everyone segmented on the first frame
    path.reset()
    assert run_frames(path, 1).people == 3  # again after a reset (the next still image)


def test_first_frame_settles_auto_at_once(caplog):
    chooser = PathChooser(360, patience=15)
    with caplog.at_level(logging.INFO, logger="localsr_cam.process.auto"):
        assert chooser.settle([track(30, 0), track(30, 1)]) == PEOPLE
    assert "starting on the people path" in caplog.text
    assert chooser.settle([track(80)]) == PEOPLE  # settles once; later frames need patience
    assert PathChooser(360).settle([]) == CLOSE_UP


def test_a_paced_frame_whose_people_moved_out_of_their_boxes_keeps_the_early_sr_there():
    """Paced on the people path, two people lean to one side as the SR gets slow: their
    boxes are none of the boxes whose SR began early, and no time is left for their
    own SR. The early SR of the box each overlaps (this frame's pixels) is kept where
    the two overlap: no one shows the plain upscale (they had)."""

    class SlowCrops(DiscSegmenter):
        def __call__(self, inputs):
            time.sleep(0.05)
            return super().__call__(inputs)

    crops, sr = SlowCrops((0.5, 0.5), 0.25), SwitchableSR(0.02)
    engines = EngineBox(crops, sr, whole=DiscSegmenter(None))
    outputs = []
    pictures = changing_pictures(5)
    with paced_people_processor(engines, fps=2.0) as processor:
        for i, picture in enumerate(pictures):
            if i == 4:
                crops.centre = (0.7, 0.5)  # they lean right (two crops a frame are new)
                sr.seconds = 0.12  # the early call's three boxes: most of the 500 ms
                calls = sr.calls
            outputs.append(processor.process(CapturedFrame(picture, i,
                                                           time.perf_counter())))
    moved, before = outputs[-1], outputs[-2]
    assert [out.sr for out in outputs[1:4]] == ["fresh"] * 3
    assert len(moved.boxes) == 3 and len(set(moved.boxes) - set(before.boxes)) == 2
    assert sr.calls == calls + 3  # the early call's boxes only
    plain = processor_plain(pictures[-1])
    for x0, y0, x1, y1 in moved.boxes:  # every person shows SR in their box
        assert not np.array_equal(moved.image[2 * y0:2 * y1, 2 * x0:2 * x1],
                                  plain[2 * y0:2 * y1, 2 * x0:2 * x1])
