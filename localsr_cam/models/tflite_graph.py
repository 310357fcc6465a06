"""Reading a ``.tflite`` flatbuffer: op names, constant tensors, convolution options.

Shared by the ports of MediaPipe's models (:mod:`.selfie`, :mod:`.face_detector`). Only
the ``tflite`` flatbuffer package is needed (imported inside the functions), never a
TensorFlow or LiteRT runtime.

Constants come back as float32 numpy arrays in the layout the file stores (NHWC-style:
convolution kernels O×H×W×I, depthwise kernels 1×H×W×C). Half-precision constants are
widened; constants stored sparsely (the ``*_sparse`` models keep 1×1 kernels in CSR
form, expanded at run time by a ``DENSIFY`` op) are expanded here by
:func:`densify`. Everything raises ``ValueError``/``IndexError`` on a malformed file;
the model loaders turn those into :class:`~localsr_cam.errors.ModelError`.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from localsr_cam.errors import ModelError

log = logging.getLogger(__name__)

Built = TypeVar("Built")

#: TFLite's fused activation codes we support, by name.
ACTIVATIONS = {0: "none", 1: "relu", 3: "relu6"}
#: TFLite's padding codes.
PADDINGS = {0: "same", 1: "valid"}


def open_model(data: bytes) -> Any:
    """The ``tflite.Model`` root of ``data``; ``ValueError`` unless it is a TFLite file."""
    import tflite

    if len(data) < 8 or data[4:8] != b"TFL3":
        raise ValueError("not a TFLite flatbuffer (no TFL3 identifier)")
    return tflite.Model.GetRootAsModel(data, 0)


def op_name(model: Any, op: Any) -> str:
    """The op's builtin name (``"CONV_2D"``), or its custom code for a custom op."""
    import tflite

    code = model.OperatorCodes(op.OpcodeIndex())
    builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
    if builtin == tflite.BuiltinOperator.CUSTOM:
        return str(code.CustomCode().decode())
    names = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}
    return names.get(builtin, str(builtin))


def tensor_shape(graph: Any, index: int) -> tuple[int, ...]:
    """The static shape of tensor ``index`` (``()`` for a scalar)."""
    tensor = graph.Tensors(index)
    return tuple(int(d) for d in tensor.ShapeAsNumpy()) if tensor.ShapeLength() else ()


def _int_vector(table: Any, kind: int) -> np.ndarray:
    """A ``SparseIndexVector`` union member as an int64 array (``kind``: 1 int32,
    2 uint16, 3 uint8)."""
    import tflite

    classes = {1: tflite.Int32Vector, 2: tflite.Uint16Vector, 3: tflite.Uint8Vector}
    if kind not in classes:
        raise ValueError(f"unsupported sparse index vector type {kind}")
    vector = classes[kind]()
    vector.Init(table.Bytes, table.Pos)
    return np.asarray(vector.ValuesAsNumpy(), dtype=np.int64)


@dataclasses.dataclass(frozen=True)
class SparseDim:
    """One dimension of a sparse tensor in traversal order: ``dense_size`` for a dense
    dimension, else the CSR ``segments`` and ``indices`` arrays."""

    dense_size: int
    segments: np.ndarray | None = None
    indices: np.ndarray | None = None


def densify(values: np.ndarray, shape: tuple[int, ...], traversal: tuple[int, ...],
            dims: list[SparseDim]) -> np.ndarray:
    """Expand TFLite's sparse storage (no block map) into a dense array of ``shape``.

    ``values`` holds the stored (non-zero) elements in traversal order; ``traversal``
    names, for each level, the dimension of ``shape`` it walks; ``dims`` describes each
    level (dense: every coordinate in ``range(dense_size)``; CSR: the children of the
    ``p``-th parent are ``indices[segments[p]:segments[p + 1]]``).
    """
    if sorted(traversal) != list(range(len(shape))) or len(dims) != len(shape):
        raise ValueError(f"sparse traversal {traversal} does not fit shape {shape}")
    # coords[k] = the coordinate, along traversal[level], of the k-th element so far
    coords = np.zeros((1, 0), dtype=np.int64)
    for level, dim in enumerate(dims):
        parents = coords.shape[0]
        if dim.segments is None or dim.indices is None:
            size = dim.dense_size if dim.dense_size else shape[traversal[level]]
            child = np.tile(np.arange(size, dtype=np.int64), parents)
            parent = np.repeat(np.arange(parents), size)
        else:
            segments = dim.segments
            if len(segments) != parents + 1 or segments[-1] > len(dim.indices):
                raise ValueError("sparse segments do not match the parent level")
            counts = np.diff(segments)
            parent = np.repeat(np.arange(parents), counts)
            child = dim.indices[segments[0]:segments[-1]]
        coords = np.concatenate([coords[parent], child[:, None]], axis=1)
    if coords.shape[0] != values.size:
        raise ValueError(f"sparse tensor lists {coords.shape[0]} positions for "
                         f"{values.size} values")
    dense = np.zeros(shape, dtype=values.dtype)
    index = [np.empty(0, dtype=np.int64)] * len(shape)
    for level, axis in enumerate(traversal):
        index[axis] = coords[:, level]
    if any((ix >= shape[axis]).any() for axis, ix in enumerate(index)):
        raise ValueError("sparse index out of range")
    dense[tuple(index)] = values.reshape(-1)
    return dense


def _sparse_layout(tensor: Any) -> tuple[tuple[int, ...], list[SparseDim]] | None:
    sparsity = tensor.Sparsity()
    if sparsity is None:
        return None
    if sparsity.BlockMapLength():
        raise ValueError(f"tensor {tensor.Name().decode()} uses block sparsity (unsupported)")
    traversal = tuple(int(t) for t in sparsity.TraversalOrderAsNumpy())
    dims = []
    for level in range(sparsity.DimMetadataLength()):
        meta = sparsity.DimMetadata(level)
        if meta.Format() == 0:  # DENSE
            dims.append(SparseDim(int(meta.DenseSize())))
        else:  # SPARSE_CSR
            dims.append(SparseDim(0, _int_vector(meta.ArraySegments(), meta.ArraySegmentsType()),
                                  _int_vector(meta.ArrayIndices(), meta.ArrayIndicesType())))
    return traversal, dims


def constant(model: Any, graph: Any, index: int) -> np.ndarray | None:
    """Constant tensor ``index`` as float32 (dense), or ``None`` if it holds no data."""
    import tflite

    tensor = graph.Tensors(index)
    data = model.Buffers(tensor.Buffer()).DataAsNumpy()
    if not isinstance(data, np.ndarray) or data.size == 0:
        return None
    dtypes = {tflite.TensorType.FLOAT16: "<f2", tflite.TensorType.FLOAT32: "<f4"}
    if tensor.Type() not in dtypes:
        raise ValueError(f"tensor {tensor.Name().decode()} has unsupported type {tensor.Type()}")
    values = np.frombuffer(data.tobytes(), dtype=dtypes[tensor.Type()]).astype(np.float32)
    shape = tuple(int(d) for d in tensor.ShapeAsNumpy())
    layout = _sparse_layout(tensor)
    if layout is not None:
        return densify(values, shape, *layout)
    return values.reshape(shape)


@dataclasses.dataclass(frozen=True)
class ConvOptions:
    """A builtin convolution's options: strides (H, W), padding (``"same"``/``"valid"``),
    fused activation (``"none"``, ``"relu"``, ``"relu6"``)."""

    strides: tuple[int, int]
    padding: str
    activation: str


def conv_options(op: Any, name: str) -> ConvOptions:
    """The options of a ``CONV_2D`` or ``DEPTHWISE_CONV_2D`` op."""
    import tflite

    table = op.BuiltinOptions()
    options: Any = (tflite.Conv2DOptions() if name == "CONV_2D"
                    else tflite.DepthwiseConv2DOptions())
    options.Init(table.Bytes, table.Pos)
    activation = int(options.FusedActivationFunction())
    if activation not in ACTIVATIONS:
        raise ValueError(f"unsupported fused activation {activation}")
    return ConvOptions((int(options.StrideH()), int(options.StrideW())),
                       PADDINGS[int(options.Padding())], ACTIVATIONS[activation])


def fused_activation(op: Any, name: str) -> str:
    """The fused activation of an ``ADD`` op (``"none"``, ``"relu"``, ``"relu6"``)."""
    import tflite

    if name != "ADD":
        raise ValueError(f"no fused activation for {name}")
    table = op.BuiltinOptions()
    options = tflite.AddOptions()
    options.Init(table.Bytes, table.Pos)
    activation = int(options.FusedActivationFunction())
    if activation not in ACTIVATIONS:
        raise ValueError(f"unsupported fused activation {activation}")
    return ACTIVATIONS[activation]


def int_constant(model: Any, graph: Any, index: int) -> np.ndarray:
    """An int32 constant (e.g. ``PAD``'s paddings) in its stored shape."""
    tensor = graph.Tensors(index)
    data = model.Buffers(tensor.Buffer()).DataAsNumpy()
    if not isinstance(data, np.ndarray) or data.size == 0:
        raise ValueError(f"tensor {tensor.Name().decode()} holds no constant data")
    return np.frombuffer(data.tobytes(), dtype="<i4").reshape(tensor_shape(graph, index))


def ops(data: bytes) -> list[str]:
    """Op names of a ``.tflite``'s first subgraph in execution order (custom ops by their
    custom name), to inspect a graph."""
    model = open_model(data)
    graph = model.Subgraphs(0)
    return [op_name(model, graph.Operators(k)) for k in range(graph.OperatorsLength())]


def load_model(source: Path | bytes, what: str,
               build: Callable[[bytes], tuple[Built, str]]) -> Built:
    """Read a ``.tflite`` (path or bytes) and build a module from it with ``build``
    (bytes → the module and a short description for the log).

    Raises :class:`ModelError` with one line when the file is missing, truncated,
    corrupt, or not the architecture ``build`` expects; ``what`` names it ("selfie
    segmenter") in that line.
    """
    label = str(source) if isinstance(source, Path) else "the .tflite data"
    try:
        data = source.read_bytes() if isinstance(source, Path) else bytes(source)
    except OSError as exc:
        raise ModelError(f"cannot read {label}: {exc.strerror or exc}") from exc
    try:
        model, detail = build(data)
    except ModelError:
        raise
    except Exception as exc:  # flatbuffer readers raise anything on garbage
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelError(f"{label} is not a usable {what} .tflite "
                         f"(truncated or corrupt?): {reason}") from exc
    log.debug("loaded %s: %s", label, detail)
    return model
