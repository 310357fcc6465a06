"""localsr-cam bench: the report's keys, ratios, files and bad input."""

from __future__ import annotations

import json

import pytest

from localsr_cam.cli.main import main as cli_main
from localsr_cam.measure.bench import plain_flashes, ratios, summarize
from localsr_cam.pipeline.threads import FrameRecord
from localsr_cam.zoo.artifacts import engines_dir

needs_fast = pytest.mark.skipif(not (engines_dir() / "fast_unet.onnx").exists()
                                or not (engines_dir() / "selfie_landscape.onnx").exists(),
                                reason="models not prepared (run `make models`)")


def main(argv: list[str]) -> int:
    return cli_main(["bench", *argv])


def records(n: int, latency: float = 10.0) -> list[FrameRecord]:
    return [FrameRecord(i, latency + i % 3, 0.01 * i, {"upscale": 2.0, "blend": 1.0}, 0.25)
            for i in range(n)]


def test_summarize_figures_from_records():
    figures = summarize(records(101))
    assert figures["fps"] == pytest.approx(100.0)
    assert figures["latency_ms"]["p50"] == pytest.approx(11.0)
    assert figures["stages_ms"] == {"upscale": 2.0, "blend": 1.0}
    assert figures["foreground_fraction"] == pytest.approx(0.25)
    assert "soak" not in figures


def test_soak_figures_compare_first_and_last_thousand():
    recs = records(1000, 10.0) + records(1000, 20.0)
    recs = [FrameRecord(i, r.latency_ms, 0.01 * i, r.stages_ms, r.foreground)
            for i, r in enumerate(recs)]
    soak = summarize(recs)["soak"]
    assert soak["p95_first_1000_ms"] == pytest.approx(12.0)
    assert soak["p95_last_1000_ms"] == pytest.approx(22.0)
    assert soak["p95_last_over_first"] == pytest.approx(22 / 12, abs=1e-3)


def test_ratios_between_modes():
    local = summarize(records(11))
    full = {**local, "stages_ms": {"upscale": 8.0}, "fps": 25.0}
    out = ratios({"local": local, "full": full})
    assert out["local_over_full_upscale_ms"] == pytest.approx(0.25)
    assert out["local_over_full_sr_ms"] is None  # no SR run time recorded
    out = ratios({"local": {**local, "stages_ms": {"upscale": 1.0, "sr": 6.0}},
                  "full": {**full, "stages_ms": {"upscale": 9.0, "sr": 12.0}}})
    assert out["local_over_full_sr_ms"] == pytest.approx(0.5)
    assert out["local_over_full_upscale_ms"] == pytest.approx(1 / 9, abs=1e-3)
    assert out["local_over_full_fps"] == pytest.approx(local["fps"] / 25.0, abs=1e-3)


def test_bicubic_bench_writes_json_markdown_and_plot(tmp_path, capsys):
    paths = {ext: tmp_path / f"bench.{ext}" for ext in ("json", "md", "png")}
    code = main(["--mode", "bicubic", "--frames", "20", "--warmup", "3", "--input", "96x54",
                 "--no-progress", "--json", str(paths["json"]), "--md", str(paths["md"]),
                 "--plot", str(paths["png"])])
    assert code == 0
    report = json.loads(paths["json"].read_text())
    for key in ("source", "input", "output", "backend", "model", "segmenter", "frames",
                "modes", "ratios", "rss_mb"):
        assert key in report
    assert report["input"] == [96, 54] and report["output"] == [192, 108]
    mode = report["modes"]["bicubic"]
    assert mode["fps"] > 0 and mode["frames"] == 20
    assert all(isinstance(mode["latency_ms"][q], float) for q in ("p50", "p95", "p99"))
    assert {"capture", "background", "output"} <= set(mode["stages_ms"])
    assert report["rss_mb"]["end"] > 0
    assert mode["rss_mb"]["after_warmup"] > 0 and isinstance(mode["rss_mb"]["growth_pct"],
                                                              float)
    assert "| bicubic |" in paths["md"].read_text()
    assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| bicubic |" in capsys.readouterr().out


@needs_fast
def test_all_modes_side_by_side_with_ratios(tmp_path):
    out = tmp_path / "all.json"
    assert main(["--mode", "all", "--frames", "12", "--warmup", "3", "--input", "320x180",
                 "--no-progress", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert set(report["modes"]) == {"local", "full", "bicubic"}
    assert report["modes"]["local"]["foreground_fraction"] > 0.05
    assert report["modes"]["local"]["stages_ms"]["upscale"] > 0
    assert report["ratios"]["local_over_full_upscale_ms"] > 0
    # the SR engine's own time, on the worker: at least the wait for it after segmentation
    local_stages = report["modes"]["local"]["stages_ms"]
    assert local_stages["sr"] > 0 and report["ratios"]["local_over_full_sr_ms"] > 0


@needs_fast
def test_flicker_figure_and_estimate_stage(tmp_path, capsys):
    out = tmp_path / "local.json"
    assert main(["--mode", "local", "--frames", "6", "--warmup", "2", "--input", "320x180",
                 "--no-progress", "--json", str(out), "--flicker", "8"]) == 0
    report = json.loads(out.read_text())
    flicker = report["flicker"]
    assert flicker["frames"] == 6 and flicker["region_fraction"] > 0.05
    assert flicker["ratio"] == pytest.approx(flicker["ours_std"] / flicker["bicubic_std"],
                                             rel=1e-3)
    assert flicker["bicubic_std"] > 0.5  # the noise is there to be measured
    local = report["modes"]["local"]
    assert local["stages_ms"]["estimate"] > 0
    # read on one frame in two (the others keep a channel): the table gives what it
    # costs a frame, the mean over all frames
    assert local["stages_mean_ms"]["estimate"] > 0
    printed = capsys.readouterr().out
    assert "estimate ms/frame" in printed and "find ms/frame" in printed
    # the estimator's own cost, CPU time a frame, said beside the table
    assert local["estimate_cpu_ms"] > 0 and "ms CPU a frame (goal ≤ 0.5)" in printed
    assert "Flicker (static scene" in printed
    if report["backend"] == "cpu":  # the SR net's arithmetic is said
        assert report["precision"] == "int8" and "SR in int8" in printed
    # unpaced: frames one after another, two threads a network (one when live)
    assert report["threads"] == 2 and "2 threads a network" in printed


def test_noise_frames_and_temporal_std():
    import numpy as np

    from localsr_cam.measure.flicker import noisy_frames, temporal_std

    clean = np.full((40, 50, 3), 128, np.uint8)
    frames = noisy_frames(clean, 30, sigma=4.0)
    region = np.ones((40, 50), bool)
    assert not np.array_equal(frames[0], frames[1])
    assert 2.0 < temporal_std(frames, region) < 4.5  # luma 4, chroma less, per channel
    assert temporal_std([clean] * 5, region) == 0.0


def test_the_flicker_figure_is_the_nets_own_unless_the_denoiser_is_asked_for():
    """An SR that is plain bicubic shimmers exactly as bicubic does (ratio 1): the
    temporal denoiser stays off for the figure; asked for, it averages the noise away."""
    from localsr_cam.config import ModelConfig, PipelineConfig
    from localsr_cam.measure.flicker import measure_flicker
    from tests.fakes import BicubicSR, DiscSegmenter, EngineBox

    config = PipelineConfig(model=ModelConfig(model="fast", backend="cpu"))
    figures = {denoise: measure_flicker(
        config, (160, 96), frames=24, sigma=6.0, denoise=denoise,
        engine_factory=EngineBox(DiscSegmenter((0.5, 0.5), 0.3), BicubicSR()))
        for denoise in (False, True)}
    assert figures[False]["ratio"] == pytest.approx(1.0, abs=0.02)
    assert figures[True]["ratio"] < 0.7


def test_no_flicker_figure_from_an_sr_that_fails():
    """An SR failing on the scene falls back to the plain upscale, which shimmers as
    bicubic does: that ratio (1.0) is not the net's, so there is no figure."""
    from localsr_cam.config import ModelConfig, PipelineConfig
    from localsr_cam.errors import ModelError
    from localsr_cam.measure.flicker import measure_flicker
    from tests.fakes import BicubicSR, DiscSegmenter, EngineBox

    config = PipelineConfig(model=ModelConfig(model="fast", backend="cpu"))
    with pytest.raises(ModelError, match="fell back"):
        measure_flicker(config, (160, 96), frames=8,
                        engine_factory=EngineBox(DiscSegmenter((0.5, 0.5), 0.3),
                                                 BicubicSR(fail=True)))


def test_unwritable_json_fails_before_work(tmp_path, capsys):
    code = main(["--mode", "bicubic", "--json", str(tmp_path / "no" / "such" / "dir.json")])
    assert code == 2
    err = capsys.readouterr().err
    assert "cannot write" in err and "Traceback" not in err


@pytest.mark.parametrize("argv", [["--frames", "0"], ["--input", "0x0"], ["--mode", "x"],
                                  ["--warmup", "-1"]])
def test_bad_flags_exit_2(argv, capsys):
    assert main(argv) == 2
    assert "error" in capsys.readouterr().err


def test_frames_dropped_in_the_warm_up_are_reported_apart(tmp_path, monkeypatch, capsys):
    """The figures come from the frames after the warm-up; so do the frames dropped
    (the engines' first runs drop a few: in the room under load, 12 of 14–18 fell in
    the first second). Those of the warm-up are reported apart, not lost."""
    from localsr_cam.measure import bench
    from localsr_cam.pipeline.threads import Pipeline

    class StartUpDrops(Pipeline):
        def dropped(self) -> int:  # four frames lost while the first ones were written
            output = self._output
            return 0 if output is None else min(output.frames, 4)

    monkeypatch.setattr(bench, "Pipeline", StartUpDrops)
    path = tmp_path / "bench.json"
    assert main(["--mode", "bicubic", "--frames", "10", "--warmup", "6", "--input",
                 "96x54", "--no-progress", "--json", str(path)]) == 0
    figures = json.loads(path.read_text())["modes"]["bicubic"]
    assert (figures["dropped"], figures["dropped_in_warmup"]) == (0, 4)
    assert "| 0 (+4 warm-up) |" in capsys.readouterr().out


def test_a_person_shown_plain_after_sr_counts_as_one_flash_a_run():
    """`..FF..FF` is two flashes; frames without anyone, at `plain`, or before any SR
    was shown are none."""
    kinds = ["none", "none", "fresh", "none", "none", "fresh", "late", "none", "reused",
             "none", "fresh", "none"]
    people = [1] * 9 + [0, 1, 1]  # the tenth frame has nobody in it
    levels = ["full"] * 11 + ["plain"]
    recs = [FrameRecord(i, 10.0, i / 30, {}, 0.25, level, sr, count)
            for i, (sr, count, level) in enumerate(zip(kinds, people, levels, strict=True))]
    assert plain_flashes(recs) == 2  # frames 3–4 and frame 7
    figures = summarize(recs)
    assert figures["plain_flashes_per_min"] == pytest.approx(2 * 60 / (11 / 30), abs=0.1)
