"""`bnn.from_numpy`: networks from weight matrices, checked against a
float NumPy evaluation of the same network and against `bnn import-npz`."""

import numpy as np
import pytest

import bnn
from conftest import reference_scores


def random_layers(rng, widths, batch_norm=False, float_weights=False):
    layers = []
    for i, (n_in, n_out) in enumerate(zip(widths, widths[1:])):
        if float_weights:
            w = rng.normal(size=(n_out, n_in)).astype(np.float32)
        else:
            w = rng.choice([-1.0, 1.0], size=(n_out, n_in))
        layer = {"weight": w, "bias": rng.normal(scale=3.0, size=n_out)}
        if batch_norm and i + 2 < len(widths):
            layer["gamma"] = rng.normal(size=n_out)
            layer["beta"] = rng.normal(size=n_out)
            layer["mean"] = rng.normal(scale=5.0, size=n_out)
            layer["var"] = rng.uniform(0.5, 30.0, size=n_out)
            layer["eps"] = 1e-3
        layers.append(layer)
    return layers


@pytest.mark.parametrize("batch_norm", [False, True])
@pytest.mark.parametrize("input", ["binary", "u8"])
def test_matches_a_float_evaluation(test_set, batch_norm, input):
    images, _ = test_set
    images = images[:1000]
    rng = np.random.default_rng(7)
    layers = random_layers(rng, [784, 96, 64, 10], batch_norm, float_weights=True)
    model = bnn.from_numpy(layers, input=input)
    want, margin = reference_scores(layers, images, input=input)
    # A batch norm is the one step not exact in floats: the reference
    # evaluates gamma·(z − mean)/√(var + eps) + beta, the engine folds it
    # into an integer threshold ⌈mean − bias − beta·√(var + eps)/gamma⌉ (or
    # ⌊⌋ for gamma < 0), each in float64 with its own roundings. The two
    # agree on every neuron whose normalized value lies farther from 0 than
    # those roundings reach, which for values of this size (well below
    # 10^3) is below 10^-12: so the data must hold no value within 10^-9
    # of 0, and then bits, scores and classes compare exactly.
    assert margin > 1e-9, f"a batch-norm value {margin} is too close to 0 to compare"
    got = model.scores(images)
    assert got.dtype == np.float32 and want.dtype == np.float32
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(model.predict(images), np.argmax(want, axis=1))


def test_save_and_load_round_trip(tmp_path, test_set):
    images, _ = test_set
    rng = np.random.default_rng(3)
    layers = random_layers(rng, [784, 40, 10], batch_norm=True)
    model = bnn.from_numpy(layers, rule="seed", threshold=100, description="from numpy")
    path = tmp_path / "built.bnn"
    model.save(path)
    again = bnn.load(path)
    assert again.description == "from numpy"
    assert again.info()["rule"] == "seed" and again.info()["input_threshold"] == 100
    assert model.info()["file_bytes"] == path.stat().st_size
    np.testing.assert_array_equal(again.scores(images), model.scores(images))
    np.testing.assert_array_equal(again.predict(images), model.predict(images))


def test_the_same_model_as_import_npz(tmp_path, cli, bnn_bin, test_set):
    images, _ = test_set
    rng = np.random.default_rng(11)
    layers = random_layers(rng, [784, 64, 32, 10])
    arrays = {}
    for k, layer in enumerate(layers, 1):
        arrays[f"fc{k}_w"] = layer["weight"]
        arrays[f"fc{k}_b"] = layer["bias"]
    np.savez(tmp_path / "w.npz", **arrays)
    cli(bnn_bin, "import-npz", tmp_path / "w.npz", "-o", tmp_path / "cli.bnn")
    imported = bnn.load(tmp_path / "cli.bnn")
    built = bnn.from_numpy(layers, rule=imported.info()["rule"])
    np.testing.assert_array_equal(built.scores(images), imported.scores(images))
    built.save(tmp_path / "py.bnn")
    # Same layers, same bytes, but for the description.
    a = (tmp_path / "cli.bnn").read_bytes()
    b = (tmp_path / "py.bnn").read_bytes()
    assert len(a) - len(imported.description) == len(b)


def test_shape_and_input_shape(test_set):
    images, _ = test_set
    rng = np.random.default_rng(5)
    layers = random_layers(rng, [784, 10])
    model = bnn.from_numpy(layers, input="u8", input_shape=(28, 28, 1))
    assert model.info()["shape"] == [784, 10]
    assert model.info()["input_shape"] == (28, 28, 1)
    np.testing.assert_array_equal(model.scores(images[:50]), model.scores(images[:50].reshape(50, 784)))
    with pytest.raises(ValueError, match="shape .50, 784, 1, 1."):
        model.predict(images[:50].reshape(50, 784, 1, 1))


def test_zero_and_tiny_negative_weights_keep_their_sign():
    w = np.array([[0.0, -0.0, -1e-300, 1e-300]])
    model = bnn.from_numpy([{"weight": w}], input="u8")
    # Pixel i alone lights up input i: its score is its weight's sign times p.
    eye = np.eye(4, dtype=np.uint8) * 10
    np.testing.assert_array_equal(model.scores(eye)[:, 0], [10, 10, -10, 10])


@pytest.mark.parametrize(
    "layers, message",
    [
        ([], "at least one layer"),
        ([{"bias": np.zeros(3)}], "layer 1: 'weight' is missing"),
        ([{"weight": np.ones(3)}], "layer 1: 'weight' of shape"),
        ([{"weight": np.ones((3, 4)), "bias": np.zeros(4)}], "layer 1: 'bias' must be a vector of 3"),
        ([{"weight": np.ones((3, 4)), "bias": np.zeros((3, 1))}], "layer 1: 'bias' must be a vector of 3"),
        ([{"weight": np.full((3, 4), np.nan)}], "layer 1: 'weight' holds NaN at flat index 0"),
        ([{"weight": np.ones((3, 4)), "gamma": np.ones(3)}], "layer 1: a batch norm needs all"),
        ([{"weight": np.ones((3, 4)), "scale": 1}], "layer 1: unknown key 'scale'"),
        (
            [{"weight": np.ones((5, 4))}, {"weight": np.ones((2, 6))}],
            "layer 2 takes 6 inputs but receives 5",
        ),
        (
            [{"weight": np.ones((3, 4)), "gamma": np.ones(3), "beta": np.ones(3),
              "mean": np.ones(3), "var": np.ones(3)}],
            "layer 1: the output layer emits dot \\+ bias scores",
        ),
        (
            [{"weight": np.ones((3, 4)), "gamma": np.ones(3), "beta": np.ones(3),
              "mean": np.ones(3), "var": -np.ones(3)}, {"weight": np.ones((2, 3))}],
            "layer 1: invalid model: batch norm .* is not foldable",
        ),
        ([{"weight": np.ones((3, 4)), "bias": np.full(3, 1e300)}], "beyond the range of the f32"),
        (["not a dict"], "layer 1: each layer is a dict"),
    ],
)
def test_bad_layers_are_value_errors(layers, message):
    with pytest.raises(ValueError, match=message):
        bnn.from_numpy(layers)


def test_bad_options_are_value_errors():
    layers = [{"weight": np.ones((3, 4))}]
    with pytest.raises(ValueError, match="input 'float'"):
        bnn.from_numpy(layers, input="float")
    with pytest.raises(ValueError, match="unknown decision rule 'max'"):
        bnn.from_numpy(layers, rule="max")
    with pytest.raises(ValueError, match="input shape 2x2x2 does not hold 4 inputs"):
        bnn.from_numpy(layers, input_shape=(2, 2, 2))
