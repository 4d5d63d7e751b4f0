#!/usr/bin/env python3
"""Classify a sharded data set on a Dask cluster, one result file per shard.

Shards are many `.npy` files of uint8 images, or row ranges of one large
`.npy` read memory-mapped, so no worker reads more than its shard. Each
worker process loads the model once (a worker plugin) and runs it with
the GIL released; results are written by the workers themselves, each
shard to `OUT/<shard>.npy` (int64 classes, and `<shard>.scores.npy` with
--scores), through a temporary file renamed into place, so a failed or
interrupted run never leaves a partial result under a result's name.

On one machine (a LocalCluster of one process per core):

    python examples/dask_classify.py weights/seed.bnn shards/*.npy -o results

On a cluster: start `dask scheduler` on one host and `dask worker
tcp://HOST:8786 --nworkers N --nthreads 1` on each machine (the model
file and the shards at the same paths on every host, e.g. a shared file
system), then pass `--scheduler tcp://HOST:8786`.
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from distributed import Client, LocalCluster, WorkerPlugin, get_worker

import bnn

PLUGIN = "bnn-model"


class ModelPlugin(WorkerPlugin):
    """Loads the model once in every worker process, when it joins."""

    def __init__(self, path, threads):
        self.path = str(path)
        self.threads = threads
        self.model = None
        self.loads = 0

    def setup(self, worker):
        self.model = bnn.load(self.path)
        self.loads += 1


def shards(inputs, rows):
    """(name, path, start, stop) for every shard: each .npy whole, or, with
    `rows`, cut into ranges of that many images."""
    out = []
    for path in map(Path, inputs):
        count = np.load(path, mmap_mode="r").shape[0]
        if rows is None or count <= rows:
            out.append((path.stem, str(path), 0, count))
            continue
        width = len(str((count - 1) // rows))
        for k, start in enumerate(range(0, count, rows)):
            out.append((f"{path.stem}.{k:0{width}d}", str(path), start, min(start + rows, count)))
    names = [s[0] for s in out]
    if len(set(names)) != len(names):
        raise ValueError("two shards share a name: give inputs with distinct file names")
    return out


def save_atomic(path, array):
    """np.save to a temporary file beside `path`, then renamed over it."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.save(f, array)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def classify_shard(shard, out_dir, scores):
    """Runs on a worker: classifies one shard and writes its results."""
    name, path, start, stop = shard
    plugin = get_worker().plugins[PLUGIN]
    images = np.load(path, mmap_mode="r")[start:stop]
    out_dir = Path(out_dir)
    if scores:
        classes, values = plugin.model.classify(images, threads=plugin.threads)
        save_atomic(out_dir / f"{name}.scores.npy", values)
    else:
        classes = plugin.model.predict(images, threads=plugin.threads)
    save_atomic(out_dir / f"{name}.npy", classes)
    return name, stop - start


def run(client, model, inputs, out_dir, rows=None, scores=False, threads=1):
    """Classifies every shard of `inputs` on `client`'s cluster; returns
    (shard name, image count) pairs in input order."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    resolved = {Path(p).resolve() for p in inputs} | {Path(model).resolve()}
    if out_dir.resolve() in {p.parent for p in resolved}:
        raise ValueError(f"{out_dir}: results would go beside the inputs; choose another folder")
    bnn.load(model)  # a wrong model fails here, once, with its one-line message
    client.register_plugin(ModelPlugin(Path(model).resolve(), threads), name=PLUGIN)
    futures = client.map(classify_shard, shards(inputs, rows), out_dir=str(out_dir),
                         scores=scores, pure=False)
    return client.gather(futures)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="a .bnn model file")
    parser.add_argument("inputs", nargs="+", help=".npy uint8 arrays (N, inputs) or (N, H, W[, C])")
    parser.add_argument("-o", "--out", required=True, help="folder for the result files")
    parser.add_argument("--rows", type=int, help="cut each input into shards of this many images")
    parser.add_argument("--scores", action="store_true", help="also write float32 scores")
    parser.add_argument("--scheduler", help="address of a running scheduler (default: a LocalCluster)")
    parser.add_argument("--workers", type=int, default=os.cpu_count(),
                        help="LocalCluster worker processes (default: one per core)")
    parser.add_argument("--threads", type=int, default=1, help="engine threads per task")
    args = parser.parse_args()
    try:
        if args.scheduler:
            client = Client(args.scheduler)
        else:
            cluster = LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True)
            client = Client(cluster)
        with client:
            start = time.perf_counter()
            done = run(client, args.model, args.inputs, args.out, args.rows, args.scores, args.threads)
            seconds = time.perf_counter() - start
    except (OSError, ValueError, TypeError) as e:
        print(f"dask_classify: error: {e}", file=sys.stderr)
        return 1
    count = sum(n for _, n in done)
    print(f"classified {count:,} images in {len(done)} shards into {args.out} in {seconds:.2f} s "
          f"({count / seconds:,.0f} images/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
