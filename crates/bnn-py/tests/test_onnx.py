"""`bnn.from_onnx`: binary networks built with `onnx.helper`, one graph per
pattern the importer matches, run by ONNX Runtime and by the engine on the
same images: the classes must agree image for image, and the scores within
1e-4 (relative) where the import says they are the ONNX logits (times the
scale it reports). Refused graphs must fail with one line naming the node."""

import warnings

import numpy as np
import pytest

import bnn

try:
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper
except ImportError:  # pragma: no cover - the failure names the fix
    onnx = None


@pytest.fixture(scope="module", autouse=True)
def need_onnx():
    if onnx is None:
        pytest.fail(
            "onnx and onnxruntime are missing: pip install './crates/bnn-py[test]'"
        )


QONNX = "qonnx.custom_op.general"


class Graph:
    """A small graph builder: `op` adds a node and returns its output."""

    def __init__(self, shape):
        self.nodes, self.inits, self.count = [], [], 0
        self.input = helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)

    def const(self, array):
        self.count += 1
        name = f"c{self.count}"
        self.inits.append(numpy_helper.from_array(np.asarray(array, np.float32), name))
        return name

    def ints(self, values):
        self.count += 1
        name = f"i{self.count}"
        self.inits.append(numpy_helper.from_array(np.asarray(values, np.int64), name))
        return name

    def op(self, op_type, *inputs, domain="", **attrs):
        self.count += 1
        out = f"t{self.count}"
        self.nodes.append(
            helper.make_node(
                op_type, list(inputs), [out], name=f"{op_type.lower()}{self.count}",
                domain=domain, **attrs
            )
        )
        return out

    def save(self, path, out, opset=13):
        output = helper.make_tensor_value_info(out, TensorProto.FLOAT, None)
        graph = helper.make_graph(self.nodes, "g", [self.input], [output], self.inits)
        imports = [helper.make_opsetid("", opset)]
        if any(n.domain == QONNX for n in self.nodes):
            imports.append(helper.make_opsetid(QONNX, 1))
        model = helper.make_model(graph, opset_imports=imports)
        model.ir_version = 8
        onnx.save(model, str(path))
        return path


def onnx_run(path, images, shape):
    """ONNX Runtime's outputs for uint8 images, fed as floats 0..255."""
    x = images.reshape((len(images),) + tuple(shape)).astype(np.float32)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})[0]


def pm1(rng, *shape, alpha=None):
    w = rng.choice([-1.0, 1.0], size=shape)
    if alpha is not None:
        w = w * np.asarray(alpha).reshape((-1,) + (1,) * (len(shape) - 1))
    return w


def import_quietly(path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = bnn.from_onnx(path)
    return model, [str(w.message) for w in caught]


def check(path, images, shape, scale=1.0, scores=True, softmax=False):
    model, caught = import_quietly(path)
    assert caught == [], caught
    want = onnx_run(path, images, shape)
    classes = model.predict(images.reshape(len(images), -1))
    assert (classes == want.argmax(axis=1)).all(), (
        f"{(classes != want.argmax(axis=1)).sum()} of {len(images)} classes differ"
    )
    if scores:
        got = model.scores(images.reshape(len(images), -1)).astype(np.float64) * scale
        if softmax:
            got = np.exp(got - got.max(axis=1, keepdims=True))
            got /= got.sum(axis=1, keepdims=True)
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())
    return model


@pytest.fixture(scope="module")
def images(test_set):
    return test_set[0][:2000]


@pytest.fixture(scope="module")
def random_images():
    return np.random.default_rng(3).integers(0, 256, size=(500, 784), dtype=np.uint8)


def test_gemm_sign_mlp_with_binary_input(tmp_path, images):
    rng = np.random.default_rng(1)
    g = Graph(["N", 784])
    x = g.op("Sub", g.op("Div", "x", g.const(255.0)), g.const(0.5))
    h = g.op("Sign", x)
    h = g.op("Gemm", h, g.const(pm1(rng, 128, 784)), g.const(rng.integers(-9, 9, 128) + 0.5), transB=1)
    h = g.op("Sign", h)
    out = g.op("Gemm", h, g.const(pm1(rng, 10, 128)), g.const(rng.normal(size=10) * 4), transB=1)
    model = check(g.save(tmp_path / "m.onnx", out), images, [784])
    assert (model.info()["input"], model.info()["input_threshold"]) == ("binary", 128)


def test_matmul_where_batchnorm_softmax_u8_input_nchw(tmp_path, images):
    rng = np.random.default_rng(2)
    g = Graph(["N", 1, 28, 28])
    x = g.op("Flatten", "x", axis=1)
    x = g.op("Div", g.op("Sub", g.op("Div", x, g.const(255.0)), g.const(0.1307)), g.const(0.3081))
    alpha = rng.uniform(0.01, 0.1, 64)
    h = g.op("MatMul", x, g.const(pm1(rng, 64, 784, alpha=alpha).T))
    h = g.op("Add", h, g.const(rng.normal(size=64)))
    h = g.op(
        "BatchNormalization", h, g.const(rng.normal(size=64)), g.const(rng.normal(size=64)),
        g.const(rng.normal(scale=2, size=64)), g.const(rng.uniform(0.5, 3, 64)), epsilon=1e-3,
    )
    h = g.op("Where", g.op("GreaterOrEqual", h, g.const(0.0)), g.const(1.0), g.const(-1.0))
    h = g.op("MatMul", h, g.const(pm1(rng, 10, 64).T))
    out = g.op("Softmax", g.op("Add", h, g.const(rng.normal(size=10))), axis=-1)
    model = check(g.save(tmp_path / "m.onnx", out), images, [1, 28, 28], softmax=True)
    assert model.info()["input"] == "u8"


def test_linear_batchnorm1d_scores_keep_a_scale_per_class(tmp_path, images):
    """PyTorch's Linear -> BatchNorm1d at the end: the classes are scaled
    differently (one negative, one zero), which the model keeps as a score
    scale per class; the scores are ONNX Runtime's logits."""
    rng = np.random.default_rng(6)
    g = Graph(["N", 784])
    h = g.op("Sign", g.op("Sub", "x", g.const(127.5)))
    h = g.op("Gemm", h, g.const(pm1(rng, 96, 784)), g.const(rng.integers(-9, 9, 96) + 0.5), transB=1)
    h = g.op("Sign", h)
    h = g.op("Gemm", h, g.const(pm1(rng, 10, 96)), g.const(rng.normal(size=10)), transB=1)
    gamma = rng.uniform(0.2, 3, 10)
    gamma[3], gamma[7] = -gamma[3], 0.0
    out = g.op(
        "BatchNormalization", h, g.const(gamma), g.const(rng.normal(size=10)),
        g.const(rng.normal(scale=2, size=10)), g.const(rng.uniform(0.5, 30, 10)), epsilon=1e-5,
    )
    path = g.save(tmp_path / "m.onnx", out)
    check(path, images, [784])
    # The plain `dot + bias` of the same layers would pick other classes.
    plain = Graph(["N", 784])
    plain.nodes, plain.inits = g.nodes[:-1], g.inits
    unscaled = onnx_run(plain.save(tmp_path / "plain.onnx", h), images, [784])
    assert (unscaled.argmax(axis=1) != onnx_run(path, images, [784]).argmax(axis=1)).any()


def test_u8_one_layer_scores_scaled_per_class(tmp_path, images):
    """A single layer on the pixels, then a Mul by a constant per class."""
    rng = np.random.default_rng(7)
    g = Graph(["N", 784])
    x = g.op("Div", "x", g.const(255.0))
    h = g.op("Gemm", x, g.const(pm1(rng, 10, 784)), g.const(rng.normal(size=10) * 20), transB=1)
    out = g.op("Mul", h, g.const(rng.uniform(0.1, 5, 10)))
    model = check(g.save(tmp_path / "m.onnx", out), images, [784])
    assert model.info()["input"] == "u8"


def test_ste_residue_bipolar_quant_and_folded_weights(tmp_path, random_images):
    rng = np.random.default_rng(4)
    w1, b1 = rng.normal(size=(784, 96)), rng.integers(-20, 20, 96) + 0.25
    w2, b2 = rng.normal(size=(96, 10)), rng.normal(size=10)
    g = Graph(["N", 784])
    x = g.op("Sign", g.op("Sub", "x", g.const(100.25)))
    # Weights as Sign(W_float) · α, as a straight-through-estimator export.
    w = g.op("Mul", g.op("Sign", g.const(w1)), g.const(0.5))
    h = g.op("Add", g.op("MatMul", x, w), g.const(b1))
    h = g.op("Add", h, g.op("Sub", g.op("Sign", h), h))  # the STE residue
    w = g.op("BipolarQuant", g.const(w2), g.const(1.0), domain=QONNX)
    out = g.op("Gemm", h, w, g.const(b2), alpha=2.0)
    model, caught = import_quietly(g.save(tmp_path / "m.onnx", out))
    assert caught == []
    # ONNX Runtime has no BipolarQuant: the same network in NumPy.
    pm = lambda v: np.where(v >= 0, 1.0, -1.0)
    h = pm(pm(random_images - 100.25) @ (np.sign(w1) * 0.5) + b1)
    want = 2.0 * h @ pm(w2) + b2
    assert (model.predict(random_images) == want.argmax(axis=1)).all()
    np.testing.assert_allclose(model.scores(random_images) * 2.0, want, rtol=1e-4, atol=1e-3)


def cnn(rng, first_pads, negative_gamma, pool_after_sign, pad_value=-1.0):
    g = Graph(["N", 1, 28, 28])
    x = g.op("Div", "x", g.const(255.0))
    c = g.op("Conv", x, g.const(pm1(rng, 8, 1, 3, 3, alpha=rng.uniform(0.1, 1, 8))),
             g.const(rng.normal(size=8)), pads=[first_pads] * 4, kernel_shape=[3, 3])
    gamma = rng.uniform(0.5, 2, 8) * np.where(np.arange(8) % 3 == 0, -1 if negative_gamma else 1, 1)
    bn = lambda h, n: g.op("BatchNormalization", h, g.const(gamma[:n] if n == 8 else rng.uniform(0.5, 2, n) * np.where(np.arange(n) % 2 == 0, -1 if negative_gamma else 1, 1)),
                           g.const(rng.normal(size=n)), g.const(rng.normal(size=n)), g.const(rng.uniform(0.5, 2, n)))
    if pool_after_sign:
        h = g.op("MaxPool", g.op("Sign", bn(c, 8)), kernel_shape=[2, 2], strides=[2, 2])
    else:
        h = g.op("Sign", bn(g.op("MaxPool", c, kernel_shape=[2, 2], strides=[2, 2]), 8))
    h = g.op("Pad", h, g.ints([0, 0, 1, 1, 0, 0, 1, 1]), g.const(pad_value), mode="constant")
    c2 = g.op("Conv", h, g.const(pm1(rng, 16, 8, 3, 3)), kernel_shape=[3, 3])
    if pool_after_sign:
        h = g.op("MaxPool", g.op("Sign", bn(c2, 16)), kernel_shape=[2, 2], strides=[2, 2])
    else:
        h = g.op("Sign", bn(g.op("MaxPool", c2, kernel_shape=[2, 2], strides=[2, 2]), 16))
    h = g.op("Flatten", h, axis=1)
    out = g.op("Gemm", h, g.const(pm1(rng, 10, 16 * 7 * 7 if first_pads else 16 * 6 * 6)),
               g.const(rng.normal(size=10)), transB=1)
    return g, out


@pytest.mark.parametrize("pool_after_sign", [False, True])
@pytest.mark.parametrize("negative_gamma", [False, True])
@pytest.mark.parametrize("first_pads", [0, 1])
def test_cnn(tmp_path, images, first_pads, negative_gamma, pool_after_sign):
    rng = np.random.default_rng(5 + first_pads + 2 * negative_gamma)
    g, out = cnn(rng, first_pads, negative_gamma, pool_after_sign)
    model = check(g.save(tmp_path / "m.onnx", out), images[:500], [1, 28, 28])
    assert model.info()["input"] == "u8"


@pytest.mark.parametrize("pool_after_sign", [False, True])
@pytest.mark.parametrize("negative_gamma", [False, True])
def test_cnn_padded_with_plus_one(tmp_path, images, negative_gamma, pool_after_sign):
    """A Pad of +1 before a Conv imports exactly as the engine's -1 padding
    of the negated map through negated filters: the layer before it fires
    with complemented thresholds (and pools with AND where it pooled with
    OR). Classes equal ONNX Runtime's, scores within 1e-4; the map's -1
    background makes every border position differ from -1 padding."""
    rng = np.random.default_rng(17 + 2 * negative_gamma + pool_after_sign)
    g, out = cnn(rng, 1, negative_gamma, pool_after_sign, pad_value=1.0)
    model = check(g.save(tmp_path / "m.onnx", out), images[:1000], [1, 28, 28])
    # The same graph read as -1 padding differs: the test can fail.
    rng = np.random.default_rng(17 + 2 * negative_gamma + pool_after_sign)
    g, out = cnn(rng, 1, negative_gamma, pool_after_sign, pad_value=-1.0)
    minus = bnn.from_onnx(g.save(tmp_path / "minus.onnx", out))
    flat = images[:1000].reshape(1000, -1)
    assert (model.scores(flat) != minus.scores(flat)).any()


def zero_padded_cnn(rng, pad_node):
    """A binary-input CNN whose convolutions pad their ±1 maps with 0, as
    PyTorch's `padding=1` does: by the Conv's own pads, or by a Pad node of
    value 0 before a Conv without pads."""
    g = Graph(["N", 1, 28, 28])
    h = g.op("Sign", g.op("Sub", g.op("Div", "x", g.const(255.0)), g.const(0.5)))

    def conv(h, o, i):
        w, b = g.const(pm1(rng, o, i, 3, 3)), g.const(rng.normal(size=o))
        if pad_node:
            h = g.op("Pad", h, g.ints([0, 0, 1, 1, 0, 0, 1, 1]), g.const(0.0), mode="constant")
            return g.op("Conv", h, w, b, kernel_shape=[3, 3])
        return g.op("Conv", h, w, b, pads=[1, 1, 1, 1], kernel_shape=[3, 3])

    def bn(h, n):
        gamma = rng.uniform(0.5, 2, n) * np.where(np.arange(n) % 3 == 0, -1, 1)
        return g.op("BatchNormalization", h, g.const(gamma), g.const(rng.normal(size=n)),
                    g.const(rng.normal(scale=2, size=n)), g.const(rng.uniform(0.5, 2, n)))

    h = g.op("MaxPool", g.op("Sign", bn(conv(h, 8, 1), 8)), kernel_shape=[2, 2], strides=[2, 2])
    h = g.op("Sign", bn(g.op("MaxPool", conv(h, 16, 8), kernel_shape=[2, 2], strides=[2, 2]), 16))
    h = g.op("Flatten", h, axis=1)
    out = g.op("Gemm", h, g.const(pm1(rng, 10, 16 * 7 * 7)), g.const(rng.normal(size=10)), transB=1)
    return g, out


@pytest.mark.parametrize("pad_node", [False, True])
def test_zero_padded_binary_cnn(tmp_path, images, pad_node):
    """Zero padding of a binary map imports as the engine's zero padding:
    classes equal ONNX Runtime's on MNIST, scores within 1e-4. MNIST's
    margins are background (-1 after Sign), so a border position padded
    with -1 instead of 0 would shift its dot by the sum of the filter's
    out-of-bounds weights."""
    rng = np.random.default_rng(11)
    g, out = zero_padded_cnn(rng, pad_node)
    path = g.save(tmp_path / "m.onnx", out)
    model = check(path, images[:1000], [1, 28, 28])
    info = model.info()
    assert info["input"] == "binary", info
    saved = tmp_path / "m.bnn"
    model.save(saved)
    assert bnn.load(saved).predict(images[:200].reshape(200, -1)).tolist() == (
        model.predict(images[:200].reshape(200, -1)).tolist()
    )
    assert saved.read_bytes()[8] == 3, "zero padding is stored in a version-3 section"


def refused(tmp_path, g, out, *needles):
    path = g.save(tmp_path / "bad.onnx", out)
    with pytest.raises(ValueError) as e:
        bnn.from_onnx(path)
    message = str(e.value)
    assert "\n" not in message and len(message) <= 400, message
    for needle in needles:
        assert needle in message, message


def test_refusals(tmp_path):
    rng = np.random.default_rng(6)

    g = Graph(["N", 784])
    h = g.op("Relu", g.op("Gemm", g.op("Sign", "x"), g.const(pm1(rng, 784, 16))))
    refused(tmp_path, g, g.op("Gemm", h, g.const(pm1(rng, 16, 10))), "relu", "float activation")

    g = Graph(["N", 1, 8, 8])
    h = g.op("Sign", g.op("Sub", "x", g.const(127.5)))
    h = g.op("Pad", h, g.ints([0, 0, 1, 1, 0, 0, 1, 1]), g.const(0.5), mode="constant")
    h = g.op("Sign", g.op("Conv", h, g.const(pm1(rng, 4, 1, 3, 3))))
    out = g.op("Gemm", g.op("Flatten", h), g.const(pm1(rng, 256, 10)))
    refused(tmp_path, g, out, "pads a binary map with 0.5: only -1", "0 (its zero padding) or +1")

    g = Graph(["N", 1, 8, 8])
    h = g.op("Sign", g.op("Sub", "x", g.const(127.5)))
    h = g.op("Pad", h, g.ints([0, 0, 1, 1, 0, 0, 1, 1]), g.const(1.0), mode="constant")
    h = g.op("Sign", g.op("Conv", h, g.const(pm1(rng, 4, 1, 3, 3))))
    out = g.op("Gemm", g.op("Flatten", h), g.const(pm1(rng, 256, 10)))
    refused(tmp_path, g, out, "Pad", "pads the binarized input with 1", "pad with -1 or 0")

    g = Graph(["N", 2, 8, 8])
    h = g.op("Conv", "x", g.const(pm1(rng, 4, 1, 3, 3)), group=2)
    refused(tmp_path, g, h, "group=2")

    g = Graph(["N", 1, 8, 8])
    h = g.op("Conv", "x", g.const(pm1(rng, 4, 1, 3, 3)), strides=[2, 2])
    refused(tmp_path, g, h, "strides [2, 2]")

    g = Graph(["N", 784])
    h = g.op("Sign", g.op("Gemm", g.op("Sign", "x"), g.const(pm1(rng, 784, 784))))
    h2 = g.op("Sign", g.op("Gemm", h, g.const(pm1(rng, 784, 784))))
    refused(tmp_path, g, g.op("Add", h, h2), "residual Add")

    g = Graph(["N", 784])
    h = g.op("Gemm", g.op("Sign", "x"), g.const(rng.normal(size=(784, 10))))
    refused(tmp_path, g, h, "not ±α")


def test_opset_9_is_refused(tmp_path):
    g = Graph(["N", 784])
    out = g.op("MatMul", g.op("Sign", "x"), g.const(np.ones((784, 10))))
    g.save(tmp_path / "old.onnx", out, opset=9)
    with pytest.raises(ValueError, match="opset 9 is older than 11"):
        bnn.from_onnx(tmp_path / "old.onnx")


def test_a_reachable_tie_is_a_warning(tmp_path):
    rng = np.random.default_rng(8)
    g = Graph(["N", 784])
    h = g.op("Sign", g.op("Gemm", g.op("Sign", g.op("Sub", "x", g.const(127.5))), g.const(pm1(rng, 784, 32)),
                          g.const(np.full(32, 2.0))))
    out = g.op("Gemm", h, g.const(pm1(rng, 32, 10)))
    path = g.save(tmp_path / "tie.onnx", out)
    with pytest.warns(UserWarning, match="32 of 32 neurons can have a pre-activation of exactly 0"):
        bnn.from_onnx(path)
