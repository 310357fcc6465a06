"""Figures for ``localsr-cam eval``, in the manner of the paper's Figs. 7 and 10–13.

Drawn with matplotlib's object API on an Agg canvas (no pyplot, no global backend
switch, no window): safe in headless runs and in threads. Images arrive as uint8 BGR and
are shown as RGB.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from localsr_cam.errors import SinkError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

METHOD_LABELS = {"full": "full-frame SR", "local": "localized SR"}
PANEL_INCHES = 3.2
DPI = 110

Scores = dict[str, float | None]
"""One method's scores: metric name → value (``None`` where undefined)."""


@dataclasses.dataclass
class ImageRecord:
    """What one image's figure needs; arrays are the evaluator's own, passed read-only.

    ``lr`` uint8 h×w×3, ``hr`` uint8 2h×2w×3, ``mask`` float32 h×w or ``None``,
    ``outputs`` ``{method: uint8 2h×2w×3}`` for each of bicubic, full and local.
    """

    name: str
    lr: np.ndarray
    hr: np.ndarray
    mask: np.ndarray | None
    outputs: dict[str, np.ndarray]
    scores: dict[str, Scores]
    foreground_fraction: float
    source_size: tuple[int, int] | None = None
    """(width, height) of the image as loaded, before the crop to even sides."""


def _save(figure: Figure, path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(figure)
    try:
        figure.savefig(path, dpi=DPI, bbox_inches="tight")
    except OSError as exc:
        raise SinkError(f"cannot write figure {path}: {exc.strerror or exc}") from None


def _rgb(bgr: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(bgr[:, :, ::-1])


def _score_text(scores: Mapping[str, float | None]) -> str:
    psnr, ssim = scores["psnr"], scores["ssim"]
    text = f"PSNR {psnr:.2f} dB\nSSIM {ssim:.4f}"
    if scores.get("psnr_fg") is not None:
        text += f"\nfg PSNR {scores['psnr_fg']:.2f} dB"
    return text


def comparison_figure(path: Path, record: ImageRecord) -> None:
    """One row: LR | HR | mask | full-frame SR | localized SR, scores under each SR panel.

    The LR panel shows the input at its own size, scaled for display with nearest
    neighbour; its caption gives the bicubic baseline's scores.
    """
    from matplotlib.figure import Figure

    height, width = record.hr.shape[:2]
    aspect = height / width
    figure = Figure(figsize=(5 * PANEL_INCHES, PANEL_INCHES * aspect + 1.2))
    axes = figure.subplots(1, 5)
    scores = record.scores
    panels = [
        ("LR input", _rgb(record.lr), "bicubic ×2: " + _score_text(scores["bicubic"])),
        ("HR (reference)", _rgb(record.hr), f"{width}×{height}"),
        ("mask (on LR)", None, f"foreground {record.foreground_fraction:.1%}"),
        ("full-frame SR", _rgb(record.outputs["full"]), _score_text(scores["full"])),
        ("localized SR", _rgb(record.outputs["local"]), _score_text(scores["local"])),
    ]
    for ax, (title, image, caption) in zip(axes, panels, strict=True):
        if image is None:
            mask = record.mask if record.mask is not None else np.zeros(record.lr.shape[:2])
            ax.imshow(mask, cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
        else:
            ax.imshow(image, interpolation="nearest")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel(caption, fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    figure.suptitle(record.name, fontsize=11)
    figure.tight_layout()
    _save(figure, path)


def percent_increase_chart(path: Path,
                           increase: Mapping[str, Mapping[str, float | None]]) -> None:
    """Grouped bars: Algorithm 1's mean % increase over bicubic, per metric, per method.

    ``increase`` is the report's ``percent_increase`` (``{method: {metric: % or None}}``);
    a ``None`` is drawn as an empty slot.
    """
    from matplotlib.figure import Figure

    methods = list(increase)
    metric_names = list(next(iter(increase.values()))) if increase else []
    figure = Figure(figsize=(6.4, 4.0))
    ax = figure.subplots()
    width = 0.8 / max(1, len(methods))
    positions = np.arange(len(metric_names), dtype=float)
    for i, method in enumerate(methods):
        values = [increase[method][k] for k in metric_names]
        heights = [0.0 if v is None else v for v in values]
        bars = ax.bar(positions + (i - (len(methods) - 1) / 2) * width, heights, width,
                      label=METHOD_LABELS.get(method, method))
        ax.bar_label(bars, labels=["n/a" if v is None else f"{v:+.2f}%" for v in values],
                     fontsize=8, padding=2)
    ax.axhline(0.0, color="black", linewidth=0.8)
    ax.set_xticks(positions, [k.upper() for k in metric_names])
    ax.set_ylabel("mean % increase over bicubic")
    ax.set_title("Algorithm 1: mean percentage increase")
    ax.legend()
    figure.tight_layout()
    _save(figure, path)


FACE_CROP = 160
"""Side of the face crop in HR pixels (shown 1:1, then zoomed ×2 with whole pixels)."""


def face_box(mask: np.ndarray | None, hr_size: tuple[int, int], side: int = FACE_CROP
             ) -> tuple[int, int, int, int]:
    """An HR square (x0, y0, x1, y1) on the face: just below the top of the person mask.

    ``mask`` float32 h×w at LR size (or None), ``hr_size`` (width, height). The head's
    width is the mask's width a little below its top row (at a tenth of the person's
    height); the face centre is that far down again times 0.6, at the mean column there
    (a head is about 1.2 times as tall as wide and the top of the mask is the hair).
    Without a mask the crop is the image centre. Clipped to the image.
    """
    width, height = hr_size
    side = min(side, width, height)
    cx, cy = width // 2, height // 2
    if mask is not None and (mask >= 0.5).any():
        fg = mask >= 0.5
        rows = np.flatnonzero(fg.any(axis=1))
        top, bottom = int(rows[0]), int(rows[-1])
        probe = min(bottom, top + max(1, (bottom - top) // 10))
        cols = np.flatnonzero(fg[probe])
        if cols.size == 0:
            cols = np.flatnonzero(fg[top])
        head = float(cols[-1] - cols[0] + 1)
        cx = round(float(cols.mean()) * 2 + 1)
        cy = round((top + 0.6 * head) * 2)
    x0 = int(np.clip(cx - side // 2, 0, width - side))
    y0 = int(np.clip(cy - side // 2, 0, height - side))
    return x0, y0, x0 + side, y0 + side


def face_crops_figure(path: Path, record: ImageRecord, zoom: int = 2) -> None:
    """HR | bicubic | full-frame SR | localized SR crops of the face region, side by side.

    The crops are 1:1 pixels of the 2× outputs (:func:`face_box`), enlarged ``zoom``×
    by pixel repetition so that a person can see the difference; each is labelled with
    its PSNR on the crop. Written as PNG with OpenCV (uint8 BGR).
    """
    import cv2

    from localsr_cam.measure import metrics

    height, width = record.hr.shape[:2]
    x0, y0, x1, y1 = face_box(record.mask, (width, height))
    panels = [("HR", record.hr)] + [(name, record.outputs[key]) for name, key in
                                    (("bicubic", "bicubic"), ("ours full", "full"),
                                     ("ours local", "local"))]
    tiles = []
    hr_crop = record.hr[y0:y1, x0:x1]
    for name, image in panels:
        crop = image[y0:y1, x0:x1]
        tile = np.repeat(np.repeat(crop, zoom, axis=0), zoom, axis=1)
        label = name if name == "HR" else f"{name} {metrics.psnr(hr_crop, crop):.2f} dB"
        bar = np.full((22, tile.shape[1], 3), 255, np.uint8)
        cv2.putText(bar, label, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1,
                    cv2.LINE_AA)
        tiles.append(np.vstack([bar, tile]))
        tiles.append(np.full((tiles[-1].shape[0], 4, 3), 255, np.uint8))
    sheet = np.hstack(tiles[:-1])
    if not cv2.imwrite(str(path), sheet):
        raise SinkError(f"cannot write figure {path}")
