"""Shared fixtures: the repository's models, MNIST and the `bnn` binary.

A missing file fails the test with the command that provides it;
BNN_TEST_SKIP=mnist skips the tests that need MNIST, as in scripts/test.
"""

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

import bnn

ROOT = Path(__file__).resolve().parents[3]
WEIGHTS = ROOT / "weights"


def skipped(name):
    return name in os.environ.get("BNN_TEST_SKIP", "").split(",")


@pytest.fixture(scope="session")
def mnist_dir():
    if skipped("mnist"):
        pytest.skip("BNN_TEST_SKIP=mnist")
    path = Path(os.environ.get("BNN_MNIST", ROOT / "data" / "mnist"))
    if not (path / "t10k-images-idx3-ubyte").exists() and not (
        path / "t10k-images-idx3-ubyte.gz"
    ).exists():
        pytest.fail(f"MNIST is not in {path}: run `cargo run --release -- fetch`")
    return path


@pytest.fixture(scope="session")
def test_set(mnist_dir):
    return bnn.mnist(mnist_dir, "test")


@pytest.fixture(scope="session")
def bnn_bin():
    path = Path(os.environ.get("BNN_BIN", ROOT / "target" / "release" / "bnn"))
    if not path.is_file():
        pytest.fail(f"{path} is missing: run `cargo build --release`")
    return path


def run_cli(bnn_bin, *args, check=True):
    done = subprocess.run(
        [str(bnn_bin), *map(str, args)], capture_output=True, cwd=ROOT
    )
    if check and done.returncode != 0:
        pytest.fail(f"bnn {' '.join(map(str, args))}: {done.stderr.decode()}")
    return done


@pytest.fixture(scope="session")
def cli():
    return run_cli


def model_path(name):
    path = WEIGHTS / name
    if not path.is_file():
        pytest.fail(f"{path} is missing from the checkout")
    return path


def reference_scores(layers, images, input="binary", threshold=128):
    """The network of `from_numpy`'s layers in NumPy, from the definitions:
    signs of the weights, sign(x) hidden activations (sign(0) = +1), and
    scores `dot + bias` as the engine documents them, in float32.

    Returns the scores and, for the batch norms, the smallest |normalized
    value| met (inf without one): see `test_matches_a_float_evaluation`.

    Every dot product is an integer (±1 weights times ±1 or 0..=255
    inputs, at most 255·784 in size), exact in float64. A hidden bias adds
    exactly in sign: the float64 sum of an integer and a bias is negative,
    zero or positive as the true sum is. The scores are the dot (exact in
    float32 below 2^24) plus the bias rounded to float32, added in float32,
    which is what the engine computes, so they compare exactly."""
    x = images.reshape(len(images), -1).astype(np.float64)
    if input == "binary":
        x = np.where(x >= threshold, 1.0, -1.0)
    margin = np.inf
    for i, layer in enumerate(layers):
        w = np.where(np.asarray(layer["weight"], dtype=np.float64) >= 0, 1.0, -1.0)
        dots = x @ w.T
        bias = np.asarray(layer.get("bias", 0.0), dtype=np.float64)
        if i + 1 == len(layers):
            assert np.abs(dots).max() < 2**24
            return dots.astype(np.float32) + bias.astype(np.float32), margin
        z = dots + bias
        if "gamma" in layer:
            s = np.sqrt(np.asarray(layer["var"]) + layer.get("eps", 1e-5))
            z = layer["gamma"] * (z - layer["mean"]) / s + layer["beta"]
            margin = min(margin, np.abs(z).min())
        x = np.where(z >= 0, 1.0, -1.0)
