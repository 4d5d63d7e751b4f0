"""Class names and stored feature encodings from Python: float rows are
encoded exactly as the engine documents, names survive a save, and
`evaluate` counts as a confusion matrix should."""

import numpy as np
import pytest

import bnn
from conftest import ROOT


def model_over(inputs, classes, input="u8", seed=0):
    rng = np.random.default_rng(seed)
    layers = [
        {"weight": rng.choice([-1.0, 1.0], size=(16, inputs)), "bias": rng.normal(size=16)},
        {"weight": rng.choice([-1.0, 1.0], size=(classes, 16)), "bias": rng.normal(size=classes)},
    ]
    return bnn.from_numpy(layers, input=input)


def min_max_by_hand(x, lo, hi):
    """The documented min-max code, in float32 in the documented order."""
    x, lo, hi = (np.asarray(a, dtype=np.float32) for a in (x, lo, hi))
    span = hi - lo
    with np.errstate(divide="ignore", invalid="ignore"):
        q = (x - lo) * np.float32(255) / span
    out = np.where(q <= 0, 0, np.where(q >= 255, 255, np.floor(q + np.float32(0.5))))
    return np.where(span == 0, 0, out).astype(np.uint8)


def test_min_max_features_give_the_classes_of_encoding_by_hand(tmp_path):
    rng = np.random.default_rng(1)
    train = rng.normal(size=(200, 6)) * [1, 10, 100, 0.1, 5, 1]
    train[:, 4] = 3.0  # a constant feature encodes to 0
    model = model_over(6, 3).with_encoding(train)
    assert model.encoding == "u8 (min-max over 6 features)"
    x = rng.normal(size=(500, 6)) * [1, 10, 100, 0.1, 5, 1]
    t32 = train.astype(np.float32)
    by_hand = min_max_by_hand(x, t32.min(axis=0), t32.max(axis=0))
    want = model.predict(by_hand)
    np.testing.assert_array_equal(model.predict(x), want)
    np.testing.assert_array_equal(model.predict(x.astype(np.float32)), want)
    np.testing.assert_array_equal(model.scores(x), model.scores(by_hand))
    # The encoding travels in the file.
    path = tmp_path / "features.bnn"
    model.save(path)
    again = bnn.load(path)
    assert again.encoding == model.encoding
    assert again.info()["encoding"] == model.encoding
    np.testing.assert_array_equal(again.predict(x), want)


def test_thermometer_features_give_the_classes_of_encoding_by_hand():
    rng = np.random.default_rng(2)
    train = rng.normal(size=(99, 5)).astype(np.float32)
    model = model_over(5 * 4, 4, input="binary").with_encoding(
        train, kind="thermometer", levels=4
    )
    assert model.encoding == "thermometer:4 over 5 features"
    # Cut k of a feature: its sorted column at index (k+1)·N/(K+1).
    cuts = np.sort(train, axis=0)[[(k + 1) * 99 // 5 for k in range(4)]].T
    x = rng.normal(size=(300, 5)).astype(np.float32)
    by_hand = np.where(x[:, :, None] >= cuts[None, :, :], 255, 0).astype(np.uint8)
    np.testing.assert_array_equal(model.predict(x), model.predict(by_hand.reshape(300, 20)))


def test_class_names_and_indices():
    model = model_over(6, 3)
    assert model.classes == [0, 1, 2]
    assert model.class_names is None
    assert model.num_classes == 3
    named = model.with_class_names(["cat", "dog", "bird"])
    assert named.classes == named.class_names == ["cat", "dog", "bird"]
    assert named.info()["class_names"] == ["cat", "dog", "bird"]
    assert model.info()["class_names"] is None
    with pytest.raises(ValueError, match="2 class names for a model of 3 classes"):
        model.with_class_names(["a", "b"])
    with pytest.raises(ValueError, match="class names 0 and 1 are both"):
        model.with_class_names(["a", "a", "b"])


def test_a_file_with_a_skipped_section_loads_with_its_names():
    model = bnn.load(ROOT / "tests/fuzz/bnn_model/v3-minmax-names.bnn")
    assert model.classes == ["setosa", "versicolor", "virginica"]
    assert model.encoding == "u8 (min-max over 6 features)"


def test_evaluate_counts_a_confusion_matrix():
    rng = np.random.default_rng(3)
    model = model_over(6, 3).with_encoding(rng.normal(size=(50, 6)))
    x = rng.normal(size=(400, 6))
    y = rng.integers(0, 3, size=400).astype(np.uint8)
    accuracy, confusion = model.evaluate(x, y)
    predicted = model.predict(x)
    want = np.zeros((3, 3), dtype=np.int64)
    np.add.at(want, (y.astype(np.int64), predicted), 1)
    np.testing.assert_array_equal(confusion, want)
    assert confusion.dtype == np.int64 and confusion.shape == (3, 3)
    assert accuracy == pytest.approx(float((predicted == y).mean()))
    with pytest.raises(ValueError, match="label 0 is 3, not a class"):
        model.evaluate(x[:1], [3])
    with pytest.raises(ValueError, match="2 labels for 1 inputs"):
        model.evaluate(x[:1], [0, 1])
    with pytest.raises(TypeError, match="labels must be integers"):
        model.evaluate(x[:1], [0.5])


def test_bad_features_are_refused():
    rng = np.random.default_rng(4)
    model = model_over(6, 3).with_encoding(rng.normal(size=(50, 6)))
    x = rng.normal(size=(4, 6))
    x[2, 5] = np.nan
    with pytest.raises(ValueError, match="feature row 2, column 5 is NaN"):
        model.predict(x)
    with pytest.raises(ValueError, match=r"expected \(N, 6\)"):
        model.predict(rng.normal(size=(4, 7)))
    # Float rows for a model without an encoding: it takes uint8 images.
    with pytest.raises(TypeError, match="need a model with a stored feature encoding"):
        model_over(6, 3).predict(x)
    with pytest.raises(ValueError, match="where the model takes 6"):
        model_over(6, 3).with_encoding(rng.normal(size=(50, 6)), kind="thermometer", levels=2)
