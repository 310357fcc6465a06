"""Tiles for super-resolving big regions in bounded memory.

A U-Net's activations grow with the input: a whole 4000×3000 frame took gigabytes. A
region larger than :data:`MAX_UNTILED_PIXELS` is cut into :data:`TILE_PX` squares; each is
super-resolved with :data:`TILE_MARGIN_PX` of real context on every side (clipped to the
region), and only its centre is kept, so seams see the same neighbourhood as an untiled
run would. Regions up to that size (1080p frames included) run in one piece, as before.
"""

from __future__ import annotations

import dataclasses

Box = tuple[int, int, int, int]
"""``(x0, y0, x1, y1)`` in input pixels, end-exclusive."""

TILE_PX = 768
TILE_MARGIN_PX = 32
MAX_UNTILED_PIXELS = 1920 * 1088


@dataclasses.dataclass(frozen=True)
class Tile:
    """``region``: the part of the box this tile produces. ``padded``: what the network
    sees, ``region`` grown by the margin and clipped to the box."""

    region: Box
    padded: Box

    def inner(self, scale: int = 2) -> tuple[slice, slice]:
        """Rows and columns of ``region`` inside the network's output for ``padded``
        (at ``scale`` times the input size)."""
        (rx0, ry0, rx1, ry1), (px0, py0, _, _) = self.region, self.padded
        return (slice(scale * (ry0 - py0), scale * (ry1 - py0)),
                slice(scale * (rx0 - px0), scale * (rx1 - px0)))


def split(box: Box, tile: int = TILE_PX, margin: int = TILE_MARGIN_PX,
          max_pixels: int = MAX_UNTILED_PIXELS) -> list[Tile]:
    """The tiles covering ``box`` exactly once (one tile when it is small enough)."""
    x0, y0, x1, y1 = box
    if (x1 - x0) * (y1 - y0) <= max_pixels:
        return [Tile(box, box)]
    tiles = []
    for top in range(y0, y1, tile):
        for left in range(x0, x1, tile):
            region = (left, top, min(left + tile, x1), min(top + tile, y1))
            padded = (max(x0, left - margin), max(y0, top - margin),
                      min(x1, region[2] + margin), min(y1, region[3] + margin))
            tiles.append(Tile(region, padded))
    return tiles
