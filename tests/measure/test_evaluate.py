"""``localsr-cam eval``: the report from fake upscalers, Algorithm 1 recomputed from the
JSON, figures, and bad input turned into one line and exit status 2."""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from localsr_cam.cli.main import main as cli_main
from localsr_cam.measure import evaluate
from localsr_cam.measure.evaluate import METHODS, METRICS, Outputs, evaluate_images

SIZES = [(64, 48), (57, 41), (48, 64)]  # (width, height); the middle one is odd


def main(argv: list[str]) -> int:
    return cli_main(["eval", *argv])


def halve(hr: np.ndarray) -> np.ndarray:
    """Fake degrade: the 2×2 block mean, rounded (stands in for train.degrade)."""
    h, w = hr.shape[0] // 2, hr.shape[1] // 2
    blocks = hr[: 2 * h, : 2 * w].reshape(h, 2, w, 2, 3).astype(np.float64)
    return np.rint(blocks.mean(axis=(1, 3))).astype(np.uint8)


def scene(width: int, height: int, seed: int) -> np.ndarray:
    """A smooth background with a bright textured 'person' ellipse in the middle."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:height, :width]
    image = np.dstack([(xx * 3 + 40) % 256, (yy * 2 + 80) % 256,
                       np.full_like(xx, 120)]).astype(np.float64)
    person = ((xx - width / 2) / (width / 4)) ** 2 + ((yy - height / 2) / (height / 3)) ** 2 < 1
    image[person] = 200 + rng.normal(0, 20, (int(person.sum()), 3))
    return np.clip(image, 0, 255).astype(np.uint8)


def lr_mask(lr: np.ndarray) -> np.ndarray:
    """The fake segmenter: the same ellipse at LR size, float32 in [0, 1]."""
    height, width = lr.shape[:2]
    yy, xx = np.mgrid[:height, :width]
    inside = ((xx - width / 2) / (width / 4)) ** 2 + ((yy - height / 2) / (height / 3)) ** 2
    return (inside < 1).astype(np.float32) * 0.9


def read(path: Path) -> np.ndarray:
    image = cv2.imread(str(path))
    assert image is not None, path
    return image


def bicubic(lr: np.ndarray) -> np.ndarray:
    return cv2.resize(lr, (lr.shape[1] * 2, lr.shape[0] * 2), interpolation=cv2.INTER_CUBIC)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    images = tmp_path / "images"
    images.mkdir()
    for i, (w, h) in enumerate(SIZES):
        assert cv2.imwrite(str(images / f"img{i}.png"), scene(w, h, i))
    return images


def all_bicubic(lr: np.ndarray) -> Outputs:
    return {"full": (bicubic(lr), None), "local": (bicubic(lr), lr_mask(lr))}


class Oracle:
    """Knows each HR image: "full" returns HR itself, "local" pastes HR inside the mask."""

    def __init__(self, folder: Path) -> None:
        self.hr_by_lr = {}
        for path in sorted(folder.iterdir()):
            hr = read(path)
            hr = hr[: hr.shape[0] // 2 * 2, : hr.shape[1] // 2 * 2]
            self.hr_by_lr[halve(hr).tobytes()] = hr
        self.seen: list[tuple[int, ...]] = []

    def __call__(self, lr: np.ndarray) -> Outputs:
        self.seen.append(lr.shape)
        lr = lr[-1] if lr.ndim == 4 else lr  # frames of a still scene: outputs of the last
        hr = self.hr_by_lr[lr.tobytes()]
        mask = lr_mask(lr)
        up = cv2.resize(mask, (hr.shape[1], hr.shape[0])) >= 0.5
        local = bicubic(lr)
        local[up] = hr[up]
        return {"full": (hr.copy(), None), "local": (local, mask)}


def evaluate_folder(folder: Path, outputs_for) -> dict:
    paths = sorted(folder.iterdir())
    return evaluate_images(paths, outputs_for, halve, progress=False,
                           settings={"model": "fake", "segmenter": "ellipse",
                                     "degrade": "area"})


def recompute_increase(report: dict, method: str, key: str) -> float:
    changes = [(img["methods"][method][key] - img["methods"]["bicubic"][key])
               / img["methods"]["bicubic"][key] * 100 for img in report["images"]]
    return sum(changes) / len(changes)


# -- the report ----------------------------------------------------------------------------


def test_report_has_every_key_and_number(folder: Path) -> None:
    report = evaluate_folder(folder, Oracle(folder))
    report = json.loads(json.dumps(report, allow_nan=False))  # strict JSON round trip
    assert set(report) == {"images", "mean", "percent_increase", "model", "segmenter",
                           "degrade", "frames", "pan", "sway", "zoom", "exposure", "repeat"}
    assert (report["model"], report["segmenter"], report["degrade"], report["frames"],
            report["pan"], report["sway"], report["zoom"], report["exposure"],
            report["repeat"]) == ("fake", "ellipse", "area", 1, 0.0, 0.0, 0.0, 0.0, 1)
    assert [img["name"] for img in report["images"]] == ["img0.png", "img1.png", "img2.png"]
    assert [img["size"] for img in report["images"]] == [[64, 48], [56, 40], [48, 64]]
    for img in report["images"]:
        assert set(img) == {"name", "size", "foreground_fraction", "methods"}
        assert 0.1 < img["foreground_fraction"] < 0.6
        assert set(img["methods"]) == set(METHODS)
        for scores in img["methods"].values():
            assert set(scores) == set(METRICS)
            assert all(isinstance(v, float) and math.isfinite(v) for v in scores.values())
    assert set(report["mean"]) == set(METHODS)
    assert set(report["percent_increase"]) == {"full", "local"}
    for values in report["percent_increase"].values():
        assert set(values) == {"psnr", "ssim", "uqi"}


def test_lr_given_to_the_upscaler_is_half_the_even_cropped_hr(folder: Path) -> None:
    oracle = Oracle(folder)
    evaluate_folder(folder, oracle)
    assert oracle.seen == [(24, 32, 3), (20, 28, 3), (32, 24, 3)]


def test_perfect_full_frame_hits_the_caps(folder: Path) -> None:
    report = evaluate_folder(folder, Oracle(folder))
    for img in report["images"]:
        full, local, base = (img["methods"][m] for m in ("full", "local", "bicubic"))
        assert full["psnr"] == full["psnr_fg"] == full["psnr_boundary"] == 100.0
        assert full["ssim"] == pytest.approx(1.0) and full["uqi"] == 1.0
        assert local["psnr_fg"] == 100.0 > base["psnr_fg"]
        assert base["psnr"] < local["psnr"] < 100.0
    assert report["percent_increase"]["full"]["psnr"] > report["percent_increase"][
        "local"]["psnr"] > 0


def test_bicubic_everywhere_gives_zero_increase(folder: Path) -> None:
    report = evaluate_folder(folder, all_bicubic)
    for method in ("full", "local"):
        assert report["percent_increase"][method] == {"psnr": 0.0, "ssim": 0.0, "uqi": 0.0}
        assert report["mean"][method] == report["mean"]["bicubic"]


def test_algorithm_1_and_means_recomputed_from_the_json(folder: Path) -> None:
    report = json.loads(json.dumps(evaluate_folder(folder, Oracle(folder))))
    for method in ("full", "local"):
        for key in ("psnr", "ssim", "uqi"):
            assert report["percent_increase"][method][key] == pytest.approx(
                recompute_increase(report, method, key), rel=1e-12)
    for method in METHODS:
        for key in METRICS:
            values = [img["methods"][method][key] for img in report["images"]]
            assert report["mean"][method][key] == pytest.approx(sum(values) / len(values))


def test_no_mask_gives_null_foreground_figures(folder: Path) -> None:
    def no_mask(lr: np.ndarray) -> Outputs:
        return {"full": (bicubic(lr), None), "local": (bicubic(lr), None)}

    report = evaluate_folder(folder, no_mask)
    for img in report["images"]:
        assert img["foreground_fraction"] == 0.0
        for scores in img["methods"].values():
            assert scores["psnr_fg"] is None and scores["ssim_fg"] is None
            assert scores["psnr_boundary"] is None
            assert scores["psnr"] is not None
    assert report["mean"]["local"]["psnr_fg"] is None
    json.dumps(report, allow_nan=False)


def test_wrong_output_shape_is_a_programming_error(folder: Path) -> None:
    def wrong(lr: np.ndarray) -> Outputs:
        return {"full": (lr, None), "local": (bicubic(lr), None)}

    with pytest.raises(ValueError, match="full output"):
        evaluate_folder(folder, wrong)


def test_markdown_is_the_paper_table_with_the_algorithm_1_row(folder: Path) -> None:
    report = evaluate_folder(folder, Oracle(folder))
    text = evaluate.markdown_report(report)
    lines = text.splitlines()
    header = next(line for line in lines if line.startswith("| Image"))
    assert header.count("PSNR") == 3 and header.count("SSIM") == 3 and header.count("UQI") == 3
    assert sum(line.startswith("| img") for line in lines) == 2 * len(SIZES)
    row = next(line for line in lines if line.startswith("| **Mean % increase"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1:4] == ["–", "–", "–"]  # the baseline has no increase over itself
    assert cells[4] == f"{report['percent_increase']['full']['psnr']:+.2f} %"


# -- main ------------------------------------------------------------------------------------


class FakeOpen:
    """Stands in for processor_outputs; records whether the long work started."""

    def __init__(self, outputs_for) -> None:
        self.outputs_for = outputs_for
        self.calls: list[tuple[str, str, str]] = []

    @contextlib.contextmanager
    def __call__(self, model: str, segmenter: str, backend: str, precision: str = "auto",
                 progress=None) -> Iterator:
        self.calls.append((model, segmenter, backend))
        yield self.outputs_for


@pytest.fixture
def fake_open(monkeypatch: pytest.MonkeyPatch, folder: Path) -> FakeOpen:
    opener = FakeOpen(Oracle(folder))
    monkeypatch.setattr(evaluate, "processor_outputs", opener)
    monkeypatch.setattr(evaluate, "_degrade_for",
                        lambda method, frames=1, repeat=1, **motion: (
                            halve if frames == 1
                            else lambda hr: np.stack([halve(hr)] * (frames * repeat))))
    return opener


def test_main_writes_json_markdown_and_figures(folder: Path, tmp_path: Path,
                                               fake_open: FakeOpen) -> None:
    out_json, out_md, figs = tmp_path / "r.json", tmp_path / "r.md", tmp_path / "figs"
    status = main(["--images", str(folder), "--model", "paper", "--segmenter", "maskrcnn",
                   "--backend", "cpu", "--degrade", "bicubic", "--json", str(out_json),
                   "--md", str(out_md), "--figures", str(figs)])
    assert status == 0
    assert fake_open.calls == [("paper", "maskrcnn", "cpu")]
    report = json.loads(out_json.read_text())
    assert (report["model"], report["segmenter"], report["degrade"]) == (
        "paper", "maskrcnn", "bicubic")
    assert report["percent_increase"]["local"]["psnr"] == pytest.approx(
        recompute_increase(report, "local", "psnr"))
    assert "Algorithm 1" in out_md.read_text()
    pngs = sorted(p.name for p in figs.iterdir())
    assert pngs == ["000_img0.png", "000_img0_face.png", "001_img1.png", "001_img1_face.png",
                    "002_img2.png", "002_img2_face.png", "percent_increase.png"]
    for name in pngs:
        picture = cv2.imread(str(figs / name))
        assert picture is not None and picture.shape[1] > 300


def test_degrade_all_reports_every_suite_and_a_summary_table(
        folder: Path, tmp_path: Path, fake_open: FakeOpen,
        capsys: pytest.CaptureFixture[str]) -> None:
    out_json, figs = tmp_path / "all.json", tmp_path / "figs"
    assert main(["--images", str(folder), "--degrade", "all", "--json", str(out_json),
                 "--figures", str(figs)]) == 0
    report = json.loads(out_json.read_text())
    suites = ["area", "bicubic", "webcam", "lossy", "mjpeg", "lowlight", "soft", "noisy",
              "sharpened"]
    assert list(report["suites"]) == suites and fake_open.calls == [("fast", "auto", "auto")]
    for suite in suites:
        images = report["suites"][suite]["images"]
        gains = {img["name"]: img["methods"]["full"]["psnr"] - img["methods"]["bicubic"]["psnr"]
                 for img in images}
        cell = report["summary"]["full"][suite]
        assert cell["mean_gain_db"] == pytest.approx(np.mean(list(gains.values())))
        assert cell["worst_gain_db"] == pytest.approx(min(gains.values()))
        assert gains[cell["worst_image"]] == pytest.approx(min(gains.values()))
        assert (figs / suite / "000_img0_face.png").exists()
    assert main(["--images", str(folder), "--degrade", "all"]) == 0
    table = capsys.readouterr().out
    assert "| method | area | bicubic | webcam | lossy | mjpeg | lowlight |" in table


def test_face_box_sits_on_the_top_of_the_mask() -> None:
    from localsr_cam.measure.figures import face_box

    mask = np.zeros((100, 200), np.float32)
    mask[40:100, 120:160] = 1.0  # a person on the right, 40 px wide, top of head at row 40
    x0, y0, x1, y1 = face_box(mask, (400, 200), side=60)
    assert (x1 - x0, y1 - y0) == (60, 60)
    face_y = 2 * (40 + 0.6 * 40)  # HR row of the face centre
    assert x0 <= 2 * 140 <= x1 and y0 <= face_y < y1 and y0 > 80
    assert face_box(None, (400, 200), side=60) == (170, 70, 230, 130)


def test_main_without_outputs_prints_the_table(folder: Path, fake_open: FakeOpen,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--images", str(folder)]) == 0
    assert "| img0.png |" in capsys.readouterr().out


def assert_refused(capsys: pytest.CaptureFixture[str], argv: list[str], *needles: str) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("localsr-cam: error:")
    assert "Traceback" not in err
    for needle in needles:
        assert needle in err


@pytest.mark.parametrize("flag", ["--json", "--md"])
def test_unwritable_output_is_refused_before_the_long_work(
        folder: Path, tmp_path: Path, fake_open: FakeOpen,
        capsys: pytest.CaptureFixture[str], flag: str) -> None:
    missing_dir = tmp_path / "no" / "such" / "report.out"
    assert_refused(capsys, ["--images", str(folder), flag, str(missing_dir)], flag, "no")
    assert_refused(capsys, ["--images", str(folder), flag, str(tmp_path)], "is a folder")
    assert fake_open.calls == []
    assert not (tmp_path / "no").exists()


def test_figures_under_a_file_is_refused(folder: Path, tmp_path: Path, fake_open: FakeOpen,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert_refused(capsys, ["--images", str(folder), "--figures", str(blocker / "figs")],
                   "--figures")
    assert fake_open.calls == []


def test_empty_folder_is_refused(tmp_path: Path, fake_open: FakeOpen,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert_refused(capsys, ["--images", str(empty)], "no images in", str(empty))


def test_non_image_among_images_is_refused_naming_it(folder: Path, fake_open: FakeOpen,
                                                     capsys: pytest.CaptureFixture[str]
                                                     ) -> None:
    (folder / "broken.jpg").write_text("not a jpeg")
    assert_refused(capsys, ["--images", str(folder)], "broken.jpg")
    assert fake_open.calls == []


def test_small_image_is_refused_naming_it(folder: Path, fake_open: FakeOpen,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    cv2.imwrite(str(folder / "tiny.png"), np.zeros((12, 40, 3), np.uint8))
    assert_refused(capsys, ["--images", str(folder)], "tiny.png", "16×16")
    assert fake_open.calls == []


def test_help_and_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "--images" in out and "Algorithm 1" in out
    assert main(["--images", "x", "--degrade", "nearest"]) == 2
    assert main([]) == 2
    assert main(["--bogus"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(line.startswith("localsr-cam: error:") for line in err)


# -- the real pieces -------------------------------------------------------------------------


def test_training_degrade_is_a_2x_downscale(folder: Path) -> None:
    hr = read(folder / "img0.png")
    target, area = evaluate._degrade_for("area")(hr)
    assert np.array_equal(target, hr)
    assert area.shape == (24, 32, 3) and area.dtype == np.uint8
    assert np.abs(area.astype(int) - halve(hr).astype(int)).max() <= 1  # the 2×2 mean
    _, cubic = evaluate._degrade_for("bicubic")(hr)
    assert cubic.shape == (24, 32, 3) and not np.array_equal(cubic, area)
    _, lossy = evaluate._degrade_for("lossy")(hr)
    assert not np.array_equal(lossy, area)
    first, again = evaluate._degrade_for("webcam")(hr), evaluate._degrade_for("webcam")(hr)
    assert np.array_equal(first[1], again[1])  # seeded by the image: the same each run


def test_frames_of_a_still_scene_differ_by_their_noise_only() -> None:
    hr = scene(64, 48, 0)
    _, frames = evaluate._degrade_for("noisy", 3)(hr)
    _, single = evaluate._degrade_for("noisy")(hr)
    assert frames.shape == (3, 24, 32, 3) and np.array_equal(frames[0], single)
    assert not np.array_equal(frames[1], frames[0]) and not np.array_equal(frames[2], frames[1])
    assert np.abs(frames[1].astype(int) - frames[0]).mean() < 8  # the same scene
    _, still = evaluate._degrade_for("area", 3)(hr)
    assert all(np.array_equal(frame, still[0]) for frame in still)


def test_frames_reach_the_outputs_as_one_stack_and_the_report_says_so(
        folder: Path, tmp_path: Path, fake_open: FakeOpen) -> None:
    out_json, out_md = tmp_path / "r.json", tmp_path / "r.md"
    assert main(["--images", str(folder), "--frames", "3", "--json", str(out_json),
                 "--md", str(out_md)]) == 0
    assert json.loads(out_json.read_text())["frames"] == 3
    assert "the last of 3 frames of a still scene" in out_md.read_text()
    assert {shape[0] for shape in fake_open.outputs_for.seen} == {3}


def test_a_pan_needs_frames_and_room(folder: Path, tmp_path: Path, fake_open: FakeOpen,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--images", str(folder), "--pan", "1"]) == 2
    assert "--pan" in capsys.readouterr().err
    assert main(["--images", str(folder), "--frames", "40", "--pan", "8"]) == 2
    assert "too far" in capsys.readouterr().err
    assert fake_open.calls == []  # refused before any model was loaded
    out_md = tmp_path / "r.md"
    assert main(["--images", str(folder), "--frames", "3", "--pan", "0.5",
                 "--md", str(out_md)]) == 0
    assert "3 frames of a scene the camera pans 0.5 px a frame across" in out_md.read_text()


def test_a_sway_needs_frames_and_is_one_motion_with_a_pan(
        folder: Path, tmp_path: Path, fake_open: FakeOpen,
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--images", str(folder), "--sway", "1"]) == 2
    assert "--sway" in capsys.readouterr().err
    assert main(["--images", str(folder), "--frames", "3", "--sway", "1",
                 "--pan", "1"]) == 2
    assert "one motion at a time" in capsys.readouterr().err
    assert main(["--images", str(folder), "--frames", "3", "--sway", "5"]) == 2
    assert "0 … 4 px" in capsys.readouterr().err
    assert fake_open.calls == []  # refused before any model was loaded
    out_md = tmp_path / "r.md"
    assert main(["--images", str(folder), "--frames", "3", "--sway", "0.5",
                 "--md", str(out_md), "--json", str(tmp_path / "r.json")]) == 0
    assert "3 frames of a scene whose middle (the person) sways 0.5 px either way" \
        in out_md.read_text()
    assert json.loads((tmp_path / "r.json").read_text())["sway"] == 0.5


def test_a_zoom_or_an_exposure_ramp_needs_frames_and_a_zoom_is_one_motion(
        folder: Path, fake_open: FakeOpen, capsys: pytest.CaptureFixture[str]) -> None:
    images = ["--images", str(folder)]
    assert_refused(capsys, [*images, "--zoom", "1"], "--zoom zooms the camera",
                   "--frames 2 or more")
    assert_refused(capsys, [*images, "--exposure", "-2"], "--exposure ramps",
                   "--frames 2 or more")
    assert_refused(capsys, [*images, "--frames", "3", "--zoom", "1", "--pan", "1"],
                   "--pan, --sway and --zoom: one motion at a time")
    assert_refused(capsys, [*images, "--frames", "3", "--zoom", "1", "--sway", "1"],
                   "one motion at a time")
    for flag, value, needle in (("--zoom", "3.5", "0 … 3 % a frame"),
                                ("--zoom", "-1", "0 … 3 % a frame"),
                                ("--exposure", "-11", "-10 … 10 % a frame"),
                                ("--exposure", "nan", "-10 … 10 % a frame"),
                                ("--exposure", "lots", "not a number")):
        assert main([*images, "--frames", "3", flag, value]) == 2
        assert needle in capsys.readouterr().err
    assert fake_open.calls == []  # refused before any model was loaded


@pytest.mark.parametrize(("argv", "note"), [
    (["--zoom", "1"], "the last of 16 frames of a scene the camera zooms in on 1 % a frame"),
    (["--zoom", "0.5", "--exposure", "3"],
     "16 frames of a scene the camera zooms in on 0.5 % a frame, brightening 3 % a frame"),
    (["--pan", "1", "--exposure", "-2", "--repeat", "2"],
     "16 frames of a scene the camera pans 1 px a frame across, darkening 2 % a frame, "
     "each sent 2 times in a row"),
    (["--exposure", "2.5"], "the last of 16 frames of a still scene, brightening 2.5 % a frame"),
])
def test_a_zoom_and_an_exposure_ramp_are_in_the_report(
        folder: Path, tmp_path: Path, fake_open: FakeOpen, argv: list[str], note: str) -> None:
    out_md, out_json = tmp_path / "r.md", tmp_path / "r.json"
    assert main(["--images", str(folder), "--frames", "16", *argv, "--md", str(out_md),
                 "--json", str(out_json)]) == 0
    assert note in out_md.read_text()
    report = json.loads(out_json.read_text())
    asked = dict(zip(argv[::2], map(float, argv[1::2]), strict=True))
    assert (report["zoom"], report["exposure"]) == (asked.get("--zoom", 0.0),
                                                    asked.get("--exposure", 0.0))


def test_degrade_all_carries_the_zoom_and_the_exposure(
        folder: Path, tmp_path: Path, fake_open: FakeOpen) -> None:
    out_md, out_json = tmp_path / "all.md", tmp_path / "all.json"
    assert main(["--images", str(folder), "--degrade", "all", "--frames", "4", "--zoom", "2",
                 "--exposure", "-1", "--md", str(out_md), "--json", str(out_json)]) == 0
    report = json.loads(out_json.read_text())
    assert (report["zoom"], report["exposure"]) == (2.0, -1.0)
    assert all((sub["zoom"], sub["exposure"]) == (2.0, -1.0)
               for sub in report["suites"].values())
    assert "Each: the last of 4 frames of a scene the camera zooms in on 2 % a frame, " \
        "darkening 1 % a frame (`--frames`)." in out_md.read_text()


def test_repeated_frames_are_each_frame_again_bit_for_bit() -> None:
    hr = scene(64, 48, 0)
    _, frames = evaluate._degrade_for("noisy", 3)(hr)
    _, sent = evaluate._degrade_for("noisy", 3, repeat=2)(hr)
    assert sent.shape == (6, 24, 32, 3)
    assert all(np.array_equal(sent[2 * i], frames[i]) and np.array_equal(sent[2 * i + 1],
                                                                        frames[i])
               for i in range(3))


def test_a_repeat_needs_frames_and_the_report_says_so(
        folder: Path, tmp_path: Path, fake_open: FakeOpen,
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--images", str(folder), "--repeat", "2"]) == 2
    assert "--repeat" in capsys.readouterr().err
    assert main(["--images", str(folder), "--frames", "3", "--repeat", "5"]) == 2
    assert "at most 4" in capsys.readouterr().err
    assert fake_open.calls == []  # refused before any model was loaded
    out_md, out_json = tmp_path / "r.md", tmp_path / "r.json"
    assert main(["--images", str(folder), "--frames", "3", "--repeat", "2", "--sway", "1",
                 "--md", str(out_md), "--json", str(out_json)]) == 0
    assert "the last of 3 frames of a scene whose middle (the person) sways 1 px either " \
        "way, each sent 2 times in a row" in out_md.read_text()
    assert json.loads(out_json.read_text())["repeat"] == 2
    assert {shape[0] for shape in fake_open.outputs_for.seen} == {6}


def test_processor_outputs_run_frames_as_one_video(folder: Path) -> None:
    """The real processor, a noisy still scene: the denoiser sees the frames one after
    another, so the last output differs from the same frame's output alone."""
    pytest.importorskip("localsr_cam.process.processor")
    hr = scene(256, 192, 1)
    _, frames = evaluate._degrade_for("lowlight", 12)(hr)

    class Told(evaluate.ImageProgress):
        def __init__(self) -> None:
            super().__init__(enabled=False)
            self.frames: list[tuple[str, int, int]] = []

        def frame(self, method: str, done: int, total: int) -> None:
            self.frames.append((method, done, total))

    told = Told()
    with evaluate.processor_outputs("bicubic", "auto", "cpu", progress=told) as outputs_for:
        video = outputs_for(frames)["full"][0]
        alone = outputs_for(frames[-1])["full"][0]
    assert video.shape == alone.shape == (192, 256, 3)
    assert not np.array_equal(video, alone)
    assert told.frames[-1] == ("full", 12, 12) and len(told.frames) == 24  # the bar says


def test_the_command_line_offers_every_degradation_and_only_those() -> None:
    from localsr_cam.cli.evaluate import DEGRADE_CHOICES
    from localsr_cam.measure.degrade import SUITE_NAMES

    assert tuple(SUITE_NAMES) == DEGRADE_CHOICES


def test_the_help_says_the_sway_s_own_period() -> None:
    from localsr_cam.cli.evaluate import SWAY_PERIOD
    from localsr_cam.measure import filming

    assert filming.SWAY_PERIOD == SWAY_PERIOD


def test_processor_outputs_with_the_bicubic_model(folder: Path) -> None:
    """The real FrameProcessor wiring; ``bicubic`` needs no model file."""
    pytest.importorskip("localsr_cam.process.processor")
    with evaluate.processor_outputs("bicubic", "auto", "cpu") as outputs_for:
        report = evaluate_folder(folder, outputs_for)
    for method in ("full", "local"):
        assert report["percent_increase"][method] == {"psnr": 0.0, "ssim": 0.0, "uqi": 0.0}


def test_masks_are_8bit_pngs_at_each_images_own_size(folder: Path, tmp_path: Path,
                                                      fake_open: FakeOpen) -> None:
    masks = tmp_path / "masks"
    assert main(["--images", str(folder), "--masks", str(masks)]) == 0
    assert sorted(p.name for p in masks.iterdir()) == ["img0.png", "img1.png", "img2.png"]
    for i, (width, height) in enumerate(SIZES):
        written = cv2.imread(str(masks / f"img{i}.png"), cv2.IMREAD_UNCHANGED)
        assert written.dtype == np.uint8 and written.shape == (height, width)
        lr = halve(scene(width, height, i)[: height // 2 * 2, : width // 2 * 2])
        want = cv2.resize(lr_mask(lr), (width // 2 * 2, height // 2 * 2))
        even = written[: height // 2 * 2, : width // 2 * 2]
        assert np.abs(even.astype(int) - np.rint(want * 255)).max() <= 1
        assert written.max() == round(0.9 * 255) and written.min() == 0
        if width % 2:  # the odd column the even crop dropped repeats its neighbour
            assert np.array_equal(written[:, -1], written[:, -2])


def test_no_mask_writes_an_all_black_png(tmp_path: Path) -> None:
    from localsr_cam.measure.evaluate import mask_png

    assert not mask_png(None, (9, 7)).any() and mask_png(None, (9, 7)).shape == (7, 9)


def test_masks_refused_when_two_images_share_a_stem(folder: Path, tmp_path: Path,
                                                    fake_open: FakeOpen,
                                                    capsys: pytest.CaptureFixture[str]
                                                    ) -> None:
    cv2.imwrite(str(folder / "img0.bmp"), scene(32, 32, 9))
    assert_refused(capsys, ["--images", str(folder), "--masks", str(tmp_path / "m")],
                   "img0")
    assert fake_open.calls == []
