"""MediaPipe's selfie segmenter, rewritten as PyTorch modules, with a ``.tflite`` loader.

The network (MediaPipe ``selfie_segmentation*.tflite``, Apache-2.0) is a MobileNetV3-like
encoder followed by a small U-Net decoder:

- stem: 3×3 stride-2 convolution, hard-swish;
- encoder: eight inverted residual blocks (1×1 expand, depthwise k×k, optional
  squeeze-excite, 1×1 project, identity skip where shapes allow), down to 1/16 scale;
- head: an LR-ASPP-like block (1×1 conv + ReLU, gated by a sigmoid of the pooled
  features);
- decoder: three stages, each: bilinear ×2 upsampling and a 1×1 conv, a skip from the
  encoder gated by a squeeze-excite computed on ``skip + up``, then a 1×1 conv + ReLU
  and a residual 3×3 depthwise conv + ReLU;
- output: 2×2 stride-2 transposed convolution to one channel, sigmoid.

Two variants share this graph and differ only in the input size: ``general`` (256×256)
and ``landscape`` (144×256, H×W). Our module takes N×3×H×W float32 RGB in [0,1] (the
``.tflite`` takes NHWC) and returns an N×1×H×W float32 probability map in [0,1].

TensorFlow "SAME" padding on a stride-2 convolution puts the extra row/column at the
bottom/right; PyTorch pads symmetrically, so :class:`SameConv2d` reproduces TF's windows.
Every H and W seen by a stride-2 layer must be even, which holds when the input's H and
W are multiples of 16 (both variants).

:func:`load_tflite` reads the weights (fp16 constants behind ``DEQUANTIZE`` ops) with
the ``tflite`` flatbuffer package and maps them onto the modules by Keras layer name:
Keras numbers layers of one class in the order they were created, which is the order in
which this file registers them.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from localsr_cam.errors import ModelError
from localsr_cam.models.tflite_graph import constant as _constant
from localsr_cam.models.tflite_graph import load_model
from localsr_cam.models.tflite_graph import op_name as _op_name

log = logging.getLogger(__name__)

#: Input size (H, W) of each variant, keyed by the model names of the zoo's registry.
VARIANTS: dict[str, tuple[int, int]] = {
    "selfie": (256, 256),
    "selfie-landscape": (144, 256),
}


# --------------------------------------------------------------------------- layers


class SameConv2d(nn.Conv2d):
    """``nn.Conv2d`` with TensorFlow's "SAME" padding; ``weight`` is k×k as in TF.

    For an input whose H and W are multiples of ``stride`` TF pads ``kernel - stride``
    in total along each axis, the smaller half top/left and the larger bottom/right.
    Where the halves are equal the convolution's own padding does it. Where they differ
    (stride 2: 0/1 for 3×3, 1/2 for 5×5) we convolve with the kernel zero-extended by
    one row and one column at the top/left, padded symmetrically by the larger half:
    window ``i`` then covers ``[s*i - after, s*i - after + k]``, whose first row/column
    has zero weight, which leaves exactly TF's window ``[s*i - before, s*i - before + k)``
    and the same output size. One plain convolution, no ``Pad`` op: exported graphs stay
    static and foldable.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int,
                 stride: int = 1, groups: int = 1) -> None:
        total = max(kernel_size - stride, 0)
        before, after = total // 2, total - total // 2
        super().__init__(in_channels, out_channels, kernel_size, stride,
                         padding=after, groups=groups)
        if after - before not in (0, 1):
            raise ValueError(f"unsupported SAME padding {before}/{after}")
        self.extend_kernel = after != before

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.weight
        if self.extend_kernel:
            out_ch, in_ch, k_h, k_w = weight.shape
            weight = torch.cat([weight.new_zeros(out_ch, in_ch, 1, k_w), weight], dim=2)
            weight = torch.cat([weight.new_zeros(out_ch, in_ch, k_h + 1, 1), weight], dim=3)
        return F.conv2d(x, weight, self.bias, self.stride, self.padding, 1, self.groups)


def depthwise(channels: int, kernel_size: int, stride: int = 1) -> SameConv2d:
    """A depthwise ``SameConv2d`` (one filter per channel)."""
    return SameConv2d(channels, channels, kernel_size, stride, groups=channels)


def pointwise(in_channels: int, out_channels: int) -> nn.Conv2d:
    """A 1×1 convolution with bias."""
    return nn.Conv2d(in_channels, out_channels, 1)


def global_mean(x: torch.Tensor) -> torch.Tensor:
    """N×C×H×W → N×C×1×1 mean over H and W (TF's global average pooling)."""
    return F.adaptive_avg_pool2d(x, 1)


def make_activation(name: str) -> nn.Module:
    """``"relu"`` or ``"hswish"`` (TF's ``x * relu6(x + 3) / 6``, same as PyTorch's)."""
    return nn.ReLU() if name == "relu" else nn.Hardswish()


class SqueezeExcite(nn.Module):
    """Channel gate: ``x * sigmoid(W2 relu(W1 mean(x)))`` with 1×1 convs."""

    def __init__(self, channels: int, squeezed: int) -> None:
        super().__init__()
        self.reduce = pointwise(channels, squeezed)
        self.expand = pointwise(squeezed, channels)

    def gate(self, x: torch.Tensor) -> torch.Tensor:
        """N×C×1×1 gate in (0, 1) computed from the mean of ``x`` (N×C×H×W)."""
        return torch.sigmoid(self.expand(F.relu(self.reduce(global_mean(x)))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(x)


@dataclasses.dataclass(frozen=True)
class BlockSpec:
    """One inverted residual block: channels in/expanded/out, depthwise kernel and
    stride, activation name, squeeze-excite width (``None``: no squeeze-excite)."""

    in_channels: int
    expanded: int
    out_channels: int
    kernel: int
    stride: int
    activation: str
    squeezed: int | None


#: The encoder as read from the ``.tflite`` graph (same for both variants).
ENCODER: tuple[BlockSpec, ...] = (
    BlockSpec(16, 16, 16, 3, 2, "relu", 8),      # → 1/4,  skip for the last-but-one stage
    BlockSpec(16, 72, 24, 3, 2, "relu", None),   # → 1/8
    BlockSpec(24, 88, 24, 3, 1, "relu", None),   # residual, skip for the first stage
    BlockSpec(24, 96, 32, 5, 2, "hswish", 24),   # → 1/16
    BlockSpec(32, 128, 32, 5, 1, "hswish", 32),
    BlockSpec(32, 128, 32, 5, 1, "hswish", 32),
    BlockSpec(32, 96, 32, 5, 1, "hswish", 24),
    BlockSpec(32, 96, 32, 5, 1, "hswish", 24),
)
SKIP_AFTER_BLOCKS = (0, 2)  # indices into ENCODER whose outputs feed the decoder
HEAD_CHANNELS = 128
STEM_CHANNELS = 16


class InvertedResidual(nn.Module):
    """1×1 expand → depthwise k×k (stride s) → [squeeze-excite] → 1×1 project (linear),
    plus the input when stride is 1 and the channel count is unchanged."""

    def __init__(self, spec: BlockSpec) -> None:
        super().__init__()
        self.expand = pointwise(spec.in_channels, spec.expanded)
        self.depthwise = depthwise(spec.expanded, spec.kernel, spec.stride)
        self.se = SqueezeExcite(spec.expanded, spec.squeezed) if spec.squeezed else None
        self.project = pointwise(spec.expanded, spec.out_channels)
        self.act = make_activation(spec.activation)
        self.residual = spec.stride == 1 and spec.in_channels == spec.out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.act(self.depthwise(self.act(self.expand(x))))
        if self.se is not None:
            y = self.se(y)
        y = self.project(y)
        return x + y if self.residual else y


class GatedHead(nn.Module):
    """LR-ASPP-like head: ``relu(conv(x)) * sigmoid(conv(mean(x)))``, 32 → 128 channels."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.features = pointwise(in_channels, out_channels)
        self.context = pointwise(in_channels, out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.features(x)) * torch.sigmoid(self.context(global_mean(x)))


class DecoderStage(nn.Module):
    """Upsample ×2, fuse a gated encoder skip, refine.

    ``up = conv1x1(bilinear×2(x))``; ``fused = skip * gate(skip + up) + up``;
    ``a = relu(conv1x1(fused))``; output ``a + relu(depthwise3×3(a))``.
    ``x``: N×in×h×w; ``skip``: N×out×2h×2w; output N×out×2h×2w.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.up = pointwise(in_channels, out_channels)
        self.gate = SqueezeExcite(out_channels, out_channels)
        self.refine = pointwise(out_channels, out_channels)
        self.refine_dw = depthwise(out_channels, 3)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        # half-pixel bilinear, as TF's ResizeBilinear(half_pixel_centers=True)
        up = self.up(F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False))
        fused = skip * self.gate.gate(skip + up) + up
        a = F.relu(self.refine(fused))
        return a + F.relu(self.refine_dw(a))


class SelfieSegmenter(nn.Module):
    """The selfie segmenter. Input N×3×H×W float32 RGB in [0,1] (H, W multiples of 16;
    the weights were trained at :data:`VARIANTS` sizes); output N×1×H×W float32
    person probability in [0,1]."""

    def __init__(self, input_size: tuple[int, int] = VARIANTS["selfie"]) -> None:
        super().__init__()
        if input_size[0] % 16 or input_size[1] % 16:
            raise ValueError(f"input H and W must be multiples of 16, got {input_size}")
        self.input_size = tuple(input_size)
        # Registration order = Keras creation order; load_tflite relies on it.
        self.stem = SameConv2d(3, STEM_CHANNELS, 3, stride=2)
        self.encoder = nn.ModuleList(InvertedResidual(spec) for spec in ENCODER)
        self.head = GatedHead(ENCODER[-1].out_channels, HEAD_CHANNELS)
        skip_channels = [ENCODER[i].out_channels for i in reversed(SKIP_AFTER_BLOCKS)]
        skip_channels.append(STEM_CHANNELS)
        stages, channels = [], HEAD_CHANNELS
        for out_channels in skip_channels:
            stages.append(DecoderStage(channels, out_channels))
            channels = out_channels
        self.decoder = nn.ModuleList(stages)
        self.output = nn.ConvTranspose2d(channels, 1, kernel_size=2, stride=2)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = F.hardswish(self.stem(image))
        skips = [x]
        for index, block in enumerate(self.encoder):
            x = block(x)
            if index in SKIP_AFTER_BLOCKS:
                skips.append(x)
        x = self.head(x)
        for stage, skip in zip(self.decoder, reversed(skips), strict=True):
            x = stage(x, skip)
        return torch.sigmoid(self.output(x))


def tflite_layer_names(model: SelfieSegmenter) -> Iterator[tuple[str, nn.Module, str]]:
    """``(module path, module, Keras layer name)`` for every convolution of ``model``.

    Keras names layers ``conv2d``, ``conv2d_1``, … and ``depthwise_conv2d``, … in
    creation order. The transposed convolution's name differs between variants and is
    reported as ``"<transpose>"``; the loader finds it by its op instead.
    """
    counters = {"conv2d": 0, "depthwise_conv2d": 0}
    for path, module in model.named_modules():
        if isinstance(module, nn.ConvTranspose2d):
            yield path, module, "<transpose>"
        elif isinstance(module, nn.Conv2d):
            base = "depthwise_conv2d" if module.groups > 1 else "conv2d"
            index = counters[base]
            counters[base] += 1
            yield path, module, base if index == 0 else f"{base}_{index}"


# --------------------------------------------------------------------------- .tflite


@dataclasses.dataclass
class TFLiteLayer:
    """One convolution read from the graph: op name, kernel as stored (float32,
    O×H×W×I for convs, 1×H×W×C for depthwise), bias (float32), strides (H, W)."""

    op: str
    kernel: np.ndarray
    bias: np.ndarray
    strides: tuple[int, int]


@dataclasses.dataclass
class TFLiteGraph:
    """What :func:`read_tflite` takes from a ``.tflite``: input/output shapes (NHWC) and
    the convolutions by Keras layer name (the transposed one under ``"<transpose>"``)."""

    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    layers: dict[str, TFLiteLayer]


_TRANSPOSE_OP = "Convolution2DTransposeBias"


def _strides(op: object, name: str) -> tuple[int, int]:
    import tflite

    if name == _TRANSPOSE_OP:
        # custom options: TfLiteTransposeConvParams {padding, stride_w, stride_h} as int32
        params = np.frombuffer(op.CustomOptionsAsNumpy().tobytes(), dtype="<i4")  # type: ignore[attr-defined]
        return int(params[2]), int(params[1])
    table = op.BuiltinOptions()  # type: ignore[attr-defined]
    options = (tflite.Conv2DOptions() if name == "CONV_2D"
               else tflite.DepthwiseConv2DOptions())
    options.Init(table.Bytes, table.Pos)
    return int(options.StrideH()), int(options.StrideW())


def read_tflite(data: bytes) -> TFLiteGraph:
    """Parse a selfie segmenter ``.tflite`` (its bytes) into a :class:`TFLiteGraph`.

    Raises ``ValueError``/``IndexError``/… on a malformed file; :func:`load_tflite`
    turns those into :class:`ModelError`.
    """
    import tflite

    if len(data) < 8 or data[4:8] != b"TFL3":
        raise ValueError("not a TFLite flatbuffer (no TFL3 identifier)")
    model = tflite.Model.GetRootAsModel(data, 0)
    if model.SubgraphsLength() != 1:
        raise ValueError(f"expected one subgraph, found {model.SubgraphsLength()}")
    graph = model.Subgraphs(0)
    shape = lambda i: tuple(int(d) for d in graph.Tensors(i).ShapeAsNumpy())  # noqa: E731
    if graph.InputsLength() != 1 or graph.OutputsLength() != 1:
        raise ValueError("expected one input and one output")
    values: dict[int, np.ndarray] = {}  # tensor index → constant value (dequantized)
    layers: dict[str, TFLiteLayer] = {}
    for k in range(graph.OperatorsLength()):
        op = graph.Operators(k)
        name = _op_name(model, op)
        inputs = [int(i) for i in op.InputsAsNumpy()]
        if name == "DEQUANTIZE":
            value = _constant(model, graph, inputs[0])
            if value is None:
                raise ValueError(f"DEQUANTIZE op {k} has no constant input")
            values[int(op.OutputsAsNumpy()[0])] = value
        elif name in ("CONV_2D", "DEPTHWISE_CONV_2D", _TRANSPOSE_OP):
            weights = []
            for index in inputs[1:3]:
                value = values.get(index)
                if value is None:
                    value = _constant(model, graph, index)
                if value is None:
                    raise ValueError(f"op {k} ({name}) has a non-constant weight")
                weights.append(value)
            kernel_name = graph.Tensors(inputs[1]).Name().decode()
            layer = "<transpose>" if name == _TRANSPOSE_OP else kernel_name.split("/")[0]
            if layer in layers:
                raise ValueError(f"layer {layer!r} appears twice")
            layers[layer] = TFLiteLayer(name, weights[0], weights[1], _strides(op, name))
    return TFLiteGraph(shape(int(graph.InputsAsNumpy()[0])),
                       shape(int(graph.OutputsAsNumpy()[0])), layers)


def _torch_weight(layer: TFLiteLayer, module: nn.Module) -> torch.Tensor:
    """The TFLite kernel laid out as ``module.weight`` expects."""
    kernel = torch.from_numpy(layer.kernel.copy())
    if isinstance(module, nn.ConvTranspose2d):
        return kernel.permute(3, 0, 1, 2)  # O×H×W×I → I×O×H×W (no flip: both are adjoints)
    if layer.op == "DEPTHWISE_CONV_2D":
        return kernel.permute(3, 0, 1, 2)  # 1×H×W×C → C×1×H×W
    return kernel.permute(0, 3, 1, 2)      # O×H×W×I → O×I×H×W


def _expected_op(module: nn.Module) -> str:
    if isinstance(module, nn.ConvTranspose2d):
        return _TRANSPOSE_OP
    assert isinstance(module, nn.Conv2d)
    return "DEPTHWISE_CONV_2D" if module.groups > 1 else "CONV_2D"


def model_from_graph(graph: TFLiteGraph) -> SelfieSegmenter:
    """Build a :class:`SelfieSegmenter` holding ``graph``'s weights (``ValueError`` on any
    mismatch of layer set, op kind, stride or shape)."""
    if len(graph.input_shape) != 4 or graph.input_shape[0] != 1 or graph.input_shape[3] != 3:
        raise ValueError(f"unexpected input shape {graph.input_shape} (want 1×H×W×3)")
    size = (graph.input_shape[1], graph.input_shape[2])
    if graph.output_shape != (1, *size, 1):
        raise ValueError(f"unexpected output shape {graph.output_shape}")
    model = SelfieSegmenter(size)
    used = set()
    state = {}
    for path, module, layer_name in tflite_layer_names(model):
        layer = graph.layers.get(layer_name)
        if layer is None:
            raise ValueError(f"layer {layer_name!r} (for {path}) is missing")
        assert isinstance(module, nn.Conv2d | nn.ConvTranspose2d)
        if layer.op != _expected_op(module) or layer.strides != tuple(module.stride):
            raise ValueError(f"layer {layer_name!r} is {layer.op} stride {layer.strides}, "
                             f"expected {_expected_op(module)} stride {tuple(module.stride)}")
        weight = _torch_weight(layer, module)
        assert module.bias is not None
        if weight.shape != module.weight.shape or layer.bias.shape != tuple(module.bias.shape):
            raise ValueError(f"layer {layer_name!r} has kernel {tuple(layer.kernel.shape)} "
                             f"bias {layer.bias.shape}, which does not fit {path}")
        state[f"{path}.weight"] = weight.contiguous()
        state[f"{path}.bias"] = torch.from_numpy(layer.bias.copy())
        used.add(layer_name)
    extra = sorted(set(graph.layers) - used)
    if extra:
        raise ValueError(f"unexpected layers in the graph: {', '.join(extra[:5])}")
    model.load_state_dict(state, strict=True)
    return model.eval()


def load_tflite(source: Path | bytes) -> SelfieSegmenter:
    """Read a selfie segmenter ``.tflite`` (path or bytes) into a :class:`SelfieSegmenter`
    in eval mode, float32 on the CPU. The variant follows from the graph's input shape.

    Raises :class:`ModelError` with one line when the file is missing, truncated,
    corrupt, or not this architecture.
    """
    def build(data: bytes) -> tuple[SelfieSegmenter, str]:
        graph = read_tflite(data)
        return (model_from_graph(graph),
                f"input {graph.input_shape}, {len(graph.layers)} layers")

    return load_model(source, "selfie segmenter", build)


def load_state_dict(path: Path, name: str) -> SelfieSegmenter:
    """A :class:`SelfieSegmenter` for variant ``name`` with the plain state dict at
    ``path`` (written by ``models fetch``), loaded with ``weights_only=True``.

    Raises :class:`ModelError` when the file is missing, unsafe or does not fit.
    """
    if name not in VARIANTS:
        raise ModelError(f"unknown selfie variant {name!r}; known: {', '.join(VARIANTS)}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        model = SelfieSegmenter(VARIANTS[name])
        model.load_state_dict(state, strict=True)
    except FileNotFoundError:
        raise ModelError(f"{path} is missing; run `localsr-cam models fetch`") from None
    except Exception as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelError(f"{path} is not a {name} state dict ({reason}); "
                         f"run `localsr-cam models fetch`") from exc
    return model.eval()
