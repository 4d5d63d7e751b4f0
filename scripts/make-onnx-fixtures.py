#!/usr/bin/env python3
"""Trains a small binary MLP and CNN on MNIST with PyTorch, exports both to
ONNX as PyTorch does, and checks `bnn.from_onnx` against ONNX Runtime on
the 10,000 test images (classes equal, scores within 1e-4 relative).

    python3 -m venv /tmp/fx && /tmp/fx/bin/pip install torch onnx onnxruntime ./crates/bnn-py
    /tmp/fx/bin/python scripts/make-onnx-fixtures.py OUT_DIR [--data data/mnist] [--epochs 2]

Writes OUT_DIR/mnist-mlp.onnx and OUT_DIR/mnist-cnn.onnx. The networks
use only what `bnn import` matches (docs/IMPORT.md): weights binarized by
`where(w >= 0, 1, -1)` with a straight-through estimator, activations
`Sign` with the estimator's residue `x + (sign(x) - x).detach()`, batch
norms before each sign, `x / 255` inside the graph, a u8 first layer,
convolutions with `padding=0` after the first (zero padding of a binary
map now imports too, as the engine's zero padding), and max pooling before the batch norm.
"""

import argparse
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

import bnn


def binary(w):
    return w + (torch.where(w >= 0, 1.0, -1.0) - w).detach()


def sign(x):
    return x + (torch.sign(x) - x).detach()


class BinaryLinear(nn.Linear):
    def forward(self, x):
        return F.linear(x, binary(self.weight), self.bias)


class BinaryConv(nn.Conv2d):
    def forward(self, x):
        return F.conv2d(x, binary(self.weight), self.bias, padding=self.padding)


class Mlp(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.bn1 = BinaryLinear(784, 256), nn.BatchNorm1d(256)
        self.fc2, self.bn2 = BinaryLinear(256, 256), nn.BatchNorm1d(256)
        self.fc3 = BinaryLinear(256, 10)

    def forward(self, x):
        x = torch.flatten(x, 1) / 255.0
        x = sign(self.bn1(self.fc1(x)))
        x = sign(self.bn2(self.fc2(x)))
        return self.fc3(x)


class Cnn(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1, self.bn1 = BinaryConv(1, 32, 3, padding=1), nn.BatchNorm2d(32)
        self.c2, self.bn2 = BinaryConv(32, 64, 3, padding=0), nn.BatchNorm2d(64)
        self.fc1, self.bn3 = BinaryLinear(64 * 6 * 6, 256), nn.BatchNorm1d(256)
        self.fc2 = BinaryLinear(256, 10)

    def forward(self, x):
        x = x / 255.0
        x = sign(self.bn1(F.max_pool2d(self.c1(x), 2)))
        x = sign(self.bn2(F.max_pool2d(self.c2(x), 2)))
        x = sign(self.bn3(self.fc1(torch.flatten(x, 1))))
        return self.fc2(x)


def train(model, images, labels, epochs):
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.tensor(images, dtype=torch.float32).unsqueeze(1)
    y = torch.tensor(labels, dtype=torch.long)
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(x))
        for i in range(0, len(x), 128):
            batch = order[i : i + 128]
            loss = F.cross_entropy(model(x[batch]), y[batch])
            opt.zero_grad()
            loss.backward()
            opt.step()
        print(f"epoch {epoch + 1}: loss {loss.item():.3f}")
    return model.eval()


def check(path, images, labels):
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    want = session.run(None, {"x": images[:, None].astype(np.float32)})[0]
    model = bnn.from_onnx(path)
    flat = images.reshape(len(images), -1)
    classes = model.predict(flat)
    same = (classes == want.argmax(axis=1)).mean()
    accuracy = (classes == labels).mean()
    print(f"{path}: {model.info()['shape']}, classes equal to ONNX Runtime's on {same:.2%}, accuracy {accuracy:.2%}")
    if same < 1.0:
        raise SystemExit(f"{path}: bnn and ONNX Runtime disagree (ties: see the warnings above)")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("--data", default="data/mnist")
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    train_images, train_labels = bnn.mnist(args.data, "train")
    test_images, test_labels = bnn.mnist(args.data, "test")
    for name, model in [("mnist-mlp", Mlp()), ("mnist-cnn", Cnn())]:
        model = train(model, train_images, train_labels, args.epochs)
        path = args.out / f"{name}.onnx"
        torch.onnx.export(
            model, torch.zeros(1, 1, 28, 28), str(path), input_names=["x"], output_names=["y"],
            opset_version=13, dynamic_axes={"x": {0: "N"}, "y": {0: "N"}}, do_constant_folding=True,
        )
        check(path, test_images, test_labels)


if __name__ == "__main__":
    main()
