"""Real data through the command line and Python: scikit-learn's bundled
digits (1,797 8x8 images, 10 classes) and breast cancer (569 samples of 30
float features, 2 classes), written the way `scripts/sklearn-data.py`
writes them (.npz, CSV and image folders), trained with the default recipe
and evaluated. The data ship inside the scikit-learn wheel: no network."""

import re
import runpy
import sys

import numpy as np
import pytest

import bnn
from conftest import ROOT


def test_digits_from_a_npz_reach_95_percent(tmp_path, bnn_bin, cli):
    argv = sys.argv
    try:
        sys.argv = ["sklearn-data.py", str(tmp_path)]
        runpy.run_path(str(ROOT / "scripts" / "sklearn-data.py"), run_name="__main__")
    finally:
        sys.argv = argv
    data = tmp_path / "digits.npz"
    model = tmp_path / "digits.bnn"
    done = cli(bnn_bin, "train", "--data", data, "-o", model, "--progress", "none")
    out = done.stdout.decode()
    test = float(re.search(r"test ([0-9.]+) %", out).group(1))
    assert test >= 95.0, out
    assert "agrees with the trainer's forward pass on 360 of 360" in out
    report = cli(bnn_bin, "eval", model, "--data", data).stdout.decode()
    assert f"accuracy   {test:.2f} % (" in report and "/ 360)" in report, report
    info = bnn.load(model).info()
    assert (info["input_shape"], info["classes"], info["input"]) == ((8, 8, 1), 10, "u8"), info


def sklearn_data(tmp_path):
    """scripts/sklearn-data.py's files in tmp_path."""
    argv = sys.argv
    try:
        sys.argv = ["sklearn-data.py", str(tmp_path)]
        runpy.run_path(str(ROOT / "scripts" / "sklearn-data.py"), run_name="__main__")
    finally:
        sys.argv = argv
    return tmp_path


def trained_test_accuracy(out):
    return float(re.search(r"test ([0-9.]+) %", out).group(1))


@pytest.mark.parametrize("encoding", [None, "u8", "thermometer"])
def test_breast_cancer_reaches_94_percent_with_each_encoding(tmp_path, bnn_bin, cli, encoding):
    data = sklearn_data(tmp_path) / "breast_cancer.npz"
    model = tmp_path / "bc.bnn"
    flags = [] if encoding is None else ["--encoding", encoding]
    done = cli(bnn_bin, "train", "--data", data, "-o", model, "--progress", "none", *flags)
    out = done.stdout.decode()
    assert trained_test_accuracy(out) >= 94.0, out
    assert "on 114 of 114 test images" in out, out
    loaded = bnn.load(model)
    assert loaded.classes == ["malignant", "benign"]
    want = "thermometer:8" if encoding == "thermometer" else "u8 (min-max"
    assert loaded.encoding.startswith(want), loaded.encoding
    # The stored encoding is applied to raw float features: eval reads the
    # .npz's float test set and agrees with the training run.
    report = cli(bnn_bin, "eval", model, "--data", data).stdout.decode()
    assert f"accuracy   {trained_test_accuracy(out):.2f} % (" in report, report
    assert "malignant" in report and "benign" in report, report


def test_breast_cancer_from_csv_names_its_classes_and_classifies_rows(tmp_path, bnn_bin, cli):
    d = sklearn_data(tmp_path)
    model = tmp_path / "bc.bnn"
    done = cli(
        bnn_bin, "train", "--data", d / "breast_cancer_train.csv",
        "--test", d / "breast_cancer_test.csv", "-o", model, "--progress", "none",
    )
    out = done.stdout.decode()
    assert trained_test_accuracy(out) >= 94.0, out
    # CSV strings become the classes, sorted by name.
    assert bnn.load(model).classes == ["benign", "malignant"]
    rows = cli(bnn_bin, "classify", model, d / "breast_cancer_test.csv").stdout.decode()
    lines = rows.splitlines()
    assert lines[0] == "source,index,class,score_0,score_1,label", lines[0]
    assert len(lines) == 115
    with open(d / "breast_cancer_test.csv") as f:
        truth = [line.rstrip("\n").rsplit(",", 1)[1] for line in f][1:]
    labels = [line.rsplit(",", 1)[1] for line in lines[1:]]
    hits = sum(a == b for a, b in zip(labels, truth))
    assert round(100.0 * hits / 114, 2) == trained_test_accuracy(out), (hits, out)


def test_digits_from_an_image_folder_reach_95_percent(tmp_path, bnn_bin, cli):
    d = sklearn_data(tmp_path) / "digits"
    model = tmp_path / "digits.bnn"
    out = cli(bnn_bin, "train", "--data", d, "-o", model, "--progress", "none").stdout.decode()
    assert trained_test_accuracy(out) >= 95.0, out
    assert "on 360 of 360 test images" in out, out
    assert bnn.load(model).classes == [str(i) for i in range(10)]
    report = cli(bnn_bin, "eval", model, "--data", d).stdout.decode()
    assert "/ 360)" in report, report


def test_train_from_arrays_with_names_and_an_encoding(tmp_path):
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split

    cancer = load_breast_cancer()
    x_train, x_test, y_train, y_test = train_test_split(
        cancer.data, cancer.target, test_size=0.2, random_state=0, stratify=cancer.target
    )
    names = list(cancer.target_names)
    model, metrics = bnn.train(
        x=x_train, y=y_train, x_test=x_test, y_test=y_test,
        class_names=names, encoding="thermometer:4", output=tmp_path / "bc.bnn",
    )
    assert metrics["test_accuracy"] >= 0.94, metrics
    assert model.classes == names
    assert model.encoding.startswith("thermometer:4"), model.encoding
    # predict and evaluate take the raw float features through the stored
    # encoding, and agree with the trainer's test accuracy.
    accuracy, confusion = model.evaluate(x_test, y_test)
    assert accuracy == pytest.approx(metrics["test_accuracy"])
    assert confusion.shape == (2, 2) and confusion.sum() == len(y_test)
    predicted = model.predict(x_test)
    assert (predicted == y_test).mean() == pytest.approx(accuracy)
    # The saved file holds the same names and encoding.
    again = bnn.load(tmp_path / "bc.bnn")
    assert again.classes == names
    np.testing.assert_array_equal(again.predict(x_test), predicted)


@pytest.mark.parametrize("source", ["digits.npz", "digits", "breast_cancer_train.csv"])
def test_train_from_a_path_makes_the_commands_model(tmp_path, bnn_bin, cli, source):
    """bnn.train(data=PATH) reads your data as `bnn train --data PATH`
    does, through the same reader, split and default recipe: the same
    model, byte for byte."""
    d = sklearn_data(tmp_path)
    extra = {}
    flags = []
    if source.endswith(".csv"):
        extra = {"test": d / "breast_cancer_test.csv", "label_column": "diagnosis"}
        flags = ["--test", d / "breast_cancer_test.csv", "--label-column", "diagnosis"]
    ours = tmp_path / "python.bnn"
    theirs = tmp_path / "cli.bnn"
    model, metrics = bnn.train(data=d / source, output=ours, **extra)
    out = cli(bnn_bin, "train", "--data", d / source, "-o", theirs, "--progress", "none", *flags)
    assert ours.read_bytes() == theirs.read_bytes()
    assert round(100 * metrics["test_accuracy"], 2) == trained_test_accuracy(out.stdout.decode())
    if source == "digits":
        assert model.classes == [str(i) for i in range(10)]
    if source.endswith(".csv"):
        assert model.classes == ["benign", "malignant"]


def test_train_from_a_path_refuses_mixed_or_misplaced_options(tmp_path):
    d = sklearn_data(tmp_path)
    x = np.zeros((10, 4), dtype=np.uint8)
    y = np.array([0, 1] * 5)
    with pytest.raises(ValueError, match="as arrays x and y or as a data path, not both"):
        bnn.train(data=d / "digits.npz", x=x, y=y)
    with pytest.raises(ValueError, match="as arrays or as a path, not both"):
        bnn.train(x=x, y=y, x_test=x, y_test=y, test=d / "digits.npz")
    # A flag of your data's is no option for MNIST's directory.
    with pytest.raises(ValueError, match="go with your data"):
        bnn.train(data=tmp_path / "mnist", label_column="label")
    # The reader's one-line errors name the file.
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b,label\n1,2,x\n3,oops,y\n")
    with pytest.raises(ValueError, match=r"bad\.csv.*line 3"):
        bnn.train(data=bad)


def test_train_from_arrays_refuses_what_cannot_train():
    x = np.zeros((10, 4), dtype=np.uint8)
    with pytest.raises(ValueError, match="10 samples but 9 labels"):
        bnn.train(x=x, y=np.zeros(9, dtype=np.int64))
    with pytest.raises(ValueError, match="label 1 is -1"):
        bnn.train(x=x, y=np.array([0, -1] * 5))
    with pytest.raises(ValueError, match="row 3 column 1 is NaN"):
        f = np.zeros((10, 4))
        f[3, 1] = np.nan
        bnn.train(x=f, y=np.array([0, 1] * 5))
    with pytest.raises(TypeError, match="y must be a NumPy array of integer labels"):
        bnn.train(x=x, y=np.zeros(10, dtype=np.float32))
    with pytest.raises(ValueError, match="give both or neither"):
        bnn.train(x=x)
