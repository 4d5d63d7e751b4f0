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
    """The network of `from_numpy`'s layers in float64 NumPy: signs of the
    weights, sign(x) hidden activations (sign(0) = +1), dot + bias scores."""
    x = images.reshape(len(images), -1).astype(np.float64)
    if input == "binary":
        x = np.where(x >= threshold, 1.0, -1.0)
    for i, layer in enumerate(layers):
        w = np.where(np.asarray(layer["weight"], dtype=np.float64) >= 0, 1.0, -1.0)
        z = x @ w.T + np.asarray(layer.get("bias", 0.0), dtype=np.float64)
        if i + 1 == len(layers):
            return z
        if "gamma" in layer:
            s = np.sqrt(np.asarray(layer["var"]) + layer.get("eps", 1e-5))
            z = layer["gamma"] * (z - layer["mean"]) / s + layer["beta"]
        x = np.where(z >= 0, 1.0, -1.0)
