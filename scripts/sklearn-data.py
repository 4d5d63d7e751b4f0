"""Writes scikit-learn's bundled data sets in every form `bnn train --data`
reads: .npz files with Keras' names (x_train, y_train, x_test, y_test),
CSV files with a header row, and image folders (one subfolder per class).

    python scripts/sklearn-data.py OUT_DIR

Each set is split with `train_test_split(test_size=0.2, random_state=0,
stratify=y)`. The data ship inside the scikit-learn wheel: no network.

digits: the 1,797 8x8 images of 17 grey levels (0..16), scaled to 0..255
as uint8, 10 classes.
  digits.npz                      uint8 (N, 8, 8) images, int labels
  digits/train/<class>/*.pgm      the same images as an image folder,
  digits/test/<class>/*.pgm       classes "0" to "9"
breast cancer: 569 samples of 30 float features, 2 classes (malignant,
benign).
  breast_cancer.npz               float64 (N, 30) features, int labels,
                                  and class_names
  breast_cancer_train.csv         header row of the feature names, then a
  breast_cancer_test.csv          last column "diagnosis" of class names
"""

import csv
import sys
from pathlib import Path

import numpy as np
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.model_selection import train_test_split


def split(x, y):
    return train_test_split(x, y, test_size=0.2, random_state=0, stratify=y)


def write_pgm(path, image):
    h, w = image.shape
    path.write_bytes(b"P5\n%d %d\n255\n" % (w, h) + image.astype(np.uint8).tobytes())


def write_folder(root, x, y):
    for i, (image, label) in enumerate(zip(x, y)):
        folder = root / str(label)
        folder.mkdir(parents=True, exist_ok=True)
        write_pgm(folder / f"{i:04d}.pgm", image)


def write_csv(path, names, x, y, class_names):
    with open(path, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(list(names) + ["diagnosis"])
        for row, label in zip(x, y):
            out.writerow([repr(float(v)) for v in row] + [class_names[label]])


out = Path(sys.argv[1])
out.mkdir(parents=True, exist_ok=True)

digits = load_digits()
x = np.round(digits.images * (255 / 16)).astype(np.uint8)
x_train, x_test, y_train, y_test = split(x, digits.target)
np.savez(out / "digits.npz", x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
write_folder(out / "digits" / "train", x_train, y_train)
write_folder(out / "digits" / "test", x_test, y_test)
print(f"{out / 'digits.npz'}, {out / 'digits'}/: {len(x_train)} training and {len(x_test)} test images of 8x8")

cancer = load_breast_cancer()
x_train, x_test, y_train, y_test = split(cancer.data, cancer.target)
names = np.array(cancer.target_names, dtype=str)
np.savez(
    out / "breast_cancer.npz",
    x_train=x_train,
    y_train=y_train,
    x_test=x_test,
    y_test=y_test,
    class_names=names,
)
write_csv(out / "breast_cancer_train.csv", cancer.feature_names, x_train, y_train, names)
write_csv(out / "breast_cancer_test.csv", cancer.feature_names, x_test, y_test, names)
print(
    f"{out / 'breast_cancer.npz'}, {out / 'breast_cancer_*.csv'}: "
    f"{len(x_train)} training and {len(x_test)} test samples of 30 features"
)
