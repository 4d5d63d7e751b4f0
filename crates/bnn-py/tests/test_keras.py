"""`bnn.from_keras` on stand-ins for Larq layers (the class names,
`get_config()` and `get_weights()` it reads), checked against a NumPy
evaluation of the Keras network on MNIST; TensorFlow is not needed here
(`scripts/test-larq` runs a real Larq model). Refusals name the layer."""

import sys

import numpy as np
import pytest

import bnn


class Layer:
    def __init__(self, name, weights=(), **config):
        self.name, self._weights, self._config = name, list(weights), config

    def get_config(self):
        return dict(self._config)

    def get_weights(self):
        return list(self._weights)


def kind(class_name):
    return type(class_name, (Layer,), {})


InputLayer, QuantConv2D, QuantDense = kind("InputLayer"), kind("QuantConv2D"), kind("QuantDense")
BatchNormalization, MaxPool2D, Flatten = kind("BatchNormalization"), kind("MaxPool2D"), kind("Flatten")
Activation, Dropout, Dense = kind("Activation"), kind("Dropout"), kind("Dense")


class Model:
    def __init__(self, layers, input_shape=(None, 28, 28, 1), name="larq_cnn"):
        self.layers, self.input_shape, self.name = layers, input_shape, name


def sign(x):
    return np.where(x >= 0, 1.0, -1.0)


def conv(x, kernel, pad, value):
    """NHWC convolution of a (kh, kw, in, out) kernel, stride 1."""
    if pad:
        x = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)), constant_values=value)
    k = kernel.shape[0]
    windows = np.lib.stride_tricks.sliding_window_view(x, (k, k), axis=(1, 2))
    return np.einsum("nhwcij,ijco->nhwo", windows, kernel)


def batch_norm(x, p, eps):
    gamma, beta, mean, var = p
    return gamma * (x - mean) / np.sqrt(var + eps) + beta


def network(rng, pad_values=-1.0, quantizer="ste_sign"):
    def bn(name, n):
        return BatchNormalization(
            name,
            [rng.normal(size=n), rng.normal(size=n), rng.normal(scale=4, size=n), rng.uniform(1, 20, n)],
            axis=-1, epsilon=1e-3, scale=True, center=True,
        )

    k1 = rng.normal(size=(3, 3, 1, 8))
    k2 = rng.normal(size=(3, 3, 8, 12))
    d1 = rng.normal(size=(7 * 7 * 12, 32))
    d2 = rng.normal(size=(32, 10))
    common = dict(kernel_quantizer={"class_name": "SteSign", "config": {}}, activation=None)
    layers = [
        InputLayer("input"),
        QuantConv2D("conv1", [k1], kernel_size=(3, 3), padding="same", pad_values=0.0,
                    input_quantizer=None, use_bias=False, **common),
        MaxPool2D("pool1", pool_size=(2, 2), strides=(2, 2), padding="valid"),
        bn("bn1", 8),
        QuantConv2D("conv2", [k2], kernel_size=(3, 3), padding="same", pad_values=pad_values,
                    input_quantizer=quantizer, use_bias=False, **common),
        MaxPool2D("pool2", pool_size=(2, 2), strides=None, padding="valid"),
        bn("bn2", 12),
        Flatten("flatten"),
        QuantDense("dense1", [d1], input_quantizer="approx_sign", use_bias=False, **common),
        bn("bn3", 32),
        Dropout("dropout"),
        QuantDense("dense2", [d2, rng.normal(size=10)], input_quantizer="swish_sign",
                   use_bias=True, **common),
        Activation("softmax", activation="softmax"),
    ]
    return Model(layers)


def keras_logits(model, images, scale, pad_values=-1.0):
    """The Keras network's forward pass in float64, NHWC."""
    L = {l.name: l for l in model.layers}
    w = lambda name: sign(L[name].get_weights()[0])
    bnp = lambda name: L[name].get_weights()
    x = images.reshape(-1, 28, 28, 1).astype(np.float64) * scale
    x = conv(x, w("conv1"), 1, 0.0)
    x = x.reshape(-1, 14, 2, 14, 2, 8).max(axis=(2, 4))
    x = batch_norm(x, bnp("bn1"), 1e-3)
    x = conv(sign(x), w("conv2"), 1, pad_values)
    x = x.reshape(-1, 7, 2, 7, 2, 12).max(axis=(2, 4))
    x = batch_norm(x, bnp("bn2"), 1e-3)
    x = sign(x.reshape(len(x), -1)) @ w("dense1")
    x = batch_norm(x, bnp("bn3"), 1e-3)
    return sign(x) @ w("dense2") + L["dense2"].get_weights()[1]


@pytest.mark.parametrize("pad_values", [-1.0, 0.0, 1.0])
def test_a_larq_cnn_matches_its_keras_evaluation(test_set, pad_values):
    images, _ = test_set
    images = images[:2000]
    model = network(np.random.default_rng(4), pad_values=pad_values)
    imported = bnn.from_keras(model, input_scale=1 / 255)
    info = imported.info()
    assert info["shape"] == [784, 14 * 14 * 8, 7 * 7 * 12, 32, 10] and info["layers"] == 6
    assert info["input"] == "u8" and info["input_shape"] == (28, 28, 1)
    logits = keras_logits(model, images, np.float32(1 / 255), pad_values)
    np.testing.assert_array_equal(imported.predict(images), np.argmax(logits, axis=1))
    # The scores are the logits over the one scale 1 (±1 weights): equal
    # up to the f32 rounding of the bias.
    np.testing.assert_allclose(imported.scores(images), logits, rtol=1e-5, atol=1e-4)
    assert "tensorflow" not in sys.modules


@pytest.mark.parametrize(
    "change, words",
    [
        (lambda m: m.layers[4]._config.update(pad_values=0.5),
         ["layer 'conv2' (QuantConv2D)", "pad_values=0.5", "0, -1 or +1"]),
        (lambda m: m.layers[4]._config.update(input_quantizer="dorefa_quantizer"),
         ["layer 'conv2' (QuantConv2D)", "input_quantizer dorefa_quantizer"]),
        (lambda m: m.layers[8]._config.update(kernel_quantizer=None),
         ["layer 'dense1' (QuantDense)", "kernel_quantizer None"]),
        (lambda m: m.layers.insert(3, Dense("plain_dense")),
         ["layer 'plain_dense' (Dense)", "not supported"]),
        (lambda m: m.layers[2]._config.update(pool_size=(3, 3)),
         ["layer 'pool1' (MaxPool2D)", "2x2"]),
        (lambda m: m.layers[4]._config.update(strides=(2, 2)),
         ["layer 'conv2' (QuantConv2D)", "strides (2, 2)"]),
    ],
)
def test_what_bnn_cannot_run_is_refused_naming_the_layer(change, words):
    model = network(np.random.default_rng(4))
    change(model)
    with pytest.raises(ValueError) as e:
        bnn.from_keras(model, input_scale=1 / 255)
    for w in words:
        assert w in str(e.value), str(e.value)


def test_a_batch_norm_on_the_scores_keeps_a_score_scale_per_class(test_set):
    """A final BatchNormalization scales each class differently: the model
    keeps a score scale per class, and its classes and scores are the
    Keras network's (a negative gamma flips a class, a zero one makes its
    score constant)."""
    images, _ = test_set
    images = images[:2000]
    rng = np.random.default_rng(1)
    model = network(rng)
    n = 10
    gamma = rng.uniform(0.5, 2, n)
    gamma[2], gamma[5] = -gamma[2], 0.0
    params = [gamma, rng.normal(size=n), rng.normal(size=n), rng.uniform(1, 2, n)]
    model.layers.insert(12, BatchNormalization("bn_out", params, axis=-1, epsilon=1e-3,
                                               scale=True, center=True))
    imported = bnn.from_keras(model, input_scale=1 / 255)
    logits = batch_norm(keras_logits(model, images, np.float32(1 / 255)), params, 1e-3)
    np.testing.assert_array_equal(imported.predict(images), np.argmax(logits, axis=1))
    np.testing.assert_allclose(imported.scores(images), logits, rtol=1e-5, atol=1e-4)
    assert (imported.scores(images)[:, 5] == imported.scores(images)[0, 5]).all()
