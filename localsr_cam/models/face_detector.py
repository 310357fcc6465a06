"""MediaPipe's full-range face detector, rewritten as a PyTorch module, with a loader.

The network (MediaPipe ``face_detection_full_range_sparse.tflite``, Apache-2.0) is a
single-shot detector on one 48×48 grid of anchors (stride 4 on a 192×192 input):

- stem: 3×3 stride-2 convolution + ReLU (192 → 96);
- backbone: five stages of "double bottleneck" blocks; a block is depthwise 3×3
  (stride s) → 1×1 to a narrow width + ReLU → depthwise 3×3 → 1×1 back to the output
  width, plus the input when shapes allow, then ReLU. The first block of each later
  stage has stride 2 and no skip (96 → 48 → 24 → 12 → 6);
- laterals: a 1×1 conv + ReLU on the 48-, 24- and 12-scale stage outputs;
- top-down path (an FPN): a 1×1 conv + ReLU narrows the coarser map, bilinear ×2
  upsampling (half-pixel centres), the lateral is added, then a few blocks; 6 → 12 → 24
  → 48;
- heads on the 48×48 map: a 1×1 conv, a depthwise 3×3 stride-2 conv and a
  depth-to-space ×2 (TensorFlow's DCR order), which leaves one anchor per cell:
  16 regressors (box centre x, y, width, height, then six keypoints x, y; in input
  pixels, relative to the anchor) and one classifier logit.

Our module takes N×3×192×192 float32 RGB scaled to [-1, 1] (the ``.tflite`` takes NHWC)
and returns the raw outputs exactly as the ``.tflite`` does: ``regressors`` N×2304×16
and ``scores`` N×2304×1 (logits, before the sigmoid). Anchor ``i`` is grid cell
``(row, col) = divmod(i, 48)``. Decoding lives in :mod:`localsr_cam.process.faces`.

Every 3×3 convolution in the graph is a VALID convolution after an explicit symmetric
one-pixel ``PAD``, which is exactly PyTorch's ``padding=1`` (also at stride 2), so no
TensorFlow "SAME" trick is needed here. Batch norms are folded into the convolutions'
biases in the file. Most 1×1 kernels are stored sparsely (``DENSIFY`` ops);
:mod:`.tflite_graph` expands them.

:func:`load_tflite` maps the file's convolutions onto :meth:`FaceDetector.conv_plan` in
execution order and checks each one's kind, kernel shape, stride, padding and fused
activation against what the module expects.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from localsr_cam.errors import ModelError
from localsr_cam.models import tflite_graph

log = logging.getLogger(__name__)

INPUT_SIZE = 192
GRID = 48
NUM_ANCHORS = GRID * GRID
NUM_COORDS = 16
NUM_KEYPOINTS = 6
STEM_CHANNELS = 32


def depthwise3x3(channels: int, stride: int = 1) -> nn.Conv2d:
    """Depthwise 3×3 with one pixel of zero padding (TFLite: ``PAD`` 1 + VALID conv)."""
    return nn.Conv2d(channels, channels, 3, stride, padding=1, groups=channels)


def pointwise(in_channels: int, out_channels: int) -> nn.Conv2d:
    """A 1×1 convolution with bias."""
    return nn.Conv2d(in_channels, out_channels, 1)


class DoubleBottleneck(nn.Module):
    """``relu(x + pw2(dw2(relu(pw1(dw1(x))))))``; without ``x`` when the block has
    stride 2 or changes the width. N×in×H×W → N×out×H/s×W/s."""

    def __init__(self, in_channels: int, narrow: int, out_channels: int, stride: int = 1
                 ) -> None:
        super().__init__()
        self.dw1 = depthwise3x3(in_channels, stride)
        self.pw1 = pointwise(in_channels, narrow)
        self.dw2 = depthwise3x3(narrow)
        self.pw2 = pointwise(narrow, out_channels)
        self.residual = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.pw2(self.dw2(F.relu(self.pw1(self.dw1(x)))))
        return F.relu(x + y if self.residual else y)

    def conv_plan(self) -> Iterator[tuple[nn.Conv2d, str]]:
        """Convolutions in execution order with the activation fused after each."""
        yield self.dw1, "none"
        yield self.pw1, "relu"
        yield self.dw2, "none"
        yield self.pw2, "none" if self.residual else "relu"


@dataclasses.dataclass(frozen=True)
class StageSpec:
    """A backbone stage: ``blocks`` blocks of narrow width ``narrow``, the first one
    ``in_channels`` → ``out_channels`` with ``stride``; ``lateral``: width of the 1×1
    conv feeding the top-down path from this stage (``None``: no lateral)."""

    in_channels: int
    narrow: int
    out_channels: int
    blocks: int
    stride: int
    lateral: int | None


@dataclasses.dataclass(frozen=True)
class LevelSpec:
    """A top-down level: narrow the coarser map to ``channels`` (1×1 + ReLU), upsample
    ×2, add the lateral, then ``blocks`` blocks of narrow width ``narrow``."""

    channels: int
    narrow: int
    blocks: int


#: The backbone as read from the ``.tflite`` graph (after the 96×96 stem).
BACKBONE: tuple[StageSpec, ...] = (
    StageSpec(32, 8, 32, 2, 1, None),      # 96×96
    StageSpec(32, 16, 64, 3, 2, 48),       # 48×48
    StageSpec(64, 32, 128, 3, 2, 64),      # 24×24
    StageSpec(128, 48, 192, 3, 2, 96),     # 12×12
    StageSpec(192, 96, 384, 4, 2, None),   # 6×6
)
#: The top-down path, coarse to fine; level k adds the lateral of stage 3 - k.
TOP_DOWN: tuple[LevelSpec, ...] = (
    LevelSpec(96, 48, 2),   # 12×12
    LevelSpec(64, 32, 2),   # 24×24
    LevelSpec(48, 24, 1),   # 48×48
)
HEAD_WIDTH = {"scores": 1, "regressors": NUM_COORDS}


class Stage(nn.Module):
    """A backbone stage (see :class:`StageSpec`); returns the stage output."""

    def __init__(self, spec: StageSpec) -> None:
        super().__init__()
        first = DoubleBottleneck(spec.in_channels, spec.narrow, spec.out_channels, spec.stride)
        rest = [DoubleBottleneck(spec.out_channels, spec.narrow, spec.out_channels)
                for _ in range(spec.blocks - 1)]
        self.blocks = nn.Sequential(first, *rest)
        self.lateral = (pointwise(spec.out_channels, spec.lateral)
                        if spec.lateral is not None else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(x)

    def lateral_features(self, x: torch.Tensor) -> torch.Tensor:
        """``relu(lateral(x))`` for this stage's output ``x``."""
        assert self.lateral is not None
        return F.relu(self.lateral(x))

    def conv_plan(self) -> Iterator[tuple[nn.Conv2d, str]]:
        for block in self.blocks:
            assert isinstance(block, DoubleBottleneck)
            yield from block.conv_plan()
        if self.lateral is not None:
            yield self.lateral, "relu"


class TopDownLevel(nn.Module):
    """One top-down level (see :class:`LevelSpec`). ``x``: N×in×h×w; ``lateral``:
    N×channels×2h×2w; output N×channels×2h×2w."""

    def __init__(self, in_channels: int, spec: LevelSpec) -> None:
        super().__init__()
        self.narrow = pointwise(in_channels, spec.channels)
        self.blocks = nn.Sequential(*(DoubleBottleneck(spec.channels, spec.narrow,
                                                       spec.channels)
                                      for _ in range(spec.blocks)))

    def forward(self, x: torch.Tensor, lateral: torch.Tensor) -> torch.Tensor:
        # half-pixel bilinear, as TF's ResizeBilinear(half_pixel_centers=True)
        up = F.interpolate(F.relu(self.narrow(x)), scale_factor=2.0, mode="bilinear",
                           align_corners=False)
        return self.blocks(up + lateral)

    def conv_plan(self) -> Iterator[tuple[nn.Conv2d, str]]:
        yield self.narrow, "relu"
        for block in self.blocks:
            assert isinstance(block, DoubleBottleneck)
            yield from block.conv_plan()


class AnchorHead(nn.Module):
    """1×1 conv to ``4·width`` channels, depthwise 3×3 stride 2, depth-to-space ×2 in
    TF's order, flattened: N×C×48×48 → N×2304×width (anchor = row·48 + col)."""

    def __init__(self, in_channels: int, width: int) -> None:
        super().__init__()
        self.width = width
        self.expand = pointwise(in_channels, 4 * width)
        self.reduce = depthwise3x3(4 * width, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.reduce(self.expand(x))               # N × (2·2·width) × h × w
        n, _, h, w = y.shape
        # TF DepthToSpace (DCR): channel (dy·2 + dx)·width + c goes to (2h + dy, 2w + dx)
        y = y.reshape(n, 2, 2, self.width, h, w).permute(0, 4, 1, 5, 2, 3)
        return y.reshape(n, 4 * h * w, self.width)

    def conv_plan(self) -> Iterator[tuple[nn.Conv2d, str]]:
        yield self.expand, "none"
        yield self.reduce, "none"


class FaceDetector(nn.Module):
    """The full-range face detector. Input ``image`` N×3×192×192 float32 RGB in [-1, 1];
    returns ``(regressors N×2304×16, scores N×2304×1)``, float32, raw as the ``.tflite``
    gives them (see the module docstring)."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, STEM_CHANNELS, 3, stride=2, padding=1)
        self.stages = nn.ModuleList(Stage(spec) for spec in BACKBONE)
        levels, channels = [], BACKBONE[-1].out_channels
        for spec in TOP_DOWN:
            levels.append(TopDownLevel(channels, spec))
            channels = spec.channels
        self.top_down = nn.ModuleList(levels)
        self.score_head = AnchorHead(channels, HEAD_WIDTH["scores"])
        self.box_head = AnchorHead(channels, HEAD_WIDTH["regressors"])

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = F.relu(self.stem(image))
        laterals = []
        for stage in self.stages:
            x = stage(x)
            assert isinstance(stage, Stage)
            if stage.lateral is not None:
                laterals.append(stage.lateral_features(x))
        for level, lateral in zip(self.top_down, reversed(laterals), strict=True):
            x = level(x, lateral)
        return self.box_head(x), self.score_head(x)

    def conv_plan(self) -> Iterator[tuple[nn.Conv2d, str]]:
        """Every convolution with its fused activation, in the ``.tflite``'s execution
        order (the loader relies on it)."""
        yield self.stem, "relu"
        for stage in self.stages:
            assert isinstance(stage, Stage)
            yield from stage.conv_plan()
        for level in self.top_down:
            assert isinstance(level, TopDownLevel)
            yield from level.conv_plan()
        yield from self.score_head.conv_plan()
        yield from self.box_head.conv_plan()


# --------------------------------------------------------------------------- .tflite


@dataclasses.dataclass
class ConvRecord:
    """One convolution read from the graph: op name, kernel as stored (float32,
    O×H×W×I or 1×H×W×C for depthwise), bias, options, and the symmetric zero padding a
    ``PAD`` op applied to its input (0 when none)."""

    op: str
    kernel: np.ndarray
    bias: np.ndarray
    options: tflite_graph.ConvOptions
    pad: int


@dataclasses.dataclass
class FaceGraph:
    """What :func:`read_tflite` takes from the file: input shape (NHWC), output shapes
    by role, and the convolutions in execution order."""

    input_shape: tuple[int, ...]
    output_shapes: dict[str, tuple[int, ...]]
    convs: list[ConvRecord]


def _symmetric_pad(paddings: np.ndarray) -> int:
    """The spatial padding of a ``PAD`` op on NHWC, if it is equal on all four sides."""
    if paddings.shape != (4, 2) or paddings[0].any() or paddings[3].any() \
            or len(set(paddings[1:3].reshape(-1).tolist())) != 1:
        raise ValueError(f"unsupported PAD {paddings.tolist()}")
    return int(paddings[1, 0])


def read_tflite(data: bytes) -> FaceGraph:
    """Parse the face detector's ``.tflite`` bytes into a :class:`FaceGraph`."""
    model = tflite_graph.open_model(data)
    if model.SubgraphsLength() != 1:
        raise ValueError(f"expected one subgraph, found {model.SubgraphsLength()}")
    graph = model.Subgraphs(0)
    if graph.InputsLength() != 1 or graph.OutputsLength() != 2:
        raise ValueError("expected one input and two outputs")
    values: dict[int, np.ndarray] = {}   # tensor index → constant (dense float32)
    pads: dict[int, int] = {}            # tensor index → padding its PAD op applied
    convs: list[ConvRecord] = []
    for k in range(graph.OperatorsLength()):
        op = graph.Operators(k)
        name = tflite_graph.op_name(model, op)
        inputs = [int(i) for i in op.InputsAsNumpy()]
        output = int(op.OutputsAsNumpy()[0])
        if name in ("DEQUANTIZE", "DENSIFY"):
            value = values.get(inputs[0])
            if value is None:
                value = tflite_graph.constant(model, graph, inputs[0])
            if value is None:
                raise ValueError(f"{name} op {k} has no constant input")
            values[output] = value
        elif name == "PAD":
            pads[output] = _symmetric_pad(tflite_graph.int_constant(model, graph, inputs[1]))
        elif name in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            weights = []
            for index in inputs[1:3]:
                value = values.get(index)
                if value is None:
                    value = tflite_graph.constant(model, graph, index)
                if value is None:
                    raise ValueError(f"op {k} ({name}) has a non-constant weight")
                weights.append(value)
            convs.append(ConvRecord(name, weights[0], weights[1],
                                    tflite_graph.conv_options(op, name),
                                    pads.get(inputs[0], 0)))
    outputs = [tflite_graph.tensor_shape(graph, int(i)) for i in graph.OutputsAsNumpy()]
    by_role = {"regressors": outputs[0], "scores": outputs[1]}
    return FaceGraph(tflite_graph.tensor_shape(graph, int(graph.InputsAsNumpy()[0])),
                     by_role, convs)


def _torch_weight(record: ConvRecord) -> torch.Tensor:
    kernel = torch.from_numpy(record.kernel.copy())
    if record.op == "DEPTHWISE_CONV_2D":
        return kernel.permute(3, 0, 1, 2)  # 1×H×W×C → C×1×H×W
    return kernel.permute(0, 3, 1, 2)      # O×H×W×I → O×I×H×W


def _effective_padding(record: ConvRecord) -> int:
    """The symmetric padding the op applies in total (explicit ``PAD`` + SAME at
    stride 1 for odd kernels; SAME at stride 2 is asymmetric and refused)."""
    size = record.kernel.shape[1]
    if record.options.padding == "valid":
        return record.pad
    if record.options.strides == (1, 1) and size % 2 == 1:
        return record.pad + size // 2
    raise ValueError(f"unsupported SAME padding for a {size}×{size} stride "
                     f"{record.options.strides} convolution")


def model_from_graph(graph: FaceGraph) -> FaceDetector:
    """A :class:`FaceDetector` holding ``graph``'s weights (``ValueError`` on any mismatch
    of shapes, op kinds, strides, padding or activations)."""
    if graph.input_shape != (1, INPUT_SIZE, INPUT_SIZE, 3):
        raise ValueError(f"unexpected input shape {graph.input_shape}")
    expected = {"regressors": (1, NUM_ANCHORS, NUM_COORDS), "scores": (1, NUM_ANCHORS, 1)}
    if graph.output_shapes != expected:
        raise ValueError(f"unexpected output shapes {graph.output_shapes}")
    model = FaceDetector()
    plan = list(model.conv_plan())
    if len(plan) != len(graph.convs):
        raise ValueError(f"the graph has {len(graph.convs)} convolutions, the module "
                         f"{len(plan)}")
    with torch.no_grad():
        for position, ((module, activation), record) in enumerate(
                zip(plan, graph.convs, strict=True)):
            op = "DEPTHWISE_CONV_2D" if module.groups > 1 else "CONV_2D"
            weight = _torch_weight(record)
            assert module.bias is not None
            problems = []
            if record.op != op:
                problems.append(f"is {record.op}, expected {op}")
            if record.options.strides != tuple(module.stride):
                problems.append(f"stride {record.options.strides}")
            if _effective_padding(record) != module.padding[0]:
                problems.append(f"padding {_effective_padding(record)}")
            if record.options.activation != activation:
                problems.append(f"activation {record.options.activation}")
            if weight.shape != module.weight.shape or record.bias.shape != tuple(
                    module.bias.shape):
                problems.append(f"kernel {tuple(record.kernel.shape)}")
            if problems:
                raise ValueError(f"convolution {position} does not fit the module "
                                 f"({', '.join(problems)})")
            module.weight.copy_(weight)
            module.bias.copy_(torch.from_numpy(record.bias.copy()))
    return model.eval()


def load_tflite(source: Path | bytes) -> FaceDetector:
    """Read ``face_detection_full_range_sparse.tflite`` (path or bytes) into a
    :class:`FaceDetector` in eval mode, float32 on the CPU.

    Raises :class:`ModelError` with one line when the file is missing, truncated,
    corrupt, or not this architecture.
    """
    def build(data: bytes) -> tuple[FaceDetector, str]:
        graph = read_tflite(data)
        return model_from_graph(graph), f"{len(graph.convs)} convolutions"

    return tflite_graph.load_model(source, "full-range face detector", build)


def load_state_dict(path: Path) -> FaceDetector:
    """A :class:`FaceDetector` with the plain state dict at ``path`` (written by
    ``models fetch``), loaded with ``weights_only=True``; :class:`ModelError` when the
    file is missing, unsafe or does not fit."""
    try:
        state: Any = torch.load(path, map_location="cpu", weights_only=True)
        model = FaceDetector()
        model.load_state_dict(state, strict=True)
    except FileNotFoundError:
        raise ModelError(f"{path} is missing; run `localsr-cam models fetch`") from None
    except Exception as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelError(f"{path} is not a face detector state dict ({reason}); "
                         f"run `localsr-cam models fetch`") from exc
    return model.eval()
