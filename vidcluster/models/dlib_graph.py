"""dlib's face-recognition ResNet (dlib_face_recognition_resnet_model_v1.dat) as an ONNX graph.

The .dat is read byte by byte in Python (no dlib), and the graph reproduces dlib's arithmetic:
stride-2 convolutions and pools are unpadded, and a residual sum of two tensors of different
shape pads the smaller one with zeros at the end of each axis (channels, rows, columns).

Graph input ``chips``: uint8 RGB face chips, NHWC, shape (batch, 150, 150, 3), exactly as
``dlib.get_face_chip(img, shape, 150, 0.25)`` returns them; the per-channel mean subtraction,
the division by 256 and the transpose to NCHW happen inside the graph. Output ``descriptors``:
float32 (batch, 128), the same vectors as dlib's ``compute_face_descriptor``. The batch
dimension is dynamic.

This module imports nothing of vidcluster; `models.graphs` caches what it builds, and
`models.encoders` imports it only when the cache has no graph for the installed `.dat`.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
INPUT_NAME = "chips"
OUTPUT_NAME = "descriptors"


@dataclass(frozen=True, eq=False)
class Layer:
    """One layer of a dlib network, in forward order.

    kind: input, con, affine, relu, max_pool, avg_pool, add_prev, fc, tag, skip, loss_metric.
    params: the layer's settings (sizes, strides, paddings, tag ids ...).
    tensors: learned float32 arrays (con: filters OIHW + biases; affine: gamma, beta per
    channel; fc: weights (inputs, outputs) and, with a bias, biases).
    """

    kind: str
    params: dict[str, Any] = field(default_factory=dict)
    tensors: dict[str, np.ndarray] = field(default_factory=dict)


# --------------------------------------------------------------------------- reading the .dat


class _Bytes:
    """A cursor over dlib's serialisation: packed ints, strings, float_details, bools, tensors."""

    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0

    def integer(self) -> int:
        control = self.data[self.pos]
        size = control & 0x0F
        if size > 8:
            raise ValueError(f"bad integer control byte {control:#x} at offset {self.pos}")
        start = self.pos + 1
        value = int.from_bytes(self.data[start : start + size], "little")
        self.pos = start + size
        return -value if control & 0x80 else value

    def text(self) -> str:
        size = self.integer()
        raw = self.data[self.pos : self.pos + size]
        self.pos += size
        return raw.decode("ascii")

    def real(self) -> float:
        mantissa = self.integer()  # dlib writes a float as mantissa * 2**exponent
        exponent = self.integer()
        return math.ldexp(mantissa, exponent)

    def flag(self) -> bool:
        char = self.data[self.pos : self.pos + 1]
        self.pos += 1
        if char not in (b"0", b"1"):
            raise ValueError(f"expected a serialised bool at offset {self.pos - 1}, got {char!r}")
        return char == b"1"

    def tensor(self) -> np.ndarray:
        version = self.integer()
        if version != 2:
            raise ValueError(f"unsupported tensor version {version} at offset {self.pos}")
        shape = tuple(self.integer() for _ in range(4))
        count = math.prod(shape)
        values = np.frombuffer(self.data, dtype="<f4", count=count, offset=self.pos)
        self.pos += 4 * count
        return values.astype(np.float32).reshape(shape)

    def alias_shape(self) -> tuple[int, ...]:
        version = self.integer()
        if version != 1:
            raise ValueError(f"unsupported alias_tensor version {version} at offset {self.pos}")
        return tuple(self.integer() for _ in range(4))


def _split(params: np.ndarray, *shapes: tuple[int, ...]) -> list[np.ndarray]:
    """Cut a layer's flat parameter tensor into consecutive views of the given shapes."""
    flat = params.reshape(-1)
    parts, offset = [], 0
    for shape in shapes:
        size = math.prod(shape)
        parts.append(flat[offset : offset + size].reshape(shape).copy())
        offset += size
    if offset != flat.size:
        raise ValueError(f"parameter tensor of {flat.size} values does not split into {shapes}")
    return parts


def _read_details(stream: _Bytes) -> Layer:
    """One computational layer's own serialisation, which starts with its name and version."""
    name = stream.text()
    if name in ("con_4", "con_5"):
        return _read_con(stream, name)
    if name == "affine_":
        params = stream.tensor()
        gamma_shape, beta_shape = stream.alias_shape(), stream.alias_shape()
        mode = stream.integer()
        gamma, beta = _split(params, gamma_shape, beta_shape)
        if mode != 0 and gamma.size != gamma_shape[1]:
            raise ValueError("only per-channel (convolutional mode) affine layers are supported")
        return Layer("affine", {"mode": mode}, {"gamma": gamma.reshape(-1), "beta": beta.reshape(-1)})
    if name == "relu_":
        return Layer("relu")
    if name == "add_prev_":
        return Layer("add_prev")
    if name in ("max_pool_2", "avg_pool_2"):
        settings = dict(
            zip(
                ("rows", "cols", "stride_y", "stride_x", "pad_y", "pad_x"),
                (stream.integer() for _ in range(6)),
                strict=True,
            )
        )
        return Layer(name[:-2], settings)
    if name == "fc_2":
        return _read_fc(stream)
    raise ValueError(f"unsupported dlib layer {name!r} at offset {stream.pos}")


def _read_con(stream: _Bytes, name: str) -> Layer:
    """A convolution (con_4, or con_5 that may have no bias), after its name."""
    params = stream.tensor()
    settings = dict(
        zip(
            ("filters", "rows", "cols", "stride_y", "stride_x", "pad_y", "pad_x"),
            (stream.integer() for _ in range(7)),
            strict=True,
        )
    )
    filters, biases = stream.alias_shape(), stream.alias_shape()
    for _ in range(4):  # learning-rate and weight-decay multipliers
        stream.real()
    if name == "con_5":
        stream.flag()  # use_bias; without a bias the biases alias is empty
    weights, bias = _split(params, filters, biases)
    tensors: dict[str, np.ndarray] = {"filters": weights}
    if bias.size:
        tensors["biases"] = bias.reshape(-1)
    return Layer("con", settings, tensors)


def _read_fc(stream: _Bytes) -> Layer:
    """A fully connected layer (fc_2), after its name."""
    outputs, inputs = stream.integer(), stream.integer()
    params = stream.tensor()
    weights_shape, biases_shape = stream.alias_shape(), stream.alias_shape()
    bias_mode = stream.integer()
    for _ in range(4):
        stream.real()
    weights, bias = _split(params, weights_shape, biases_shape)
    tensors: dict[str, np.ndarray] = {"weights": weights.reshape(inputs, outputs)}
    if bias_mode == 0 and bias.size:
        tensors["biases"] = bias.reshape(-1)
    return Layer("fc", {"outputs": outputs, "inputs": inputs}, tensors)


def read_dat(path: str | os.PathLike) -> list[Layer]:
    """The layers of a dlib metric-learning network file, input first, loss last.

    The file nests the network output-first: the loss, then one version number per layer
    wrapper (2: a computational layer, 1: a tag or skip marker, 3: the layer on the input),
    then, innermost, the input layer; the layers' own data follow in forward order, each
    followed by three flags and three (empty) tensors of training state. Tags and
    skips carry no data, so their ids are recovered from the residual pattern dlib's face
    network uses: a lone marker is tag1 (a block's input), a pair is tag2 (a down block's
    output) followed by skip1 (back to the block input), and an add_prev adds tag2 right
    after such a skip, tag1 otherwise.
    """
    stream = _Bytes(Path(path).read_bytes())
    loss = _read_loss(stream)
    wrappers = _wrapper_versions(stream)
    layers = [_read_input(stream)]
    layers += _read_layers(stream, wrappers[::-1])
    if stream.pos != len(stream.data):
        raise ValueError(f"{len(stream.data) - stream.pos} bytes left after the last layer")
    layers.append(loss)
    return layers


def _read_loss(stream: _Bytes) -> Layer:
    """The loss layer, which opens the file."""
    if stream.integer() != 1:
        raise ValueError("not a dlib network file: unexpected loss layer version")
    loss_name = stream.text()
    if loss_name != "loss_metric_2":
        raise ValueError(f"unsupported loss layer {loss_name!r}")
    return Layer("loss_metric", {"margin": stream.real(), "distance_threshold": stream.real()})


def _wrapper_versions(stream: _Bytes) -> list[int]:
    """The version of each layer wrapper, output first, up to the input layer's name."""
    wrappers: list[int] = []
    while True:
        mark = stream.pos
        version = stream.integer()
        if version > 3:  # the length of the input layer's name
            stream.pos = mark
            return wrappers
        wrappers.append(version)


def _read_input(stream: _Bytes) -> Layer:
    """The input layer: its name, the mean colour it subtracts and the chip size."""
    input_name = stream.text()
    if input_name != "input_rgb_image_sized":
        raise ValueError(f"unsupported input layer {input_name!r}")
    means = tuple(stream.real() for _ in range(3))
    rows, cols = stream.integer(), stream.integer()
    return Layer("input", {"mean_rgb": means, "rows": rows, "cols": cols})


def _read_layers(stream: _Bytes, wrappers: list[int]) -> list[Layer]:
    """The layers after the input in forward order, given the wrapper versions in that order:
    tags and skips from the runs of markers, the others from their data in the stream."""
    layers: list[Layer] = []
    index = 0
    after_skip = False
    while index < len(wrappers):
        if wrappers[index] == 1:
            run = 1
            while index + run < len(wrappers) and wrappers[index + run] == 1:
                run += 1
            if run == 1:
                layers.append(Layer("tag", {"id": 1}))
            elif run == 2:
                layers += [Layer("tag", {"id": 2}), Layer("skip", {"id": 1})]
                after_skip = True
            else:
                raise ValueError(f"unexpected run of {run} tag/skip markers")
            index += run
            continue
        layer = _read_details(stream)
        # what dlib keeps per layer after its details: three flags and three (empty) tensors
        for _ in range(3):
            stream.flag()
        for _ in range(3):
            stream.tensor()
        if wrappers[index] == 3:
            stream.integer()  # the input layer's sample expansion factor
        if layer.kind == "add_prev":
            layer = Layer("add_prev", {"id": 2 if after_skip else 1})
            after_skip = False
        layers.append(layer)
        index += 1
    return layers


# --------------------------------------------------------------------------- building the graph


def _out_size(size: int, window: int, stride: int, pad: int) -> int:
    return 1 + (size + 2 * pad - window) // stride


class _GraphBuilder:
    """ONNX nodes and initializers for the layers, added in forward order. `x` names the tensor the
    next layer reads and `shape` its (channels, rows, cols); after the fc layer, (outputs,)."""

    def __init__(self, first: Layer):
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.tags: dict[int, tuple[str, tuple[int, ...]]] = {}
        p = first.params
        self.rows, self.cols = p["rows"], p["cols"]
        mean = np.array(p["mean_rgb"], np.float32)
        x = self.node("Cast", [INPUT_NAME], "pixels", to=TensorProto.FLOAT)
        x = self.node("Sub", [x, self.const("mean_rgb", mean)], "centred")
        x = self.node("Mul", [x, self.const("inv_256", np.array(1 / 256, np.float32))], "scaled")
        self.x = self.node("Transpose", [x], "nchw", perm=[0, 3, 1, 2])
        self.shape: tuple[int, ...] = (3, self.rows, self.cols)

    def const(self, name: str, value: np.ndarray) -> str:
        self.inits.append(numpy_helper.from_array(value, name))
        return name

    def node(self, op: str, inputs: list[str], name: str, **attrs) -> str:
        self.nodes.append(helper.make_node(op, inputs, [name], name=name, **attrs))
        return name

    def padded(self, tensor: str, have: tuple[int, ...], total: tuple[int, ...], prefix: str) -> str:
        """`tensor` zero-padded at the end of each axis from `have` up to `total` (add_prev's operands)."""
        if have == total:
            return tensor
        pads = np.array([0, 0, 0, 0, 0, *(w - h for w, h in zip(total, have, strict=True))], np.int64)
        return self.node("Pad", [tensor, self.const(f"{prefix}_pads", pads)], f"{prefix}_padded")

    def add(self, i: int, layer: Layer) -> None:
        """The nodes of layer number i."""
        p, t, name = layer.params, layer.tensors, f"{layer.kind}{i}"
        if layer.kind == "con":
            self.con(name, p, t)
        elif layer.kind == "affine":
            x = self.node("Mul", [self.x, self.const(f"{name}.gamma", t["gamma"].reshape(-1, 1, 1))], f"{name}.scaled")
            self.x = self.node("Add", [x, self.const(f"{name}.beta", t["beta"].reshape(-1, 1, 1))], name)
        elif layer.kind == "relu":
            self.x = self.node("Relu", [self.x], name)
        elif layer.kind in ("max_pool", "avg_pool"):
            self.pool(name, layer.kind, p)
        elif layer.kind == "tag":
            self.tags[p["id"]] = (self.x, self.shape)
        elif layer.kind == "skip":
            self.x, self.shape = self.tags[p["id"]]
        elif layer.kind == "add_prev":
            other, other_shape = self.tags[p["id"]]
            total = tuple(max(a, b) for a, b in zip(self.shape, other_shape, strict=True))
            a = self.padded(self.x, self.shape, total, f"{name}.a")
            self.x = self.node("Add", [a, self.padded(other, other_shape, total, f"{name}.b")], name)
            self.shape = total
        elif layer.kind == "fc":
            self.fc(name, p, t)
        elif layer.kind == "loss_metric":
            pass  # training only
        else:
            raise ValueError(f"cannot build a {layer.kind!r} layer")

    def con(self, name: str, p: dict[str, Any], t: dict[str, np.ndarray]) -> None:
        inputs = [self.x, self.const(f"{name}.w", t["filters"])]
        if "biases" in t:
            inputs.append(self.const(f"{name}.b", t["biases"]))
        self.x = self.node(
            "Conv",
            inputs,
            name,
            kernel_shape=[p["rows"], p["cols"]],
            strides=[p["stride_y"], p["stride_x"]],
            pads=[p["pad_y"], p["pad_x"], p["pad_y"], p["pad_x"]],
        )
        self.shape = (
            p["filters"],
            _out_size(self.shape[1], p["rows"], p["stride_y"], p["pad_y"]),
            _out_size(self.shape[2], p["cols"], p["stride_x"], p["pad_x"]),
        )

    def pool(self, name: str, kind: str, p: dict[str, Any]) -> None:
        if p["rows"] == 0 and p["cols"] == 0:  # dlib's avg_pool_everything
            self.x = self.node("GlobalMaxPool" if kind == "max_pool" else "GlobalAveragePool", [self.x], name)
            self.shape = (self.shape[0], 1, 1)
            return
        attrs: dict[str, Any] = dict(
            kernel_shape=[p["rows"], p["cols"]],
            strides=[p["stride_y"], p["stride_x"]],
            pads=[p["pad_y"], p["pad_x"], p["pad_y"], p["pad_x"]],
        )
        if kind == "avg_pool":
            attrs["count_include_pad"] = 0
        self.x = self.node("MaxPool" if kind == "max_pool" else "AveragePool", [self.x], name, **attrs)
        self.shape = (
            self.shape[0],
            _out_size(self.shape[1], p["rows"], p["stride_y"], p["pad_y"]),
            _out_size(self.shape[2], p["cols"], p["stride_x"], p["pad_x"]),
        )

    def fc(self, name: str, p: dict[str, Any], t: dict[str, np.ndarray]) -> None:
        x = self.node("Flatten", [self.x], f"{name}.flat", axis=1)
        if math.prod(self.shape) != p["inputs"]:
            raise ValueError(f"fc layer expects {p['inputs']} inputs, gets {math.prod(self.shape)}")
        x = self.node(
            "MatMul", [x, self.const(f"{name}.w", t["weights"])], name if "biases" not in t else f"{name}.product"
        )
        if "biases" in t:
            x = self.node("Add", [x, self.const(f"{name}.b", t["biases"])], name)
        self.x = x
        self.shape = (p["outputs"],)


def build_model(layers: list[Layer]) -> onnx.ModelProto:
    """The network as an ONNX model: uint8 NHWC chips in, float32 (batch, 128) descriptors out."""
    if not layers or layers[0].kind != "input":
        raise ValueError("the first layer must be the input layer")
    b = _GraphBuilder(layers[0])
    for i, layer in enumerate(layers[1:], 1):
        b.add(i, layer)
    if len(b.shape) != 1:
        raise ValueError("the network does not end in a fully connected layer")
    b.nodes.append(helper.make_node("Identity", [b.x], [OUTPUT_NAME], name=OUTPUT_NAME))

    graph = helper.make_graph(
        b.nodes,
        "dlib_face_recognition_resnet",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.UINT8, ["batch", b.rows, b.cols, 3])],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["batch", b.shape[0]])],
        b.inits,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="vidcluster.models.dlib_graph",
        producer_version="1",
    )
    model.ir_version = 8  # the lowest IR that carries opset 17, for older runtimes
    onnx.checker.check_model(model)
    return model


def build_bytes(dat_path: str | os.PathLike) -> bytes:
    """The serialised graph of the network stored in `dat_path`."""
    return build_model(read_dat(dat_path)).SerializeToString()
