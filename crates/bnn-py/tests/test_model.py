"""Loading, running and saving models through Python, checked against the
CLI and the published accuracies."""

import io
import os

import numpy as np
import pytest

import bnn
from conftest import model_path

SHIPPED = [
    "seed.bnn",
    "seed-recipe.bnn",
    "mnist-512.bnn",
    "mnist-deep.bnn",
    "mnist-512-u8.bnn",
    "mnist-deep-u8.bnn",
]


def test_seed_accuracy_with_both_rules(test_set):
    images, labels = test_set
    model = bnn.load(model_path("seed.bnn"))
    assert model.info()["rule"] == "seed"
    assert int((model.predict(images) == labels).sum()) == 9019
    scores_rule = model.with_rule("scores")
    assert int((scores_rule.predict(images) == labels).sum()) == 9439
    # with_rule makes a new model and leaves the old one alone.
    assert model.info()["rule"] == "seed"


def cli_rows(cli, bnn_bin, name, mnist_dir):
    out = cli(bnn_bin, "classify", model_path(name), mnist_dir / "t10k-images-idx3-ubyte")
    text = out.stdout.decode()
    header, *rows = text.splitlines()
    assert header.startswith("source,index,class,score_0")
    classes = np.array([int(r.split(",")[2]) for r in rows])
    scores = np.array([[float(s) for s in r.split(",")[3:]] for r in rows], dtype=np.float32)
    return classes, scores


@pytest.mark.parametrize("name", SHIPPED)
def test_predictions_equal_the_cli(name, test_set, cli, bnn_bin, mnist_dir):
    images, _ = test_set
    model = bnn.load(model_path(name))
    classes, scores = cli_rows(cli, bnn_bin, name, mnist_dir)
    assert len(classes) == 10_000
    got_classes, got_scores = model.classify(images)
    np.testing.assert_array_equal(got_classes, classes)
    # The CSV's floats parse back to the very f32 the engine computed.
    np.testing.assert_array_equal(got_scores, scores)
    np.testing.assert_array_equal(model.predict(images), classes)
    np.testing.assert_array_equal(model.scores(images), scores)


def test_result_types_and_shapes(test_set):
    images, _ = test_set
    model = bnn.load(model_path("mnist-512.bnn"))
    classes = model.predict(images[:7])
    scores = model.scores(images[:7])
    assert classes.dtype == np.int64 and classes.shape == (7,)
    assert scores.dtype == np.float32 and scores.shape == (7, 10)
    assert scores.flags["C_CONTIGUOUS"] and scores.flags["WRITEABLE"]
    empty = model.predict(images[:0])
    assert empty.shape == (0,)
    assert model.scores(images[:0]).shape == (0, 10)


def test_every_layout_gives_the_same_answer(test_set):
    images, _ = test_set
    images = images[:500]
    model = bnn.load(model_path("mnist-deep-u8.bnn"))
    want = model.scores(images)
    flat = images.reshape(500, 784)
    np.testing.assert_array_equal(model.scores(flat), want)
    np.testing.assert_array_equal(model.scores(images.reshape(500, 28, 28, 1)), want)
    # Read-only buffers are read in place.
    frozen = np.frombuffer(flat.tobytes(), dtype=np.uint8).reshape(500, 784)
    assert not frozen.flags["WRITEABLE"]
    np.testing.assert_array_equal(model.scores(frozen), want)
    # Non-contiguous views are copied once, with the same result.
    wide = np.zeros((500, 2 * 784), dtype=np.uint8)
    wide[:, ::2] = flat
    strided = wide[:, ::2]
    assert not strided.flags["C_CONTIGUOUS"]
    np.testing.assert_array_equal(model.scores(strided), want)
    # Fortran order is contiguous, but not image after image.
    fortran = np.asfortranarray(flat)
    assert fortran.flags["F_CONTIGUOUS"] and not fortran.flags["C_CONTIGUOUS"]
    np.testing.assert_array_equal(model.scores(fortran), want)
    np.testing.assert_array_equal(
        model.scores(np.asfortranarray(images.reshape(500, 28, 28, 1))), want
    )
    every_other = np.ascontiguousarray(images[::2])
    np.testing.assert_array_equal(model.scores(images[::2]), model.scores(every_other))


def test_memory_mapped_input(tmp_path, test_set):
    images, _ = test_set
    path = tmp_path / "images.npy"
    np.save(path, images[:1000])
    mapped = np.load(path, mmap_mode="r")
    model = bnn.load(model_path("seed.bnn"))
    np.testing.assert_array_equal(model.predict(mapped), model.predict(images[:1000]))


@pytest.mark.parametrize(
    "images, shape",
    [
        (np.zeros((3, 783), np.uint8), "(3, 783)"),
        (np.zeros((784,), np.uint8), "(784,)"),
        (np.zeros((3, 28, 27), np.uint8), "(3, 28, 27)"),
        (np.zeros((3, 28, 28, 2), np.uint8), "(3, 28, 28, 2)"),
        (np.zeros((3, 1, 28, 28, 1), np.uint8), "(3, 1, 28, 28, 1)"),
        (np.zeros((), np.uint8), "()"),
    ],
)
def test_a_shape_that_does_not_fit_is_a_value_error(images, shape):
    model = bnn.load(model_path("seed.bnn"))
    with pytest.raises(ValueError, match=f"shape {shape.replace('(', '[(]').replace(')', '[)]')}"):
        model.predict(images)
    with pytest.raises(ValueError, match="784"):
        model.scores(images)


@pytest.mark.parametrize(
    "images",
    [
        np.zeros((3, 784), np.int32),
        np.zeros((3, 784), np.float32),
        np.zeros((3, 784), np.int8),
        np.zeros((3, 784), bool),
        [[0] * 784],
        b"\x00" * 784,
        None,
    ],
)
def test_a_wrong_dtype_or_type_is_a_type_error(images):
    model = bnn.load(model_path("seed.bnn"))
    with pytest.raises(TypeError, match="uint8"):
        model.predict(images)


def test_bad_threads_and_kernels_are_value_errors(test_set):
    images, _ = test_set
    model = bnn.load(model_path("seed.bnn"))
    for threads in [0, -1, 1025]:
        with pytest.raises(ValueError, match="1 to 1024"):
            model.predict(images[:10], threads=threads)
    with pytest.raises(ValueError, match="unknown kernel 'fast'"):
        model.predict(images[:10], kernel="fast")
    with pytest.raises(ValueError, match="unknown decision rule 'best'"):
        model.with_rule("best")


def test_every_kernel_and_thread_count_agree(test_set):
    images, _ = test_set
    images = images[:2000]
    assert bnn.kernels()[-1] == "scalar"
    for name in ["seed.bnn", "mnist-deep-u8.bnn"]:
        model = bnn.load(model_path(name))
        want = model.scores(images, kernel="scalar", threads=1)
        for kernel in bnn.kernels():
            for threads in [1, 2, 3]:
                got = model.scores(images, threads=threads, kernel=kernel)
                np.testing.assert_array_equal(got, want, err_msg=f"{name} {kernel} {threads}")


def test_missing_file_is_file_not_found_with_the_path(tmp_path):
    missing = tmp_path / "nothing.bnn"
    with pytest.raises(FileNotFoundError) as e:
        bnn.load(missing)
    assert e.value.filename == str(missing)
    assert "cannot load model" in str(e.value)
    assert str(missing) in str(e.value)
    with pytest.raises(ValueError, match="is a directory") as e:
        bnn.load(tmp_path)
    assert str(tmp_path) in str(e.value)


def test_wrong_and_damaged_files_are_value_errors_naming_the_file(tmp_path):
    readme = model_path("seed.md")
    with pytest.raises(ValueError, match="not a .bnn model file") as e:
        bnn.load(readme)
    assert str(readme) in str(e.value)
    whole = model_path("seed.bnn").read_bytes()
    for name, data in [
        ("empty.bnn", b""),
        ("truncated.bnn", whole[: len(whole) // 2]),
        ("flipped.bnn", whole[:-9] + bytes([whole[-9] ^ 1]) + whole[-8:]),
    ]:
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(ValueError) as e:
            bnn.load(path)
        assert str(path) in str(e.value), str(e.value)
        assert "\n" not in str(e.value)


def test_save_round_trips_and_replaces_atomically(tmp_path, test_set):
    images, _ = test_set
    for name in SHIPPED:
        model = bnn.load(model_path(name))
        out = tmp_path / name
        out.write_bytes(b"old contents")
        model.save(out)
        assert out.read_bytes() == model_path(name).read_bytes()
        again = bnn.load(out)
        assert again.info()["file_bytes"] == out.stat().st_size
        np.testing.assert_array_equal(again.scores(images[:300]), model.scores(images[:300]))
    with pytest.raises(FileNotFoundError) as e:
        model.save(tmp_path / "no" / "such" / "dir.bnn")
    assert "cannot save model" in str(e.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(SHIPPED)


def test_info_describes_the_model():
    info = bnn.load(model_path("seed.bnn")).info()
    assert info["shape"] == [784, 512, 10]
    assert info["layers"] == 2 and info["classes"] == 10
    assert info["input"] == "binary" and info["input_threshold"] == 128
    assert info["input_shape"] == (1, 1, 784)
    assert info["file_bytes"] == model_path("seed.bnn").stat().st_size == 52_165
    assert info["weight_bits"] == 784 * 512 + 512 * 10
    assert info["fp32_bytes"] == 4 * (784 * 512 + 512 + 512 * 10 + 10)
    assert info["compression"] == pytest.approx(info["fp32_bytes"] / 52_165)
    assert info["memory_bytes"] > info["weight_bits"] // 8
    assert info["path"] == str(model_path("seed.bnn"))
    u8 = bnn.load(model_path("mnist-512-u8.bnn")).info()
    assert u8["input"] == "u8" and u8["input_threshold"] is None
    assert u8["input_shape"] == (28, 28, 1)


def test_mnist_splits_and_errors(mnist_dir, tmp_path):
    images, labels = bnn.mnist(mnist_dir, "test")
    assert images.shape == (10_000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (10_000,) and labels.dtype == np.uint8
    assert labels.max() == 9 and images.max() == 255
    with pytest.raises(ValueError, match="split 'valid'"):
        bnn.mnist(mnist_dir, "valid")
    with pytest.raises(FileNotFoundError, match="file not found") as e:
        bnn.mnist(tmp_path, "test")
    assert str(tmp_path) in str(e.value)


def test_the_cli_reads_and_writes_npy_that_numpy_agrees_with(tmp_path, test_set, cli, bnn_bin):
    images, _ = test_set
    model = bnn.load(model_path("mnist-deep-u8.bnn"))
    np.save(tmp_path / "images.npy", images[:2000])
    out = tmp_path / "out.npy"
    cli(bnn_bin, "classify", model_path("mnist-deep-u8.bnn"), tmp_path / "images.npy",
        "--format", "npy", "-o", out)
    records = np.load(out)
    classes, scores = model.classify(images[:2000])
    assert records.dtype.names == ("class", "scores")
    np.testing.assert_array_equal(records["class"], classes)
    np.testing.assert_array_equal(records["scores"], scores)
    only = tmp_path / "classes.npy"
    cli(bnn_bin, "classify", model_path("mnist-deep-u8.bnn"), tmp_path / "images.npy",
        "--format", "npy", "--classes-only", "-o", only)
    assert only.read_bytes() == _npy_bytes(classes)


def _npy_bytes(array):
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def test_only_memory_python_cannot_write_is_read_in_place():
    """The engine reads pixels with the GIL released: an array Python could
    write to meanwhile is copied first, a chunk at a time."""
    from bnn._bnn import _reads_in_place

    owned = np.zeros((3, 784), np.uint8)
    assert not _reads_in_place(owned)
    frozen_owner = owned.copy()
    frozen_owner.flags.writeable = False  # and could be set back
    assert not _reads_in_place(frozen_owner)
    view = owned[:2]
    view.flags.writeable = False  # its base stays writeable
    assert not _reads_in_place(view)
    assert _reads_in_place(np.frombuffer(owned.tobytes(), np.uint8).reshape(3, 784))
    assert not _reads_in_place(np.frombuffer(bytearray(784), np.uint8))


def test_batches_larger_than_a_copied_chunk(test_set):
    images, _ = test_set
    model = bnn.load(model_path("seed.bnn"))
    # 12,000 images, 9.4 MB: many 1 MiB chunks when copied.
    batch = np.concatenate([images, images[:2000]]).reshape(12000, 784)
    in_place = np.frombuffer(batch.tobytes(), np.uint8).reshape(12000, 784)
    want = model.scores(in_place)
    np.testing.assert_array_equal(model.scores(batch), want)
    np.testing.assert_array_equal(model.predict(batch), model.predict(in_place))
    np.testing.assert_array_equal(want[10000:], want[:2000])
