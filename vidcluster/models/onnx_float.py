"""Turn weight-quantised ONNX graphs into plain float graphs that onnxruntime's CPU provider runs.

The OpenCV Zoo "int8bq" files (YuNet, SFace) keep every weight and bias as an int8 initializer
feeding an opset-21 `DequantizeLinear` (int8 data, float32 scales, int8 zero points, attributes
`axis` and `block_size`), usually followed by a `Reshape` back to the weight's real shape; the
activations stay float. onnxruntime refuses these files: its DequantizeLinear treats a one-element
scale as per-tensor and then rejects the `block_size` the exporter wrote anyway, and SFace's file
still lists its former float weights as required graph inputs. `dequantised` evaluates those
weight-only subgraphs once, here, and stores their float results as initializers, so the network
computes with exactly the float weights OpenCV's importer derives from the same file.
`yunet_graph` and `sface_graph` build the two runnable graphs. Imports nothing of vidcluster
(`models.graphs` caches the results and imports this module only to build one).
"""

from __future__ import annotations

import copy

import numpy as np
import onnx
from onnx import helper, numpy_helper


def dequantise_array(
    q: np.ndarray, scale: np.ndarray, zero_point: np.ndarray | None, axis: int = 1, block_size: int = 0
) -> np.ndarray:
    """DequantizeLinear on arrays: (q - zero_point) * scale, in the scale's dtype.

    The scale's shape decides the layout: one value (a scalar, or one element per block when a
    block covers the whole axis) is per-tensor; the same rank as `q` is blocked along `axis`, one
    scale per `block_size` elements, the last block possibly shorter; a 1-D scale as long as
    `q.shape[axis]` is per-channel.

    >>> dequantise_array(np.array([[2, 4, 6, 8, 10]], np.int8), np.array([[0.5, 0.25]], np.float32),
    ...                  np.array([[0, 2]], np.int8), axis=1, block_size=3).tolist()
    [[1.0, 2.0, 3.0, 1.5, 2.0]]
    """
    scale = np.asarray(scale)
    values = q.astype(scale.dtype)
    zero = np.zeros((), scale.dtype) if zero_point is None else np.asarray(zero_point).astype(scale.dtype)
    if q.ndim:
        axis %= q.ndim
    one_block = block_size == 0 or q.ndim == 0 or -(-q.shape[axis] // block_size) == 1
    if scale.ndim == 0 or (scale.size == 1 and one_block):
        return (values - zero.reshape(())) * scale.reshape(())
    if block_size > 0:
        if scale.ndim != q.ndim or scale.shape[axis] != -(-q.shape[axis] // block_size):
            raise ValueError(
                f"blocked scale {scale.shape} does not fit data {q.shape} (axis {axis}, block {block_size})"
            )
        n = q.shape[axis]
        scale = np.repeat(scale, block_size, axis=axis).take(np.arange(n), axis=axis)
        zero = np.repeat(zero, block_size, axis=axis).take(np.arange(n), axis=axis) if zero.ndim else zero
        return (values - zero) * scale
    if scale.ndim != 1 or scale.shape[0] != q.shape[axis]:
        raise ValueError(f"per-axis scale {scale.shape} does not fit data {q.shape} on axis {axis}")
    shape = [1] * q.ndim
    shape[axis] = -1
    return (values - zero.reshape(shape if zero.ndim else ())) * scale.reshape(shape)


def _reshaped(data: np.ndarray, shape: np.ndarray, allowzero: int) -> np.ndarray:
    """Reshape with ONNX's rules: 0 copies the input's dimension (unless allowzero), -1 is inferred."""
    dims = [int(d) for d in shape]
    if not allowzero:
        dims = [data.shape[i] if d == 0 else d for i, d in enumerate(dims)]
    return data.reshape(dims)


def _attributes(node: onnx.NodeProto) -> dict:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def dequantised(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of `model` whose weight-only DequantizeLinear (and the Reshape of a constant after
    it) are replaced by float initializers; initializers and Constant nodes no node reads any
    more, and graph inputs that are initializers or that no node reads, are removed.

    Raises ValueError when a DequantizeLinear or QuantizeLinear on run-time data remains: that is
    activation quantisation, which this does not undo.
    """
    out = copy.deepcopy(model)
    kept, folded = _fold_weights(out.graph)
    _keep_only_used(out.graph, kept, folded)
    return out


def _fold_weights(graph: onnx.GraphProto) -> tuple[list[onnx.NodeProto], dict[str, np.ndarray]]:
    """The nodes that stay, and {output name: float value} of the dequantisations folded away."""
    constants: dict[str, np.ndarray] = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    folded: dict[str, np.ndarray] = {}
    kept: list[onnx.NodeProto] = []
    for node in graph.node:
        attrs = _attributes(node)
        if node.op_type == "Constant" and node.domain in ("", "ai.onnx") and "value" in attrs:
            constants[node.output[0]] = numpy_helper.to_array(attrs["value"])
            kept.append(node)
            continue
        inputs = [x for x in node.input if x]
        if node.domain in ("", "ai.onnx") and inputs and all(x in constants for x in inputs):
            if node.op_type == "DequantizeLinear":
                q, scale, *zp = (constants[x] for x in node.input if x)
                value = dequantise_array(
                    q, scale, zp[0] if zp else None, int(attrs.get("axis", 1)), int(attrs.get("block_size", 0))
                )
            elif node.op_type == "Reshape" and node.input[0] in folded:
                value = _reshaped(constants[node.input[0]], constants[node.input[1]], int(attrs.get("allowzero", 0)))
            else:
                kept.append(node)
                continue
            constants[node.output[0]] = folded[node.output[0]] = value
            continue
        if node.op_type in ("DequantizeLinear", "QuantizeLinear"):
            raise ValueError(
                f"{node.op_type} node {node.name!r} works on run-time data; only weight quantisation is undone"
            )
        kept.append(node)
    return kept, folded


def _keep_only_used(graph: onnx.GraphProto, kept: list[onnx.NodeProto], folded: dict[str, np.ndarray]) -> None:
    """Give `graph` the `kept` nodes and the folded values as initializers, dropping every
    initializer, Constant node, input and shape annotation nothing reads any more."""
    used = {x for n in kept for x in n.input} | {o.name for o in graph.output}
    for node in kept:  # names read inside subgraphs (If, Loop) count as used too
        for attr in node.attribute:
            for sub in list(attr.g.node if attr.HasField("g") else []) + [n for g in attr.graphs for n in g.node]:
                used.update(sub.input)
    kept = [n for n in kept if n.op_type != "Constant" or any(o in used for o in n.output)]
    initializers = [t for t in graph.initializer if t.name in used and t.name not in folded]
    initializers += [
        numpy_helper.from_array(np.ascontiguousarray(v), name) for name, v in folded.items() if name in used
    ]
    names = {t.name for t in initializers}
    inputs = [i for i in graph.input if i.name in used and i.name not in names]
    del graph.node[:]
    graph.node.extend(kept)
    del graph.initializer[:]
    graph.initializer.extend(initializers)
    del graph.input[:]
    graph.input.extend(inputs)
    value_info = [v for v in graph.value_info if v.name in used and v.name not in names]
    del graph.value_info[:]
    graph.value_info.extend(value_info)


def with_dynamic_input(
    model: onnx.ModelProto, batch: str = "batch", height: str = "height", width: str = "width"
) -> onnx.ModelProto:
    """A copy of `model` whose first (NCHW image) input has symbolic batch, height and width.

    Reshapes to a constant shape that starts with the fixed batch size and holds a -1 elsewhere
    (a per-image flatten such as YuNet's [1, -1, 4]) are made to copy the batch dimension (0)
    instead. Each output's first dimension becomes the batch too, the others what shape inference
    can still tell; intermediate shape annotations are dropped.
    """
    out = copy.deepcopy(model)
    graph = out.graph
    image = graph.input[0]
    dims = image.type.tensor_type.shape.dim
    if len(dims) != 4:
        raise ValueError(f"input {image.name!r} has {len(dims)} dimensions, not NCHW")
    fixed_batch = dims[0].dim_value if dims[0].HasField("dim_value") else None
    for dim, name in ((dims[0], batch), (dims[2], height), (dims[3], width)):
        dim.Clear()
        dim.dim_param = name
    if fixed_batch is not None:
        _reshapes_keep_batch(graph, fixed_batch)
    _infer_outputs(out, batch if fixed_batch is not None else None)
    return out


def _reshapes_keep_batch(graph: onnx.GraphProto, fixed_batch: int) -> None:
    """Point each Reshape to [fixed_batch, ..., -1, ...] at a copy of its shape that starts with 0."""
    constants = {t.name: t for t in graph.initializer}
    rewritten: dict[str, str] = {}
    for node in graph.node:
        if node.op_type != "Reshape" or len(node.input) < 2 or node.input[1] not in constants:
            continue
        if _attributes(node).get("allowzero", 0):
            continue
        shape = numpy_helper.to_array(constants[node.input[1]])
        if shape.ndim != 1 or shape.size < 2 or shape[0] != fixed_batch or -1 not in shape[1:]:
            continue
        if node.input[1] not in rewritten:
            name = f"{node.input[1]}_keep_batch"
            graph.initializer.append(
                numpy_helper.from_array(np.concatenate([[0], shape[1:]]).astype(shape.dtype), name)
            )
            rewritten[node.input[1]] = name
        node.input[1] = rewritten[node.input[1]]


def _infer_outputs(model: onnx.ModelProto, batch: str | None) -> None:
    """Drop the intermediate shape annotations and give the outputs what shape inference tells;
    with `batch`, each output's first dimension is that symbolic batch."""
    graph = model.graph
    del graph.value_info[:]
    for output in graph.output:
        output.type.tensor_type.ClearField("shape")
    inferred = onnx.shape_inference.infer_shapes(model)
    shapes = {o.name: o.type.tensor_type.shape for o in inferred.graph.output}
    for output in graph.output:
        if output.name in shapes:
            output.type.tensor_type.shape.CopyFrom(shapes[output.name])
        out_dims = output.type.tensor_type.shape.dim
        if out_dims and batch is not None:  # outputs lead with the batch, as the input does
            out_dims[0].Clear()
            out_dims[0].dim_param = batch


def yunet_graph(raw: bytes) -> bytes:
    """YuNet's int8 file -> a serialised float graph with symbolic batch, height and width."""
    return with_dynamic_input(dequantised(onnx.load_from_string(raw))).SerializeToString()


def sface_graph(raw: bytes) -> bytes:
    """SFace's int8 file -> a serialised float graph with one input (`data`) and any batch size.

    The file lists every weight as a graph input too (the old exporter style), and the quantiser
    left the original names of the quantised weights there with nothing behind them; inputs that
    are initializers or that no node reads are dropped. The fixed batch of 1 on `data` and `fc1`
    becomes a symbolic dimension.
    """
    model = dequantised(onnx.load_from_string(raw))
    graph = model.graph
    inits = {t.name for t in graph.initializer}
    read = {n for node in graph.node for n in node.input}
    inputs = [i for i in graph.input if i.name not in inits and i.name in read]
    del graph.input[:]
    graph.input.extend(inputs)
    del graph.value_info[:]
    for value in list(graph.input) + list(graph.output):
        dims = value.type.tensor_type.shape.dim
        if len(dims):
            dims[0].Clear()
            dims[0].dim_param = "batch"
    return model.SerializeToString()
