#!/usr/bin/env python3
"""ONNX Runtime beside `bnn bench`: the FP32 engine against the usual FP32
CPU runtime, on the same network, the same MNIST test images and the same
thread counts, in one run.

The model (an `.f32` file, or a `.bnn` file whose FP32 twin is written
first) becomes an ONNX graph computing exactly what the FP32 engine
computes: the pixel transform as a 256-entry table look-up, then
Conv/MaxPool/affine/activation and Gemm/activation layers. The script times
ONNX Runtime, then runs `bnn bench` on the same `.f32` file, then times ONNX
Runtime again (so drift on a shared machine hits both), and prints images/s,
GFLOP/s and the ratio per thread count. The accuracies of both are printed
too: they must agree, or the two are not running the same network.

Setup, once (the packages in requirements.txt beside this file):

    python3 -m venv target/peers-venv
    target/peers-venv/bin/pip install -r benches/peers/requirements.txt
    cargo build --release

Run:

    target/peers-venv/bin/python benches/peers/onnxruntime.py weights/mnist-512-fp32.f32
"""

import argparse
import gzip
import json
import os
import struct
import subprocess
import sys
import tempfile
import time
import zlib

MAGIC = b"\x89BNNF32\n"


def fail(message, code=1):
    print(f"onnxruntime.py: {message}", file=sys.stderr)
    sys.exit(code)


# This file's own name would shadow the package it drives.
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path = [p for p in sys.path if os.path.abspath(p or ".") != HERE]

try:
    import numpy as np
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper
except ImportError as e:
    fail(
        f"{e.name} is not installed: run `python3 -m venv target/peers-venv && "
        "target/peers-venv/bin/pip install -r benches/peers/requirements.txt` "
        "and use target/peers-venv/bin/python"
    )


def read_f32(path):
    """Parses an FP32 model file (docs/FP32_FORMAT.md, versions 1 and 2);
    `bnn bench` checks it fully, this only has to fail cleanly."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        fail(f"{path}: {e.strerror}")
    try:
        return parse_f32(path, data)
    except (struct.error, ValueError) as e:
        fail(f"{path}: malformed FP32 model file ({e})")


def parse_f32(path, data):
    if len(data) < 28 or data[:8] != MAGIC:
        fail(f"{path}: not an FP32 model file")
    if zlib.crc32(data[:-4]) != struct.unpack_from("<I", data, len(data) - 4)[0]:
        fail(f"{path}: checksum mismatch")
    version, transform, threshold, hidden, rule = struct.unpack_from("<HBBBB", data, 8)
    input_len, count = struct.unpack_from("<II", data, 16)
    at = 24
    layers = []
    if version == 1:
        shape = None
        widths = struct.unpack_from(f"<{count}I", data, at)
        at += 4 * count
        table = [("dense", 0, 0, 0, w, 0.0) for w in widths]
    elif version == 2:
        shape = struct.unpack_from("<III", data, at)
        at += 12
        table = []
        for _ in range(count):
            kind, k, pad, pool, n, pad_value = struct.unpack_from("<BBBBIf", data, at)
            at += 12
            table.append(("conv" if kind == 1 else "dense", k, pad, pool, n, pad_value))
    else:
        fail(f"{path}: unsupported FP32 format version {version}")

    def take(n):
        nonlocal at
        v = np.frombuffer(data, dtype="<f4", count=n, offset=at)
        at += 4 * n
        return v

    h, w, c = shape if shape else (1, 1, input_len)
    inputs = input_len
    for kind, k, pad, pool, n, pad_value in table:
        if kind == "conv":
            weights = take(n * k * k * c).reshape(n, k, k, c)
            scale, bias = take(n), take(n)
            layers.append(
                dict(kind="conv", k=k, same=pad == 0, pool=pool == 1, pad_value=pad_value,
                     weights=weights, scale=scale, bias=bias))
            if pad == 1:
                h, w = h - k + 1, w - k + 1
            if pool:
                h, w = h // 2, w // 2
            c = n
            inputs = h * w * c
        else:
            weights = take(n * inputs).reshape(n, inputs)
            layers.append(dict(kind="dense", weights=weights, bias=take(n)))
            inputs = n
    return dict(transform=transform, threshold=threshold, hidden=hidden, rule=rule,
                input_len=input_len, shape=shape, layers=layers)


def pixel_table(model):
    """Each pixel value's network input, as the FP32 engine computes it."""
    p = np.arange(256, dtype=np.float64)
    if model["transform"] == 0:
        return ((p / 255.0 - 0.5) / 0.5).astype(np.float32)
    if model["transform"] == 1:
        return np.where(p >= model["threshold"], 1.0, -1.0).astype(np.float32)
    return p.astype(np.float32)


def flops_per_image(model):
    total = 0
    h, w, c = model["shape"] if model["shape"] else (1, 1, model["input_len"])
    for layer in model["layers"]:
        if layer["kind"] == "conv":
            n, k = layer["weights"].shape[0], layer["k"]
            if not layer["same"]:
                h, w = h - k + 1, w - k + 1
            total += h * w * n * k * k * c
            if layer["pool"]:
                h, w = h // 2, w // 2
            c = n
        else:
            total += layer["weights"].size
    return 2 * total


def to_onnx(model, u8_input):
    """The model as an ONNX graph, f32 scores out. With `u8_input` it takes
    uint8 pixels [N, input_len] and looks up each one's input value; else it
    takes those values, already converted (what a user who feeds ONNX
    Runtime float tensors times)."""
    nodes, inits = [], []
    counter = [0]

    def name(prefix):
        counter[0] += 1
        return f"{prefix}{counter[0]}"

    def const(array, prefix="c"):
        n = name(prefix)
        inits.append(numpy_helper.from_array(np.ascontiguousarray(array), n))
        return n

    def node(op, inputs, **attrs):
        out = name(op.lower())
        nodes.append(helper.make_node(op, inputs, [out], **attrs))
        return out

    def activate(x):
        if model["hidden"] == 0:
            return node("Relu", [x])
        positive = node("GreaterOrEqual", [x, const(np.array(0, np.float32))])
        return node("Where", [positive, const(np.array(1, np.float32)),
                              const(np.array(-1, np.float32))])

    x = "pixels"
    if u8_input:
        x = node("Cast", [x], to=TensorProto.INT32)
        x = node("Gather", [const(pixel_table(model), "table"), x], axis=0)
    layers = model["layers"]
    if model["shape"]:
        h, w, c = model["shape"]
        x = node("Reshape", [x, const(np.array([-1, h, w, c], np.int64))])
        x = node("Transpose", [x], perm=[0, 3, 1, 2])
    last = len(layers) - 1
    for i, layer in enumerate(layers):
        if layer["kind"] == "conv":
            k = layer["k"]
            if layer["same"] and k > 1:
                p = (k - 1) // 2
                x = node("Pad", [x, const(np.array([0, 0, p, p, 0, 0, p, p], np.int64)),
                                 const(np.array(layer["pad_value"], np.float32))],
                         mode="constant")
            weights = layer["weights"].transpose(0, 3, 1, 2)
            x = node("Conv", [x, const(weights, "w")], kernel_shape=[k, k])
            if layer["pool"]:
                x = node("MaxPool", [x], kernel_shape=[2, 2], strides=[2, 2])
            x = node("Mul", [x, const(layer["scale"].reshape(1, -1, 1, 1), "s")])
            x = node("Add", [x, const(layer["bias"].reshape(1, -1, 1, 1), "b")])
            x = activate(x)
            if i + 1 < len(layers) and layers[i + 1]["kind"] == "dense":
                x = node("Transpose", [x], perm=[0, 2, 3, 1])
                x = node("Flatten", [x], axis=1)
        else:
            x = node("Gemm", [x, const(layer["weights"], "w"), const(layer["bias"], "b")],
                     transB=1)
            if i < last:
                x = activate(x)
    nodes[-1].output[0] = "scores"
    classes = layers[-1]["weights"].shape[0]
    graph = helper.make_graph(
        nodes, "bnn_fp32",
        [helper.make_tensor_value_info("pixels", TensorProto.UINT8 if u8_input else TensorProto.FLOAT,
                                       [None, model["input_len"]])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, [None, classes])],
        inits)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(m)
    return m


def decide(model, scores):
    if model["rule"] == 0:
        return scores.argmax(axis=1)
    nonneg = scores >= 0
    return np.where(nonneg.any(axis=1), nonneg.argmax(axis=1), 0)


def read_idx(directory, stem, magic):
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx"),
                 stem.replace("-idx", ".idx") + ".gz"):
        path = os.path.join(directory, name)
        if os.path.isfile(path):
            opener = gzip.open if name.endswith(".gz") else open
            with opener(path, "rb") as f:
                data = f.read()
            if struct.unpack_from(">I", data)[0] != magic:
                fail(f"{path}: not an IDX file of the expected kind")
            dims = struct.unpack_from(f">{magic & 0xFF}I", data, 4)
            offset = 4 + 4 * len(dims)
            return np.frombuffer(data, np.uint8, offset=offset).reshape(dims)
    fail(f"{directory}: no {stem} (fetch MNIST with `bnn fetch`)")


def time_ort(model_bytes, pixels, threads, repeat):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(model_bytes, opts, providers=["CPUExecutionProvider"])
    scores = sess.run(None, {"pixels": pixels})[0]
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        sess.run(None, {"pixels": pixels})
        times.append(time.perf_counter() - start)
    return scores, times


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", help=".f32 model, or .bnn model whose FP32 twin is compared")
    ap.add_argument("--threads", default="1,2", help="thread counts (default 1,2)")
    ap.add_argument("--repeat", type=int, default=5, help="timed runs per engine (median)")
    ap.add_argument("--data", default="data/mnist", help="MNIST directory")
    ap.add_argument("--bnn", default="target/release/bnn", help="the bnn binary")
    ap.add_argument("--json", help="also write the results as JSON to this file")
    args = ap.parse_args()
    try:
        threads = [int(t) for t in args.threads.split(",")]
    except ValueError:
        fail(f"--threads {args.threads}: not a comma-separated list of numbers", 2)
    if args.repeat < 1 or any(t < 1 for t in threads):
        fail("--repeat and every thread count must be at least 1", 2)
    if not os.path.isfile(args.bnn):
        fail(f"{args.bnn}: no bnn binary (build it with `cargo build --release`)")
    if args.json and os.path.exists(args.json) and not os.path.isfile(args.json):
        fail(f"{args.json}: exists and is not a regular file", 2)

    with tempfile.TemporaryDirectory() as tmp:
        path = args.model
        if not path.endswith(".f32"):
            path = os.path.join(tmp, os.path.basename(args.model) + ".f32")
            twin = subprocess.run(
                ["cargo", "run", "--quiet", "--release", "-p", "bnn-fp32", "--example", "twin",
                 "--", args.model, path])
            if twin.returncode != 0:
                fail(f"{args.model}: cannot write its FP32 twin")
        model = read_f32(path)
        images = read_idx(args.data, "t10k-images-idx3-ubyte", 0x0803)
        labels = read_idx(args.data, "t10k-labels-idx1-ubyte", 0x0801)
        pixels = np.ascontiguousarray(images.reshape(len(images), -1))
        if pixels.shape[1] != model["input_len"]:
            fail(f"{args.model}: takes {model['input_len']} inputs, MNIST has {pixels.shape[1]}")
        # (name, graph, input): end to end from u8 pixels as `bnn bench`
        # runs, and from float inputs converted before the clock starts.
        variants = [("u8", to_onnx(model, True).SerializeToString(), pixels),
                    ("f32", to_onnx(model, False).SerializeToString(),
                     pixel_table(model)[pixels])]
        flops = flops_per_image(model)

        ort_times = {(v, t): [] for v, _, _ in variants for t in threads}
        accuracy = {}
        for v, graph, x in variants:
            for t in threads:
                scores, times = time_ort(graph, x, t, args.repeat)
                ort_times[v, t] += times
                accuracy[v] = 100.0 * float((decide(model, scores) == labels).mean())
        report = os.path.join(tmp, "bench.json")
        bench = subprocess.run(
            [args.bnn, "bench", path, "--threads", args.threads, "--repeat",
             str(args.repeat), "--data", args.data, "--no-fetch", "--json", report],
            stdout=subprocess.DEVNULL)
        if bench.returncode != 0:
            fail("bnn bench failed")
        for v, graph, x in variants:
            for t in threads:
                ort_times[v, t] += time_ort(graph, x, t, args.repeat)[1]
        with open(report) as f:
            ours = json.load(f)

    n = len(pixels)
    rows = []
    print(f"\n{os.path.basename(args.model)}: {n} MNIST test images, {flops / 1e6:.2f} MFLOP "
          f"per image; ONNX Runtime {ort.__version__}, median of {2 * args.repeat} runs "
          f"around `bnn bench` (median of {args.repeat}). ORT u8: uint8 pixels in, as bnn "
          "takes them; ORT f32: float inputs converted before timing.\n")
    print("| threads | ORT u8 images/s | ORT f32 images/s | GFLOP/s | bnn fp32 images/s "
          "| GFLOP/s | bnn / ORT u8 | bnn / ORT f32 |")
    print("|---|---|---|---|---|---|---|---|")
    for t in threads:
        ort_u8 = n / float(np.median(ort_times["u8", t]))
        ort_f32 = n / float(np.median(ort_times["f32", t]))
        mine = [r for r in ours["throughput"] if r["engine"] == "fp32" and r["threads"] == t]
        if not mine:
            fail(f"bnn bench reported no fp32 run at {t} threads")
        our_ips = mine[0]["images_per_s"]
        rows.append(dict(threads=t, onnxruntime_u8_images_per_s=ort_u8,
                         onnxruntime_f32_images_per_s=ort_f32,
                         onnxruntime_f32_gflop_per_s=ort_f32 * flops / 1e9,
                         bnn_fp32_images_per_s=our_ips,
                         bnn_fp32_gflop_per_s=our_ips * flops / 1e9,
                         ratio_u8=our_ips / ort_u8, ratio_f32=our_ips / ort_f32,
                         bnn_accuracy=mine[0]["accuracy"]))
        print(f"| {t} | {ort_u8:,.0f} | {ort_f32:,.0f} | {ort_f32 * flops / 1e9:.1f} | "
              f"{our_ips:,.0f} | {our_ips * flops / 1e9:.1f} | {our_ips / ort_u8:.2f}x | "
              f"{our_ips / ort_f32:.2f}x |")
    ours_acc = rows[0]["bnn_accuracy"]
    print(f"\naccuracy: ONNX Runtime {accuracy['u8']:.2f} % (u8), {accuracy['f32']:.2f} % (f32); "
          f"bnn fp32 {ours_acc:.2f} %")
    if any(abs(a - ours_acc) > 0.05 for a in accuracy.values()):
        fail("the runtimes disagree on the accuracy: they are not running the same network")
    if args.json:
        with open(args.json + ".tmp", "w") as f:
            json.dump(dict(model=args.model, images=n, flops_per_image=flops,
                           onnxruntime=ort.__version__, accuracy=accuracy, rows=rows),
                      f, indent=2)
        os.replace(args.json + ".tmp", args.json)


if __name__ == "__main__":
    main()
