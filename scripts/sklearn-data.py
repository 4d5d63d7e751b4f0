"""Writes scikit-learn's bundled data sets as .npz files with Keras' names
(x_train, y_train, x_test, y_test), the way `bnn train --data` reads them.

    python scripts/sklearn-data.py OUT_DIR

digits: the 1,797 8x8 images of 17 grey levels (0..16), scaled to 0..255
as uint8. The split is `train_test_split(test_size=0.2, random_state=0,
stratify=y)`. The data ship inside the scikit-learn wheel: no network.
"""

import sys
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

out = Path(sys.argv[1])
out.mkdir(parents=True, exist_ok=True)

digits = load_digits()
x = np.round(digits.images * (255 / 16)).astype(np.uint8)
x_train, x_test, y_train, y_test = train_test_split(
    x, digits.target, test_size=0.2, random_state=0, stratify=digits.target
)
np.savez(out / "digits.npz", x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
print(f"{out / 'digits.npz'}: {len(x_train)} training and {len(x_test)} test images of 8x8")
