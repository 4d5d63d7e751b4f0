#!/usr/bin/env python3
"""End-to-end `bnn classify` throughput on 1,000,000 images.

Builds the input once (the 10,000 MNIST test images 100 times over, as a
raw IDX file and as a .npy array, under --work), then runs `bnn classify`
at --threads for each input and output mode, writing to a file in --work,
and reports images/s (the run's own wall time, start to exit) and peak
memory (maximum resident set of the process). Needs only the release
binary (`cargo build --release`) and MNIST in data/mnist.

    python3 benches/classify_bench.py [--threads 2] [--repeat 3] [--work DIR]
"""

import argparse
import os
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COPIES = 100
MODES = [
    ("csv, classes only", ["--classes-only"], "out.csv", 3.0e6),
    ("csv with scores", [], "out.csv", 1.5e6),
    ("npy, classes only", ["--format", "npy", "--classes-only"], "out.npy", 3.0e6),
    ("npy with scores", ["--format", "npy"], "out.npy", 1.5e6),
]


def build_inputs(mnist, work):
    data = (mnist / "t10k-images-idx3-ubyte").read_bytes()
    magic, count, rows, cols = struct.unpack(">IIII", data[:16])
    if magic != 0x803:
        sys.exit(f"classify_bench: {mnist} holds no raw IDX test images")
    pixels = data[16:]
    n = count * COPIES
    idx, npy = work / "images-idx3-ubyte", work / "images.npy"
    if not idx.exists():
        with open(idx, "wb") as f:
            f.write(struct.pack(">IIII", 0x803, n, rows, cols))
            for _ in range(COPIES):
                f.write(pixels)
    if not npy.exists():
        header = f"{{'descr': '|u1', 'fortran_order': False, 'shape': ({n}, {rows}, {cols}), }}"
        header += " " * (-(10 + len(header) + 1) % 64) + "\n"
        with open(npy, "wb") as f:
            f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode())
            for _ in range(COPIES):
                f.write(pixels)
    return n, [("IDX", idx), (".npy", npy)]


def run(binary, args):
    start = time.perf_counter()
    child = subprocess.Popen([binary, *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - start
    err = child.stderr.read().decode()
    child.stderr.close()
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"classify_bench: bnn {' '.join(args)}: {err.strip()}")
    return seconds, usage.ru_maxrss / 1024


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="weights/seed.bnn")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--work", help="folder for the 1.6 GB of inputs (kept for reruns)")
    parser.add_argument("--data", default=str(ROOT / "data" / "mnist"))
    parser.add_argument("--bnn", default=str(ROOT / "target" / "release" / "bnn"))
    args = parser.parse_args()
    if not Path(args.bnn).is_file():
        sys.exit(f"classify_bench: {args.bnn} is missing: run `cargo build --release`")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.work) if args.work else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        n, inputs = build_inputs(Path(args.data), work)
        print(f"{args.model}, {n:,} images, {args.threads} threads, median of {args.repeat}")
        print(f"{'input':6} {'output':20} {'images/s':>12} {'target':>10} {'peak MB':>9}")
        failed = 0
        for name, path in inputs:
            for mode, extra, out, target in MODES:
                times, peaks = [], []
                for _ in range(args.repeat):
                    s, peak = run(args.bnn, ["classify", str(ROOT / args.model), str(path),
                                             "--threads", str(args.threads), *extra,
                                             "-o", str(work / out)])
                    times.append(s)
                    peaks.append(peak)
                rate = n / statistics.median(times)
                ok = rate >= target
                failed += not ok
                print(f"{name:6} {mode:20} {rate:>12,.0f} {'≥' if ok else '<'} {target / 1e6:.1f} M"
                      f" {max(peaks):>9,.0f}")
        print("all targets met" if not failed else f"{failed} rows below target")
        return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
