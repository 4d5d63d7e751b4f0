"""`bnn.train`: the CLI's trainer, deterministic for a seed."""

import numpy as np
import pytest

import bnn


def test_one_epoch_is_reproducible_and_reports_its_metrics(tmp_path, mnist_dir, test_set):
    images, labels = test_set
    seen = []
    out = tmp_path / "trained.bnn"
    model, metrics = bnn.train(
        recipe="seed", data=mnist_dir, output=out, epochs=1, seed=5, progress=seen.append
    )
    assert [m["epoch"] for m in seen] == [1]
    assert metrics["history"] == seen
    assert metrics["best_epoch"] == 1
    accuracy = (model.predict(images) == labels).mean()
    assert metrics["test_accuracy"] == pytest.approx(accuracy, abs=1e-12)
    assert accuracy > 0.5
    loaded = bnn.load(out)
    assert loaded.description == model.description
    assert "seed 5" in model.description
    np.testing.assert_array_equal(loaded.scores(images), model.scores(images))
    again, _ = bnn.train(recipe="seed", data=mnist_dir, epochs=1, seed=5)
    np.testing.assert_array_equal(again.scores(images), model.scores(images))


def test_a_failing_progress_callable_raises_after_training(mnist_dir):
    def fail(metrics):
        raise KeyError("stop")

    with pytest.raises(KeyError, match="stop"):
        bnn.train(recipe="seed", data=mnist_dir, epochs=1, progress=fail)


def test_bad_settings(tmp_path, mnist_dir):
    with pytest.raises(ValueError, match="unknown recipe|recipe"):
        bnn.train(recipe="huge", data=mnist_dir, epochs=1)
    with pytest.raises(ValueError, match="epochs must be at least 1"):
        bnn.train(recipe="seed", data=mnist_dir, epochs=0)
    with pytest.raises(ValueError, match="float32"):
        bnn.train(recipe="fp32", data=mnist_dir, epochs=1)
    with pytest.raises(FileNotFoundError):
        bnn.train(recipe="seed", data=tmp_path, epochs=1)
