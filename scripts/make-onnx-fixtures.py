#!/usr/bin/env python3
"""Regenerates the ONNX fixtures in tests/fixtures/onnx: binary networks
trained on MNIST in PyTorch and exported by PyTorch's own exporter (and
Brevitas's QONNX exporter), which `crates/bnn-py/tests/test_onnx_fixtures.py`
imports and compares with ONNX Runtime. The tests need neither torch nor
Brevitas; this script does, in a virtual environment outside the repository
(PyPI's torch is gigabytes):

    python3 -m venv /work/venv-torch
    /work/venv-torch/bin/pip install torch onnx onnxruntime onnxscript brevitas qonnx onnxoptimizer
    /work/venv-torch/bin/python scripts/make-onnx-fixtures.py [--data data/mnist] [--out tests/fixtures/onnx]

It writes, gzip-compressed (after training the latent weights are replaced by
their signs, which computes the same and leaves ±1 float32 initializers, 32
times larger than their bits; `gunzip -k` gives the exporter's file byte for
byte):

- mnist-mlp.onnx.gz: 784-256-256-10, `x / 255` in the graph, a u8 first
  layer, BatchNorm1d then a binarizer, a last layer of ±1 weights times one
  learned scale plus a bias. Default exporter (torch.export, the installed
  torch's default opset).
- mnist-cnn.onnx.gz: `(x / 255 - mean) / std` (torchvision's ToTensor and
  Normalize) in the graph, three binary convolutions (the first on the
  normalized pixels with padding=0, the others with padding=1 on ±1 maps,
  i.e. zero padding), each Conv, BatchNorm, 2x2 max pooling and a
  binarizer, then Flatten of the NCHW map into a dense 576-256 layer
  (BatchNorm1d, binarizer) and a last layer like the MLP's. Default exporter, in eval mode: it folds the first layer's small
  `Where(W >= 0)` and fuses its BatchNorm into the Conv (±α weights and a
  bias); the larger layers keep `Where(W >= 0)` and a BatchNormalization
  (its constant folding has a size limit).
- mnist-cnn-opset13.onnx.gz: the same trained CNN through the TorchScript
  exporter at opset 13, which keeps `Where(W >= 0, 1, -1)` on every
  weight and every BatchNormalization.
- mnist-qonnx.onnx.gz: a Brevitas MLP like the first (QuantLinear with
  SignedBinaryWeightPerTensorConst, QuantIdentity with
  SignedBinaryActPerTensorConst), exported by `brevitas.export.export_qonnx`:
  BipolarQuant on the weights and the activations.

The binarizer is sign with a straight-through estimator (the gradient passes
where |x| <= 1), mapping 0 to +1 as bnn does: the forward is
`torch.where(x >= 0, 1, -1)`, so the graph holds `Where(GreaterOrEqual(x, 0))`,
which is exact at 0 (ONNX's `Sign(0)` is 0). Each network is checked in ONNX
Runtime on the 10,000 test images against its accuracy floor (MLP 97 %,
CNN 98 %), and the script fails below it. Seeded, on one thread: a rerun
repeats. `--only mlp,cnn,qonnx` picks some; three runs of one each can go
side by side.
"""

import argparse
import gzip
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

MEAN, STD = 0.1307, 0.3081
FLOORS = {"mnist-mlp": 0.97, "mnist-cnn": 0.98, "mnist-cnn-opset13": 0.98, "mnist-qonnx": 0.97}


def read_idx(path):
    """An IDX file (plain or .gz) as a NumPy array."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    if data[:2] != b"\0\0" or data[2] != 8:
        raise SystemExit(f"{path}: not an unsigned-byte IDX file")
    rank = data[3]
    dims = [int.from_bytes(data[4 + 4 * k : 8 + 4 * k], "big") for k in range(rank)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * rank).reshape(dims)


def mnist(root, split):
    prefix = "train" if split == "train" else "t10k"
    found = []
    for kind in ("images-idx3-ubyte", "labels-idx1-ubyte"):
        name = Path(root) / f"{prefix}-{kind}"
        if not name.exists():
            name = name.with_name(name.name + ".gz")
        if not name.exists():
            raise SystemExit(f"{name}: missing (run `cargo run --release -- fetch`)")
        found.append(read_idx(name))
    return found


class SignSte(torch.autograd.Function):
    """+1 where x >= 0, else -1; the gradient passes where |x| <= 1."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.where(x >= 0, 1.0, -1.0)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * (x.abs() <= 1).to(grad.dtype)


sign = SignSte.apply


class BinaryLinear(nn.Linear):
    """±1 weights (latent float weights, binarized in the forward pass)."""

    def __init__(self, n_in, n_out):
        super().__init__(n_in, n_out, bias=False)

    def forward(self, x):
        return F.linear(x, sign(self.weight))


class BinaryConv(nn.Conv2d):
    def __init__(self, c_in, c_out, padding):
        super().__init__(c_in, c_out, 3, padding=padding, bias=False)

    def forward(self, x):
        return F.conv2d(x, sign(self.weight), None, padding=self.padding)


class Scores(nn.Module):
    """The last layer: ±1 weights times one learned scale, plus a bias per
    class (one scale for every class keeps bnn's classes exact)."""

    def __init__(self, n_in, classes):
        super().__init__()
        self.fc = BinaryLinear(n_in, classes)
        self.scale = nn.Parameter(torch.tensor(1.0 / n_in**0.5))
        self.bias = nn.Parameter(torch.zeros(classes))

    def forward(self, x):
        return self.fc(x) * self.scale + self.bias


class Mlp(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.bn1 = BinaryLinear(784, 256), nn.BatchNorm1d(256)
        self.fc2, self.bn2 = BinaryLinear(256, 256), nn.BatchNorm1d(256)
        self.out = Scores(256, 10)

    def forward(self, x):
        x = torch.flatten(x, 1) / 255.0
        x = sign(self.bn1(self.fc1(x)))
        x = sign(self.bn2(self.fc2(x)))
        return self.out(x)


class Cnn(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1, self.bn1 = BinaryConv(1, 32, padding=0), nn.BatchNorm2d(32)
        self.c2, self.bn2 = BinaryConv(32, 32, padding=1), nn.BatchNorm2d(32)
        self.c3, self.bn3 = BinaryConv(32, 64, padding=1), nn.BatchNorm2d(64)
        self.fc, self.bn4 = BinaryLinear(64 * 3 * 3, 256), nn.BatchNorm1d(256)
        self.out = Scores(256, 10)

    def forward(self, x):
        x = (x / 255.0 - MEAN) / STD  # ToTensor, then Normalize((MEAN,), (STD,))
        x = sign(F.max_pool2d(self.bn1(self.c1(x)), 2))  # 28 -> 26 -> 13
        x = sign(F.max_pool2d(self.bn2(self.c2(x)), 2))  # 13 -> 6
        x = sign(F.max_pool2d(self.bn3(self.c3(x)), 2))  # 6 -> 3
        x = sign(self.bn4(self.fc(torch.flatten(x, 1))))
        return self.out(x)


def brevitas_mlp():
    from brevitas.nn import QuantIdentity, QuantLinear
    from brevitas.quant.binary import SignedBinaryActPerTensorConst, SignedBinaryWeightPerTensorConst

    def dense(n_in, n_out):
        return QuantLinear(n_in, n_out, bias=False, weight_quant=SignedBinaryWeightPerTensorConst)

    def act():
        return QuantIdentity(act_quant=SignedBinaryActPerTensorConst)

    class QuantMlp(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.bn1, self.a1 = dense(784, 256), nn.BatchNorm1d(256), act()
            self.fc2, self.bn2, self.a2 = dense(256, 256), nn.BatchNorm1d(256), act()
            self.fc3 = dense(256, 10)
            self.scale = nn.Parameter(torch.tensor(1.0 / 16))
            self.bias = nn.Parameter(torch.zeros(10))

        def forward(self, x):
            x = torch.flatten(x, 1) / 255.0
            x = self.a1(self.bn1(self.fc1(x)))
            x = self.a2(self.bn2(self.fc2(x)))
            return self.fc3(x) * self.scale + self.bias

    return QuantMlp()


def train(model, images, labels, epochs, lr, batch=128):
    """Adam with a cosine schedule; latent weights clipped to [-1, 1]."""
    x = torch.tensor(images, dtype=torch.float32).unsqueeze(1)
    y = torch.tensor(labels, dtype=torch.long)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    steps = epochs * ((len(x) + batch - 1) // batch)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    latent = [m.weight for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    for epoch in range(epochs):
        start = time.time()
        model.train()
        order = torch.randperm(len(x))
        total = 0.0
        for i in range(0, len(x), batch):
            b = order[i : i + batch]
            loss = F.cross_entropy(model(x[b]), y[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            with torch.no_grad():
                for w in latent:
                    w.clamp_(-1, 1)
            total += loss.item() * len(b)
        print(f"  epoch {epoch + 1}/{epochs}: loss {total / len(x):.4f} ({time.time() - start:.0f} s)", flush=True)
    model.eval()
    # The latent weights become their signs: the network computes the same
    # (sign of a sign), and ±1 float32 initializers compress 20-fold.
    with torch.no_grad():
        for w in latent:
            w.copy_(torch.where(w >= 0, 1.0, -1.0))
    return model


def export(model, path, opset=None):
    """PyTorch's default exporter (torch.export) with its default opset, or
    the TorchScript exporter at `opset`; the batch size is dynamic."""
    example = (torch.zeros(1, 1, 28, 28),)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if opset is None:
            torch.onnx.export(
                model, example, str(path), input_names=["x"], output_names=["y"],
                dynamic_shapes=({0: torch.export.Dim("N")},), dynamo=True, external_data=False,
            )
        else:
            torch.onnx.export(
                model, example, str(path), input_names=["x"], output_names=["y"],
                opset_version=opset, dynamic_axes={"x": {0: "N"}, "y": {0: "N"}}, dynamo=False,
            )


def export_qonnx(model, path):
    from brevitas.export import export_qonnx as brevitas_export

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        brevitas_export(
            model, input_t=torch.zeros(1, 1, 28, 28), export_path=str(path), input_names=["x"],
            output_names=["y"], dynamic_shapes=({0: torch.export.Dim("N")},), external_data=False,
        )


def standard_ops(graph):
    """The graph with each QONNX BipolarQuant(x, s) written as standard ops,
    by its definition (qonnx's `binary_quant`): Where(x >= 0, 1, -1) * s, so
    that ONNX Runtime, which has no BipolarQuant, runs it. The tests
    (test_onnx_fixtures.py) do the same without torch."""
    import onnx
    from onnx import helper, numpy_helper

    nodes, replaced = [], False
    for n in graph.graph.node:
        if n.op_type != "BipolarQuant":
            nodes.append(n)
            continue
        (y,), (x, s) = n.output, n.input
        replaced = True
        nodes += [
            helper.make_node("GreaterOrEqual", [x, "bq_zero"], [y + "_ge"]),
            helper.make_node("Where", [y + "_ge", "bq_one", "bq_minus_one"], [y + "_pm"]),
            helper.make_node("Mul", [y + "_pm", s], [y]),
        ]
    if replaced:
        graph.graph.initializer.extend(
            numpy_helper.from_array(np.float32(v), name) for v, name in [(0, "bq_zero"), (1, "bq_one"), (-1, "bq_minus_one")]
        )
        del graph.graph.node[:]
        graph.graph.node.extend(nodes)
        kept = [o for o in graph.opset_import if "qonnx" not in o.domain]
        del graph.opset_import[:]
        graph.opset_import.extend(kept)
    return graph


def check(name, path, model, images, labels):
    """Accuracy in ONNX Runtime on the test set (the floor), and ONNX
    Runtime's classes against PyTorch's."""
    import onnx
    import onnxruntime as ort

    graph = onnx.load(str(path))
    opset = {o.domain or "ai.onnx": o.version for o in graph.opset_import}
    ops = sorted({n.op_type for n in graph.graph.node})
    session = ort.InferenceSession(
        standard_ops(onnx.load(str(path))).SerializeToString(), providers=["CPUExecutionProvider"]
    )
    x = images[:, None].astype(np.float32)
    scores = np.concatenate([session.run(None, {"x": x[i : i + 1000]})[0] for i in range(0, len(x), 1000)])
    with torch.no_grad():
        theirs = model(torch.tensor(x)).numpy()
    accuracy = (scores.argmax(1) == labels).mean()
    same = (scores.argmax(1) == theirs.argmax(1)).mean()
    print(f"  {path.name}: IR {graph.ir_version}, opsets {opset}, ops {' '.join(ops)}")
    print(f"  ONNX Runtime accuracy {accuracy:.2%} (floor {FLOORS[name]:.0%}); classes equal PyTorch's on {same:.2%}")
    if accuracy < FLOORS[name]:
        raise SystemExit(f"{name}: accuracy {accuracy:.2%} is under the floor {FLOORS[name]:.0%}")
    return accuracy


def seed(n):
    torch.manual_seed(n)
    np.random.seed(n)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="data/mnist", help="MNIST IDX files")
    parser.add_argument("--out", type=Path, default=Path("tests/fixtures/onnx"))
    parser.add_argument("--only", help="comma-separated: mlp,cnn,qonnx (default all)")
    args = parser.parse_args()
    only = set((args.only or "mlp,cnn,qonnx").split(","))
    # One thread: on shared, busy cores OpenMP's waiting threads made a
    # training step 12 times slower with two; one thread also keeps the
    # float sums in one order, so a rerun repeats.
    torch.set_num_threads(1)
    train_images, train_labels = mnist(args.data, "train")
    test_images, test_labels = mnist(args.data, "test")
    args.out.mkdir(parents=True, exist_ok=True)
    began = time.time()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        plan = []
        if "mlp" in only:
            plan.append(("mnist-mlp", Mlp, 10, 3e-3, [("mnist-mlp", None)]))
        if "cnn" in only:
            plan.append(("mnist-cnn", Cnn, 5, 3e-3, [("mnist-cnn", None), ("mnist-cnn-opset13", 13)]))
        if "qonnx" in only:
            plan.append(("mnist-qonnx", brevitas_mlp, 10, 3e-3, [("mnist-qonnx", "qonnx")]))
        for kind, make, epochs, lr, exports in plan:
            start = time.time()
            print(f"{kind}: training {epochs} epochs", flush=True)
            seed(0)
            model = train(make(), train_images, train_labels, epochs, lr)
            for name, how in exports:
                path = Path(tmp) / f"{name}.onnx"
                if how == "qonnx":
                    export_qonnx(model, path)
                else:
                    export(model, path, how)
                results[name] = check(name, path, model, test_images, test_labels)
                target = args.out / f"{name}.onnx.gz"
                with open(path, "rb") as src, gzip.GzipFile(target, "wb", mtime=0) as dst:
                    shutil.copyfileobj(src, dst)
                print(f"  wrote {target}: {target.stat().st_size:,} bytes ({path.stat().st_size:,} unpacked)")
            print(f"{kind}: {time.time() - start:.0f} s", flush=True)
    print(f"done in {time.time() - began:.0f} s: " + ", ".join(f"{k} {v:.2%}" for k, v in results.items()))


if __name__ == "__main__":
    sys.exit(main())
