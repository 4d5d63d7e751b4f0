"""`bnn.from_keras`: a Larq (or plain Keras) binary network as a bnn model.

The Keras model is read layer by layer (class names, ``get_config()``,
``get_weights()``: TensorFlow is never imported here, so ``import bnn``
stays free of it) and written as an ONNX graph in the patterns the ONNX
importer matches (docs/IMPORT.md), which ``bnn.from_onnx`` then folds: the
same folding of biases and batch norms into integer thresholds, the same
refusals. Larq's quantizers ``ste_sign``, ``approx_sign`` and
``swish_sign`` all compute ``sign(x)`` with ``sign(0) = +1`` in the forward
pass, which is ``Where(x >= 0, 1, -1)``, exactly bnn's activation.

Taken: ``InputLayer``, ``QuantDense``, ``QuantConv2D`` (stride 1, square
odd kernel, ``padding="valid"``, or ``"same"`` with ``pad_values`` 0
(Larq's default, zero padding), -1 or 1), ``BatchNormalization``, ``MaxPool2D`` (2×2, stride 2),
``Flatten``, ``Dropout``, and a final ``Activation("softmax")`` (dropped:
the class is the same). Anything else is a ``ValueError`` naming the layer.
"""

import os
import struct
import tempfile

import numpy as np

#: Larq quantizers whose forward pass is sign(x) with sign(0) = +1.
SIGNS = {"ste_sign", "approx_sign", "swish_sign", "stesign", "approxsign", "swishsign"}


def _varint(v):
    out = bytearray()
    v &= (1 << 64) - 1
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


class _Msg:
    """A protobuf message being written (the fields ONNX needs)."""

    def __init__(self):
        self.b = bytearray()

    def int(self, field, v):
        self.b += _varint(field << 3) + _varint(v)
        return self

    def bytes(self, field, data):
        self.b += _varint((field << 3) | 2) + _varint(len(data)) + bytes(data)
        return self

    def str(self, field, s):
        return self.bytes(field, s.encode())

    def msg(self, field, m):
        return self.bytes(field, m.b)

    def float(self, field, v):
        self.b += _varint((field << 3) | 5) + struct.pack("<f", v)
        return self

    def ints(self, field, values):
        return self.bytes(field, b"".join(_varint(int(v)) for v in values))


def _attr(name, value):
    a = _Msg().str(1, name)
    if isinstance(value, (list, tuple)):
        return a.ints(8, value).int(20, 7)
    if isinstance(value, float):
        return a.float(2, value).int(20, 1)
    return a.int(3, value).int(20, 2)


class _Graph:
    def __init__(self):
        self.nodes, self.inits, self.count = [], [], 0

    def fresh(self, base):
        self.count += 1
        return f"{base}_{self.count}"

    def const(self, array, base="c"):
        name = self.fresh(base)
        a = np.ascontiguousarray(array, dtype=np.float32)
        t = _Msg().ints(1, a.shape).int(2, 1).str(8, name).bytes(9, a.tobytes())
        self.inits.append(t)
        return name

    def ints(self, values, base="i"):
        name = self.fresh(base)
        t = _Msg().ints(1, [len(values)]).int(2, 7).str(8, name).ints(7, values)
        self.inits.append(t)
        return name

    def op(self, op, inputs, node_name, **attrs):
        out = self.fresh(op.lower())
        n = _Msg()
        for i in inputs:
            n.str(1, i)
        n.str(2, out).str(3, node_name).str(4, op)
        for k, v in attrs.items():
            n.msg(5, _attr(k, v))
        self.nodes.append(n)
        return out

    def model(self, input_dims, output, classes):
        def info(name, dims):
            shape = _Msg()
            for d in dims:
                shape.msg(1, _Msg().int(1, d) if d is not None else _Msg().str(2, "N"))
            tensor = _Msg().int(1, 1).msg(2, shape)
            return _Msg().str(1, name).msg(2, _Msg().msg(1, tensor))

        g = _Msg().str(2, "keras")
        for n in self.nodes:
            g.msg(1, n)
        for t in self.inits:
            g.msg(5, t)
        g.msg(11, info("x", [None, *input_dims]))
        g.msg(12, info(output, [None, classes]))
        opset = _Msg().str(1, "").int(2, 13)
        return bytes(_Msg().int(1, 7).msg(8, opset).str(2, "bnn.from_keras").msg(7, g).b)


def _quantizer(layer, key):
    """The quantizer's name, lower case without underscores kept as Larq
    spells it (``ste_sign``), or None."""
    q = layer.get_config().get(key)
    if q is None:
        return None
    if isinstance(q, dict):
        q = q.get("class_name", "")
    if not isinstance(q, str):
        q = type(q).__name__
    return q.lower()


def _fail(layer, why):
    return ValueError(f"layer '{layer.name}' ({type(layer).__name__}): {why}")


def _kernel(layer, w):
    """The quantized kernel: ±1 (sign with sign(0) = +1), or ±α per output
    channel for ``magnitude_aware_sign``."""
    q = _quantizer(layer, "kernel_quantizer")
    signs = np.where(w >= 0, 1.0, -1.0)
    if q in SIGNS:
        return signs
    if q in ("magnitude_aware_sign", "magnitudeawaresign"):
        alpha = np.mean(np.abs(w), axis=tuple(range(w.ndim - 1)))
        return signs * alpha
    raise _fail(
        layer,
        f"kernel_quantizer {q}: bnn takes binary weights (ste_sign, approx_sign, "
        "swish_sign or magnitude_aware_sign)",
    )


def _binarize(g, x, layer):
    q = _quantizer(layer, "input_quantizer")
    if q is None:
        return x, False
    if q not in SIGNS:
        raise _fail(
            layer,
            f"input_quantizer {q}: bnn's activations are sign(x) "
            "(ste_sign, approx_sign, swish_sign)",
        )
    fires = g.op("GreaterOrEqual", [x, g.const(0.0)], f"{layer.name}/input_quantizer/ge")
    return g.op("Where", [fires, g.const(1.0), g.const(-1.0)], f"{layer.name}/input_quantizer"), True


def to_onnx(model, input_scale=1.0, input_offset=0.0):
    """The ONNX bytes ``from_keras`` imports (see there)."""
    shape = tuple(model.input_shape)
    if isinstance(model.input_shape, list):
        raise ValueError("the Keras model has several inputs; bnn takes one (the image)")
    dims = shape[1:]
    if len(dims) == 2:
        dims = (*dims, 1)
    if len(dims) == 3:
        h, w, c = dims
        input_dims, layout = [c, h, w], ("map", c, h, w)
    elif len(dims) == 1:
        input_dims, layout = [dims[0]], ("flat",)
    else:
        raise ValueError(f"input shape {shape}: bnn takes (N, H, W, C), (N, H, W) or (N, D)")
    if any(d is None for d in input_dims):
        raise ValueError(f"input shape {shape} has unknown sizes")
    g = _Graph()
    x = "x"
    # The graph's input is the raw pixel value; the Keras model sees
    # pixel·scale + offset.
    if input_scale != 1.0:
        x = g.op("Mul", [x, g.const(np.float32(input_scale))], "input_scale")
    if input_offset != 0.0:
        x = g.op("Add", [x, g.const(np.float32(input_offset))], "input_offset")
    flatten_pending = None
    # The shape of the map before a pending Flatten (NCHW in the graph,
    # NHWC in Keras' flat order).
    layers = [l for l in model.layers if type(l).__name__ != "InputLayer"]
    last_weighted = max(
        (i for i, l in enumerate(layers) if type(l).__name__ in ("QuantDense", "QuantConv2D")),
        default=-1,
    )
    classes = None
    for i, layer in enumerate(layers):
        kind = type(layer).__name__
        config = layer.get_config()
        if kind in ("QuantDense", "QuantConv2D"):
            if config.get("activation") not in (None, "linear"):
                raise _fail(layer, f"activation {config['activation']}: bnn layers have none")
            weights = layer.get_weights()
            kernel = _kernel(layer, np.asarray(weights[0], dtype=np.float64))
            bias = np.asarray(weights[1]) if config.get("use_bias") and len(weights) > 1 else None
        if kind == "QuantDense":
            x, _ = _binarize(g, x, layer)
            if flatten_pending is not None:
                x = g.op("Flatten", [x], f"{flatten_pending}", axis=1)
                flatten_pending_map = layout
                layout = ("flat",)
            else:
                flatten_pending_map = None
            if layout[0] != "flat":
                raise _fail(layer, "a dense layer over a map needs a Flatten first")
            if flatten_pending_map is not None and flatten_pending_map[0] == "map":
                # Keras flattens (y, x, c); the graph's map is (c, y, x).
                _, c, h, w = flatten_pending_map
                kernel = kernel.reshape(h, w, c, -1).transpose(2, 0, 1, 3).reshape(h * w * c, -1)
            flatten_pending = None
            x = g.op("MatMul", [x, g.const(kernel, "kernel")], layer.name)
            if bias is not None:
                x = g.op("Add", [x, g.const(bias, "bias")], f"{layer.name}/bias")
            classes = kernel.shape[1]
        elif kind == "QuantConv2D":
            if flatten_pending is not None or layout[0] != "map":
                raise _fail(layer, "a convolution needs a map (N, H, W, C) input")
            k = tuple(config["kernel_size"])
            strides = tuple(config.get("strides", (1, 1)))
            dilation = tuple(config.get("dilation_rate", (1, 1)))
            if k[0] != k[1] or k[0] % 2 == 0:
                raise _fail(layer, f"kernel {k}: bnn takes square odd kernels")
            if strides != (1, 1) or dilation != (1, 1):
                raise _fail(layer, f"strides {strides}, dilation {dilation}: bnn takes 1")
            if config.get("data_format", "channels_last") != "channels_last":
                raise _fail(layer, "data_format channels_first is not supported")
            if config.get("depth_multiplier") is not None or config.get("groups", 1) != 1:
                raise _fail(layer, "grouped convolutions are not supported")
            x, binary = _binarize(g, x, layer)
            k = k[0]
            p = (k - 1) // 2
            pads = [0, 0, 0, 0]
            padding = config.get("padding", "valid")
            if padding == "same" and p > 0:
                pad_value = float(config.get("pad_values", 0.0))
                if not binary:
                    if pad_value != 0.0:
                        raise _fail(
                            layer,
                            f"pad_values={pad_value} on the input: bnn's u8 convolution pads "
                            "with pixel value 0",
                        )
                    pads = [p, p, p, p]
                elif pad_value in (-1.0, 1.0):
                    # -1 is bnn's own padding; +1 imports as -1 padding of
                    # the negated map through negated filters.
                    x = g.op(
                        "Pad",
                        [x, g.ints([0, 0, p, p, 0, 0, p, p]), g.const(np.float32(pad_value))],
                        f"{layer.name}/pad",
                    )
                elif pad_value == 0.0:
                    # Larq's default: zeros around a ±1 map, which bnn's
                    # zero-padding mode computes exactly (the importer reads
                    # a Conv's own pads on a binary map as that mode).
                    pads = [p, p, p, p]
                else:
                    raise _fail(
                        layer,
                        f"pad_values={pad_value}: bnn pads a binary map with 0, -1 or +1; "
                        "use one of those, or padding='valid'",
                    )
            elif padding not in ("same", "valid"):
                raise _fail(layer, f"padding {padding!r} is not supported")
            # Keras (kh, kw, in, out) → ONNX (out, in, kh, kw).
            oihw = kernel.transpose(3, 2, 0, 1)
            inputs = [x, g.const(oihw, "kernel")]
            if bias is not None:
                inputs.append(g.const(bias, "bias"))
            x = g.op("Conv", inputs, layer.name, kernel_shape=[k, k], pads=pads)
            _, c, h, w = layout
            if padding == "valid":
                h, w = h - 2 * p, w - 2 * p
            layout = ("map", oihw.shape[0], h, w)
        elif kind == "BatchNormalization":
            axis = config.get("axis", -1)
            axis = axis[0] if isinstance(axis, (list, tuple)) and len(axis) == 1 else axis
            rank = 4 if layout[0] == "map" else 2
            if axis not in (-1, rank - 1):
                raise _fail(layer, f"axis {axis}: bnn normalizes per channel (the last axis)")
            params = list(layer.get_weights())
            n = params[-1].shape[0]
            gamma = params.pop(0) if config.get("scale", True) else np.ones(n)
            beta = params.pop(0) if config.get("center", True) else np.zeros(n)
            mean, var = params
            x = g.op(
                "BatchNormalization",
                [x] + [g.const(v, "bn") for v in (gamma, beta, mean, var)],
                layer.name,
                epsilon=float(config.get("epsilon", 1e-3)),
            )
        elif kind in ("MaxPool2D", "MaxPooling2D"):
            pool = tuple(config.get("pool_size", (2, 2)))
            strides = tuple(config.get("strides") or pool)
            if pool != (2, 2) or strides != (2, 2) or config.get("padding", "valid") != "valid":
                raise _fail(layer, f"pool {pool}, strides {strides}: bnn pools 2x2 with stride 2")
            if layout[0] != "map":
                raise _fail(layer, "max pooling needs a map")
            x = g.op("MaxPool", [x], layer.name, kernel_shape=[2, 2], strides=[2, 2])
            _, c, h, w = layout
            layout = ("map", c, h // 2, w // 2)
        elif kind == "Flatten":
            # Emitted with the next layer, after its input quantizer: the
            # sign is elementwise, and bnn binarizes before flattening.
            flatten_pending = layer.name
        elif kind == "Dropout":
            continue
        elif kind == "Activation" and config.get("activation") == "linear":
            continue
        elif kind in ("Activation", "Softmax") and i > last_weighted:
            if kind == "Activation" and config.get("activation") != "softmax":
                raise _fail(layer, f"activation {config.get('activation')}: only a final softmax")
            continue
        else:
            raise _fail(
                layer,
                "not supported (bnn takes QuantDense, QuantConv2D, BatchNormalization, "
                "MaxPool2D, Flatten, Dropout and a final softmax)",
            )
    if classes is None or last_weighted < 0 or type(layers[last_weighted]).__name__ != "QuantDense":
        raise ValueError("the Keras model must end in a QuantDense layer (the class scores)")
    if flatten_pending is not None:
        raise ValueError(f"layer '{flatten_pending}' (Flatten) is not followed by a dense layer")
    return g.model(input_dims, x, classes)


def from_keras(model, input_scale=1.0, input_offset=0.0):
    """A bnn model from a Larq/Keras binary network.

    ``input_scale`` and ``input_offset``: the Keras model sees
    ``pixel·input_scale + input_offset`` where bnn feeds the raw pixel
    value 0..=255 (``input_scale=1/255`` for a model trained on x / 255).
    A first layer without an input quantizer reads those values (a u8
    first layer); one with an input quantizer binarizes them. Errors name
    the Keras layer.
    """
    from . import from_onnx

    data = to_onnx(model, input_scale, input_offset)
    name = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in model.name) or "keras"
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, f"{name}.onnx")
        with open(path, "wb") as f:
            f.write(data)
        try:
            return from_onnx(path)
        except ValueError as e:
            why = str(e).removeprefix(f"cannot import {path}: ")
            raise ValueError(f"cannot import Keras model '{model.name}': {why}") from None
