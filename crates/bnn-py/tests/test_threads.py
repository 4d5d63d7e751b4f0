"""One model shared by many Python threads, and the GIL released while
the engine runs."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

import bnn
from conftest import model_path


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


def test_the_gil_is_released_while_predicting(test_set):
    """A Python thread keeps running while another one predicts: with the
    GIL held, the main thread's loop would stall for the whole call."""
    images, _ = test_set
    model = bnn.load(model_path("mnist-deep-u8.bnn"))
    batch = np.ascontiguousarray(np.tile(images, (4, 1, 1)))
    started = time.perf_counter()
    model.predict(batch, threads=1)
    alone = time.perf_counter() - started
    ticks = []
    thread = threading.Thread(target=model.predict, args=(batch,), kwargs={"threads": 1})
    thread.start()
    while thread.is_alive():
        ticks.append(time.perf_counter())
        time.sleep(0.001)
    thread.join()
    gaps = np.diff(ticks)
    assert len(ticks) > 10, f"{len(ticks)} ticks during a {alone:.3f} s prediction"
    assert gaps.max() < alone / 2, f"main thread stalled {gaps.max():.3f} s of {alone:.3f} s"
