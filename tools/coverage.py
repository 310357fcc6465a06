"""How many people does the mask cover? Group scenes from ``../shared/data/people``.

Builds group scenes (default 40, 640×360) from the people in the photos of
``../shared/data/people``: each person is a soft cut-out of head and upper body around
a face box checked by hand (:data:`PEOPLE`; the boxes are what the full-range face
detector found on the full-size photos, each one looked at), scaled so the face is
20–60 px tall, 2–12 people a scene over a backdrop from the photos without people,
further people drawn behind nearer ones, about a quarter of them at the frame's edge
(their face within a face height of it, up to 30 % of the face outside). No face may
be hidden by more than 20 % behind someone in front.

Each scene is fed to the real processor as a still clip of ``--frames`` frames (the
finder scans a few tiles a frame, tracks confirm, ``auto`` decides), with the plain
bicubic model and a blurred background so that only the mask is made. Coverage: the
share of people whose face is at least 24 px tall (inside the frame) with at least
half of their face box inside the mask (mask ≥ 0.5). Goal: ≥ 90 %.

    .venv/bin/python tools/coverage.py --segmenters auto people selfie-landscape \\
        --json coverage.json --md coverage.md --figure coverage.png

Also times the finder's parts on this machine (``--timing``): one face-detector tile,
one person crop through the selfie segmenter, and the close-up whole-frame selfie
step for reference, interleaved so the ratios hold on a busy machine.

The photos are data, not part of the product: nothing here is committed or needed at
run time by ``localsr_cam``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from localsr_cam.capture.room import CutOut, scaled

log = logging.getLogger("coverage")

def _find_data() -> Path:
    """``shared/data/people`` next to the repository or one of its parent folders."""
    here = Path(__file__).resolve().parent
    for folder in here.parents:
        candidate = folder / "shared" / "data" / "people"
        if candidate.is_dir():
            return candidate
    return here.parent.parent / "shared" / "data" / "people"


DATA = _find_data()
SIZE = (640, 360)
FACE_RANGE = (20.0, 60.0)
COUNT_RANGE = (2, 12)
COUNTED_FACE = 24.0
"""Only faces at least this tall (frame pixels, inside the frame) are counted."""
INSIDE = 0.5
"""A face is covered when at least this share of its box is inside the mask."""
EDGE_SHARE = 0.25
SIZE_BINS = ((20, 30), (30, 40), (40, 50), (50, 61))


@dataclasses.dataclass(frozen=True)
class Person:
    """A person in a photo: the file, a rotation to stand them upright (an OpenCV
    ``ROTATE_*`` code or ``None``) and their face box (x0, y0, x1, y1) in the upright
    photo."""

    photo: str
    rotate: int | None
    face: tuple[int, int, int, int]


PEOPLE = (
    Person("anne_helene.png", None, (140, 145, 232, 236)),
    Person("bar55.png", None, (254, 230, 384, 360)),
    Person("bar55.png", None, (344, 164, 473, 293)),
    Person("bar55.png", None, (567, 59, 643, 135)),
    Person("bar55.png", None, (15, 165, 86, 237)),
    Person("cold_water.png", None, (437, 188, 485, 236)),
    Person("grand_canyon_1.png", None, (132, 122, 199, 188)),
    Person("grand_canyon_1.png", None, (333, 186, 403, 257)),
    Person("grand_canyon_2.png", None, (334, 247, 409, 322)),
    Person("jesper_2.png", None, (226, 108, 539, 420)),
    Person("new_wave_1.png", cv2.ROTATE_90_CLOCKWISE, (336, 194, 444, 302)),
    Person("new_wave_2.png", None, (268, 183, 534, 449)),
    Person("pool_2.png", cv2.ROTATE_90_COUNTERCLOCKWISE, (223, 64, 283, 124)),
    Person("wayne.png", cv2.ROTATE_90_CLOCKWISE, (488, 294, 529, 335)),
    Person("wayne.png", cv2.ROTATE_90_CLOCKWISE, (166, 268, 220, 322)),
)
"""Hand-checked: the full-range detector's boxes (score ≥ 0.79) on the full-size photos
(wayne, pool_2 and new_wave_1 are stored sideways: turned upright first), each looked
at on the photo; faces under 40 px and unsure ones left out."""

BACKDROPS = ("blackie.png", "donna.png", "skagen.png", "skagen_2.png", "spiff.png",
             "spiff_2.png", "sunset.png", "snow.png")
"""Photos of the folder without people in them (the detector finds none at 0.6)."""


def cut_out(photo: np.ndarray, face: Sequence[float]) -> CutOut:
    """Head and upper body around ``face``: 4 face heights wide, 5 tall from 0.8 above
    the face, clipped to the photo, with a soft bust-shaped alpha."""
    x0, y0, x1, y1 = face
    height = y1 - y0
    left = max(0, round((x0 + x1) / 2 - 2.0 * height))
    top = max(0, round(y0 - 0.8 * height))
    right = min(photo.shape[1], round((x0 + x1) / 2 + 2.0 * height))
    bottom = min(photo.shape[0], round(y0 + 4.2 * height))
    image = photo[top:bottom, left:right].copy()
    rows, cols = image.shape[:2]
    yy, xx = np.mgrid[0:rows, 0:cols].astype(np.float32)
    cx = (x0 + x1) / 2 - left
    cy = (y0 + y1) / 2 - top
    ellipse = ((xx - cx) / (1.9 * height)) ** 2 + ((yy - cy - 1.6 * height)
                                                    / (2.4 * height)) ** 2
    alpha = np.clip((1.0 - ellipse) / 0.15, 0.0, 1.0).astype(np.float32)
    return CutOut(image, alpha, (x0 - left, y0 - top, x1 - left, y1 - top))


def backdrop(photo: np.ndarray, size: tuple[int, int], rng: np.random.Generator
             ) -> np.ndarray:
    """A random ``size`` window of ``photo`` scaled to cover it, uint8 H×W×3 BGR."""
    width, height = size
    scale = max(width / photo.shape[1], height / photo.shape[0]) * rng.uniform(1.0, 1.4)
    big = cv2.resize(photo, (round(photo.shape[1] * scale) + 1,
                             round(photo.shape[0] * scale) + 1), interpolation=cv2.INTER_AREA)
    x = int(rng.integers(0, big.shape[1] - width + 1))
    y = int(rng.integers(0, big.shape[0] - height + 1))
    return big[y:y + height, x:x + width].copy()


def _place(cut: CutOut, size: tuple[int, int], rng: np.random.Generator, at_edge: bool
           ) -> tuple[int, int]:
    """Top-left corner for ``cut`` so its face lands inside the frame (or, ``at_edge``,
    within a face height of an edge with up to 30 % of it outside)."""
    width, height = size
    fx0, fy0, fx1, fy1 = cut.face
    fw, fh = fx1 - fx0, fy1 - fy0
    if at_edge:
        side = rng.integers(0, 3)  # left, right, bottom
        out = rng.uniform(0.0, 0.3)
        if side == 0:
            face_x = -out * fw
            face_y = rng.uniform(0, height - 2 * fh)
        elif side == 1:
            face_x = width - (1 - out) * fw
            face_y = rng.uniform(0, height - 2 * fh)
        else:
            face_x = rng.uniform(0, width - fw)
            face_y = height - (1 - out) * fh
    else:
        face_x = rng.uniform(0, width - fw)
        face_y = rng.uniform(0, height - 2.0 * fh)
    return round(face_x - fx0), round(face_y - fy0)


def build_scene(people: Sequence[CutOut], backdrops: Sequence[np.ndarray],
                rng: np.random.Generator, size: tuple[int, int] = SIZE,
                count: int | None = None, tries: int = 60
                ) -> tuple[np.ndarray, list[tuple[float, float, float, float]]]:
    """One scene: (uint8 H×W×3 BGR, true face boxes in frame pixels, unclipped).

    ``count`` people (random in :data:`COUNT_RANGE` when ``None``), each a random
    cut-out at a random face size in :data:`FACE_RANGE`, drawn smallest (furthest)
    first; a placement that would hide more than 20 % of a face already drawn is
    tried again (a person who fits nowhere after ``tries`` is left out).
    """
    width, height = size
    count = count or int(rng.integers(COUNT_RANGE[0], COUNT_RANGE[1] + 1))
    frame = backdrop(backdrops[int(rng.integers(len(backdrops)))], size, rng)
    sizes = sorted(rng.uniform(*FACE_RANGE, size=count))
    faces: list[tuple[float, float, float, float]] = []
    for face_height in sizes:
        cut = scaled(people[int(rng.integers(len(people)))], float(face_height))
        if rng.random() < 0.5:
            cols = cut.image.shape[1]
            fx0, fy0, fx1, fy1 = cut.face
            cut = CutOut(cut.image[:, ::-1].copy(), cut.alpha[:, ::-1].copy(),
                         (cols - fx1, fy0, cols - fx0, fy1))
        at_edge = rng.random() < EDGE_SHARE
        for _ in range(tries):
            left, top = _place(cut, size, rng, at_edge)
            rows, cols = cut.alpha.shape
            if all(_hidden(face, cut.alpha, left, top) <= 0.2 for face in faces):
                break
        else:
            continue
        x0, y0 = max(0, left), max(0, top)
        x1, y1 = min(width, left + cols), min(height, top + rows)
        if x1 <= x0 or y1 <= y0:
            continue
        alpha = cut.alpha[y0 - top:y1 - top, x0 - left:x1 - left]
        person = cut.image[y0 - top:y1 - top, x0 - left:x1 - left]
        roi = frame[y0:y1, x0:x1]
        roi[...] = cv2.blendLinear(roi, np.ascontiguousarray(person), 1.0 - alpha,
                                   np.ascontiguousarray(alpha))
        fx0, fy0, fx1, fy1 = cut.face
        faces.append((left + fx0, top + fy0, left + fx1, top + fy1))
    return frame, faces


def _hidden(face: Sequence[float], alpha: np.ndarray, left: int, top: int) -> float:
    """Share of ``face``'s box that a cut-out (``alpha`` at ``left``, ``top``) covers
    with alpha ≥ 0.5."""
    x0, y0, x1, y1 = (round(v) for v in face)
    if x1 <= x0 or y1 <= y0:
        return 0.0
    rows, cols = alpha.shape
    ax0, ay0 = max(x0, left), max(y0, top)
    ax1, ay1 = min(x1, left + cols), min(y1, top + rows)
    if ax1 <= ax0 or ay1 <= ay0:
        return 0.0
    covered = (alpha[ay0 - top:ay1 - top, ax0 - left:ax1 - left] >= 0.5).sum()
    return float(covered) / ((x1 - x0) * (y1 - y0))


def score_faces(mask: np.ndarray | None, faces: Sequence[Sequence[float]],
                size: tuple[int, int] = SIZE) -> list[dict[str, Any]]:
    """Per face: its height inside the frame, the share of its box in the mask
    (≥ 0.5), whether it counts (≥ :data:`COUNTED_FACE` px) and is covered."""
    width, height = size
    out = []
    for face in faces:
        x0, y0 = max(0, round(face[0])), max(0, round(face[1]))
        x1, y1 = min(width, round(face[2])), min(height, round(face[3]))
        tall = max(0, y1 - y0)
        share = 0.0
        if mask is not None and x1 > x0 and y1 > y0:
            share = float((mask[y0:y1, x0:x1] >= 0.5).mean())
        out.append({"box": [round(float(v), 1) for v in face], "height": tall,
                    "inside": round(share, 3), "counted": tall >= COUNTED_FACE,
                    "covered": tall >= COUNTED_FACE and share >= INSIDE})
    return out


# -- running the processor ---------------------------------------------------------------


def load_people(data: Path) -> list[CutOut]:
    people = []
    for person in PEOPLE:
        photo = cv2.imread(str(data / person.photo))
        if photo is None:
            raise SystemExit(f"coverage: cannot read {data / person.photo}")
        if person.rotate is not None:
            photo = cv2.rotate(photo, person.rotate)
        people.append(cut_out(photo, person.face))
    return people


def load_backdrops(data: Path) -> list[np.ndarray]:
    images = [cv2.imread(str(data / name)) for name in BACKDROPS]
    return [image for image in images if image is not None]


def masks_for(scenes: Sequence[np.ndarray], segmenter: str, frames: int, backend: str
              ) -> tuple[list[np.ndarray | None], dict[str, float], list[str | None]]:
    """The mask after ``frames`` frames of each still scene, the mean stage times (ms a
    frame) and the path each scene ended on."""
    from localsr_cam.config import BlendConfig, ModelConfig, PipelineConfig
    from localsr_cam.frames import CapturedFrame
    from localsr_cam.process.processor import FrameProcessor

    config = PipelineConfig(model=ModelConfig(model="bicubic", segmenter=segmenter,
                                              backend=backend),
                            blend=BlendConfig(background="blur"))
    masks: list[np.ndarray | None] = []
    paths: list[str | None] = []
    stages: dict[str, list[float]] = {}
    with FrameProcessor(config) as processor:
        for number, scene in enumerate(scenes):
            processor.reset()
            processor.prepare((scene.shape[1], scene.shape[0]))
            out = None
            for index in range(frames):
                out = processor.process(CapturedFrame(scene, index, index / 30))
                for stage, ms in out.stages_ms.items():
                    stages.setdefault(stage, []).append(ms)
            assert out is not None
            masks.append(out.mask)
            paths.append(processor.path)
            log.info("%s: scene %d of %d", segmenter, number + 1, len(scenes))
    return masks, {k: float(np.mean(v)) for k, v in stages.items()}, paths


def summarize(scored: Sequence[Sequence[dict[str, Any]]]) -> dict[str, Any]:
    """Coverage over every counted face, and by face size."""
    faces = [face for scene in scored for face in scene if face["counted"]]
    by_size = {}
    for low, high in SIZE_BINS:
        chosen = [f for f in faces if low <= f["height"] < high]
        by_size[f"{low}-{min(high, 60)}"] = {
            "faces": len(chosen),
            "coverage": round(sum(f["covered"] for f in chosen) / len(chosen), 4)
            if chosen else None}
    return {"faces": len(faces), "covered": sum(f["covered"] for f in faces),
            "coverage": round(sum(f["covered"] for f in faces) / max(1, len(faces)), 4),
            "by_face_height": by_size}


# -- timing -------------------------------------------------------------------------------


def time_parts(backend: str, frames: int = 132) -> dict[str, float]:
    """What the people path's parts cost on a 640×360 room frame, interleaved frame by
    frame so the ratios hold on a busy machine: the face finder as the processor runs
    it (one tile every other frame: its mean over all frames), one person crop through
    the selfie segmenter, and the close-up whole-frame selfie step. Each in wall ms
    (median; the finder's mean) and in CPU ms of this process (``process_time``, all
    its threads: what it takes from the other jobs on the machine)."""
    import torch

    from localsr_cam.capture.room import RoomSource
    from localsr_cam.process.localize import MaskSmoother
    from localsr_cam.process.people import CropSegmenter, PeopleFinder, crop_for_face
    from localsr_cam.process.processor import FINDER_SCORE
    from localsr_cam.process.segment import Segmenter
    from localsr_cam.zoo.backends import open_engine

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the processor does on the CPU
    room = RoomSource(SIZE)
    room.open()
    from localsr_cam.process.faces import FaceFinder

    finder = FaceFinder(open_engine("face", backend, 2, None), score=FINDER_SCORE)
    crops = CropSegmenter(open_engine("selfie", backend, 2, None))
    people = PeopleFinder(finder, crops, MaskSmoother(0.0, 0.4, 0.6, 0, 1))
    whole = Segmenter("selfie-landscape", open_engine("selfie-landscape", backend, 2, None))
    crop = crop_for_face(room.faces(0)[2])
    wall: dict[str, list[float]] = {"finder": [], "person_crop": [], "closeup_selfie": []}
    cpu: dict[str, list[float]] = {name: [] for name in wall}
    warm = 8
    try:
        for index in range(frames + warm):
            tensor = torch.from_numpy(room.frame(index))
            for name, work in (("finder", lambda t=tensor: people.look(t)),
                               ("person_crop", lambda t=tensor: crops.segment(t, [crop])),
                               ("closeup_selfie", lambda t=tensor: whole(t))):
                started, cpu_started = time.perf_counter(), time.process_time()
                work()
                if index >= warm:
                    wall[name].append((time.perf_counter() - started) * 1000.0)
                    cpu[name].append((time.process_time() - cpu_started) * 1000.0)
    finally:
        people.close()
        whole.close()
        torch.set_num_threads(threads)
    out: dict[str, float] = {
        "finder_wall_ms_per_frame": round(float(np.mean(wall["finder"])), 3),
        "finder_cpu_ms_per_frame": round(float(np.mean(cpu["finder"])), 3),
        "finder_wall_ms_per_tile": round(2 * float(np.mean(wall["finder"])), 3),
    }
    for name in ("person_crop", "closeup_selfie"):
        out[f"{name}_wall_ms"] = round(float(np.median(wall[name])), 3)
        out[f"{name}_cpu_ms"] = round(float(np.median(cpu[name])), 3)
    assert people._schedule is not None
    out["tiles_per_scan"] = people._schedule.count
    out["frames_per_scan"] = people._schedule.frames_per_scan
    out["load_average_1min"] = round(os.getloadavg()[0], 2)
    return out


# -- report -------------------------------------------------------------------------------


def figure(path: Path, scenes: Sequence[np.ndarray], masks: Sequence[np.ndarray | None],
           scored: Sequence[Sequence[dict[str, Any]]], summaries: dict[str, Any],
           shown: int = 4) -> None:
    """PNG: a few scenes with the mask tinted and each face boxed (green covered, red
    missed, grey not counted), and coverage by face height per segmenter."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    chosen = sorted(range(len(scenes)), key=lambda i: -len(scored[i]))[:shown]
    fig = plt.figure(figsize=(14, 9))
    for slot, index in enumerate(chosen):
        picture = scenes[index].copy()
        mask = masks[index]
        if mask is not None:
            tint = np.zeros_like(picture)
            tint[:] = (255, 0, 255)
            weight = (np.clip(mask, 0, 1) * 0.45).astype(np.float32)
            picture = cv2.blendLinear(tint, picture, weight, 1.0 - weight)
        for face in scored[index]:
            colour = (0, 200, 0) if face["covered"] else (
                (0, 0, 255) if face["counted"] else (160, 160, 160))
            x0, y0, x1, y1 = (round(v) for v in face["box"])
            cv2.rectangle(picture, (x0, y0), (x1 - 1, y1 - 1), colour, 2)
        axis = fig.add_subplot(3, 2, slot + 1)
        axis.imshow(cv2.cvtColor(picture, cv2.COLOR_BGR2RGB))
        axis.set_axis_off()
        axis.set_title(f"scene {index}: {len(scored[index])} people", fontsize=9)
    bars = fig.add_subplot(3, 1, 3)
    bins = [f"{low}-{min(high, 60)}" for low, high in SIZE_BINS]
    width = 0.8 / max(1, len(summaries))
    for k, (name, summary) in enumerate(summaries.items()):
        values = [summary["by_face_height"][b]["coverage"] or 0.0 for b in bins]
        bars.bar(np.arange(len(bins)) + k * width, values, width,
                 label=f"{name} ({summary['coverage'] * 100:.1f} % overall)")
    bars.axhline(0.9, color="k", linestyle="--", linewidth=0.8)
    bars.set_xticks(np.arange(len(bins)) + width * (len(summaries) - 1) / 2, bins)
    bars.set(xlabel="face height (px, 640×360 frame)", ylabel="faces ≥ 50 % in the mask",
             ylim=(0, 1.05))
    bars.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def timing_text(timing: dict[str, float]) -> str:
    return (f"Timing on a room frame, interleaved (load average "
            f"{timing['load_average_1min']}): the face finder on the people path "
            f"{timing['finder_wall_ms_per_frame']:.2f} ms a frame wall "
            f"({timing['finder_cpu_ms_per_frame']:.2f} ms CPU; a full scan of "
            f"{timing['tiles_per_scan']:.0f} tiles takes {timing['frames_per_scan']:.0f} "
            f"frames; on the close-up path, one tile in 4 frames, half that); one person "
            f"crop {timing['person_crop_wall_ms']:.2f} ms wall "
            f"({timing['person_crop_cpu_ms']:.2f} CPU); the close-up whole-frame selfie "
            f"step {timing['closeup_selfie_wall_ms']:.2f} ms wall "
            f"({timing['closeup_selfie_cpu_ms']:.2f} CPU).")


def markdown(report: dict[str, Any]) -> str:
    lines = [f"{report['scenes']} scenes ({report['size'][0]}×{report['size'][1]}), "
             f"{report['people']} people, {report['counted']} with a face ≥ "
             f"{COUNTED_FACE:.0f} px; {report['frames']} frames a scene, backend "
             f"`{report['backend']}`.", "",
             "| segmenter | coverage | " + " | ".join(
                 f"faces {b} px" for b in report["bins"]) + " | find ms/frame | "
             "segment ms/frame |",
             "|---|---:|" + "---:|" * len(report["bins"]) + "---:|---:|"]
    for name, result in report["segmenters"].items():
        summary = result["summary"]
        cells = [f"{summary['by_face_height'][b]['coverage'] * 100:.1f} % "
                 f"({summary['by_face_height'][b]['faces']})"
                 if summary["by_face_height"][b]["coverage"] is not None else "–"
                 for b in report["bins"]]
        stages = result["stages_ms"]
        lines.append(f"| {name} | **{summary['coverage'] * 100:.1f} %** "
                     f"({summary['covered']}/{summary['faces']}) | " + " | ".join(cells)
                     + f" | {stages.get('find', 0.0):.2f} | {stages.get('segment', 0.0):.2f} |")
    if "timing_ms" in report:
        lines += ["", timing_text(report["timing_ms"])]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATA, help="the people photos")
    parser.add_argument("--scenes", type=int, default=40)
    parser.add_argument("--frames", type=int, default=90,
                        help="frames each still scene is shown for [default: 90]")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--segmenters", nargs="+", default=["auto", "people",
                                                            "selfie-landscape"])
    parser.add_argument("--backend", default="cpu")
    parser.add_argument("--timing", action="store_true", help="also time the parts")
    parser.add_argument("--timing-only", action="store_true",
                        help="only time the parts (no scenes)")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--md", type=Path)
    parser.add_argument("--figure", type=Path)
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(message)s")
    if not args.data.is_dir():
        sys.stderr.write(f"coverage: no photo folder at {args.data}\n")
        return 2
    if args.timing_only:
        sys.stdout.write(timing_text(time_parts(args.backend)) + "\n")
        return 0
    rng = np.random.default_rng(args.seed)
    people, backdrops = load_people(args.data), load_backdrops(args.data)
    built = [build_scene(people, backdrops, rng) for _ in range(args.scenes)]
    scenes = [scene for scene, _ in built]
    faces = [scene_faces for _, scene_faces in built]
    report: dict[str, Any] = {
        "scenes": len(scenes), "size": list(SIZE), "frames": args.frames,
        "backend": args.backend, "seed": args.seed,
        "people": sum(len(f) for f in faces),
        "counted": sum(s["counted"] for s in score_faces(None, [x for f in faces for x in f])),
        "bins": [f"{low}-{min(high, 60)}" for low, high in SIZE_BINS], "segmenters": {}}
    figure_masks: list[np.ndarray | None] = []
    figure_scores: list[list[dict[str, Any]]] = []
    for segmenter in args.segmenters:
        masks, stages, paths = masks_for(scenes, segmenter, args.frames, args.backend)
        scored = [score_faces(mask, scene_faces) for mask, scene_faces in zip(masks, faces,
                                                                             strict=True)]
        report["segmenters"][segmenter] = {
            "summary": summarize(scored), "stages_ms": {k: round(v, 3)
                                                        for k, v in stages.items()},
            "paths": paths, "scenes": scored}
        if not figure_masks:
            figure_masks, figure_scores = masks, scored
        log.info("%s: coverage %.3f", segmenter, report["segmenters"][segmenter]["summary"]
                 ["coverage"])
    if args.timing:
        report["timing_ms"] = time_parts(args.backend)
    text = markdown(report)
    sys.stdout.write(text)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n")
    if args.md:
        args.md.write_text(text)
    if args.figure:
        figure(args.figure, scenes, figure_masks, figure_scores,
               {k: v["summary"] for k, v in report["segmenters"].items()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
