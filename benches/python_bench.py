#!/usr/bin/env python3
"""Model.predict from Python against `bnn bench`, same models, same
threads, same machine, in one run.

For each model and thread count, the rounds alternate: `bnn bench` (its
median of --repeat batches of the 10,000 MNIST test images), then
Model.predict on the same images (the median of as many calls, after a
warm-up). The figure per side is the median over the rounds, so a burst
of load on a shared machine hits both sides alike. Exit status 1 when
Python is below TARGET of the engine on any row.

    python benches/python_bench.py [--threads 1,2] [--rounds 3] [MODEL ...]

Needs the package (`pip install ./crates/bnn-py`), the release binary
(`cargo build --release`) and MNIST in data/mnist.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import bnn

ROOT = Path(__file__).resolve().parents[1]
TARGET = 0.90
MODELS = ["weights/seed.bnn", "weights/mnist-512-u8.bnn", "weights/mnist-deep.bnn"]


def engine_rate(binary, model, threads, repeat, data, kernel):
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "bench.json"
        subprocess.run(
            [binary, "bench", model, "--threads", str(threads), "--repeat", str(repeat),
             "--single", "1", "--data", data, "--no-fetch", "--json", str(out)],
            check=True, capture_output=True, cwd=ROOT,
        )
        report = json.loads(out.read_text())
    rows = [r for r in report["throughput"] if r["kernel"] == kernel and r["threads"] == threads]
    if len(rows) != 1:
        sys.exit(f"python_bench: no {kernel} row at {threads} threads in bnn bench's report")
    return rows[0]["images_per_s"]


def python_rate(model, images, threads, repeat):
    model.predict(images, threads=threads)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        model.predict(images, threads=threads)
        times.append(time.perf_counter() - start)
    return len(images) / statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", default=MODELS)
    parser.add_argument("--threads", default=f"1,{os.cpu_count()}")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--data", default=str(ROOT / "data" / "mnist"))
    parser.add_argument("--bnn", default=str(ROOT / "target" / "release" / "bnn"))
    args = parser.parse_args()
    if not Path(args.bnn).is_file():
        sys.exit(f"python_bench: {args.bnn} is missing: run `cargo build --release`")
    threads = sorted({int(t) for t in args.threads.split(",")})
    kernel = bnn.kernels()[0]
    images, _ = bnn.mnist(args.data, "test")
    print(f"kernel {kernel}, {len(images)} images, {args.rounds} rounds of "
          f"{args.repeat} batches per side")
    print(f"{'model':32} {'threads':>7} {'bnn bench':>14} {'Model.predict':>14} {'ratio':>7}")
    worst = float("inf")
    for path in args.models:
        model = bnn.load(ROOT / path)
        for t in threads:
            engine, python = [], []
            for _ in range(args.rounds):
                engine.append(engine_rate(args.bnn, path, t, args.repeat, args.data, kernel))
                python.append(python_rate(model, images, t, args.repeat))
            e, p = statistics.median(engine), statistics.median(python)
            worst = min(worst, p / e)
            print(f"{path:32} {t:>7} {e:>12,.0f}/s {p:>12,.0f}/s {p / e:>6.1%}")
    verdict = "meets" if worst >= TARGET else "misses"
    print(f"lowest ratio {worst:.1%}: {verdict} the {TARGET:.0%} target")
    return 0 if worst >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
