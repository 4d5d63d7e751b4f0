"""examples/dask_classify.py on a LocalCluster of two worker processes,
checked byte for byte against single-process predict."""

import io
import os
import sys

import numpy as np
import pytest

import bnn
from conftest import ROOT, model_path

try:
    from distributed import Client, LocalCluster
except ImportError:  # pragma: no cover - the message is the point
    pytest.fail("dask is missing: pip install 'dask[distributed]' (or ./crates/bnn-py[test])",
                pytrace=False)

EXAMPLES = ROOT / "examples"


def example():
    """The example, imported by name as the worker processes import it."""
    if not (EXAMPLES / "dask_classify.py").is_file():
        pytest.fail(f"{EXAMPLES / 'dask_classify.py'} is missing from the checkout")
    import dask_classify

    return dask_classify


def npy_bytes(array):
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def client():
    # Worker processes start with this process's path and environment.
    sys.path.insert(0, str(EXAMPLES))
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in [str(EXAMPLES), os.environ.get("PYTHONPATH")] if p
    )
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        yield client


def test_sharded_files_and_a_memory_mapped_array(tmp_path, test_set, client):
    dask_classify = example()
    images, _ = test_set
    shards = tmp_path / "shards"
    shards.mkdir()
    parts = np.array_split(images, 5)
    for k, part in enumerate(parts):
        np.save(shards / f"part{k}.npy", part.reshape(len(part), 784))
    big = tmp_path / "big.npy"
    np.save(big, images)

    model = bnn.load(model_path("mnist-512-u8.bnn"))
    out = tmp_path / "out"
    done = dask_classify.run(client, model_path("mnist-512-u8.bnn"),
                             sorted(shards.glob("*.npy")), out, scores=True)
    assert done == [(f"part{k}", len(p)) for k, p in enumerate(parts)]
    for k, part in enumerate(parts):
        classes, scores = model.classify(part)
        assert (out / f"part{k}.npy").read_bytes() == npy_bytes(classes)
        assert (out / f"part{k}.scores.npy").read_bytes() == npy_bytes(scores)

    cut = tmp_path / "cut"
    done = dask_classify.run(client, model_path("mnist-512-u8.bnn"), [big], cut, rows=3000)
    assert done == [("big.0", 3000), ("big.1", 3000), ("big.2", 3000), ("big.3", 1000)]
    for k, start in enumerate(range(0, 10_000, 3000)):
        want = model.predict(images[start:start + 3000])
        assert (cut / f"big.{k}.npy").read_bytes() == npy_bytes(want)
    assert sorted(p.name for p in cut.iterdir()) == [f"big.{k}.npy" for k in range(4)]

    # Each worker process loaded the model once, however many shards it ran.
    loads = client.run(lambda dask_worker: dask_worker.plugins["bnn-model"].loads)
    assert sorted(loads.values()) == [1, 1]


def test_bad_inputs_fail_before_any_work(tmp_path, client):
    dask_classify = example()
    with pytest.raises(FileNotFoundError):
        dask_classify.run(client, tmp_path / "none.bnn", [], tmp_path / "out")
    np.save(tmp_path / "a.npy", np.zeros((3, 784), np.uint8))
    with pytest.raises(ValueError, match="beside the inputs"):
        dask_classify.run(client, model_path("seed.bnn"), [tmp_path / "a.npy"], tmp_path)
