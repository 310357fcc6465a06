"""What the preview window draws: before/after panels, mask tint, person box and HUD text.

:class:`PreviewCanvas` composes one picture per frame into buffers it allocates once for a
given output size, so the preview adds no per-frame allocations (house rule 3). It only
draws; the window, keys and mouse belong to :class:`~localsr_cam.outputs.sinks.PreviewSink`.
"""

from __future__ import annotations

import cv2
import numpy as np

from localsr_cam.frames import HudStats, ProcessedFrame

MAX_PREVIEW_WIDTH = 1280
LAYOUTS = ("side", "split")

MASK_TINT_BGR = (255, 0, 255)  # magenta: rare in faces and rooms, easy to see
MASK_TINT_ALPHA = 0.45
BOX_BGR = (0, 255, 255)
DIVIDER_BGR = (255, 255, 255)
TEXT_BGR = (255, 255, 255)
TEXT_BACK_BGR = (0, 0, 0)
FONT = cv2.FONT_HERSHEY_SIMPLEX
FONT_SCALE = 0.5
LINE_PAD = 4
MAGNIFIER_PX = 256
"""Side of the 1:1 face inset in output pixels (smaller when the panel is)."""
MAGNIFIER_PAD = 8


def fit_width(width: int, height: int, max_width: int) -> tuple[int, int]:
    """``(width, height)`` scaled down (never up) so that width ≤ ``max_width``."""
    if width <= max_width:
        return width, height
    scale = max_width / width
    return max_width, max(1, round(height * scale))


class _Panel:
    """Buffers for one panel size: the picture and the mask tint weights.

    ``image``: uint8 h×w×3 BGR. ``weight``/``keep``: float32 h×w, the tint's blend weights.
    ``tint``: uint8 h×w×3 filled with :data:`MASK_TINT_BGR`. All owned here, reused.
    """

    def __init__(self, width: int, height: int) -> None:
        self.size = (width, height)
        self.image = np.zeros((height, width, 3), np.uint8)
        self.weight = np.zeros((height, width), np.float32)
        self.keep = np.zeros((height, width), np.float32)
        self.tint = np.empty((height, width, 3), np.uint8)
        self.tint[:] = MASK_TINT_BGR


class PreviewCanvas:
    """Composes the preview picture for output frames of ``out_size = (W, H)``.

    Layout ``side``: the input, bilinearly upscaled, on the left and the output on the right,
    both at the same scale; the pair is scaled down to fit ``max_width``. Layout ``split``:
    one output-sized view, input left of a vertical divider and output right of it.

    :meth:`compose` returns a uint8 h×w×3 BGR array owned by this object and overwritten by
    the next call: show it or copy it, don't keep it.
    """

    def __init__(self, out_size: tuple[int, int], max_width: int = MAX_PREVIEW_WIDTH) -> None:
        width, height = out_size
        side_w, side_h = fit_width(2 * width, height, max_width)
        self._side_before = _Panel(side_w // 2, side_h)
        self._side_after = _Panel(side_w // 2, side_h)
        self._side = np.zeros((side_h, 2 * (side_w // 2), 3), np.uint8)
        split_w, split_h = fit_width(width, height, max_width)
        self._split_before = _Panel(split_w, split_h)
        self._split_after = _Panel(split_w, split_h)
        self._split = np.zeros((split_h, split_w, 3), np.uint8)

    def canvas_size(self, layout: str) -> tuple[int, int]:
        """``(width, height)`` of the picture :meth:`compose` returns for ``layout``."""
        canvas = self._side if layout == "side" else self._split
        return canvas.shape[1], canvas.shape[0]

    def compose(
        self,
        frame: ProcessedFrame,
        hud: HudStats,
        *,
        layout: str = "side",
        split: float = 0.5,
        show_mask: bool = False,
        bypass: bool = False,
        magnify: bool = False,
    ) -> np.ndarray:
        """Draw ``frame`` and ``hud``; ``split`` is the divider's x as a fraction of the width.

        ``frame.image`` must be uint8 H×W×3 BGR (the size given at construction);
        ``frame.source.image`` uint8 h×w×3 BGR of any size; ``frame.mask`` float32 h×w.
        """
        if layout == "side":
            before, after, canvas = self._side_before, self._side_after, self._side
        else:
            before, after, canvas = self._split_before, self._split_after, self._split
        cv2.resize(
            frame.source.image, before.size, dst=before.image, interpolation=cv2.INTER_LINEAR
        )
        cv2.resize(frame.image, after.size, dst=after.image, interpolation=cv2.INTER_AREA)
        if show_mask:
            _overlay_mask(after, frame)
        after_label = (
            "after: plain upscale (bypass)" if bypass or frame.fallback else "after: localsr"
        )
        if layout == "side":
            half = before.size[0]
            canvas[:, :half] = before.image
            canvas[:, half:] = after.image
            _label(canvas, "before: bilinear", 0)
            _label(canvas, after_label, half)
        else:
            x = min(max(round(split * canvas.shape[1]), 0), canvas.shape[1])
            canvas[:, :x] = before.image[:, :x]
            canvas[:, x:] = after.image[:, x:]
            cv2.line(canvas, (x, 0), (x, canvas.shape[0] - 1), DIVIDER_BGR, 1)
            _label(canvas, "before: bilinear", 0)
            _label(canvas, after_label, canvas.shape[1], right=True)
        if magnify:
            half = before.size[0]
            if layout == "side":
                _draw_magnifiers(canvas, frame, half, [(half, True), (2 * half, False)])
            else:
                _draw_magnifiers(canvas, frame, canvas.shape[1], [(canvas.shape[1], False)])
        _draw_text_lines(canvas, hud_lines(hud, show_mask=show_mask, bypass=bypass,
                                           magnify=magnify))
        return canvas


def hud_lines(hud: HudStats, *, show_mask: bool, bypass: bool,
              magnify: bool = False) -> list[str]:
    """The HUD's text, one string per line."""
    first = f"{hud.fps:5.1f} fps  {hud.latency_ms:6.1f} ms  {hud.backend or '?'}"
    if hud.cpu_percent == hud.cpu_percent:  # not nan
        first += f"  cpu {hud.cpu_percent:3.0f}%"
    if hud.level:
        first += f"  {hud.level}"
    flags = [name for name, on in (("BYPASS", bypass), ("mask", show_mask),
                                   ("zoom 1:1", magnify)) if on]
    second = "q quit  b bypass  m mask  s layout  z zoom"
    if flags:
        second = " ".join(flags) + "   " + second
    return [first, second]


def _overlay_mask(panel: _Panel, frame: ProcessedFrame) -> None:
    """Tint ``panel.image`` where the person mask is, and outline the super-resolved box."""
    if frame.mask is not None:
        cv2.resize(frame.mask, panel.size, dst=panel.weight, interpolation=cv2.INTER_LINEAR)
        np.multiply(panel.weight, MASK_TINT_ALPHA, out=panel.weight)
        np.subtract(1.0, panel.weight, out=panel.keep)
        cv2.blendLinear(panel.tint, panel.image, panel.weight, panel.keep, dst=panel.image)
    if frame.box is not None:
        in_h, in_w = frame.source.image.shape[:2]
        sx, sy = panel.size[0] / in_w, panel.size[1] / in_h
        x0, y0, x1, y1 = frame.box
        top_left = (round(x0 * sx), round(y0 * sy))
        bottom_right = (round(x1 * sx) - 1, round(y1 * sy) - 1)
        cv2.rectangle(panel.image, top_left, bottom_right, BOX_BGR, 1)


def _label(canvas: np.ndarray, text: str, x: int, *, right: bool = False) -> None:
    """One line of text on a dark band at the bottom of ``canvas``.

    The band starts at ``x``, or ends there when ``right``.
    """
    (tw, th), base = cv2.getTextSize(text, FONT, FONT_SCALE, 1)
    if right:
        x -= tw + 2 * LINE_PAD
    y1 = canvas.shape[0] - LINE_PAD
    y0 = y1 - th - base - LINE_PAD
    cv2.rectangle(canvas, (x, y0), (x + tw + 2 * LINE_PAD, y1), TEXT_BACK_BGR, cv2.FILLED)
    cv2.putText(canvas, text, (x + LINE_PAD, y1 - base), FONT, FONT_SCALE, TEXT_BGR, 1, cv2.LINE_AA)


def _draw_text_lines(canvas: np.ndarray, lines: list[str]) -> None:
    """Lines of text on dark bands at the top left of ``canvas``."""
    y = LINE_PAD
    for text in lines:
        (tw, th), base = cv2.getTextSize(text, FONT, FONT_SCALE, 1)
        y_end = y + th + base + LINE_PAD
        cv2.rectangle(canvas, (0, y - LINE_PAD), (tw + 2 * LINE_PAD, y_end), TEXT_BACK_BGR, -1)
        cv2.putText(canvas, text, (LINE_PAD, y + th), FONT, FONT_SCALE, TEXT_BGR, 1, cv2.LINE_AA)
        y = y_end + 1


def face_centre(frame: ProcessedFrame) -> tuple[int, int]:
    """Where the face probably is, in output pixels: a quarter down the person box (the
    head of a head-and-shoulders box), or the frame's centre without a box."""
    height, width = frame.image.shape[:2]
    if frame.box is None:
        return width // 2, height // 2
    in_w = frame.source.image.shape[1]
    scale = width / in_w
    x0, y0, x1, y1 = frame.box
    return round((x0 + x1) / 2 * scale), round((y0 + (y1 - y0) / 4) * scale)


def magnifier_region(frame: ProcessedFrame, side: int) -> tuple[int, int, int]:
    """``(x, y, side)``: the square of the output, at most ``side`` pixels, around the
    face, shifted to lie inside the frame."""
    height, width = frame.image.shape[:2]
    side = max(1, min(side, width, height))
    cx, cy = face_centre(frame)
    x = min(max(cx - side // 2, 0), width - side)
    y = min(max(cy - side // 2, 0), height - side)
    return x, y, side


def _draw_magnifiers(canvas: np.ndarray, frame: ProcessedFrame, panel_width: int,
                     panels: list[tuple[int, bool]]) -> None:
    """A 1:1 inset of the face in the bottom-right corner of each panel: the output's own
    pixels (``before=False``), or the input bilinearly upscaled 2× (``before=True``),
    so the two can be compared pixel for pixel. ``panels``: (right edge x, before)."""
    panel_h = canvas.shape[0]
    side = min(MAGNIFIER_PX, panel_h - 2 * MAGNIFIER_PAD, panel_width - 2 * MAGNIFIER_PAD)
    if side < 16:
        return
    x, y, side = magnifier_region(frame, side)
    for right, before in panels:
        if before:
            source = frame.source.image
            sx = source.shape[1] / frame.image.shape[1]
            sy = source.shape[0] / frame.image.shape[0]
            x0, y0 = int(x * sx), int(y * sy)
            x1 = min(source.shape[1], int(np.ceil((x + side) * sx)) + 1)
            y1 = min(source.shape[0], int(np.ceil((y + side) * sy)) + 1)
            up = cv2.resize(source[y0:y1, x0:x1], ((x1 - x0) * 2, (y1 - y0) * 2),
                            interpolation=cv2.INTER_LINEAR)
            ox, oy = round((x * sx - x0) * 2), round((y * sy - y0) * 2)
            inset = up[oy:oy + side, ox:ox + side]
        else:
            inset = frame.image[y:y + side, x:x + side]
        top = panel_h - MAGNIFIER_PAD - side
        left = right - MAGNIFIER_PAD - side
        canvas[top:top + side, left:left + side] = inset
        cv2.rectangle(canvas, (left - 1, top - 1), (left + side, top + side), BOX_BGR, 1)
        _label_at(canvas, "1:1", left, top)


def _label_at(canvas: np.ndarray, text: str, x: int, y: int) -> None:
    """A small text tag with its top-left corner at (x, y)."""
    (tw, th), base = cv2.getTextSize(text, FONT, FONT_SCALE, 1)
    cv2.rectangle(canvas, (x, y), (x + tw + 2 * LINE_PAD, y + th + base + LINE_PAD),
                  TEXT_BACK_BGR, cv2.FILLED)
    cv2.putText(canvas, text, (x + LINE_PAD, y + th + 1), FONT, FONT_SCALE, TEXT_BGR, 1,
                cv2.LINE_AA)
