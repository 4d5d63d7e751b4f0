"""`bnn export --format onnx`, run by ONNX Runtime: for every shipped model
the classes must equal the engine's on all 10,000 MNIST test images and
the scores agree within 1e-4 (relative); models with a stored feature
encoding (min-max and thermometer) take float features and encode them in
the graph exactly as the engine does."""

import numpy as np
import pytest

import bnn
from conftest import WEIGHTS

try:
    import onnx
    import onnxruntime as ort
except ImportError:  # pragma: no cover - the failure names the fix
    onnx = None


@pytest.fixture(scope="module", autouse=True)
def need_onnx():
    if onnx is None:
        pytest.fail(
            "onnx and onnxruntime are missing: pip install './crates/bnn-py[test]'"
        )


def export(cli, bnn_bin, model_path, out):
    cli(bnn_bin, "export", model_path, "--format", "onnx", "-o", out)
    onnx.checker.check_model(onnx.load(str(out)), full_check=True)
    return ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])


def run(session, x):
    (inp,) = session.get_inputs()
    scores, classes = session.run(["scores", "classes"], {inp.name: x})
    assert scores.dtype == np.float32 and classes.dtype == np.int64
    return scores, classes


def compare(model, session, x, engine_x=None):
    """Classes equal, scores within 1e-4 relative; the largest score
    difference (absolute)."""
    engine_x = x if engine_x is None else engine_x
    want_classes, want_scores = model.classify(engine_x)
    scores, classes = run(session, x)
    np.testing.assert_array_equal(classes, want_classes)
    np.testing.assert_allclose(scores, want_scores, rtol=1e-4, atol=1e-4)
    return float(np.max(np.abs(scores - want_scores)))


SHIPPED = sorted(p.name for p in WEIGHTS.glob("*.bnn"))


def test_the_shipped_models_are_all_here():
    assert len(SHIPPED) >= 8, SHIPPED


@pytest.mark.parametrize("name", SHIPPED)
def test_a_shipped_model_runs_the_same_in_onnx_runtime(tmp_path, cli, bnn_bin, test_set, name):
    images, _ = test_set
    assert len(images) == 10_000
    model = bnn.load(WEIGHTS / name)
    session = export(cli, bnn_bin, WEIGHTS / name, tmp_path / "m.onnx")
    (inp,) = session.get_inputs()
    assert inp.type == "tensor(uint8)"
    x = images.reshape(len(images), *inp.shape[1:])
    diff = compare(model, session, x, images)
    print(f"{name}: 10,000 images, classes equal, max score difference {diff}")
    # Every value is an integer held exactly in f32 and the bias is added
    # once, as the engine adds it: the scores are the engine's, bit for bit.
    assert diff == 0.0


def features(rng, n, spread=1.0):
    """Rows of 7 float features: one constant (max == min), one whose
    range max − min overflows f32 (which encodes to 0, as max == min),
    the others on different scales, `spread` times wider."""
    x = rng.normal(size=(n, 7)).astype(np.float32) * spread
    x[:, 1] *= 1000.0
    x[:, 2] = 3.25
    x[:, 3] = np.round(x[:, 3] * 4) / 4  # values on the 0.5 rounding edges
    x[:, 5] *= 1e-3
    x[:, 6] = rng.uniform(-3e38, 3e38, size=n)
    return x


def dense_layers(rng, widths):
    return [
        {"weight": rng.choice([-1.0, 1.0], size=(o, i)), "bias": rng.normal(scale=3.0, size=o)}
        for i, o in zip(widths, widths[1:])
    ]


@pytest.mark.parametrize("kind", ["minmax", "thermometer"])
@pytest.mark.parametrize("input", ["u8", "binary"])
def test_a_feature_encoding_is_carried_in_the_graph(tmp_path, cli, bnn_bin, kind, input):
    rng = np.random.default_rng(5)
    train = features(rng, 300)
    levels = 6 if kind == "thermometer" else None
    width = 7 * (levels or 1)
    model = bnn.from_numpy(dense_layers(rng, [width, 24, 4]), input=input, threshold=100)
    model = model.with_encoding(train, kind, levels)
    path = tmp_path / "encoded.bnn"
    model.save(path)
    session = export(cli, bnn_bin, path, tmp_path / "encoded.onnx")
    (inp,) = session.get_inputs()
    assert inp.type == "tensor(float)" and inp.shape[1] == 7
    # Held-out rows, beyond the fitted range too, and the training rows
    # themselves (min and max exactly, the thermometer's cut points).
    test = np.concatenate([features(rng, 2000, spread=1.5), train])
    compare(model, session, test)


def test_a_model_trained_on_features_exports(tmp_path, cli, bnn_bin):
    rng = np.random.default_rng(8)
    x = rng.normal(size=(400, 5)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] * x[:, 2] > 0).astype(np.int64)
    model, _ = bnn.train(
        "bn-u8", x=x, y=y, encoding="u8", epochs=2, seed=1, output=tmp_path / "t.bnn"
    )
    session = export(cli, bnn_bin, tmp_path / "t.bnn", tmp_path / "t.onnx")
    compare(model, session, rng.normal(size=(1000, 5)).astype(np.float32) * 2)


def test_a_per_class_score_scale_is_carried_in_the_graph(tmp_path, cli, bnn_bin, test_set):
    """A model with a score scale per class (imported from Linear ->
    BatchNorm1d) exports with a Mul between the dot and the bias: ONNX
    Runtime gives the engine's classes and, since the dot is exact and the
    product and the sum round once each, the engine's scores bit for bit."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(8)
    w1 = rng.choice([-1.0, 1.0], size=(64, 784)).astype(np.float32)
    w2 = rng.choice([-1.0, 1.0], size=(10, 64)).astype(np.float32)
    gamma = rng.uniform(0.2, 3, 10).astype(np.float32)
    gamma[4] = -gamma[4]
    inits = {
        "half": np.float32(127.5), "w1": w1, "b1": (rng.integers(-9, 9, 64) + 0.5).astype(np.float32),
        "w2": w2, "gamma": gamma, "beta": rng.normal(size=10).astype(np.float32),
        "mean": rng.normal(size=10).astype(np.float32), "var": rng.uniform(0.5, 30, 10).astype(np.float32),
    }
    nodes = [
        helper.make_node("Sub", ["x", "half"], ["xs"]),
        helper.make_node("Sign", ["xs"], ["xb"]),
        helper.make_node("Gemm", ["xb", "w1", "b1"], ["h"], transB=1),
        helper.make_node("Sign", ["h"], ["hb"]),
        helper.make_node("Gemm", ["hb", "w2"], ["z"], transB=1),
        helper.make_node("BatchNormalization", ["z", "gamma", "beta", "mean", "var"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 784])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(np.asarray(v), k) for k, v in inits.items()],
    )
    source = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    source.ir_version = 8
    onnx.save(source, str(tmp_path / "bn.onnx"))
    model = bnn.from_onnx(tmp_path / "bn.onnx")
    model.save(tmp_path / "bn.bnn")
    session = export(cli, bnn_bin, tmp_path / "bn.bnn", tmp_path / "out.onnx")
    exported = onnx.load(str(tmp_path / "out.onnx")).graph.node
    assert any(
        n.op_type == "Mul" and any(i.startswith("score_scale") for i in n.input) for n in exported
    ), [(n.op_type, list(n.input)) for n in exported]
    images = test_set[0][:2000].reshape(2000, 784)
    assert compare(model, session, images) == 0.0
