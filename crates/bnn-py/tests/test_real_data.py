"""Real data through the command line: scikit-learn's bundled digits
(1,797 8x8 images, 10 classes), written the way `scripts/sklearn-data.py`
writes them, trained with the default recipe and evaluated. The data ship
inside the scikit-learn wheel: no network."""

import re
import runpy
import sys

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
