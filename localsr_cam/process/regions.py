"""Super-resolution regions for several people: snapping, merging, an area cap.

Boxes are ``(x0, y0, x1, y1)`` integer pixels, half-open (see
:data:`localsr_cam.localize.Box`), in input-frame coordinates. Everything here is
plain integer arithmetic on a handful of boxes a frame: no tensors.
"""

from __future__ import annotations

from collections.abc import Sequence

Box = tuple[int, int, int, int]


def area(box: Box) -> int:
    """Pixels in ``box`` (0 for an empty or inverted box)."""
    x0, y0, x1, y1 = box
    return max(0, x1 - x0) * max(0, y1 - y0)


def union(a: Box, b: Box) -> Box:
    """The smallest box holding both."""
    return min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])


def intersection(a: Box, b: Box) -> Box | None:
    """The overlap of two boxes, or ``None`` when they do not overlap."""
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[2], b[2]), min(a[3], b[3])
    return (x0, y0, x1, y1) if x0 < x1 and y0 < y1 else None


def iou(a: Box | tuple[float, ...], b: Box | tuple[float, ...]) -> float:
    """Intersection over union of two boxes (float or int corners)."""
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    total = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / total) if total > 0 else 0.0


def grown(box: Box, by: int, frame_size: tuple[int, int]) -> Box:
    """``box`` grown by ``by`` pixels on every side, clipped to the frame (``frame_size``
    = (width, height))."""
    width, height = frame_size
    x0, y0, x1, y1 = box
    return max(0, x0 - by), max(0, y0 - by), min(width, x1 + by), min(height, y1 + by)


def contains(outer: Box, inner: Box) -> bool:
    """Whether ``inner`` lies entirely inside ``outer``."""
    return (outer[0] <= inner[0] and outer[1] <= inner[1]
            and inner[2] <= outer[2] and inner[3] <= outer[3])


def snap_even(box: Box, frame_size: tuple[int, int]) -> Box:
    """Grow ``box`` to even corners (x0, y0 down, x1, y1 up), clipped to the frame.

    Even corners keep the 2× output grid of every crop aligned the same way from frame
    to frame, so a box that moves by one pixel does not shift the SR crop's pixel
    phase. A frame side of odd length keeps its last pixel (x1 = width).
    """
    width, height = frame_size
    x0, y0, x1, y1 = box
    x0, y0 = max(0, x0 - x0 % 2), max(0, y0 - y0 % 2)
    x1, y1 = min(width, x1 + x1 % 2), min(height, y1 + y1 % 2)
    return x0, y0, x1, y1


def merge_overlapping(boxes: Sequence[Box], gap: int = 0,
                      max_waste: float | None = None) -> list[Box]:
    """Union boxes that overlap (or come closer than ``gap`` px) into one box.

    ``max_waste``: merge two only when their union box is at most ``1 + max_waste``
    times the area the two cover together (``None``: always), so two people whose
    boxes touch at a corner are not turned into one wide box of mostly background.
    Repeats until nothing more merges, since a union can reach a third box. The order
    of the result follows the first box of each group.
    """
    merged = list(boxes)
    changed = True
    while changed:
        changed = False
        out: list[Box] = []
        for box in merged:
            for index, kept in enumerate(out):
                grown = (kept[0] - gap, kept[1] - gap, kept[2] + gap, kept[3] + gap)
                if intersection(grown, box) is not None and _worth(kept, box, max_waste):
                    out[index] = union(kept, box)
                    changed = True
                    break
            else:
                out.append(box)
        merged = out
    return merged


def _worth(a: Box, b: Box, max_waste: float | None) -> bool:
    if max_waste is None:
        return True
    shared = intersection(a, b)
    covered = area(a) + area(b) - (area(shared) if shared is not None else 0)
    return area(union(a, b)) <= (1.0 + max_waste) * covered


def cap_total_area(boxes: Sequence[Box], max_area: int) -> list[Box]:
    """Keep boxes in the given order (most important first) while their total area
    stays within ``max_area``; a box that would pass the cap is dropped, a smaller
    one after it may still fit. The first box is always kept."""
    kept: list[Box] = []
    total = 0
    for box in boxes:
        size = area(box)
        if kept and total + size > max_area:
            continue
        kept.append(box)
        total += size
    return kept


def align_even(box: Box, frame_size: tuple[int, int]) -> Box:
    """Move ``box`` by at most one pixel so its top-left corner is even, keeping its
    size (a bucket size stays one); it grows by one instead where it already touches
    the frame's far edge."""
    x0, y0, x1, y1 = box
    width, height = frame_size
    if x0 % 2:
        x0, x1 = (x0 - 1, x1) if x1 >= width else (x0 - 1, x1 - 1)
    if y0 % 2:
        y0, y1 = (y0 - 1, y1) if y1 >= height else (y0 - 1, y1 - 1)
    return x0, y0, x1, y1
