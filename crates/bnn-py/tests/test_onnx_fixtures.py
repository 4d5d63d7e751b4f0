"""Real PyTorch exports, imported: the fixtures in tests/fixtures/onnx are
binary networks trained on MNIST in PyTorch and written by PyTorch's own
ONNX exporters (and Brevitas's QONNX exporter); `scripts/make-onnx-fixtures.py`
regenerates them. Each is imported by `bnn import` and by `bnn.from_onnx`, and
run on the 10,000 MNIST test images beside ONNX Runtime, the reference:

- bnn's classes equal ONNX Runtime's on every image;
- the scores agree: |bnn · s − ort| <= 1e-4 · max(1, |ort|) for every score,
  where s is the factor the import reports ("scores are the ONNX logits
  divided by s"), so a score near 0 is held to 1e-4 absolute;
- the accuracy on the labels holds the fixture's floor.

The fixtures' binarizers are `Where(x >= 0, 1, -1)` and `BipolarQuant`, both
+1 at 0 as bnn is, so the import must report no possible tie. These tests need
onnx and onnxruntime (the package's [test] extra), never torch."""

import gzip
import re
import warnings

import numpy as np
import pytest

import bnn
from conftest import ROOT

try:
    import onnx
    import onnxruntime as ort
    from onnx import helper, numpy_helper
except ImportError:  # pragma: no cover - the failure names the fix
    onnx = None

FIXTURES = ROOT / "tests" / "fixtures" / "onnx"
QONNX = "qonnx.custom_op.general"

# name: accuracy floor, the imported architecture, the ops the export must
# hold (so a regenerated fixture still covers its patterns) and must not.
CASES = {
    "mnist-mlp": dict(
        floor=0.97, arch="d256,d256,d10", has={"Div", "Gemm", "GreaterOrEqual", "Where"}, lacks={"Sign"},
    ),
    "mnist-cnn": dict(
        floor=0.98,
        arch="c3x32,p2,c3x32,p2,c3x64,p2,d256,d10",
        # torch.export folds the first layer's Where(W >= 0) and fuses its
        # batch norm into the Conv (see test_cnn_fixture_layers); the larger
        # weights stay Where(W >= 0) with a BatchNormalization after the Conv.
        has={"Div", "Sub", "Conv", "BatchNormalization", "MaxPool", "GreaterOrEqual", "Where", "Reshape"},
        lacks={"Pad", "Sign"},
    ),
    "mnist-cnn-opset13": dict(
        floor=0.98,
        arch="c3x32,p2,c3x32,p2,c3x64,p2,d256,d10",
        # The TorchScript exporter keeps Where(W >= 0) on the latent weights
        # and the batch norms.
        has={"Div", "Sub", "Conv", "BatchNormalization", "MaxPool", "GreaterOrEqual", "Where", "Flatten"},
        lacks={"Pad", "Sign"},
    ),
    "mnist-qonnx": dict(
        floor=0.97, arch="d256,d256,d10", has={"BipolarQuant", "BatchNormalization", "Gemm"}, lacks={"Sign"},
    ),
}


@pytest.fixture(scope="module", autouse=True)
def need_onnx():
    if onnx is None:
        pytest.fail("onnx and onnxruntime are missing: pip install './crates/bnn-py[test]'")


def unpack(name, tmp_path):
    packed = FIXTURES / f"{name}.onnx.gz"
    if not packed.is_file():
        pytest.fail(f"{packed} is missing: run scripts/make-onnx-fixtures.py (see its docstring)")
    path = tmp_path / f"{name}.onnx"
    path.write_bytes(gzip.decompress(packed.read_bytes()))
    return path


def standard_ops(graph):
    """The graph with each QONNX BipolarQuant(x, s) written as standard ops,
    by its definition (qonnx's `binary_quant`): Where(x >= 0, 1, -1) · s. ONNX
    Runtime has no BipolarQuant."""
    graph = onnx.ModelProto.FromString(graph.SerializeToString())
    nodes, replaced = [], False
    for n in graph.graph.node:
        if n.domain != QONNX:
            nodes.append(n)
            continue
        assert n.op_type == "BipolarQuant", n.op_type
        (y,) = n.output
        x, s = n.input
        replaced = True
        nodes += [
            helper.make_node("GreaterOrEqual", [x, "bq_zero"], [y + "_ge"]),
            helper.make_node("Where", [y + "_ge", "bq_one", "bq_minus_one"], [y + "_pm"]),
            helper.make_node("Mul", [y + "_pm", s], [y]),
        ]
    if replaced:
        graph.graph.initializer.extend(
            numpy_helper.from_array(np.float32(v), name)
            for v, name in [(0, "bq_zero"), (1, "bq_one"), (-1, "bq_minus_one")]
        )
        del graph.graph.node[:]
        graph.graph.node.extend(nodes)
        kept = [o for o in graph.opset_import if o.domain != QONNX]
        del graph.opset_import[:]
        graph.opset_import.extend(kept)
    return graph


def onnx_scores(graph, images):
    """ONNX Runtime's scores for uint8 images, fed as float pixels 0..255,
    a thousand at a time, or one at a time where the export fixed the batch
    at 1 (as Brevitas's does by default)."""
    session = ort.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])
    (x_info,) = session.get_inputs()
    step = 1 if x_info.shape[0] == 1 else 1000
    x = images[:, None].astype(np.float32)
    return np.concatenate([session.run(None, {x_info.name: x[i : i + step]})[0] for i in range(0, len(x), step)])


def reported_scale(text):
    """The factor an import reports: 'scores are the ONNX logits divided by
    S' (CLI) or '... logits / S' (the model's description); none means 1."""
    found = re.findall(r"scores are the ONNX logits (?:divided by|/) ([0-9.e+-]+)", text)
    assert len(found) <= 1, text
    return float(found[0]) if found else 1.0


@pytest.mark.parametrize("name", sorted(CASES))
def test_pytorch_export_matches_onnx_runtime(name, tmp_path, test_set, cli, bnn_bin):
    case = CASES[name]
    images, labels = test_set
    path = unpack(name, tmp_path)
    graph = onnx.load(str(path))
    ops = {n.op_type for n in graph.graph.node}
    assert case["has"] <= ops, f"{name}: the export lacks {case['has'] - ops}"
    assert not case["lacks"] & ops, f"{name}: the export has {case['lacks'] & ops}"

    # The command line, then Python: the same model, the same report.
    done = cli(bnn_bin, "import", path, "-o", tmp_path / "m.bnn")
    out, err = done.stdout.decode(), done.stderr.decode()
    assert f"({case['arch']}, u8 input)" in out, out
    assert "warning" not in err and "ties" not in out, (out, err)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = bnn.from_onnx(path)
    assert [str(w.message) for w in caught] == []
    scale = reported_scale(out)
    assert reported_scale(model.info()["description"]) == scale
    from_cli = bnn.load(tmp_path / "m.bnn")

    flat = images.reshape(len(images), -1)
    classes, scores = model.predict(flat), model.scores(flat)
    assert (from_cli.predict(flat) == classes).all()
    assert (from_cli.scores(flat) == scores).all()

    want = onnx_scores(standard_ops(graph), images).astype(np.float64)
    differ = classes != want.argmax(axis=1)
    assert not differ.any(), f"{name}: {differ.sum()} of {len(images)} classes differ from ONNX Runtime's"
    got = scores.astype(np.float64) * scale
    error = np.abs(got - want) / np.maximum(1.0, np.abs(want))
    assert error.max() <= 1e-4, f"{name}: scores differ by {error.max():.2e} (relative) at {np.unravel_index(error.argmax(), error.shape)}"
    accuracy = (classes == labels).mean()
    assert accuracy >= case["floor"], f"{name}: accuracy {accuracy:.2%} under {case['floor']:.0%}"


def test_cnn_fixture_layers(tmp_path, cli, bnn_bin):
    """The CNN's first Conv carries a bias though the PyTorch layer has none:
    the exporter fused its BatchNorm (eval mode) into ±α·sign weights and a
    bias, which the import recovers. Its binary convolutions have padding=1
    on ±1 maps (zeros at the border), which the engine runs as its zero
    padding; the first, on the normalized pixels, has none (zero there would
    be the mean pixel, not a pixel the engine can pad with)."""
    graph = onnx.load(str(unpack("mnist-cnn", tmp_path)))
    convs = [n for n in graph.graph.node if n.op_type == "Conv"]
    assert [len(n.input) for n in convs] == [3, 2, 2]
    pads = [list(next((a.ints for a in n.attribute if a.name == "pads"), [0, 0, 0, 0])) for n in convs]
    assert pads == [[0, 0, 0, 0], [1, 1, 1, 1], [1, 1, 1, 1]]
    assert {o.domain: o.version for o in graph.opset_import}[""] >= 18
    cli(bnn_bin, "import", tmp_path / "mnist-cnn.onnx", "-o", tmp_path / "m.bnn")
    info = cli(bnn_bin, "info", tmp_path / "m.bnn").stdout.decode()
    assert re.search(r"^padding +valid, zero$", info, re.M), info


def test_opset13_fixture_is_opset13(tmp_path):
    graph = onnx.load(str(unpack("mnist-cnn-opset13", tmp_path)))
    assert {o.domain: o.version for o in graph.opset_import}[""] == 13
