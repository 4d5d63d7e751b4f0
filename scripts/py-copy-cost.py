"""What the Python package's copy of writeable arrays costs.

The engine runs with the GIL released, so an array Python could write to
meanwhile is copied first (8 MiB at a time); memory Python cannot write to
(`np.frombuffer(bytes)`) is read in place. This times `Model.predict` on
the same images both ways, alternating, and prints the medians and their
ratio.

    python scripts/py-copy-cost.py [MODEL] [REPEATS]

Needs the package installed (`pip install ./crates/bnn-py`) and MNIST in
data/mnist (`cargo run --release -- fetch`).
"""

import statistics
import sys
import time
from pathlib import Path

import numpy as np

import bnn

root = Path(__file__).resolve().parents[1]
model = bnn.load(sys.argv[1] if len(sys.argv) > 1 else root / "weights" / "mnist-512.bnn")
repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 31
images, _ = bnn.mnist(root / "data" / "mnist", "test")
writeable = np.ascontiguousarray(images.reshape(len(images), -1))
in_place = np.frombuffer(writeable.tobytes(), np.uint8).reshape(writeable.shape)
assert writeable.flags.writeable and not in_place.flags.writeable
np.testing.assert_array_equal(model.predict(writeable), model.predict(in_place))

times = {"copied": [], "in place": []}
for _ in range(repeats):
    for name, batch in (("copied", writeable), ("in place", in_place)):
        start = time.perf_counter()
        model.predict(batch)
        times[name].append(time.perf_counter() - start)
n = len(writeable)
for name, t in times.items():
    m = statistics.median(t)
    print(f"{name:>9}: {m * 1e3:7.3f} ms for {n} images, {n / m:12,.0f} images/s")
ratio = statistics.median(times["copied"]) / statistics.median(times["in place"])
print(f"copied / in place: {ratio:.2f}")
