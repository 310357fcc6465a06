"""Rewrites of an exported SR graph that the CPU engine makes when it loads one.

Each takes the ONNX bytes and returns the rewritten bytes, or ``None`` when the graph
has nothing to rewrite (an older export, another model). The file on disk stays the one
reference form that export, training, quantization and TensorRT use.

- :func:`without_chroma_step`: the JPEG chroma step bypassed, for clean frames.
- :func:`with_subpixel_output`: the last step, the sub-pixel shuffle to the 2× image,
  left out; the engine then gives the 12 sub-pixel planes (``sr_planes``), which
  :func:`localsr_cam.process.ops.sr_to_bgr8` shuffles after rounding to uint8, where
  moving the pixels costs a quarter as much (0.37 against 1.4 ms for a 352×360 box).
- :func:`without_odd_size_crop`: the crop after FastUNet's half-to-full resolution
  step left out, for inputs of even height and width (where it crops nothing).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from localsr_cam.models.unet import pixel_shuffle_weight
from localsr_cam.runtime.base import INPUT_NAME, SR_NAME, SUBPIXEL_NAME

CHROMA_STEP = "/smoothing/"
"""Name prefix of the JPEG chroma step's nodes in an exported SR graph (the nets'
``smoothing`` module, :class:`localsr_cam.models.chroma.JpegChromaSmoothing`)."""


def without_chroma_step(model: bytes) -> bytes | None:
    """The ONNX SR graph ``model`` with its JPEG chroma step bypassed: what read the
    step's output (the smoothed image) reads the ``image`` input instead, and the nodes
    left unused are gone. ``None`` when the graph has no such step. For frames whose
    JPEG level is under the step's gate it computes the same numbers, without the step
    (3 ms of 31 for a 352×360 crop on one thread).

    The smoothed image is the step's output read last in the graph's (topological)
    order: a graph made ready for quantization shares the step's shape arithmetic (an
    ``Unsqueeze`` of the image height, ...) with the rest of the net, and those few
    nodes stay.
    """
    import onnx

    graph_model = onnx.load_from_string(model)
    graph = graph_model.graph
    order = {name: index for index, node in enumerate(graph.node) for name in node.output}
    step = [node for node in graph.node if node.name.startswith(CHROMA_STEP)]
    produced = {name for node in step for name in node.output}
    consumed = {name for node in graph.node if not node.name.startswith(CHROMA_STEP)
                for name in node.input if name in produced}
    if not consumed:
        return None
    conditioned = max(consumed, key=order.__getitem__)
    _read_instead((node for node in graph.node if not node.name.startswith(CHROMA_STEP)),
                  conditioned, INPUT_NAME)
    _prune(graph)  # the step, the JPEG level's gather
    return graph_model.SerializeToString()


def without_odd_size_crop(model: bytes) -> bytes | None:
    """The ONNX SR graph ``model`` without the crop that follows FastUNet's ``up``
    transposed conv (:class:`~localsr_cam.models.unet.FastUNetExportForm`): what read
    the crop reads the conv's output instead. The conv doubles ``⌈h/2⌉×⌈w/2⌉``, so the
    crop to ``h×w`` cuts a row or column only for an odd side: for inputs of even
    height and width the result is the same numbers, and ONNX Runtime's copy of the
    whole LR-resolution feature map is saved (0.5–0.7 ms of 20–22 on a 352×360 box,
    int8, one thread). ``None`` unless the graph is an SR net's (its output ``sr`` or
    ``sr_planes``) with such crops: ``Slice`` nodes of the height or width from 0 with
    step 1 that read a ``ConvTranspose`` (directly or through another such ``Slice``),
    all the same one. A net that halves twice or more (PaperUNet's decoder crops at a
    quarter of the resolution too, which cuts for some even sizes) is left as it is."""
    import onnx
    from onnx import numpy_helper

    graph_model = onnx.load_from_string(model)
    graph = graph_model.graph
    graph_outputs = {output.name for output in graph.output}
    if not graph_outputs <= {SR_NAME, SUBPIXEL_NAME}:
        return None
    made_by = {name: node for node in graph.node for name in node.output}
    initializers = {tensor.name: tensor for tensor in graph.initializer}

    def constant(name: str) -> np.ndarray | None:
        if name in initializers:
            return numpy_helper.to_array(initializers[name])
        node = made_by.get(name)
        if node is None or node.op_type != "Constant":
            return None
        value = [a.t for a in node.attribute if a.name == "value"]
        return numpy_helper.to_array(value[0]) if value else None

    def cropped(node: Any) -> Any:
        """The ``ConvTranspose`` that ``node`` crops, or None."""
        if node.op_type != "Slice" or node.output[0] in graph_outputs:
            return None
        starts = constant(node.input[1])
        axes = constant(node.input[3]) if len(node.input) > 3 and node.input[3] else None
        steps = constant(node.input[4]) if len(node.input) > 4 and node.input[4] else None
        if starts is None or starts.any() or (steps is not None and (steps != 1).any()) \
                or axes is None or not set(axes.tolist()) <= {2, 3, -2, -1}:
            return None
        source = made_by.get(node.input[0])
        if source is None or source.op_type == "ConvTranspose":
            return source
        return cropped(source)

    ups = {node.output[0]: cropped(node) for node in graph.node}
    crops = [made_by[name] for name, up in ups.items() if up is not None]
    if len({up.name for up in ups.values() if up is not None}) != 1:
        return None
    for crop in crops:
        _read_instead(graph.node, crop.output[0], crop.input[0])
    _prune(graph)  # the crops, and the shape arithmetic that only they read
    return graph_model.SerializeToString()


def _read_instead(nodes: Iterable[Any], old: str, new: str) -> None:
    """Every input named ``old`` of ``nodes`` (``onnx.NodeProto``) reads ``new`` instead."""
    for node in nodes:
        for index, name in enumerate(node.input):
            if name == old:
                node.input[index] = new


def _prune(graph: Any) -> None:
    """Remove from ``graph`` (an ``onnx.GraphProto``) the nodes whose outputs nothing
    reads any more, repeatedly."""
    kept = list(graph.node)
    outputs = {output.name for output in graph.output}
    while True:
        read = {name for node in kept for name in node.input} | outputs
        live = [node for node in kept if any(name in read for name in node.output)]
        if len(live) == len(kept):
            break
        kept = live
    del graph.node[:]
    graph.node.extend(kept)


def with_subpixel_output(model: bytes) -> bytes | None:
    """The ONNX SR graph ``model`` without its final pixel shuffle: the output is
    ``sr_planes``, N×12×h×w float32, channel ``c·4 + 2a + b`` holding colour ``c`` of
    the output pixels ``(2i+a, 2j+b)``. ``None`` unless ``sr`` is made by a stride-2
    ``ConvTranspose`` whose weight is exactly FastUNet's
    :func:`~localsr_cam.models.unet.pixel_shuffle_weight` (no bias, no padding, one
    group)."""
    import onnx
    from onnx import helper, numpy_helper

    graph_model = onnx.load_from_string(model)
    graph = graph_model.graph
    last = [node for node in graph.node if SR_NAME in node.output]
    if len(graph.output) != 1 or graph.output[0].name != SR_NAME or len(last) != 1:
        return None
    (node,) = last
    weights = {tensor.name: tensor for tensor in graph.initializer}
    attributes = {attribute.name: helper.get_attribute_value(attribute)
                  for attribute in node.attribute}
    if node.op_type != "ConvTranspose" or len(node.input) != 2 \
            or node.input[1] not in weights \
            or list(attributes.get("strides", [])) != [2, 2] \
            or any(attributes.get("pads", [0])) or attributes.get("group", 1) != 1 \
            or any(attributes.get("output_padding", [0])):
        return None
    weight = numpy_helper.to_array(weights[node.input[1]])
    expected = pixel_shuffle_weight().numpy()
    if weight.shape != expected.shape or not np.array_equal(weight, expected):
        return None
    planes = node.input[0]
    for other in graph.node:  # the shuffle's input becomes the graph's output
        for index, name in enumerate(other.output):
            if name == planes:
                other.output[index] = SUBPIXEL_NAME
    _read_instead(graph.node, planes, SUBPIXEL_NAME)
    graph.node.remove(node)
    if not any(n.input[1] == node.input[1] for n in graph.node if len(n.input) > 1):
        graph.initializer.remove(weights[node.input[1]])
    dims = graph.output[0].type.tensor_type.shape.dim
    del graph.output[:]
    graph.output.append(helper.make_tensor_value_info(
        SUBPIXEL_NAME, onnx.TensorProto.FLOAT,
        [dims[0].dim_param or None, int(expected.shape[0]), "height", "width"]))
    return graph_model.SerializeToString()
