#!/usr/bin/env python3
"""How long a Python thread stalls while another one runs Model.predict.

For each kind of batch (a writeable array, which predict copies 8 MiB at
a time with the GIL held, and an array over `bytes`, read in place), the
10,000 MNIST test images tiled TILE times are classified on one thread,
first alone (the median of --repeat calls), then --repeat times in a
second thread while the main thread loops on a 1 ms sleep, recording the
time of each wake-up. The longest gap between two wake-ups is the
stall: with the GIL released it stays near the 1 ms sleep (plus a copy
chunk on the copied path); with the GIL held it would be the whole call.
Exit status 1 when the longest stall is above TARGET of the call's time.

    python benches/gil_bench.py [--repeat 5] [MODEL]

Needs the package (`pip install ./crates/bnn-py`) and MNIST in
data/mnist. The test suite checks the property itself without timing
(tests/test_threads.py in crates/bnn-py); this measures it.
"""

import argparse
import statistics
import sys
import threading
import time
from pathlib import Path

import numpy as np

import bnn

ROOT = Path(__file__).resolve().parents[1]
TARGET = 0.5
TILE = 4


def stall(model, batch):
    """The longest gap, in seconds, between the main thread's wake-ups
    while another thread predicts `batch`."""
    ticks = []
    thread = threading.Thread(target=model.predict, args=(batch,), kwargs={"threads": 1})
    thread.start()
    while thread.is_alive():
        ticks.append(time.perf_counter())
        time.sleep(0.001)
    thread.join()
    return float(np.diff(ticks).max()) if len(ticks) > 1 else float("inf")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", nargs="?", default="weights/mnist-deep-u8.bnn")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--data", default=str(ROOT / "data" / "mnist"))
    args = parser.parse_args()
    model = bnn.load(ROOT / args.model)
    images, _ = bnn.mnist(args.data, "test")
    copied = np.ascontiguousarray(np.tile(images, (TILE, 1, 1)))
    in_place = np.frombuffer(copied.tobytes(), dtype=np.uint8).reshape(copied.shape)
    failed = False
    print(f"{args.model}, {len(copied)} images, 1 thread, median of {args.repeat}")
    print(f"{'array':<10} {'call ms':>9} {'stall ms':>9} {'stall/call':>11}")
    for name, batch in [("copied", copied), ("in place", in_place)]:
        assert bnn._bnn._reads_in_place(batch) == (name == "in place")
        model.predict(batch, threads=1)
        calls = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            model.predict(batch, threads=1)
            calls.append(time.perf_counter() - start)
        call = statistics.median(calls)
        gap = statistics.median(stall(model, batch) for _ in range(args.repeat))
        print(f"{name:<10} {call * 1e3:9.1f} {gap * 1e3:9.1f} {gap / call:10.1%}")
        failed |= gap > TARGET * call
    if failed:
        sys.exit(f"gil_bench: a stall above {TARGET:.0%} of the call: is the GIL held?")


if __name__ == "__main__":
    main()
