"""``localsr-cam eval``: reproduce the paper's evaluation on a folder of HR images.

For every image: the HR image is cropped to even size; its LR input comes from the camera
degradation model that training uses (:mod:`localsr_cam.measure.degrade`), under one
named suite (``--degrade area|bicubic|webcam|lossy|mjpeg|lowlight|soft|noisy|sharpened``,
each seeded per image) or all of them (``all``); three 2× outputs are scored against the HR image:

- ``bicubic``: ``cv2.resize`` with ``INTER_CUBIC``, the baseline;
- ``full``: the SR model on the whole frame;
- ``local``: the paper's method, the SR model on the person only, blended over the plain
  upscale; its mask comes from the segmenter run on the LR image (as in the paper).

Metrics (see :mod:`localsr_cam.measure.metrics`): ``psnr``, ``ssim``, ``uqi`` on the whole image;
``psnr_fg`` and ``ssim_fg`` on the foreground (the LR mask upscaled bilinearly to HR
size, then ≥ 0.5); ``psnr_boundary`` on the ±8 px band around the mask edge at HR size,
where the paper's pasted result showed seams. All three methods are scored on the same
mask. When no mask is available (e.g. ``--model bicubic``, where the processor runs no
segmenter) or it is empty, the foreground figures are ``null`` and
``foreground_fraction`` is 0. ``percent_increase`` is the paper's Algorithm 1 against
the bicubic baseline.

The report is JSON (``--json``), a markdown table laid out like the paper's tables
(``--md``) and, with ``--figures DIR``, one comparison PNG per image, a 1:1 crop of the
face region (HR | bicubic | ours, zoomed 2× with whole pixels) and a bar chart of the
percentage increases. With ``--degrade all`` every suite gets its own report (and
figure subfolder) and a summary table: method × degradation, mean PSNR gain over
bicubic and the worst image. ``--masks DIR`` writes the mask the localized method used
for each image, as an 8-bit PNG at the image's own size with the image's stem (one
subfolder per suite with ``--degrade all``), so anyone can check what was found. Output
paths are checked before any model is loaded.

``--frames N`` films each photo N times, as a camera films a still scene: the suite's
parameters each time, fresh sensor noise each frame, the frames run through each
processor in order as one video (the temporal denoiser and the smoothed degradation
levels see them as a camera's), and the last frame's outputs are scored (against
bicubic of the last frame). What a photo alone cannot show — a dim MJPEG webcam's JPEG
level read 0.00 once the denoiser engaged (BENCHMARKS.md, Quality, "Session 19") — shows
here. ``--pan PX`` with it: the camera pans PX LR pixels a frame to the right and half
that down (fractions too), so each frame is a window of the photo a little further on
and the last frame is scored against its own window; what a still scene cannot show — a
pan's frame differences read as noise, and moving texture smeared by the denoiser
(BENCHMARKS.md, Quality, "Session 20") — shows there. ``--sway PX`` instead: the camera
holds still and the middle of the photo (an ellipse, the person) sways up to PX LR
pixels either way over the rest, a pixel or less a frame, as people on a call do; what
neither a still scene nor a pan shows — an earlier frame's SR reused, misplaced, over
a person who moved by less than a pixel (BENCHMARKS.md, Quality, "Session 21") — shows
there. ``--zoom PCT`` instead: the camera's auto framing (a digital zoom that follows the
people) zooms in PCT % a frame about the photo's middle, up to the last frame, which is
the photo itself; what a still scene cannot show — a zoom is no shift, so the noise
readings took it for more noise and the temporal denoiser took the moving texture as it
came (BENCHMARKS.md, Quality, "Session 23") — shows there. ``--exposure PCT`` with any
of them: the camera's auto exposure ramps PCT % a frame (earlier frames darker, or
brighter when PCT < 0) up to the last, which is as it was; what a steady exposure
cannot show — a ramp scales the detail, which the temporal denoiser's average held
behind, and the SR of a darker frame was reused (BENCHMARKS.md, Quality, "Session 23")
— shows there. ``--repeat K`` with any of them: each frame reaches the processor K times in a
row, bit for bit (a dim webcam that halves its frame rate but keeps its stream's, a
virtual camera fed by a slower source); what distinct frames cannot show — a repeat's
zero difference read as no noise (BENCHMARKS.md, Quality, "Session 22") — shows there.
The frames are made by :mod:`~localsr_cam.measure.filming`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm import tqdm

from localsr_cam.capture.images import (
    crop_even,
    list_images,
    load_image,
    refuse_photo_clobbers,
)
from localsr_cam.errors import ConfigError, LocalSRError, ModelError, SinkError
from localsr_cam.measure import metrics
from localsr_cam.measure.degrade import SUITE_NAMES
from localsr_cam.measure.figures import ImageRecord, Scores
from localsr_cam.measure.filming import filmed_views, pan_window
from localsr_cam.measure.strip_metrics import STRIPS_ABOVE_PIXELS, score_in_strips, strips
from localsr_cam.paths import (
    check_writable_file,
    prepare_output_folder,
    write_atomically,
)
from localsr_cam.zoo.registry import DEFAULT_SR_MODEL

log = logging.getLogger(__name__)

METHODS = ("bicubic", "full", "local")
SR_METHODS = ("full", "local")
WHOLE_METRICS = ("psnr", "ssim", "uqi")
METRICS = (*WHOLE_METRICS, "psnr_fg", "ssim_fg", "psnr_boundary")
DEGRADE_CHOICES = SUITE_NAMES
"""The suites of :mod:`localsr_cam.measure.degrade`, and ``all``."""
VIDEO_SETTINGS = {"frames": 1, "pan": 0.0, "sway": 0.0, "zoom": 0.0, "exposure": 0.0,
                  "repeat": 1}
"""How ``eval --frames`` films each photo (:class:`EvalOptions`' fields, and
:func:`_degrade_for`'s), with what each is when not given: the photo alone."""

Outputs = Mapping[str, tuple[np.ndarray, np.ndarray | None]]
"""``{"full"|"local": (sr, mask)}``: ``sr`` uint8 2H×2W×3 BGR; ``mask`` float32 H×W in
[0, 1] at LR size, or ``None`` where that method ran no segmenter."""
OutputsFor = Callable[[np.ndarray], Outputs]
"""LR image (uint8 H×W×3 BGR, read-only for the callee) → :data:`Outputs`; or LR frames
(uint8 N×H×W×3, a still scene filmed N times) → the outputs of the last, the frames run
through the processor in order as a video."""
Degrade = Callable[[np.ndarray], "np.ndarray | tuple[np.ndarray, np.ndarray]"]
"""HR uint8 2H×2W×3 BGR → LR uint8 H×W×3 (or N×H×W×3 frames, ``eval --frames N``), or
(HR target, LR) when the degradation also changes the scene (exposure / white-balance
jitter)."""


# -- scoring -------------------------------------------------------------------------


def upscale_mask(mask: np.ndarray | None, size: tuple[int, int]) -> np.ndarray:
    """LR soft mask (float H×W, or ``None``) → bool mask at ``size`` = (width, height).

    Bilinear resize, then ≥ 0.5. ``None`` gives an all-False mask.
    """
    width, height = size
    if mask is None:
        return np.zeros((height, width), dtype=bool)
    if mask.ndim != 2:
        raise ValueError(f"mask must be H×W, got shape {mask.shape}")
    resized = cv2.resize(mask.astype(np.float32), (width, height),
                         interpolation=cv2.INTER_LINEAR)
    return np.asarray(resized >= metrics.MASK_THRESHOLD)


def score_output(hr: np.ndarray, sr: np.ndarray, fg: np.ndarray,
                 on_strip: Callable[[], None] | None = None) -> Scores:
    """All :data:`METRICS` of ``sr`` against ``hr`` (both uint8 H×W×3) with bool mask ``fg``.

    Images over :data:`~localsr_cam.strip_metrics.STRIPS_ABOVE_PIXELS` are scored a strip
    of rows at a time (the same figures, bounded memory); ``on_strip`` hears of each.
    """
    if hr.shape[0] * hr.shape[1] > STRIPS_ABOVE_PIXELS:
        return score_in_strips(hr, sr, fg, on_strip=on_strip)
    ssim, ssim_fg = metrics.ssim_with_masked(hr, sr, fg)
    return {
        "psnr": metrics.psnr(hr, sr),
        "ssim": ssim,
        "uqi": metrics.uqi(hr, sr),
        "psnr_fg": metrics.psnr_masked(hr, sr, fg),
        "ssim_fg": ssim_fg,
        "psnr_boundary": metrics.psnr_boundary(hr, sr, fg),
    }


def _check_output(method: str, image: np.ndarray, shape: tuple[int, ...]) -> None:
    if image.dtype != np.uint8 or image.shape != shape:
        raise ValueError(f"{method} output is {image.dtype} {image.shape}; "
                         f"expected uint8 {shape}")


class ImageProgress:
    """A progress bar per image (tqdm on stderr): one step per SR output and per strip
    of rows scored (see :func:`score_output`); the SR tiles of a big image show beside
    it. ``enabled``: ``None`` = only when stderr is a terminal."""

    def __init__(self, enabled: bool | None = None) -> None:
        self.enabled = enabled
        self._bar: Any = None

    def start(self, name: str, shape: tuple[int, ...]) -> None:
        self.close()
        height, width = shape[:2]
        scored = len(list(strips(height))) if height * width > STRIPS_ABOVE_PIXELS else 1
        total = len(SR_METHODS) + len(METHODS) * scored
        self._bar = tqdm(total=total, desc=name, unit="step", leave=False, mininterval=0,
                         disable=None if self.enabled is None else not self.enabled)

    def step(self) -> None:
        if self._bar is not None:
            self._bar.update(1)

    def tiles(self, done: int, total: int) -> None:
        if self._bar is not None:
            self._bar.set_postfix_str(f"SR tile {done}/{total}")

    def frame(self, method: str, done: int, total: int) -> None:
        """``eval --frames``: ``done`` of the ``total`` frames through ``method``."""
        if self._bar is not None:
            self._bar.set_postfix_str(f"{method}: frame {done}/{total}")

    def close(self) -> None:
        bar, self._bar = self._bar, None
        if bar is not None:
            bar.close()


def evaluate_one(path: Path, outputs_for: OutputsFor, degrade: Degrade,
                 progress: ImageProgress | None = None) -> ImageRecord:
    """Load, degrade, upscale three ways and score one image."""
    progress = progress or ImageProgress(enabled=False)
    loaded = load_image(path)
    hr = crop_even(loaded)
    progress.start(path.name, hr.shape)
    made = degrade(hr)
    if isinstance(made, tuple):
        hr, frames = made
    else:
        frames = made
    height, width = hr.shape[:2]
    if frames.dtype != np.uint8 or frames.shape[-3:] != (height // 2, width // 2, 3) \
            or frames.ndim not in (3, 4):
        raise ValueError(f"degrade gave {frames.dtype} {frames.shape} for HR {hr.shape}")
    try:
        produced = outputs_for(frames)
    except LocalSRError as exc:
        raise type(exc)(f"{path.name}: {exc}") from exc
    lr = frames if frames.ndim == 3 else frames[-1]  # the frame the outputs are of
    missing = [m for m in SR_METHODS if m not in produced]
    if missing:
        raise ValueError(f"outputs_for gave no {', '.join(missing)} output")
    outputs = {"bicubic": cv2.resize(lr, (width, height), interpolation=cv2.INTER_CUBIC)}
    for method in SR_METHODS:
        _check_output(method, produced[method][0], hr.shape)
        outputs[method] = produced[method][0]
        progress.step()
    mask = produced["local"][1]
    if mask is None:
        mask = produced["full"][1]
    fg = upscale_mask(mask, (width, height))
    scores = {method: score_output(hr, outputs[method], fg, on_strip=progress.step)
              for method in METHODS}
    if hr.shape[0] * hr.shape[1] <= STRIPS_ABOVE_PIXELS:
        for _ in METHODS:
            progress.step()
    progress.close()
    return ImageRecord(path.name, lr, hr, mask, outputs, scores, float(fg.mean()),
                       (loaded.shape[1], loaded.shape[0]))


def mask_png(mask: np.ndarray | None, size: tuple[int, int]) -> np.ndarray:
    """The mask used for an image as uint8 H×W (0–255) at the image's own ``size`` =
    (width, height): the LR mask (float32 h×w in [0, 1], or ``None`` = all 0) resized
    bilinearly to the even-cropped HR size, the odd last row/column (dropped by the
    crop) repeated."""
    width, height = size
    even_w, even_h = width - width % 2, height - height % 2
    if mask is None:
        return np.zeros((height, width), np.uint8)
    resized = cv2.resize(mask.astype(np.float32), (even_w, even_h),
                         interpolation=cv2.INTER_LINEAR)
    eight = np.rint(np.clip(resized, 0.0, 1.0) * 255.0).astype(np.uint8)
    return cv2.copyMakeBorder(eight, 0, height - even_h, 0, width - even_w,
                              cv2.BORDER_REPLICATE)


def _mean(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return float(np.mean(present)) if present else None


def summarize(images: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """``{"mean": {method: {metric: …}}, "percent_increase": {sr method: {metric: …}}}``
    from the per-image entries of a report.

    Means skip ``null`` figures (``null`` if all are). Percent increase is Algorithm 1
    on whole-image PSNR/SSIM/UQI against bicubic; ``null`` where it is undefined (a
    baseline score of 0).
    """
    mean = {m: {k: _mean([img["methods"][m][k] for img in images]) for k in METRICS}
            for m in METHODS}
    increase: dict[str, dict[str, float | None]] = {}
    for method in SR_METHODS:
        increase[method] = {}
        for key in WHOLE_METRICS:
            scores = [img["methods"][method][key] for img in images]
            baseline = [img["methods"]["bicubic"][key] for img in images]
            try:
                increase[method][key] = metrics.percent_increase(scores, baseline)
            except ValueError as exc:
                log.warning("no percent increase for %s %s: %s", method, key, exc)
                increase[method][key] = None
    return {"mean": mean, "percent_increase": increase}


def evaluate_images(paths: Sequence[Path], outputs_for: OutputsFor, degrade: Degrade, *,
                    settings: Mapping[str, Any] | None = None,
                    on_image: Callable[[ImageRecord], None] | None = None,
                    progress: bool | None = None,
                    image_progress: ImageProgress | None = None) -> dict[str, Any]:
    """Score every image; return the report (the JSON layout in the module notes).

    ``settings`` (``model``, ``segmenter``, ``degrade`` and the
    :data:`VIDEO_SETTINGS`, their defaults when not given) are copied into the report.
    ``on_image`` sees each image's record as it is done (figures are drawn there).
    ``progress``: tqdm bars on stderr (over the images, and one per image: see
    :class:`ImageProgress`, which ``image_progress`` may pass in to also hear of SR
    tiles); ``None`` = only when stderr is a terminal.
    """
    if not paths:
        raise ValueError("no images to evaluate")
    entries = []
    disable = None if progress is None else not progress
    per_image = image_progress or ImageProgress(progress)
    for path in tqdm(paths, desc="eval", unit="image", disable=disable):
        record = evaluate_one(path, outputs_for, degrade, per_image)
        height, width = record.hr.shape[:2]
        entries.append({"name": record.name, "size": [width, height],
                        "foreground_fraction": record.foreground_fraction,
                        "methods": record.scores})
        log.info("%s: psnr bicubic %.2f full %.2f local %.2f", record.name,
                 record.scores["bicubic"]["psnr"], record.scores["full"]["psnr"],
                 record.scores["local"]["psnr"])
        if on_image is not None:
            on_image(record)
    report: dict[str, Any] = {"images": entries, **summarize(entries)}
    for key in ("model", "segmenter", "degrade"):
        report[key] = (settings or {}).get(key)
    for key, default in VIDEO_SETTINGS.items():
        report[key] = (settings or {}).get(key, default)
    return report


# -- report text ---------------------------------------------------------------------

METHOD_TITLES = {"bicubic": "Bicubic", "full": "Full-frame SR", "local": "Localized SR"}
METRIC_TITLES = {"psnr": "PSNR", "ssim": "SSIM", "uqi": "UQI", "psnr_fg": "PSNR fg",
                 "ssim_fg": "SSIM fg", "psnr_boundary": "PSNR border"}


def _fmt(key: str, value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:.2f}" if key.startswith("psnr") else f"{value:.4f}"


def _table(report: Mapping[str, Any], keys: Sequence[str], with_increase: bool) -> list[str]:
    head = ["Image"] + [f"{METHOD_TITLES[m]} {METRIC_TITLES[k]}" for m in METHODS
                        for k in keys]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for img in report["images"]:
        cells = [img["name"]] + [_fmt(k, img["methods"][m][k]) for m in METHODS for k in keys]
        lines.append("| " + " | ".join(cells) + " |")
    cells = ["**Mean**"] + [_fmt(k, report["mean"][m][k]) for m in METHODS for k in keys]
    lines.append("| " + " | ".join(cells) + " |")
    if with_increase:
        cells = ["**Mean % increase (Algorithm 1)**"]
        for method in METHODS:
            for key in keys:
                value = report["percent_increase"].get(method, {}).get(key)
                cells.append("–" if value is None else f"{value:+.2f} %")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def markdown_report(report: Mapping[str, Any]) -> str:
    """The report as markdown: the paper-style whole-image table with the Algorithm 1
    row, then the foreground / mask-border table."""
    settings = ", ".join(f"{k} `{report.get(k)}`" for k in ("model", "segmenter", "degrade"))
    if report.get("frames", 1) > 1:
        settings += f"; {video_note(report)}"
    lines = [
        "# Localized super-resolution: evaluation", "",
        f"{len(report['images'])} images, 2× ({settings}). Scores against the HR image; "
        "Algorithm 1 = mean over images of (score − bicubic) / bicubic × 100.", "",
        "## Whole image", "",
        *_table(report, WHOLE_METRICS, with_increase=True), "",
        "## Foreground and mask border", "",
        "Foreground: the segmenter's LR mask upscaled to HR, ≥ 0.5. Border: ±"
        f"{metrics.BOUNDARY_RADIUS_PX} px around the mask edge. – = no mask.", "",
        *_table(report, ("psnr_fg", "ssim_fg", "psnr_boundary"), with_increase=False), "",
    ]
    return "\n".join(lines)


# -- command line --------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class EvalOptions:
    """What ``localsr-cam eval`` was asked to do (see :mod:`localsr_cam.cli.eval`)."""

    images: Path
    model: str = DEFAULT_SR_MODEL
    segmenter: str = "auto"
    backend: str = "auto"
    precision: str = "auto"
    degrade: str = "area"
    json: Path | None = None
    md: Path | None = None
    figures: Path | None = None
    masks: Path | None = None
    frames: int = 1
    pan: float = 0.0
    sway: float = 0.0
    zoom: float = 0.0
    exposure: float = 0.0
    repeat: int = 1


def prepare_figure_dir(path: Path, flag: str = "--figures") -> None:
    """Create an output folder (``--figures``, ``--masks``) and check it is writable
    (:class:`SinkError`)."""
    prepare_output_folder(path, flag, "probe.png")


def write_mask(folder: Path, record: ImageRecord) -> None:
    """``--masks``: the record's mask as ``<stem>.png`` in ``folder`` (:class:`SinkError`)."""
    size = record.source_size or (record.hr.shape[1], record.hr.shape[0])
    path = folder / f"{Path(record.name).stem}.png"
    ok, data = cv2.imencode(".png", mask_png(record.mask, size))
    try:
        if not ok:
            raise OSError("PNG encoding failed")
        write_atomically(path, data.tobytes())
    except OSError as exc:
        raise SinkError(f"cannot write --masks {path}: {exc.strerror or exc}") from None


def _degrade_for(method: str, frames: int = 1, pan: float = 0.0, sway: float = 0.0,
                 repeat: int = 1, zoom: float = 0.0, exposure: float = 0.0) -> Degrade:
    """The degradation suite ``method`` on BGR images: HR → (HR target, LR). With
    ``frames`` > 1, LR is N·``repeat``×H×W×3: the same suite's parameters each time (the
    camera), fresh sensor noise each frame (a new noise seed), of the views
    :func:`~localsr_cam.measure.filming.filmed_views` gives (a still scene, or with
    ``pan``, ``sway`` or ``zoom`` one that moves; with ``exposure`` its brightness
    ramping), each frame ``repeat`` times in a row, and the target is the last one's."""
    from localsr_cam.measure.degrade import apply, image_seed, suite_params, with_params

    def run(hr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        params = suite_params(method, image_seed(method, hr))
        views = filmed_views(hr, frames, pan, sway, zoom, exposure)
        samples = [apply(view, with_params(params, noise_seed=params.noise_seed + index),
                         bgr=True) for index, view in enumerate(views)]
        lr = samples[0].lr if frames == 1 \
            else np.stack([s.lr for s in samples for _ in range(repeat)])
        return samples[-1].hr, lr

    return run


@contextlib.contextmanager
def processor_outputs(model: str, segmenter: str, backend: str, precision: str = "auto",
                      progress: ImageProgress | None = None) -> Iterator[OutputsFor]:
    """Open two :class:`~localsr_cam.process.processor.FrameProcessor` (localized and
    full frame, no temporal smoothing) and yield an :data:`OutputsFor` over them; their
    SR tiles are reported to ``progress``."""
    from localsr_cam.config import BlendConfig, ModelConfig, PipelineConfig
    from localsr_cam.frames import CapturedFrame
    from localsr_cam.process.processor import FrameProcessor

    base = PipelineConfig(model=ModelConfig(model=model, segmenter=segmenter, backend=backend,
                                            precision=precision),
                          blend=BlendConfig(ema=0.0))
    full_config = dataclasses.replace(base, blend=dataclasses.replace(base.blend,
                                                                      full_frame=True))
    with contextlib.ExitStack() as stack:
        processors = {"local": FrameProcessor(base), "full": FrameProcessor(full_config)}
        for proc in processors.values():
            stack.callback(proc.close)
            proc.open()
            if progress is not None:
                proc.progress = progress.tiles

        def outputs_for(lr: np.ndarray) -> Outputs:
            frames = lr if lr.ndim == 4 else lr[None]
            result = {}
            for method, proc in processors.items():
                proc.reset()
                proc.prepare((frames.shape[2], frames.shape[1]))
                for index, image in enumerate(frames):  # one video: state carries over
                    if progress is not None and len(frames) > 1:
                        progress.frame(method, index + 1, len(frames))
                    out = proc.process(CapturedFrame(image=image, index=index,
                                                     timestamp=time.perf_counter()))
                    if out.fallback:
                        raise ModelError(f"the {method} processor failed and fell back to "
                                         "plain upscaling (see the log above); its scores "
                                         "would be the upscale's, not the model's")
                result[method] = (out.image, out.mask)
            return result

        yield outputs_for


def _write_text(path: Path, text: str, flag: str) -> None:
    try:
        write_atomically(path, text.encode())
    except OSError as exc:
        raise SinkError(f"cannot write {flag} {path}: {exc.strerror or exc}") from None
    log.info("wrote %s", path)


def _write_outputs(report: Mapping[str, Any], args: EvalOptions) -> None:
    if args.json is not None:
        _write_text(args.json, json.dumps(report, indent=2, allow_nan=False) + "\n", "--json")
    if args.md is not None:
        _write_text(args.md, report_markdown(report), "--md")
    if args.figures is not None:
        from localsr_cam.measure.figures import percent_increase_chart

        for suite, sub in (report["suites"].items() if "suites" in report
                           else [("", report)]):
            folder = args.figures / suite if suite else args.figures
            percent_increase_chart(folder / "percent_increase.png", sub["percent_increase"])


def report_markdown(report: Mapping[str, Any]) -> str:
    """A report as markdown: :func:`summary_table` for ``--degrade all``, else
    :func:`markdown_report`."""
    return summary_table(report) if "suites" in report else markdown_report(report)


OpenOutputs = Callable[[str, str, str, str], contextlib.AbstractContextManager[OutputsFor]]
"""(model, segmenter, backend, precision) → context manager yielding an
:data:`OutputsFor`."""


def run(args: EvalOptions, open_outputs: OpenOutputs | None = None) -> dict[str, Any]:
    """Everything after argument parsing; raises :class:`LocalSRError` for bad input.

    Output paths, the folder and every image are checked (:func:`check_before_work`)
    before ``open_outputs`` (default :func:`processor_outputs`) loads any model.
    """
    bars = ImageProgress()
    if open_outputs is None:
        open_outputs = functools.partial(processor_outputs, progress=bars)
    suites = [s for s in DEGRADE_CHOICES if s != "all"] if args.degrade == "all" \
        else [args.degrade]
    paths = check_before_work(args, suites)
    video = {key: getattr(args, key) for key in VIDEO_SETTINGS}
    reports: dict[str, dict[str, Any]] = {}
    with open_outputs(args.model, args.segmenter, args.backend,
                      args.precision) as outputs_for:
        for suite in suites:
            figure_dir, suite_masks = (_suite_folder(folder, suite, len(suites))
                                       for folder in (args.figures, args.masks))
            settings = {"model": args.model, "segmenter": args.segmenter, "degrade": suite,
                        **video}
            degrade = _degrade_for(suite, **video)
            reports[suite] = evaluate_images(paths, outputs_for, degrade,
                                             settings=settings,
                                             on_image=_image_writer(figure_dir, suite_masks,
                                                                    len(paths)),
                                             image_progress=bars)
    if len(suites) == 1:
        report = reports[suites[0]]
    else:
        report = {"model": args.model, "segmenter": args.segmenter, "degrade": "all",
                  **video, "summary": suite_summary(reports), "suites": reports}
    _write_outputs(report, args)
    return report


def check_before_work(args: EvalOptions, suites: Sequence[str]) -> list[Path]:
    """The images to score, once the folder, every image (decoded once) and every output
    are checked and the output folders made; raises :class:`LocalSRError` otherwise.

    An output may not land on an input image, be the images folder, be a file in it
    that eval would read as an image, or share a path with another output.
    """
    paths = list_images(args.images)
    refuse_photo_clobbers(*output_paths(args, suites), args.images, paths)
    for value, flag in ((args.json, "--json"), (args.md, "--md")):
        if value is not None:
            check_writable_file(value, flag)
    if args.figures is not None:
        prepare_figure_dir(args.figures)
    if args.masks is not None:
        prepare_figure_dir(args.masks, "--masks")
    stems = [path.stem for path in paths]
    if args.masks is not None and len(set(stems)) < len(stems):
        twice = sorted({stem for stem in stems if stems.count(stem) > 1})
        raise ConfigError(f"--masks: several images share the name {twice[0]!r} "
                          "(different extensions); their masks would overwrite each other")
    for asked, flag, what in ((args.pan, "--pan", "moves the camera from frame to frame"),
                              (args.sway, "--sway", "moves the person from frame to frame"),
                              (args.zoom, "--zoom", "zooms the camera from frame to frame"),
                              (args.exposure, "--exposure",
                               "ramps the camera's exposure from frame to frame"),
                              (args.repeat > 1, "--repeat",
                               "sends each frame of a video again")):
        if asked and args.frames < 2:
            raise ConfigError(f"{flag} {what}: it needs --frames 2 or more")
    if sum(bool(motion) for motion in (args.pan, args.sway, args.zoom)) > 1:
        raise ConfigError("--pan, --sway and --zoom: one motion at a time")
    for path in paths:  # decode everything once now, so a bad file stops us before models load
        image = load_image(path)
        if args.pan:
            height, width = crop_even(image).shape[:2]
            pan_window((width, height), args.frames, args.pan, path.name)
    return paths


Named = list[tuple[str, Path]]
"""``(flag, path)`` pairs, as :func:`localsr_cam.paths.refuse_clobbers` takes them."""


def output_paths(args: EvalOptions, suites: Sequence[str]) -> tuple[Named, Named]:
    """What eval writes: ``(files, folders)``, each ``(flag, path)``. The folders are
    ``--figures`` and ``--masks`` and, with several suites, the subfolder of each suite
    (so that a clash there is found too)."""
    files = [(flag, path) for flag, path in (("--json", args.json), ("--md", args.md))
             if path is not None]
    folders: Named = []
    for flag, folder in (("--figures", args.figures), ("--masks", args.masks)):
        if folder is not None:
            folders.append((flag, folder))
            if len(suites) > 1:
                folders += [(flag, folder / suite) for suite in suites]
    return files, folders


def _suite_folder(folder: Path | None, suite: str, suites: int) -> Path | None:
    """Where one suite's figures or masks go: ``folder`` itself for a single suite, a
    subfolder named after the suite when several run (created here)."""
    if folder is None or suites == 1:
        return folder
    (folder / suite).mkdir(parents=True, exist_ok=True)
    return folder / suite


def _image_writer(figures: Path | None, masks: Path | None, count: int
                  ) -> Callable[[ImageRecord], None] | None:
    """The per-image callback (None when neither is asked for): ``--figures`` writes the
    comparison panel and the 1:1 face crop, numbered in image order; ``--masks`` writes
    the mask used, named after the image."""
    if figures is None and masks is None:
        return None
    counter = iter(range(count))

    def on_image(record: ImageRecord) -> None:
        number = next(counter)
        if masks is not None:
            write_mask(masks, record)
        if figures is not None:
            from localsr_cam.measure.figures import comparison_figure, face_crops_figure

            stem = f"{number:03d}_{Path(record.name).stem}"
            comparison_figure(figures / f"{stem}.png", record)
            face_crops_figure(figures / f"{stem}_face.png", record)

    return on_image


def suite_summary(reports: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """``{method: {suite: {"mean_gain_db", "worst_gain_db", "worst_image"}}}`` for the
    SR methods: whole-image PSNR gain over bicubic, mean over images and the worst one;
    plus ``{"bicubic": {suite: {"mean_psnr"}}}``."""
    summary: dict[str, Any] = {"bicubic": {}}
    for method in SR_METHODS:
        summary[method] = {}
        for suite, report in reports.items():
            gains = [(img["methods"][method]["psnr"] - img["methods"]["bicubic"]["psnr"],
                      img["name"]) for img in report["images"]]
            worst = min(gains)
            summary[method][suite] = {"mean_gain_db": float(np.mean([g for g, _ in gains])),
                                      "worst_gain_db": worst[0], "worst_image": worst[1]}
    for suite, report in reports.items():
        summary["bicubic"][suite] = {"mean_psnr": report["mean"]["bicubic"]["psnr"]}
    return summary


def summary_table(report: Mapping[str, Any]) -> str:
    """The ``--degrade all`` summary as markdown: rows method, columns degradation,
    cells "mean gain / worst image gain" in dB; then each suite's tables."""
    summary = report["summary"]
    suites = list(summary["bicubic"])
    lines = [f"# Localized super-resolution: {report['model']} under every degradation", "",
             "PSNR gain over bicubic (dB), mean over images / worst image; bicubic row: "
             "its mean PSNR." + (f" Each: {video_note(report)} (`--frames`)."
                                 if report.get("frames", 1) > 1 else ""),
             "",
             "| method | " + " | ".join(suites) + " |", "|---|" + "---|" * len(suites),
             "| bicubic (PSNR) | " + " | ".join(
                 f"{summary['bicubic'][s]['mean_psnr']:.2f}" for s in suites) + " |"]
    for method in SR_METHODS:
        cells = [f"{summary[method][s]['mean_gain_db']:+.2f} / "
                 f"{summary[method][s]['worst_gain_db']:+.2f}" for s in suites]
        lines.append(f"| {report['model']} {method} | " + " | ".join(cells) + " |")
    lines += ["", "Worst images (full frame): " + "; ".join(
        f"{s}: {summary['full'][s]['worst_image']}" for s in suites), ""]
    for suite, sub in report["suites"].items():
        lines += [f"## {suite}", "", *markdown_report(sub).splitlines()[2:]]
    return "\n".join(lines) + "\n"


def video_note(report: Mapping[str, Any]) -> str:
    """What was scored with ``--frames`` (``--pan``, ``--sway``, ``--zoom``,
    ``--exposure``, ``--repeat``), as the tables say it."""
    pan, sway, zoom = (report.get(key, 0.0) for key in ("pan", "sway", "zoom"))
    exposure, repeat = report.get("exposure", 0.0), report.get("repeat", 1)
    scene = (f"a scene the camera pans {pan:g} px a frame across" if pan
             else f"a scene whose middle (the person) sways {sway:g} px either way" if sway
             else f"a scene the camera zooms in on {zoom:g} % a frame" if zoom
             else "a still scene")
    ramp = (f", {'brightening' if exposure > 0 else 'darkening'} {abs(exposure):g} % a "
            "frame" if exposure else "")
    sent = f", each sent {repeat} times in a row" if repeat > 1 else ""
    return f"the last of {report['frames']} frames of {scene}{ramp}{sent}"


def summary_line(report: Mapping[str, Any]) -> str:
    """One log line: Algorithm 1 increases, or per-suite gains for ``all``."""
    if "suites" in report:
        return "; ".join(f"{suite}: full {v['mean_gain_db']:+.2f} dB (worst "
                         f"{v['worst_gain_db']:+.2f})"
                         for suite, v in report["summary"]["full"].items())
    parts = []
    for method in SR_METHODS:
        increase = report["percent_increase"][method]
        parts.append(f"{method}: " + ", ".join(
            f"{k} {'n/a' if increase[k] is None else format(increase[k], '+.2f')}%"
            for k in WHOLE_METRICS))
    return f"{len(report['images'])} images; mean increase over bicubic: " + "; ".join(parts)
