"""Rewrites of an exported SR graph that the CPU engine makes when it loads one.

Each takes the ONNX bytes and returns the rewritten bytes, or ``None`` when the graph
has nothing to rewrite (an older export, another model). The file on disk stays the one
reference form that export, training, quantization and TensorRT use.

- :func:`without_chroma_step`: the JPEG chroma step bypassed, for clean frames.
- :func:`with_subpixel_output`: the last step, the sub-pixel shuffle to the 2× image,
  left out; the engine then gives the 12 sub-pixel planes (``sr_planes``), which
  :func:`localsr_cam.process.ops.sr_to_bgr8` shuffles after rounding to uint8, where
  moving the pixels costs a quarter as much (0.37 against 1.4 ms for a 352×360 box).
"""

from __future__ import annotations

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
    kept = list(graph.node)
    for node in kept:
        if node.name.startswith(CHROMA_STEP):
            continue
        for index, name in enumerate(node.input):
            if name == conditioned:
                node.input[index] = INPUT_NAME
    outputs = {output.name for output in graph.output}
    while True:  # prune what nothing reads any more (the step, the JPEG level's gather)
        read = {name for node in kept for name in node.input} | outputs
        live = [node for node in kept if any(name in read for name in node.output)]
        if len(live) == len(kept):
            break
        kept = live
    del graph.node[:]
    graph.node.extend(kept)
    return graph_model.SerializeToString()


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
        for index, name in enumerate(other.input):
            if name == planes:
                other.input[index] = SUBPIXEL_NAME
    graph.node.remove(node)
    if not any(n.input[1] == node.input[1] for n in graph.node if len(n.input) > 1):
        graph.initializer.remove(weights[node.input[1]])
    dims = graph.output[0].type.tensor_type.shape.dim
    del graph.output[:]
    graph.output.append(helper.make_tensor_value_info(
        SUBPIXEL_NAME, onnx.TensorProto.FLOAT,
        [dims[0].dim_param or None, int(expected.shape[0]), "height", "width"]))
    return graph_model.SerializeToString()
