"""What :class:`~localsr_cam.process.processor.FrameProcessor` carries for one frame
between its steps: the front half's :class:`FrontState`, the back half's
:class:`Rendered`, and the SR calls (:class:`SRCall`, :class:`EarlyGroup`) in flight
between them. Records only; the processor fills and reads them."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import torch

from localsr_cam.frames import CapturedFrame
from localsr_cam.process.deadline import LEVELS, Level
from localsr_cam.process.localize import Box
from localsr_cam.process.reuse import Signature
from localsr_cam.process.stage_timer import StageTimer


@dataclasses.dataclass
class SRCall:
    """One box's SR for one frame, between :meth:`FrameProcessor._begin_sr` and
    :meth:`FrameProcessor._end_sr`.

    ``key``: the input pixels (padded box). ``kind``: what the frame's ``sr`` becomes —
    ``reused`` (``result``: no cell of the crop changed), ``stand-in`` (not computed:
    a late call still runs, or the level skips this frame; the last result stands in
    where the crop's cells did not change, ``sr`` then ``shown_as``), or ``fresh`` /
    ``partial`` for a ``job`` (→ uint8 2h×2w×3 BGR) that ``started`` on the background
    worker or runs when ended (a started one that ends late stands in as ``late``);
    ``tag``: the :class:`~localsr_cam.process.reuse.Signature` its result stands for;
    ``store``: keep the result for reuse. ``crop``: the frame's crop of ``key`` (uint8
    h×w×3 BGR view) and ``signature``: its signature, where the change tests are on
    (what a stand-in needs).
    """

    key: Box
    kind: str
    result: torch.Tensor | None = None
    job: Callable[[], torch.Tensor] | None = None
    tag: Signature | None = None
    store: bool = False
    started: bool = False
    crop: torch.Tensor | None = None
    signature: Signature | None = None
    shown_as: str = "late"


SRResult = torch.Tensor | list[torch.Tensor]
"""What a background SR call returns: one box's uint8 2h×2w×3 BGR SR, or a group's, in
the order of its :class:`GroupKey`."""


@dataclasses.dataclass(frozen=True)
class GroupKey:
    """The key of one background call that computes several boxes' SR (the people
    path's early SR): the boxes, in the order of its results."""

    boxes: tuple[Box, ...]


@dataclasses.dataclass
class EarlyGroup:
    """A frame's early SR on the people path (:meth:`FrameProcessor._begin_early_group`):
    ``calls`` by input box, each taken once when its box is rendered; ``waiting``: its
    background call is not waited for yet; ``results``: the call's results once it came
    in time, by box; ``of_the_frame``: those and the reused ones, every box's SR of this
    frame's pixels (what a moved box carries over where it overlaps one of them);
    ``was_running``: the call still ran when the frame came to wait for it (no time was
    left for another SR)."""

    calls: dict[Box, SRCall]
    waiting: bool
    results: dict[Box, torch.Tensor] = dataclasses.field(default_factory=dict)
    of_the_frame: dict[Box, torch.Tensor] = dataclasses.field(default_factory=dict)
    was_running: bool = False


@dataclasses.dataclass
class FrontState:
    """One frame between the two halves of :meth:`FrameProcessor.process`.

    ``lr``: the frame on the processor's device, uint8 H×W×3 BGR; the back half reads
    it, so whoever owns that memory keeps it unchanged until :meth:`~FrameProcessor.render`
    has run (on a GPU: until the back half's work has run on the device). ``mask``:
    float32 1×1×H×W soft mask on the device, or ``None``. ``boxes``: the regions to
    super-resolve in input pixels (none when nobody is there; ``box`` is their bounding
    box). ``people``: how many people those regions enhance (``None`` where no mask is
    made). ``levels``: the smoothed degradation levels its SR is given (live: as the
    last frame left them), float32 1×K on the device (``None`` without SR);
    ``host_levels`` the same on the host (an engine choosing a net reads them there,
    without waiting for the device). ``bypass``:
    the bypass switch as read when the frame arrived. ``error``: an engine failure in the
    front half (the back half turns it into the plain upscale).
    ``stages_ms``: filled by both halves through ``timer`` (device times on CUDA, added
    by :meth:`~FrameProcessor.finish`).
    ``level``: the quality level of this frame; ``skipping``: unchanged work may be
    skipped (change tests on); ``sr``: ``fresh``, ``partial``, ``reused``, ``late`` or
    ``none`` once rendered (see :class:`~localsr_cam.frames.ProcessedFrame`).
    ``sr_until``: ``perf_counter()`` time after which the frame stops waiting for its SR
    (``None``: it waits; set for every frame that a deadline controller paces);
    ``live``: its SR runs on the background worker (a pipeline run's video frame,
    paced or with :attr:`~FrameProcessor.overlap_sr`, change tests on); ``early_sr``:
    its SR, begun before segmentation on the last frame's box (``early_box``; the
    call's key is its top part at `head` and `face`) (``early_group``: the
    same for the people path's boxes);
    ``sr_late``: its SR was not done by then (``shown_plain``: and nothing stood in for
    it on a person, who went out as the plain upscale); ``sr_waited_at``: when the wait ended
    (the controller learns what follows it); ``deferred``: work of this frame that the
    SR need not wait for (run while it runs, or by the end of
    :meth:`~FrameProcessor.render`). ``frame`` is what the processor works on (the
    temporal denoiser's output, :meth:`~FrameProcessor.denoised`), ``captured`` the
    frame as it came (the processed frame's ``source``); ``moved``: it moved as a whole
    from the frame before (the motion test of :meth:`~FrameProcessor.denoised`);
    ``repeated``: it is the frame before sent again, bit for bit
    (:mod:`~localsr_cam.process.repeats`): no levels are read off it.
    """

    frame: CapturedFrame
    lr: torch.Tensor
    bypass: bool
    stages_ms: dict[str, float]
    timer: StageTimer
    mask: torch.Tensor | None = None
    boxes: list[Box] = dataclasses.field(default_factory=list)
    people: int | None = None
    levels: torch.Tensor | None = None
    host_levels: torch.Tensor | None = None
    error: Exception | None = None
    level: Level = LEVELS["full"]
    skipping: bool = False
    sr: str = "none"
    sr_until: float | None = None
    live: bool = False
    early_sr: SRCall | None = None
    early_box: Box | None = None
    early_group: EarlyGroup | None = None
    sr_late: bool = False
    shown_plain: bool = False
    sr_waited_at: float | None = None
    deferred: list[Callable[[], object]] = dataclasses.field(default_factory=list)
    captured: CapturedFrame | None = None
    moved: bool = False
    repeated: bool = False

    @property
    def box(self) -> Box | None:
        """The bounding box of :attr:`boxes`, or ``None``."""
        return _bounds(self.boxes)


@dataclasses.dataclass
class Rendered:
    """A frame after the back half's device work, before the download.

    ``output``: uint8 2H×2W×3 BGR on the device, a new tensor owned by this record.
    ``boxes``: the boxes actually super-resolved (``box``: their bounding box);
    ``fallback``: the output is the plain upscale because an engine failed.
    """

    state: FrontState
    output: torch.Tensor
    boxes: list[Box]
    fallback: bool

    @property
    def box(self) -> Box | None:
        """The bounding box of :attr:`boxes`, or ``None``."""
        return _bounds(self.boxes)


def _bounds(boxes: Sequence[Box]) -> Box | None:
    if not boxes:
        return None
    return (min(b[0] for b in boxes), min(b[1] for b in boxes),
            max(b[2] for b in boxes), max(b[3] for b in boxes))
