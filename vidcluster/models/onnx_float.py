"""Turn weight-only quantised ONNX graphs back into plain float32 graphs.

OpenCV Zoo's `*_int8bq.onnx` files keep each weight as int8 plus a scale and a zero point per
block, and a `DequantizeLinear` node that rebuilds the float weight when the graph runs. Some
runtimes refuse those nodes (ONNX Runtime's CPU provider has no blocked int8 kernel in every
build; OpenCV's face recogniser trips over the leftover graph inputs). Doing the dequantisation
once, ahead of time, gives an ordinary float32 graph with exactly the weights the quantised one
computes: (q - zero_point) * scale, in float32, as the ONNX operator defines it.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper


def _attribute(node: onnx.NodeProto, name: str, default: int) -> int:
    for attr in node.attribute:
        if attr.name == name:
            return int(onnx.helper.get_attribute_value(attr))
    return default


def _spread(param: np.ndarray, shape: tuple[int, ...], axis: int, block_size: int) -> np.ndarray:
    """A scale or zero point laid out as ONNX's DequantizeLinear reads it, broadcast to `shape`.

    Scalar: one value for the tensor. 1-D without a block size: one value per slice along
    `axis`. Same rank as the tensor with a block size: one value per `block_size` run along
    `axis` (the last block may be short).

    >>> _spread(np.array([1.0, 2.0]), (5,), 0, 3).tolist()
    [1.0, 1.0, 1.0, 2.0, 2.0]
    >>> _spread(np.array([[1.0], [3.0]]), (2, 3), 1, 3).tolist()
    [[1.0, 1.0, 1.0], [3.0, 3.0, 3.0]]
    >>> _spread(np.array([1.0, 2.0]), (3, 2), 1, 0).tolist()
    [[1.0, 2.0], [1.0, 2.0], [1.0, 2.0]]
    """
    rank = len(shape)
    axis = axis % rank if rank else 0
    if param.size == 1 and block_size == 0:
        return np.broadcast_to(param.reshape(()), shape)
    if block_size > 0:
        return np.repeat(param, block_size, axis=axis).take(range(shape[axis]), axis=axis)
    view = [1] * rank
    view[axis] = param.shape[0]
    return np.broadcast_to(param.reshape(view), shape)


def _dequantise(q: np.ndarray, scale: np.ndarray, zero: np.ndarray | None, axis: int, block_size: int) -> np.ndarray:
    s = _spread(scale.astype(np.float32), q.shape, axis, block_size)
    z = 0 if zero is None else _spread(zero.astype(np.int32), q.shape, axis, block_size)
    return ((q.astype(np.int32) - z).astype(np.float32) * s).astype(np.float32)


def dequantised(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of `model` whose constant `DequantizeLinear` nodes became float32 initializers.

    Only nodes whose three inputs are all initializers are folded (quantised weights);
    a DequantizeLinear on activations is left as it is. The folded initializer takes the
    node's output name, so the consumers need no rewiring; the int8 tensors, scales and zero
    points that nothing reads any more are dropped. Everything else is left untouched.
    """
    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    inits = {t.name: t for t in graph.initializer}
    folded: list[onnx.TensorProto] = []
    keep: list[onnx.NodeProto] = []
    for node in graph.node:
        names = [n for n in node.input if n]
        if node.op_type != "DequantizeLinear" or node.domain not in ("", "ai.onnx") or not all(n in inits for n in names):
            keep.append(node)
            continue
        arrays = [numpy_helper.to_array(inits[n]) for n in names]
        q, scale = arrays[0], arrays[1]
        zero = arrays[2] if len(arrays) > 2 else None
        value = _dequantise(q, scale, zero, _attribute(node, "axis", 1), _attribute(node, "block_size", 0))
        folded.append(numpy_helper.from_array(value, node.output[0]))
    del graph.node[:]
    graph.node.extend(keep)
    read = {n for node in keep for n in node.input} | {o.name for o in graph.output}
    survivors = [t for t in graph.initializer if t.name in read]
    del graph.initializer[:]
    graph.initializer.extend(survivors + folded)
    return out
