"""One model shared by many Python threads, and the GIL released while
the engine runs."""

import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import bnn
from conftest import model_path


def pool_threads(n):
    """The ids of this process's threads that belong to a pool of `n`
    workers, by the names the engine gives them (`bnn-{n}t-{i}`)."""
    tasks = "/proc/self/task"
    assert os.path.isdir(tasks), f"{tasks} is missing: this test reads the threads from /proc"
    found = set()
    for tid in os.listdir(tasks):
        try:
            with open(f"{tasks}/{tid}/comm") as f:
                name = f.read().strip()
        except FileNotFoundError:
            continue  # a thread that ended while listing
        if name.startswith(f"bnn-{n}t-"):
            found.add(tid)
    return found


def test_a_thread_count_keeps_its_pool(test_set):
    """Calls with the same `threads` run on one pool, built by the first.

    A pool built per call would be dropped as the call returns: its threads
    would be gone, or on their way out and replaced by the next call's, so
    the same seven threads could not be found after every call."""
    images, _ = test_set
    model = bnn.load(model_path("mnist-deep-u8.bnn"))
    batch = images[:500]
    # Builds the pool of 7, or finds the one an earlier call built.
    model.predict(batch, threads=7)
    # A new thread takes its name once it runs, which may be a little after
    # the pool is built: wait until all seven have (a dropped pool's threads
    # would be leaving instead).
    for _ in range(1000):
        pool = pool_threads(7)
        if len(pool) == 7:
            break
        time.sleep(0.01)
    assert len(pool) == 7, pool
    for _ in range(5):
        model.predict(batch, threads=7)
        model.scores(batch, threads=7)
        assert pool_threads(7) == pool


def test_many_threads_predict_at_once(test_set):
    images, _ = test_set
    model = bnn.load(model_path("mnist-deep-u8.bnn"))
    parts = [images[i::8] for i in range(8)]
    want = [model.scores(p, threads=1) for p in parts]
    want_classes = [model.predict(p, threads=1) for p in parts]
    barrier = threading.Barrier(8)

    def work(i):
        barrier.wait()
        out = []
        for _ in range(3):
            out.append(model.scores(parts[i], threads=1 + i % 2))
            out.append(model.predict(parts[(i + 1) % 8]))
        return out

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(work, range(8)))
    for i, out in enumerate(results):
        for k in range(0, 6, 2):
            np.testing.assert_array_equal(out[k], want[i])
            np.testing.assert_array_equal(out[k + 1], want_classes[(i + 1) % 8])


@pytest.mark.parametrize("in_place", [False, True])
def test_python_runs_in_another_thread_while_predicting(test_set, in_place):
    """Another Python thread runs while this one is inside `predict`, for
    an array copied chunk by chunk (writeable) and one read in place.

    The thread switch interval is set far beyond the test's length, so the
    interpreter never takes the GIL from a thread: the other thread can run
    only where this one gives the GIL up. It records the flag that is set
    just before the call and cleared just after it. Holding the GIL through
    `predict` (Python code between the flag's changes gives it up nowhere),
    it would run only after the flag is cleared, and record False on every
    try: no timing makes that pass. Releasing it, the other thread, already
    waiting for the GIL, takes it during the call; should the call end
    before the operating system wakes it, the next try repeats the call."""
    images, _ = test_set
    model = bnn.load(model_path("mnist-deep-u8.bnn"))
    # More than one 8 MiB copy chunk when copied.
    batch = np.ascontiguousarray(np.tile(images, (2, 1, 1)))
    if in_place:
        batch = np.frombuffer(batch.tobytes(), dtype=np.uint8).reshape(batch.shape)
    assert bnn._bnn._reads_in_place(batch) == in_place
    predicting = False
    seen = []
    go = threading.Event()

    def observe():
        go.wait()
        seen.append(predicting)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e6)
    try:
        for _ in range(50):
            go.clear()
            other = threading.Thread(target=observe)
            other.start()
            predicting = True
            go.set()
            model.predict(batch, threads=1)
            predicting = False
            other.join()
            if seen[-1]:
                break
    finally:
        sys.setswitchinterval(interval)
    assert seen[-1], f"the other thread ran only after predict returned, {len(seen)} times"
